//! ListOffsets: earliest (-2), latest (-1: the high watermark, or for read_committed
//! the last stable offset) or the first offset at or after a timestamp, per partition.

use crate::context::ShardContext;
use crate::error::KafkaError;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply, LEADER_EPOCH};
use crate::security::session::Session;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// The request's `isolation_level` for read_committed consumers.
pub const READ_COMMITTED: i8 = 1;

/// Answers a ListOffsets request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: ListOffsetsRequest,
    version: i16,
    session: &Session,
) -> ListOffsetsResponse {
    // The leader epoch field exists from v4 on; the crate refuses to encode it earlier.
    let leader_epoch = if version >= 4 { LEADER_EPOCH } else { -1 };
    let calls: Vec<PartitionCall> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| PartitionCall {
                topic: topic.name.0.to_string(),
                partition: p.partition_index,
                op: match p.timestamp {
                    LATEST | EARLIEST => PartitionOp::Offsets,
                    timestamp => PartitionOp::OffsetForTimestamp { timestamp },
                },
            })
        })
        .collect();
    let mut results =
        context.call_authorized_partitions(session, AclOperation::Describe, calls, None).await.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_leader_epoch(leader_epoch);
                    let answer = match results.next().expect("one result per partition") {
                        Ok(PartitionReply::Offsets { log_start, high_watermark, last_stable, .. }) => {
                            Ok(match p.timestamp {
                                EARLIEST => (log_start, -1),
                                _ if request.isolation_level == READ_COMMITTED => (last_stable, -1),
                                _ => (high_watermark, -1),
                            })
                        }
                        Ok(PartitionReply::Timestamp(found)) if p.timestamp >= 0 => Ok(found.unwrap_or((-1, -1))),
                        Ok(PartitionReply::Timestamp(_)) => Err(KafkaError::new(
                            ResponseError::InvalidRequest,
                            format!("timestamp {} is not a time nor -1/-2", p.timestamp),
                        )),
                        Ok(other) => unreachable!("list offsets answered with {other:?}"),
                        Err(error) => Err(error),
                    };
                    match answer {
                        Ok((offset, timestamp)) => response.with_offset(offset).with_timestamp(timestamp),
                        Err(error) => response.with_error_code(error.code.code()).with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
