//! The group coordinator of one shard: the groups whose `__consumer_offsets` partition
//! this shard owns, their parked JoinGroup/SyncGroup requests and committed offsets.
//!
//! Every group request reaches the owner shard over the cross-core route, so a group is
//! only ever touched by one thread. Durable facts are records appended to the group's
//! `__consumer_offsets` partition before the client hears of them: a commit's offsets
//! before OffsetCommit is answered, a group's membership before the SyncGroup answers
//! that end a rebalance (and when the group empties). At start the shard replays its
//! partitions of the topic to rebuild offsets and groups.

use super::records::{
    decode_group, decode_key, decode_offset, encode_group, encode_key, encode_offset, CommittedOffset, OffsetsKey,
    StoredGroup, CONSUMER_OFFSETS_TOPIC,
};
use super::state::{
    Delivery, Group, GroupLimits, GroupState, JoinRequest, JoinResult, MemberDescription, Outcome, SyncResult,
};
use crate::context::ShardContext;
use crate::coordination::{replay, wall_clock_ms as now_ms};
use crate::error::{KafkaError, KafkaResult};
use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;
use sluice_engine::batch::ControlType;
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::fifo_lock::{FifoLock, Ticket};
use sluice_engine::shard::partition_dir_name;
use sluice_engine::source_order::{RequestOrigin, SourceOrder};
use sluice_engine::TxnMarker;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// A group and what waits on it.
struct GroupEntry {
    group: Group,
    /// `__consumer_offsets` partition holding this group.
    partition: i32,
    parked_joins: HashMap<String, oneshot::Sender<JoinResult>>,
    parked_syncs: HashMap<String, oneshot::Sender<SyncResult>>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id: they
    /// become `offsets` when the transaction's commit marker is written, or vanish.
    pending_txn_offsets: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
    /// The membership last written to disk (timestamp zeroed), to write only changes.
    persisted: Option<StoredGroup>,
    /// Commits update `offsets` in the order they were written, whichever fsync wakes
    /// its waiter first.
    commit_line: FifoLock,
}

impl GroupEntry {
    /// Nothing about the group is worth keeping in memory: no members, no member ids
    /// handed out, no offsets, nothing stored.
    fn is_forgettable(&self) -> bool {
        self.group.is_unused()
            && self.offsets.is_empty()
            && self.pending_txn_offsets.is_empty()
            && self.persisted.is_none()
    }

    fn new(group: Group, partition: i32) -> Self {
        GroupEntry {
            group,
            partition,
            parked_joins: HashMap::new(),
            parked_syncs: HashMap::new(),
            offsets: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            persisted: None,
            commit_line: FifoLock::new(),
        }
    }
}

/// One committed offset's answer in OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, or `None` if the group committed none.
    pub committed: Option<CommittedOffset>,
    /// An open transaction holds a newer offset for it (OffsetFetch's `require_stable`
    /// answers UNSTABLE_OFFSET_COMMIT then).
    pub pending_in_transaction: bool,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer"), empty for groups that only commit offsets.
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State (`Dead` for a group that does not exist).
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol.
    pub protocol_name: String,
    /// Members with their metadata and assignments.
    pub members: Vec<MemberDescription>,
}

/// Who sends a group request.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Member id (empty for consumers outside any membership).
    pub member_id: &'a str,
    /// A static member's `group.instance.id`.
    pub instance_id: Option<&'a str>,
    /// The generation the member is in (-1 outside any membership).
    pub generation_id: i32,
}

/// An answer now, or a parked request's channel.
enum Answer<T> {
    Ready(T),
    Parked(oneshot::Receiver<T>),
}

impl<T> Answer<T> {
    async fn get(self, group_id: &str) -> KafkaResult<T> {
        match self {
            Answer::Ready(answer) => Ok(answer),
            Answer::Parked(receiver) => {
                receiver.await.map_err(|_| internal_error(format!("group {group_id} dropped a parked request")))
            }
        }
    }
}

/// The groups of one shard.
pub struct GroupCoordinator {
    groups: RefCell<HashMap<String, GroupEntry>>,
    limits: GroupLimits,
    /// Group operations take effect one at a time, in ticket order (see
    /// `ShardContext::run_group_op`).
    line: FifoLock,
    /// The last request of each recent source that changed a group here (the ordering check).
    sources: RefCell<SourceOrder>,
    /// `__consumer_offsets` partitions being loaded (in a cluster, after becoming leader).
    loading: RefCell<std::collections::BTreeSet<i32>>,
}

