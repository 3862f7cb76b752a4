//! ListGroups: every group of every shard, filtered by state (v4+).

use crate::context::ShardContext;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// Answers a ListGroups request.
pub async fn handle(context: &Rc<ShardContext>, request: ListGroupsRequest) -> ListGroupsResponse {
    let listings = match context.list_groups().await {
        Ok(listings) => listings,
        Err(error) => return ListGroupsResponse::default().with_error_code(error.code.code()),
    };
    let wanted = |state: &str| {
        request.states_filter.is_empty() || request.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state))
    };
    let groups = listings
        .into_iter()
        .filter(|g| wanted(g.state.kafka_name()))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_group_state(StrBytes::from_static_str(g.state.kafka_name()))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
