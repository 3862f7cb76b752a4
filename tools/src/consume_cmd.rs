//! `sluice consume TOPIC`: prints records, like Kafka's console consumer and `kcat -C`.
//! It assigns itself partitions and keeps its own positions (no consumer group), starting
//! from the beginning, the end, an offset, or a timestamp.

use crate::client_args::{run_client, BrokerArgs};
use sluice_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::records::FetchedRecord;
use sluice_client::KafkaConnection;
use std::io::Write;
use std::time::Duration;

/// Longest the broker holds a fetch waiting for data.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
/// Bytes asked for per fetch (and per partition).
const FETCH_MAX_BYTES: i32 = 4 << 20;

/// Flags of `sluice consume`.
#[derive(clap::Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    /// Partitions to read (repeatable; default: all).
    #[arg(short, long = "partition")]
    partitions: Vec<i32>,
    /// Where to start: `beginning`, `end`, an offset `N`, `-N` (N before the end), or
    /// `@MS` (the first record at or after a timestamp in milliseconds).
    #[arg(short, long, default_value = "beginning", value_parser = parse_start, allow_hyphen_values = true)]
    offset: Start,
    /// Stop after this many records.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Stop once every partition is read to its end (the default is to wait for more).
    #[arg(short, long)]
    exit: bool,
    /// Output per record: %t topic, %p partition, %o offset, %k key, %v value,
    /// %T timestamp (ms), %h headers (k=v,...), %S value size, \n, \t, %%.
    #[arg(short, long, default_value = "%v\\n")]
    format: String,
}

/// Where consumption starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    BeforeEnd(i64),
    Timestamp(i64),
}

fn parse_start(text: &str) -> Result<Start, String> {
    let number = |n: &str| n.parse::<i64>().map_err(|_| format!("offset {text:?}: use beginning, end, N, -N or @MS"));
    match text {
        "beginning" | "earliest" => Ok(Start::Beginning),
        "end" | "latest" => Ok(Start::End),
        _ if text.starts_with('@') => Ok(Start::Timestamp(number(&text[1..])?)),
        _ if text.starts_with('-') => Ok(Start::BeforeEnd(number(&text[1..])?)),
        _ => Ok(Start::Offset(number(text)?)),
    }
}

/// Runs `sluice consume`.
pub fn run(brokers: BrokerArgs, args: ConsumeArgs) -> Result<(), String> {
    let format = Format::parse(&args.format)?;
    run_client(move || async move { consume(brokers, args, format).await.map_err(|e| e.to_string()) })
}

/// One reader position.
struct Position {
    partition: i32,
    offset: i64,
    at_end: bool,
}

async fn consume(brokers: BrokerArgs, args: ConsumeArgs, format: Format) -> Result<(), Box<dyn std::error::Error>> {
    let mut connection = brokers.connect().await?;
    let count = connection.partition_count(&args.topic, false).await?;
    let partitions: Vec<i32> = if args.partitions.is_empty() { (0..count).collect() } else { args.partitions.clone() };
    if let Some(missing) = partitions.iter().find(|p| !(0..count).contains(*p)) {
        return Err(format!("topic {} has partitions 0..{count}; there is no {missing}", args.topic).into());
    }
    let mut positions = start_positions(&mut connection, &args.topic, &partitions, args.offset).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    while printed < limit {
        let asked: Vec<(i32, i64)> = positions.iter().map(|p| (p.partition, p.offset)).collect();
        for fetched in connection.fetch(&args.topic, &asked, FETCH_MAX_WAIT, FETCH_MAX_BYTES).await? {
            let Some(position) = positions.iter_mut().find(|p| p.partition == fetched.partition) else { continue };
            for record in &fetched.records {
                if printed == limit {
                    break;
                }
                format.write(&mut out, &args.topic, fetched.partition, record)?;
                printed += 1;
                position.offset = record.offset + 1;
            }
            if printed < limit {
                if let Some(next) = fetched.next_offset {
                    position.offset = position.offset.max(next);
                }
            }
            position.at_end = position.offset >= fetched.high_watermark;
        }
        out.flush()?;
        if args.exit && positions.iter().all(|p| p.at_end) {
            break;
        }
    }
    out.flush()?;
    Ok(())
}

