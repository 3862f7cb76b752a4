//! What the load generator's tasks count. Each worker thread records into its own
//! [`Tally`] (no sharing between threads) and sends it off every second, so that the
//! main thread can print progress and add up the totals.

use crate::open_loop::LatencyRecorder;

/// Messages and payload bytes (key + value) counted in the measured window, and when
/// the first and the last of them were counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Volume {
    /// Messages.
    pub messages: u64,
    /// Key and value bytes.
    pub bytes: u64,
    /// When the first one was acknowledged or arrived (ns since the epoch; 0: none yet).
    pub first_ns: u64,
    /// When the last one was.
    pub last_ns: u64,
}

impl Volume {
    /// Counts one message of `bytes` bytes, done at `at_ns`.
    pub fn count(&mut self, bytes: u64, at_ns: u64) {
        self.messages += 1;
        self.bytes += bytes;
        self.first_ns = if self.first_ns == 0 { at_ns } else { self.first_ns.min(at_ns) };
        self.last_ns = self.last_ns.max(at_ns);
    }

    /// Adds another count.
    pub fn add(&mut self, other: Volume) {
        self.messages += other.messages;
        self.bytes += other.bytes;
        if other.messages > 0 {
            self.first_ns = if self.first_ns == 0 { other.first_ns } else { self.first_ns.min(other.first_ns) };
            self.last_ns = self.last_ns.max(other.last_ns);
        }
    }

    /// Seconds the count spans: from the first answer (or arrival) to the last. A broker
    /// that keeps up answers the window's messages over the window's length; one slower
    /// than the schedule answers them over a longer time, which is then its throughput's
    /// denominator. `window_seconds` stands in when the span is degenerate (at most one
    /// message).
    pub fn seconds(&self, window_seconds: f64) -> f64 {
        if self.messages < 2 || self.last_ns <= self.first_ns {
            return window_seconds;
        }
        (self.last_ns - self.first_ns) as f64 / 1e9
    }
}

/// The measured window: messages intended (produce) or stamped (consume) before
/// `from_ns` are warm-up and not counted; from `until_ns` on they are not counted either.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start, nanoseconds since the Unix epoch.
    pub from_ns: u64,
    /// End (exclusive).
    pub until_ns: u64,
}

impl Window {
    /// Whether a message intended at `ns` is measured.
    pub fn contains(&self, ns: u64) -> bool {
        (self.from_ns..self.until_ns).contains(&ns)
    }
}

/// What one worker thread counted since its last report.
#[derive(Clone, Default)]
pub struct Tally {
    /// Produced messages the broker acknowledged (measured window only).
    pub acked: Volume,
    /// Produced messages the broker refused or that failed (all, warm-up included).
    pub failed: u64,
    /// The first failure seen, for the report.
    pub first_failure: Option<String>,
    /// Intended send time → acknowledgement.
    pub ack_latency: LatencyRecorder,
    /// Records consumed (measured window only, or all in consume mode).
    pub consumed: Volume,
    /// Stamp in the value (intended send time) → arrival at the consumer.
    pub e2e_latency: LatencyRecorder,
    /// Fetch request → response (consume mode).
    pub fetch_latency: LatencyRecorder,
}

impl Tally {
    /// Records a failure.
    pub fn fail(&mut self, messages: u64, reason: impl FnOnce() -> String) {
        self.failed += messages;
        if self.first_failure.is_none() {
            self.first_failure = Some(reason());
        }
    }

    /// Adds another thread's tally.
    pub fn add(&mut self, other: &Tally) {
        self.acked.add(other.acked);
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure.clone_from(&other.first_failure);
        }
        self.ack_latency.add(&other.ack_latency);
        self.consumed.add(other.consumed);
        self.e2e_latency.add(&other.e2e_latency);
        self.fetch_latency.add(&other.fetch_latency);
    }

    /// Hands out the counts so far and starts from zero.
    pub fn take(&mut self) -> Tally {
        std::mem::take(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_spans_the_answers_not_the_schedule() {
        // 10 s window at 1000 msg/s. A broker that keeps up answers over ~10 s; one that
        // falls behind answers the same messages over 20 s, and that is its rate.
        let second = 1_000_000_000u64;
        let mut keeping_up = Volume::default();
        let mut behind = Volume::default();
        for i in 0..10_000u64 {
            let intended = 100 * second + i * second / 1000;
            keeping_up.count(100, intended + 2_000_000);
            behind.count(100, intended + 2_000_000 + i * second / 1000);
        }
        assert!((keeping_up.seconds(10.0) - 10.0).abs() < 0.01);
        assert!((behind.seconds(10.0) - 20.0).abs() < 0.01);
        let mut merged = Volume::default();
        merged.add(keeping_up);
        merged.add(Volume::default());
        assert_eq!((merged.first_ns, merged.last_ns), (keeping_up.first_ns, keeping_up.last_ns), "empty adds nothing");
        assert_eq!(Volume::default().seconds(3.0), 3.0);
    }
}
