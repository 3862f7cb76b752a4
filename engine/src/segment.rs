//! One segment of a partition log: `<base offset>.log` plus its sparse indexes.
//!
//! A segment is either *active* (the last one; it has an [`Appender`] and its index lives
//! in memory) or *closed* (fully fsynced, trimmed to its logical size, index files
//! written). The log rolls from one to the other; nothing else reopens a closed segment
//! for writing except truncation, which goes through [`Segment::open_active`] like
//! recovery does.

use crate::appender::{page_down, Appender, PAGE_BYTES};
use crate::batch::{BatchError, BatchHeader};
use crate::config::LogConfig;
use crate::error::{EngineError, Result};
use crate::index::SegmentIndex;
use crate::read_ahead::ReadAhead;
use crate::scan::{scan_batches, scan_batches_in_reads_of, ScanFrom, ScanStop, SCAN_READ_BYTES};
use crate::txn_index::AbortedTxn;
use bytes::{Bytes, BytesMut};
use glommio::io::{DmaFile, OpenOptions};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Beyond `max_bytes`, what a read takes in its first DMA read: the index position lies up
/// to an index interval before the first batch (4 KiB by default), and the batch that
/// reaches `max_bytes` is returned whole only when it is the first.
const READ_SLACK_BYTES: usize = 64 << 10;
/// The most a single DMA read of a fetch takes (bounds the buffer one read pins).
const READ_BYTES_MAX: usize = 16 << 20;
use std::rc::Rc;

/// Suffix of a compacted segment being written next to `<base>.log`; a file with it is
/// never part of the log (the rename onto `<base>.log` is the commit), so recovery
/// deletes any it finds.
pub const CLEANED_SUFFIX: &str = ".cleaned";

/// File name of a segment's log file: the base offset in 20 digits, as Kafka names them.
pub fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// Parses a segment log file name back into its base offset.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// What recovery found at the end of an active segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Position where valid data ended and the file was trimmed.
    pub position: u64,
    /// Bytes discarded after it.
    pub discarded_bytes: u64,
    /// What was found there.
    pub reason: BatchError,
}

/// Where a read of one segment starts and what bounds it.
pub struct ReadPlan {
    file: Rc<DmaFile>,
    path: PathBuf,
    start_position: u64,
    end_position: u64,
    corrupt_at: Option<(u64, BatchError)>,
}

/// One segment of a partition log.
pub struct Segment {
    base_offset: i64,
    path: PathBuf,
    file: Rc<DmaFile>,
    size: u64,
    next_offset: i64,
    index: SegmentIndex,
    appender: Option<Appender>,
    /// Max timestamp of the first batch: `segment.ms` counts from it, in record time, as
    /// Kafka does, so a restart does not reset a segment's age.
    first_batch_timestamp: Option<i64>,
    /// A closed segment whose bytes stop being valid here; reads up to it still work.
    corrupt_at: Option<(u64, BatchError)>,
    /// The aborted transactions whose markers this segment holds, in marker order
    /// ([`crate::txn_index`]). A closed segment's are in its `.txnindex` file; the active
    /// segment's are rebuilt from the producer state's replay at open.
    aborted: Vec<AbortedTxn>,
}

