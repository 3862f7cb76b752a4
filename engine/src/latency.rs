//! A latency record: an HDR histogram in microseconds plus the exact sum, the shape every
//! per-shard latency metric takes (fsyncs here, requests in the broker). Recording never
//! allocates; records of several shards add up into one.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Longest latency held exactly (60 s, in microseconds); longer ones count as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// Latencies from 1 µs to [`LATENCY_US_MAX`] at 3 significant digits (about 0.1 % error
/// at any quantile; about 140 KiB each).
#[derive(Clone)]
pub struct Latencies {
    histogram_us: Histogram<u64>,
    sum_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            histogram_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("static bounds are valid"),
            sum_us: 0,
        }
    }
}

impl Latencies {
    /// Records one latency; beyond [`LATENCY_US_MAX`] it counts as that, below 1 µs as 1 µs.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, LATENCY_US_MAX);
        self.histogram_us.saturating_record(us);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Adds another record's values into this one.
    pub fn add(&mut self, other: &Latencies) {
        // Every record has the same bounds, so adding cannot go out of range.
        self.histogram_us.add(&other.histogram_us).expect("latency records share their bounds");
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.histogram_us.len()
    }

    /// Sum of the values recorded, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// The value at quantile `q` (0..=1) in microseconds, to the histogram's precision;
    /// 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        assert!((0.0..=1.0).contains(&q), "quantile {q} outside 0..=1");
        if self.count() == 0 {
            return 0;
        }
        self.histogram_us.value_at_quantile(q)
    }

    /// The largest value recorded in microseconds, to the histogram's precision; 0 when empty.
    pub fn max_us(&self) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        self.histogram_us.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_add_up_across_shards_with_exact_counts_and_sums() {
        let (mut shard_0, mut shard_1) = (Latencies::default(), Latencies::default());
        for us in 1..=900 {
            shard_0.record(Duration::from_micros(us));
        }
        for _ in 0..100 {
            shard_1.record(Duration::from_secs(1));
        }
        let mut merged = Latencies::default();
        merged.add(&shard_0);
        merged.add(&shard_1);
        assert_eq!(merged.count(), 1000);
        assert_eq!(merged.sum_us(), 900 * 901 / 2 + 100 * 1_000_000);
        assert_eq!(merged.quantile_us(0.5), 500);
        assert!(merged.quantile_us(0.9) <= 900);
        assert!(merged.quantile_us(0.99) >= 999_000, "the slow shard owns the tail");
        assert!(merged.max_us() >= 999_000);
    }

    #[test]
    fn out_of_range_latencies_are_clamped_not_lost() {
        let mut record = Latencies::default();
        record.record(Duration::from_secs(3600));
        record.record(Duration::ZERO);
        assert_eq!(record.count(), 2);
        assert_eq!(record.sum_us(), LATENCY_US_MAX + 1);
        assert!(record.max_us() >= LATENCY_US_MAX * 999 / 1000);
        assert_eq!(Latencies::default().quantile_us(0.99), 0, "empty");
    }
}
