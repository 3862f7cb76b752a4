//! Idempotent producers: retried batches are answered with their original offsets and not
//! written twice, sequence gaps and old epochs are refused, and the state survives a
//! clean restart, an unclean one (rebuilt from a snapshot plus the log) and truncation.

mod common;

use bytes::Bytes;
use common::{read_all, run, small_config, temp_dir};
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::producer_state::SequenceError;
use sluice_engine::{EngineError, PartitionLog};

/// A batch of `records` records from producer `id`, epoch `epoch`, first sequence `sequence`.
fn produced(id: i64, epoch: i16, sequence: i32, records: usize) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000).producer(id, epoch, sequence);
    for i in 0..records {
        builder.push(Some(&(i as u32).to_be_bytes()), Some(&[7u8; 700]), &[], 1_700_000_000_000);
    }
    builder.build()
}

#[test]
fn retries_are_deduplicated_across_restarts_and_truncation() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        let mut sequence = 0;
        for _ in 0..40 {
            log.append(produced(7, 0, sequence, 2), 0).await.unwrap();
            sequence += 2;
        }
        assert!(log.segment_count() > 2, "rolls wrote snapshots");
        let end = log.log_end_offset();
        // The last batch, retried: same offsets, nothing written.
        let retry = log.append(produced(7, 0, sequence - 2, 2), 0).await.unwrap();
        assert_eq!((retry.base_offset, retry.last_offset), (end - 2, end - 1));
        assert_eq!(log.log_end_offset(), end);
        // A gap and an older epoch are refused; nothing is written.
        assert!(matches!(
            log.append(produced(7, 0, sequence + 5, 1), 0).await,
            Err(EngineError::Sequence { reason: SequenceError::OutOfOrder { .. }, .. })
        ));
        assert!(matches!(
            log.append(produced(7, -1, sequence, 1), 0).await,
            Err(EngineError::Sequence { reason: SequenceError::FencedEpoch { .. }, .. })
        ));
        assert_eq!(log.log_end_offset(), end);
        log.close().await.unwrap();
    });
    run(async {
        // Clean restart: the snapshot written at close has the state.
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        let end = log.log_end_offset();
        let retry = log.append(produced(7, 0, 76, 2), 0).await.unwrap();
        assert_eq!(retry.base_offset, end - 4, "an older batch among the last five is still known");
        log.append(produced(7, 0, 80, 2), 0).await.unwrap();
        // No close: the next open finds a snapshot older than the log end.
    });
    // Rebuilt from the last snapshot plus the batches after it.
    run(async {
        let (log, _) = PartitionLog::open(&path, small_config()).await.unwrap();
        let end = log.log_end_offset();
        let retry = log.append(produced(7, 0, 80, 2), 0).await.unwrap();
        assert_eq!((retry.base_offset, log.log_end_offset()), (end - 2, end), "the last batch is known after replay");
        // Truncating the last two batches: their sequences may be sent again.
        log.truncate_to(end - 4).await.unwrap();
        let again = log.append(produced(7, 0, 78, 2), 0).await.unwrap();
        assert_eq!(again.base_offset, end - 4, "a truncated batch is appended anew, not a duplicate");
        assert_eq!(read_all(&log, 0).await.len() as i64, (end - 2) / 2);
        log.close().await.unwrap();
    });
}
