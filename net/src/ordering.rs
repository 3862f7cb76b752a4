//! The connection side of sluice's ordering invariant (docs/ARCHITECTURE.md, "Ordering"):
//! for any two requests on one connection, their effects on any one partition (appends,
//! DeleteRecords) and on any one group (joins, syncs, heartbeats, leaves, commits,
//! deletes) happen in arrival order, while the requests themselves run concurrently.
//!
//! How: each request that has such effects takes an [`Admission`] when its frame is
//! decoded (in arrival order, synchronously). Its handler waits for its admission turn,
//! queues its effects at their targets — a ticket in each local partition's append line
//! or the local coordinator's line, or a message into the mesh channel to the owner shard,
//! which takes the tickets in channel order — and then lets the connection's next request
//! in. Everything after that (the writes, fsyncs, parked joins) overlaps freely.

use sluice_engine::fifo_lock::{FifoLock, Ticket, Turn};
use sluice_engine::source_order::RequestOrigin;
use std::cell::Cell;

thread_local! {
    /// Connections this shard's thread has accepted (ids are per shard, tagged with it).
    static CONNECTIONS_NUMBERED: Cell<u64> = const { Cell::new(0) };
}

/// Bits of a connection id holding the per-shard counter; the shard id sits above them.
const CONNECTION_COUNTER_BITS: u32 = 48;

/// One connection's line of ordered requests.
#[derive(Debug)]
pub struct ConnectionOrder {
    id: u64,
    next_sequence: Cell<u64>,
    line: FifoLock,
}

impl ConnectionOrder {
    /// A new connection's line; its id is unique across the broker.
    pub fn new(shard: usize) -> Self {
        let counter = CONNECTIONS_NUMBERED.with(|numbered| {
            let next = numbered.get() + 1;
            numbered.set(next);
            next
        });
        assert!(counter < 1 << CONNECTION_COUNTER_BITS, "connection ids are unique");
        ConnectionOrder {
            id: (shard as u64) << CONNECTION_COUNTER_BITS | counter,
            next_sequence: Cell::new(0),
            line: FifoLock::new(),
        }
    }

    /// The next request's place in line. Call in arrival order.
    pub fn admission(&self) -> Admission {
        let sequence = self.next_sequence.get();
        self.next_sequence.set(sequence + 1);
        Admission { ticket: self.line.ticket(), origin: RequestOrigin { source: self.id, sequence } }
    }
}

/// A request's place in its connection's line. Dropping it unused lets the next request in.
#[derive(Debug)]
pub struct Admission {
    ticket: Ticket,
    origin: RequestOrigin,
}

impl Admission {
    /// Waits until every earlier ordered request of the connection has queued its effects.
    pub async fn begin(self) -> Admitting {
        Admitting { _turn: self.ticket.turn().await, origin: self.origin }
    }
}

/// The request's turn to queue its effects; dropping it admits the connection's next
/// ordered request.
#[derive(Debug)]
pub struct Admitting {
    _turn: Turn,
    /// The request, for the targets' order checks.
    pub origin: RequestOrigin,
}

/// Waits for an optional admission's turn.
pub async fn begin(admission: Option<Admission>) -> Option<Admitting> {
    match admission {
        Some(admission) => Some(admission.begin().await),
        None => None,
    }
}
