//! Getting a group request to its coordinator: the shard that owns the group's
//! `__consumer_offsets` partition (created with the first group request, as Kafka does).

use super::coordinator::{Caller, FetchedOffset, GroupDescription, GroupListing};
use super::records::{CommittedOffset, CONSUMER_OFFSETS_PARTITIONS, CONSUMER_OFFSETS_TOPIC};
use super::state::{JoinRequest, JoinResult, SyncResult};
use crate::context::{ShardContext, ShardStats};
use crate::coordination::CoordinatorPlace;
use crate::error::{KafkaError, KafkaResult};
use crate::ordering::Admission;
use crate::routing::ShardMessage;
use bytes::Bytes;
use kafka_protocol::ResponseError;
use sluice_engine::fifo_lock::Ticket;
use sluice_engine::shard_reply;
use sluice_engine::source_order::RequestOrigin;
use std::rc::Rc;

/// A group operation, run on the group's coordinator shard.
#[derive(Debug)]
pub enum GroupOp {
    /// JoinGroup.
    Join(JoinRequest),
    /// SyncGroup.
    Sync {
        /// Member.
        member_id: String,
        /// Static member's instance id.
        instance_id: Option<String>,
        /// Generation the member is in.
        generation_id: i32,
        /// The leader's assignments.
        assignments: Vec<(String, Bytes)>,
    },
    /// Heartbeat.
    Heartbeat {
        /// Member.
        member_id: String,
        /// Static member's instance id.
        instance_id: Option<String>,
        /// Generation the member is in.
        generation_id: i32,
    },
    /// LeaveGroup: `(member id, instance id)` each.
    Leave(Vec<(String, Option<String>)>),
    /// OffsetCommit.
    Commit {
        /// Member (empty for consumers without a group membership).
        member_id: String,
        /// Static member's instance id.
        instance_id: Option<String>,
        /// Generation (-1 without membership).
        generation_id: i32,
        /// `(topic, partition, offset)`.
        offsets: Vec<(String, i32, CommittedOffset)>,
    },
    /// OffsetFetch: these partitions, or all.
    FetchOffsets(Option<Vec<(String, i32)>>),
    /// DescribeGroups.
    Describe,
    /// DeleteGroups.
    Delete,
    /// OffsetDelete: these partitions.
    DeleteOffsets(Vec<(String, i32)>),
    /// TxnOffsetCommit.
    TxnCommit {
        /// Member (empty when the request names none).
        member_id: String,
        /// Static member's instance id.
        instance_id: Option<String>,
        /// Generation (-1 when the request names none).
        generation_id: i32,
        /// The transactional producer's id and epoch.
        producer: (i64, i16),
        /// `(topic, partition, offset)`.
        offsets: Vec<(String, i32, CommittedOffset)>,
    },
    /// A transaction marker for the whole `__consumer_offsets` partition (not one group):
    /// the producer's pending transactional offsets commit or vanish.
    CompleteTransaction(sluice_engine::TxnMarker),
}

/// The answer to a [`GroupOp`], variant by variant.
#[derive(Debug)]
pub enum GroupReply {
    /// JoinGroup's answer.
    Joined(JoinResult),
    /// SyncGroup's answer.
    Synced(SyncResult),
    /// Heartbeat's or OffsetCommit's error code, if any.
    Done(Result<(), ResponseError>),
    /// LeaveGroup: one result per member.
    Left(Vec<Result<(), ResponseError>>),
    /// OffsetFetch.
    Offsets(Vec<FetchedOffset>),
    /// DescribeGroups.
    Described(GroupDescription),
    /// OffsetDelete: a group-level error, or one result per partition.
    OffsetsDeleted(Result<Vec<Result<(), ResponseError>>, ResponseError>),
}

