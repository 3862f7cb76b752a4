//! `sluice admin`: one request to a running broker's admin socket, its reply printed as
//! tables (or as the raw JSON line with `--json`). The protocol is in docs/OPERATIONS.md.

use crate::table::print_table;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait for a reply (a flush or roll of many partitions takes a while).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest reply line read (a `partitions` reply of many thousand partitions fits).
const REPLY_LINE_BYTES_MAX: u64 = 64 << 20;

/// Flags of `sluice admin`.
#[derive(clap::Args)]
pub struct AdminArgs {
    /// The broker's admin socket [default: <data-dir>/admin.sock].
    #[arg(long, global = true, env = "SLUICE_ADMIN_SOCKET")]
    socket: Option<PathBuf>,
    /// The broker's data directory, where its admin socket is unless `--socket` says otherwise.
    #[arg(long, global = true, env = "SLUICE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Print the reply as the broker sent it (one JSON object).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

/// What to ask.
#[derive(clap::Subcommand)]
enum AdminCommand {
    /// Version, uptime, and per shard: partitions, bytes, log end offsets, connections.
    Status,
    /// Every partition: owner shard, size, segments, log start, log end, high watermark.
    Partitions,
    /// Request counts and latencies per API, shard busy time, cross-shard calls, fsyncs.
    Metrics,
    /// Read or change runtime settings (`log-level`, `flush`).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// fsync every partition.
    Flush,
    /// Roll the active segment of every partition, or of one topic's or one partition's.
    Roll {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition (needs --topic).
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
    /// Stop the broker gracefully, as SIGTERM does.
    Shutdown,
    /// SCRAM users (SASL logins), over the local socket: how the first user is made
    /// before any network client may change users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Create a user's credential for a mechanism (or replace it); the password is read
    /// from standard input.
    Create {
        /// The user name (principal `User:NAME`).
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long)]
        mechanism: String,
        /// Read the password from standard input (its first line); required, so that it
        /// never shows up in the process list or shell history.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Iterations (4096–16384) [default: 4096].
        #[arg(long)]
        iterations: Option<u32>,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long)]
        mechanism: String,
    },
    /// Every user with its mechanisms.
    List,
}

#[derive(clap::Subcommand)]
enum ConfigAction {
    /// Print one setting, or all.
    Get {
        /// `log-level` or `flush`; all when left out.
        name: Option<String>,
    },
    /// Change a setting on the running broker (until it restarts).
    Set {
        /// `log-level` or `flush`.
        name: String,
        /// The new value: a tracing filter (`debug`, `info,sluice_net=trace`) for
        /// `log-level`; `every-append`, `bytes:N`, `ms:N` or `never` for `flush`.
        value: String,
    },
}

impl AdminCommand {
    /// The request line's JSON object.
    fn request(&self) -> Value {
        match self {
            AdminCommand::Status => json!({ "command": "status" }),
            AdminCommand::Partitions => json!({ "command": "partitions" }),
            AdminCommand::Metrics => json!({ "command": "metrics" }),
            AdminCommand::Config { action: ConfigAction::Get { name: None } } => {
                json!({ "command": "config", "action": "get" })
            }
            AdminCommand::Config { action: ConfigAction::Get { name: Some(name) } } => {
                json!({ "command": "config", "action": "get", "name": name })
            }
            AdminCommand::Config { action: ConfigAction::Set { name, value } } => {
                json!({ "command": "config", "action": "set", "name": name, "value": value })
            }
            AdminCommand::Flush => json!({ "command": "flush" }),
            AdminCommand::Roll { topic, partition } => {
                let mut request = json!({ "command": "roll" });
                if let Some(topic) = topic {
                    request["topic"] = json!(topic);
                }
                if let Some(partition) = partition {
                    request["partition"] = json!(partition);
                }
                request
            }
            AdminCommand::Shutdown => json!({ "command": "shutdown" }),
            AdminCommand::User { action: UserAction::Create { name, mechanism, iterations, .. } } => {
                let mut request =
                    json!({ "command": "user", "action": "create", "name": name, "mechanism": mechanism });
                if let Some(iterations) = iterations {
                    request["iterations"] = json!(iterations);
                }
                request
            }
            AdminCommand::User { action: UserAction::Delete { name, mechanism } } => {
                json!({ "command": "user", "action": "delete", "name": name, "mechanism": mechanism })
            }
            AdminCommand::User { action: UserAction::List } => json!({ "command": "user", "action": "list" }),
        }
    }
}

