//! One producer of the load generator: messages are made on schedule (open loop) or as
//! fast as the broker takes them, gathered into one batch per partition until the batch
//! is full or has lingered long enough, and sent as Produce requests with up to
//! `max_in_flight` outstanding per connection — what a Kafka client does with
//! `batch.size`, `linger.ms` and `max.in.flight.requests.per.connection`.
//!
//! Each message's latency runs from its intended send time to the acknowledgement, so a
//! broker stall is charged to every message that should have gone out during it.

use crate::open_loop::Schedule;
use crate::route::TopicRoute;
use crate::stats::{Tally, Window};
use crate::workload::{fill_value, unix_nanos, KeyDistribution, SizeDistribution};
use bytes::Bytes;
use glommio::sync::Semaphore;
use kafka_protocol::messages::ProduceResponse;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use sluice_client::ops::produce_request;
use sluice_client::partitioner::partition_for_key;
use sluice_client::ClientError;
use sluice_engine::batch::Compression;
use sluice_engine::batch_builder::BatchBuilder;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Most messages taken from the schedule at one wake-up (bounds the work between
/// yields when the producer is behind).
const TAKE_PER_WAKE_MAX: u64 = 4096;
/// Bytes a record adds to a batch beyond its key and value (length, attributes, deltas,
/// header count): an estimate, used only to decide when a batch is full.
const RECORD_OVERHEAD_BYTES: usize = 16;
/// The shortest sleep between wake-ups of a scheduled producer. Messages due meanwhile are
/// taken together at the next wake-up (their latency still counts from their intended
/// times); without it a producer at a high rate would spin on its own CPU, which on a
/// small machine is the broker's CPU too.
const WAKE_INTERVAL_MIN: Duration = Duration::from_micros(200);

/// How a producer behaves: the same for every producer of a run.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// Topic to write.
    pub topic: String,
    /// Value sizes.
    pub sizes: SizeDistribution,
    /// Keys.
    pub keys: KeyDistribution,
    /// -1 (all), 1 or 0.
    pub acks: i16,
    /// A batch is sent once it holds this many bytes (`batch.size`).
    pub batch_bytes: usize,
    /// ... or once its first message waited this long (`linger.ms`).
    pub linger: Duration,
    /// Requests outstanding per connection.
    pub max_in_flight: usize,
    /// Batch compression.
    pub compression: Compression,
    /// The broker's time limit for a Produce request.
    pub request_timeout: Duration,
}

/// When a producer makes its messages.
pub enum Pace {
    /// On a fixed-rate schedule (open loop).
    Scheduled(Schedule),
    /// As fast as the in-flight limit allows, until `until` or `messages` are made.
    Unlimited {
        /// Stop making messages at this time.
        until: Instant,
        /// Stop after this many messages (if set).
        messages: Option<u64>,
    },
}

/// A batch being filled for one partition.
struct OpenBatch {
    builder: BatchBuilder,
    /// Each message's intended send time (ns since the epoch) and payload bytes.
    messages: Vec<(u64, u32)>,
    opened: Instant,
}

/// A batch on its way: what is needed to account for it when the answer comes.
struct SentBatch {
    partition: i32,
    messages: Vec<(u64, u32)>,
}

/// Runs one producer until its pace is exhausted and every request is answered.
pub async fn run_producer(
    id: usize,
    settings: Rc<ProducerSettings>,
    route: TopicRoute,
    mut pace: Pace,
    window: Window,
    tally: Rc<RefCell<Tally>>,
) {
    let partitions = route.partitions();
    let gates: Vec<Rc<Semaphore>> =
        route.connections.iter().map(|_| Rc::new(Semaphore::new(settings.max_in_flight as u64))).collect();
    let mut producer = Producer {
        settings: settings.clone(),
        open: (0..partitions).map(|_| None).collect(),
        ready: Vec::new(),
        sticky: (id as i32) % partitions,
        sequence: 0,
        rng: SmallRng::seed_from_u64(0x5eed ^ id as u64),
        key: Vec::new(),
        value: Vec::new(),
    };
    loop {
        let now = Instant::now();
        let more = match &mut pace {
            Pace::Scheduled(schedule) => {
                for index in schedule.take_due(now, TAKE_PER_WAKE_MAX) {
                    producer.add(unix_nanos(schedule.intended(index)), now, partitions);
                }
                !schedule.is_done()
            }
            Pace::Unlimited { until, messages } => {
                // Make messages until one batch is full, as an application calling
                // produce() in a loop does until the client's queue pushes back.
                let mut made = 0;
                while producer.ready.is_empty() && made < TAKE_PER_WAKE_MAX && *messages != Some(0) {
                    producer.add(unix_nanos(now), now, partitions);
                    made += 1;
                    if let Some(left) = messages {
                        *left -= 1;
                    }
                }
                now < *until && *messages != Some(0)
            }
        };
        producer.close_lingered(now, !more);
        send_ready(&mut producer, &route, &gates, window, &tally).await;
        if !more {
            break;
        }
        if let Pace::Scheduled(schedule) = &pace {
            let wake = [schedule.next_due(), producer.next_linger_deadline()].into_iter().flatten().min();
            let wait = wake.map_or(WAKE_INTERVAL_MIN, |at| at.saturating_duration_since(Instant::now()));
            glommio::timer::sleep(wait.max(WAKE_INTERVAL_MIN)).await;
        } else {
            glommio::yield_if_needed().await;
        }
    }
    // Every request answered: all permits back.
    for gate in &gates {
        let _all = gate.acquire_permit(settings.max_in_flight as u64).await;
    }
}

