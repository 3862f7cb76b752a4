//! Per-log settings, named after Kafka's topic configs where Kafka has one.

use crate::error::{EngineError, Result};
use std::time::Duration;

/// When appended data is forced to disk with `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append waits for an fsync that covers it (group-committed: one fsync covers
    /// every batch written before it started). The high watermark is the fsynced end, so
    /// consumers never see data a crash could take back. The default.
    EveryAppend,
    /// Start an fsync each time this many bytes were written since the last one started
    /// (Kafka's `flush.messages`, in bytes), without making the append wait for it;
    /// appends wait only when 4 × this many bytes are not covered by a finished fsync.
    /// Appends are acknowledged once written; a crash may lose up to 4 × this many bytes.
    Bytes(u64),
    /// fsync at least this often (Kafka's `flush.ms`), driven by the shard's timer.
    /// A crash may lose the last interval.
    Interval(Duration),
    /// fsync only when a segment rolls or the log closes; the OS and device decide.
    Never,
}

impl FlushPolicy {
    /// Whether an append must wait for its fsync before it is acknowledged.
    pub fn syncs_every_append(&self) -> bool {
        matches!(self, FlushPolicy::EveryAppend)
    }
}

/// The text form used by `sluice serve --flush` and the admin socket: `every-append`,
/// `bytes:N`, `ms:N` or `never`.
impl std::str::FromStr for FlushPolicy {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let number = |n: &str| n.parse::<u64>().map_err(|e| format!("{text}: {e}"));
        match text.split_once(':') {
            None if text == "every-append" => Ok(FlushPolicy::EveryAppend),
            None if text == "never" => Ok(FlushPolicy::Never),
            Some(("bytes", n)) => Ok(FlushPolicy::Bytes(number(n)?)),
            Some(("ms", n)) => Ok(FlushPolicy::Interval(Duration::from_millis(number(n)?))),
            _ => Err(format!("unknown flush policy {text:?}: use every-append, bytes:N, ms:N or never")),
        }
    }
}

/// Writes the form [`FlushPolicy::from_str`](std::str::FromStr) reads.
impl std::fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlushPolicy::EveryAppend => f.write_str("every-append"),
            FlushPolicy::Bytes(limit) => write!(f, "bytes:{limit}"),
            FlushPolicy::Interval(interval) => write!(f, "ms:{}", interval.as_millis()),
            FlushPolicy::Never => f.write_str("never"),
        }
    }
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll the active segment once it holds this many bytes (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (`segment.ms`).
    pub segment_ms: Option<Duration>,
    /// Delete closed segments whose newest record is older than this (`retention.ms`).
    pub retention_ms: Option<Duration>,
    /// Delete oldest closed segments while the log is larger than this (`retention.bytes`).
    pub retention_bytes: Option<u64>,
    /// Bytes between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Largest batch accepted (`max.message.bytes`).
    pub max_message_bytes: usize,
    /// When to fsync.
    pub flush: FlushPolicy,
    /// Stamp batches with the broker's clock (`message.timestamp.type=LogAppendTime`).
    pub log_append_time: bool,
    /// Recent batches kept in memory for zero-copy reads, per partition.
    pub tail_cache_bytes: usize,
    /// `cleanup.policy` includes `delete`: retention (`retention.ms`, `retention.bytes`)
    /// deletes closed segments. Without it they are kept whatever their age or size.
    pub delete: bool,
    /// `cleanup.policy` includes `compact`: [`crate::PartitionLog::compact`] keeps only
    /// the newest record of each key in closed segments.
    pub compact: bool,
    /// How long a tombstone (null value) that is the newest record of its key survives
    /// compaction, counted from its batch's max timestamp (`delete.retention.ms`).
    pub delete_retention: Duration,
    /// How long a segment that retention or DeleteRecords took out of the log stays on
    /// disk (renamed `.deleted`) before its blocks are freed (`file.delete.delay.ms`).
    pub file_delete_delay: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 << 20,
            segment_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_ms: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            index_interval_bytes: 4096,
            max_message_bytes: 1 << 20,
            flush: FlushPolicy::EveryAppend,
            log_append_time: false,
            tail_cache_bytes: 4 << 20,
            delete: true,
            compact: false,
            delete_retention: Duration::from_millis(86_400_000),
            file_delete_delay: Duration::from_millis(60_000),
        }
    }
}

/// Segment positions are stored as u32 in the index, so a segment stays below 2 GiB.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 31;

impl LogConfig {
    /// Checks ranges that the on-disk format depends on.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < 1024 || self.segment_bytes > SEGMENT_BYTES_MAX {
            return Err(EngineError::Config(format!(
                "segment.bytes = {} must be in [1024, {SEGMENT_BYTES_MAX}]",
                self.segment_bytes
            )));
        }
        if self.max_message_bytes as u64 > self.segment_bytes.max(SEGMENT_BYTES_MAX / 2) {
            return Err(EngineError::Config(format!(
                "max.message.bytes = {} is larger than a segment can hold",
                self.max_message_bytes
            )));
        }
        if self.max_message_bytes < crate::batch::BATCH_HEADER_BYTES {
            return Err(EngineError::Config("max.message.bytes is smaller than a batch header".into()));
        }
        if self.index_interval_bytes == 0 {
            return Err(EngineError::Config("index.interval.bytes must be > 0".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policies_round_trip_through_their_text_form() {
        for text in ["every-append", "bytes:1048576", "ms:5", "never"] {
            let policy: FlushPolicy = text.parse().unwrap();
            assert_eq!(policy.to_string(), text);
        }
        assert_eq!("bytes:1048576".parse(), Ok(FlushPolicy::Bytes(1 << 20)));
        assert_eq!("ms:5".parse(), Ok(FlushPolicy::Interval(Duration::from_millis(5))));
        assert!("sometimes".parse::<FlushPolicy>().is_err());
        assert!("bytes:x".parse::<FlushPolicy>().is_err());
        assert!("ms:".parse::<FlushPolicy>().is_err());
    }
}
