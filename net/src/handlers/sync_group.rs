//! SyncGroup: the leader hands in the assignment; every member gets its own part.

use super::authorization::call_group_authorized;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a SyncGroup request (READ on the group, else GROUP_AUTHORIZATION_FAILED).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: SyncGroupRequest,
    admission: Option<Admission>,
    session: &Session,
) -> SyncGroupResponse {
    let op = GroupOp::Sync {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation_id: request.generation_id,
        assignments: request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let response = SyncGroupResponse::default()
        .with_protocol_type(request.protocol_type)
        .with_protocol_name(request.protocol_name);
    match call_group_authorized(context, session, AclOperation::Read, &request.group_id.0, op, admission).await {
        Ok(GroupReply::Synced(Ok(assignment))) => response.with_assignment(assignment),
        Ok(GroupReply::Synced(Err(error))) => response.with_error_code(error.code()),
        Ok(other) => unreachable!("sync answered with {other:?}"),
        Err(error) => response.with_error_code(error.code.code()),
    }
}
