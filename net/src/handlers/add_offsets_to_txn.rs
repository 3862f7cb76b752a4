//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the producer's
//! transaction, so that its TxnOffsetCommit offsets are committed or dropped with it.
//! Kafka checks WRITE on the transactional id, then READ on the group, before anything else.

use super::authorization::{check_group, check_transactional_id};
use crate::context::ShardContext;
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::security::session::Session;
use crate::txn::fencing_error_for;
use crate::txn::route::{TxnOp, TxnReply};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// The AddOffsetsToTxn version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 2;

/// Answers an AddOffsetsToTxn request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: AddOffsetsToTxnRequest,
    version: i16,
    session: &Session,
) -> AddOffsetsToTxnResponse {
    let code = match add(context, &request, session).await {
        Ok(()) => 0,
        Err(code) => fencing_error_for(code, version, PRODUCER_FENCED_SINCE).code(),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

async fn add(
    context: &Rc<ShardContext>,
    request: &AddOffsetsToTxnRequest,
    session: &Session,
) -> Result<(), kafka_protocol::ResponseError> {
    check_transactional_id(context, session, AclOperation::Write, &request.transactional_id).map_err(|e| e.code)?;
    check_group(context, session, AclOperation::Read, &request.group_id.0).map_err(|e| e.code)?;
    context.ensure_offsets_topic().await.map_err(|e| e.code)?;
    let place = context.coordinator_place(CONSUMER_OFFSETS_TOPIC, &request.group_id.0).map_err(|e| e.code)?;
    let op = TxnOp::AddPartitions {
        producer: (request.producer_id.0, request.producer_epoch),
        partitions: vec![(CONSUMER_OFFSETS_TOPIC.to_string(), place.partition)],
        verify_only: false,
    };
    match context.call_txn(request.transactional_id.as_str(), op).await {
        Ok(TxnReply::Done(outcome)) => outcome,
        Ok(other) => unreachable!("AddOffsetsToTxn answered with {other:?}"),
        Err(error) => Err(error.code),
    }
}
