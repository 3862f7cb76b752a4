//! Sequential read-ahead for consumers catching up from disk.
//!
//! A fetch that reads a partition from disk ends at a batch boundary; the next fetch of a
//! catching-up consumer starts right there. So after such a read the log starts the DMA
//! read of the next window at once, and the consumer's next fetch finds it done (or in
//! flight) instead of waiting for the disk after the response went out: the disk works
//! while the network and the consumer do.
//!
//! Each log keeps at most one read-ahead; a shard holds at most
//! [`SHARD_READ_AHEAD_BYTES_MAX`] of them in all, so thousands of partitions read once
//! each cannot pin gigabytes. A read-ahead refers to its segment file weakly: a segment
//! removed by retention or replaced by compaction is not kept open by it, and never
//! matches a later read.

use crate::error::{EngineError, Result};
use bytes::BytesMut;
use glommio::io::DmaFile;
use glommio::task::JoinHandle;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::{Rc, Weak};

/// Bytes of read-ahead a shard holds or has in flight, over all its logs.
pub const SHARD_READ_AHEAD_BYTES_MAX: u64 = 64 << 20;

thread_local! {
    /// Read-ahead bytes held on this thread's shard (one thread: no atomics).
    static SHARD_READ_AHEAD_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Read-ahead bytes the calling shard holds (for tests and metrics).
pub fn shard_read_ahead_bytes() -> u64 {
    SHARD_READ_AHEAD_BYTES.with(Cell::get)
}

/// Counts bytes against the shard's budget until dropped.
struct Budget(u64);

impl Budget {
    fn take(bytes: u64) -> Option<Budget> {
        SHARD_READ_AHEAD_BYTES.with(|held| {
            (held.get() + bytes <= SHARD_READ_AHEAD_BYTES_MAX).then(|| {
                held.set(held.get() + bytes);
                Budget(bytes)
            })
        })
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        SHARD_READ_AHEAD_BYTES.with(|held| held.set(held.get() - self.0));
    }
}

/// One window of a segment file being read (or read) ahead of the next fetch.
pub struct ReadAhead {
    file: Weak<DmaFile>,
    /// The offset the window's first batch starts with.
    next_offset: i64,
    /// File position of the window's first byte (a batch boundary).
    position: u64,
    /// The read, holding its budget until its bytes are taken or dropped (a dropped
    /// read-ahead's read still finishes, and still counts until then).
    data: JoinHandle<(Budget, Result<BytesMut>)>,
}

impl ReadAhead {
    /// Starts reading `[position, end)` of `file` (at most `bytes` of it) in a task, if
    /// the shard's budget allows; `next_offset` is the offset that starts at `position`.
    pub fn start(
        file: &Rc<DmaFile>,
        path: PathBuf,
        position: u64,
        end: u64,
        bytes: usize,
        next_offset: i64,
    ) -> Option<Self> {
        let len = (end.saturating_sub(position)).min(bytes as u64);
        if len == 0 {
            return None;
        }
        let budget = Budget::take(len)?;
        let reading = file.clone();
        let data = glommio::spawn_local(async move {
            let read = reading.read_at(position, len as usize).await;
            drop(reading);
            // The DMA buffer is not `Send` and cannot be split; batches are slices of this copy.
            let bytes = read.map(|read| BytesMut::from(&read[..])).map_err(|e| EngineError::io("read", &path, e));
            (budget, bytes)
        })
        .detach();
        Some(ReadAhead { file: Rc::downgrade(file), next_offset, position, data })
    }

    /// Whether a read of `file` from `offset` continues where this window starts.
    pub fn continues(&self, file: &Rc<DmaFile>, offset: i64) -> bool {
        offset == self.next_offset && self.file.upgrade().is_some_and(|own| Rc::ptr_eq(&own, file))
    }

    /// The window's position and bytes, once read; `None` if the read failed (the reader
    /// then reads the file itself and meets the error there).
    pub async fn into_window(self) -> Option<(u64, BytesMut)> {
        let position = self.position;
        match self.data.await {
            Some((_budget, Ok(bytes))) => Some((position, bytes)),
            Some((_, Err(_))) | None => None,
        }
    }
}
