//! `sluice`: the broker process and its tools.

mod bench_cmd;
mod data_dir_lock;
mod serve;

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

#[derive(Subcommand)]
enum Command {
    /// Run the Kafka-compatible broker.
    Serve(serve::ServeArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
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
