//! Errors as Kafka clients see them: an error code plus a message for the log.

use kafka_protocol::ResponseError;
use sluice_engine::producer_state::SequenceError;
use sluice_engine::EngineError;

/// A failed partition or topic operation, carrying the Kafka error code to answer with.
#[derive(Debug, Clone)]
pub struct KafkaError {
    /// The code sent to the client.
    pub code: ResponseError,
    /// What happened, for the broker's log and the response's error message field.
    pub message: String,
    /// Produce only: the records that got the batch refused, as `(index in its batch,
    /// why)` (KIP-467's `record_errors`).
    pub record_errors: Vec<(i32, String)>,
}

/// Result of an operation answered with a Kafka error code.
pub type KafkaResult<T> = Result<T, KafkaError>;

impl KafkaError {
    /// An error with a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        KafkaError { code, message: message.into(), record_errors: Vec::new() }
    }

    /// The partition does not exist (or this broker does not host it).
    pub fn unknown_partition(topic: &str, partition: i32) -> Self {
        KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"))
    }
}

impl From<EngineError> for KafkaError {
    fn from(error: EngineError) -> Self {
        let code = match &error {
            EngineError::InvalidBatch { .. } => ResponseError::CorruptMessage,
            EngineError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
            EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            EngineError::Sequence { reason: SequenceError::OutOfOrder { .. }, .. } => {
                ResponseError::OutOfOrderSequenceNumber
            }
            EngineError::Sequence { reason: SequenceError::FencedEpoch { .. }, .. } => {
                ResponseError::InvalidProducerEpoch
            }
            EngineError::Sequence { reason: SequenceError::InsideTransaction { .. }, .. } => {
                ResponseError::InvalidTxnState
            }
            EngineError::Sequence { reason: SequenceError::CoordinatorFenced { .. }, .. } => {
                ResponseError::TransactionCoordinatorFenced
            }
            // The batch was lost to a truncation: the client retries against the leader.
            EngineError::Truncated { .. } => ResponseError::NotLeaderOrFollower,
            EngineError::Config(_) => ResponseError::InvalidConfig,
            EngineError::InvalidRecords { .. } => ResponseError::InvalidRecord,
            EngineError::Corrupt { .. }
            | EngineError::DamagedIndex { .. }
            | EngineError::Io { .. }
            | EngineError::Failed { .. } => ResponseError::KafkaStorageError,
        };
        let record_errors = match &error {
            EngineError::InvalidRecords { records, .. } => records.clone(),
            _ => Vec::new(),
        };
        KafkaError { code, message: error.to_string(), record_errors }
    }
}

/// The wire code of an optional error (0 for success).
pub fn code_of<T>(result: &KafkaResult<T>) -> i16 {
    result.as_ref().err().map_or(0, |e| e.code.code())
}
