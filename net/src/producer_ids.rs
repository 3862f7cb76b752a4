//! Producer ids for idempotent and transactional producers.
//!
//! Ids must never repeat, across shards and restarts, or a new producer would inherit an
//! old one's sequence state. Without a replicated id block allocator (Kafka's), each shard
//! derives ids from the wall clock: `((ms << 12) + n) * shards + shard`, strictly
//! increasing per shard. That holds as long as the clock does not step back by more than
//! the time between restarts, and a shard hands out fewer than 4096 ids per millisecond on
//! average. A transactional id keeps its producer id in `__transaction_state`.

use crate::context::ShardContext;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from the Unix epoch to 2020-01-01, the start of cluster producer ids' clock.
const CLUSTER_ID_CLOCK_START_S: i64 = 1_577_836_800;

impl ShardContext {
    /// A producer id no other producer got or will get (see the module's doc).
    pub fn allocate_producer_id(&self) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.in_cluster() {
            // Unique across brokers too, until the controller hands out id blocks (Kafka's
            // AllocateProducerIds): seconds since 2020 << 16 per shard and node, which leaves
            // room for 65 536 ids a second per shard, 64 shards and 1024 node ids in 63 bits.
            let seconds = now.as_secs() as i64 - CLUSTER_ID_CLOCK_START_S;
            let next = (seconds << 16).max(self.last_producer_id.get() + 1);
            self.last_producer_id.set(next);
            let node = i64::from(self.broker.node_id);
            return (next * 64 + self.id as i64) * i64::from(crate::cluster::CLUSTER_NODE_IDS_MAX) + node;
        }
        let now_ms = now.as_millis() as i64;
        let next = (now_ms << 12).max(self.last_producer_id.get() + 1);
        self.last_producer_id.set(next);
        next * self.shards as i64 + self.id as i64
    }
}
