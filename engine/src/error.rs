//! Typed errors of the engine. Every error that concerns stored data names the file and
//! the byte position, so an operator can find it with `xxd`.

use crate::batch::BatchError;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// An error from a partition log.
///
/// Cloneable because one failed fsync answers every producer waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// A batch handed to `append` is not a valid v2 batch (Kafka: CORRUPT_MESSAGE).
    #[error("{partition}: rejected batch: {reason}")]
    InvalidBatch {
        /// Partition directory name (`topic-N`).
        partition: String,
        /// What is wrong with it.
        reason: BatchError,
    },
    /// A batch larger than `max.message.bytes` (Kafka: MESSAGE_TOO_LARGE).
    #[error("{partition}: batch of {size} bytes exceeds max.message.bytes = {max}")]
    BatchTooLarge {
        /// Partition directory name.
        partition: String,
        /// Size of the batch.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Records the topic cannot take, e.g. keyless records on a compacted topic (Kafka:
    /// INVALID_RECORD with KIP-467 record errors). The batch is not written.
    #[error("{message}")]
    InvalidRecords {
        /// Partition directory name.
        partition: String,
        /// Each refused record: its index in its batch and why.
        records: Vec<(i32, String)>,
        /// The whole refusal, for the partition's error message.
        message: String,
    },
    /// Stored data that fails validation: the file and position of the bad batch.
    #[error("corrupt batch in {} at byte {position}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// What failed.
        reason: BatchError,
    },
    /// An index file that cannot be read and cannot be rebuilt from the segment alone.
    #[error("damaged index {}: {reason}", file.display())]
    DamagedIndex {
        /// The index file.
        file: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// A read or truncation asked for an offset the log does not hold.
    #[error("{partition}: offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// Partition directory name.
        partition: String,
        /// The offset asked for.
        offset: i64,
        /// First offset held.
        log_start: i64,
        /// Next offset to be written.
        log_end: i64,
    },
    /// An idempotent producer's batch is out of sequence or from a fenced epoch.
    #[error("{partition}: {reason}")]
    Sequence {
        /// Partition directory name.
        partition: String,
        /// What is wrong with the sequence.
        reason: crate::producer_state::SequenceError,
    },
    /// The log was truncated below a batch before that batch became durable (a leader
    /// change on a follower); the append is not acknowledged.
    #[error("{partition}: offset {offset} was truncated away before it was flushed")]
    Truncated {
        /// Partition directory name.
        partition: String,
        /// The last offset of the lost batch.
        offset: i64,
    },
    /// A write or fsync failed earlier; the log refuses appends until it is reopened,
    /// because what is on disk after a failed write is unknown.
    #[error("{partition}: log is failed after an earlier I/O error ({cause}); reopen it to recover")]
    Failed {
        /// Partition directory name.
        partition: String,
        /// The first error.
        cause: String,
    },
    /// Configuration out of its allowed range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Shorthand for engine results.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// Wraps an I/O error (std or glommio) with what was being done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Self {
        EngineError::Io { op, path: path.into(), source: Arc::new(source.into()) }
    }
}
