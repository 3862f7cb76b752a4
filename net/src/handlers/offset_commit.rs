//! OffsetCommit: the group's coordinator checks the committer, writes the offsets to
//! `__consumer_offsets` (durably, under the broker's flush policy) and then answers.
//! As in Kafka, partitions that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION here,
//! before the coordinator sees the rest; a request with none left needs no coordinator.

use crate::context::ShardContext;
use crate::group::records::CommittedOffset;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers an OffsetCommit request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetCommitRequest,
    admission: Option<Admission>,
) -> OffsetCommitResponse {
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
    let offsets_empty = offsets.is_empty();
    let op = GroupOp::Commit {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        generation_id: request.generation_id_or_member_epoch,
        offsets,
    };
    let code = if offsets_empty {
        0
    } else {
        match context.call_group(&request.group_id.0, op, admission).await {
            Ok(GroupReply::Done(result)) => result.err().map_or(0, |e| e.code()),
            Ok(other) => unreachable!("commit answered with {other:?}"),
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
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
