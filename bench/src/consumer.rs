//! One consumer of the load generator: fetches its partitions from their leaders (one
//! Fetch in flight per connection, as Kafka consumers do), checks every batch's CRC, and
//! counts records and payload bytes. With a [`Window`] it also reads the send stamp in
//! each value and records end-to-end latency: intended send time → arrival.
//!
//! Partitions are assigned by the run, not by a consumer group, so what is measured is the
//! broker's fetch path rather than group coordination.

use crate::route::TopicRoute;
use crate::stats::{Tally, Window};
use crate::workload::{read_stamp, unix_nanos};
use bytes::Bytes;
use sluice_client::ops::fetch_request;
use sluice_client::records::for_each_fetched_record;
use sluice_client::{ClientError, PipelinedConnection};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a fetch waits at the broker for data.
const FETCH_MAX_WAIT: Duration = Duration::from_millis(100);
/// Most bytes one fetch response may carry (Kafka's `fetch.max.bytes` default).
const FETCH_MAX_BYTES: i32 = 50 << 20;
/// Most bytes per partition per fetch (Kafka's `max.partition.fetch.bytes` default).
const FETCH_PARTITION_MAX_BYTES: i32 = 1 << 20;
/// A follower stops once producers are done and nothing arrived for this long.
const FOLLOW_IDLE: Duration = Duration::from_secs(1);

/// When a consumer stops.
#[derive(Clone)]
pub enum ConsumeGoal {
    /// At these end offsets (indexed by partition), or at `deadline`.
    UpTo {
        /// The offset to reach in each partition.
        ends: Rc<Vec<i64>>,
        /// Give up then.
        deadline: Instant,
    },
    /// Once `producers_done` is set and nothing new arrived for a second, or at `deadline`.
    Follow {
        /// Set by the run when every producer finished.
        producers_done: Arc<AtomicBool>,
        /// Give up then.
        deadline: Instant,
    },
}

/// Runs one consumer over `positions` (partition, first offset), with one fetch loop
/// per leader connection, until its goal is met. `e2e` measures end-to-end latency for
/// values stamped within the window.
pub async fn run_consumer(
    topic: Rc<str>,
    route: TopicRoute,
    positions: Vec<(i32, i64)>,
    goal: ConsumeGoal,
    e2e: Option<Window>,
    tally: Rc<RefCell<Tally>>,
) {
    let loops = route.connections.iter().enumerate().map(|(index, connection)| {
        let mine: Vec<(i32, i64)> =
            positions.iter().copied().filter(|(p, _)| route.connection_of[*p as usize] == index).collect();
        fetch_loop(topic.clone(), connection.clone(), mine, goal.clone(), e2e, tally.clone())
    });
    futures::future::join_all(loops).await;
}

async fn fetch_loop(
    topic: Rc<str>,
    connection: Rc<PipelinedConnection>,
    mut positions: Vec<(i32, i64)>,
    goal: ConsumeGoal,
    e2e: Option<Window>,
    tally: Rc<RefCell<Tally>>,
) {
    if positions.is_empty() {
        return;
    }
    let mut last_data = Instant::now();
    loop {
        let now = Instant::now();
        let done = match &goal {
            ConsumeGoal::UpTo { ends, deadline } => {
                now >= *deadline || positions.iter().all(|(p, offset)| *offset >= ends[*p as usize])
            }
            ConsumeGoal::Follow { producers_done, deadline } => {
                now >= *deadline
                    || (producers_done.load(Ordering::Acquire) && now.duration_since(last_data) >= FOLLOW_IDLE)
            }
        };
        if done {
            return;
        }
        let request = fetch_request(&topic, &positions, FETCH_MAX_WAIT, FETCH_MAX_BYTES, FETCH_PARTITION_MAX_BYTES);
        let sent = Instant::now();
        let response = connection.send(&request).await;
        let arrived = Instant::now();
        let response = match response.and_then(|r| {
            ClientError::check(|| format!("fetch from {topic}"), r.error_code, None)?;
            Ok(r)
        }) {
            Ok(response) => response,
            Err(error) => {
                // A broken connection cannot recover here; the run reports the failure.
                tally.borrow_mut().fail(0, || error.to_string());
                return;
            }
        };
        let mut tally = tally.borrow_mut();
        tally.fetch_latency.record_us(arrived.duration_since(sent).as_micros() as u64);
        let arrived_ns = unix_nanos(arrived);
        for answer in response.responses.into_iter().flat_map(|t| t.partitions) {
            let Some(position) = positions.iter_mut().find(|(p, _)| *p == answer.partition_index) else { continue };
            if answer.error_code != 0 {
                let code = answer.error_code;
                let partition = position.0;
                tally.fail(0, || format!("fetch from {topic}-{partition}: error code {code}"));
                continue;
            }
            match count_records(answer.records.unwrap_or_default(), position.1, arrived_ns, e2e, &mut tally) {
                Ok(Some(next)) => {
                    position.1 = next;
                    last_data = arrived;
                }
                Ok(None) => {}
                Err(reason) => {
                    let partition = position.0;
                    tally.fail(0, || format!("{topic}-{partition}: {reason}"));
                    return;
                }
            }
        }
    }
}

/// Counts the records at or after `from` in one partition's fetched data (CRC checked,
/// compressed batches inflated). Returns the offset to fetch next, `None` when no whole
/// batch came.
fn count_records(
    data: Bytes,
    from: i64,
    arrived_ns: u64,
    e2e: Option<Window>,
    tally: &mut Tally,
) -> Result<Option<i64>, String> {
    for_each_fetched_record(data, from, |_, _, _, record| {
        let value = record.value.unwrap_or_default();
        let bytes = (value.len() + record.key.map_or(0, <[u8]>::len)) as u64;
        match e2e {
            None => tally.consumed.count(bytes, arrived_ns),
            Some(window) => {
                let stamp = read_stamp(value).map(|(stamp_ns, _)| stamp_ns);
                if let Some(stamp_ns) = stamp.filter(|ns| window.contains(*ns)) {
                    tally.consumed.count(bytes, arrived_ns);
                    tally.e2e_latency.record_us(arrived_ns.saturating_sub(stamp_ns) / 1_000);
                }
            }
        }
    })
}
