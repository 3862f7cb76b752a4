//! JoinGroup: handed to the group's coordinator shard; answered when the rebalance's
//! join phase ends (or at once with an error, or MEMBER_ID_REQUIRED on a first join).

use super::authorization::call_group_authorized;
use super::RequestSource;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::group::state::JoinRequest;
use crate::ordering::Admission;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_security::acl::AclOperation;
use std::rc::Rc;
use std::time::Duration;

fn string(text: String) -> StrBytes {
    StrBytes::from_string(text)
}

/// Answers a JoinGroup request (READ on the group, else GROUP_AUTHORIZATION_FAILED).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: JoinGroupRequest,
    version: i16,
    source: RequestSource,
    admission: Option<Admission>,
) -> JoinGroupResponse {
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_ms = if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: source.client_id.to_string(),
        client_host: source.client_host.to_string(),
        session_timeout: session,
        rebalance_timeout: Duration::from_millis(rebalance_ms.max(0) as u64),
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        requires_known_member_id: version >= 4,
    };
    let group_id = request.group_id.0.to_string();
    let join = GroupOp::Join(join);
    match call_group_authorized(context, &source.session, AclOperation::Read, &group_id, join, admission).await {
        Ok(GroupReply::Joined(result)) => JoinGroupResponse::default()
            .with_error_code(result.error.map_or(0, |e| e.code()))
            .with_generation_id(result.generation_id)
            .with_protocol_type(result.protocol_type.map(string))
            .with_protocol_name(result.protocol_name.map(string))
            .with_leader(string(result.leader_id))
            .with_member_id(string(result.member_id))
            .with_members(
                result
                    .members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(string(m.member_id))
                            .with_group_instance_id(m.instance_id.map(string))
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Ok(other) => unreachable!("join answered with {other:?}"),
        Err(error) => JoinGroupResponse::default()
            .with_error_code(error.code.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id),
    }
}
