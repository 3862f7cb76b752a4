//! Where a topic's partitions live: the partition leaders from Metadata, and one
//! pipelined connection per leader, so the load generator talks to the broker that
//! serves each partition (as real clients do), whether the cluster has one broker or many.

use kafka_protocol::messages::MetadataResponse;
use sluice_client::{ClientError, ConnectionSecurity, KafkaConnection, PipelinedConnection};
use std::collections::HashMap;
use std::rc::Rc;

/// A topic's partitions mapped to connections.
pub struct TopicRoute {
    /// One connection per leader broker.
    pub connections: Vec<Rc<PipelinedConnection>>,
    /// Partition → index into `connections`.
    pub connection_of: Vec<usize>,
}

impl TopicRoute {
    /// Asks `bootstrap` for the topic's leaders and connects to each (client id
    /// `client_id`, `max_in_flight` requests per connection), secured as `security` says.
    pub async fn connect(
        bootstrap: &str,
        security: &ConnectionSecurity,
        topic: &str,
        client_id: &str,
        max_in_flight: usize,
    ) -> Result<TopicRoute, ClientError> {
        let mut first = KafkaConnection::connect_with_security(bootstrap, client_id, security).await?;
        let metadata = first.metadata(Some(&[topic]), false).await?;
        let leaders = partition_leaders(&metadata, topic, first.address())?;
        let brokers: HashMap<i32, String> =
            metadata.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
        let mut by_node: Vec<i32> = leaders.clone();
        by_node.sort_unstable();
        by_node.dedup();
        let mut connections = Vec::with_capacity(by_node.len());
        let mut first = Some(first);
        for node in &by_node {
            let address = brokers.get(node).ok_or_else(|| ClientError::Protocol {
                address: bootstrap.to_string(),
                reason: format!("metadata names leader {node} but not its address"),
            })?;
            // A single-broker cluster (the usual case here) reuses the bootstrap connection.
            let connection = match first.take() {
                Some(connection) if by_node.len() == 1 => connection,
                _ => KafkaConnection::connect_with_security(address, client_id, security).await?,
            };
            connections.push(Rc::new(connection.into_pipelined(max_in_flight)));
        }
        let connection_of =
            leaders.iter().map(|node| by_node.binary_search(node).expect("every leader has a connection")).collect();
        Ok(TopicRoute { connections, connection_of })
    }

    /// Number of partitions.
    pub fn partitions(&self) -> i32 {
        self.connection_of.len() as i32
    }
}

/// Every partition's offset at `timestamp` (ListOffsets), each asked of its leader (only a
/// leader answers for its partitions). Asked again, for up to ten seconds, while a new
/// topic's metadata or leadership is still reaching the brokers.
pub async fn list_offsets_from_leaders(
    bootstrap: &str,
    security: &ConnectionSecurity,
    topic: &str,
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, ClientError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match list_offsets_once(bootstrap, security, topic, timestamp).await {
            Err(ClientError::Kafka { .. }) if std::time::Instant::now() < deadline => {
                glommio::timer::sleep(std::time::Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
}

async fn list_offsets_once(
    bootstrap: &str,
    security: &ConnectionSecurity,
    topic: &str,
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, ClientError> {
    let mut first = KafkaConnection::connect_with_security(bootstrap, "sluice-bench", security).await?;
    let metadata = first.metadata(Some(&[topic]), false).await?;
    let leaders = partition_leaders(&metadata, topic, first.address())?;
    let brokers: HashMap<i32, String> =
        metadata.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port))).collect();
    let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
    for (partition, leader) in leaders.iter().enumerate() {
        by_leader.entry(*leader).or_default().push(partition as i32);
    }
    let mut offsets = Vec::with_capacity(leaders.len());
    for (leader, partitions) in by_leader {
        let address = brokers.get(&leader).ok_or_else(|| ClientError::Protocol {
            address: bootstrap.to_string(),
            reason: format!("metadata names leader {leader} but not its address"),
        })?;
        let mut connection = first.connect_to_another(address).await?;
        offsets.extend(connection.list_offsets(topic, &partitions, timestamp).await?);
    }
    Ok(offsets)
}

/// The leader of each partition, in partition order.
fn partition_leaders(metadata: &MetadataResponse, topic: &str, address: &str) -> Result<Vec<i32>, ClientError> {
    let protocol = |reason: String| ClientError::Protocol { address: address.to_string(), reason };
    let found = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| protocol(format!("metadata does not mention topic {topic}")))?;
    ClientError::check(|| format!("metadata of topic {topic}"), found.error_code, None)?;
    let mut leaders = vec![None; found.partitions.len()];
    for partition in &found.partitions {
        let index = usize::try_from(partition.partition_index)
            .ok()
            .filter(|i| *i < leaders.len())
            .ok_or_else(|| protocol(format!("{topic}: partition {} out of range", partition.partition_index)))?;
        if partition.leader_id.0 < 0 {
            return Err(protocol(format!("{topic}-{index} has no leader")));
        }
        leaders[index] = Some(partition.leader_id.0);
    }
    leaders
        .into_iter()
        .enumerate()
        .map(|(i, leader)| leader.ok_or_else(|| protocol(format!("{topic}-{i} is missing from metadata"))))
        .collect()
}
