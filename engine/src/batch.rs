//! Kafka record batch format v2 ("magic 2"): a view over the bytes a producer sent.
//!
//! The log stores batches exactly as they travel on the wire, so the engine never
//! re-encodes a batch: it validates the 61-byte header and the CRC, and rewrites in place
//! the few fields the broker owns (base offset, partition leader epoch and, for
//! `LogAppendTime`, the max timestamp).
//!
//! Header layout (big-endian), as specified by Kafka's `RecordBatch` v2:
//!
//! | bytes  | field                | CRC-covered |
//! |--------|----------------------|-------------|
//! | 0..8   | baseOffset i64       | no          |
//! | 8..12  | batchLength i32      | no          |
//! | 12..16 | partitionLeaderEpoch | no          |
//! | 16     | magic i8 (= 2)       | no          |
//! | 17..21 | crc u32 (CRC-32C)    | no          |
//! | 21..23 | attributes i16       | yes         |
//! | 23..27 | lastOffsetDelta i32  | yes         |
//! | 27..35 | baseTimestamp i64    | yes         |
//! | 35..43 | maxTimestamp i64     | yes         |
//! | 43..51 | producerId i64       | yes         |
//! | 51..53 | producerEpoch i16    | yes         |
//! | 53..57 | baseSequence i32     | yes         |
//! | 57..61 | recordCount i32      | yes         |

use bytes::{Bytes, BytesMut};

/// Size of the fixed part of a v2 record batch.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s coverage starts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only record batch format sluice stores.
pub const MAGIC_V2: u8 = 2;

const OFF_BASE_OFFSET: usize = 0;
const OFF_BATCH_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub(crate) const ATTR_TRANSACTIONAL: i16 = 0x10;
pub(crate) const ATTR_CONTROL: i16 = 0x20;

/// Why a byte range is not a valid v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the header's length field promises.
    #[error("truncated batch: {available} bytes available, {needed} needed")]
    Truncated {
        /// Bytes present.
        available: usize,
        /// Bytes the header requires.
        needed: usize,
    },
    /// `batchLength` is too small to hold a header, or larger than allowed.
    #[error("invalid batch length {length}")]
    InvalidLength {
        /// The `batchLength` field as read.
        length: i32,
    },
    /// A header of all zeros: pre-allocated space that was never written.
    #[error("zeroed batch header (unwritten space)")]
    Zeroed,
    /// Record format other than v2.
    #[error("unsupported record batch magic {magic} (only v2 is supported)")]
    UnsupportedMagic {
        /// The magic byte as read.
        magic: u8,
    },
    /// CRC-32C over attributes..end does not match the stored one.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// `lastOffsetDelta` or `recordCount` out of range.
    #[error("invalid record count {record_count} / last offset delta {last_offset_delta}")]
    InvalidCounts {
        /// The `recordCount` field.
        record_count: i32,
        /// The `lastOffsetDelta` field.
        last_offset_delta: i32,
    },
    /// A stored batch whose offsets do not follow the batch before it.
    #[error("batch offsets go backwards: expected base offset >= {expected_at_least}")]
    OffsetOrder {
        /// One past the previous batch's last offset.
        expected_at_least: i64,
    },
    /// A stored batch whose offsets cannot belong to its segment (before the segment's
    /// base, or too far past it for the index's 32-bit relative offsets).
    #[error("batch offsets {base_offset}..={last_offset} do not fit the segment starting at {segment_base}")]
    OffsetOutsideSegment {
        /// The batch's base offset.
        base_offset: i64,
        /// The batch's last offset.
        last_offset: i64,
        /// The segment's base offset.
        segment_base: i64,
    },
    /// A compressed batch whose records cannot be inflated.
    #[error("cannot decompress the batch's records: {reason}")]
    Undecompressable {
        /// What the codec said.
        reason: String,
    },
    /// A record inside an uncompressed batch does not parse.
    #[error("malformed record at byte {position} of the batch: {reason}")]
    MalformedRecord {
        /// Position within the batch.
        position: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Compression codec named by a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Records are stored plain.
    None,
    /// gzip.
    Gzip,
    /// snappy (xerial framing, as Kafka).
    Snappy,
    /// lz4 frame.
    Lz4,
    /// zstd.
    Zstd,
    /// A codec id this version does not know; stored as sent.
    Unknown(u8),
}

impl Compression {
    /// The codec's id in a batch's attributes (their low three bits).
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(id) => i16::from(id),
        }
    }
}

/// Whose clock the batch's timestamps are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps.
    CreateTime,
    /// The broker's clock when it appended the batch.
    LogAppendTime,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the total size (header included) of the batch starting at `bytes[0]`, checking
