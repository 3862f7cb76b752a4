//! FindCoordinator: on one node this broker coordinates every group and transactional
//! id; in a cluster the coordinator is the leader of the key's partition of
//! `__consumer_offsets` (groups) or `__transaction_state` (transactional ids). The first
//! request creates the topic, so the coordinator is ready when the client comes to it.
//! Each key needs DESCRIBE on its group or transactional id (else GROUP_ or
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED), checked before its coordinator is looked for.

use super::authorization::{check_group, check_transactional_id};
use crate::context::ShardContext;
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::security::session::Session;
use crate::txn::records::TRANSACTION_STATE_TOPIC;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// A coordinator's node id, host and port, or why there is none.
type Located = Result<(i32, String, i32), (ResponseError, String)>;

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Answers a FindCoordinator request (v0–3: one key; v4: a batch of keys).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: FindCoordinatorRequest,
    version: i16,
    session: &Session,
) -> FindCoordinatorResponse {
    let protocol = context.broker.listeners[session.listener].protocol;
    let ready = match request.key_type {
        KEY_TYPE_GROUP => context.ensure_offsets_topic().await.map_err(|e| (e.code, e.message)),
        KEY_TYPE_TRANSACTION => context.ensure_transaction_state_topic().await.map_err(|e| (e.code, e.message)),
        other => Err((ResponseError::InvalidRequest, format!("coordinator key type {other} is not served"))),
    };
    let authorize = |key: &str| match request.key_type {
        KEY_TYPE_GROUP => check_group(context, session, AclOperation::Describe, key),
        KEY_TYPE_TRANSACTION => check_transactional_id(context, session, AclOperation::Describe, key),
        _ => Ok(()),
    };
    let locate = |key: &str| -> Located {
        authorize(key).map_err(|e| (e.code, e.message))?;
        ready.clone()?;
        let topic = if request.key_type == KEY_TYPE_GROUP { CONSUMER_OFFSETS_TOPIC } else { TRANSACTION_STATE_TOPIC };
        if let Some(found) = context.cluster_coordinator(topic, key, protocol) {
            return found.map_err(|e| (e.code, e.message));
        }
        let (host, port) = context.broker.advertised(session.listener);
        Ok((context.broker.node_id, host.to_string(), i32::from(port)))
    };
    let answer = |key: &str| match locate(key) {
        Ok((node, host, port)) => (BrokerId(node), StrBytes::from_string(host), port, 0, None),
        Err((code, message)) => {
            (BrokerId(-1), StrBytes::default(), -1, code.code(), Some(StrBytes::from_string(message)))
        }
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (node, host, port, code, message) = answer(key.as_str());
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(node)
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (node, host, port, code, message) = answer(request.key.as_str());
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(if version >= 1 { message } else { None })
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}
