//! sluice's benchmarks. `storage`: the engine alone, against the raw bandwidth of the
//! same disk. (The Kafka-protocol load generator joins this crate with the broker.)

pub mod raw_disk;
pub mod report;
pub mod storage;
