//! Request metrics of one shard: latencies (count included) per Kafka API, recorded by
//! `server::start_request` for every request it answers; and the summary of a latency
//! record that the admin socket reports.
//!
//! Recording is on the hot path: a `RefCell` borrow and a histogram increment, no locks,
//! no atomics, no allocation (an API's record is allocated once, by its first request).

use kafka_protocol::messages::ApiKey;
use serde::Serialize;
use sluice_engine::latency::Latencies;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// Slots for API keys (Kafka's keys are small integers, < 100 today).
const API_KEY_SLOTS: usize = 128;

/// Per-API request latencies of one shard.
pub struct RequestMetrics {
    by_api_key: RefCell<Vec<Option<Latencies>>>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics { by_api_key: RefCell::new(vec![None; API_KEY_SLOTS]) }
    }
}

impl RequestMetrics {
    /// Records one answered request's latency.
    pub fn record(&self, key: ApiKey, latency: Duration) {
        let slot = key as i16 as usize;
        assert!(slot < API_KEY_SLOTS, "API key {slot} has no metrics slot");
        self.by_api_key.borrow_mut()[slot].get_or_insert_with(Latencies::default).record(latency);
    }

    /// A copy of every API's latencies, by API name (`Produce`, `Fetch`, ...), in API key
    /// order.
    pub fn snapshot(&self) -> Vec<(String, Latencies)> {
        let by_api_key = self.by_api_key.borrow();
        by_api_key
            .iter()
            .enumerate()
            .filter_map(|(slot, latencies)| {
                let key = ApiKey::try_from(slot as i16).ok()?;
                Some((format!("{key:?}"), latencies.as_ref()?.clone()))
            })
            .collect()
    }
}

/// Adds up several shards' latency records into one.
pub fn merge<'a>(records: impl IntoIterator<Item = &'a Latencies>) -> Latencies {
    let mut merged = Latencies::default();
    for record in records {
        merged.add(record);
    }
    merged
}

/// Adds up several shards' per-API records into one per API, by name.
pub fn merge_by_api<'a>(per_shard: impl IntoIterator<Item = &'a (String, Latencies)>) -> BTreeMap<String, Latencies> {
    let mut merged: BTreeMap<String, Latencies> = BTreeMap::new();
    for (api, latencies) in per_shard {
        merged.entry(api.clone()).or_default().add(latencies);
    }
    merged
}

/// The quantiles every latency summary reports (also Prometheus `quantile` labels).
pub const SUMMARY_QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// A latency record in a few numbers (microseconds; all zero when nothing was recorded).
/// The broker's metrics and the load generator's reports both use it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest value.
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarises a record.
    pub fn of(latencies: &Latencies) -> Self {
        Self::from_quantiles(latencies.count(), |q| latencies.quantile_us(q), latencies.max_us())
    }

    /// Summarises any histogram, given its count, its value at a quantile, and its maximum.
    pub fn from_quantiles(count: u64, quantile_us: impl Fn(f64) -> u64, max_us: u64) -> Self {
        let [p50_us, p90_us, p99_us, p999_us] = SUMMARY_QUANTILES.map(&quantile_us);
        LatencySummary { count, p50_us, p90_us, p99_us, p999_us, p9999_us: quantile_us(0.9999), max_us }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recorded_per_api_in_api_key_order() {
        let metrics = RequestMetrics::default();
        metrics.record(ApiKey::Fetch, Duration::from_millis(5));
        for us in 1..=100 {
            metrics.record(ApiKey::Produce, Duration::from_micros(us));
        }
        let snapshot = metrics.snapshot();
        let names: Vec<&str> = snapshot.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["Produce", "Fetch"]);
        let summary = LatencySummary::of(&snapshot[0].1);
        assert_eq!(
            summary,
            LatencySummary { count: 100, p50_us: 50, p90_us: 90, p99_us: 99, p999_us: 100, p9999_us: 100, max_us: 100 }
        );
        assert_eq!(snapshot[0].1.sum_us(), 5050);
    }

    #[test]
    fn shards_merge_per_api_by_name() {
        let (shard_0, shard_1) = (RequestMetrics::default(), RequestMetrics::default());
        shard_0.record(ApiKey::Produce, Duration::from_micros(10));
        shard_1.record(ApiKey::Produce, Duration::from_micros(30));
        shard_1.record(ApiKey::Metadata, Duration::from_micros(7));
        let (snapshot_0, snapshot_1) = (shard_0.snapshot(), shard_1.snapshot());
        let merged = merge_by_api(snapshot_0.iter().chain(&snapshot_1));
        assert_eq!(merged.keys().collect::<Vec<_>>(), ["Metadata", "Produce"]);
        assert_eq!((merged["Produce"].count(), merged["Produce"].sum_us()), (2, 40));
        assert_eq!(merged["Metadata"].count(), 1);
        let all = merge(merged.values());
        assert_eq!((all.count(), all.max_us()), (3, 30));
    }

    #[test]
    fn an_empty_record_summarises_to_zeros() {
        assert_eq!(LatencySummary::of(&Latencies::default()).count, 0);
        assert_eq!(LatencySummary::of(&Latencies::default()).max_us, 0);
    }
}
