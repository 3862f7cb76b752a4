//! FindCoordinator: this broker coordinates every group (one node). The first request
//! creates `__consumer_offsets`, so the coordinator is ready when the client comes to it.
//! A transactional id is answered with this broker too: transactions do not exist yet, so
//! its InitProducerId checks the request (as Kafka's coordinator does first) and then
//! refuses with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report at once,
//! rather than COORDINATOR_NOT_AVAILABLE, which they retry until their timeout.

use crate::context::ShardContext;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Answers a FindCoordinator request (v0–3: one key; v4: a batch of keys).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let ready = match request.key_type {
        KEY_TYPE_GROUP => context.ensure_offsets_topic().await.map_err(|e| (e.code, e.message)),
        KEY_TYPE_TRANSACTION => Ok(()),
        other => Err((ResponseError::InvalidRequest, format!("coordinator key type {other} is not served"))),
    };
    let node = BrokerId(if ready.is_ok() { context.broker.node_id } else { -1 });
    let host =
        StrBytes::from_string(if ready.is_ok() { context.broker.advertised_host.clone() } else { String::new() });
    let port = if ready.is_ok() { i32::from(context.broker.advertised_port) } else { -1 };
    let (code, message) = match &ready {
        Ok(()) => (0, None),
        Err((code, message)) => (code.code(), Some(StrBytes::from_string(message.clone()))),
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(if version >= 1 { message } else { None })
        .with_node_id(node)
        .with_host(host)
        .with_port(port)
}
