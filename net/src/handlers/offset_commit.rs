//! OffsetCommit: the group's coordinator checks the committer, writes the offsets to
//! `__consumer_offsets` (durably, under the broker's flush policy) and then answers.
//! As in Kafka, partitions that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION here,
//! before the coordinator sees the rest; a request with none left needs no coordinator.

use crate::context::ShardContext;
use crate::group::records::CommittedOffset;
use crate::group::route::{GroupOp, GroupReply};
use crate::metadata::Metadata;
use crate::ordering::Admission;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers an OffsetCommit request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetCommitRequest,
    admission: Option<Admission>,
) -> OffsetCommitResponse {
    let metadata = context.metadata();
    let offsets = existing_offsets(
        &metadata,
        request.topics.iter().flat_map(|topic| {
            topic.partitions.iter().map(|p| {
                let metadata = p.committed_metadata.as_ref();
                (topic.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata)
            })
        }),
    );
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
        GroupReply::done_code(context.call_group(&request.group_id.0, op, admission).await)
    };
    let by_topic =
        request.topics.into_iter().map(|t| (t.name, t.partitions.iter().map(|p| p.partition_index).collect()));
    let topics = codes_by_topic(&metadata, by_topic, |name| name.0.as_str(), code)
        .into_iter()
        .map(|(name, codes)| {
            let partitions = codes
                .into_iter()
                .map(|(p, code)| OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code))
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition of a commit request: topic, partition, offset, leader epoch, metadata.
pub(super) type CommitItem<'a> = (&'a str, i32, i64, i32, Option<&'a StrBytes>);

/// The partitions of a commit request (OffsetCommit, TxnOffsetCommit) that exist, as the
/// group coordinator stores them, stamped now; the others are answered
/// UNKNOWN_TOPIC_OR_PARTITION without reaching it.
pub(super) fn existing_offsets<'a>(
    metadata: &Metadata,
    items: impl Iterator<Item = CommitItem<'a>>,
) -> Vec<(String, i32, CommittedOffset)> {
    let now_ms = crate::coordination::wall_clock_ms();
    items
        .filter(|(topic, partition, ..)| metadata.owner(topic, *partition).is_some())
        .map(|(topic, partition, offset, leader_epoch, metadata)| {
            let metadata = metadata.map(|m| m.to_string()).unwrap_or_default();
            (
                topic.to_string(),
                partition,
                CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now_ms },
            )
        })
        .collect()
}

/// Each partition's code, by topic: `code` where the partition exists,
/// UNKNOWN_TOPIC_OR_PARTITION where it does not.
pub(super) fn codes_by_topic<T>(
    metadata: &Metadata,
    topics: impl Iterator<Item = (T, Vec<i32>)>,
    name: impl Fn(&T) -> &str,
    code: i16,
) -> Vec<(T, Vec<(i32, i16)>)> {
    topics
        .map(|(topic, partitions)| {
            let codes = partitions
                .into_iter()
                .map(|p| {
                    let exists = metadata.owner(name(&topic), p).is_some();
                    (p, if exists { code } else { ResponseError::UnknownTopicOrPartition.code() })
                })
                .collect();
            (topic, codes)
        })
        .collect()
}
