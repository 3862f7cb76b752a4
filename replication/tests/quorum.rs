//! The metadata quorum over real TCP on loopback: three voters and three broker links on
//! one glommio executor (real files in temporary directories). Brokers register and get
//! unfenced, a topic is created through a broker link, the active controller stops and
//! another takes over, metadata changes continue, and the stopped voter comes back and
//! catches up from its log.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sluice_replication::broker_link::{BrokerLink, BrokerLinkConfig};
use sluice_replication::controller::ControllerConfig;
use sluice_replication::metadata::{BrokerRegistration, MetadataImage};
use sluice_replication::quorum::service::{MetadataQuorum, QuorumConfig};
use sluice_replication::quorum::wire::{BrokerRequest, BrokerResponse};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

fn quorum_config(id: u64, voters: &BTreeMap<u64, String>, dir: &std::path::Path) -> QuorumConfig {
    QuorumConfig {
        node_id: id,
        voters: voters.clone(),
        listen: voters[&id].clone(),
        dir: dir.join(format!("node-{id}")),
        controller: ControllerConfig { broker_session_timeout_ms: 1_500, ..ControllerConfig::default() },
    }
}

async fn create_topic(link: &BrokerLink, name: &str) -> BrokerResponse {
    let request = BrokerRequest::CreateTopic {
        name: name.into(),
        partitions: 3,
        replication_factor: 3,
        configs: Default::default(),
        assignments: None,
    };
    link.call(request).await.expect("a controller answers")
}

#[test]
fn three_voters_elect_register_brokers_and_survive_the_active_controllers_stop() {
    let dir = tempfile::tempdir().unwrap();
    let voters: BTreeMap<u64, String> = (1..=3).map(|id| (id, format!("127.0.0.1:{}", free_port()))).collect();
    let executor = glommio::LocalExecutorBuilder::default().io_memory(512 << 10).make().unwrap();
    executor.run(async move {
        let mut quorums: BTreeMap<u64, Rc<MetadataQuorum>> = BTreeMap::new();
        for id in 1..=3 {
            quorums.insert(id, MetadataQuorum::start(quorum_config(id, &voters, dir.path())).await.unwrap());
        }
        let links: Vec<Rc<BrokerLink>> = (1..=3)
            .map(|broker| {
                BrokerLink::start(BrokerLinkConfig {
                    registration: BrokerRegistration {
                        broker,
                        incarnation: uuid::Uuid::new_v4(),
                        host: "127.0.0.1".into(),
                        port: 9000 + broker as u16,
                        rack: None,
                        listeners: Vec::new(),
                        cluster_id: None,
                        voters: Default::default(),
                    },
                    controllers: voters.values().cloned().collect(),
                    heartbeat_interval: Duration::from_millis(100),
                    request_timeout: Duration::from_millis(500),
                })
            })
            .collect();
        let all_unfenced =
            |image: &MetadataImage| image.brokers.len() == 3 && image.brokers.values().all(|b| !b.fenced);
        wait_for("three unfenced brokers", Duration::from_secs(15), || all_unfenced(&links[0].image())).await;

        match create_topic(&links[1], "orders").await {
            BrokerResponse::Done { .. } => {}
            other => panic!("topic creation: {other:?}"),
        }
        match create_topic(&links[2], "orders").await {
            BrokerResponse::Error { code, .. } => assert_eq!(code, 36, "TOPIC_ALREADY_EXISTS"),
            other => panic!("second creation: {other:?}"),
        }
        wait_for("the topic on every voter", Duration::from_secs(5), || {
            quorums.values().all(|q| q.image().topics.contains_key("orders") && q.image().partitions.len() == 3)
        })
        .await;

        let leader = quorums[&1].status().leader.expect("a leader");
        quorums[&leader].shutdown().await;
        let stopped = quorums.remove(&leader).unwrap();
        drop(stopped);
        let survivor = *quorums.keys().next().unwrap();
        wait_for("a new active controller", Duration::from_secs(10), || {
            quorums[&survivor].status().leader.is_some_and(|l| l != leader)
        })
        .await;
        match create_topic(&links[0], "payments").await {
            BrokerResponse::Done { .. } => {}
            other => panic!("topic creation after failover: {other:?}"),
        }
        // The broker whose node lost its controller keeps its session with the new one.
        glommio::timer::sleep(Duration::from_millis(2_000)).await;
        assert!(all_unfenced(&quorums[&survivor].image()), "every broker heartbeats to the new active controller");

        let restarted = MetadataQuorum::start(quorum_config(leader, &voters, dir.path())).await.unwrap();
        wait_for("the restarted voter to catch up", Duration::from_secs(10), || {
            restarted.image().topics.contains_key("payments")
        })
        .await;
        assert_eq!(restarted.image().topics, quorums[&survivor].image().topics);
        for link in &links {
            link.stop();
        }
        restarted.shutdown().await;
        for quorum in quorums.values() {
            quorum.shutdown().await;
        }
    });
}
