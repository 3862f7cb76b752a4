//! OffsetFetch: a group's committed offsets (v0–7: one group; v8: several). A partition
//! without a committed offset answers -1, as Kafka. `require_stable` (v7+, sent by
//! read_committed consumers) withholds offsets that an open transaction is committing.

use super::authorization::{check_group, denied_topics};
use crate::context::ShardContext;
use crate::error::KafkaResult;
use crate::group::coordinator::FetchedOffset;
use crate::group::route::{GroupOp, GroupReply};
use crate::security::session::Session;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

/// One partition's answer: partition, offset, leader epoch, metadata, error code.
type Answer = (i32, i64, i32, Option<StrBytes>, i16);

/// The group's committed offsets for the partitions wanted (`None`: all it has), by topic
/// in topic order, as `session` may see them (Kafka's rules): DESCRIBE on the group, else
/// GROUP_AUTHORIZATION_FAILED; DESCRIBE on each topic, else a named topic's partitions
/// answer TOPIC_AUTHORIZATION_FAILED without the coordinator being asked, and when all
/// are wanted the topic is left out.
async fn fetch(
    context: &Rc<ShardContext>,
    session: &Session,
    group_id: &str,
    wanted: Option<Vec<(String, i32)>>,
    require_stable: bool,
) -> KafkaResult<BTreeMap<String, Vec<Answer>>> {
    check_group(context, session, AclOperation::Describe, group_id)?;
    let mut topics: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
    let all = wanted.is_none();
    let wanted = wanted.map(|wanted| {
        let denied = denied_topics(context, session, AclOperation::Describe, wanted.iter().map(|(t, _)| t.as_str()));
        let (refused, allowed): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(t, _)| denied.contains(t));
        for (topic, partition) in refused {
            let code = ResponseError::TopicAuthorizationFailed.code();
            topics.entry(topic).or_default().push((partition, -1, -1, Some(StrBytes::default()), code));
        }
        allowed
    });
    let offsets = match context.call_group(group_id, GroupOp::FetchOffsets(wanted), None).await? {
        GroupReply::Offsets(offsets) => offsets,
        other => unreachable!("offset fetch answered with {other:?}"),
    };
    let hidden = match all {
        true => denied_topics(context, session, AclOperation::Describe, offsets.iter().map(|o| o.topic.as_str())),
        false => HashSet::new(),
    };
    for offset in offsets.iter().filter(|o| !hidden.contains(&o.topic)) {
        topics.entry(offset.topic.clone()).or_default().push(partition_answer(offset, require_stable));
    }
    Ok(topics)
}

/// A partition's answer. With `require_stable`, an offset an open transaction is about
/// to replace is withheld with UNSTABLE_OFFSET_COMMIT (the client asks again), as Kafka
/// does. A partition without a committed offset answers -1.
fn partition_answer(offset: &FetchedOffset, require_stable: bool) -> Answer {
    let partition = offset.partition;
    if require_stable && offset.pending_in_transaction {
        return (partition, -1, -1, Some(StrBytes::default()), ResponseError::UnstableOffsetCommit.code());
    }
    match &offset.committed {
        Some(c) => (partition, c.offset, c.leader_epoch, Some(StrBytes::from_string(c.metadata.clone())), 0),
        None => (partition, -1, -1, Some(StrBytes::default()), 0),
    }
}

/// Answers an OffsetFetch request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetFetchRequest,
    version: i16,
    session: &Session,
) -> OffsetFetchResponse {
    let require_stable = request.require_stable;
    if version < 8 {
        let wanted = request.topics.map(|topics| {
            topics.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p))).collect()
        });
        return match fetch(context, session, &request.group_id.0, wanted, require_stable).await {
            Ok(topics) => OffsetFetchResponse::default().with_topics(
                topics
                    .into_iter()
                    .map(|(topic, answers)| {
                        let partitions = answers
                            .into_iter()
                            .map(|(partition, offset, epoch, metadata, code)| {
                                OffsetFetchResponsePartition::default()
                                    .with_error_code(code)
                                    .with_partition_index(partition)
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
        groups.push(match fetch(context, session, &group.group_id.0, wanted, require_stable).await {
            Ok(topics) => answer.with_topics(
                topics
                    .into_iter()
                    .map(|(topic, answers)| {
                        let partitions = answers
                            .into_iter()
                            .map(|(partition, offset, epoch, metadata, code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_error_code(code)
                                    .with_partition_index(partition)
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
