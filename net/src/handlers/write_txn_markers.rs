//! WriteTxnMarkers: a transaction coordinator (on another broker) has this broker, the
//! partitions' leader, end a producer's transaction in each partition with a marker.

use crate::context::ShardContext;
use crate::txn::coordinator::write_markers_here;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use sluice_engine::batch::ControlType;
use sluice_engine::TxnMarker;
use std::rc::Rc;

/// Answers a WriteTxnMarkers request.
pub async fn handle(context: &Rc<ShardContext>, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
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
        let mut outcomes = write_markers_here(context, written, &partitions).await.into_iter();
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
