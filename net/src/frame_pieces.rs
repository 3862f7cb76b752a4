//! Produce record data as mutable buffers carved out of the request frame, not copied.
//!
//! The engine rewrites each batch's header (base offset, leader epoch, sometimes the
//! append time) before writing it, so it needs a `BytesMut`. The decoder hands out the
//! record data as `Bytes` slices of the frame; turning a slice into `BytesMut` copies it
//! whenever anything else still refers to the frame, which is always the case for a
//! decoded request. That copy was 4–5% of the broker's CPU at max ingest (perf, 1 KiB
//! records, 6 partitions). Once the handler has dropped every other reference to the
//! frame, [`carve`] takes the frame back as the one owner and splits it into disjoint
//! mutable pieces, which share the frame's allocation without copying.
//!
//! A kept piece holds the whole frame's memory until every piece of it is dropped (the
//! partition's tail cache keeps its newest batches). So a piece smaller than
//! 1/[`MAX_RETAINED_PER_PIECE`] of the frame is copied out instead: no piece keeps more
//! than that many times its own size alive.

use bytes::{Buf, Bytes, BytesMut};
use std::ops::Range;

/// A piece kept in place may hold at most this many times its own size of frame memory.
pub const MAX_RETAINED_PER_PIECE: usize = 4;

/// Returns each of `slices` (slices of `frame`, in frame order, not overlapping) as its
/// own `BytesMut`, with the same contents. Without copying when `frame` and `slices` are
/// the only references to the frame's memory and a piece is at least
/// 1/[`MAX_RETAINED_PER_PIECE`] of the frame; otherwise (another reference, a slice from
/// elsewhere, slices out of order) it copies, so the answer is right in every case.
pub fn carve(frame: Bytes, slices: Vec<Bytes>) -> Vec<BytesMut> {
    let Some(ranges) = ranges_within(&frame, &slices) else {
        return slices.iter().map(|slice| BytesMut::from(&slice[..])).collect();
    };
    drop(slices);
    let frame_len = frame.len();
    let mut whole = match frame.try_into_mut() {
        Ok(whole) => whole,
        Err(frame) => {
            return ranges
                .into_iter()
                .map(|range| range.map_or_else(BytesMut::new, |range| BytesMut::from(&frame[range])))
                .collect()
        }
    };
    let mut consumed = 0;
    ranges
        .into_iter()
        .map(|range| {
            let Some(range) = range else { return BytesMut::new() };
            whole.advance(range.start - consumed);
            consumed = range.end;
            let piece = whole.split_to(range.len());
            if piece.len() * MAX_RETAINED_PER_PIECE >= frame_len {
                piece
            } else {
                BytesMut::from(&piece[..])
            }
        })
        .collect()
}

/// Where each slice lies in `frame` (`None` for an empty slice), if every non-empty one
/// lies inside it and they come in frame order without overlapping.
fn ranges_within(frame: &Bytes, slices: &[Bytes]) -> Option<Vec<Option<Range<usize>>>> {
    let base = frame.as_ptr() as usize;
    let mut end_so_far = 0;
    slices
        .iter()
        .map(|slice| {
            if slice.is_empty() {
                return Some(None);
            }
            let start = (slice.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(slice.len()).filter(|end| *end <= frame.len())?;
            if start < end_so_far {
                return None;
            }
            end_so_far = end;
            Some(Some(start..end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(len: usize) -> Bytes {
        Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
    }

    #[test]
    fn large_pieces_of_a_frame_nobody_else_holds_are_carved_in_place() {
        let frame = frame_of(1000);
        let slices = vec![frame.slice(10..400), frame.slice(400..400), frame.slice(500..1000)];
        let expected: Vec<Vec<u8>> = slices.iter().map(|s| s.to_vec()).collect();
        let frame_start = frame.as_ptr() as usize;
        let pieces = carve(frame, slices);
        let contents: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        assert_eq!(contents, expected);
        assert_eq!(pieces[0].as_ptr() as usize, frame_start + 10, "not copied");
        assert_eq!(pieces[2].as_ptr() as usize, frame_start + 500, "not copied");
    }

    #[test]
    fn carved_pieces_are_mutable_apart_from_each_other() {
        let frame = frame_of(100);
        let slices = vec![frame.slice(0..50), frame.slice(50..100)];
        let mut pieces = carve(frame, slices);
        pieces[0][0] = 0xAA;
        pieces[1][0] = 0xBB;
        assert_eq!((pieces[0][0], pieces[0][1], pieces[1][0], pieces[1][1]), (0xAA, 1, 0xBB, 51));
    }

    #[test]
    fn small_pieces_are_copied_so_they_do_not_hold_the_frame() {
        let frame = frame_of(1000);
        let frame_start = frame.as_ptr() as usize;
        let slices = vec![frame.slice(0..100), frame.slice(100..1000)];
        let pieces = carve(frame, slices);
        assert_eq!(pieces[0].to_vec(), frame_of(1000)[0..100].to_vec());
        let first = pieces[0].as_ptr() as usize;
        assert!(!(frame_start..frame_start + 1000).contains(&first), "a 1/10 piece is copied out");
        assert_eq!(pieces[1].as_ptr() as usize, frame_start + 100);
    }

    #[test]
    fn a_frame_someone_else_still_holds_is_copied_from() {
        let frame = frame_of(1000);
        let other_holder = frame.clone();
        let slices = vec![frame.slice(0..600)];
        let pieces = carve(frame, slices);
        assert_eq!(pieces[0].to_vec(), other_holder[0..600].to_vec());
        assert_ne!(pieces[0].as_ptr(), other_holder.as_ptr(), "copied: the frame is shared");
    }

    #[test]
    fn slices_from_elsewhere_or_out_of_order_are_copied() {
        let frame = frame_of(1000);
        let elsewhere = Bytes::from_static(b"elsewhere");
        let pieces = carve(frame.clone(), vec![frame.slice(0..600), elsewhere.clone()]);
        assert_eq!(pieces[1].to_vec(), b"elsewhere".to_vec());
        let pieces = carve(frame.clone(), vec![frame.slice(500..1000), frame.slice(0..500)]);
        assert_eq!(pieces[0].to_vec(), frame[500..1000].to_vec());
        assert_eq!(pieces[1].to_vec(), frame[0..500].to_vec());
    }
}
