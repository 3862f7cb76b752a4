//! the `client` crate's pipelined connection against a real `sluice serve`: many requests in
//! flight on one socket each get their own answer, their appends land in the order they
//! were sent (issue 11), and when the broker dies every waiting request fails instead of
//! hanging.

use bytes::Bytes;
use kafka_protocol::messages::ProduceResponse;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sluice_client::ops::produce_request;
use sluice_client::{KafkaConnection, PipelinedConnection};
use sluice_engine::batch_builder::synthetic_batch;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

struct Broker {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Broker {
    start_broker_with(&["--cores", "1"])
}

/// A loopback port no other broker of this test process was given. The broker listens with
/// SO_REUSEPORT, so two brokers handed the same free port would both bind it and share its
/// connections; tests run in parallel, so each port is handed out once.
fn unused_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn start_broker_with(options: &[&str]) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let port = unused_port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", &address])
        .args(options)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice starts");
    for _ in 0..300 {
        if std::net::TcpStream::connect(&address).is_ok() {
            return Broker { child, address, _dir: dir };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the broker did not start");
}

fn on_executor<T, F, Fut>(make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(make)
        .unwrap()
        .join()
        .unwrap()
}

async fn pipelined(address: &str, in_flight: usize) -> Rc<PipelinedConnection> {
    let mut connection = KafkaConnection::connect(address, "pipeline-test").await.unwrap();
    // Creates the topic (auto-create is on) before the pipeline starts.
    assert_eq!(connection.partition_count("pipe", true).await.unwrap(), 1);
    Rc::new(connection.into_pipelined(in_flight))
}

fn base_offset(response: &ProduceResponse) -> i64 {
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0);
    partition.base_offset
}

#[test]
fn many_requests_in_flight_each_get_their_own_answer() {
    let broker = start_broker();
    let address = broker.address.clone();
    let offsets = on_executor(move || async move {
        let connection = pipelined(&address, 4).await;
        let sends = (0..200u64).map(|seed| {
            let connection = connection.clone();
            async move {
                let batch = synthetic_batch(1, 64, seed, 1_700_000_000_000);
                let request = produce_request("pipe", vec![(0, batch)], -1, Duration::from_secs(10));
                base_offset(&connection.send(&request).await.expect("answered"))
            }
        });
        futures::future::join_all(sends).await
    });
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<i64>>(), "each request got its own append");
}

#[test]
fn a_dead_broker_fails_every_waiting_request() {
    let mut broker = start_broker();
    let address = broker.address.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        on_executor(move || async move {
            let connection = pipelined(&address, 8).await;
            ready_tx.send(()).unwrap();
            // Produce until the broker is gone; every request ends (answered or failed).
            let mut failures = 0;
            for round in 0..10_000u64 {
                let sends = (0..8u64).map(|i| {
                    let connection = connection.clone();
                    async move {
                        let batch = synthetic_batch(10, 1000, round * 8 + i, 1_700_000_000_000);
                        let request = produce_request("pipe", vec![(0, batch)], -1, Duration::from_secs(10));
                        connection.send(&request).await.is_err()
                    }
                });
                failures += futures::future::join_all(sends).await.into_iter().filter(|failed| *failed).count();
                if failures > 0 {
                    break;
                }
                if round == 5 {
                    kill_tx.send(()).unwrap();
                }
            }
            failures
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    kill_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let failures = waiter.join().unwrap();
    assert!(failures > 0, "requests after the broker died failed rather than hung");
}

/// One Produce request of the order test: the batches it sends, by partition.
struct SentRequest {
    acks: i16,
    batches: Vec<(i32, Bytes)>,
    /// Records per batch, in the order of `batches`.
    counts: Vec<i64>,
}

/// A random request: 1 to `partitions` partitions, each one batch of 1..=8 records whose
/// values are 100 B to 120 KB, so small and large appends (and segment rolls) interleave.
fn random_request(rng: &mut SmallRng, partitions: i32, seed: u64) -> SentRequest {
    let mut chosen: Vec<i32> = (0..partitions).filter(|_| rng.gen_bool(0.5)).collect();
    if chosen.is_empty() {
        chosen.push(rng.gen_range(0..partitions));
    }
    let mut batches = Vec::new();
    let mut counts = Vec::new();
    for partition in chosen {
        let count = rng.gen_range(1..=8usize);
        let value_bytes = *[100usize, 1_000, 10_000, 120_000].choose(rng).expect("sizes");
        batches.push((partition, synthetic_batch(count, value_bytes, seed, 1_700_000_000_000)));
        counts.push(count as i64);
    }
    SentRequest { acks: if rng.gen_bool(0.5) { -1 } else { 1 }, batches, counts }
}

/// Many Produce requests in flight on one connection to a 2-shard broker, touching the
/// partitions of both shards (remote ones go through the mesh) with random sizes: on each
/// partition the batches get contiguous offsets in the order the requests were sent.
/// Runs against the debug build, so the broker's own order assertions are armed too.
#[test]
fn pipelined_appends_land_in_send_order_on_local_and_remote_partitions() {
    const PARTITIONS: i32 = 6;
    const REQUESTS: u64 = 600;
    for flush in ["every-append", "bytes:1048576"] {
        let broker = start_broker_with(&["--cores", "2", "--flush", flush, "--segment-bytes", "4194304"]);
        let address = broker.address.clone();
        let answers = on_executor(move || async move {
            let mut connection = KafkaConnection::connect(&address, "order-test").await.unwrap();
            let created = connection
                .create_topics(&["order".to_string()], PARTITIONS, 1, &[], Duration::from_secs(10))
                .await
                .unwrap();
            assert!(created[0].1.is_ok(), "{:?}", created[0].1);
            let connection = Rc::new(connection.into_pipelined(32));
            let mut rng = SmallRng::seed_from_u64(11);
            let sends = (0..REQUESTS).map(|seed| {
                let sent = random_request(&mut rng, PARTITIONS, seed);
                let connection = connection.clone();
                async move {
                    let request = produce_request("order", sent.batches.clone(), sent.acks, Duration::from_secs(30));
                    let response = connection.send(&request).await.expect("answered");
                    let partitions = &response.responses[0].partition_responses;
                    assert_eq!(partitions.len(), sent.batches.len());
                    let offsets: Vec<(i32, i64)> = partitions
                        .iter()
                        .map(|answer| {
                            assert_eq!(answer.error_code, 0, "partition {}", answer.index);
                            (answer.index, answer.base_offset)
                        })
                        .collect();
                    (sent, offsets)
                }
            });
            futures::future::join_all(sends).await
        });
        let mut next_offset = vec![0i64; PARTITIONS as usize];
        for (request, (sent, offsets)) in answers.iter().enumerate() {
            for ((partition, _), count) in sent.batches.iter().zip(&sent.counts) {
                let base = offsets.iter().find(|(index, _)| index == partition).expect("answered").1;
                let expected = &mut next_offset[*partition as usize];
                assert_eq!(
                    base, *expected,
                    "flush {flush}: request {request} on partition {partition} overtook or fell behind"
                );
                *expected += count;
            }
        }
        assert!(next_offset.iter().all(|&end| end > 0), "every partition was written");
    }
}
