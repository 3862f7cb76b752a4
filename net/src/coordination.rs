//! What the group and transaction coordinators share: each is "the leader of a partition
//! of a compacted internal topic" (`__consumer_offsets`, `__transaction_state`), on one
//! node or many. This module creates those topics, finds a key's partition and its owner,
//! writes a coordinator's records (acks=all in a cluster) and replays a partition at load.

use crate::context::ShardContext;
use crate::control::{MetadataChange, NewTopic};
use crate::error::{KafkaError, KafkaResult};
use crate::partition_ops::LEADER_EPOCH;
use bytes::Bytes;
use kafka_protocol::ResponseError;
use sluice_client::records::{decode_fetched, FetchedRecord};
use sluice_engine::batch::BatchHeader;
use sluice_engine::shard::partition_dir_name;
use sluice_engine::{PartitionLog, ReadLimit, TxnMarker};
use std::rc::Rc;

/// Wall-clock milliseconds since the Unix epoch: what coordinators store (commit times,
/// transaction start times), which must mean the same after a restart.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How long a coordinator's write waits for the ISR (Kafka's `offsets.commit.timeout.ms`).
pub const COORDINATOR_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes read per step when replaying a partition at load.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The partition of an internal topic that holds a key (group id, transactional id), as
/// Kafka computes it: Java's `String.hashCode`, made non-negative, modulo the partition
/// count. The same key lands on the same partition number as on a Kafka cluster.
pub fn partition_for_key(key: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "an internal topic has partitions");
    let hash = key.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)));
    let non_negative = if hash == i32::MIN { 0 } else { hash.abs() };
    non_negative % partitions
}

/// Where a key's coordinator runs on this broker: its partition and the owning shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorPlace {
    /// The internal topic's partition holding the key.
    pub partition: i32,
    /// The shard of this broker that owns that partition.
    pub shard: usize,
}

impl ShardContext {
    /// Creates a compacted internal topic if it does not exist yet, with Kafka's
    /// replication factor for internal topics (3), capped at the live brokers.
    pub async fn ensure_internal_topic(self: &Rc<Self>, name: &str, partitions: i32) -> KafkaResult<()> {
        if self.metadata().topics.contains_key(name) {
            return Ok(());
        }
        let topic = NewTopic {
            name: name.to_string(),
            partitions: partitions as usize,
            configs: [("cleanup.policy".to_string(), "compact".to_string())].into_iter().collect(),
            replication_factor: self
                .metadata()
                .cluster
                .as_ref()
                .map(|view| view.image.brokers.values().filter(|b| !b.fenced).count().clamp(1, 3)),
            assignments: None,
        };
        let result = self.change_metadata(MetadataChange::CreateTopics(vec![topic])).await.into_iter().next();
        match result.expect("one result per topic") {
            Err(error) if error.code != ResponseError::TopicAlreadyExists => Err(error),
            _ => Ok(()),
        }
    }

    /// The partition of `topic` holding `key` and the shard here that owns it. The topic's
    /// own partition count counts, as in Kafka (the default unless created otherwise).
    pub fn coordinator_place(&self, topic: &str, key: &str) -> KafkaResult<CoordinatorPlace> {
        let metadata = self.metadata();
        let partitions = metadata.topics.get(topic).map_or(0, |t| t.shards.len() as i32);
        let not_ready = || KafkaError::new(ResponseError::CoordinatorNotAvailable, format!("{topic} is not ready"));
        if partitions == 0 {
            return Err(not_ready());
        }
        let partition = partition_for_key(key, partitions);
        let shard = metadata.owner(topic, partition).ok_or_else(not_ready)?;
        Ok(CoordinatorPlace { partition, shard })
    }

    /// In a cluster, the broker leading the partition of `topic` that holds `key`:
    /// `(node id, host, port)` of its listener of `protocol` (`None` on a single node,
    /// where this broker coordinates all).
    pub fn cluster_coordinator(
        &self,
        topic: &str,
        key: &str,
        protocol: sluice_security::listeners::SecurityProtocol,
    ) -> Option<KafkaResult<(i32, String, i32)>> {
        let metadata = self.metadata();
        let view = metadata.cluster.as_ref()?;
        let partitions = metadata.topics.get(topic).map_or(0, |t| t.shards.len() as i32);
        let unavailable = |why: String| Err(KafkaError::new(ResponseError::CoordinatorNotAvailable, why));
        if partitions == 0 {
            return Some(unavailable(format!("{topic} is not ready")));
        }
        let partition = partition_for_key(key, partitions);
        let leader = view.partition(topic, partition).map_or(-1, |(_, state)| state.leader);
        Some(match view.image.brokers.get(&leader).filter(|b| !b.fenced) {
            Some(broker) => {
                let (host, port) = crate::cluster::broker_address(broker, protocol);
                Ok((leader, host.to_string(), i32::from(port)))
            }
            None => unavailable(format!("{topic}-{partition} has no leader")),
        })
    }

