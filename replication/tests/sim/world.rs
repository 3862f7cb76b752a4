//! The simulated cluster: a controller (the metadata quorum, seen as one linearizable
//! log: openraft replicates it in the real broker), brokers with their partition
//! replicas and in-memory disks, a producing client, a network, and the fault schedule.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

use sluice_replication::controller::{AlterPartition, Controller, ControllerConfig, Reassignment};
use sluice_replication::metadata::{BrokerRegistration, MetadataImage, MetadataRecord};
use sluice_replication::partition::{
    AckOutcome, FetchReply, FollowerStep, LogView, PartitionReplica, ReplicaConfig, ReplicaFetch, RoleChange,
};
use sluice_replication::{BrokerId, PartitionKey, ReplicationError, NO_LEADER};
use uuid::Uuid;

use super::checker::Checker;
use super::log::{SimLog, SimRecord};
use super::rng::Rng;

/// The shape of one run; the seed picks the fault rates and timings.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub brokers: i32,
    /// Replicas per partition: fewer than the brokers, so reassignments can move them.
    pub replication_factor: usize,
    pub partitions: i32,
    pub min_insync_replicas: usize,
    /// Faults and production run this long, then the network heals and every process
    /// comes back.
    pub faulty_ms: u64,
    /// Then this long to settle before the final checks (production stops a third in).
    pub settle_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            brokers: 4,
            replication_factor: 3,
            partitions: 2,
            min_insync_replicas: 2,
            faulty_ms: 6_000,
            settle_ms: 6_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Controller,
    Broker(BrokerId),
    Client,
}

#[derive(Debug)]
enum Msg {
    Register(BrokerRegistration),
    RegisterReply { incarnation: Uuid, broker_epoch: i64 },
    Heartbeat { broker: BrokerId, broker_epoch: i64 },
    AlterPartition(AlterPartition),
    MetadataPull { known: u64 },
    Metadata(Rc<MetadataImage>),
    Fetch { key: PartitionKey, fetch: ReplicaFetch, request: u64 },
    FetchReply { key: PartitionKey, fetch: ReplicaFetch, reply: FetchReply, records: Vec<SimRecord>, request: u64 },
    Produce { key: PartitionKey, request: u64, values: Vec<u64> },
    ProduceReply { request: u64, result: Result<i64, ReplicationError> },
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: Node,
        to: Node,
        msg: Msg,
    },
    BrokerTick {
        broker: BrokerId,
        life: u64,
    },
    ControllerTick {
        life: u64,
    },
    FlushDone {
        broker: BrokerId,
        life: u64,
        key: PartitionKey,
        generation: u64,
        target: usize,
    },
    /// Fetch again unless the fetch `request` has been answered meanwhile (a backoff, or a
    /// lost request's timeout).
    FetchRetry {
        broker: BrokerId,
        life: u64,
        key: PartitionKey,
        request: u64,
    },
    ClientProduce,
    Fault,
    Restart(BrokerId),
    ControllerRestart,
    Heal(Vec<(Node, Node)>),
    EndFaults,
    StopProducing,
}

struct Scheduled {
    at_ms: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, ties in scheduling order.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// Time, the event queue, randomness and the network's faults.
struct Net {
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    rng: Rng,
    drop_probability: f64,
    delay_max_ms: u64,
    /// Cut links, counted (cuts overlap), both directions stored.
    cuts: BTreeMap<(Node, Node), u32>,
    next_request: u64,
    trace: bool,
}

impl Net {
    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at_ms: self.now_ms + delay_ms, seq: self.seq, event });
    }

    fn send(&mut self, from: Node, to: Node, msg: Msg) {
        if self.cuts.get(&(from, to)).is_some_and(|n| *n > 0) || self.rng.chance(self.drop_probability) {
            return;
        }
        let delay = self.rng.between(1, self.delay_max_ms);
        self.schedule(delay, Event::Deliver { from, to, msg });
    }

    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("{:>6} {}", self.now_ms, what());
        }
    }
}

/// A fetch unanswered for this long is sent again (the request or its reply was lost).
const FETCH_TIMEOUT_MS: u64 = 300;

/// Settings every broker uses.
struct Params {
    min_insync_replicas: usize,
    replica: ReplicaConfig,
    heartbeat_ms: u64,
    fetch_max_records: usize,
    produce_timeout_ms: u64,
}

struct PendingAck {
    request: u64,
    key: PartitionKey,
    leader_epoch: i32,
    base: i64,
    end: i64,
    deadline_ms: u64,
}

