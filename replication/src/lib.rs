//! The cluster protocol of sluice, as state machines without I/O.
//!
//! Kafka's split (DESIGN.md §9): a controller quorum keeps the metadata (brokers, topics,
//! partitions with their replicas, ISR, leader and epochs) as a replicated log of
//! [`metadata::MetadataRecord`]s; each partition is replicated by its followers fetching
//! from its leader, the high watermark being the minimum over the in-sync replicas.
//!
//! Nothing here reads a clock, a socket or a disk: time, messages and log facts come in as
//! arguments, decisions go out as values. The broker drives these types from its glommio
//! shards; `tests/simulation.rs` drives the same types over a simulated network, clock and
//! disk, so one seed replays a whole run (TigerBeetle's VOPR, STYLE.md).
//!
//! - [`metadata`]: the records, and the image they build ([`metadata::MetadataImage`]).
//! - [`controller`]: what the active controller decides (registration, heartbeats and
//!   fencing, leader election from the ISR, AlterPartition, topic creation).
//! - [`partition`]: one broker's replica of one partition: leader (follower progress, high
//!   watermark, ISR changes, acks=all) or follower (what to fetch, when to truncate).

pub mod broker_link;
pub mod controller;
pub mod error;
pub mod ids;
pub mod metadata;
pub mod partition;
pub mod quorum;

pub use error::ReplicationError;
pub use ids::{BrokerId, PartitionKey, NO_LEADER};
