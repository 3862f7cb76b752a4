//! sluice's built-in Schema Registry: Confluent's REST API over schemas kept in the
//! compacted `_schemas` topic of the broker itself.
//!
//! - [`records`]: the topic's record layouts (Confluent's JSON keys and values);
//! - [`state`]: what the records applied in order say (subjects, versions, ids, settings);
//! - [`schema`] and [`compatibility`]: parsing each schema type and the seven levels;
//! - [`service`]: the operations, with the one-writer rule for ids and versions;
//! - [`store`]: the channel to the broker, the registry's only way to the topic;
//! - [`api`] and [`error`]: the HTTP routes, shapes and error codes.
//!
//! The registry runs on the broker's HTTP thread (tokio), not on a shard: its reads are
//! answered from memory, and only writes and the topic's tail cross to a shard.

pub mod api;
pub mod compatibility;
pub mod error;
pub mod records;
pub mod schema;
pub mod service;
pub mod state;
pub mod store;

pub use service::Registry;
