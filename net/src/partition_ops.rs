//! What one request asks of one partition, run by the shard that owns the partition.
//!
//! Handlers turn requests into [`PartitionCall`]s; the router runs local ones here directly
//! and sends the rest to their owner, which runs them here too. Record data travels as
//! `Bytes` (or, for appends, `BytesMut` carved from the request frame) in both
//! directions: moved, never copied.

use crate::cluster::now_ms;
use crate::cluster::replicas::{replication_error, EngineLog, ReplicaHandle};
use crate::error::{KafkaError, KafkaResult};
use bytes::BytesMut;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;
use sluice_engine::batch::{peek_batch_size, BatchHeader, Compression};
use sluice_engine::fifo_lock::Ticket;
use sluice_engine::source_order::RequestOrigin;
use sluice_engine::{LogRead, PartitionLog, ReadLimit};
use sluice_replication::partition::FetchReply;
use sluice_replication::ReplicationError;
use std::rc::Rc;

/// One partition operation.
#[derive(Debug)]
pub enum PartitionOp {
    /// Produce: the request's record data for this partition (one or more v2 batches).
    Append {
        /// Batches as the client sent them, ours to rewrite (offsets, leader epoch).
        records: BytesMut,
        /// The request's acks: -1 waits (in a cluster) until every in-sync replica has it.
        acks: i16,
        /// The request's `timeout_ms`: how long acks=all may wait for the replicas.
        timeout: std::time::Duration,
    },
    /// A follower's Fetch (replica id set): the protocol's checks, then batches up to the
    /// log end.
    ReplicaRead {
        /// What the follower asked.
        fetch: sluice_replication::partition::ReplicaFetch,
        /// Byte budget.
        max_bytes: usize,
    },
    /// Fetch: whole batches from `offset`, about `max_bytes` (at least one batch).
    Read {
        /// First offset wanted.
        offset: i64,
        /// Byte budget.
        max_bytes: usize,
        /// read_committed: up to the last stable offset, with the aborted transactions.
        committed: bool,
    },
    /// This broker's replica read up to its high watermark, whether it leads or follows:
    /// internal readers (the Schema Registry) that every broker with a replica serves.
    LocalRead {
        /// First offset wanted.
        offset: i64,
        /// Byte budget.
        max_bytes: usize,
    },
    /// This broker's replica's offsets (as [`PartitionOp::Offsets`]), leader or follower:
    /// for the same internal readers.
    LocalOffsets,
    /// ListOffsets by time: the first record with a timestamp at or after this.
    OffsetForTimestamp {
        /// Milliseconds since the epoch.
        timestamp: i64,
    },
    /// Log start, high watermark and log end.
    Offsets,
    /// DeleteRecords: advance the log start to `offset` (-1: the high watermark).
    DeleteRecordsBefore {
        /// New log start offset.
        offset: i64,
    },
    /// OffsetsForLeaderEpoch: where `epoch` (or the latest one below it) ends.
    EndOffsetForEpoch {
        /// The leader epoch asked for.
        epoch: i32,
    },
    /// WriteTxnMarkers: end a producer's transaction in this partition (in a cluster as
    /// its leader, answered once the ISR has the marker).
    WriteMarker(sluice_engine::TxnMarker),
}

/// An operation addressed to a partition.
#[derive(Debug)]
pub struct PartitionCall {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// What to do.
    pub op: PartitionOp,
}

/// The answer to a [`PartitionOp`], variant by variant.
#[derive(Debug)]
pub enum PartitionReply {
    /// The first batch's base offset and the log append time (-1 with CreateTime).
    Appended {
        /// Offset of the first record appended.
        base_offset: i64,
        /// Broker time stamped into the batch, or -1.
        log_append_time_ms: i64,
        /// Log start offset after the append.
        log_start_offset: i64,
    },
    /// Batches read.
    Read(LogRead),
    /// Offset and timestamp of the first record at or after the time; `None` if none.
    Timestamp(Option<(i64, i64)>),
    /// The log's offsets.
    Offsets {
        /// First offset held.
        log_start: i64,
        /// Last offset consumers may read, plus one.
        high_watermark: i64,
        /// Last offset read_committed consumers may read, plus one.
        last_stable: i64,
        /// Next offset to be written.
        log_end: i64,
    },
    /// New log start after DeleteRecords.
    LowWatermark(i64),
    /// The marker is written (durable as the flush policy promises; in a cluster, on
    /// every in-sync replica).
    MarkerWritten,
    /// `(epoch, end offset)` or `None` if the log has no epoch at or below the one asked.
    EpochEnd(Option<(i32, i64)>),
    /// The answer to a follower's fetch.
    ReplicaRead {
        /// Batches from the fetch offset, unless the follower's log diverged.
        read: Option<LogRead>,
        /// The leader's high watermark.
        high_watermark: i64,
        /// The leader's `(epoch, end offset)` for a follower whose last epoch does not match.
        diverging: Option<(i32, i64)>,
    },
    /// A follower's fetch below the leader's log start (answered OFFSET_OUT_OF_RANGE with
    /// the log start, from which the follower starts again).
    ReplicaBehindLogStart {
        /// The leader's log start.
        log_start: i64,
    },
}

