//! Transactions in a partition log: open transactions hold the last stable offset back,
//! markers end them, aborts land in the aborted-transaction index, and all of it
//! survives a clean restart, a crash (rebuilt by the producer-state replay) and truncation.

mod common;

use bytes::Bytes;
use common::{run, small_config, temp_dir};
use sluice_engine::batch::{BatchHeader, ControlType};
use sluice_engine::batch_builder::{control_marker, BatchBuilder};
use sluice_engine::producer_state::SequenceError;
use sluice_engine::txn_index::AbortedTxn;
use sluice_engine::{EngineError, PartitionLog, ReadLimit, TxnMarker};

const NOW: i64 = 1_700_000_000_000;

/// A batch of `records` records from producer `id`, inside its transaction when `transactional`.
fn produced(id: i64, sequence: i32, records: usize, transactional: bool) -> Bytes {
    let mut builder = BatchBuilder::new(NOW).producer(id, 0, sequence);
    if transactional {
        builder = builder.transactional();
    }
    for i in 0..records {
        builder.push(Some(&(i as u32).to_be_bytes()), Some(&[9u8; 600]), &[], NOW);
    }
    builder.build()
}

fn marker(producer_id: i64, control: ControlType) -> TxnMarker {
    TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, control }
}

fn aborted(producer_id: i64, first_offset: i64, last_offset: i64, last_stable_offset: i64) -> AbortedTxn {
    AbortedTxn { producer_id, first_offset, last_offset, last_stable_offset }
}

