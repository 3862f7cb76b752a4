//! DescribeTransactions: each transactional id's state, from its coordinator
//! (TRANSACTIONAL_ID_NOT_FOUND for an id it does not know).

use crate::context::ShardContext;
use crate::txn::coordinator::TxnDescription;
use crate::txn::records::by_topic;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Answers a DescribeTransactions request.
pub async fn handle(context: &Rc<ShardContext>, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let answer = TransactionState::default().with_transactional_id(id.clone());
        states.push(match context.call_txn(id.as_str(), TxnOp::Describe).await {
            Ok(TxnReply::Described(Some(description))) => describe(answer, description),
            Ok(TxnReply::Described(None)) => answer.with_error_code(ResponseError::TransactionalIdNotFound.code()),
            Ok(other) => unreachable!("DescribeTransactions answered with {other:?}"),
            Err(error) => answer.with_error_code(error.code.code()),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn describe(answer: TransactionState, description: TxnDescription) -> TransactionState {
    let state = description.state;
    let topics = by_topic(&state.partitions)
        .into_iter()
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
