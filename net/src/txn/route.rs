//! Getting a transactional request to its coordinator: the shard that owns the id's
//! `__transaction_state` partition (created with the first transactional request).

use super::coordinator::{not_coordinator, TxnDescription};
use super::records::{TRANSACTION_STATE_PARTITIONS, TRANSACTION_STATE_TOPIC};
use crate::context::{ShardContext, ShardStats};
use crate::error::{KafkaError, KafkaResult};
use crate::routing::ShardMessage;
use kafka_protocol::ResponseError;
use sluice_engine::shard_reply;
use std::rc::Rc;

/// A transactional operation, run on the id's coordinator shard.
#[derive(Debug)]
pub enum TxnOp {
    /// InitProducerId.
    InitProducerId {
        /// The producer's `transaction.timeout.ms`.
        timeout_ms: i32,
        /// KIP-360: the producer id and epoch the client has (-1, -1 when none).
        expected: (i64, i16),
    },
    /// AddPartitionsToTxn, or AddOffsetsToTxn (the group's `__consumer_offsets` partition).
    AddPartitions {
        /// Producer id and epoch.
        producer: (i64, i16),
        /// `(topic, partition)`.
        partitions: Vec<(String, i32)>,
        /// Only check that they are in the transaction.
        verify_only: bool,
    },
    /// EndTxn.
    End {
        /// Producer id and epoch.
        producer: (i64, i16),
        /// Commit (else abort).
        commit: bool,
    },
    /// DescribeTransactions.
    Describe,
}

/// The answer to a [`TxnOp`].
#[derive(Debug)]
pub enum TxnReply {
    /// InitProducerId: `(producer id, epoch)` or why not.
    ProducerId(Result<(i64, i16), ResponseError>),
    /// AddPartitions and End: done, or why not.
    Done(Result<(), ResponseError>),
    /// Describe: the id's state, if known.
    Described(Option<TxnDescription>),
}

impl ShardContext {
    /// Creates `__transaction_state` (compacted) if it does not exist yet.
    pub async fn ensure_transaction_state_topic(self: &Rc<Self>) -> KafkaResult<()> {
        self.ensure_internal_topic(TRANSACTION_STATE_TOPIC, TRANSACTION_STATE_PARTITIONS).await
    }

    /// Runs a transactional operation on the id's coordinator shard.
    pub async fn call_txn(self: &Rc<Self>, transactional_id: &str, op: TxnOp) -> KafkaResult<TxnReply> {
        if transactional_id.is_empty() {
            return Err(KafkaError::new(ResponseError::InvalidRequest, "the transactional id is empty"));
        }
        self.ensure_transaction_state_topic().await?;
        let place = self.coordinator_place(TRANSACTION_STATE_TOPIC, transactional_id)?;
        if place.shard == self.id {
            return self.run_txn_op(transactional_id, place.partition, op).await;
        }
        ShardStats::bump(&self.stats.calls_routed_out, 1);
        let (reply, answer) = shard_reply::channel();
        let message =
            ShardMessage::Txn { transactional_id: transactional_id.to_string(), partition: place.partition, op, reply };
        self.send_to_shard(place.shard, message).await?;
        answer.await.unwrap_or_else(|_| {
            Err(KafkaError::new(
                ResponseError::CoordinatorNotAvailable,
                format!("shard {} dropped the call", place.shard),
            ))
        })
    }

    /// Runs a transactional operation on this shard, the id's coordinator.
    pub(crate) async fn run_txn_op(
        self: &Rc<Self>,
        transactional_id: &str,
        partition: i32,
        op: TxnOp,
    ) -> KafkaResult<TxnReply> {
        if !self.leads_internal_partition(TRANSACTION_STATE_TOPIC, partition) {
            return Err(not_coordinator(partition));
        }
        if self.txns.is_loading(partition) {
            return Err(KafkaError::new(
                ResponseError::CoordinatorLoadInProgress,
                format!("{TRANSACTION_STATE_TOPIC}-{partition} is being loaded"),
            ));
        }
        let txns = &self.txns;
        Ok(match op {
            TxnOp::InitProducerId { timeout_ms, expected } => TxnReply::ProducerId(
                txns.init_producer_id(self, transactional_id, partition, timeout_ms, expected).await?,
            ),
            TxnOp::AddPartitions { producer, partitions, verify_only } => TxnReply::Done(
                txns.add_partitions(self, transactional_id, partition, producer, partitions, verify_only).await?,
            ),
            TxnOp::End { producer, commit } => {
                TxnReply::Done(txns.end_transaction(self, transactional_id, partition, producer, commit).await?)
            }
            TxnOp::Describe => TxnReply::Described(txns.describe(transactional_id)),
        })
    }

    /// Every transactional id of every shard (ListTransactions).
    pub async fn list_transactions(self: &Rc<Self>) -> KafkaResult<Vec<TxnDescription>> {
        let mut listings = self.txns.list();
        for shard in (0..self.shards).filter(|s| *s != self.id) {
            let (reply, answer) = shard_reply::channel();
            self.send_to_shard(shard, ShardMessage::ListTransactions { reply }).await?;
            listings.extend(answer.await.map_err(|_| {
                KafkaError::new(ResponseError::CoordinatorNotAvailable, format!("shard {shard} dropped the call"))
            })?);
        }
        listings.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(listings)
    }
}
