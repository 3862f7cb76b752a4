//! Storage benchmark: the engine alone (no network), appending 1 KiB records in ~64 KiB
//! batches to 1, 6 and 64 partitions on one shard and on all shards, under three flush
//! policies, compared in the same run with the raw O_DIRECT bandwidth of the same disk.

use crate::raw_disk::{self, RawResult};
use bytes::Bytes;
use hdrhistogram::Histogram;
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::shard::{run_shards, RuntimeConfig, Shard};
use sluice_engine::{FlushPolicy, LogConfig, Result};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// When the benchmarked logs fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushChoice {
    /// fsync covering every batch before it is acknowledged (group-committed).
    EveryBatch,
    /// fsync once 1 MiB is unflushed.
    EveryMiB,
    /// No fsync while appending.
    Never,
}

impl FlushChoice {
    fn policy(self) -> FlushPolicy {
        match self {
            FlushChoice::EveryBatch => FlushPolicy::EveryAppend,
            FlushChoice::EveryMiB => FlushPolicy::Bytes(1 << 20),
            FlushChoice::Never => FlushPolicy::Never,
        }
    }
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            FlushChoice::EveryBatch => "every batch",
            FlushChoice::EveryMiB => "every 1 MiB",
            FlushChoice::Never => "never",
        }
    }
}

/// Settings of the storage benchmark.
#[derive(Debug, Clone)]
pub struct StorageBenchConfig {
    /// Where the logs and the raw-disk file go (emptied per case).
    pub data_dir: PathBuf,
    /// Measured time per case.
    pub duration: Duration,
    /// Partition counts to run.
    pub partitions: Vec<usize>,
    /// Shard counts to run.
    pub shards: Vec<usize>,
    /// Flush policies to run.
    pub flushes: Vec<FlushChoice>,
    /// Bytes of each record's value.
    pub record_bytes: usize,
    /// Records per batch.
    pub batch_records: usize,
    /// Appends each partition keeps in flight (like a producer's in-flight requests).
    pub in_flight_per_partition: usize,
    /// Cap on bytes written per case, so a fast disk does not fill up.
    pub bytes_per_case_max: u64,
}

impl Default for StorageBenchConfig {
    fn default() -> Self {
        StorageBenchConfig {
            data_dir: PathBuf::from("bench-data"),
            duration: Duration::from_secs(3),
            partitions: vec![1, 6, 64],
            shards: vec![1, RuntimeConfig::default().shards],
            flushes: vec![FlushChoice::EveryBatch, FlushChoice::EveryMiB, FlushChoice::Never],
            record_bytes: 1024,
            batch_records: 64,
            in_flight_per_partition: 4,
            bytes_per_case_max: 2 << 30,
        }
    }
}

/// Figures of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Partitions appended to.
    pub partitions: usize,
    /// Shards they were spread over.
    pub shards: usize,
    /// Flush policy.
    pub flush: FlushChoice,
    /// Bytes appended (whole batches).
    pub bytes: u64,
    /// Records appended.
    pub records: u64,
    /// Longest shard's measured time.
    pub elapsed: Duration,
    /// Append latency in microseconds, call to return (to durability for `EveryBatch`).
    pub latency_us: Histogram<u64>,
    /// Raw O_DIRECT bandwidth measured just before this case (the disk's speed drifts by
    /// tens of percent over minutes on shared machines, so each case has its own yardstick).
    pub raw_adjacent: RawResult,
}

impl CaseResult {
    /// MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
    /// Records per second.
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    /// Throughput as a fraction of the raw bandwidth measured just before.
    pub fn ratio_to_raw(&self) -> f64 {
        self.mb_per_s() / self.raw_adjacent.mb_per_s()
    }
}

/// The whole run: the raw yardstick and every case.
#[derive(Debug, Clone)]
pub struct StorageReport {
    /// Raw O_DIRECT writes at queue depths 8 and 32, and at depth 8 with an fsync per MiB.
    pub raw: Vec<RawResult>,
    /// One entry per case.
    pub cases: Vec<CaseResult>,
    /// The settings used.
    pub config: StorageBenchConfig,
    /// Size of each appended batch, header included.
    pub batch_bytes: usize,
}

impl StorageReport {}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Builds the batch every append copies: `batch_records` records of `record_bytes`.
fn template_batch(config: &StorageBenchConfig) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    let value = vec![0x5au8; config.record_bytes];
    for i in 0..config.batch_records {
        builder.push(Some(&(i as u64).to_be_bytes()), Some(&value), &[], 1_700_000_000_000);
    }
    builder.build()
}

/// Runs the raw measurement and then every case, one after another, printing each line as
/// it completes (progress for a run of a few minutes).
pub fn run_suite(config: &StorageBenchConfig, mut progress: impl FnMut(&str)) -> Result<StorageReport> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| sluice_engine::EngineError::io("create directory", &config.data_dir, e))?;
    let mut raw = Vec::new();
    for (queue_depth, fsync_every_bytes) in [(8, None), (32, None), (8, Some(1 << 20))] {
        let result = measure_raw(config, queue_depth, fsync_every_bytes)?;
        progress(&format!(
            "raw O_DIRECT, 1 MiB writes, depth {queue_depth}, fsync {}: {:.0} MB/s",
            fsync_label(fsync_every_bytes),
            result.mb_per_s()
        ));
        raw.push(result);
    }
    let mut cases = Vec::new();
    for &shards in &config.shards {
        for &partitions in &config.partitions {
            for &flush in &config.flushes {
                let raw_adjacent = measure_raw(config, ADJACENT_RAW_QUEUE_DEPTH, None)?;
                let case = run_case(config, partitions, shards, flush, raw_adjacent)?;
                progress(&format!(
                    "{partitions:>3} partitions, {shards} shard(s), flush {:<11}: {:>7.0} MB/s, p99 {} us, {:.0}% of raw ({:.0} MB/s)",
                    flush.label(),
                    case.mb_per_s(),
                    case.latency_us.value_at_quantile(0.99),
                    100.0 * case.ratio_to_raw(),
                    raw_adjacent.mb_per_s()
                ));
                cases.push(case);
            }
        }
    }
    Ok(StorageReport { raw, cases, config: config.clone(), batch_bytes: template_batch(config).len() })
}

