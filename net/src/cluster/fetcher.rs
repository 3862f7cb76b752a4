//! A shard's follower fetchers: one task per leader broker, fetching every partition this
//! shard follows from that leader in one Fetch request (Kafka's replica fetcher), with the
//! replica id set, each partition from its fsynced log end with its last epoch. Records
//! are appended as the leader stored them and fsynced before the next fetch.

use super::replicas::{EngineLog, ReplicaHandle};
use crate::context::ShardContext;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_client::connection::KafkaConnection;
use sluice_engine::batch::{peek_batch_size, BatchHeader};
use sluice_replication::partition::{FetchReply, FollowerStep, ReplicaFetch};
use sluice_replication::ReplicationError;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// How long the leader may hold a fetch with nothing new (Kafka's `replica.fetch.wait.max.ms`).
const FETCH_MAX_WAIT: Duration = Duration::from_millis(500);
/// Bytes per partition and per response (`replica.fetch.max.bytes`, `replica.fetch.response.max.bytes`).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 10 << 20;
/// Wait before trying again after an error or with nothing to fetch.
const BACKOFF: Duration = Duration::from_millis(100);
/// A fetcher with no partition to fetch for this long ends.
const IDLE_ROUNDS_MAX: u32 = 50;

impl ShardContext {
    /// Starts the fetcher for `leader` on this shard unless it runs.
    pub(crate) fn ensure_fetcher(self: &Rc<Self>, leader: i32) {
        if leader == self.broker.node_id || !self.cluster.fetchers.borrow_mut().insert(leader) {
            return;
        }
        glommio::spawn_local(self.clone().run_fetcher(leader)).detach();
    }

    /// The partitions this shard follows `leader` in, with what to fetch for each.
    async fn partitions_to_fetch(&self, leader: i32) -> Vec<(Rc<ReplicaHandle>, ReplicaFetch)> {
        let handles: Vec<Rc<ReplicaHandle>> = self.cluster.replicas.borrow().values().cloned().collect();
        let mut fetches = Vec::new();
        for handle in handles {
            let follows = {
                let replica = handle.replica.borrow();
                !replica.is_leader() && replica.state().leader == leader
            };
            if !follows {
                continue;
            }
            if handle.log.durable_end() < handle.log.log_end_offset() {
                // Left unflushed from when it led (a background flush policy): the fetch
                // offset must be durable.
                if let Err(error) = handle.log.flush().await {
                    tracing::warn!(partition = %handle.log.name(), %error, "cannot flush before fetching");
                    continue;
                }
            }
            let fetch = handle.replica.borrow().next_fetch(&EngineLog(&handle.log));
            if let Some(fetch) = fetch {
                fetches.push((handle, fetch));
            }
        }
        fetches
    }

    async fn run_fetcher(self: Rc<Self>, leader: i32) {
        let mut connection: Option<KafkaConnection> = None;
        let mut idle_rounds = 0;
        loop {
            let fetches = self.partitions_to_fetch(leader).await;
            if fetches.is_empty() {
                idle_rounds += 1;
                if idle_rounds > IDLE_ROUNDS_MAX {
                    break;
                }
                glommio::timer::sleep(BACKOFF).await;
                continue;
            }
            idle_rounds = 0;
            if connection.is_none() {
                let Some(address) = self.broker_address(leader) else {
                    glommio::timer::sleep(BACKOFF).await;
                    continue;
                };
                let client_id = format!("sluice-replica-{}", self.broker.node_id);
                match self.inter_broker().connect(&address, &client_id).await {
                    Ok(connected) => connection = Some(connected),
                    Err(error) => {
                        tracing::debug!(leader, %address, %error, "cannot reach the leader");
                        glommio::timer::sleep(BACKOFF).await;
                        continue;
                    }
                }
            }
            let request = self.replica_fetch_request(&fetches);
            let response = match connection.as_mut().expect("connected above").send(&request).await {
                Ok(response) => response,
                Err(error) => {
                    tracing::debug!(leader, %error, "replica fetch failed");
                    connection = None;
                    glommio::timer::sleep(BACKOFF).await;
                    continue;
                }
            };
            let mut answers = BTreeMap::new();
            for topic in response.responses {
                for partition in topic.partitions {
                    answers.insert((topic.topic.0.to_string(), partition.partition_index), partition);
                }
            }
            let mut back_off = false;
            for (handle, fetch) in fetches {
                let Some(answer) = answers.remove(&(handle.topic.clone(), handle.partition)) else { continue };
                let behind_log_start =
                    answer.error_code == ReplicationError::OffsetOutOfRange.code() && answer.log_start_offset >= 0;
                let reply = if behind_log_start {
                    FetchReply::BehindLogStart { log_start: answer.log_start_offset }
                } else if answer.error_code != 0 {
                    // Anything else the leader refuses with: wait and fetch again.
                    let error = ReplicationError::from_code(answer.error_code);
                    FetchReply::Error(error.unwrap_or(ReplicationError::NotLeaderOrFollower))
                } else if answer.diverging_epoch.epoch >= 0 || answer.diverging_epoch.end_offset >= 0 {
                    FetchReply::Diverging {
                        epoch: answer.diverging_epoch.epoch,
                        end_offset: answer.diverging_epoch.end_offset,
                    }
                } else {
                    FetchReply::Records {
                        from: fetch.fetch_offset,
                        high_watermark: answer.high_watermark,
                        log_start: answer.log_start_offset,
                    }
                };
                let records = answer.records.unwrap_or_default();
                back_off |= !self.apply_fetched(&handle, &fetch, reply, records).await;
            }
            if back_off {
                glommio::timer::sleep(BACKOFF).await;
            }
        }
        self.cluster.fetchers.borrow_mut().remove(&leader);
    }

