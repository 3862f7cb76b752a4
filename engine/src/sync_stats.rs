//! How many `fdatasync`s this shard issued and how long they took: every data fsync of a
//! segment file goes through [`fdatasync`]. Kept in a thread-local because a shard is one
//! thread: recording is a histogram increment, with no sharing, atomics or locks.

use crate::error::{EngineError, Result};
use glommio::io::DmaFile;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

/// Longest fsync latency recorded exactly (60 s, in microseconds); longer ones count as this.
pub const SYNC_LATENCY_US_MAX: u64 = 60_000_000;

/// A latency histogram in microseconds, 1 µs to [`SYNC_LATENCY_US_MAX`], 3 significant
/// digits (about 0.1 % error at any quantile).
pub fn new_latency_histogram_us() -> Histogram<u64> {
    Histogram::new_with_bounds(1, SYNC_LATENCY_US_MAX, 3).expect("static bounds are valid")
}

thread_local! {
    /// fsync latencies of this thread's shard; its length is the fsync count.
    static SHARD_SYNC_LATENCY_US: RefCell<Histogram<u64>> = RefCell::new(new_latency_histogram_us());
}

/// `fdatasync` of a segment file, counted and timed for this shard.
pub async fn fdatasync(file: &DmaFile, path: &Path) -> Result<()> {
    let started = Instant::now();
    let result = file.fdatasync().await.map_err(|e| EngineError::io("fdatasync", path, e));
    let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    // saturating_record clamps to the histogram's range: a 2-minute stall is not an error.
    SHARD_SYNC_LATENCY_US.with(|latency| latency.borrow_mut().saturating_record(elapsed_us.max(1)));
    result
}

/// A copy of this shard's fsync latency histogram (count = `len()`), since the thread
/// started.
pub fn shard_sync_latency_us() -> Histogram<u64> {
    SHARD_SYNC_LATENCY_US.with(|latency| latency.borrow().clone())
}
