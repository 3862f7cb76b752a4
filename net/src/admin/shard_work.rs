//! What the admin asks of every shard, and how shard 0 asks: one `ShardMessage::Admin` per
//! other shard over the mesh (shard 0's own part runs in place), answers gathered in shard
//! order. Each shard only reads and changes its own logs and counters.

use crate::context::ShardContext;
use crate::routing::ShardMessage;
use sluice_engine::latency::Latencies;
use sluice_engine::shard::parse_partition_dir_name;
use sluice_engine::shard_reply;
use sluice_engine::FlushPolicy;
use std::rc::Rc;

/// A question or an order for one shard.
#[derive(Debug, Clone)]
pub enum ShardQuery {
    /// Report counters, partitions and histograms.
    Report,
    /// Flush (fsync) every partition.
    Flush,
    /// Roll the active segment of matching partitions (all when both are `None`).
    Roll {
        /// Only this topic's partitions.
        topic: Option<String>,
        /// Only this partition of `topic`.
        partition: Option<i32>,
    },
    /// Use this default flush policy for logs whose topic sets none.
    SetDefaultFlush(FlushPolicy),
}

/// A shard's answer to a [`ShardQuery`], same variant order.
pub enum ShardAnswer {
    /// To [`ShardQuery::Report`].
    Report(Box<ShardReport>),
    /// To [`ShardQuery::Flush`] and [`ShardQuery::Roll`].
    Partitions(PartitionOutcomes),
    /// To [`ShardQuery::SetDefaultFlush`].
    Applied,
}

/// One partition's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionReport {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Owning shard.
    pub shard: usize,
    /// Bytes over all segments.
    pub size_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// First offset held.
    pub log_start_offset: i64,
    /// Offset the next append gets.
    pub log_end_offset: i64,
    /// What consumers may read up to.
    pub high_watermark: i64,
    /// What read_committed consumers may read up to (the first open transaction's start).
    pub last_stable_offset: i64,
    /// Transactions open in the partition.
    pub open_transactions: usize,
    /// How long the oldest open transaction has been open, ms (from its first batch's
    /// timestamp); `None` when none is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_open_transaction_age_ms: Option<i64>,
    /// In a cluster, the replica's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaReport>,
}

/// A replicated partition as this broker's replica of it sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaReport {
    /// Whether this broker leads it.
    pub leading: bool,
    /// Its leader (-1: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// Replicas (a moving partition counts its adding and removing ones too).
    pub replicas: usize,
    /// In-sync replicas.
    pub in_sync_replicas: usize,
    /// Leader only: the most records a follower is behind the log end.
    pub max_follower_lag: Option<i64>,
}

/// Everything one shard reports.
pub struct ShardReport {
    /// The shard.
    pub shard: usize,
    /// Kafka connections open now.
    pub connections_open: u64,
    /// Kafka connections accepted since start.
    pub connections_accepted: u64,
    /// Requests answered since start.
    pub requests: u64,
    /// Time the executor ran tasks since start, in microseconds.
    pub busy_us: u64,
    /// Partition calls sent to other shards.
    pub calls_routed_out: u64,
    /// Partition calls run for other shards.
    pub calls_served_for_others: u64,
    /// Its partitions, by topic and partition.
    pub partitions: Vec<PartitionReport>,
    /// Per-API request latencies (counts included), by API name.
    pub requests_by_api: Vec<(String, Latencies)>,
    /// Its fsync latencies (count included).
    pub fsync_latencies: Latencies,
    /// Shard 0 of a cluster member: the cluster as the metadata shows it.
    pub cluster: Option<crate::cluster::ClusterFigures>,
}

/// What a flush or roll did on one shard.
#[derive(Debug, Default)]
pub struct PartitionOutcomes {
    /// Partitions flushed or rolled.
    pub done: usize,
    /// Partitions a roll left alone because their active segment was empty.
    pub skipped_empty: usize,
    /// `(partition directory, error)` of each failure.
    pub failed: Vec<(String, String)>,
}

impl PartitionOutcomes {
    /// Adds another shard's outcomes.
    pub fn add(&mut self, other: PartitionOutcomes) {
        self.done += other.done;
        self.skipped_empty += other.skipped_empty;
        self.failed.extend(other.failed);
    }
}