    /// Does what the protocol says with one partition's answer; false to back off.
    async fn apply_fetched(
        self: &Rc<Self>,
        handle: &ReplicaHandle,
        fetch: &ReplicaFetch,
        reply: FetchReply,
        records: Bytes,
    ) -> bool {
        let step = handle.replica.borrow().on_fetch_reply(fetch, &reply, &EngineLog(&handle.log));
        match step {
            FollowerStep::Append { leader_high_watermark, leader_log_start } => {
                let batches = split_batches(records);
                let first_base =
                    batches.first().and_then(|b| BatchHeader::parse(b, usize::MAX).ok()).map(|h| h.base_offset());
                let log_end = handle.log.log_end_offset();
                let restarted = match first_base {
                    // The leader's log start falls inside its first batch (DeleteRecords
                    // cut there) and this log is empty at that start: it starts at the
                    // batch's base instead, as Kafka's follower does.
                    Some(base) if base < log_end && handle.log.log_start_offset() == log_end => {
                        if let Err(error) = self.restart_replica_at(handle, base).await {
                            tracing::warn!(partition = %handle.log.name(), %error, "cannot start the log again");
                            return false;
                        }
                        let Some(restarted) = self.replica_named(handle.log.name()) else { return false };
                        Some(restarted)
                    }
                    _ => None,
                };
                let handle: &ReplicaHandle = restarted.as_deref().unwrap_or(handle);
                if !batches.is_empty() {
                    if let Err(error) = handle.log.append_replicated(batches).await {
                        tracing::info!(partition = %handle.log.name(), %error, "replicated append refused");
                        return false;
                    }
                }
                let still_following = {
                    let replica = handle.replica.borrow();
                    !replica.is_leader() && replica.leader_epoch() == fetch.leader_epoch
                };
                if still_following {
                    handle.replica.borrow_mut().follower_appended(leader_high_watermark, &EngineLog(&handle.log));
                    handle.publish_high_watermark();
                    let adopt = handle.replica.borrow().log_start_to_adopt(leader_log_start, &EngineLog(&handle.log));
                    if let Some(offset) = adopt {
                        let ticket = handle.log.append_ticket();
                        if let Err(error) = handle.log.delete_records_before(ticket, offset).await {
                            tracing::warn!(partition = %handle.log.name(), offset, %error, "cannot follow the leader's log start");
                        }
                    }
                }
                true
            }
            FollowerStep::RestartAt { offset } => {
                tracing::info!(partition = %handle.log.name(), log_end = handle.log.log_end_offset(), offset,
                    "behind the leader's log start: starting the log again there");
                if let Err(error) = self.restart_replica_at(handle, offset).await {
                    tracing::warn!(partition = %handle.log.name(), %error, "cannot start the log again");
                }
                false
            }
            FollowerStep::Truncate { to } => {
                tracing::info!(partition = %handle.log.name(), from = handle.log.log_end_offset(), to, "truncating a diverged tail");
                if let Err(error) = handle.log.truncate_to(to).await {
                    tracing::warn!(partition = %handle.log.name(), %error, "truncation failed");
                    return false;
                }
                true
            }
            FollowerStep::Backoff => false,
            FollowerStep::Stale => true,
        }
    }

    fn replica_fetch_request(&self, fetches: &[(Rc<ReplicaHandle>, ReplicaFetch)]) -> FetchRequest {
        let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for (handle, fetch) in fetches {
            topics.entry(handle.topic.clone()).or_default().push(
                FetchPartition::default()
                    .with_partition(handle.partition)
                    .with_current_leader_epoch(fetch.leader_epoch)
                    .with_fetch_offset(fetch.fetch_offset)
                    .with_last_fetched_epoch(fetch.last_fetched_epoch.unwrap_or(-1))
                    .with_partition_max_bytes(PARTITION_MAX_BYTES),
            );
        }
        let topics = topics
            .into_iter()
            .map(|(topic, partitions)| {
                FetchTopic::default().with_topic(TopicName(StrBytes::from_string(topic))).with_partitions(partitions)
            })
            .collect();
        FetchRequest::default()
            .with_replica_id(self.broker.node_id.into())
            .with_max_wait_ms(FETCH_MAX_WAIT.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(RESPONSE_MAX_BYTES)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// A broker's advertised address on the inter-broker listener, from the metadata.
    fn broker_address(&self, broker: i32) -> Option<String> {
        let metadata = self.metadata();
        let registered = metadata.cluster.as_ref()?.image.brokers.get(&broker)?;
        Some(self.inter_broker().address_of(registered))
    }
}

/// The record data of a fetch response, batch by batch (a partial batch at the end, cut
/// by the byte limit, is left out).
fn split_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    while !records.is_empty() {
        match peek_batch_size(&records, usize::MAX) {
            Ok(size) if size <= records.len() => batches.push(records.split_to(size)),
            _ => break,
        }
    }
    batches
}
