//! DescribeCluster: the live brokers (on a single node, the one broker, which is also the
//! controller). In a cluster every broker forwards admin requests to the active
//! controller, so the controller id named is this broker (as KRaft brokers do).

use crate::context::ShardContext;
use crate::security::session::Session;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// Answers a DescribeCluster request.
pub fn handle(
    context: &Rc<ShardContext>,
    request: DescribeClusterRequest,
    session: &Session,
) -> DescribeClusterResponse {
    let protocol = context.broker.listeners[session.listener].protocol;
    let node = BrokerId(context.broker.node_id);
    let metadata = context.metadata();
    let brokers = match &metadata.cluster {
        Some(view) => view
            .live_brokers(protocol)
            .into_iter()
            .map(|b| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(b.host))
                    .with_port(i32::from(b.port))
                    .with_rack(b.rack.map(StrBytes::from_string))
            })
            .collect(),
        None => vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(StrBytes::from_string(context.broker.advertised(session.listener).0.to_string()))
            .with_port(i32::from(context.broker.advertised(session.listener).1))],
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(metadata.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
