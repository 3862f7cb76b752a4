//! The transaction state machine of one transactional id, without I/O: which request may
//! move it where, and with which Kafka error it is refused. Each transition yields the
//! state to write to `__transaction_state`; the coordinator installs it only once written.
//!
//! ```text
//!  Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
//!    ▲                        │ ▲                PrepareAbort  ──markers──▶ CompleteAbort
//!    └──InitProducerId────────┘ └─AddPartitions   (timeout or InitProducerId: epoch + 1)
//! ```

use super::records::{StoredTxn, TxnStatus};
use kafka_protocol::ResponseError;
use std::collections::BTreeSet;

/// The highest epoch before a producer id is exhausted and a new id is handed out
/// (Kafka keeps `Short.MaxValue` free for its own fencing bump).
pub const MAX_PRODUCER_EPOCH: i16 = i16::MAX - 1;

/// What InitProducerId does to a transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitDecision {
    /// Write this state and answer with its producer id and epoch.
    Ready(StoredTxn),
    /// A previous instance's transaction is open: write this (PrepareAbort with the epoch
    /// bumped, fencing that instance), abort it, and answer CONCURRENT_TRANSACTIONS so the
    /// client retries once the abort is complete.
    AbortFirst(StoredTxn),
}

/// InitProducerId for a transactional id. `current` is its state, if any; `expected` the
/// producer id and epoch the client says it has (KIP-360, -1 when none); `new_id` hands
/// out a fresh producer id.
pub fn init_producer_id(
    current: Option<&StoredTxn>,
    timeout_ms: i32,
    expected: (i64, i16),
    now_ms: i64,
    new_id: impl FnOnce() -> i64,
) -> Result<InitDecision, ResponseError> {
    let Some(current) = current else {
        return Ok(InitDecision::Ready(StoredTxn {
            producer_id: new_id(),
            producer_epoch: 0,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            start_ms: -1,
        }));
    };
    if expected.0 >= 0 && (expected.0, expected.1) != (current.producer_id, current.producer_epoch) {
        // A producer that is not the latest instance asked for a bump.
        return Err(ResponseError::ProducerFenced);
    }
    match current.status {
        TxnStatus::Ongoing => Ok(InitDecision::AbortFirst(prepare_abort_with_bump(current, now_ms))),
        status if status.is_preparing() => Err(ResponseError::ConcurrentTransactions),
        _ => {
            let (producer_id, producer_epoch) = if current.producer_epoch >= MAX_PRODUCER_EPOCH {
                (new_id(), 0)
            } else {
                (current.producer_id, current.producer_epoch + 1)
            };
            Ok(InitDecision::Ready(StoredTxn {
                producer_id,
                producer_epoch,
                timeout_ms,
                status: TxnStatus::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now_ms,
                start_ms: -1,
            }))
        }
    }
}

/// The abort of an open transaction that also fences its producer: the epoch goes up, so
/// the markers (written with it) and every later request of the old instance are refused.
pub fn prepare_abort_with_bump(current: &StoredTxn, now_ms: i64) -> StoredTxn {
    StoredTxn {
        producer_epoch: current.producer_epoch.saturating_add(1),
        status: TxnStatus::PrepareAbort,
        last_update_ms: now_ms,
        ..current.clone()
    }
}

/// Checks that a request comes from the transactional id's current producer instance.
fn check_producer(current: &StoredTxn, producer_id: i64, producer_epoch: i16) -> Result<(), ResponseError> {
    if producer_id != current.producer_id {
        Err(ResponseError::InvalidProducerIdMapping)
    } else if producer_epoch != current.producer_epoch {
        Err(ResponseError::ProducerFenced)
    } else {
        Ok(())
    }
}

