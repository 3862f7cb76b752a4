//! Direct-I/O appender for one segment file.
//!
//! O_DIRECT demands 4 KiB-aligned positions, lengths and buffers, but batches have any
//! size. So the appender copies batches into an aligned 1 MiB chunk buffer and:
//! - writes a chunk as soon as it is full (write-behind, up to [`WRITES_IN_FLIGHT_MAX`]
//!   in flight, which is what reaches the disk's sequential bandwidth);
//! - on flush, writes what the chunk holds (its last page padded with zeros), a large
//!   part as the chunk buffer itself (no copy), and keeps a partly filled last page in
//!   memory as the tail, so the next flush rewrites that page with more data;
//! - pre-allocates the file in [`PREALLOCATE_STEP_BYTES`] steps so writes do not wait for
//!   block allocation. The logical end is tracked here, apart from the file size; closing
//!   trims the file to it.
//!
//! Two writes that cover the same page must reach the disk in issue order, or an older
//! zero-padded tail could land over newer data. Only the last page of a flush is written
//! twice, so only that one page is written in order (after the write before it); every
//! other write goes out at once, keeping the device queue deep.
//!
//! The appender is synchronous: it returns futures ([`WriteHandle`]) for the caller to
//! await, so the owning log never holds a `RefCell` borrow across an await.

use crate::error::{EngineError, Result};
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use glommio::io::{DmaBuffer, DmaFile};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// O_DIRECT alignment used for every write and read.
pub const PAGE_BYTES: u64 = 4096;
/// Size of one write-behind chunk.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Bound on concurrent chunk writes per segment; appends wait beyond it (back-pressure).
pub const WRITES_IN_FLIGHT_MAX: usize = 8;
/// Pre-allocation step.
pub const PREALLOCATE_STEP_BYTES: u64 = 32 << 20;

/// A spawned write or flush: several waiters can await it, and anyone can ask whether it
/// has finished without polling it (the task records its result when it ends, so
/// finished writes are seen as finished even if nobody awaited them).
#[derive(Clone)]
pub struct WriteHandle {
    result: Rc<RefCell<Option<Result<()>>>>,
    waiter: Shared<LocalBoxFuture<'static, Result<()>>>,
}

impl WriteHandle {
    /// The result, once the task has finished.
    pub fn peek(&self) -> Option<Result<()>> {
        self.result.borrow().clone()
    }

    /// Whether both handles are the same task.
    pub fn ptr_eq(&self, other: &WriteHandle) -> bool {
        Rc::ptr_eq(&self.result, &other.result)
    }
}

impl std::future::Future for WriteHandle {
    type Output = Result<()>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<()>> {
        std::pin::Pin::new(&mut self.waiter).poll(cx)
    }
}

/// Rounds down to a page boundary.
pub fn page_down(position: u64) -> u64 {
    position & !(PAGE_BYTES - 1)
}

/// Rounds up to a page boundary.
pub fn page_up(position: u64) -> u64 {
    page_down(position + PAGE_BYTES - 1)
}

/// Writes batches to one segment file through O_DIRECT.
///
/// Unissued data lives in two buffers: `tail`, the one page a flush left partly written
/// (the file range `[chunk_start - PAGE_BYTES, chunk_start)`), and `chunk`, which starts
/// at the page-aligned `chunk_start` and holds nothing that was issued. So a flush writes
/// the tail page (ordered after the write that left it partial) and the chunk's filled
/// pages (at once, overlapping nothing in flight); a large chunk part goes out as the
/// chunk buffer itself, without a copy.
pub struct Appender {
    file: Rc<DmaFile>,
    path: PathBuf,
    /// The partly written page before `chunk_start` and the bytes appended to it since;
    /// zero past `end`.
    tail: Option<DmaBuffer>,
    /// Aligned buffer covering file range `[chunk_start, chunk_start + CHUNK_BYTES)`.
    chunk: DmaBuffer,
    chunk_start: u64,
    /// Logical end of the data.
    end: u64,
    /// Data below this position has been handed to a write (the last page maybe partly).
    issued: u64,
    /// Unfinished writes, each with the position where its new data starts.
    in_flight: VecDeque<(u64, WriteHandle)>,
    /// The newest write of the tail page while it was partly filled: the tail page's next
    /// write must not overtake it.
    tail_page_write: Option<WriteHandle>,
    /// File size reserved with fallocate.
    preallocated: u64,
    /// The first write error; after it, nothing is written.
    failed: Option<EngineError>,
}

