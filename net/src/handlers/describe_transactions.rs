//! DescribeTransactions: each transactional id's state, from its coordinator
//! (TRANSACTIONAL_ID_NOT_FOUND for an id it does not know).

use crate::context::ShardContext;
use crate::txn::coordinator::TxnDescription;
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
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, partition) in &state.partitions {
        match topics.last_mut() {
            Some(last) if last.topic.as_str() == topic => last.partitions.push(*partition),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    answer
        .with_transaction_state(StrBytes::from_static_str(state.status.name()))
        .with_transaction_timeout_ms(state.timeout_ms)
        .with_transaction_start_time_ms(state.start_ms)
        .with_producer_id(ProducerId(state.producer_id))
        .with_producer_epoch(state.producer_epoch)
        .with_topics(topics)
}
