//! Idempotent-producer state of a partition: per producer id, its epoch and the last five
//! batches' sequence ranges and offsets, as Kafka keeps them. It lets the log drop a
//! retried batch (answering with the original offsets), refuse a gap in sequences
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) and fence an older epoch (INVALID_PRODUCER_EPOCH).
//!
//! Transactions too: a producer's first transactional batch opens its transaction here
//! (at that batch's offset) and a marker (control batch) ends it. The smallest first
//! offset of the open transactions is the partition's first unstable offset, which bounds
//! what read_committed consumers see (the last stable offset).
//!
//! The state is derived from the log: snapshots taken when segments roll and at close
//! (`<offset>.snapshot` in the partition directory, the state just before that offset)
//! spare replaying the whole log at open.

use crate::batch::{BatchHeader, ControlType};
use std::collections::{BTreeMap, VecDeque};

/// The base sequence of a batch that has none: a coordinator's own transactional batch
/// (Kafka's `RecordBatch.NO_SEQUENCE`).
pub const NO_SEQUENCE: i32 = -1;

/// Batches remembered per producer (Kafka's in-flight request limit for idempotence).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    /// Sequence of the first record.
    pub first_sequence: i32,
    /// Sequence of the last record.
    pub last_sequence: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// What a producer's batch amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with its offsets, write nothing.
    Duplicate(BatchSequence),
}

/// Why a producer's batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The producer's epoch is older than one already seen (Kafka: INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    FencedEpoch {
        /// Producer id.
        producer_id: i64,
        /// Epoch in the batch.
        epoch: i16,
        /// Latest epoch seen.
        current: i16,
    },
    /// The batch does not follow the producer's last sequence (Kafka:
    /// OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer {producer_id}: sequence {first_sequence} does not follow {expected_after}")]
    OutOfOrder {
        /// Producer id.
        producer_id: i64,
        /// First sequence of the batch.
        first_sequence: i32,
        /// Last sequence seen (-1: a new epoch expects 0).
        expected_after: i32,
    },
    /// A plain batch from a producer whose transaction is open (Kafka: INVALID_TXN_STATE).
    #[error(
        "producer {producer_id} sent a non-transactional batch inside its transaction begun at offset {first_offset}"
    )]
    InsideTransaction {
        /// Producer id.
        producer_id: i64,
        /// Where its open transaction began.
        first_offset: i64,
    },
    /// A marker from a coordinator older than one already seen (Kafka:
    /// TRANSACTION_COORDINATOR_FENCED).
    #[error("producer {producer_id}: marker from coordinator epoch {coordinator_epoch}, {current} seen")]
    CoordinatorFenced {
        /// Producer id.
        producer_id: i64,
        /// The marker's coordinator epoch.
        coordinator_epoch: i32,
        /// The latest coordinator epoch seen for this producer.
        current: i32,
    },
}

/// A transaction a marker ended in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// Its producer.
    pub producer_id: i64,
    /// Offset of its first batch here.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Aborted (else committed).
    pub aborted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchSequence>,
    /// Where the producer's open transaction began.
    open_transaction: Option<i64>,
    /// When it began: the max timestamp of its first batch here (-1 when none is open).
    open_since_ms: i64,
    /// The newest coordinator epoch among its markers (-1 before any).
    coordinator_epoch: i32,
}

impl ProducerEntry {
    fn new(epoch: i16) -> Self {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            open_transaction: None,
            open_since_ms: -1,
            coordinator_epoch: -1,
        }
    }

    /// A newer epoch starts a fresh sequence.
    fn observe_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
    }
}

/// The idempotent-producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id (the smallest bounds the LSO).
    open_transactions: BTreeMap<i64, i64>,
}

