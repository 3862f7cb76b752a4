//! Log compaction (`cleanup.policy=compact`) on real files with O_DIRECT.

mod common;

use bytes::{Bytes, BytesMut};
use common::{read_all, run, temp_dir};
use sluice_engine::batch::{BatchHeader, Compression};
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::compaction::plain_batch;
use sluice_engine::{EngineError, FlushPolicy, LogConfig, PartitionLog};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 32 * 1024,
        index_interval_bytes: 1024,
        tail_cache_bytes: 16 * 1024,
        flush: FlushPolicy::Never,
        compact: true,
        delete: false,
        retention_ms: Some(Duration::from_millis(1)),
        delete_retention: Duration::from_millis(1_000),
        ..LogConfig::default()
    }
}

/// (offset, key, value) of every record of the batches, compressed ones inflated.
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn records_of(batches: &[Bytes]) -> Vec<Rec> {
    let mut out = Vec::new();
    for batch in batches {
        let header = BatchHeader::parse_verified(batch, usize::MAX).expect("valid batch");
        let plain = plain_batch(&header).expect("inflates");
        let plain_header = BatchHeader::parse(&plain, usize::MAX).unwrap();
        for record in plain_header.records().unwrap() {
            let record = record.expect("record parses");
            out.push((
                header.base_offset() + i64::from(record.offset_delta),
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
            ));
        }
    }
    out
}

fn log_files_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".log")))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn segment_bases(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".log").map(str::to_string)))
        .collect();
    names.sort();
    names
}

fn key(k: u64) -> Vec<u8> {
    format!("key-{k:04}").into_bytes()
}

/// Appends 100 000 records over 1 000 keys (record i: key i % 1000, value "v{i}"), in
/// batches of 100, so record i lands at offset i.
async fn fill(log: &PartitionLog) {
    for batch_no in 0..1_000u64 {
        let mut builder = BatchBuilder::new(T0);
        for i in batch_no * 100..(batch_no + 1) * 100 {
            builder.push(Some(&key(i % 1_000)), Some(format!("v{i}").as_bytes()), &[], T0);
        }
        let info = log.append(builder.build(), 0).await.unwrap();
        assert_eq!(info.base_offset, (batch_no * 100) as i64);
    }
    log.flush().await.unwrap();
}

#[test]
fn compaction_keeps_the_newest_record_of_each_key_at_its_offset() {
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        fill(&log).await;
        let segments_before = log.segment_count();
        assert!(segments_before > 40, "many closed segments: {segments_before}");
        let bytes_before = log_files_bytes(&dir);
        let end = log.log_end_offset();
        assert_eq!(end, 100_000);

        let report = log.compact(T0).await.unwrap();
        assert!(!report.skipped);
        assert!(report.segments_rewritten >= segments_before - 2, "{report:?}");
        assert!(report.records_removed > 90_000, "{report:?}");
        assert!(report.bytes_after * 10 < report.bytes_before, "{report:?}");
        let bytes_after = log_files_bytes(&dir);
        assert!(bytes_after * 5 < bytes_before, "disk use {bytes_before} -> {bytes_after}");
        assert!(log.compact(T0).await.unwrap().skipped, "nothing changed since the last pass");
        assert_eq!(log.log_end_offset(), end);

        let batches = read_all(&log, 0).await;
        let records = records_of(&batches);
        let active_base: i64 = segment_bases(&dir).last().unwrap().parse().unwrap();
        let mut seen_closed: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut latest: HashMap<Vec<u8>, (i64, Vec<u8>)> = HashMap::new();
        let mut last_offset = -1;
        for (offset, k, v) in &records {
            assert!(*offset > last_offset, "offsets only grow");
            last_offset = *offset;
            let (k, v) = (k.clone().unwrap(), v.clone().unwrap());
            assert_eq!(v, format!("v{offset}").into_bytes(), "survivors keep their offsets");
            assert_eq!(k, key(*offset as u64 % 1_000));
            if *offset < active_base {
                assert!(seen_closed.insert(k.clone(), *offset).is_none(), "one version per key in closed segments");
            }
            latest.insert(k, (*offset, v));
        }
        // Every record of the active segment is still there.
        let active_records = records.iter().filter(|(o, _, _)| *o >= active_base).count() as i64;
        assert_eq!(active_records, end - active_base);
        assert_eq!(latest.len(), 1_000);
        for k in 0..1_000u64 {
            let offset = 99_000 + k as i64;
            assert_eq!(latest[&key(k)], (offset, format!("v{offset}").into_bytes()), "key {k}");
        }
        // A closed record is kept only if its key has no newer record.
        for (k, offset) in &seen_closed {
            assert_eq!(latest[k].0, *offset);
        }
        // Reads from the middle of compacted ranges find the next survivor.
        let from_middle = log.read(12_345, 1 << 20, sluice_engine::ReadLimit::LogEnd).await.unwrap();
        assert!(!from_middle.batches.is_empty());

        // Appends go on, and the log reopens with the same contents.
        let next = log.append(common::batch(3, 10, 1), 0).await.unwrap();
        assert_eq!(next.base_offset, end);
        let before_close = read_all(&log, 0).await;
        log.close().await.unwrap();
        let (log, report) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        assert!(report.corrupt_segments.is_empty() && report.torn_tail.is_none());
        assert_eq!(read_all(&log, 0).await, before_close);
        assert_eq!(log.log_end_offset(), end + 3);
        log.close().await.unwrap();
    });
}

