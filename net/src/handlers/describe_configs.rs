//! DescribeConfigs: a topic's configs (set ones and broker defaults) or the broker's.

use super::authorization::check_config_resource;
use crate::context::ShardContext;
use crate::security::session::Session;
use crate::topic_config::{default_value, ConfigType, TOPIC_CONFIGS};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

/// Kafka's resource type codes (`ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's resource type code for a broker.
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's resource type code for a broker's log levels (not served; authorized as the cluster).
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
/// Kafka's resource type code for a group's configs (not served; authorized as the group).
pub const RESOURCE_GROUP: i8 = 32;

// Kafka's config source codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One described config. `synonyms` (name, value, source) are sent only when asked for.
fn entry(
    name: &str,
    value: String,
    source: i8,
    kind: ConfigType,
    documentation: Option<&str>,
    synonyms: Vec<(&str, String, i8)>,
) -> DescribeConfigsResourceResult {
    let text = |text: &str| StrBytes::from_string(text.to_string());
    let synonyms = synonyms
        .into_iter()
        .map(|(name, value, source)| {
            DescribeConfigsSynonym::default()
                .with_name(text(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_source(source)
        })
        .collect();
    DescribeConfigsResourceResult::default()
        .with_name(text(name))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source)
        .with_config_type(kind as i8)
        .with_synonyms(synonyms)
        .with_documentation(documentation.map(text))
}

/// Answers a DescribeConfigs request. Each resource needs DESCRIBE_CONFIGS on it, checked
/// before it is looked up.
pub fn handle(
    context: &Rc<ShardContext>,
    request: DescribeConfigsRequest,
    session: &Session,
) -> DescribeConfigsResponse {
    let metadata = context.metadata();
    let broker = &context.broker;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.as_str();
            if let Err(error) =
                check_config_resource(context, session, AclOperation::DescribeConfigs, resource.resource_type, name)
            {
                return result
                    .with_error_code(error.code.code())
                    .with_error_message(Some(StrBytes::from_string(error.message)));
            }
            let wanted = |name: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let doc = |text: &str| request.include_documentation.then_some(text).map(str::to_string);
            let configs: Vec<_> = match resource.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = metadata.topics.get(resource.resource_name.as_str()) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "topic {} does not exist",
                                resource.resource_name
                            ))));
                    };
                    TOPIC_CONFIGS
                        .iter()
                        .filter(|def| wanted(def.name))
                        .map(|def| {
                            let default = default_value(&broker.log_defaults, def.name);
                            let mut synonyms = Vec::new();
                            let (value, source) = match topic.configs.get(def.name) {
                                Some(value) => {
                                    synonyms.push((def.name, value.clone(), SOURCE_TOPIC));
                                    (value.clone(), SOURCE_TOPIC)
                                }
                                None => (default.clone(), SOURCE_DEFAULT),
                            };
                            if let Some(broker_name) = def.broker_synonym {
                                synonyms.push((broker_name, default, SOURCE_DEFAULT));
                            }
                            if !request.include_synonyms {
                                synonyms.clear();
                            }
                            entry(def.name, value, source, def.kind, doc(def.documentation).as_deref(), synonyms)
                        })
                        .collect()
                }
                RESOURCE_BROKER if resource.resource_name.as_str() == broker.node_id.to_string() => {
                    let defaults = &broker.log_defaults;
                    let replication = broker.cluster.as_ref().map_or(1, |c| c.default_replication_factor);
                    let mut values = vec![
                        ("node.id", ConfigType::Int, broker.node_id.to_string()),
                        ("auto.create.topics.enable", ConfigType::Boolean, broker.auto_create_topics.to_string()),
                        ("num.partitions", ConfigType::Int, broker.num_partitions.to_string()),
                        ("default.replication.factor", ConfigType::Int, replication.to_string()),
                        ("min.insync.replicas", ConfigType::Int, broker.min_insync_replicas.to_string()),
                        ("log.segment.bytes", ConfigType::Int, defaults.segment_bytes.to_string()),
                        ("log.retention.ms", ConfigType::Long, default_value(defaults, "retention.ms")),
                        ("log.retention.bytes", ConfigType::Long, default_value(defaults, "retention.bytes")),
                        ("message.max.bytes", ConfigType::Int, defaults.max_message_bytes.to_string()),
                        ("socket.request.max.bytes", ConfigType::Int, broker.max_request_bytes.to_string()),
                        ("transaction.max.timeout.ms", ConfigType::Int, broker.txn_limits.max_timeout_ms.to_string()),
                        (
                            "transactional.id.expiration.ms",
                            ConfigType::Int,
                            broker.txn_limits.id_expiration.as_millis().to_string(),
                        ),
                        ("unclean.leader.election.enable", ConfigType::Boolean, "false".to_string()),
                    ];
                    if let Some(cluster) = &broker.cluster {
                        let voters: Vec<String> = cluster.voters.iter().map(|(id, at)| format!("{id}@{at}")).collect();
                        let controller = &cluster.controller;
                        values.extend([
                            ("controller.quorum.voters", ConfigType::List, voters.join(",")),
                            (
                                "broker.session.timeout.ms",
                                ConfigType::Int,
                                controller.broker_session_timeout_ms.to_string(),
                            ),
                            (
                                "broker.heartbeat.interval.ms",
                                ConfigType::Int,
                                cluster.broker_heartbeat_interval_ms.to_string(),
                            ),
                            ("replica.lag.time.max.ms", ConfigType::Long, cluster.replica_lag_time_max_ms.to_string()),
                            (
                                "auto.leader.rebalance.enable",
                                ConfigType::Boolean,
                                controller.auto_leader_rebalance.to_string(),
                            ),
                            (
                                "leader.imbalance.check.interval.ms",
                                ConfigType::Long,
                                controller.leader_imbalance_check_interval_ms.to_string(),
                            ),
                            (
                                "leader.imbalance.per.broker.percentage",
                                ConfigType::Int,
                                controller.leader_imbalance_per_broker_percentage.to_string(),
                            ),
                        ]);
                    }
                    values
                        .into_iter()
                        .filter(|(name, _, _)| wanted(name))
                        .map(|(name, kind, value)| entry(name, value, SOURCE_STATIC_BROKER, kind, None, Vec::new()))
                        .collect()
                }
                other => {
                    return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                        StrBytes::from_string(format!(
                            "resource type {other} / {} is not served",
                            resource.resource_name
                        )),
                    ))
                }
            };
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
