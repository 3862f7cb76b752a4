//! The yardstick: sequential O_DIRECT writes of 1 MiB aligned buffers to a pre-allocated
//! file, several in flight, on the same disk the logs use. Nothing a log does can beat it.

use futures::stream::{FuturesUnordered, StreamExt};
use glommio::io::OpenOptions;
use sluice_engine::{EngineError, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Size of each raw write.
pub const RAW_WRITE_BYTES: usize = 1 << 20;

/// Outcome of one raw measurement.
#[derive(Debug, Clone, Copy)]
pub struct RawResult {
    /// Writes kept in flight.
    pub queue_depth: usize,
    /// Bytes written (and fsynced at the end).
    pub bytes: u64,
    /// Wall time including the final fdatasync.
    pub elapsed: Duration,
}

impl RawResult {
    /// Throughput in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Writes for `duration` (or until `bytes_max`) with `queue_depth` writes in flight to a
/// file pre-allocated to `bytes_max`, then fdatasyncs. Must run inside a glommio executor.
pub async fn measure(dir: &Path, duration: Duration, bytes_max: u64, queue_depth: usize) -> Result<RawResult> {
    let path = dir.join("raw-disk.bench");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&path)
        .await
        .map_err(|e| EngineError::io("create", &path, e))?;
    file.pre_allocate(bytes_max, false).await.map_err(|e| EngineError::io("fallocate", &path, e))?;
    let started = Instant::now();
    let mut position = 0u64;
    let mut in_flight = FuturesUnordered::new();
    let mut done = 0u64;
    loop {
        let time_left = started.elapsed() < duration;
        while time_left && in_flight.len() < queue_depth && position + RAW_WRITE_BYTES as u64 <= bytes_max {
            let mut buffer = file.alloc_dma_buffer(RAW_WRITE_BYTES);
            buffer.as_bytes_mut().fill((position >> 20) as u8);
            in_flight.push(file.write_at(buffer, position));
            position += RAW_WRITE_BYTES as u64;
        }
        match in_flight.next().await {
            Some(written) => done += written.map_err(|e| EngineError::io("write", &path, e))? as u64,
            None => break,
        }
    }
    drop(in_flight);
    file.fdatasync().await.map_err(|e| EngineError::io("fdatasync", &path, e))?;
    let elapsed = started.elapsed();
    file.close().await.map_err(|e| EngineError::io("close", &path, e))?;
    std::fs::remove_file(&path).map_err(|e| EngineError::io("remove", &path, e))?;
    Ok(RawResult { queue_depth, bytes: done, elapsed })
}
