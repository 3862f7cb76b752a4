//! OffsetCommit: the group's coordinator checks the committer, writes the offsets to
//! `__consumer_offsets` (durably, under the broker's flush policy) and then answers.
//! As in Kafka, the session needs READ on the group (else every partition answers
//! GROUP_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED), and
//! partitions that do not exist are answered UNKNOWN_TOPIC_OR_PARTITION here, before the
//! coordinator sees the rest; a request with none left needs no coordinator.

use super::authorization::{check_group, denied_topics};
use crate::context::ShardContext;
use crate::error::KafkaResult;
use crate::group::records::CommittedOffset;
use crate::group::route::{GroupOp, GroupReply};
use crate::metadata::Metadata;
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

/// Answers an OffsetCommit request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetCommitRequest,
    admission: Option<Admission>,
    session: &Session,
) -> OffsetCommitResponse {
    let group = check_group(context, session, AclOperation::Read, &request.group_id.0);
    let checks = CommitChecks::new(context, session, group, request.topics.iter().map(|t| t.name.0.as_str()));
    let offsets = committable_offsets(
        &checks,
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
    let topics = codes_by_topic(&checks, by_topic, |name| name.0.as_str(), code)
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

/// What keeps a partition of a commit request (OffsetCommit, TxnOffsetCommit) from its
/// group's coordinator, in Kafka's order: the whole request refused (the session may not
/// use the group or transactional id); a topic the session may not READ, checked before
/// the topic is looked up, so a denied client learns nothing of it; a partition that
/// does not exist.
pub(super) struct CommitChecks {
    metadata: Arc<Metadata>,
    refused: Option<ResponseError>,
    denied_topics: HashSet<String>,
}

impl CommitChecks {
    /// The checks of a request on `topics`, refused whole if `request` is an error.
    pub(super) fn new<'a>(
        context: &ShardContext,
        session: &Session,
        request: KafkaResult<()>,
        topics: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let refused = request.err().map(|error| error.code);
        let denied_topics = match refused {
            Some(_) => HashSet::new(),
            None => denied_topics(context, session, AclOperation::Read, topics),
        };
        CommitChecks { metadata: context.metadata(), refused, denied_topics }
    }

    /// Why the partition is not committed, if it is not.
    fn refusal(&self, topic: &str, partition: i32) -> Option<ResponseError> {
        if self.refused.is_some() {
            self.refused
        } else if self.denied_topics.contains(topic) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if self.metadata.owner(topic, partition).is_none() {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        }
    }
}

/// One partition of a commit request: topic, partition, offset, leader epoch, metadata.
pub(super) type CommitItem<'a> = (&'a str, i32, i64, i32, Option<&'a StrBytes>);

/// The partitions of a commit request (OffsetCommit, TxnOffsetCommit) that pass `checks`,
/// as the group coordinator stores them, stamped now; the others are answered without
/// reaching it.
pub(super) fn committable_offsets<'a>(
    checks: &CommitChecks,
    items: impl Iterator<Item = CommitItem<'a>>,
) -> Vec<(String, i32, CommittedOffset)> {
    let now_ms = crate::coordination::wall_clock_ms();
    items
        .filter(|(topic, partition, ..)| checks.refusal(topic, *partition).is_none())
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

/// Each partition's code, by topic: `code` (the coordinator's answer) where the partition
/// passed `checks`, the refusal's code where it did not.
pub(super) fn codes_by_topic<T>(
    checks: &CommitChecks,
    topics: impl Iterator<Item = (T, Vec<i32>)>,
    name: impl Fn(&T) -> &str,
    code: i16,
) -> Vec<(T, Vec<(i32, i16)>)> {
    topics
        .map(|(topic, partitions)| {
            let codes = partitions
                .into_iter()
                .map(|p| (p, checks.refusal(name(&topic), p).map_or(code, |refusal| refusal.code())))
                .collect();
            (topic, codes)
        })
        .collect()
}
