//! OffsetDelete: forget a group's committed offsets for partitions of topics that none of
//! its members subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others).

use crate::context::ShardContext;
use crate::group::route::{GroupOp, GroupReply};
use crate::ordering::Admission;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::rc::Rc;

/// Answers an OffsetDelete request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: OffsetDeleteRequest,
    admission: Option<Admission>,
) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index)))
        .collect();
    let mut codes = match context.call_group(&request.group_id.0, GroupOp::DeleteOffsets(partitions), admission).await {
        Ok(GroupReply::OffsetsDeleted(Ok(results))) => results.into_iter().map(|r| r.err().map_or(0, |e| e.code())),
        Ok(GroupReply::OffsetsDeleted(Err(error))) => {
            return OffsetDeleteResponse::default().with_error_code(error.code())
        }
        Ok(other) => unreachable!("offset delete answered with {other:?}"),
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error.code.code()),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().expect("one result per partition");
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
