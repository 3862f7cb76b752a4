//! What every request handler on a shard can reach: the broker's settings, the shard's
//! partition logs, its copy of the metadata and its links to the other shards.

use crate::group::coordinator::GroupCoordinator;
use crate::group::state::GroupLimits;
use crate::metadata::Metadata;
use crate::metrics::RequestMetrics;
use crate::routing::ShardMessage;
use sluice_engine::mesh::MeshSenders;
use sluice_engine::shard::Shard;
use sluice_engine::{FlushPolicy, LogConfig};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Broker-wide settings, the same on every shard.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id (Kafka's `node.id`).
    pub node_id: i32,
    /// Where clients connect (Kafka's `listeners`), the first one also where the other
    /// brokers of a cluster reach this one; never empty.
    pub listeners: Vec<crate::security::config::ListenerConfig>,
    /// TLS, SASL and authorization settings.
    pub security: crate::security::config::SecurityConfig,
    /// Create a topic when a client asks for its metadata (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics without a count
    /// (`num.partitions`).
    pub num_partitions: i32,
    /// Log settings of topics that set nothing themselves.
    pub log_defaults: LogConfig,
    /// Largest request frame; a larger one closes the connection
    /// (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Where the logs and the metadata live.
    pub data_dir: PathBuf,
    /// Bounds on consumer group membership (Kafka's `group.*` broker settings).
    pub group_limits: GroupLimits,
    /// Transaction settings (Kafka's `transaction.*` broker settings).
    pub txn_limits: crate::txn::TxnLimits,
    /// `min.insync.replicas` of topics that do not set it.
    pub min_insync_replicas: usize,
    /// The cluster this broker belongs to; `None`: a single node.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl BrokerConfig {
    /// The host and port clients of `listener` are told to connect to.
    pub fn advertised(&self, listener: usize) -> (&str, u16) {
        let listener = &self.listeners[listener];
        (&listener.advertised_host, listener.advertised_port)
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 0,
            listeners: vec![crate::security::config::ListenerConfig::plaintext("127.0.0.1", 9092)],
            security: Default::default(),
            auto_create_topics: true,
            num_partitions: 1,
            log_defaults: LogConfig::default(),
            max_request_bytes: 100 << 20,
            data_dir: PathBuf::from("./data"),
            group_limits: GroupLimits::default(),
            txn_limits: Default::default(),
            min_insync_replicas: 1,
            cluster: None,
        }
    }
}

/// Counters a shard keeps about its own work (single-threaded, so plain cells).
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Connections accepted.
    pub connections: Cell<u64>,
    /// Connections open now.
    pub connections_open: Cell<u64>,
    /// Requests answered.
    pub requests: Cell<u64>,
    /// Requests being handled now.
    pub requests_in_flight: Cell<u64>,
    /// Partition calls this shard sent to another shard.
    pub calls_routed_out: Cell<u64>,
    /// Partition calls this shard ran for another shard.
    pub calls_served_for_others: Cell<u64>,
    /// Time the executor spent running tasks, as of the last [`ShardStats::busy_time`].
    busy: Cell<Duration>,
}

impl ShardStats {
    /// Adds one to a counter.
    pub fn bump(counter: &Cell<u64>, by: u64) {
        counter.set(counter.get() + by);
    }

    /// Subtracts one from a counter that must be above zero.
    pub fn drop_one(counter: &Cell<u64>) {
        let value = counter.get();
        assert!(value > 0, "counter goes below zero");
        counter.set(value - 1);
    }

    /// Time this shard's executor spent running tasks since it started: glommio's
    /// `executor_runtime`, which leaves out parking and spinning while idle. Call it on
    /// the shard's own thread (glommio hands out the time since its previous call, so
    /// the total is kept here).
    pub fn busy_time(&self) -> Duration {
        let since_last_call = glommio::executor().executor_stats().executor_runtime();
        self.busy.set(self.busy.get() + since_last_call);
        self.busy.get()
    }
}

/// The state of one shard, shared by its tasks through `Rc`.
pub struct ShardContext {
    /// This shard's id (its executor index and mesh peer id).
    pub id: usize,
    /// Number of shards.
    pub shards: usize,
    /// Broker settings.
    pub broker: Arc<BrokerConfig>,
    /// The partition logs this shard owns.
    pub engine: Shard,
    /// This shard's copy of the metadata; replaced whole by shard 0's pushes.
    pub(crate) metadata: RefCell<Arc<Metadata>>,
    /// Links to every other shard.
    pub(crate) mesh: MeshSenders<ShardMessage>,
    /// Serializes metadata changes (used on shard 0 only).
    pub(crate) control_lock: glommio::sync::Semaphore,
    /// Serializes what opens, deletes and replaces this shard's logs (applying a metadata
    /// snapshot, a follower starting its log again).
    pub(crate) partitions_lock: glommio::sync::Semaphore,
    /// Last producer id handed out by this shard (see `init_producer_id`).
    pub(crate) last_producer_id: Cell<i64>,
    /// The consumer groups this shard coordinates.
    pub(crate) groups: GroupCoordinator,
    /// The transactional ids this shard coordinates.
    pub(crate) txns: crate::txn::coordinator::TxnCoordinator,
    /// The cluster state of this shard (replicas, fetchers; on shard 0 the quorum and link).
    pub(crate) cluster: crate::cluster::ShardCluster,
    /// Counters.
    pub stats: ShardStats,
    /// Per-API request counts and latencies.
    pub requests: RequestMetrics,
    /// The ACL decisions of this shard: built from the metadata's bindings with the
    /// broker's super users (rebuilt when the bindings change).
    pub(crate) authorizer: RefCell<Rc<sluice_security::acl::Authorizer>>,
    /// The default flush policy set at runtime (admin `config set flush`), in place of
    /// `broker.log_defaults.flush`; every shard holds the same value.
    pub(crate) flush_override: Cell<Option<FlushPolicy>>,
    /// Where shard 0 publishes each applied snapshot's credentials for the HTTP thread's
    /// basic auth (`crate::http::auth`); empty on the other shards.
    pub(crate) published_security: std::cell::OnceCell<crate::http::auth::PublishedSecurity>,
}

impl ShardContext {
    /// A shard's context; partitions are opened by the first `apply_metadata`.
    pub fn new(id: usize, shards: usize, broker: Arc<BrokerConfig>, mesh: MeshSenders<ShardMessage>) -> Rc<Self> {
        assert_eq!(mesh.shard(), id, "a shard is handed its own ends of the mesh");
        let engine = Shard::new(id, &broker.data_dir);
        let groups = GroupCoordinator::new(broker.group_limits.clone());
        Rc::new(ShardContext {
            id,
            shards,
            broker,
            engine,
            metadata: RefCell::new(Arc::new(Metadata::default())),
            mesh,
            control_lock: glommio::sync::Semaphore::new(1),
            partitions_lock: glommio::sync::Semaphore::new(1),
            last_producer_id: Cell::new(0),
            groups,
            txns: Default::default(),
            cluster: Default::default(),
            stats: ShardStats::default(),
            requests: RequestMetrics::default(),
            flush_override: Cell::new(None),
            authorizer: Default::default(),
            published_security: Default::default(),
        })
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<Metadata> {
        self.metadata.borrow().clone()
    }

    /// Log settings of topics that set nothing themselves: the broker's, with the flush
    /// policy changed at runtime if it was.
    pub fn log_defaults(&self) -> LogConfig {
        let mut defaults = self.broker.log_defaults.clone();
        if let Some(flush) = self.flush_override.get() {
            defaults.flush = flush;
        }
        defaults
    }
}
