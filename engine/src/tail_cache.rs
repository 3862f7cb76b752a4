//! Recent batches of a partition kept in memory as the `Bytes` that were appended, so
//! real-time consumers are served without a disk read or a copy.
//!
//! Invariant: the cache holds a contiguous run of batches ending at the log end, and it
//! never lets go of a batch that is not yet readable from disk (still in the appender's
//! buffer or in a write that has not completed). So a read either starts inside the
//! cache or is wholly served from disk.

use bytes::Bytes;
use std::collections::VecDeque;

/// One cached batch.
#[derive(Debug, Clone)]
struct CachedBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
    /// Base offset of the segment holding it, and its end position in that file.
    segment_base: i64,
    end_position: u64,
}

/// The cache of recent batches of one partition.
#[derive(Debug, Default)]
pub struct TailCache {
    batches: VecDeque<CachedBatch>,
    bytes: usize,
}

impl TailCache {
    /// Adds the newest batch.
    pub fn push(&mut self, base_offset: i64, last_offset: i64, bytes: Bytes, segment_base: i64, end_position: u64) {
        debug_assert!(self.batches.back().is_none_or(|b| b.last_offset < base_offset));
        self.bytes += bytes.len();
        self.batches.push_back(CachedBatch { base_offset, last_offset, bytes, segment_base, end_position });
    }

    /// Drops the oldest batches while over `budget_bytes`, but only those that
    /// `on_disk(segment_base, end_position)` says are readable from disk.
    pub fn evict(&mut self, budget_bytes: usize, mut on_disk: impl FnMut(i64, u64) -> bool) {
        while self.bytes > budget_bytes {
            let Some(oldest) = self.batches.front() else { break };
            if !on_disk(oldest.segment_base, oldest.end_position) {
                break;
            }
            self.bytes -= oldest.bytes.len();
            self.batches.pop_front();
        }
    }

    /// Batches holding offsets `>= from` and `< max_offset`, up to `max_bytes` (the first
    /// batch whole even if larger). `None` when `from` is older than the cache.
    pub fn read(&self, from: i64, max_offset: i64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.batches.front()?;
        if from < first.base_offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < from);
        let mut out = Vec::new();
        let mut total = 0;
        for batch in self.batches.range(start..) {
            if batch.base_offset >= max_offset || (!out.is_empty() && total + batch.bytes.len() > max_bytes) {
                break;
            }
            total += batch.bytes.len();
            out.push(batch.bytes.clone());
        }
        Some(out)
    }

    /// Forgets batches with offsets `>= offset` (log truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        while self.batches.back().is_some_and(|b| b.last_offset >= offset) {
            let removed = self.batches.pop_back().expect("checked");
            self.bytes -= removed.bytes.len();
        }
    }

    /// Forgets batches wholly below `offset` (log start moved).
    pub fn drop_before(&mut self, offset: i64) {
        while self.batches.front().is_some_and(|b| b.last_offset < offset) {
            let removed = self.batches.pop_front().expect("checked");
            self.bytes -= removed.bytes.len();
        }
    }

    /// First offset held, if any.
    pub fn first_offset(&self) -> Option<i64> {
        self.batches.front().map(|b| b.base_offset)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
