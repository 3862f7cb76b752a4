//! AlterPartitionReassignments and ListPartitionReassignments (KIP-455): moving a
//! partition's replicas to other brokers while it serves. The active controller decides
//! (`sluice_replication::controller`); any broker forwards to it. On a single node the
//! one broker holds every replica, so nothing can move. Kafka wants ALTER (to move) or
//! DESCRIBE (to list) on the cluster, else CLUSTER_AUTHORIZATION_FAILED for the request.

use crate::context::ShardContext;
use crate::error::{KafkaError, KafkaResult};
use crate::security::authorize::cluster_authorization_failed;
use crate::security::session::Session;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_replication::controller::Reassignment;
use sluice_replication::quorum::wire::BrokerRequest;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers an AlterPartitionReassignments request.
pub async fn handle_alter(
    context: &Rc<ShardContext>,
    request: AlterPartitionReassignmentsRequest,
    session: &Session,
) -> AlterPartitionReassignmentsResponse {
    if !context.authorize_cluster(session, AclOperation::Alter) {
        return alter_refused(&request, cluster_authorization_failed());
    }
    let metadata = context.metadata();
    // Each partition asked for, with its reassignment for the controller (none: nothing
    // to do) or why it is refused here.
    let mut positions: Vec<(usize, i32)> = Vec::new();
    let mut checked: Vec<KafkaResult<Option<Reassignment>>> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.as_str();
        for partition in &topic.partitions {
            let index = partition.partition_index;
            let target: Option<Vec<i32>> = partition.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            let result = match &metadata.cluster {
                None => on_a_single_node(context, name, index, target.as_deref()).map(|()| None),
                Some(view) => match view.partition(name, index) {
                    None => Err(KafkaError::unknown_partition(name, index)),
                    Some((_, state))
                        if !request.allow_replication_factor_change
                            && target.as_ref().is_some_and(|t| t.len() != state.target_replicas().len()) =>
                    {
                        Err(KafkaError::new(
                            ResponseError::InvalidReplicationFactor,
                            format!("{name}-{index}: the request does not allow the replication factor to change"),
                        ))
                    }
                    Some((key, _)) => Ok(Some(Reassignment { key, target })),
                },
            };
            positions.push((topic_index, index));
            checked.push(result);
        }
    }
    let decided = context.forward_each(checked, BrokerRequest::AlterReassignments).await;
    let mut responses: Vec<ReassignableTopicResponse> =
        request.topics.iter().map(|topic| ReassignableTopicResponse::default().with_name(topic.name.clone())).collect();
    for ((topic_index, index), result) in positions.into_iter().zip(decided) {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(error) => (error.code.code(), Some(StrBytes::from_string(error.message))),
        };
        responses[topic_index].partitions.push(
            ReassignablePartitionResponse::default()
                .with_partition_index(index)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

/// The answer to a request refused whole: `error` for it and for each partition named, as
/// Kafka's `getErrorResponse`.
fn alter_refused(
    request: &AlterPartitionReassignmentsRequest,
    error: KafkaError,
) -> AlterPartitionReassignmentsResponse {
    let message = Some(StrBytes::from_string(error.message));
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    ReassignablePartitionResponse::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(error.code.code())
                        .with_error_message(message.clone())
                })
                .collect();
            ReassignableTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_error_code(error.code.code())
        .with_error_message(message)
        .with_responses(responses)
}

/// A reassignment on a single node, which holds the one replica of everything: only
/// the assignment it has is accepted (and changes nothing).
fn on_a_single_node(context: &ShardContext, topic: &str, partition: i32, target: Option<&[i32]>) -> KafkaResult<()> {
    if context.metadata().owner(topic, partition).is_none() {
        return Err(KafkaError::unknown_partition(topic, partition));
    }
    let node = context.broker.node_id;
    match target {
        Some([only]) if *only == node => Ok(()),
        None => {
            Err(KafkaError::new(ResponseError::NoReassignmentInProgress, format!("{topic}-{partition} is not moving")))
        }
        Some(_) => Err(KafkaError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("{topic}-{partition}: a single node holds every replica; the only assignment is [{node}]"),
        )),
    }
}

/// Answers a ListPartitionReassignments request: the partitions asked for (all when none
/// are named) whose reassignment is in progress, from this broker's metadata.
pub fn handle_list(
    context: &Rc<ShardContext>,
    request: ListPartitionReassignmentsRequest,
    session: &Session,
) -> ListPartitionReassignmentsResponse {
    if !context.authorize_cluster(session, AclOperation::Describe) {
        let error = cluster_authorization_failed();
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(error.code.code())
            .with_error_message(Some(StrBytes::from_string(error.message)));
    }
    let metadata = context.metadata();
    let Some(view) = &metadata.cluster else { return ListPartitionReassignmentsResponse::default() };
    let asked: Vec<(String, Vec<i32>)> = match &request.topics {
        Some(topics) => topics.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect(),
        None => view.image.topics.iter().map(|(name, topic)| (name.clone(), (0..topic.partitions).collect())).collect(),
    };
    let ids = |brokers: &[i32]| brokers.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let topics = asked
        .into_iter()
        .filter_map(|(name, partitions)| {
            let moving: Vec<OngoingPartitionReassignment> = partitions
                .into_iter()
                .filter_map(|index| {
                    let (_, state) = view.partition(&name, index)?;
                    state.is_reassigning().then(|| {
                        OngoingPartitionReassignment::default()
                            .with_partition_index(index)
                            .with_replicas(ids(&state.replicas))
                            .with_adding_replicas(ids(&state.adding_replicas))
                            .with_removing_replicas(ids(&state.removing_replicas))
                    })
                })
                .collect();
            (!moving.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(name)))
                    .with_partitions(moving)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
