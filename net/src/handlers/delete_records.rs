//! DeleteRecords: advance partitions' log start offsets.

use crate::context::ShardContext;
use crate::ordering::Admission;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use crate::security::session::Session;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Answers a DeleteRecords request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: DeleteRecordsRequest,
    admission: Option<Admission>,
    session: &Session,
) -> DeleteRecordsResponse {
    let calls = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| PartitionCall {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                op: PartitionOp::DeleteRecordsBefore { offset: p.offset },
            })
        })
        .collect();
    let mut results =
        context.call_authorized_partitions(session, AclOperation::Delete, calls, admission).await.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match results.next().expect("one result per partition") {
                        Ok(PartitionReply::LowWatermark(low)) => response.with_low_watermark(low),
                        Ok(other) => unreachable!("delete records answered with {other:?}"),
                        Err(error) => response.with_error_code(error.code.code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
