//! sluice's benchmarks.
//!
//! - `storage` ([`storage`], [`raw_disk`]): the engine alone, against the raw bandwidth of
//!   the same disk.
//! - The Kafka load generator: [`workload`] (what is sent), [`open_loop`] (schedule and
//!   latency recording with coordinated-omission correction), [`route`] (connections to
//!   partition leaders), [`producer`] and [`consumer`] (the tasks), [`stats`] (what they
//!   count), [`kafka_run`] (a whole run across worker threads) and [`kafka_report`]
//!   (tables, JSON and the latency chart).
//! - [`registry_load`]: load on a Schema Registry's REST API.

pub mod consumer;
pub mod kafka_report;
pub mod kafka_run;
pub mod open_loop;
pub mod producer;
pub mod raw_disk;
pub mod registry_load;
pub mod report;
pub mod route;
pub mod stats;
pub mod storage;
pub mod workload;
