//! TxnOffsetCommit: offsets committed inside a transaction. The group's coordinator
//! checks the member (when the request names one, v3+), writes them as the producer's
//! transactional batch and holds them pending: they become visible when the transaction's
//! commit marker reaches the group's `__consumer_offsets` partition, and vanish on abort.

use crate::context::ShardContext;
use crate::group::records::CommittedOffset;
use crate::group::route::{GroupOp, GroupReply};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers a TxnOffsetCommit request.
pub async fn handle(context: &Rc<ShardContext>, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let now_ms = crate::coordination::wall_clock_ms();
    let metadata = context.metadata();
    let exists = |topic: &str, partition: i32| metadata.owner(topic, partition).is_some();
    let offsets: Vec<_> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().filter(|p| exists(&topic.name.0, p.partition_index)).map(|p| {
                let committed = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                    commit_timestamp_ms: now_ms,
                };
                (topic.name.0.to_string(), p.partition_index, committed)
            })
        })
        .collect();
    let code = if offsets.is_empty() {
        0
    } else {
        let op = GroupOp::TxnCommit {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
            generation_id: request.generation_id,
            producer: (request.producer_id.0, request.producer_epoch),
            offsets,
        };
        match context.call_group(&request.group_id.0, op, None).await {
            Ok(GroupReply::Done(result)) => result.err().map_or(0, |e| e.code()),
            Ok(other) => unreachable!("TxnOffsetCommit answered with {other:?}"),
            Err(error) => error.code.code(),
        }
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = if exists(&topic.name.0, p.partition_index) {
                        code
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
