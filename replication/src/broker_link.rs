//! A broker's link to the controller quorum (KRaft's broker lifecycle): register, then
//! heartbeat every interval and fetch the metadata when it changed; a broker request
//! (AlterPartition, CreateTopic) goes to the active controller, following redirects.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use sluice_engine::fifo_lock::FifoLock;
use tokio::sync::watch;

use crate::error::ReplicationError;
use crate::metadata::{BrokerRegistration, MetadataImage};
use crate::quorum::wire::{BrokerRequest, BrokerResponse, ControllerConnection, Request, Response};

/// How long a broker request keeps looking for the active controller (an election takes
/// up to a second or two; Kafka's request timeout is 30 s).
pub const CONTROLLER_CALL_DEADLINE: Duration = Duration::from_secs(8);

/// How long one metadata long poll waits for a change.
const METADATA_POLL_WAIT: Duration = Duration::from_secs(1);

/// What the link needs.
#[derive(Clone, Debug)]
pub struct BrokerLinkConfig {
    /// This process's registration (a fresh incarnation per start).
    pub registration: BrokerRegistration,
    /// The controller voters' listener addresses.
    pub controllers: Vec<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// How long one controller request may take.
    pub request_timeout: Duration,
}

/// A broker's link to the controllers; the image it last fetched is published.
pub struct BrokerLink {
    config: BrokerLinkConfig,
    connections: RefCell<Vec<Option<ControllerConnection>>>,
    /// The controller believed active, by index.
    active: Cell<usize>,
    calls: FifoLock,
    broker_epoch: Cell<Option<i64>>,
    image: watch::Sender<Arc<MetadataImage>>,
    stopped: Cell<bool>,
    /// Why the controller refused this broker for good (its data directory belongs to
    /// another cluster); the link stops then.
    refusal: RefCell<Option<String>>,
}

impl BrokerLink {
    /// Starts the link's session task on the calling executor.
    pub fn start(config: BrokerLinkConfig) -> Rc<Self> {
        assert!(!config.controllers.is_empty(), "a broker link needs controllers");
        let connections = config.controllers.iter().map(|a| Some(ControllerConnection::new(a.clone()))).collect();
        let (image, _) = watch::channel(Arc::new(MetadataImage::default()));
        let link = Rc::new(BrokerLink {
            config,
            connections: RefCell::new(connections),
            active: Cell::new(0),
            calls: FifoLock::new(),
            broker_epoch: Cell::new(None),
            image,
            stopped: Cell::new(false),
            refusal: RefCell::new(None),
        });
        glommio::spawn_local(link.clone().session()).detach();
        glommio::spawn_local(link.clone().follow_metadata()).detach();
        link
    }

    /// The last metadata image fetched.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// Sees every new image.
    pub fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    /// The broker epoch of this process's registration, once registered.
    pub fn broker_epoch(&self) -> Option<i64> {
        self.broker_epoch.get()
    }

    /// Why the controller refused this broker for good, if it did.
    pub fn refusal(&self) -> Option<String> {
        self.refusal.borrow().clone()
    }

    /// Ends the session (no more heartbeats: the controller fences this broker after its
    /// session timeout).
    pub fn stop(&self) {
        self.stopped.set(true);
    }

    /// Sends `request` to the active controller: on a redirect to the one named, on no
    /// answer to the next; an election in progress is waited out, up to
    /// [`CONTROLLER_CALL_DEADLINE`].
    pub async fn call(&self, request: BrokerRequest) -> io::Result<BrokerResponse> {
        let _turn = self.calls.lock().await;
        let voters = self.config.controllers.len();
        let mut last_error = String::from("no controller answered");
        let deadline = std::time::Instant::now() + CONTROLLER_CALL_DEADLINE;
        while std::time::Instant::now() < deadline {
            let index = self.active.get();
            let mut connection = self.connections.borrow_mut()[index].take().expect("calls are serialized");
            let answer = connection.call(&Request::Broker(request.clone()), self.config.request_timeout).await;
            self.connections.borrow_mut()[index] = Some(connection);
            match answer {
                Ok(Response::Broker(BrokerResponse::NotController { leader })) => {
                    let named =
                        leader.and_then(|(_, address)| self.config.controllers.iter().position(|a| *a == address));
                    match named {
                        Some(leader) if leader != index => self.active.set(leader),
                        _ => {
                            self.active.set((index + 1) % voters);
                            glommio::timer::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    last_error = "no active controller".into();
                }
                Ok(Response::Broker(response)) => return Ok(response),
                Ok(other) => last_error = format!("unexpected controller answer {other:?}"),
                Err(e) => {
                    last_error = format!("controller {}: {e}", self.config.controllers[index]);
                    self.active.set((index + 1) % voters);
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        Err(io::Error::new(io::ErrorKind::NotConnected, last_error))
    }

    async fn session(self: Rc<Self>) {
        while !self.stopped.get() {
            if let Err(e) = self.session_round().await {
                tracing::debug!(error = %e, "controller session");
            }
            glommio::timer::sleep(self.config.heartbeat_interval).await;
        }
    }

    async fn session_round(&self) -> io::Result<()> {
        match self.broker_epoch.get() {
            None => match self.call(BrokerRequest::Register(self.config.registration.clone())).await? {
                BrokerResponse::Registered { broker_epoch } => {
                    tracing::info!(
                        broker = self.config.registration.broker,
                        broker_epoch,
                        "registered with the controller"
                    );
                    self.broker_epoch.set(Some(broker_epoch));
                }
                BrokerResponse::Error { code, message }
                    if [
                        ReplicationError::InconsistentClusterId.code(),
                        ReplicationError::InconsistentVoterSet.code(),
                    ]
                    .contains(&code) =>
                {
                    tracing::error!(code, %message, "the controller refuses this broker for good");
                    self.refusal.replace(Some(message));
                    self.stop();
                }
                other => tracing::warn!(answer = ?other, "registration refused"),
            },
            Some(broker_epoch) => {
                let broker = self.config.registration.broker;
                if let BrokerResponse::Error { code, message } =
                    self.call(BrokerRequest::Heartbeat { broker, broker_epoch }).await?
                {
                    tracing::warn!(code, message, "heartbeat refused");
                    let lost =
                        [ReplicationError::StaleBrokerEpoch.code(), ReplicationError::BrokerIdNotRegistered.code()];
                    if lost.contains(&code) {
                        self.broker_epoch.set(None);
                    }
                }
            }
        }
        Ok(())
    }

    /// Long-polls the metadata on connections of its own (heartbeats must not queue
    /// behind a poll), from the controller believed active, any voter otherwise.
    async fn follow_metadata(self: Rc<Self>) {
        let mut connections: Vec<ControllerConnection> =
            self.config.controllers.iter().map(|a| ControllerConnection::new(a.clone())).collect();
        let wait = METADATA_POLL_WAIT;
        let mut index = self.active.get();
        while !self.stopped.get() {
            let known = self.image().applied_records;
            let request = Request::Broker(BrokerRequest::FetchMetadata { known, wait_ms: wait.as_millis() as u64 });
            match connections[index].call(&request, wait + self.config.request_timeout).await {
                Ok(Response::Broker(BrokerResponse::Metadata(image))) => {
                    if let Some(image) = image {
                        if image.applied_records > self.image().applied_records {
                            self.image.send_replace(Arc::new(*image));
                        }
                    }
                    // Follow the active controller, which has every change first.
                    index = self.active.get();
                }
                other => {
                    tracing::debug!(answer = ?other.map(|_| ()), "metadata fetch failed");
                    index = (index + 1) % connections.len();
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
