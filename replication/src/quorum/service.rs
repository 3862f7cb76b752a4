//! A controller voter: its Raft, the listener serving Raft RPCs and brokers' requests,
//! and — while it leads — the active controller, which turns requests and timeouts into
//! metadata batches (see [`crate::controller`]) one decision at a time.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::{TcpListener, TcpStream};
use openraft::raft::ReadPolicy;
use openraft::{Config, SnapshotPolicy};
use sluice_engine::fifo_lock::FifoLock;
use tokio::sync::watch;

use super::log_store::MetadataLogStore;
use super::network::PeerNetwork;
use super::state_machine::MetadataStateMachine;
use super::types::{ControllerNode, MetadataBatch, Raft};
use super::wire::{read_frame, write_frame, BrokerRequest, BrokerResponse, Request, Response};
use crate::controller::{Controller, ControllerConfig};
use crate::error::ReplicationError;
use crate::metadata::{MetadataImage, MetadataRecord};

/// The longest a metadata fetch waits for a change.
const FETCH_METADATA_WAIT_MAX: Duration = Duration::from_secs(5);

/// How often the active controller checks broker sessions.
const CONTROLLER_TICK: Duration = Duration::from_millis(100);

/// What a controller voter needs.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// This node's id (a key of `voters`).
    pub node_id: u64,
    /// Every voter's id and controller listener address (`--controller-quorum-voters`).
    pub voters: BTreeMap<u64, String>,
    /// Where this voter listens (`--controller-listen`).
    pub listen: String,
    /// The quorum's directory (`<data-dir>/__cluster_metadata`).
    pub dir: PathBuf,
    /// The active controller's settings.
    pub controller: ControllerConfig,
}

/// The quorum's state as this voter sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuorumStatus {
    /// This voter.
    pub node_id: u64,
    /// The active controller, if known.
    pub leader: Option<u64>,
    /// The Raft term.
    pub term: u64,
    /// The last applied log index.
    pub last_applied: Option<u64>,
    /// The voters of the committed membership.
    pub voters: Vec<u64>,
    /// The image version (records applied).
    pub applied_records: u64,
}

/// A running controller voter.
pub struct MetadataQuorum {
    config: QuorumConfig,
    raft: Raft,
    state: MetadataStateMachine,
    /// The active controller's logic while this voter leads (made afresh at each election).
    active: RefCell<Option<Controller>>,
    decisions: FifoLock,
    started: Instant,
    /// The listener's accept task: dropped (so the port is free) at shutdown.
    accepting: RefCell<Option<glommio::Task<()>>>,
    stopped: std::cell::Cell<bool>,
}

