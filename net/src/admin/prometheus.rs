//! The Prometheus text exposition (format 0.0.4) of the figures behind the admin
//! `status` and `metrics` commands. Metric names are listed in docs/OPERATIONS.md.

use super::shard_work::{PartitionReport, ReplicaReport, ShardReport};
use crate::cluster::ClusterFigures;
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

    let per_partition: [Family<PartitionReport>; 7] = [
        ("sluice_partition_size_bytes", "gauge", "Bytes over all segments.", |p| p.size_bytes as f64),
        ("sluice_partition_segments", "gauge", "Segment files.", |p| p.segments as f64),
        ("sluice_partition_log_start_offset", "gauge", "First offset held.", |p| p.log_start_offset as f64),
        ("sluice_partition_log_end_offset", "gauge", "Offset the next append gets.", |p| p.log_end_offset as f64),
        ("sluice_partition_high_watermark", "gauge", "Offsets below it are visible to consumers.", |p| {
            p.high_watermark as f64
        }),
        (
            "sluice_partition_last_stable_offset",
            "gauge",
            "Offsets below it are visible to read_committed consumers.",
            |p| p.last_stable_offset as f64,
        ),
        ("sluice_partition_open_transactions", "gauge", "Transactions open in the partition.", |p| {
            p.open_transactions as f64
        }),
    ];
    for (name, kind, help, value) in per_partition {
        out.family(name, kind, help);
        for partition in reports.iter().flat_map(|r| &r.partitions) {
            out.partition_sample(name, partition, value(partition));
        }
    }
    let age = "sluice_partition_oldest_open_transaction_age_seconds";
    out.family(age, "gauge", "How long the oldest open transaction has held the last stable offset back.");
    for partition in reports.iter().flat_map(|r| &r.partitions) {
        if let Some(ms) = partition.oldest_open_transaction_age_ms {
            out.partition_sample(age, partition, ms as f64 / 1000.0);
        }
    }
    if let Some(cluster) = reports.iter().find_map(|r| r.cluster.as_ref()) {
        render_cluster(&mut out, cluster, reports);
    }
    out.text
}

impl Exposition {
    /// A sample of a per-partition family, labelled with the partition.
    fn partition_sample(&mut self, name: &str, partition: &PartitionReport, value: f64) {
        let (index, shard) = (partition.partition.to_string(), partition.shard.to_string());
        self.sample(name, &[("topic", &partition.topic), ("partition", &index), ("shard", &shard)], value);
    }
}

/// The replication figures of a cluster member (Kafka's names where it has them).
fn render_cluster(out: &mut Exposition, cluster: &ClusterFigures, reports: &[ShardReport]) {
    let figures: [Family<ClusterFigures>; 7] = [
        ("sluice_cluster_live_brokers", "gauge", "Registered, unfenced brokers.", |c| c.live_brokers as f64),
        (
            "sluice_cluster_under_replicated_partitions",
            "gauge",
            "Partitions with fewer in-sync replicas than replicas.",
            |c| c.under_replicated as f64,
        ),
        ("sluice_cluster_offline_partitions", "gauge", "Partitions without a leader.", |c| c.offline as f64),
        ("sluice_cluster_reassigning_partitions", "gauge", "Partitions being reassigned.", |c| c.reassigning as f64),
        ("sluice_cluster_leading_partitions", "gauge", "Partitions this broker leads.", |c| c.leading as f64),
        ("sluice_controller_active", "gauge", "1 on the active controller, else 0.", |c| {
            f64::from(u8::from(c.active_controller))
        }),
        ("sluice_cluster_metadata_version", "gauge", "Metadata records applied.", |c| c.metadata_version as f64),
    ];
    for (name, kind, help, value) in figures {
        out.family(name, kind, help);
        out.sample(name, &[], value(cluster));
    }
    let per_replica: [Family<ReplicaReport>; 3] = [
        ("sluice_partition_in_sync_replicas", "gauge", "The partition's ISR size, as this broker last saw it.", |r| {
            r.in_sync_replicas as f64
        }),
        ("sluice_partition_replicas", "gauge", "The partition's replica count.", |r| r.replicas as f64),
        ("sluice_partition_leading", "gauge", "1 where this broker leads the partition.", |r| {
            f64::from(u8::from(r.leading))
        }),
    ];
    let replicas = || reports.iter().flat_map(|r| &r.partitions).filter_map(|p| Some((p, p.replica.as_ref()?)));
    for (name, kind, help, value) in per_replica {
        out.family(name, kind, help);
        for (partition, replica) in replicas() {
            out.partition_sample(name, partition, value(replica));
        }
    }
    let lag = "sluice_partition_max_follower_lag_records";
    out.family(lag, "gauge", "Leader only: the most records a follower is behind the log end.");
    for (partition, replica) in replicas() {
        if let Some(records) = replica.max_follower_lag {
            out.partition_sample(lag, partition, records as f64);
        }
    }
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
                last_stable_offset: 90,
                open_transactions: shard,
                oldest_open_transaction_age_ms: (shard > 0).then_some(2_500),
                replica: None,
            }],
            requests_by_api: vec![("Produce".into(), produce)],
            fsync_latencies: fsyncs,
            cluster: None,
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
        assert_eq!(
            value("sluice_partition_last_stable_offset{topic=\"orders\\\"0\",partition=\"0\",shard=\"0\"}"),
            90.0
        );
        assert_eq!(value("sluice_partition_open_transactions{topic=\"orders\\\"1\",partition=\"0\",shard=\"1\"}"), 1.0);
        let ages: Vec<_> = samples.iter().filter(|(s, _)| s.starts_with("sluice_partition_oldest_open")).collect();
        assert_eq!(ages.len(), 1, "only a partition with an open transaction has an age");
        assert_eq!(ages[0].1, 2.5);
    }

    #[test]
    fn a_cluster_member_reports_replication_figures() {
        let mut leader = report(0, &[100]);
        leader.partitions[0].replica = Some(ReplicaReport {
            leading: true,
            leader: 1,
            leader_epoch: 3,
            replicas: 3,
            in_sync_replicas: 2,
            max_follower_lag: Some(40),
        });
        leader.cluster = Some(ClusterFigures {
            live_brokers: 3,
            partitions: 4,
            under_replicated: 1,
            offline: 0,
            reassigning: 0,
            leading: 2,
            active_controller: true,
            metadata_version: 17,
        });
        let text = render("0.1.0", 1000, &[leader, report(1, &[])]);
        let samples = samples(&text);
        let value = |series: &str| samples.iter().find(|(s, _)| *s == series).unwrap_or_else(|| panic!("{series}")).1;
        assert_eq!(value("sluice_cluster_under_replicated_partitions"), 1.0);
        assert_eq!(value("sluice_controller_active"), 1.0);
        let labels = "{topic=\"orders\\\"0\",partition=\"0\",shard=\"0\"}";
        assert_eq!(value(&format!("sluice_partition_in_sync_replicas{labels}")), 2.0);
        assert_eq!(value(&format!("sluice_partition_max_follower_lag_records{labels}")), 40.0);
        assert_eq!(value(&format!("sluice_partition_leading{labels}")), 1.0);
        assert!(
            !text.contains("sluice_partition_leading{topic=\"orders\\\"1\""),
            "a partition without a replica reports no replica figures"
        );
        assert!(!render("0.1.0", 1000, &[report(0, &[])]).contains("sluice_cluster_"), "a single node has none");
    }

    #[test]
    fn label_values_escape_what_the_format_requires() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
