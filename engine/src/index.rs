//! Sparse offset and time indexes of one segment.
//!
//! Offset index: (offset relative to the segment base: u32, byte position: u32), one entry
//! every `index.interval.bytes` of log. Time index: (largest timestamp so far: i64,
//! relative offset: u32), written with the offset entries whenever the largest timestamp
//! grew. Both are derived data: kept in memory while the segment is active, written to
//! `.index` / `.timeindex` when it closes, and rebuilt from the log when a file is missing
//! or inconsistent. Entries are big-endian, as in Kafka's files.

use crate::batch::BatchHeader;

/// Bytes per offset index entry.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes per time index entry.
pub const TIME_ENTRY_BYTES: usize = 12;

/// The two sparse indexes of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    offsets: Vec<(u32, u32)>,
    times: Vec<(i64, u32)>,
    bytes_since_entry: u64,
    max_timestamp: Option<i64>,
}

impl SegmentIndex {
    /// Records a batch appended at `position`; adds entries when the interval is reached.
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        batch_max_timestamp: i64,
        batch_bytes: u64,
        interval_bytes: u64,
    ) {
        let grew = self.max_timestamp.is_none_or(|max| batch_max_timestamp > max);
        if grew {
            self.max_timestamp = Some(batch_max_timestamp);
        }
        if self.offsets.is_empty() || self.bytes_since_entry >= interval_bytes {
            debug_assert!(self.offsets.last().is_none_or(|(o, p)| *o < relative_offset && *p < position));
            self.offsets.push((relative_offset, position));
            self.bytes_since_entry = 0;
            let max = self.max_timestamp.expect("set above");
            if self.times.last().is_none_or(|(t, _)| *t < max) {
                self.times.push((max, relative_offset));
            }
        }
        self.bytes_since_entry += batch_bytes;
    }

    /// [`SegmentIndex::on_batch`] for a stored batch of a segment starting at `segment_base`.
    pub fn on_stored_batch(&mut self, segment_base: i64, position: u64, header: &BatchHeader<'_>, interval_bytes: u64) {
        let relative = header.base_offset() - segment_base;
        assert!((0..=i64::from(u32::MAX)).contains(&relative) && position <= u64::from(u32::MAX));
        self.on_batch(relative as u32, position as u32, header.max_timestamp(), header.size() as u64, interval_bytes);
    }

    /// Largest timestamp of any batch recorded, if any.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.max_timestamp
    }

    /// The entry to start scanning from for `relative_offset`: the last one at or below it.
    pub fn position_for(&self, relative_offset: u32) -> (u32, u32) {
        let at = self.offsets.partition_point(|(o, _)| *o <= relative_offset);
        if at == 0 {
            (0, 0)
        } else {
            self.offsets[at - 1]
        }
    }

    /// The relative offset from which a scan finds the first batch whose max timestamp is
    /// at least `timestamp`: every batch before the returned one has older timestamps.
    pub fn scan_start_for_time(&self, timestamp: i64) -> u32 {
        let at = self.times.partition_point(|(t, _)| *t < timestamp);
        if at == 0 {
            0
        } else {
            self.times[at - 1].1
        }
    }

    /// Last offset entry, if any.
    pub fn last_offset_entry(&self) -> Option<(u32, u32)> {
        self.offsets.last().copied()
    }

    /// Encodes both files' contents.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut offsets = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for (offset, position) in &self.offsets {
            offsets.extend_from_slice(&offset.to_be_bytes());
            offsets.extend_from_slice(&position.to_be_bytes());
        }
        let mut times = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for (timestamp, offset) in &self.times {
            times.extend_from_slice(&timestamp.to_be_bytes());
            times.extend_from_slice(&offset.to_be_bytes());
        }
        (offsets, times)
    }

    /// Decodes index files of a closed segment of `log_bytes` bytes. Returns `None` when
    /// they are inconsistent (wrong size, unordered, pointing past the log), in which case
    /// the caller rebuilds them from the log.
    pub fn decode(offsets: &[u8], times: &[u8], log_bytes: u64) -> Option<Self> {
        if !offsets.len().is_multiple_of(OFFSET_ENTRY_BYTES) || !times.len().is_multiple_of(TIME_ENTRY_BYTES) {
            return None;
        }
        let offsets: Vec<(u32, u32)> = offsets
            .chunks_exact(OFFSET_ENTRY_BYTES)
            .map(|e| (u32::from_be_bytes(e[..4].try_into().unwrap()), u32::from_be_bytes(e[4..].try_into().unwrap())))
            .collect();
        let times: Vec<(i64, u32)> = times
            .chunks_exact(TIME_ENTRY_BYTES)
            .map(|e| (i64::from_be_bytes(e[..8].try_into().unwrap()), u32::from_be_bytes(e[8..].try_into().unwrap())))
            .collect();
        let starts_at_zero = offsets.first() == Some(&(0, 0)) || (offsets.is_empty() && log_bytes == 0);
        let ordered = offsets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && times.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_bounds = offsets.last().is_none_or(|(_, p)| u64::from(*p) < log_bytes);
        let times_indexed = times.iter().all(|(_, o)| offsets.binary_search_by_key(o, |(off, _)| *off).is_ok());
        if !(starts_at_zero && ordered && in_bounds && times_indexed) {
            return None;
        }
        Some(SegmentIndex { max_timestamp: times.last().map(|(t, _)| *t), offsets, times, bytes_since_entry: 0 })
    }

    /// Raises the recorded max timestamp to cover batches after the last entry, which
    /// the time index does not list (a closed segment's files are written from memory, so
    /// this matters only for indexes rebuilt or decoded from disk).
    pub fn observe_max_timestamp(&mut self, timestamp: i64) {
        if self.max_timestamp.is_none_or(|max| timestamp > max) {
            self.max_timestamp = Some(timestamp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> SegmentIndex {
        let mut index = SegmentIndex::default();
        // 10 batches of 1000 bytes, 2 offsets each, interval 2500 bytes.
        for i in 0..10u32 {
            index.on_batch(i * 2, i * 1000, 100 + i64::from(i % 4), 1000, 2500);
        }
        index
    }

    #[test]
    fn entries_follow_the_interval_and_lookups_round_down() {
        let index = built();
        assert_eq!(index.offsets, vec![(0, 0), (6, 3000), (12, 6000), (18, 9000)]);
        assert_eq!(index.position_for(0), (0, 0));
        assert_eq!(index.position_for(7), (6, 3000));
        assert_eq!(index.position_for(100), (18, 9000));
        assert_eq!(index.max_timestamp(), Some(103));
    }

    #[test]
    fn time_lookup_never_skips_a_batch_with_a_newer_timestamp() {
        let index = built();
        // Batch 3 (relative offset 6) has timestamp 103, the first to reach 103.
        let start = index.scan_start_for_time(103);
        assert!(start <= 6);
        assert_eq!(index.scan_start_for_time(0), 0);
    }

    #[test]
    fn encode_decode_round_trips_and_rejects_inconsistent_files() {
        let index = built();
        let (offsets, times) = index.encode();
        let decoded = SegmentIndex::decode(&offsets, &times, 10_000).unwrap();
        assert_eq!(decoded.offsets, index.offsets);
        assert_eq!(decoded.times, index.times);
        assert!(SegmentIndex::decode(&offsets[..7], &times, 10_000).is_none());
        assert!(SegmentIndex::decode(&offsets, &times, 9_000).is_none(), "entry past end");
        let mut swapped = offsets.clone();
        swapped[8..16].copy_from_slice(&offsets[16..24]);
        assert!(SegmentIndex::decode(&swapped, &times, 10_000).is_none());
    }
}
