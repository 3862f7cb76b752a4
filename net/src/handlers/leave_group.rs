//! LeaveGroup: members leave (v0–2: one by member id; v3+: a batch, static members by
//! instance id), and the rest rebalance.

use super::authorization::call_group_authorized;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a LeaveGroup request (READ on the group, else GROUP_AUTHORIZATION_FAILED for
/// the whole request).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: LeaveGroupRequest,
    version: i16,
    admission: Option<Admission>,
    session: &Session,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let leave = GroupOp::Leave(members);
    let left = call_group_authorized(context, session, AclOperation::Read, &request.group_id.0, leave, admission);
    let results = match left.await {
        Ok(GroupReply::Left(results)) => results.into_iter().map(|r| r.err().map_or(0, |e| e.code())).collect(),
        Ok(other) => unreachable!("leave answered with {other:?}"),
        Err(error) => return LeaveGroupResponse::default().with_error_code(error.code.code()),
    };
    if version < 3 {
        let code: Vec<i16> = results;
        return LeaveGroupResponse::default().with_error_code(code[0]);
    }
    let members = request
        .members
        .into_iter()
        .zip(results)
        .map(|(m, code)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
