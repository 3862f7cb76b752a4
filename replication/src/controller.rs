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
    BrokerRegistration, BrokerState, MetadataImage, MetadataRecord, PartitionChange, PartitionState,
};

/// Controller settings (Kafka names).
#[derive(Clone, Copy, Debug)]
pub struct ControllerConfig {
    /// `broker.session.timeout.ms`: a broker that has not heartbeated for this long is fenced.
    pub broker_session_timeout_ms: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig { broker_session_timeout_ms: 9_000 }
    }
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

/// The active controller's decisions.
#[derive(Debug)]
pub struct Controller {
    config: ControllerConfig,
    last_heartbeat_ms: BTreeMap<BrokerId, u64>,
}

impl Controller {
    /// A controller that has just become active over `image` at `now_ms`.
    pub fn new(config: ControllerConfig, image: &MetadataImage, now_ms: u64) -> Self {
        let last_heartbeat_ms = image.brokers.keys().map(|b| (*b, now_ms)).collect();
        Controller { config, last_heartbeat_ms }
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
                records.push(change(*key, partition, broker, partition.isr.clone()));
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

    /// The periodic check: fences every unfenced broker whose session expired.
    pub fn tick(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<MetadataRecord> {
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
        Ok(vec![change(request.key, partition, partition.leader, isr)])
    }

    /// CreateTopics: the topic and its partitions, replicas spread over the unfenced
    /// brokers round-robin from a start that depends on the name, leader first.
    pub fn create_topic(
        &self,
        image: &MetadataImage,
        name: &str,
        partitions: i32,
        replication_factor: usize,
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    ) -> Result<Vec<MetadataRecord>, ReplicationError> {
        if image.topics.contains_key(name) {
            return Err(ReplicationError::TopicAlreadyExists);
        }
        if partitions < 1 {
            return Err(ReplicationError::InvalidPartitions);
        }
        let active: Vec<BrokerId> = image.brokers.iter().filter(|(_, b)| !b.fenced).map(|(id, _)| *id).collect();
        if replication_factor == 0 || replication_factor > active.len() {
            return Err(ReplicationError::InvalidReplicationFactor);
        }
        let start = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        let mut records = vec![MetadataRecord::Topic { name: name.to_string(), topic_id, configs }];
        for partition in 0..partitions {
            let first = start.wrapping_add(partition as usize);
            let replicas: Vec<BrokerId> = (0..replication_factor).map(|i| active[(first + i) % active.len()]).collect();
            let state = PartitionState {
                isr: sorted(&replicas),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            };
            records.push(MetadataRecord::Partition { key: PartitionKey { topic_id, partition }, state });
        }
        Ok(records)
    }
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
        records.push(change(*key, partition, leader, isr));
    }
    records
}

/// The next state of `partition` with `leader` and `isr`; the leader epoch grows when the
/// leader changes.
fn change(key: PartitionKey, partition: &PartitionState, leader: BrokerId, isr: Vec<BrokerId>) -> MetadataRecord {
    let leader_epoch = partition.leader_epoch + i32::from(leader != partition.leader);
    let state = PartitionState {
        replicas: partition.replicas.clone(),
        isr: sorted(&isr),
        leader,
        leader_epoch,
        partition_epoch: partition.partition_epoch + 1,
    };
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
        BrokerRegistration { broker, incarnation: Uuid::new_v4(), host: "127.0.0.1".into(), port: 9092, rack: None }
    }

    fn apply(image: &mut MetadataImage, records: Vec<MetadataRecord>) {
        for record in records {
            image.apply(&record);
        }
    }

    /// Three registered, unfenced brokers and one topic "t" with one partition on all three.
    fn cluster() -> (Controller, MetadataImage, PartitionKey) {
        let mut image = MetadataImage::default();
        let mut controller = Controller::new(ControllerConfig { broker_session_timeout_ms: 1000 }, &image, 0);
        for broker in 1..=3 {
            let records = controller.register(&image, registration(broker), 0);
            apply(&mut image, records);
            let epoch = image.brokers[&broker].broker_epoch;
            let records = controller.heartbeat(&image, broker, epoch, 0).unwrap();
            apply(&mut image, records);
        }
        let topic_id = Uuid::new_v4();
        let records = controller.create_topic(&image, "t", 1, 3, topic_id, BTreeMap::new()).unwrap();
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
            controller.create_topic(&image, "u", 3, 4, Uuid::new_v4(), BTreeMap::new()),
            Err(ReplicationError::InvalidReplicationFactor)
        );
        assert_eq!(
            controller.create_topic(&image, "t", 3, 1, Uuid::new_v4(), BTreeMap::new()),
            Err(ReplicationError::TopicAlreadyExists)
        );
        let records = controller.create_topic(&image, "u", 3, 2, Uuid::new_v4(), BTreeMap::new()).unwrap();
        assert_eq!(records.len(), 4);
    }
}