impl MetadataQuorum {
    /// Opens the quorum's storage, starts Raft and the listener; the lowest voter id
    /// initializes the membership of a new cluster. Runs on the calling glommio executor.
    pub async fn start(config: QuorumConfig) -> io::Result<Rc<Self>> {
        if !config.voters.contains_key(&config.node_id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("node {} is not among the voters", config.node_id),
            ));
        }
        let log = MetadataLogStore::open(&config.dir).await?;
        let state = MetadataStateMachine::open(&config.dir)?;
        let raft_config = Config {
            cluster_name: "sluice-metadata".into(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(1_000),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(io::Error::other)?;
        let raft = Raft::new(config.node_id, Arc::new(raft_config), PeerNetwork, log, state.clone())
            .await
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind(config.listen.as_str()).map_err(|e| {
            io::Error::new(io::ErrorKind::AddrInUse, format!("controller listener {}: {e}", config.listen))
        })?;
        let quorum = Rc::new(MetadataQuorum {
            config,
            raft,
            state,
            active: RefCell::new(None),
            decisions: FifoLock::new(),
            started: Instant::now(),
            accepting: RefCell::new(None),
            stopped: std::cell::Cell::new(false),
        });
        let accepting = glommio::spawn_local(quorum.clone().accept(listener));
        quorum.accepting.replace(Some(accepting));
        let lowest = *quorum.config.voters.keys().next().expect("voters are not empty");
        if lowest == quorum.config.node_id && !quorum.raft.is_initialized().await.map_err(io::Error::other)? {
            let members: BTreeMap<u64, ControllerNode> = quorum
                .config
                .voters
                .iter()
                .map(|(id, address)| (*id, ControllerNode { address: address.clone() }))
                .collect();
            tracing::info!(voters = ?quorum.config.voters, "initializing the metadata quorum");
            if let Err(e) = quorum.raft.initialize(members).await {
                // Another start of this node got there first: the log says so.
                tracing::info!(error = %e, "metadata quorum already initialized");
            }
        }
        glommio::spawn_local(quorum.clone().run_active_controller()).detach();
        Ok(quorum)
    }

    /// The metadata image this voter has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.state.image()
    }

    /// Every new image this voter applies.
    pub fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.state.watch()
    }

    /// The quorum as this voter sees it.
    pub fn status(&self) -> QuorumStatus {
        let metrics = openraft_rt::WatchReceiver::borrow_watched(&self.raft.metrics()).clone();
        QuorumStatus {
            node_id: self.config.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_applied: metrics.last_applied.as_ref().map(|l| l.index),
            voters: metrics.membership_config.membership().voter_ids().collect(),
            applied_records: self.image().applied_records,
        }
    }

    /// Stops Raft and the listener; open connections close at their next request.
    pub async fn shutdown(&self) {
        self.stopped.set(true);
        drop(self.accepting.take());
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shutdown");
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn accept(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    glommio::spawn_local(self.clone().serve(stream)).detach();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener accept");
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn serve(self: Rc<Self>, mut stream: TcpStream) {
        while !self.stopped.get() {
            let request = match read_frame::<Request>(&mut stream).await {
                Ok(Some(request)) => request,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "controller connection: bad frame, closing");
                    return;
                }
            };
            if self.stopped.get() {
                return;
            }
            let response = self.answer(request).await;
            if write_frame(&mut stream, &response).await.is_err() {
                return;
            }
        }
    }

    async fn answer(&self, request: Request) -> Response {
        match request {
            Request::AppendEntries(rpc) => {
                Response::AppendEntries(self.raft.append_entries(rpc).await.map_err(|e| e.to_string()))
            }
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await.map_err(|e| e.to_string())),
            Request::InstallSnapshot { vote, meta, data } => {
                let snapshot =
                    openraft::alias::SnapshotOf::<super::types::MetadataRaft, Vec<u8>> { meta, snapshot: data };
                Response::InstallSnapshot(
                    self.raft.install_full_snapshot(vote, snapshot).await.map_err(|e| e.to_string()),
                )
            }
            Request::Broker(request) => Response::Broker(self.answer_broker(request).await),
        }
    }

    /// A broker's request: metadata from any voter; changes only from the active one.
    pub async fn answer_broker(&self, request: BrokerRequest) -> BrokerResponse {
        match request {
            BrokerRequest::FetchMetadata { known, wait_ms } => {
                let mut changes = self.watch();
                if self.image().applied_records <= known && wait_ms > 0 {
                    let wait = Duration::from_millis(wait_ms.min(FETCH_METADATA_WAIT_MAX.as_millis() as u64));
                    let newer = async {
                        while changes.borrow_and_update().applied_records <= known {
                            if changes.changed().await.is_err() {
                                return;
                            }
                        }
                    };
                    let _ = super::runtime::Timeout::new(newer, wait).await;
                }
                let image = self.image();
                BrokerResponse::Metadata((image.applied_records > known).then(|| Box::new((*image).clone())))
            }
            BrokerRequest::Register(registration) => {
                let broker = registration.broker;
                if !registration.voters.is_empty() && registration.voters != self.config.voters {
                    let message = format!(
                        "broker {} was started with controller voters {:?}, this controller with {:?}",
                        registration.broker, registration.voters, self.config.voters
                    );
                    return BrokerResponse::Error { code: ReplicationError::InconsistentVoterSet.code(), message };
                }
                let registering = move |c: &mut Controller, image: &MetadataImage, now| {
                    c.check_cluster_id(image, &registration)?;
                    Ok(c.register(image, registration, now))
                };
                match self.decide(registering).await {
                    Ok(_) => match self.image().brokers.get(&broker) {
                        Some(state) => BrokerResponse::Registered { broker_epoch: state.broker_epoch },
                        None => refused(ReplicationError::BrokerIdNotRegistered),
                    },
                    Err(response) => response,
                }
            }
            BrokerRequest::Heartbeat { broker, broker_epoch } => {
                self.decide_done(move |c, image, now| c.heartbeat(image, broker, broker_epoch, now)).await
            }
            BrokerRequest::ControlledShutdown { broker, broker_epoch } => {
                self.decide_done(move |c, image, _| c.controlled_shutdown(image, broker, broker_epoch)).await
            }
            BrokerRequest::AlterPartition(request) => {
                let key = request.key;
                match self.decide(move |c, image, _| c.alter_partition(image, &request)).await {
                    Ok(_) => match self.image().partitions.get(&key) {
                        Some(state) => BrokerResponse::Partition(state.clone()),
                        None => refused(ReplicationError::UnknownTopicOrPartition),
                    },
                    Err(response) => response,
                }
            }
            BrokerRequest::AlterReassignments(reassignments) => {
                self.decide_each(move |c, image| c.alter_reassignments(image, &reassignments)).await
            }
            BrokerRequest::ElectPreferredLeaders(keys) => {
                self.decide_each(move |c, image| c.elect_preferred_leaders(image, &keys)).await
            }
            BrokerRequest::CreateTopic { name, partitions, replication_factor, configs, assignments } => {
                let topic_id = uuid::Uuid::new_v4();
                self.decide_done(move |c, image, _| {
                    let assignments = assignments.as_deref();
                    c.create_topic(image, &name, partitions, replication_factor, assignments, topic_id, configs)
                })
                .await
            }
            BrokerRequest::ChangeTopics(changes) => {
                self.decide_each(move |c, image| c.change_topics(image, &changes)).await
            }
            BrokerRequest::ChangeSecurity(changes) => {
                self.decide_each(move |c, image| c.change_security(image, &changes)).await
            }
        }
    }

    async fn decide_done(
        &self,
        decision: impl FnOnce(&mut Controller, &MetadataImage, u64) -> Result<Vec<MetadataRecord>, ReplicationError>,
    ) -> BrokerResponse {
        match self.decide(decision).await {
            Ok(applied_records) => BrokerResponse::Done { applied_records },
            Err(response) => response,
        }
    }

    /// A decision over several items, each done or refused on its own.
    async fn decide_each(
        &self,
        decision: impl FnOnce(&mut Controller, &MetadataImage) -> (Vec<MetadataRecord>, Vec<Result<(), ReplicationError>>),
    ) -> BrokerResponse {
        let mut results = Vec::new();
        let outcome = self
            .decide(|c, image, _| {
                let (records, each) = decision(c, image);
                results = each;
                Ok(records)
            })
            .await;
        match outcome {
            Ok(applied_records) => {
                let results = results.into_iter().map(|r| r.err().map(|e| (e.code(), e.to_string()))).collect();
                BrokerResponse::Results { applied_records, results }
            }
            Err(response) => response,
        }
    }

    /// Runs one decision of the active controller on the current image and commits its
    /// records; returns the image version after them. Decisions run one at a time, each on
    /// an image that holds every earlier one.
    async fn decide(
        &self,
        decision: impl FnOnce(&mut Controller, &MetadataImage, u64) -> Result<Vec<MetadataRecord>, ReplicationError>,
    ) -> Result<u64, BrokerResponse> {
        let _turn = self.decisions.lock().await;
        if !self.become_active().await {
            return Err(self.not_controller().await);
        }
        let image = self.image();
        let records = {
            let mut active = self.active.borrow_mut();
            let controller = active.as_mut().expect("active after become_active");
            decision(controller, &image, self.now_ms()).map_err(refused)?
        };
        if records.is_empty() {
            return Ok(image.applied_records);
        }
        match self.raft.client_write(MetadataBatch(records)).await {
            Ok(written) => Ok(written.response().applied_records),
            Err(e) => {
                tracing::info!(error = %e, "metadata write failed; no longer the active controller");
                self.active.replace(None);
                Err(self.not_controller().await)
            }
        }
    }

    /// Whether this voter is the active controller, making its logic on the first call
    /// after an election: only once every entry of earlier terms is applied (a read
    /// barrier), so that its first decision sees all earlier ones.
    async fn become_active(&self) -> bool {
        if self.raft.current_leader().await != Some(self.config.node_id) {
            self.active.replace(None);
            return false;
        }
        if self.active.borrow().is_some() {
            return true;
        }
        if let Err(e) = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            tracing::info!(error = %e, "not yet the active controller");
            return false;
        }
        if self.image().cluster_id.is_none() {
            let cluster_id = uuid::Uuid::new_v4().simple().to_string();
            let record = MetadataRecord::InitializeCluster { cluster_id };
            if let Err(e) = self.raft.client_write(MetadataBatch(vec![record])).await {
                tracing::info!(error = %e, "cannot write the cluster id yet");
                return false;
            }
        }
        let controller = Controller::new(self.config.controller, &self.image(), self.now_ms());
        tracing::info!(node = self.config.node_id, "active controller");
        self.active.replace(Some(controller));
        true
    }

    async fn not_controller(&self) -> BrokerResponse {
        let leader = self.raft.current_leader().await;
        let leader = leader.and_then(|id| self.config.voters.get(&id).map(|address| (id, address.clone())));
        BrokerResponse::NotController { leader }
    }

    async fn run_active_controller(self: Rc<Self>) {
        while !self.stopped.get() {
            glommio::timer::sleep(CONTROLLER_TICK).await;
            if self.raft.current_leader().await == Some(self.config.node_id) {
                let _ = self.decide(|c, image, now| Ok(c.tick(image, now))).await;
            } else {
                self.active.replace(None);
            }
        }
    }
}

fn refused(error: ReplicationError) -> BrokerResponse {
    BrokerResponse::Error { code: error.code(), message: error.to_string() }
}
