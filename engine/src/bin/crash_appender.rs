//! Test helper for the crash test (`tests/crash.rs`): appends batches to a log with an
//! fsync per append from several concurrent tasks, printing each acknowledged batch, until
//! it is killed. Not part of the broker.
//!
//! Usage: `crash_appender <partition-dir> <run-number>`. Prints `recovered <log end>`
//! once the log is open, then `ack <base offset> <last offset> <seed>` per durable batch.

use sluice_engine::batch_builder::synthetic_batch;
use sluice_engine::{FlushPolicy, LogConfig, PartitionLog};
use std::io::Write;
use std::rc::Rc;

/// Concurrent appenders, so acknowledgements come from group commits.
const APPENDERS: u64 = 4;
/// Upper bound on batches per appender: the parent kills the process long before.
const BATCHES_PER_APPENDER_MAX: u64 = 100_000;

/// The shape of the batch for `seed`: records and value size vary so that batches straddle
/// pages, chunks and segments differently. The crash test rebuilds batches from it.
pub fn batch_shape(seed: u64) -> (usize, usize) {
    (1 + (seed % 7) as usize, (seed % 13) as usize * 150)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: crash_appender <partition-dir> <run>");
    let run: u64 = args.next().and_then(|r| r.parse().ok()).expect("run number");
    let executor =
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(2 << 20).make().expect("executor");
    executor.run(async move {
        let config = LogConfig { segment_bytes: 64 * 1024, flush: FlushPolicy::EveryAppend, ..LogConfig::default() };
        let (log, _) = PartitionLog::open(dir.as_ref(), config).await.expect("open");
        println!("recovered {}", log.log_end_offset());
        std::io::stdout().flush().expect("stdout");
        let log = Rc::new(log);
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|appender| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    for i in 0..BATCHES_PER_APPENDER_MAX {
                        let seed = run * 10_000_000 + appender * 1_000_000 + i;
                        let (records, value_bytes) = batch_shape(seed);
                        let batch = synthetic_batch(records, value_bytes, seed, seed as i64);
                        let info = log.append(batch, 0).await.expect("append");
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ack {} {} {seed}", info.base_offset, info.last_offset).expect("stdout");
                        out.flush().expect("stdout");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
}