#[test]
fn compaction_counts_the_active_segment_and_keeps_null_keys() {
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        // Keyless records get into a compacted log only from before the topic became
        // compacted: a compacted log refuses them at append (Kafka's INVALID_RECORD).
        let (log, _) = PartitionLog::open(&dir, LogConfig { compact: false, ..compact_config() }).await.unwrap();
        let mut builder = BatchBuilder::new(T0);
        builder.push(Some(b"a"), Some(b"a1"), &[], T0);
        builder.push(None, Some(b"n1"), &[], T0);
        builder.push(Some(b"b"), Some(b"b1"), &[], T0);
        let keyless = builder.build();
        log.append(keyless.clone(), 0).await.unwrap();
        log.set_config(compact_config()).unwrap();
        match log.append(keyless, 0).await {
            Err(EngineError::InvalidRecords { records, .. }) => {
                assert_eq!(records.iter().map(|(index, _)| *index).collect::<Vec<_>>(), vec![1]);
            }
            other => panic!("a keyless record on a compacted log: {other:?}"),
        }
        log.roll().await.unwrap();
        let mut builder = BatchBuilder::new(T0);
        builder.push(Some(b"a"), Some(b"a2"), &[], T0);
        log.append(builder.build(), 0).await.unwrap();
        log.flush().await.unwrap();
        let report = log.compact(T0).await.unwrap();
        assert_eq!((report.records_removed, report.segments_rewritten), (1, 1));
        let records = records_of(&read_all(&log, 0).await);
        let got: Vec<(i64, Option<&[u8]>)> = records.iter().map(|(o, _, v)| (*o, v.as_deref())).collect();
        assert_eq!(got, vec![(1, Some(&b"n1"[..])), (2, Some(&b"b1"[..])), (3, Some(&b"a2"[..]))]);
        log.close().await.unwrap();
    });
}

#[test]
fn tombstones_go_only_after_delete_retention() {
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        let tombstone_ts = T0 + 500;
        let mut builder = BatchBuilder::new(T0);
        builder.push(Some(b"gone"), Some(b"value"), &[], T0);
        builder.push(Some(b"kept"), Some(b"value"), &[], T0);
        log.append(builder.build(), 0).await.unwrap();
        let mut builder = BatchBuilder::new(tombstone_ts);
        builder.push(Some(b"gone"), None, &[], tombstone_ts);
        log.append(builder.build(), 0).await.unwrap();
        log.roll().await.unwrap();
        log.append(common::batch(1, 10, 9), 0).await.unwrap();
        log.flush().await.unwrap();

        // delete.retention.ms = 1000, counted from the tombstone batch's max timestamp.
        let report = log.compact(tombstone_ts + 999).await.unwrap();
        assert_eq!((report.records_removed, report.tombstones_removed), (1, 0));
        let keyed = |records: Vec<Rec>| -> BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)> {
            records.into_iter().filter_map(|(o, k, v)| Some((o, (k?, v)))).filter(|(o, _)| *o < 3).collect()
        };
        let got = keyed(records_of(&read_all(&log, 0).await));
        assert_eq!(got.len(), 2);
        assert_eq!(got[&1], (b"kept".to_vec(), Some(b"value".to_vec())));
        assert_eq!(got[&2], (b"gone".to_vec(), None), "the tombstone is still there");
        assert!(log.compact(tombstone_ts + 999).await.unwrap().skipped);

        let report = log.compact(tombstone_ts + 1_000).await.unwrap();
        assert!(!report.skipped, "a kept tombstone expiring triggers a pass");
        assert_eq!((report.records_removed, report.tombstones_removed), (1, 1));
        let got = keyed(records_of(&read_all(&log, 0).await));
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![1]);
        log.close().await.unwrap();
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        let got = keyed(records_of(&read_all(&log, 0).await));
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![1]);
        log.close().await.unwrap();
    });
}

