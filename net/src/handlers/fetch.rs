//! Fetch: read each partition on its owner shard; if fewer than `min_bytes` came back,
//! long-poll until any partition gets data or `max_wait_ms` passes, then read again.
//! Fetch sessions (KIP-227) are not kept: every response says session 0, which tells
//! clients to send full requests. A follower's fetch (replica id set, in a cluster) goes
//! through the partition's replica: divergence check, follower progress, then data up to
//! the log end. A read_committed consumer's reads stop at the last stable offset and name
//! the aborted transactions among the batches returned.

use crate::context::ShardContext;
use crate::error::KafkaResult;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use crate::security::authorize::topic_authorization_failed;
use crate::security::session::Session;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use sluice_engine::ReadLimit;
use sluice_replication::partition::ReplicaFetch;
use sluice_security::acl::AclOperation;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Answers a Fetch request.
pub async fn handle(context: &Rc<ShardContext>, request: FetchRequest, session: &Session) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_LIMIT);
    let deadline = Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let response_max_bytes = if request.max_bytes > 0 { request.max_bytes as usize } else { usize::MAX };
    // A follower (replica id set) reads up to the log end and waits on it.
    let replica = (request.replica_id.0 >= 0).then_some(request.replica_id.0);
    let committed = request.isolation_level == super::list_offsets::READ_COMMITTED;
    let limit = match (replica, committed) {
        (Some(_), _) => ReadLimit::LogEnd,
        (None, true) => ReadLimit::LastStable,
        (None, false) => ReadLimit::HighWatermark,
    };
    loop {
        let calls: Vec<PartitionCall> = request
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|p| {
                    let max_bytes = p.partition_max_bytes.max(0) as usize;
                    let op = match replica {
                        Some(replica) => PartitionOp::ReplicaRead {
                            fetch: ReplicaFetch {
                                replica,
                                leader_epoch: p.current_leader_epoch,
                                fetch_offset: p.fetch_offset,
                                last_fetched_epoch: (p.last_fetched_epoch >= 0).then_some(p.last_fetched_epoch),
                            },
                            max_bytes,
                        },
                        None => PartitionOp::Read { offset: p.fetch_offset, max_bytes, committed },
                    };
                    PartitionCall { topic: topic.topic.0.to_string(), partition: p.partition, op }
                })
            })
            .collect();
        let results = match replica {
            // A follower acts for the cluster: all or nothing (Kafka's CLUSTER_ACTION check).
            Some(_) if !context.authorize_cluster(session, AclOperation::ClusterAction) => {
                calls.iter().map(|_| Err(topic_authorization_failed())).collect()
            }
            Some(_) => context.call_partitions(calls, None).await,
            None => context.call_authorized_partitions(session, AclOperation::Read, calls, None).await,
        };
        let bytes_read: usize = results.iter().map(read_bytes).sum();
        let any_error = results.iter().any(|r| r.is_err());
        let all_failed = !results.is_empty() && results.iter().all(|r| r.is_err());
        let remaining = deadline.saturating_duration_since(Instant::now());
        if bytes_read >= min_bytes || bytes_read > 0 && any_error || all_failed || remaining.is_zero() {
            return build_response(&request, results, response_max_bytes);
        }
        let waits = request
            .topics
            .iter()
            .flat_map(|topic| topic.partitions.iter().map(|p| (topic.topic.0.to_string(), p.partition, p.fetch_offset)))
            .collect();
        context.wait_for_any(waits, remaining, limit).await;
    }
}

/// Bytes a partition's answer carries; a divergence answer counts as one (it is news the
/// follower must get without waiting).
fn read_bytes(result: &KafkaResult<PartitionReply>) -> usize {
    match result {
        Ok(PartitionReply::Read(read)) | Ok(PartitionReply::ReplicaRead { read: Some(read), .. }) => {
            read.batches.iter().map(Bytes::len).sum()
        }
        Ok(PartitionReply::ReplicaRead { diverging: Some(_), .. }) => 1,
        _ => 0,
    }
}

/// Joins a partition's batches into the one `records` field (no copy for a single batch).
fn join_batches(batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_iter().next().expect("one batch"),
        _ => {
            let mut joined = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            for batch in batches {
                joined.extend_from_slice(&batch);
            }
            joined.freeze()
        }
    }
}

fn build_response(
    request: &FetchRequest,
    results: Vec<KafkaResult<PartitionReply>>,
    response_max_bytes: usize,
) -> FetchResponse {
    let mut results = results.into_iter();
    let mut response_bytes = 0usize;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    // `aborted_transactions` is null unless read_committed asked, as Kafka's.
                    let data = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_aborted_transactions(None)
                        .with_preferred_read_replica((-1).into());
                    match results.next().expect("one result per partition") {
                        Ok(PartitionReply::ReplicaRead { read, high_watermark, diverging }) => {
                            let (batches, log_start_offset) =
                                read.map_or((Vec::new(), -1), |read| (read.batches, read.log_start_offset));
                            let size: usize = batches.iter().map(Bytes::len).sum();
                            let fits = response_bytes == 0 || response_bytes + size <= response_max_bytes;
                            let records = if fits { join_batches(batches) } else { Bytes::new() };
                            response_bytes += records.len();
                            let data = data
                                .with_high_watermark(high_watermark)
                                .with_last_stable_offset(high_watermark)
                                .with_log_start_offset(log_start_offset)
                                .with_records(Some(records));
                            match diverging {
                                Some((epoch, end_offset)) => data.with_diverging_epoch(
                                    EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset),
                                ),
                                None => data,
                            }
                        }
                        Ok(PartitionReply::ReplicaBehindLogStart { log_start }) => data
                            .with_error_code(kafka_protocol::ResponseError::OffsetOutOfRange.code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(log_start)
                            .with_records(Some(Bytes::new())),
                        Ok(PartitionReply::Read(read)) => {
                            // The first data always goes out whole (KIP-74); later
                            // partitions only while the response stays under max_bytes.
                            let size: usize = read.batches.iter().map(Bytes::len).sum();
                            let fits = response_bytes == 0 || response_bytes + size <= response_max_bytes;
                            let records = if fits { join_batches(read.batches) } else { Bytes::new() };
                            response_bytes += records.len();
                            let aborted = read.aborted_transactions.map(|aborted| {
                                aborted
                                    .iter()
                                    .map(|txn| {
                                        AbortedTransaction::default()
                                            .with_producer_id(txn.producer_id.into())
                                            .with_first_offset(txn.first_offset)
                                    })
                                    .collect()
                            });
                            let data = match aborted {
                                Some(aborted) if fits => data.with_aborted_transactions(Some(aborted)),
                                Some(_) => data.with_aborted_transactions(Some(Vec::new())),
                                None => data,
                            };
                            data.with_high_watermark(read.high_watermark)
                                .with_last_stable_offset(read.last_stable_offset)
                                .with_log_start_offset(read.log_start_offset)
                                .with_records(Some(records))
                        }
                        Ok(other) => unreachable!("read answered with {other:?}"),
                        Err(error) => data
                            .with_error_code(error.code.code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1)
                            .with_records(Some(Bytes::new())),
                    }
                })
                .collect();
            FetchableTopicResponse::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(topics)
}
