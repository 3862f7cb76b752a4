//! What a replica needs to know of its local log. The engine's `PartitionLog` answers it
//! in the broker; the simulator's in-memory log answers it in tests.

/// Facts about the local log of a partition.
pub trait LogView {
    /// The first offset still in the log.
    fn log_start(&self) -> i64;
    /// The offset the next record gets.
    fn log_end(&self) -> i64;
    /// The end of what is fsynced: a crash loses nothing below it.
    fn durable_end(&self) -> i64;
    /// The leader epoch of the last record, `None` when the log holds none.
    fn last_epoch(&self) -> Option<i32>;
    /// OffsetsForLeaderEpoch: the largest epoch `<= epoch` the log has records of, and the
    /// offset where it ends (the next epoch's start, or the log end); `None` when every
    /// record is of a later epoch or the log is empty.
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)>;
}