/// only the length field. Used to walk a log without validating every CRC.
pub fn peek_batch_size(bytes: &[u8], max_batch_bytes: usize) -> Result<usize, BatchError> {
    if bytes.len() < LOG_OVERHEAD_BYTES {
        return Err(BatchError::Truncated { available: bytes.len(), needed: LOG_OVERHEAD_BYTES });
    }
    let length = be_i32(bytes, OFF_BATCH_LENGTH);
    if length == 0 && be_i64(bytes, OFF_BASE_OFFSET) == 0 {
        return Err(BatchError::Zeroed);
    }
    let min = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if length < min || length as usize + LOG_OVERHEAD_BYTES > max_batch_bytes {
        return Err(BatchError::InvalidLength { length });
    }
    Ok(length as usize + LOG_OVERHEAD_BYTES)
}

/// A validated v2 record batch header over borrowed bytes.
///
/// Construction checks length, magic and counts; [`BatchHeader::verify_crc`] checks the
/// CRC separately because it costs a pass over the whole batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> BatchHeader<'a> {
    /// Parses the batch at the start of `bytes`. `bytes` may extend past the batch; the
    /// view covers exactly [`BatchHeader::size`] bytes.
    pub fn parse(bytes: &'a [u8], max_batch_bytes: usize) -> Result<Self, BatchError> {
        let size = peek_batch_size(bytes, max_batch_bytes)?;
        if bytes.len() < size {
            return Err(BatchError::Truncated { available: bytes.len(), needed: size });
        }
        let bytes = &bytes[..size];
        let magic = bytes[OFF_MAGIC];
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let header = BatchHeader { bytes };
        let record_count = header.record_count();
        let last_offset_delta = header.last_offset_delta();
        if record_count < 0 || last_offset_delta < 0 || (record_count == 0 && !header.is_control()) {
            // Kafka allows an empty batch only as the result of compaction; producers
            // never send one, and an all-zero count is the signature of garbage.
            return Err(BatchError::InvalidCounts { record_count, last_offset_delta });
        }
        Ok(header)
    }

    /// Parses and checks the CRC: what must hold before a batch is appended or after it
    /// comes back from disk.
    pub fn parse_verified(bytes: &'a [u8], max_batch_bytes: usize) -> Result<Self, BatchError> {
        let header = Self::parse(bytes, max_batch_bytes)?;
        header.verify_crc()?;
        Ok(header)
    }

    /// Checks the CRC-32C over attributes..end.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let stored = self.crc();
        let computed = crc32c::crc32c(&self.bytes[OFF_ATTRIBUTES..]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    /// The batch's bytes, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Total size in bytes, header included.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_OFFSET)
    }
    /// Offset of the last record (base + lastOffsetDelta).
    pub fn last_offset(&self) -> i64 {
        self.base_offset().saturating_add(i64::from(self.last_offset_delta()))
    }
    /// `lastOffsetDelta`: how many offsets the batch spans, minus one.
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, OFF_LAST_OFFSET_DELTA)
    }
    /// Leader epoch the batch was appended under.
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, OFF_LEADER_EPOCH)
    }
    /// Stored CRC.
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, OFF_CRC) as u32
    }
    /// Raw attributes field.
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, OFF_ATTRIBUTES)
    }
    /// Compression codec.
    pub fn compression(&self) -> Compression {
        match (self.attributes() & ATTR_COMPRESSION_MASK) as u8 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other),
        }
    }
    /// Timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    /// Part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    /// A control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Timestamp of the first record.
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_BASE_TIMESTAMP)
    }
    /// Largest timestamp in the batch (or the append time for `LogAppendTime`).
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFF_MAX_TIMESTAMP)
    }
    /// Idempotent/transactional producer id, -1 if none.
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, OFF_PRODUCER_ID)
    }
    /// Producer epoch, -1 if none.
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, OFF_PRODUCER_EPOCH)
    }
    /// Sequence number of the first record, -1 if none.
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, OFF_BASE_SEQUENCE)
    }
    /// Number of records.
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, OFF_RECORD_COUNT)
    }
    /// What a control batch says: its one record's key holds a version (i16) and the
    /// type (i16). `None` for other batches and for a control record that cannot be read.
    pub fn control_type(&self) -> Option<ControlType> {
        if !self.is_control() {
            return None;
        }
        let record = self.records()?.next()?.ok()?;
        let key = record.key?;
        let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
        Some(match kind {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => ControlType::Other(other),
        })
    }

    /// Iterates the records of an uncompressed batch; `None` for compressed batches, whose
    /// records are opaque to the engine.
    pub fn records(&self) -> Option<RecordIter<'a>> {
        (self.compression() == Compression::None).then(|| RecordIter {
            batch: *self,
            position: BATCH_HEADER_BYTES,
            remaining: self.record_count(),
        })
    }
}

