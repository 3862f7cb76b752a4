//! What the load generator's tasks count. Each worker thread records into its own
//! [`Tally`] (no sharing between threads) and sends it off every second, so that the
//! main thread can print progress and add up the totals.

use crate::open_loop::LatencyRecorder;

/// Messages and payload bytes (key + value) counted in the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Volume {
    /// Messages.
    pub messages: u64,
    /// Key and value bytes.
    pub bytes: u64,
}

impl Volume {
    /// Adds another count.
    pub fn add(&mut self, other: Volume) {
        self.messages += other.messages;
        self.bytes += other.bytes;
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
