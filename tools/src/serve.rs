//! `sluice serve`: the Kafka-compatible broker. Parses flags (or `SLUICE_*` environment
//! variables), takes the data directory's lock, installs SIGINT/SIGTERM handlers and runs
//! the broker until one arrives (then: stop accepting, finish requests in progress, flush
//! and close every log).

use crate::data_dir_lock::DataDirLock;
use sluice_engine::shard::RuntimeConfig;
use sluice_engine::{FlushPolicy, LogConfig};
use sluice_net::{BrokerConfig, BrokerOptions};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `sluice serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to accept Kafka clients on (every shard listens on it, SO_REUSEPORT).
    #[arg(long, default_value = "127.0.0.1:9092", env = "SLUICE_LISTEN")]
    listen: String,
    /// Address clients are told to connect to (Metadata); default: the listen address.
    #[arg(long, env = "SLUICE_ADVERTISE")]
    advertise: Option<String>,
    /// Directory holding the partition logs and the metadata.
    #[arg(long, default_value = "./data", env = "SLUICE_DATA_DIR")]
    data_dir: PathBuf,
    /// Number of shards (one executor per core); default: all online CPUs.
    #[arg(long, env = "SLUICE_CORES")]
    cores: Option<usize>,
    /// When to fsync: `every-append` (default: acks wait for fsync), `bytes:N`, `ms:N`, `never`.
    #[arg(long, default_value = "every-append", value_parser = parse_flush, env = "SLUICE_FLUSH")]
    flush: FlushPolicy,
    /// Create topics when clients ask for their metadata (`auto.create.topics.enable`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "SLUICE_AUTO_CREATE_TOPICS")]
    auto_create_topics: bool,
    /// Partitions of auto-created topics (`num.partitions`).
    #[arg(long, default_value_t = 1, env = "SLUICE_NUM_PARTITIONS")]
    num_partitions: i32,
    /// Largest batch accepted unless a topic sets `max.message.bytes` (`message.max.bytes`).
    #[arg(long, default_value_t = 1 << 20, env = "SLUICE_MESSAGE_MAX_BYTES")]
    message_max_bytes: usize,
    /// Default `segment.bytes` of topics.
    #[arg(long, default_value_t = 128 << 20, env = "SLUICE_SEGMENT_BYTES")]
    segment_bytes: u64,
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

fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address.rsplit_once(':').ok_or_else(|| format!("{address:?} is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("{address:?}: bad port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
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
    let (advertised_host, advertised_port) = split_host_port(args.advertise.as_deref().unwrap_or(&args.listen))?;
    let log_defaults = LogConfig {
        flush: args.flush,
        max_message_bytes: args.message_max_bytes,
        segment_bytes: args.segment_bytes,
        ..LogConfig::default()
    };
    log_defaults.validate().map_err(|e| e.to_string())?;
    let broker = BrokerConfig {
        advertised_host,
        advertised_port,
        auto_create_topics: args.auto_create_topics,
        num_partitions: args.num_partitions,
        log_defaults,
        data_dir: args.data_dir,
        ..BrokerConfig::default()
    };
    sluice_net::run(BrokerOptions { listen: args.listen, broker, runtime, stop })
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

    #[test]
    fn advertised_addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:9092"), Ok(("127.0.0.1".into(), 9092)));
        assert_eq!(split_host_port("[::1]:19092"), Ok(("::1".into(), 19092)));
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port("h:99999").is_err());
    }
}
