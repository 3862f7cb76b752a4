//! Cross-shard routing over the shard mesh (`sluice_engine::mesh`).
//!
//! A request is handled on the shard its connection landed on. Each partition it touches
//! is owned by one shard; calls for local partitions run in place, the rest are grouped
//! into one message per owner shard. Messages carry `Bytes` (moved, not copied) and a
//! one-answer channel (`sluice_engine::shard_reply`: no waker leaves its shard). Nothing is
//! locked: each shard only touches its own logs.

use crate::context::{ShardContext, ShardStats};
use crate::control::MetadataChange;
use crate::error::{KafkaError, KafkaResult};
use crate::metadata::Metadata;
use crate::ordering::Admission;
use crate::partition_ops::{AdmittedCall, PartitionCall, PartitionReply};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use kafka_protocol::ResponseError;
use sluice_engine::mesh::MeshReceivers;
use sluice_engine::shard::partition_dir_name;
use sluice_engine::shard_reply;
use sluice_engine::source_order::RequestOrigin;
use sluice_engine::ReadLimit;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Messages between shards.
pub enum ShardMessage {
    /// Run these partition calls (all owned by the receiver) and answer in the same order.
    Partitions {
        /// The calls.
        calls: Vec<PartitionCall>,
        /// The request they come from, for the ordering check.
        origin: Option<RequestOrigin>,
        /// One result per call.
        reply: shard_reply::ReplySender<PartitionAnswers>,
    },
    /// Answer once any of these partitions has data at or past its offset (Fetch long poll).
    WaitForData {
        /// `(topic, partition, offset)`.
        waits: Vec<(String, i32, i64)>,
        /// Give up after this long.
        max_wait: Duration,
        /// The high watermark (consumers) or the log end (followers).
        limit: ReadLimit,
        /// Answered when data came or time ran out; dropped by the sender to cancel.
        reply: shard_reply::ReplySender<()>,
    },
    /// To shard 0: a request for the active controller (through the broker's link).
    Controller {
        /// The request.
        request: sluice_replication::quorum::wire::BrokerRequest,
        /// The controller's answer.
        reply: shard_reply::ReplySender<KafkaResult<sluice_replication::quorum::wire::BrokerResponse>>,
    },
    /// To shard 0: change the metadata.
    ChangeMetadata {
        /// The change.
        change: MetadataChange,
        /// One result per item of the change.
        reply: shard_reply::ReplySender<Vec<KafkaResult<()>>>,
    },
    /// Run a group operation on this shard, the group's coordinator.
    Group {
        /// The group.
        group_id: String,
        /// The request it comes from, for the ordering check.
        origin: Option<RequestOrigin>,
        /// The group's `__consumer_offsets` partition (owned by the receiver).
        partition: i32,
        /// What to do.
        op: crate::group::route::GroupOp,
        /// The answer.
        reply: shard_reply::ReplySender<KafkaResult<crate::group::route::GroupReply>>,
    },
    /// Run a transactional operation on this shard, the id's coordinator.
    Txn {
        /// The transactional id.
        transactional_id: String,
        /// Its `__transaction_state` partition (owned by the receiver).
        partition: i32,
        /// What to do.
        op: crate::txn::route::TxnOp,
        /// The answer.
        reply: shard_reply::ReplySender<KafkaResult<crate::txn::route::TxnReply>>,
    },
    /// List the transactional ids this shard coordinates.
    ListTransactions {
        /// The ids and their states.
        reply: shard_reply::ReplySender<Vec<crate::txn::coordinator::TxnDescription>>,
    },
    /// List the groups this shard coordinates.
    ListGroups {
        /// The groups.
        reply: shard_reply::ReplySender<Vec<crate::group::coordinator::GroupListing>>,
    },
    /// From shard 0's admin socket: report on, flush, roll or reconfigure this shard.
    Admin {
        /// What to do.
        query: crate::admin::shard_work::ShardQuery,
        /// The answer.
        reply: shard_reply::ReplySender<crate::admin::shard_work::ShardAnswer>,
    },
    /// From shard 0: here is the new metadata; open and delete partitions to match it.
    ApplyMetadata {
        /// The new snapshot.
        metadata: Arc<Metadata>,
        /// Answered once applied.
        reply: shard_reply::ReplySender<()>,
    },
}

/// The answers to a group of partition calls, in call order.
pub type PartitionAnswers = Vec<KafkaResult<PartitionReply>>;

/// Mesh channel capacity per pair of shards: bounds the messages queued between two shards.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

impl ShardContext {
    /// Sends a message to another shard. Fails only when that shard is shutting down.
    pub(crate) async fn send_to_shard(&self, shard: usize, message: ShardMessage) -> KafkaResult<()> {
        debug_assert_ne!(shard, self.id, "local work runs in place");
        self.mesh
            .send_to(shard, message)
            .await
            .map_err(|_| KafkaError::new(ResponseError::NotLeaderOrFollower, format!("shard {shard} is shutting down")))
    }

