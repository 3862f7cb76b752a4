//! The follower's side of a partition: what to fetch, and what a reply asks of the log.

use super::log_view::LogView;
use super::messages::{FetchReply, FollowerStep, ReplicaFetch};
use crate::ids::BrokerId;

/// The next fetch from the log end, which must be fsynced: the fetch offset tells the
/// leader that everything below it is durable here.
pub(super) fn next_fetch(me: BrokerId, leader_epoch: i32, log: &impl LogView) -> Option<ReplicaFetch> {
    if log.durable_end() != log.log_end() {
        return None;
    }
    Some(ReplicaFetch { replica: me, leader_epoch, fetch_offset: log.log_end(), last_fetched_epoch: log.last_epoch() })
}

/// What to do with the leader's reply to `fetch`, which was made in the current epoch
/// from the current log end.
pub(super) fn on_reply(reply: &FetchReply, high_watermark: i64, log: &impl LogView) -> FollowerStep {
    match *reply {
        FetchReply::Records { high_watermark: leader_high_watermark, log_start, .. } => {
            FollowerStep::Append { leader_high_watermark, leader_log_start: log_start }
        }
        FetchReply::BehindLogStart { log_start } if log_start > log.log_end() => {
            // Everything here lies below the leader's log start, so none of it is a record
            // the leader still serves; this replica is not in the ISR (its log ends below
            // the leader's high watermark), so no acknowledgement counts on it.
            assert!(high_watermark <= log.log_end(), "a follower's high watermark is within its log");
            FollowerStep::RestartAt { offset: log_start }
        }
        FetchReply::BehindLogStart { .. } => FollowerStep::Backoff,
        FetchReply::Diverging { epoch, end_offset } => {
            // KIP-595's rule: truncate to the end of the leader's epoch if this log has that
            // epoch too, else to this log's end of its own largest epoch below it; the next
            // fetch repeats the check from there.
            let to = match log.end_offset_for_epoch(epoch) {
                Some((own_epoch, own_end)) if own_epoch == epoch => own_end.min(end_offset),
                Some((_, own_end)) => own_end,
                None => log.log_start(),
            };
            if to >= log.log_end() {
                return FollowerStep::Backoff;
            }
            assert!(
                to >= high_watermark,
                "a leader's divergence answer would truncate committed records: to {to} < high watermark {high_watermark}"
            );
            FollowerStep::Truncate { to }
        }
        FetchReply::Error(_) => FollowerStep::Backoff,
    }
}
