//! CreatePartitions: grow topics; new partitions go to the least-loaded shards. A manual
//! assignment is checked as Kafka does; on a single node it can only name this broker, in
//! a cluster any registered one (the controller places the replicas).

use super::create_topics::{check_replicas, is_registered, replication_factor_of};
use crate::context::ShardContext;
use crate::control::{MetadataChange, PartitionGrowth};
use crate::error::KafkaError;
use crate::security::authorize::topic_authorization_failed;
use crate::security::session::Session;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a CreatePartitions request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: CreatePartitionsRequest,
    session: &Session,
) -> CreatePartitionsResponse {
    let metadata = context.metadata();
    let checked: Vec<Result<PartitionGrowth, KafkaError>> = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            // Checked before the topic is looked up, so a denied client learns nothing of it.
            if !context.authorize(session, AclOperation::Alter, ResourceType::Topic, &name) {
                return Err(topic_authorization_failed());
            }
            let current = metadata.topics.get(&name).map(|t| t.shards.len()).ok_or_else(|| {
                KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("topic {name} does not exist"))
            })?;
            if topic.count as i64 <= current as i64 {
                return Err(KafkaError::new(
                    ResponseError::InvalidPartitions,
                    format!("topic {name} has {current} partitions; the count can only grow"),
                ));
            }
            if let Some(assignments) = &topic.assignments {
                // Each new partition's replicas, checked as Kafka checks them; every
                // partition of this cluster has one replica.
                let additional = topic.count as usize - current;
                if assignments.len() != additional {
                    return Err(KafkaError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                            assignments.len()
                        ),
                    ));
                }
                let replication_factor = replication_factor_of(&metadata, &name);
                let mut replicas = Vec::with_capacity(assignments.len());
                for assignment in assignments {
                    let brokers: Vec<i32> = assignment.broker_ids.iter().map(|id| id.0).collect();
                    check_replicas(&brokers, Some(replication_factor), |broker| is_registered(context, broker))?;
                    replicas.push(brokers);
                }
                return Ok(PartitionGrowth { name, count: topic.count as usize, assignments: Some(replicas) });
            }
            Ok(PartitionGrowth { name, count: topic.count as usize, assignments: None })
        })
        .collect();
    let valid: Vec<PartitionGrowth> = checked.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut applied = if request.validate_only || valid.is_empty() {
        valid.iter().map(|_| Ok(())).collect()
    } else {
        context.change_metadata(MetadataChange::CreatePartitions(valid)).await
    }
    .into_iter();
    let results = request
        .topics
        .iter()
        .zip(checked)
        .map(|(topic, checked)| {
            let response = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            match checked.and_then(|_| applied.next().expect("one result per valid topic")) {
                Ok(()) => response,
                Err(error) => response
                    .with_error_code(error.code.code())
                    .with_error_message(Some(StrBytes::from_string(error.message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