/// The type of a control batch (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// A transaction's abort marker.
    Abort,
    /// A transaction's commit marker.
    Commit,
    /// Another type (Kafka's Raft logs use some); not a transaction marker.
    Other(i16),
}

impl ControlType {
    /// The type's number in a control record's key.
    pub fn code(self) -> i16 {
        match self {
            ControlType::Abort => 0,
            ControlType::Commit => 1,
            ControlType::Other(code) => code,
        }
    }
}

/// Rewrites the broker-owned fields of a batch in place. The bytes must already have been
/// validated by [`BatchHeader::parse_verified`].
///
/// Base offset and leader epoch lie outside the CRC; `max_timestamp` (only for
/// `LogAppendTime`) lies inside it, so the CRC is recomputed in that case only.
pub fn assign_offsets(batch: &mut [u8], base_offset: i64, leader_epoch: i32, log_append_time_ms: Option<i64>) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "batch must be validated first");
    assert!(base_offset >= 0, "offsets are never negative");
    batch[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(time_ms) = log_append_time_ms {
        let attributes = be_i16(batch, OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
        batch[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&time_ms.to_be_bytes());
        let crc = crc32c::crc32c(&batch[OFF_ATTRIBUTES..]);
        batch[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Turns shared `Bytes` into a mutable buffer, copying only when someone else still holds
/// a reference to the same memory.
pub fn into_mut(bytes: Bytes) -> BytesMut {
    bytes.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]))
}

/// One record of an uncompressed batch, borrowing the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers in wire order; duplicate keys are kept (Kafka allows them).
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Iterator over the records of an uncompressed batch.
pub struct RecordIter<'a> {
    batch: BatchHeader<'a>,
    position: usize,
    remaining: i32,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        let result = self.parse_one();
        if result.is_err() {
            self.remaining = 0;
        }
        Some(result)
    }
}

impl<'a> RecordIter<'a> {
    /// Byte position within the batch of the next record: with the position before and
    /// after a record, its raw bytes (compaction copies surviving records verbatim).
    pub fn position(&self) -> usize {
        self.position
    }

    fn parse_one(&mut self) -> Result<Record<'a>, BatchError> {
        let bytes = self.batch.bytes;
        let start = self.position;
        let mut cursor = Cursor { bytes, position: start };
        let length = cursor.varint()?;
        if length < 0 {
            return Err(cursor.error("negative record length"));
        }
        let end = start
            .checked_add(cursor.position - start + length as usize)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| cursor.error("record length past end of batch"))?;
        // Fields may not run past the record's own length.
        cursor.bytes = &bytes[..end];
        let _attributes = cursor.take(1)?;
        let timestamp_delta = cursor.varlong()?;
        let offset_delta = cursor.varint()?;
        let key = cursor.nullable_bytes()?;
        let value = cursor.nullable_bytes()?;
        let header_count = cursor.varint()?;
        if header_count < 0 {
            return Err(cursor.error("negative header count"));
        }
        // Bounded by the bytes left: each header takes at least two bytes.
        let mut headers = Vec::with_capacity((header_count as usize).min((end - cursor.position) / 2));
        for _ in 0..header_count {
            let key = cursor.nullable_bytes()?.ok_or_else(|| cursor.error("null header key"))?;
            let value = cursor.nullable_bytes()?;
            headers.push((key, value));
        }
        if cursor.position != end {
            return Err(cursor.error("record length does not match its fields"));
        }
        self.position = end;
        Ok(Record { offset_delta, timestamp_delta, key, value, headers })
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, reason: &'static str) -> BatchError {
        BatchError::MalformedRecord { position: self.position, reason }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        let end = self
            .position
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("field past end of record"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(zigzag_decode(value));
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }
    fn varint(&mut self) -> Result<i32, BatchError> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| self.error("varint out of i32 range"))
    }
    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let length = self.varint()?;
        if length < 0 {
            return Ok(None);
        }
        self.take(length as usize).map(Some)
    }
}

