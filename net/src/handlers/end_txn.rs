//! EndTxn: the producer commits or aborts its transaction. Answered once the decision is
//! durable in `__transaction_state`; the coordinator then writes the markers.

use crate::context::ShardContext;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use std::rc::Rc;

/// Answers an EndTxn request.
pub async fn handle(context: &Rc<ShardContext>, request: EndTxnRequest) -> EndTxnResponse {
    let producer = (request.producer_id.0, request.producer_epoch);
    let op = TxnOp::End { producer, commit: request.committed };
    let code = match context.call_txn(request.transactional_id.as_str(), op).await {
        Ok(TxnReply::Done(Ok(()))) => 0,
        Ok(TxnReply::Done(Err(code))) => code.code(),
        Ok(other) => unreachable!("EndTxn answered with {other:?}"),
        Err(error) => error.code.code(),
    };
    // v5+ (KIP-890 part 2, not advertised) would answer the bumped epoch here.
    EndTxnResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
}