/// Last offsets of the batches a read_committed read from `from` returns.
async fn stable_batch_ends(log: &PartitionLog, from: i64) -> Vec<i64> {
    let read = log.read(from, 1 << 20, ReadLimit::LastStable).await.unwrap();
    read.batches.iter().map(|b| BatchHeader::parse(b, usize::MAX).unwrap().last_offset()).collect()
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_markers_release_it() {
    let dir = temp_dir();
    run(async {
        let (log, _) = PartitionLog::open(&dir.path().join("t-0"), small_config()).await.unwrap();
        log.append(produced(1, 0, 2, true), 0).await.unwrap(); // 0..=1, producer 1's transaction
        log.append(produced(-1, -1, 2, false), 0).await.unwrap(); // 2..=3, plain
        log.append(produced(2, 0, 2, true), 0).await.unwrap(); // 4..=5, producer 2's transaction
        assert_eq!((log.high_watermark(), log.last_stable_offset()), (6, 0));
        assert!(stable_batch_ends(&log, 0).await.is_empty(), "nothing is stable before the first open transaction");
        assert_eq!(log.open_transactions(), vec![(0, 1), (4, 2)]);

        // Inside its transaction producer 2 may not write plain batches.
        assert!(matches!(
            log.append(produced(2, 2, 1, false), 0).await,
            Err(EngineError::Sequence { reason: SequenceError::InsideTransaction { first_offset: 4, .. }, .. })
        ));
        let commit = log.append_marker(marker(1, ControlType::Commit), 0).await.unwrap();
        assert_eq!(commit.base_offset, 6);
        assert_eq!(log.last_stable_offset(), 4, "producer 2's transaction still holds it");
        assert_eq!(stable_batch_ends(&log, 0).await, vec![1, 3]);

        log.append(produced(2, 2, 2, true), 0).await.unwrap(); // 7..=8
        let abort = log.append_marker(marker(2, ControlType::Abort), 0).await.unwrap();
        assert_eq!(abort.base_offset, 9);
        assert_eq!(log.last_stable_offset(), 10);
        assert_eq!(log.aborted_transactions(0, 10), vec![aborted(2, 4, 9, 10)]);
        assert_eq!(log.aborted_transactions(0, 4), Vec::new(), "the range ends before the transaction");
        assert_eq!(log.aborted_transactions(10, 20), Vec::new(), "the marker lies before the range");
        assert!(log.open_transactions().is_empty());

        // Markers from an older producer epoch or coordinator, and control batches sent
        // as produce, are refused; none is written.
        log.append(produced(3, 0, 1, true), 0).await.unwrap(); // 10
        log.append_marker(TxnMarker { coordinator_epoch: 5, ..marker(3, ControlType::Commit) }, 0).await.unwrap();
        log.append(produced(3, 1, 1, true), 0).await.unwrap(); // 12
        let end = log.log_end_offset();
        assert!(matches!(
            log.append_marker(TxnMarker { coordinator_epoch: 4, ..marker(3, ControlType::Abort) }, 0).await,
            Err(EngineError::Sequence { reason: SequenceError::CoordinatorFenced { current: 5, .. }, .. })
        ));
        let newer_epoch = TxnMarker { producer_epoch: 1, coordinator_epoch: 5, ..marker(3, ControlType::Abort) };
        log.append_marker(newer_epoch, 0).await.unwrap(); // a fencing abort bumps the epoch
        assert!(matches!(
            log.append_marker(TxnMarker { coordinator_epoch: 5, ..marker(3, ControlType::Abort) }, 0).await,
            Err(EngineError::Sequence { reason: SequenceError::FencedEpoch { current: 1, .. }, .. })
        ));
        assert!(matches!(
            log.append(control_marker(9, 0, 0, ControlType::Commit, NOW), 0).await,
            Err(EngineError::InvalidRecords { .. })
        ));
        assert_eq!(log.log_end_offset(), end + 1);
        assert_eq!(log.aborted_transactions(0, end + 1).last(), Some(&aborted(3, 12, end, end + 1)));
        log.close().await.unwrap();
    });
}

/// Appends `count` transactions of two batches each, producers taking turns, every third
/// aborted; returns the aborted ones.
async fn transactions(log: &PartitionLog, count: usize, sequences: &mut [i32; 3]) -> Vec<AbortedTxn> {
    let mut expected = Vec::new();
    for t in 0..count {
        let producer = (t % 3) as i64;
        let sequence = &mut sequences[t % 3];
        let first = log.append(produced(producer, *sequence, 3, true), 0).await.unwrap().base_offset;
        log.append(produced(producer, *sequence + 3, 3, true), 0).await.unwrap();
        *sequence += 6;
        let control = if t % 3 == 0 { ControlType::Abort } else { ControlType::Commit };
        let end = log.append_marker(marker(producer, control), 0).await.unwrap().base_offset;
        if control == ControlType::Abort {
            expected.push(aborted(producer, first, end, end + 1));
        }
    }
    expected
}

#[test]
fn the_aborted_index_survives_restarts_crashes_and_truncation() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let mut sequences = [0; 3];
    let mut expected = run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        let expected = transactions(&log, 30, &mut sequences).await;
        assert!(log.segment_count() > 5, "rolls wrote closed segments' indexes");
        assert_eq!(log.aborted_transactions(0, log.log_end_offset()), expected);
        log.close().await.unwrap();
        expected
    });
    let txnindex_files = std::fs::read_dir(&path)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "txnindex"));
    assert!(txnindex_files.count() >= 5, "closed segments with aborts have their index files");
    // A clean restart reads the files; then more transactions and a crash (no close),
    // with producer 0's last transaction left open.
    let open_at = run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        assert_eq!(log.aborted_transactions(0, log.log_end_offset()), expected);
        expected.extend(transactions(&log, 7, &mut sequences).await);
        let open_at = log.append(produced(0, sequences[0], 2, true), 0).await.unwrap().base_offset;
        assert_eq!(log.last_stable_offset(), open_at);
        open_at
    });
    run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        let end = log.log_end_offset();
        assert_eq!(log.aborted_transactions(0, end), expected, "rebuilt by the replay after a crash");
        assert_eq!(log.last_stable_offset(), open_at, "the open transaction is open again");
        // Cut the log before the last abort's marker: that transaction is open again and
        // its entry goes, also from the file.
        let last = *expected.last().unwrap();
        log.truncate_to(last.last_offset).await.unwrap();
        assert_eq!(log.aborted_transactions(0, log.log_end_offset()), expected[..expected.len() - 1]);
        assert_eq!(log.last_stable_offset(), last.first_offset);
        log.append_marker(marker(last.producer_id, ControlType::Commit), 0).await.unwrap();
        log.close().await.unwrap();
    });
    expected.pop();
    run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        assert_eq!(log.aborted_transactions(0, log.log_end_offset()), expected);
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        // A read from the middle names only the aborts overlapping it.
        let from = expected[4].last_offset;
        let upper = expected[6].first_offset;
        assert_eq!(log.aborted_transactions(from, upper), expected[4..6]);
        log.close().await.unwrap();
    });
}
