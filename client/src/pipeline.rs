//! A Kafka connection with many requests in flight.
//!
//! Kafka answers the requests of one connection in the order they were sent, so a
//! pipelined client needs no correlation table: a writer task sends frames as they come,
//! and a reader task hands each response frame to the oldest request still waiting. Both
//! queues are filled in one synchronous step per request, so their orders agree. A
//! semaphore bounds the requests outstanding (Kafka's
//! `max.in.flight.requests.per.connection`); a caller that finds it full waits for a
//! response before its request is written. Requests go on the wire in the order `send`
//! was first polled: callers queue in a [`FifoLock`] before the semaphore, because
//! glommio's semaphore lets a newcomer take a freed permit ahead of a woken waiter, and
//! a Kafka client's send order is its order of appends.
//!
//! The tasks run on the glommio executor that created the connection and are cancelled
//! when it is dropped. After any socket error every waiting and later request fails.

use crate::connection::{decode_response, encode_request, read_response_frame, BrokerVersions, ClientError, Result};
use crate::stream::BrokerStream;
use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use futures_lite::io::{AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use glommio::sync::Semaphore;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Request, StrBytes};
use sluice_engine::fifo_lock::FifoLock;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Bytes the writer gathers before a send (several small requests per syscall).
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// A request waiting for its response frame.
type Waiter = oneshot::Sender<Result<Bytes>>;

/// Why the connection stopped working, shared by its tasks and callers.
#[derive(Default)]
struct Broken(RefCell<Option<String>>);

impl Broken {
    fn set(&self, reason: &str) {
        self.0.borrow_mut().get_or_insert_with(|| reason.to_string());
    }

    fn error(&self, address: &str) -> Option<ClientError> {
        self.0.borrow().as_ref().map(|reason| ClientError::Io {
            address: address.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, reason.clone()),
        })
    }
}

/// A connection to one broker that keeps up to `max_in_flight` requests outstanding.
/// Made by [`crate::KafkaConnection::into_pipelined`]; shared by tasks through `Rc`.
pub struct PipelinedConnection {
    address: String,
    client_id: StrBytes,
    versions: BrokerVersions,
    next_correlation_id: Cell<i32>,
    in_flight: Semaphore,
    /// Callers in send order; only the front one waits for an in-flight permit.
    send_line: FifoLock,
    frames: mpsc::UnboundedSender<Bytes>,
    waiters: mpsc::UnboundedSender<Waiter>,
    broken: Rc<Broken>,
    /// Dropping a glommio task cancels it: the tasks end with the connection.
    _writer: glommio::Task<()>,
    _reader: glommio::Task<()>,
}

impl PipelinedConnection {
    /// Starts the writer and reader tasks over a connected, version-negotiated socket.
    pub(super) fn start(
        address: String,
        client_id: StrBytes,
        versions: BrokerVersions,
        reader: BufReader<ReadHalf<BrokerStream>>,
        writer: WriteHalf<BrokerStream>,
        next_correlation_id: i32,
        max_in_flight: usize,
    ) -> Self {
        assert!(max_in_flight > 0, "a connection needs room for one request");
        let broken = Rc::new(Broken::default());
        let (frames, frame_queue) = mpsc::unbounded();
        let (waiters, waiter_queue) = mpsc::unbounded();
        let writer_task = glommio::spawn_local(write_frames(frame_queue, writer, broken.clone()));
        let reader_task = glommio::spawn_local(read_responses(waiter_queue, reader, address.clone(), broken.clone()));
        PipelinedConnection {
            address,
            client_id,
            versions,
            next_correlation_id: Cell::new(next_correlation_id),
            in_flight: Semaphore::new(max_in_flight as u64),
            send_line: FifoLock::new(),
            frames,
            waiters,
            broken,
            _writer: writer_task,
            _reader: reader_task,
        }
    }

