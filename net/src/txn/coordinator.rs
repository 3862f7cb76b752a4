//! The transaction coordinator of one shard: the transactional ids whose
//! `__transaction_state` partition this shard owns (in a cluster, leads).
//!
//! Every state change is written to the id's partition before anyone hears of it, so a
//! restarted or new coordinator replays the partition and carries on: a transaction found
//! in PrepareCommit/PrepareAbort has its markers written again (markers are idempotent for
//! the partitions: a second marker for a finished transaction completes nothing), one found
//! Ongoing is aborted once its timeout passes. One change per id is in flight at a time;
//! a request that meets one in flight gets CONCURRENT_TRANSACTIONS and retries, as with
//! Kafka.

use super::records::{
    decode_key, decode_value, encode_key, encode_value, StoredTxn, TxnStatus, TRANSACTION_STATE_TOPIC,
};
use super::state::{self, EndDecision, InitDecision};
use crate::context::ShardContext;
use crate::coordination::{replay, wall_clock_ms as now_ms};
use crate::error::{KafkaError, KafkaResult};
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::partition_ops::{PartitionCall, PartitionOp, PartitionReply};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_client::KafkaConnection;
use sluice_engine::batch::ControlType;
use sluice_engine::batch_builder::BatchBuilder;
use sluice_engine::shard::partition_dir_name;
use sluice_engine::TxnMarker;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// First pause before markers that could not be written are tried again; it doubles up
/// to [`MARKER_RETRY_MAX`].
const MARKER_RETRY_FIRST: Duration = Duration::from_millis(50);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(2);

/// Idle WriteTxnMarkers connections kept per broker.
const MARKER_CONNECTIONS_PER_BROKER: usize = 4;

/// A transactional id's state and where it lives.
struct TxnEntry {
    state: StoredTxn,
    /// Its `__transaction_state` partition.
    partition: i32,
}

/// A transaction as DescribeTransactions and ListTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Its state.
    pub state: StoredTxn,
}

/// The transactional ids of one shard.
#[derive(Default)]
pub struct TxnCoordinator {
    txns: RefCell<HashMap<String, TxnEntry>>,
    /// Ids with a state change being written (one at a time per id).
    writing: RefCell<HashSet<String>>,
    /// `__transaction_state` partitions being loaded (in a cluster, after becoming leader).
    loading: RefCell<BTreeSet<i32>>,
    /// Idle connections to other brokers for WriteTxnMarkers, by address: taken for a
    /// request, put back after a good answer, dropped after a failure.
    marker_connections: RefCell<HashMap<String, Vec<KafkaConnection>>>,
}

/// Holds an id's "change in flight" mark; released when dropped, whatever happened.
struct Writing<'a> {
    coordinator: &'a TxnCoordinator,
    id: String,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.coordinator.writing.borrow_mut().remove(&self.id);
    }
}

impl TxnCoordinator {
    /// Marks a partition as being loaded: its ids answer COORDINATOR_LOAD_IN_PROGRESS.
    pub fn start_loading(&self, partition: i32) {
        self.loading.borrow_mut().insert(partition);
    }

    /// Whether the partition's ids are still being loaded.
    pub fn is_loading(&self, partition: i32) -> bool {
        self.loading.borrow().contains(&partition)
    }

    /// Replays this shard's `__transaction_state` partitions (the last value per id wins,
    /// a tombstone forgets it), then finishes what was decided but not completed: markers
    /// of prepared transactions are written again.
    pub async fn load(&self, context: &Rc<ShardContext>, partitions: &[i32]) -> KafkaResult<()> {
        for &partition in partitions {
            self.start_loading(partition);
            let loaded = self.load_partition(context, partition).await;
            self.loading.borrow_mut().remove(&partition);
            loaded?;
        }
        Ok(())
    }