    /// Runs partition calls wherever their partitions live, returning results in call order.
    ///
    /// With an admission (a request with ordered effects, see [`crate::ordering`]), the
    /// calls take their places at their partitions in the request's admission turn: local
    /// ones get their tickets in place, remote ones are queued in the mesh channel to their
    /// owner (which takes their tickets in channel order). Then the connection's next
    /// request is let in, and these calls run.
    pub async fn call_partitions(&self, calls: Vec<PartitionCall>, admission: Option<Admission>) -> PartitionAnswers {
        let admitting = crate::ordering::begin(admission).await;
        let origin = admitting.as_ref().map(|admitting| admitting.origin);
        let metadata = self.metadata();
        let mut results: Vec<Option<KafkaResult<PartitionReply>>> = (0..calls.len()).map(|_| None).collect();
        let mut by_shard: Vec<(Vec<usize>, Vec<PartitionCall>)> =
            (0..self.shards).map(|_| Default::default()).collect();
        for (index, call) in calls.into_iter().enumerate() {
            match metadata.owner(&call.topic, call.partition) {
                Some(owner) => {
                    by_shard[owner].0.push(index);
                    by_shard[owner].1.push(call);
                }
                None => results[index] = Some(Err(KafkaError::unknown_partition(&call.topic, call.partition))),
            }
        }
        let mut running: Vec<(Vec<usize>, LocalBoxFuture<'_, PartitionAnswers>)> = Vec::new();
        for (owner, (indexes, calls)) in
            by_shard.into_iter().enumerate().filter(|(_, (indexes, _))| !indexes.is_empty())
        {
            let answers: LocalBoxFuture<'_, _> = if owner == self.id {
                Box::pin(run_admitted(self.admit_local_calls(calls, origin)))
            } else {
                Box::pin(self.send_remote_calls(owner, calls, origin).await)
            };
            running.push((indexes, answers));
        }
        drop(admitting);
        let (indexes, answers): (Vec<_>, Vec<_>) = running.into_iter().unzip();
        for (indexes, answers) in indexes.into_iter().zip(futures::future::join_all(answers).await) {
            debug_assert_eq!(indexes.len(), answers.len());
            for (index, answer) in indexes.into_iter().zip(answers) {
                results[index] = Some(answer);
            }
        }
        results.into_iter().map(|r| r.expect("every call is answered")).collect()
    }

    /// Queues calls for another shard in the mesh channel to it (their place at the owner
    /// is taken in channel order); the returned future waits for the answers.
    async fn send_remote_calls(
        &self,
        owner: usize,
        calls: Vec<PartitionCall>,
        origin: Option<RequestOrigin>,
    ) -> impl std::future::Future<Output = PartitionAnswers> {
        let count = calls.len();
        ShardStats::bump(&self.stats.calls_routed_out, count as u64);
        let (reply, answer) = shard_reply::channel();
        let sent = self.send_to_shard(owner, ShardMessage::Partitions { calls, origin, reply }).await;
        async move {
            let failure = match sent {
                Ok(()) => match answer.await {
                    Ok(answers) => return answers,
                    Err(_) => {
                        KafkaError::new(ResponseError::NotLeaderOrFollower, format!("shard {owner} dropped the call"))
                    }
                },
                Err(error) => error,
            };
            (0..count).map(|_| Err(failure.clone())).collect()
        }
    }

    /// Gives calls for partitions this shard owns their places at their logs, now.
    pub(crate) fn admit_local_calls(
        &self,
        calls: Vec<PartitionCall>,
        origin: Option<RequestOrigin>,
    ) -> Vec<KafkaResult<AdmittedCall>> {
        calls
            .into_iter()
            .map(|call| {
                let name = partition_dir_name(&call.topic, call.partition);
                let log = self
                    .engine
                    .partition(&name)
                    .ok_or_else(|| KafkaError::unknown_partition(&call.topic, call.partition))?;
                // In a cluster every call goes through the partition's replica here.
                let replica = if self.in_cluster() {
                    let missing =
                        || KafkaError::new(ResponseError::NotLeaderOrFollower, format!("{name}: no replica here yet"));
                    Some(self.replica_named(&name).ok_or_else(missing)?)
                } else {
                    None
                };
                Ok(AdmittedCall::new(log, call.op, origin, replica))
            })
            .collect()
    }

