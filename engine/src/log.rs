//! A partition log: ordered segments, the tail cache, offsets, flushing and retention.
//!
//! Concurrency model: a log belongs to one shard and is used by many tasks of that shard.
//! Mutable state sits in a `RefCell` that is borrowed only in synchronous sections, never
//! across an `.await`; I/O is awaited through handles that own what they need (the file,
//! the buffer). Appends, rolls, truncation and retention take turns on a
//! [`FifoLock`](crate::fifo_lock::FifoLock): one at a time, in the order their tickets
//! were taken. An append takes its ticket when [`PartitionLog::append`] is called (or the
//! caller takes one with [`PartitionLog::append_ticket`] and hands it to
//! [`PartitionLog::append_batches`]), so the order of appends is the order of those
//! synchronous calls, whatever happens between them and their turn. Flushes take no turn,
//! so appends keep flowing into the buffer while an fsync is in flight (group commit).

use crate::appender::WriteHandle;
use crate::batch::{assign_offsets, into_mut, BatchHeader, ControlType};
use crate::compaction::{CompactionReport, FilterCounts, Filtered, OffsetMap};
use crate::config::{FlushPolicy, LogConfig};
use crate::epochs::LeaderEpochs;
use crate::error::{EngineError, Result};
use crate::fifo_lock::{FifoLock, Ticket};
use crate::fs;
use crate::pending_flushes::PendingFlushes;
use crate::producer_state::{CompletedTxn, ProducerStates, SequenceVerdict};
use crate::read_ahead::ReadAhead;
use crate::segment::{parse_log_file_name, Segment, TornTail};
use crate::source_order::{RequestOrigin, SourceOrder};
use crate::tail_cache::TailCache;
use crate::txn_index::{self, AbortedTxn};
use bytes::{Bytes, BytesMut};
use glommio::io::DmaFile;
use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// File in the partition directory holding the log start offset.
pub const LOG_START_CHECKPOINT: &str = "log-start-offset";
/// File in the partition directory holding the leader epoch history.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// Where a successful append put the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker time stamped into the batch when the log uses `LogAppendTime`.
    pub log_append_time_ms: Option<i64>,
}

/// Which end bounds a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// Up to the high watermark: what consumers see.
    HighWatermark,
    /// Up to the log end: what a follower replicates.
    LogEnd,
    /// Up to the last stable offset: what read_committed consumers see (below the high
    /// watermark and the first offset of any open transaction).
    LastStable,
}

/// Batches returned by [`PartitionLog::read`], with the offsets at the time of the read.
#[derive(Debug, Clone)]
pub struct LogRead {
    /// Whole batches in offset order; empty when nothing is available yet.
    pub batches: Vec<Bytes>,
    /// High watermark when the read was served.
    pub high_watermark: i64,
    /// Log start offset when the read was served.
    pub log_start_offset: i64,
    /// Log end offset when the read was served.
    pub log_end_offset: i64,
    /// Last stable offset when the read was served.
    pub last_stable_offset: i64,
    /// For a [`ReadLimit::LastStable`] read, the aborted transactions whose data lies
    /// among the batches returned (the consumer drops their records); `None` otherwise.
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
}

/// A transaction marker to append ([`PartitionLog::append_marker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (the coordinator's, which may be newer than the producer's batches).
    pub producer_epoch: i16,
    /// The coordinator's epoch, which fences markers from an older coordinator.
    pub coordinator_epoch: i32,
    /// Commit or abort.
    pub control: ControlType,
}

/// What opening the log found and repaired.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Segments opened.
    pub segments: usize,
    /// A torn or garbage tail cut off the active segment.
    pub torn_tail: Option<TornTail>,
    /// Closed segments with a corrupt batch: file, position, reason.
    pub corrupt_segments: Vec<EngineError>,
}

/// The files of segments taken out of the log, to delete once the log start that
/// excludes them is durable.
#[derive(Default)]
struct DetachedFiles {
    /// Segment and index files.
    paths: Vec<PathBuf>,
    /// The segments' open files: a reader holding one keeps it alive.
    files: Vec<std::rc::Weak<DmaFile>>,
}

/// What [`PartitionLog::apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes freed.
    pub bytes_deleted: u64,
}

/// An fsync in flight: the log end it makes durable and the bytes it newly covers.
#[derive(Clone)]
struct InFlightFlush {
    end: i64,
    bytes: u64,
    handle: WriteHandle,
}

/// fsyncs one log may have in flight; more concurrent fsyncs only queue in the kernel.
const FLUSHES_IN_FLIGHT_MAX: usize = 4;
/// With [`FlushPolicy::Bytes`], appends wait once this many multiples of the limit are
/// not yet covered by a finished fsync: what a crash may lose at most.
pub const UNSYNCED_LIMITS_MAX: u64 = 4;

struct LogState {
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// Offsets below this are fsynced.
    durable_end: i64,
    /// Offsets below this were visible to consumers under a flush policy that does not
    /// fsync every append. A switch to every-append at runtime must not hide them again:
    /// the high watermark moves down only by truncation.
    visible_floor: i64,
    /// fsyncs in flight, oldest first.
    flushes: VecDeque<InFlightFlush>,
    unflushed_bytes: u64,
    last_flush: Instant,
    tail: TailCache,
    epochs: LeaderEpochs,
    producers: ProducerStates,
    failed: Option<EngineError>,
    /// Bumped by every truncation: a compaction pass that saw another value at its start
    /// does not swap in what it cleaned (its key map may name records that are gone).
    truncations: u64,
    /// The last request of each recent source that appended (the ordering check).
    sources: SourceOrder,
    /// A compaction pass is running (one at a time per log).
    compacting: bool,
    /// In a cluster, the high watermark replication computed (the least durable end over
    /// the in-sync replicas); `None` on a single node, where the flush policy decides it.
    replicated_high_watermark: Option<i64>,
    /// What the last finished compaction pass left: the periodic call skips the log
    /// until the closed segments change or a kept tombstone expires.
    compacted: Option<CompactionMark>,
}

/// The state a compaction pass left behind, see [`LogState::compacted`].
#[derive(Debug, Clone, Copy)]
struct CompactionMark {
    /// Base of the active segment when the pass started: all before it was compacted.
    active_base: i64,
    /// When the earliest tombstone kept by the pass expires.
    tombstone_expiry: Option<i64>,
}

/// The index entry of an aborted transaction just recorded in `producers`: the last
/// stable offset after it is the first offset of the oldest transaction still open, or
/// the offset past the marker.
fn aborted_txn(ended: CompletedTxn, producers: &ProducerStates) -> AbortedTxn {
    AbortedTxn {
        producer_id: ended.producer_id,
        first_offset: ended.first_offset,
        last_offset: ended.last_offset,
        last_stable_offset: producers.first_unstable_offset().unwrap_or(ended.last_offset + 1),
    }
}

/// One partition's log. See the module docs for the concurrency model.
pub struct PartitionLog {
    name: String,
    dir: PathBuf,
    state: RefCell<LogState>,
    /// Appends, rolls, truncation, retention, compaction swaps and close, one at a time
    /// in ticket order.
    append_lock: FifoLock,
    /// Serializes writes of the log-start checkpoint; each writes the value current when
    /// it runs, so the last one leaves the newest. Retention and DeleteRecords write it
    /// after leaving `append_lock`, so appends do not wait for its fsyncs.
    checkpoint_lock: FifoLock,
    /// Orders the file work a roll leaves for later (the closed segment's index files and
    /// the producer snapshot, written in a task so appends do not wait for their fsyncs):
    /// whatever removes or replaces those files (retention, truncation, compaction, close)
    /// first takes a turn here, so an earlier roll's write never lands after it.
    file_work: FifoLock,
    /// The disk read of the window after the last read from disk (a catching-up
    /// consumer's next fetch); see [`crate::read_ahead`].
    read_ahead: RefCell<Option<ReadAhead>>,
    /// Readers long-polling for data past the high watermark (Fetch `max_wait_ms`).
    data_waiters: RefCell<Vec<futures::channel::oneshot::Sender<()>>>,
    /// Where this log reports that it holds interval-policy appends to fsync (its
    /// shard's flush tick); unset for a log opened on its own.
    pending_flushes: OnceCell<Rc<PendingFlushes>>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl LogState {
    fn active(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("a log always has an active segment")
    }
    fn log_end(&self) -> i64 {
        self.segments.values().next_back().expect("a log always has a segment").next_offset()
    }
    fn high_watermark(&self) -> i64 {
        if let Some(replicated) = self.replicated_high_watermark {
            return replicated.min(self.log_end());
        }
        if self.config.flush.syncs_every_append() {
            self.durable_end.max(self.visible_floor).min(self.log_end())
        } else {
            self.log_end()
        }
    }
    /// Below the high watermark and below every open transaction's first offset.
    fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.producers.first_unstable_offset().map_or(high_watermark, |first| first.min(high_watermark))
    }
    fn check_failed(&self) -> Result<()> {
        self.failed.as_ref().map_or(Ok(()), |e| Err(e.clone()))
    }
    /// Starts an fsync of everything written so far.
    fn begin_flush(&mut self) -> InFlightFlush {
        assert!(self.flushes.len() < FLUSHES_IN_FLIGHT_MAX, "bounded fsyncs in flight");
        let end = self.log_end();
        let handle = match self.active().appender_mut() {
            Some(appender) => appender.begin_flush(),
            // Mid-truncation the last segment has no appender: everything in it is
            // already fsynced, so there is nothing to wait for.
            None => crate::appender::spawn_shared(async { Ok(()) }),
        };
        let flush = InFlightFlush { end, bytes: self.unflushed_bytes, handle };
        self.unflushed_bytes = 0;
        self.flushes.push_back(flush.clone());
        flush
    }

