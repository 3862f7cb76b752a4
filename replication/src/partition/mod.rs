//! One broker's replica of one partition, Kafka's ISR model.
//!
//! The leader appends producers' batches, serves followers' fetches and tracks how far
//! each follower has durably got; the high watermark is the minimum of that over the
//! ISR (and the leader's own fsynced end), and acks=all answers once it passes the batch.
//! Followers fetch from their log end, which is always their fsynced end, so a follower's
//! fetch offset is a durability promise, and append what they get; a new leader epoch may
//! have left them a tail the new leader does not have, which the leader's divergence
//! answer (KIP-595's `diverging_epoch` in Fetch) makes them truncate.
//!
//! ISR changes are proposals to the controller ([`crate::controller::AlterPartition`]);
//! until the leader sees the outcome in the metadata, it counts every replica of the ISR
//! and of its proposals when computing the high watermark (Kafka's "maximal ISR"), so
//! whatever ISR the controller settles on holds every acknowledged record.

mod follower;
mod leader;
mod log_view;
mod messages;
mod replica;

pub use log_view::LogView;
pub use messages::{AckOutcome, FetchReply, FollowerStep, ReplicaConfig, ReplicaFetch, RoleChange};
pub use replica::PartitionReplica;
