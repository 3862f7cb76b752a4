//! [`PartitionReplica`]: a broker's replica of one partition, switching between leader
//! and follower as the metadata says.

use super::follower;
use super::leader::LeaderState;
use super::log_view::LogView;
use super::messages::{AckOutcome, FetchReply, FollowerStep, ReplicaConfig, ReplicaFetch, RoleChange};
use crate::controller::AlterPartition;
use crate::error::ReplicationError;
use crate::ids::{BrokerId, PartitionKey};
use crate::metadata::PartitionState;

#[derive(Debug)]
enum Role {
    Leader(LeaderState),
    /// Following `state.leader` (which may be nobody), with the high watermark learned
    /// from it.
    Follower {
        high_watermark: i64,
    },
}

/// One broker's replica of one partition.
///
/// The caller creates it only from metadata in which this broker's current registration
/// is unfenced: a restarted broker must not take up a leader epoch of its past process,
/// whose follower progress and unflushed tail died with it (the controller moves a
/// restarted broker's leaderships when it registers, so such metadata has none).
#[derive(Debug)]
pub struct PartitionReplica {
    me: BrokerId,
    key: PartitionKey,
    state: PartitionState,
    role: Role,
}

impl PartitionReplica {
    /// The replica of `key` on broker `me`, in `state`, over a log whose checkpointed high
    /// watermark is `high_watermark`.
    pub fn new(
        me: BrokerId,
        key: PartitionKey,
        state: &PartitionState,
        high_watermark: i64,
        log: &impl LogView,
        now_ms: u64,
    ) -> (Self, RoleChange) {
        assert!(state.is_replica(me), "broker {me} holds no replica of {key:?}");
        let high_watermark = high_watermark.min(log.log_end());
        let mut replica = PartitionReplica { me, key, state: state.clone(), role: Role::Follower { high_watermark } };
        let change = replica.take_role(log, now_ms);
        (replica, change)
    }

    /// Applies a partition state from the metadata; older and equal states are ignored
    /// (metadata may arrive late or twice).
    pub fn apply(&mut self, state: &PartitionState, log: &impl LogView, now_ms: u64) -> RoleChange {
        if state.partition_epoch <= self.state.partition_epoch {
            return RoleChange::Unchanged;
        }
        let new_epoch = state.leader_epoch != self.state.leader_epoch;
        self.state = state.clone();
        if !state.is_replica(self.me) {
            return RoleChange::Removed;
        }
        if new_epoch {
            return self.take_role(log, now_ms);
        }
        if let Role::Leader(leader) = &mut self.role {
            leader.on_new_state(self.me, &self.state, log.log_end(), now_ms);
            leader.advance_high_watermark(self.me, &self.state, log);
        }
        RoleChange::StateChanged
    }

    fn take_role(&mut self, log: &impl LogView, now_ms: u64) -> RoleChange {
        let high_watermark = self.high_watermark();
        if self.state.leader == self.me {
            let epoch_start_offset = log.log_end();
            self.role =
                Role::Leader(LeaderState::new(self.me, &self.state, epoch_start_offset, high_watermark, now_ms));
            RoleChange::BecameLeader { leader_epoch: self.state.leader_epoch, epoch_start_offset }
        } else {
            self.role = Role::Follower { high_watermark };
            RoleChange::BecameFollower { leader: self.state.leader, leader_epoch: self.state.leader_epoch }
        }
    }

    /// The partition.
    pub fn key(&self) -> PartitionKey {
        self.key
    }

