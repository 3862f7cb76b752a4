//! AddPartitionsToTxn: the transaction coordinator adds partitions to the producer's open
//! transaction (opening it) before the producer writes to them. v0–3 carry one
//! transaction, from its producer; v4+ a batch of them, possibly `verify_only` (a
//! partition leader's check). As in Kafka, a producer needs WRITE on the transactional id
//! (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition) and on each topic,
//! and a broker (v4+) CLUSTER_ACTION on the cluster (else CLUSTER_AUTHORIZATION_FAILED).
//! Partitions of a denied topic (checked before it is looked up) or that do not exist
//! fail the whole transaction's request: they answer TOPIC_AUTHORIZATION_FAILED or
//! UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED.

use super::authorization::{check_transactional_id, denied_topics};
use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::fencing_error_for;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TransactionalId};
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::collections::HashSet;
use std::rc::Rc;

/// The AddPartitionsToTxn version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Answers an AddPartitionsToTxn request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: AddPartitionsToTxnRequest,
    version: i16,
    session: &Session,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = add(
            context,
            session,
            &request.v3_and_below_transactional_id,
            (request.v3_and_below_producer_id.0, request.v3_and_below_producer_epoch),
            &request.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    if !context.authorize_cluster(session, AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let producer = (transaction.producer_id.0, transaction.producer_epoch);
        let (id, topics) = (&transaction.transactional_id, &transaction.topics);
        let results = add(context, session, id, producer, topics, transaction.verify_only, version).await;
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
    session: &Session,
    transactional_id: &TransactionalId,
    producer: (i64, i16),
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    // Versions before 4 come from the producer itself (later ones from brokers,
    // authorized as a whole).
    let from_producer = version <= 3;
    if from_producer && check_transactional_id(context, session, AclOperation::Write, transactional_id).is_err() {
        return results(topics, |_, _| ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let denied = match from_producer {
        true => denied_topics(context, session, AclOperation::Write, topics.iter().map(|t| t.name.0.as_str())),
        false => HashSet::new(),
    };
    let metadata = context.metadata();
    let refusal = |topic: &str, partition: i32| {
        if denied.contains(topic) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if metadata.owner(topic, partition).is_none() {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        }
    };
    let all_admitted = topics.iter().all(|t| t.partitions.iter().all(|p| refusal(&t.name.0, *p).is_none()));
    let outcome = if all_admitted {
        let partitions = topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p))).collect();
        let op = TxnOp::AddPartitions { producer, partitions, verify_only };
        match context.call_txn(transactional_id.as_str(), op).await {
            Ok(TxnReply::Done(outcome)) => outcome,
            Ok(other) => unreachable!("AddPartitionsToTxn answered with {other:?}"),
            Err(error) => Err(error.code),
        }
    } else {
        Err(ResponseError::OperationNotAttempted)
    };
    results(topics, |topic, partition| match (refusal(topic, partition), outcome) {
        (Some(refused), _) => refused.code(),
        (None, Ok(())) => 0,
        (None, Err(code)) => fencing_error_for(code, version, PRODUCER_FENCED_SINCE).code(),
    })
}

/// Each partition's result, with its code from `code_of(topic, partition)`.
fn results(
    topics: &[AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| {
            let results = topic
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code_of(&topic.name.0, *p))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(topic.name.clone()).with_results_by_partition(results)
        })
        .collect()
}