    /// Waits until any partition has data at or past its offset, or `max_wait` passes.
    pub async fn wait_for_any(&self, waits: Vec<(String, i32, i64)>, max_wait: Duration, limit: ReadLimit) {
        let metadata = self.metadata();
        let mut by_shard: Vec<Vec<(String, i32, i64)>> = vec![Vec::new(); self.shards];
        for wait in waits {
            if let Some(owner) = metadata.owner(&wait.0, wait.1) {
                by_shard[owner].push(wait);
            }
        }
        let mut pending: Vec<futures::future::LocalBoxFuture<'_, ()>> = Vec::new();
        for (owner, waits) in by_shard.into_iter().enumerate().filter(|(_, w)| !w.is_empty()) {
            if owner == self.id {
                pending.push(Box::pin(self.wait_local(waits, max_wait, limit)));
            } else {
                pending.push(Box::pin(async move {
                    let (reply, answer) = shard_reply::channel();
                    if self
                        .send_to_shard(owner, ShardMessage::WaitForData { waits, max_wait, limit, reply })
                        .await
                        .is_ok()
                    {
                        let _ = answer.await;
                    }
                }));
            }
        }
        if pending.is_empty() {
            glommio::timer::sleep(max_wait).await;
            return;
        }
        futures::future::select_all(pending).await;
    }

    async fn wait_local(&self, waits: Vec<(String, i32, i64)>, max_wait: Duration, limit: ReadLimit) {
        let logs: Vec<_> = waits
            .iter()
            .filter_map(|(topic, partition, offset)| {
                Some((self.engine.partition(&partition_dir_name(topic, *partition))?, *offset))
            })
            .collect();
        if logs.is_empty() {
            glommio::timer::sleep(max_wait).await;
            return;
        }
        let waiting = logs.iter().map(|(log, offset)| Box::pin(log.wait_for_data(*offset, max_wait, limit)));
        futures::future::select_all(waiting).await;
    }

    /// Serves messages from the other shards until they all hang up.
    pub(crate) async fn serve_mesh(self: Rc<Self>, receivers: MeshReceivers<ShardMessage>) {
        let streams = receivers.into_streams();
        let serving = streams.into_iter().map(|(_, mut stream)| {
            let context = self.clone();
            async move {
                while let Some(message) = stream.next().await {
                    context.clone().admit_message(message);
                }
            }
        });
        futures::future::join_all(serving).await;
    }

    /// Starts the work a message asks for. Partition and group calls take their places at
    /// their targets here, before the next message of the same channel is looked at: the
    /// mesh channel's order is the order their effects happen in (see [`crate::ordering`]).
    fn admit_message(self: Rc<Self>, message: ShardMessage) {
        match message {
            ShardMessage::Partitions { calls, origin, reply } => {
                ShardStats::bump(&self.stats.calls_served_for_others, calls.len() as u64);
                let admitted = self.admit_local_calls(calls, origin);
                glommio::spawn_local(async move {
                    let _ = reply.send(run_admitted(admitted).await);
                })
                .detach();
            }
            ShardMessage::Group { group_id, origin, partition, op, reply } => {
                ShardStats::bump(&self.stats.calls_served_for_others, 1);
                let ticket = self.groups.ticket();
                glommio::spawn_local(async move {
                    let _ = reply.send(self.run_group_op(&group_id, partition, op, ticket, origin).await);
                })
                .detach();
            }
            other => {
                glommio::spawn_local(async move { self.handle_message(other).await }).detach();
            }
        }
    }

    async fn handle_message(self: Rc<Self>, message: ShardMessage) {
        match message {
            ShardMessage::Partitions { .. } | ShardMessage::Group { .. } => {
                unreachable!("admitted by serve_mesh in channel order")
            }
            ShardMessage::WaitForData { waits, max_wait, limit, mut reply } => {
                // The asker drops its end when another partition answered first.
                let waiting = Box::pin(self.wait_local(waits, max_wait, limit));
                let data_came = matches!(
                    futures::future::select(waiting, Box::pin(reply.cancellation())).await,
                    futures::future::Either::Left(_)
                );
                if data_came {
                    let _ = reply.send(());
                }
            }
            ShardMessage::Controller { request, reply } => {
                let _ = reply.send(self.call_controller(request).await);
            }
            ShardMessage::ChangeMetadata { change, reply } => {
                let _ = reply.send(self.change_metadata(change).await);
            }
            ShardMessage::ListGroups { reply } => {
                let _ = reply.send(self.groups.list());
            }
            ShardMessage::Txn { transactional_id, partition, op, reply } => {
                ShardStats::bump(&self.stats.calls_served_for_others, 1);
                let _ = reply.send(self.run_txn_op(&transactional_id, partition, op).await);
            }
            ShardMessage::ListTransactions { reply } => {
                let _ = reply.send(self.txns.list());
            }
            ShardMessage::Admin { query, reply } => {
                let _ = reply.send(self.answer_admin(query).await);
            }
            ShardMessage::ApplyMetadata { metadata, reply } => {
                self.apply_metadata(metadata).await;
                let _ = reply.send(());
            }
        }
    }
}

/// Runs admitted calls concurrently, each in its place.
async fn run_admitted(calls: Vec<KafkaResult<AdmittedCall>>) -> PartitionAnswers {
    futures::future::join_all(calls.into_iter().map(|call| async move { call?.run().await })).await
}