#[test]
fn an_interrupted_swap_recovers_to_a_consistent_log() {
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        fill(&log).await;
        let original = read_all(&log, 0).await;
        log.close().await.unwrap();
        let bases = segment_bases(&dir);
        let first = dir.join(format!("{}.log", bases[0]));

        // Crash before the commit: a partly written `.cleaned` file, old index files gone.
        let mut partial = std::fs::read(&first).unwrap();
        partial.truncate(partial.len() / 3);
        std::fs::write(dir.join(format!("{}.log.cleaned", bases[0])), &partial).unwrap();
        std::fs::remove_file(dir.join(format!("{}.index", bases[0]))).unwrap();
        std::fs::remove_file(dir.join(format!("{}.timeindex", bases[0]))).unwrap();
        let (log, report) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        assert!(report.corrupt_segments.is_empty());
        assert!(!dir.join(format!("{}.log.cleaned", bases[0])).exists(), "uncommitted output is removed");
        assert!(dir.join(format!("{}.index", bases[0])).exists(), "the old segment's index is rebuilt");
        assert_eq!(read_all(&log, 0).await, original);

        // Crash after the commit, before the new index files: they are rebuilt.
        log.compact(T0).await.unwrap();
        let compacted = read_all(&log, 0).await;
        log.close().await.unwrap();
        for base in segment_bases(&dir) {
            let _ = std::fs::remove_file(dir.join(format!("{base}.index")));
            let _ = std::fs::remove_file(dir.join(format!("{base}.timeindex")));
        }
        let (log, report) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        assert!(report.corrupt_segments.is_empty());
        assert_eq!(read_all(&log, 0).await, compacted);
        assert!(log.compact(T0).await.unwrap().records_removed == 0, "nothing left to remove");
        log.close().await.unwrap();
    });
}

fn encoded(codec: kafka_protocol::records::Compression, records: &[(&str, &str)]) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch where sequences are not consecutive.
            sequence: i as i32,
            timestamp: T0,
            key: Some(Bytes::from(k.to_string())),
            value: Some(Bytes::from(v.repeat(50))),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression: codec }).unwrap();
    out.freeze()
}

#[test]
fn compressed_batches_are_compacted_by_their_keys() {
    use kafka_protocol::records::Compression as Codec;
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        let old: Vec<(&str, &str)> = vec![("k0", "old"), ("k1", "old"), ("k2", "old"), ("k3", "old")];
        log.append(encoded(Codec::Gzip, &old), 0).await.unwrap();
        log.append(encoded(Codec::Snappy, &[("k0", "new"), ("k2", "new")]), 0).await.unwrap();
        log.roll().await.unwrap();
        log.append(encoded(Codec::Zstd, &[("k3", "newest")]), 0).await.unwrap();
        log.flush().await.unwrap();

        let report = log.compact(T0).await.unwrap();
        assert_eq!(report.records_removed, 3);
        let batches = read_all(&log, 0).await;
        let compressions: Vec<Compression> =
            batches.iter().map(|b| BatchHeader::parse_verified(b, usize::MAX).unwrap().compression()).collect();
        // The filtered gzip batch is written back plain; the untouched ones stay as sent.
        assert_eq!(compressions, vec![Compression::None, Compression::Snappy, Compression::Zstd]);
        let first = BatchHeader::parse_verified(&batches[0], usize::MAX).unwrap();
        assert_eq!((first.base_offset(), first.last_offset(), first.record_count()), (0, 3, 1));
        let got: Vec<(i64, String)> = records_of(&batches)
            .into_iter()
            .map(|(o, k, v)| (o, format!("{}={}", String::from_utf8(k.unwrap()).unwrap(), v.unwrap().len())))
            .collect();
        assert_eq!(got, vec![(1, "k1=150".into()), (4, "k0=150".into()), (5, "k2=150".into()), (6, "k3=300".into())]);
        log.close().await.unwrap();
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        assert_eq!(read_all(&log, 0).await, batches);
        log.close().await.unwrap();
    });
}

