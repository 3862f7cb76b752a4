//! `sluice produce TOPIC`: one record per line of standard input, like Kafka's console
//! producer and `kcat -P`. Keyed records go where Kafka's default partitioner puts them
//! (murmur2), so they land beside records other clients produced with the same keys;
//! unkeyed records fill one partition per batch, moving on after each (sticky, as Kafka).

use crate::client_args::{run_client, BrokerArgs};
use sluice_client::partitioner::partition_for_key;
use sluice_client::KafkaConnection;
use sluice_engine::batch_builder::BatchBuilder;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A batch is sent once it holds this many bytes (below Kafka's default 1 MiB
/// `max.message.bytes`, so a default broker takes it).
const BATCH_BYTES_MAX: usize = 512 << 10;
/// How long the broker may take to acknowledge.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of `sluice produce`.
#[derive(clap::Args)]
pub struct ProduceArgs {
    /// Topic to produce to (created if the broker auto-creates topics).
    topic: String,
    /// Send every record to this partition (default: by key, or sticky for no key).
    #[arg(short, long)]
    partition: Option<i32>,
    /// Split each line at the first occurrence of this into key and value.
    #[arg(short = 'K', long)]
    key_separator: Option<String>,
    /// A header added to every record, `name=value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = crate::parse_name_value)]
    headers: Vec<(String, String)>,
    /// Acknowledgements to wait for: `all` (-1), `1` or `0` (no response).
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Records per batch at most.
    #[arg(long, default_value_t = 1000)]
    batch_records: usize,
    /// Print each batch's partition and base offset on standard error.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("acks {text:?}: use all, 1 or 0")),
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Batches being filled, one per partition.
struct PendingBatches {
    batches: BTreeMap<i32, BatchBuilder>,
    records: usize,
    bytes: usize,
}

/// Runs `sluice produce`.
pub fn run(brokers: BrokerArgs, args: ProduceArgs) -> Result<(), String> {
    if args.batch_records == 0 {
        return Err("--batch-records must be at least 1".into());
    }
    run_client(move || async move { produce_stdin(brokers, args).await })
}

async fn produce_stdin(brokers: BrokerArgs, args: ProduceArgs) -> Result<(), String> {
    let mut connection = brokers.connect().await?;
    let partitions = connection.partition_count(&args.topic, true).await.map_err(|e| e.to_string())?;
    if let Some(partition) = args.partition {
        if !(0..partitions).contains(&partition) {
            return Err(format!("topic {} has partitions 0..{partitions}; there is no {partition}", args.topic));
        }
    }
    let headers: Vec<(&[u8], Option<&[u8]>)> =
        args.headers.iter().map(|(k, v)| (k.as_bytes(), Some(v.as_bytes()))).collect();
    let mut pending = PendingBatches { batches: BTreeMap::new(), records: 0, bytes: 0 };
    let mut sticky_partition = 0;
    let mut produced = 0u64;
    // Large reads go straight past stdin's own small buffer, so `input.buffer()` tells
    // whether more input is already waiting.
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        // A blocking read: this executor runs nothing else while it waits for input.
        let read = input.read_until(b'\n', &mut line).map_err(|e| format!("reading standard input: {e}"))?;
        if read > 0 {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let (key, value) = split_key(&line, args.key_separator.as_deref().map(str::as_bytes));
            let partition = match (args.partition, key) {
                (Some(partition), _) => partition,
                (None, Some(key)) => partition_for_key(key, partitions),
                (None, None) => sticky_partition,
            };
            let batch = pending.batches.entry(partition).or_insert_with(|| BatchBuilder::new(now_ms()));
            let before = batch.size_bytes();
            batch.push(key, Some(value), &headers, now_ms());
            pending.bytes += batch.size_bytes() - before;
            pending.records += 1;
        }
        // Send when full, at the end, or when no more input is waiting (so interactive
        // use sees each line go out at once).
        let full = pending.records >= args.batch_records || pending.bytes >= BATCH_BYTES_MAX;
        if pending.records > 0 && (full || read == 0 || input.buffer().is_empty()) {
            produced += send_pending(&mut connection, &args, &mut pending).await? as u64;
            sticky_partition = (sticky_partition + 1) % partitions;
        }
        if read == 0 {
            break;
        }
    }
    eprintln!("produced {produced} records to {}", args.topic);
    Ok(())
}

fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(separator) = separator.filter(|s| !s.is_empty()) else { return (None, line) };
    match line.windows(separator.len()).position(|window| window == separator) {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

async fn send_pending(
    connection: &mut KafkaConnection,
    args: &ProduceArgs,
    pending: &mut PendingBatches,
) -> Result<usize, String> {
    let sent = pending.records;
    for (partition, batch) in std::mem::take(&mut pending.batches) {
        let base_offset = connection
            .produce(&args.topic, partition, batch.build(), args.acks, PRODUCE_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if args.verbose {
            match base_offset {
                Some(offset) => eprintln!("{}-{partition}: {} records at offset {offset}", args.topic, batch.len()),
                None => eprintln!("{}-{partition}: {} records sent (acks=0)", args.topic, batch.len()),
            }
        }
    }
    pending.records = 0;
    pending.bytes = 0;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(split_key(b"k:v:w", Some(b":")), (Some(&b"k"[..]), &b"v:w"[..]));
        assert_eq!(split_key(b"no separator", Some(b":")), (None, &b"no separator"[..]));
        assert_eq!(split_key(b"k::v", Some(b"::")), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
    }

    #[test]
    fn acks_take_kafka_spellings() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("1"), Ok(1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert!(parse_acks("2").is_err());
    }
}
