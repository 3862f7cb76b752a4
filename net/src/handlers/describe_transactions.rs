//! DescribeTransactions: each transactional id's state, from its coordinator
//! (TRANSACTIONAL_ID_NOT_FOUND for an id it does not know). As in Kafka, each id needs
//! DESCRIBE on it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and the transaction's
//! partitions are listed only for the topics the session may DESCRIBE.

use super::authorization::call_txn_authorized;
use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::coordinator::TxnDescription;
use crate::txn::records::by_topic;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Answers a DescribeTransactions request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: DescribeTransactionsRequest,
    session: &Session,
) -> DescribeTransactionsResponse {
    let describable = |topic: &str| context.authorize(session, AclOperation::Describe, ResourceType::Topic, topic);
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let answer = TransactionState::default().with_transactional_id(id.clone());
        states.push(match call_txn_authorized(context, session, AclOperation::Describe, &id, TxnOp::Describe).await {
            Ok(TxnReply::Described(Some(description))) => describe(answer, description, describable),
            Ok(TxnReply::Described(None)) => answer.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Ok(other) => unreachable!("DescribeTransactions answered with {other:?}"),
            Err(error) => answer.with_error_code(error.code.code()),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// The transaction's state; its partitions only of the topics that are `describable`.
fn describe(
    answer: TransactionState,
    description: TxnDescription,
    describable: impl Fn(&str) -> bool,
) -> TransactionState {
    let state = description.state;
    let topics = by_topic(&state.partitions)
        .into_iter()
        .filter(|(topic, _)| describable(topic))
        .map(|(topic, partitions)| {
            TopicData::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    answer
        .with_transaction_state(StrBytes::from_static_str(state.status.name()))
        .with_transaction_timeout_ms(state.timeout_ms)
        .with_transaction_start_time_ms(state.start_ms)
        .with_producer_id(ProducerId(state.producer_id))
        .with_producer_epoch(state.producer_epoch)
        .with_topics(topics)
}
