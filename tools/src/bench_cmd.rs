//! `sluice bench ...`: benchmark subcommands. `produce`, `consume` and `e2e` are the Kafka
//! load generator (any Kafka-compatible broker); `storage` measures the engine alone;
//! `plot` draws the latency curves of saved runs side by side.

use sluice_bench::kafka_report::{percentile_chart_html, report_curves, summary_table};
use sluice_bench::kafka_run::{BenchMode, KafkaBenchReport, KafkaBenchSpec};
use sluice_bench::producer::ProducerSettings;
use sluice_bench::report::storage_markdown;
use sluice_bench::storage::{run_suite, FlushChoice, StorageBenchConfig};
use sluice_bench::workload::{KeyDistribution, SizeDistribution};
use sluice_engine::batch::Compression;
use std::path::PathBuf;
use std::time::Duration;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Produce to a topic (open loop at --rate, or as fast as the broker takes it).
    Produce(KafkaArgs),
    /// Read a topic from its start to its end (after --fill-messages, if given).
    Consume(KafkaArgs),
    /// Produce and consume together; latency from the send stamp in each message to its
    /// arrival at a consumer.
    E2e(KafkaArgs),
    /// The storage engine alone against the raw O_DIRECT bandwidth of the same disk.
    Storage(StorageArgs),
    /// Draw the latency curves of runs saved with --json into one HTML chart.
    Plot(PlotArgs),
    /// Load on a Schema Registry's REST API: lookups by id, or registrations; prints the
    /// rate and latencies as one JSON object.
    Registry(RegistryArgs),
}

/// Flags of the registry load.
#[derive(clap::Args, Debug)]
pub struct RegistryArgs {
    /// The registry's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    registry: String,
    /// Clients, each on its own thread and keep-alive connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of load.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    seconds: f64,
    /// `GET /schemas/ids/{id}` over these ids (comma-separated); without it, registrations
    /// of new schemas under `bench-registry-N` subjects.
    #[arg(long, value_delimiter = ',')]
    lookup_ids: Vec<i32>,
    /// Requests a second, all clients together [default: as fast as answered].
    #[arg(long)]
    rate: Option<f64>,
}

/// Flags of the Kafka load generator.
#[derive(clap::Args, serde::Serialize, Debug)]
pub struct KafkaArgs {
    /// Bootstrap broker, HOST:PORT (any Kafka-compatible broker).
    #[arg(short = 'b', long, default_value = "127.0.0.1:9092", env = "SLUICE_BROKERS")]
    brokers: String,
    /// How connections are secured (the client commands' flags).
    #[command(flatten)]
    #[serde(skip)]
    security: crate::client_args::SecurityArgs,
    /// Topic (created if missing).
    #[arg(short = 't', long, default_value = "sluice-bench")]
    topic: String,
    /// Partitions of the topic, when it is created.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// A topic config for its creation, NAME=VALUE (repeatable).
    #[arg(long = "topic-config", value_parser = crate::parse_name_value)]
    topic_configs: Vec<(String, String)>,
    /// Value size: N bytes, or uniform:MIN-MAX (at least 16: each value carries its send stamp).
    #[arg(short = 's', long = "message-size", default_value = "1024")]
    message_size: String,
    /// Keys: none (sticky partitioning), seq:N, uniform:N or zipf:N:EXPONENT.
    #[arg(long, default_value = "none")]
    keys: String,
    /// Producer instances, each with its own connection per broker.
    #[arg(short = 'p', long, default_value_t = 1)]
    producers: usize,
    /// Consumer instances, each with its own connection per broker; partitions are split among them.
    #[arg(short = 'c', long, default_value_t = 1)]
    consumers: usize,
    /// Worker threads for producers and consumers [default: one per member, at most one per CPU].
    #[arg(long)]
    threads: Option<usize>,
    /// all (-1), 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// A batch is sent when it reaches this many bytes (batch.size).
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: usize,
    /// ... or when its first message waited this long (linger.ms).
    #[arg(long, default_value_t = 5.0)]
    linger_ms: f64,
    /// Produce requests outstanding per connection (max.in.flight.requests.per.connection).
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Messages a second, all producers together (open loop), or "unlimited".
    #[arg(short = 'r', long, default_value = "unlimited")]
    rate: String,
    /// Seconds measured, after the warm-up.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Produce this many messages instead of running for --duration.
    #[arg(short = 'n', long)]
    messages: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// consume: produce this many messages (as fast as possible) before reading.
    #[arg(long, default_value_t = 0)]
    fill_messages: u64,
    /// The broker's time limit for a Produce request, in ms.
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Name of this run in the JSON file and charts.
    #[arg(long, default_value = "run")]
    label: String,
    /// Write every figure and the settings to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a latency-percentile chart to this self-contained HTML file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Flags of `sluice bench plot`.
#[derive(clap::Args)]
pub struct PlotArgs {
    /// The HTML file to write.
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Chart title.
    #[arg(long, default_value = "latency by percentile")]
    title: String,
    /// JSON files written by --json.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
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
        BenchCommand::Produce(args) => kafka(BenchMode::Produce, args),
        BenchCommand::Consume(args) => kafka(BenchMode::Consume, args),
        BenchCommand::E2e(args) => kafka(BenchMode::E2e, args),
        BenchCommand::Storage(args) => storage(args),
        BenchCommand::Plot(args) => plot(args),
        BenchCommand::Registry(args) => registry(args),
    }
}