    /// The address this connection was made to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends a request at the negotiated version and waits for its response; other
    /// requests may be sent meanwhile.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.negotiated_version::<R>()?;
        let turn = self.send_line.lock().await;
        let _permit = self.in_flight.acquire_permit(1).await.expect("the semaphore is never closed");
        let (correlation_id, frame) = self.encode(request, version)?;
        let (waiter, response) = oneshot::channel();
        self.enqueue(frame, Some(waiter))?;
        drop(turn);
        let body = response.await.map_err(|_| self.broken_error())??;
        decode_response::<R>(body, version, correlation_id, &self.address)
    }

    /// Sends a request the broker does not answer (Produce with acks=0).
    pub async fn send_without_response<R: Request>(&self, request: &R) -> Result<()> {
        let version = self.negotiated_version::<R>()?;
        let _turn = self.send_line.lock().await;
        let (_, frame) = self.encode(request, version)?;
        self.enqueue(frame, None)
    }

    fn negotiated_version<R: Request>(&self) -> Result<i16> {
        let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
        self.versions.version_for(key, R::VERSIONS.max)
    }

    fn encode<R: Request>(&self, request: &R, version: i16) -> Result<(i32, Bytes)> {
        let key = ApiKey::try_from(R::KEY).expect("kafka-protocol requests have known keys");
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id.set(correlation_id.wrapping_add(1));
        let frame = encode_request(key, version, correlation_id, &self.client_id, request).map_err(|reason| {
            ClientError::Protocol {
                address: self.address.clone(),
                reason: format!("cannot encode {key:?} v{version}: {reason}"),
            }
        })?;
        Ok((correlation_id, frame))
    }

    /// Queues a frame for the writer and its waiter for the reader, in one step, so that
    /// the reader's order is the order on the wire.
    fn enqueue(&self, frame: Bytes, waiter: Option<Waiter>) -> Result<()> {
        if let Some(error) = self.broken.error(&self.address) {
            return Err(error);
        }
        self.frames.unbounded_send(frame).map_err(|_| self.broken_error())?;
        if let Some(waiter) = waiter {
            self.waiters.unbounded_send(waiter).map_err(|_| self.broken_error())?;
        }
        Ok(())
    }

    fn broken_error(&self) -> ClientError {
        self.broken.error(&self.address).unwrap_or_else(|| ClientError::Io {
            address: self.address.clone(),
            source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the connection's tasks stopped"),
        })
    }
}

/// Writes frames in order; flushes whenever no more are queued.
async fn write_frames(mut frames: mpsc::UnboundedReceiver<Bytes>, writer: WriteHalf<BrokerStream>, broken: Rc<Broken>) {
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer);
    while let Some(frame) = frames.next().await {
        let mut result = writer.write_all(&frame).await;
        while result.is_ok() {
            match frames.try_recv() {
                Ok(frame) => result = writer.write_all(&frame).await,
                _ => break,
            }
        }
        if let Err(error) = result.and(writer.flush().await) {
            broken.set(&format!("write failed: {error}"));
            return;
        }
    }
}

/// Hands each response frame to the oldest waiting request. On a read error, that
/// request and every later one get the error.
async fn read_responses(
    mut waiters: mpsc::UnboundedReceiver<Waiter>,
    mut reader: BufReader<ReadHalf<BrokerStream>>,
    address: String,
    broken: Rc<Broken>,
) {
    while let Some(waiter) = waiters.next().await {
        match read_response_frame(&mut reader, &address).await {
            Ok(frame) => {
                // The caller may have given up waiting; its response is dropped.
                let _ = waiter.send(Ok(frame));
            }
            Err(error) => {
                broken.set(&error.to_string());
                let _ = waiter.send(Err(error));
                waiters.close();
                while let Ok(waiter) = waiters.try_recv() {
                    let _ = waiter.send(Err(ClientError::Io {
                        address: address.clone(),
                        source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "an earlier response failed"),
                    }));
                }
                return;
            }
        }
    }
}
