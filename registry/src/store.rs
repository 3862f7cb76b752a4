//! The registry's one way to the `_schemas` topic: requests handed to the broker by a
//! function the broker gives (`sluice-net` queues them for a shard, which runs them with
//! the partition's leader rules), answered on oneshots. The registry never touches a log
//! itself, so it runs on its own thread, off the produce and fetch path.

use futures::channel::oneshot;
use std::sync::Arc;
use std::time::Duration;

/// The registry's topic: one partition, compacted.
pub const TOPIC: &str = "_schemas";

/// One record as read: its offset, key and value (`None`: null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Records read from the topic.
#[derive(Debug, Clone, Default)]
pub struct StoreRead {
    /// The records, in offset order.
    pub records: Vec<StoredRecord>,
    /// Where the next read starts.
    pub next: i64,
}

/// What the registry asks of the broker.
#[derive(Debug)]
pub enum StoreRequest {
    /// Appends records (key, value) as one batch, durable as acks=all before the answer:
    /// the offset after the last.
    Append {
        /// The records.
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        /// The offset after the batch, or why it was not written.
        reply: oneshot::Sender<Result<i64, String>>,
    },
    /// Records from `from` up to the high watermark; waits up to `max_wait` while there
    /// are none.
    Read {
        /// The first offset wanted.
        from: i64,
        /// The longest wait for a record.
        max_wait: Duration,
        /// The records, or why they cannot be read.
        reply: oneshot::Sender<Result<StoreRead, String>>,
    },
    /// The high watermark: the offset the registry must have read up to, to know every
    /// committed write.
    End {
        /// The offset, or why it is unknown.
        reply: oneshot::Sender<Result<i64, String>>,
    },
}

/// Why the broker did not answer a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The broker is shutting down: nothing more will be answered.
    #[error("the broker is shutting down")]
    Closed,
    /// The request failed; the broker says why.
    #[error("{0}")]
    Failed(String),
}

/// Hands a request to the broker; gives it back when the broker is gone.
pub type StoreSend = dyn Fn(StoreRequest) -> Result<(), StoreRequest> + Send + Sync;

/// The registry's handle on the broker.
#[derive(Clone)]
pub struct StoreClient {
    send: Arc<StoreSend>,
}

impl std::fmt::Debug for StoreClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreClient")
    }
}

impl StoreClient {
    /// A client that hands its requests to `send`.
    pub fn new(send: impl Fn(StoreRequest) -> Result<(), StoreRequest> + Send + Sync + 'static) -> StoreClient {
        StoreClient { send: Arc::new(send) }
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, String>>) -> StoreRequest,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        (self.send)(request(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?.map_err(StoreError::Failed)
    }

    /// See [`StoreRequest::Append`].
    pub async fn append(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<i64, StoreError> {
        self.ask(|reply| StoreRequest::Append { records, reply }).await
    }

    /// See [`StoreRequest::Read`].
    pub async fn read(&self, from: i64, max_wait: Duration) -> Result<StoreRead, StoreError> {
        self.ask(|reply| StoreRequest::Read { from, max_wait, reply }).await
    }

    /// See [`StoreRequest::End`].
    pub async fn end(&self) -> Result<i64, StoreError> {
        self.ask(|reply| StoreRequest::End { reply }).await
    }
}
