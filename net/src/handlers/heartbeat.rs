//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use super::authorization::call_group_authorized;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a Heartbeat request (READ on the group, else GROUP_AUTHORIZATION_FAILED).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: HeartbeatRequest,
    admission: Option<Admission>,
    session: &Session,
) -> HeartbeatResponse {
    let op = GroupOp::Heartbeat {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation_id: request.generation_id,
    };
    let beat = call_group_authorized(context, session, AclOperation::Read, &request.group_id.0, op, admission);
    let code = match beat.await {
        Ok(GroupReply::Done(result)) => result.err().map_or(0, |e| e.code()),
        Ok(other) => unreachable!("heartbeat answered with {other:?}"),
        Err(error) => error.code.code(),
    };
    HeartbeatResponse::default().with_error_code(code)
}
