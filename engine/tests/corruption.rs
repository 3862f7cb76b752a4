//! Recovery from torn tails and detection of corruption in closed segments, on real files.

mod common;

use common::{batch, payload, read_all, run, temp_dir};
use rand::{Rng, SeedableRng};
use sluice_engine::batch::{BatchError, BatchHeader};
use sluice_engine::{EngineError, LogConfig, PartitionLog, ReadLimit};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const BATCHES: u64 = 60;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 32 * 1024, index_interval_bytes: 2048, tail_cache_bytes: 0, ..LogConfig::default() }
}

/// Writes `BATCHES` batches of ~1.5 KiB and closes the log; returns what was appended.
fn populate(path: &Path) -> Vec<bytes::Bytes> {
    run(async {
        let (log, _) = PartitionLog::open(path, config()).await.unwrap();
        let mut sent = Vec::new();
        for i in 0..BATCHES {
            let b = batch(3, 500, i);
            log.append(b.clone(), 0).await.unwrap();
            sent.push(b);
        }
        log.close().await.unwrap();
        sent
    })
}

fn segment_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Start positions of the batches in a segment file.
fn batch_positions(file: &Path) -> Vec<u64> {
    let bytes = std::fs::read(file).unwrap();
    let mut positions = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        positions.push(at as u64);
        at += BatchHeader::parse(&bytes[at..], usize::MAX).unwrap().size();
    }
    positions
}

/// Reopens after damage to the active segment's tail; checks the log ends at the last
/// whole batch before `surviving` batches, all byte-identical, and accepts appends.
fn assert_recovers_to(
    path: &Path,
    sent: &[bytes::Bytes],
    surviving: usize,
    expect_reason: impl Fn(&BatchError) -> bool,
) {
    run(async {
        let (log, report) = PartitionLog::open(path, config()).await.unwrap();
        let torn = report.torn_tail.expect("the damage is reported");
        assert!(expect_reason(&torn.reason), "unexpected reason {:?}", torn.reason);
        let got = read_all(&log, 0).await;
        assert_eq!(got.len(), surviving);
        for (g, s) in got.iter().zip(sent) {
            assert_eq!(payload(g), payload(s));
        }
        let end = log.log_end_offset();
        assert_eq!(log.append(batch(1, 10, 777), 0).await.unwrap().base_offset, end);
        log.close().await.unwrap();
    });
    // And the repair is durable: a second open finds nothing to cut.
    run(async {
        let (log, report) = PartitionLog::open(path, config()).await.unwrap();
        assert!(report.torn_tail.is_none());
        assert_eq!(read_all(&log, 0).await.len(), surviving + 1);
    });
}

#[test]
fn a_tail_truncated_mid_batch_recovers_to_the_last_whole_batch() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let active = segment_files(&path).pop().unwrap();
    let positions = batch_positions(&active);
    let last = *positions.last().unwrap();
    let file = OpenOptions::new().write(true).open(&active).unwrap();
    file.set_len(last + 100).unwrap();
    assert_recovers_to(&path, &sent, sent.len() - 1, |r| matches!(r, BatchError::Truncated { .. }));
}

#[test]
fn a_zero_filled_tail_is_cut_without_losing_data() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let active = segment_files(&path).pop().unwrap();
    let mut file = OpenOptions::new().append(true).open(&active).unwrap();
    file.write_all(&vec![0u8; 10_000]).unwrap();
    assert_recovers_to(&path, &sent, sent.len(), |r| *r == BatchError::Zeroed);
}

#[test]
fn a_garbage_tail_is_cut_without_losing_data() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let active = segment_files(&path).pop().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let garbage: Vec<u8> = (0..5000).map(|_| rng.gen()).collect();
    OpenOptions::new().append(true).open(&active).unwrap().write_all(&garbage).unwrap();
    assert_recovers_to(&path, &sent, sent.len(), |_| true);
}

#[test]
fn a_damaged_last_batch_is_cut_by_its_crc() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let active = segment_files(&path).pop().unwrap();
    let last = *batch_positions(&active).last().unwrap();
    flip_byte(&active, last + 200);
    assert_recovers_to(&path, &sent, sent.len() - 1, |r| matches!(r, BatchError::CrcMismatch { .. }));
}

