//! FindCoordinator: on one node this broker coordinates every group; in a cluster a
//! group's coordinator is the leader of its `__consumer_offsets` partition. The first request
//! creates `__consumer_offsets`, so the coordinator is ready when the client comes to it.
//! A transactional id is answered with this broker too: transactions do not exist yet, so
//! its InitProducerId checks the request (as Kafka's coordinator does first) and then
//! refuses with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report at once,
//! rather than COORDINATOR_NOT_AVAILABLE, which they retry until their timeout.

use crate::context::ShardContext;
use crate::group::records::{partition_for_group, CONSUMER_OFFSETS_TOPIC};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
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
) -> FindCoordinatorResponse {
    let ready = match request.key_type {
        KEY_TYPE_GROUP => context.ensure_offsets_topic().await.map_err(|e| (e.code, e.message)),
        KEY_TYPE_TRANSACTION => Ok(()),
        other => Err((ResponseError::InvalidRequest, format!("coordinator key type {other} is not served"))),
    };
    let locate = |key: &str| -> Located {
        ready.clone()?;
        if request.key_type == KEY_TYPE_GROUP {
            if let Some(found) = cluster_coordinator(context, key) {
                return found;
            }
        }
        Ok((context.broker.node_id, context.broker.advertised_host.clone(), i32::from(context.broker.advertised_port)))
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

/// In a cluster, a group's coordinator: the broker leading the group's
/// `__consumer_offsets` partition (`None` on a single node).
fn cluster_coordinator(context: &ShardContext, group: &str) -> Option<Located> {
    let metadata = context.metadata();
    let view = metadata.cluster.as_ref()?;
    let partitions = metadata.topics.get(CONSUMER_OFFSETS_TOPIC).map_or(0, |t| t.shards.len() as i32);
    let unavailable = |why: String| Err((ResponseError::CoordinatorNotAvailable, why));
    if partitions == 0 {
        return Some(unavailable(format!("{CONSUMER_OFFSETS_TOPIC} is not ready")));
    }
    let partition = partition_for_group(group, partitions);
    let leader = view.partition(CONSUMER_OFFSETS_TOPIC, partition).map_or(-1, |(_, state)| state.leader);
    Some(match view.image.brokers.get(&leader).filter(|b| !b.fenced) {
        Some(broker) => Ok((leader, broker.host.clone(), i32::from(broker.port))),
        None => unavailable(format!("{CONSUMER_OFFSETS_TOPIC}-{partition} has no leader")),
    })
}
