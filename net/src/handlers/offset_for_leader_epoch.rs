//! OffsetsForLeaderEpoch: where a leader epoch ends, so a client (or, later, a follower)
//! can detect that its position was truncated away.

use crate::context::ShardContext;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use crate::security::session::Session;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers an OffsetsForLeaderEpoch request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetForLeaderEpochRequest,
    session: &Session,
) -> OffsetForLeaderEpochResponse {
    let calls = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| PartitionCall {
                topic: topic.topic.0.to_string(),
                partition: p.partition,
                op: PartitionOp::EndOffsetForEpoch { epoch: p.leader_epoch },
            })
        })
        .collect();
    // A follower acts for the cluster; a consumer needs DESCRIBE on each topic.
    let mut results = if context.authorize_cluster(session, AclOperation::ClusterAction) {
        context.call_partitions(calls, None).await
    } else {
        context.call_authorized_partitions(session, AclOperation::Describe, calls, None).await
    }
    .into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    match results.next().expect("one result per partition") {
                        Ok(PartitionReply::EpochEnd(Some((epoch, end)))) => {
                            response.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        // No epoch at or below the one asked (Kafka: UNDEFINED_EPOCH, -1).
                        Ok(PartitionReply::EpochEnd(None)) => response.with_leader_epoch(-1).with_end_offset(-1),
                        Ok(other) => unreachable!("epoch lookup answered with {other:?}"),
                        Err(error) => {
                            response.with_error_code(error.code.code()).with_leader_epoch(-1).with_end_offset(-1)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