impl Segment {
    /// Creates an empty active segment starting at `base_offset`.
    pub async fn create(dir: &Path, base_offset: i64) -> Result<Segment> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .dma_open(&path)
            .await
            .map_err(|e| EngineError::io("create", &path, e))?;
        let file = Rc::new(file);
        crate::fs::sync_dir(dir).await?;
        Ok(Segment {
            base_offset,
            appender: Some(Appender::new(file.clone(), &path, 0, &[])),
            path,
            file,
            size: 0,
            next_offset: base_offset,
            index: SegmentIndex::default(),
            first_batch_timestamp: None,
            corrupt_at: None,
            aborted: Vec::new(),
        })
    }

    /// Opens an existing segment for appending: walks every batch from the start checking
    /// CRCs and offset order, trims the file at the first invalid batch (a torn or zeroed
    /// tail after a crash) and makes that durable before anything new is written.
    pub async fn open_active(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        truncate_at: Option<u64>,
    ) -> Result<(Segment, Option<TornTail>)> {
        let path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| EngineError::io("open", &path, e))?;
        let file_size = file.file_size().await.map_err(|e| EngineError::io("stat", &path, e))?;
        let limit = truncate_at.map_or(file_size, |t| t.min(file_size));
        let mut index = SegmentIndex::default();
        let mut next_offset = base_offset;
        let mut first_batch_timestamp = None;
        let mut rejected = None;
        let outcome = scan_batches(&file, &path, 0, limit, true, |position, header, _| {
            if let Err(reason) = check_stored_batch(base_offset, next_offset, position, &header) {
                rejected = Some(reason);
                return ControlFlow::Break(());
            }
            first_batch_timestamp.get_or_insert(header.max_timestamp());
            index.on_stored_batch(base_offset, position, &header, config.index_interval_bytes);
            next_offset = header.last_offset() + 1;
            ControlFlow::Continue(())
        })
        .await?;
        let end = outcome.end;
        let reason = match outcome.stop {
            ScanStop::Invalid { reason, .. } => Some(reason),
            ScanStop::Stopped => rejected,
            ScanStop::Complete => None,
        };
        // With `truncate_at` the caller asked for the cut; it is not a torn tail.
        let torn = reason.filter(|_| truncate_at.is_none()).map(|reason| TornTail {
            position: end,
            discarded_bytes: file_size - end,
            reason,
        });
        if end < file_size {
            file.truncate(end).await.map_err(|e| EngineError::io("truncate", &path, e))?;
            crate::sync_stats::fdatasync(&file, &path).await?;
        }
        let tail_start = page_down(end);
        let tail_page = if end > tail_start {
            let page = file
                .read_at_aligned(tail_start, PAGE_BYTES as usize)
                .await
                .map_err(|e| EngineError::io("read", &path, e))?;
            assert!(page.len() as u64 >= end - tail_start, "tail page shorter than the data");
            page[..(end - tail_start) as usize].to_vec()
        } else {
            Vec::new()
        };
        let file = Rc::new(file);
        // Entries past a torn tail or a cut are forgotten by the producer-state replay.
        let aborted = crate::fs::read_txn_index(&path)?;
        let segment = Segment {
            base_offset,
            appender: Some(Appender::new(file.clone(), &path, end, &tail_page)),
            path,
            file,
            size: end,
            next_offset,
            index,
            first_batch_timestamp,
            corrupt_at: None,
            aborted,
        };
        Ok((segment, torn))
    }

    /// Opens a closed segment read-only. Loads its index files, or rebuilds them from the
    /// log when missing or inconsistent, and walks the batches after the last index entry
    /// to learn the last offset. A structurally bad batch is remembered (`corrupt_at`):
    /// the data before it stays readable and reads reaching it get a [`EngineError::Corrupt`].
    pub async fn open_closed(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Segment> {
        let path = dir.join(log_file_name(base_offset));
        let file = DmaFile::open(&path).await.map_err(|e| EngineError::io("open", &path, e))?;
        let size = file.file_size().await.map_err(|e| EngineError::io("stat", &path, e))?;
        let loaded = crate::fs::read_index_files(&path)
            .and_then(|(offsets, times)| SegmentIndex::decode(&offsets, &times, size));
        let rebuilt = loaded.is_none();
        let mut index = loaded.unwrap_or_default();
        let (start_offset, start_position) = index.last_offset_entry().unwrap_or((0, 0));
        let mut next_offset = base_offset + i64::from(start_offset);
        let mut rejected = None;
        let outcome = scan_batches(&file, &path, u64::from(start_position), size, false, |position, header, _| {
            if let Err(reason) = check_stored_batch(base_offset, next_offset, position, &header) {
                rejected = Some(reason);
                return ControlFlow::Break(());
            }
            if rebuilt {
                index.on_stored_batch(base_offset, position, &header, config.index_interval_bytes);
            } else {
                index.observe_max_timestamp(header.max_timestamp());
            }
            next_offset = header.last_offset() + 1;
            ControlFlow::Continue(())
        })
        .await?;
        let stop = match (outcome.stop, rejected) {
            (ScanStop::Stopped, Some(reason)) => ScanStop::Invalid { position: outcome.end, reason },
            (stop, _) => stop,
        };
        let corrupt_at = match stop {
            ScanStop::Complete | ScanStop::Stopped => None,
            ScanStop::Invalid { position, reason } => {
                tracing::error!(file = %path.display(), position, %reason, "corrupt batch in closed segment; data before it stays readable");
                Some((position, reason))
            }
        };
        if rebuilt && corrupt_at.is_none() {
            crate::fs::write_index_files(&path, &index).await?;
        }
        let aborted = crate::fs::read_txn_index(&path)?;
        Ok(Segment {
            base_offset,
            path,
            file: Rc::new(file),
            size,
            next_offset,
            index,
            appender: None,
            first_batch_timestamp: None,
            corrupt_at,
            aborted,
        })
    }

    /// First offset this segment may hold (its file name).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// One past the last offset stored.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Logical size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The `.log` file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Largest batch timestamp in the segment, if any batch.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.index.max_timestamp()
    }
    /// Whether a batch with max timestamp `timestamp_ms` arrives `segment_ms` or more after
    /// this segment's first batch (Kafka's time-based roll, in record time).
    pub fn is_older_than(&self, segment_ms: std::time::Duration, timestamp_ms: i64) -> bool {
        self.first_batch_timestamp
            .is_some_and(|first| timestamp_ms.saturating_sub(first) >= segment_ms.as_millis() as i64)
    }
    /// Whether the segment still takes appends.
    pub fn is_active(&self) -> bool {
        self.appender.is_some()
    }
    /// The appender of the active segment.
    pub fn appender_mut(&mut self) -> Option<&mut Appender> {
        self.appender.as_mut()
    }
    /// The segment's file.
    pub fn file(&self) -> &Rc<DmaFile> {
        &self.file
    }
    /// fsyncs the segment file (recovery makes what it read back durable).
    pub async fn sync(&self) -> Result<()> {
        crate::sync_stats::fdatasync(&self.file, &self.path).await
    }
    /// The corruption found when this closed segment was opened, if any.
    pub fn corruption(&self) -> Option<&(u64, BatchError)> {
        self.corrupt_at.as_ref()
    }

    /// Appends a batch whose offsets are already assigned. Synchronous: copies into the
    /// appender's buffer; the caller handles back-pressure and flushing.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader<'_>, index_interval_bytes: u64) -> Result<()> {
        let appender = self.appender.as_mut().expect("append to a closed segment");
        let position = appender.end();
        assert!(header.base_offset() >= self.next_offset, "offsets go forward");
        appender.write(batch)?;
        self.index.on_stored_batch(self.base_offset, position, header, index_interval_bytes);
        self.first_batch_timestamp.get_or_insert(header.max_timestamp());
        self.size = appender.end();
        self.next_offset = header.last_offset() + 1;
        Ok(())
    }

    /// The aborted transactions whose markers lie in this segment, in marker order.
    pub fn aborted_txns(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Records an aborted transaction whose marker was just stored here.
    pub fn record_aborted(&mut self, txn: AbortedTxn) {
        debug_assert!(self.aborted.last().is_none_or(|last| last.last_offset < txn.last_offset));
        self.aborted.push(txn);
    }

    /// Forgets the aborted transactions whose markers lie at or after `offset` (the log
    /// is cut there, or a replay from there records them again). Returns whether any went.
    pub fn forget_aborted_from(&mut self, offset: i64) -> bool {
        let before = self.aborted.len();
        self.aborted.retain(|txn| txn.last_offset < offset);
        self.aborted.len() < before
    }

    /// Forgets everything from file position `position` (offset `next_offset`) on, and the
    /// appender: the log is about to cut the file there and reopen it with
    /// [`Segment::open_active`]. Reads in between see only what is kept.
    pub fn shrink_to(&mut self, position: u64, next_offset: i64) {
        assert!(position <= self.size && next_offset <= self.next_offset);
        self.appender = None;
        self.size = position;
        self.next_offset = next_offset;
    }

    /// Turns the active segment into a closed one after its data was flushed and the file
    /// trimmed: drops the appender and returns the index to write.
    pub fn mark_closed(&mut self) -> &SegmentIndex {
        assert!(self.appender.take().is_some(), "closing a closed segment");
        &self.index
    }

    /// The read of offsets from `offset`: the file and the index position to start at.
    /// Data of the active segment above what has reached the disk is not readable here;
    /// the log serves it from its tail cache.
    pub fn plan_read(&mut self, offset: i64) -> ReadPlan {
        let relative = (offset.max(self.base_offset) - self.base_offset).min(i64::from(u32::MAX)) as u32;
        let (_, position) = self.index.position_for(relative);
        let end_position = match self.appender.as_mut() {
            Some(appender) => appender.readable_on_disk().min(self.size),
            None => self.size,
        };
        ReadPlan {
            file: self.file.clone(),
            path: self.path.clone(),
            start_position: u64::from(position),
            end_position,
            corrupt_at: self.corrupt_at.clone(),
        }
    }

    /// The position at which to scan for timestamp `timestamp`.
    pub fn plan_time_lookup(&mut self, timestamp: i64) -> ReadPlan {
        let relative = self.index.scan_start_for_time(timestamp);
        self.plan_read(self.base_offset + i64::from(relative))
    }
}

