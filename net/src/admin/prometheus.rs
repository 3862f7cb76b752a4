//! The Prometheus text exposition (format 0.0.4) of the figures behind the admin
//! `status` and `metrics` commands. Metric names are listed in docs/OPERATIONS.md.

use super::shard_work::{PartitionReport, ShardReport};
use crate::metrics::{merge, merge_by_api, SUMMARY_QUANTILES};
use sluice_engine::latency::Latencies;
use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family with one sample per item: name, type, help, the item's value.
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> f64);

/// Renders every metric family.
pub fn render(version: &str, uptime_ms: u64, reports: &[ShardReport]) -> String {
    let mut out = Exposition::default();
    out.family("sluice_build_info", "gauge", "Always 1; the version label says which sluice runs.");
    out.sample("sluice_build_info", &[("version", version)], 1.0);
    out.family("sluice_uptime_seconds", "gauge", "Seconds since the broker started.");
    out.sample("sluice_uptime_seconds", &[], seconds(uptime_ms * 1000));

    let per_shard: [Family<ShardReport>; 8] = [
        ("sluice_connections_open", "gauge", "Kafka connections open now.", |r| r.connections_open as f64),
        ("sluice_connections_accepted_total", "counter", "Kafka connections accepted.", |r| {
            r.connections_accepted as f64
        }),
        ("sluice_shard_requests_total", "counter", "Kafka requests answered, all APIs.", |r| r.requests as f64),
        (
            "sluice_shard_busy_seconds_total",
            "counter",
            "Time the shard's executor spent running tasks (glommio executor runtime; idle parking and spinning excluded).",
            |r| seconds(r.busy_us),
        ),
        ("sluice_calls_routed_out_total", "counter", "Partition calls this shard sent to their owner shard.", |r| {
            r.calls_routed_out as f64
        }),
        ("sluice_calls_served_for_others_total", "counter", "Partition and group calls this shard ran for other shards.", |r| {
            r.calls_served_for_others as f64
        }),
        ("sluice_fsyncs_total", "counter", "fdatasync calls on segment files.", |r| r.fsync_latencies.count() as f64),
        ("sluice_shard_partitions", "gauge", "Partitions the shard owns.", |r| r.partitions.len() as f64),
    ];
    for (name, kind, help, value) in per_shard {
        out.family(name, kind, help);
        for report in reports {
            out.sample(name, &[("shard", &report.shard.to_string())], value(report));
        }
    }

    out.family("sluice_requests_total", "counter", "Kafka requests answered, by shard and API.");
    for report in reports {
        for (api, latencies) in &report.requests_by_api {
            out.sample(
                "sluice_requests_total",
                &[("shard", &report.shard.to_string()), ("api", api)],
                latencies.count() as f64,
            );
        }
    }
    out.family(
        "sluice_request_latency_seconds",
        "summary",
        "Time from a request decoded to its response encoded, all shards, by API.",
    );
    for (api, latencies) in &merge_by_api(reports.iter().flat_map(|r| &r.requests_by_api)) {
        out.summary("sluice_request_latency_seconds", &[("api", api)], latencies);
    }
    out.family("sluice_fsync_latency_seconds", "summary", "fdatasync latency of segment files, all shards.");
    out.summary("sluice_fsync_latency_seconds", &[], &merge(reports.iter().map(|r| &r.fsync_latencies)));

    let per_partition: [Family<PartitionReport>; 5] = [
        ("sluice_partition_size_bytes", "gauge", "Bytes over all segments.", |p| p.size_bytes as f64),
        ("sluice_partition_segments", "gauge", "Segment files.", |p| p.segments as f64),
        ("sluice_partition_log_start_offset", "gauge", "First offset held.", |p| p.log_start_offset as f64),
        ("sluice_partition_log_end_offset", "gauge", "Offset the next append gets.", |p| p.log_end_offset as f64),
        ("sluice_partition_high_watermark", "gauge", "Offsets below it are visible to consumers.", |p| {
            p.high_watermark as f64
        }),
    ];
    for (name, kind, help, value) in per_partition {
        out.family(name, kind, help);
        for partition in reports.iter().flat_map(|r| &r.partitions) {
            let labels = [
                ("topic", partition.topic.as_str()),
                ("partition", &partition.partition.to_string()),
                ("shard", &partition.shard.to_string()),
            ];
            out.sample(name, &labels, value(partition));
        }
    }
    out.text
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(!help.contains('\n') && !help.contains('\\'), "help text needs no escaping");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                let separator = if i == 0 { "" } else { "," };
                let _ = write!(self.text, "{separator}{label}=\"{}\"", escape_label_value(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A summary's quantile samples, `_sum` and `_count`, in seconds.
    fn summary(&mut self, name: &str, labels: &[(&str, &str)], latencies: &Latencies) {
        for q in SUMMARY_QUANTILES {
            let quantile = q.to_string();
            let mut with_quantile = labels.to_vec();
            with_quantile.push(("quantile", &quantile));
            self.sample(name, &with_quantile, seconds(latencies.quantile_us(q)));
        }
        self.sample(&format!("{name}_sum"), labels, seconds(latencies.sum_us()));
        self.sample(&format!("{name}_count"), labels, latencies.count() as f64);
    }
}

/// Label values escape backslash, double quote and newline (format 0.0.4).
fn escape_label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn report(shard: usize, produce_us: &[u64]) -> ShardReport {
        let mut produce = Latencies::default();
        for us in produce_us {
            produce.record(Duration::from_micros(*us));
        }
        let mut fsyncs = Latencies::default();
        fsyncs.record(Duration::from_millis(2));
        ShardReport {
            shard,
            connections_open: 1,
            connections_accepted: 3,
            requests: produce_us.len() as u64,
            busy_us: 1_500_000,
            calls_routed_out: 4,
            calls_served_for_others: 5,
            partitions: vec![PartitionReport {
                topic: format!("orders\"{shard}"),
                partition: 0,
                shard,
                size_bytes: 4096,
                segments: 2,
                log_start_offset: 0,
                log_end_offset: 100,
                high_watermark: 100,
            }],
            requests_by_api: vec![("Produce".into(), produce)],
            fsync_latencies: fsyncs,
        }
    }

    /// The samples of the exposition as (name with labels, value).
    fn samples(text: &str) -> Vec<(&str, f64)> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("name and value");
                (series, value.parse().expect("a number"))
            })
            .collect()
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples() {
        let text = render("0.1.0", 2500, &[report(0, &[100, 200]), report(1, &[300])]);
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
            } else if !line.starts_with('#') {
                let series = line.split(['{', ' ']).next().unwrap();
                let family = series.trim_end_matches("_sum").trim_end_matches("_count");
                assert_eq!(declared.last(), Some(&family), "{line} outside its family");
            }
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn figures_appear_with_their_labels_in_seconds() {
        let text = render("0.1.0", 2500, &[report(0, &[100, 200]), report(1, &[300])]);
        let samples = samples(&text);
        let value = |series: &str| samples.iter().find(|(s, _)| *s == series).unwrap_or_else(|| panic!("{series}")).1;
        assert_eq!(value("sluice_build_info{version=\"0.1.0\"}"), 1.0);
        assert_eq!(value("sluice_uptime_seconds"), 2.5);
        assert_eq!(value("sluice_shard_busy_seconds_total{shard=\"1\"}"), 1.5);
        assert_eq!(value("sluice_requests_total{shard=\"0\",api=\"Produce\"}"), 2.0);
        assert_eq!(value("sluice_request_latency_seconds_count{api=\"Produce\"}"), 3.0, "merged over shards");
        assert!((value("sluice_request_latency_seconds_sum{api=\"Produce\"}") - 0.0006).abs() < 1e-12);
        assert_eq!(value("sluice_request_latency_seconds{api=\"Produce\",quantile=\"0.5\"}"), 0.0002);
        assert_eq!(value("sluice_fsyncs_total{shard=\"0\"}"), 1.0);
        assert_eq!(value("sluice_fsync_latency_seconds_count"), 2.0);
        assert_eq!(
            value("sluice_partition_log_end_offset{topic=\"orders\\\"1\",partition=\"0\",shard=\"1\"}"),
            100.0,
            "a quote in a label value is escaped"
        );
    }

    #[test]
    fn label_values_escape_what_the_format_requires() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