/// A flush whose chunk part is at least this long hands the chunk buffer itself to the
/// write and takes a fresh one; shorter parts are copied out, keeping one chunk
/// allocation per log when flushes are small (many quiet partitions).
pub const CHUNK_HANDOVER_MIN_BYTES: u64 = 64 << 10;

impl Appender {
    /// Takes over a segment file whose valid data ends at `end`. The caller has already
    /// trimmed the file to `end` (so nothing stale lies beyond it) and read the bytes of
    /// the page holding `end` into `tail_page` (empty when `end` is page-aligned).
    pub fn new(file: Rc<DmaFile>, path: &Path, end: u64, tail_page: &[u8]) -> Self {
        assert_eq!(tail_page.len() as u64, end - page_down(end), "tail page covers [page, end)");
        let tail = (!tail_page.is_empty()).then(|| page_buffer(&file, tail_page));
        let chunk = file.alloc_dma_buffer(CHUNK_BYTES);
        Appender {
            file,
            path: path.to_path_buf(),
            tail,
            chunk,
            chunk_start: page_up(end),
            end,
            issued: end,
            in_flight: VecDeque::new(),
            tail_page_write: None,
            preallocated: end,
            failed: None,
        }
    }

    /// The file this appender writes.
    pub fn file(&self) -> &Rc<DmaFile> {
        &self.file
    }

    /// Logical end of the data, in bytes.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// If appending `additional` bytes would pass the pre-allocated size, returns the new
    /// size to pre-allocate: a [`PREALLOCATE_STEP_BYTES`] step, but not past the segment's
    /// size limit unless the batch itself needs it. The caller awaits
    /// `file.pre_allocate` and then calls [`Appender::set_preallocated`].
    pub fn preallocation_needed(&self, additional: u64, segment_bytes: u64) -> Option<u64> {
        let needed = self.end + additional;
        let step = (self.preallocated + PREALLOCATE_STEP_BYTES).min(page_up(segment_bytes));
        (needed > self.preallocated).then(|| page_up(needed).max(step))
    }

    /// Records a finished pre-allocation.
    pub fn set_preallocated(&mut self, size: u64) {
        self.preallocated = self.preallocated.max(size);
    }

