//! ListGroups: every group of every shard, filtered by state (v4+). As in Kafka, DESCRIBE
//! on the cluster shows every group; without it, only the groups the session may DESCRIBE.

use crate::context::ShardContext;
use crate::security::session::Session;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a ListGroups request.
pub async fn handle(context: &Rc<ShardContext>, request: ListGroupsRequest, session: &Session) -> ListGroupsResponse {
    let listings = match context.list_groups().await {
        Ok(listings) => listings,
        Err(error) => return ListGroupsResponse::default().with_error_code(error.code.code()),
    };
    let wanted = |state: &str| {
        request.states_filter.is_empty() || request.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state))
    };
    let may_describe_all = context.authorize_cluster(session, AclOperation::Describe);
    let visible = |group_id: &str| {
        may_describe_all || context.authorize(session, AclOperation::Describe, ResourceType::Group, group_id)
    };
    let groups = listings
        .into_iter()
        .filter(|g| wanted(g.state.kafka_name()) && visible(&g.group_id))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(StrBytes::from_static_str(g.state.kafka_name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
