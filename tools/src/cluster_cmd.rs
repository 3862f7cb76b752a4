//! `sluice cluster`: `status` is the cluster as its Kafka APIs describe it
//! (DescribeCluster, Metadata, ListPartitionReassignments): brokers, the controller, and
//! the partitions that are under-replicated (ISR smaller than the replica list), offline
//! (no leader) or being reassigned; `reassign` and `elect-leaders` are in
//! [`crate::cluster_reassign`]. Works against any Kafka cluster.

use crate::client_args::{run_client, BrokerArgs};
use crate::cluster_reassign::{self, Plan};
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest};
use sluice_client::{ClientError, KafkaConnection};
use std::time::Duration;

/// Cluster administration.
#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Brokers, controller, under-replicated, offline and moving partitions.
    Status,
    /// Move partitions to other brokers (a kafka-reassign-partitions JSON plan:
    /// `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,4]}]}`).
    Reassign {
        /// The plan file (`-`: standard input).
        plan: String,
        /// Cancel the plan's moves instead (their partitions go back to their replicas
        /// from before).
        #[arg(long)]
        cancel: bool,
        /// Then wait until the moves completed, at most this many seconds.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// The reassignments in progress.
    Reassignments,
    /// Print a plan that spreads topics' partitions over the brokers named
    /// (kafka-reassign-partitions' `--generate`), for `reassign`.
    Plan {
        /// The topics to move (repeat the flag for more).
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        /// The brokers to spread them over, e.g. `1,2,3,4`.
        #[arg(long = "to", value_delimiter = ',', required = true)]
        to: Vec<i32>,
    },
    /// Give leadership back to each partition's preferred (first) replica.
    ElectLeaders {
        /// Only this topic [default: every partition].
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of the topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
}

/// Runs a cluster subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: ClusterCommand) -> Result<(), String> {
    let plan = match &command {
        ClusterCommand::Reassign { plan, .. } => Some(Plan::read(plan)?),
        _ => None,
    };
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            ClusterCommand::Status => status(&mut connection).await,
            ClusterCommand::Reassign { cancel, wait, .. } => {
                let plan = plan.expect("read above");
                cluster_reassign::reassign(&mut connection, &plan, cancel, wait.map(Duration::from_secs)).await
            }
            ClusterCommand::Reassignments => cluster_reassign::in_progress(&mut connection, None).await.map(|lines| {
                println!("reassignments in progress: {}", lines.len());
                lines.iter().for_each(|line| println!("  {line}"));
            }),
            ClusterCommand::Plan { topics, to } => {
                cluster_reassign::propose(&mut connection, &topics, &to).await.map(|plan| {
                    println!("{}", serde_json::to_string_pretty(&plan).expect("a plan serializes"));
                })
            }
            ClusterCommand::ElectLeaders { topic, partition } => {
                cluster_reassign::elect_preferred_leaders(&mut connection, topic, partition).await
            }
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
    let reassigning = cluster_reassign::in_progress(connection, None).await?;
    println!(
        "partitions: {partitions}, under-replicated: {}, offline: {}, reassigning: {}",
        under_replicated.len(),
        offline.len(),
        reassigning.len()
    );
    let reassigning: Vec<String> = reassigning.iter().map(|line| format!("  {line}")).collect();
    for (title, lines) in
        [("under-replicated:", &under_replicated), ("offline:", &offline), ("reassigning:", &reassigning)]
    {
        if !lines.is_empty() {
            println!("{title}");
            lines.iter().for_each(|line| println!("{line}"));
        }
    }
    Ok(())
}
