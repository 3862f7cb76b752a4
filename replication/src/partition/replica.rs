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
    /// No longer a replica (terminal: a broker that gets the partition back makes a new
    /// replica over a new log).
    removed: bool,
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
        let mut replica =
            PartitionReplica { me, key, state: state.clone(), role: Role::Follower { high_watermark }, removed: false };
        let change = replica.take_role(log, now_ms);
        (replica, change)
    }

    /// Applies a partition state from the metadata; older and equal states are ignored
    /// (metadata may arrive late or twice).
    pub fn apply(&mut self, state: &PartitionState, log: &impl LogView, now_ms: u64) -> RoleChange {
        if self.removed || state.partition_epoch <= self.state.partition_epoch {
            return RoleChange::Unchanged;
        }
        let new_epoch = state.leader_epoch != self.state.leader_epoch;
        self.state = state.clone();
        if !state.is_replica(self.me) {
            self.remove();
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

    /// This broker no longer holds the replica (reassigned away, or its topic deleted):
    /// it neither leads nor fetches from now on, and pending acks=all produces fail (a
    /// removed leader's never complete: nobody fetches from it any more).
    pub fn remove(&mut self) {
        let high_watermark = self.high_watermark();
        self.role = Role::Follower { high_watermark };
        self.removed = true;
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

    /// On the leader, the most records any follower that fetched in this epoch is behind
    /// `log_end`; `None` on a follower or before any fetch.
    pub fn max_follower_lag(&self, log_end: i64) -> Option<i64> {
        match &self.role {
            Role::Leader(leader) => leader.follower_ends().filter_map(|(_, end)| end).map(|end| log_end - end).max(),
            Role::Follower { .. } => None,
        }
    }

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
            Role::Follower { .. } if self.state.has_leader() && !self.removed => {
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

    /// Where this follower's log should start after an append, given the leader's log
    /// start: the leader's, bounded by this replica's high watermark (records above it
    /// may still be truncated, so they are not deleted); `None` when it starts there
    /// already.
    pub fn log_start_to_adopt(&self, leader_log_start: i64, log: &impl LogView) -> Option<i64> {
        let to = leader_log_start.min(self.high_watermark());
        (to > log.log_start()).then_some(to)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::PartitionState;

    /// A log of epochs only: record i has epoch `epochs[i]`; the first `durable` are fsynced.
    #[derive(Default)]
    struct TestLog {
        epochs: Vec<i32>,
        durable: usize,
        /// Records below it are deleted (their epochs stay, unread).
        start: i64,
    }

    impl TestLog {
        fn with(epochs: &[i32]) -> Self {
            TestLog { epochs: epochs.to_vec(), durable: epochs.len(), start: 0 }
        }
    }

    impl LogView for TestLog {
        fn log_start(&self) -> i64 {
            self.start
        }
        fn log_end(&self) -> i64 {
            self.epochs.len() as i64
        }
        fn durable_end(&self) -> i64 {
            self.durable as i64
        }
        fn last_epoch(&self) -> Option<i32> {
            self.epochs.last().copied()
        }
        fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
            let end = self.epochs.partition_point(|e| *e <= epoch);
            Some((*self.epochs[..end].last()?, end as i64))
        }
    }

    fn key() -> PartitionKey {
        PartitionKey { topic_id: uuid::Uuid::nil(), partition: 0 }
    }

    fn state(leader: BrokerId, leader_epoch: i32, isr: &[BrokerId], partition_epoch: i32) -> PartitionState {
        PartitionState {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch,
            partition_epoch,
            adding_replicas: vec![],
            removing_replicas: vec![],
        }
    }

    fn fetch(replica: BrokerId, leader_epoch: i32, fetch_offset: i64, last: Option<i32>) -> ReplicaFetch {
        ReplicaFetch { replica, leader_epoch, fetch_offset, last_fetched_epoch: last }
    }

    const CONFIG: ReplicaConfig = ReplicaConfig { replica_lag_time_max_ms: 1_000, isr_proposal_retry_ms: 100 };

    #[test]
    fn the_high_watermark_is_the_least_durable_end_over_the_isr() {
        let mut log = TestLog::with(&[0; 10]);
        log.durable = 8;
        let (mut leader, change) = PartitionReplica::new(1, key(), &state(1, 0, &[1, 2, 3], 0), 0, &log, 0);
        assert_eq!(change, RoleChange::BecameLeader { leader_epoch: 0, epoch_start_offset: 10 });
        leader.serve_fetch(&fetch(2, 0, 10, Some(0)), &log, 1);
        assert_eq!(leader.high_watermark(), 0, "follower 3 has not fetched yet");
        leader.serve_fetch(&fetch(3, 0, 6, Some(0)), &log, 2);
        assert_eq!(leader.high_watermark(), 6);
        leader.serve_fetch(&fetch(3, 0, 10, Some(0)), &log, 3);
        assert_eq!(leader.high_watermark(), 8, "bounded by the leader's own fsynced end");
        log.durable = 10;
        assert_eq!(leader.on_durable(&log), Some(10));
    }

    #[test]
    fn acks_all_needs_min_insync_replicas_before_and_after_the_append() {
        let log = TestLog::with(&[0; 4]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 0, &[1, 2], 0), 0, &log, 0);
        assert_eq!(leader.check_produce(true, 3), Err(ReplicationError::NotEnoughReplicas));
        assert_eq!(leader.check_produce(false, 3), Ok(()));
        assert_eq!(leader.ack_outcome(0, 4, 2), AckOutcome::Pending);
        leader.serve_fetch(&fetch(2, 0, 4, Some(0)), &log, 1);
        assert_eq!(leader.ack_outcome(0, 4, 2), AckOutcome::Done);
        assert_eq!(leader.ack_outcome(0, 4, 3), AckOutcome::Failed(ReplicationError::NotEnoughReplicasAfterAppend));
        leader.apply(&state(2, 1, &[2], 1), &log, 2);
        assert_eq!(leader.ack_outcome(0, 4, 2), AckOutcome::Failed(ReplicationError::NotLeaderOrFollower));
    }

    #[test]
    fn a_removed_leader_fails_its_pending_acks_and_never_fetches() {
        let log = TestLog::with(&[0; 4]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 0, &[1, 2], 0), 0, &log, 0);
        assert_eq!(leader.ack_outcome(0, 4, 2), AckOutcome::Pending);
        // Reassigned away, in the same leader epoch as far as this broker has seen.
        leader.remove();
        assert_eq!(leader.ack_outcome(0, 4, 2), AckOutcome::Failed(ReplicationError::NotLeaderOrFollower));
        assert_eq!(leader.check_produce(false, 1), Err(ReplicationError::NotLeaderOrFollower));
        assert_eq!(leader.next_fetch(&log), None);
        assert_eq!(leader.apply(&state(2, 1, &[1, 2], 1), &log, 1), RoleChange::Unchanged, "removal is final");
        assert_eq!(leader.next_fetch(&log), None);
        let (mut follower, _) = PartitionReplica::new(3, key(), &state(1, 0, &[1, 2, 3], 0), 0, &log, 0);
        let mut moved = state(1, 0, &[1, 2], 1);
        moved.replicas = vec![1, 2];
        assert_eq!(follower.apply(&moved, &log, 1), RoleChange::Removed);
        assert_eq!(follower.next_fetch(&log), None);
    }

    #[test]
    fn a_proposed_isr_member_holds_the_high_watermark_until_the_outcome_is_known() {
        let log = TestLog::with(&[0; 10]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 0, &[1, 2], 0), 0, &log, 0);
        leader.serve_fetch(&fetch(3, 0, 10, Some(0)), &log, 1);
        leader.serve_fetch(&fetch(2, 0, 5, Some(0)), &log, 1);
        let proposal = leader.isr_change(7, &log, &CONFIG, 1).expect("3 has caught up");
        assert_eq!(proposal.new_isr, vec![1, 2, 3]);
        assert_eq!(proposal.partition_epoch, 0);
        // 3 falls silent at 5 while the proposal is out: it may be what the controller
        // commits, so the high watermark waits for it.
        leader.serve_fetch(&fetch(2, 0, 10, Some(0)), &log, 2);
        leader.serve_fetch(&fetch(3, 0, 10, Some(0)), &log, 2);
        assert_eq!(leader.high_watermark(), 10);
        let log = TestLog::with(&[0; 12]);
        leader.serve_fetch(&fetch(2, 0, 12, Some(0)), &log, 3);
        assert_eq!(leader.high_watermark(), 10, "3 is proposed and has only 10");
        assert_eq!(leader.isr_change(7, &log, &CONFIG, 50), None, "not due again yet");
        // The controller's answer (another state) settles it: the ISR is {1, 2}.
        leader.apply(&state(1, 0, &[1, 2], 1), &log, 60);
        assert_eq!(leader.high_watermark(), 12);
    }

    #[test]
    fn a_replica_joins_the_isr_only_past_the_leaders_epoch_start() {
        // Broker 1 leads epoch 3 from offset 10 with a high watermark of 6 (it did not
        // hear the previous leader's last one). The previous leader may have acknowledged
        // records up to 10 with broker 1's help; 3 must hold them before it may be elected.
        // (Broker 2, in the ISR, has not fetched yet, so the high watermark stays at 6.)
        let log = TestLog::with(&[2; 10]);
        let (mut leader, change) = PartitionReplica::new(1, key(), &state(1, 3, &[1, 2], 5), 6, &log, 0);
        assert_eq!(change, RoleChange::BecameLeader { leader_epoch: 3, epoch_start_offset: 10 });
        leader.serve_fetch(&fetch(3, 3, 8, Some(2)), &log, 1);
        assert_eq!(leader.high_watermark(), 6);
        assert_eq!(
            leader.isr_change(9, &log, &CONFIG, 1),
            None,
            "8 is past the high watermark but not the epoch start"
        );
        leader.serve_fetch(&fetch(3, 3, 10, Some(2)), &log, 2);
        assert_eq!(leader.isr_change(9, &log, &CONFIG, 2).map(|p| p.new_isr), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_follower_out_of_sync_for_the_lag_time_leaves_the_isr() {
        let log = TestLog::with(&[0; 10]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 0, &[1, 2, 3], 0), 0, &log, 0);
        leader.serve_fetch(&fetch(2, 0, 10, Some(0)), &log, 900);
        leader.serve_fetch(&fetch(3, 0, 4, Some(0)), &log, 900);
        assert_eq!(leader.isr_change(9, &log, &CONFIG, 1_000), None, "within the lag time");
        leader.serve_fetch(&fetch(2, 0, 10, Some(0)), &log, 1_500);
        assert_eq!(leader.isr_change(9, &log, &CONFIG, 1_500).map(|p| p.new_isr), Some(vec![1, 2]));
    }

    #[test]
    fn a_diverged_follower_truncates_to_the_end_of_the_common_epoch() {
        // Leader: epochs 1 (0..5), 3 (5..8). Follower: 1 (0..5), 2 (5..9).
        let leader_log = TestLog::with(&[1, 1, 1, 1, 1, 3, 3, 3]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 3, &[1, 2], 4), 5, &leader_log, 0);
        let follower_log = TestLog::with(&[1, 1, 1, 1, 1, 2, 2, 2, 2]);
        let (follower, _) = PartitionReplica::new(2, key(), &state(1, 3, &[1, 2], 4), 5, &follower_log, 0);
        let request = follower.next_fetch(&follower_log).unwrap();
        assert_eq!(request, fetch(2, 3, 9, Some(2)));
        let reply = leader.serve_fetch(&request, &leader_log, 1);
        assert_eq!(reply, FetchReply::Diverging { epoch: 1, end_offset: 5 });
        assert_eq!(follower.on_fetch_reply(&request, &reply, &follower_log), FollowerStep::Truncate { to: 5 });
        let follower_log = TestLog::with(&[1, 1, 1, 1, 1]);
        let request = follower.next_fetch(&follower_log).unwrap();
        let reply = leader.serve_fetch(&request, &leader_log, 2);
        assert_eq!(reply, FetchReply::Records { from: 5, high_watermark: 5, log_start: 0 });
    }

    #[test]
    fn a_follower_behind_the_leaders_log_start_restarts_there_and_follows_its_deletions() {
        let mut leader_log = TestLog::with(&[0; 10]);
        leader_log.start = 6;
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 0, &[1], 0), 0, &leader_log, 0);
        let follower_log = TestLog::with(&[0; 4]);
        let (mut follower, _) = PartitionReplica::new(2, key(), &state(1, 0, &[1], 0), 0, &follower_log, 0);
        let request = follower.next_fetch(&follower_log).unwrap();
        let reply = leader.serve_fetch(&request, &leader_log, 1);
        assert_eq!(reply, FetchReply::BehindLogStart { log_start: 6 });
        assert_eq!(follower.on_fetch_reply(&request, &reply, &follower_log), FollowerStep::RestartAt { offset: 6 });
        // Restarted at 6 (records 6.. of epoch 0 to come): the leader serves from there.
        let mut restarted = TestLog::with(&[0; 6]);
        restarted.start = 6;
        let request = follower.next_fetch(&restarted).unwrap();
        let reply = leader.serve_fetch(&request, &leader_log, 2);
        assert_eq!(reply, FetchReply::Records { from: 6, high_watermark: 10, log_start: 6 });
        // Later the leader deletes up to 8: the follower follows as far as its own high
        // watermark, which records above it may still be truncated to.
        let appended = TestLog { start: 6, ..TestLog::with(&[0; 10]) };
        assert_eq!(follower.follower_appended(7, &appended), 7);
        assert_eq!(follower.log_start_to_adopt(8, &appended), Some(7));
        assert_eq!(follower.log_start_to_adopt(5, &appended), None, "never moves back");
    }

    #[test]
    fn a_follower_fetches_only_from_a_fsynced_log_end() {
        let mut log = TestLog::with(&[0; 10]);
        log.durable = 7;
        let (follower, _) = PartitionReplica::new(2, key(), &state(1, 0, &[1, 2], 0), 0, &log, 0);
        assert_eq!(follower.next_fetch(&log), None);
        log.durable = 10;
        assert_eq!(follower.next_fetch(&log), Some(fetch(2, 0, 10, Some(0))));
    }

    #[test]
    fn fetches_in_another_epoch_or_from_non_replicas_are_refused() {
        let log = TestLog::with(&[0; 3]);
        let (mut leader, _) = PartitionReplica::new(1, key(), &state(1, 4, &[1, 2], 0), 0, &log, 0);
        let refused = |reply| matches!(reply, FetchReply::Error(_));
        assert_eq!(
            leader.serve_fetch(&fetch(2, 3, 3, Some(0)), &log, 1),
            FetchReply::Error(ReplicationError::FencedLeaderEpoch)
        );
        assert_eq!(
            leader.serve_fetch(&fetch(2, 5, 3, Some(0)), &log, 1),
            FetchReply::Error(ReplicationError::UnknownLeaderEpoch)
        );
        assert!(refused(leader.serve_fetch(&fetch(7, 4, 3, Some(0)), &log, 1)), "7 is no replica");
        assert_eq!(
            leader.serve_fetch(&fetch(2, 4, 9, None), &log, 1),
            FetchReply::Error(ReplicationError::OffsetOutOfRange)
        );
        assert_eq!(
            leader.serve_fetch(&fetch(2, 4, 9, Some(0)), &log, 1),
            FetchReply::Diverging { epoch: 0, end_offset: 3 },
            "past the end of its own last epoch: the follower's tail diverges"
        );
        let (mut follower, _) = PartitionReplica::new(2, key(), &state(1, 4, &[1, 2], 0), 0, &log, 0);
        assert!(refused(follower.serve_fetch(&fetch(3, 4, 0, None), &log, 1)), "a follower serves no fetch");
    }
}
