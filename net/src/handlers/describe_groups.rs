//! DescribeGroups: state, protocol and members (with metadata and assignment) of each
//! group, from its coordinator shard. An unknown group is described as Dead, as Kafka does.
//! Each group needs DESCRIBE on it (else GROUP_AUTHORIZATION_FAILED), checked before its
//! coordinator is asked.

use super::authorization::call_group_authorized;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::security::session::Session;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// "Authorized operations not requested" (Kafka's INT32_MIN sentinel).
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Answers a DescribeGroups request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: DescribeGroupsRequest,
    session: &Session,
) -> DescribeGroupsResponse {
    // v3+ may ask what the session may do to each group described (as Metadata does for
    // topics, reported while the authorizer is on).
    let operations = |group_id: &str| match request.include_authorized_operations && context.authorizer_enabled() {
        true => context.authorized_operations(session, ResourceType::Group, group_id),
        false => OPERATIONS_NOT_REQUESTED,
    };
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let answer = DescribedGroup::default()
            .with_group_id(group_id.clone())
            .with_authorized_operations(OPERATIONS_NOT_REQUESTED);
        let describe =
            call_group_authorized(context, session, AclOperation::Describe, &group_id.0, GroupOp::Describe, None);
        groups.push(match describe.await {
            Ok(GroupReply::Described(group)) => answer
                .with_authorized_operations(operations(&group_id.0))
                .with_group_state(StrBytes::from_static_str(group.state.kafka_name()))
                .with_protocol_type(StrBytes::from_string(group.protocol_type))
                .with_protocol_data(StrBytes::from_string(group.protocol_name))
                .with_members(
                    group
                        .members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_group_instance_id(m.instance_id.map(StrBytes::from_string))
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
            Ok(other) => unreachable!("describe answered with {other:?}"),
            Err(error) => answer.with_error_code(error.code.code()),
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
