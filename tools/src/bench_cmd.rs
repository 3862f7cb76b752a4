//! `sluice bench ...`: benchmark subcommands.

use sluice_bench::report::storage_markdown;
use sluice_bench::storage::{run_suite, FlushChoice, StorageBenchConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// The storage engine alone against the raw O_DIRECT bandwidth of the same disk.
    Storage(StorageArgs),
}

/// Flags of `sluice bench storage`.
#[derive(clap::Args)]
pub struct StorageArgs {
    /// Scratch directory on the disk to measure (emptied afterwards).
    #[arg(long, default_value = "./bench-data")]
    data_dir: PathBuf,
    /// Seconds measured per case.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Partition counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 6, 64])]
    partitions: Vec<usize>,
    /// Shard counts, comma-separated (default: 1 and all cores).
    #[arg(long, value_delimiter = ',')]
    shards: Vec<usize>,
    /// Appends each partition keeps in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Also write the results as Markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// Runs a benchmark subcommand.
pub fn run(command: BenchCommand) -> Result<(), String> {
    match command {
        BenchCommand::Storage(args) => storage(args),
    }
}

fn storage(args: StorageArgs) -> Result<(), String> {
    let defaults = StorageBenchConfig::default();
    let config = StorageBenchConfig {
        data_dir: args.data_dir.clone(),
        duration: Duration::from_secs_f64(args.seconds),
        partitions: args.partitions,
        shards: if args.shards.is_empty() { defaults.shards.clone() } else { args.shards },
        flushes: vec![FlushChoice::EveryBatch, FlushChoice::EveryMiB, FlushChoice::Never],
        in_flight_per_partition: args.in_flight,
        ..defaults
    };
    let report = run_suite(&config, |line| println!("{line}")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&args.data_dir);
    let markdown = storage_markdown(&report);
    println!("\n{markdown}");
    if let Some(path) = args.markdown {
        std::fs::write(&path, &markdown).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
