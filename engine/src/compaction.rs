//! Log compaction (`cleanup.policy=compact`), batch level: reading the keys of a batch
//! (compressed ones inflated with kafka-protocol's codecs) and rewriting a batch with only
//! the records compaction keeps. The segment-level pass lives in
//! [`crate::PartitionLog::compact`].
//!
//! A rewritten batch keeps its base offset, `lastOffsetDelta`, timestamps, producer
//! fields and leader epoch, so offsets and producer sequences stay valid; `recordCount`,
//! `batchLength` and the CRC are recomputed. A compressed batch that loses records is
//! written back uncompressed (one that keeps every record stays as it was).

use crate::batch::{BatchError, BatchHeader, Compression, ControlType, BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::txn_index::AbortedTxn;
use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use std::collections::HashMap;

/// What [`crate::PartitionLog::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Closed segments rewritten (or removed because nothing in them survived).
    pub segments_rewritten: usize,
    /// Closed segments removed because compaction left them empty.
    pub segments_removed: usize,
    /// Size of the rewritten segments before.
    pub bytes_before: u64,
    /// Size of the rewritten segments after.
    pub bytes_after: u64,
    /// Records removed (older versions of a key, expired tombstones).
    pub records_removed: u64,
    /// Tombstones removed because `delete.retention.ms` had passed.
    pub tombstones_removed: u64,
    /// Transaction markers removed: their transaction had no data left and
    /// `delete.retention.ms` had passed.
    pub markers_removed: u64,
    /// The pass was skipped: nothing changed since the last one.
    pub skipped: bool,
}

/// Where the newest record of each key lies: key → its offset. Keys are kept whole (no
/// hashing, so no collision can drop a live record); memory grows with distinct keys.
///
/// It also knows the aborted transactions of the compacted range (Kafka's cleaner rule):
/// their records are dropped, and never count as the newest of their keys, so an aborted
/// write can never make a committed value disappear.
///
/// And, when the pass covers the log from its start ([`OffsetMap::track_markers`]), which
/// transaction markers are left with no data: filtering in offset order, a producer's
/// transactional data comes before its marker, so a marker whose transaction kept no
/// record goes once `delete.retention.ms` has passed since it was written (Kafka's rule:
/// consumers that read the data before it was removed still meet the marker).
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    /// Producer id → `(first offset, marker offset)` of each of its aborted transactions.
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// Producer id → whether data of its current transaction was kept so far in the pass;
    /// `None` when markers are not judged.
    transaction_kept_data: Option<HashMap<i64, bool>>,
}

impl OffsetMap {
    /// An empty map for a range holding these aborted transactions.
    pub fn with_aborted(aborted: impl IntoIterator<Item = AbortedTxn>) -> Self {
        let mut map = OffsetMap::default();
        for txn in aborted {
            map.aborted.entry(txn.producer_id).or_default().push((txn.first_offset, txn.last_offset));
        }
        map
    }

    /// Judges markers in this pass: it filters every batch from the log start, in order.
    pub fn track_markers(&mut self) {
        self.transaction_kept_data = Some(HashMap::new());
    }

    /// A transactional batch of which records were kept (or that could not be read, so
    /// is kept whole): its transaction's marker stays.
    pub fn kept_transactional_data(&mut self, batch: &[u8]) {
        let Ok(header) = BatchHeader::parse(batch, usize::MAX) else { return };
        if let Some(kept) = self.transaction_kept_data.as_mut().filter(|_| header.is_transactional()) {
            kept.insert(header.producer_id(), true);
        }
    }

    /// A marker's fate: kept while its transaction has data left or `delete.retention.ms`
    /// has not passed since it was written; it ends the producer's transaction here.
    fn filter_marker(
        &mut self,
        header: &BatchHeader<'_>,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> (Filtered, FilterCounts) {
        let mut counts = FilterCounts::default();
        let Some(kept) = self.transaction_kept_data.as_mut() else { return (Filtered::Keep, counts) };
        let had_data = kept.remove(&header.producer_id()).unwrap_or(false);
        let is_marker = matches!(header.control_type(), Some(ControlType::Commit | ControlType::Abort));
        if had_data || !is_marker {
            return (Filtered::Keep, counts);
        }
        let expiry = header.max_timestamp().saturating_add(delete_retention_ms);
        if now_ms < expiry {
            counts.next_tombstone_expiry = Some(expiry);
            return (Filtered::Keep, counts);
        }
        counts.removed = 1;
        counts.markers_removed = 1;
        (Filtered::Drop, counts)
    }

