//! `sluice cluster reassign` and `sluice cluster elect-leaders`: moving partitions between
//! brokers and giving leadership back to preferred replicas, over the Kafka APIs
//! (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders), so they work
//! against any Kafka cluster.
//!
//! The plan is kafka-reassign-partitions' JSON:
//! `{"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1, 2, 4]}]}`.

use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_client::{ClientError, KafkaConnection};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A reassignment plan (kafka-reassign-partitions' format; `log_dirs` is ignored).
#[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
pub struct Plan {
    /// Format version: 1.
    pub version: i32,
    /// The partitions to move.
    pub partitions: Vec<PlannedPartition>,
}

/// One partition of a [`Plan`].
#[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
pub struct PlannedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Target replicas, preferred leader first.
    pub replicas: Vec<i32>,
}

impl Plan {
    /// Reads a plan from a file (`-`: standard input).
    pub fn read(path: &str) -> Result<Plan, String> {
        let text = if path == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| format!("cannot read the plan from stdin: {e}"))?
        } else {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        };
        let plan: Plan = serde_json::from_str(&text).map_err(|e| format!("{path}: not a reassignment plan: {e}"))?;
        if plan.version != 1 {
            return Err(format!("{path}: plan version {} (only 1 is known)", plan.version));
        }
        Ok(plan)
    }

    /// Partitions by topic, in plan order within each topic.
    fn by_topic(&self) -> BTreeMap<&str, Vec<&PlannedPartition>> {
        let mut topics: BTreeMap<&str, Vec<&PlannedPartition>> = BTreeMap::new();
        for partition in &self.partitions {
            topics.entry(partition.topic.as_str()).or_default().push(partition);
        }
        topics
    }
}

/// A plan that spreads `topics`' partitions over `brokers` (kafka-reassign-partitions'
/// `--generate`): each partition keeps its replica count, replicas go round-robin from a
/// start that moves with the partition, so leadership (the first replica) spreads too.
pub async fn propose(
    connection: &mut KafkaConnection,
    topics: &[String],
    brokers: &[i32],
) -> Result<Plan, ClientError> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let metadata = connection.metadata(Some(&names), false).await?;
    let mut partitions = Vec::new();
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map_or("", |n| n.0.as_str()).to_string();
        ClientError::check(|| format!("topic {name}"), topic.error_code, None)?;
        let mut indexes: Vec<(i32, usize)> =
            topic.partitions.iter().map(|p| (p.partition_index, p.replica_nodes.len())).collect();
        indexes.sort_unstable();
        for (index, replica_count) in indexes {
            partitions.push(PlannedPartition {
                topic: name.clone(),
                partition: index,
                replicas: spread(brokers, index as usize, replica_count),
            });
        }
    }
    Ok(Plan { version: 1, partitions })
}

/// `count` of `brokers` (all of them if fewer), round-robin from position `start`.
fn spread(brokers: &[i32], start: usize, count: usize) -> Vec<i32> {
    (0..count.min(brokers.len())).map(|i| brokers[(start + i) % brokers.len()]).collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Starts (or with `cancel`, cancels) the plan's moves, printing each partition's result;
/// with `wait`, then waits until none of them is moving. Fails if any partition was refused.
pub async fn reassign(
    connection: &mut KafkaConnection,
    plan: &Plan,
    cancel: bool,
    wait: Option<Duration>,
) -> Result<(), ClientError> {
    let topics = plan
        .by_topic()
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let replicas = (!cancel).then(|| p.replicas.iter().map(|b| BrokerId(*b)).collect());
                    ReassignablePartition::default().with_partition_index(p.partition).with_replicas(replicas)
                })
                .collect();
            ReassignableTopic::default().with_name(topic_name(topic)).with_partitions(partitions)
        })
        .collect();
    let request = AlterPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(topics);
    let response = connection.send(&request).await?;
    ClientError::check(|| "reassign partitions".into(), response.error_code, response.error_message.as_ref())?;
    let mut refused = None;
    for topic in &response.responses {
        for partition in &topic.partitions {
            let name = format!("{}-{}", topic.name.0.as_str(), partition.partition_index);
            let outcome = ClientError::check(|| name.clone(), partition.error_code, partition.error_message.as_ref());
            match outcome {
                Ok(()) => println!("{name}: {}", if cancel { "cancelled" } else { "reassignment started" }),
                Err(error) => {
                    println!("{error}");
                    refused.get_or_insert(error);
                }
            }
        }
    }
    if let Some(error) = refused {
        return Err(error);
    }
    if let Some(limit) = wait {
        wait_until_done(connection, plan, limit).await?;
    }
    Ok(())
}

