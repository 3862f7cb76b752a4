//! A whole load-generator run: prepare the topic, start worker threads (one glommio
//! executor each, its producers and consumers as tasks), start them all at one instant,
//! print a progress line every second, and add up what every thread counted.
//!
//! Modes:
//! - produce: producers for warm-up + duration; acknowledgement latency.
//! - consume: optionally fill the topic first, then consumers read it from the start to
//!   the end offsets seen before they began; MB/s and fetch latency.
//! - e2e: consumers follow the log end while producers run; latency from the send stamp
//!   in each value to its arrival at a consumer.

use crate::consumer::{run_consumer, ConsumeGoal};
use crate::open_loop::LatencyRecorder;
use crate::open_loop::Schedule;
use crate::producer::{run_producer, Pace, ProducerSettings};
use crate::route::{list_offsets_from_leaders, TopicRoute};
use crate::stats::{Tally, Volume, Window};
use crate::workload::unix_nanos;
use kafka_protocol::ResponseError;
use sluice_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::{ClientError, ConnectionSecurity, KafkaConnection};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after its planned end a phase may take to finish (outstanding requests,
/// consumers catching up) before the run gives up on it.
const PHASE_GRACE: Duration = Duration::from_secs(60);
/// The gap between all workers being connected and the common start.
const START_DELAY: Duration = Duration::from_millis(200);
/// How often workers report and the progress line is printed.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// How long after an interval ends its progress line waits for the workers' reports.
const REPORT_SLACK: Duration = Duration::from_millis(200);

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchMode {
    /// Producers only.
    Produce,
    /// Consumers reading what is in the topic.
    Consume,
    /// Producers and consumers together.
    E2e,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct KafkaBenchSpec {
    /// What to measure.
    pub mode: BenchMode,
    /// Bootstrap broker, HOST:PORT.
    pub brokers: String,
    /// How connections are secured (TLS, SASL; PLAINTEXT by default).
    pub security: ConnectionSecurity,
    /// Partitions of the topic when it is created.
    pub partitions: i32,
    /// Topic configs when it is created.
    pub topic_configs: Vec<(String, String)>,
    /// How producers behave.
    pub producer: ProducerSettings,
    /// Producer instances (each with its own connections).
    pub producers: usize,
    /// Consumer instances (each with its own connections); partitions are split among them.
    pub consumers: usize,
    /// Worker threads (glommio executors) the producers and consumers are spread over.
    pub threads: usize,
    /// Messages a second, all producers together; `None`: as fast as the broker takes them.
    pub rate: Option<f64>,
    /// Measured time (after warm-up).
    pub duration: Duration,
    /// Stop producing after this many messages instead of after `duration`.
    pub messages: Option<u64>,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Consume mode: messages produced (as fast as possible) before consumers start.
    pub fill_messages: u64,
}

/// Throughput and latency of one direction (produce or consume) of a phase.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FlowReport {
    /// Messages counted.
    pub messages: u64,
    /// Key + value bytes counted.
    pub bytes: u64,
    /// The time they were counted over.
    pub seconds: f64,
    /// Messages a second.
    pub msgs_per_s: f64,
    /// Key + value megabytes (10^6 bytes) a second.
    pub mb_per_s: f64,
    /// Messages that failed (or, for consumers, failed fetches).
    pub failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Produce: intended send → acknowledgement. Consume: fetch round trip.
    pub latency: crate::open_loop::LatencySummary,
    /// Points of the latency percentile curve (percentile, µs).
    pub latency_curve: Vec<(f64, u64)>,
}

/// One progress line's figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProgressPoint {
    /// Seconds since the phase started.
    pub second: f64,
    /// Produced messages acknowledged in that second (measured window only).
    pub produced_per_s: f64,
    /// Produced MB/s.
    pub produced_mb_per_s: f64,
    /// Consumed messages in that second.
    pub consumed_per_s: f64,
    /// p99 of acknowledgement latency so far, µs.
    pub ack_p99_us: u64,
    /// p99 of end-to-end latency so far, µs.
    pub e2e_p99_us: u64,
}

