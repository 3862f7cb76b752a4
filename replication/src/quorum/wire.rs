//! The controller listener's protocol: length-prefixed JSON frames, one request and its
//! response at a time per connection. Raft's RPCs between controllers and the brokers'
//! requests to the active controller share it. (Low volume: metadata, heartbeats.)

use std::io;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::types::MetadataRaft;
use crate::controller::{AlterPartition, Reassignment, SecurityChange, TopicChange};
use crate::metadata::{BrokerRegistration, MetadataImage, PartitionState};
use crate::{BrokerId, PartitionKey};

/// Frames above this are refused (a snapshot of a very large cluster would need chunking).
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// A request on the controller listener.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft: replicate entries (or heartbeat).
    AppendEntries(AppendEntriesRequest<MetadataRaft>),
    /// Raft: a vote.
    Vote(VoteRequest<MetadataRaft>),
    /// Raft: a whole snapshot for a controller too far behind.
    InstallSnapshot {
        /// The sender's vote.
        vote: VoteOf<MetadataRaft>,
        /// The snapshot's position.
        meta: SnapshotMetaOf<MetadataRaft>,
        /// The snapshot (the image as JSON).
        data: Vec<u8>,
    },
    /// A broker's request to the active controller.
    Broker(BrokerRequest),
}

/// The answer to a [`Request`]; Raft errors travel as text.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// To [`Request::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<MetadataRaft>, String>),
    /// To [`Request::Vote`].
    Vote(Result<VoteResponse<MetadataRaft>, String>),
    /// To [`Request::InstallSnapshot`].
    InstallSnapshot(Result<SnapshotResponse<MetadataRaft>, String>),
    /// To [`Request::Broker`].
    Broker(BrokerResponse),
}

/// What a broker asks the controller (Kafka: BrokerRegistration, BrokerHeartbeat,
/// AlterPartition, CreateTopics, ...; and the metadata fetch KRaft brokers do).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BrokerRequest {
    /// Register this process.
    Register(BrokerRegistration),
    /// Keep the session, with the broker epoch the registration gave.
    Heartbeat {
        /// The broker.
        broker: BrokerId,
        /// Its broker epoch.
        broker_epoch: i64,
    },
    /// A leader's ISR change.
    AlterPartition(AlterPartition),
    /// The broker is stopping: move its leaderships now (Kafka's controlled shutdown).
    ControlledShutdown {
        /// The broker.
        broker: BrokerId,
        /// Its broker epoch.
        broker_epoch: i64,
    },
    /// Create a topic.
    CreateTopic {
        /// The name.
        name: String,
        /// Partition count.
        partitions: i32,
        /// Replicas per partition.
        replication_factor: usize,
        /// Topic configs set at creation.
        configs: std::collections::BTreeMap<String, String>,
        /// Each partition's replicas, when assigned by hand (the count then is theirs).
        #[serde(default)]
        assignments: Option<Vec<Vec<BrokerId>>>,
    },
    /// Delete topics, add partitions, change topic configs.
    ChangeTopics(Vec<TopicChange>),
    /// Move partitions to new replicas, or cancel their moves (AlterPartitionReassignments).
    AlterReassignments(Vec<Reassignment>),
    /// Preferred-leader elections (ElectLeaders).
    ElectPreferredLeaders(Vec<PartitionKey>),
    /// Set or remove users' SCRAM credentials, add or remove ACL bindings
    /// (AlterUserScramCredentials, CreateAcls, DeleteAcls); answered with
    /// [`BrokerResponse::Results`].
    ChangeSecurity(Vec<SecurityChange>),
    /// The metadata image, if newer than `known` applied records; waits up to `wait_ms`
    /// for a newer one (a long poll, so brokers learn changes at once).
    FetchMetadata {
        /// The version the broker has.
        known: u64,
        /// How long to wait for a newer image.
        #[serde(default)]
        wait_ms: u64,
    },
}

/// The controller's answer to a [`BrokerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum BrokerResponse {
    /// Registered with this broker epoch.
    Registered {
        /// The broker epoch.
        broker_epoch: i64,
    },
    /// Done; the image version after it.
    Done {
        /// Applied records after the change.
        applied_records: u64,
    },
    /// Done for some items of a request and refused for others, in request order: `None`
    /// for done, else the Kafka error code and why; the image version after it.
    Results {
        /// Applied records after the change.
        applied_records: u64,
        /// One per item.
        results: Vec<Option<(i16, String)>>,
    },
    /// The new partition state after an AlterPartition.
    Partition(PartitionState),
    /// The image (`None`: the broker's is current).
    Metadata(Option<Box<MetadataImage>>),
    /// This controller is not the active one; try the one named, if known.
    NotController {
        /// The active controller's id and address, if this one knows it.
        leader: Option<(u64, String)>,
    },
    /// Refused with a Kafka error code.
    Error {
        /// The Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
}

/// Writes one frame.
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    if body.len() > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a {}-byte frame is too large", body.len())));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

/// Reads one frame; `Ok(None)` when the peer closed between frames.
pub async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> io::Result<Option<T>> {
    let mut length = [0u8; 4];
    match stream.read_exact(&mut length).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a {length}-byte frame is too large")));
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A client connection to one controller, made on first use and again after any error.
pub struct ControllerConnection {
    address: String,
    stream: Option<TcpStream>,
}

impl ControllerConnection {
    /// A connection to `address` (not opened yet).
    pub fn new(address: String) -> Self {
        ControllerConnection { address, stream: None }
    }

    /// The address it connects to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` and waits for the response, all within `timeout`.
    pub async fn call(&mut self, request: &Request, timeout: Duration) -> io::Result<Response> {
        let result = super::runtime::Timeout::new(self.exchange(request), timeout).await;
        let result =
            result.unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "controller request timed out")));
        if result.is_err() {
            // The stream may hold half a frame: never reuse it.
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, request: &Request) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.address.as_str()).await.map_err(io::Error::from)?;
            stream.set_nodelay(true).map_err(io::Error::from)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_frame(stream, request).await?;
        read_frame(stream).await?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "controller closed"))
    }
}
