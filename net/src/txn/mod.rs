//! Transactions (issue 13): [`state`] is one transactional id's state machine, without
//! I/O; [`records`] is how that state looks in `__transaction_state`; [`coordinator`]
//! persists it there, writes the markers and aborts expired transactions; [`route`] gets a
//! request to the coordinator shard. The coordinator is the owner (in a cluster, the
//! leader) of the transactional id's `__transaction_state` partition, as groups are.

pub mod coordinator;
pub mod records;
pub mod route;
pub mod state;
