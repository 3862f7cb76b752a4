//! Fewer wake-ups while a large request arrives: the socket's receive low-water mark
//! (`SO_RCVLOWAT`) follows the bytes the current frame still certainly needs.
//!
//! A client that writes a 1 MiB Produce request in many small writes (librdkafka over TLS
//! writes one 16 KiB record per `write`) wakes the shard once per write when the socket
//! reports readable at the first byte: a wake-up, an io_uring poll, a timer and a `recv`
//! each time. Measured at a fixed 200 MB/s of 1 KiB records over SASL_SSL, that cost the
//! broker more than the decryption did (docs/BENCHMARKS.md, "Security"). Linux' `poll`
//! (and io_uring's, which uses it) reports a TCP socket readable only once `SO_RCVLOWAT`
//! bytes are queued (or the receive window is about to close), so raising the mark while
//! a large frame is in flight turns those wake-ups into a few.
//!
//! The mark must never exceed what the peer will certainly send: a client waiting for the
//! answer to a frame we have not finished reading would wait forever. So the frame reader
//! tells [`FrameNeed`] how many bytes of the frame are still to come, less what the layers
//! above the socket may already hold ([`BUFFERED_ABOVE_SOCKET`]); every byte read from the
//! socket counts down, and the mark drops back to 1 before the count falls under it.

use futures_lite::{AsyncRead, AsyncWrite};
use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// The most the layers between the socket and the frame reader can hold unread: the
/// connection's read buffer (64 KiB), rustls' plaintext (16 KiB plus one record) and its
/// one partial record (16 KiB and a header). Bytes of a frame that were already read from
/// the socket into those layers will not arrive again.
pub const BUFFERED_ABOVE_SOCKET: usize = 128 << 10;
/// The highest mark set: a wake-up per 256 KiB is few enough, and the kernel grows the
/// receive buffer to twice the mark.
const HIGHEST_MARK: usize = 256 << 10;
/// Below this many certain bytes the mark is 1 (the default): small frames wake at once.
const LOWEST_RAISED_MARK: usize = 64 << 10;

/// How many more bytes the socket will certainly deliver for the frame being read; shared
/// by the frame reader (which sets it) and [`LowWaterStream`] (which counts it down).
#[derive(Clone, Default)]
pub struct FrameNeed(Rc<Cell<usize>>);

impl FrameNeed {
    /// A frame of which `remaining` bytes are still to be read has begun.
    pub fn frame_started(&self, remaining: usize) {
        self.0.set(remaining.saturating_sub(BUFFERED_ABOVE_SOCKET));
    }
}

/// A socket whose receive low-water mark follows a [`FrameNeed`].
pub struct LowWaterStream<S> {
    inner: S,
    need: FrameNeed,
    /// The mark as last set on the socket.
    mark: usize,
}

impl<S: AsRawFd> LowWaterStream<S> {
    /// Wraps `inner`; its mark starts at the default (1).
    pub fn new(inner: S, need: FrameNeed) -> Self {
        LowWaterStream { inner, need, mark: 1 }
    }

    /// Sets the mark for what the frame still needs: lowered before it could exceed it,
    /// raised in steps so that a frame costs a few `setsockopt` calls at most.
    fn adjust_mark(&mut self) {
        let wanted = mark_for(self.need.0.get());
        if wanted == self.mark {
            return;
        }
        let value = wanted as libc::c_int;
        // SAFETY: a valid socket descriptor and a pointer to a c_int of the given size.
        let result = unsafe {
            libc::setsockopt(
                self.inner.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result == 0 {
            self.mark = wanted;
        } else if wanted < self.mark {
            // Could not lower it: never wait for bytes that may not come.
            self.need.0.set(0);
            tracing::warn!(error = %io::Error::last_os_error(), "cannot lower SO_RCVLOWAT");
        }
    }
}

/// The mark for a frame that still certainly needs `need` bytes: at most `need` (or 1), in
/// three steps so that it changes only a few times per frame.
fn mark_for(need: usize) -> usize {
    if need >= HIGHEST_MARK {
        HIGHEST_MARK
    } else if need >= LOWEST_RAISED_MARK {
        LOWEST_RAISED_MARK
    } else {
        1
    }
}

impl<S: AsyncRead + AsRawFd + Unpin> AsyncRead for LowWaterStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.adjust_mark();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(bytes)) = read {
            let need = &self.need.0;
            need.set(need.get().saturating_sub(bytes));
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LowWaterStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_never_exceeds_what_the_frame_still_needs_and_changes_in_three_steps() {
        let mut marks = std::collections::BTreeSet::new();
        for need in (0..(2 << 20)).step_by(997).chain([LOWEST_RAISED_MARK - 1, LOWEST_RAISED_MARK, HIGHEST_MARK]) {
            let mark = mark_for(need);
            assert!(mark == 1 || mark <= need, "mark {mark} for {need} bytes still to come");
            marks.insert(mark);
        }
        assert_eq!(marks.into_iter().collect::<Vec<_>>(), vec![1, LOWEST_RAISED_MARK, HIGHEST_MARK]);
    }

    #[test]
    fn a_frame_counts_from_its_length_less_what_may_already_be_read() {
        let need = FrameNeed::default();
        need.frame_started(1 << 20);
        assert_eq!(need.0.get(), (1 << 20) - BUFFERED_ABOVE_SOCKET);
        need.frame_started(BUFFERED_ABOVE_SOCKET / 2);
        assert_eq!(need.0.get(), 0, "a small frame may already be read whole");
    }
}