/// Results of a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KafkaBenchReport {
    /// The mode.
    pub mode: BenchMode,
    /// The topic's partition count.
    pub partitions: i32,
    /// Consume mode: the fill phase's producers.
    pub fill: Option<FlowReport>,
    /// Producers (produce and e2e modes).
    pub produce: Option<FlowReport>,
    /// Consumers (consume and e2e modes).
    pub consume: Option<FlowReport>,
    /// e2e mode: send stamp → arrival at the consumer.
    pub e2e_latency: Option<crate::open_loop::LatencySummary>,
    /// e2e mode: its curve.
    pub e2e_latency_curve: Vec<(f64, u64)>,
    /// The progress lines of the measured phase.
    pub progress: Vec<ProgressPoint>,
}

/// Runs the benchmark, calling `progress` with each line to print.
pub fn run(spec: &KafkaBenchSpec, progress: &mut dyn FnMut(&str)) -> Result<KafkaBenchReport, String> {
    check_spec(spec)?;
    let prepared = {
        let spec = spec.clone();
        on_executor("bench-setup", move || async move { prepare_topic(&spec).await.map_err(|e| e.to_string()) })?
    };
    let partitions = prepared.partitions;
    progress(&format!(
        "topic {} has {partitions} partitions; {} producer(s), {} consumer(s) on {} thread(s)",
        spec.producer.topic, spec.producers, spec.consumers, spec.threads
    ));
    let mut report = KafkaBenchReport {
        mode: spec.mode,
        partitions,
        fill: None,
        produce: None,
        consume: None,
        e2e_latency: None,
        e2e_latency_curve: Vec::new(),
        progress: Vec::new(),
    };
    match spec.mode {
        BenchMode::Produce => {
            let phase = Phase::producing(spec, partitions, None);
            let outcome = run_phase(spec, &phase, progress)?;
            report.produce = Some(produce_flow(&outcome, &phase));
            report.progress = outcome.progress;
        }
        BenchMode::E2e => {
            let mut phase = Phase::producing(spec, partitions, None);
            phase.consumers = spec.consumers;
            phase.start_offsets = prepared.end_offsets.clone();
            let outcome = run_phase(spec, &phase, progress)?;
            report.produce = Some(produce_flow(&outcome, &phase));
            let mut consume =
                consume_flow(&outcome, outcome.tally.consumed.seconds(phase.planned_duration().as_secs_f64()));
            consume.latency = outcome.tally.e2e_latency.summary();
            consume.latency_curve = outcome.tally.e2e_latency.percentile_curve();
            report.e2e_latency = Some(outcome.tally.e2e_latency.summary());
            report.e2e_latency_curve = outcome.tally.e2e_latency.percentile_curve();
            report.consume = Some(consume);
            report.progress = outcome.progress;
        }
        BenchMode::Consume => {
            if spec.fill_messages > 0 {
                progress(&format!("filling the topic with {} messages", spec.fill_messages));
                let phase = Phase::producing(spec, partitions, Some(spec.fill_messages));
                let outcome = run_phase(spec, &phase, progress)?;
                report.fill = Some(produce_flow(&outcome, &phase));
            }
            let spec_for_offsets = spec.clone();
            let (starts, ends) = on_executor("bench-setup", move || async move {
                let offsets = async {
                    let (brokers, topic) = (&spec_for_offsets.brokers, &spec_for_offsets.producer.topic);
                    let security = &spec_for_offsets.security;
                    let starts = list_offsets_from_leaders(brokers, security, topic, EARLIEST_TIMESTAMP).await?;
                    let ends = list_offsets_from_leaders(brokers, security, topic, LATEST_TIMESTAMP).await?;
                    Ok::<_, ClientError>((by_partition(starts, partitions), by_partition(ends, partitions)))
                };
                offsets.await.map_err(|e| e.to_string())
            })?;
            let phase = Phase {
                producers: 0,
                consumers: spec.consumers,
                start_offsets: starts,
                end_offsets: Some(ends),
                ..Phase::producing(spec, partitions, None)
            };
            let outcome = run_phase(spec, &phase, progress)?;
            report.consume = Some(consume_flow(&outcome, outcome.elapsed.as_secs_f64()));
            report.progress = outcome.progress;
        }
    }
    Ok(report)
}