/// The broker's leader epoch for every partition on a single node (never re-elected).
pub const LEADER_EPOCH: i32 = 0;

/// A call that has its place on its partition: the log found and, for an operation that
/// changes the log (append, DeleteRecords), a ticket in the log's line, taken when the call
/// was admitted. Running it later keeps that place.
pub struct AdmittedCall {
    log: Rc<PartitionLog>,
    op: PartitionOp,
    ticket: Option<Ticket>,
    origin: Option<RequestOrigin>,
    /// In a cluster, the partition's replica on this broker.
    replica: Option<Rc<ReplicaHandle>>,
}

impl AdmittedCall {
    /// Takes the call's place on `log` now (synchronously). In a cluster `replica` is the
    /// partition's replica here: every operation but a follower's fetch needs it to lead.
    pub fn new(
        log: Rc<PartitionLog>,
        op: PartitionOp,
        origin: Option<RequestOrigin>,
        replica: Option<Rc<ReplicaHandle>>,
    ) -> Self {
        let ticket = matches!(op, PartitionOp::Append { .. } | PartitionOp::DeleteRecordsBefore { .. })
            .then(|| log.append_ticket());
        AdmittedCall { log, op, ticket, origin, replica }
    }

    /// Runs the operation in its place.
    pub async fn run(self) -> KafkaResult<PartitionReply> {
        let AdmittedCall { log, op, ticket, origin, replica } = self;
        if let Some(replica) = &replica {
            let leads = replica.replica.borrow().is_leader();
            let local = matches!(op, PartitionOp::LocalRead { .. } | PartitionOp::LocalOffsets);
            if !leads && !local && !matches!(op, PartitionOp::ReplicaRead { .. }) {
                return Err(replication_error(
                    ReplicationError::NotLeaderOrFollower,
                    &replica.topic,
                    replica.partition,
                ));
            }
        }
        match op {
            PartitionOp::Append { records, acks, timeout } => {
                let ticket = ticket.expect("admitted with a ticket");
                let Some(replica) = replica else {
                    return append_all(&log, ticket, records, origin, LEADER_EPOCH).await.map(|(reply, _)| reply);
                };
                let leader_epoch = replica.admit_produce(acks == -1)?;
                let (reply, end) = append_all(&log, ticket, records, origin, leader_epoch).await?;
                replica.on_durable();
                if acks == -1 {
                    replica.wait_for_in_sync_replicas(leader_epoch, end, timeout).await?;
                }
                Ok(reply)
            }
            PartitionOp::ReplicaRead { fetch, max_bytes } => {
                let Some(replica) = replica else {
                    return Err(KafkaError::new(
                        ResponseError::NotLeaderOrFollower,
                        format!("{}: this broker holds no replica", log.name()),
                    ));
                };
                let answer = replica.replica.borrow_mut().serve_fetch(&fetch, &EngineLog(&log), now_ms());
                replica.publish_high_watermark();
                match answer {
                    FetchReply::BehindLogStart { log_start } => Ok(PartitionReply::ReplicaBehindLogStart { log_start }),
                    FetchReply::Records { from, high_watermark, .. } => {
                        let read = log.read(from, max_bytes, ReadLimit::LogEnd).await?;
                        Ok(PartitionReply::ReplicaRead { read: Some(read), high_watermark, diverging: None })
                    }
                    FetchReply::Diverging { epoch, end_offset } => Ok(PartitionReply::ReplicaRead {
                        read: None,
                        high_watermark: log.high_watermark(),
                        diverging: Some((epoch, end_offset)),
                    }),
                    FetchReply::Error(error) => Err(replication_error(error, &replica.topic, replica.partition)),
                }
            }
            PartitionOp::WriteMarker(marker) => {
                match replica {
                    Some(replica) => {
                        replica.append_marker_acks_all(marker, crate::coordination::COORDINATOR_WRITE_TIMEOUT).await?
                    }
                    None => {
                        log.append_marker(marker, LEADER_EPOCH).await?;
                    }
                }
                Ok(PartitionReply::MarkerWritten)
            }
            PartitionOp::DeleteRecordsBefore { offset } => {
                let ticket = ticket.expect("admitted with a ticket");
                let high_watermark = log.high_watermark();
                let offset = if offset == -1 { high_watermark } else { offset };
                if offset < 0 || offset > high_watermark {
                    return Err(KafkaError::new(
                        ResponseError::OffsetOutOfRange,
                        format!(
                            "{}: cannot delete before {offset}: the high watermark is {high_watermark}",
                            log.name()
                        ),
                    ));
                }
                Ok(PartitionReply::LowWatermark(log.delete_records_before(ticket, offset).await?))
            }
            other => read_only(&log, other).await,
        }
    }
}

