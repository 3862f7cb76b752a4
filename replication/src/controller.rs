//! What the active controller decides. Each call reads the current image and returns the
//! records to append; the caller appends them through the metadata quorum, applies them,
//! and only then makes the next call, so every decision is made on an image that
//! includes the previous ones (and a decision raced by another is ignored on apply: see
//! [`crate::metadata::PartitionChange`]).
//!
//! The only state kept here is volatile: when each broker last heartbeated. A controller
//! that becomes active starts every registered broker's session afresh, as Kafka's does.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::ReplicationError;
use crate::ids::{BrokerId, PartitionKey, NO_LEADER};
use crate::metadata::{
    AclBindingData, BrokerRegistration, BrokerState, MetadataImage, MetadataRecord, PartitionChange, PartitionState,
    ScramCredentialData,
};

/// Controller settings (Kafka names).
#[derive(Clone, Copy, Debug)]
pub struct ControllerConfig {
    /// `broker.session.timeout.ms`: a broker that has not heartbeated for this long is fenced.
    pub broker_session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`: leadership goes back to preferred replicas.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.ms`: how often the rebalance looks.
    pub leader_imbalance_check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`: a broker whose preferred partitions are led
    /// elsewhere for more than this share gets them back.
    pub leader_imbalance_per_broker_percentage: u32,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            broker_session_timeout_ms: 9_000,
            auto_leader_rebalance: true,
            leader_imbalance_check_interval_ms: 300_000,
            leader_imbalance_per_broker_percentage: 10,
        }
    }
}

/// One partition of an AlterPartitionReassignments: its target replicas (preferred
/// leader first), or `None` to cancel the reassignment in progress.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reassignment {
    /// The partition.
    pub key: PartitionKey,
    /// The target replicas, or `None` to cancel.
    pub target: Option<Vec<BrokerId>>,
}

/// A partition's ISR change asked for by its leader (Kafka's AlterPartition).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartition {
    /// The asking broker (the leader).
    pub broker: BrokerId,
    /// Its broker epoch.
    pub broker_epoch: i64,
    /// The partition.
    pub key: PartitionKey,
    /// The leader epoch the leader leads in.
    pub leader_epoch: i32,
    /// The partition epoch of the state the proposal was made on.
    pub partition_epoch: i32,
    /// The ISR asked for.
    pub new_isr: Vec<BrokerId>,
}

/// A change to an existing topic (DeleteTopics, CreatePartitions, AlterConfigs).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TopicChange {
    /// Delete the topic and its partitions.
    Delete {
        /// The topic.
        name: String,
    },
    /// Grow the topic to `count` partitions, placed like a new topic's or as assigned.
    Grow {
        /// The topic.
        name: String,
        /// The new partition count.
        count: i32,
        /// The new partitions' replicas, one list each, preferred leader first.
        assignments: Option<Vec<Vec<BrokerId>>>,
    },
    /// Replace the configs set on the topic (validated by the broker that asked).
    Configure {
        /// The topic.
        name: String,
        /// Every config set on it.
        configs: BTreeMap<String, String>,
    },
}

/// A change to users' SCRAM credentials or to the ACLs (AlterUserScramCredentials,
/// CreateAcls, DeleteAcls), checked by the broker that asked (mechanism, iterations,
/// binding rules): the controller decides only what depends on the current image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SecurityChange {
    /// Create or replace a user's credential for a mechanism.
    SetCredential {
        /// The user name.
        user: String,
        /// Kafka's mechanism code.
        mechanism: i8,
        /// The credential (never the password).
        credential: ScramCredentialData,
    },
    /// Remove a user's credential for a mechanism: refused with
    /// [`ReplicationError::ResourceNotFound`] when there is none (Kafka's answer).
    RemoveCredential {
        /// The user name.
        user: String,
        /// Kafka's mechanism code.
        mechanism: i8,
    },
    /// Add an ACL binding (one that exists already is a success, as in Kafka).
    AddAcl(AclBindingData),
    /// Remove an ACL binding (one already gone is a success).
    RemoveAcl(AclBindingData),
}

/// The active controller's decisions.
#[derive(Debug)]
pub struct Controller {
    config: ControllerConfig,
    last_heartbeat_ms: BTreeMap<BrokerId, u64>,
    last_rebalance_ms: u64,
}

impl Controller {
    /// A controller that has just become active over `image` at `now_ms`.
    pub fn new(config: ControllerConfig, image: &MetadataImage, now_ms: u64) -> Self {
        let last_heartbeat_ms = image.brokers.keys().map(|b| (*b, now_ms)).collect();
        Controller { config, last_heartbeat_ms, last_rebalance_ms: now_ms }
    }

    /// Whether a broker may register: its data directory belongs to no cluster yet, or to
    /// this one.
    pub fn check_cluster_id(
        &self,
        image: &MetadataImage,
        registration: &BrokerRegistration,
    ) -> Result<(), ReplicationError> {
        match (&registration.cluster_id, &image.cluster_id) {
            (Some(theirs), Some(ours)) if theirs != ours => Err(ReplicationError::InconsistentClusterId),
            _ => Ok(()),
        }
    }

    /// BrokerRegistration. The same process registering again (a lost reply) changes
    /// nothing; a new process of a registered broker is a restart: the broker is
    /// registered fenced and its leaderships move now, so that it never resumes a leader
    /// epoch whose volatile state (follower progress, unflushed tail) it lost.
    pub fn register(
        &mut self,
        image: &MetadataImage,
        registration: BrokerRegistration,
        now_ms: u64,
    ) -> Vec<MetadataRecord> {
        self.last_heartbeat_ms.insert(registration.broker, now_ms);
        if let Some(known) = image.brokers.get(&registration.broker) {
            if known.incarnation == registration.incarnation {
                return Vec::new();
            }
        }
        let broker = registration.broker;
        let mut records = vec![MetadataRecord::RegisterBroker(registration)];
        records.extend(leave_partitions(image, broker));
        records
    }

    /// BrokerHeartbeat: keeps the session; unfences a fenced broker, which then takes
    /// back the leadership of partitions it is the only live ISR member of.
    pub fn heartbeat(
        &mut self,
        image: &MetadataImage,
        broker: BrokerId,
        broker_epoch: i64,
        now_ms: u64,
    ) -> Result<Vec<MetadataRecord>, ReplicationError> {
        let state = registration(image, broker, broker_epoch)?;
        self.last_heartbeat_ms.insert(broker, now_ms);
        if !state.fenced {
            return Ok(Vec::new());
        }
        let mut records = vec![MetadataRecord::UnfenceBroker { broker, broker_epoch }];
        for (key, partition) in &image.partitions {
            if !partition.has_leader() && partition.in_isr(broker) {
                records.push(change(image, *key, partition, broker, partition.isr.clone()));
            }
        }
        Ok(records)
    }

    /// ControlledShutdown: a broker about to stop is fenced now and its leaderships and ISR
    /// places move, so clients fail over before the process exits rather than after its
    /// session times out.
    pub fn controlled_shutdown(
        &mut self,
        image: &MetadataImage,
        broker: BrokerId,
        broker_epoch: i64,
    ) -> Result<Vec<MetadataRecord>, ReplicationError> {
        registration(image, broker, broker_epoch)?;
        let fence = MetadataRecord::FenceBroker { broker, broker_epoch };
        let mut after = image.clone();
        after.apply(&fence);
        let mut records = vec![fence];
        records.extend(leave_partitions(&after, broker));
        Ok(records)
    }

    /// The periodic check: fences every unfenced broker whose session expired and, every
    /// `leader.imbalance.check.interval.ms`, rebalances leadership.
    pub fn tick(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<MetadataRecord> {
        let mut records = self.fence_expired(image, now_ms);
        let due = now_ms.saturating_sub(self.last_rebalance_ms) >= self.config.leader_imbalance_check_interval_ms;
        if self.config.auto_leader_rebalance && due && records.is_empty() {
            self.last_rebalance_ms = now_ms;
            records = self.rebalance_leaders(image);
        }
        records
    }

    /// Automatic leader rebalancing (Kafka's `auto.leader.rebalance.enable`): for each
    /// broker whose share of preferred partitions led by others is above
    /// `leader.imbalance.per.broker.percentage`, a preferred election for each of them that
    /// it can lead (unfenced and in the ISR).
    pub fn rebalance_leaders(&self, image: &MetadataImage) -> Vec<MetadataRecord> {
        let mut preferred: BTreeMap<BrokerId, (usize, Vec<PartitionKey>)> = BTreeMap::new();
        for (key, partition) in &image.partitions {
            let Some(first) = partition.replicas.first() else { continue };
            let entry = preferred.entry(*first).or_default();
            entry.0 += 1;
            if partition.leader != *first {
                entry.1.push(*key);
            }
        }
        let threshold = self.config.leader_imbalance_per_broker_percentage as usize;
        preferred
            .into_values()
            .filter(|(total, elsewhere)| elsewhere.len() * 100 > threshold * total)
            .flat_map(|(_, elsewhere)| elsewhere)
            .filter_map(|key| elect_preferred(image, key).ok())
            .collect()
    }

    /// ElectLeaders (preferred): each partition's first replica becomes its leader, if it
    /// is unfenced and in the ISR. Results in request order.
    pub fn elect_preferred_leaders(
        &self,
        image: &MetadataImage,
        keys: &[PartitionKey],
    ) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>) {
        each_on_the_last(image, keys, |image, key| elect_preferred(image, *key).map(|record| vec![record]))
    }

    /// AlterPartitionReassignments: each partition starts moving to its target replicas
    /// (Kafka's KIP-455 rules): the replicas become the target followed by the ones to
    /// remove; the added ones catch up and join the ISR as any follower does; once every
    /// target replica is in the ISR the reassignment completes (see [`change`]). A new
    /// reassignment replaces one in progress; a cancellation goes back to the replicas from
    /// before, at once. Results in request order.
    pub fn alter_reassignments(
        &self,
        image: &MetadataImage,
        reassignments: &[Reassignment],
    ) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>) {
        each_on_the_last(image, reassignments, |image, r| {
            reassign(image, r.key, r.target.as_deref()).map(|record| record.into_iter().collect())
        })
    }

    fn fence_expired(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<MetadataRecord> {
        let timeout_ms = self.config.broker_session_timeout_ms;
        let expired: Vec<(BrokerId, i64)> = image
            .brokers
            .iter()
            .filter(|(broker, state)| {
                let last = *self.last_heartbeat_ms.entry(**broker).or_insert(now_ms);
                !state.fenced && now_ms.saturating_sub(last) > timeout_ms
            })
            .map(|(broker, state)| (*broker, state.broker_epoch))
            .collect();
        let mut records = Vec::new();
        if expired.is_empty() {
            return records;
        }
        // Apply as we go: a second fenced broker's elections must not pick the first.
        let mut after = image.clone();
        for (broker, broker_epoch) in expired {
            let fence = MetadataRecord::FenceBroker { broker, broker_epoch };
            after.apply(&fence);
            records.push(fence);
            for moved in leave_partitions(&after, broker) {
                after.apply(&moved);
                records.push(moved);
            }
        }
        records
    }

    /// AlterPartition: the leader's ISR change, accepted only on the state it was made on,
    /// from the current leader, adding only unfenced replicas.
    pub fn alter_partition(
        &self,
        image: &MetadataImage,
        request: &AlterPartition,
    ) -> Result<Vec<MetadataRecord>, ReplicationError> {
        registration(image, request.broker, request.broker_epoch)?;
        let partition = image.partitions.get(&request.key).ok_or(ReplicationError::UnknownTopicOrPartition)?;
        if partition.leader != request.broker {
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        if request.leader_epoch != partition.leader_epoch {
            return Err(ReplicationError::FencedLeaderEpoch);
        }
        if request.partition_epoch != partition.partition_epoch {
            return Err(ReplicationError::InvalidUpdateVersion);
        }
        let eligible = |r: &BrokerId| partition.is_replica(*r) && (partition.in_isr(*r) || image.is_active(*r));
        if !request.new_isr.contains(&request.broker) || !request.new_isr.iter().all(eligible) {
            return Err(ReplicationError::IneligibleReplica);
        }
        let mut isr = request.new_isr.clone();
        isr.sort_unstable();
        isr.dedup();
        // Written even when the ISR is unchanged: the new partition epoch voids every older
        // proposal still on its way, and tells the leader its proposals are settled.
        Ok(vec![change(image, request.key, partition, partition.leader, isr)])
    }

    /// CreateTopics: the topic and its partitions, with the replicas `assignments` gives
    /// (one list per partition) or else spread over the unfenced brokers round-robin from
    /// a start that depends on the name, leader first.
    #[allow(clippy::too_many_arguments)]
    pub fn create_topic(
        &self,
        image: &MetadataImage,
        name: &str,
        partitions: i32,
        replication_factor: usize,
        assignments: Option<&[Vec<BrokerId>]>,
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    ) -> Result<Vec<MetadataRecord>, ReplicationError> {
        if image.topics.contains_key(name) {
            return Err(ReplicationError::TopicAlreadyExists);
        }
        let partitions = assignments.map_or(partitions, |a| a.len() as i32);
        // Assigned by hand: every partition has as many replicas as the first.
        let replication_factor = assignments.and_then(|a| a.first()).map_or(replication_factor, Vec::len);
        if partitions < 1 {
            return Err(ReplicationError::InvalidPartitions);
        }
        let mut records = vec![MetadataRecord::Topic { name: name.to_string(), topic_id, configs }];
        records.extend(new_partitions(image, name, topic_id, 0..partitions, replication_factor, assignments)?);
        Ok(records)
    }

    /// DeleteTopics, CreatePartitions and config changes, each on its own. Results in
    /// request order.
    pub fn change_topics(
        &self,
        image: &MetadataImage,
        changes: &[TopicChange],
    ) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>) {
        each_on_the_last(image, changes, change_topic)
    }

    /// AlterUserScramCredentials, CreateAcls and DeleteAcls: each change on the image that
    /// holds the ones before it, all appended together. A change that would change nothing
    /// (an ACL that is there already, or gone already) succeeds with no record. Results in
    /// request order.
    pub fn change_security(
        &self,
        image: &MetadataImage,
        changes: &[SecurityChange],
    ) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>) {
        each_on_the_last(image, changes, change_security)
    }
}

/// One [`SecurityChange`]'s records.
fn change_security(image: &MetadataImage, change: &SecurityChange) -> Result<Vec<MetadataRecord>, ReplicationError> {
    let security = &image.security;
    Ok(match change {
        SecurityChange::SetCredential { user, mechanism, credential } => {
            vec![MetadataRecord::ScramCredential {
                user: user.clone(),
                mechanism: *mechanism,
                credential: credential.clone(),
            }]
        }
        SecurityChange::RemoveCredential { user, mechanism } => {
            if !security.has_credential(user, *mechanism) {
                return Err(ReplicationError::ResourceNotFound);
            }
            vec![MetadataRecord::RemoveScramCredential { user: user.clone(), mechanism: *mechanism }]
        }
        SecurityChange::AddAcl(binding) if security.acls.contains(binding) => Vec::new(),
        SecurityChange::AddAcl(binding) => vec![MetadataRecord::AccessControlEntry(binding.clone())],
        SecurityChange::RemoveAcl(binding) if !security.acls.contains(binding) => Vec::new(),
        SecurityChange::RemoveAcl(binding) => vec![MetadataRecord::RemoveAccessControlEntry(binding.clone())],
    })
}

/// One [`TopicChange`]'s records.
fn change_topic(image: &MetadataImage, change: &TopicChange) -> Result<Vec<MetadataRecord>, ReplicationError> {
    let name = match change {
        TopicChange::Delete { name } | TopicChange::Grow { name, .. } | TopicChange::Configure { name, .. } => name,
    };
    let topic = image.topics.get(name).ok_or(ReplicationError::UnknownTopicOrPartition)?;
    let topic_id = topic.topic_id;
    match change {
        TopicChange::Delete { .. } => Ok(vec![MetadataRecord::RemoveTopic { name: name.clone(), topic_id }]),
        TopicChange::Configure { configs, .. } => {
            Ok(vec![MetadataRecord::TopicConfigs { name: name.clone(), topic_id, configs: configs.clone() }])
        }
        TopicChange::Grow { count, assignments, .. } => {
            let added = count - topic.partitions;
            if added < 1 || assignments.as_ref().is_some_and(|a| a.len() as i32 != added) {
                return Err(ReplicationError::InvalidPartitions);
            }
            let key = PartitionKey { topic_id, partition: 0 };
            let replication_factor = image.partitions.get(&key).map_or(1, |p| p.target_replicas().len());
            new_partitions(image, name, topic_id, topic.partitions..*count, replication_factor, assignments.as_deref())
        }
    }
}

/// The first states of partitions `indexes` of a topic: replicas from `assignments` (one
/// list per partition, checked: as many as `replication_factor`, distinct, registered)
/// or spread round-robin over the unfenced brokers.
fn new_partitions(
    image: &MetadataImage,
    name: &str,
    topic_id: Uuid,
    indexes: std::ops::Range<i32>,
    replication_factor: usize,
    assignments: Option<&[Vec<BrokerId>]>,
) -> Result<Vec<MetadataRecord>, ReplicationError> {
    let active: Vec<BrokerId> = image.brokers.iter().filter(|(_, b)| !b.fenced).map(|(id, _)| *id).collect();
    if assignments.is_none() && (replication_factor == 0 || replication_factor > active.len()) {
        return Err(ReplicationError::InvalidReplicationFactor);
    }
    let start = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    indexes
        .enumerate()
        .map(|(i, partition)| {
            let replicas: Vec<BrokerId> = match assignments {
                Some(assignments) => {
                    let replicas = assignments[i].clone();
                    let distinct = sorted(&replicas).windows(2).all(|pair| pair[0] != pair[1]);
                    let registered = replicas.iter().all(|r| image.brokers.contains_key(r));
                    if replicas.is_empty() || !distinct || !registered {
                        return Err(ReplicationError::InvalidReplicaAssignment);
                    }
                    if replicas.len() != replication_factor {
                        return Err(ReplicationError::InvalidReplicationFactor);
                    }
                    replicas
                }
                None => {
                    let first = start.wrapping_add(partition as usize);
                    (0..replication_factor).map(|r| active[(first + r) % active.len()]).collect()
                }
            };
            // Assigned replicas may be fenced: the unfenced ones are the ISR (as KRaft
            // does), the first of them leads.
            let isr: Vec<BrokerId> = replicas.iter().copied().filter(|r| image.is_active(*r)).collect();
            let Some(leader) = isr.first().copied() else {
                return Err(ReplicationError::InvalidReplicaAssignment);
            };
            let state = PartitionState {
                isr: sorted(&isr),
                leader,
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            };
            Ok(MetadataRecord::Partition { key: PartitionKey { topic_id, partition }, state })
        })
        .collect()
}

/// The broker's registration, if `broker_epoch` is its current one (a request from a
/// past process of the broker is stale).
fn registration(image: &MetadataImage, broker: BrokerId, broker_epoch: i64) -> Result<&BrokerState, ReplicationError> {
    let state = image.brokers.get(&broker).ok_or(ReplicationError::BrokerIdNotRegistered)?;
    if state.broker_epoch != broker_epoch {
        return Err(ReplicationError::StaleBrokerEpoch);
    }
    Ok(state)
}

/// The changes that take `broker` out of every partition's leadership and ISR (it is
/// fenced, restarted or shutting down): a new leader from the rest of the ISR that is
/// unfenced, in replica order (unclean election is off, so none may be found: then no
/// leader); the ISR keeps its last member even when that is `broker`.
fn leave_partitions(image: &MetadataImage, broker: BrokerId) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for (key, partition) in &image.partitions {
        let leads = partition.leader == broker;
        let leaves_isr = partition.in_isr(broker) && partition.isr.len() > 1;
        if !leads && !leaves_isr {
            continue;
        }
        let isr: Vec<BrokerId> = if partition.isr.len() > 1 {
            partition.isr.iter().copied().filter(|r| *r != broker).collect()
        } else {
            partition.isr.clone()
        };
        let leader = if leads {
            partition
                .replicas
                .iter()
                .copied()
                .find(|r| *r != broker && isr.contains(r) && image.is_active(*r))
                .unwrap_or(NO_LEADER)
        } else {
            partition.leader
        };
        records.push(change(image, *key, partition, leader, isr));
    }
    records
}

/// Runs one decision per item, each on the image that holds the records of the ones
/// before (two items for one partition: the second sees the first), collecting the
/// records and each item's result.
fn each_on_the_last<T>(
    image: &MetadataImage,
    items: &[T],
    mut decide: impl FnMut(&MetadataImage, &T) -> Result<Vec<MetadataRecord>, ReplicationError>,
) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>) {
    let mut after = image.clone();
    let mut records = Vec::new();
    let results = items
        .iter()
        .map(|item| {
            for record in decide(&after, item)? {
                after.apply(&record);
                records.push(record);
            }
            Ok(())
        })
        .collect();
    (records, results)
}

/// A preferred-leader election for one partition.
fn elect_preferred(image: &MetadataImage, key: PartitionKey) -> Result<MetadataRecord, ReplicationError> {
    let partition = image.partitions.get(&key).ok_or(ReplicationError::UnknownTopicOrPartition)?;
    let preferred = partition.replicas[0];
    if partition.leader == preferred {
        return Err(ReplicationError::ElectionNotNeeded);
    }
    if !partition.in_isr(preferred) || !image.is_active(preferred) {
        return Err(ReplicationError::PreferredLeaderNotAvailable);
    }
    Ok(change(image, key, partition, preferred, partition.isr.clone()))
}

/// One partition's reassignment to `target` (`None`: cancel); `None` when nothing changes.
fn reassign(
    image: &MetadataImage,
    key: PartitionKey,
    target: Option<&[BrokerId]>,
) -> Result<Option<MetadataRecord>, ReplicationError> {
    let partition = image.partitions.get(&key).ok_or(ReplicationError::UnknownTopicOrPartition)?;
    let cancel = target.is_none();
    let target = match target {
        None if !partition.is_reassigning() => return Err(ReplicationError::NoReassignmentInProgress),
        None => partition.original_replicas(),
        Some(target) => {
            let distinct = sorted(target).windows(2).all(|pair| pair[0] != pair[1]);
            if target.is_empty() || !distinct || !target.iter().all(|r| image.brokers.contains_key(r)) {
                return Err(ReplicationError::InvalidReplicaAssignment);
            }
            target.to_vec()
        }
    };
    if !partition.is_reassigning() && partition.replicas == target {
        return Ok(None);
    }
    let removing: Vec<BrokerId> = partition.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
    // Still adding: new to the replicas, or added by the reassignment this one replaces.
    let adding =
        target.iter().copied().filter(|r| !partition.is_replica(*r) || partition.adding_replicas.contains(r)).collect();
    let mut state = PartitionState {
        replicas: target.iter().chain(&removing).copied().collect(),
        isr: partition.isr.clone(),
        leader: partition.leader,
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch + 1,
        adding_replicas: adding,
        removing_replicas: removing,
    };
    if cancel {
        state.adding_replicas.clear();
        if !complete_reassignment(image, &mut state, true) {
            return Err(ReplicationError::InvalidReplicaAssignment);
        }
    } else if state.is_reassigning() {
        complete_reassignment(image, &mut state, false);
    }
    state.leader_epoch = partition.leader_epoch + i32::from(state.leader != partition.leader);
    Ok(Some(MetadataRecord::PartitionChange(PartitionChange { key, state })))
}

/// Completes `state`'s reassignment when every target replica is in the ISR (`force`: as
/// soon as one is, for a cancellation) and one of them can lead: the removed replicas
/// leave the replica list and the ISR, and a removed leader hands over to the first
/// target replica in the ISR that is unfenced. Returns whether it completed. The leader
/// epoch is the caller's to set.
fn complete_reassignment(image: &MetadataImage, state: &mut PartitionState, force: bool) -> bool {
    let target = state.target_replicas();
    let isr: Vec<BrokerId> = state.isr.iter().copied().filter(|r| target.contains(r)).collect();
    let ready = if force { !isr.is_empty() } else { isr.len() == target.len() };
    if !ready {
        return false;
    }
    let leader = if target.contains(&state.leader) {
        state.leader
    } else {
        match target.iter().copied().find(|r| isr.contains(r) && image.is_active(*r)) {
            Some(leader) => leader,
            None => return false,
        }
    };
    state.replicas = target;
    state.isr = isr;
    state.leader = leader;
    state.adding_replicas.clear();
    state.removing_replicas.clear();
    true
}

/// The next state of `partition` with `leader` and `isr`; the leader epoch grows when the
/// leader changes. A reassignment whose target replicas are all in the new ISR completes
/// in the same change.
fn change(
    image: &MetadataImage,
    key: PartitionKey,
    partition: &PartitionState,
    leader: BrokerId,
    isr: Vec<BrokerId>,
) -> MetadataRecord {
    let mut state = PartitionState {
        isr: sorted(&isr),
        leader,
        partition_epoch: partition.partition_epoch + 1,
        ..partition.clone()
    };
    if state.is_reassigning() {
        complete_reassignment(image, &mut state, false);
    }
    state.leader_epoch = partition.leader_epoch + i32::from(state.leader != partition.leader);
    MetadataRecord::PartitionChange(PartitionChange { key, state })
}

fn sorted(brokers: &[BrokerId]) -> Vec<BrokerId> {
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(broker: BrokerId) -> BrokerRegistration {
        BrokerRegistration::on_loopback(broker)
    }

    fn apply(image: &mut MetadataImage, records: Vec<MetadataRecord>) {
        for record in records {
            image.apply(&record);
        }
    }

    /// Three registered, unfenced brokers and one topic "t" with one partition on all three.
    fn cluster() -> (Controller, MetadataImage, PartitionKey) {
        let mut image = MetadataImage::default();
        let mut controller = Controller::new(
            ControllerConfig { broker_session_timeout_ms: 1000, ..ControllerConfig::default() },
            &image,
            0,
        );
        for broker in 1..=3 {
            let records = controller.register(&image, registration(broker), 0);
            apply(&mut image, records);
            let epoch = image.brokers[&broker].broker_epoch;
            let records = controller.heartbeat(&image, broker, epoch, 0).unwrap();
            apply(&mut image, records);
        }
        let topic_id = Uuid::new_v4();
        let records = controller.create_topic(&image, "t", 1, 3, None, topic_id, BTreeMap::new()).unwrap();
        apply(&mut image, records);
        (controller, image, PartitionKey { topic_id, partition: 0 })
    }

    fn heartbeat_all_but(controller: &mut Controller, image: &mut MetadataImage, absent: BrokerId, now_ms: u64) {
        for broker in [1, 2, 3].into_iter().filter(|b| *b != absent) {
            let epoch = image.brokers[&broker].broker_epoch;
            let records = controller.heartbeat(image, broker, epoch, now_ms).unwrap();
            apply(image, records);
        }
    }

    #[test]
    fn a_broker_that_stops_heartbeating_is_fenced_and_loses_its_leadership() {
        let (mut controller, mut image, key) = cluster();
        let leader = image.partitions[&key].leader;
        heartbeat_all_but(&mut controller, &mut image, leader, 900);
        let records = controller.tick(&image, 1500);
        apply(&mut image, records);
        let state = &image.partitions[&key];
        assert!(image.brokers[&leader].fenced);
        assert_ne!(state.leader, leader);
        assert!(!state.in_isr(leader));
        assert_eq!(state.leader_epoch, 1);
        assert!(state.in_isr(state.leader));
    }

    #[test]
    fn the_last_isr_member_stays_and_leads_again_when_it_returns() {
        let (mut controller, mut image, key) = cluster();
        let leader = image.partitions[&key].leader;
        let epoch = image.partitions[&key].partition_epoch;
        let shrink = AlterPartition {
            broker: leader,
            broker_epoch: image.brokers[&leader].broker_epoch,
            key,
            leader_epoch: 0,
            partition_epoch: epoch,
            new_isr: vec![leader],
        };
        let records = controller.alter_partition(&image, &shrink).unwrap();
        apply(&mut image, records);
        let records = controller.tick(&image, 5000);
        apply(&mut image, records);
        let state = image.partitions[&key].clone();
        assert_eq!(state.leader, NO_LEADER, "no clean leader is left");
        assert_eq!(state.isr, vec![leader]);
        let broker_epoch = image.brokers[&leader].broker_epoch;
        let records = controller.heartbeat(&image, leader, broker_epoch, 5100).unwrap();
        apply(&mut image, records);
        let state = &image.partitions[&key];
        assert_eq!(state.leader, leader);
        assert_eq!(state.leader_epoch, 2);
    }

    #[test]
    fn a_controlled_shutdown_moves_leaderships_at_once() {
        let (mut controller, mut image, key) = cluster();
        let leader = image.partitions[&key].leader;
        let epoch = image.brokers[&leader].broker_epoch;
        assert_eq!(controller.controlled_shutdown(&image, leader, epoch + 1), Err(ReplicationError::StaleBrokerEpoch));
        let records = controller.controlled_shutdown(&image, leader, epoch).unwrap();
        apply(&mut image, records);
        assert!(image.brokers[&leader].fenced);
        assert_ne!(image.partitions[&key].leader, leader);
        assert!(!image.partitions[&key].in_isr(leader));
    }

    #[test]
    fn a_restarted_broker_is_fenced_and_its_leadership_moves_at_once() {
        let (mut controller, mut image, key) = cluster();
        let leader = image.partitions[&key].leader;
        let records = controller.register(&image, registration(leader), 10);
        apply(&mut image, records);
        assert!(image.brokers[&leader].fenced);
        assert_ne!(image.partitions[&key].leader, leader);
    }

    #[test]
    fn alter_partition_is_refused_on_a_stale_state_or_from_a_non_leader() {
        let (controller, image, key) = cluster();
        let state = &image.partitions[&key];
        let follower = state.replicas.iter().copied().find(|r| *r != state.leader).unwrap();
        let mut request = AlterPartition {
            broker: state.leader,
            broker_epoch: image.brokers[&state.leader].broker_epoch,
            key,
            leader_epoch: 0,
            partition_epoch: state.partition_epoch + 1,
            new_isr: vec![state.leader],
        };
        assert_eq!(controller.alter_partition(&image, &request), Err(ReplicationError::InvalidUpdateVersion));
        request.partition_epoch = state.partition_epoch;
        request.broker_epoch += 100;
        assert_eq!(controller.alter_partition(&image, &request), Err(ReplicationError::StaleBrokerEpoch));
        request.broker = follower;
        request.broker_epoch = image.brokers[&follower].broker_epoch;
        assert_eq!(controller.alter_partition(&image, &request), Err(ReplicationError::NotLeaderOrFollower));
    }

    #[test]
    fn topics_need_enough_unfenced_brokers() {
        let (controller, image, _) = cluster();
        assert_eq!(
            controller.create_topic(&image, "u", 3, 4, None, Uuid::new_v4(), BTreeMap::new()),
            Err(ReplicationError::InvalidReplicationFactor)
        );
        assert_eq!(
            controller.create_topic(&image, "t", 3, 1, None, Uuid::new_v4(), BTreeMap::new()),
            Err(ReplicationError::TopicAlreadyExists)
        );
        let records = controller.create_topic(&image, "u", 3, 2, None, Uuid::new_v4(), BTreeMap::new()).unwrap();
        assert_eq!(records.len(), 4);
    }

    /// Registers and unfences one more broker.
    fn join(controller: &mut Controller, image: &mut MetadataImage, broker: BrokerId) {
        let records = controller.register(image, registration(broker), 0);
        apply(image, records);
        let epoch = image.brokers[&broker].broker_epoch;
        let records = controller.heartbeat(image, broker, epoch, 0).unwrap();
        apply(image, records);
    }

    /// The leader's AlterPartition asking for `isr`.
    fn alter_isr(controller: &Controller, image: &mut MetadataImage, key: PartitionKey, isr: Vec<BrokerId>) {
        let state = image.partitions[&key].clone();
        let request = AlterPartition {
            broker: state.leader,
            broker_epoch: image.brokers[&state.leader].broker_epoch,
            key,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr: isr,
        };
        let records = controller.alter_partition(image, &request).unwrap();
        apply(image, records);
    }

    #[test]
    fn a_reassignment_adds_first_and_removes_once_the_new_replica_is_in_sync() {
        let (mut controller, mut image, key) = cluster();
        join(&mut controller, &mut image, 4);
        let old_leader = image.partitions[&key].leader;
        let target: Vec<BrokerId> = [4].into_iter().chain([1, 2, 3].into_iter().filter(|r| *r != old_leader)).collect();
        let request = Reassignment { key, target: Some(target.clone()) };
        let (records, results) = controller.alter_reassignments(&image, &[request]);
        assert_eq!(results, vec![Ok(())]);
        apply(&mut image, records);
        let moving = image.partitions[&key].clone();
        assert_eq!(moving.adding_replicas, vec![4]);
        assert_eq!(moving.removing_replicas, vec![old_leader]);
        assert_eq!(moving.replicas, [target.clone(), vec![old_leader]].concat());
        assert_eq!(moving.leader, old_leader, "the leader stays until the new replica is in sync");
        assert_eq!(moving.target_replicas(), target);
        // The new replica caught up: the leader adds it, which completes the move.
        let mut isr = moving.isr.clone();
        isr.push(4);
        alter_isr(&controller, &mut image, key, isr);
        let done = &image.partitions[&key];
        assert!(!done.is_reassigning());
        assert_eq!(done.replicas, target);
        assert!(!done.in_isr(old_leader));
        assert_eq!(done.leader, 4, "the removed leader hands over to the first target replica in sync");
        assert_eq!(done.leader_epoch, moving.leader_epoch + 1);
    }

    #[test]
    fn a_reassignment_can_be_cancelled_and_bad_ones_are_refused() {
        let (mut controller, mut image, key) = cluster();
        join(&mut controller, &mut image, 4);
        let before = image.partitions[&key].clone();
        let refusals = [vec![], vec![1, 1, 2], vec![1, 2, 9]];
        for target in refusals {
            let (records, results) =
                controller.alter_reassignments(&image, &[Reassignment { key, target: Some(target) }]);
            assert!(records.is_empty());
            assert_eq!(results, vec![Err(ReplicationError::InvalidReplicaAssignment)]);
        }
        let cancel = Reassignment { key, target: None };
        let (_, results) = controller.alter_reassignments(&image, std::slice::from_ref(&cancel));
        assert_eq!(results, vec![Err(ReplicationError::NoReassignmentInProgress)]);
        let unchanged = Reassignment { key, target: Some(before.replicas.clone()) };
        let (records, results) = controller.alter_reassignments(&image, &[unchanged]);
        assert_eq!((records.len(), results), (0, vec![Ok(())]));
        // (A cancellation keeps the order the reassignment gave the original replicas.)
        let grow = Reassignment { key, target: Some([before.replicas.clone(), vec![4]].concat()) };
        let (records, _) = controller.alter_reassignments(&image, &[grow, cancel]);
        apply(&mut image, records);
        let after = &image.partitions[&key];
        assert_eq!((&after.replicas, &after.isr, after.leader), (&before.replicas, &before.isr, before.leader));
        assert!(!after.is_reassigning());
        assert_eq!(after.partition_epoch, before.partition_epoch + 2);
    }

    #[test]
    fn removing_replicas_that_are_not_needed_completes_at_once() {
        let (controller, mut image, key) = cluster();
        let state = image.partitions[&key].clone();
        let (records, _) =
            controller.alter_reassignments(&image, &[Reassignment { key, target: Some(vec![state.replicas[1]]) }]);
        apply(&mut image, records);
        let after = &image.partitions[&key];
        assert_eq!(after.replicas, vec![state.replicas[1]]);
        assert_eq!(after.isr, vec![state.replicas[1]]);
        assert_eq!(after.leader, state.replicas[1]);
        assert!(!after.is_reassigning());
    }

    #[test]
    fn preferred_leaders_are_elected_on_request_and_by_the_rebalance() {
        let (mut controller, mut image, key) = cluster();
        let preferred = image.partitions[&key].replicas[0];
        let (_, results) = controller.elect_preferred_leaders(&image, &[key]);
        assert_eq!(results, vec![Err(ReplicationError::ElectionNotNeeded)]);
        // The preferred leader restarts: leadership moves away, and it is out of the ISR.
        let records = controller.register(&image, registration(preferred), 10);
        apply(&mut image, records);
        assert_ne!(image.partitions[&key].leader, preferred);
        let (_, results) = controller.elect_preferred_leaders(&image, &[key]);
        assert_eq!(results, vec![Err(ReplicationError::PreferredLeaderNotAvailable)]);
        assert!(controller.rebalance_leaders(&image).is_empty());
        // Back, unfenced and in sync again: the rebalance hands leadership back.
        let epoch = image.brokers[&preferred].broker_epoch;
        let records = controller.heartbeat(&image, preferred, epoch, 20).unwrap();
        apply(&mut image, records);
        let mut isr = image.partitions[&key].isr.clone();
        isr.push(preferred);
        alter_isr(&controller, &mut image, key, isr);
        let records = controller.rebalance_leaders(&image);
        assert_eq!(records.len(), 1);
        apply(&mut image, records);
        assert_eq!(image.partitions[&key].leader, preferred);
        assert_eq!(image.partitions[&key].leader_epoch, 2);
    }

    #[test]
    fn topics_grow_change_configs_and_are_deleted() {
        let (controller, mut image, key) = cluster();
        let grow = |count, assignments| TopicChange::Grow { name: "t".into(), count, assignments };
        let (records, results) = controller.change_topics(
            &image,
            &[
                grow(1, None),
                grow(3, Some(vec![vec![1, 2]])),
                grow(2, Some(vec![vec![1, 2, 7]])),
                grow(2, Some(vec![vec![1, 2]])),
                TopicChange::Delete { name: "absent".into() },
            ],
        );
        assert_eq!(
            results,
            vec![
                Err(ReplicationError::InvalidPartitions),
                Err(ReplicationError::InvalidPartitions),
                Err(ReplicationError::InvalidReplicaAssignment),
                Err(ReplicationError::InvalidReplicationFactor),
                Err(ReplicationError::UnknownTopicOrPartition),
            ]
        );
        assert!(records.is_empty());
        let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1000".to_string())].into();
        let (records, results) = controller.change_topics(
            &image,
            &[
                grow(2, Some(vec![vec![3, 1, 2]])),
                grow(3, None),
                TopicChange::Configure { name: "t".into(), configs: configs.clone() },
            ],
        );
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);
        apply(&mut image, records);
        assert_eq!(image.topics["t"].partitions, 3);
        assert_eq!(image.topics["t"].configs, configs);
        let second = &image.partitions[&PartitionKey { partition: 1, ..key }];
        assert_eq!((second.replicas.clone(), second.leader), (vec![3, 1, 2], 3));
        assert_eq!(image.partitions[&PartitionKey { partition: 2, ..key }].replicas.len(), 3);
        let (records, results) = controller.change_topics(&image, &[TopicChange::Delete { name: "t".into() }]);
        assert_eq!(results, vec![Ok(())]);
        apply(&mut image, records);
        assert!(image.topics.is_empty() && image.partitions.is_empty());
    }

    #[test]
    fn security_changes_become_records_and_a_missing_credential_is_not_found() {
        let (controller, mut image, _) = cluster();
        let credential = |iterations| ScramCredentialData {
            salt: vec![7; 32],
            stored_key: vec![8; 32],
            server_key: vec![9; 32],
            iterations,
        };
        let set = |user: &str, iterations| SecurityChange::SetCredential {
            user: user.into(),
            mechanism: 1,
            credential: credential(iterations),
        };
        let remove = |user: &str| SecurityChange::RemoveCredential { user: user.into(), mechanism: 1 };
        let acl = AclBindingData {
            resource_type: 2,
            resource_name: "t".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        let (records, results) = controller.change_security(
            &image,
            &[
                remove("alice"),
                set("alice", 4096),
                set("bob", 4096),
                remove("bob"),
                SecurityChange::AddAcl(acl.clone()),
                SecurityChange::AddAcl(acl.clone()),
                SecurityChange::RemoveAcl(AclBindingData { principal: "User:bob".into(), ..acl.clone() }),
            ],
        );
        assert_eq!(
            results,
            vec![Err(ReplicationError::ResourceNotFound), Ok(()), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())],
            "each change sees the ones before it: bob's credential is there to remove"
        );
        assert_eq!(records.len(), 4, "set alice, set bob, remove bob, add the ACL once");
        apply(&mut image, records);
        assert_eq!(image.security.credentials.keys().collect::<Vec<_>>(), vec![&("alice".to_string(), 1)]);
        assert_eq!(image.security.acls.iter().collect::<Vec<_>>(), vec![&acl]);

        let (records, results) =
            controller.change_security(&image, &[set("alice", 8192), SecurityChange::RemoveAcl(acl)]);
        assert_eq!(results, vec![Ok(()), Ok(())]);
        apply(&mut image, records);
        assert_eq!(image.security.credentials[&("alice".to_string(), 1)].iterations, 8192);
        assert!(image.security.acls.is_empty());
    }
}
