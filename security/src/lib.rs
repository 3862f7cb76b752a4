//! Security of sluice, as pure logic: what a connection's SASL exchange means, what a
//! principal may do, how listeners and principal-mapping rules are written. The network
//! side (TLS streams, the connection loop, the Kafka APIs) lives in `sluice-net`; the
//! replicated storage of credentials and ACLs in `sluice-replication`'s metadata.

pub mod acl;
pub mod listeners;
pub mod principal_mapping;
pub mod sasl;
pub mod tls;
