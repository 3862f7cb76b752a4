//! Idempotent-producer state of a partition: per producer id, its epoch and the last five
//! batches' sequence ranges and offsets, as Kafka keeps them. It lets the log drop a
//! retried batch (answering with the original offsets), refuse a gap in sequences
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) and fence an older epoch (INVALID_PRODUCER_EPOCH).
//!
//! The state is derived from the log: snapshots taken when segments roll and at close
//! (`<offset>.snapshot` in the partition directory, the state just before that offset)
//! spare replaying the whole log at open.

use crate::batch::BatchHeader;
use std::collections::{BTreeMap, VecDeque};

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchSequence>,
}

/// The idempotent-producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: BTreeMap<i64, ProducerEntry>,
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
        let (epoch, first_sequence) = (header.producer_epoch(), header.base_sequence());
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state was never seen here): accept, as Kafka.
            return Ok(SequenceVerdict::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::FencedEpoch { producer_id, epoch, current: entry.epoch });
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

    /// Records a batch now in the log at its assigned offsets (appends and replay).
    pub fn record(&mut self, header: &BatchHeader<'_>) {
        let producer_id = header.producer_id();
        if producer_id < 0 {
            return;
        }
        let epoch = header.producer_epoch();
        let entry = self.producers.entry(producer_id).or_insert(ProducerEntry { epoch, batches: VecDeque::new() });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
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
    }

    /// Encodes the state: per producer `id epoch count` then `first last first_offset
    /// last_offset` per batch, one line each, text for inspection with a pager.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (id, entry) in &self.producers {
            out.push_str(&format!("{id} {} {}\n", entry.epoch, entry.batches.len()));
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
            let [id, epoch, count] = fields[..] else { return None };
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
            states.producers.insert(id, ProducerEntry { epoch: i16::try_from(epoch).ok()?, batches });
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
        let bytes = states.encode();
        assert_eq!(ProducerStates::decode(&bytes), Some(states));
        assert_eq!(ProducerStates::decode(b"1 2 9\n"), None);
        assert_eq!(ProducerStates::decode(b"1 2 1\n0 0 x 0\n"), None);
        assert_eq!(ProducerStates::decode(b""), Some(ProducerStates::default()));
    }
}