fn check_spec(spec: &KafkaBenchSpec) -> Result<(), String> {
    let needs = match spec.mode {
        BenchMode::Produce => (spec.producers > 0, "produce needs at least one producer"),
        BenchMode::Consume => (spec.consumers > 0, "consume needs at least one consumer"),
        BenchMode::E2e => (spec.producers > 0 && spec.consumers > 0, "e2e needs producers and consumers"),
    };
    if !needs.0 {
        return Err(needs.1.into());
    }
    if spec.threads == 0 || spec.producer.max_in_flight == 0 || spec.producer.batch_bytes == 0 {
        return Err("threads, max in-flight and batch size must be at least 1".into());
    }
    if spec.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("the rate must be a positive number of messages a second".into());
    }
    Ok(())
}

/// The topic's partition count and log end offsets, creating it if missing.
struct Prepared {
    partitions: i32,
    end_offsets: Vec<i64>,
}

async fn prepare_topic(spec: &KafkaBenchSpec) -> Result<Prepared, ClientError> {
    let topic = &spec.producer.topic;
    let mut connection = KafkaConnection::connect_with_security(&spec.brokers, "sluice-bench", &spec.security).await?;
    let outcomes = connection
        .create_topics(std::slice::from_ref(topic), spec.partitions, -1, &spec.topic_configs, Duration::from_secs(30))
        .await?;
    for (_, outcome) in outcomes {
        match outcome {
            Ok(()) => {}
            Err(ClientError::Kafka { error: ResponseError::TopicAlreadyExists, .. }) => {}
            Err(error) => return Err(error),
        }
    }
    // A topic that already existed keeps its own partition count.
    let mut partitions = 0;
    for _ in 0..50 {
        // A new topic's partitions may take a moment to get leaders on some brokers.
        match connection.partition_count(topic, false).await {
            Ok(count) if count > 0 => {
                partitions = count;
                break;
            }
            Ok(_) | Err(ClientError::Kafka { .. }) => glommio::timer::sleep(Duration::from_millis(100)).await,
            Err(error) => return Err(error),
        }
    }
    if partitions == 0 {
        return Err(ClientError::Protocol {
            address: spec.brokers.clone(),
            reason: format!("topic {topic} has no partitions after creation"),
        });
    }
    let ends = list_offsets_from_leaders(&spec.brokers, &spec.security, topic, LATEST_TIMESTAMP).await?;
    Ok(Prepared { partitions, end_offsets: by_partition(ends, partitions) })
}

fn by_partition(offsets: Vec<(i32, i64)>, partitions: i32) -> Vec<i64> {
    let mut out = vec![0; partitions as usize];
    for (partition, offset) in offsets {
        if let Some(slot) = out.get_mut(partition as usize) {
            *slot = offset;
        }
    }
    out
}

/// One timed phase: who runs and how long.
#[derive(Clone)]
struct Phase {
    partitions: i32,
    producers: usize,
    consumers: usize,
    warmup: Duration,
    duration: Duration,
    /// Producers stop after this many messages (all together) rather than at a time.
    messages: Option<u64>,
    rate: Option<f64>,
    /// Where consumers start, by partition.
    start_offsets: Vec<i64>,
    /// Where consumers stop (consume mode); `None`: they follow the producers.
    end_offsets: Option<Vec<i64>>,
}

impl Phase {
    fn producing(spec: &KafkaBenchSpec, partitions: i32, fill: Option<u64>) -> Phase {
        let filling = fill.is_some();
        Phase {
            partitions,
            producers: spec.producers,
            consumers: 0,
            warmup: if filling { Duration::ZERO } else { spec.warmup },
            duration: spec.duration,
            messages: fill.or(spec.messages),
            rate: if filling { None } else { spec.rate },
            start_offsets: vec![0; partitions as usize],
            end_offsets: None,
        }
    }

    /// With a message count and a rate, the schedule's length follows from them.
    fn planned_duration(&self) -> Duration {
        match (self.messages, self.rate) {
            (Some(messages), Some(rate)) => Duration::from_secs_f64(messages as f64 / rate),
            _ => self.duration,
        }
    }

    /// Messages intended (or stamped) in this window are measured: everything when the
    /// producers stop at a count without a schedule, else the time after the warm-up.
    fn window(&self, start: Instant) -> Window {
        if self.unlimited_count() {
            return Window { from_ns: 0, until_ns: u64::MAX };
        }
        let from = start + self.warmup;
        Window { from_ns: unix_nanos(from), until_ns: unix_nanos(from + self.planned_duration()) }
    }

