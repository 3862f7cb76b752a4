//! sluice's storage engine: each partition is a segmented, append-only log of Kafka v2
//! record batches, written with direct I/O (O_DIRECT) through glommio, one shard per core.
//!
//! Map of the crate (see docs/ARCHITECTURE.md for the whole picture):
//! - [`batch`]: the v2 batch header view, validation and in-place offset assignment;
//!   [`batch_builder`] encodes batches for tools and tests.
//! - [`appender`]: aligned write-behind with the in-memory tail page.
//! - [`index`], [`segment`], [`scan`]: one segment file, its sparse indexes, and the walk
//!   over its batches used by recovery and reads.
//! - [`log`]: a partition log — append, read, flush (group commit), truncate, retention.
//! - [`compaction`]: batch filtering for `cleanup.policy=compact`.
//! - [`tail_cache`]: recent batches served without disk reads.
//! - [`epochs`]: leader epoch history.
//! - [`shard`]: the executors and the partitions each owns; [`mesh`]: the channels between them;
//!   [`shard_reply`]: the one-answer channel a shard answers another on.
//! - [`source_order`]: the check that a source's requests take effect in order.
//! - [`fifo_lock`]: the first-come, first-served lock that orders appends.
//! - [`pending_flushes`]: the logs a shard's flush tick must visit.
//! - [`fs`]: small files (indexes, checkpoints) and directory fsync.
//! - [`sync_stats`]: the shard's fsync count and latencies ([`latency`] records).

pub mod appender;
pub mod batch;
pub mod batch_builder;
pub mod compaction;
pub mod config;
pub mod epochs;
pub mod error;
pub mod fifo_lock;
pub mod fs;
pub mod index;
pub mod latency;
pub mod log;
pub mod mesh;
pub mod pending_flushes;
pub mod producer_state;
pub mod read_ahead;
pub mod scan;
pub mod segment;
pub mod shard;
pub mod shard_reply;
pub mod source_order;
pub mod sync_stats;
pub mod tail_cache;
pub mod txn_index;

pub use compaction::CompactionReport;
pub use config::{FlushPolicy, LogConfig};
pub use error::{EngineError, Result};
pub use log::{AppendInfo, LogRead, PartitionLog, ReadLimit, RecoveryReport, RetentionReport, TxnMarker};
