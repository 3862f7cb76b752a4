//! The replicas a shard holds: each partition the shard owns and this broker is a replica
//! of gets a [`PartitionReplica`] (the protocol, in `sluice_replication`) over its engine
//! log. Metadata snapshots drive their roles; produce, fetch and the follower fetcher
//! ask them what to do.

use super::now_ms;
use crate::context::ShardContext;
use crate::error::KafkaError;
use crate::metadata::Metadata;
use kafka_protocol::ResponseError;
use sluice_engine::shard::partition_dir_name;
use sluice_engine::PartitionLog;
use sluice_replication::partition::{AckOutcome, LogView, PartitionReplica, ReplicaConfig, RoleChange};
use sluice_replication::{PartitionKey, ReplicationError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// An engine log as the replication protocol sees it.
pub struct EngineLog<'a>(pub &'a PartitionLog);

impl LogView for EngineLog<'_> {
    fn log_start(&self) -> i64 {
        self.0.log_start_offset()
    }
    fn log_end(&self) -> i64 {
        self.0.log_end_offset()
    }
    fn durable_end(&self) -> i64 {
        self.0.durable_end()
    }
    fn last_epoch(&self) -> Option<i32> {
        self.0.latest_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.0.end_offset_for_epoch(epoch)
    }
}

/// One partition's replica on this shard.
pub struct ReplicaHandle {
    /// The partition.
    pub key: PartitionKey,
    /// Its topic name and index.
    pub topic: String,
    /// Its index.
    pub partition: i32,
    /// Its log.
    pub log: Rc<PartitionLog>,
    /// The protocol state.
    pub replica: RefCell<PartitionReplica>,
    /// `min.insync.replicas` of the topic.
    pub min_insync_replicas: Cell<usize>,
}

impl ReplicaHandle {
    /// Publishes the replica's high watermark to the log (consumers read up to it).
    pub fn publish_high_watermark(&self) {
        self.log.set_replicated_high_watermark(self.replica.borrow().high_watermark());
    }

    /// Whether a produce may be appended now (leading; with acks=all, enough in-sync
    /// replicas): the leader epoch to stamp into its batches.
    pub fn admit_produce(&self, acks_all: bool) -> Result<i32, KafkaError> {
        let replica = self.replica.borrow();
        replica
            .check_produce(acks_all, self.min_insync_replicas.get())
            .map_err(|e| replication_error(e, &self.topic, self.partition))?;
        Ok(replica.leader_epoch())
    }

    /// Appends a batch as the leader (the broker's own writes: group coordination) and
    /// waits until the ISR has it, as acks=all does.
    pub async fn append_acks_all(&self, batch: bytes::Bytes, timeout: std::time::Duration) -> Result<(), KafkaError> {
        let leader_epoch = self.admit_produce(true)?;
        let info = self.log.append(batch, leader_epoch).await?;
        self.on_durable();
        self.wait_for_in_sync_replicas(leader_epoch, info.last_offset + 1, timeout).await
    }

    /// Appends a transaction marker as the leader (a coordinator's WriteTxnMarkers) and
    /// waits until the ISR has it: a transaction's outcome must survive the leader's death.
    pub async fn append_marker_acks_all(
        &self,
        marker: sluice_engine::TxnMarker,
        timeout: std::time::Duration,
    ) -> Result<(), KafkaError> {
        let leader_epoch = self.admit_produce(true)?;
        let info = self.log.append_marker(marker, leader_epoch).await?;
        self.on_durable();
        self.wait_for_in_sync_replicas(leader_epoch, info.last_offset + 1, timeout).await
    }

    /// acks=all: waits until the high watermark passes `end` (every in-sync replica has
    /// the records, fsynced), or the leadership is lost, or `timeout` passes.
    pub async fn wait_for_in_sync_replicas(
        &self,
        leader_epoch: i32,
        end: i64,
        timeout: std::time::Duration,
    ) -> Result<(), KafkaError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let outcome = self.replica.borrow().ack_outcome(leader_epoch, end, self.min_insync_replicas.get());
            match outcome {
                AckOutcome::Done => return Ok(()),
                AckOutcome::Failed(error) => return Err(replication_error(error, &self.topic, self.partition)),
                AckOutcome::Pending => {}
            }
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if remaining.is_zero() {
                // Rare and worth an operator's look: which follower held the ISR back.
                tracing::warn!(partition = %self.log.name(), leader_epoch, end, replica = ?*self.replica.borrow(),
                    log_end = self.log.log_end_offset(), "acks=all timed out waiting for the in-sync replicas");
                return Err(KafkaError::new(
                    ResponseError::RequestTimedOut,
                    format!("{}-{}: the in-sync replicas did not confirm in time", self.topic, self.partition),
                ));
            }
            // Woken by a high watermark move or a role change; the bound re-checks anyway.
            let wait = remaining.min(std::time::Duration::from_millis(100));
            let _ = self.log.wait_for_data(end - 1, wait, sluice_engine::ReadLimit::HighWatermark).await;
        }
    }

    /// The local log's durable end moved: the leader's high watermark may follow.
    pub fn on_durable(&self) {
        let moved = self.replica.borrow_mut().on_durable(&EngineLog(&self.log));
        if moved.is_some() {
            self.publish_high_watermark();
        }
    }
}