    /// Whether the producers stop at a count with no schedule (then throughput is
    /// measured over the time they actually took).
    fn unlimited_count(&self) -> bool {
        self.messages.is_some() && self.rate.is_none()
    }
}

/// What a phase counted.
struct PhaseOutcome {
    tally: Tally,
    /// Start to the last worker's end.
    elapsed: Duration,
    progress: Vec<ProgressPoint>,
}

fn produce_flow(outcome: &PhaseOutcome, phase: &Phase) -> FlowReport {
    let tally = &outcome.tally;
    let seconds = if phase.unlimited_count() {
        outcome.elapsed.as_secs_f64()
    } else {
        tally.acked.seconds(phase.planned_duration().as_secs_f64())
    };
    flow(tally.acked, seconds, tally.failed, &tally.first_failure, &tally.ack_latency)
}

fn consume_flow(outcome: &PhaseOutcome, seconds: f64) -> FlowReport {
    let tally = &outcome.tally;
    flow(tally.consumed, seconds, 0, &tally.first_failure, &tally.fetch_latency)
}

fn flow(
    volume: Volume,
    seconds: f64,
    failed: u64,
    first_failure: &Option<String>,
    latency: &LatencyRecorder,
) -> FlowReport {
    let seconds = seconds.max(1e-9);
    FlowReport {
        messages: volume.messages,
        bytes: volume.bytes,
        seconds,
        msgs_per_s: volume.messages as f64 / seconds,
        mb_per_s: volume.bytes as f64 / seconds / 1e6,
        failed,
        first_failure: first_failure.clone(),
        latency: latency.summary(),
        latency_curve: latency.percentile_curve(),
    }
}

/// Messages from worker threads to the main thread.
enum WorkerEvent {
    /// Connected (or not).
    Ready(Result<(), String>),
    /// Counts since the last report.
    Counts(Tally),
    /// The last counts; the worker is done.
    Finished(Tally),
}

/// The ids of producers and consumers a worker thread runs.
fn share_of(worker: usize, workers: usize, count: usize) -> Vec<usize> {
    (0..count).filter(|i| i % workers == worker).collect()
}