#[test]
fn compact_only_logs_are_not_touched_by_retention_and_delete_only_logs_not_compacted() {
    run(async {
        let tmp = temp_dir();
        let (log, _) = PartitionLog::open(&tmp.path().join("t-0"), compact_config()).await.unwrap();
        for seed in 0..40 {
            log.append(common::batch(10, 200, seed), 0).await.unwrap();
        }
        log.flush().await.unwrap();
        let segments = log.segment_count();
        assert!(segments > 1);
        let far_future = i64::MAX / 2;
        assert_eq!(log.apply_retention(far_future).await.unwrap().segments_deleted, 0);
        assert_eq!(log.segment_count(), segments);

        log.set_config(LogConfig { compact: false, delete: true, ..compact_config() }).unwrap();
        assert!(log.compact(T0).await.unwrap().skipped);
        assert!(log.apply_retention(far_future).await.unwrap().segments_deleted > 0);
        log.close().await.unwrap();
    });
}

#[test]
fn appends_and_reads_go_on_while_a_pass_runs() {
    run(async {
        let tmp = temp_dir();
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(&dir, compact_config()).await.unwrap();
        fill(&log).await;
        let appends = async {
            for i in 0..200u64 {
                let mut builder = BatchBuilder::new(T0);
                builder.push(Some(&key(i % 1_000)), Some(format!("v{}", 100_000 + i).as_bytes()), &[], T0);
                let info = log.append(builder.build(), 0).await.unwrap();
                assert_eq!(info.base_offset, (100_000 + i) as i64);
                if i % 50 == 0 {
                    // Reads in the middle of the pass walk cleanly too.
                    assert!(!read_all(&log, 0).await.is_empty());
                }
            }
        };
        let (report, ()) = futures::join!(log.compact(T0), appends);
        assert!(report.unwrap().records_removed > 90_000);
        log.flush().await.unwrap();
        let records = records_of(&read_all(&log, 0).await);
        for (offset, k, v) in &records {
            assert_eq!(v.as_deref(), Some(format!("v{offset}").as_bytes()));
            assert_eq!(k.as_deref(), Some(&key(*offset as u64 % 1_000)[..]));
        }
        // Every key's newest record is there.
        let newest: HashMap<Vec<u8>, i64> = records.iter().map(|(o, k, _)| (k.clone().unwrap(), *o)).collect();
        for k in 0..1_000u64 {
            let expected = if k < 200 { 100_000 + k as i64 } else { 99_000 + k as i64 };
            assert_eq!(newest[&key(k)], expected, "key {k}");
        }
        log.close().await.unwrap();
    });
}

#[test]
fn shard_compacts_only_its_compacted_logs_and_skips_unchanged_ones() {
    run(async {
        let tmp = temp_dir();
        let shard = sluice_engine::shard::Shard::new(0, tmp.path());
        let (compacted, _) = shard.open_partition("c-0", compact_config()).await.unwrap();
        let plain = LogConfig { compact: false, delete: true, ..compact_config() };
        let (deleted, _) = shard.open_partition("d-0", plain).await.unwrap();
        for log in [&compacted, &deleted] {
            for _ in 0..3 {
                let mut builder = BatchBuilder::new(T0);
                builder.push(Some(b"k"), Some(b"v"), &[], T0);
                log.append(builder.build(), 0).await.unwrap();
                log.roll().await.unwrap();
            }
        }
        let reports = shard.compact_all().await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].0, "c-0");
        assert_eq!(reports[0].1.records_removed, 2);
        assert!(shard.compact_all().await.is_empty(), "unchanged logs are skipped");
        shard.close_all().await.unwrap();
    });
}

