//! The broker's side of the Schema Registry's store channel ([`sluice_registry::store`]),
//! served on shard 0: the registry's requests become partition calls on `_schemas-0`,
//! routed to its owning shard like any produce or fetch. The topic is created (one
//! partition, compacted, replicated like the other internal topics) on first use.
//!
//! Writes are acks=all appends, so a registration is durable (and in a cluster on the
//! ISR) before the registry answers. In a cluster a broker that does not lead the
//! partition sends its registry's appends to the leader as a Produce (acks=all); two
//! brokers' registries racing for one id or version are settled by the log's order
//! (the registry's state keeps the first record; the loser sees it and tries again).
//! Reads are of this broker's replica up to its high watermark, leader or follower, so
//! every broker holding a replica serves the registry.

use crate::context::ShardContext;
use crate::coordination::COORDINATOR_WRITE_TIMEOUT;
use crate::error::KafkaError;
use crate::http::inbox::InboxReceiver;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use bytes::{Bytes, BytesMut};
use sluice_client::records::decode_fetched;
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::ReadLimit;
use sluice_registry::store::{StoreRead, StoreRequest, StoredRecord, TOPIC};
use std::rc::Rc;
use std::time::Duration;

/// The registry's one partition.
const PARTITION: i32 = 0;
/// Bytes read per request.
const READ_BYTES: usize = 1 << 20;
/// How long a new `_schemas` may take to open on its shard, and how often to look.
const OPENING_WAIT: Duration = Duration::from_secs(5);
const OPENING_POLL: Duration = Duration::from_millis(20);
/// How often a write without a leader to go to looks again.
const LEADER_POLL: Duration = Duration::from_millis(50);

/// Serves the registry's requests until the channel closes (the registry's thread ended)
/// or the task is dropped (the shard stops).
pub async fn serve(context: Rc<ShardContext>, mut requests: InboxReceiver<StoreRequest>) {
    while let Some(request) = requests.next().await {
        let context = context.clone();
        // Reads long-poll: each request runs on its own so a waiting read holds up no write.
        glommio::spawn_local(async move { answer(&context, request).await }).detach();
    }
}

async fn answer(context: &Rc<ShardContext>, request: StoreRequest) {
    let text = |error: KafkaError| format!("{:?}: {}", error.code, error.message);
    match request {
        StoreRequest::Append { records, reply } => {
            let appended = append(context, records).await.map_err(|error| match error.code {
                kafka_protocol::ResponseError::NotLeaderOrFollower => {
                    format!(
                        "the write did not reach {TOPIC}-{PARTITION}'s leader (this broker does not lead it): {}",
                        error.message
                    )
                }
                _ => text(error),
            });
            let _ = reply.send(appended);
        }
        StoreRequest::Read { from, max_wait, reply } => {
            let _ = reply.send(read(context, from, max_wait).await.map_err(text));
        }
        StoreRequest::End { reply } => {
            let _ = reply.send(high_watermark(context).await.map_err(text));
        }
    }
}

/// Runs one operation on `_schemas-0`. Right after the topic's creation the partition may
/// not be open on its shard yet: that is waited out.
async fn call(context: &Rc<ShardContext>, op: impl Fn() -> PartitionOp) -> Result<PartitionReply, KafkaError> {
    let mut waited = Duration::ZERO;
    loop {
        let call = PartitionCall { topic: TOPIC.to_string(), partition: PARTITION, op: op() };
        let answer = context.call_partitions(vec![call], None).await.pop().expect("one answer per call");
        match answer {
            Err(error)
                if error.code == kafka_protocol::ResponseError::UnknownTopicOrPartition && waited < OPENING_WAIT =>
            {
                glommio::timer::sleep(OPENING_POLL).await;
                waited += OPENING_POLL;
            }
            answer => return answer,
        }
    }
}

