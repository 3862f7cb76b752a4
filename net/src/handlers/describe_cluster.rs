//! DescribeCluster: the live brokers (on a single node, the one broker, which is also the
//! controller). In a cluster every broker forwards admin requests to the active
//! controller, so the controller id named is this broker (as KRaft brokers do).

use crate::context::ShardContext;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// Answers a DescribeCluster request.
pub fn handle(context: &Rc<ShardContext>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(context.broker.node_id);
    let metadata = context.metadata();
    let brokers = match &metadata.cluster {
        Some(view) => view
            .live_brokers()
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
            .with_host(StrBytes::from_string(context.broker.advertised_host.clone()))
            .with_port(i32::from(context.broker.advertised_port))],
    };
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(metadata.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(brokers)
        .with_cluster_authorized_operations(i32::MIN)
}
