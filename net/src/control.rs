//! Metadata changes (CreateTopics, DeleteTopics, CreatePartitions, config changes,
//! credentials and ACLs): made by shard 0 alone, stored durably, then pushed to every
//! shard, which opens or deletes its partitions to match. A change is answered only after
//! every shard applied it, so a client that created a topic can produce to it at once over
//! any connection. In a cluster the controller makes them, and the answer waits for this
//! broker's metadata to show them.

use crate::context::ShardContext;
use crate::error::{KafkaError, KafkaResult};
use crate::metadata::{check_topic_name, Metadata, TopicMeta};
use crate::routing::ShardMessage;
use crate::security::store::{acl_to_stored, credential_to_stored, SecurityState};
use crate::topic_config::{log_config, TopicConfigs};
use kafka_protocol::ResponseError;
use sluice_engine::shard::{parse_partition_dir_name, partition_dir_name};
use sluice_engine::shard_reply;
use sluice_security::acl::AclBinding;
use sluice_security::sasl::{ScramCredential, ScramMechanism};
use std::rc::Rc;
use std::sync::Arc;

/// Kafka's message for the removal of a credential the user does not have.
const CREDENTIAL_NOT_FOUND: &str = "Attempt to delete a user credential that does not exist";

/// Most partitions one topic may have (bounds the work one request can ask for).
pub const PARTITIONS_PER_TOPIC_MAX: usize = 10_000;

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Number of partitions.
    pub partitions: usize,
    /// Configs set at creation.
    pub configs: TopicConfigs,
    /// Replicas per partition (`None`: `default.replication.factor`); one node has one.
    pub replication_factor: Option<usize>,
    /// Each partition's replicas when assigned by hand (checked already), by index.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// Partitions to add to a topic.
#[derive(Debug, Clone)]
pub struct PartitionGrowth {
    /// The topic.
    pub name: String,
    /// Its new partition count.
    pub count: usize,
    /// The new partitions' replicas when assigned by hand (checked already).
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// One change to the metadata; each item succeeds or fails on its own.
#[derive(Debug, Clone)]
pub enum MetadataChange {
    /// Create topics (TOPIC_ALREADY_EXISTS for existing names).
    CreateTopics(Vec<NewTopic>),
    /// Delete topics by name.
    DeleteTopics(Vec<String>),
    /// Grow topics to a new partition count.
    CreatePartitions(Vec<PartitionGrowth>),
    /// Replace the configs set on topics.
    SetTopicConfigs(Vec<(String, TopicConfigs)>),
    /// Change users' credentials or the ACLs.
    Security(Vec<SecurityChange>),
}

/// A change to users' SCRAM credentials or to the ACLs (checked already).
#[derive(Debug, Clone)]
pub enum SecurityChange {
    /// Create or replace a credential.
    SetCredential {
        /// The user.
        user: String,
        /// Its mechanism.
        mechanism: ScramMechanism,
        /// The credential (never the password).
        credential: ScramCredential,
    },
    /// Remove a credential: RESOURCE_NOT_FOUND if there is none.
    RemoveCredential {
        /// The user.
        user: String,
        /// Its mechanism.
        mechanism: ScramMechanism,
    },
    /// Add an ACL binding (one that exists already is a success, as in Kafka).
    AddAcl(AclBinding),
    /// Remove an ACL binding (one already gone is a success).
    RemoveAcl(AclBinding),
}

impl MetadataChange {
    fn len(&self) -> usize {
        match self {
            MetadataChange::CreateTopics(items) => items.len(),
            MetadataChange::DeleteTopics(items) => items.len(),
            MetadataChange::CreatePartitions(items) => items.len(),
            MetadataChange::SetTopicConfigs(items) => items.len(),
            MetadataChange::Security(items) => items.len(),
        }
    }
}

fn unknown_topic(name: &str) -> KafkaError {
    KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("topic {name} does not exist"))
}

/// Checks a new topic against the broker's rules, without creating it.
pub fn validate_new_topic(context: &ShardContext, topic: &NewTopic) -> KafkaResult<()> {
    check_topic_name(&topic.name).map_err(|e| KafkaError::new(ResponseError::InvalidTopicException, e))?;
    if topic.partitions == 0 || topic.partitions > PARTITIONS_PER_TOPIC_MAX {
        return Err(KafkaError::new(
            ResponseError::InvalidPartitions,
            format!("{} partitions: must be in 1..={PARTITIONS_PER_TOPIC_MAX}", topic.partitions),
        ));
    }
    log_config(&context.log_defaults(), &topic.configs)
        .map_err(|e| KafkaError::new(ResponseError::InvalidConfig, e))?;
    Ok(())
}

