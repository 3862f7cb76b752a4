//! `sluice`: the broker process and its tools.

mod acl_cmd;
mod admin_cmd;
mod bench_cmd;
mod client_args;
mod cluster_cmd;
mod cluster_reassign;
mod consume_cmd;
mod coordinator;
mod data_dir_lock;
mod group_cmd;
mod log_level;
mod produce_cmd;
mod schema_cmd;
mod serve;
mod table;
mod topic_cmd;
mod transactions_cmd;
mod user_cmd;

use clap::{Parser, Subcommand};

/// Keeps malformed requests from aborting the process (see `sluice_net::alloc`).
#[global_allocator]
static ALLOCATOR: sluice_net::alloc::ReservingAllocator = sluice_net::alloc::ReservingAllocator;
use std::process::ExitCode;

/// sluice: a Kafka-compatible event streaming broker, thread-per-core on io_uring.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the broker's settings variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the Kafka-compatible broker.
    Serve(serve::ServeArgs),
    /// Create, list, describe, delete and configure topics (over the Kafka protocol).
    Topic {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: topic_cmd::TopicCommand,
    },
    /// List, describe and delete consumer groups, and reset their offsets (over the Kafka protocol).
    Group {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: group_cmd::GroupCommand,
    },
    /// List and describe transactional ids and their open transactions (over the Kafka
    /// protocol).
    Transactions {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: transactions_cmd::TransactionsCommand,
    },
    /// The cluster's brokers, controller and under-replicated or offline partitions (over
    /// the Kafka protocol).
    Cluster {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: cluster_cmd::ClusterCommand,
    },
    /// List, describe, create and delete SCRAM users (over the Kafka protocol, as a super
    /// user; `sluice admin user` makes the first one).
    User {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: user_cmd::UserCommand,
    },
    /// List, create and delete ACLs (over the Kafka protocol).
    Acl {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(subcommand)]
        command: acl_cmd::AclCommand,
    },
    /// List, show, register and delete schemas, and check compatibility (on the Schema
    /// Registry's REST API).
    Schema {
        #[command(flatten)]
        registry: schema_cmd::RegistryArgs,
        #[command(subcommand)]
        command: schema_cmd::SchemaCommand,
    },
    /// Produce records read from standard input, one per line.
    Produce {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(flatten)]
        args: produce_cmd::ProduceArgs,
    },
    /// Print records of a topic.
    Consume {
        #[command(flatten)]
        brokers: client_args::BrokerArgs,
        #[command(flatten)]
        args: consume_cmd::ConsumeArgs,
    },
    /// Ask a running broker on its admin socket: status, partitions, metrics, config,
    /// flush, roll, shutdown.
    Admin(admin_cmd::AdminArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

/// Parses a `name=value` flag (topic configs, headers): split at the first `=`.
fn parse_name_value(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not name=value"))?;
    Ok((name.trim().to_string(), value.to_string()))
}

fn main() -> ExitCode {
    let log_level = log_level::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args, log_level),
        Command::Admin(args) => admin_cmd::run(args),
        Command::Topic { brokers, command } => topic_cmd::run(brokers, command),
        Command::Group { brokers, command } => group_cmd::run(brokers, command),
        Command::Transactions { brokers, command } => transactions_cmd::run(brokers, command),
        Command::Cluster { brokers, command } => cluster_cmd::run(brokers, command),
        Command::User { brokers, command } => user_cmd::run(brokers, command),
        Command::Acl { brokers, command } => acl_cmd::run(brokers, command),
        Command::Schema { registry, command } => schema_cmd::run(registry, command),
        Command::Produce { brokers, args } => produce_cmd::run(brokers, args),
        Command::Consume { brokers, args } => consume_cmd::run(brokers, args),
        Command::Bench(command) => bench_cmd::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice: {error}");
            ExitCode::FAILURE
        }
    }
}
