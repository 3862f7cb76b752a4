//! The leader's side of a partition: each follower's durable progress, the high
//! watermark over the (maximal) ISR, and the ISR changes to propose.

use std::collections::{BTreeMap, BTreeSet};

use super::log_view::LogView;
use super::messages::{FetchReply, ReplicaConfig, ReplicaFetch};
use crate::ids::BrokerId;
use crate::metadata::PartitionState;

/// What the leader knows of one follower.
#[derive(Clone, Debug)]
struct FollowerProgress {
    /// The follower's fsynced log end, from its last fetch that matched the leader's log;
    /// unknown until it fetches in this leader epoch.
    log_end: Option<i64>,
    /// The last time its log end reached the leader's (Kafka's lastCaughtUpTimeMs).
    last_caught_up_ms: u64,
    /// When it last fetched, and the leader's log end then.
    last_fetch_ms: u64,
    leader_end_at_last_fetch: i64,
}

/// An ISR change sent to the controller and not yet seen in the metadata.
#[derive(Clone, Debug)]
struct Proposal {
    /// Every replica of every ISR proposed since the last partition state seen: any of
    /// them may be what the controller commits.
    maximal: BTreeSet<BrokerId>,
    sent_at_ms: u64,
}

/// The leader's state in one leader epoch.
#[derive(Debug)]
pub(super) struct LeaderState {
    pub(super) epoch_start_offset: i64,
    pub(super) high_watermark: i64,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    proposal: Option<Proposal>,
}

impl LeaderState {
    /// A leader elected at `now_ms` whose log ends at `epoch_start_offset`; followers start
    /// caught up as of now (a follower gets `replica.lag.time.max.ms` to show up).
    pub(super) fn new(
        me: BrokerId,
        state: &PartitionState,
        epoch_start_offset: i64,
        high_watermark: i64,
        now_ms: u64,
    ) -> Self {
        let mut leader = LeaderState { epoch_start_offset, high_watermark, followers: BTreeMap::new(), proposal: None };
        leader.set_replicas(me, state, epoch_start_offset, now_ms);
        leader
    }

    /// A new partition state in the same leader epoch: its ISR is the outcome of any
    /// proposal, so the proposal is done; replicas added or removed get or lose progress.
    pub(super) fn on_new_state(&mut self, me: BrokerId, state: &PartitionState, log_end: i64, now_ms: u64) {
        self.proposal = None;
        self.set_replicas(me, state, log_end, now_ms);
    }

    fn set_replicas(&mut self, me: BrokerId, state: &PartitionState, log_end: i64, now_ms: u64) {
        self.followers.retain(|r, _| state.is_replica(*r));
        for replica in state.replicas.iter().copied().filter(|r| *r != me) {
            self.followers.entry(replica).or_insert(FollowerProgress {
                log_end: None,
                last_caught_up_ms: now_ms,
                last_fetch_ms: now_ms,
                leader_end_at_last_fetch: log_end,
            });
        }
    }