/// A replication refusal as a Kafka error for one partition.
pub fn replication_error(error: ReplicationError, topic: &str, partition: i32) -> KafkaError {
    let code = ResponseError::try_from_code(error.code()).unwrap_or(ResponseError::UnknownServerError);
    KafkaError::new(code, format!("{topic}-{partition}: {error}"))
}

impl ShardContext {
    /// The replica of a partition on this shard, if this broker holds one.
    pub fn replica(&self, topic: &str, partition: i32) -> Option<Rc<ReplicaHandle>> {
        self.replica_named(&partition_dir_name(topic, partition))
    }

    /// The replica of a partition on this shard, by partition directory name.
    pub fn replica_named(&self, name: &str) -> Option<Rc<ReplicaHandle>> {
        self.cluster.replicas.borrow().get(name).cloned()
    }

    /// Replaces a follower's log with an empty one starting at `offset` (its log ends
    /// below the leader's log start) and makes a new replica over it; the old replica is
    /// retired (see [`PartitionReplica::remove`]).
    pub(crate) async fn restart_replica_at(
        self: &Rc<Self>,
        handle: &ReplicaHandle,
        offset: i64,
    ) -> Result<(), sluice_engine::EngineError> {
        let _partitions = self.partitions_lock.acquire_permit(1).await.expect("never closed");
        let name = handle.log.name().to_string();
        let current = self.cluster.replicas.borrow().get(&name).is_some_and(|h| Rc::ptr_eq(&h.log, &handle.log));
        if !current {
            return Ok(()); // replaced or removed meanwhile
        }
        self.cluster.replicas.borrow_mut().remove(&name);
        handle.replica.borrow_mut().remove();
        handle.log.wake_readers();
        let result = self.engine.restart_partition_at(&name, handle.log.config(), offset).await;
        // A new replica over the new log (or, if that failed, none until the next snapshot).
        self.sync_replicas(&self.metadata());
        result.map(|_| ())
    }

    /// The replica settings of this broker.
    pub(crate) fn replica_config(&self) -> ReplicaConfig {
        let lag = self.broker.cluster.as_ref().map_or(30_000, |c| c.replica_lag_time_max_ms);
        ReplicaConfig { replica_lag_time_max_ms: lag, isr_proposal_retry_ms: 2_000 }
    }

    /// Makes this shard's replicas match a snapshot (after its partitions were opened):
    /// new replicas, role changes, replicas no longer held dropped.
    pub(crate) fn sync_replicas(self: &Rc<Self>, metadata: &Metadata) {
        let Some(view) = &metadata.cluster else { return };
        if !view.serving {
            return;
        }
        let me = self.broker.node_id;
        let mut kept = std::collections::BTreeSet::new();
        for (topic, meta) in &metadata.topics {
            let min_insync = meta
                .configs
                .get("min.insync.replicas")
                .and_then(|v| v.parse().ok())
                .unwrap_or(self.broker.min_insync_replicas);
            for (partition, _) in meta.shards.iter().enumerate().filter(|(_, owner)| **owner == self.id) {
                let partition = partition as i32;
                let Some((key, state)) = view.partition(topic, partition) else { continue };
                if !state.is_replica(me) {
                    continue;
                }
                let name = partition_dir_name(topic, partition);
                let Some(log) = self.engine.partition(&name) else { continue };
                kept.insert(name.clone());
                let existing = self.cluster.replicas.borrow().get(&name).cloned();
                let (handle, change) = match existing {
                    Some(handle) => {
                        let change = handle.replica.borrow_mut().apply(state, &EngineLog(&log), now_ms());
                        (handle, change)
                    }
                    None => {
                        // No high watermark checkpoint yet: start at 0, which is always
                        // safe (it only moves up as the ISR confirms).
                        let (replica, change) = PartitionReplica::new(me, key, state, 0, &EngineLog(&log), now_ms());
                        let handle = Rc::new(ReplicaHandle {
                            key,
                            topic: topic.clone(),
                            partition,
                            log: log.clone(),
                            replica: RefCell::new(replica),
                            min_insync_replicas: Cell::new(1),
                        });
                        self.cluster.replicas.borrow_mut().insert(name.clone(), handle.clone());
                        (handle, change)
                    }
                };
                handle.min_insync_replicas.set(min_insync);
                self.on_role_change(&handle, change);
            }
        }
        let removed: Vec<Rc<ReplicaHandle>> = {
            let mut replicas = self.cluster.replicas.borrow_mut();
            let gone: Vec<String> = replicas.keys().filter(|name| !kept.contains(*name)).cloned().collect();
            gone.iter().filter_map(|name| replicas.remove(name)).collect()
        };
        for handle in removed {
            tracing::info!(shard = self.id, partition = %handle.log.name(), "no longer a replica");
            handle.replica.borrow_mut().remove();
            self.on_role_change(&handle, RoleChange::Removed);
        }
    }

