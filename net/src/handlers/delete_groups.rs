//! DeleteGroups: each empty group's membership and committed offsets are deleted
//! (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if it does not exist). Each
//! needs DELETE on it (else GROUP_AUTHORIZATION_FAILED), checked before it is looked up.

use super::authorization::call_group_authorized;
use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use crate::security::session::Session;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a DeleteGroups request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: DeleteGroupsRequest,
    admission: Option<Admission>,
    session: &Session,
) -> DeleteGroupsResponse {
    // One group after another, each deleted before the next: the whole request holds its
    // admission turn, so the connection's later group requests come after all of them.
    let _admitting = crate::ordering::begin(admission).await;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let delete = call_group_authorized(context, session, AclOperation::Delete, &group_id.0, GroupOp::Delete, None);
        let code = match delete.await {
            Ok(GroupReply::Done(result)) => result.err().map_or(0, |e| e.code()),
            Ok(other) => unreachable!("delete answered with {other:?}"),
            Err(error) => error.code.code(),
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