fn run_phase(spec: &KafkaBenchSpec, phase: &Phase, progress: &mut dyn FnMut(&str)) -> Result<PhaseOutcome, String> {
    let members = phase.producers + phase.consumers;
    let workers = spec.threads.min(members).max(1);
    let (events_tx, events) = flume::unbounded::<WorkerEvent>();
    let producers_left = Arc::new(AtomicUsize::new(phase.producers));
    let producers_done = Arc::new(AtomicBool::new(phase.producers == 0));
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    for worker in 0..workers {
        let (start_tx, start_rx) = flume::bounded::<(Instant, Window)>(1);
        starts.push(start_tx);
        let context = WorkerContext {
            spec: spec.clone(),
            phase: phase.clone(),
            producer_ids: share_of(worker, workers, phase.producers),
            // Consumers are placed after producers, so a thread with fewer producers gets them.
            consumer_ids: (0..phase.consumers).filter(|c| (phase.producers + c) % workers == worker).collect(),
            events: events_tx.clone(),
            start: start_rx,
            producers_left: producers_left.clone(),
            producers_done: producers_done.clone(),
        };
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("bench-{worker}"))
            .io_memory(512 << 10)
            .spawn(move || worker_main(context))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        handles.push(handle);
    }
    drop(events_tx);
    let mut ready = 0;
    while ready < workers {
        match events.recv_timeout(Duration::from_secs(60)) {
            Ok(WorkerEvent::Ready(Ok(()))) => ready += 1,
            Ok(WorkerEvent::Ready(Err(error))) => {
                drop(starts);
                return Err(format!("a worker could not connect: {error}"));
            }
            Ok(_) => {}
            Err(_) => return Err("workers did not connect within 60 s".into()),
        }
    }
    let start = Instant::now() + START_DELAY;
    let window = phase.window(start);
    for start_tx in &starts {
        let _ = start_tx.send((start, window));
    }
    let deadline = start + phase.warmup + phase.planned_duration() + PHASE_GRACE;
    let mut tally = Tally::default();
    let mut interval = Tally::default();
    let mut points = Vec::new();
    let mut finished = 0;
    let mut last_print = start;
    let mut printed = 0u32;
    let mut last_end = start;
    while finished < workers {
        let now = Instant::now();
        if now > deadline + Duration::from_secs(10) {
            return Err("the phase did not finish in time; the broker may be stuck".into());
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(WorkerEvent::Counts(counts)) => interval.add(&counts),
            Ok(WorkerEvent::Finished(counts)) => {
                interval.add(&counts);
                finished += 1;
                last_end = Instant::now();
            }
            Ok(WorkerEvent::Ready(_)) | Err(_) => {}
        }
        // Each line is printed a little after the workers' reports for its interval are due.
        let now = Instant::now();
        let line_due = start + REPORT_INTERVAL * (printed + 1) + REPORT_SLACK;
        if now >= line_due || finished == workers {
            printed += 1;
            let seconds = if finished == workers {
                now.duration_since(last_print).as_secs_f64().max(1e-3)
            } else {
                REPORT_INTERVAL.as_secs_f64()
            };
            tally.add(&interval);
            let point = ProgressPoint {
                second: (REPORT_INTERVAL * printed).as_secs_f64(),
                produced_per_s: interval.acked.messages as f64 / seconds,
                produced_mb_per_s: interval.acked.bytes as f64 / seconds / 1e6,
                consumed_per_s: interval.consumed.messages as f64 / seconds,
                ack_p99_us: tally.ack_latency.quantile_us(0.99),
                e2e_p99_us: tally.e2e_latency.quantile_us(0.99),
            };
            // A line is warm-up if most of its second was; the last, partial line of a
            // phase (requests draining) is not printed.
            let warming = last_print + REPORT_INTERVAL / 2 < start + phase.warmup;
            let partial = seconds < 0.5 * REPORT_INTERVAL.as_secs_f64();
            if !partial {
                progress(&progress_line(&point, phase, warming, tally.failed));
                if !warming {
                    points.push(point);
                }
            }
            interval = Tally::default();
            last_print = line_due.min(now);
        }
    }
    for handle in handles {
        handle.join().map_err(|e| format!("worker thread failed: {e}"))?;
    }
    Ok(PhaseOutcome { tally, elapsed: last_end.saturating_duration_since(start), progress: points })
}

fn progress_line(point: &ProgressPoint, phase: &Phase, warming: bool, failed: u64) -> String {
    let mut line = format!("[{:6.1}s]", point.second);
    if warming {
        line.push_str(" warming up");
        return line;
    }
    if phase.producers > 0 {
        line.push_str(&format!(
            " produce {:>9.0} msg/s {:>8.1} MB/s p99 {:>8.2} ms",
            point.produced_per_s,
            point.produced_mb_per_s,
            point.ack_p99_us as f64 / 1e3
        ));
    }
    if phase.consumers > 0 {
        line.push_str(&format!(" | consume {:>9.0} msg/s", point.consumed_per_s));
        if phase.producers > 0 {
            line.push_str(&format!(" e2e p99 {:>8.2} ms", point.e2e_p99_us as f64 / 1e3));
        }
    }
    if failed > 0 {
        line.push_str(&format!(" | {failed} failed"));
    }
    line
}

struct WorkerContext {
    spec: KafkaBenchSpec,
    phase: Phase,
    producer_ids: Vec<usize>,
    consumer_ids: Vec<usize>,
    events: flume::Sender<WorkerEvent>,
    /// The common start and the measured window.
    start: flume::Receiver<(Instant, Window)>,
    producers_left: Arc<AtomicUsize>,
    producers_done: Arc<AtomicBool>,
}