fn apply_security_change(security: &mut SecurityState, change: SecurityChange) -> KafkaResult<()> {
    match change {
        SecurityChange::SetCredential { user, mechanism, credential } => {
            security.set_credential(&user, mechanism, credential);
            tracing::info!(user, mechanism = mechanism.name(), "SCRAM credential set");
        }
        SecurityChange::RemoveCredential { user, mechanism } => {
            if !security.remove_credential(&user, mechanism) {
                return Err(KafkaError::new(ResponseError::ResourceNotFound, CREDENTIAL_NOT_FOUND));
            }
            tracing::info!(user, mechanism = mechanism.name(), "SCRAM credential removed");
        }
        SecurityChange::AddAcl(binding) => {
            tracing::info!(acl = ?binding, "ACL added");
            security.acls_mut().insert(binding);
        }
        SecurityChange::RemoveAcl(binding) => {
            tracing::info!(acl = ?binding, "ACL removed");
            security.acls_mut().remove(&binding);
        }
    }
    Ok(())
}

/// The controller's form of a change: Kafka's codes, and the credential's bytes.
fn cluster_security_change(change: SecurityChange) -> sluice_replication::controller::SecurityChange {
    use sluice_replication::controller::SecurityChange as Cluster;
    match change {
        SecurityChange::SetCredential { user, mechanism, credential } => {
            Cluster::SetCredential { user, mechanism: mechanism.code(), credential: credential_to_stored(credential) }
        }
        SecurityChange::RemoveCredential { user, mechanism } => {
            Cluster::RemoveCredential { user, mechanism: mechanism.code() }
        }
        SecurityChange::AddAcl(binding) => Cluster::AddAcl(acl_to_stored(&binding)),
        SecurityChange::RemoveAcl(binding) => Cluster::RemoveAcl(acl_to_stored(&binding)),
    }
}

impl ShardContext {
    /// Makes a metadata change (on shard 0, wherever it was asked) and waits until every
    /// shard applied it. One result per item, in order.
    pub async fn change_metadata(self: &Rc<Self>, change: MetadataChange) -> Vec<KafkaResult<()>> {
        if self.in_cluster() {
            return self.change_cluster_metadata(change).await;
        }
        if self.id != 0 {
            let count = change.len();
            let (reply, answer) = shard_reply::channel();
            let failure = match self.send_to_shard(0, ShardMessage::ChangeMetadata { change, reply }).await {
                Ok(()) => match answer.await {
                    Ok(results) => return results,
                    Err(_) => KafkaError::new(ResponseError::RequestTimedOut, "the metadata change was dropped"),
                },
                Err(error) => error,
            };
            return (0..count).map(|_| Err(failure.clone())).collect();
        }
        let _serial = self.control_lock.acquire_permit(1).await.expect("never closed");
        let mut metadata = (*self.metadata()).clone();
        let results = self.apply_change(&mut metadata, change);
        if results.iter().all(|r| r.is_err()) {
            return results;
        }
        metadata.version += 1;
        if let Err(error) = metadata.store(&self.broker.data_dir) {
            tracing::error!(%error, "cannot store the metadata");
            let failure = KafkaError::new(ResponseError::KafkaStorageError, format!("cannot store metadata: {error}"));
            return results.into_iter().map(|_| Err(failure.clone())).collect();
        }
        self.broadcast_metadata(Arc::new(metadata)).await;
        results
    }

