//! TxnOffsetCommit: offsets committed inside a transaction. The group's coordinator
//! checks the member (when the request names one, v3+), writes them as the producer's
//! transactional batch and holds them pending: they become visible when the transaction's
//! commit marker reaches the group's `__consumer_offsets` partition, and vanish on abort.
//! Kafka's checks come first: WRITE on the transactional id, then READ on the group (each
//! refusing every partition), then READ on each topic.

use super::authorization::{check_group, check_transactional_id};
use super::offset_commit::{codes_by_topic, committable_offsets, CommitChecks};
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::security::session::Session;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a TxnOffsetCommit request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: TxnOffsetCommitRequest,
    session: &Session,
) -> TxnOffsetCommitResponse {
    let transaction = check_transactional_id(context, session, AclOperation::Write, &request.transactional_id)
        .and_then(|()| check_group(context, session, AclOperation::Read, &request.group_id.0));
    let checks = CommitChecks::new(context, session, transaction, request.topics.iter().map(|t| t.name.0.as_str()));
    let offsets = committable_offsets(
        &checks,
        request.topics.iter().flat_map(|topic| {
            topic.partitions.iter().map(|p| {
                let metadata = p.committed_metadata.as_ref();
                (topic.name.0.as_str(), p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata)
            })
        }),
    );
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
        GroupReply::done_code(context.call_group(&request.group_id.0, op, None).await)
    };
    let by_topic =
        request.topics.into_iter().map(|t| (t.name, t.partitions.iter().map(|p| p.partition_index).collect()));
    let topics = codes_by_topic(&checks, by_topic, |name| name.0.as_str(), code)
        .into_iter()
        .map(|(name, codes)| {
            let partitions = codes
                .into_iter()
                .map(|(p, code)| {
                    TxnOffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
