//! sluice's benchmarks. `storage`: the engine alone, against the raw bandwidth of the
//! same disk. `open_loop`: the schedule and latency recording of the Kafka-protocol load
//! generator (which joins this crate next).

pub mod open_loop;
pub mod raw_disk;
pub mod report;
pub mod storage;
