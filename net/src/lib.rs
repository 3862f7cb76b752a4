//! The Kafka protocol server of sluice.
//!
//! A request's path, top to bottom: [`server`] reads a frame and decodes it (with the
//! `kafka-protocol` crate), [`handlers`] turns it into per-partition calls, [`routing`]
//! runs each call on the shard that owns the partition ([`partition_ops`]), and the
//! response goes back in request order. Metadata changes go through shard 0
//! ([`control`], [`metadata`]). [`broker`] starts and stops it all. Shard 0 also serves
//! the [`admin`] socket and the Prometheus exposition from per-shard [`metrics`]; the
//! [`http`] thread serves `/metrics` and the Schema Registry, whose topic access runs on
//! shard 0 ([`schema_store`]).

pub mod admin;
pub mod alloc;
pub mod broker;
pub mod cluster;
pub mod context;
pub mod control;
pub mod coordination;
pub mod error;
pub mod frame_pieces;
pub mod group;
pub mod handlers;
pub mod http;
mod internal_codec;
pub mod metadata;
pub mod metrics;
pub mod ordering;
pub mod partition_ops;
pub mod producer_ids;
pub mod receive_low_water;
pub mod response_encoding;
pub mod routing;
pub mod schema_store;
pub mod security;
pub mod server;
pub mod topic_config;
pub mod txn;

pub use admin::{AdminOptions, LogLevelControl};
pub use broker::{run, BrokerOptions};
pub use context::BrokerConfig;
pub use http::HttpOptions;