    fn apply_change(&self, metadata: &mut Metadata, change: MetadataChange) -> Vec<KafkaResult<()>> {
        match change {
            MetadataChange::CreateTopics(topics) => topics
                .into_iter()
                .map(|topic| {
                    validate_new_topic(self, &topic)?;
                    if metadata.topics.contains_key(&topic.name) {
                        return Err(KafkaError::new(
                            ResponseError::TopicAlreadyExists,
                            format!("topic {} already exists", topic.name),
                        ));
                    }
                    let shards = metadata.place(topic.partitions, self.shards);
                    let meta = TopicMeta { id: uuid::Uuid::new_v4(), shards, configs: topic.configs };
                    metadata.topics.insert(topic.name, meta);
                    Ok(())
                })
                .collect(),
            MetadataChange::DeleteTopics(names) => names
                .into_iter()
                .map(|name| metadata.topics.remove(&name).map(|_| ()).ok_or_else(|| unknown_topic(&name)))
                .collect(),
            MetadataChange::CreatePartitions(growths) => growths
                .into_iter()
                .map(|PartitionGrowth { name, count, .. }| {
                    let current = metadata.topics.get(&name).ok_or_else(|| unknown_topic(&name))?.shards.len();
                    if count <= current || count > PARTITIONS_PER_TOPIC_MAX {
                        return Err(KafkaError::new(
                            ResponseError::InvalidPartitions,
                            format!("topic {name} has {current} partitions; cannot change to {count}"),
                        ));
                    }
                    let added = metadata.place(count - current, self.shards);
                    metadata.topics.get_mut(&name).expect("checked").shards.extend(added);
                    Ok(())
                })
                .collect(),
            MetadataChange::Security(changes) => {
                let security = Arc::make_mut(&mut metadata.security);
                changes.into_iter().map(|change| apply_security_change(security, change)).collect()
            }
            MetadataChange::SetTopicConfigs(changes) => changes
                .into_iter()
                .map(|(name, configs)| {
                    let topic = metadata.topics.get_mut(&name).ok_or_else(|| unknown_topic(&name))?;
                    log_config(&self.log_defaults(), &configs)
                        .map_err(|e| KafkaError::new(ResponseError::InvalidConfig, e))?;
                    topic.configs = configs;
                    Ok(())
                })
                .collect(),
        }
    }

    /// In a cluster the controller makes metadata changes: each topic goes to it, and the
    /// answer waits until this shard has the change (so the client can use it at once).
    async fn change_cluster_metadata(self: &Rc<Self>, change: MetadataChange) -> Vec<KafkaResult<()>> {
        use sluice_replication::controller::TopicChange;
        let changes: Vec<KafkaResult<TopicChange>> = match change {
            MetadataChange::CreateTopics(topics) => return self.create_cluster_topics(topics).await,
            MetadataChange::DeleteTopics(names) => {
                names.into_iter().map(|name| Ok(TopicChange::Delete { name })).collect()
            }
            MetadataChange::CreatePartitions(growths) => growths
                .into_iter()
                .map(|growth| {
                    let count = i32::try_from(growth.count)
                        .ok()
                        .filter(|count| *count as usize <= PARTITIONS_PER_TOPIC_MAX)
                        .ok_or_else(|| {
                            KafkaError::new(ResponseError::InvalidPartitions, format!("{} partitions", growth.count))
                        })?;
                    Ok(TopicChange::Grow { name: growth.name, count, assignments: growth.assignments })
                })
                .collect(),
            MetadataChange::Security(changes) => return self.change_cluster_security(changes).await,
            MetadataChange::SetTopicConfigs(changes) => changes
                .into_iter()
                .map(|(name, configs)| {
                    log_config(&self.log_defaults(), &configs)
                        .map_err(|e| KafkaError::new(ResponseError::InvalidConfig, e))?;
                    Ok(TopicChange::Configure { name, configs })
                })
                .collect(),
        };
        let checked = changes.into_iter().map(|change| change.map(Some)).collect();
        self.forward_each(checked, sluice_replication::quorum::wire::BrokerRequest::ChangeTopics).await
    }

    /// Credentials and ACLs in a cluster: one request to the controller, which appends
    /// every change's records in one batch. Whether a credential to remove exists is the
    /// controller's to decide, on its image: this broker's may be behind (a credential
    /// just made through another broker).
    async fn change_cluster_security(self: &Rc<Self>, changes: Vec<SecurityChange>) -> Vec<KafkaResult<()>> {
        use sluice_replication::quorum::wire::BrokerRequest;
        let checked = changes.iter().cloned().map(|change| Ok(Some(cluster_security_change(change)))).collect();
        let results = self.forward_each(checked, BrokerRequest::ChangeSecurity).await;
        changes
            .into_iter()
            .zip(results)
            .map(|(change, result)| match result {
                Ok(()) => {
                    tracing::info!(?change, "security change made by the controller");
                    Ok(())
                }
                Err(error) if error.code == ResponseError::ResourceNotFound => {
                    Err(KafkaError::new(ResponseError::ResourceNotFound, CREDENTIAL_NOT_FOUND))
                }
                Err(error) => Err(error),
            })
            .collect()
    }

