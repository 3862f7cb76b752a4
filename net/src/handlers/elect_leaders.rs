//! ElectLeaders (KIP-460): preferred-leader elections, decided by the active controller
//! (any broker forwards). Unclean elections are not offered (`unclean.leader.election.enable`
//! is off and cannot be turned on): a partition with a leader needs none, one without
//! gets ELIGIBLE_LEADERS_NOT_AVAILABLE. On a single node every partition's leader is
//! its preferred one. Kafka wants ALTER on the cluster (its docs say CLUSTER_ACTION; its
//! code checks ALTER), else CLUSTER_AUTHORIZATION_FAILED for the request and every
//! partition named.

use crate::context::ShardContext;
use crate::error::{KafkaError, KafkaResult};
use crate::security::authorize::cluster_authorization_failed;
use crate::security::session::Session;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_replication::quorum::wire::BrokerRequest;
use sluice_replication::PartitionKey;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Kafka's ElectionType: 0 preferred, 1 unclean.
const PREFERRED: i8 = 0;

/// Answers an ElectLeaders request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: ElectLeadersRequest,
    version: i16,
    session: &Session,
) -> ElectLeadersResponse {
    if !context.authorize_cluster(session, AclOperation::Alter) {
        return refused(&request, version, cluster_authorization_failed());
    }
    let metadata = context.metadata();
    let asked: Vec<(String, Vec<i32>)> = match &request.topic_partitions {
        Some(topics) => topics.iter().map(|t| (t.topic.0.to_string(), t.partitions.clone())).collect(),
        None => metadata
            .topics
            .iter()
            .map(|(name, topic)| (name.clone(), (0..topic.shards.len() as i32).collect()))
            .collect(),
    };
    // Each partition, with its key for the controller (none: decided here) or its refusal.
    let mut positions: Vec<(usize, i32)> = Vec::new();
    let mut checked: Vec<KafkaResult<Option<PartitionKey>>> = Vec::new();
    for (topic_index, (name, partitions)) in asked.iter().enumerate() {
        for index in partitions.iter().copied() {
            let result = match &metadata.cluster {
                _ if metadata.owner(name, index).is_none() => Err(KafkaError::unknown_partition(name, index)),
                None => Err(not_needed(name, index)),
                Some(view) => {
                    let (key, state) = view.partition(name, index).expect("an owned partition is in the image");
                    match request.election_type {
                        PREFERRED => Ok(Some(key)),
                        _ if state.has_leader() => Err(not_needed(name, index)),
                        _ => Err(KafkaError::new(
                            ResponseError::EligibleLeadersNotAvailable,
                            format!(
                                "{name}-{index} has no in-sync replica alive, and unclean elections are not offered"
                            ),
                        )),
                    }
                }
            };
            positions.push((topic_index, index));
            checked.push(result);
        }
    }
    let decided = context.forward_each(checked, BrokerRequest::ElectPreferredLeaders).await;
    let mut results: Vec<ReplicaElectionResult> = asked
        .iter()
        .map(|(name, _)| ReplicaElectionResult::default().with_topic(TopicName(StrBytes::from_string(name.clone()))))
        .collect();
    for ((topic_index, index), result) in positions.into_iter().zip(decided) {
        let (code, message) = match result {
            Ok(()) => (0, None),
            Err(error) => (error.code.code(), Some(StrBytes::from_string(error.message))),
        };
        results[topic_index].partition_result.push(
            PartitionResult::default().with_partition_id(index).with_error_code(code).with_error_message(message),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// The answer to a request refused whole: `error` for it (v1+ have the field) and for each
/// partition named, as Kafka's `getErrorResponse`.
fn refused(request: &ElectLeadersRequest, version: i16, error: KafkaError) -> ElectLeadersResponse {
    let message = Some(StrBytes::from_string(error.message));
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|index| {
                    PartitionResult::default()
                        .with_partition_id(*index)
                        .with_error_code(error.code.code())
                        .with_error_message(message.clone())
                })
                .collect();
            ReplicaElectionResult::default().with_topic(topic.topic.clone()).with_partition_result(partitions)
        })
        .collect();
    let code = if version >= 1 { error.code.code() } else { 0 };
    ElectLeadersResponse::default().with_error_code(code).with_replica_election_results(results)
}

fn not_needed(topic: &str, partition: i32) -> KafkaError {
    KafkaError::new(
        ResponseError::ElectionNotNeeded,
        format!("{topic}-{partition}: its leader is the one it would get"),
    )
}