struct Producer {
    settings: Rc<ProducerSettings>,
    open: Vec<Option<OpenBatch>>,
    /// Batches to send now.
    ready: Vec<(i32, OpenBatch)>,
    /// The partition null-keyed messages go to until its batch is sent.
    sticky: i32,
    sequence: u64,
    rng: SmallRng,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Producer {
    /// Makes one message intended at `intended_ns` and adds it to its partition's batch.
    fn add(&mut self, intended_ns: u64, now: Instant, partitions: i32) {
        let size = self.settings.sizes.sample(&mut self.rng);
        fill_value(&mut self.value, size, intended_ns, self.sequence);
        let keyed = self.settings.keys.key(self.sequence, &mut self.rng, &mut self.key);
        self.sequence += 1;
        let partition = if keyed { partition_for_key(&self.key, partitions) } else { self.sticky };
        let record_bytes = size + if keyed { self.key.len() } else { 0 } + RECORD_OVERHEAD_BYTES;
        let slot = &mut self.open[partition as usize];
        if slot.as_ref().is_some_and(|batch| batch.builder.size_bytes() + record_bytes > self.settings.batch_bytes) {
            let full = slot.take().expect("checked");
            self.make_ready(partition, full, partitions);
        }
        let wall_ms = (intended_ns / 1_000_000) as i64;
        let batch = self.open[partition as usize].get_or_insert_with(|| OpenBatch {
            builder: BatchBuilder::new(wall_ms),
            messages: Vec::new(),
            opened: now,
        });
        let key = keyed.then_some(self.key.as_slice());
        batch.builder.push(key, Some(&self.value), &[], wall_ms);
        batch.messages.push((intended_ns, (record_bytes - RECORD_OVERHEAD_BYTES) as u32));
    }

    fn make_ready(&mut self, partition: i32, batch: OpenBatch, partitions: i32) {
        if partition == self.sticky {
            self.sticky = (self.sticky + 1) % partitions;
        }
        self.ready.push((partition, batch));
    }

    /// Moves batches that lingered long enough (all of them when `all`) to `ready`.
    fn close_lingered(&mut self, now: Instant, all: bool) {
        let partitions = self.open.len() as i32;
        for partition in 0..partitions {
            let slot = &mut self.open[partition as usize];
            if slot.as_ref().is_some_and(|b| all || now.duration_since(b.opened) >= self.settings.linger) {
                let batch = slot.take().expect("checked");
                self.make_ready(partition, batch, partitions);
            }
        }
    }

    fn next_linger_deadline(&self) -> Option<Instant> {
        self.open.iter().flatten().map(|b| b.opened + self.settings.linger).min()
    }
}

/// Sends the ready batches, one Produce request per connection, each after a free
/// in-flight slot on its connection (waiting for one is the producer's back-pressure).
async fn send_ready(
    producer: &mut Producer,
    route: &TopicRoute,
    gates: &[Rc<Semaphore>],
    window: Window,
    tally: &Rc<RefCell<Tally>>,
) {
    if producer.ready.is_empty() {
        return;
    }
    let settings = producer.settings.clone();
    let mut per_connection: Vec<Vec<(i32, Bytes)>> = vec![Vec::new(); route.connections.len()];
    let mut sent: Vec<Vec<SentBatch>> = (0..route.connections.len()).map(|_| Vec::new()).collect();
    for (partition, batch) in producer.ready.drain(..) {
        let bytes = match batch.builder.build_compressed(settings.compression) {
            Ok(bytes) => bytes,
            Err(reason) => {
                tally.borrow_mut().fail(batch.messages.len() as u64, || reason);
                continue;
            }
        };
        let connection = route.connection_of[partition as usize];
        per_connection[connection].push((partition, bytes));
        sent[connection].push(SentBatch { partition, messages: batch.messages });
    }
    for (connection, (batches, sent)) in per_connection.into_iter().zip(sent).enumerate() {
        if batches.is_empty() {
            continue;
        }
        let permit = gates[connection].acquire_static_permit(1).await.expect("never closed");
        let request = produce_request(&settings.topic, batches, settings.acks, settings.request_timeout);
        let link = route.connections[connection].clone();
        let tally = tally.clone();
        glommio::spawn_local(async move {
            let outcome = if request.acks == 0 {
                link.send_without_response(&request).await.map(|()| None)
            } else {
                link.send(&request).await.map(Some)
            };
            let answered_ns = unix_nanos(Instant::now());
            let mut tally = tally.borrow_mut();
            match outcome {
                Ok(response) => {
                    for batch in sent {
                        match partition_outcome(response.as_ref(), batch.partition) {
                            Ok(()) => record_acked(&mut tally, &batch.messages, answered_ns, window),
                            Err(reason) => tally.fail(batch.messages.len() as u64, || reason),
                        }
                    }
                }
                Err(error) => {
                    let count = sent.iter().map(|b| b.messages.len() as u64).sum();
                    tally.fail(count, || error.to_string());
                }
            }
            drop(permit);
        })
        .detach();
    }
}

/// What the broker said about one partition's batch (acks=0: nothing, taken as success).
fn partition_outcome(response: Option<&ProduceResponse>, partition: i32) -> Result<(), String> {
    let Some(response) = response else { return Ok(()) };
    let answer = response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition)
        .ok_or_else(|| format!("the produce response does not mention partition {partition}"))?;
    ClientError::check(|| format!("produce to partition {partition}"), answer.error_code, answer.error_message.as_ref())
        .map_err(|e| e.to_string())
}

fn record_acked(tally: &mut Tally, messages: &[(u64, u32)], answered_ns: u64, window: Window) {
    for (intended_ns, bytes) in messages {
        if window.contains(*intended_ns) {
            tally.acked.count(u64::from(*bytes), answered_ns);
            tally.ack_latency.record_us(answered_ns.saturating_sub(*intended_ns) / 1_000);
        }
    }
}