    /// CreateTopics in a cluster: each topic goes to the controller on its own.
    async fn create_cluster_topics(self: &Rc<Self>, topics: Vec<NewTopic>) -> Vec<KafkaResult<()>> {
        let default_replication = self.broker.cluster.as_ref().map_or(1, |c| c.default_replication_factor);
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let result = async {
                validate_new_topic(self, &topic)?;
                let request = sluice_replication::quorum::wire::BrokerRequest::CreateTopic {
                    name: topic.name.clone(),
                    partitions: topic.partitions as i32,
                    replication_factor: topic.replication_factor.unwrap_or(default_replication),
                    configs: topic.configs.clone(),
                    assignments: topic.assignments.clone(),
                };
                match self.call_controller(request).await? {
                    sluice_replication::quorum::wire::BrokerResponse::Done { applied_records } => {
                        self.wait_for_metadata_version(applied_records, crate::cluster::METADATA_CHANGE_WAIT).await
                    }
                    other => Err(crate::cluster::controller_error(other)),
                }
            }
            .await;
            results.push(result);
        }
        results
    }

    /// Pushes a snapshot to every shard (this one included) and waits until all applied it.
    pub(crate) async fn broadcast_metadata(self: &Rc<Self>, metadata: Arc<Metadata>) {
        let others = (0..self.shards).filter(|shard| *shard != self.id).map(|shard| {
            let metadata = metadata.clone();
            async move {
                let (reply, answer) = shard_reply::channel();
                if self.send_to_shard(shard, ShardMessage::ApplyMetadata { metadata, reply }).await.is_ok() {
                    let _ = answer.await;
                }
            }
        });
        futures::future::join(self.apply_metadata(metadata.clone()), futures::future::join_all(others)).await;
    }

    /// Makes this shard match a snapshot: opens partitions it now owns, deletes those whose
    /// topic is gone, and gives every open log its topic's current configs.
    pub async fn apply_metadata(self: &Rc<Self>, metadata: Arc<Metadata>) {
        let _partitions = self.partitions_lock.acquire_permit(1).await.expect("never closed");
        let previous = self.metadata.replace(metadata.clone());
        if !Arc::ptr_eq(&previous.security, &metadata.security) {
            self.rebuild_authorizer(&metadata.security);
        }
        crate::http::auth::publish(self, &metadata);
        // In a cluster a shard holds only the partitions this broker is a replica of.
        let me = self.broker.node_id;
        let held = |topic: &str, partition: i32| {
            metadata.owner(topic, partition) == Some(self.id)
                && metadata.cluster.as_ref().is_none_or(|view| view.is_replica(topic, partition, me))
        };
        for log in self.engine.partitions() {
            let name = log.name().to_string();
            let owned = parse_partition_dir_name(&name).is_some_and(|(topic, p)| held(topic, p));
            if !owned {
                match self.engine.delete_partition(&name).await {
                    Ok(_) => tracing::info!(shard = self.id, partition = %name, "deleted"),
                    Err(error) => tracing::error!(shard = self.id, partition = %name, %error, "delete failed"),
                }
            }
        }
        let defaults = self.log_defaults();
        for (topic, meta) in &metadata.topics {
            let config = match log_config(&defaults, &meta.configs) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(topic, %error, "stored topic configs are invalid; using broker defaults");
                    defaults.clone()
                }
            };
            for (partition, _) in meta.shards.iter().enumerate().filter(|(p, _)| held(topic, *p as i32)) {
                let name = partition_dir_name(topic, partition as i32);
                if let Some(log) = self.engine.partition(&name) {
                    if let Err(error) = log.set_config(config.clone()) {
                        tracing::error!(partition = %name, %error, "cannot apply topic configs");
                    }
                    continue;
                }
                match self.engine.open_partition(&name, config.clone()).await {
                    Ok((log, report)) => {
                        for corrupt in &report.corrupt_segments {
                            tracing::error!(shard = self.id, partition = %name, %corrupt, "corrupt segment");
                        }
                        tracing::info!(shard = self.id, partition = %name, segments = report.segments,
                            log_start = log.log_start_offset(), log_end = log.log_end_offset(),
                            torn_tail = report.torn_tail.is_some(), "recovered");
                    }
                    Err(error) => tracing::error!(shard = self.id, partition = %name, %error, "cannot open partition"),
                }
            }
        }
        self.sync_replicas(&metadata);
    }
}
