//! Sequential walk over the batches stored in a segment file, read with DMA.
//!
//! Recovery, index rebuilding, reads from disk and timestamp lookups all walk batches
//! from a known-good position; this is the one place that does it.

use crate::batch::{BatchError, BatchHeader};
use crate::config::SEGMENT_BYTES_MAX;
use crate::error::{EngineError, Result};
use bytes::{Bytes, BytesMut};
use glommio::io::DmaFile;
use std::ops::ControlFlow;
use std::path::Path;

/// Bytes read from the file per DMA read, unless the reader asks for more.
pub const SCAN_READ_BYTES: usize = 1 << 20;

/// Where and why a walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// Reached the requested end.
    Complete,
    /// The visitor stopped the walk before the batch at `end` (which it did not take).
    Stopped,
    /// The bytes at `position` are not a valid batch (torn, zeroed, corrupt).
    Invalid {
        /// File position of the bad batch.
        position: u64,
        /// Why it is invalid.
        reason: BatchError,
    },
}

/// Result of a walk: the position just after the last batch visited, and why it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Position after the last valid batch visited.
    pub end: u64,
    /// Why the walk ended.
    pub stop: ScanStop,
}

/// Walks batches of `file` in `[from, to)`, calling `visit(position, header, batch)` for
/// each valid one; `batch` is the batch's bytes, a zero-copy slice of the read buffer that
/// the visitor may keep. With `verify_crc` each batch's CRC is checked before it is
/// visited. Stops at the first invalid batch (reported, not an error: the caller decides
/// whether that means a torn tail or corruption).
pub async fn scan_batches(
    file: &DmaFile,
    path: &Path,
    from: u64,
    to: u64,
    verify_crc: bool,
    visit: impl FnMut(u64, BatchHeader<'_>, &Bytes) -> ControlFlow<()>,
) -> Result<ScanOutcome> {
    scan_batches_in_reads_of(file, path, ScanFrom::position(from), to, verify_crc, SCAN_READ_BYTES, visit).await
}

/// Where a walk starts: a batch boundary, and the file's bytes from there that were
/// already read (a read-ahead), maybe none.
pub struct ScanFrom {
    /// File position of the first batch.
    pub position: u64,
    /// Bytes of the file from `position` on, already read.
    pub prefetched: BytesMut,
}

impl ScanFrom {
    /// A start with nothing read yet.
    pub fn position(position: u64) -> Self {
        ScanFrom { position, prefetched: BytesMut::new() }
    }
}

/// [`scan_batches`] reading at least `read_bytes` per DMA read: a reader that knows how
/// much it wants (a fetch of up to `max_bytes`) gets it in one read instead of a full
/// window and then the rest of the batch that straddles it.
pub async fn scan_batches_in_reads_of(
    file: &DmaFile,
    path: &Path,
    from: ScanFrom,
    to: u64,
    verify_crc: bool,
    read_bytes: usize,
    mut visit: impl FnMut(u64, BatchHeader<'_>, &Bytes) -> ControlFlow<()>,
) -> Result<ScanOutcome> {
    // Bytes read but not yet visited; it always starts at `cursor`.
    let mut window = from.prefetched;
    let mut cursor = from.position;
    loop {
        if cursor >= to {
            return Ok(ScanOutcome { end: cursor, stop: ScanStop::Complete });
        }
        let window_end = cursor + window.len() as u64;
        let limit = (to - cursor) as usize;
        // A length past `to` parses as Truncated: that is what a torn tail looks like.
        let parsed =
            BatchHeader::parse(&window[..window.len().min(limit)], SEGMENT_BYTES_MAX as usize).and_then(|header| {
                if verify_crc {
                    header.verify_crc().map(|()| header.size())
                } else {
                    Ok(header.size())
                }
            });
        match parsed {
            Ok(size) => {
                let batch = window.split_to(size).freeze();
                let header = BatchHeader::parse(&batch, usize::MAX).expect("parsed above");
                if visit(cursor, header, &batch).is_break() {
                    return Ok(ScanOutcome { end: cursor, stop: ScanStop::Stopped });
                }
                cursor += size as u64;
            }
            Err(BatchError::Truncated { needed, .. }) if window_end < to => {
                let want = needed.max(read_bytes).min((to - window_end) as usize);
                let read = file.read_at(window_end, want).await.map_err(|e| EngineError::io("read", path, e))?;
                if read.is_empty() {
                    return Ok(ScanOutcome {
                        end: cursor,
                        stop: ScanStop::Invalid {
                            position: cursor,
                            reason: BatchError::Truncated { available: window.len(), needed },
                        },
                    });
                }
                // The one copy out of the DMA buffer (not `Send`, so it cannot be kept).
                window.reserve(read.len());
                window.extend_from_slice(&read);
            }
            Err(reason) => {
                return Ok(ScanOutcome { end: cursor, stop: ScanStop::Invalid { position: cursor, reason } });
            }
        }
    }
}