/// What a broker process holds in memory; gone with a crash.
struct BrokerMemory {
    incarnation: Uuid,
    broker_epoch: Option<i64>,
    image: Option<Rc<MetadataImage>>,
    /// Set once the metadata shows this process's registration unfenced; only then are
    /// replicas made (see `PartitionReplica`'s contract).
    active: bool,
    replicas: BTreeMap<PartitionKey, PartitionReplica>,
    /// The request id of the fetch in flight (or the retry waited for) per partition.
    fetching: BTreeMap<PartitionKey, u64>,
    flushing: BTreeSet<PartitionKey>,
    pending_acks: Vec<PendingAck>,
}

struct SimBroker {
    id: BrokerId,
    /// The disk: survives crashes (less the unflushed tails).
    logs: BTreeMap<PartitionKey, SimLog>,
    memory: Option<BrokerMemory>,
    /// Grows with every crash and start; events of an earlier life are dropped.
    life: u64,
}

impl SimBroker {
    fn start(&mut self, net: &mut Net, params: &Params) {
        self.life += 1;
        let incarnation = Uuid::from_u64_pair(net.rng.next_u64(), net.rng.next_u64());
        self.memory = Some(BrokerMemory {
            incarnation,
            broker_epoch: None,
            image: None,
            active: false,
            replicas: BTreeMap::new(),
            fetching: BTreeMap::new(),
            flushing: BTreeSet::new(),
            pending_acks: Vec::new(),
        });
        let first_tick = net.rng.between(0, params.heartbeat_ms);
        net.schedule(first_tick, Event::BrokerTick { broker: self.id, life: self.life });
        net.trace(|| format!("broker {} starts", self.id));
    }

    fn crash(&mut self, net: &mut Net, checker: &mut Checker) {
        self.memory = None;
        self.life += 1;
        for (key, log) in &mut self.logs {
            log.crash();
            checker.on_log_cut(self.id, *key, log.log_end());
        }
        net.trace(|| format!("broker {} crashes", self.id));
    }

    fn tick(&mut self, net: &mut Net, params: &Params) {
        let me = Node::Broker(self.id);
        let Some(memory) = &mut self.memory else { return };
        match memory.broker_epoch {
            None => {
                let registration = BrokerRegistration {
                    broker: self.id,
                    incarnation: memory.incarnation,
                    host: "127.0.0.1".into(),
                    port: 9092,
                    rack: None,
                    listeners: Vec::new(),
                    cluster_id: None,
                    voters: Default::default(),
                };
                net.send(me, Node::Controller, Msg::Register(registration));
            }
            Some(broker_epoch) => {
                net.send(me, Node::Controller, Msg::Heartbeat { broker: self.id, broker_epoch });
                for (key, replica) in &mut memory.replicas {
                    if let Some(change) = replica.isr_change(broker_epoch, &self.logs[key], &params.replica, net.now_ms)
                    {
                        net.trace(|| {
                            format!("broker {} proposes ISR {:?} for {}", self.id, change.new_isr, short(key))
                        });
                        net.send(me, Node::Controller, Msg::AlterPartition(change));
                    }
                }
            }
        }
        let known = memory.image.as_ref().map_or(0, |i| i.applied_records);
        net.send(me, Node::Controller, Msg::MetadataPull { known });
        let now = net.now_ms;
        memory.pending_acks.retain(|ack| ack.deadline_ms > now);
        let keys: Vec<PartitionKey> = memory.replicas.keys().copied().collect();
        for key in keys {
            self.try_fetch(key, net);
        }
        net.schedule(params.heartbeat_ms, Event::BrokerTick { broker: self.id, life: self.life });
    }

    fn try_fetch(&mut self, key: PartitionKey, net: &mut Net) {
        let Some(memory) = &mut self.memory else { return };
        if memory.fetching.contains_key(&key) {
            return;
        }
        let Some(replica) = memory.replicas.get(&key) else { return };
        let Some(fetch) = replica.next_fetch(&self.logs[&key]) else { return };
        let request = net.request_id();
        memory.fetching.insert(key, request);
        let leader = replica.state().leader;
        net.send(Node::Broker(self.id), Node::Broker(leader), Msg::Fetch { key, fetch, request });
        net.schedule(FETCH_TIMEOUT_MS, Event::FetchRetry { broker: self.id, life: self.life, key, request });
    }

    fn on_register_reply(&mut self, incarnation: Uuid, broker_epoch: i64) {
        if let Some(memory) = &mut self.memory {
            if memory.incarnation == incarnation {
                memory.broker_epoch = Some(broker_epoch);
            }
        }
    }

