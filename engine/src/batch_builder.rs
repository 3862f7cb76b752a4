//! Builds uncompressed v2 record batches, as a producer would send them.
//!
//! The broker itself never builds batches (it stores what producers send); this exists for
//! tools that produce (the CLI, the load generator) and for tests.

use crate::batch::{put_varlong, BATCH_HEADER_BYTES, MAGIC_V2};
use bytes::Bytes;

/// Accumulates records and encodes them as one batch with base offset 0.
pub struct BatchBuilder {
    records: Vec<u8>,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: Option<(i64, i16, i32)>,
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
            scratch: Vec::new(),
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer = Some((producer_id, producer_epoch, base_sequence));
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
        assert!(self.record_count > 0, "a batch holds at least one record");
        let mut out = Vec::with_capacity(self.size_bytes());
        let (producer_id, producer_epoch, base_sequence) = self.producer.unwrap_or((-1, -1, -1));
        out.extend_from_slice(&0i64.to_be_bytes()); // base offset: the broker assigns it
        let batch_length = (self.size_bytes() - 12) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(MAGIC_V2);
        out.extend_from_slice(&[0; 4]); // CRC, filled below
        out.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression, CreateTime
        out.extend_from_slice(&(self.record_count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&producer_id.to_be_bytes());
        out.extend_from_slice(&producer_epoch.to_be_bytes());
        out.extend_from_slice(&base_sequence.to_be_bytes());
        out.extend_from_slice(&self.record_count.to_be_bytes());
        debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
        out.extend_from_slice(&self.records);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }
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