async fn worker_main(context: WorkerContext) {
    let WorkerContext { spec, phase, producer_ids, consumer_ids, events, start, producers_left, producers_done } =
        context;
    let topic = spec.producer.topic.clone();
    let in_flight = spec.producer.max_in_flight;
    let mut producer_routes = Vec::new();
    let mut consumer_routes = Vec::new();
    let connected: Result<(), ClientError> = async {
        for id in &producer_ids {
            let route = TopicRoute::connect(&spec.brokers, &spec.security, &topic, "sluice-bench", in_flight).await?;
            producer_routes.push((*id, route));
        }
        for id in &consumer_ids {
            let route = TopicRoute::connect(&spec.brokers, &spec.security, &topic, "sluice-bench", 1).await?;
            consumer_routes.push((*id, route));
        }
        Ok(())
    }
    .await;
    let failed = connected.is_err();
    let _ = events.send(WorkerEvent::Ready(connected.map_err(|e| e.to_string())));
    // Polled, not `recv_async`: an async receive would leave this executor's waker with
    // the main thread, and glommio 0.9 can free a task twice when a waker of it is
    // released on another thread (docs/notes/glommio-foreign-waker-drop.md).
    let (start, window) = loop {
        match start.try_recv() {
            Ok(start) => break start,
            Err(flume::TryRecvError::Empty) => glommio::timer::sleep(Duration::from_millis(1)).await,
            Err(flume::TryRecvError::Disconnected) => return,
        }
    };
    if failed {
        return;
    }
    glommio::timer::sleep(start.saturating_duration_since(Instant::now())).await;
    let tally = Rc::new(RefCell::new(Tally::default()));
    let reporter = {
        let (tally, events) = (tally.clone(), events.clone());
        glommio::spawn_local(async move {
            // Reports fall on whole intervals after the common start, so that every
            // worker's counts land in the same progress line.
            for interval in 1u32.. {
                let due = start + REPORT_INTERVAL * interval;
                glommio::timer::sleep(due.saturating_duration_since(Instant::now())).await;
                let counts = tally.borrow_mut().take();
                let _ = events.send(WorkerEvent::Counts(counts));
            }
        })
    };
    let settings = Rc::new(spec.producer.clone());
    let total_run = phase.warmup + phase.planned_duration();
    let producers = producer_routes.into_iter().map(|(id, route)| {
        let pace = match (phase.rate, phase.messages) {
            (Some(rate), _) => Pace::Scheduled(Schedule::new(start, rate / phase.producers as f64, total_run)),
            (None, messages) => Pace::Unlimited {
                until: if messages.is_some() { start + total_run + PHASE_GRACE } else { start + total_run },
                messages: messages.map(|m| share(m, id, phase.producers)),
            },
        };
        let (settings, tally, left, done) =
            (settings.clone(), tally.clone(), producers_left.clone(), producers_done.clone());
        async move {
            run_producer(id, settings, route, pace, window, tally).await;
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.store(true, Ordering::Release);
            }
        }
    });
    let deadline = start + total_run + PHASE_GRACE;
    let topic: Rc<str> = topic.into();
    let consumers = consumer_routes.into_iter().map(|(id, route)| {
        let positions: Vec<(i32, i64)> = (0..phase.partitions)
            .filter(|p| *p as usize % phase.consumers == id)
            .map(|p| (p, phase.start_offsets[p as usize]))
            .collect();
        let goal = match &phase.end_offsets {
            Some(ends) => ConsumeGoal::UpTo { ends: Rc::new(ends.clone()), deadline },
            None => ConsumeGoal::Follow { producers_done: producers_done.clone(), deadline },
        };
        let e2e = (phase.producers > 0).then_some(window);
        run_consumer(topic.clone(), route, positions, goal, e2e, tally.clone())
    });
    futures::future::join(futures::future::join_all(producers), futures::future::join_all(consumers)).await;
    drop(reporter);
    let last = tally.borrow_mut().take();
    let _ = events.send(WorkerEvent::Finished(last));
}

/// Producer `id`'s share of `total` messages (the first ones take the remainder).
fn share(total: u64, id: usize, producers: usize) -> u64 {
    let producers = producers as u64;
    total / producers + u64::from((id as u64) < total % producers)
}

/// Runs a future on a one-off glommio executor and returns its output.
fn on_executor<T, F, Fut>(name: &str, make: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .io_memory(512 << 10)
        .spawn(make)
        .map_err(|e| format!("cannot start {name}: {e}"))?
        .join()
        .map_err(|e| format!("{name} failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_members_are_shared_out_completely() {
        assert_eq!((0..3).map(|id| share(10, id, 3)).collect::<Vec<_>>(), [4, 3, 3]);
        assert_eq!((0..4).map(|id| share(2, id, 4)).sum::<u64>(), 2);
        let all: Vec<usize> = (0..3).flat_map(|w| share_of(w, 3, 7)).collect();
        assert_eq!(all.len(), 7);
    }
}