fn flip_byte(file: &Path, position: u64) {
    let mut f = OpenOptions::new().read(true).write(true).open(file).unwrap();
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(position)).unwrap();
    std::io::Read::read_exact(&mut f, &mut byte).unwrap();
    f.seek(SeekFrom::Start(position)).unwrap();
    f.write_all(&[byte[0] ^ 0x10]).unwrap();
    f.sync_all().unwrap();
}

/// Flips a byte at `offset_in_batch` of the 3rd batch of the first (closed) segment and
/// checks the error names that file and batch position, while everything before it and
/// every later segment stays readable.
fn closed_segment_corruption_is_reported(offset_in_batch: u64) {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let files = segment_files(&path);
    assert!(files.len() >= 3, "need closed segments");
    let closed = &files[0];
    let positions = batch_positions(closed);
    let bad = positions[2];
    flip_byte(closed, bad + offset_in_batch);
    run(async {
        let (log, _) =
            PartitionLog::open(&path, config()).await.expect("opening never fails on a corrupt closed segment");
        // Batches 0 and 1 (offsets 0..=5) read fine.
        let read = log.read(0, 1 << 20, ReadLimit::HighWatermark).await.unwrap();
        assert!(read.batches.len() >= 2);
        assert_eq!(payload(&read.batches[1]), payload(&sent[1]));
        // Reading the damaged batch reports file and position.
        match log.read(6, 1 << 20, ReadLimit::HighWatermark).await {
            Err(EngineError::Corrupt { file, position, .. }) => {
                assert_eq!(&file, closed);
                assert_eq!(position, bad);
                let message = EngineError::Corrupt { file, position, reason: BatchError::Zeroed }.to_string();
                assert!(message.contains(&closed.display().to_string()) && message.contains(&format!("byte {bad}")));
            }
            other => panic!("expected a corruption error, got {other:?}"),
        }
        // Later segments are unaffected.
        let second_base: i64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let read = log.read(second_base, 1 << 20, ReadLimit::HighWatermark).await.unwrap();
        assert!(!read.batches.is_empty());
        assert_eq!(BatchHeader::parse_verified(&read.batches[0], usize::MAX).unwrap().base_offset(), second_base);
    });
}

#[test]
fn a_flipped_record_byte_in_a_closed_segment_gives_file_and_position() {
    closed_segment_corruption_is_reported(300);
}

#[test]
fn a_flipped_length_byte_in_a_closed_segment_gives_file_and_position() {
    closed_segment_corruption_is_reported(9);
}

#[test]
fn missing_or_garbage_index_files_are_rebuilt() {
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let files = segment_files(&path);
    std::fs::remove_file(files[0].with_extension("index")).unwrap();
    std::fs::write(files[1].with_extension("index"), b"definitely not an index").unwrap();
    std::fs::write(files[1].with_extension("timeindex"), vec![0xffu8; 24]).unwrap();
    run(async {
        let (log, report) = PartitionLog::open(&path, config()).await.unwrap();
        assert!(report.corrupt_segments.is_empty());
        let got = read_all(&log, 0).await;
        assert_eq!(got.len(), sent.len());
        for from in [0, 7, 40, 100, 170] {
            let read = log.read(from, 1, ReadLimit::HighWatermark).await.unwrap();
            let header = BatchHeader::parse(&read.batches[0], usize::MAX).unwrap();
            assert!(header.base_offset() <= from && from <= header.last_offset());
        }
        assert_eq!(log.offset_for_timestamp(1_700_000_000_030).await.unwrap().map(|(o, _)| o), Some(90));
    });
    assert!(files[0].with_extension("index").exists(), "rebuilt index is written back");
}

#[test]
fn a_stored_batch_with_an_impossible_offset_is_cut_not_a_panic() {
    // Found by the segment_recovery fuzz target. The base offset lies outside the CRC, so
    // a batch with a rewritten one still passes the CRC check.
    let dir = temp_dir();
    let path = dir.path().join("t-0");
    let sent = populate(&path);
    let active = segment_files(&path).pop().unwrap();
    let last = *batch_positions(&active).last().unwrap();
    let mut f = OpenOptions::new().write(true).open(&active).unwrap();
    f.seek(SeekFrom::Start(last)).unwrap();
    f.write_all(&(1i64 << 40).to_be_bytes()).unwrap();
    f.sync_all().unwrap();
    assert_recovers_to(&path, &sent, sent.len() - 1, |r| matches!(r, BatchError::OffsetOutsideSegment { .. }));
}
