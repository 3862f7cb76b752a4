//! Thread-per-core runtime: one pinned glommio executor per shard, and the set of
//! partition logs each shard owns.
//!
//! A partition log is only ever touched by the executor that owns it, so nothing here is
//! `Send` or locked; other shards reach a partition by sending its owner a message.

use crate::config::LogConfig;
use crate::error::{EngineError, Result};
use crate::log::{PartitionLog, RecoveryReport};
use crate::pending_flushes::PendingFlushes;
use glommio::{CpuSet, LocalExecutorBuilder, Placement};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of the shard executors.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards (executors).
    pub shards: usize,
    /// Memory glommio registers for I/O per executor. It is locked memory: without root,
    /// `ulimit -l` bounds it (8 MiB here, shared by all executors), so keep it ≤ 2 MiB.
    pub io_memory_bytes: usize,
    /// Spin this long before parking an idle executor: meant to lower wake-up latency for
    /// more CPU. `None` (the default) parks at once: measured here, 50 µs of spin cost 20%
    /// more broker CPU per GB ingested (glommio reads the clock on every spin) and gained
    /// no end-to-end latency beyond run-to-run spread.
    pub spin_before_park: Option<Duration>,
    /// Pin shard i to the i-th online CPU (wrapping when there are more shards than CPUs).
    pub pin_to_cpus: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: online_cpus().len().max(1),
            io_memory_bytes: 2 << 20,
            spin_before_park: None,
            pin_to_cpus: true,
        }
    }
}

/// The ids of online CPUs, sorted.
pub fn online_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = CpuSet::online().map(|set| set.into_iter().map(|l| l.cpu).collect()).unwrap_or_default();
    cpus.sort_unstable();
    cpus
}

/// Starts one executor per shard, each running `body(shard_id)` to completion, and waits
/// for all of them. Each shard first opens the DMA probe file under `data_dir`
/// (DESIGN.md §6) so glommio's disk probing does not break reads.
pub fn run_shards<T, B, F>(config: &RuntimeConfig, data_dir: &Path, body: B) -> Result<Vec<T>>
where
    B: Fn(usize) -> F + Send + Clone + 'static,
    F: Future<Output = Result<T>> + 'static,
    T: Send + 'static,
{
    if config.shards == 0 {
        return Err(EngineError::Config("at least one shard is needed".into()));
    }
    let data_dir = &std::path::absolute(data_dir).map_err(|e| EngineError::io("resolve", data_dir, e))?;
    crate::fs::create_dir_durably(data_dir)?;
    let cpus = online_cpus();
    let mut handles = Vec::with_capacity(config.shards);
    for shard_id in 0..config.shards {
        let placement = match (config.pin_to_cpus, cpus.is_empty()) {
            (true, false) => Placement::Fixed(cpus[shard_id % cpus.len()]),
            _ => Placement::Unbound,
        };
        let mut builder =
            LocalExecutorBuilder::new(placement).name(&format!("shard-{shard_id}")).io_memory(config.io_memory_bytes);
        if let Some(spin) = config.spin_before_park {
            builder = builder.spin_before_park(spin);
        }
        let body = body.clone();
        let data_dir = data_dir.to_path_buf();
        let handle = builder
            .spawn(move || async move {
                crate::fs::ensure_dma_probe(&data_dir).await?;
                body(shard_id).await
            })
            .map_err(|e| EngineError::io("start executor", format!("shard-{shard_id}"), e))?;
        handles.push(handle);
    }
    let mut results = Vec::with_capacity(handles.len());
    for (shard_id, handle) in handles.into_iter().enumerate() {
        let result = handle.join().map_err(|e| EngineError::io("join executor", format!("shard-{shard_id}"), e))?;
        results.push(result?);
    }
    Ok(results)
}

/// Directory name of a partition, as Kafka names it: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Suffix of a partition directory being deleted; what remains of one after a crash is
/// removed by [`remove_deleted_partitions`].
pub const DELETED_SUFFIX: &str = ".deleted";

