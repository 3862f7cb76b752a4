//! `sluice cluster status`: the cluster as its Kafka APIs describe it (DescribeCluster
//! and Metadata): brokers, the controller, and the partitions that are under-replicated
//! (ISR smaller than the replica list) or offline (no leader). Works against any Kafka
//! cluster.

use crate::client_args::{run_client, BrokerArgs};
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest};
use sluice_client::{ClientError, KafkaConnection};

/// Cluster administration.
#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Brokers, controller, under-replicated and offline partitions.
    Status,
}

/// Runs a cluster subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: ClusterCommand) -> Result<(), String> {
    run_client(move || async move {
        let mut connection = brokers.connect().await.map_err(|e| e.to_string())?;
        match command {
            ClusterCommand::Status => status(&mut connection).await,
        }
        .map_err(|e| e.to_string())
    })
}

async fn status(connection: &mut KafkaConnection) -> Result<(), ClientError> {
    let cluster = connection.send(&DescribeClusterRequest::default()).await?;
    ClientError::check(|| "describe cluster".into(), cluster.error_code, cluster.error_message.as_ref())?;
    println!("cluster {} (controller {})", cluster.cluster_id.as_str(), cluster.controller_id.0);
    println!("brokers:");
    let mut brokers: Vec<_> = cluster.brokers.iter().collect();
    brokers.sort_by_key(|b| b.broker_id.0);
    for broker in brokers {
        println!("  {}  {}:{}", broker.broker_id.0, broker.host.as_str(), broker.port);
    }
    let metadata = connection.metadata(None, false).await?;
    let ids = |nodes: &[BrokerId]| nodes.iter().map(|n| n.0.to_string()).collect::<Vec<_>>().join(",");
    let (mut partitions, mut under_replicated, mut offline) = (0, Vec::new(), Vec::new());
    let mut topics: Vec<_> = metadata.topics.iter().collect();
    topics.sort_by(|a, b| a.name.as_ref().map(|n| n.0.as_str()).cmp(&b.name.as_ref().map(|n| n.0.as_str())));
    for topic in topics {
        let name = topic.name.as_ref().map_or("?", |n| n.0.as_str());
        for p in &topic.partitions {
            partitions += 1;
            let line = format!(
                "  {name}-{}  leader {}  replicas {}  in-sync {}",
                p.partition_index,
                p.leader_id.0,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            );
            if p.leader_id.0 < 0 {
                offline.push(line);
            } else if p.isr_nodes.len() < p.replica_nodes.len() {
                under_replicated.push(line);
            }
        }
    }
    println!("partitions: {partitions}, under-replicated: {}, offline: {}", under_replicated.len(), offline.len());
    for (title, lines) in [("under-replicated:", &under_replicated), ("offline:", &offline)] {
        if !lines.is_empty() {
            println!("{title}");
            lines.iter().for_each(|line| println!("{line}"));
        }
    }
    Ok(())
}