/// Appends the records as one batch, acks=all; the offset after it.
async fn append(context: &Rc<ShardContext>, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<i64, KafkaError> {
    let now = crate::coordination::wall_clock_ms();
    let mut batch = BatchBuilder::new(now);
    for (key, value) in &records {
        batch.push(Some(key), value.as_deref(), &[], now);
    }
    let batch = batch.build();
    context.ensure_internal_topic(TOPIC, 1).await?;
    // A new topic has no leader for a moment, and leadership moves: try again until the
    // write timeout. A retried write that had landed after all is harmless: the registry's
    // records are idempotent (the same key and value apply as once).
    let started = std::time::Instant::now();
    loop {
        let attempt = append_once(context, &batch, records.len()).await;
        match attempt {
            Err(error)
                if error.code == kafka_protocol::ResponseError::NotLeaderOrFollower
                    && started.elapsed() < COORDINATOR_WRITE_TIMEOUT =>
            {
                glommio::timer::sleep(LEADER_POLL).await;
            }
            attempt => return attempt,
        }
    }
}

async fn append_once(context: &Rc<ShardContext>, batch: &Bytes, records: usize) -> Result<i64, KafkaError> {
    if let Some(leader) = elsewhere_leader(context)? {
        return append_at_leader(context, &leader, batch.clone(), records).await;
    }
    let op = || PartitionOp::Append {
        records: BytesMut::from(batch.as_ref()),
        acks: -1,
        timeout: COORDINATOR_WRITE_TIMEOUT,
    };
    match call(context, op).await? {
        PartitionReply::Appended { base_offset, .. } => Ok(base_offset + records as i64),
        other => unreachable!("an append is answered with its offsets, not {other:?}"),
    }
}

/// In a cluster, the address of `_schemas-0`'s leader when it is another broker.
fn elsewhere_leader(context: &ShardContext) -> Result<Option<String>, KafkaError> {
    // `_schemas` has one partition, so any key names its leader.
    let Some(cluster) = context.broker.cluster.as_ref() else { return Ok(None) };
    match context.cluster_coordinator(TOPIC, "", cluster.inter_broker.protocol) {
        None => Ok(None),
        Some(Ok((leader, _, _))) if leader == context.broker.node_id => Ok(None),
        Some(Ok((_, host, port))) => Ok(Some(format!("{host}:{port}"))),
        // No leader yet (a new topic) or a fenced one: the caller waits and asks again.
        Some(Err(error)) => Err(KafkaError::new(kafka_protocol::ResponseError::NotLeaderOrFollower, error.message)),
    }
}

/// Produces the batch to the leader (acks=all): the offset after it.
async fn append_at_leader(
    context: &ShardContext,
    leader: &str,
    batch: Bytes,
    records: usize,
) -> Result<i64, KafkaError> {
    let failed = |what: String| KafkaError::new(kafka_protocol::ResponseError::NotLeaderOrFollower, what);
    let client_id = format!("sluice-registry-{}", context.broker.node_id);
    let mut connection = context
        .inter_broker()
        .connect(leader, &client_id)
        .await
        .map_err(|e| failed(format!("cannot reach {TOPIC}-{PARTITION}'s leader at {leader}: {e}")))?;
    let base = connection
        .produce(TOPIC, PARTITION, batch, -1, COORDINATOR_WRITE_TIMEOUT)
        .await
        .map_err(|e| failed(format!("{TOPIC}-{PARTITION}'s leader at {leader} refused the write: {e}")))?;
    let base = base.expect("acks=all is answered");
    Ok(base + records as i64)
}

/// Whether `_schemas` exists. It is created by the first write, not by reads: a registry
/// that reads at start would otherwise create it before the other brokers of a cluster
/// have registered, with fewer replicas than the internal topics get.
fn topic_exists(context: &ShardContext) -> bool {
    context.metadata().topics.contains_key(TOPIC)
}

/// Records from `from` up to the high watermark, waiting up to `max_wait` for some.
async fn read(context: &Rc<ShardContext>, from: i64, max_wait: Duration) -> Result<StoreRead, KafkaError> {
    if !topic_exists(context) {
        glommio::timer::sleep(max_wait).await;
        return Ok(StoreRead { records: Vec::new(), next: from });
    }
    let first = read_once(context, from).await?;
    if !first.records.is_empty() || first.next > from {
        return Ok(first);
    }
    context.wait_for_any(vec![(TOPIC.to_string(), PARTITION, from)], max_wait, ReadLimit::HighWatermark).await;
    read_once(context, from).await
}

async fn read_once(context: &Rc<ShardContext>, from: i64) -> Result<StoreRead, KafkaError> {
    let op = || PartitionOp::LocalRead { offset: from, max_bytes: READ_BYTES };
    let read = match call(context, op).await? {
        PartitionReply::Read(read) => read,
        other => unreachable!("a read is answered with batches, not {other:?}"),
    };
    // Compaction may have removed everything below the log start: start there.
    let from = from.max(read.log_start_offset);
    let data: Bytes = read.batches.concat().into();
    let corrupt = |why: String| {
        KafkaError::new(kafka_protocol::ResponseError::CorruptMessage, format!("{TOPIC}-{PARTITION}: {why}"))
    };
    let decoded = decode_fetched(data, from).map_err(corrupt)?;
    let records = decoded
        .records
        .into_iter()
        .map(|record| StoredRecord {
            offset: record.offset,
            key: record.key.map(|k| k.to_vec()),
            value: record.value.map(|v| v.to_vec()),
        })
        .collect();
    Ok(StoreRead { records, next: decoded.next_offset.unwrap_or(from).max(from) })
}

async fn high_watermark(context: &Rc<ShardContext>) -> Result<i64, KafkaError> {
    if !topic_exists(context) {
        return Ok(0);
    }
    match call(context, || PartitionOp::LocalOffsets).await? {
        PartitionReply::Offsets { high_watermark, .. } => Ok(high_watermark),
        other => unreachable!("offsets are answered with offsets, not {other:?}"),
    }
}
