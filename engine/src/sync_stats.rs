//! How many `fdatasync`s this shard issued and how long they took: every data fsync of a
//! segment file goes through [`fdatasync`]. Kept in a thread-local because a shard is one
//! thread: recording is a histogram increment, with no sharing, atomics or locks.

use crate::error::{EngineError, Result};
use crate::latency::Latencies;
use glommio::io::DmaFile;
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

thread_local! {
    /// fsync latencies of this thread's shard.
    static SHARD_SYNC_LATENCIES: RefCell<Latencies> = RefCell::new(Latencies::default());
}

/// `fdatasync` of a segment file, counted and timed for this shard.
pub async fn fdatasync(file: &DmaFile, path: &Path) -> Result<()> {
    let started = Instant::now();
    let result = file.fdatasync().await.map_err(|e| EngineError::io("fdatasync", path, e));
    SHARD_SYNC_LATENCIES.with(|latencies| latencies.borrow_mut().record(started.elapsed()));
    result
}

/// A copy of this shard's fsync latencies since its thread started.
pub fn shard_sync_latencies() -> Latencies {
    SHARD_SYNC_LATENCIES.with(|latencies| latencies.borrow().clone())
}
