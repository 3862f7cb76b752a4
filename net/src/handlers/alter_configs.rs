//! AlterConfigs (replace a topic's configs) and IncrementalAlterConfigs (set, delete,
//! append, subtract single configs). Broker configs are static: change them by restart.

use super::authorization::check_config_resource;
use super::describe_configs::RESOURCE_TOPIC;
use crate::context::ShardContext;
use crate::control::MetadataChange;
use crate::error::{KafkaError, KafkaResult};
use crate::security::session::Session;
use crate::topic_config::{is_known, log_config, unknown_name, TopicConfigs};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use sluice_security::acl::AclOperation;
use std::rc::Rc;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The configs of the resource to change, as they are. `session` needs ALTER_CONFIGS on the
/// resource, checked before it is looked up.
fn topic_resource(
    context: &ShardContext,
    session: &Session,
    resource_type: i8,
    name: &str,
) -> KafkaResult<TopicConfigs> {
    check_config_resource(context, session, AclOperation::AlterConfigs, resource_type, name)?;
    if resource_type != RESOURCE_TOPIC {
        return Err(KafkaError::new(
            ResponseError::InvalidRequest,
            "only topic configs can be changed at runtime; broker settings are flags of `sluice serve`",
        ));
    }
    context
        .metadata()
        .topics
        .get(name)
        .map(|t| t.configs.clone())
        .ok_or_else(|| KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("topic {name} does not exist")))
}

fn check(context: &ShardContext, configs: &TopicConfigs) -> KafkaResult<()> {
    if let Some(unknown) = configs.keys().find(|name| !is_known(name)) {
        return Err(KafkaError::new(ResponseError::InvalidConfig, unknown_name(unknown)));
    }
    log_config(&context.log_defaults(), configs).map_err(|e| KafkaError::new(ResponseError::InvalidConfig, e))?;
    Ok(())
}

/// Validates each resource's new config set, then stores the valid ones in one change.
async fn apply(
    context: &Rc<ShardContext>,
    validate_only: bool,
    changes: Vec<(String, KafkaResult<TopicConfigs>)>,
) -> Vec<KafkaResult<()>> {
    let checked: Vec<(String, KafkaResult<TopicConfigs>)> = changes
        .into_iter()
        .map(|(name, configs)| {
            let configs = configs.and_then(|c| check(context, &c).map(|_| c));
            (name, configs)
        })
        .collect();
    let valid: Vec<(String, TopicConfigs)> =
        checked.iter().filter_map(|(n, c)| c.as_ref().ok().map(|c| (n.clone(), c.clone()))).collect();
    let mut applied = if validate_only || valid.is_empty() {
        valid.iter().map(|_| Ok(())).collect()
    } else {
        context.change_metadata(MetadataChange::SetTopicConfigs(valid)).await
    }
    .into_iter();
    checked.into_iter().map(|(_, c)| c.and_then(|_| applied.next().expect("one result per valid change"))).collect()
}

fn error_parts(result: KafkaResult<()>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(error) => (error.code.code(), Some(StrBytes::from_string(error.message))),
    }
}

/// Answers an AlterConfigs request: each topic's configs become exactly those given.
pub async fn handle(
    context: &Rc<ShardContext>,
    request: AlterConfigsRequest,
    session: &Session,
) -> AlterConfigsResponse {
    let changes = request
        .resources
        .iter()
        .map(|resource| {
            let configs = topic_resource(context, session, resource.resource_type, &resource.resource_name).map(|_| {
                resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect::<TopicConfigs>()
            });
            (resource.resource_name.to_string(), configs)
        })
        .collect();
    let results = apply(context, request.validate_only, changes).await;
    let responses = request
        .resources
        .iter()
        .zip(results)
        .map(|(resource, result)| {
            let (code, message) = error_parts(result);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

fn list_values(value: Option<&String>) -> Vec<String> {
    value.map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

/// Answers an IncrementalAlterConfigs request.
pub async fn handle_incremental(
    context: &Rc<ShardContext>,
    request: IncrementalAlterConfigsRequest,
    session: &Session,
) -> IncrementalAlterConfigsResponse {
    let changes = request
        .resources
        .iter()
        .map(|resource| {
            let configs = topic_resource(context, session, resource.resource_type, &resource.resource_name).and_then(
                |mut configs| {
                    for change in &resource.configs {
                        let name = change.name.to_string();
                        let value = change.value.as_ref().map(|v| v.to_string());
                        match (change.config_operation, value) {
                            (OP_SET, Some(value)) => {
                                configs.insert(name, value);
                            }
                            (OP_DELETE, _) => {
                                configs.remove(&name);
                            }
                            (op @ (OP_APPEND | OP_SUBTRACT), Some(value)) => {
                                let mut items = list_values(configs.get(&name));
                                for item in list_values(Some(&value)) {
                                    items.retain(|i| *i != item);
                                    if op == OP_APPEND {
                                        items.push(item);
                                    }
                                }
                                configs.insert(name, items.join(","));
                            }
                            (op, _) => {
                                return Err(KafkaError::new(
                                    ResponseError::InvalidRequest,
                                    format!(
                                        "operation {op} on {name} is not valid (missing value or unknown operation)"
                                    ),
                                ))
                            }
                        }
                    }
                    Ok(configs)
                },
            );
            (resource.resource_name.to_string(), configs)
        })
        .collect();
    let results = apply(context, request.validate_only, changes).await;
    let responses = request
        .resources
        .iter()
        .zip(results)
        .map(|(resource, result)| {
            let (code, message) = error_parts(result);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
