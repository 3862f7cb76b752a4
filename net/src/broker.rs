//! Starting and stopping the broker: one shard per core, each with its share of the
//! partitions, a listener on the shared port (SO_REUSEPORT spreads connections) and a
//! link to every other shard.

use crate::admin::AdminOptions;
use crate::context::{BrokerConfig, ShardContext};
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::metadata::Metadata;
use crate::routing::MESH_CHANNEL_CAPACITY;
use crate::server::accept_loop;
use crate::txn::records::TRANSACTION_STATE_TOPIC;
use glommio::net::TcpListener;
use sluice_engine::mesh::{full_mesh, MeshEnds};
use sluice_engine::shard::{parse_partition_dir_name, remove_deleted_partitions, run_shards, RuntimeConfig};
use sluice_engine::EngineError;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often shards start interval fsyncs that are due, while some log has one pending;
/// otherwise a shard wakes every `GROUP_TICK` (or at the first interval-policy append).
const TICK: Duration = Duration::from_millis(10);
/// How often group timers (sessions, join phases) are checked: each check walks the
/// shard's groups, so not every tick.
const GROUP_TICK: Duration = Duration::from_millis(100);
/// How often shards apply retention.
const RETENTION_INTERVAL: Duration = Duration::from_secs(1);
/// How often shards compact logs with `cleanup.policy=compact` (Kafka's
/// `log.cleaner.backoff.ms`); a log whose closed segments did not change is skipped cheaply.
const COMPACTION_INTERVAL: Duration = Duration::from_secs(15);
/// How long a stopping shard waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `<data-dir>/.clean-shutdown`: written and fsynced once every log closed cleanly,
/// removed (durably) at start. Its absence at start, with metadata present, means the last
/// run crashed.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".clean-shutdown";

/// How the previous run of this data directory ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousShutdown {
    /// A data directory no broker has run on.
    None,
    /// Every log was flushed and closed.
    Clean,
    /// A crash or kill: recovery checks and cuts the active segments.
    Unclean,
}

/// Reads and removes the clean-shutdown marker, so that a crash from now on is seen as
/// unclean at the next start.
fn take_clean_shutdown_marker(data_dir: &Path) -> Result<PreviousShutdown, String> {
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => {
            sync_directory(data_dir)?;
            Ok(PreviousShutdown::Clean)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(if Metadata::path(data_dir).exists() { PreviousShutdown::Unclean } else { PreviousShutdown::None })
        }
        Err(e) => Err(format!("cannot remove {}: {e}", marker.display())),
    }
}

fn write_clean_shutdown_marker(data_dir: &Path) -> Result<(), String> {
    let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
    let unix_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&marker)?;
        std::io::Write::write_all(&mut file, format!("clean shutdown at {unix_ms} ms since the epoch\n").as_bytes())?;
        file.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    sync_directory(data_dir)
}

fn sync_directory(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot fsync {}: {e}", dir.display()))
}

/// Everything `run` needs.
pub struct BrokerOptions {
    /// Broker settings.
    pub broker: BrokerConfig,
    /// Shard executors.
    pub runtime: RuntimeConfig,
    /// Set (by a signal handler or the admin `shutdown` command) to stop: shards stop
    /// accepting, finish the requests in progress, flush and close their logs.
    pub stop: Arc<AtomicBool>,
    /// The admin socket (shard 0).
    pub admin: AdminOptions,
    /// The HTTP endpoints (metrics, schema registry), on their own thread.
    pub http: crate::http::HttpOptions,
}

