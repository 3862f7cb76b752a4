//! The one Kafka client of sluice, for the `sluice` command-line tools, the load generator
//! and (next) replication followers: one connection per broker ([`connection`]), over
//! plain TCP or TLS ([`stream`]) and with SASL if asked ([`security`]), many requests in
//! flight on one ([`pipeline`]), the requests the tools make ([`ops`]), Kafka's default
//! key partitioner ([`partitioner`]) and decoding of fetched record data ([`records`]).
//! It runs on a glommio executor and shares the server's `kafka-protocol` schemas, so
//! there is one codec in the project.

pub mod connection;
pub mod frame;
pub mod ops;
pub mod partitioner;
pub mod pipeline;
pub mod records;
pub mod security;
pub mod stream;

pub use connection::{ClientError, KafkaConnection};
pub use pipeline::PipelinedConnection;
pub use security::{ConnectionSecurity, SaslCredentials};
