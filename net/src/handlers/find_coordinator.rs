//! FindCoordinator: this broker coordinates every group (one node). The first request
//! creates `__consumer_offsets`, so the coordinator is ready when the client comes to it.
//! Transaction coordinators are not served (no transactions yet).

use crate::context::ShardContext;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// FindCoordinator's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;

/// Answers a FindCoordinator request (v0–3: one key; v4: a batch of keys).
pub async fn handle(
    context: &Rc<ShardContext>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let ready = if request.key_type == KEY_TYPE_GROUP {
        context.ensure_offsets_topic().await.map_err(|e| (e.code, e.message))
    } else {
        Err((ResponseError::CoordinatorNotAvailable, "transactions are not supported yet".to_string()))
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
