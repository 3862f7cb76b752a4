//! EndTxn: the producer commits or aborts its transaction. Answered once the decision is
//! durable in `__transaction_state`; the coordinator then writes the markers.

use super::authorization::call_txn_authorized;
use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::fencing_error_for;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// The EndTxn version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Answers an EndTxn request (WRITE on the transactional id, else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: EndTxnRequest,
    version: i16,
    session: &Session,
) -> EndTxnResponse {
    let producer = (request.producer_id.0, request.producer_epoch);
    let op = TxnOp::End { producer, commit: request.committed };
    let id = request.transactional_id.as_str();
    let code = match call_txn_authorized(context, session, AclOperation::Write, id, op).await {
        Ok(TxnReply::Done(Ok(()))) => 0,
        Ok(TxnReply::Done(Err(code))) => fencing_error_for(code, version, PRODUCER_FENCED_SINCE).code(),
        Ok(other) => unreachable!("EndTxn answered with {other:?}"),
        Err(error) => error.code.code(),
    };
    // v5+ (KIP-890 part 2, not advertised) would answer the bumped epoch here.
    EndTxnResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
}