/// How a raw run fsynced, for tables.
pub fn fsync_label(fsync_every_bytes: Option<u64>) -> String {
    match fsync_every_bytes {
        None => "at the end".to_string(),
        Some(bytes) => format!("every {} KiB", bytes >> 10),
    }
}

fn measure_raw(config: &StorageBenchConfig, queue_depth: usize, fsync_every_bytes: Option<u64>) -> Result<RawResult> {
    let runtime = RuntimeConfig { shards: 1, ..RuntimeConfig::default() };
    let dir = config.data_dir.clone();
    // A fresh, pre-allocated file like a new segment's; bounded because large fallocates
    // on thin-provisioned disks fail with ENOSPC while earlier deletes are still being
    // discarded. At this disk's speed the bound ends a run after about 0.7 s.
    let bytes_max = config.bytes_per_case_max.min(RAW_BYTES_MAX);
    let duration = config.duration;
    let mut results = run_shards(&runtime, &config.data_dir, move |_| {
        let dir = dir.clone();
        async move { raw_disk::measure(&dir, duration, bytes_max, queue_depth, fsync_every_bytes).await }
    })?;
    Ok(results.remove(0))
}

/// Pause after each case, see [`run_case`].
const PAUSE_BETWEEN_CASES: Duration = Duration::from_secs(5);

/// Bytes written by one raw measurement at most.
const RAW_BYTES_MAX: u64 = 1 << 30;

/// Queue depth of the raw measurement taken before each case.
const ADJACENT_RAW_QUEUE_DEPTH: usize = 32;

/// One case: `partitions` logs spread round-robin over `shards` shards, each partition with
/// `in_flight_per_partition` tasks appending copies of the template batch for `duration`.
pub fn run_case(
    config: &StorageBenchConfig,
    partitions: usize,
    shards: usize,
    flush: FlushChoice,
    raw_adjacent: RawResult,
) -> Result<CaseResult> {
    let case_dir = config.data_dir.join(format!("case-{partitions}p-{shards}s"));
    let _ = std::fs::remove_dir_all(&case_dir);
    let runtime = RuntimeConfig { shards, ..RuntimeConfig::default() };
    let template = template_batch(config);
    let log_config = LogConfig { flush: flush.policy(), retention_ms: None, segment_ms: None, ..LogConfig::default() };
    let in_flight = config.in_flight_per_partition;
    let duration = config.duration;
    // Each shard stops writing at its share of the byte cap.
    let bytes_per_shard_max = config.bytes_per_case_max / shards as u64;
    let records_per_batch = config.batch_records as u64;
    let dir = case_dir.clone();
    let per_shard = run_shards(&runtime, &case_dir, move |shard_id| {
        let (dir, template, log_config) = (dir.clone(), template.clone(), log_config.clone());
        async move {
            let shard = Shard::new(shard_id, &dir);
            for partition in (shard_id..partitions).step_by(shards) {
                shard.open_partition(&format!("bench-{partition}"), log_config.clone()).await?;
            }
            let started = Instant::now();
            let deadline = started + duration;
            let budget = Rc::new(std::cell::Cell::new(bytes_per_shard_max));
            let mut tasks = Vec::new();
            for log in shard.partitions() {
                for _ in 0..in_flight {
                    let (log, template, budget) = (log.clone(), template.clone(), budget.clone());
                    tasks.push(glommio::spawn_local(async move {
                        let mut histogram = new_histogram();
                        let mut bytes = 0u64;
                        while Instant::now() < deadline && budget.get() >= template.len() as u64 {
                            budget.set(budget.get() - template.len() as u64);
                            let began = Instant::now();
                            log.append(template.clone(), 0).await?;
                            histogram.record(began.elapsed().as_micros().max(1) as u64).expect("in bounds");
                            bytes += template.len() as u64;
                        }
                        Ok::<_, sluice_engine::EngineError>((bytes, histogram))
                    }));
                }
            }
            let mut histogram = new_histogram();
            let mut bytes = 0;
            for task in tasks {
                let (task_bytes, task_histogram) = task.await?;
                bytes += task_bytes;
                histogram.add(task_histogram).expect("same bounds");
            }
            let elapsed = started.elapsed();
            shard.close_all().await?;
            Ok((bytes, histogram, elapsed))
        }
    })?;
    let _ = std::fs::remove_dir_all(&case_dir);
    // Give a thin-provisioned disk mounted with `discard` time to take the space back.
    std::thread::sleep(PAUSE_BETWEEN_CASES);
    let mut latency_us = new_histogram();
    let mut bytes = 0;
    let mut elapsed = Duration::ZERO;
    for (shard_bytes, histogram, shard_elapsed) in per_shard {
        bytes += shard_bytes;
        latency_us.add(histogram).expect("same bounds");
        elapsed = elapsed.max(shard_elapsed);
    }
    let batches = latency_us.len();
    Ok(CaseResult {
        partitions,
        shards,
        flush,
        bytes,
        records: batches * records_per_batch,
        elapsed,
        latency_us,
        raw_adjacent,
    })
}