impl GroupReply {
    /// The error code of an operation answered with [`GroupReply::Done`] (0: it succeeded).
    pub fn done_code(reply: KafkaResult<GroupReply>) -> i16 {
        match reply {
            Ok(GroupReply::Done(result)) => result.err().map_or(0, |e| e.code()),
            Ok(other) => unreachable!("an operation answered with Done got {other:?}"),
            Err(error) => error.code.code(),
        }
    }
}

impl ShardContext {
    /// Runs a group operation on the group's coordinator shard. With an admission (a
    /// request with ordered effects, see [`crate::ordering`]), the operation takes its place
    /// in the coordinator's line in the request's admission turn, then the connection's
    /// next request is let in.
    pub async fn call_group(
        self: &Rc<Self>,
        group_id: &str,
        op: GroupOp,
        admission: Option<Admission>,
    ) -> KafkaResult<GroupReply> {
        let admitting = crate::ordering::begin(admission).await;
        let origin = admitting.as_ref().map(|admitting| admitting.origin);
        if group_id.is_empty() {
            return Err(KafkaError::new(ResponseError::InvalidGroupId, "the group id is empty"));
        }
        self.ensure_offsets_topic().await?;
        let place = self.coordinator_place(CONSUMER_OFFSETS_TOPIC, group_id)?;
        self.route_group_op(group_id, place, op, admitting, origin).await
    }

    /// Runs a transaction marker on the coordinator of a `__consumer_offsets` partition.
    pub async fn complete_offsets_transaction(
        self: &Rc<Self>,
        partition: i32,
        marker: sluice_engine::TxnMarker,
    ) -> KafkaResult<()> {
        let shard = self.metadata().owner(CONSUMER_OFFSETS_TOPIC, partition).ok_or_else(|| {
            KafkaError::new(ResponseError::NotCoordinator, format!("{CONSUMER_OFFSETS_TOPIC}-{partition} is not here"))
        })?;
        let place = CoordinatorPlace { partition, shard };
        self.route_group_op("", place, GroupOp::CompleteTransaction(marker), None, None).await.map(|_| ())
    }

    async fn route_group_op(
        self: &Rc<Self>,
        group_id: &str,
        place: CoordinatorPlace,
        op: GroupOp,
        admitting: Option<crate::ordering::Admitting>,
        origin: Option<RequestOrigin>,
    ) -> KafkaResult<GroupReply> {
        let CoordinatorPlace { partition, shard: owner } = place;
        if owner == self.id {
            let ticket = self.groups.ticket();
            drop(admitting);
            return self.run_group_op(group_id, partition, op, ticket, origin).await;
        }
        ShardStats::bump(&self.stats.calls_routed_out, 1);
        let (reply, answer) = shard_reply::channel();
        let message = ShardMessage::Group { group_id: group_id.to_string(), origin, partition, op, reply };
        self.send_to_shard(owner, message).await?;
        drop(admitting);
        answer.await.unwrap_or_else(|_| {
            Err(KafkaError::new(ResponseError::CoordinatorNotAvailable, format!("shard {owner} dropped the call")))
        })
    }

    /// Runs a group operation on this shard, the group's coordinator, in `ticket`'s turn
    /// of the coordinator's line. Every operation changes its group, and takes its ticket
    /// for the `__consumer_offsets` write, synchronously in its first poll; the turn covers
    /// exactly that poll, so operations take effect in ticket order while their writes,
    /// fsyncs and parked joins overlap.
    pub(crate) async fn run_group_op(
        &self,
        group_id: &str,
        partition: i32,
        op: GroupOp,
        ticket: Ticket,
        origin: Option<RequestOrigin>,
    ) -> KafkaResult<GroupReply> {
        let turn = ticket.turn().await;
        if let Some(origin) = origin {
            self.groups.check_order(group_id, origin);
        }
        // In a cluster the coordinator is the leader of the group's partition, once it has
        // loaded the partition's groups.
        if !self.leads_internal_partition(CONSUMER_OFFSETS_TOPIC, partition) {
            return Err(KafkaError::new(
                ResponseError::NotCoordinator,
                format!("this broker does not lead {CONSUMER_OFFSETS_TOPIC}-{partition}"),
            ));
        }
        if self.groups.is_loading(partition) {
            return Err(KafkaError::new(
                ResponseError::CoordinatorLoadInProgress,
                format!("{CONSUMER_OFFSETS_TOPIC}-{partition}'s groups are being loaded"),
            ));
        }
        let running = self.dispatch_group_op(group_id, partition, op);
        futures::pin_mut!(running);
        if let std::task::Poll::Ready(reply) = futures::poll!(&mut running) {
            return reply;
        }
        drop(turn);
        running.await
    }