    /// Writes a batch whose offsets are assigned to the active segment, the producer state
    /// and the tail cache; returns the appender's back-pressure wait, if it asks for one.
    fn store(&mut self, batch: Bytes) -> Result<Option<WriteHandle>> {
        let header = BatchHeader::parse(&batch, usize::MAX).expect("validated");
        let (base_offset, last_offset) = (header.base_offset(), header.last_offset());
        let interval = self.config.index_interval_bytes;
        let active = self.active();
        active.append(&batch, &header, interval)?;
        let (segment_base, end_position) = (active.base_offset(), active.size());
        let backpressure = active.appender_mut().expect("active").backpressure();
        if let Some(ended) = self.producers.record(&header) {
            if ended.aborted {
                let txn = aborted_txn(ended, &self.producers);
                self.active().record_aborted(txn);
            }
        }
        self.unflushed_bytes += batch.len() as u64;
        self.tail.push(base_offset, last_offset, batch, segment_base, end_position);
        self.evict_tail_cache();
        Ok(backpressure)
    }

    fn evict_tail_cache(&mut self) {
        let budget = self.config.tail_cache_bytes;
        let active_base = self.segments.keys().next_back().copied().expect("active segment");
        let readable = self.active().appender_mut().map_or(u64::MAX, |a| a.readable_on_disk());
        self.tail.evict(budget, |segment_base, end_position| segment_base != active_base || end_position <= readable);
    }
}