async fn start_positions(
    connection: &mut KafkaConnection,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> Result<Vec<Position>, Box<dyn std::error::Error>> {
    let earliest = connection.list_offsets(topic, partitions, EARLIEST_TIMESTAMP).await?;
    let latest = connection.list_offsets(topic, partitions, LATEST_TIMESTAMP).await?;
    let lookup =
        |list: &[(i32, i64)], partition: i32| list.iter().find(|(p, _)| *p == partition).map_or(0, |(_, o)| *o);
    let by_time = match start {
        Start::Timestamp(ms) => connection.list_offsets(topic, partitions, ms).await?,
        _ => Vec::new(),
    };
    Ok(partitions
        .iter()
        .map(|&partition| {
            let (first, end) = (lookup(&earliest, partition), lookup(&latest, partition));
            let offset = match start {
                Start::Beginning => first,
                Start::End => end,
                Start::Offset(n) => n.clamp(first, end),
                Start::BeforeEnd(n) => (end - n).max(first),
                // -1: no record that late; start at the end.
                Start::Timestamp(_) => Some(lookup(&by_time, partition)).filter(|o| *o >= 0).unwrap_or(end),
            };
            Position { partition, offset, at_end: false }
        })
        .collect())
}

/// A parsed `--format` string.
#[derive(Debug, PartialEq, Eq)]
struct Format(Vec<Piece>);

#[derive(Debug, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
    ValueSize,
}

impl Format {
    fn parse(text: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('S') => Piece::ValueSize,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    other => return Err(format!("--format: unknown %{}", other.map(String::from).unwrap_or_default())),
                },
                '\\' => {
                    match chars.next() {
                        Some('n') => literal.push(b'\n'),
                        Some('t') => literal.push(b'\t'),
                        Some('\\') => literal.push(b'\\'),
                        other => {
                            return Err(format!("--format: unknown \\{}", other.map(String::from).unwrap_or_default()))
                        }
                    }
                    continue;
                }
                c => {
                    literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Format(pieces))
    }

    fn write(&self, out: &mut impl Write, topic: &str, partition: i32, record: &FetchedRecord) -> std::io::Result<()> {
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.write_all(text)?,
                Piece::Topic => out.write_all(topic.as_bytes())?,
                Piece::Partition => write!(out, "{partition}")?,
                Piece::Offset => write!(out, "{}", record.offset)?,
                Piece::Key => out.write_all(record.key.as_deref().unwrap_or_default())?,
                Piece::Value => out.write_all(record.value.as_deref().unwrap_or_default())?,
                Piece::Timestamp => write!(out, "{}", record.timestamp_ms)?,
                Piece::ValueSize => write!(out, "{}", record.value.as_ref().map_or(-1, |v| v.len() as i64))?,
                Piece::Headers => {
                    for (i, (key, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(key)?;
                        out.write_all(b"=")?;
                        out.write_all(value.as_deref().unwrap_or_default())?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_engine::batch::TimestampType;

    #[test]
    fn start_positions_parse_from_kcat_like_forms() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(parse_start("-10"), Ok(Start::BeforeEnd(10)));
        assert_eq!(parse_start("@1700000000000"), Ok(Start::Timestamp(1_700_000_000_000)));
        assert!(parse_start("soon").is_err());
    }

    #[test]
    fn formats_render_every_field() {
        let record = FetchedRecord {
            offset: 7,
            timestamp_ms: 1234,
            timestamp_type: TimestampType::CreateTime,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"value")),
            headers: vec![(Bytes::from_static(b"a"), Some(Bytes::from_static(b"1"))), (Bytes::from_static(b"b"), None)],
        };
        let format = Format::parse("%t/%p@%o %k=%v (%S) %T [%h] 100%%\\n").unwrap();
        let mut out = Vec::new();
        format.write(&mut out, "topic", 3, &record).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "topic/3@7 k=value (5) 1234 [a=1,b=] 100%\n");
        assert!(Format::parse("%x").is_err());
        assert!(Format::parse("\\q").is_err());
    }
}