/// AddPartitionsToTxn (and AddOffsetsToTxn, which adds the group's `__consumer_offsets`
/// partition): `Ok(None)` when every partition is in the transaction already.
pub fn add_partitions(
    current: &StoredTxn,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<StoredTxn>, ResponseError> {
    check_producer(current, producer_id, producer_epoch)?;
    match current.status {
        status if status.is_preparing() => return Err(ResponseError::ConcurrentTransactions),
        TxnStatus::Dead => return Err(ResponseError::InvalidTxnState),
        TxnStatus::Ongoing if partitions.iter().all(|p| current.partitions.contains(p)) => return Ok(None),
        _ => {}
    }
    let opening = current.status != TxnStatus::Ongoing;
    let mut next = current.clone();
    if opening {
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.status = TxnStatus::Ongoing;
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// What EndTxn does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndDecision {
    /// Write this Prepare* state, answer, then write the markers.
    Prepare(StoredTxn),
    /// A retry of an EndTxn that already completed: answer success, write nothing.
    AlreadyDone,
}

/// EndTxn: commit or abort the open transaction.
pub fn end_transaction(
    current: &StoredTxn,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndDecision, ResponseError> {
    check_producer(current, producer_id, producer_epoch)?;
    let asked = if commit { TxnStatus::PrepareCommit } else { TxnStatus::PrepareAbort };
    let completed = if commit { TxnStatus::CompleteCommit } else { TxnStatus::CompleteAbort };
    match current.status {
        TxnStatus::Ongoing => {
            Ok(EndDecision::Prepare(StoredTxn { status: asked, last_update_ms: now_ms, ..current.clone() }))
        }
        status if status == asked => Err(ResponseError::ConcurrentTransactions),
        status if status == completed => Ok(EndDecision::AlreadyDone),
        _ => Err(ResponseError::InvalidTxnState),
    }
}

/// The state once every marker of a Prepare* state is written.
pub fn complete(preparing: &StoredTxn, now_ms: i64) -> StoredTxn {
    assert!(preparing.status.is_preparing(), "only a prepared transaction completes");
    let status =
        if preparing.status == TxnStatus::PrepareCommit { TxnStatus::CompleteCommit } else { TxnStatus::CompleteAbort };
    StoredTxn { status, partitions: BTreeSet::new(), last_update_ms: now_ms, start_ms: -1, ..preparing.clone() }
}

/// Whether an open transaction has outlived its timeout (the coordinator then aborts it
/// with [`prepare_abort_with_bump`]).
pub fn has_expired(current: &StoredTxn, now_ms: i64) -> bool {
    current.status == TxnStatus::Ongoing && now_ms - current.start_ms > i64::from(current.timeout_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn initialised() -> StoredTxn {
        match init_producer_id(None, 60_000, (-1, -1), 1_000, || 77).unwrap() {
            InitDecision::Ready(state) => state,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_transaction_runs_from_empty_through_commit_and_back() {
        let empty = initialised();
        assert_eq!((empty.producer_id, empty.producer_epoch, empty.status), (77, 0, TxnStatus::Empty));
        let ongoing = add_partitions(&empty, 77, 0, &parts(&[("a", 0)]), 2_000).unwrap().unwrap();
        assert_eq!((ongoing.status, ongoing.start_ms), (TxnStatus::Ongoing, 2_000));
        assert_eq!(add_partitions(&ongoing, 77, 0, &parts(&[("a", 0)]), 2_500), Ok(None));
        let more = add_partitions(&ongoing, 77, 0, &parts(&[("b", 1)]), 3_000).unwrap().unwrap();
        assert_eq!(more.partitions.len(), 2);
        assert_eq!(more.start_ms, 2_000, "adding to an open transaction keeps its start");
        let EndDecision::Prepare(prepared) = end_transaction(&more, 77, 0, true, 4_000).unwrap() else { panic!() };
        assert_eq!(prepared.status, TxnStatus::PrepareCommit);
        assert_eq!(
            add_partitions(&prepared, 77, 0, &parts(&[("c", 0)]), 4_100),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(end_transaction(&prepared, 77, 0, true, 4_100), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(end_transaction(&prepared, 77, 0, false, 4_100), Err(ResponseError::InvalidTxnState));
        let done = complete(&prepared, 5_000);
        assert_eq!((done.status, done.partitions.len(), done.start_ms), (TxnStatus::CompleteCommit, 0, -1));
        assert_eq!(end_transaction(&done, 77, 0, true, 5_100), Ok(EndDecision::AlreadyDone));
        assert_eq!(end_transaction(&done, 77, 0, false, 5_100), Err(ResponseError::InvalidTxnState));
        let next = add_partitions(&done, 77, 0, &parts(&[("c", 0)]), 6_000).unwrap().unwrap();
        assert_eq!(next.partitions, parts(&[("c", 0)]).into_iter().collect(), "a new transaction starts clean");
    }

    #[test]
    fn a_new_instance_bumps_the_epoch_and_fences_the_old_one() {
        let empty = initialised();
        let InitDecision::Ready(bumped) = init_producer_id(Some(&empty), 30_000, (-1, -1), 2_000, || 99).unwrap()
        else {
            panic!()
        };
        assert_eq!((bumped.producer_id, bumped.producer_epoch, bumped.timeout_ms), (77, 1, 30_000));
        assert_eq!(add_partitions(&bumped, 77, 0, &parts(&[("a", 0)]), 3_000), Err(ResponseError::ProducerFenced));
        assert_eq!(
            add_partitions(&bumped, 78, 1, &parts(&[("a", 0)]), 3_000),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(end_transaction(&bumped, 77, 0, true, 3_000), Err(ResponseError::ProducerFenced));
        // KIP-360: only the current instance may ask for its own bump.
        assert_eq!(init_producer_id(Some(&bumped), 30_000, (77, 0), 3_000, || 99), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn an_open_transaction_is_aborted_before_a_new_instance_starts() {
        let ongoing = add_partitions(&initialised(), 77, 0, &parts(&[("a", 0)]), 2_000).unwrap().unwrap();
        let InitDecision::AbortFirst(aborting) =
            init_producer_id(Some(&ongoing), 60_000, (-1, -1), 3_000, || 99).unwrap()
        else {
            panic!()
        };
        assert_eq!((aborting.status, aborting.producer_epoch), (TxnStatus::PrepareAbort, 1));
        assert_eq!(aborting.partitions, ongoing.partitions, "the markers go where the data went");
        assert_eq!(
            init_producer_id(Some(&aborting), 60_000, (-1, -1), 3_100, || 99),
            Err(ResponseError::ConcurrentTransactions)
        );
        let aborted = complete(&aborting, 4_000);
        let InitDecision::Ready(fresh) = init_producer_id(Some(&aborted), 60_000, (-1, -1), 4_100, || 99).unwrap()
        else {
            panic!()
        };
        assert_eq!((fresh.producer_id, fresh.producer_epoch, fresh.status), (77, 2, TxnStatus::Empty));
    }

    #[test]
    fn an_exhausted_epoch_gets_a_new_producer_id() {
        let worn = StoredTxn { producer_epoch: MAX_PRODUCER_EPOCH, ..initialised() };
        let InitDecision::Ready(fresh) = init_producer_id(Some(&worn), 60_000, (-1, -1), 2_000, || 99).unwrap() else {
            panic!()
        };
        assert_eq!((fresh.producer_id, fresh.producer_epoch), (99, 0));
    }

    #[test]
    fn only_open_transactions_expire() {
        let ongoing = add_partitions(&initialised(), 77, 0, &parts(&[("a", 0)]), 2_000).unwrap().unwrap();
        assert!(!has_expired(&ongoing, 62_000));
        assert!(has_expired(&ongoing, 62_001));
        assert!(!has_expired(&initialised(), i64::MAX / 2));
        let aborting = prepare_abort_with_bump(&ongoing, 62_001);
        assert!(!has_expired(&aborting, i64::MAX / 2));
        assert_eq!(aborting.producer_epoch, 1);
    }

    #[test]
    fn ending_without_a_transaction_is_refused() {
        assert_eq!(end_transaction(&initialised(), 77, 0, true, 2_000), Err(ResponseError::InvalidTxnState));
        assert_eq!(end_transaction(&initialised(), 77, 0, false, 2_000), Err(ResponseError::InvalidTxnState));
    }
}