    fn on_role_change(self: &Rc<Self>, handle: &Rc<ReplicaHandle>, change: RoleChange) {
        match change {
            RoleChange::Unchanged => return,
            RoleChange::BecameLeader { leader_epoch, epoch_start_offset } => tracing::info!(
                shard = self.id, partition = %handle.log.name(), leader_epoch, epoch_start_offset, "leading"),
            RoleChange::BecameFollower { leader, leader_epoch } => {
                tracing::info!(shard = self.id, partition = %handle.log.name(), leader, leader_epoch, "following");
                if leader >= 0 {
                    self.ensure_fetcher(leader);
                }
            }
            RoleChange::StateChanged | RoleChange::Removed => {}
        }
        handle.publish_high_watermark();
        // Produces waiting for acks=all and long polls re-check the new role.
        handle.log.wake_readers();
        if handle.topic == crate::group::records::CONSUMER_OFFSETS_TOPIC {
            self.move_group_coordination(handle, change);
        } else if handle.topic == crate::txn::records::TRANSACTION_STATE_TOPIC {
            self.move_transaction_coordination(handle, change);
        }
    }

    /// A `__transaction_state` partition's leader coordinates its transactional ids: it
    /// loads them (and finishes their prepared transactions) when it becomes leader and
    /// forgets them when it stops.
    fn move_transaction_coordination(self: &Rc<Self>, handle: &ReplicaHandle, change: RoleChange) {
        let partition = handle.partition;
        match change {
            RoleChange::BecameLeader { .. } => {
                self.txns.unload(partition);
                self.txns.start_loading(partition);
                let context = self.clone();
                glommio::spawn_local(async move {
                    if let Err(error) = context.txns.load(&context, &[partition]).await {
                        tracing::error!(partition, error = %error.message, "cannot load transactions");
                    }
                })
                .detach();
            }
            RoleChange::BecameFollower { .. } | RoleChange::Removed => self.txns.unload(partition),
            RoleChange::StateChanged | RoleChange::Unchanged => {}
        }
    }

    /// A `__consumer_offsets` partition's leader coordinates its groups: it loads them
    /// when it becomes leader and forgets them when it stops.
    fn move_group_coordination(self: &Rc<Self>, handle: &ReplicaHandle, change: RoleChange) {
        let partition = handle.partition;
        match change {
            RoleChange::BecameLeader { .. } => {
                self.groups.unload(partition);
                self.groups.start_loading(partition);
                let context = self.clone();
                glommio::spawn_local(async move {
                    if let Err(error) = context.groups.load(&context, &[partition]).await {
                        tracing::error!(partition, error = %error.message, "cannot load consumer groups");
                    }
                    context.groups.finish_loading(partition);
                })
                .detach();
            }
            RoleChange::BecameFollower { .. } | RoleChange::Removed => self.groups.unload(partition),
            RoleChange::StateChanged | RoleChange::Unchanged => {}
        }
    }

    /// The periodic replica duties: leaders' high watermarks follow their fsyncs (under
    /// flush policies that fsync in the background) and their ISR changes go to the
    /// controller.
    pub(crate) async fn tick_replicas(self: &Rc<Self>) {
        let handles: Vec<Rc<ReplicaHandle>> = self.cluster.replicas.borrow().values().cloned().collect();
        let broker_epoch = self.broker_epoch();
        let config = self.replica_config();
        for handle in handles {
            handle.on_durable();
            let Some(broker_epoch) = broker_epoch else { continue };
            let change =
                handle.replica.borrow_mut().isr_change(broker_epoch, &EngineLog(&handle.log), &config, now_ms());
            if let Some(change) = change {
                tracing::info!(partition = %handle.log.name(), isr = ?change.new_isr, "proposing an ISR change");
                let context = self.clone();
                glommio::spawn_local(async move {
                    let request = sluice_replication::quorum::wire::BrokerRequest::AlterPartition(change);
                    if let Err(error) = context.call_controller(request).await {
                        tracing::info!(error = %error.message, "ISR change not sent; retried later");
                    }
                })
                .detach();
            }
        }
    }

    /// This process's broker epoch, as the last metadata shows it.
    fn broker_epoch(&self) -> Option<i64> {
        let metadata = self.metadata();
        let view = metadata.cluster.as_ref()?;
        if !view.serving {
            return None;
        }
        view.image.brokers.get(&self.broker.node_id).map(|b| b.broker_epoch)
    }
}