    /// Whether this broker may coordinate for a partition of an internal topic: always on
    /// one node; in a cluster, when it leads the partition.
    pub fn leads_internal_partition(&self, topic: &str, partition: i32) -> bool {
        !self.in_cluster() || self.replica(topic, partition).is_some_and(|r| r.replica.borrow().is_leader())
    }

    /// The leader epoch of an internal partition here (0 on one node): the coordinator
    /// epoch of a transaction coordinator, which fences the markers of an older one.
    pub fn internal_partition_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.replica(topic, partition).map_or(LEADER_EPOCH, |r| r.replica.borrow().leader_epoch())
    }

    /// Appends a coordinator's batch to a partition of an internal topic: on a single node
    /// as any append; in a cluster as its leader, answering once the ISR has it (a
    /// coordinator's decision must survive its death). NOT_COORDINATOR when this broker
    /// does not lead the partition.
    pub async fn append_as_coordinator(&self, topic: &str, partition: i32, batch: Bytes) -> KafkaResult<()> {
        let log = self.internal_log(topic, partition)?;
        match self.replica(topic, partition) {
            None if self.in_cluster() => Err(not_coordinator(topic, partition)),
            None => log.append(batch, LEADER_EPOCH).await.map(|_| ()).map_err(KafkaError::from),
            Some(replica) => replica
                .append_acks_all(batch, COORDINATOR_WRITE_TIMEOUT)
                .await
                .map_err(|error| coordinator_error(error, topic, partition)),
        }
    }

    /// Appends a transaction marker to a partition of an internal topic this broker
    /// coordinates (`__consumer_offsets`: transactional offset commits), as
    /// [`ShardContext::append_as_coordinator`] does.
    pub async fn append_marker_as_coordinator(
        &self,
        topic: &str,
        partition: i32,
        marker: TxnMarker,
    ) -> KafkaResult<()> {
        let log = self.internal_log(topic, partition)?;
        match self.replica(topic, partition) {
            None if self.in_cluster() => Err(not_coordinator(topic, partition)),
            None => log.append_marker(marker, LEADER_EPOCH).await.map(|_| ()).map_err(KafkaError::from),
            Some(replica) => replica
                .append_marker_acks_all(marker, COORDINATOR_WRITE_TIMEOUT)
                .await
                .map_err(|error| coordinator_error(error, topic, partition)),
        }
    }

    fn internal_log(&self, topic: &str, partition: i32) -> KafkaResult<Rc<PartitionLog>> {
        self.engine
            .partition(&partition_dir_name(topic, partition))
            .ok_or_else(|| KafkaError::new(ResponseError::NotCoordinator, format!("{topic}-{partition} is not here")))
    }
}

fn not_coordinator(topic: &str, partition: i32) -> KafkaError {
    KafkaError::new(ResponseError::NotCoordinator, format!("this broker does not lead {topic}-{partition}"))
}

fn coordinator_error(error: KafkaError, topic: &str, partition: i32) -> KafkaError {
    if error.code == ResponseError::NotLeaderOrFollower {
        not_coordinator(topic, partition)
    } else {
        error
    }
}

/// Replays a partition of an internal topic from its log start to its log end (a new
/// leader never loses its own records, even above a lagging high watermark): each batch's
/// header, then its records. A record that cannot be decoded stops the replay with an
/// error naming the partition and offset: a coordinator must not start from a guess.
pub async fn replay(
    log: &PartitionLog,
    mut visit: impl FnMut(&BatchHeader<'_>, Vec<FetchedRecord>) -> Result<(), String>,
) -> KafkaResult<()> {
    let damaged = |message: String| KafkaError::new(ResponseError::CoordinatorNotAvailable, message);
    let mut position = log.log_start_offset();
    while position < log.log_end_offset() {
        let read = log.read(position, REPLAY_READ_BYTES, ReadLimit::LogEnd).await?;
        if read.batches.is_empty() {
            break;
        }
        for batch in read.batches {
            let header = BatchHeader::parse(&batch, usize::MAX)
                .map_err(|e| damaged(format!("{} offset {position}: {e}", log.name())))?;
            let next = header.last_offset() + 1;
            let decoded =
                decode_fetched(batch.clone(), position).map_err(|e| damaged(format!("{}: {e}", log.name())))?;
            let first = decoded.records.first().map_or(position, |r| r.offset);
            visit(&header, decoded.records).map_err(|e| damaged(format!("{} at offset {first}: {e}", log.name())))?;
            position = next.max(position);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_on_kafkas_partition() {
        // Java: "".hashCode() == 0, "a".hashCode() == 97, "hello".hashCode() == 99162322.
        assert_eq!(partition_for_key("", 50), 0);
        assert_eq!(partition_for_key("a", 50), 97 % 50);
        assert_eq!(partition_for_key("hello", 50), 99_162_322 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Kafka maps to 0.
        assert_eq!(partition_for_key("polygenelubricants", 50), 0);
        // A negative hash is made positive: "ck-check".hashCode() is negative.
        let hash = "ck-check".encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        assert!(hash < 0);
        assert_eq!(partition_for_key("ck-check", 50), hash.abs() % 50);
    }
}
