//! The broker in a cluster (issue 12): the controller quorum on shard 0 of a voter, the
//! broker's link to it, the metadata image turned into the shards' metadata, the
//! partition replicas each shard runs (leader or follower) and the follower fetchers.
//!
//! Without `--controller-quorum-voters` none of this runs and the broker is the single
//! node it always was.

pub mod fetcher;
pub mod meta_properties;
pub mod replicas;

use meta_properties::MetaProperties;

use crate::context::ShardContext;
use crate::error::{KafkaError, KafkaResult};
use crate::metadata::{Metadata, TopicMeta};
use crate::security::store::SecurityState;
use kafka_protocol::ResponseError;
use sluice_client::{ClientError, KafkaConnection};
use sluice_replication::broker_link::{BrokerLink, BrokerLinkConfig};
use sluice_replication::controller::ControllerConfig;
use sluice_replication::metadata::{BrokerRegistration, BrokerState, MetadataImage, PartitionState};
use sluice_replication::quorum::service::{MetadataQuorum, QuorumConfig};
use sluice_replication::quorum::wire::{BrokerRequest, BrokerResponse};
use sluice_replication::PartitionKey;
use sluice_security::listeners::SecurityProtocol;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a broker that asked the controller for a change waits for the metadata to
/// show it.
pub(crate) const METADATA_CHANGE_WAIT: Duration = Duration::from_secs(10);

/// How long a stopping broker waits for the controller to move its leaderships.
const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Node ids a cluster's brokers may have (producer ids embed the node id until the
/// controller hands out id blocks).
pub const CLUSTER_NODE_IDS_MAX: i32 = 1024;

/// The quorum's directory under the data directory (Kafka's name for its metadata log).
pub const CLUSTER_METADATA_DIR: &str = "__cluster_metadata";

/// Cluster settings (Kafka's names).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `controller.quorum.voters`: every voter's node id and controller listener address.
    pub voters: BTreeMap<u64, String>,
    /// Where this node's controller listens, when it is a voter.
    pub controller_listen: Option<String>,
    /// The controller's settings (`broker.session.timeout.ms`, leader rebalancing), used
    /// where this node is a voter.
    pub controller: ControllerConfig,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// `default.replication.factor`: topics created without one (auto-creation too).
    pub default_replication_factor: usize,
    /// Where and how this broker reaches the others (follower fetches, transaction
    /// markers, Schema Registry writes).
    pub inter_broker: InterBrokerConnections,
}

/// Kafka's `inter.broker.listener.name` with the client side of it: the listener (named by
/// its protocol, as sluice's listeners are) that brokers connect to on each other, and the
/// TLS trust and SASL credentials this broker connects with.
#[derive(Debug, Clone, Default)]
pub struct InterBrokerConnections {
    /// The other brokers' listener of this protocol is used.
    pub protocol: SecurityProtocol,
    /// How connections to it are secured; matches `protocol`.
    pub security: sluice_client::ConnectionSecurity,
}

impl InterBrokerConnections {
    /// `broker`'s inter-broker address, `host:port`.
    pub fn address_of(&self, broker: &BrokerState) -> String {
        let (host, port) = broker_address(broker, self.protocol);
        format!("{host}:{port}")
    }

    /// Connects to another broker's inter-broker listener as `client_id`.
    pub async fn connect(&self, address: &str, client_id: &str) -> Result<KafkaConnection, ClientError> {
        KafkaConnection::connect_with_security(address, client_id, &self.security).await
    }
}

impl ClusterConfig {
    /// Kafka's defaults for `voters`.
    pub fn new(voters: BTreeMap<u64, String>, controller_listen: Option<String>) -> Self {
        ClusterConfig {
            voters,
            controller_listen,
            controller: ControllerConfig::default(),
            broker_heartbeat_interval_ms: 2_000,
            replica_lag_time_max_ms: 30_000,
            default_replication_factor: 1,
            inter_broker: InterBrokerConnections::default(),
        }
    }
}

/// What a shard knows of the cluster with its metadata snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterView {
    /// The metadata image the snapshot was made from.
    pub image: Arc<MetadataImage>,
    /// Whether this process may hold replicas: its registration is current and was
    /// unfenced (a restarted broker waits for that, so that it never takes up a leader
    /// epoch of its past process).
    pub serving: bool,
    /// The active controller, if known (-1 otherwise).
    pub controller_id: i32,
}

