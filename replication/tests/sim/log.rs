//! A partition log in memory: records with their leader epoch, of which a prefix is
//! "on disk" (fsynced). A crash keeps only that prefix.

use sluice_replication::partition::LogView;

/// One record: the epoch it was appended in by a leader, and a value unique in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimRecord {
    pub epoch: i32,
    pub value: u64,
}

#[derive(Default)]
pub struct SimLog {
    pub records: Vec<SimRecord>,
    /// How many records are fsynced.
    pub durable: usize,
    /// Grows with every truncation, so an fsync started before it cannot mark records
    /// written after it durable.
    pub generation: u64,
    /// The high watermark checkpoint (written whenever it moves).
    pub high_watermark: i64,
}

impl SimLog {
    pub fn append(&mut self, records: impl IntoIterator<Item = SimRecord>) {
        for record in records {
            let last = self.records.last().map_or(i32::MIN, |r| r.epoch);
            assert!(record.epoch >= last, "epochs go back along a log: {} after {last}", record.epoch);
            self.records.push(record);
        }
    }

    pub fn truncate(&mut self, to: i64) {
        let to = to as usize;
        assert!(to <= self.records.len());
        self.records.truncate(to);
        self.durable = self.durable.min(to);
        self.high_watermark = self.high_watermark.min(to as i64);
        self.generation += 1;
    }

    /// The crash: what was not fsynced is gone.
    pub fn crash(&mut self) {
        let durable = self.durable as i64;
        self.truncate(durable);
    }
}

impl LogView for SimLog {
    fn log_start(&self) -> i64 {
        0
    }

    fn log_end(&self) -> i64 {
        self.records.len() as i64
    }

    fn durable_end(&self) -> i64 {
        self.durable as i64
    }

    fn last_epoch(&self) -> Option<i32> {
        self.records.last().map(|r| r.epoch)
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        // Epochs never decrease along a log: the records of epochs <= `epoch` are a prefix.
        let end = self.records.partition_point(|r| r.epoch <= epoch);
        let found = self.records[..end].last()?.epoch;
        Some((found, end as i64))
    }
}
