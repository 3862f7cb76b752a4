//! InitProducerId: producer ids for idempotent producers. Transactions are not supported.
//!
//! Ids must never repeat, across shards and restarts, or a new producer would inherit an
//! old one's sequence state. Without a replicated id block allocator (Kafka's), each shard
//! derives ids from the wall clock: `((ms << 12) + n) * shards + shard`, strictly
//! increasing per shard. That holds as long as the clock does not step back by more than
//! the time between restarts, and a shard hands out fewer than 4096 ids per millisecond on
//! average.

use crate::context::ShardContext;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Kafka's `transaction.max.timeout.ms` default: the longest transaction a producer may
/// ask for. Fixed until transactions (and their broker config) exist.
pub const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;

/// Answers an InitProducerId request.
pub fn handle(context: &Rc<ShardContext>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if let Some(transactional_id) = &request.transactional_id {
        // Kafka's coordinator checks, in this order, before it looks at the id's state.
        let code = if transactional_id.is_empty() {
            ResponseError::InvalidRequest
        } else if !(1..=TRANSACTION_MAX_TIMEOUT_MS).contains(&request.transaction_timeout_ms) {
            ResponseError::InvalidTransactionTimeout
        } else {
            ResponseError::TransactionalIdAuthorizationFailed
        };
        return refusal(code);
    }
    // KIP-360: a producer that lost track of its sequence asks for its epoch to be bumped.
    let (id, epoch) = match (request.producer_id.0, request.producer_epoch) {
        (id, epoch) if id >= 0 && (0..i16::MAX).contains(&epoch) => (id, epoch + 1),
        _ => (allocate(context), 0),
    };
    InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
}

fn refusal(code: ResponseError) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// Seconds from the Unix epoch to 2020-01-01, the start of cluster producer ids' clock.
const CLUSTER_ID_CLOCK_START_S: i64 = 1_577_836_800;

fn allocate(context: &ShardContext) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    if context.in_cluster() {
        // Unique across brokers too, until the controller hands out id blocks (Kafka's
        // AllocateProducerIds): seconds since 2020 << 16 per shard and node, which leaves
        // room for 65 536 ids a second per shard, 64 shards and 1024 node ids in 63 bits.
        let seconds = now.as_secs() as i64 - CLUSTER_ID_CLOCK_START_S;
        let next = (seconds << 16).max(context.last_producer_id.get() + 1);
        context.last_producer_id.set(next);
        let node = i64::from(context.broker.node_id);
        return (next * 64 + context.id as i64) * i64::from(crate::cluster::CLUSTER_NODE_IDS_MAX) + node;
    }
    let now_ms = now.as_millis() as i64;
    let next = (now_ms << 12).max(context.last_producer_id.get() + 1);
    context.last_producer_id.set(next);
    next * context.shards as i64 + context.id as i64
}
