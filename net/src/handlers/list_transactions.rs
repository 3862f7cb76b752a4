//! ListTransactions: the transactional ids this broker coordinates, filtered by state,
//! producer id and (v1) how long the transaction has been open. As in Kafka, only the ids
//! the session may DESCRIBE are listed.

use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::records::TxnStatus;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// Every state name a filter may use.
const STATES: [TxnStatus; 8] = [
    TxnStatus::Empty,
    TxnStatus::Ongoing,
    TxnStatus::PrepareCommit,
    TxnStatus::PrepareAbort,
    TxnStatus::CompleteCommit,
    TxnStatus::CompleteAbort,
    TxnStatus::Dead,
    TxnStatus::PrepareEpochFence,
];

/// Answers a ListTransactions request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: ListTransactionsRequest,
    session: &Session,
) -> ListTransactionsResponse {
    let unknown_state_filters: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|filter| !STATES.iter().any(|s| s.name() == filter.as_str()))
        .cloned()
        .collect();
    let listed = match context.list_transactions().await {
        Ok(listed) => listed,
        Err(error) => return ListTransactionsResponse::default().with_error_code(error.code.code()),
    };
    let now_ms = crate::coordination::wall_clock_ms();
    let states = listed
        .into_iter()
        .filter(|t| {
            request.state_filters.is_empty()
                || request.state_filters.iter().any(|f| f.as_str() == t.state.status.name())
        })
        .filter(|t| {
            request.producer_id_filters.is_empty()
                || request.producer_id_filters.contains(&ProducerId(t.state.producer_id))
        })
        .filter(|t| {
            // v1: only transactions open longer than this (-1: no filter).
            request.duration_filter < 0
                || (t.state.start_ms >= 0 && now_ms - t.state.start_ms > request.duration_filter)
        })
        .filter(|t| {
            context.authorize(session, AclOperation::Describe, ResourceType::TransactionalId, &t.transactional_id)
        })
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.state.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state.status.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_state_filters)
        .with_transaction_states(states)
}