    async fn load_partition(&self, context: &Rc<ShardContext>, partition: i32) -> KafkaResult<()> {
        let Some(log) = context.engine.partition(&partition_dir_name(TRANSACTION_STATE_TOPIC, partition)) else {
            return Ok(());
        };
        let mut found: HashMap<String, Option<StoredTxn>> = HashMap::new();
        replay(&log, |header, records| {
            if header.is_control() {
                return Ok(());
            }
            for record in records {
                let Some(key) = record.key else { continue };
                let id = decode_key(&key).map_err(|e| format!("bad key: {e}"))?;
                let value =
                    record.value.map(|v| decode_value(&v)).transpose().map_err(|e| format!("bad value: {e}"))?;
                found.insert(id, value);
            }
            Ok(())
        })
        .await?;
        let mut prepared = Vec::new();
        {
            let mut txns = self.txns.borrow_mut();
            let ids = found.values().filter(|state| state.is_some()).count();
            if ids > 0 {
                tracing::info!(partition = log.name(), transactional_ids = ids, "transaction coordinator loaded");
            }
            for (id, state) in found {
                let Some(state) = state else { continue };
                if state.status.is_preparing() {
                    prepared.push(id.clone());
                }
                txns.insert(id, TxnEntry { state, partition });
            }
        }
        for id in prepared {
            glommio::spawn_local(complete_transaction(context.clone(), id)).detach();
        }
        Ok(())
    }

    /// Forgets the ids of a `__transaction_state` partition this broker no longer leads.
    pub fn unload(&self, partition: i32) {
        self.txns.borrow_mut().retain(|_, entry| entry.partition != partition);
    }

    fn state_of(&self, id: &str) -> Option<StoredTxn> {
        self.txns.borrow().get(id).map(|entry| entry.state.clone())
    }

