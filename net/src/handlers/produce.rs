//! Produce: append each partition's batches on its owner shard and answer with the
//! offsets. With acks=all the engine answers only after the fsync that covers the batch
//! (the broker's default flush policy); acks=0 gets no response at all. The record data
//! reaches the engine as pieces of the request frame, not copies ([`crate::frame_pieces`]).

use crate::context::ShardContext;
use crate::error::KafkaError;
use crate::frame_pieces;
use crate::ordering::Admission;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use crate::security::authorize::transactional_id_authorization_failed;
use crate::security::session::Session;
use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a Produce request; `None` for acks=0. `frame` is the request's frame, which
/// `request` was decoded from; the caller holds no other reference to it.
pub async fn handle(
    context: &Rc<ShardContext>,
    mut request: ProduceRequest,
    _version: i16,
    admission: Option<Admission>,
    frame: Bytes,
    session: &Session,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let refusal = if !matches!(acks, -1..=1) {
        Some(KafkaError::new(ResponseError::InvalidRequiredAcks, format!("acks = {acks}: must be -1, 0 or 1")))
    } else if request.transactional_id.as_ref().is_some_and(|id| {
        !context.authorize(session, AclOperation::Write, ResourceType::TransactionalId, id.0.as_str())
    }) {
        Some(transactional_id_authorization_failed())
    } else {
        None
    };
    // The answer's shape, owned, so that nothing of the request refers to the frame once
    // the record data is taken out.
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut records = Vec::new();
    for topic in &mut request.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for partition in &mut topic.partition_data {
            partitions.push(partition.index);
            records.push(partition.records.take().unwrap_or_default());
        }
        topics.push((name, partitions));
    }
    drop(request);
    let mut records = frame_pieces::carve(frame, records).into_iter();
    let mut calls = Vec::with_capacity(records.len());
    for (topic, partitions) in &topics {
        for partition in partitions {
            calls.push(PartitionCall {
                topic: topic.clone(),
                partition: *partition,
                op: PartitionOp::Append {
                    records: records.next().expect("one record set per partition"),
                    acks,
                    timeout,
                },
            });
        }
    }
    let mut results = match &refusal {
        Some(error) => calls.iter().map(|_| Err(error.clone())).collect(),
        None => context.call_authorized_partitions(session, AclOperation::Write, calls, admission).await,
    }
    .into_iter();
    if acks == 0 {
        return None;
    }
    let responses = topics
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&partition| {
                    let result = results.next().expect("one result per partition");
                    let response = PartitionProduceResponse::default().with_index(partition);
                    match result {
                        Ok(PartitionReply::Appended { base_offset, log_append_time_ms, log_start_offset }) => response
                            .with_base_offset(base_offset)
                            .with_log_append_time_ms(log_append_time_ms)
                            .with_log_start_offset(log_start_offset),
                        Ok(other) => unreachable!("append answered with {other:?}"),
                        Err(error) => {
                            log_refusal(&topic, partition, &error);
                            let record_errors = error
                                .record_errors
                                .iter()
                                .map(|(index, message)| {
                                    BatchIndexAndErrorMessage::default()
                                        .with_batch_index(*index)
                                        .with_batch_index_error_message(Some(StrBytes::from_string(message.clone())))
                                })
                                .collect();
                            response
                                .with_error_code(error.code.code())
                                .with_record_errors(record_errors)
                                .with_error_message(Some(StrBytes::from_string(error.message)))
                                .with_base_offset(-1)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(-1)
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partition_responses(partitions)
        })
        .collect();
    Some(ProduceResponse::default().with_responses(responses))
}

/// Logs a refused append. Refusals a healthy broker should never give (a sequence out of
/// order, a fenced producer, a storage failure) are warnings an operator sees; the rest
/// (too large, invalid records) are the client's doing and stay at debug.
fn log_refusal(topic: &str, partition: i32, error: &KafkaError) {
    let operator_visible = matches!(
        error.code,
        ResponseError::OutOfOrderSequenceNumber
            | ResponseError::InvalidProducerEpoch
            | ResponseError::KafkaStorageError
    );
    if operator_visible {
        tracing::warn!(topic, partition, code = ?error.code, error = %error.message, "produce refused");
    } else {
        tracing::debug!(topic, partition, code = ?error.code, error = %error.message, "produce refused");
    }
}