/// Removes directories left by deletions a crash interrupted (run once at startup,
/// before any shard opens its partitions).
pub fn remove_deleted_partitions(data_dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(data_dir).map_err(|e| EngineError::io("list", data_dir, e))?.flatten() {
        if entry.file_name().to_str().is_some_and(|n| n.ends_with(DELETED_SUFFIX)) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| EngineError::io("remove directory", &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Splits a partition directory name back into topic and partition.
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok().filter(|p| *p >= 0)?;
    (!topic.is_empty()).then_some((topic, partition))
}

/// The partitions one shard owns.
pub struct Shard {
    id: usize,
    data_dir: PathBuf,
    logs: RefCell<BTreeMap<String, Rc<PartitionLog>>>,
    /// The logs [`Shard::flush_due`] visits.
    pending_flushes: Rc<PendingFlushes>,
}

impl Shard {
    /// An empty shard storing partitions under `data_dir`.
    pub fn new(id: usize, data_dir: &Path) -> Self {
        Shard {
            id,
            data_dir: data_dir.to_path_buf(),
            logs: RefCell::new(BTreeMap::new()),
            pending_flushes: Rc::new(PendingFlushes::default()),
        }
    }

    /// This shard's id (its executor index).
    pub fn id(&self) -> usize {
        self.id
    }

    /// Opens (or creates) a partition's log on this shard, recovering it.
    pub async fn open_partition(
        &self,
        dir_name: &str,
        config: LogConfig,
    ) -> Result<(Rc<PartitionLog>, RecoveryReport)> {
        if let Some(log) = self.partition(dir_name) {
            return Ok((log, RecoveryReport::default()));
        }
        let (log, report) = PartitionLog::open(&self.data_dir.join(dir_name), config).await?;
        let log = Rc::new(log);
        log.report_pending_flushes_to(self.pending_flushes.clone());
        self.logs.borrow_mut().insert(dir_name.to_string(), log.clone());
        Ok((log, report))
    }

    /// The log of a partition this shard owns.
    pub fn partition(&self, dir_name: &str) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(dir_name).cloned()
    }

    /// All logs of this shard, by directory name.
    pub fn partitions(&self) -> Vec<Rc<PartitionLog>> {
        self.logs.borrow().values().cloned().collect()
    }

    /// Starts the fsyncs that [`crate::FlushPolicy::Interval`] logs are due for, all at
    /// once, and waits for them. Call it often (the interval's resolution is the call rate).
    /// Visits only the logs holding interval-policy appends not yet fsynced, so its cost
    /// does not grow with idle partitions.
    pub async fn flush_due(&self) {
        if self.pending_flushes.is_empty() {
            return;
        }
        let logs: Vec<Rc<PartitionLog>> =
            self.pending_flushes.take().iter().filter_map(|name| self.partition(name)).collect();
        let results = futures::future::join_all(logs.iter().map(|log| log.flush_if_due())).await;
        for (log, result) in logs.iter().zip(results) {
            if let Err(error) = result {
                tracing::error!(shard = self.id, partition = log.name(), %error, "interval flush failed");
            }
            // Not due yet, failed, or appended to while its fsync ran: visit it again.
            if log.has_interval_flush_pending() {
                self.pending_flushes.mark(log.name());
            }
        }
    }

    /// Logs the flush tick will visit (those with interval-policy appends to fsync).
    pub fn pending_flush_count(&self) -> usize {
        self.pending_flushes.len()
    }

    /// Completes when some log has interval-policy appends to fsync (at once if one has).
    pub async fn wait_for_pending_flushes(&self) {
        self.pending_flushes.wait_for_any().await
    }

    /// One retention pass over every log. Errors are logged per partition; one failed log
    /// does not stop the others.
    pub async fn apply_retention(&self) {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        for log in self.partitions() {
            match log.apply_retention(now_ms).await {
                Ok(report) if report.segments_deleted > 0 => tracing::info!(
                    shard = self.id,
                    partition = log.name(),
                    segments = report.segments_deleted,
                    bytes = report.bytes_deleted,
                    "retention deleted segments"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(shard = self.id, partition = log.name(), %error, "retention failed"),
            }
        }
    }

    /// One compaction pass over every log whose `cleanup.policy` includes `compact`
    /// (see [`PartitionLog::compact`]); logs whose closed segments did not change since
    /// their last pass are skipped without I/O, so calling it often is cheap. Errors are
    /// logged per partition; one failed log does not stop the others. Returns the reports
    /// of the logs that were compacted, by directory name.
    pub async fn compact_all(&self) -> Vec<(String, crate::CompactionReport)> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut reports = Vec::new();
        for log in self.partitions() {
            match log.compact(now_ms).await {
                Ok(report) if report.skipped => {}
                Ok(report) => reports.push((log.name().to_string(), report)),
                Err(error) => tracing::error!(shard = self.id, partition = log.name(), %error, "compaction failed"),
            }
        }
        reports
    }

    /// Deletes a partition this shard owns (DeleteTopics): the log is closed and its
    /// directory renamed to `<name>.deleted` (one durable step, after which it is gone for
    /// good) and then removed. Returns false if the shard does not own it.
    pub async fn delete_partition(&self, dir_name: &str) -> Result<bool> {
        let Some(log) = self.logs.borrow_mut().remove(dir_name) else {
            return Ok(false);
        };
        if let Err(error) = log.close().await {
            // Deleting a failed log is fine: its data is going anyway.
            tracing::warn!(shard = self.id, partition = dir_name, %error, "closing a deleted partition failed");
        }
        crate::fs::delete_dir_durably(&self.data_dir.join(dir_name)).await?;
        Ok(true)
    }

    /// Replaces a partition's log with an empty one starting at `log_start` (a follower
    /// whose log ends before its leader's log start: Kafka's truncateFullyAndStartAt). The
    /// old log is deleted first; a crash before the new one is recorded leaves no log,
    /// which opens empty at 0 again (and the follower restarts it again).
    pub async fn restart_partition_at(
        &self,
        dir_name: &str,
        config: LogConfig,
        log_start: i64,
    ) -> Result<(Rc<PartitionLog>, RecoveryReport)> {
        assert!(log_start >= 0, "a log starts at a valid offset");
        self.delete_partition(dir_name).await?;
        let dir = self.data_dir.join(dir_name);
        crate::fs::create_dir_durably(&dir)?;
        crate::fs::write_checkpoint(&dir.join(crate::log::LOG_START_CHECKPOINT), log_start.to_string().into_bytes())
            .await?;
        self.open_partition(dir_name, config).await
    }

    /// Flushes and closes every log (graceful shutdown).
    pub async fn close_all(&self) -> Result<()> {
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        let mut first_error = None;
        for log in logs.values() {
            if let Err(error) = log.close().await {
                tracing::error!(shard = self.id, partition = log.name(), %error, "close failed");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names_round_trip_with_dashes_in_topics() {
        assert_eq!(parse_partition_dir_name(&partition_dir_name("my-topic", 12)), Some(("my-topic", 12)));
        assert_eq!(parse_partition_dir_name("meta"), None);
        assert_eq!(parse_partition_dir_name("t--1"), Some(("t-", 1)), "a topic may end in a dash");
        assert_eq!(parse_partition_dir_name("t-x"), None);
        assert_eq!(parse_partition_dir_name("-3"), None);
    }
}