    fn on_metadata(&mut self, image: Rc<MetadataImage>, net: &mut Net, checker: &mut Checker, params: &Params) {
        let Some(memory) = &mut self.memory else { return };
        if memory.image.as_ref().is_some_and(|known| known.applied_records >= image.applied_records) {
            return;
        }
        memory.image = Some(image.clone());
        if !memory.active {
            let registered = image.brokers.get(&self.id);
            let current = registered.is_some_and(|b| Some(b.broker_epoch) == memory.broker_epoch && !b.fenced);
            if !current {
                return;
            }
            memory.active = true;
        }
        let mut changes = Vec::new();
        for (key, state) in &image.partitions {
            let log = self.logs.entry(*key).or_default();
            match memory.replicas.get_mut(key) {
                Some(replica) => changes.push((*key, replica.apply(state, log, net.now_ms))),
                None if state.is_replica(self.id) => {
                    let (replica, change) =
                        PartitionReplica::new(self.id, *key, state, log.high_watermark, log, net.now_ms);
                    memory.replicas.insert(*key, replica);
                    changes.push((*key, change));
                }
                None => {}
            }
        }
        for (key, change) in changes {
            self.on_role_change(key, change, net, checker, params);
        }
    }

    fn on_role_change(
        &mut self,
        key: PartitionKey,
        change: RoleChange,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let memory = self.memory.as_mut().expect("alive");
        match change {
            RoleChange::Unchanged => return,
            RoleChange::StateChanged => {}
            RoleChange::BecameLeader { leader_epoch, epoch_start_offset } => {
                checker.on_leading(self.id, key, leader_epoch);
                memory.fetching.remove(&key);
                net.trace(|| {
                    format!("broker {} leads {} epoch {leader_epoch} from {epoch_start_offset}", self.id, short(&key))
                });
            }
            RoleChange::BecameFollower { leader, leader_epoch } => {
                memory.fetching.remove(&key);
                net.trace(|| format!("broker {} follows {leader} in {} epoch {leader_epoch}", self.id, short(&key)));
            }
            RoleChange::Removed => {
                memory.replicas.remove(&key);
                memory.fetching.remove(&key);
                // A broker deletes the log of a replica it no longer holds (a later
                // reassignment back starts from an empty log).
                let log = self.logs.get_mut(&key).expect("a replica has a log");
                *log = SimLog { generation: log.generation + 1, ..SimLog::default() };
                checker.on_log_cut(self.id, key, 0);
                net.trace(|| format!("broker {} no longer holds {}", self.id, short(&key)));
            }
        }
        self.on_high_watermark_maybe_moved(key, net, checker, params);
        self.try_fetch(key, net);
    }