    /// Serves a follower's fetch (already checked: this broker leads in the fetch's epoch,
    /// the fetcher is a replica): the divergence check, then the follower's progress.
    pub(super) fn serve_fetch(
        &mut self,
        me: BrokerId,
        state: &PartitionState,
        fetch: &ReplicaFetch,
        log: &impl LogView,
        now_ms: u64,
    ) -> FetchReply {
        if let Some(last_epoch) = fetch.last_fetched_epoch {
            match log.end_offset_for_epoch(last_epoch) {
                Some((epoch, end_offset)) if epoch == last_epoch && end_offset >= fetch.fetch_offset => {}
                Some((epoch, end_offset)) => return FetchReply::Diverging { epoch, end_offset },
                None => return FetchReply::Diverging { epoch: -1, end_offset: log.log_start() },
            }
        }
        let log_end = log.log_end();
        if fetch.fetch_offset > log_end {
            return FetchReply::Error(crate::ReplicationError::OffsetOutOfRange);
        }
        if fetch.fetch_offset < log.log_start() {
            return FetchReply::BehindLogStart { log_start: log.log_start() };
        }
        let progress = self.followers.get_mut(&fetch.replica).expect("the fetcher is a replica");
        if fetch.fetch_offset >= log_end {
            progress.last_caught_up_ms = now_ms;
        } else if fetch.fetch_offset >= progress.leader_end_at_last_fetch {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.last_fetch_ms = now_ms;
        progress.leader_end_at_last_fetch = log_end;
        progress.log_end = Some(fetch.fetch_offset);
        self.advance_high_watermark(me, state, log);
        FetchReply::Records {
            from: fetch.fetch_offset,
            high_watermark: self.high_watermark,
            log_start: log.log_start(),
        }
    }

    /// Each follower's durable log end as this leader knows it (`None` before its first
    /// fetch in this epoch).
    pub(super) fn follower_ends(&self) -> impl Iterator<Item = (BrokerId, Option<i64>)> + '_ {
        self.followers.iter().map(|(replica, progress)| (*replica, progress.log_end))
    }

    /// Raises the high watermark to the minimum durable end over the maximal ISR; returns
    /// the new one if it moved. It never moves back.
    pub(super) fn advance_high_watermark(
        &mut self,
        me: BrokerId,
        state: &PartitionState,
        log: &impl LogView,
    ) -> Option<i64> {
        let mut bound = log.durable_end();
        for replica in self.maximal_isr(state).into_iter().filter(|r| *r != me) {
            match self.followers.get(&replica).and_then(|p| p.log_end) {
                Some(end) => bound = bound.min(end),
                None => return None,
            }
        }
        if bound > self.high_watermark {
            self.high_watermark = bound;
            Some(bound)
        } else {
            None
        }
    }

    fn maximal_isr(&self, state: &PartitionState) -> BTreeSet<BrokerId> {
        let mut isr: BTreeSet<BrokerId> = state.isr.iter().copied().collect();
        if let Some(proposal) = &self.proposal {
            isr.extend(proposal.maximal.iter().copied());
        }
        isr
    }

    /// The ISR this leader would have now, if it differs from the current one and no
    /// proposal is waiting (or the waiting one is due again): followers out of sync for
    /// longer than the lag time leave; replicas whose durable end reached both the high
    /// watermark and this epoch's start join (the epoch start keeps out a replica that
    /// lacks records a deposed leader acknowledged with this leader's help).
    pub(super) fn propose_isr(
        &mut self,
        me: BrokerId,
        state: &PartitionState,
        log: &impl LogView,
        config: &ReplicaConfig,
        now_ms: u64,
    ) -> Option<Vec<BrokerId>> {
        if let Some(proposal) = &self.proposal {
            if now_ms.saturating_sub(proposal.sent_at_ms) < config.isr_proposal_retry_ms {
                return None;
            }
        }
        let log_end = log.log_end();
        let join_from = self.high_watermark.max(self.epoch_start_offset);
        let mut isr: Vec<BrokerId> = state
            .replicas
            .iter()
            .copied()
            .filter(|r| {
                if *r == me {
                    return true;
                }
                let progress = &self.followers[r];
                if state.in_isr(*r) {
                    progress.log_end == Some(log_end)
                        || now_ms.saturating_sub(progress.last_caught_up_ms) <= config.replica_lag_time_max_ms
                } else {
                    progress.log_end.is_some_and(|end| end >= join_from)
                }
            })
            .collect();
        isr.sort_unstable();
        let mut current = state.isr.clone();
        current.sort_unstable();
        if isr == current && self.proposal.is_none() {
            return None;
        }
        // A proposal equal to the current ISR is still sent when one is outstanding: it
        // replaces the outstanding one at the controller if that was never applied.
        let proposal = self.proposal.get_or_insert(Proposal { maximal: BTreeSet::new(), sent_at_ms: now_ms });
        proposal.maximal.extend(isr.iter().copied());
        proposal.sent_at_ms = now_ms;
        Some(isr)
    }
}