fn registry(args: RegistryArgs) -> Result<(), String> {
    use sluice_bench::registry_load::{run, RegistryLoad, RegistryLoadSpec};
    let load = if args.lookup_ids.is_empty() {
        RegistryLoad::Registrations { subject_prefix: "bench-registry".into() }
    } else {
        RegistryLoad::Lookups { ids: args.lookup_ids }
    };
    let spec = RegistryLoadSpec {
        url: args.registry,
        clients: args.clients,
        duration: Duration::from_secs_f64(args.seconds),
        load,
        rate: args.rate,
    };
    let report = run(&spec)?;
    println!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
    Ok(())
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("--acks {text:?}: use all, 1 or 0")),
    }
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!("--compression {text:?}: use none, gzip, snappy, lz4 or zstd")),
    }
}

fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag} {value}: not a number of seconds"))
}

fn kafka_spec(mode: BenchMode, args: &KafkaArgs) -> Result<KafkaBenchSpec, String> {
    let rate = match args.rate.as_str() {
        "unlimited" => None,
        text => Some(text.parse::<f64>().map_err(|e| format!("--rate {text:?}: {e}"))?),
    };
    let (producers, consumers) = match mode {
        BenchMode::Produce => (args.producers, 0),
        BenchMode::Consume => (args.producers, args.consumers),
        BenchMode::E2e => (args.producers, args.consumers),
    };
    let members = match mode {
        BenchMode::Produce => producers,
        BenchMode::Consume => producers.max(consumers),
        BenchMode::E2e => producers + consumers,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(KafkaBenchSpec {
        mode,
        brokers: args.brokers.clone(),
        security: args.security.connection_security()?,
        partitions: args.partitions,
        topic_configs: args.topic_configs.clone(),
        producer: ProducerSettings {
            topic: args.topic.clone(),
            sizes: SizeDistribution::parse(&args.message_size)?,
            keys: KeyDistribution::parse(&args.keys)?,
            acks: parse_acks(&args.acks)?,
            batch_bytes: args.batch_bytes,
            linger: seconds("--linger-ms", args.linger_ms / 1e3)?,
            max_in_flight: args.max_in_flight,
            compression: parse_compression(&args.compression)?,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
        },
        producers,
        consumers,
        threads: args.threads.unwrap_or(members.min(cpus)).max(1),
        rate,
        duration: seconds("--duration", args.duration)?,
        messages: args.messages,
        warmup: seconds("--warmup", args.warmup)?,
        fill_messages: args.fill_messages,
    })
}

/// What `--json` writes: the label, the settings as given, the machine, and the report.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedRun<Settings, Report> {
    label: String,
    settings: Settings,
    machine: Machine,
    report: Report,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Machine {
    cpus: usize,
    kernel: String,
}

fn kafka(mode: BenchMode, args: KafkaArgs) -> Result<(), String> {
    let spec = kafka_spec(mode, &args)?;
    let report = sluice_bench::kafka_run::run(&spec, &mut |line| println!("{line}"))?;
    println!("\n{}", summary_table(&report));
    if let Some(path) = &args.json {
        let saved = SavedRun {
            label: args.label.clone(),
            settings: &args,
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
            },
            report: &report,
        };
        let text = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let html = percentile_chart_html(&format!("{} ({mode:?})", args.label), &report_curves(&args.label, &report));
        std::fs::write(path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let failed =
        [&report.fill, &report.produce, &report.consume].into_iter().flatten().any(|f| f.first_failure.is_some());
    if failed {
        return Err("some requests failed (see above)".into());
    }
    Ok(())
}

fn plot(args: PlotArgs) -> Result<(), String> {
    let mut runs = Vec::new();
    for path in &args.runs {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let run: SavedRun<serde_json::Value, KafkaBenchReport> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        runs.push(run);
    }
    let curves: Vec<_> = runs.iter().flat_map(|run| report_curves(&run.label, &run.report)).collect();
    let html = percentile_chart_html(&args.title, &curves);
    std::fs::write(&args.out, html).map_err(|e| format!("cannot write {}: {e}", args.out.display()))
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
