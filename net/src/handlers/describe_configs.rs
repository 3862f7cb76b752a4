//! DescribeConfigs: a topic's configs (set ones and broker defaults) or the broker's.

use crate::context::ShardContext;
use crate::topic_config::{default_value, KNOWN_TOPIC_CONFIGS};
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::rc::Rc;

/// Kafka's resource type codes.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's resource type code for a broker.
pub const RESOURCE_BROKER: i8 = 4;

// Kafka's config source codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
// Kafka's config type codes.
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn config_type(name: &str) -> i8 {
    match name {
        "cleanup.policy" => TYPE_LIST,
        "message.timestamp.type" => TYPE_STRING,
        "max.message.bytes" | "min.insync.replicas" | "index.interval.bytes" | "segment.bytes" => TYPE_INT,
        _ => TYPE_LONG,
    }
}

fn entry(name: &str, value: String, source: i8, documentation: Option<&str>) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source)
        .with_config_type(config_type(name))
        .with_documentation(documentation.map(|d| StrBytes::from_string(d.to_string())))
}

/// Answers a DescribeConfigs request.
pub fn handle(context: &Rc<ShardContext>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let metadata = context.metadata();
    let broker = &context.broker;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
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
                    KNOWN_TOPIC_CONFIGS
                        .iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, text)| match topic.configs.get(*name) {
                            Some(value) => entry(name, value.clone(), SOURCE_TOPIC, doc(text).as_deref()),
                            None => entry(
                                name,
                                default_value(&broker.log_defaults, name),
                                SOURCE_DEFAULT,
                                doc(text).as_deref(),
                            ),
                        })
                        .collect()
                }
                RESOURCE_BROKER if resource.resource_name.as_str() == broker.node_id.to_string() => {
                    let defaults = &broker.log_defaults;
                    let values = [
                        ("auto.create.topics.enable", broker.auto_create_topics.to_string()),
                        ("num.partitions", broker.num_partitions.to_string()),
                        ("default.replication.factor", "1".to_string()),
                        ("log.segment.bytes", defaults.segment_bytes.to_string()),
                        ("log.retention.ms", default_value(defaults, "retention.ms")),
                        ("log.retention.bytes", default_value(defaults, "retention.bytes")),
                        ("message.max.bytes", defaults.max_message_bytes.to_string()),
                        ("socket.request.max.bytes", broker.max_request_bytes.to_string()),
                    ];
                    values
                        .into_iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|(name, value)| entry(name, value, SOURCE_STATIC_BROKER, None))
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
