//! OffsetDelete: forget a group's committed offsets for partitions of topics that none of
//! its members subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others). As in Kafka, the
//! session needs DELETE on the group (else GROUP_AUTHORIZATION_FAILED for the request)
//! and READ on each topic (else TOPIC_AUTHORIZATION_FAILED for its partitions, which the
//! coordinator never sees).

use super::authorization::{call_group_authorized, denied_topics};
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers an OffsetDelete request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetDeleteRequest,
    admission: Option<Admission>,
    session: &Session,
) -> OffsetDeleteResponse {
    let denied = denied_topics(context, session, AclOperation::Read, request.topics.iter().map(|t| t.name.0.as_str()));
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| !denied.contains(t.name.0.as_str()))
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let op = GroupOp::DeleteOffsets(partitions);
    let deleted = call_group_authorized(context, session, AclOperation::Delete, &request.group_id.0, op, admission);
    let mut codes = match deleted.await {
        Ok(GroupReply::OffsetsDeleted(Ok(results))) => results.into_iter().map(|r| r.err().map_or(0, |e| e.code())),
        Ok(GroupReply::OffsetsDeleted(Err(error))) => {
            return OffsetDeleteResponse::default().with_error_code(error.code())
        }
        Ok(other) => unreachable!("offset delete answered with {other:?}"),
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error.code.code()),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let denied = denied.contains(topic.name.0.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = match denied {
                        true => ResponseError::TopicAuthorizationFailed.code(),
                        false => codes.next().expect("one result per allowed partition"),
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