    /// Whether the batch is data of an aborted transaction.
    pub fn is_aborted(&self, header: &BatchHeader<'_>) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.get(&header.producer_id()).is_some_and(|ranges| {
                ranges.iter().any(|(first, last)| (*first..=*last).contains(&header.base_offset()))
            })
    }

    /// Records the keys of every record of `batch` (control batches carry no keys; aborted
    /// data does not count).
    pub fn observe(&mut self, batch: &[u8]) -> Result<(), BatchError> {
        let header = BatchHeader::parse(batch, usize::MAX)?;
        if header.is_control() || self.is_aborted(&header) {
            return Ok(());
        }
        let plain = plain_batch(&header)?;
        let plain_header = BatchHeader::parse(&plain, usize::MAX)?;
        for record in plain_header.records().expect("plain") {
            let record = record?;
            if let Some(key) = record.key {
                let offset = header.base_offset() + i64::from(record.offset_delta);
                match self.latest.get_mut(key) {
                    Some(latest) => *latest = (*latest).max(offset),
                    None => {
                        self.latest.insert(key.into(), offset);
                    }
                }
            }
        }
        Ok(())
    }

    /// The offset of the newest record with `key`, if seen.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    /// Distinct keys seen.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// True before any key was seen.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// The outcome of filtering one batch.
#[derive(Debug)]
pub enum Filtered {
    /// Every record survives: store the batch as it was.
    Keep,
    /// No record survives: the batch goes.
    Drop,
    /// Some survive: the rewritten batch.
    Rewrite(Bytes),
}

/// Counts from filtering one batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct FilterCounts {
    /// Records removed.
    pub removed: u64,
    /// Of them, expired tombstones.
    pub tombstones_removed: u64,
    /// Of them, transaction markers whose transaction left no data.
    pub markers_removed: u64,
    /// The earliest time (ms) at which a kept tombstone or marker expires, if any was kept.
    pub next_tombstone_expiry: Option<i64>,
}

/// Filters `batch` for compaction: a keyed record survives when it is the newest of its
/// key in `map` (or newer than anything the map saw), and, if it is a tombstone, while
/// `now_ms < batch max timestamp + delete_retention_ms`. Records with a null key always
/// survive; data of aborted transactions never does; markers as
/// [`OffsetMap::track_markers`] says. Batches must come in offset order.
pub fn filter_batch(
    batch: &[u8],
    map: &mut OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Result<(Filtered, FilterCounts), BatchError> {
    let header = BatchHeader::parse(batch, usize::MAX)?;
    let mut counts = FilterCounts::default();
    if header.is_control() {
        return Ok(map.filter_marker(&header, now_ms, delete_retention_ms));
    }
    if map.is_aborted(&header) {
        counts.removed = header.record_count().max(0) as u64;
        return Ok((Filtered::Drop, counts));
    }
    let plain = plain_batch(&header)?;
    let plain_header = BatchHeader::parse(&plain, usize::MAX)?;
    let tombstone_expiry = header.max_timestamp().saturating_add(delete_retention_ms);
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let mut records = plain_header.records().expect("plain");
    loop {
        let start = records.position();
        let Some(record) = records.next() else { break };
        let record = record?;
        let range = start..records.position();
        let offset = header.base_offset() + i64::from(record.offset_delta);
        let survives = match record.key {
            None => true,
            Some(key) if map.latest(key).is_some_and(|latest| offset < latest) => false,
            Some(_) if record.value.is_none() => {
                let live = now_ms < tombstone_expiry;
                if live {
                    counts.next_tombstone_expiry =
                        Some(counts.next_tombstone_expiry.map_or(tombstone_expiry, |t| t.min(tombstone_expiry)));
                } else {
                    counts.tombstones_removed += 1;
                }
                live
            }
            Some(_) => true,
        };
        if survives {
            kept.push(range);
        } else {
            counts.removed += 1;
        }
    }
    if !kept.is_empty() {
        map.kept_transactional_data(batch);
    }
    if counts.removed == 0 {
        return Ok((Filtered::Keep, counts));
    }
    if kept.is_empty() {
        return Ok((Filtered::Drop, counts));
    }
    let body: usize = kept.iter().map(|r| r.len()).sum();
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + body);
    out.extend_from_slice(&plain[..BATCH_HEADER_BYTES]);
    for range in &kept {
        out.extend_from_slice(&plain[range.clone()]);
    }
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES).expect("smaller than the original batch");
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    let out = out.freeze();
    let check = BatchHeader::parse_verified(&out, usize::MAX).expect("a rewritten batch is valid");
    assert_eq!(
        (check.base_offset(), check.last_offset_delta()),
        (header.base_offset(), header.last_offset_delta()),
        "compaction keeps a batch's offsets"
    );
    Ok((Filtered::Rewrite(out), counts))
}