/// One keyed record as producer `id`'s transactional batch (sequence `sequence`).
fn transactional(id: i64, sequence: i32, key: &[u8], value: &[u8]) -> Bytes {
    let mut builder = BatchBuilder::new(T0).producer(id, 0, sequence).transactional();
    builder.push(Some(key), Some(value), &[], T0);
    builder.build()
}

fn keyed(key: &[u8], value: &[u8]) -> Bytes {
    let mut builder = BatchBuilder::new(T0);
    builder.push(Some(key), Some(value), &[], T0);
    builder.build()
}

#[test]
fn aborted_writes_never_shadow_committed_values_and_open_transactions_are_not_compacted() {
    use sluice_engine::batch::ControlType;
    use sluice_engine::TxnMarker;
    let marker = |producer_id, control| TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, control };
    let dir = temp_dir();
    run(async {
        let (log, _) = PartitionLog::open(&dir.path().join("txn-0"), compact_config()).await.unwrap();
        log.append(keyed(b"k", b"committed"), 0).await.unwrap(); // 0
        log.append(transactional(7, 0, b"k", b"aborted"), 0).await.unwrap(); // 1
        log.append_marker(marker(7, ControlType::Abort), 0).await.unwrap(); // 2
        log.append(transactional(8, 0, b"j", b"committed in a transaction"), 0).await.unwrap(); // 3
        log.append(transactional(8, 1, b"j", b"newer, same transaction"), 0).await.unwrap(); // 4
        log.append_marker(marker(8, ControlType::Commit), 0).await.unwrap(); // 5
        log.roll().await.unwrap();
        log.append(transactional(9, 0, b"j", b"still open"), 0).await.unwrap(); // 6
        log.roll().await.unwrap();
        log.append(keyed(b"other", b"x"), 0).await.unwrap(); // 7
        log.roll().await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(log.last_stable_offset(), 6);

        let report = log.compact(T0).await.unwrap();
        assert_eq!(report.records_removed, 2, "the aborted record and the older value of j: {report:?}");
        let records = records_of(&read_all(&log, 0).await);
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        // 0 stays (the aborted write at 1 does not count as newer), 3 goes (4 is newer and
        // committed), the markers (2, 5) stay, and the open transaction (6) is not judged:
        // j's committed value at 4 stays although 6 is newer.
        assert_eq!(offsets, vec![0, 2, 4, 5, 6, 7], "{records:?}");
        assert_eq!(records[0].2.as_deref(), Some(&b"committed"[..]));
        assert_eq!(log.aborted_transactions(0, 8).len(), 1, "the aborted-transaction index still names it");

        // Once the open transaction commits, its record is the newest of j.
        log.append_marker(marker(9, ControlType::Commit), 0).await.unwrap(); // 8
        log.roll().await.unwrap();
        log.append(keyed(b"other", b"y"), 0).await.unwrap(); // 9
        log.roll().await.unwrap();
        log.flush().await.unwrap();
        log.compact(T0).await.unwrap();
        let offsets: Vec<i64> = records_of(&read_all(&log, 0).await).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![0, 2, 5, 6, 8, 9]);
        assert_eq!(control_offsets(&read_all(&log, 0).await), vec![2, 5, 8]);

        // Markers go once their transaction has no data left and delete.retention.ms (1 s
        // here) has passed since they were written: producer 7's abort (its data was
        // aborted) and producer 8's commit (its data was superseded by producer 9's);
        // producer 9's commit stays with its record.
        let wall_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let report = log.compact(wall_now + 60_000).await.unwrap();
        assert_eq!(report.markers_removed, 2, "{report:?}");
        assert_eq!(control_offsets(&read_all(&log, 0).await), vec![8]);
        let offsets: Vec<i64> = records_of(&read_all(&log, 0).await).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![0, 6, 8, 9]);
        // The segment that held both markers emptied and went, with its aborted index: no
        // entry is left to name data that is gone.
        assert!(log.aborted_transactions(0, 10).is_empty());
    });
}

/// Offsets of the control batches (markers) among `batches`.
fn control_offsets(batches: &[Bytes]) -> Vec<i64> {
    batches
        .iter()
        .map(|b| BatchHeader::parse(b, usize::MAX).unwrap())
        .filter(|h| h.is_control())
        .map(|h| h.base_offset())
        .collect()
}
