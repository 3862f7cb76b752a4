//! The logs of a shard that hold appends not yet fsynced under an interval flush policy.
//!
//! A log adds itself when its first unflushed append arrives; the shard's flush tick
//! visits only these, so a partition without new data costs nothing per tick, however
//! many partitions the shard owns.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::task::{Poll, Waker};

/// Names (directory names) of logs with interval-policy appends to fsync.
#[derive(Debug, Default)]
pub struct PendingFlushes {
    logs: RefCell<BTreeSet<String>>,
    /// The flush tick, when it sleeps until a log is marked (same shard only).
    sleeper: RefCell<Option<Waker>>,
}

impl PendingFlushes {
    /// Records that `log` has unflushed appends (idempotent).
    pub fn mark(&self, log: &str) {
        let mut logs = self.logs.borrow_mut();
        if !logs.contains(log) {
            logs.insert(log.to_string());
        }
        drop(logs);
        if let Some(sleeper) = self.sleeper.borrow_mut().take() {
            sleeper.wake();
        }
    }

    /// Completes once some log is recorded: the flush tick waits on it instead of
    /// waking every few milliseconds while nothing is pending.
    pub async fn wait_for_any(&self) {
        futures::future::poll_fn(|cx| {
            if !self.is_empty() {
                return Poll::Ready(());
            }
            *self.sleeper.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Takes every recorded name; the caller marks again the logs it leaves unflushed.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.logs.borrow_mut())
    }

    /// Number of logs recorded.
    pub fn len(&self) -> usize {
        self.logs.borrow().len()
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.logs.borrow().is_empty()
    }
}