    async fn dispatch_group_op(&self, group_id: &str, partition: i32, op: GroupOp) -> KafkaResult<GroupReply> {
        let groups = &self.groups;
        let engine = self;
        Ok(match op {
            GroupOp::Join(request) => GroupReply::Joined(groups.join(engine, group_id, partition, request).await?),
            GroupOp::Sync { member_id, instance_id, generation_id, assignments } => GroupReply::Synced(
                groups
                    .sync(
                        engine,
                        group_id,
                        partition,
                        Caller { member_id: &member_id, instance_id: instance_id.as_deref(), generation_id },
                        assignments,
                    )
                    .await?,
            ),
            GroupOp::Heartbeat { member_id, instance_id, generation_id } => {
                GroupReply::Done(groups.heartbeat(group_id, &member_id, instance_id.as_deref(), generation_id))
            }
            GroupOp::Leave(members) => GroupReply::Left(groups.leave(engine, group_id, members).await?),
            GroupOp::Commit { member_id, instance_id, generation_id, offsets } => GroupReply::Done(
                groups
                    .commit(
                        engine,
                        group_id,
                        partition,
                        Caller { member_id: &member_id, instance_id: instance_id.as_deref(), generation_id },
                        offsets,
                    )
                    .await?,
            ),
            GroupOp::FetchOffsets(partitions) => GroupReply::Offsets(groups.fetch_offsets(group_id, partitions)),
            GroupOp::Describe => GroupReply::Described(groups.describe(group_id)),
            GroupOp::Delete => GroupReply::Done(groups.delete(engine, group_id).await?),
            GroupOp::DeleteOffsets(partitions) => {
                GroupReply::OffsetsDeleted(groups.delete_offsets(engine, group_id, partitions).await?)
            }
            GroupOp::TxnCommit { member_id, instance_id, generation_id, producer, offsets } => GroupReply::Done(
                groups
                    .txn_commit(
                        engine,
                        group_id,
                        partition,
                        Caller { member_id: &member_id, instance_id: instance_id.as_deref(), generation_id },
                        producer,
                        offsets,
                    )
                    .await?,
            ),
            GroupOp::CompleteTransaction(marker) => {
                groups.complete_transaction(engine, partition, marker).await?;
                GroupReply::Done(Ok(()))
            }
        })
    }

    /// Every group of every shard (ListGroups). Before `__consumer_offsets` exists there
    /// are none.
    pub async fn list_groups(self: &Rc<Self>) -> KafkaResult<Vec<GroupListing>> {
        let mut listings = self.groups.list();
        for shard in (0..self.shards).filter(|s| *s != self.id) {
            let (reply, answer) = shard_reply::channel();
            self.send_to_shard(shard, ShardMessage::ListGroups { reply }).await?;
            listings.extend(answer.await.map_err(|_| {
                KafkaError::new(ResponseError::CoordinatorNotAvailable, format!("shard {shard} dropped the call"))
            })?);
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listings)
    }

    /// Creates `__consumer_offsets` (compacted) if it does not exist yet.
    pub async fn ensure_offsets_topic(self: &Rc<Self>) -> KafkaResult<()> {
        self.ensure_internal_topic(CONSUMER_OFFSETS_TOPIC, CONSUMER_OFFSETS_PARTITIONS).await
    }
}