    /// Records the replica's high watermark (checkpoint, checker) and answers the
    /// acks=all produces it settles.
    fn on_high_watermark_maybe_moved(
        &mut self,
        key: PartitionKey,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let memory = self.memory.as_mut().expect("alive");
        let log = self.logs.get_mut(&key).expect("a replica has a log");
        if let Some(replica) = memory.replicas.get(&key) {
            let high_watermark = replica.high_watermark();
            if high_watermark > log.high_watermark {
                checker.on_high_watermark(self.id, key, log, high_watermark);
                log.high_watermark = high_watermark;
            }
        }
        let replica = memory.replicas.get(&key);
        let mut answered = Vec::new();
        memory.pending_acks.retain(|ack| {
            if ack.key != key {
                return true;
            }
            let outcome = match replica {
                Some(replica) => replica.ack_outcome(ack.leader_epoch, ack.end, params.min_insync_replicas),
                None => AckOutcome::Failed(ReplicationError::NotLeaderOrFollower),
            };
            match outcome {
                AckOutcome::Pending => true,
                AckOutcome::Done => {
                    answered.push((ack.request, Ok(ack.base)));
                    false
                }
                AckOutcome::Failed(error) => {
                    answered.push((ack.request, Err(error)));
                    false
                }
            }
        });
        for (request, result) in answered {
            net.send(Node::Broker(self.id), Node::Client, Msg::ProduceReply { request, result });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_fetch(
        &mut self,
        from: Node,
        key: PartitionKey,
        fetch: ReplicaFetch,
        request: u64,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let Some(memory) = &mut self.memory else { return };
        let log = self.logs.entry(key).or_default();
        let (reply, records) = match memory.replicas.get_mut(&key) {
            None => (FetchReply::Error(ReplicationError::NotLeaderOrFollower), Vec::new()),
            Some(replica) => {
                let reply = replica.serve_fetch(&fetch, log, net.now_ms);
                let records = match reply {
                    FetchReply::Records { from, .. } => {
                        checker.on_leading(self.id, key, replica.leader_epoch());
                        let end = log.records.len().min(from as usize + params.fetch_max_records);
                        log.records[from as usize..end].to_vec()
                    }
                    _ => Vec::new(),
                };
                (reply, records)
            }
        };
        net.send(Node::Broker(self.id), from, Msg::FetchReply { key, fetch, reply, records, request });
        self.on_high_watermark_maybe_moved(key, net, checker, params);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_fetch_reply(
        &mut self,
        key: PartitionKey,
        fetch: ReplicaFetch,
        reply: FetchReply,
        records: Vec<SimRecord>,
        request: u64,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let Some(memory) = &mut self.memory else { return };
        if memory.fetching.get(&key) != Some(&request) {
            return;
        }
        memory.fetching.remove(&key);
        let Some(replica) = memory.replicas.get_mut(&key) else { return };
        let log = self.logs.get_mut(&key).expect("a replica has a log");
        match replica.on_fetch_reply(&fetch, &reply, log) {
            FollowerStep::RestartAt { offset } => panic!("simulated logs start at 0, yet a restart at {offset}"),
            FollowerStep::Append { leader_high_watermark, .. } => {
                let got = records.len();
                log.append(records);
                replica.follower_appended(leader_high_watermark, log);
                if got > 0 {
                    self.schedule_flush(key, net);
                } else {
                    let wait = net.rng.between(2, 10);
                    memory.fetching.insert(key, request);
                    net.schedule(wait, Event::FetchRetry { broker: self.id, life: self.life, key, request });
                }
                self.on_high_watermark_maybe_moved(key, net, checker, params);
            }
            FollowerStep::Truncate { to } => {
                net.trace(|| format!("broker {} truncates {} from {} to {to}", self.id, short(&key), log.log_end()));
                log.truncate(to);
                checker.on_log_cut(self.id, key, to);
                self.try_fetch(key, net);
            }
            FollowerStep::Backoff => {
                let wait = net.rng.between(10, 40);
                memory.fetching.insert(key, request);
                net.schedule(wait, Event::FetchRetry { broker: self.id, life: self.life, key, request });
            }
            FollowerStep::Stale => self.try_fetch(key, net),
        }
    }

    fn on_fetch_retry(&mut self, key: PartitionKey, request: u64, net: &mut Net) {
        let Some(memory) = &mut self.memory else { return };
        if memory.fetching.get(&key) == Some(&request) {
            memory.fetching.remove(&key);
            self.try_fetch(key, net);
        }
    }

    fn schedule_flush(&mut self, key: PartitionKey, net: &mut Net) {
        let memory = self.memory.as_mut().expect("alive");
        if memory.flushing.insert(key) {
            let log = &self.logs[&key];
            let fsync_ms = net.rng.between(1, 6);
            let event = Event::FlushDone {
                broker: self.id,
                life: self.life,
                key,
                generation: log.generation,
                target: log.records.len(),
            };
            net.schedule(fsync_ms, event);
        }
    }

    fn on_flush_done(
        &mut self,
        key: PartitionKey,
        generation: u64,
        target: usize,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let Some(memory) = &mut self.memory else { return };
        memory.flushing.remove(&key);
        let log = self.logs.get_mut(&key).expect("flushed log exists");
        if log.generation == generation {
            log.durable = log.durable.max(target.min(log.records.len()));
        }
        if let Some(replica) = memory.replicas.get_mut(&key) {
            replica.on_durable(log);
        }
        let unflushed = log.durable < log.records.len();
        self.on_high_watermark_maybe_moved(key, net, checker, params);
        if unflushed {
            self.schedule_flush(key, net);
        } else {
            self.try_fetch(key, net);
        }
    }

    fn on_produce(
        &mut self,
        key: PartitionKey,
        request: u64,
        values: Vec<u64>,
        net: &mut Net,
        checker: &mut Checker,
        params: &Params,
    ) {
        let me = Node::Broker(self.id);
        let Some(memory) = &mut self.memory else { return };
        let Some(replica) = memory.replicas.get(&key) else {
            let result = Err(ReplicationError::NotLeaderOrFollower);
            net.send(me, Node::Client, Msg::ProduceReply { request, result });
            return;
        };
        if let Err(error) = replica.check_produce(true, params.min_insync_replicas) {
            net.send(me, Node::Client, Msg::ProduceReply { request, result: Err(error) });
            return;
        }
        let leader_epoch = replica.leader_epoch();
        checker.on_leading(self.id, key, leader_epoch);
        let log = self.logs.get_mut(&key).expect("a replica has a log");
        let base = log.log_end();
        log.append(values.iter().map(|value| SimRecord { epoch: leader_epoch, value: *value }));
        let end = log.log_end();
        memory.pending_acks.push(PendingAck {
            request,
            key,
            leader_epoch,
            base,
            end,
            deadline_ms: net.now_ms + params.produce_timeout_ms,
        });
        self.schedule_flush(key, net);
        self.on_high_watermark_maybe_moved(key, net, checker, params);
    }
}

struct SimController {
    alive: bool,
    life: u64,
    image: MetadataImage,
    published: Rc<MetadataImage>,
    logic: Option<Controller>,
    config: ControllerConfig,
}

impl SimController {
    fn apply(&mut self, records: Vec<MetadataRecord>, net: &Net, checker: &mut Checker) {
        if records.is_empty() {
            return;
        }
        for record in &records {
            let applied = self.image.apply(record);
            net.trace(|| format!("controller {} {}", if applied { "applies" } else { "ignores" }, describe(record)));
        }
        checker.on_controller_image(&self.image);
        self.published = Rc::new(self.image.clone());
    }
}

struct Client {
    next_value: u64,
    view: Rc<MetadataImage>,
    inflight: BTreeMap<u64, (PartitionKey, Vec<u64>)>,
    producing: bool,
}

/// One run.
pub struct World {
    net: Net,
    params: Params,
    config: SimConfig,
    controller: SimController,
    brokers: BTreeMap<BrokerId, SimBroker>,
    client: Client,
    checker: Checker,
    faulting: bool,
    /// Swarm testing: each seed weighs the fault kinds (crash, isolate a broker, cut a
    /// link, cut a broker from the controller, controller failure) and the operator's
    /// moves (reassign or cancel, preferred elections) differently, some not at all, so
    /// runs explore mixes a uniform choice would rarely make.
    fault_weights: [u64; 7],
    fault_gap_max_ms: u64,
    steps: u64,
}

impl World {
    pub fn new(seed: u64, config: SimConfig, trace: bool) -> Self {
        let mut rng = Rng::new(seed);
        let drop_probability = rng.between(0, 15) as f64 / 100.0;
        let delay_max_ms = rng.between(1, 30);
        let session_timeout_ms = rng.between(300, 1_200);
        let lag_max_ms = rng.between(200, 1_500);
        let fault_weights = [(); 7].map(|_| rng.between(0, 3));
        let rebalance_ms = rng.between(300, 5_000);
        let fault_gap_max_ms = rng.between(100, 1_000);
        let mut net = Net {
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng,
            drop_probability,
            delay_max_ms,
            cuts: BTreeMap::new(),
            next_request: 0,
            trace,
        };
        net.trace(|| format!("seed {seed}: drop {drop_probability}, delay <= {delay_max_ms} ms, session {session_timeout_ms} ms, lag max {lag_max_ms} ms, fault weights {fault_weights:?} every <= {fault_gap_max_ms} ms"));
        let params = Params {
            min_insync_replicas: config.min_insync_replicas,
            replica: ReplicaConfig { replica_lag_time_max_ms: lag_max_ms, isr_proposal_retry_ms: 200 },
            heartbeat_ms: 50,
            fetch_max_records: 64,
            produce_timeout_ms: 2_000,
        };
        let controller_config = ControllerConfig {
            broker_session_timeout_ms: session_timeout_ms,
            leader_imbalance_check_interval_ms: rebalance_ms,
            ..ControllerConfig::default()
        };
        let image = MetadataImage::default();
        let controller = SimController {
            alive: true,
            life: 0,
            published: Rc::new(image.clone()),
            logic: Some(Controller::new(controller_config, &image, 0)),
            image,
            config: controller_config,
        };
        let mut brokers = BTreeMap::new();
        for id in 1..=config.brokers {
            let mut broker = SimBroker { id, logs: BTreeMap::new(), memory: None, life: 0 };
            broker.start(&mut net, &params);
            brokers.insert(id, broker);
        }
        net.schedule(0, Event::ControllerTick { life: 0 });
        net.schedule(500, Event::Fault);
        net.schedule(0, Event::ClientProduce);
        net.schedule(config.faulty_ms, Event::EndFaults);
        net.schedule(config.faulty_ms + config.settle_ms / 3, Event::StopProducing);
        World {
            net,
            params,
            config,
            controller,
            brokers,
            client: Client {
                next_value: 1,
                view: Rc::new(MetadataImage::default()),
                inflight: BTreeMap::new(),
                producing: true,
            },
            checker: Checker::default(),
            faulting: true,
            fault_weights,
            fault_gap_max_ms,
            steps: 0,
        }
    }

    /// Runs to the end and checks the settled cluster; panics on any violation.
    pub fn run(mut self) -> RunSummary {
        let end_ms = self.config.faulty_ms + self.config.settle_ms;
        while let Some(next) = self.net.queue.pop() {
            if next.at_ms > end_ms {
                break;
            }
            self.net.now_ms = next.at_ms;
            self.handle(next.event);
            self.steps += 1;
            self.check_step(self.steps.is_multiple_of(256));
        }
        self.check_settled();
        RunSummary {
            steps: self.steps,
            acked: self.checker.acked.len(),
            committed: self.checker.ledger.values().map(|l| l.len()).sum(),
        }
    }

    fn handle(&mut self, event: Event) {
        let (net, params, checker) = (&mut self.net, &self.params, &mut self.checker);
        match event {
            Event::Deliver { from, to, msg } => match to {
                Node::Controller => self.controller_receives(from, msg),
                Node::Client => self.client_receives(msg),
                Node::Broker(id) => {
                    let broker = self.brokers.get_mut(&id).expect("known broker");
                    match msg {
                        Msg::RegisterReply { incarnation, broker_epoch } => {
                            broker.on_register_reply(incarnation, broker_epoch)
                        }
                        Msg::Metadata(image) => broker.on_metadata(image, net, checker, params),
                        Msg::Fetch { key, fetch, request } => {
                            broker.on_fetch(from, key, fetch, request, net, checker, params)
                        }
                        Msg::FetchReply { key, fetch, reply, records, request } => {
                            broker.on_fetch_reply(key, fetch, reply, records, request, net, checker, params)
                        }
                        Msg::Produce { key, request, values } => {
                            broker.on_produce(key, request, values, net, checker, params)
                        }
                        other => panic!("broker got {other:?}"),
                    }
                }
            },
            Event::BrokerTick { broker, life } => {
                let broker = self.brokers.get_mut(&broker).expect("known broker");
                if broker.life == life {
                    broker.tick(net, params);
                }
            }
            Event::ControllerTick { life } => self.controller_tick(life),
            Event::FlushDone { broker, life, key, generation, target } => {
                let broker = self.brokers.get_mut(&broker).expect("known broker");
                if broker.life == life {
                    broker.on_flush_done(key, generation, target, net, checker, params);
                }
            }
            Event::FetchRetry { broker, life, key, request } => {
                let broker = self.brokers.get_mut(&broker).expect("known broker");
                if broker.life == life {
                    broker.on_fetch_retry(key, request, net);
                }
            }
            Event::ClientProduce => self.client_produces(),
            Event::Fault => self.fault(),
            Event::Restart(id) => {
                let broker = self.brokers.get_mut(&id).expect("known broker");
                if broker.memory.is_none() {
                    broker.start(net, params);
                }
            }
            Event::ControllerRestart => self.controller_restart(),
            Event::Heal(links) => {
                for link in links {
                    if let Some(count) = self.net.cuts.get_mut(&link) {
                        *count = count.saturating_sub(1);
                    }
                }
            }
            Event::EndFaults => {
                self.faulting = false;
                self.net.cuts.clear();
                self.net.drop_probability = 0.0;
                self.net.trace(|| "faults end: network healed, every process restarted".into());
                let ids: Vec<BrokerId> = self.brokers.keys().copied().collect();
                for id in ids {
                    self.net.schedule(0, Event::Restart(id));
                }
                self.net.schedule(0, Event::ControllerRestart);
            }
            Event::StopProducing => self.client.producing = false,
        }
    }

    fn controller_receives(&mut self, from: Node, msg: Msg) {
        let controller = &mut self.controller;
        if !controller.alive {
            return;
        }
        let logic = controller.logic.as_mut().expect("an alive controller has its logic");
        let now = self.net.now_ms;
        match msg {
            Msg::Register(registration) => {
                let (broker, incarnation) = (registration.broker, registration.incarnation);
                let records = logic.register(&controller.image, registration, now);
                controller.apply(records, &self.net, &mut self.checker);
                let registered = &controller.image.brokers[&broker];
                if registered.incarnation == incarnation {
                    let reply = Msg::RegisterReply { incarnation, broker_epoch: registered.broker_epoch };
                    self.net.send(Node::Controller, from, reply);
                }
            }
            Msg::Heartbeat { broker, broker_epoch } => {
                if let Ok(records) = logic.heartbeat(&controller.image, broker, broker_epoch, now) {
                    controller.apply(records, &self.net, &mut self.checker);
                }
            }
            Msg::AlterPartition(request) => {
                if let Ok(records) = logic.alter_partition(&controller.image, &request) {
                    controller.apply(records, &self.net, &mut self.checker);
                }
            }
            Msg::MetadataPull { known } => {
                if controller.image.applied_records > known {
                    self.net.send(Node::Controller, from, Msg::Metadata(controller.published.clone()));
                }
            }
            other => panic!("controller got {other:?}"),
        }
    }

    fn controller_tick(&mut self, life: u64) {
        let controller = &mut self.controller;
        if !controller.alive || controller.life != life {
            return;
        }
        let now = self.net.now_ms;
        let logic = controller.logic.as_mut().expect("an alive controller has its logic");
        let records = logic.tick(&controller.image, now);
        controller.apply(records, &self.net, &mut self.checker);
        let active = controller.image.brokers.values().filter(|b| !b.fenced).count();
        if controller.image.topics.is_empty() && active == self.config.brokers as usize {
            let topic_id = Uuid::from_u64_pair(self.net.rng.next_u64(), self.net.rng.next_u64());
            let logic = controller.logic.as_mut().expect("alive");
            let records = logic
                .create_topic(
                    &controller.image,
                    "t",
                    self.config.partitions,
                    self.config.replication_factor,
                    None,
                    topic_id,
                    Default::default(),
                )
                .expect("every broker is active");
            controller.apply(records, &self.net, &mut self.checker);
        }
        self.net.schedule(50, Event::ControllerTick { life });
    }

    fn controller_restart(&mut self) {
        let controller = &mut self.controller;
        if controller.alive {
            return;
        }
        controller.alive = true;
        controller.life += 1;
        controller.logic = Some(Controller::new(controller.config, &controller.image, self.net.now_ms));
        self.net.schedule(0, Event::ControllerTick { life: controller.life });
        self.net.trace(|| "controller comes back (a new active controller)".into());
    }

    fn client_produces(&mut self) {
        if !self.client.producing {
            return;
        }
        if self.controller.alive {
            self.client.view = self.controller.published.clone();
        }
        let keys: Vec<PartitionKey> = self.client.view.partitions.keys().copied().collect();
        if !keys.is_empty() {
            let key = self.net.rng.pick(&keys);
            let leader = self.client.view.partitions[&key].leader;
            if leader != NO_LEADER {
                let count = self.net.rng.between(1, 3);
                let values: Vec<u64> = (0..count).map(|i| self.client.next_value + i).collect();
                self.client.next_value += count;
                let request = self.net.request_id();
                self.client.inflight.insert(request, (key, values.clone()));
                self.net.send(Node::Client, Node::Broker(leader), Msg::Produce { key, request, values });
            }
        }
        let wait = self.net.rng.between(2, 8);
        self.net.schedule(wait, Event::ClientProduce);
    }

    fn client_receives(&mut self, msg: Msg) {
        let Msg::ProduceReply { request, result } = msg else { panic!("client got {msg:?}") };
        let Some((key, values)) = self.client.inflight.remove(&request) else { return };
        if let Ok(base) = result {
            for (i, value) in values.into_iter().enumerate() {
                self.checker.on_acked(key, base + i as i64, value);
            }
        }
    }

    fn fault(&mut self) {
        if !self.faulting {
            return;
        }
        let net = &mut self.net;
        let ids: Vec<BrokerId> = self.brokers.keys().copied().collect();
        let total: u64 = self.fault_weights.iter().sum();
        let mut draw = net.rng.between(0, total);
        let kind = self.fault_weights.iter().position(|w| {
            let hit = draw < *w;
            draw = draw.saturating_sub(*w);
            hit
        });
        match kind.unwrap_or(usize::MAX) {
            0 => {
                let id = net.rng.pick(&ids);
                let broker = self.brokers.get_mut(&id).expect("known broker");
                if broker.memory.is_some() {
                    broker.crash(net, &mut self.checker);
                    let down = net.rng.between(50, 2_500);
                    net.schedule(down, Event::Restart(id));
                }
            }
            1 => {
                let id = net.rng.pick(&ids);
                let mut links = vec![(Node::Broker(id), Node::Controller), (Node::Controller, Node::Broker(id))];
                for other in ids.iter().copied().filter(|o| *o != id) {
                    links.push((Node::Broker(id), Node::Broker(other)));
                    links.push((Node::Broker(other), Node::Broker(id)));
                }
                self.cut(links, 100, 3_000, format!("broker {id} cut off from the cluster"));
            }
            2 => {
                let a = net.rng.pick(&ids);
                let b = net.rng.pick(&ids);
                if a != b {
                    let links = vec![(Node::Broker(a), Node::Broker(b)), (Node::Broker(b), Node::Broker(a))];
                    self.cut(links, 100, 2_000, format!("link {a}-{b} cut"));
                }
            }
            3 => {
                let id = net.rng.pick(&ids);
                let links = vec![(Node::Broker(id), Node::Controller), (Node::Controller, Node::Broker(id))];
                self.cut(links, 100, 2_000, format!("broker {id} cut off from the controller"));
            }
            4 if self.controller.alive => {
                self.controller.alive = false;
                self.controller.logic = None;
                let down = net.rng.between(100, 1_500);
                net.schedule(down, Event::ControllerRestart);
                net.trace(|| "controller fails".into());
            }
            5 if self.controller.alive => self.reassign_one(),
            6 if self.controller.alive => {
                let controller = &mut self.controller;
                let keys: Vec<PartitionKey> = controller.image.partitions.keys().copied().collect();
                let logic = controller.logic.as_ref().expect("alive");
                let (records, _) = logic.elect_preferred_leaders(&controller.image, &keys);
                net.trace(|| "preferred leader election".into());
                controller.apply(records, net, &mut self.checker);
            }
            _ => {}
        }
        let next = self.net.rng.between(20, self.fault_gap_max_ms);
        self.net.schedule(next, Event::Fault);
    }

    /// The operator moves a partition to random target replicas, or cancels its move.
    fn reassign_one(&mut self) {
        let controller = &mut self.controller;
        let keys: Vec<PartitionKey> = controller.image.partitions.keys().copied().collect();
        if keys.is_empty() {
            return;
        }
        let key = self.net.rng.pick(&keys);
        let moving = controller.image.partitions[&key].is_reassigning();
        let target = if moving && self.net.rng.between(0, 3) == 0 {
            None
        } else {
            let mut brokers: Vec<BrokerId> = (1..=self.config.brokers).collect();
            let mut target = Vec::new();
            while target.len() < self.config.replication_factor {
                target.push(brokers.remove(self.net.rng.between(0, brokers.len() as u64 - 1) as usize));
            }
            Some(target)
        };
        let logic = controller.logic.as_ref().expect("alive");
        let (records, results) =
            logic.alter_reassignments(&controller.image, &[Reassignment { key, target: target.clone() }]);
        self.net.trace(|| format!("reassign {} to {target:?}: {results:?}", short(&key)));
        controller.apply(records, &self.net, &mut self.checker);
    }

    fn cut(&mut self, links: Vec<(Node, Node)>, min_ms: u64, max_ms: u64, what: String) {
        for link in &links {
            *self.net.cuts.entry(*link).or_insert(0) += 1;
        }
        let duration = self.net.rng.between(min_ms, max_ms);
        self.net.trace(|| format!("{what} for {duration} ms"));
        self.net.schedule(duration, Event::Heal(links));
    }

    fn check_step(&mut self, full: bool) {
        for broker in self.brokers.values() {
            let Some(memory) = &broker.memory else { continue };
            for (key, replica) in &memory.replicas {
                if replica.is_leader() {
                    self.checker.on_leading(broker.id, *key, replica.leader_epoch());
                }
            }
        }
        let brokers = &self.brokers;
        self.checker.check_isr_durability(&self.controller.image, |b, k| brokers.get(&b)?.logs.get(&k), full);
    }

    fn check_settled(&mut self) {
        self.check_step(true);
        let image = &self.controller.image;
        assert_eq!(image.partitions.len(), self.config.partitions as usize, "the topic was created");
        for (id, broker) in &image.brokers {
            assert!(!broker.fenced, "broker {id} is still fenced after the cluster settled");
        }
        for (key, state) in &image.partitions {
            assert_ne!(state.leader, NO_LEADER, "{key:?} has no leader after the cluster settled");
            assert!(!state.is_reassigning(), "{key:?}'s reassignment did not complete after the cluster settled");
            let mut replicas = state.replicas.clone();
            replicas.sort_unstable();
            assert_eq!(state.isr, replicas, "{key:?}'s ISR is not whole after the cluster settled");
            let leader_log = &self.brokers[&state.leader].logs[key];
            let leader_replica = &self.brokers[&state.leader].memory.as_ref().expect("alive").replicas[key];
            assert_eq!(
                leader_replica.high_watermark(),
                leader_log.log_end(),
                "{key:?}: the leader's high watermark did not reach its log end"
            );
            for replica in &state.replicas {
                let log = &self.brokers[replica].logs[key];
                assert!(
                    log.records == leader_log.records,
                    "{key:?}: replica {replica}'s log differs from the leader's"
                );
            }
        }
        for (key, offset, value) in &self.checker.acked {
            let leader = image.partitions[key].leader;
            let record = self.brokers[&leader].logs[key].records.get(*offset as usize);
            assert_eq!(
                record.map(|r| r.value),
                Some(*value),
                "acknowledged value {value} at {offset} of {key:?} is lost"
            );
        }
    }
}

/// What a run did, for the test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunSummary {
    pub steps: u64,
    pub acked: usize,
    pub committed: usize,
}

fn short(key: &PartitionKey) -> String {
    format!("p{}", key.partition)
}

fn describe(record: &MetadataRecord) -> String {
    match record {
        MetadataRecord::PartitionChange(change) => {
            let s = &change.state;
            format!(
                "{}: leader {} epoch {} isr {:?} (partition epoch {})",
                short(&change.key),
                s.leader,
                s.leader_epoch,
                s.isr,
                s.partition_epoch
            ) + &if s.is_reassigning() {
                format!(" replicas {:?} adding {:?} removing {:?}", s.replicas, s.adding_replicas, s.removing_replicas)
            } else {
                format!(" replicas {:?}", s.replicas)
            }
        }
        MetadataRecord::RegisterBroker(r) => format!("register broker {}", r.broker),
        other => format!("{other:?}"),
    }
}
