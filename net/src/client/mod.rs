//! A small Kafka client, for the `sluice` command-line tools (and later the load
//! generator and replication followers): one connection per broker ([`connection`]),
//! Kafka's default key partitioner ([`partitioner`]) and decoding of fetched record data
//! ([`records`]). It runs on a glommio executor and shares the server's `kafka-protocol`
//! schemas, so there is one codec in the project.

pub mod connection;
pub mod ops;
pub mod partitioner;
pub mod pipeline;
pub mod records;

pub use connection::{ClientError, KafkaConnection};
pub use pipeline::PipelinedConnection;