    /// The partition state last applied.
    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    /// Whether this replica leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.state.leader_epoch
    }

    /// The high watermark: the leader's, or on a follower what it learned from the leader
    /// (capped by its own log end).
    pub fn high_watermark(&self) -> i64 {
        match &self.role {
            Role::Leader(leader) => leader.high_watermark,
            Role::Follower { high_watermark } => *high_watermark,
        }
    }

    // ---- leader ----

    /// Whether a produce may be appended now: only on the leader; with acks=all only while
    /// the ISR has at least `min_insync_replicas` members.
    pub fn check_produce(&self, acks_all: bool, min_insync_replicas: usize) -> Result<(), ReplicationError> {
        if !self.is_leader() {
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        if acks_all && self.state.isr.len() < min_insync_replicas {
            return Err(ReplicationError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// How an acks=all produce appended in `leader_epoch` and ending at `end_offset` stands.
    pub fn ack_outcome(&self, leader_epoch: i32, end_offset: i64, min_insync_replicas: usize) -> AckOutcome {
        match &self.role {
            Role::Leader(leader) if self.state.leader_epoch == leader_epoch => {
                if leader.high_watermark < end_offset {
                    AckOutcome::Pending
                } else if self.state.isr.len() < min_insync_replicas {
                    AckOutcome::Failed(ReplicationError::NotEnoughReplicasAfterAppend)
                } else {
                    AckOutcome::Done
                }
            }
            _ => AckOutcome::Failed(ReplicationError::NotLeaderOrFollower),
        }
    }

    /// The local log's durable end moved (an fsync finished); returns the new high
    /// watermark if it moved.
    pub fn on_durable(&mut self, log: &impl LogView) -> Option<i64> {
        match &mut self.role {
            Role::Leader(leader) => leader.advance_high_watermark(self.me, &self.state, log),
            Role::Follower { .. } => None,
        }
    }

    /// Serves a follower's fetch. The reply's records (for [`FetchReply::Records`]) are the
    /// log's from the fetch offset on.
    pub fn serve_fetch(&mut self, fetch: &ReplicaFetch, log: &impl LogView, now_ms: u64) -> FetchReply {
        let Role::Leader(leader) = &mut self.role else {
            return FetchReply::Error(ReplicationError::NotLeaderOrFollower);
        };
        if fetch.leader_epoch < self.state.leader_epoch {
            return FetchReply::Error(ReplicationError::FencedLeaderEpoch);
        }
        if fetch.leader_epoch > self.state.leader_epoch {
            return FetchReply::Error(ReplicationError::UnknownLeaderEpoch);
        }
        if fetch.replica == self.me || !self.state.is_replica(fetch.replica) {
            return FetchReply::Error(ReplicationError::NotLeaderOrFollower);
        }
        leader.serve_fetch(self.me, &self.state, fetch, log, now_ms)
    }

    /// The ISR change to send to the controller now, if any (see the module notes).
    pub fn isr_change(
        &mut self,
        broker_epoch: i64,
        log: &impl LogView,
        config: &ReplicaConfig,
        now_ms: u64,
    ) -> Option<AlterPartition> {
        let Role::Leader(leader) = &mut self.role else {
            return None;
        };
        let new_isr = leader.propose_isr(self.me, &self.state, log, config, now_ms)?;
        Some(AlterPartition {
            broker: self.me,
            broker_epoch,
            key: self.key,
            leader_epoch: self.state.leader_epoch,
            partition_epoch: self.state.partition_epoch,
            new_isr,
        })
    }

    // ---- follower ----

    /// The fetch to send to the leader now: `None` when leading, when there is no leader,
    /// or while the log has an unflushed tail (flush first).
    pub fn next_fetch(&self, log: &impl LogView) -> Option<ReplicaFetch> {
        match self.role {
            Role::Follower { .. } if self.state.has_leader() => {
                follower::next_fetch(self.me, self.state.leader_epoch, log)
            }
            _ => None,
        }
    }

    /// What to do with the reply to `fetch`.
    pub fn on_fetch_reply(&self, fetch: &ReplicaFetch, reply: &FetchReply, log: &impl LogView) -> FollowerStep {
        match self.role {
            Role::Follower { high_watermark }
                if fetch.leader_epoch == self.state.leader_epoch && fetch.fetch_offset == log.log_end() =>
            {
                follower::on_reply(reply, high_watermark, log)
            }
            _ => FollowerStep::Stale,
        }
    }

    /// The follower appended a reply's records; `leader_high_watermark` came with them.
    /// Returns the follower's high watermark.
    pub fn follower_appended(&mut self, leader_high_watermark: i64, log: &impl LogView) -> i64 {
        let Role::Follower { high_watermark } = &mut self.role else {
            panic!("follower_appended on the leader of {:?}", self.key);
        };
        *high_watermark = (*high_watermark).max(leader_high_watermark.min(log.log_end()));
        *high_watermark
    }
}
