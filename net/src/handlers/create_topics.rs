//! CreateTopics: authorize and validate each topic, then create the valid ones in one
//! metadata change.

use crate::context::ShardContext;
use crate::control::{validate_new_topic, MetadataChange, NewTopic};
use crate::error::{KafkaError, KafkaResult};
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::security::session::Session;
use crate::topic_config::TopicConfigs;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a CreateTopics request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: CreateTopicsRequest,
    session: &Session,
) -> CreateTopicsResponse {
    // Kafka's rule: CREATE on the cluster covers every topic, else each topic needs its own.
    // Checked before the topic is validated, so a denied client learns nothing of it.
    let may_create_all = context.authorize_cluster(session, AclOperation::Create);
    let may_create =
        |name: &str| may_create_all || context.authorize(session, AclOperation::Create, ResourceType::Topic, name);
    let checked: Vec<KafkaResult<NewTopic>> = request
        .topics
        .iter()
        .map(|t| match may_create(t.name.0.as_str()) {
            true => to_new_topic(context, t),
            false => Err(KafkaError::new(ResponseError::TopicAuthorizationFailed, "Authorization failed.")),
        })
        .collect();
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
                    let name = topic.name.0.as_str();
                    let stored = metadata.topics.get(name);
                    // Kafka shows a new topic's configs (v5+) only with DESCRIBE_CONFIGS on it,
                    // and says so in this code; sluice shows none either way.
                    let configs_code =
                        match context.authorize(session, AclOperation::DescribeConfigs, ResourceType::Topic, name) {
                            true => 0,
                            false => ResponseError::TopicAuthorizationFailed.code(),
                        };
                    response
                        .with_topic_id(stored.map(|t| t.id).unwrap_or_default())
                        .with_topic_config_error_code(configs_code)
                        .with_num_partitions(stored.map_or(topic.num_partitions, |t| t.shards.len() as i32))
                        .with_replication_factor(replication_factor_of(&metadata, name) as i16)
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

/// Replicas per partition of a topic, as the metadata has it (1 on a single node; a
/// partition being moved counts the replicas it will have).
pub(super) fn replication_factor_of(metadata: &crate::metadata::Metadata, topic: &str) -> usize {
    metadata
        .cluster
        .as_ref()
        .and_then(|view| view.partition(topic, 0))
        .map_or(1, |(_, state)| state.target_replicas().len())
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
    let partitions = if topic.assignments.is_empty() {
        if !context.in_cluster() && !matches!(topic.replication_factor, -1 | 1) {
            return Err(KafkaError::new(
                ResponseError::InvalidReplicationFactor,
                format!("replication factor {} is more than the 1 broker of this cluster", topic.replication_factor),
            ));
        }
        if topic.num_partitions == -1 {
            context.broker.num_partitions
        } else {
            topic.num_partitions
        }
    } else {
        manual_partition_count(topic, |broker| is_registered(context, broker))?
    };
    // Kafka's order is the request's; the controller wants them by partition index.
    let assignments = (!topic.assignments.is_empty()).then(|| {
        let mut assigned: Vec<_> = topic.assignments.iter().collect();
        assigned.sort_by_key(|a| a.partition_index);
        assigned.iter().map(|a| a.broker_ids.iter().map(|id| id.0).collect()).collect()
    });
    let mut configs = TopicConfigs::new();
    for config in &topic.configs {
        if let Some(value) = &config.value {
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    let replication_factor = usize::try_from(topic.replication_factor).ok().filter(|_| context.in_cluster());
    let new_topic = NewTopic {
        name: topic.name.0.to_string(),
        partitions: partitions.max(0) as usize,
        configs,
        replication_factor,
        assignments,
    };
    validate_new_topic(context, &new_topic)?;
    Ok(new_topic)
}

/// Whether `broker` may be named in a manual assignment: a registered broker of the
/// cluster, or this broker on a single node.
pub(super) fn is_registered(context: &ShardContext, broker: i32) -> bool {
    match &context.metadata().cluster {
        Some(view) => view.image.brokers.contains_key(&broker),
        None => broker == context.broker.node_id,
    }
}

/// Checks a manual replica assignment as Kafka's controller does (same order, same
/// messages) and returns its partition count. `registered` says whether a broker id is a
/// member of the cluster.
fn manual_partition_count(
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    registered: impl Fn(i32) -> bool,
) -> KafkaResult<i32> {
    let invalid_request = |message: &str| Err(KafkaError::new(ResponseError::InvalidRequest, message));
    let invalid_assignment = |message: String| Err(KafkaError::new(ResponseError::InvalidReplicaAssignment, message));
    if topic.replication_factor != -1 {
        return invalid_request(
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        );
    }
    if topic.num_partitions != -1 {
        return invalid_request("A manual partition assignment was specified, but numPartitions was not set to -1.");
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut replication_factor = None;
    for assignment in &topic.assignments {
        let index = assignment.partition_index;
        if !seen.insert(index) {
            return invalid_assignment(format!("Found multiple manual partition assignments for partition {index}"));
        }
        let brokers: Vec<i32> = assignment.broker_ids.iter().map(|id| id.0).collect();
        replication_factor = Some(check_replicas(&brokers, replication_factor, &registered)?);
    }
    // Indexes 0..n-1, each once: the largest is n-1.
    let count = seen.len() as i32;
    if seen.iter().next_back() != Some(&(count - 1)) || seen.first() != Some(&0) {
        return invalid_assignment("partitions should be a consecutive 0-based integer sequence".to_string());
    }
    Ok(count)
}

/// Checks one partition's replica list as Kafka's controller does: not empty, every
/// broker registered, none twice, as many as the other partitions have (`expected`).
/// Returns the replica count.
pub(super) fn check_replicas(
    brokers: &[i32],
    expected: Option<usize>,
    registered: impl Fn(i32) -> bool,
) -> KafkaResult<usize> {
    let invalid = |message: String| Err(KafkaError::new(ResponseError::InvalidReplicaAssignment, message));
    if brokers.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".to_string());
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    for (position, &broker) in sorted.iter().enumerate() {
        if !registered(broker) {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            ));
        }
        if position > 0 && sorted[position - 1] == broker {
            return invalid(format!("The manual partition assignment includes the broker {broker} more than once."));
        }
    }
    match expected {
        Some(expected) if expected != sorted.len() => invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent \
             with previous partitions, which have {expected} replica(s).",
            sorted.len()
        )),
        _ => Ok(sorted.len()),
    }
}