fn zigzag_decode(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn zigzag_encode(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Appends a zigzag varint (Kafka's `varlong`/`varint` record encoding).
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = zigzag_encode(value);
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_builder::BatchBuilder;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut builder = BatchBuilder::new(1_000);
        builder.push(Some(b"k1"), Some(b"v1"), &[(b"h", Some(b"x"))], 1_000);
        builder.push(None, Some(b"v2"), &[], 1_005);
        builder.push(Some(b"k3"), None, &[(b"h", None), (b"h", Some(b"y"))], 1_002);
        builder.build().to_vec()
    }

    #[test]
    fn parses_header_fields_of_a_built_batch() {
        let bytes = sample();
        let header = BatchHeader::parse_verified(&bytes, 1 << 20).unwrap();
        assert_eq!(header.size(), bytes.len());
        assert_eq!(header.base_offset(), 0);
        assert_eq!(header.last_offset_delta(), 2);
        assert_eq!(header.record_count(), 3);
        assert_eq!(header.base_timestamp(), 1_000);
        assert_eq!(header.max_timestamp(), 1_005);
        assert_eq!(header.producer_id(), -1);
        assert_eq!(header.compression(), Compression::None);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    }

    #[test]
    fn iterates_records_with_duplicate_header_keys_preserved() {
        let bytes = sample();
        let header = BatchHeader::parse_verified(&bytes, 1 << 20).unwrap();
        let records: Vec<_> = header.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key, Some(&b"k1"[..]));
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].timestamp_delta, 5);
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].offset_delta, 2);
        assert_eq!(records[2].headers, vec![(&b"h"[..], None), (&b"h"[..], Some(&b"y"[..]))]);
    }

    #[test]
    fn offset_assignment_keeps_crc_valid_and_log_append_time_recomputes_it() {
        let mut bytes = sample();
        assign_offsets(&mut bytes, 42, 7, None);
        let header = BatchHeader::parse_verified(&bytes, 1 << 20).unwrap();
        assert_eq!((header.base_offset(), header.last_offset()), (42, 44));
        assert_eq!(header.partition_leader_epoch(), 7);

        assign_offsets(&mut bytes, 50, 7, Some(9_999));
        let header = BatchHeader::parse_verified(&bytes, 1 << 20).unwrap();
        assert_eq!(header.max_timestamp(), 9_999);
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn rejects_flipped_byte_bad_magic_zeros_and_truncation() {
        let good = sample();
        let mut flipped = good.clone();
        flipped[70] ^= 0x40;
        assert!(matches!(BatchHeader::parse_verified(&flipped, 1 << 20), Err(BatchError::CrcMismatch { .. })));
        let mut magic = good.clone();
        magic[16] = 1;
        assert_eq!(BatchHeader::parse(&magic, 1 << 20).unwrap_err(), BatchError::UnsupportedMagic { magic: 1 });
        assert_eq!(BatchHeader::parse(&[0u8; 128], 1 << 20).unwrap_err(), BatchError::Zeroed);
        assert!(matches!(BatchHeader::parse(&good[..good.len() - 1], 1 << 20), Err(BatchError::Truncated { .. })));
        assert!(matches!(BatchHeader::parse(&good, 64), Err(BatchError::InvalidLength { .. })));
    }

    #[test]
    fn a_record_whose_fields_overrun_its_length_is_an_error_not_a_panic() {
        // Found by the batch_decode fuzz target: a header count past the record's end.
        let mut record = Vec::new();
        put_varlong(&mut record, 3); // record length: too short for the fields below
        record.push(0);
        put_varlong(&mut record, 0);
        put_varlong(&mut record, 0);
        put_varlong(&mut record, -1);
        put_varlong(&mut record, -1);
        put_varlong(&mut record, 1);
        let mut bytes = sample();
        bytes.truncate(BATCH_HEADER_BYTES);
        bytes.extend_from_slice(&record);
        bytes[57..61].copy_from_slice(&1i32.to_be_bytes());
        let batch_length = (bytes.len() - LOG_OVERHEAD_BYTES) as i32;
        bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
        bytes[23..27].copy_from_slice(&0i32.to_be_bytes());
        let header = BatchHeader::parse(&bytes, 1 << 20).unwrap();
        let parsed: Vec<_> = header.records().unwrap().collect();
        assert!(matches!(parsed[..], [Err(BatchError::MalformedRecord { .. })]));
    }

    proptest! {
        #[test]
        fn varlong_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            let mut cursor = Cursor { bytes: &out, position: 0 };
            prop_assert_eq!(cursor.varlong().unwrap(), value);
            prop_assert_eq!(cursor.position, out.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(header) = BatchHeader::parse(&bytes, 1 << 20) {
                let _ = header.verify_crc();
                if let Some(records) = header.records() {
                    for record in records { let _ = record; }
                }
            }
        }
    }
}