/// Runs an operation that leaves the log as it is.
async fn read_only(log: &PartitionLog, op: PartitionOp) -> KafkaResult<PartitionReply> {
    match op {
        PartitionOp::Read { offset, max_bytes, committed } => {
            let limit = if committed { ReadLimit::LastStable } else { ReadLimit::HighWatermark };
            Ok(PartitionReply::Read(log.read(offset, max_bytes, limit).await?))
        }
        PartitionOp::LocalRead { offset, max_bytes } => {
            Ok(PartitionReply::Read(log.read(offset, max_bytes, ReadLimit::HighWatermark).await?))
        }
        PartitionOp::OffsetForTimestamp { timestamp } => {
            let found = log.offset_for_timestamp(timestamp).await?;
            Ok(PartitionReply::Timestamp(match found {
                Some(found) => Some(exact_record_at_or_after(log, found, timestamp).await?),
                None => None,
            }))
        }
        PartitionOp::Offsets | PartitionOp::LocalOffsets => Ok(PartitionReply::Offsets {
            log_start: log.log_start_offset(),
            high_watermark: log.high_watermark(),
            last_stable: log.last_stable_offset(),
            log_end: log.log_end_offset(),
        }),
        PartitionOp::EndOffsetForEpoch { epoch } => Ok(PartitionReply::EpochEnd(log.end_offset_for_epoch(epoch))),
        PartitionOp::Append { .. }
        | PartitionOp::DeleteRecordsBefore { .. }
        | PartitionOp::ReplicaRead { .. }
        | PartitionOp::WriteMarker(_) => {
            unreachable!("operations that change the log or its replicas run in their admitted place")
        }
    }
}

/// Appends each batch of a produce request's record data in order, in one turn; the
/// reply carries the first batch's offsets. Clients send one batch per partition, but the
/// format allows more.
async fn append_all(
    log: &PartitionLog,
    ticket: Ticket,
    mut records: BytesMut,
    origin: Option<RequestOrigin>,
    leader_epoch: i32,
) -> KafkaResult<(PartitionReply, i64)> {
    if records.is_empty() {
        return Err(KafkaError::new(ResponseError::CorruptMessage, format!("{}: empty record data", log.name())));
    }
    let mut batches = Vec::with_capacity(1);
    while !records.is_empty() {
        let size =
            peek_batch_size(&records, usize::MAX).ok().filter(|size| *size <= records.len()).ok_or_else(|| {
                KafkaError::new(ResponseError::CorruptMessage, format!("{}: truncated batch", log.name()))
            })?;
        batches.push(records.split_to(size));
    }
    let info = log.append_batches(ticket, batches, leader_epoch, origin).await?;
    let reply = PartitionReply::Appended {
        base_offset: info.base_offset,
        log_append_time_ms: info.log_append_time_ms.unwrap_or(-1),
        log_start_offset: log.log_start_offset(),
    };
    Ok((reply, info.last_offset + 1))
}

/// The engine finds the batch holding the first record at or after `timestamp` and looks
/// inside it, unless it is compressed: then it can only name the batch's base offset.
/// Kafka answers with the exact record, so decompress that batch (ListOffsets only, off the
/// hot path) and look inside.
async fn exact_record_at_or_after(log: &PartitionLog, found: (i64, i64), timestamp: i64) -> KafkaResult<(i64, i64)> {
    let corrupt = |e: String| KafkaError::new(ResponseError::CorruptMessage, format!("{}: {e}", log.name()));
    let read = log.read(found.0, 1, ReadLimit::LogEnd).await?;
    let Some(batch) = read.batches.into_iter().next() else {
        return Ok(found);
    };
    let header = BatchHeader::parse(&batch, usize::MAX).map_err(|e| corrupt(e.to_string()))?;
    if header.compression() == Compression::None || header.base_offset() != found.0 {
        return Ok(found);
    }
    let set = RecordBatchDecoder::decode(&mut batch.clone()).map_err(|e| corrupt(e.to_string()))?;
    Ok(set.records.iter().find(|r| r.timestamp >= timestamp).map_or(found, |r| (r.offset, r.timestamp)))
}