/// Checks that a stored batch can sit at `position` of the segment starting at
/// `segment_base`, after offsets below `next_offset` (the segment's base for the first
/// batch): offsets only grow, and they fit the index's 32-bit fields. The first batch
/// carries the segment's base offset unless compaction removed the batches before it, so
/// it may start later, never earlier.
fn check_stored_batch(
    segment_base: i64,
    next_offset: i64,
    position: u64,
    header: &BatchHeader<'_>,
) -> Result<(), BatchError> {
    let (base_offset, last_offset) = (header.base_offset(), header.last_offset());
    if base_offset < next_offset || base_offset < segment_base {
        return Err(BatchError::OffsetOrder { expected_at_least: next_offset });
    }
    if last_offset - segment_base > i64::from(u32::MAX) || position > u64::from(u32::MAX) {
        return Err(BatchError::OffsetOutsideSegment { base_offset, last_offset, segment_base });
    }
    Ok(())
}

/// Batches read from one segment.
pub struct ReadBatches {
    /// Whole batches, in offset order, each a slice of the read buffer.
    pub batches: Vec<Bytes>,
    /// Bytes in `batches`.
    pub bytes: usize,
    /// One past the last offset returned.
    pub next_offset: i64,
    /// The read of the window after the returned batches, started when the read returned
    /// some and the segment has more on disk: a sequential reader's next read.
    pub read_ahead: Option<ReadAhead>,
}

