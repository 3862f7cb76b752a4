//! `net::client`'s pipelined connection against a real `sluice serve`: many requests in
//! flight on one socket each get their own answer, and when the broker dies every waiting
//! request fails instead of hanging.

use kafka_protocol::messages::ProduceResponse;
use sluice_engine::batch_builder::synthetic_batch;
use sluice_net::client::ops::produce_request;
use sluice_net::client::{KafkaConnection, PipelinedConnection};
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
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", &address, "--cores", "1", "--data-dir"])
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