impl PartitionLog {
    /// Opens (creating if needed) the log in directory `dir` (named `<topic>-<partition>`),
    /// recovering from whatever a crash left: the active segment is walked batch by batch
    /// and cut at the first torn, zeroed or corrupt batch; closed segments load their
    /// indexes (rebuilt when missing or inconsistent).
    pub async fn open(dir: &Path, config: LogConfig) -> Result<(PartitionLog, RecoveryReport)> {
        config.validate()?;
        // glommio resolves relative paths of directories against no directory at all.
        let dir = &std::path::absolute(dir).map_err(|e| EngineError::io("resolve", dir, e))?;
        fs::create_dir_durably(dir)?;
        fs::ensure_dma_probe(dir.parent().unwrap_or(dir)).await?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        // A compacted segment is committed by its rename onto `<base>.log`; one still
        // under its `.cleaned` name was interrupted and is not part of the log. Neither
        // are segments retired for deletion (`.deleted`) whose deletion had not run.
        let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| EngineError::io("list", dir, e))?
            .filter_map(|entry| entry.ok())
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(crate::segment::CLEANED_SUFFIX) || n.ends_with(fs::DELETED_SUFFIX))
            })
            .map(|entry| entry.path())
            .collect();
        if !leftovers.is_empty() {
            tracing::info!(partition = %name, files = leftovers.len(), "recovered: removed an interrupted compaction's output or segments retired for deletion");
            fs::remove_files(leftovers).await?;
        }
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .map_err(|e| EngineError::io("list", dir, e))?
            .filter_map(|entry| entry.ok()?.file_name().to_str().and_then(parse_log_file_name))
            .collect();
        bases.sort_unstable();
        let checkpointed_start = read_i64_file(&dir.join(LOG_START_CHECKPOINT)).unwrap_or(0);

        let mut report = RecoveryReport::default();
        let mut segments = BTreeMap::new();
        let last = bases.pop();
        for base in bases {
            let segment = Segment::open_closed(dir, base, &config).await?;
            if let Some((position, reason)) = segment.corruption() {
                report.corrupt_segments.push(EngineError::Corrupt {
                    file: segment.path().to_path_buf(),
                    position: *position,
                    reason: reason.clone(),
                });
            }
            segments.insert(base, segment);
        }
        let active = match last {
            Some(base) => {
                let (segment, torn) = Segment::open_active(dir, base, &config, None).await?;
                match &torn {
                    // After a crash, pre-allocated space past the data reads as zeros.
                    Some(torn) if torn.reason == crate::batch::BatchError::Zeroed => tracing::info!(
                        partition = %name, file = %segment.path().display(), position = torn.position,
                        "recovered: trimmed unwritten pre-allocated space after the last batch"),
                    Some(torn) => tracing::warn!(
                        partition = %name, file = %segment.path().display(), position = torn.position,
                        discarded = torn.discarded_bytes, reason = %torn.reason, "recovered: cut a torn tail"),
                    None => {}
                }
                report.torn_tail = torn;
                // What recovery read back may still sit in the device cache only.
                segment.sync().await?;
                segment
            }
            None => Segment::create(dir, checkpointed_start.max(0)).await?,
        };
        segments.insert(active.base_offset(), active);
        report.segments = segments.len();

        let first_base = *segments.keys().next().expect("at least the active segment");
        let log_end = segments.values().next_back().expect("active").next_offset();
        let mut epochs = std::fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT))
            .map(|text| LeaderEpochs::decode(&text))
            .unwrap_or_default();
        epochs.truncate_from(log_end);
        let state = LogState {
            log_start_offset: checkpointed_start.max(first_base).min(log_end),
            durable_end: log_end,
            visible_floor: 0,
            flushes: VecDeque::new(),
            unflushed_bytes: 0,
            last_flush: Instant::now(),
            tail: TailCache::default(),
            epochs,
            producers: ProducerStates::default(),
            failed: None,
            truncations: 0,
            sources: SourceOrder::default(),
            compacting: false,
            compacted: None,
            replicated_high_watermark: None,
            segments,
            config,
        };
        let log = PartitionLog {
            name,
            dir: dir.to_path_buf(),
            state: RefCell::new(state),
            append_lock: FifoLock::new(),
            checkpoint_lock: FifoLock::new(),
            file_work: FifoLock::new(),
            read_ahead: RefCell::new(None),
            data_waiters: RefCell::new(Vec::new()),
            pending_flushes: OnceCell::new(),
        };
        log.rebuild_producer_states().await?;
        Ok((log, report))
    }

    /// The partition directory's name (`topic-N`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// First offset still held.
    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }
    /// Offset the next append gets.
    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end()
    }
    /// Offsets below this are visible to consumers: the fsynced end when every append is
    /// fsynced, else the log end (on one node; replication will lower it to what the
    /// in-sync replicas hold).
    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark()
    }
    /// What read_committed consumers may read up to: the high watermark, held back by the
    /// oldest open transaction.
    pub fn last_stable_offset(&self) -> i64 {
        self.state.borrow().last_stable_offset()
    }

    /// The aborted transactions a read_committed read of `[from, upper)` must tell the
    /// consumer about (their data lies in the range; their markers at or after `from`),
    /// from the segment holding `from` on ([`crate::txn_index`]).
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let state = self.state.borrow();
        let start = state.segments.range(..=from).next_back().map_or(i64::MIN, |(base, _)| *base);
        let mut found = Vec::new();
        for segment in state.segments.range(start..).map(|(_, s)| s) {
            if txn_index::collect_overlapping(segment.aborted_txns(), from, upper, &mut found) {
                break;
            }
        }
        found
    }

    /// When the oldest open transaction began (its first batch's timestamp), if any: the
    /// age operators chase when the last stable offset stalls.
    pub fn oldest_open_transaction_since_ms(&self) -> Option<i64> {
        self.state.borrow().producers.oldest_open_since_ms()
    }

    /// Open transactions, oldest first: `(first offset, producer id)`.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.state.borrow().producers.open_transactions().collect()
    }

    /// Offsets below this are fsynced: a crash loses nothing below it.
    pub fn durable_end(&self) -> i64 {
        self.state.borrow().durable_end
    }
    /// The leader epoch of the last batch, if the log holds any epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.state.borrow().epochs.latest()
    }
    /// Hands the high watermark to replication from now on (a cluster): consumers see up
    /// to `high_watermark` (capped by the log end) whatever the flush policy; readers
    /// waiting for it are woken when it moves.
    pub fn set_replicated_high_watermark(&self, high_watermark: i64) {
        let moved = {
            let mut state = self.state.borrow_mut();
            let before = state.replicated_high_watermark;
            state.replicated_high_watermark = Some(high_watermark);
            before != Some(high_watermark)
        };
        if moved {
            self.wake_data_waiters();
        }
    }
    /// Wakes every long-polling reader (a replica's role changed: waiters re-check).
    pub fn wake_readers(&self) {
        self.wake_data_waiters();
    }
    /// Bytes stored, over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.values().map(Segment::size).sum()
    }
    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }
    /// Current settings.
    pub fn config(&self) -> LogConfig {
        self.state.borrow().config.clone()
    }
    /// Changes settings at runtime (topic config change). Takes effect from the next
    /// append, roll or retention pass.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        let mut state = self.state.borrow_mut();
        // Compaction settings may have changed: the next pass looks again.
        state.compacted = None;
        if config.flush.syncs_every_append() && !state.config.flush.syncs_every_append() {
            state.visible_floor = state.visible_floor.max(state.log_end());
        }
        state.config = config;
        if state.unflushed_bytes > 0 && matches!(state.config.flush, FlushPolicy::Interval(_)) {
            self.report_pending_flush();
        }
        Ok(())
    }

    /// Has this log report its interval-policy appends to `queue` (its shard's flush
    /// tick, [`crate::shard::Shard::flush_due`]) from now on. Set once.
    pub fn report_pending_flushes_to(&self, queue: Rc<PendingFlushes>) {
        let unflushed = self.has_interval_flush_pending();
        assert!(self.pending_flushes.set(queue).is_ok(), "a log belongs to one shard");
        if unflushed {
            self.report_pending_flush();
        }
    }

    /// Whether appends wait for an interval fsync (so the flush tick must come back).
    pub fn has_interval_flush_pending(&self) -> bool {
        let state = self.state.borrow();
        state.unflushed_bytes > 0 && matches!(state.config.flush, FlushPolicy::Interval(_))
    }

    fn report_pending_flush(&self) {
        if let Some(queue) = self.pending_flushes.get() {
            queue.mark(&self.name);
        }
    }
    /// OffsetsForLeaderEpoch for this log.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let state = self.state.borrow();
        state.epochs.end_offset_for(epoch, state.log_end())
    }

    /// Appends one batch as sent by a producer: validates it (magic 2, length, CRC,
    /// in-batch offsets), assigns offsets, stamps the leader epoch, and writes it. Returns
    /// once the batch is durable when the flush policy is [`FlushPolicy::EveryAppend`],
    /// else once it is written to the appender.
    ///
    /// The batch's place in the log is taken by this call, before the returned future
    /// first runs: of two calls, the earlier one appends first.
    pub fn append(
        &self,
        batch: Bytes,
        leader_epoch: i32,
    ) -> impl std::future::Future<Output = Result<AppendInfo>> + '_ {
        let ticket = self.append_ticket();
        self.append_batches(ticket, vec![into_mut(batch)], leader_epoch, None)
    }

    /// Takes the next place in the line of appends (and rolls, truncations, ...). Hand it
    /// to [`PartitionLog::append_batches`]; dropping it unused gives the place up. Every
    /// later append waits for it, so a ticket must not be held across anything slow.
    pub fn append_ticket(&self) -> Ticket {
        self.append_lock.ticket()
    }

    /// Appends a producer's batches for this partition (one request's record data, split
    /// into batches) in `ticket`'s turn, all or none validated first. `origin`, when
    /// given, is checked against the ordering invariant: a source's requests take effect
    /// in the order it sent them. Answers with the first batch's base offset and the last
    /// batch's last offset; a batch that is a retry of one already in the log (idempotent
    /// producers) is not written again and answers with its original offsets.
    pub async fn append_batches(
        &self,
        ticket: Ticket,
        batches: Vec<BytesMut>,
        leader_epoch: i32,
        origin: Option<RequestOrigin>,
    ) -> Result<AppendInfo> {
        assert!(self.append_lock.issued(&ticket), "a ticket of this log's line");
        assert!(!batches.is_empty(), "at least one batch");
        let (max_bytes, keys_required) = {
            let state = self.state.borrow();
            (state.config.max_message_bytes, state.config.compact)
        };
        for batch in &batches {
            self.validate_batch(batch, max_bytes)?;
            if BatchHeader::parse(batch, usize::MAX).expect("validated").is_control() {
                // Only a coordinator writes markers (`append_marker`), as in Kafka.
                let message = format!("{}: clients may not write control batches", self.name);
                return Err(EngineError::InvalidRecords { partition: self.name.clone(), records: Vec::new(), message });
            }
            if keys_required {
                self.check_keys(batch)?;
            }
        }
        let turn = ticket.turn().await;
        self.state.borrow().check_failed()?;
        if let Some(origin) = origin {
            if let Err(broken) = self.state.borrow_mut().sources.admit(origin) {
                // The invariant of docs/ARCHITECTURE.md "Ordering". A bug, not bad input.
                tracing::error!(partition = %self.name, ?broken, "append out of its source's order");
                debug_assert!(false, "{}: append out of its source's order: {broken:?}", self.name);
            }
        }
        let mut first: Option<AppendInfo> = None;
        let mut last_offset = -1;
        for batch in batches {
            let info = self.append_in_turn(batch, leader_epoch).await?;
            last_offset = last_offset.max(info.last_offset);
            first.get_or_insert(info);
        }
        drop(turn);
        let first = first.expect("at least one batch");
        self.settle_append(last_offset).await?;
        Ok(AppendInfo { last_offset, ..first })
    }

    /// Appends a transaction marker for `marker.producer_id` (a coordinator's
    /// WriteTxnMarkers): refused if the producer's epoch or the coordinator's epoch is
    /// older than one this partition has seen. Answers as appends do under the flush
    /// policy; an abort is recorded in the segment's aborted-transaction index.
    pub async fn append_marker(&self, marker: TxnMarker, leader_epoch: i32) -> Result<AppendInfo> {
        let batch = crate::batch_builder::control_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.control,
            now_ms(),
        );
        let turn = self.append_lock.lock().await;
        self.state.borrow().check_failed()?;
        {
            let header = BatchHeader::parse(&batch, usize::MAX).expect("built above");
            let checked = self.state.borrow().producers.check_marker(&header, marker.coordinator_epoch);
            checked.map_err(|reason| EngineError::Sequence { partition: self.name.clone(), reason })?;
        }
        let info = self.append_in_turn(into_mut(batch), leader_epoch).await?;
        drop(turn);
        self.settle_append(info.last_offset).await?;
        Ok(info)
    }

    /// After appends up to `last_offset`: what the flush policy makes an append wait for.
    async fn settle_append(&self, last_offset: i64) -> Result<()> {
        let flush = self.state.borrow().config.flush;
        match flush {
            // The fsync's completion raises the high watermark and wakes readers; in a
            // cluster, followers waiting on the log end are woken now.
            FlushPolicy::EveryAppend => {
                if self.state.borrow().replicated_high_watermark.is_some() {
                    self.wake_data_waiters();
                }
                self.flush_to(last_offset + 1).await?
            }
            FlushPolicy::Bytes(limit) => {
                self.wake_data_waiters();
                self.flush_in_background(limit).await?
            }
            FlushPolicy::Interval(_) | FlushPolicy::Never => self.wake_data_waiters(),
        }
        Ok(())
    }

    /// Writes one validated batch; the caller holds the append turn. A duplicate of a
    /// batch in the log answers with the original's offsets and writes nothing.
    async fn append_in_turn(&self, mut batch: BytesMut, leader_epoch: i32) -> Result<AppendInfo> {
        let (verdict, batch_max_timestamp) = {
            let header = BatchHeader::parse(&batch, usize::MAX).expect("validated");
            (self.state.borrow().producers.check(&header), header.max_timestamp())
        };
        match verdict.map_err(|reason| EngineError::Sequence { partition: self.name.clone(), reason })? {
            SequenceVerdict::Append => {}
            SequenceVerdict::Duplicate(original) => {
                return Ok(AppendInfo {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time_ms: None,
                })
            }
        }
        let timestamp_ms = if self.state.borrow().config.log_append_time { now_ms() } else { batch_max_timestamp };
        if self.state.borrow_mut().should_roll(batch.len(), timestamp_ms) {
            self.roll_locked().await?;
        }
        self.preallocate_locked(batch.len() as u64).await?;
        let epoch_changed = {
            let mut state = self.state.borrow_mut();
            let start = state.log_end();
            state.epochs.is_new_epoch(leader_epoch).then(|| {
                state.epochs.push(leader_epoch, start);
                state.epochs.encode()
            })
        };
        if let Some(contents) = epoch_changed {
            // Written before the batch: a crash leaves an epoch starting past the log
            // end, which recovery drops, never a batch with an unrecorded epoch.
            fs::write_checkpoint(&self.dir.join(LEADER_EPOCH_CHECKPOINT), contents).await?;
        }
        let (info, backpressure) = {
            let mut state = self.state.borrow_mut();
            let base_offset = state.log_end();
            let log_append_time_ms = state.config.log_append_time.then(now_ms);
            assign_offsets(&mut batch, base_offset, leader_epoch, log_append_time_ms);
            let batch = batch.freeze();
            let last_offset = BatchHeader::parse(&batch, usize::MAX).expect("validated").last_offset();
            let info = AppendInfo { base_offset, last_offset, log_append_time_ms };
            if state.unflushed_bytes == 0 && matches!(state.config.flush, FlushPolicy::Interval(_)) {
                self.report_pending_flush();
            }
            (info, state.store(batch)?)
        };
        if let Some(write) = backpressure {
            write.await?;
        }
        Ok(info)
    }

    /// A follower's append: whole batches as the leader stored them (offsets, leader
    /// epochs and timestamps kept), which must start at or after this log's end and
    /// follow each other. The producer state learns them (so this replica dedupes retries if it leads
    /// later). Returns the new log end once it is fsynced: a follower's next fetch offset
    /// is a promise that everything below it is durable.
    pub async fn append_replicated(&self, batches: Vec<Bytes>) -> Result<i64> {
        let max_bytes = usize::MAX;
        let mut expected = self.log_end_offset();
        for batch in &batches {
            self.validate_batch(batch, max_bytes)?;
            let header = BatchHeader::parse(batch, max_bytes).expect("validated");
            if header.base_offset() < expected {
                return Err(EngineError::InvalidBatch {
                    partition: self.name.clone(),
                    reason: crate::batch::BatchError::OffsetOrder { expected_at_least: expected },
                });
            }
            expected = header.last_offset() + 1;
        }
        let turn = self.append_lock.lock().await;
        self.state.borrow().check_failed()?;
        for batch in batches {
            let header = BatchHeader::parse(&batch, max_bytes).expect("validated");
            let (log_end, new_epoch) = {
                let state = self.state.borrow();
                (state.log_end(), state.epochs.is_new_epoch(header.partition_leader_epoch()))
            };
            if header.base_offset() < log_end {
                // The log grew or was truncated since the fetch: refuse; the next fetch
                // starts from the log end again. (A gap is fine: compaction leaves them.)
                return Err(EngineError::InvalidBatch {
                    partition: self.name.clone(),
                    reason: crate::batch::BatchError::OffsetOrder { expected_at_least: log_end },
                });
            }
            if self.state.borrow_mut().should_roll(batch.len(), header.max_timestamp()) {
                self.roll_locked().await?;
            }
            self.preallocate_locked(batch.len() as u64).await?;
            if new_epoch {
                let contents = {
                    let mut state = self.state.borrow_mut();
                    let start = state.log_end();
                    state.epochs.push(header.partition_leader_epoch(), start);
                    state.epochs.encode()
                };
                fs::write_checkpoint(&self.dir.join(LEADER_EPOCH_CHECKPOINT), contents).await?;
            }
            let backpressure = self.state.borrow_mut().store(batch)?;
            if let Some(write) = backpressure {
                write.await?;
            }
        }
        drop(turn);
        let end = self.log_end_offset();
        self.flush_to(end).await?;
        Ok(end)
    }

    /// Waits until `limit` (the high watermark for consumers, the log end for a follower)
    /// passes `offset` or `max_wait` elapses: Fetch's long poll. Returns whether data came.
    pub async fn wait_for_data(&self, offset: i64, max_wait: std::time::Duration, limit: ReadLimit) -> bool {
        let reached = |log: &Self| match limit {
            ReadLimit::HighWatermark => log.high_watermark() > offset,
            ReadLimit::LogEnd => log.log_end_offset() > offset,
            ReadLimit::LastStable => log.last_stable_offset() > offset,
        };
        if reached(self) {
            return true;
        }
        let (sender, receiver) = futures::channel::oneshot::channel();
        {
            let mut waiters = self.data_waiters.borrow_mut();
            // Readers that timed out dropped their receivers; forget them, so a quiet
            // partition polled for hours holds only its live waiters.
            waiters.retain(|waiter| !waiter.is_canceled());
            waiters.push(sender);
        }
        let timeout = glommio::timer::sleep(max_wait);
        futures::pin_mut!(timeout);
        let _ = futures::future::select(receiver, timeout).await;
        reached(self)
    }

    /// Wakes every long-polling reader; each re-checks the high watermark.
    fn wake_data_waiters(&self) {
        for waiter in self.data_waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    /// [`FlushPolicy::Bytes`]: each time `limit` bytes were written since the last fsync
    /// started, start another without waiting for it; an append waits only when
    /// [`UNSYNCED_LIMITS_MAX`] × `limit` bytes are not yet covered by a finished fsync.
    async fn flush_in_background(&self, limit: u64) -> Result<()> {
        loop {
            self.reap_finished_flushes()?;
            let wait = {
                let mut state = self.state.borrow_mut();
                if state.unflushed_bytes >= limit && state.flushes.len() < FLUSHES_IN_FLIGHT_MAX {
                    // Nobody waits for it; a later append or maintenance pass reaps it.
                    let _started = state.begin_flush();
                }
                let unsynced = state.unflushed_bytes + state.flushes.iter().map(|f| f.bytes).sum::<u64>();
                if unsynced < UNSYNCED_LIMITS_MAX * limit {
                    return Ok(());
                }
                state.flushes.front().cloned()
            };
            match wait {
                Some(flush) => {
                    let result = flush.handle.clone().await;
                    self.complete_flush(&flush, result)?;
                }
                None => return Ok(()),
            }
        }
    }

    /// Records the outcomes of fsyncs that finished while nobody was waiting for them.
    fn reap_finished_flushes(&self) -> Result<()> {
        let finished: Vec<(InFlightFlush, Result<()>)> = {
            let state = self.state.borrow();
            state.flushes.iter().filter_map(|flush| flush.handle.peek().map(|result| (flush.clone(), result))).collect()
        };
        for (flush, result) in finished {
            self.complete_flush(&flush, result)?;
        }
        Ok(())
    }

    /// Writes `<log end>.snapshot` with the producer state as of the log end, and keeps
    /// only the newest [`PRODUCER_SNAPSHOTS_KEPT`] snapshots. Caller holds the append turn.
    async fn snapshot_producer_states(&self) -> Result<()> {
        let (offset, contents) = {
            let state = self.state.borrow();
            (state.log_end(), state.producers.encode())
        };
        write_producer_snapshot(&self.dir, offset, contents).await
    }

    /// Waits until the file work of earlier rolls is done (see `file_work`).
    async fn settle_file_work(&self) {
        drop(self.file_work.lock().await);
    }

    /// Rebuilds the producer state from the newest snapshot at or below the log end (later
    /// ones are from a longer, since truncated, log and are deleted) and the batches after
    /// it; from the log start if there is no usable snapshot. Caller holds the append turn, or
    /// the log is not shared yet.
    async fn rebuild_producer_states(&self) -> Result<()> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        let mut snapshots = list_producer_snapshots(&self.dir);
        let stale = snapshots.iter().filter(|(offset, _)| *offset > log_end).map(|(_, p)| p.clone()).collect();
        fs::remove_files(stale).await?;
        snapshots.retain(|(offset, _)| *offset <= log_end);
        let loaded = snapshots.iter().rev().find_map(|(offset, path)| {
            let states = ProducerStates::decode(&std::fs::read(path).ok()?)?;
            Some((*offset, states))
        });
        let (from, mut producers) = loaded.unwrap_or((log_start, ProducerStates::default()));
        // The replay records again the aborts whose markers lie at or after `from`.
        let (plans, mut touched) = {
            let mut state = self.state.borrow_mut();
            let mut touched = BTreeMap::new();
            let mut plans = Vec::new();
            for (base, segment) in state.segments.iter_mut().filter(|(_, s)| s.next_offset() > from) {
                if segment.forget_aborted_from(from) {
                    touched.insert(*base, segment.path().to_path_buf());
                }
                plans.push((*base, segment.path().to_path_buf(), segment.plan_read(from)));
            }
            (plans, touched)
        };
        let mut aborted = Vec::new();
        for (base, path, plan) in plans {
            plan.for_each_batch(from, |header| {
                if let Some(ended) = producers.record(header).filter(|ended| ended.aborted) {
                    aborted.push((base, aborted_txn(ended, &producers)));
                    touched.insert(base, path.clone());
                }
            })
            .await?;
        }
        let rewrites: Vec<(PathBuf, Vec<AbortedTxn>)> = {
            let mut state = self.state.borrow_mut();
            state.producers = producers;
            for (base, txn) in aborted {
                state.segments.get_mut(&base).expect("replayed above").record_aborted(txn);
            }
            touched.into_iter().map(|(base, path)| (path, state.segments[&base].aborted_txns().to_vec())).collect()
        };
        // Index files that disagree with the log would outlive a later snapshot.
        for (path, entries) in rewrites {
            fs::write_txn_index(&path, &entries).await?;
        }
        Ok(())
    }

    fn validate_batch(&self, batch: &[u8], max_bytes: usize) -> Result<()> {
        if batch.len() > max_bytes {
            return Err(EngineError::BatchTooLarge { partition: self.name.clone(), size: batch.len(), max: max_bytes });
        }
        let invalid = |reason| EngineError::InvalidBatch { partition: self.name.clone(), reason };
        let header = BatchHeader::parse_verified(batch, max_bytes).map_err(invalid)?;
        if header.size() != batch.len() {
            return Err(invalid(crate::batch::BatchError::Truncated { available: batch.len(), needed: header.size() }));
        }
        if header.last_offset_delta() != header.record_count() - 1 {
            return Err(invalid(crate::batch::BatchError::InvalidCounts {
                record_count: header.record_count(),
                last_offset_delta: header.last_offset_delta(),
            }));
        }
        Ok(())
    }

    /// `cleanup.policy=compact` keeps the newest record per key, so a record without a key
    /// has no place in it: Kafka refuses the batch, naming each keyless record.
    fn check_keys(&self, batch: &[u8]) -> Result<()> {
        let header = BatchHeader::parse(batch, usize::MAX).expect("validated");
        if header.is_control() {
            return Ok(());
        }
        let invalid = |reason| EngineError::InvalidBatch { partition: self.name.clone(), reason };
        let plain = match header.records() {
            Some(_) => None,
            None => Some(crate::compaction::plain_batch(&header).map_err(invalid)?),
        };
        let plain_header = match &plain {
            Some(plain) => BatchHeader::parse(plain, usize::MAX).map_err(invalid)?,
            None => header,
        };
        let mut keyless = Vec::new();
        for (index, record) in plain_header.records().expect("plain").enumerate() {
            if record.map_err(invalid)?.key.is_none() {
                keyless.push(index as i32);
            }
        }
        if keyless.is_empty() {
            return Ok(());
        }
        let reason = format!("Compacted topic cannot accept message without key in topic partition {}.", self.name);
        let records: Vec<(i32, String)> = keyless.into_iter().map(|index| (index, reason.clone())).collect();
        // Kafka's wording for the partition's error message (LogValidator), first three shown.
        let shown: Vec<String> = records
            .iter()
            .take(3)
            .map(|(index, reason)| format!("RecordError(batchIndex={index}, message='{reason}')"))
            .collect();
        let message = format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            records.len(),
            shown.join(", ")
        );
        Err(EngineError::InvalidRecords { partition: self.name.clone(), records, message })
    }

    async fn preallocate_locked(&self, additional: u64) -> Result<()> {
        let needed = {
            let mut state = self.state.borrow_mut();
            let segment_bytes = state.config.segment_bytes;
            let appender = state.active().appender_mut().expect("active");
            appender.preallocation_needed(additional, segment_bytes).map(|size| (appender.file().clone(), size))
        };
        if let Some((file, size)) = needed {
            if let Err(error) = file.pre_allocate(size, false).await {
                // Pre-allocation only spares writes the block allocation. If it fails (a
                // full or thin-provisioned disk), writing goes on; a write that finds no
                // space fails on its own and fails the log.
                let path = self.state.borrow_mut().active().path().to_path_buf();
                tracing::warn!(partition = %self.name, file = %path.display(), %error, "pre-allocation failed; writing without it");
            }
            self.state.borrow_mut().active().appender_mut().expect("active").set_preallocated(size);
        }
        Ok(())
    }

    /// Waits until everything appended so far is fsynced.
    pub async fn flush(&self) -> Result<()> {
        let end = self.log_end_offset();
        self.flush_to(end).await
    }

    /// Waits until offsets below `target` are fsynced. Group commit: an fsync in flight
    /// that covers `target` is joined; otherwise a new one starts at once if fewer than
    /// [`FLUSHES_IN_FLIGHT_MAX`] are in flight (so a batch waits for its own fsync, not
    /// for an earlier one to finish first). Every fsync covers every batch written before
    /// it started, so any one finishing makes everything below its end durable.
    async fn flush_to(&self, target: i64) -> Result<()> {
        loop {
            let flush = {
                let mut state = self.state.borrow_mut();
                state.check_failed()?;
                if state.durable_end >= target {
                    return Ok(());
                }
                if target > state.log_end() {
                    return Err(EngineError::Truncated { partition: self.name.clone(), offset: target - 1 });
                }
                match state.flushes.iter().find(|f| f.end >= target) {
                    Some(covering) => covering.clone(),
                    None if state.flushes.len() < FLUSHES_IN_FLIGHT_MAX => state.begin_flush(),
                    None => state.flushes.front().cloned().expect("in flight"),
                }
            };
            let result = flush.handle.clone().await;
            self.complete_flush(&flush, result)?;
        }
    }

    /// Records the outcome of an fsync; any waiter may do it, only the first one counts.
    fn complete_flush(&self, flush: &InFlightFlush, result: Result<()>) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let at = state.flushes.iter().position(|f| f.handle.ptr_eq(&flush.handle));
        if let Some(at) = at {
            state.flushes.remove(at);
            state.last_flush = Instant::now();
            match &result {
                Ok(()) => state.durable_end = state.durable_end.max(flush.end.min(state.log_end())),
                Err(error) => self.fail(&mut state, error.clone()),
            }
            drop(state);
            self.wake_data_waiters();
        }
        result
    }

    fn fail(&self, state: &mut LogState, error: EngineError) {
        tracing::error!(partition = %self.name, %error, "log failed; appends refused until reopened");
        if let Some(appender) = state.active().appender_mut() {
            appender.fail(error.clone());
        }
        state.failed.get_or_insert(EngineError::Failed { partition: self.name.clone(), cause: error.to_string() });
    }

    /// For [`FlushPolicy::Interval`]: flushes if the interval has passed since the last
    /// flush and there is unflushed data. The shard's timer calls this.
    pub async fn flush_if_due(&self) -> Result<()> {
        self.reap_finished_flushes()?;
        let due = {
            let state = self.state.borrow();
            match state.config.flush {
                FlushPolicy::Interval(interval) => state.unflushed_bytes > 0 && state.last_flush.elapsed() >= interval,
                _ => false,
            }
        };
        if due {
            self.flush().await?;
        }
        Ok(())
    }

    /// Reads whole batches from `from`, up to `max_bytes` (at least one batch if any is
    /// available), bounded by the high watermark or the log end. Recent data comes from
    /// the tail cache without a copy; older data from disk, CRC-checked.
    pub async fn read(&self, from: i64, max_bytes: usize, limit: ReadLimit) -> Result<LogRead> {
        let mut offset = from;
        loop {
            let (plan, mut result, max_offset, truncations) = {
                let mut state = self.state.borrow_mut();
                let log_end = state.log_end();
                let max_offset = match limit {
                    ReadLimit::HighWatermark => state.high_watermark(),
                    ReadLimit::LogEnd => log_end,
                    ReadLimit::LastStable => state.last_stable_offset(),
                };
                let result = LogRead {
                    batches: Vec::new(),
                    high_watermark: state.high_watermark(),
                    log_start_offset: state.log_start_offset,
                    log_end_offset: log_end,
                    last_stable_offset: state.last_stable_offset(),
                    aborted_transactions: (limit == ReadLimit::LastStable).then(Vec::new),
                };
                if offset < state.log_start_offset || offset > log_end {
                    return Err(EngineError::OffsetOutOfRange {
                        partition: self.name.clone(),
                        offset,
                        log_start: state.log_start_offset,
                        log_end,
                    });
                }
                if offset >= max_offset {
                    return Ok(result);
                }
                if let Some(batches) = state.tail.read(offset, max_offset, max_bytes) {
                    drop(state);
                    return Ok(self.with_aborted(LogRead { batches, ..result }, offset));
                }
                let segment = state
                    .segments
                    .range_mut(..=offset)
                    .next_back()
                    .map(|(_, s)| s)
                    .expect("offset >= log start lies in a segment");
                if offset >= segment.next_offset() {
                    // A gap after this segment (truncation or compaction): move on.
                    let next = state.segments.range(offset + 1..).next().map(|(base, _)| *base);
                    match next {
                        Some(next) => {
                            offset = next;
                            continue;
                        }
                        None => return Ok(result),
                    }
                }
                (segment.plan_read(offset), result, max_offset, state.truncations)
            };
            // The tail cache holds everything not yet readable from disk, and `offset` is
            // older than the cache, so the disk has it.
            let ahead = {
                let mut slot = self.read_ahead.borrow_mut();
                if slot.as_ref().is_some_and(|ahead| plan.is_continued_by(ahead, offset)) {
                    slot.take()
                } else {
                    None
                }
            };
            let prefetched = match ahead {
                Some(ahead) => ahead.into_window().await,
                None => None,
            };
            let read = plan.read(offset, max_offset, max_bytes, prefetched).await?;
            // A truncation while this read ran may have put other batches at the window's
            // positions: that window must not serve the next read.
            if self.state.borrow().truncations == truncations {
                *self.read_ahead.borrow_mut() = read.read_ahead;
            }
            result.batches = read.batches;
            return Ok(self.with_aborted(result, offset));
        }
    }

    /// Fills a read_committed read's aborted transactions: those overlapping the offsets
    /// from `from` to the end of the last batch returned.
    fn with_aborted(&self, mut read: LogRead, from: i64) -> LogRead {
        let (Some(aborted), Some(last)) = (read.aborted_transactions.as_mut(), read.batches.last()) else {
            return read;
        };
        let upper = BatchHeader::parse(last, usize::MAX).expect("served batches are valid").last_offset() + 1;
        *aborted = self.aborted_transactions(from, upper);
        read
    }

    /// The earliest offset whose record timestamp is `>= timestamp`, with that timestamp
    /// (Kafka's ListOffsets by time). `None` if every record is older.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let plans: Vec<_> = {
            let mut state = self.state.borrow_mut();
            let log_start = state.log_start_offset;
            state
                .segments
                .values_mut()
                .filter(|s| s.next_offset() > log_start && s.max_timestamp().is_some_and(|max| max >= timestamp))
                .map(|s| s.plan_time_lookup(timestamp))
                .collect()
        };
        let log_start = self.log_start_offset();
        for plan in plans {
            // The active segment's unwritten tail is not in the plan: fall back to the cache.
            if let Some((offset, ts)) = plan.find_timestamp(timestamp).await? {
                return Ok(Some((offset.max(log_start), ts)));
            }
        }
        let state = self.state.borrow();
        let cache_start = state.tail.first_offset().unwrap_or(log_start).max(log_start);
        let cached = state.tail.read(cache_start, state.log_end(), usize::MAX).unwrap_or_default();
        Ok(cached.iter().find_map(|batch| {
            let header = BatchHeader::parse(batch, usize::MAX).ok()?;
            (header.max_timestamp() >= timestamp).then(|| crate::segment::first_record_at_or_after(&header, timestamp))
        }))
    }

    /// Closes the active segment and starts a new one at the log end.
    pub async fn roll(&self) -> Result<()> {
        let _turn = self.append_lock.lock().await;
        self.state.borrow().check_failed()?;
        self.roll_locked().await
    }

    async fn roll_locked(&self) -> Result<()> {
        let Some((path, end, next_base)) = self.seal_active().await? else {
            return Ok(()); // empty active segment: nothing to roll
        };
        let (index, aborted) = {
            let mut state = self.state.borrow_mut();
            let active = state.active();
            let aborted = active.aborted_txns().to_vec();
            (active.mark_closed().clone(), aborted)
        };
        let segment = Segment::create(&self.dir, next_base).await?;
        tracing::debug!(partition = %self.name, closed = %path.display(), bytes = end, next_base, "rolled segment");
        let producers = {
            let mut state = self.state.borrow_mut();
            state.durable_end = state.durable_end.max(next_base);
            state.segments.insert(next_base, segment);
            state.producers.encode()
        };
        // Both files only speed up recovery (a missing index is rebuilt by a scan, a
        // missing snapshot replaced by an older one and more batches), so appends to the
        // new segment need not wait for their fsyncs. The ticket is taken now: the task's
        // turn comes before any later removal's.
        let ticket = self.file_work.ticket();
        let (dir, name) = (self.dir.clone(), self.name.clone());
        glommio::spawn_local(async move {
            let _turn = ticket.turn().await;
            let written = async {
                fs::write_index_files(&path, &index).await?;
                // Before the snapshot, which makes a replay skip this segment.
                fs::write_txn_index(&path, &aborted).await?;
                write_producer_snapshot(&dir, next_base, producers).await
            };
            if let Err(error) = written.await {
                tracing::warn!(partition = %name, %error, "a rolled segment's index files or producer snapshot were not written; recovery rebuilds them");
            }
        })
        .detach();
        Ok(())
    }

    /// Flushes the active segment and trims its file to the logical size. Returns its
    /// path, size and next offset, or `None` if it is empty.
    async fn seal_active(&self) -> Result<Option<(PathBuf, u64, i64)>> {
        let (flush, file, path, end, next_offset) = {
            let mut state = self.state.borrow_mut();
            let active = state.active();
            if active.size() == 0 {
                return Ok(None);
            }
            let (path, next_offset) = (active.path().to_path_buf(), active.next_offset());
            let appender = active.appender_mut().expect("active");
            (appender.begin_flush(), appender.file().clone(), path, appender.end(), next_offset)
        };
        let result = async {
            flush.await?;
            file.truncate(end).await.map_err(|e| EngineError::io("truncate", &path, e))?;
            crate::sync_stats::fdatasync(&file, &path).await
        }
        .await;
        if let Err(error) = result {
            self.fail(&mut self.state.borrow_mut(), error.clone());
            return Err(error);
        }
        {
            let mut state = self.state.borrow_mut();
            state.durable_end = state.durable_end.max(next_offset);
        }
        self.wake_data_waiters();
        Ok(Some((path, end, next_offset)))
    }

    /// Removes every batch at or after `offset` (a follower diverged from its leader).
    /// If `offset` falls inside a batch, that whole batch goes: the log end becomes its
    /// base offset. Durable before it returns.
    ///
    /// Readers keep working throughout: the state switches to the shorter log in one
    /// synchronous step before any file is cut.
    pub async fn truncate_to(&self, offset: i64) -> Result<()> {
        let _turn = self.append_lock.lock().await;
        self.settle_file_work().await;
        let (in_flight, flush) = {
            let mut state = self.state.borrow_mut();
            let (log_start, log_end) = (state.log_start_offset, state.log_end());
            if offset >= log_end {
                return Ok(());
            }
            if offset < log_start {
                return Err(EngineError::OffsetOutOfRange { partition: self.name.clone(), offset, log_start, log_end });
            }
            let in_flight: Vec<WriteHandle> = state.flushes.iter().map(|f| f.handle.clone()).collect();
            (in_flight, state.begin_flush().handle)
        };
        // Everything goes to disk first: the cut is found by walking the file, and no
        // write may land after the file is trimmed.
        for earlier in in_flight {
            let _ = earlier.await;
        }
        flush.await?;
        let (keep_file, keep_path, keep_size, keep_base, keep_next) = {
            let mut state = self.state.borrow_mut();
            let keep = state.segments.range_mut(..=offset).next_back().expect("offset >= log start").1;
            (keep.file().clone(), keep.path().to_path_buf(), keep.size(), keep.base_offset(), keep.next_offset())
        };
        let (cut, new_end) = position_of_batch_containing(&keep_file, &keep_path, keep_size, offset)
            .await?
            .unwrap_or((keep_size, keep_next));
        let (doomed_paths, epochs) = {
            let mut state = self.state.borrow_mut();
            let doomed = state.segments.split_off(&(keep_base + 1));
            let keep = state.segments.get_mut(&keep_base).expect("found above");
            // Its appender (if it was the active segment) must write nothing more.
            keep.shrink_to(cut, new_end);
            state.tail.truncate_from(new_end);
            state.durable_end = state.durable_end.min(new_end);
            state.visible_floor = state.visible_floor.min(new_end);
            state.epochs.truncate_from(new_end);
            state.flushes.clear();
            state.truncations += 1;
            // Its positions may now hold other batches (see `read`).
            self.read_ahead.borrow_mut().take();
            state.compacted = None;
            // Cutting the batch holding the log start leaves an empty log starting there.
            state.log_start_offset = state.log_start_offset.min(new_end);
            let mut paths = Vec::new();
            for segment in doomed.values() {
                paths.push(segment.path().to_path_buf());
                paths.extend(fs::companion_paths(segment.path()));
            }
            let (index, timeindex) = fs::index_paths(&keep_path);
            paths.extend([index, timeindex]);
            (paths, state.epochs.encode())
        };
        // Later segments go before the kept one is cut: a crash in between leaves a
        // shorter log, never a hole followed by stale data. The kept segment's index
        // files go too: it is active again and its index lives in memory.
        fs::remove_files(doomed_paths).await?;
        let (segment, _) = Segment::open_active(&self.dir, keep_base, &self.config(), Some(cut)).await?;
        assert_eq!(segment.next_offset(), new_end, "the walk agrees with the cut");
        self.state.borrow_mut().segments.insert(keep_base, segment);
        self.rebuild_producer_states().await?;
        if self.log_start_offset() == new_end {
            self.store_log_start().await?;
        }
        fs::write_checkpoint(&self.dir.join(LEADER_EPOCH_CHECKPOINT), epochs).await
    }

    /// Raises the log start offset to `offset` (Kafka's DeleteRecords) and deletes the
    /// closed segments wholly below it. Returns the new log start offset.
    /// Runs in `ticket`'s turn of the append line (see [`PartitionLog::append_ticket`]).
    pub async fn delete_records_before(&self, ticket: Ticket, offset: i64) -> Result<i64> {
        assert!(self.append_lock.issued(&ticket), "a ticket of this log's line");
        let _turn = ticket.turn().await;
        let (log_start, high_watermark) = {
            let state = self.state.borrow();
            (state.log_start_offset, state.high_watermark())
        };
        if offset > high_watermark {
            return Err(EngineError::OffsetOutOfRange {
                partition: self.name.clone(),
                offset,
                log_start,
                log_end: high_watermark,
            });
        }
        if offset > log_start {
            let (_, detached) = self.detach_segments_before(offset);
            drop(_turn);
            self.finish_removal(detached).await?;
        }
        Ok(self.log_start_offset())
    }

    /// Deletes closed segments past `retention.ms` (by their newest timestamp) or beyond
    /// `retention.bytes` (oldest first). The active segment is never deleted, and nothing
    /// is when `cleanup.policy` lacks `delete`.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        if self.state.borrow().segments.len() < 2 {
            // Only closed segments are ever deleted: nothing to look at, no turn to take
            // (what keeps idle partitions free of cost in the shard's retention pass).
            return Ok(RetentionReport::default());
        }
        let _turn = self.append_lock.lock().await;
        let new_start = {
            let state = self.state.borrow();
            let config = &state.config;
            if !config.delete {
                // `cleanup.policy=compact` alone: segments are never deleted for age or size.
                return Ok(RetentionReport::default());
            }
            let mut total: u64 = state.segments.values().map(Segment::size).sum();
            let mut new_start = None;
            let closed = state.segments.values().take(state.segments.len() - 1);
            let next_bases = state.segments.keys().skip(1);
            for (segment, next_base) in closed.zip(next_bases) {
                let expired = config.retention_ms.is_some_and(|retention| {
                    segment.max_timestamp().is_none_or(|max| max < now_ms - retention.as_millis() as i64)
                });
                let oversized = config.retention_bytes.is_some_and(|limit| total - segment.size() >= limit);
                if !(expired || oversized) {
                    break;
                }
                total -= segment.size();
                new_start = Some(*next_base);
            }
            new_start
        };
        match new_start {
            Some(offset) if offset > self.log_start_offset() => {
                let (report, detached) = self.detach_segments_before(offset);
                // Appends need not wait for the checkpoint's and the renames' fsyncs.
                drop(_turn);
                self.finish_removal(detached).await?;
                Ok(report)
            }
            _ => Ok(RetentionReport::default()),
        }
    }

    /// Compacts the log (Kafka's `cleanup.policy=compact`): every closed segment below the
    /// last stable offset is rewritten keeping, for each key, only the record with the
    /// highest offset in the log outside aborted transactions (whose records go); markers
    /// and records with a null key always stay, and a tombstone (null value) that is the
    /// newest of its key stays until `now_ms` reaches its batch's max timestamp plus
    /// `delete.retention.ms`. The active segment is never rewritten, but its fsynced
    /// records count when deciding what is newest. Survivors keep their offsets; batches
    /// keep their base offset and `lastOffsetDelta`; an emptied batch goes, and so does an
    /// emptied segment unless it is the first.
    ///
    /// Skipped (cheaply) when the policy lacks `compact`, another pass runs, or nothing
    /// changed since the last pass: no segment rolled, no truncation, no config change,
    /// and no kept tombstone has expired since.
    ///
    /// Appends go on during the pass: the key map is built and the cleaned segments are
    /// written without an append turn; only the swap of each segment takes it.
    pub async fn compact(&self, now_ms: i64) -> Result<CompactionReport> {
        let skipped = CompactionReport { skipped: true, ..CompactionReport::default() };
        let (truncations, active_base, upper) = {
            let mut state = self.state.borrow_mut();
            state.check_failed()?;
            let active_base = *state.segments.keys().next_back().expect("a log always has an active segment");
            let unchanged = state.compacted.is_some_and(|mark| {
                mark.active_base == active_base && mark.tombstone_expiry.is_none_or(|expiry| now_ms < expiry)
            });
            if !state.config.compact || state.compacting || state.segments.len() < 2 || unchanged {
                return Ok(skipped);
            }
            state.compacting = true;
            // Not past the first open transaction (Kafka's cleaner bound): it may still
            // abort, so its records must neither shadow older ones nor be judged yet.
            let upper = state.durable_end.min(state.log_end()).min(state.last_stable_offset());
            (state.truncations, active_base, upper)
        };
        struct Compacting<'a>(&'a RefCell<LogState>);
        impl Drop for Compacting<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().compacting = false;
            }
        }
        let _compacting = Compacting(&self.state);

        let mut map = self.build_offset_map(upper).await?;
        let (targets, delete_retention_ms) = {
            let state = self.state.borrow();
            if state.segments.range(..active_base).all(|(_, segment)| segment.corruption().is_none()) {
                // Every batch from the log start passes the filter in order: markers can
                // be judged.
                map.track_markers();
            }
            let ends: Vec<i64> = state.segments.keys().skip(1).copied().collect();
            let targets: Vec<(i64, Rc<DmaFile>, PathBuf, u64)> = state
                .segments
                .range(..active_base)
                .zip(ends)
                .filter(|((_, segment), end)| !segment.is_active() && segment.corruption().is_none() && *end <= upper)
                .map(|((base, segment), _)| {
                    (*base, segment.file().clone(), segment.path().to_path_buf(), segment.size())
                })
                .collect();
            (targets, state.config.delete_retention.as_millis().min(i64::MAX as u128) as i64)
        };
        let mut report = CompactionReport::default();
        let mut tombstone_expiry: Option<i64> = None;
        for (base, file, path, size) in targets {
            let cleaned = self.clean_segment(&file, &path, size, &mut map, now_ms, delete_retention_ms).await?;
            if let Some(expiry) = cleaned.counts.next_tombstone_expiry {
                tombstone_expiry = Some(tombstone_expiry.map_or(expiry, |t| t.min(expiry)));
            }
            if cleaned.counts.removed == 0 {
                fs::remove_files(vec![cleaned.path]).await?;
                continue;
            }
            let swapped = self.swap_cleaned(base, &file, &path, &cleaned, truncations).await?;
            if let Some(removed) = swapped {
                report.segments_rewritten += 1;
                report.segments_removed += usize::from(removed);
                report.bytes_before += size;
                report.bytes_after += cleaned.size;
                report.records_removed += cleaned.counts.removed;
                report.tombstones_removed += cleaned.counts.tombstones_removed;
                report.markers_removed += cleaned.counts.markers_removed;
            }
        }
        let mut state = self.state.borrow_mut();
        if state.truncations == truncations {
            state.compacted = Some(CompactionMark { active_base, tombstone_expiry });
        }
        drop(state);
        if report.segments_rewritten > 0 {
            tracing::info!(
                partition = %self.name, segments = report.segments_rewritten, records_removed = report.records_removed,
                bytes_before = report.bytes_before, bytes_after = report.bytes_after, "compacted"
            );
        }
        Ok(report)
    }

    /// The newest offset of every key in the log below `end` (fsynced data only: a
    /// record a crash could take back must not make an older one disappear), leaving out
    /// aborted transactions.
    async fn build_offset_map(&self, end: i64) -> Result<OffsetMap> {
        let mut map = OffsetMap::with_aborted(self.aborted_transactions(self.log_start_offset(), end));
        let mut offset = self.log_start_offset();
        while offset < end {
            offset = offset.max(self.log_start_offset());
            let read = self.read(offset, 1 << 20, ReadLimit::LogEnd).await?;
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                let header = BatchHeader::parse(batch, usize::MAX).expect("served batches are valid");
                if header.base_offset() >= end {
                    return Ok(map);
                }
                if let Err(reason) = map.observe(batch) {
                    // Not seeing its keys only keeps older records of them: safe.
                    tracing::warn!(partition = %self.name, offset = header.base_offset(), %reason,
                        "compaction cannot read the keys of a batch; older records of its keys are kept");
                }
                offset = header.last_offset() + 1;
            }
        }
        Ok(map)
    }

    /// Writes what compaction keeps of the closed segment `path` (`size` bytes) to
    /// `<path>.cleaned` and fsyncs it. Batches whose records cannot be read are kept as
    /// they are (with a warning naming file and position).
    async fn clean_segment(
        &self,
        file: &DmaFile,
        path: &Path,
        size: u64,
        map: &mut OffsetMap,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> Result<CleanedSegment> {
        use futures::io::AsyncWriteExt;
        const CHUNK_BYTES: usize = 1 << 20;
        let mut cleaned_path = path.as_os_str().to_owned();
        cleaned_path.push(crate::segment::CLEANED_SUFFIX);
        let cleaned_path = PathBuf::from(cleaned_path);
        let out = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(&cleaned_path)
            .await
            .map_err(|e| EngineError::io("create", &cleaned_path, e))?;
        let mut writer =
            glommio::io::DmaStreamWriterBuilder::new(out).with_buffer_size(128 << 10).with_write_behind(2).build();
        let mut counts = FilterCounts::default();
        let mut written = 0u64;
        let mut position = 0;
        while position < size {
            let mut chunk: Vec<(u64, Bytes)> = Vec::new();
            let mut chunk_bytes = 0;
            let outcome = crate::scan::scan_batches(file, path, position, size, true, |at, _, batch| {
                if chunk_bytes >= CHUNK_BYTES {
                    return std::ops::ControlFlow::Break(());
                }
                chunk_bytes += batch.len();
                chunk.push((at, batch.clone()));
                std::ops::ControlFlow::Continue(())
            })
            .await?;
            if let crate::scan::ScanStop::Invalid { position, reason } = outcome.stop {
                return Err(EngineError::Corrupt { file: path.to_path_buf(), position, reason });
            }
            assert!(outcome.end > position, "a walk that stopped took at least one batch");
            position = outcome.end;
            for (at, batch) in chunk {
                let kept = match crate::compaction::filter_batch(&batch, map, now_ms, delete_retention_ms) {
                    Ok((filtered, batch_counts)) => {
                        counts.removed += batch_counts.removed;
                        counts.tombstones_removed += batch_counts.tombstones_removed;
                        counts.markers_removed += batch_counts.markers_removed;
                        if let Some(expiry) = batch_counts.next_tombstone_expiry {
                            counts.next_tombstone_expiry =
                                Some(counts.next_tombstone_expiry.map_or(expiry, |t| t.min(expiry)));
                        }
                        match filtered {
                            Filtered::Keep => Some(batch),
                            Filtered::Drop => None,
                            Filtered::Rewrite(rewritten) => Some(rewritten),
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(file = %path.display(), position = at, %reason,
                            "compaction cannot read the records of a batch; it is kept as it is");
                        map.kept_transactional_data(&batch);
                        Some(batch)
                    }
                };
                if let Some(kept) = kept {
                    writer.write_all(&kept).await.map_err(|e| EngineError::io("write", &cleaned_path, e))?;
                    written += kept.len() as u64;
                }
            }
        }
        writer.close().await.map_err(|e| EngineError::io("close", &cleaned_path, e))?;
        fs::sync_file(&cleaned_path).await?;
        Ok(CleanedSegment { path: cleaned_path, size: written, counts })
    }

    /// Swaps a cleaned segment in for the closed segment `base`, in an append turn,
    /// if that segment is still the one that was cleaned (same file, no truncation since
    /// the key map was built); else discards it. Crash-safe order: the old index files go
    /// first (a crash leaves the old log, whose index is rebuilt), then the rename of
    /// `<base>.log.cleaned` onto `<base>.log` with a directory fsync commits, then the new
    /// index files are built. Readers in flight keep the old file open and finish on it.
    /// Returns `None` if discarded, else whether the segment was removed (left empty).
    async fn swap_cleaned(
        &self,
        base: i64,
        old_file: &Rc<DmaFile>,
        path: &Path,
        cleaned: &CleanedSegment,
        truncations: u64,
    ) -> Result<Option<bool>> {
        let _turn = self.append_lock.lock().await;
        self.settle_file_work().await;
        let (current, first, next_base) = {
            let state = self.state.borrow();
            let current = state.truncations == truncations
                && state.segments.get(&base).is_some_and(|s| !s.is_active() && Rc::ptr_eq(s.file(), old_file));
            let first = state.segments.keys().next() == Some(&base);
            let next_base = state.segments.range(base + 1..).next().map(|(b, _)| *b);
            (current, first, next_base)
        };
        if !current {
            fs::remove_files(vec![cleaned.path.clone()]).await?;
            return Ok(None);
        }
        let next_base = next_base.expect("a closed segment has a successor");
        let (index, timeindex) = fs::index_paths(path);
        if cleaned.size == 0 && !first {
            // Nothing survived: the segment goes. The state changes first (reads in
            // flight hold the old file), then the files, index files first.
            {
                let mut state = self.state.borrow_mut();
                state.segments.remove(&base);
                state.tail.drop_before(next_base);
            }
            let mut files = fs::companion_paths(path).to_vec();
            files.extend([path.to_path_buf(), cleaned.path.clone()]);
            fs::remove_files(files).await?;
            return Ok(Some(true));
        }
        // The aborted-transaction index stays: compaction keeps offsets and markers.
        fs::remove_files(vec![index, timeindex]).await?;
        fs::rename_durably(&cleaned.path, path).await?;
        let config = self.config();
        // Reopening rebuilds the index from the new file and writes the index files.
        let segment = Segment::open_closed(&self.dir, base, &config).await?;
        assert!(segment.corruption().is_none(), "a cleaned segment is valid: {}", path.display());
        assert!(segment.next_offset() <= next_base, "compaction keeps offsets inside the segment");
        let mut state = self.state.borrow_mut();
        state.segments.insert(base, segment);
        // Cached batches of compacted segments would serve records compaction removed.
        state.tail.drop_before(next_base);
        Ok(Some(false))
    }

    /// Raises the log start offset to `offset` and takes the closed segments wholly below
    /// it out of the log (in memory, in an append turn). Returns what was removed
    /// and the files to delete with [`Self::finish_removal`].
    fn detach_segments_before(&self, offset: i64) -> (RetentionReport, DetachedFiles) {
        let doomed: Vec<Segment> = {
            let mut state = self.state.borrow_mut();
            state.log_start_offset = offset;
            state.tail.drop_before(offset);
            let bases: Vec<i64> = state
                .segments
                .iter()
                .zip(state.segments.keys().skip(1))
                .filter(|((_, segment), next_base)| !segment.is_active() && **next_base <= offset)
                .map(|((base, _), _)| *base)
                .collect();
            bases.into_iter().filter_map(|base| state.segments.remove(&base)).collect()
        };
        let mut report = RetentionReport::default();
        let mut detached = DetachedFiles::default();
        for segment in &doomed {
            report.segments_deleted += 1;
            report.bytes_deleted += segment.size();
            detached.paths.push(segment.path().to_path_buf());
            detached.paths.extend(fs::companion_paths(segment.path()));
            detached.files.push(Rc::downgrade(segment.file()));
        }
        (report, detached)
    }

    /// Makes a raised log start durable (checkpoint first, so a crash never finds the
    /// files gone but the old start recorded), then retires the detached segments' files
    /// (renamed `.deleted`) and leaves their deletion to a task that waits
    /// `file.delete.delay.ms` and then frees their blocks in steps ([`fs::delete_in_steps`]),
    /// off every append's path. Readers that still hold one of them keep reading it: the
    /// file is only unlinked, not shrunk, while any reader holds it.
    async fn finish_removal(&self, detached: DetachedFiles) -> Result<()> {
        self.settle_file_work().await;
        self.store_log_start().await?;
        let retired = fs::retire_files(detached.paths).await?;
        if retired.is_empty() {
            return Ok(());
        }
        let delay = self.state.borrow().config.file_delete_delay;
        let partition = self.name.clone();
        let readers = detached.files;
        glommio::spawn_local(async move {
            glommio::timer::sleep(delay).await;
            let unread = readers.iter().all(|file| file.strong_count() == 0);
            if let Err(error) = fs::delete_in_steps(retired, unread).await {
                // The files stay as `.deleted`, which the next start removes.
                tracing::warn!(%partition, %error, "deleting retired segment files failed");
            }
        })
        .detach();
        Ok(())
    }

    /// Writes the current log start offset to its checkpoint (serialized; see
    /// `checkpoint_lock`).
    async fn store_log_start(&self) -> Result<()> {
        let _turn = self.checkpoint_lock.lock().await;
        let offset = self.log_start_offset();
        fs::write_checkpoint(&self.dir.join(LOG_START_CHECKPOINT), offset.to_string().into_bytes()).await
    }

    /// Flushes and trims the active segment so the files on disk are exact. The log
    /// refuses further appends afterwards.
    pub async fn close(&self) -> Result<()> {
        let _turn = self.append_lock.lock().await;
        self.settle_file_work().await;
        self.state.borrow().check_failed()?;
        self.seal_active().await?;
        // Before the snapshot: a replay from it records only the aborts after it.
        let (path, aborted) = {
            let mut state = self.state.borrow_mut();
            let active = state.active();
            (active.path().to_path_buf(), active.aborted_txns().to_vec())
        };
        fs::write_txn_index(&path, &aborted).await?;
        self.snapshot_producer_states().await?;
        let mut state = self.state.borrow_mut();
        state.failed = Some(EngineError::Failed { partition: self.name.clone(), cause: "log is closed".into() });
        Ok(())
    }
}

impl LogState {
    fn should_roll(&mut self, batch_bytes: usize, batch_timestamp_ms: i64) -> bool {
        let segment_bytes = self.config.segment_bytes;
        let segment_ms = self.config.segment_ms;
        let active = self.active();
        if active.size() == 0 {
            return false;
        }
        let full = active.size() + batch_bytes as u64 > segment_bytes;
        let old = segment_ms.is_some_and(|ms| active.is_older_than(ms, batch_timestamp_ms));
        // Relative offsets are u32 in the index; a batch spans at most i32::MAX offsets.
        let offsets_exhausted = active.next_offset() - active.base_offset() > i64::from(u32::MAX) - i64::from(i32::MAX);
        full || old || offsets_exhausted
    }
}

/// File position and base offset of the batch holding `offset` in a segment file of
/// `size` bytes; `None` when no batch there holds it.
async fn position_of_batch_containing(
    file: &DmaFile,
    path: &Path,
    size: u64,
    offset: i64,
) -> Result<Option<(u64, i64)>> {
    let mut found = None;
    crate::scan::scan_batches(file, path, 0, size, false, |position, header, _| {
        if header.last_offset() >= offset {
            found = Some((position, header.base_offset()));
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    })
    .await?;
    Ok(found)
}

/// A compacted segment written next to the one it replaces.
struct CleanedSegment {
    path: PathBuf,
    size: u64,
    counts: FilterCounts,
}

/// Producer-state snapshots kept per partition.
const PRODUCER_SNAPSHOTS_KEPT: usize = 2;

/// Writes `<offset>.snapshot` in `dir` with encoded producer states, and keeps only the
/// newest [`PRODUCER_SNAPSHOTS_KEPT`] snapshots.
async fn write_producer_snapshot(dir: &Path, offset: i64, contents: Vec<u8>) -> Result<()> {
    fs::write_checkpoint(&dir.join(producer_snapshot_name(offset)), contents).await?;
    let mut snapshots = list_producer_snapshots(dir);
    snapshots.truncate(snapshots.len().saturating_sub(PRODUCER_SNAPSHOTS_KEPT));
    fs::remove_files(snapshots.into_iter().map(|(_, path)| path).collect()).await
}

fn producer_snapshot_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

/// Producer-state snapshots in `dir`, oldest first.
fn list_producer_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut snapshots: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let offset = name.to_str()?.strip_suffix(".snapshot")?.parse().ok()?;
            Some((offset, entry.path()))
        })
        .collect();
    snapshots.sort();
    snapshots
}

fn read_i64_file(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