impl ReadPlan {
    /// Whether `ahead` holds this segment's data from `offset` on.
    pub fn is_continued_by(&self, ahead: &ReadAhead, offset: i64) -> bool {
        ahead.continues(&self.file, offset)
    }

    /// Reads whole batches holding offsets `>= from_offset` and `< max_offset`, until
    /// `max_bytes` is reached (the first batch is returned whole even if larger, as Kafka
    /// does so that a consumer always makes progress). Checks every CRC. `prefetched` is
    /// a read-ahead window (its position, a batch boundary, and bytes) that
    /// [`ReadPlan::is_continued_by`] matched to `from_offset`.
    pub async fn read(
        self,
        from_offset: i64,
        max_offset: i64,
        max_bytes: usize,
        prefetched: Option<(u64, BytesMut)>,
    ) -> Result<ReadBatches> {
        let mut batches: Vec<Bytes> = Vec::new();
        let mut bytes = 0;
        let mut next_offset = from_offset;
        let end = self.corrupt_at.as_ref().map_or(self.end_position, |(p, _)| (*p).min(self.end_position));
        let mut next_position = self.start_position;
        // One read covers what the reader may take: the index position lies up to an index
        // interval before the first batch, and the last batch may run past `max_bytes`.
        let read_bytes = max_bytes.saturating_add(READ_SLACK_BYTES).clamp(SCAN_READ_BYTES, READ_BYTES_MAX);
        let visit = |position: u64, header: BatchHeader<'_>, batch: &Bytes| {
            if header.base_offset() >= max_offset {
                return ControlFlow::Break(());
            }
            if header.last_offset() < from_offset {
                return ControlFlow::Continue(());
            }
            if !batches.is_empty() && bytes + batch.len() > max_bytes {
                return ControlFlow::Break(());
            }
            bytes += batch.len();
            batches.push(batch.clone());
            next_offset = header.last_offset() + 1;
            next_position = position + batch.len() as u64;
            ControlFlow::Continue(())
        };
        let from = match prefetched {
            Some((position, prefetched)) if (self.start_position..end).contains(&position) => {
                ScanFrom { position, prefetched }
            }
            _ => ScanFrom::position(self.start_position),
        };
        let outcome = scan_batches_in_reads_of(&self.file, &self.path, from, end, true, read_bytes, visit).await?;
        let stopped_on = match outcome.stop {
            ScanStop::Invalid { position, reason } => Some((position, reason)),
            ScanStop::Complete if end < self.end_position => self.corrupt_at.clone(),
            ScanStop::Complete | ScanStop::Stopped => None,
        };
        if let (Some((position, reason)), true) = (stopped_on, batches.is_empty()) {
            return Err(EngineError::Corrupt { file: self.path, position, reason });
        }
        let read_ahead = (!batches.is_empty())
            .then(|| ReadAhead::start(&self.file, self.path.clone(), next_position, end, read_bytes, next_offset))
            .flatten();
        Ok(ReadBatches { batches, bytes, next_offset, read_ahead })
    }

    /// Calls `visit` with every batch holding offsets `>= from_offset` that lies on disk
    /// (replaying producer state). CRCs are not checked: recovery already did for the
    /// active segment, and closed segments are fsynced before they close.
    pub async fn for_each_batch(self, from_offset: i64, mut visit: impl FnMut(&BatchHeader<'_>)) -> Result<()> {
        let end = self.corrupt_at.as_ref().map_or(self.end_position, |(p, _)| (*p).min(self.end_position));
        scan_batches(&self.file, &self.path, self.start_position, end, false, |_, header, _| {
            if header.last_offset() >= from_offset {
                visit(&header);
            }
            ControlFlow::Continue(())
        })
        .await?;
        Ok(())
    }

    /// Finds the first record with timestamp `>= timestamp`: its offset and timestamp.
    /// Compressed batches are opaque to the engine: their base offset and max timestamp
    /// stand for them.
    pub async fn find_timestamp(self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let mut found = None;
        let end = self.corrupt_at.as_ref().map_or(self.end_position, |(p, _)| (*p).min(self.end_position));
        scan_batches(&self.file, &self.path, self.start_position, end, false, |_, header, _| {
            if header.max_timestamp() < timestamp {
                return ControlFlow::Continue(());
            }
            found = Some(first_record_at_or_after(&header, timestamp));
            ControlFlow::Break(())
        })
        .await?;
        Ok(found)
    }
}

/// Offset and timestamp of the first record of `header` with timestamp `>= timestamp`.
pub fn first_record_at_or_after(header: &BatchHeader<'_>, timestamp: i64) -> (i64, i64) {
    let whole_batch = (header.base_offset(), header.max_timestamp());
    if header.timestamp_type() == crate::batch::TimestampType::LogAppendTime {
        return whole_batch;
    }
    let Some(records) = header.records() else {
        return whole_batch;
    };
    for record in records.flatten() {
        let record_timestamp = header.base_timestamp() + record.timestamp_delta;
        if record_timestamp >= timestamp {
            return (header.base_offset() + i64::from(record.offset_delta), record_timestamp);
        }
    }
    whole_batch
}
