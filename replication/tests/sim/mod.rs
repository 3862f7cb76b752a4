//! A deterministic simulator of a sluice cluster's replication protocol: the crate's
//! controller and partition replicas over a simulated clock, network (drops, delays,
//! reordering, cuts) and disk (fsync latency, crashes losing the unflushed tail), with
//! the protocol's invariants checked after every event. One seed is one whole run.

pub mod checker;
pub mod log;
pub mod rng;
pub mod world;
