//! Identifiers shared by the metadata, the controller and the replicas.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker's node id (Kafka's int32 `node.id`).
pub type BrokerId = i32;

/// The leader field of a partition that has no leader (every ISR member fenced).
pub const NO_LEADER: BrokerId = -1;

/// One partition of one topic, the topic named by its id (Kafka's topic UUID) so that a
/// topic deleted and created again under the same name is another partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionKey {
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition index within the topic.
    pub partition: i32,
}