/// Polls until none of the plan's partitions is being reassigned, at most `limit`.
async fn wait_until_done(connection: &mut KafkaConnection, plan: &Plan, limit: Duration) -> Result<(), ClientError> {
    let started = Instant::now();
    loop {
        let moving = in_progress(connection, Some(plan)).await?;
        if moving.is_empty() {
            println!("reassignment complete ({:.1} s)", started.elapsed().as_secs_f64());
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(ClientError::Kafka {
                operation: "wait for the reassignment".into(),
                error: kafka_protocol::ResponseError::RequestTimedOut,
                code: kafka_protocol::ResponseError::RequestTimedOut.code(),
                message: Some(format!("still moving after {limit:?}: {}", moving.join("; "))),
            });
        }
        glommio::timer::sleep(Duration::from_millis(500)).await;
    }
}

/// The reassignments in progress (of the plan's partitions, or all), one line each.
pub async fn in_progress(connection: &mut KafkaConnection, plan: Option<&Plan>) -> Result<Vec<String>, ClientError> {
    let topics = plan.map(|plan| {
        plan.by_topic()
            .into_iter()
            .map(|(topic, partitions)| {
                ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.iter().map(|p| p.partition).collect())
            })
            .collect()
    });
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(topics);
    let response = connection.send(&request).await?;
    ClientError::check(|| "list reassignments".into(), response.error_code, response.error_message.as_ref())?;
    let ids = |nodes: &[BrokerId]| nodes.iter().map(|n| n.0.to_string()).collect::<Vec<_>>().join(",");
    let mut lines = Vec::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            lines.push(format!(
                "{}-{}  replicas {}  adding {}  removing {}",
                topic.name.0.as_str(),
                p.partition_index,
                ids(&p.replicas),
                ids(&p.adding_replicas),
                ids(&p.removing_replicas)
            ));
        }
    }
    Ok(lines)
}

/// Preferred-leader elections for `topic` (one partition, or all of it), or for every
/// partition; prints each partition's result.
pub async fn elect_preferred_leaders(
    connection: &mut KafkaConnection,
    topic: Option<String>,
    partition: Option<i32>,
) -> Result<(), ClientError> {
    let topic_partitions = match topic {
        None => None,
        Some(topic) => {
            let partitions = match partition {
                Some(partition) => vec![partition],
                None => {
                    let metadata = connection.metadata(Some(&[topic.as_str()]), false).await?;
                    let found = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic));
                    found.map(|t| t.partitions.iter().map(|p| p.partition_index).collect()).unwrap_or_default()
                }
            };
            Some(vec![TopicPartitions::default().with_topic(topic_name(&topic)).with_partitions(partitions)])
        }
    };
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(30_000)
        .with_topic_partitions(topic_partitions);
    let response = connection.send(&request).await?;
    ClientError::check(|| "elect leaders".into(), response.error_code, None)?;
    for topic in &response.replica_election_results {
        for p in &topic.partition_result {
            let name = format!("{}-{}", topic.topic.0.as_str(), p.partition_id);
            match ClientError::check(|| name.clone(), p.error_code, p.error_message.as_ref()) {
                Ok(()) => println!("{name}: preferred leader elected"),
                Err(error) => println!("{error}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposed_spread_keeps_the_replica_count_and_moves_the_leader_along() {
        let brokers = [1, 2, 3, 4];
        assert_eq!(spread(&brokers, 0, 3), vec![1, 2, 3]);
        assert_eq!(spread(&brokers, 3, 3), vec![4, 1, 2]);
        assert_eq!(spread(&brokers, 5, 2), vec![2, 3]);
        assert_eq!(spread(&[7], 2, 3), vec![7], "no more replicas than brokers");
    }

    #[test]
    fn plans_read_as_kafka_writes_them() {
        let text =
            r#"{"version":1,"partitions":[{"topic":"t","partition":2,"replicas":[4,1],"log_dirs":["any","any"]}]}"#;
        let plan: Plan = serde_json::from_str(text).unwrap();
        assert_eq!(plan.partitions, vec![PlannedPartition { topic: "t".into(), partition: 2, replicas: vec![4, 1] }]);
    }
}
