//! The yardstick: sequential O_DIRECT writes of 1 MiB aligned buffers to a pre-allocated
//! file, several in flight, on the same disk the logs use. Nothing a log does can beat it.

use futures::stream::{FuturesUnordered, StreamExt};
use glommio::io::OpenOptions;
use sluice_engine::appender::{spawn_shared, WriteHandle};
use sluice_engine::log::UNSYNCED_LIMITS_MAX;
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
    /// An fdatasync was started after every this many bytes written (one at a time), and
    /// writes waited while 4 times this many were not covered by a finished one, as the
    /// log's bytes flush policy does; `None`: only one fsync, at the end.
    pub fsync_every_bytes: Option<u64>,
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
/// file pre-allocated to `bytes_max`, then fdatasyncs. With `fsync_every_bytes`, follows
/// the log's bytes flush policy with bare writes: the disk's own cost of that policy. Must
/// run inside a glommio executor.
pub async fn measure(
    dir: &Path,
    duration: Duration,
    bytes_max: u64,
    queue_depth: usize,
    fsync_every_bytes: Option<u64>,
) -> Result<RawResult> {
    let path = dir.join("raw-disk.bench");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&path)
        .await
        .map_err(|e| EngineError::io("create", &path, e))?;
    preallocate_with_patience(&file, &path, bytes_max).await?;
    let file = std::rc::Rc::new(file);
    let started = Instant::now();
    let mut position = 0u64;
    let mut in_flight = FuturesUnordered::new();
    let mut done = 0u64;
    // The fsync in flight, the byte count it covers, and what a finished one covered.
    let mut sync: Option<WriteHandle> = None;
    let mut sync_start = 0u64;
    let mut durable = 0u64;
    // Same bound as the log's bytes policy: writes wait while too much is unsynced.
    let may_write = |position: u64, durable: u64| {
        fsync_every_bytes.is_none_or(|every| position + RAW_WRITE_BYTES as u64 - durable <= UNSYNCED_LIMITS_MAX * every)
    };
    loop {
        if let Some(result) = sync.as_ref().and_then(|s| s.peek()) {
            result?;
            durable = sync_start;
            sync = None;
        }
        if let Some(every) = fsync_every_bytes {
            if sync.is_none() && done - sync_start >= every {
                sync_start = done;
                let (file, path) = (file.clone(), path.clone());
                sync = Some(spawn_shared(async move {
                    file.fdatasync().await.map_err(|e| EngineError::io("fdatasync", &path, e))
                }));
            }
        }
        let time_left = started.elapsed() < duration;
        while time_left
            && in_flight.len() < queue_depth
            && position + RAW_WRITE_BYTES as u64 <= bytes_max
            && may_write(position, durable)
        {
            let mut buffer = file.alloc_dma_buffer(RAW_WRITE_BYTES);
            buffer.as_bytes_mut().fill((position >> 20) as u8);
            let file = file.clone();
            in_flight.push(async move { file.write_at(buffer, position).await });
            position += RAW_WRITE_BYTES as u64;
        }
        match in_flight.next().await {
            Some(written) => done += written.map_err(|e| EngineError::io("write", &path, e))? as u64,
            None => match sync.take() {
                // Writes wait for this fsync (or the time is up): let it finish.
                Some(pending) => {
                    pending.await?;
                    durable = sync_start;
                    if !time_left {
                        break;
                    }
                }
                // Nothing in flight and no fsync to wait for: the time or the file is used up.
                None => break,
            },
        }
    }
    file.fdatasync().await.map_err(|e| EngineError::io("fdatasync", &path, e))?;
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path).map_err(|e| EngineError::io("remove", &path, e))?;
    Ok(RawResult { queue_depth, fsync_every_bytes, bytes: done, elapsed })
}

/// How long to keep retrying a pre-allocation that fails for lack of space.
const ENOSPC_PATIENCE: Duration = Duration::from_secs(60);

/// Pre-allocates `bytes`, retrying while the file system says it is full: on
/// thin-provisioned disks mounted with `discard`, space freed by the previous case's
/// deletions comes back only after a while.
async fn preallocate_with_patience(file: &glommio::io::DmaFile, path: &Path, bytes: u64) -> Result<()> {
    let started = Instant::now();
    loop {
        match file.pre_allocate(bytes, false).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                let error = std::io::Error::from(error);
                if error.kind() != std::io::ErrorKind::StorageFull || started.elapsed() > ENOSPC_PATIENCE {
                    return Err(EngineError::io("fallocate", path, error));
                }
                glommio::timer::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
