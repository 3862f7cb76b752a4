//! The Raft type configuration of the metadata quorum.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::runtime::GlommioRuntime;
use crate::metadata::MetadataRecord;

/// One Raft entry: records that apply together or not at all (a broker's registration
/// and the leadership moves it causes, a topic and its partitions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch(pub Vec<MetadataRecord>);

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} metadata records", self.0.len())
    }
}

/// What applying a batch gave: the image's version after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchApplied {
    /// [`crate::metadata::MetadataImage::applied_records`] after the batch.
    pub applied_records: u64,
}

/// A controller voter: where its controller listener is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerNode {
    /// `host:port` of `--controller-listen`.
    pub address: String,
}

openraft::declare_raft_types!(
    /// The metadata quorum's types: node ids are Kafka node ids.
    pub MetadataRaft:
        D = MetadataBatch,
        R = BatchApplied,
        NodeId = u64,
        Node = ControllerNode,
        AsyncRuntime = GlommioRuntime,
);

/// The Raft handle of the metadata quorum.
pub type Raft = openraft::Raft<MetadataRaft, super::state_machine::MetadataStateMachine>;
