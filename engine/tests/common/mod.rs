//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_engine::batch::BatchHeader;
use sluice_engine::batch_builder::synthetic_batch;
use sluice_engine::{LogConfig, LogRead, PartitionLog, ReadLimit};
use std::future::Future;

/// Runs `future` on a fresh glommio executor with the io_memory limit non-root users need.
pub fn run<T>(future: impl Future<Output = T>) -> T {
    LocalExecutorBuilder::new(Placement::Unbound).io_memory(2 << 20).make().expect("executor starts").run(future)
}

/// A temporary directory on the same file system as the build (never tmpfs, where
/// glommio silently turns direct I/O off).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

/// A batch of `records` records of `value_bytes` each, distinguishable by `seed`.
pub fn batch(records: usize, value_bytes: usize, seed: u64) -> Bytes {
    synthetic_batch(records, value_bytes, seed, 1_700_000_000_000 + seed as i64)
}

/// Small segments and indexes, so that tests cross segment boundaries quickly.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        tail_cache_bytes: 8 * 1024,
        ..LogConfig::default()
    }
}

/// Reads everything from `from` to the log end, batch by batch.
pub async fn read_all(log: &PartitionLog, from: i64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let LogRead { batches, log_end_offset, .. } =
            log.read(offset, 64 * 1024, ReadLimit::LogEnd).await.expect("read");
        if batches.is_empty() {
            assert_eq!(offset, log_end_offset, "empty read before the log end");
            return out;
        }
        for b in batches {
            let header = BatchHeader::parse_verified(&b, usize::MAX).expect("served batches are valid");
            assert!(header.last_offset() >= offset);
            offset = header.last_offset() + 1;
            out.push(b);
        }
    }
}

/// The record payload of a batch without the broker-owned header fields, for comparing a
/// stored batch with what was appended.
pub fn payload(batch: &[u8]) -> &[u8] {
    &batch[21..]
}
