//! The data-path requests a producer or consumer sends, as typed calls on a connection:
//! topic metadata, produce, list offsets and fetch. Kafka error codes become
//! [`ClientError::Kafka`] with the topic and partition named.

use crate::connection::{ClientError, KafkaConnection, Result};
use crate::records::{decode_fetched, FetchedRecord};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the high watermark.
pub const LATEST_TIMESTAMP: i64 = -1;

/// What one partition of a fetch returned.
#[derive(Debug)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: i32,
    /// The offset up to which records are readable (exclusive).
    pub high_watermark: i64,
    /// The offset of the oldest record still kept.
    pub log_start_offset: i64,
    /// The records, from the offset asked for.
    pub records: Vec<FetchedRecord>,
    /// Where the next fetch of this partition starts; `None` when no whole batch came.
    pub next_offset: Option<i64>,
}

/// A Produce request carrying one batch for each of some partitions of a topic.
pub fn produce_request(topic: &str, batches: Vec<(i32, Bytes)>, acks: i16, timeout: Duration) -> ProduceRequest {
    let partitions = batches
        .into_iter()
        .map(|(partition, batch)| PartitionProduceData::default().with_index(partition).with_records(Some(batch)))
        .collect();
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms(timeout))
        .with_topic_data(vec![TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(partitions)])
}

/// A consumer's Fetch request (no fetch session) from each `(partition, offset)`: up to
/// `partition_max_bytes` a partition and `max_bytes` in all, waiting up to `max_wait` for
/// at least one byte.
pub fn fetch_request(
    topic: &str,
    positions: &[(i32, i64)],
    max_wait: Duration,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    let partitions = positions
        .iter()
        .map(|(partition, offset)| {
            FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(*offset)
                .with_partition_max_bytes(partition_max_bytes)
        })
        .collect();
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(timeout_ms(max_wait))
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic_name(topic)).with_partitions(partitions)])
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX)
}

impl KafkaConnection {
    /// Metadata of the named topics (all topics for `None`). With `auto_create`, the
    /// broker may create missing ones (when its `auto.create.topics.enable` allows).
    pub async fn metadata(&mut self, topics: Option<&[&str]>, auto_create: bool) -> Result<MetadataResponse> {
        let topics = topics.map(|names| {
            names.iter().map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name)))).collect()
        });
        let request = MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(auto_create);
        self.send(&request).await
    }

    /// The number of partitions of a topic.
    pub async fn partition_count(&mut self, topic: &str, auto_create: bool) -> Result<i32> {
        let response = self.metadata(Some(&[topic]), auto_create).await?;
        let found =
            response.topics.iter().find(|t| t.name.as_ref().is_some_and(|name| name.0.as_str() == topic)).ok_or_else(
                || ClientError::Protocol {
                    address: self.address().to_string(),
                    reason: format!("metadata response does not mention topic {topic}"),
                },
            )?;
        ClientError::check(|| format!("metadata of topic {topic}"), found.error_code, None)?;
        Ok(found.partitions.len() as i32)
    }

    /// Creates topics with `partitions` partitions, `replicas` replicas and topic configs;
    /// one outcome per name (TOPIC_ALREADY_EXISTS is an error here, for the caller to judge).
    pub async fn create_topics(
        &mut self,
        names: &[String],
        partitions: i32,
        replicas: i16,
        configs: &[(String, String)],
        timeout: Duration,
    ) -> Result<Vec<(String, Result<()>)>> {
        let str_bytes = |text: &str| StrBytes::from_string(text.to_string());
        let configs: Vec<CreatableTopicConfig> = configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig::default().with_name(str_bytes(k)).with_value(Some(str_bytes(v))))
            .collect();
        let topics = names
            .iter()
            .map(|name| {
                CreatableTopic::default()
                    .with_name(topic_name(name))
                    .with_num_partitions(partitions)
                    .with_replication_factor(replicas)
                    .with_configs(configs.clone())
            })
            .collect();
        let request = CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(timeout_ms(timeout));
        let response = self.send(&request).await?;
        Ok(response
            .topics
            .iter()
            .map(|result| {
                let name = result.name.0.to_string();
                let outcome = ClientError::check(
                    || format!("create topic {name}"),
                    result.error_code,
                    result.error_message.as_ref(),
                );
                (name, outcome)
            })
            .collect())
    }

    /// Appends one batch to a partition. Returns the base offset assigned, or `None` with
    /// acks=0 (the broker sends no response).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
        timeout: Duration,
    ) -> Result<Option<i64>> {
        let request = produce_request(topic, vec![(partition, batch)], acks, timeout);
        if acks == 0 {
            self.send_without_response(&request).await?;
            return Ok(None);
        }
        let response = self.send(&request).await?;
        let answer = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::Protocol {
                address: self.address().to_string(),
                reason: format!("produce response does not mention {topic}-{partition}"),
            })?;
        ClientError::check(
            || format!("produce to {topic}-{partition}"),
            answer.error_code,
            answer.error_message.as_ref(),
        )?;
        Ok(Some(answer.base_offset))
    }

    /// The offset of each partition at `timestamp` ([`EARLIEST_TIMESTAMP`],
    /// [`LATEST_TIMESTAMP`] or milliseconds: the first record at or after it, -1 if none).
    pub async fn list_offsets(&mut self, topic: &str, partitions: &[i32], timestamp: i64) -> Result<Vec<(i32, i64)>> {
        let request =
            ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| ListOffsetsPartition::default().with_partition_index(*p).with_timestamp(timestamp))
                        .collect(),
                )]);
        let response = self.send(&request).await?;
        let mut offsets = Vec::with_capacity(partitions.len());
        for answer in response.topics.iter().flat_map(|t| t.partitions.iter()) {
            let partition = answer.partition_index;
            ClientError::check(|| format!("list offsets of {topic}-{partition}"), answer.error_code, None)?;
            offsets.push((partition, answer.offset));
        }
        Ok(offsets)
    }

    /// Fetches from each `(partition, offset)`, waiting up to `max_wait` for data.
    pub async fn fetch(
        &mut self,
        topic: &str,
        positions: &[(i32, i64)],
        max_wait: Duration,
        max_bytes: i32,
    ) -> Result<Vec<FetchedPartition>> {
        let request = fetch_request(topic, positions, max_wait, max_bytes, max_bytes);
        let response = self.send(&request).await?;
        ClientError::check(|| format!("fetch from {topic}"), response.error_code, None)?;
        let mut fetched = Vec::new();
        for answer in response.responses.into_iter().flat_map(|t| t.partitions) {
            let partition = answer.partition_index;
            ClientError::check(|| format!("fetch from {topic}-{partition}"), answer.error_code, None)?;
            let from = positions.iter().find(|(p, _)| *p == partition).map_or(0, |(_, offset)| *offset);
            let decoded =
                decode_fetched(answer.records.unwrap_or_default(), from).map_err(|reason| ClientError::Protocol {
                    address: self.address().to_string(),
                    reason: format!("{topic}-{partition}: {reason}"),
                })?;
            fetched.push(FetchedPartition {
                partition,
                high_watermark: answer.high_watermark,
                log_start_offset: answer.log_start_offset,
                records: decoded.records,
                next_offset: decoded.next_offset,
            });
        }
        Ok(fetched)
    }
}