impl ClusterView {
    /// The state of a partition, by topic name.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<(PartitionKey, &PartitionState)> {
        let topic_id = self.image.topics.get(topic)?.topic_id;
        let key = PartitionKey { topic_id, partition };
        self.image.partitions.get(&key).map(|state| (key, state))
    }

    /// Whether `broker` holds a replica of the partition.
    pub fn is_replica(&self, topic: &str, partition: i32, broker: i32) -> bool {
        self.partition(topic, partition).is_some_and(|(_, state)| state.is_replica(broker))
    }
}

/// A broker as clients see it: id, host, port, rack.
pub struct LiveBroker {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl ClusterView {
    /// The brokers clients may use: registered and unfenced, by id, each at its listener
    /// of `protocol` (a client is told the addresses of the kind it came in on).
    pub fn live_brokers(&self, protocol: SecurityProtocol) -> Vec<LiveBroker> {
        self.image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .map(|(id, b)| {
                let (host, port) = broker_address(b, protocol);
                LiveBroker { id: *id, host: host.to_string(), port, rack: b.rack.clone() }
            })
            .collect()
    }
}

/// Where a broker's listener of `protocol` is, or its first listener where it has none
/// of that kind.
pub fn broker_address(broker: &BrokerState, protocol: SecurityProtocol) -> (&str, u16) {
    broker
        .listeners
        .iter()
        .find(|l| l.protocol == protocol.name())
        .map_or((&broker.host, broker.port), |l| (&l.host, l.port))
}

/// A cluster's health in counts, as one broker's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterFigures {
    /// Registered, unfenced brokers.
    pub live_brokers: usize,
    /// Partitions of every topic.
    pub partitions: usize,
    /// Partitions whose ISR is smaller than their (target) replica list.
    pub under_replicated: usize,
    /// Partitions without a leader.
    pub offline: usize,
    /// Partitions being reassigned.
    pub reassigning: usize,
    /// Partitions this broker leads.
    pub leading: usize,
    /// Whether this node is the active controller.
    pub active_controller: bool,
    /// The metadata image's version (records applied).
    pub metadata_version: u64,
}

