//! Builds uncompressed v2 record batches, as a producer would send them: for tools that
//! produce (the CLI, the load generator), the coordinators' own records, transaction
//! markers ([`control_marker`]) and tests.

use crate::batch::{
    put_varlong, Compression, ControlType, ATTR_CONTROL, ATTR_TRANSACTIONAL, BATCH_HEADER_BYTES, MAGIC_V2,
};
use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

/// Accumulates records and encodes them as one batch with base offset 0.
pub struct BatchBuilder {
    records: Vec<u8>,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: Option<(i64, i16, i32)>,
    /// Transactional and control bits, beside the codec's.
    flags: i16,
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// Starts a batch whose timestamps are deltas from `base_timestamp_ms`.
    pub fn new(base_timestamp_ms: i64) -> Self {
        BatchBuilder {
            records: Vec::new(),
            record_count: 0,
            base_timestamp: base_timestamp_ms,
            max_timestamp: base_timestamp_ms,
            producer: None,
            flags: 0,
            scratch: Vec::new(),
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer = Some((producer_id, producer_epoch, base_sequence));
        self
    }

    /// Marks the batch as part of its producer's transaction (attribute bit 4).
    pub fn transactional(mut self) -> Self {
        self.flags |= ATTR_TRANSACTIONAL;
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.record_count as usize
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Encoded size of the batch if built now.
    pub fn size_bytes(&self) -> usize {
        BATCH_HEADER_BYTES + self.records.len()
    }

    /// Adds a record. `None` encodes Kafka's null (length -1).
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
        timestamp_ms: i64,
    ) {
        let body = &mut self.scratch;
        body.clear();
        body.push(0); // record attributes: unused in v2
        put_varlong(body, timestamp_ms - self.base_timestamp);
        put_varlong(body, i64::from(self.record_count));
        put_nullable(body, key);
        put_nullable(body, value);
        put_varlong(body, headers.len() as i64);
        for (header_key, header_value) in headers {
            put_nullable(body, Some(header_key));
            put_nullable(body, *header_value);
        }
        put_varlong(&mut self.records, body.len() as i64);
        self.records.extend_from_slice(body);
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
    }

    /// Encodes the batch: header with a correct CRC, then the records.
    pub fn build(&self) -> Bytes {
        self.encode(Compression::None, &self.records)
    }

    /// Encodes the batch with its records compressed by `codec`, as a producer with
    /// `compression.type` set sends it.
    pub fn build_compressed(&self, codec: Compression) -> Result<Bytes, String> {
        let mut compressed = BytesMut::with_capacity(self.records.len() / 2 + 64);
        let put = |out: &mut BytesMut| {
            out.extend_from_slice(&self.records);
            Ok(())
        };
        match codec {
            Compression::None => return Ok(self.build()),
            Compression::Gzip => Gzip::compress(&mut compressed, put),
            Compression::Snappy => Snappy::compress(&mut compressed, put),
            Compression::Lz4 => Lz4::compress(&mut compressed, put),
            Compression::Zstd => Zstd::compress(&mut compressed, put),
            Compression::Unknown(id) => return Err(format!("unknown compression codec {id}")),
        }
        .map_err(|e| format!("{codec:?} compression failed: {e}"))?;
        Ok(self.encode(codec, &compressed))
    }

    fn encode(&self, codec: Compression, records: &[u8]) -> Bytes {
        assert!(self.record_count > 0, "a batch holds at least one record");
        let size = BATCH_HEADER_BYTES + records.len();
        let mut out = Vec::with_capacity(size);
        let (producer_id, producer_epoch, base_sequence) = self.producer.unwrap_or((-1, -1, -1));
        out.extend_from_slice(&0i64.to_be_bytes()); // base offset: the broker assigns it
        let batch_length = (size - 12) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(MAGIC_V2);
        out.extend_from_slice(&[0; 4]); // CRC, filled below
        out.extend_from_slice(&(codec.attribute_bits() | self.flags).to_be_bytes()); // CreateTime
        out.extend_from_slice(&(self.record_count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&producer_epoch.to_be_bytes());
        out.extend_from_slice(&base_sequence.to_be_bytes());
        out.extend_from_slice(&self.record_count.to_be_bytes());
        debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
        out.extend_from_slice(records);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }
}

/// A transaction marker: the control batch (transactional and control bits set, no
/// sequence) that ends `producer_id`'s transaction in a partition. Its one record's key is
/// version 0 and the type; its value version 0 and the coordinator's epoch, as Kafka
/// writes them.
pub fn control_marker(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    control: ControlType,
    timestamp_ms: i64,
) -> Bytes {
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&control.code().to_be_bytes());
    let mut value = 0i16.to_be_bytes().to_vec();
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut builder = BatchBuilder::new(timestamp_ms).producer(producer_id, producer_epoch, -1).transactional();
    builder.flags |= ATTR_CONTROL;
    builder.push(Some(&key), Some(&value), &[], timestamp_ms);
    builder.build()
}

/// The coordinator epoch a marker (from [`control_marker`]) carries; `None` if unreadable.
pub fn marker_coordinator_epoch(header: &crate::batch::BatchHeader<'_>) -> Option<i32> {
    let record = header.records()?.next()?.ok()?;
    Some(i32::from_be_bytes(record.value?.get(2..6)?.try_into().ok()?))
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

/// A batch of `count` records with `value_bytes`-sized values, for tests and benchmarks.
/// The value bytes are derived from `seed` so that each batch is distinguishable.
pub fn synthetic_batch(count: usize, value_bytes: usize, seed: u64, timestamp_ms: i64) -> Bytes {
    let mut builder = BatchBuilder::new(timestamp_ms);
    let mut value = vec![0u8; value_bytes];
    for (i, byte) in value.iter_mut().enumerate() {
        *byte = (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8;
    }
    for i in 0..count {
        let key = (seed.wrapping_add(i as u64)).to_be_bytes();
        builder.push(Some(&key), Some(&value), &[], timestamp_ms);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchHeader;
    use crate::compaction::plain_batch;

    #[test]
    fn markers_are_transactional_control_batches_kafka_can_read() {
        let marker = control_marker(42, 3, 7, ControlType::Abort, 1_000);
        let header = BatchHeader::parse_verified(&marker, usize::MAX).expect("valid");
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id(), header.producer_epoch(), header.base_sequence()), (42, 3, -1));
        assert_eq!(header.control_type(), Some(ControlType::Abort));
        assert_eq!(marker_coordinator_epoch(&header), Some(7));
        let record = header.records().unwrap().next().unwrap().unwrap();
        assert_eq!(record.key, Some(&[0u8, 0, 0, 0][..]), "version 0, type 0 (abort)");
        assert_eq!(record.value, Some(&[0u8, 0, 0, 0, 0, 7][..]), "version 0, coordinator epoch 7");
        let commit = control_marker(42, 3, 7, ControlType::Commit, 1_000);
        assert_eq!(BatchHeader::parse(&commit, usize::MAX).unwrap().control_type(), Some(ControlType::Commit));
        let plain = BatchBuilder::new(0).producer(1, 0, 0).transactional();
        let mut plain = plain;
        plain.push(None, Some(b"v"), &[], 0);
        let data = plain.build();
        let header = BatchHeader::parse_verified(&data, usize::MAX).unwrap();
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(header.control_type(), None);
    }

    #[test]
    fn compressed_batches_inflate_to_the_plain_batch() {
        let mut builder = BatchBuilder::new(1_000);
        for i in 0..50u32 {
            builder.push(Some(&i.to_be_bytes()), Some(&[b'v'; 300]), &[(b"h", Some(b"x"))], 1_000 + i64::from(i));
        }
        let plain = builder.build();
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let batch = builder.build_compressed(codec).unwrap();
            assert!(batch.len() < plain.len() / 2, "{codec:?} shrinks repetitive values");
            let header = BatchHeader::parse_verified(&batch, usize::MAX).expect("valid CRC and length");
            assert_eq!(header.compression(), codec);
            assert_eq!(header.record_count(), 50);
            let inflated = plain_batch(&header).unwrap();
            assert_eq!(&inflated[BATCH_HEADER_BYTES..], &plain[BATCH_HEADER_BYTES..], "{codec:?}");
        }
    }
}
