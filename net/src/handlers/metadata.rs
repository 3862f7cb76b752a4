//! Metadata: the brokers (this one, or in a cluster every live one), the cluster id, and
//! the topics asked for with their leaders, replicas and ISR (creating missing ones when
//! auto-creation is on and the client allows it).

use crate::context::ShardContext;
use crate::control::{MetadataChange, NewTopic};
use crate::group::records::CONSUMER_OFFSETS_TOPIC;
use crate::metadata::check_topic_name;
use crate::partition_ops::LEADER_EPOCH;
use crate::security::session::Session;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::{AclOperation, ResourceType};
use std::rc::Rc;

/// "Authorized operations not requested" (Kafka's INT32_MIN sentinel).
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// Answers a Metadata request.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: MetadataRequest,
    version: i16,
    session: &Session,
) -> MetadataResponse {
    let protocol = context.broker.listeners[session.listener].protocol;
    let asked: Option<Vec<String>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect());
    // v0 has no null array: an empty one means every topic.
    let asked = asked.filter(|names| !(version == 0 && names.is_empty()));
    // Clients before v4 cannot say whether they want auto-creation; Kafka creates.
    let may_create = context.broker.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    // Kafka's rules: a topic the principal may not describe does not exist for it (left
    // out of "all topics", TOPIC_AUTHORIZATION_FAILED when named); auto-creation needs
    // CREATE on the cluster or on the topic.
    let describable = |name: &str| context.authorize(session, AclOperation::Describe, ResourceType::Topic, name);
    let may_create_all = context.authorize_cluster(session, AclOperation::Create);
    let creatable = |name: &str| {
        describable(name)
            && (may_create_all || context.authorize(session, AclOperation::Create, ResourceType::Topic, name))
    };
    if let (Some(names), true) = (&asked, may_create) {
        if names.iter().any(|name| name == CONSUMER_OFFSETS_TOPIC) {
            if let Err(error) = context.ensure_offsets_topic().await {
                tracing::debug!(error = %error.message, "cannot create {CONSUMER_OFFSETS_TOPIC}");
            }
        }
        let metadata = context.metadata();
        let missing: Vec<NewTopic> = names
            .iter()
            .filter(|name| !metadata.topics.contains_key(*name) && check_topic_name(name).is_ok() && creatable(name))
            // The broker creates its internal topic itself, with its own partition count.
            .filter(|name| name.as_str() != CONSUMER_OFFSETS_TOPIC)
            .map(|name| NewTopic {
                name: name.clone(),
                partitions: context.broker.num_partitions.max(1) as usize,
                configs: Default::default(),
                replication_factor: None,
                assignments: None,
            })
            .collect();
        if !missing.is_empty() {
            for (topic, result) in
                missing.iter().zip(context.change_metadata(MetadataChange::CreateTopics(missing.clone())).await)
            {
                match result {
                    Ok(()) => tracing::info!(topic = %topic.name, partitions = topic.partitions, "auto-created topic"),
                    Err(error) => tracing::debug!(topic = %topic.name, error = %error.message, "auto-create failed"),
                }
            }
        }
    }
    let metadata = context.metadata();
    let node = BrokerId(context.broker.node_id);
    let names: Vec<String> =
        asked.unwrap_or_else(|| metadata.topics.keys().filter(|name| describable(name)).cloned().collect());
    let operations = |name: &str| match version >= 8 && request.include_topic_authorized_operations {
        true if context.authorizer_enabled() => context.authorized_operations(session, ResourceType::Topic, name),
        _ => OPERATIONS_NOT_REQUESTED,
    };
    let topics = names
        .into_iter()
        .map(|name| {
            let response = MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_is_internal(name == crate::group::records::CONSUMER_OFFSETS_TOPIC)
                .with_topic_authorized_operations(operations(&name));
            if !describable(&name) {
                return response.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let Some(topic) = metadata.topics.get(&name) else {
                let code = if check_topic_name(&name).is_err() {
                    ResponseError::InvalidTopicException
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                return response.with_error_code(code.code());
            };
            let partitions = (0..topic.shards.len() as i32)
                .map(|index| {
                    let response = MetadataResponsePartition::default().with_partition_index(index);
                    let Some(view) = &metadata.cluster else {
                        return response
                            .with_leader_id(node)
                            .with_leader_epoch(LEADER_EPOCH)
                            .with_replica_nodes(vec![node])
                            .with_isr_nodes(vec![node]);
                    };
                    let Some((_, state)) = view.partition(&name, index) else {
                        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let ids = |brokers: &[i32]| brokers.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
                    let offline: Vec<i32> =
                        state.replicas.iter().copied().filter(|r| !view.image.is_active(*r)).collect();
                    let response = response
                        .with_leader_id(BrokerId(state.leader))
                        .with_leader_epoch(state.leader_epoch)
                        .with_replica_nodes(ids(&state.replicas))
                        .with_isr_nodes(ids(&state.isr))
                        .with_offline_replicas(ids(&offline));
                    if state.has_leader() {
                        response
                    } else {
                        response.with_error_code(ResponseError::LeaderNotAvailable.code())
                    }
                })
                .collect();
            response.with_topic_id(topic.id).with_partitions(partitions)
        })
        .collect();
    let brokers = match &metadata.cluster {
        Some(view) => view
            .live_brokers(protocol)
            .into_iter()
            .map(|b| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(b.host))
                    .with_port(i32::from(b.port))
                    .with_rack(b.rack.map(StrBytes::from_string))
            })
            .collect(),
        None => vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(StrBytes::from_string(context.broker.advertised(session.listener).0.to_string()))
            .with_port(i32::from(context.broker.advertised(session.listener).1))],
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(metadata.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED)
}