/// Milliseconds since the process started: the clock replicas and the controller use.
pub fn now_ms() -> u64 {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    STARTED.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The shard that owns a partition in a cluster: spread by topic id, so every broker
/// places a partition the same way without storing it.
fn place(topic_id: uuid::Uuid, partition: i32, shards: usize) -> usize {
    ((topic_id.as_u128() % shards as u128) as usize + partition as usize) % shards
}

/// The shards' metadata made from an image. The security part is `previous`'s when the
/// image's is the same as the one `previous` was made from: every shard rebuilds its
/// authorizer when that `Arc` changes, and most images change only partitions and brokers.
/// (Images fetched from the controller are new values each time, so the parts are compared
/// by value where they are not the same `Arc`.)
pub fn metadata_from_image(
    image: Arc<MetadataImage>,
    shards: usize,
    serving: bool,
    controller_id: i32,
    previous: Option<&Metadata>,
) -> Metadata {
    let topics = image
        .topics
        .iter()
        .map(|(name, topic)| {
            let shards = (0..topic.partitions).map(|p| place(topic.topic_id, p, shards)).collect();
            (name.clone(), TopicMeta { id: topic.topic_id, shards, configs: topic.configs.clone() })
        })
        .collect();
    let unchanged = |previous: &&Metadata| {
        previous.cluster.as_ref().is_some_and(|view| {
            Arc::ptr_eq(&view.image.security, &image.security) || view.image.security == image.security
        })
    };
    let security = match previous.filter(unchanged) {
        Some(previous) => previous.security.clone(),
        None => Arc::new(SecurityState::from_image(&image.security)),
    };
    Metadata {
        version: image.applied_records,
        cluster_id: image.cluster_id.clone().unwrap_or_default(),
        topics,
        security,
        cluster: Some(Arc::new(ClusterView { image, serving, controller_id })),
    }
}

/// A shard's cluster state.
#[derive(Default)]
pub struct ShardCluster {
    /// Shard 0: the quorum, on a voter.
    pub(crate) quorum: RefCell<Option<Rc<MetadataQuorum>>>,
    /// Shard 0: the link to the controllers.
    pub(crate) link: RefCell<Option<Rc<BrokerLink>>>,
    /// Shard 0: whether this process has been unfenced under its registration.
    serving: Cell<bool>,
    /// Shard 0: the data directory's `meta.properties`.
    meta: RefCell<Option<MetaProperties>>,
    /// The replicas of the partitions this shard owns, by partition directory name.
    pub(crate) replicas: RefCell<BTreeMap<String, Rc<replicas::ReplicaHandle>>>,
    /// The leaders this shard runs a fetcher for.
    pub(crate) fetchers: RefCell<std::collections::BTreeSet<i32>>,
}

impl ShardContext {
    /// Whether this broker runs in a cluster.
    pub fn in_cluster(&self) -> bool {
        self.broker.cluster.is_some()
    }

    /// How this broker reaches the others; only code that runs in a cluster asks.
    pub(crate) fn inter_broker(&self) -> &InterBrokerConnections {
        &self.broker.cluster.as_ref().expect("inter-broker connections exist only in a cluster").inter_broker
    }

    /// Shard 0 of a cluster node: starts the quorum (on a voter) and the link, then
    /// follows the link's images, pushing each to every shard.
    pub(crate) async fn start_cluster(self: &Rc<Self>, stopping: crate::broker::Stopping) -> Result<(), String> {
        let Some(config) = self.broker.cluster.clone() else { return Ok(()) };
        assert_eq!(self.id, 0, "the cluster runs on shard 0");
        let node_id = self.broker.node_id;
        let data_dir = &self.broker.data_dir;
        let meta = match MetaProperties::read(data_dir)? {
            Some(meta) => {
                meta.check_node(node_id, data_dir)?;
                meta
            }
            None => {
                let meta = MetaProperties { node_id, cluster_id: None };
                meta.write(data_dir).await?;
                meta
            }
        };
        let cluster_id = meta.cluster_id.clone();
        self.cluster.meta.replace(Some(meta));
        if let Some(listen) = &config.controller_listen {
            let quorum = MetadataQuorum::start(QuorumConfig {
                node_id: node_id as u64,
                voters: config.voters.clone(),
                listen: listen.clone(),
                dir: self.broker.data_dir.join(CLUSTER_METADATA_DIR),
                controller: config.controller,
            })
            .await
            .map_err(|e| format!("cannot start the controller quorum: {e}"))?;
            tracing::info!(node = node_id, %listen, voters = ?config.voters, "controller voter started");
            self.cluster.quorum.replace(Some(quorum));
        }
        // Checked at startup (tools/src/serve.rs): the inter-broker protocol is a listener's.
        let inter_broker_listener = self
            .broker
            .listeners
            .iter()
            .find(|listener| listener.protocol == config.inter_broker.protocol)
            .ok_or_else(|| format!("no {} listener for the other brokers", config.inter_broker.protocol.name()))?;
        let link = BrokerLink::start(BrokerLinkConfig {
            registration: BrokerRegistration {
                broker: node_id,
                incarnation: uuid::Uuid::new_v4(),
                host: inter_broker_listener.advertised_host.clone(),
                port: inter_broker_listener.advertised_port,
                rack: None,
                listeners: self
                    .broker
                    .listeners
                    .iter()
                    .map(|l| sluice_replication::metadata::AdvertisedListener {
                        protocol: l.protocol.name().to_string(),
                        host: l.advertised_host.clone(),
                        port: l.advertised_port,
                    })
                    .collect(),
                cluster_id,
                voters: config.voters.clone(),
            },
            controllers: config.voters.values().cloned().collect(),
            heartbeat_interval: Duration::from_millis(config.broker_heartbeat_interval_ms),
            request_timeout: Duration::from_secs(2),
        });
        self.cluster.link.replace(Some(link.clone()));
        glommio::spawn_local(self.clone().follow_images(link.clone())).detach();
        glommio::spawn_local(async move {
            // A broker the cluster refuses for good must not linger half up.
            while !stopping.stop.load(Ordering::Relaxed) {
                if let Some(why) = link.refusal() {
                    tracing::error!(%why, "stopping: refused by the cluster");
                    let _ = stopping.refusal.set(why);
                    stopping.stop.store(true, Ordering::Relaxed);
                }
                glommio::timer::sleep(Duration::from_millis(200)).await;
            }
        })
        .detach();
        Ok(())
    }

    /// Records the cluster's id in `meta.properties` the first time it is seen.
    async fn remember_cluster_id(&self, image: &MetadataImage) {
        let Some(cluster_id) = &image.cluster_id else { return };
        let meta = {
            let mut meta = self.cluster.meta.borrow_mut();
            match meta.as_mut() {
                Some(meta) if meta.cluster_id.is_none() => {
                    meta.cluster_id = Some(cluster_id.clone());
                    meta.clone()
                }
                _ => return,
            }
        };
        if let Err(error) = meta.write(&self.broker.data_dir).await {
            tracing::error!(%error, "cannot record the cluster id");
        }
    }

    async fn follow_images(self: Rc<Self>, link: Rc<BrokerLink>) {
        let mut images = link.watch();
        loop {
            let image = images.borrow_and_update().clone();
            self.publish_image(&link, image).await;
            if images.changed().await.is_err() {
                return;
            }
        }
    }

    async fn publish_image(self: &Rc<Self>, link: &BrokerLink, image: Arc<MetadataImage>) {
        self.remember_cluster_id(&image).await;
        let me = self.broker.node_id;
        if !self.cluster.serving.get() {
            let registered = image.brokers.get(&me);
            let current = registered.is_some_and(|b| Some(b.broker_epoch) == link.broker_epoch() && !b.fenced);
            if current {
                tracing::info!(node = me, "unfenced under this process's registration: taking up replicas");
                self.cluster.serving.set(true);
            }
        }
        let controller_id = self.controller_id();
        let previous = self.metadata();
        let serving = self.cluster.serving.get();
        let metadata = metadata_from_image(image, self.shards, serving, controller_id, Some(&previous));
        let _serial = self.control_lock.acquire_permit(1).await.expect("never closed");
        if metadata.version < self.metadata().version {
            return;
        }
        self.broadcast_metadata(Arc::new(metadata)).await;
    }

    /// The active controller's id as the quorum or the link knows it, -1 if unknown.
    fn controller_id(&self) -> i32 {
        if let Some(quorum) = self.cluster.quorum.borrow().as_ref() {
            if let Some(leader) = quorum.status().leader {
                return leader as i32;
            }
        }
        -1
    }

    /// Shard 0, stopping: ends the heartbeats (a heartbeat would unfence the broker
    /// again), asks the controller to move this broker's leaderships, waits (a bounded
    /// time) until the metadata shows none left, then stops the quorum voter.
    pub(crate) async fn controlled_shutdown(self: &Rc<Self>) {
        let handing_over =
            sluice_replication::quorum::runtime::Timeout::new(self.hand_over(), CONTROLLED_SHUTDOWN_WAIT);
        if handing_over.await.is_err() {
            tracing::warn!("controlled shutdown timed out (no controller quorum?): stopping anyway");
        }
        let quorum = self.cluster.quorum.borrow().clone();
        if let Some(quorum) = quorum {
            quorum.shutdown().await;
        }
    }

    async fn hand_over(self: &Rc<Self>) {
        let link = self.cluster.link.borrow().clone();
        if let Some(link) = link {
            link.stop();
            let me = self.broker.node_id;
            match link.broker_epoch() {
                Some(broker_epoch) => {
                    let request = BrokerRequest::ControlledShutdown { broker: me, broker_epoch };
                    match self.call_controller(request).await {
                        Ok(BrokerResponse::Done { applied_records }) => {
                            let moved = self.wait_for_metadata_version(applied_records, CONTROLLED_SHUTDOWN_WAIT).await;
                            let leads =
                                self.metadata().cluster.as_ref().map_or(0, |view| {
                                    view.image.partitions.values().filter(|p| p.leader == me).count()
                                });
                            tracing::info!(moved = moved.is_ok(), still_leading = leads, "controlled shutdown");
                        }
                        Ok(other) => tracing::warn!(answer = ?other, "controlled shutdown refused"),
                        Err(error) => tracing::warn!(error = %error.message, "controlled shutdown not possible"),
                    }
                }
                None => tracing::info!("stopping before registration: nothing to hand over"),
            }
        }
    }

    /// The cluster's health as this broker's metadata shows it (`None` on a single node).
    pub fn cluster_figures(&self) -> Option<ClusterFigures> {
        let metadata = self.metadata();
        let view = metadata.cluster.as_ref()?;
        let me = self.broker.node_id;
        let partitions = view.image.partitions.values();
        Some(ClusterFigures {
            live_brokers: view.live_brokers(SecurityProtocol::Plaintext).len(),
            partitions: view.image.partitions.len(),
            under_replicated: partitions.clone().filter(|p| p.isr.len() < p.target_replicas().len()).count(),
            offline: partitions.clone().filter(|p| !p.has_leader()).count(),
            reassigning: partitions.clone().filter(|p| p.is_reassigning()).count(),
            leading: partitions.clone().filter(|p| p.leader == me).count(),
            active_controller: self.controller_id() == me,
            metadata_version: view.image.applied_records,
        })
    }

    /// The cluster as this broker sees it, for the admin socket's `status` (null on a
    /// single node): the quorum (on a voter), this broker's registration, and partition
    /// health counts.
    pub fn cluster_status(&self) -> serde_json::Value {
        let metadata = self.metadata();
        let (Some(view), Some(figures)) = (&metadata.cluster, self.cluster_figures()) else {
            return serde_json::Value::Null;
        };
        let me = self.broker.node_id;
        let quorum = self.cluster.quorum.borrow().as_ref().map(|q| q.status());
        serde_json::json!({
            "node_id": me,
            "cluster_id": view.image.cluster_id,
            "serving": view.serving,
            "broker_epoch": view.image.brokers.get(&me).map(|b| b.broker_epoch),
            "fenced": view.image.brokers.get(&me).is_none_or(|b| b.fenced),
            "controller": quorum,
            "live_brokers": view.live_brokers(SecurityProtocol::Plaintext).iter().map(|b| b.id).collect::<Vec<_>>(),
            "metadata_version": figures.metadata_version,
            "partitions": figures.partitions,
            "under_replicated_partitions": figures.under_replicated,
            "offline_partitions": figures.offline,
            "reassigning_partitions": figures.reassigning,
            "leading_partitions": figures.leading,
        })
    }

    /// Sends a request to the active controller (through shard 0's link).
    pub(crate) async fn call_controller(self: &Rc<Self>, request: BrokerRequest) -> KafkaResult<BrokerResponse> {
        if self.id != 0 {
            let (reply, answer) = sluice_engine::shard_reply::channel();
            self.send_to_shard(0, crate::routing::ShardMessage::Controller { request, reply }).await?;
            return answer.await.unwrap_or_else(|_| {
                Err(KafkaError::new(ResponseError::RequestTimedOut, "controller request dropped"))
            });
        }
        let link = self.cluster.link.borrow().clone();
        let Some(link) = link else {
            return Err(KafkaError::new(ResponseError::NotController, "this broker has no controller link"));
        };
        link.call(request).await.map_err(|e| KafkaError::new(ResponseError::NotController, e.to_string()))
    }

    /// Sends the items that passed this broker's own checks to the controller in one
    /// request (made by `request`) and returns every item's result in order: the
    /// controller's for those sent, the check's for the rest (`Ok(None)`: nothing to ask,
    /// done).
    pub(crate) async fn forward_each<T>(
        self: &Rc<Self>,
        checked: Vec<KafkaResult<Option<T>>>,
        request: impl FnOnce(Vec<T>) -> BrokerRequest,
    ) -> Vec<KafkaResult<()>> {
        let mut sent = Vec::new();
        // Each item: refused here, done here (false) or sent (true).
        let outcomes: Vec<KafkaResult<bool>> = checked
            .into_iter()
            .map(|checked| {
                checked.map(|item| {
                    let sending = item.is_some();
                    sent.extend(item);
                    sending
                })
            })
            .collect();
        let mut decided = if sent.is_empty() {
            Vec::new()
        } else {
            let items = sent.len();
            self.call_controller_each(request(sent), items).await
        }
        .into_iter();
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(true) => decided.next().expect("one result per item sent"),
                Ok(false) => Ok(()),
                Err(error) => Err(error),
            })
            .collect()
    }

    /// Sends a request of several items (partitions) to the controller and waits until
    /// this broker's metadata holds the outcome: each item's result, in request order.
    async fn call_controller_each(self: &Rc<Self>, request: BrokerRequest, items: usize) -> Vec<KafkaResult<()>> {
        let answer = match self.call_controller(request).await {
            Ok(BrokerResponse::Results { applied_records, results }) if results.len() == items => {
                self.wait_for_metadata_version(applied_records, METADATA_CHANGE_WAIT).await.map(|()| results)
            }
            Ok(other) => Err(controller_error(other)),
            Err(error) => Err(error),
        };
        match answer {
            Ok(results) => results
                .into_iter()
                .map(|result| match result {
                    None => Ok(()),
                    Some((code, message)) => Err(KafkaError::new(
                        ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
                        message,
                    )),
                })
                .collect(),
            Err(error) => vec![Err(error); items],
        }
    }

    /// Waits until this shard's metadata reached `version` (a change the controller
    /// made), at most `limit`.
    pub(crate) async fn wait_for_metadata_version(&self, version: u64, limit: Duration) -> KafkaResult<()> {
        let start = Instant::now();
        while self.metadata().version < version {
            if start.elapsed() > limit {
                return Err(KafkaError::new(
                    ResponseError::RequestTimedOut,
                    format!("the metadata change (version {version}) has not reached this broker yet"),
                ));
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// A controller refusal as a Kafka error.
pub(crate) fn controller_error(response: BrokerResponse) -> KafkaError {
    match response {
        BrokerResponse::Error { code, message } => {
            KafkaError::new(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError), message)
        }
        BrokerResponse::NotController { .. } => KafkaError::new(ResponseError::NotController, "no active controller"),
        other => KafkaError::new(ResponseError::UnknownServerError, format!("unexpected controller answer {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_replication::metadata::{AclBindingData, MetadataRecord, ScramCredentialData};
    use sluice_security::sasl::{CredentialStore, ScramMechanism};

    fn applied(image: &MetadataImage, record: MetadataRecord) -> Arc<MetadataImage> {
        let mut next = image.clone();
        assert!(next.apply(&record));
        Arc::new(next)
    }

    /// Through JSON, as a broker gets it from the controller: no `Arc` shared with before.
    fn fetched(image: &MetadataImage) -> Arc<MetadataImage> {
        Arc::new(serde_json::from_slice(&serde_json::to_vec(image).unwrap()).unwrap())
    }

    #[test]
    fn images_carry_credentials_and_acls_and_keep_the_security_state_until_they_change() {
        let credential = MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha512.code(),
            credential: ScramCredentialData {
                salt: vec![1; 32],
                stored_key: vec![2; 64],
                server_key: vec![3; 64],
                iterations: 4096,
            },
        };
        let read = AclBindingData {
            resource_type: 2,
            resource_name: "orders".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        // A binding of a resource type this version does not know is skipped, not fatal.
        let unknown = AclBindingData { resource_type: 42, ..read.clone() };
        let first = applied(&MetadataImage::default(), credential);
        let first = applied(&first, MetadataRecord::AccessControlEntry(read));
        let first = applied(&first, MetadataRecord::AccessControlEntry(unknown));
        let metadata = metadata_from_image(first.clone(), 2, true, 1, None);
        let alice = metadata.security.scram_credential("alice", ScramMechanism::Sha512);
        assert_eq!(alice.map(|c| c.iterations), Some(4096));
        assert_eq!(metadata.security.acls().len(), 1);
        assert_eq!(metadata.security.acls().first().map(|b| b.pattern.name.as_str()), Some("orders"));

        // A change elsewhere, fetched anew: the same state, so no shard rebuilds its authorizer.
        let second = fetched(&applied(&first, MetadataRecord::InitializeCluster { cluster_id: "c".into() }));
        let next = metadata_from_image(second.clone(), 2, true, 1, Some(&metadata));
        assert!(Arc::ptr_eq(&next.security, &metadata.security));
        assert_eq!(next.cluster_id, "c");

        let third = applied(&second, MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism: 2 });
        let last = metadata_from_image(third, 2, true, 1, Some(&next));
        assert!(!Arc::ptr_eq(&last.security, &next.security));
        assert!(last.security.scram_credential("alice", ScramMechanism::Sha512).is_none());
        assert_eq!(last.security.acls().len(), 1);
    }
}
