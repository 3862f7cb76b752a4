//! CreateTopics: validate each topic, then create the valid ones in one metadata change.

use crate::context::ShardContext;
use crate::control::{validate_new_topic, MetadataChange, NewTopic};
use crate::error::{KafkaError, KafkaResult};
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::topic_config::TopicConfigs;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers a CreateTopics request.
pub async fn handle(context: &Rc<ShardContext>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let checked: Vec<KafkaResult<NewTopic>> = request.topics.iter().map(|t| to_new_topic(context, t)).collect();
    let valid: Vec<NewTopic> = checked.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut created = if request.validate_only || valid.is_empty() {
        valid.iter().map(|_| Ok(())).collect()
    } else {
        context.change_metadata(MetadataChange::CreateTopics(valid)).await
    }
    .into_iter();
    let metadata = context.metadata();
    let topics = request
        .topics
        .iter()
        .zip(checked)
        .map(|(topic, checked)| {
            let result = checked.and_then(|_| created.next().expect("one result per valid topic"));
            let response = CreatableTopicResult::default().with_name(topic.name.clone());
            match result {
                Ok(()) => {
                    let stored = metadata.topics.get(topic.name.0.as_str());
                    response
                        .with_topic_id(stored.map(|t| t.id).unwrap_or_default())
                        .with_num_partitions(stored.map_or(topic.num_partitions, |t| t.shards.len() as i32))
                        .with_replication_factor(1)
                }
                Err(error) => response
                    .with_error_code(error.code.code())
                    .with_error_message(Some(StrBytes::from_string(error.message)))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn to_new_topic(
    context: &ShardContext,
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
) -> KafkaResult<NewTopic> {
    if topic.name.0.as_str() == CONSUMER_OFFSETS_TOPIC {
        // Its partition count decides where every group lives: the broker creates it.
        return Err(KafkaError::new(
            ResponseError::InvalidRequest,
            format!("{CONSUMER_OFFSETS_TOPIC} is internal: the broker creates it with the first group request"),
        ));
    }
    if !matches!(topic.replication_factor, -1 | 1) {
        return Err(KafkaError::new(
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {} is more than the 1 broker of this cluster", topic.replication_factor),
        ));
    }
    if !topic.assignments.is_empty() {
        return Err(KafkaError::new(
            ResponseError::InvalidReplicaAssignment,
            "manual replica assignment is not supported",
        ));
    }
    let partitions = if topic.num_partitions == -1 { context.broker.num_partitions } else { topic.num_partitions };
    let mut configs = TopicConfigs::new();
    for config in &topic.configs {
        if let Some(value) = &config.value {
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    let new_topic = NewTopic { name: topic.name.0.to_string(), partitions: partitions.max(0) as usize, configs };
    validate_new_topic(context, &new_topic)?;
    Ok(new_topic)
}