/// The first line of standard input, without its line end (also `sluice user create`).
pub(crate) fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(password)
}

/// Sends the request, prints the reply; an `ok:false` reply is an error.
pub fn run(args: AdminArgs) -> Result<(), String> {
    let socket = args.socket.unwrap_or_else(|| args.data_dir.join(crate::serve::ADMIN_SOCKET_FILE));
    let mut request = args.command.request();
    if let AdminCommand::User { action: UserAction::Create { .. } } = &args.command {
        request["password"] = json!(read_password()?);
    }
    let reply_line = exchange(&socket, &request)?;
    let reply: Value =
        serde_json::from_str(&reply_line).map_err(|e| format!("the broker's reply is not JSON ({e}): {reply_line}"))?;
    if args.json {
        println!("{}", reply_line.trim_end());
    }
    if reply["ok"] != json!(true) {
        return Err(reply["error"].as_str().unwrap_or("the broker refused without saying why").to_string());
    }
    if !args.json {
        print_reply(&args.command, &reply);
    }
    Ok(())
}

/// One request line out, one reply line back.
fn exchange(socket: &std::path::Path, request: &Value) -> Result<String, String> {
    let connect_error = |e: std::io::Error| {
        format!("cannot reach the admin socket {}: {e} (is `sluice serve` running there?)", socket.display())
    };
    let mut stream = UnixStream::connect(socket).map_err(connect_error)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(connect_error)?;
    let mut line = request.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(connect_error)?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(stream, REPLY_LINE_BYTES_MAX))
        .read_line(&mut reply)
        .map_err(|e| format!("no reply on {}: {e}", socket.display()))?;
    if reply.is_empty() {
        return Err(format!("the broker closed {} without replying", socket.display()));
    }
    Ok(reply)
}

/// A reply field as printed in a table (`-` when absent).
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn print_reply(command: &AdminCommand, reply: &Value) {
    match command {
        AdminCommand::Status => print_status(reply),
        AdminCommand::Partitions => {
            let rows: Vec<Vec<String>> = list(&reply["partitions"])
                .iter()
                .map(|p| PARTITION_FIELDS.iter().map(|field| cell(&p[*field])).collect())
                .collect();
            print_table(
                &["TOPIC", "PARTITION", "SHARD", "BYTES", "SEGMENTS", "LOG-START", "LOG-END", "HIGH-WATERMARK"],
                &rows,
            );
        }
        AdminCommand::Metrics => print_metrics(reply),
        AdminCommand::Config { .. } => {
            let rows: Vec<Vec<String>> = reply["config"]
                .as_object()
                .map(|config| config.iter().map(|(name, value)| vec![name.clone(), cell(value)]).collect())
                .unwrap_or_default();
            print_table(&["NAME", "VALUE"], &rows);
        }
        AdminCommand::Flush => println!("flushed {} partitions", cell(&reply["flushed"])),
        AdminCommand::Roll { .. } => println!(
            "rolled {} partitions ({} left as they were: empty active segment)",
            cell(&reply["rolled"]),
            cell(&reply["skipped_empty"])
        ),
        AdminCommand::Shutdown => println!("the broker is shutting down"),
        AdminCommand::User { action: UserAction::List } => {
            let rows: Vec<Vec<String>> = list(&reply["users"])
                .iter()
                .flat_map(|user| {
                    list(&user["credentials"])
                        .iter()
                        .map(|c| vec![cell(&user["name"]), cell(&c["mechanism"]), cell(&c["iterations"])])
                        .collect::<Vec<_>>()
                })
                .collect();
            print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
        }
        AdminCommand::User { action: UserAction::Create { .. } } => {
            println!("user {} has a {} credential", cell(&reply["user"]), cell(&reply["mechanism"]))
        }
        AdminCommand::User { action: UserAction::Delete { .. } } => {
            println!("user {}: {} credential deleted", cell(&reply["user"]), cell(&reply["mechanism"]))
        }
    }
}