/// Loads the metadata and adds partitions found on disk that it does not list (data from
/// before the metadata existed), placed like new ones.
fn load_metadata(data_dir: &Path, shards: usize) -> Result<Metadata, String> {
    let mut metadata = Metadata::load(data_dir)?;
    metadata.fit_to_shards(shards);
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(data_dir).map_err(|e| format!("cannot list {}: {e}", data_dir.display()))?.flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((topic, partition)) = parse_partition_dir_name(&name) {
            if !metadata.topics.contains_key(topic) {
                let count = found.entry(topic.to_string()).or_default();
                *count = (*count).max(partition as usize + 1);
            }
        }
    }
    if !found.is_empty() {
        for (topic, count) in found {
            tracing::info!(topic, partitions = count, "adopting partitions found on disk");
            let shards = metadata.place(count, shards);
            metadata.topics.insert(
                topic,
                crate::metadata::TopicMeta { id: uuid::Uuid::new_v4(), shards, configs: Default::default() },
            );
        }
        metadata.version += 1;
    }
    metadata.store(data_dir).map_err(|e| format!("cannot store metadata: {e}"))?;
    Ok(metadata)
}

/// Runs the broker until `options.stop` is set.
pub fn run(options: BrokerOptions) -> Result<(), String> {
    let BrokerOptions { broker, runtime, stop, admin, http } = options;
    if broker.listeners.iter().any(|l| l.protocol.uses_tls()) && broker.security.tls.is_none() {
        return Err("an SSL or SASL_SSL listener needs --tls-cert and --tls-key".into());
    }
    if broker.listeners.iter().any(|l| l.protocol.uses_sasl()) && broker.security.sasl_mechanisms.is_empty() {
        return Err("a SASL listener needs at least one of --sasl-mechanisms".into());
    }
    let listen: Vec<String> = broker.listeners.iter().map(|l| format!("{}://{}", l.protocol.name(), l.bind)).collect();
    let listen = listen.join(",");
    // Why the broker stopped by itself (the cluster refused it), if it did: then `run`
    // fails, so the process exits with an error after its clean shutdown.
    let refusal: Arc<std::sync::OnceLock<String>> = Arc::default();
    let started = Instant::now();
    crate::alloc::keep_large_blocks_in_the_heap();
    let data_dir = broker.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let leftovers = remove_deleted_partitions(&data_dir).map_err(|e| e.to_string())?;
    if leftovers > 0 {
        tracing::info!(directories = leftovers, "removed partitions whose deletion a crash interrupted");
    }
    let previous_shutdown = take_clean_shutdown_marker(&data_dir)?;
    tracing::info!(?previous_shutdown, "data directory");
    let shards = runtime.shards;
    let metadata = match &broker.cluster {
        // The controller's images replace this empty start as they come.
        Some(_) => Arc::new(crate::cluster::metadata_from_image(Default::default(), shards, false, -1, None)),
        None => Arc::new(load_metadata(&data_dir, shards)?),
    };
    tracing::info!(data_dir = %data_dir.display(), shards, topics = metadata.topics.len(), %listen, "starting");
    let broker = Arc::new(broker);
    // Each shard takes its own ends: the meshes (messages, and the doorbells answers ring
    // on: `sluice_engine::shard_reply`) are made here, once, and never cloned.
    let ends: Vec<Option<ShardEnds>> = full_mesh(shards, MESH_CHANNEL_CAPACITY)
        .into_iter()
        .zip(full_mesh(shards, MESH_CHANNEL_CAPACITY))
        .map(|(messages, doorbells)| Some(ShardEnds { messages, doorbells }))
        .collect();
    let ends = Arc::new(Mutex::new(ends));
    // Shard 0 publishes the credentials it applies; HTTP basic auth reads them.
    let published_security = crate::http::auth::PublishedSecurity::default();
    let (http, http_ends) = match crate::http::start(&http, published_security.clone())? {
        Some((running, ends)) => (Some(running), Some(ends)),
        None => (None, None),
    };
    let http_ends = Arc::new(Mutex::new(http_ends));
    let shards_refusal = refusal.clone();
    let stats = run_shards(&runtime, &data_dir, move |shard_id| {
        let taken = ends.lock().expect("no shard panics holding the mesh")[shard_id].take();
        let mesh = taken.expect("each shard takes its mesh ends once");
        let (broker, metadata, stop) = (broker.clone(), metadata.clone(), stop.clone());
        let refusal = shards_refusal.clone();
        let admin = (shard_id == 0).then(|| ShardZero {
            admin: admin.clone(),
            started,
            http: http_ends.lock().expect("no shard panics holding the HTTP ends").take(),
            published_security: published_security.clone(),
        });
        async move {
            let stopping = Stopping { stop: stop.clone(), refusal };
            let result = run_shard(shard_id, shards, broker, metadata, mesh, stopping, admin).await;
            if result.is_err() {
                // One shard failing takes the broker down rather than leaving it half up.
                stop.store(true, Ordering::Relaxed);
            }
            result
        }
    })
    .map_err(|e| e.to_string());
    if let Some(http) = http {
        http.stop();
    }
    let stats = stats?;
    let routed: u64 = stats.iter().map(|s| s.calls_routed_out).sum();
    write_clean_shutdown_marker(&data_dir)?;
    tracing::info!(partition_calls_routed_between_shards = routed, "clean shutdown");
    match refusal.get() {
        Some(why) => Err(format!("refused by the cluster: {why}")),
        None => Ok(()),
    }
}