    /// Copies `data` after the current end, issuing a write for each chunk it fills.
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if let Some(tail) = &mut self.tail {
            if self.end < self.chunk_start {
                let at = (self.end - (self.chunk_start - PAGE_BYTES)) as usize;
                let n = data.len().min((self.chunk_start - self.end) as usize);
                tail.as_bytes_mut()[at..at + n].copy_from_slice(&data[..n]);
                self.end += n as u64;
                data = &data[n..];
            }
        }
        while !data.is_empty() {
            let at = (self.end - self.chunk_start) as usize;
            let n = data.len().min(CHUNK_BYTES - at);
            self.chunk.as_bytes_mut()[at..at + n].copy_from_slice(&data[..n]);
            self.end += n as u64;
            data = &data[n..];
            if at + n == CHUNK_BYTES {
                self.issue_full_chunk();
            }
        }
        Ok(())
    }

    /// Returns a write to wait for when this segment has too many in flight, or when the
    /// shard as a whole has more than [`SHARD_WRITE_BYTES_IN_FLIGHT_MAX`] in flight and
    /// this segment contributes to it. A log with nothing in flight is never held back by
    /// others, so a quiet partition keeps low latency next to busy ones.
    pub fn backpressure(&mut self) -> Option<WriteHandle> {
        self.prune_finished();
        let shard_over = SHARD_WRITE_BYTES.with(Cell::get) > SHARD_WRITE_BYTES_IN_FLIGHT_MAX;
        let over = self.in_flight.len() > WRITES_IN_FLIGHT_MAX || (shard_over && !self.in_flight.is_empty());
        over.then(|| self.in_flight[0].1.clone())
    }

    /// Position below which every byte is on disk (written, not necessarily fsynced):
    /// reads below it may go to the file; above it they must be served from memory.
    pub fn readable_on_disk(&mut self) -> u64 {
        self.prune_finished();
        self.in_flight.iter().map(|(start, _)| *start).fold(self.issued, u64::min)
    }

    /// Issues the write of everything not yet issued and returns a future that completes
    /// once all writes issued so far are done and an `fdatasync` has covered them.
    pub fn begin_flush(&mut self) -> WriteHandle {
        if let Some(error) = &self.failed {
            let error = error.clone();
            return spawn_shared(async move { Err(error) });
        }
        if self.end > self.issued {
            self.issue_partial();
        }
        let writes: Vec<WriteHandle> = self.in_flight.iter().map(|(_, w)| w.clone()).collect();
        let file = self.file.clone();
        let path = self.path.clone();
        spawn_shared(async move {
            for write in writes {
                write.await?;
            }
            crate::sync_stats::fdatasync(&file, &path).await
        })
    }

    /// Marks the appender failed: used by the log when a flush future reports an error.
    pub fn fail(&mut self, error: EngineError) {
        self.failed.get_or_insert(error);
    }

    /// The chunk is full: the tail page (if it has unissued bytes) and the chunk go out,
    /// and a fresh chunk starts at the end.
    fn issue_full_chunk(&mut self) {
        debug_assert_eq!(self.end, self.chunk_start + CHUNK_BYTES as u64);
        self.issue_tail();
        let full = std::mem::replace(&mut self.chunk, self.file.alloc_dma_buffer(CHUNK_BYTES));
        self.issue(full, self.chunk_start, None);
        self.tail_page_write = None;
        self.chunk_start = self.end;
        self.issued = self.end;
    }

    /// A flush: everything appended since the last one goes out. Afterwards the chunk is
    /// empty and starts at the page after the end; a partly filled last page becomes the
    /// tail, a copy of what was just written of it.
    fn issue_partial(&mut self) {
        let mut last_write = self.issue_tail();
        if self.end > self.chunk_start {
            let filled = self.end - self.chunk_start;
            let write_len = page_up(filled) as usize;
            self.chunk.as_bytes_mut()[filled as usize..write_len].fill(0);
            let buffer = if filled >= CHUNK_HANDOVER_MIN_BYTES {
                let mut whole = std::mem::replace(&mut self.chunk, self.file.alloc_dma_buffer(CHUNK_BYTES));
                whole.trim_to_size(write_len);
                whole
            } else {
                page_buffer(&self.file, &self.chunk.as_bytes()[..write_len])
            };
            self.tail = (!self.end.is_multiple_of(PAGE_BYTES))
                .then(|| page_buffer(&self.file, &buffer.as_bytes()[write_len - PAGE_BYTES as usize..]));
            last_write = Some(self.issue(buffer, self.chunk_start, None));
        }
        // Only a partly filled last page is written again, by the next flush.
        self.tail_page_write = last_write.filter(|_| !self.end.is_multiple_of(PAGE_BYTES));
        self.chunk_start = page_up(self.end);
        self.issued = self.end;
        debug_assert_eq!(self.tail.is_some(), !self.end.is_multiple_of(PAGE_BYTES));
    }

    /// Issues the tail page, which holds unissued bytes, ordered after its previous write,
    /// and returns that write. When the data ends inside the page, a copy stays as the
    /// tail; otherwise the tail is gone.
    fn issue_tail(&mut self) -> Option<WriteHandle> {
        let tail = self.tail.take()?;
        assert!(self.issued < self.chunk_start.min(self.end), "a tail page holds unissued bytes when it is issued");
        if self.end < self.chunk_start {
            self.tail = Some(page_buffer(&self.file, tail.as_bytes()));
        }
        let previous = self.tail_page_write.take();
        Some(self.issue(tail, self.chunk_start - PAGE_BYTES, previous))
    }

    fn issue(&mut self, buffer: DmaBuffer, position: u64, after: Option<WriteHandle>) -> WriteHandle {
        assert!(position.is_multiple_of(PAGE_BYTES) && (buffer.len() as u64).is_multiple_of(PAGE_BYTES));
        let file = self.file.clone();
        let path = self.path.clone();
        let expected = buffer.len();
        let bytes = expected as u64;
        SHARD_WRITE_BYTES.with(|b| b.set(b.get() + bytes));
        let handle = spawn_shared(async move {
            let _in_flight = ShardWriteBytes(bytes);
            if let Some(previous) = after {
                previous.await?;
            }
            let written = file.write_at(buffer, position).await.map_err(|e| EngineError::io("write", &path, e))?;
            if written != expected {
                return Err(EngineError::io(
                    "short write",
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        format!("{written} of {expected} bytes at {position}"),
                    ),
                ));
            }
            Ok(())
        });
        // Bytes below `issued` are already on disk; rewriting their page changes nothing in
        // them, so reads of them need not wait for this write.
        self.in_flight.push_back((position.max(self.issued), handle.clone()));
        handle
    }

    fn prune_finished(&mut self) {
        let mut index = 0;
        while index < self.in_flight.len() {
            match self.in_flight[index].1.peek() {
                Some(Ok(())) => {
                    self.in_flight.remove(index);
                }
                Some(Err(error)) => {
                    let error = error.clone();
                    self.fail(error);
                    self.in_flight.remove(index);
                }
                None => index += 1,
            }
        }
    }
}