impl ShardContext {
    /// Puts `query` to every shard (this one in place) and returns the answers in shard
    /// order. A shard that is shutting down has no answer.
    pub(crate) async fn ask_every_shard(self: &Rc<Self>, query: ShardQuery) -> Vec<ShardAnswer> {
        let asks = (0..self.shards).map(|shard| {
            let query = query.clone();
            async move {
                if shard == self.id {
                    return Some(self.answer_admin(query).await);
                }
                let (reply, answer) = shard_reply::channel();
                self.send_to_shard(shard, ShardMessage::Admin { query, reply }).await.ok()?;
                answer.await.ok()
            }
        });
        futures::future::join_all(asks).await.into_iter().flatten().collect()
    }

    /// Does what the admin asked of this shard.
    pub(crate) async fn answer_admin(self: &Rc<Self>, query: ShardQuery) -> ShardAnswer {
        match query {
            ShardQuery::Report => ShardAnswer::Report(Box::new(self.report())),
            ShardQuery::Flush => ShardAnswer::Partitions(self.flush_partitions().await),
            ShardQuery::Roll { topic, partition } => {
                ShardAnswer::Partitions(self.roll_partitions(topic.as_deref(), partition).await)
            }
            ShardQuery::SetDefaultFlush(policy) => {
                self.flush_override.set(Some(policy));
                // Re-applying the current snapshot gives every log its topic's configs
                // over the new defaults (a topic's own settings still win).
                self.apply_metadata(self.metadata()).await;
                ShardAnswer::Applied
            }
        }
    }

    fn report(&self) -> ShardReport {
        let stats = &self.stats;
        let partitions = self
            .engine
            .partitions()
            .iter()
            .filter_map(|log| {
                let (topic, partition) = parse_partition_dir_name(log.name())?;
                Some(PartitionReport {
                    topic: topic.to_string(),
                    partition,
                    shard: self.id,
                    size_bytes: log.size_bytes(),
                    segments: log.segment_count(),
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    high_watermark: log.high_watermark(),
                    last_stable_offset: log.last_stable_offset(),
                    open_transactions: log.open_transactions().len(),
                    oldest_open_transaction_age_ms: log
                        .oldest_open_transaction_since_ms()
                        .map(|since| (crate::coordination::wall_clock_ms() - since).max(0)),
                    replica: self.replica_named(log.name()).map(|handle| {
                        let replica = handle.replica.borrow();
                        let state = replica.state();
                        ReplicaReport {
                            leading: replica.is_leader(),
                            leader: state.leader,
                            leader_epoch: state.leader_epoch,
                            replicas: state.replicas.len(),
                            in_sync_replicas: state.isr.len(),
                            max_follower_lag: replica.max_follower_lag(log.log_end_offset()),
                        }
                    }),
                })
            })
            .collect();
        ShardReport {
            shard: self.id,
            connections_open: stats.connections_open.get(),
            connections_accepted: stats.connections.get(),
            requests: stats.requests.get(),
            busy_us: u64::try_from(stats.busy_time().as_micros()).unwrap_or(u64::MAX),
            calls_routed_out: stats.calls_routed_out.get(),
            calls_served_for_others: stats.calls_served_for_others.get(),
            partitions,
            requests_by_api: self.requests.snapshot(),
            fsync_latencies: sluice_engine::sync_stats::shard_sync_latencies(),
            cluster: if self.id == 0 { self.cluster_figures() } else { None },
        }
    }

    async fn flush_partitions(&self) -> PartitionOutcomes {
        let logs = self.engine.partitions();
        let results = futures::future::join_all(logs.iter().map(|log| log.flush())).await;
        let mut outcomes = PartitionOutcomes::default();
        for (log, result) in logs.iter().zip(results) {
            match result {
                Ok(()) => outcomes.done += 1,
                Err(error) => outcomes.failed.push((log.name().to_string(), error.to_string())),
            }
        }
        outcomes
    }

    async fn roll_partitions(&self, topic: Option<&str>, partition: Option<i32>) -> PartitionOutcomes {
        let matches = |name: &str| match parse_partition_dir_name(name) {
            Some((t, p)) => topic.is_none_or(|topic| topic == t) && partition.is_none_or(|partition| partition == p),
            None => false,
        };
        let mut outcomes = PartitionOutcomes::default();
        for log in self.engine.partitions().into_iter().filter(|log| matches(log.name())) {
            let segments_before = log.segment_count();
            match log.roll().await {
                Ok(()) if log.segment_count() > segments_before => outcomes.done += 1,
                Ok(()) => outcomes.skipped_empty += 1,
                Err(error) => outcomes.failed.push((log.name().to_string(), error.to_string())),
            }
        }
        outcomes
    }
}