fn internal_error(message: String) -> KafkaError {
    KafkaError::new(ResponseError::CoordinatorNotAvailable, message)
}

impl GroupCoordinator {
    /// No groups yet; [`GroupCoordinator::load`] fills it from disk.
    pub fn new(limits: GroupLimits) -> Self {
        GroupCoordinator {
            groups: RefCell::new(HashMap::new()),
            limits,
            line: FifoLock::new(),
            sources: RefCell::new(SourceOrder::default()),
            loading: RefCell::new(Default::default()),
        }
    }

    /// Marks a partition as being loaded: its groups answer COORDINATOR_LOAD_IN_PROGRESS.
    pub fn start_loading(&self, partition: i32) {
        self.loading.borrow_mut().insert(partition);
    }

    /// The partition's groups are loaded.
    pub fn finish_loading(&self, partition: i32) {
        self.loading.borrow_mut().remove(&partition);
    }

    /// Whether the partition's groups are still being loaded.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.loading.borrow().contains(&partition)
    }

    /// The next place in the coordinator's line of group operations.
    pub fn ticket(&self) -> Ticket {
        self.line.ticket()
    }

    /// Checks the ordering invariant for an operation about to take effect on a group.
    pub fn check_order(&self, group_id: &str, origin: RequestOrigin) {
        if let Err(broken) = self.sources.borrow_mut().admit(origin) {
            // The invariant of docs/ARCHITECTURE.md "Ordering". A bug, not bad input.
            tracing::error!(group = group_id, ?broken, "group operation out of its source's order");
            debug_assert!(false, "group {group_id}: operation out of its source's order: {broken:?}");
        }
    }

    /// Replays this shard's `__consumer_offsets` partitions: committed offsets and groups
    /// as they were last written (tombstones delete). Groups come back stable with their
    /// members, whose sessions start anew.
    pub async fn load(&self, context: &ShardContext, partitions: &[i32]) -> KafkaResult<()> {
        for &partition in partitions {
            let Some(log) = context.engine.partition(&partition_dir_name(CONSUMER_OFFSETS_TOPIC, partition)) else {
                continue;
            };
            let mut offsets: HashMap<String, BTreeMap<(String, i32), CommittedOffset>> = HashMap::new();
            let mut groups: HashMap<String, Option<StoredGroup>> = HashMap::new();
            // Transactional offset commits wait for their transaction's marker.
            let mut pending: HashMap<i64, Vec<(String, String, i32, CommittedOffset)>> = HashMap::new();
            replay(&log, |header, records| {
                let producer_id = header.producer_id();
                if header.is_control() {
                    let commits = header.control_type() == Some(ControlType::Commit);
                    for (group, topic, topic_partition, committed) in pending.remove(&producer_id).unwrap_or_default() {
                        if commits {
                            offsets.entry(group).or_default().insert((topic, topic_partition), committed);
                        }
                    }
                    return Ok(());
                }
                for record in records {
                    let Some(key) = record.key else { continue };
                    let key = decode_key(&key).map_err(|e| format!("bad key: {e}"))?;
                    let bad_value = |e: String| format!("bad value: {e}");
                    match key {
                        OffsetsKey::Offset { group, topic, partition } => match record.value {
                            Some(value) if header.is_transactional() => {
                                let committed = decode_offset(&value).map_err(bad_value)?;
                                pending.entry(producer_id).or_default().push((group, topic, partition, committed));
                            }
                            Some(value) => {
                                let committed = decode_offset(&value).map_err(bad_value)?;
                                offsets.entry(group).or_default().insert((topic, partition), committed);
                            }
                            None => {
                                offsets.entry(group).or_default().remove(&(topic, partition));
                            }
                        },
                        OffsetsKey::Group { group } => {
                            let stored = record.value.map(|v| decode_group(&v)).transpose().map_err(bad_value)?;
                            groups.insert(group, stored);
                        }
                    }
                }
                Ok(())
            })
            .await?;
            let now = Instant::now();
            let mut table = self.groups.borrow_mut();
            for (id, stored) in groups {
                let Some(stored) = stored else { continue };
                let mut entry =
                    GroupEntry::new(Group::restore(id.clone(), self.limits.clone(), stored.clone(), now), partition);
                entry.persisted = Some(StoredGroup { state_timestamp_ms: 0, ..stored });
                table.insert(id, entry);
            }
            for (id, group_offsets) in offsets {
                if group_offsets.is_empty() {
                    continue;
                }
                let entry = table
                    .entry(id.clone())
                    .or_insert_with(|| GroupEntry::new(Group::new(id, self.limits.clone()), partition));
                entry.offsets = group_offsets;
            }
            for (producer_id, commits) in pending {
                for (group, topic, topic_partition, committed) in commits {
                    let entry = table
                        .entry(group.clone())
                        .or_insert_with(|| GroupEntry::new(Group::new(group, self.limits.clone()), partition));
                    entry
                        .pending_txn_offsets
                        .entry(producer_id)
                        .or_default()
                        .insert((topic, topic_partition), committed);
                }
            }
            tracing::info!(partition = log.name(), groups = table.len(), "group coordinator loaded");
        }
        Ok(())
    }

    /// Forgets the groups of `__consumer_offsets` partitions this broker no longer leads
    /// (in a cluster): their members' parked requests fail and they find the new
    /// coordinator.
    pub fn unload(&self, partition: i32) {
        let mut groups = self.groups.borrow_mut();
        let before = groups.len();
        groups.retain(|_, entry| entry.partition != partition);
        if groups.len() < before {
            tracing::info!(partition, groups = before - groups.len(), "group coordinator unloaded");
        }
    }

    fn with_group<T>(&self, group_id: &str, partition: i32, f: impl FnOnce(&mut GroupEntry) -> T) -> T {
        let mut groups = self.groups.borrow_mut();
        let entry = groups
            .entry(group_id.to_string())
            .or_insert_with(|| GroupEntry::new(Group::new(group_id, self.limits.clone()), partition));
        f(entry)
    }

    /// JoinGroup: answered at once or when the rebalance's join phase ends.
    pub async fn join(
        &self,
        context: &ShardContext,
        group_id: &str,
        partition: i32,
        request: JoinRequest,
    ) -> KafkaResult<JoinResult> {
        let answer = self.with_group(group_id, partition, |entry| match entry.group.join(request, Instant::now()) {
            Outcome::Now(result) => Answer::Ready(result),
            Outcome::Parked(member_id) => {
                let (sender, receiver) = oneshot::channel();
                entry.parked_joins.insert(member_id, sender);
                Answer::Parked(receiver)
            }
        });
        self.settle(context, group_id).await?;
        answer.get(group_id).await
    }

    /// SyncGroup: the leader's call ends the rebalance; followers wait for it.
    pub async fn sync(
        &self,
        context: &ShardContext,
        group_id: &str,
        partition: i32,
        caller: Caller<'_>,
        assignments: Vec<(String, Bytes)>,
    ) -> KafkaResult<SyncResult> {
        let Caller { member_id, instance_id, generation_id } = caller;
        let answer = self.with_group(group_id, partition, |entry| {
            match entry.group.sync(member_id, instance_id, generation_id, assignments, Instant::now()) {
                Outcome::Now(result) => Answer::Ready(result),
                Outcome::Parked(member_id) => {
                    let (sender, receiver) = oneshot::channel();
                    entry.parked_syncs.insert(member_id, sender);
                    Answer::Parked(receiver)
                }
            }
        });
        self.settle(context, group_id).await?;
        answer.get(group_id).await
    }

    /// Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ResponseError> {
        let groups = &mut self.groups.borrow_mut();
        let Some(entry) = groups.get_mut(group_id) else { return Err(ResponseError::UnknownMemberId) };
        entry.group.heartbeat(member_id, instance_id, generation_id, Instant::now())
    }

    /// LeaveGroup for some members; one result each.
    pub async fn leave(
        &self,
        context: &ShardContext,
        group_id: &str,
        members: Vec<(String, Option<String>)>,
    ) -> KafkaResult<Vec<Result<(), ResponseError>>> {
        let results = {
            let groups = &mut self.groups.borrow_mut();
            let Some(entry) = groups.get_mut(group_id) else {
                return Ok(members.iter().map(|_| Err(ResponseError::UnknownMemberId)).collect());
            };
            let now = Instant::now();
            members.iter().map(|(member, instance)| entry.group.leave(member, instance.as_deref(), now)).collect()
        };
        self.settle(context, group_id).await?;
        Ok(results)
    }

    /// OffsetCommit: checks the committer (a member of the current generation, or anyone
    /// when the group has no members and the request names no generation: consumers
    /// that assign partitions themselves), writes the offsets, then remembers them.
    pub async fn commit(
        &self,
        context: &ShardContext,
        group_id: &str,
        partition: i32,
        caller: Caller<'_>,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> KafkaResult<Result<(), ResponseError>> {
        let Caller { member_id, instance_id, generation_id } = caller;
        let allowed = self
            .with_group(group_id, partition, |entry| {
                let group = &mut entry.group;
                if generation_id < 0 && member_id.is_empty() {
                    return if group.state() == GroupState::Empty {
                        Ok(())
                    } else {
                        Err(ResponseError::UnknownMemberId)
                    };
                }
                group.check_member(member_id, instance_id, generation_id)?;
                match group.state() {
                    // As Kafka: a member of the current generation may commit while the group
                    // prepares a rebalance (cooperative consumers commit before they give
                    // partitions up), but not between JoinGroup and SyncGroup.
                    GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
                    GroupState::PreparingRebalance => Ok(()),
                    _ => group.heartbeat(member_id, instance_id, generation_id, Instant::now()),
                }
            })
            .map(|()| self.with_group(group_id, partition, |entry| entry.commit_line.ticket()));
        let applying = match allowed {
            Ok(ticket) => ticket,
            Err(error) => {
                let mut groups = self.groups.borrow_mut();
                if groups.get(group_id).is_some_and(GroupEntry::is_forgettable) {
                    groups.remove(group_id); // a refused commit to a group nobody uses
                }
                return Ok(Err(error));
            }
        };
        let batch = push_offsets(BatchBuilder::new(now_ms()), group_id, &offsets);
        if !batch.is_empty() {
            context.append_as_coordinator(CONSUMER_OFFSETS_TOPIC, partition, batch.build()).await?;
        }
        let _applying = applying.turn().await;
        self.with_group(group_id, partition, |entry| {
            for (topic, topic_partition, committed) in offsets {
                entry.offsets.insert((topic, topic_partition), committed);
            }
        });
        Ok(Ok(()))
    }

    /// OffsetFetch: the committed offsets of the partitions asked for (all the group has
    /// for `None`).
    pub fn fetch_offsets(&self, group_id: &str, partitions: Option<Vec<(String, i32)>>) -> Vec<FetchedOffset> {
        let groups = self.groups.borrow();
        let entry = groups.get(group_id);
        let pending =
            |key: &(String, i32)| entry.is_some_and(|e| e.pending_txn_offsets.values().any(|p| p.contains_key(key)));
        let wanted =
            partitions.unwrap_or_else(|| entry.map(|e| e.offsets.keys().cloned().collect()).unwrap_or_default());
        wanted
            .into_iter()
            .map(|key| {
                let committed = entry.and_then(|e| e.offsets.get(&key)).cloned();
                let pending_in_transaction = pending(&key);
                FetchedOffset { topic: key.0, partition: key.1, committed, pending_in_transaction }
            })
            .collect()
    }

    /// TxnOffsetCommit: checks the committer as OffsetCommit does (when it names a
    /// member), writes the offsets as the producer's transactional batch, and holds them
    /// pending until the transaction's marker ([`GroupCoordinator::complete_transaction`]).
    #[allow(clippy::too_many_arguments)] // one request's fields
    pub async fn txn_commit(
        &self,
        context: &ShardContext,
        group_id: &str,
        partition: i32,
        caller: Caller<'_>,
        producer: (i64, i16),
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> KafkaResult<Result<(), ResponseError>> {
        let Caller { member_id, instance_id, generation_id } = caller;
        let allowed = self.with_group(group_id, partition, |entry| {
            if generation_id < 0 && member_id.is_empty() {
                return Ok(()); // KIP-447's fencing applies only to requests naming a member
            }
            entry.group.check_member(member_id, instance_id, generation_id)
        });
        if let Err(error) = allowed {
            let mut groups = self.groups.borrow_mut();
            if groups.get(group_id).is_some_and(GroupEntry::is_forgettable) {
                groups.remove(group_id);
            }
            return Ok(Err(error));
        }
        let (producer_id, producer_epoch) = producer;
        // No sequence: a coordinator's batch, fenced by epoch only (as Kafka's).
        let transactional = BatchBuilder::new(now_ms()).producer(producer_id, producer_epoch, -1).transactional();
        let batch = push_offsets(transactional, group_id, &offsets);
        if batch.is_empty() {
            return Ok(Ok(()));
        }
        context.append_as_coordinator(CONSUMER_OFFSETS_TOPIC, partition, batch.build()).await?;
        self.with_group(group_id, partition, |entry| {
            let pending = entry.pending_txn_offsets.entry(producer_id).or_default();
            for (topic, topic_partition, committed) in offsets {
                pending.insert((topic, topic_partition), committed);
            }
        });
        Ok(Ok(()))
    }

    /// A transaction marker for a `__consumer_offsets` partition (WriteTxnMarkers):
    /// written, then the producer's pending offsets in every group of the partition become
    /// committed (commit) or are dropped (abort).
    pub async fn complete_transaction(
        &self,
        context: &ShardContext,
        partition: i32,
        marker: TxnMarker,
    ) -> KafkaResult<()> {
        context.append_marker_as_coordinator(CONSUMER_OFFSETS_TOPIC, partition, marker).await?;
        let commits = marker.control == ControlType::Commit;
        let mut groups = self.groups.borrow_mut();
        for entry in groups.values_mut().filter(|entry| entry.partition == partition) {
            if let Some(pending) = entry.pending_txn_offsets.remove(&marker.producer_id) {
                if commits {
                    entry.offsets.extend(pending);
                }
            }
        }
        groups.retain(|_, entry| !entry.is_forgettable());
        Ok(())
    }

    /// Every group this shard coordinates (ListGroups).
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .borrow()
            .iter()
            .map(|(id, entry)| GroupListing {
                group_id: id.clone(),
                protocol_type: entry.group.protocol_type().unwrap_or_default().to_string(),
                state: entry.group.state(),
            })
            .collect()
    }

    /// DescribeGroups for one group.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let groups = self.groups.borrow();
        let Some(entry) = groups.get(group_id) else {
            return GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let group = &entry.group;
        GroupDescription {
            state: group.state(),
            protocol_type: group.protocol_type().unwrap_or_default().to_string(),
            // Kafka names the protocol only once the group is stable.
            protocol_name: if group.state() == GroupState::Stable {
                group.protocol_name().unwrap_or_default().to_string()
            } else {
                String::new()
            },
            members: group.describe_members(),
        }
    }

    /// DeleteGroups for one group: only an empty group (no members) can go; its
    /// membership and committed offsets are deleted with tombstones.
    pub async fn delete(&self, context: &ShardContext, group_id: &str) -> KafkaResult<Result<(), ResponseError>> {
        let (partition, keys) = {
            let mut groups = self.groups.borrow_mut();
            let Some(entry) = groups.get_mut(group_id) else { return Ok(Err(ResponseError::GroupIdNotFound)) };
            if let Err(error) = entry.group.delete() {
                return Ok(Err(error));
            }
            let mut keys: Vec<OffsetsKey> = entry
                .offsets
                .keys()
                .map(|(topic, partition)| OffsetsKey::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                })
                .collect();
            keys.push(OffsetsKey::Group { group: group_id.to_string() });
            (entry.partition, keys)
        };
        let written = write_tombstones(context, partition, &keys).await;
        if written.is_ok() {
            self.groups.borrow_mut().remove(group_id);
        } else if let Some(entry) = self.groups.borrow_mut().get_mut(group_id) {
            // Not deleted after all: the group stays as it was, empty.
            entry.group = Group::new(group_id, self.limits.clone());
        }
        written.map(Ok)
    }

    /// OffsetDelete: forgets committed offsets of partitions of topics no member is
    /// subscribed to. One result per partition.
    pub async fn delete_offsets(
        &self,
        context: &ShardContext,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> KafkaResult<Result<Vec<Result<(), ResponseError>>, ResponseError>> {
        let (partition, results, keys) = {
            let groups = self.groups.borrow();
            let Some(entry) = groups.get(group_id) else { return Ok(Err(ResponseError::GroupIdNotFound)) };
            let subscribed = entry.group.subscribed_topics();
            let mut keys = Vec::new();
            let results: Vec<Result<(), ResponseError>> = partitions
                .iter()
                .map(|(topic, topic_partition)| {
                    if subscribed.contains(topic) {
                        return Err(ResponseError::GroupSubscribedToTopic);
                    }
                    keys.push(OffsetsKey::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *topic_partition,
                    });
                    Ok(())
                })
                .collect();
            (entry.partition, results, keys)
        };
        write_tombstones(context, partition, &keys).await?;
        if let Some(entry) = self.groups.borrow_mut().get_mut(group_id) {
            for key in keys {
                if let OffsetsKey::Offset { topic, partition, .. } = key {
                    entry.offsets.remove(&(topic, partition));
                }
            }
        }
        Ok(Ok(results))
    }

    /// Runs the timers of every group that has one due (ends of join phases, expired
    /// sessions), then persists and answers what they completed.
    pub async fn tick(&self, context: &ShardContext) {
        let now = Instant::now();
        let due: Vec<String> = {
            let mut groups = self.groups.borrow_mut();
            groups
                .iter_mut()
                .filter(|(_, entry)| entry.group.next_deadline().is_some_and(|deadline| deadline <= now))
                .map(|(id, entry)| {
                    entry.group.tick(now);
                    id.clone()
                })
                .collect()
        };
        for group_id in due {
            if let Err(error) = self.settle(context, &group_id).await {
                tracing::warn!(group = group_id, error = %error.message, "cannot store group");
            }
        }
    }

    /// Writes the group's membership if a rebalance just ended (or it emptied), then
    /// answers the requests the last call completed, in that order: no member learns an
    /// assignment that a crash could take back.
    async fn settle(&self, context: &ShardContext, group_id: &str) -> KafkaResult<()> {
        let (to_store, partition) = {
            let groups = self.groups.borrow();
            let Some(entry) = groups.get(group_id) else { return Ok(()) };
            let settled = matches!(entry.group.state(), GroupState::Stable | GroupState::Empty);
            let current = StoredGroup { state_timestamp_ms: 0, ..entry.group.to_stored(0) };
            let changed = entry.persisted.as_ref() != Some(&current);
            let worth_storing = entry.persisted.is_some() || entry.group.state() == GroupState::Stable;
            ((settled && changed && worth_storing).then_some(current), entry.partition)
        };
        let mut result = Ok(());
        if let Some(stored) = to_store {
            let key = encode_key(&OffsetsKey::Group { group: group_id.to_string() });
            let mut batch = BatchBuilder::new(now_ms());
            batch.push(
                Some(&key),
                Some(&encode_group(&StoredGroup { state_timestamp_ms: now_ms(), ..stored.clone() })),
                &[],
                now_ms(),
            );
            result = context.append_as_coordinator(CONSUMER_OFFSETS_TOPIC, partition, batch.build()).await;
            if result.is_ok() {
                if let Some(entry) = self.groups.borrow_mut().get_mut(group_id) {
                    entry.persisted = Some(stored);
                }
            }
        }
        let mut groups = self.groups.borrow_mut();
        let Some(entry) = groups.get_mut(group_id) else { return result };
        let deliveries = entry.group.take_deliveries();
        if entry.is_forgettable() && deliveries.is_empty() {
            // e.g. a refused JoinGroup: no trace of the group is worth keeping.
            groups.remove(group_id);
            return result;
        }
        for delivery in deliveries {
            match delivery {
                Delivery::Join { member_id, result: answer } => {
                    if let Some(sender) = entry.parked_joins.remove(&member_id) {
                        let _ = sender.send(answer);
                    }
                }
                Delivery::Sync { member_id, result: answer } => {
                    if let Some(sender) = entry.parked_syncs.remove(&member_id) {
                        // A membership that could not be stored is not handed out.
                        let answer = if result.is_ok() { answer } else { Err(ResponseError::CoordinatorNotAvailable) };
                        let _ = sender.send(answer);
                    }
                }
            }
        }
        result
    }
}

/// Adds one committed-offset record per partition to `batch`.
fn push_offsets(mut batch: BatchBuilder, group_id: &str, offsets: &[(String, i32, CommittedOffset)]) -> BatchBuilder {
    for (topic, partition, committed) in offsets {
        let key = encode_key(&OffsetsKey::Offset {
            group: group_id.to_string(),
            topic: topic.clone(),
            partition: *partition,
        });
        batch.push(Some(&key), Some(&encode_offset(committed)), &[], committed.commit_timestamp_ms);
    }
    batch
}

/// Appends one tombstone (a record with a null value) per key.
async fn write_tombstones(context: &ShardContext, partition: i32, keys: &[OffsetsKey]) -> KafkaResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut batch = BatchBuilder::new(now_ms());
    for key in keys {
        batch.push(Some(&encode_key(key)), None, &[], now_ms());
    }
    context.append_as_coordinator(CONSUMER_OFFSETS_TOPIC, partition, batch.build()).await?;
    Ok(())
}
