//! Aborted transactions of a segment (Kafka's `.txnindex`): one entry per abort marker
//! the segment holds, naming the transaction's producer and offset range, so that a
//! read_committed fetch can tell the consumer which records to drop.
//!
//! A transaction's data may start segments before its marker, but a marker always lies
//! after the data: every aborted transaction overlapping a read from offset `o` has its
//! entry in the segment holding `o` or a later one.
//!
//! The file holds entries of 34 bytes, big-endian, Kafka's layout: version (i16, 0),
//! producer id (i64), first offset (i64), last offset (i64: the marker's), last stable
//! offset (i64: the partition's LSO once the marker was written).

/// Suffix of a segment's aborted-transaction index file, next to `<base>.log`.
pub const TXN_INDEX_EXTENSION: &str = "txnindex";

const ENTRY_BYTES: usize = 34;
const ENTRY_VERSION: i16 = 0;

/// A transaction that ended with an abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer that ran it.
    pub producer_id: i64,
    /// Offset of its first batch.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
    /// The partition's last stable offset just after the marker was written.
    pub last_stable_offset: i64,
}

/// Encodes entries in Kafka's `.txnindex` layout.
pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for entry in entries {
        out.extend_from_slice(&ENTRY_VERSION.to_be_bytes());
        for field in [entry.producer_id, entry.first_offset, entry.last_offset, entry.last_stable_offset] {
            out.extend_from_slice(&field.to_be_bytes());
        }
    }
    out
}

/// Decodes [`encode`]'s form; `None` when the length or a version is wrong (the caller
/// then rebuilds the entries from the log).
pub fn decode(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    if !bytes.len().is_multiple_of(ENTRY_BYTES) {
        return None;
    }
    let field = |entry: &[u8], at: usize| i64::from_be_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
    bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| {
            (i16::from_be_bytes([entry[0], entry[1]]) == ENTRY_VERSION).then(|| AbortedTxn {
                producer_id: field(entry, 2),
                first_offset: field(entry, 10),
                last_offset: field(entry, 18),
                last_stable_offset: field(entry, 26),
            })
        })
        .collect()
}

/// What a read_committed fetch of `[from, upper)` learns from one segment's entries: the
/// aborted transactions overlapping the range, and whether later segments can be skipped
/// (an entry whose LSO reached `upper`: anything aborted later started at or past it).
pub fn collect_overlapping(entries: &[AbortedTxn], from: i64, upper: i64, into: &mut Vec<AbortedTxn>) -> bool {
    for entry in entries {
        if entry.last_offset >= from && entry.first_offset < upper {
            into.push(*entry);
        }
        if entry.last_stable_offset >= upper {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(producer_id: i64, first_offset: i64, last_offset: i64, last_stable_offset: i64) -> AbortedTxn {
        AbortedTxn { producer_id, first_offset, last_offset, last_stable_offset }
    }

    #[test]
    fn entries_round_trip_in_kafkas_layout_and_damage_is_refused() {
        let entries = vec![txn(7, 10, 20, 21), txn(-1, 0, i64::MAX, 5)];
        let bytes = encode(&entries);
        assert_eq!(bytes.len(), 68);
        assert_eq!(&bytes[..10], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 7], "version 0, then the producer id");
        assert_eq!(decode(&bytes), Some(entries));
        assert_eq!(decode(&bytes[..33]), None, "a torn entry");
        let mut other_version = bytes.clone();
        other_version[1] = 1;
        assert_eq!(decode(&other_version), None);
        assert_eq!(decode(&[]), Some(Vec::new()));
    }

    #[test]
    fn overlapping_entries_are_collected_until_one_reaches_the_upper_bound() {
        let entries = [txn(1, 0, 5, 6), txn(2, 3, 12, 13), txn(3, 14, 20, 30), txn(4, 25, 31, 32)];
        let mut found = Vec::new();
        assert!(!collect_overlapping(&entries[..2], 6, 40, &mut found), "no entry's LSO reaches 40");
        assert_eq!(found, vec![entries[1]], "the first ended before the read");
        found.clear();
        assert!(collect_overlapping(&entries, 6, 25, &mut found), "the third's LSO 30 passes 25");
        assert_eq!(found, vec![entries[1], entries[2]], "the fourth starts at the upper bound");
    }
}
