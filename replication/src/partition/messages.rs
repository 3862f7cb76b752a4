//! The values that go in and out of a [`super::PartitionReplica`].

use crate::error::ReplicationError;
use crate::ids::BrokerId;

/// Replica settings (Kafka names).
#[derive(Clone, Copy, Debug)]
pub struct ReplicaConfig {
    /// `replica.lag.time.max.ms`: a follower that has not caught up with the leader's log
    /// end for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// How long an unanswered ISR proposal waits before it is sent again.
    pub isr_proposal_retry_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig { replica_lag_time_max_ms: 30_000, isr_proposal_retry_ms: 2_000 }
    }
}

/// A follower's Fetch for one partition (Fetch v12+: replica id, current leader epoch,
/// last fetched epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaFetch {
    /// The fetching replica.
    pub replica: BrokerId,
    /// The leader epoch the follower follows in.
    pub leader_epoch: i32,
    /// The follower's log end, which is its fsynced end.
    pub fetch_offset: i64,
    /// The epoch of the follower's last record.
    pub last_fetched_epoch: Option<i32>,
}

/// The leader's answer to a [`ReplicaFetch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchReply {
    /// The follower's log matches: the records from `from` (the fetch offset) to the
    /// leader's log end follow.
    Records {
        /// Where the records start.
        from: i64,
        /// The leader's high watermark.
        high_watermark: i64,
        /// The leader's log start: the follower deletes what lies before it (as far as
        /// its own high watermark).
        log_start: i64,
    },
    /// The fetch offset is below the leader's log start (the records are deleted there):
    /// the follower starts its log again, empty, at `log_start`.
    BehindLogStart {
        /// The leader's log start.
        log_start: i64,
    },
    /// The follower's last epoch does not match the leader's log: the leader's largest
    /// epoch `<=` the follower's and where it ends (`epoch` -1 when the leader has none).
    Diverging {
        /// The leader's epoch.
        epoch: i32,
        /// Where it ends in the leader's log.
        end_offset: i64,
    },
    /// Refused.
    Error(ReplicationError),
}

/// What a follower does with a [`FetchReply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowerStep {
    /// Append the reply's records at the fetch offset (the log end), then call
    /// [`super::PartitionReplica::follower_appended`] with the leader's high watermark.
    Append {
        /// The leader's high watermark.
        leader_high_watermark: i64,
        /// The leader's log start (see [`super::PartitionReplica::log_start_to_adopt`]).
        leader_log_start: i64,
    },
    /// Replace the log with an empty one starting at `offset` (the leader's log start;
    /// everything this log holds lies below it), then fetch from there.
    RestartAt {
        /// The new log start and end.
        offset: i64,
    },
    /// Truncate the log to `to` (below the log end), then fetch again.
    Truncate {
        /// The new log end.
        to: i64,
    },
    /// Wait (for newer metadata, or for the leader to learn its leadership), then fetch again.
    Backoff,
    /// The reply answers a fetch made before the role, epoch or log end changed: drop it.
    Stale,
}

/// How an acks=all produce stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// The high watermark has not passed the batch yet.
    Pending,
    /// Acknowledge.
    Done,
    /// Answer with this error.
    Failed(ReplicationError),
}

/// What applying a partition state changed in the replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// Nothing (an older or the same state).
    Unchanged,
    /// Same leader epoch; the ISR or the replica list changed.
    StateChanged,
    /// This broker leads from now on, in `leader_epoch`, which starts at `epoch_start_offset`
    /// (the local log end): stop fetching, fail nothing already acknowledged.
    BecameLeader {
        /// The new epoch.
        leader_epoch: i32,
        /// Where its records start.
        epoch_start_offset: i64,
    },
    /// This broker follows `leader` ([`crate::NO_LEADER`]: nobody to fetch from yet) in
    /// `leader_epoch`: fail pending acks=all produces, start fetching.
    BecameFollower {
        /// The leader.
        leader: BrokerId,
        /// The new epoch.
        leader_epoch: i32,
    },
    /// This broker no longer holds a replica.
    Removed,
}
