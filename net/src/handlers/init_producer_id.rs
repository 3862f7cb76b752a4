//! InitProducerId: producer ids for idempotent producers ([`crate::producer_ids`]) and,
//! with a transactional id, from the id's transaction coordinator, which bumps the epoch
//! of the id's producer (fencing the previous instance) and aborts its open transaction.

use super::authorization::check_transactional_id;
use crate::context::ShardContext;
use crate::security::session::Session;
use crate::txn::fencing_error_for;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// The InitProducerId version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 4;

/// Answers an InitProducerId request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: InitProducerIdRequest,
    version: i16,
    session: &Session,
) -> InitProducerIdResponse {
    let expected = (request.producer_id.0, request.producer_epoch);
    if let Some(transactional_id) = &request.transactional_id {
        if let Err(error) = check_transactional_id(context, session, AclOperation::Write, transactional_id) {
            return refusal(error.code);
        }
        // Kafka's coordinator checks, in this order, before it looks at the id's state.
        if transactional_id.is_empty() {
            return refusal(ResponseError::InvalidRequest);
        }
        if !(1..=context.broker.txn_limits.max_timeout_ms).contains(&request.transaction_timeout_ms) {
            return refusal(ResponseError::InvalidTransactionTimeout);
        }
        let op = TxnOp::InitProducerId { timeout_ms: request.transaction_timeout_ms, expected };
        return match context.call_txn(transactional_id.as_str(), op).await {
            Ok(TxnReply::ProducerId(Ok((id, epoch)))) => {
                InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
            }
            Ok(TxnReply::ProducerId(Err(code))) => refusal(fencing_error_for(code, version, PRODUCER_FENCED_SINCE)),
            Ok(other) => unreachable!("InitProducerId answered with {other:?}"),
            Err(error) => refusal(error.code),
        };
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or, since KIP-679,
    // WRITE on some topic.
    if !context.authorize_cluster(session, AclOperation::IdempotentWrite)
        && !context.authorize_any(session, AclOperation::Write, ResourceType::Topic)
    {
        return refusal(ResponseError::ClusterAuthorizationFailed);
    }
    // KIP-360: a producer that lost track of its sequence asks for its epoch to be bumped.
    let (id, epoch) = match expected {
        (id, epoch) if id >= 0 && (0..i16::MAX).contains(&epoch) => (id, epoch + 1),
        _ => (context.allocate_producer_id(), 0),
    };
    InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
}

fn refusal(code: ResponseError) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}
