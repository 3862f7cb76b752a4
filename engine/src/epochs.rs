//! Leader epoch → start offset history of a partition (Kafka's leader-epoch checkpoint),
//! the basis of OffsetsForLeaderEpoch and of follower truncation after a leader change.

/// Ordered (epoch, start offset) entries; both strictly increase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochs {
    /// Whether appending a batch of `epoch` at `offset` starts a new epoch entry.
    pub fn is_new_epoch(&self, epoch: i32) -> bool {
        epoch >= 0 && self.entries.last().is_none_or(|(last, _)| epoch > *last)
    }

    /// Records that `epoch` starts at `start_offset`.
    pub fn push(&mut self, epoch: i32, start_offset: i64) {
        assert!(self.is_new_epoch(epoch), "epochs only grow");
        assert!(self.entries.last().is_none_or(|(_, start)| start_offset >= *start));
        self.entries.push((epoch, start_offset));
    }

    /// Drops epochs that start at or after `offset` (log truncated to `offset`).
    pub fn truncate_from(&mut self, offset: i64) {
        self.entries.retain(|(_, start)| *start < offset);
    }

    /// The latest epoch, if any.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|(epoch, _)| *epoch)
    }

    /// OffsetsForLeaderEpoch: the largest epoch `<= epoch` and the offset where it ends
    /// (the start of the next epoch, or `log_end` for the latest). `None` if `epoch` is
    /// older than every entry.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let at = self.entries.partition_point(|(e, _)| *e <= epoch);
        let (found, _) = *self.entries.get(at.checked_sub(1)?)?;
        let end = self.entries.get(at).map_or(log_end, |(_, start)| *start);
        Some((found, end))
    }

    /// Text form: one "epoch start_offset" line per entry.
    pub fn encode(&self) -> Vec<u8> {
        self.entries.iter().map(|(e, s)| format!("{e} {s}\n")).collect::<String>().into_bytes()
    }

    /// Parses [`LeaderEpochs::encode`]'s form; entries out of order end the parse (a
    /// damaged checkpoint loses only what follows the damage).
    pub fn decode(text: &str) -> Self {
        let mut epochs = LeaderEpochs::default();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let parsed = (parts.next().and_then(|e| e.parse().ok()), parts.next().and_then(|s| s.parse().ok()));
            match parsed {
                (Some(epoch), Some(start))
                    if epochs.is_new_epoch(epoch) && epochs.entries.last().is_none_or(|(_, s)| start >= *s) =>
                {
                    epochs.push(epoch, start)
                }
                _ => break,
            }
        }
        epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offset_is_the_next_epochs_start_or_the_log_end() {
        let mut epochs = LeaderEpochs::default();
        epochs.push(1, 0);
        epochs.push(3, 100);
        epochs.push(4, 250);
        assert_eq!(epochs.end_offset_for(0, 300), None);
        assert_eq!(epochs.end_offset_for(1, 300), Some((1, 100)));
        assert_eq!(epochs.end_offset_for(2, 300), Some((1, 100)));
        assert_eq!(epochs.end_offset_for(4, 300), Some((4, 300)));
        assert_eq!(epochs.end_offset_for(9, 300), Some((4, 300)));
        epochs.truncate_from(250);
        assert_eq!(epochs.latest(), Some(3));
        assert_eq!(LeaderEpochs::decode(std::str::from_utf8(&epochs.encode()).unwrap()), epochs);
        assert_eq!(LeaderEpochs::decode("1 0\n3 100\ngarbage\n5 900\n").latest(), Some(3));
    }
}