fn print_status(reply: &Value) {
    let uptime_s = reply["uptime_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    println!("sluice {}, up {uptime_s:.1} s", cell(&reply["version"]));
    println!(
        "{} partitions, {} bytes; connections: {} open, {} accepted",
        cell(&reply["partitions"]),
        cell(&reply["size_bytes"]),
        cell(&reply["connections_open"]),
        cell(&reply["connections_accepted"])
    );
    let rows: Vec<Vec<String>> = list(&reply["shards"])
        .iter()
        .map(|shard| {
            let offsets = shard["log_end_offsets"]
                .as_object()
                .map(|o| o.iter().map(|(p, end)| format!("{p}={end}")).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let mut row: Vec<String> =
                ["shard", "partitions", "size_bytes", "connections_open", "connections_accepted"]
                    .iter()
                    .map(|field| cell(&shard[*field]))
                    .collect();
            row.push(offsets);
            row
        })
        .collect();
    print_table(&["SHARD", "PARTITIONS", "BYTES", "CONN-OPEN", "CONN-ACCEPTED", "LOG-END-OFFSETS"], &rows);
}

const PARTITION_FIELDS: [&str; 8] =
    ["topic", "partition", "shard", "size_bytes", "segments", "log_start_offset", "log_end_offset", "high_watermark"];

const LATENCY_FIELDS: [&str; 6] = ["count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"];
const LATENCY_HEADER: [&str; 6] = ["COUNT", "P50-US", "P90-US", "P99-US", "P99.9-US", "MAX-US"];

fn print_metrics(reply: &Value) {
    let rows: Vec<Vec<String>> = list(&reply["requests"])
        .iter()
        .map(|api| {
            std::iter::once(cell(&api["api"])).chain(LATENCY_FIELDS.iter().map(|f| cell(&api["latency"][*f]))).collect()
        })
        .collect();
    print_table(&[&["API"][..], &LATENCY_HEADER].concat(), &rows);
    println!();
    let uptime_us = reply["uptime_ms"].as_u64().unwrap_or(0).max(1) * 1000;
    let rows: Vec<Vec<String>> = list(&reply["shards"])
        .iter()
        .map(|shard| {
            let busy_us = shard["busy_us"].as_u64().unwrap_or(0);
            vec![
                cell(&shard["shard"]),
                cell(&shard["requests"]),
                format!("{:.1}", busy_us as f64 / 1000.0),
                format!("{:.1}", 100.0 * busy_us as f64 / uptime_us as f64),
                cell(&shard["calls_routed_out"]),
                cell(&shard["calls_served_for_others"]),
                cell(&shard["fsyncs"]),
            ]
        })
        .collect();
    print_table(&["SHARD", "REQUESTS", "BUSY-MS", "BUSY-%", "CALLS-OUT", "CALLS-SERVED", "FSYNCS"], &rows);
    println!();
    let fsync = &reply["fsync"];
    let row = std::iter::once("fsync".to_string()).chain(LATENCY_FIELDS.iter().map(|f| cell(&fsync[*f]))).collect();
    print_table(&[&[""][..], &LATENCY_HEADER].concat(), &[row]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AdminArgs,
    }

    fn request(words: &[&str]) -> Value {
        let cli = Cli::try_parse_from(std::iter::once("admin").chain(words.iter().copied())).expect("parses");
        cli.args.command.request()
    }

    #[test]
    fn commands_become_the_documented_request_objects() {
        assert_eq!(request(&["status"]), json!({"command": "status"}));
        assert_eq!(request(&["config", "get"]), json!({"command": "config", "action": "get"}));
        assert_eq!(
            request(&["config", "set", "flush", "ms:100"]),
            json!({"command": "config", "action": "set", "name": "flush", "value": "ms:100"})
        );
        assert_eq!(request(&["roll"]), json!({"command": "roll"}));
        assert_eq!(
            request(&["roll", "--topic", "t", "--partition", "2"]),
            json!({"command": "roll", "topic": "t", "partition": 2})
        );
        assert!(Cli::try_parse_from(["admin", "roll", "--partition", "2"]).is_err(), "a partition needs its topic");
    }

    #[test]
    fn the_socket_defaults_to_the_data_directory() {
        let cli = Cli::try_parse_from(["admin", "status", "--data-dir", "/srv/sluice", "--json"]).unwrap();
        assert!(cli.args.json, "global flags may follow the command");
        assert_eq!(cli.args.data_dir.join(crate::serve::ADMIN_SOCKET_FILE), PathBuf::from("/srv/sluice/admin.sock"));
    }
}
