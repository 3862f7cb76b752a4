//! Crash test with real processes: a child appends with an fsync per append and prints
//! every acknowledged batch; it is SIGKILLed at random moments. After each kill the log
//! reopens with every acknowledged batch present and byte-identical, no partial batch
//! readable, offsets contiguous, and the next run appends at the right offset.

mod common;

use common::{payload, read_all, run, temp_dir};
use rand::{Rng, SeedableRng};
use sluice_engine::batch::BatchHeader;
use sluice_engine::batch_builder::synthetic_batch;
use sluice_engine::{LogConfig, PartitionLog};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KILLS: u64 = 24;

/// Mirrors `batch_shape` in src/bin/crash_appender.rs.
fn batch_shape(seed: u64) -> (usize, usize) {
    (1 + (seed % 7) as usize, (seed % 13) as usize * 150)
}

#[test]
fn every_acknowledged_batch_survives_sigkill() {
    let dir = temp_dir();
    let path = dir.path().join("crash-0");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acked: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    let mut total_acks = 0usize;
    for kill in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_appender"))
            .arg(&path)
            .arg(kill.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().unwrap();
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_tx.send(line.clone());
            }
        });
        // Most runs are killed while appending; every fourth may die during recovery.
        let mut lines = Vec::new();
        if kill % 4 != 3 {
            let first = line_rx.recv_timeout(Duration::from_secs(60)).expect("child recovers");
            assert!(first.starts_with("recovered "), "{first}");
            lines.push(first);
            std::thread::sleep(Duration::from_millis(rng.gen_range(20..200)));
        } else {
            std::thread::sleep(Duration::from_millis(rng.gen_range(1..40)));
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(line_rx.try_iter());
        let mut lines = lines.into_iter().peekable();
        let recovered = match lines.peek() {
            Some(first) if first.starts_with("recovered ") => lines.next().unwrap()[10..].parse::<i64>().unwrap(),
            _ => i64::MAX, // killed during recovery
        };
        let expected_end = acked.values().map(|(last, _)| last + 1).max().unwrap_or(0);
        assert!(
            recovered == i64::MAX || recovered >= expected_end,
            "run {kill}: recovered end {recovered} lost acknowledged data ending at {expected_end}"
        );
        let mut lowest_base = None;
        for line in lines {
            let fields: Vec<i64> = line.strip_prefix("ack ").unwrap().split(' ').map(|f| f.parse().unwrap()).collect();
            lowest_base = Some(lowest_base.unwrap_or(i64::MAX).min(fields[0]));
            acked.insert(fields[0], (fields[1], fields[2] as u64));
            total_acks += 1;
        }
        if let Some(base) = lowest_base {
            assert_eq!(base, recovered, "run {kill}: appends continue exactly at the recovered end");
        }
        verify(&path, &acked);
    }
    assert!(total_acks > 200, "the children made real progress: {total_acks} acks");
}

fn verify(path: &std::path::Path, acked: &BTreeMap<i64, (i64, u64)>) {
    let config = LogConfig { segment_bytes: 64 * 1024, ..LogConfig::default() };
    run(async {
        let started = Instant::now();
        let (log, _) = PartitionLog::open(path, config).await.expect("recovery succeeds");
        let batches = read_all(&log, 0).await; // checks every CRC
        let mut next = 0;
        let mut by_base = BTreeMap::new();
        for batch in &batches {
            let header = BatchHeader::parse_verified(batch, usize::MAX).unwrap();
            assert_eq!(header.base_offset(), next, "offsets are contiguous");
            next = header.last_offset() + 1;
            by_base.insert(header.base_offset(), batch.clone());
        }
        for (base, (last, seed)) in acked {
            let stored = by_base.get(base).unwrap_or_else(|| panic!("acknowledged batch at {base} is gone"));
            let (records, value_bytes) = batch_shape(*seed);
            let sent = synthetic_batch(records, value_bytes, *seed, *seed as i64);
            assert_eq!(payload(stored), payload(&sent), "batch at {base} is byte-identical");
            assert_eq!(BatchHeader::parse(stored, usize::MAX).unwrap().last_offset(), *last);
        }
        log.close().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(60));
    });
}
