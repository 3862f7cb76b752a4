//! OffsetFetch: a group's committed offsets (v0–7: one group; v8: several). A partition
//! without a committed offset answers -1, as Kafka. `require_stable` (v7+, sent by
//! read_committed consumers) withholds offsets that an open transaction is committing.

use crate::context::ShardContext;
use crate::error::KafkaResult;
use crate::group::coordinator::FetchedOffset;
use crate::group::route::{GroupOp, GroupReply};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use std::rc::Rc;

async fn fetch(
    context: &Rc<ShardContext>,
    group_id: &str,
    wanted: Option<Vec<(String, i32)>>,
) -> KafkaResult<Vec<FetchedOffset>> {
    match context.call_group(group_id, GroupOp::FetchOffsets(wanted), None).await? {
        GroupReply::Offsets(offsets) => Ok(offsets),
        other => unreachable!("offset fetch answered with {other:?}"),
    }
}

/// Groups answers by topic, in topic order.
fn by_topic(offsets: Vec<FetchedOffset>) -> BTreeMap<String, Vec<FetchedOffset>> {
    let mut topics: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for offset in offsets {
        topics.entry(offset.topic.clone()).or_default().push(offset);
    }
    topics
}

/// A partition's answer: offset, leader epoch, metadata and error code. With
/// `require_stable`, an offset an open transaction is about to replace is withheld with
/// UNSTABLE_OFFSET_COMMIT (the client asks again), as Kafka does.
fn parts(offset: &FetchedOffset, require_stable: bool) -> (i64, i32, Option<StrBytes>, i16) {
    if require_stable && offset.pending_in_transaction {
        return (-1, -1, Some(StrBytes::default()), ResponseError::UnstableOffsetCommit.code());
    }
    match &offset.committed {
        Some(c) => (c.offset, c.leader_epoch, Some(StrBytes::from_string(c.metadata.clone())), 0),
        None => (-1, -1, Some(StrBytes::default()), 0),
    }
}

/// Answers an OffsetFetch request.
pub async fn handle(context: &Rc<ShardContext>, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let require_stable = request.require_stable;
    if version < 8 {
        let wanted = request.topics.map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p))).collect()
        });
        return match fetch(context, &request.group_id.0, wanted).await {
            Ok(offsets) => OffsetFetchResponse::default().with_topics(
                by_topic(offsets)
                    .into_iter()
                    .map(|(topic, offsets)| {
                        let partitions = offsets
                            .iter()
                            .map(|o| {
                                let (offset, epoch, metadata, code) = parts(o, require_stable);
                                OffsetFetchResponsePartition::default()
                                    .with_error_code(code)
                                    .with_partition_index(o.partition)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(metadata)
                            })
                            .collect();
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ),
            Err(error) => OffsetFetchResponse::default().with_error_code(error.code.code()),
        };
    }
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in request.groups {
        let wanted = group.topics.map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p))).collect()
        });
        let answer = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
        groups.push(match fetch(context, &group.group_id.0, wanted).await {
            Ok(offsets) => answer.with_topics(
                by_topic(offsets)
                    .into_iter()
                    .map(|(topic, offsets)| {
                        let partitions = offsets
                            .iter()
                            .map(|o| {
                                let (offset, epoch, metadata, code) = parts(o, require_stable);
                                OffsetFetchResponsePartitions::default()
                                    .with_error_code(code)
                                    .with_partition_index(o.partition)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(metadata)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            ),
            Err(error) => answer.with_error_code(error.code.code()),
        });
    }
    OffsetFetchResponse::default().with_groups(groups)
}
