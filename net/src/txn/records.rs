//! What the transaction coordinator stores in `__transaction_state`: one record per
//! transactional id, its latest state, in Kafka's own layouts (so Kafka tooling that reads
//! the topic understands it). A record with a null value (a tombstone) forgets the id.
//!
//! Layouts (big-endian; strings are an i16 length then UTF-8):
//! - key v0: `version i16, transactional_id string`
//! - value v0: `version i16, producer_id i64, producer_epoch i16, timeout_ms i32,
//!   status i8, partitions [topic string, [partition i32]] (null when Empty),
//!   last_update_timestamp i64, start_timestamp i64`

use crate::internal_codec::{put_string, Reader};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeSet;

/// Name of the internal topic.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Its partition count (`transaction.state.log.num.partitions`).
pub const TRANSACTION_STATE_PARTITIONS: i32 = 50;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// A transaction's status, with Kafka's codes and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnStatus {
    /// No transaction open (after InitProducerId).
    Empty,
    /// Partitions were added; data may be written.
    Ongoing,
    /// EndTxn(commit) is durable; markers are being written.
    PrepareCommit,
    /// EndTxn(abort) or a timeout is durable; markers are being written.
    PrepareAbort,
    /// Every commit marker is written.
    CompleteCommit,
    /// Every abort marker is written.
    CompleteAbort,
    /// The id expired (never written by sluice; read for Kafka's records).
    Dead,
    /// Kafka's fence of an ongoing transaction by a new producer instance (read only:
    /// sluice writes PrepareAbort with the bumped epoch instead).
    PrepareEpochFence,
}

impl TxnStatus {
    /// Kafka's code in the value.
    pub fn code(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
            TxnStatus::Dead => 6,
            TxnStatus::PrepareEpochFence => 7,
        }
    }

    /// The status of a code.
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            6 => TxnStatus::Dead,
            7 => TxnStatus::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: the transaction's outcome is decided.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence)
    }
}

/// A transactional id's state as stored (the value of its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTxn {
    /// The producer id handed to the transactional id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// Status.
    pub status: TxnStatus,
    /// The partitions in the transaction (empty unless Ongoing or Prepare*).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the state last changed (ms since the epoch).
    pub last_update_ms: i64,
    /// When the transaction began (its first AddPartitionsToTxn), -1 when none is open.
    pub start_ms: i64,
}

/// Partitions grouped by topic, in order (`partitions` sorted by topic, as a set is).
pub fn by_topic<'a>(partitions: impl IntoIterator<Item = &'a (String, i32)>) -> Vec<(&'a str, Vec<i32>)> {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match topics.last_mut() {
            Some((last, partitions)) if *last == topic => partitions.push(*partition),
            _ => topics.push((topic, vec![*partition])),
        }
    }
    topics
}

/// Encodes a key.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(KEY_VERSION);
    put_string(&mut out, transactional_id);
    out.freeze()
}

/// Encodes a value.
pub fn encode_value(value: &StoredTxn) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(VALUE_VERSION);
    out.put_i64(value.producer_id);
    out.put_i16(value.producer_epoch);
    out.put_i32(value.timeout_ms);
    out.put_i8(value.status.code());
    if value.status == TxnStatus::Empty {
        out.put_i32(-1);
    } else {
        let topics = by_topic(&value.partitions);
        out.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_string(&mut out, topic);
            out.put_i32(partitions.len() as i32);
            for partition in partitions {
                out.put_i32(partition);
            }
        }
    }
    out.put_i64(value.last_update_ms);
    out.put_i64(value.start_ms);
    out.freeze()
}

/// Decodes a key: the transactional id.
pub fn decode_key(bytes: &Bytes) -> Result<String, String> {
    let mut reader = Reader::new(bytes);
    match reader.i16()? {
        KEY_VERSION => {}
        version => return Err(format!("unknown transaction key version {version}")),
    }
    let id = reader.string()?;
    reader.finish()?;
    Ok(id)
}

/// Decodes a value (version 0; Kafka's flexible version 1 is not read).
pub fn decode_value(bytes: &Bytes) -> Result<StoredTxn, String> {
    let mut reader = Reader::new(bytes);
    match reader.i16()? {
        VALUE_VERSION => {}
        version => return Err(format!("unknown transaction value version {version}")),
    }
    let producer_id = reader.i64()?;
    let producer_epoch = reader.i16()?;
    let timeout_ms = reader.i32()?;
    let code = reader.i8()?;
    let status = TxnStatus::from_code(code).ok_or_else(|| format!("unknown transaction status {code}"))?;
    let mut partitions = BTreeSet::new();
    let topics = reader.i32()?;
    for _ in 0..topics.max(0) {
        let topic = reader.string()?;
        let count = reader.i32()?;
        if count < 0 || count as usize > reader.remaining() / 4 {
            return Err(format!("partition count {count} of {topic} does not fit the value"));
        }
        for _ in 0..count {
            partitions.insert((topic.clone(), reader.i32()?));
        }
    }
    let last_update_ms = reader.i64()?;
    let start_ms = reader.i64()?;
    reader.finish()?;
    Ok(StoredTxn { producer_id, producer_epoch, timeout_ms, status, partitions, last_update_ms, start_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> StoredTxn {
        StoredTxn {
            producer_id: 4242,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)].into_iter().collect(),
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn values_round_trip_and_group_partitions_by_topic() {
        let value = ongoing();
        let bytes = encode_value(&value);
        assert_eq!(decode_value(&bytes).unwrap(), value);
        // version, pid, epoch, timeout, status, then 2 topics: "a" with 2 partitions.
        assert_eq!(&bytes[17..21], &2i32.to_be_bytes());
        assert_eq!(&bytes[21..24], &[0, 1, b'a']);
        assert_eq!(&bytes[24..28], &2i32.to_be_bytes());
    }

    #[test]
    fn an_empty_transaction_stores_null_partitions() {
        let value = StoredTxn { status: TxnStatus::Empty, partitions: BTreeSet::new(), start_ms: -1, ..ongoing() };
        let bytes = encode_value(&value);
        assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());
        assert_eq!(decode_value(&bytes).unwrap(), value);
    }

    #[test]
    fn keys_round_trip_and_damage_is_reported() {
        assert_eq!(decode_key(&encode_key("payments-7")).unwrap(), "payments-7");
        assert!(decode_key(&Bytes::from_static(&[0, 1])).is_err());
        let mut damaged = encode_value(&ongoing()).to_vec();
        damaged[16] = 9; // the status
        assert!(decode_value(&Bytes::from(damaged)).unwrap_err().contains("status 9"));
        let truncated = encode_value(&ongoing()).slice(..30);
        assert!(decode_value(&truncated).is_err());
    }

    #[test]
    fn every_status_code_round_trips() {
        for code in 0..8 {
            assert_eq!(TxnStatus::from_code(code).unwrap().code(), code);
        }
        assert_eq!(TxnStatus::from_code(8), None);
    }
}
