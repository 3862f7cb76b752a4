//! Produce: append each partition's batches on its owner shard and answer with the
//! offsets. With acks=all the engine answers only after the fsync that covers the batch
//! (the broker's default flush policy); acks=0 gets no response at all.

use crate::context::ShardContext;
use crate::error::KafkaError;
use crate::ordering::Admission;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers a Produce request; `None` for acks=0.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: ProduceRequest,
    _version: i16,
    admission: Option<Admission>,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let refusal = if !matches!(acks, -1..=1) {
        Some(KafkaError::new(ResponseError::InvalidRequiredAcks, format!("acks = {acks}: must be -1, 0 or 1")))
    } else if request.transactional_id.is_some() {
        Some(KafkaError::new(ResponseError::TransactionalIdAuthorizationFailed, "transactions are not supported yet"))
    } else {
        None
    };
    let mut calls = Vec::new();
    for topic in &request.topic_data {
        for partition in &topic.partition_data {
            calls.push(PartitionCall {
                topic: topic.name.0.to_string(),
                partition: partition.index,
                op: PartitionOp::Append { records: partition.records.clone().unwrap_or_default() },
            });
        }
    }
    let mut results = match &refusal {
        Some(error) => calls.iter().map(|_| Err(error.clone())).collect(),
        None => context.call_partitions(calls, admission).await,
    }
    .into_iter();
    if acks == 0 {
        return None;
    }
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|partition| {
                    let result = results.next().expect("one result per partition");
                    let response = PartitionProduceResponse::default().with_index(partition.index);
                    match result {
                        Ok(PartitionReply::Appended { base_offset, log_append_time_ms, log_start_offset }) => response
                            .with_base_offset(base_offset)
                            .with_log_append_time_ms(log_append_time_ms)
                            .with_log_start_offset(log_start_offset),
                        Ok(other) => unreachable!("append answered with {other:?}"),
                        Err(error) => {
                            log_refusal(&topic.name.0, partition.index, &error);
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
            TopicProduceResponse::default().with_name(topic.name.clone()).with_partition_responses(partitions)
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
