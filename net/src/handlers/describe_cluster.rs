//! DescribeCluster: the one broker, which is also the controller.

use crate::context::ShardContext;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// Answers a DescribeCluster request.
pub fn handle(context: &Rc<ShardContext>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(context.broker.node_id);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(StrBytes::from_string(context.broker.advertised_host.clone()))
        .with_port(i32::from(context.broker.advertised_port));
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_string(context.metadata().cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(i32::MIN)
}