/// A page-rounded DMA buffer holding `bytes`, zero past them.
fn page_buffer(file: &DmaFile, bytes: &[u8]) -> DmaBuffer {
    let mut buffer = file.alloc_dma_buffer(page_up(bytes.len() as u64) as usize);
    let out = buffer.as_bytes_mut();
    out[..bytes.len()].copy_from_slice(bytes);
    out[bytes.len()..].fill(0);
    buffer
}

thread_local! {
    /// Bytes of issued, unfinished writes on this thread's executor (= this shard), over
    /// all its logs. Thread-local because a shard is one thread: no sharing, no atomics.
    static SHARD_WRITE_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// Above this many bytes in flight per shard, appends wait (see [`Appender::backpressure`]):
/// enough to keep the device busy (a 32-deep queue of 1 MiB writes), small enough that
/// the queue drains in tens of milliseconds. Without it 64 busy logs queue 512 MiB.
pub const SHARD_WRITE_BYTES_IN_FLIGHT_MAX: u64 = 32 << 20;

/// Bytes of unfinished writes on the calling shard (for metrics and tests).
pub fn shard_write_bytes_in_flight() -> u64 {
    SHARD_WRITE_BYTES.with(Cell::get)
}

/// Counts a write in [`SHARD_WRITE_BYTES`] until dropped (finished, failed or cancelled).
struct ShardWriteBytes(u64);

impl Drop for ShardWriteBytes {
    fn drop(&mut self) {
        SHARD_WRITE_BYTES.with(|b| b.set(b.get() - self.0));
    }
}

/// Spawns `future` on the current executor so it makes progress even when nobody polls
/// the returned handle, and lets several waiters share its result.
pub fn spawn_shared<F>(future: F) -> WriteHandle
where
    F: std::future::Future<Output = Result<()>> + 'static,
{
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    let task = glommio::spawn_local(async move {
        let outcome = future.await;
        *slot.borrow_mut() = Some(outcome.clone());
        outcome
    });
    WriteHandle { result, waiter: task.boxed_local().shared() }
}
