//! Responses encoded into a list of buffers, so record data goes out without a copy.
//!
//! A Fetch response is mostly record data that the engine already holds as `Bytes` (its
//! tail cache or a disk read). Encoding it into one buffer copied all of it once more
//! (6% of the broker's CPU while a consumer caught up from disk, in perf). The
//! `kafka-protocol` encoders write a byte field with `put_slice`, which hands us the very
//! slice of the `Bytes` being encoded: [`ChunkedBuf`] recognises the record sets it was
//! told about by address and length and keeps them as their own chunks, shared, not
//! copied. Everything else (headers, sizes, small record sets) is written into the
//! chunk in progress, so a response is a few large buffers, not many small ones.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::buf::ByteBufMut;
use std::ops::Range;

/// Record sets at least this large are sent as their own buffers; smaller ones are
/// cheaper to copy than to send apart.
pub const SHARED_CHUNK_MIN_BYTES: usize = 16 << 10;

/// An encoded response (size prefix included): its buffers, to be written in order.
pub type EncodedResponse = Vec<Bytes>;

/// A `ByteBufMut` that keeps the given `Bytes` as chunks of their own when the encoder
/// writes exactly them, and copies everything else into the chunk in progress.
#[derive(Debug, Default)]
pub struct ChunkedBuf {
    /// Finished chunks, in order.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunks_len: usize,
    /// The chunk being written.
    current: BytesMut,
    /// Buffers to share rather than copy, in the order the encoder is expected to reach
    /// them (it may skip some: a cursor finds the next one in constant time).
    shareable: Vec<Bytes>,
    next_shareable: usize,
}

impl ChunkedBuf {
    /// A buffer that will share any of `shareable` it is asked to write whole.
    pub fn new(shareable: Vec<Bytes>) -> Self {
        ChunkedBuf { current: BytesMut::with_capacity(256), shareable, ..ChunkedBuf::default() }
    }

    /// The chunks written, in order.
    pub fn finish(mut self) -> EncodedResponse {
        if !self.current.is_empty() || self.chunks.is_empty() {
            self.chunks.push(self.current.freeze());
        }
        self.chunks
    }

    /// The shareable buffer that `slice` is exactly, if any.
    fn shared(&mut self, slice: &[u8]) -> Option<Bytes> {
        if slice.len() < SHARED_CHUNK_MIN_BYTES {
            return None;
        }
        let found = (self.next_shareable..self.shareable.len())
            .chain(0..self.next_shareable)
            .find(|&i| self.shareable[i].as_ptr() == slice.as_ptr() && self.shareable[i].len() == slice.len())?;
        self.next_shareable = found + 1;
        Some(self.shareable[found].clone())
    }

    /// Makes the whole response one chunk again, so an encoder that goes back to patch
    /// earlier bytes can. The `kafka-protocol` encoders of the responses we share record
    /// data in do not, so this is a fallback that keeps any other encoder correct.
    fn flatten(&mut self) {
        if self.chunks.is_empty() {
            return;
        }
        let mut whole = BytesMut::with_capacity(self.chunks_len + self.current.len());
        for chunk in self.chunks.drain(..) {
            whole.extend_from_slice(&chunk);
        }
        whole.extend_from_slice(&self.current);
        self.chunks_len = 0;
        self.current = whole;
    }
}

// SAFETY: every method forwards to `current`, a `BytesMut`, whose `BufMut` contract
// (`chunk_mut` uninitialised capacity, `advance_mut` only over initialised bytes) is
// kept as is; `put_slice` only adds finished chunks beside it.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, count: usize) {
        // SAFETY: the caller's promise (count bytes of chunk_mut initialised) is about
        // `current`'s chunk, which chunk_mut returned.
        unsafe { self.current.advance_mut(count) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, source: &[u8]) {
        match self.shared(source) {
            Some(shared) => {
                if !self.current.is_empty() {
                    let written = self.current.split().freeze();
                    self.chunks_len += written.len();
                    self.chunks.push(written);
                }
                self.chunks_len += shared.len();
                self.chunks.push(shared);
            }
            None => self.current.extend_from_slice(source),
        }
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.chunks_len + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.chunks_len {
            self.flatten();
        }
        self.current.resize(offset - self.chunks_len, 0);
    }

    fn range(&mut self, range: Range<usize>) -> &mut [u8] {
        if range.start < self.chunks_len {
            self.flatten();
        }
        let start = self.chunks_len;
        &mut self.current[range.start - start..range.end - start]
    }
}

/// The record sets of a Fetch response that are worth sending as buffers of their own.
pub fn shareable_records(fetch: &FetchResponse) -> Vec<Bytes> {
    fetch
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .filter_map(|partition| partition.records.clone())
        .filter(|records| records.len() >= SHARED_CHUNK_MIN_BYTES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn a_known_large_buffer_becomes_its_own_chunk_without_a_copy() {
        let records = Bytes::from(vec![7u8; SHARED_CHUNK_MIN_BYTES]);
        let mut buf = ChunkedBuf::new(vec![records.clone()]);
        buf.put_i32(42);
        buf.put_slice(&records);
        buf.put_u8(1);
        let chunks = buf.finish();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), records.as_ptr(), "shared, not copied");
        let mut expected = 42i32.to_be_bytes().to_vec();
        expected.extend_from_slice(&records);
        expected.push(1);
        assert_eq!(joined(&chunks), expected);
    }

    #[test]
    fn unknown_or_small_slices_are_copied_into_the_current_chunk() {
        let small = Bytes::from(vec![1u8; 100]);
        let large_copy = vec![2u8; SHARED_CHUNK_MIN_BYTES];
        let mut buf = ChunkedBuf::new(vec![small.clone()]);
        buf.put_slice(&small);
        buf.put_slice(&large_copy);
        let chunks = buf.finish();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), 100 + SHARED_CHUNK_MIN_BYTES);
    }

    #[test]
    fn patching_bytes_of_an_earlier_chunk_flattens_and_stays_correct() {
        let records = Bytes::from(vec![9u8; SHARED_CHUNK_MIN_BYTES]);
        let mut buf = ChunkedBuf::new(vec![records.clone()]);
        buf.put_i32(0);
        buf.put_slice(&records);
        buf.range(0..4).copy_from_slice(&5i32.to_be_bytes());
        assert_eq!(buf.offset(), 4 + records.len());
        buf.seek(buf.offset() + 2);
        let chunks = buf.finish();
        let mut expected = 5i32.to_be_bytes().to_vec();
        expected.extend_from_slice(&records);
        expected.extend_from_slice(&[0, 0]);
        assert_eq!(joined(&chunks), expected);
    }

    #[test]
    fn an_empty_response_is_one_empty_chunk() {
        assert_eq!(ChunkedBuf::new(Vec::new()).finish(), vec![Bytes::new()]);
    }
}