/// What stops the broker: the flag every shard watches, and where a shard that stops it
/// because the cluster refused this broker says why.
#[derive(Clone)]
pub(crate) struct Stopping {
    /// Set to stop.
    pub(crate) stop: Arc<AtomicBool>,
    /// Why the cluster refused this broker, if it did.
    pub(crate) refusal: Arc<std::sync::OnceLock<String>>,
}

/// What only shard 0 runs: the admin socket, and the shard side of the HTTP endpoints.
struct ShardZero {
    admin: AdminOptions,
    started: Instant,
    http: Option<crate::http::ShardEnds>,
    /// Where it publishes the security state of each snapshot it applies.
    published_security: crate::http::auth::PublishedSecurity,
}

/// One shard's ends of the two shard meshes.
struct ShardEnds {
    messages: MeshEnds<crate::routing::ShardMessage>,
    doorbells: MeshEnds<u64>,
}

/// What one shard did over its life, reported at shutdown.
#[derive(Debug, Clone, Copy)]
pub struct ShardSummary {
    /// Partition calls sent to other shards.
    pub calls_routed_out: u64,
}

#[allow(clippy::too_many_arguments)] // the pieces of BrokerOptions one shard needs
async fn run_shard(
    shard_id: usize,
    shards: usize,
    broker: Arc<BrokerConfig>,
    metadata: Arc<Metadata>,
    mesh: ShardEnds,
    stopping: Stopping,
    zero: Option<ShardZero>,
) -> Result<ShardSummary, EngineError> {
    let stop = stopping.stop.clone();
    let ((senders, receivers), (ring, rung)) =
        futures::future::join(mesh.messages.connect(), mesh.doorbells.connect()).await;
    sluice_engine::shard_reply::install(ring, rung);
    let context = ShardContext::new(shard_id, shards, broker, senders);
    if let Some(zero) = &zero {
        let _ = context.published_security.set(zero.published_security.clone());
    }
    context.apply_metadata(metadata.clone()).await;
    glommio::spawn_local(context.clone().serve_mesh(receivers)).detach();
    // This shard's partitions of an internal topic, whose coordinator state it replays.
    let owned = |topic: &str| -> Vec<i32> {
        metadata
            .topics
            .get(topic)
            .map(|t| (0..t.shards.len()).filter(|p| t.shards[*p] == shard_id).map(|p| p as i32).collect())
            .unwrap_or_default()
    };
    if let Err(error) = context.groups.load(&context, &owned(CONSUMER_OFFSETS_TOPIC)).await {
        return Err(EngineError::Config(format!("cannot load consumer groups: {}", error.message)));
    }
    if let Err(error) = context.txns.load(&context, &owned(TRANSACTION_STATE_TOPIC)).await {
        return Err(EngineError::Config(format!("cannot load transactions: {}", error.message)));
    }
    let mut accepting = Vec::new();
    for (index, listener) in context.broker.listeners.iter().enumerate() {
        let bound = TcpListener::bind(&listener.bind).map_err(|e| EngineError::io("listen on", &listener.bind, e))?;
        accepting.push(glommio::spawn_local(accept_loop(context.clone(), bound, index)));
    }
    tracing::info!(shard = shard_id, partitions = context.engine.partitions().len(), "shard ready");
    if shard_id == 0 {
        context.start_cluster(stopping.clone()).await.map_err(EngineError::Config)?;
    }
    let (admin, registry_store) = match zero {
        Some(ShardZero { admin, started, http, .. }) => {
            let (scrapes, store) = http.map_or((None, None), |ends| (ends.metrics, ends.store));
            let (scrapes, store) = (scrapes.map(|end| end.into_receiver()), store.map(|end| end.into_receiver()));
            let admin = crate::admin::start(context.clone(), admin, stop.clone(), started, scrapes)
                .map_err(EngineError::Config)?;
            let store = store.map(|store| glommio::spawn_local(crate::schema_store::serve(context.clone(), store)));
            (Some(admin), store)
        }
        None => (None, None),
    };
    let mut last_retention = Instant::now();
    let mut last_compaction = Instant::now();
    let mut last_group_tick = Instant::now();
    let compacting = Rc::new(Cell::new(false));
    while !stop.load(Ordering::Relaxed) {
        if context.engine.pending_flush_count() > 0 {
            glommio::timer::sleep(TICK).await;
        } else {
            // Nothing to fsync: sleep until an interval-policy append arrives or the next
            // slower duty, so an idle shard wakes ten times a second, not a hundred.
            let sleeping = Box::pin(glommio::timer::sleep(GROUP_TICK));
            let _ = futures::future::select(sleeping, Box::pin(context.engine.wait_for_pending_flushes())).await;
        }
        context.engine.flush_due().await;
        if last_group_tick.elapsed() >= GROUP_TICK {
            context.tick_replicas().await;
            context.groups.tick(&context).await;
            context.txns.tick(&context).await;
            last_group_tick = Instant::now();
        }
        if last_retention.elapsed() >= RETENTION_INTERVAL {
            context.engine.apply_retention().await;
            last_retention = Instant::now();
        }
        if last_compaction.elapsed() >= COMPACTION_INTERVAL && !compacting.get() {
            // In its own task: rewriting segments must not hold up the ticks above.
            let (context, compacting) = (context.clone(), compacting.clone());
            compacting.set(true);
            glommio::spawn_local(async move {
                // Each log reports its own pass (and failures) in the engine.
                context.engine.compact_all().await;
                compacting.set(false);
            })
            .detach();
            last_compaction = Instant::now();
        }
    }
    if shard_id == 0 {
        context.controlled_shutdown().await;
    }
    drop(accepting);
    drop(registry_store);
    if let Some(admin) = admin {
        admin.close();
    }
    while compacting.get() {
        // Let a pass finish rather than close logs under it.
        glommio::timer::sleep(TICK).await;
    }
    let draining = Instant::now();
    while context.stats.requests_in_flight.get() > 0 && draining.elapsed() < DRAIN_TIMEOUT {
        glommio::timer::sleep(TICK).await;
    }
    let stats = &context.stats;
    tracing::info!(
        shard = shard_id,
        connections = stats.connections.get(),
        requests = stats.requests.get(),
        calls_routed_out = stats.calls_routed_out.get(),
        calls_served_for_others = stats.calls_served_for_others.get(),
        unfinished_requests = stats.requests_in_flight.get(),
        "shard stopping: flushing logs"
    );
    context.engine.close_all().await?;
    // The other shards' doorbell loops end with this shard's ringing ends.
    sluice_engine::shard_reply::uninstall();
    Ok(ShardSummary { calls_routed_out: stats.calls_routed_out.get() })
}
