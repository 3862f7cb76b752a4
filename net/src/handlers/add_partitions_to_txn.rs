//! AddPartitionsToTxn: the transaction coordinator adds partitions to the producer's open
//! transaction (opening it) before the producer writes to them. v0–3 carry one
//! transaction; v4+ a batch of them, possibly `verify_only` (a partition leader's check).
//! Partitions that do not exist fail the whole transaction's request, as in Kafka: they
//! answer UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.

use crate::context::ShardContext;
use crate::txn::fencing_error_for;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TransactionalId};
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// The AddPartitionsToTxn version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Answers an AddPartitionsToTxn request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = add(
            context,
            &request.v3_and_below_transactional_id,
            (request.v3_and_below_producer_id.0, request.v3_and_below_producer_epoch),
            &request.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let producer = (transaction.producer_id.0, transaction.producer_epoch);
        let (id, topics) = (&transaction.transactional_id, &transaction.topics);
        let results = add(context, id, producer, topics, transaction.verify_only, version).await;
        by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
}

async fn add(
    context: &Rc<ShardContext>,
    transactional_id: &TransactionalId,
    producer: (i64, i16),
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let metadata = context.metadata();
    let exists = |topic: &str, partition: i32| metadata.owner(topic, partition).is_some();
    let all_exist = topics.iter().all(|t| t.partitions.iter().all(|p| exists(&t.name.0, *p)));
    let code_of = |topic: &str, partition: i32, outcome: Result<(), ResponseError>| match outcome {
        Ok(()) => 0,
        Err(_) if !all_exist && exists(topic, partition) => ResponseError::OperationNotAttempted.code(),
        Err(code) => fencing_error_for(code, version, PRODUCER_FENCED_SINCE).code(),
    };
    let outcome = if all_exist {
        let partitions = topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p))).collect();
        let op = TxnOp::AddPartitions { producer, partitions, verify_only };
        match context.call_txn(transactional_id.as_str(), op).await {
            Ok(TxnReply::Done(outcome)) => outcome,
            Ok(other) => unreachable!("AddPartitionsToTxn answered with {other:?}"),
            Err(error) => Err(error.code),
        }
    } else {
        Err(ResponseError::UnknownTopicOrPartition)
    };
    topics
        .iter()
        .map(|topic| {
            let results = topic
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code_of(&topic.name.0, *p, outcome))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(topic.name.clone()).with_results_by_partition(results)
        })
        .collect()
}