/// The batch with its records in plain form: itself when uncompressed, else a copy with
/// the records inflated, the compression bits cleared and `batchLength` fixed. The CRC
/// of an inflated copy is not valid (it is rewritten before anything is stored).
pub fn plain_batch(header: &BatchHeader<'_>) -> Result<Bytes, BatchError> {
    let codec = header.compression();
    if codec == Compression::None {
        return Ok(Bytes::copy_from_slice(header.bytes()));
    }
    let mut compressed = Bytes::copy_from_slice(&header.bytes()[BATCH_HEADER_BYTES..]);
    let take = |records: &mut Bytes| Ok(std::mem::take(records));
    let records = match codec {
        Compression::Gzip => Gzip::decompress(&mut compressed, take),
        Compression::Snappy => Snappy::decompress(&mut compressed, take),
        Compression::Lz4 => Lz4::decompress(&mut compressed, take),
        Compression::Zstd => Zstd::decompress(&mut compressed, take),
        Compression::None => unreachable!("handled above"),
        Compression::Unknown(id) => {
            return Err(BatchError::Undecompressable { reason: format!("unknown compression codec {id}") })
        }
    }
    .map_err(|e| BatchError::Undecompressable { reason: e.to_string() })?;
    let mut plain = BytesMut::with_capacity(BATCH_HEADER_BYTES + records.len());
    plain.extend_from_slice(&header.bytes()[..BATCH_HEADER_BYTES]);
    plain.extend_from_slice(&records);
    let batch_length = i32::try_from(plain.len() - LOG_OVERHEAD_BYTES)
        .map_err(|_| BatchError::Undecompressable { reason: "inflated batch over 2 GiB".into() })?;
    plain[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = header.attributes() & !0x07;
    plain[21..23].copy_from_slice(&attributes.to_be_bytes());
    Ok(plain.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::assign_offsets;
    use crate::batch_builder::BatchBuilder;

    type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    fn batch(base: i64, records: &[KeyValue<'_>]) -> Vec<u8> {
        let mut builder = BatchBuilder::new(1_000).producer(7, 1, 40);
        for (key, value) in records {
            builder.push(*key, *value, &[], 1_000);
        }
        let mut bytes = builder.build().to_vec();
        assign_offsets(&mut bytes, base, 3, None);
        bytes
    }

    #[test]
    fn keeps_newest_per_key_null_keys_and_offsets() {
        let first = batch(10, &[(Some(b"a"), Some(b"1")), (None, Some(b"x")), (Some(b"b"), Some(b"1"))]);
        let second = batch(13, &[(Some(b"a"), Some(b"2"))]);
        let mut map = OffsetMap::default();
        map.observe(&first).unwrap();
        map.observe(&second).unwrap();
        assert_eq!(map.latest(b"a"), Some(13));
        let (filtered, counts) = filter_batch(&first, &mut map, 0, 1_000).unwrap();
        assert_eq!(counts.removed, 1);
        let Filtered::Rewrite(out) = filtered else { panic!("expected a rewrite") };
        let header = BatchHeader::parse_verified(&out, usize::MAX).unwrap();
        assert_eq!((header.base_offset(), header.last_offset(), header.record_count()), (10, 12, 2));
        assert_eq!((header.producer_id(), header.base_sequence(), header.partition_leader_epoch()), (7, 40, 3));
        let offsets: Vec<i32> = header.records().unwrap().map(|r| r.unwrap().offset_delta).collect();
        assert_eq!(offsets, vec![1, 2]);
        assert!(matches!(filter_batch(&second, &mut map, 0, 1_000).unwrap().0, Filtered::Keep));
    }

    #[test]
    fn tombstones_expire_after_delete_retention_from_the_batch_max_timestamp() {
        let tomb = batch(0, &[(Some(b"k"), None)]);
        let mut map = OffsetMap::default();
        map.observe(&tomb).unwrap();
        let (kept, counts) = filter_batch(&tomb, &mut map, 1_999, 1_000).unwrap();
        assert!(matches!(kept, Filtered::Keep));
        assert_eq!(counts.next_tombstone_expiry, Some(2_000));
        let (gone, counts) = filter_batch(&tomb, &mut map, 2_000, 1_000).unwrap();
        assert!(matches!(gone, Filtered::Drop));
        assert_eq!(counts.tombstones_removed, 1);
    }
}