    /// Takes the id's "change in flight" mark, or CONCURRENT_TRANSACTIONS when another
    /// change of it is being written.
    fn begin_write(&self, id: &str) -> Result<Writing<'_>, ResponseError> {
        if !self.writing.borrow_mut().insert(id.to_string()) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(Writing { coordinator: self, id: id.to_string() })
    }

    /// Writes an id's new state to its partition, then installs it.
    async fn store(&self, context: &ShardContext, id: &str, partition: i32, state: StoredTxn) -> KafkaResult<()> {
        let mut batch = BatchBuilder::new(now_ms());
        batch.push(Some(&encode_key(id)), Some(&encode_value(&state)), &[], now_ms());
        context.append_as_coordinator(TRANSACTION_STATE_TOPIC, partition, batch.build()).await?;
        self.txns.borrow_mut().insert(id.to_string(), TxnEntry { state, partition });
        Ok(())
    }

    /// InitProducerId for a transactional id: `(producer id, epoch)`.
    pub async fn init_producer_id(
        &self,
        context: &Rc<ShardContext>,
        id: &str,
        partition: i32,
        timeout_ms: i32,
        expected: (i64, i16),
    ) -> KafkaResult<Result<(i64, i16), ResponseError>> {
        let writing = match self.begin_write(id) {
            Ok(writing) => writing,
            Err(code) => return Ok(Err(code)),
        };
        let current = self.state_of(id);
        let decision = state::init_producer_id(current.as_ref(), timeout_ms, expected, now_ms(), || {
            context.allocate_producer_id()
        });
        match decision {
            Err(code) => Ok(Err(code)),
            Ok(InitDecision::Ready(next)) => {
                let answer = (next.producer_id, next.producer_epoch);
                self.store(context, id, partition, next).await?;
                Ok(Ok(answer))
            }
            Ok(InitDecision::AbortFirst(aborting)) => {
                tracing::info!(transactional_id = id, "a new producer instance aborts the open transaction");
                self.store(context, id, partition, aborting).await?;
                drop(writing);
                glommio::spawn_local(complete_transaction(context.clone(), id.to_string())).detach();
                Ok(Err(ResponseError::ConcurrentTransactions))
            }
        }
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn. With `verify_only` (AddPartitionsToTxn v4+
    /// from a partition leader), only checks that the partitions are in the transaction.
    #[allow(clippy::too_many_arguments)] // one request's fields
    pub async fn add_partitions(
        &self,
        context: &ShardContext,
        id: &str,
        partition: i32,
        producer: (i64, i16),
        partitions: Vec<(String, i32)>,
        verify_only: bool,
    ) -> KafkaResult<Result<(), ResponseError>> {
        let Some(current) = self.state_of(id) else { return Ok(Err(ResponseError::InvalidProducerIdMapping)) };
        if verify_only {
            let added = current.status == TxnStatus::Ongoing
                && (current.producer_id, current.producer_epoch) == producer
                && partitions.iter().all(|p| current.partitions.contains(p));
            return Ok(if added { Ok(()) } else { Err(ResponseError::InvalidTxnState) });
        }
        let _writing = match self.begin_write(id) {
            Ok(writing) => writing,
            Err(code) => return Ok(Err(code)),
        };
        match state::add_partitions(&current, producer.0, producer.1, &partitions, now_ms()) {
            Err(code) => Ok(Err(code)),
            Ok(None) => Ok(Ok(())),
            Ok(Some(next)) => self.store(context, id, partition, next).await.map(Ok),
        }
    }

    /// EndTxn: answered once the decision is durable; the markers follow.
    pub async fn end_transaction(
        &self,
        context: &Rc<ShardContext>,
        id: &str,
        partition: i32,
        producer: (i64, i16),
        commit: bool,
    ) -> KafkaResult<Result<(), ResponseError>> {
        let Some(current) = self.state_of(id) else { return Ok(Err(ResponseError::InvalidProducerIdMapping)) };
        let writing = match self.begin_write(id) {
            Ok(writing) => writing,
            Err(code) => return Ok(Err(code)),
        };
        match state::end_transaction(&current, producer.0, producer.1, commit, now_ms()) {
            Err(code) => Ok(Err(code)),
            Ok(EndDecision::AlreadyDone) => Ok(Ok(())),
            Ok(EndDecision::Prepare(prepared)) => {
                self.store(context, id, partition, prepared).await?;
                drop(writing);
                glommio::spawn_local(complete_transaction(context.clone(), id.to_string())).detach();
                Ok(Ok(()))
            }
        }
    }

    /// DescribeTransactions for one id (`None`: not known here).
    pub fn describe(&self, id: &str) -> Option<TxnDescription> {
        self.state_of(id).map(|state| TxnDescription { transactional_id: id.to_string(), state })
    }

    /// Every transactional id this shard coordinates (ListTransactions).
    pub fn list(&self) -> Vec<TxnDescription> {
        let txns = self.txns.borrow();
        txns.iter()
            .map(|(id, entry)| TxnDescription { transactional_id: id.clone(), state: entry.state.clone() })
            .collect()
    }

    /// Aborts the open transactions that outlived their timeout, bumping the epoch so the
    /// producer that vanished (or stalled) is fenced; forgets ids unused for longer than
    /// `transactional.id.expiration.ms`.
    pub async fn tick(&self, context: &Rc<ShardContext>) {
        self.abort_expired_transactions(context).await;
        self.forget_idle_ids(context).await;
    }

    /// Writes a tombstone for each id with no transaction open and no change for longer
    /// than `transactional.id.expiration.ms`, then forgets it (as Kafka's coordinator).
    async fn forget_idle_ids(&self, context: &ShardContext) {
        let expiration = context.broker.txn_limits.id_expiration.as_millis().min(i64::MAX as u128) as i64;
        let now = now_ms();
        let idle: Vec<(String, i32)> = self
            .txns
            .borrow()
            .iter()
            .filter(|(id, entry)| {
                let settled = matches!(
                    entry.state.status,
                    TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
                );
                settled && now - entry.state.last_update_ms > expiration && !self.writing.borrow().contains(*id)
            })
            .map(|(id, entry)| (id.clone(), entry.partition))
            .collect();
        for (id, partition) in idle {
            if !context.leads_internal_partition(TRANSACTION_STATE_TOPIC, partition) {
                continue;
            }
            let Ok(_writing) = self.begin_write(&id) else { continue };
            let mut batch = BatchBuilder::new(now);
            batch.push(Some(&encode_key(&id)), None, &[], now);
            match context.append_as_coordinator(TRANSACTION_STATE_TOPIC, partition, batch.build()).await {
                Ok(()) => {
                    self.txns.borrow_mut().remove(&id);
                    tracing::info!(transactional_id = id, "transactional id expired");
                }
                Err(error) => tracing::warn!(transactional_id = id, error = %error.message, "cannot expire"),
            }
        }
    }

    async fn abort_expired_transactions(&self, context: &Rc<ShardContext>) {
        let now = now_ms();
        let expired: Vec<(String, i32, StoredTxn)> = self
            .txns
            .borrow()
            .iter()
            .filter(|(id, entry)| state::has_expired(&entry.state, now) && !self.writing.borrow().contains(*id))
            .map(|(id, entry)| (id.clone(), entry.partition, entry.state.clone()))
            .collect();
        for (id, partition, current) in expired {
            if !context.leads_internal_partition(TRANSACTION_STATE_TOPIC, partition) {
                continue;
            }
            let Ok(writing) = self.begin_write(&id) else { continue };
            tracing::info!(
                transactional_id = id,
                timeout_ms = current.timeout_ms,
                "aborting a transaction past its timeout"
            );
            let aborting = state::prepare_abort_with_bump(&current, now);
            match self.store(context, &id, partition, aborting).await {
                Ok(()) => {
                    drop(writing);
                    glommio::spawn_local(complete_transaction(context.clone(), id)).detach();
                }
                Err(error) => tracing::warn!(transactional_id = id, error = %error.message, "cannot abort"),
            }
        }
    }
}

/// Writes the markers of a prepared transaction until every partition has one (or is
/// gone), then stores the completed state. Stops if this shard stops coordinating the id:
/// the next coordinator replays the prepared state and does the same.
async fn complete_transaction(context: Rc<ShardContext>, id: String) {
    let coordinator = &context.txns;
    let mut pause = MARKER_RETRY_FIRST;
    let mut remaining: Option<BTreeSet<(String, i32)>> = None;
    loop {
        let Some(entry) = coordinator.txns.borrow().get(&id).map(|e| (e.state.clone(), e.partition)) else { return };
        let (prepared, partition) = entry;
        if !prepared.status.is_preparing() || !context.leads_internal_partition(TRANSACTION_STATE_TOPIC, partition) {
            return;
        }
        let marker = TxnMarker {
            producer_id: prepared.producer_id,
            producer_epoch: prepared.producer_epoch,
            coordinator_epoch: context.internal_partition_epoch(TRANSACTION_STATE_TOPIC, partition),
            control: if prepared.status == TxnStatus::PrepareCommit { ControlType::Commit } else { ControlType::Abort },
        };
        let targets = remaining.take().unwrap_or_else(|| prepared.partitions.clone());
        let failed = write_markers(&context, marker, &targets).await;
        if failed.is_empty() {
            let Ok(writing) = coordinator.begin_write(&id) else {
                glommio::timer::sleep(MARKER_RETRY_FIRST).await;
                continue;
            };
            let done = state::complete(&prepared, now_ms());
            match coordinator.store(&context, &id, partition, done).await {
                Ok(()) => return drop(writing),
                Err(error) => tracing::warn!(transactional_id = id, error = %error.message, "cannot complete"),
            }
        } else {
            tracing::debug!(transactional_id = id, failed = failed.len(), "markers to retry");
            remaining = Some(failed);
        }
        glommio::timer::sleep(pause).await;
        pause = (pause * 2).min(MARKER_RETRY_MAX);
    }
}

/// Where a partition's marker is written from this broker.
enum MarkerRoute {
    /// This broker leads it (always on one node).
    Here,
    /// Another broker leads it: `host:port`.
    Broker(String),
    /// No leader now: try again later.
    Nowhere,
}

fn marker_route(context: &ShardContext, topic: &str, partition: i32) -> MarkerRoute {
    let metadata = context.metadata();
    let Some(view) = metadata.cluster.as_ref() else { return MarkerRoute::Here };
    let leader = view.partition(topic, partition).map_or(-1, |(_, state)| state.leader);
    if leader == context.broker.node_id {
        return MarkerRoute::Here;
    }
    match view.image.brokers.get(&leader).filter(|b| !b.fenced) {
        Some(broker) => MarkerRoute::Broker(context.inter_broker().address_of(broker)),
        None => MarkerRoute::Nowhere,
    }
}

/// Writes one marker to each partition, locally or through the leader's WriteTxnMarkers.
/// Returns the partitions to try again; a partition that no longer exists, or whose
/// producer state already moved past this marker, needs none (Kafka drops those too).
async fn write_markers(
    context: &Rc<ShardContext>,
    marker: TxnMarker,
    partitions: &BTreeSet<(String, i32)>,
) -> BTreeSet<(String, i32)> {
    let mut here = Vec::new();
    let mut remote: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
    let mut failed = BTreeSet::new();
    for (topic, partition) in partitions {
        match marker_route(context, topic, partition.to_owned()) {
            MarkerRoute::Here => here.push((topic.clone(), *partition)),
            MarkerRoute::Broker(address) => remote.entry(address).or_default().push((topic.clone(), *partition)),
            MarkerRoute::Nowhere => {
                failed.insert((topic.clone(), *partition));
            }
        }
    }
    let results = write_markers_here(context, marker, &here).await;
    for ((topic, partition), result) in here.into_iter().zip(results) {
        if needs_retry(&topic, partition, result) {
            failed.insert((topic, partition));
        }
    }
    for (address, partitions) in remote {
        let results = send_markers(context, &address, marker, &partitions).await;
        for ((topic, partition), result) in partitions.into_iter().zip(results) {
            if needs_retry(&topic, partition, result) {
                failed.insert((topic, partition));
            }
        }
    }
    failed
}

fn needs_retry(topic: &str, partition: i32, result: Result<(), ResponseError>) -> bool {
    match result {
        Ok(()) => false,
        Err(
            code @ (ResponseError::UnknownTopicOrPartition
            | ResponseError::InvalidProducerEpoch
            | ResponseError::TransactionCoordinatorFenced),
        ) => {
            tracing::warn!(topic, partition, ?code, "transaction marker dropped");
            false
        }
        Err(code) => {
            tracing::debug!(topic, partition, ?code, "transaction marker to retry");
            true
        }
    }
}

/// Writes a marker to partitions this broker leads: `__consumer_offsets` partitions
/// through their group coordinator (pending offsets commit or vanish), the others as
/// partition calls on their shards. One result per partition.
pub async fn write_markers_here(
    context: &Rc<ShardContext>,
    marker: TxnMarker,
    partitions: &[(String, i32)],
) -> Vec<Result<(), ResponseError>> {
    let mut results: Vec<Option<Result<(), ResponseError>>> = vec![None; partitions.len()];
    let mut calls = Vec::new();
    let mut call_indexes = Vec::new();
    for (index, (topic, partition)) in partitions.iter().enumerate() {
        if topic == CONSUMER_OFFSETS_TOPIC {
            let done = context.complete_offsets_transaction(*partition, marker).await;
            results[index] = Some(done.map_err(|e| e.code));
        } else {
            call_indexes.push(index);
            calls.push(PartitionCall {
                topic: topic.clone(),
                partition: *partition,
                op: PartitionOp::WriteMarker(marker),
            });
        }
    }
    for (index, answer) in call_indexes.into_iter().zip(context.call_partitions(calls, None).await) {
        results[index] = Some(match answer {
            Ok(PartitionReply::MarkerWritten) => Ok(()),
            Ok(other) => unreachable!("a marker call answers MarkerWritten, not {other:?}"),
            Err(error) => Err(error.code),
        });
    }
    results.into_iter().map(|r| r.expect("every partition answered")).collect()
}

/// WriteTxnMarkers to another broker, for the partitions it leads. One result each; a
/// connection failure fails them all (to be retried).
async fn send_markers(
    context: &ShardContext,
    address: &str,
    marker: TxnMarker,
    partitions: &[(String, i32)],
) -> Vec<Result<(), ResponseError>> {
    let topics = super::records::by_topic(partitions)
        .into_iter()
        .map(|(topic, partitions)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(partitions)
        })
        .collect();
    let request = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(marker.producer_id))
        .with_producer_epoch(marker.producer_epoch)
        .with_transaction_result(marker.control == ControlType::Commit)
        .with_coordinator_epoch(marker.coordinator_epoch)
        .with_topics(topics)]);
    let coordinator = &context.txns;
    let idle = coordinator.marker_connections.borrow_mut().get_mut(address).and_then(Vec::pop);
    let sent = async {
        let mut connection = match idle {
            Some(connection) => connection,
            None => context.inter_broker().connect(address, "sluice-transaction-coordinator").await?,
        };
        let response = connection.send(&request).await?;
        Ok::<_, sluice_client::ClientError>((response, connection))
    };
    let response = match sent.await {
        Ok((response, connection)) => {
            let mut pool = coordinator.marker_connections.borrow_mut();
            let idle = pool.entry(address.to_string()).or_default();
            if idle.len() < MARKER_CONNECTIONS_PER_BROKER {
                idle.push(connection);
            }
            response
        }
        Err(error) => {
            tracing::debug!(address, %error, "WriteTxnMarkers failed");
            return vec![Err(ResponseError::NetworkException); partitions.len()];
        }
    };
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    for result in response.markers {
        for topic in result.topics {
            for partition in topic.partitions {
                codes.insert((topic.name.to_string(), partition.partition_index), partition.error_code);
            }
        }
    }
    partitions
        .iter()
        .map(|key| match codes.get(key).copied() {
            Some(0) => Ok(()),
            Some(code) => Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)),
            None => Err(ResponseError::UnknownServerError),
        })
        .collect()
}

/// The same error a Kafka client sees when its transactional id is not coordinated here.
pub fn not_coordinator(partition: i32) -> KafkaError {
    KafkaError::new(
        ResponseError::NotCoordinator,
        format!("this broker does not lead {TRANSACTION_STATE_TOPIC}-{partition}"),
    )
}
