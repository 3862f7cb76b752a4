//! Open-loop load with coordinated-omission correction, and the latency recorder of the
//! Kafka load generator.
//!
//! A closed-loop generator sends the next message only after the previous answer, so
//! when the broker stalls it simply stops sending, and the stall shows up as one slow
//! sample instead of the many messages a real producer would have had waiting ("coordinated
//! omission"). An open-loop generator has a schedule: message *i* is due at
//! `start + i / rate`, whatever happened before. Latency is measured from that intended
//! time, not from when the message actually went out, so every message that should have
//! been sent during a stall carries the stall in its latency.

use hdrhistogram::Histogram;
pub use sluice_net::metrics::LatencySummary;
use std::time::{Duration, Instant};

/// When each message of a fixed-rate load is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    /// Whole nanoseconds, so that due times and due counts agree exactly (float
    /// arithmetic could leave a message due by one but not by the other).
    interval_ns: u64,
    /// Messages in the whole run.
    total: u64,
    /// Messages handed out so far.
    issued: u64,
}

impl Schedule {
    /// `rate_per_s` messages a second for `duration`, starting at `start`.
    pub fn new(start: Instant, rate_per_s: f64, duration: Duration) -> Self {
        assert!(rate_per_s > 0.0 && rate_per_s.is_finite(), "a schedule needs a positive rate");
        let interval_ns = ((1e9 / rate_per_s).round() as u64).max(1);
        let total = (duration.as_nanos() / u128::from(interval_ns)) as u64;
        Schedule { start, interval_ns, total, issued: 0 }
    }

    /// When message `index` is due.
    pub fn intended(&self, index: u64) -> Instant {
        self.start + Duration::from_nanos(index.saturating_mul(self.interval_ns))
    }

    /// The indexes of messages due by `now` and not handed out yet, at most `limit` of
    /// them (the sender's batch bound); later calls hand out the rest.
    pub fn take_due(&mut self, now: Instant, limit: u64) -> std::ops::Range<u64> {
        let elapsed_ns = now.saturating_duration_since(self.start).as_nanos();
        let due = u64::try_from(elapsed_ns / u128::from(self.interval_ns) + 1).unwrap_or(u64::MAX).min(self.total);
        let end = due.min(self.issued.saturating_add(limit)).max(self.issued);
        let taken = self.issued..end;
        self.issued = end;
        taken
    }

    /// Whether every message has been handed out.
    pub fn is_done(&self) -> bool {
        self.issued == self.total
    }

    /// When the next message not yet handed out is due (`None` when done).
    pub fn next_due(&self) -> Option<Instant> {
        (!self.is_done()).then(|| self.intended(self.issued))
    }
}

/// Latencies in microseconds, from each message's intended send time to its answer.
#[derive(Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
}

/// The largest latency recorded exactly; longer ones are recorded as this.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder { histogram: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds") }
    }
}

impl LatencyRecorder {
    /// Records one answer that arrived at `answered` for a message due at `intended`.
    pub fn record(&mut self, intended: Instant, answered: Instant) {
        let micros = answered.saturating_duration_since(intended).as_micros();
        self.record_us(u64::try_from(micros).unwrap_or(LATENCY_US_MAX));
    }

    /// The latency at quantile `q` (0.0–1.0), in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.histogram.value_at_quantile(q)
    }

    /// The largest latency recorded, in microseconds.
    pub fn max_us(&self) -> u64 {
        self.histogram.max()
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Records a latency already in microseconds (clamped into the histogram's range).
    pub fn record_us(&mut self, micros: u64) {
        self.histogram.record(micros.clamp(1, LATENCY_US_MAX)).expect("clamped into the histogram's range");
    }

    /// Adds every latency of `other` (same bounds, so it cannot fail).
    pub fn add(&mut self, other: &LatencyRecorder) {
        self.histogram.add(&other.histogram).expect("recorders share their bounds");
    }

    /// Hands out what was recorded and starts empty (a reporting interval).
    pub fn take(&mut self) -> LatencyRecorder {
        let taken = self.clone();
        self.histogram.reset();
        taken
    }

    /// The usual percentiles.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::from_quantiles(self.count(), |q| self.quantile_us(q), self.max_us())
    }

    /// Points of the percentile curve, (percentile, latency µs), from the median out to the
    /// maximum, spaced evenly on the "nines" scale that latency plots use.
    pub fn percentile_curve(&self) -> Vec<(f64, u64)> {
        if self.count() == 0 {
            return Vec::new();
        }
        let mut points = Vec::new();
        let mut nines = 0.0f64;
        while nines <= 6.0 {
            let quantile = 1.0 - 10f64.powf(-nines);
            points.push((100.0 * quantile, self.quantile_us(quantile)));
            nines += 0.05;
        }
        points.push((100.0, self.max_us()));
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_hands_out_what_is_due_and_no_more() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1000.0, Duration::from_secs(1));
        assert_eq!(schedule.take_due(start, 100), 0..1, "message 0 is due at the start");
        assert_eq!(schedule.take_due(start + Duration::from_micros(9_500), 100), 1..10);
        assert_eq!(schedule.take_due(start + Duration::from_millis(500), 100), 10..110, "bounded per call");
        assert_eq!(schedule.next_due(), Some(start + Duration::from_millis(110)));
        assert_eq!(schedule.take_due(start + Duration::from_secs(5), u64::MAX), 110..1000);
        assert!(schedule.is_done() && schedule.next_due().is_none());
        assert_eq!(schedule.take_due(start + Duration::from_secs(6), 100), 1000..1000);
    }

    /// A simulated broker that answers in 0.1 ms (ten times the offered rate, so a backlog
    /// clears) but stalls for 1 s in the middle of a 10 s run at 1000 messages/s. Measured from the intended times, the stall reaches the
    /// tail percentiles; measured from the actual send times (what a closed-loop tool
    /// does), it would be one slow message in 10 000 and vanish below p99.9.
    #[test]
    fn a_stall_shows_in_the_tail_when_measured_from_intended_times() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1000.0, Duration::from_secs(10));
        let service = Duration::from_micros(100);
        let (stall_from, stall_until) = (start + Duration::from_secs(5), start + Duration::from_secs(6));
        let mut corrected = LatencyRecorder::default();
        let mut naive = LatencyRecorder::default();
        // One message at a time, as a closed loop would, but scheduled open-loop.
        let mut now = start;
        while !schedule.is_done() {
            let due = schedule.next_due().expect("not done");
            now = now.max(due);
            let taken = schedule.take_due(now, 1);
            assert_eq!(taken.end - taken.start, 1, "the message due now is handed out");
            for index in taken {
                let sent = now;
                let mut answered = sent + service;
                if answered > stall_from && sent < stall_until {
                    answered = stall_until + service;
                }
                corrected.record(schedule.intended(index), answered);
                naive.record(sent, answered);
                now = answered;
            }
        }
        assert_eq!(corrected.count(), 10_000);
        assert!(corrected.quantile_us(0.5) < 2_000, "the median is the service time");
        assert!(corrected.quantile_us(0.99) >= 500_000, "p99 carries the stall: {}", corrected.quantile_us(0.99));
        assert!(corrected.max_us() >= 1_000_000);
        assert!(naive.quantile_us(0.999) < 2_000, "from send times the stall hides: {}", naive.quantile_us(0.999));
        assert!(naive.max_us() >= 900_000, "one message saw it");
    }
}
