//! Kafka's size-prefixed frames (a big-endian `i32` length, then that many bytes), read by
//! both ends of a connection: the server's requests and the client's responses.
//!
//! A frame's bytes land in a reused buffer. A fresh `vec![0; n]` per frame cost the broker
//! its zeroing and, for frames past the allocator's mmap threshold, fresh pages faulted in
//! and cleared by the kernel: 3–4% of a replicating cluster's CPU, mostly the followers'
//! fetch responses (docs/BENCHMARKS.md, "Cluster"). Safe Rust cannot read into memory that
//! was never written, so the saving comes from writing it once: a frame keeps its buffer
//! while any slice of it lives, and the buffer goes back to its thread's spares when the
//! last one is dropped.

use std::cell::RefCell;

use bytes::Bytes;
use futures_lite::io::{AsyncRead, AsyncReadExt};

/// Frames below this size get a buffer of their own: zeroing a few KiB is cheaper than
/// keeping spares of every size.
const REUSED_FROM_BYTES: usize = 64 << 10;
/// The most spare bytes one thread keeps; beyond it returned buffers are freed.
const SPARE_BYTES_MAX: usize = 16 << 20;

thread_local! {
    /// Buffers whose frames are gone, each of a [`size_class`] length, all of it written.
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed, or closed inside a frame.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The length prefix is negative or above the reader's limit.
    #[error("frame of {size} bytes (the limit is {max_bytes})")]
    Size {
        /// The length prefix as sent.
        size: i32,
        /// The reader's limit.
        max_bytes: usize,
    },
}

/// Reads one frame and returns its bytes without the length prefix; `Ok(None)` when the
/// stream ends cleanly where a frame would start.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max_bytes: usize) -> Result<Option<Bytes>, FrameError> {
    read_frame_telling_length(reader, max_bytes, |_| {}).await
}

/// [`read_frame`], calling `on_length` with the frame's length once its prefix is read and
/// before its body is (the server lets the socket wait for most of a large body at once).
pub async fn read_frame_telling_length<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
    on_length: impl FnOnce(usize),
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0u8; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(prefix);
    let length = usize::try_from(size).ok().filter(|length| *length <= max_bytes);
    let length = length.ok_or(FrameError::Size { size, max_bytes })?;
    on_length(length);
    if length < REUSED_FROM_BYTES {
        let mut frame = vec![0u8; length];
        reader.read_exact(&mut frame).await?;
        return Ok(Some(Bytes::from(frame)));
    }
    let mut frame = FrameBuffer::take(length);
    reader.read_exact(frame.filled_mut()).await?;
    Ok(Some(Bytes::from_owner(frame)))
}

/// A spare (or new) buffer holding one frame of `length` bytes; back to the spares on drop.
struct FrameBuffer {
    buffer: Vec<u8>,
    length: usize,
}

impl FrameBuffer {
    fn take(length: usize) -> FrameBuffer {
        let class = size_class(length);
        let spare = SPARES.with(|spares| {
            let mut spares = spares.borrow_mut();
            let found = spares.iter().position(|buffer| buffer.len() == class);
            found.map(|index| spares.swap_remove(index))
        });
        let buffer = spare.unwrap_or_else(|| vec![0u8; class]);
        FrameBuffer { buffer, length }
    }

    fn filled_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[..self.length]
    }
}

/// The buffer length for a frame: rounded up to an eighth of the power of two below it, so
/// that a buffer is reused by frames of about its size and wastes at most 12.5% (frames
/// stay alive in the partitions' tail caches, so the waste is memory held).
fn size_class(length: usize) -> usize {
    debug_assert!(length > 0);
    let granule = (1usize << length.ilog2()) / 8;
    length.div_ceil(granule) * granule
}

impl AsRef<[u8]> for FrameBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.length]
    }
}

impl Drop for FrameBuffer {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // A frame dropped while its thread shuts down (spares already gone) is just freed.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            let kept: usize = spares.iter().map(Vec::len).sum();
            if kept + buffer.len() <= SPARE_BYTES_MAX {
                spares.push(buffer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    fn read_all(wire: &[u8], max_bytes: usize) -> Vec<Result<Option<Bytes>, String>> {
        futures_lite::future::block_on(async {
            let mut reader = futures_lite::io::Cursor::new(wire.to_vec());
            let mut frames = Vec::new();
            loop {
                let frame = read_frame(&mut reader, max_bytes).await.map_err(|e| e.to_string());
                let done = !matches!(frame, Ok(Some(_)));
                frames.push(frame);
                if done {
                    return frames;
                }
            }
        })
    }

    #[test]
    fn frames_small_and_large_come_back_whole_and_a_reused_buffer_shows_only_its_frame() {
        let large: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let shorter: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
        let mut wire = framed(b"small");
        wire.extend(framed(&large));
        wire.extend(framed(&shorter));
        wire.extend(framed(&[]));
        let frames = read_all(&wire, 1 << 20);
        let payloads: Vec<Vec<u8>> =
            frames[..4].iter().map(|f| f.as_ref().unwrap().as_ref().unwrap().to_vec()).collect();
        assert_eq!(payloads, vec![b"small".to_vec(), large, shorter, Vec::new()]);
        assert!(matches!(frames[4], Ok(None)), "a clean end after the last frame");
    }

    #[test]
    fn a_buffer_goes_back_to_the_spares_only_when_its_last_slice_is_dropped() {
        let payload = vec![7u8; 100_000];
        let frame = read_all(&framed(&payload), 1 << 20).remove(0).unwrap().unwrap();
        let tail = frame.slice(50_000..);
        let spare_of_class = || SPARES.with(|s| s.borrow().iter().filter(|b| b.len() == 106_496).count());
        let before = spare_of_class();
        drop(frame);
        assert_eq!(spare_of_class(), before, "a slice still holds the buffer");
        drop(tail);
        assert_eq!(spare_of_class(), before + 1);
        // The next frame of that class reuses it, and sees its own bytes only.
        let next = read_all(&framed(&[1u8; 99_000]), 1 << 20).remove(0).unwrap().unwrap();
        assert_eq!(spare_of_class(), before);
        assert!(next.iter().all(|b| *b == 1) && next.len() == 99_000);
    }

    #[test]
    fn size_classes_waste_at_most_an_eighth() {
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 100), (1 << 20) + (1 << 17));
        assert_eq!(size_class(100_000), 13 * 8192, "up to a multiple of 64 KiB / 8");
        for length in (REUSED_FROM_BYTES..(8 << 20)).step_by(9_973) {
            let class = size_class(length);
            assert!(class >= length && class - length <= length / 8, "{length} -> {class}");
        }
    }

    #[test]
    fn bad_sizes_and_cut_frames_are_errors() {
        assert!(read_all(&(-1i32).to_be_bytes(), 100)[0].as_ref().unwrap_err().contains("frame of -1 bytes"));
        assert!(read_all(&framed(&[0; 101]), 100)[0].as_ref().unwrap_err().contains("limit is 100"));
        let mut cut = framed(&[0; 90_000]);
        cut.truncate(1_000);
        assert!(read_all(&cut, 1 << 20)[0].is_err(), "a frame cut short");
    }
}