/// Sequence of the last record of a batch, wrapping past `i32::MAX` to 0 as Kafka does.
pub fn last_sequence(first_sequence: i32, last_offset_delta: i32) -> i32 {
    let last = i64::from(first_sequence) + i64::from(last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

fn follows(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerStates {
    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with a batch. Batches without a producer id always append.
    pub fn check(&self, header: &BatchHeader<'_>) -> Result<SequenceVerdict, SequenceError> {
        let producer_id = header.producer_id();
        if producer_id < 0 {
            return Ok(SequenceVerdict::Append);
        }
        if header.is_control() {
            // Markers carry no sequence; `check_marker` judges them.
            return Ok(SequenceVerdict::Append);
        }
        let (epoch, first_sequence) = (header.producer_epoch(), header.base_sequence());
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state was never seen here): accept, as Kafka.
            return Ok(SequenceVerdict::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::FencedEpoch { producer_id, epoch, current: entry.epoch });
        }
        if let Some(first_offset) = entry.open_transaction.filter(|_| !header.is_transactional()) {
            return Err(SequenceError::InsideTransaction { producer_id, first_offset });
        }
        if first_sequence == NO_SEQUENCE {
            // A coordinator's batch (transactional offset commits): fenced by epoch only,
            // never deduplicated, as Kafka's coordinator appends.
            return Ok(SequenceVerdict::Append);
        }
        if epoch > entry.epoch {
            return if first_sequence == 0 {
                Ok(SequenceVerdict::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, first_sequence, expected_after: -1 })
            };
        }
        let last = last_sequence(first_sequence, header.last_offset_delta());
        if let Some(original) =
            entry.batches.iter().find(|b| b.first_sequence == first_sequence && b.last_sequence == last)
        {
            return Ok(SequenceVerdict::Duplicate(*original));
        }
        let newest = entry.batches.back().map_or(-1, |b| b.last_sequence);
        if follows(newest, first_sequence) {
            Ok(SequenceVerdict::Append)
        } else {
            Err(SequenceError::OutOfOrder { producer_id, first_sequence, expected_after: newest })
        }
    }

    /// Checks a marker (a control batch the coordinator has this partition append) before
    /// it is written: an older producer epoch or an older coordinator is refused.
    pub fn check_marker(&self, header: &BatchHeader<'_>, coordinator_epoch: i32) -> Result<(), SequenceError> {
        let producer_id = header.producer_id();
        let Some(entry) = self.producers.get(&producer_id) else { return Ok(()) };
        if header.producer_epoch() < entry.epoch {
            return Err(SequenceError::FencedEpoch {
                producer_id,
                epoch: header.producer_epoch(),
                current: entry.epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(SequenceError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a batch now in the log at its assigned offsets (appends and replay). A
    /// marker ends its producer's transaction, which is returned if it wrote data here.
    pub fn record(&mut self, header: &BatchHeader<'_>) -> Option<CompletedTxn> {
        let producer_id = header.producer_id();
        if producer_id < 0 {
            return None;
        }
        let epoch = header.producer_epoch();
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry::new(epoch));
        // A marker may carry a newer epoch (the coordinator fenced the producer).
        entry.observe_epoch(epoch);
        if header.is_control() {
            let aborted = match header.control_type() {
                Some(ControlType::Abort) => true,
                Some(ControlType::Commit) => false,
                _ => return None,
            };
            if let Some(epoch) = crate::batch_builder::marker_coordinator_epoch(header) {
                entry.coordinator_epoch = entry.coordinator_epoch.max(epoch);
            }
            // A marker for a transaction that wrote nothing here completes nothing here.
            let first_offset = entry.open_transaction.take()?;
            entry.open_since_ms = -1;
            self.open_transactions.remove(&first_offset);
            return Some(CompletedTxn { producer_id, first_offset, last_offset: header.base_offset(), aborted });
        }
        if header.is_transactional() && entry.open_transaction.is_none() {
            entry.open_transaction = Some(header.base_offset());
            entry.open_since_ms = header.max_timestamp();
            self.open_transactions.insert(header.base_offset(), producer_id);
        }
        if header.base_sequence() == NO_SEQUENCE {
            return None; // a coordinator's batch: no sequence to remember
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchSequence {
            first_sequence: header.base_sequence(),
            last_sequence: last_sequence(header.base_sequence(), header.last_offset_delta()),
            first_offset: header.base_offset(),
            last_offset: header.last_offset(),
        });
        None
    }

    /// The first offset of the oldest open transaction: read_committed sees nothing from
    /// here on.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open_transactions.keys().next().copied()
    }

    /// When the oldest open transaction began (its first batch's timestamp), if any.
    pub fn oldest_open_since_ms(&self) -> Option<i64> {
        let (_, producer_id) = self.open_transactions.iter().next()?;
        self.producers.get(producer_id).map(|entry| entry.open_since_ms)
    }

    /// Open transactions, oldest first: `(first offset, producer id)`.
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.open_transactions.iter().map(|(first, producer)| (*first, *producer))
    }

    /// Encodes the state: per producer `id epoch count open_transaction coordinator_epoch
    /// open_since_ms` (-1: no open transaction) then `first last first_offset last_offset` per batch, one
    /// line each, text for inspection with a pager.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (id, entry) in &self.producers {
            let open = entry.open_transaction.unwrap_or(-1);
            out.push_str(&format!(
                "{id} {} {} {open} {} {}\n",
                entry.epoch,
                entry.batches.len(),
                entry.coordinator_epoch,
                entry.open_since_ms
            ));
            for b in &entry.batches {
                out.push_str(&format!(
                    "{} {} {} {}\n",
                    b.first_sequence, b.last_sequence, b.first_offset, b.last_offset
                ));
            }
        }
        out.into_bytes()
    }

    /// Parses [`ProducerStates::encode`]'s form; `None` if it is damaged (the caller then
    /// rebuilds the state from the log).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let mut states = ProducerStates::default();
        while let Some(line) = lines.next() {
            let fields: Vec<i64> = line.split(' ').map(|f| f.parse().ok()).collect::<Option<_>>()?;
            // Snapshots from before transactions have the first three fields only, from before
            // the transaction age the first five.
            let (id, epoch, count, open, coordinator_epoch, open_since_ms) = match fields[..] {
                [id, epoch, count] => (id, epoch, count, -1, -1, -1),
                [id, epoch, count, open, coordinator_epoch] => (id, epoch, count, open, coordinator_epoch, -1),
                [id, epoch, count, open, coordinator_epoch, since] => {
                    (id, epoch, count, open, coordinator_epoch, since)
                }
                _ => return None,
            };
            let count = usize::try_from(count).ok().filter(|c| *c <= BATCHES_PER_PRODUCER)?;
            let mut batches = VecDeque::with_capacity(count);
            for _ in 0..count {
                let fields: Vec<i64> = lines.next()?.split(' ').map(|f| f.parse().ok()).collect::<Option<_>>()?;
                let [first, last, first_offset, last_offset] = fields[..] else { return None };
                batches.push_back(BatchSequence {
                    first_sequence: i32::try_from(first).ok()?,
                    last_sequence: i32::try_from(last).ok()?,
                    first_offset,
                    last_offset,
                });
            }
            let open_transaction = (open >= 0).then_some(open);
            if let Some(first_offset) = open_transaction {
                states.open_transactions.insert(first_offset, id);
            }
            let coordinator_epoch = i32::try_from(coordinator_epoch).ok()?;
            let epoch = i16::try_from(epoch).ok()?;
            states
                .producers
                .insert(id, ProducerEntry { epoch, batches, open_transaction, open_since_ms, coordinator_epoch });
        }
        Some(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::assign_offsets;
    use crate::batch_builder::BatchBuilder;

    fn batch(producer_id: i64, epoch: i16, first_sequence: i32, records: usize, base_offset: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new(0).producer(producer_id, epoch, first_sequence);
        for _ in 0..records {
            builder.push(None, Some(b"v"), &[], 0);
        }
        let mut bytes = builder.build().to_vec();
        assign_offsets(&mut bytes, base_offset, 0, None);
        bytes
    }

    fn header(bytes: &[u8]) -> BatchHeader<'_> {
        BatchHeader::parse_verified(bytes, 1 << 20).unwrap()
    }

    #[test]
    fn retries_are_duplicates_gaps_are_out_of_order_and_old_epochs_are_fenced() {
        let mut states = ProducerStates::default();
        let first = batch(7, 0, 0, 3, 100);
        assert_eq!(states.check(&header(&first)), Ok(SequenceVerdict::Append));
        states.record(&header(&first));
        let second = batch(7, 0, 3, 2, 103);
        assert_eq!(states.check(&header(&second)), Ok(SequenceVerdict::Append));
        states.record(&header(&second));
        // A retry of the first batch, offsets not yet assigned.
        let retry = batch(7, 0, 0, 3, 0);
        let original = BatchSequence { first_sequence: 0, last_sequence: 2, first_offset: 100, last_offset: 102 };
        assert_eq!(states.check(&header(&retry)), Ok(SequenceVerdict::Duplicate(original)));
        let gap = batch(7, 0, 9, 1, 0);
        assert!(matches!(states.check(&header(&gap)), Err(SequenceError::OutOfOrder { expected_after: 4, .. })));
        let old_epoch = batch(7, -1, 5, 1, 0);
        assert!(matches!(states.check(&header(&old_epoch)), Err(SequenceError::FencedEpoch { current: 0, .. })));
        let new_epoch_bad = batch(7, 1, 5, 1, 0);
        assert!(matches!(states.check(&header(&new_epoch_bad)), Err(SequenceError::OutOfOrder { .. })));
        let new_epoch = batch(7, 1, 0, 1, 105);
        assert_eq!(states.check(&header(&new_epoch)), Ok(SequenceVerdict::Append));
        states.record(&header(&new_epoch));
        assert_eq!(
            states.check(&header(&retry)),
            Err(SequenceError::FencedEpoch { producer_id: 7, epoch: 0, current: 1 })
        );
        // Unknown producers and plain batches append.
        assert_eq!(states.check(&header(&batch(8, 3, 42, 1, 0))), Ok(SequenceVerdict::Append));
        assert_eq!(states.check(&header(&batch(-1, -1, -1, 1, 0))), Ok(SequenceVerdict::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.record(&header(&batch(1, 0, i * 2, 2, i64::from(i) * 2)));
        }
        assert!(matches!(states.check(&header(&batch(1, 0, 0, 2, 0))), Err(SequenceError::OutOfOrder { .. })));
        assert!(matches!(states.check(&header(&batch(1, 0, 4, 2, 0))), Ok(SequenceVerdict::Duplicate(_))));
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert!(follows(i32::MAX, 0));
    }

    #[test]
    fn encode_decode_round_trips_and_rejects_damage() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.record(&header(&batch(1, 2, i, 1, i64::from(i))));
        }
        states.record(&header(&batch(99, 0, 0, 3, 10)));
        let mut transactional = BatchBuilder::new(0).producer(5, 1, 0).transactional();
        transactional.push(None, Some(b"v"), &[], 0);
        let mut transactional = transactional.build().to_vec();
        assign_offsets(&mut transactional, 13, 0, None);
        states.record(&header(&transactional));
        assert_eq!(states.first_unstable_offset(), Some(13));
        let bytes = states.encode();
        assert_eq!(ProducerStates::decode(&bytes), Some(states.clone()));
        assert_eq!(ProducerStates::decode(&bytes).unwrap().first_unstable_offset(), Some(13));
        assert!(ProducerStates::decode(b"1 2 0\n").is_some(), "snapshots from before transactions still load");
        assert_eq!(ProducerStates::decode(b"1 2 9\n"), None);
        assert_eq!(ProducerStates::decode(b"1 2 1\n0 0 x 0\n"), None);
        assert_eq!(ProducerStates::decode(b""), Some(ProducerStates::default()));
    }
}
