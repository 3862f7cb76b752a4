//! Renders benchmark results as Markdown: printed at the end of a run and pasted into
//! docs/BENCHMARKS.md.

use crate::storage::{fsync_label, StorageReport};
use std::fmt::Write;

/// A Markdown table of the storage benchmark, with the raw yardstick and each case's ratio.
pub fn storage_markdown(report: &StorageReport) -> String {
    let mut out = String::new();
    let config = &report.config;
    let _ = writeln!(
        out,
        "Records of {} B in batches of {} records ({} B per batch), {} appends in flight per partition, {} s per case.\n",
        config.record_bytes,
        config.batch_records,
        report.batch_bytes,
        config.in_flight_per_partition,
        config.duration.as_secs_f64()
    );
    let _ = writeln!(out, "| raw O_DIRECT 1 MiB writes, pre-allocated | MB/s |\n|---|---:|");
    for r in &report.raw {
        let _ = writeln!(
            out,
            "| queue depth {}, fsync {} | {:.0} |",
            r.queue_depth,
            fsync_label(r.fsync_every_bytes),
            r.mb_per_s()
        );
    }
    let _ = writeln!(
        out,
        "\nEach case is compared with a raw run (queue depth 32) measured just before it.\n\n| partitions | shards | flush | MB/s | records/s | p50 µs | p99 µs | p999 µs | raw MB/s | vs raw |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for case in &report.cases {
        let h = &case.latency_us;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.0} | {} | {} | {} | {:.0} | {:.0}% |",
            case.partitions,
            case.shards,
            case.flush.label(),
            case.mb_per_s(),
            case.records_per_s(),
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            case.raw_adjacent.mb_per_s(),
            100.0 * case.ratio_to_raw()
        );
    }
    out
}
