//! `sluice serve`: starts one shard per core over the data directory, recovers every
//! partition log found there, keeps them maintained (interval flushes, retention) and shuts
//! down cleanly on SIGINT/SIGTERM (every log flushed and trimmed).
//!
//! The Kafka listener is not here yet: it comes with the broker (net crate). Until then
//! this is the storage process the broker will be built on.

use crate::data_dir_lock::DataDirLock;
use sluice_engine::shard::{parse_partition_dir_name, remove_deleted_partitions, run_shards, RuntimeConfig, Shard};
use sluice_engine::{FlushPolicy, LogConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often shards look at the shutdown flag and start interval fsyncs that are due
/// (the resolution of `--flush ms:T`).
const TICK: Duration = Duration::from_millis(10);
/// How often shards apply retention.
const RETENTION_INTERVAL: Duration = Duration::from_secs(1);

/// Flags of `sluice serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Directory holding the partition logs.
    #[arg(long, default_value = "./data", env = "SLUICE_DATA_DIR")]
    data_dir: PathBuf,
    /// Number of shards (one executor per core); default: all online CPUs.
    #[arg(long)]
    cores: Option<usize>,
    /// When to fsync: `every-append` (default: acks wait for fsync), `bytes:N`, `ms:N`, `never`.
    #[arg(long, default_value = "every-append", value_parser = parse_flush)]
    flush: FlushPolicy,
    /// Spin this many microseconds before an idle shard parks (0 parks at once).
    #[arg(long, default_value_t = 50)]
    spin_before_park_us: u64,
}

fn parse_flush(text: &str) -> Result<FlushPolicy, String> {
    let number = |n: &str| n.parse::<u64>().map_err(|e| format!("{text}: {e}"));
    match text.split_once(':') {
        None if text == "every-append" => Ok(FlushPolicy::EveryAppend),
        None if text == "never" => Ok(FlushPolicy::Never),
        Some(("bytes", n)) => Ok(FlushPolicy::Bytes(number(n)?)),
        Some(("ms", n)) => Ok(FlushPolicy::Interval(Duration::from_millis(number(n)?))),
        _ => Err(format!("unknown flush policy {text:?}: use every-append, bytes:N, ms:N or never")),
    }
}

/// Runs until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), String> {
    let _lock = DataDirLock::acquire(&args.data_dir)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let runtime = RuntimeConfig {
        shards: args.cores.unwrap_or_else(|| RuntimeConfig::default().shards),
        spin_before_park: (args.spin_before_park_us > 0).then(|| Duration::from_micros(args.spin_before_park_us)),
        ..RuntimeConfig::default()
    };
    let leftovers = remove_deleted_partitions(&args.data_dir).map_err(|e| e.to_string())?;
    if leftovers > 0 {
        tracing::info!(directories = leftovers, "removed partitions whose deletion a crash interrupted");
    }
    // Until the metadata log lands, partitions found on disk are placed round-robin in
    // name order; the placement table will replace this.
    let mut partition_dirs: Vec<String> = std::fs::read_dir(&args.data_dir)
        .map_err(|e| format!("cannot list {}: {e}", args.data_dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| parse_partition_dir_name(name).is_some())
        .collect();
    partition_dirs.sort();
    let shards = runtime.shards;
    tracing::info!(data_dir = %args.data_dir.display(), shards, partitions = partition_dirs.len(), "starting");
    let data_dir = args.data_dir.clone();
    let log_config = LogConfig { flush: args.flush, ..LogConfig::default() };
    run_shards(&runtime, &args.data_dir, move |shard_id| {
        let (data_dir, stop, log_config) = (data_dir.clone(), stop.clone(), log_config.clone());
        let mine: Vec<String> = partition_dirs.iter().skip(shard_id).step_by(shards).cloned().collect();
        async move {
            let shard = Shard::new(shard_id, &data_dir);
            for name in &mine {
                let (log, report) = shard.open_partition(name, log_config.clone()).await?;
                for corrupt in &report.corrupt_segments {
                    tracing::error!(shard = shard_id, partition = %name, %corrupt, "corrupt segment");
                }
                tracing::info!(shard = shard_id, partition = %name, segments = report.segments,
                    log_start = log.log_start_offset(), log_end = log.log_end_offset(),
                    torn_tail = report.torn_tail.is_some(), "recovered");
            }
            tracing::info!(shard = shard_id, partitions = mine.len(), "shard ready");
            let mut last_retention = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                glommio::timer::sleep(TICK).await;
                shard.flush_due().await;
                if last_retention.elapsed() >= RETENTION_INTERVAL {
                    shard.apply_retention().await;
                    last_retention = Instant::now();
                }
            }
            tracing::info!(shard = shard_id, "shutting down: flushing logs");
            shard.close_all().await
        }
    })
    .map_err(|e| e.to_string())?;
    tracing::info!("clean shutdown");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_policies_parse_from_their_flag_forms() {
        assert_eq!(parse_flush("every-append"), Ok(FlushPolicy::EveryAppend));
        assert_eq!(parse_flush("bytes:1048576"), Ok(FlushPolicy::Bytes(1 << 20)));
        assert_eq!(parse_flush("ms:5"), Ok(FlushPolicy::Interval(Duration::from_millis(5))));
        assert_eq!(parse_flush("never"), Ok(FlushPolicy::Never));
        assert!(parse_flush("sometimes").is_err());
        assert!(parse_flush("bytes:x").is_err());
    }
}
