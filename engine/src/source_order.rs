//! The check behind sluice's ordering invariant: requests from one source (a client
//! connection) take effect on one partition or group in the order the source sent them.
//!
//! The order itself comes from [`crate::fifo_lock`] tickets taken in arrival order; this
//! only watches that it held. Each log (and each group coordinator) remembers the last
//! sequence number of its most recent sources; a source whose number goes backwards is a
//! broken invariant, reported by [`SourceOrder::admit`].

/// Where an operation came from: a source (one client connection, broker-wide unique id)
/// and the position of its request among that source's requests (arrival order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The source, e.g. a connection id.
    pub source: u64,
    /// The request's place among the source's requests. Equal numbers are one request
    /// touching the same target twice.
    pub sequence: u64,
}

/// Sources remembered per target: a target rarely has more writers at once than this,
/// and forgetting an old source only loses the check, never the order.
const SOURCES_REMEMBERED: usize = 16;

/// The last sequence seen from each of a target's recent sources.
#[derive(Debug, Default, Clone)]
pub struct SourceOrder {
    recent: [Option<RequestOrigin>; SOURCES_REMEMBERED],
    /// Slot the next new source overwrites (the oldest).
    next_slot: usize,
}

/// An operation that took effect after a later one from the same source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder {
    /// The operation now taking effect.
    pub origin: RequestOrigin,
    /// The later request of the same source that already took effect.
    pub seen: u64,
}

impl SourceOrder {
    /// Records that `origin`'s operation takes effect now; an error if a later request of
    /// the same source already did.
    pub fn admit(&mut self, origin: RequestOrigin) -> Result<(), OutOfOrder> {
        let slot = self.recent.iter().position(|seen| seen.is_some_and(|seen| seen.source == origin.source));
        match slot {
            Some(slot) => {
                let seen = self.recent[slot].expect("found above").sequence;
                if origin.sequence < seen {
                    return Err(OutOfOrder { origin, seen });
                }
                self.recent[slot] = Some(origin);
            }
            None => {
                self.recent[self.next_slot] = Some(origin);
                self.next_slot = (self.next_slot + 1) % SOURCES_REMEMBERED;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(source: u64, sequence: u64) -> RequestOrigin {
        RequestOrigin { source, sequence }
    }

    #[test]
    fn sequences_of_a_source_must_not_go_back() {
        let mut order = SourceOrder::default();
        order.admit(origin(1, 5)).unwrap();
        order.admit(origin(2, 1)).unwrap();
        order.admit(origin(1, 5)).unwrap(); // the same request, another batch
        order.admit(origin(1, 7)).unwrap();
        assert_eq!(order.admit(origin(1, 6)), Err(OutOfOrder { origin: origin(1, 6), seen: 7 }));
        order.admit(origin(2, 2)).unwrap();
    }

    #[test]
    fn old_sources_are_forgotten_first() {
        let mut order = SourceOrder::default();
        order.admit(origin(0, 9)).unwrap();
        for source in 1..=SOURCES_REMEMBERED as u64 {
            order.admit(origin(source, 1)).unwrap();
        }
        // Source 0 was pushed out: its check is lost, nothing else.
        order.admit(origin(0, 3)).unwrap();
        assert!(order.admit(origin(SOURCES_REMEMBERED as u64, 0)).is_err(), "a recent source is still checked");
    }
}
