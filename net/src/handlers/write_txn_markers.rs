//! WriteTxnMarkers: a transaction coordinator (on another broker) has this broker, the
//! partitions' leader, end a producer's transaction in each partition with a marker.
//! Only brokers may: Kafka wants ALTER or CLUSTER_ACTION on the cluster (else every
//! partition answers CLUSTER_AUTHORIZATION_FAILED).

use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::coordinator::write_markers_here;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;
use sluice_engine::batch::ControlType;
use sluice_engine::TxnMarker;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a WriteTxnMarkers request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: WriteTxnMarkersRequest,
    session: &Session,
) -> WriteTxnMarkersResponse {
    let authorized = context.authorize_cluster(session, AclOperation::Alter)
        || context.authorize_cluster(session, AclOperation::ClusterAction);
    let mut results = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let written = TxnMarker {
            producer_id: marker.producer_id.0,
            producer_epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            control: if marker.transaction_result { ControlType::Commit } else { ControlType::Abort },
        };
        let partitions: Vec<(String, i32)> =
            marker.topics.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p))).collect();
        let outcomes = match authorized {
            true => write_markers_here(context, written, &partitions).await,
            false => vec![Err(ResponseError::ClusterAuthorizationFailed); partitions.len()],
        };
        let mut outcomes = outcomes.into_iter();
        let topics = marker
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let code = outcomes.next().expect("one outcome per partition").err().map_or(0, |e| e.code());
                        WritableTxnMarkerPartitionResult::default().with_partition_index(*p).with_error_code(code)
                    })
                    .collect();
                WritableTxnMarkerTopicResult::default().with_name(topic.name).with_partitions(partitions)
            })
            .collect();
        results.push(WritableTxnMarkerResult::default().with_producer_id(marker.producer_id).with_topics(topics));
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
