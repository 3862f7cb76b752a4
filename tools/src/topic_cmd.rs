//! `sluice topic create|list|describe|delete|alter-config`: topic administration over the
//! Kafka protocol (CreateTopics, Metadata, DescribeConfigs, DeleteTopics,
//! IncrementalAlterConfigs), so it works against any Kafka-compatible broker.

use crate::client_args::{run_client, BrokerArgs};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::{Message, StrBytes};
use sluice_client::{ClientError, KafkaConnection};

/// Kafka's ConfigResource type for topics.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// How long the broker may take over a topic change.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// Topic administration.
#[derive(clap::Subcommand)]
pub enum TopicCommand {
    /// Create topics.
    Create {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Partitions per topic (default: the broker's `num.partitions`).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (default: the broker's).
        #[arg(short, long, default_value_t = -1)]
        replicas: i16,
        /// A topic config, `name=value` (repeatable), e.g. `-c retention.ms=3600000`.
        #[arg(short = 'c', long = "config", value_parser = crate::parse_name_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partition counts.
    List,
    /// Show a topic's partitions (leader, replicas) and its configs.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete topics and their data.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs (IncrementalAlterConfigs).
    AlterConfig {
        /// Topic name.
        name: String,
        /// Set a config, `name=value` (repeatable).
        #[arg(long = "set", value_parser = crate::parse_name_value)]
        set: Vec<(String, String)>,
        /// Return a config to its default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Runs a topic subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: TopicCommand) -> Result<(), String> {
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            TopicCommand::Create { names, partitions, replicas, configs } => {
                create(&mut connection, &names, partitions, replicas, &configs).await
            }
            TopicCommand::List => list(&mut connection).await,
            TopicCommand::Describe { name } => describe(&mut connection, &name).await,
            TopicCommand::Delete { names } => delete(&mut connection, &names).await,
            TopicCommand::AlterConfig { name, set, delete } => {
                if set.is_empty() && delete.is_empty() {
                    return Err("nothing to change: give --set name=value or --delete name".into());
                }
                alter_config(&mut connection, &name, &set, &delete).await
            }
        }
        .map_err(|e| e.to_string())
    })
}

async fn create(
    connection: &mut KafkaConnection,
    names: &[String],
    partitions: i32,
    replicas: i16,
    configs: &[(String, String)],
) -> Result<(), ClientError> {
    let timeout = std::time::Duration::from_millis(ADMIN_TIMEOUT_MS as u64);
    let outcomes = connection.create_topics(names, partitions, replicas, configs, timeout).await?;
    report_each("created", outcomes)
}

/// Prints what happened to each topic; an error if any failed (the last one is returned,
/// the others are printed).
fn report_each<Name: std::fmt::Display>(
    done: &str,
    outcomes: Vec<(Name, Result<(), ClientError>)>,
) -> Result<(), ClientError> {
    let mut failure = Ok(());
    for (name, outcome) in outcomes {
        match outcome {
            Ok(()) => println!("{done} {name}"),
            Err(error) => {
                if let Err(earlier) = std::mem::replace(&mut failure, Err(error)) {
                    eprintln!("sluice: {earlier}");
                }
            }
        }
    }
    failure
}

async fn list(connection: &mut KafkaConnection) -> Result<(), ClientError> {
    let response = connection.metadata(None, false).await?;
    let mut topics: Vec<_> = response
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|name| (name.0.to_string(), t.partitions.len(), t.is_internal)))
        .collect();
    topics.sort();
    let width = topics.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0).max("TOPIC".len());
    println!("{:width$}  PARTITIONS", "TOPIC");
    for (name, partitions, internal) in topics {
        println!("{name:width$}  {partitions:>10}{}", if internal { "  (internal)" } else { "" });
    }
    Ok(())
}

async fn describe(connection: &mut KafkaConnection, name: &str) -> Result<(), ClientError> {
    let metadata = connection.metadata(Some(&[name]), false).await?;
    let topic = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name));
    let topic = topic.ok_or_else(|| ClientError::Protocol {
        address: connection.address().to_string(),
        reason: format!("metadata response does not mention topic {name}"),
    })?;
    ClientError::check(|| format!("describe topic {name}"), topic.error_code, None)?;
    println!("topic {name}: {} partitions, id {}", topic.partitions.len(), topic.topic_id);
    println!("  PARTITION  LEADER  REPLICAS  IN-SYNC");
    let mut partitions: Vec<_> = topic.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
        nodes.iter().map(|n| n.0.to_string()).collect::<Vec<_>>().join(",")
    };
    for p in partitions {
        println!(
            "  {:>9}  {:>6}  {:>8}  {:>7}",
            p.partition_index,
            p.leader_id.0,
            ids(&p.replica_nodes),
            ids(&p.isr_nodes)
        );
    }
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(str_bytes(name))
        .with_configuration_keys(None)]);
    let response = connection.send(&request).await?;
    for result in &response.results {
        ClientError::check(|| format!("configs of topic {name}"), result.error_code, result.error_message.as_ref())?;
        println!("configs:");
        let mut configs: Vec<_> = result.configs.iter().collect();
        configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        let width = configs.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for config in configs {
            let value = config.value.as_ref().map_or("(null)", |v| v.as_str());
            println!("  {:width$}  {value}  ({})", config.name.as_str(), config_source_name(config.config_source));
        }
    }
    Ok(())
}

/// Kafka's DescribeConfigs source codes.
fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2 => "dynamic broker",
        3 => "dynamic default broker",
        4 => "static broker",
        5 => "default",
        6 => "dynamic broker logger",
        _ => "unknown",
    }
}

async fn delete(connection: &mut KafkaConnection, names: &[String]) -> Result<(), ClientError> {
    // v6 names topics in `topics` (which may carry ids instead); older versions in `topic_names`.
    let version = connection.version_for(ApiKey::DeleteTopics, DeleteTopicsRequest::VERSIONS.max)?;
    let topic_names = names.iter().map(|n| TopicName(str_bytes(n)));
    let request = if version >= 6 {
        DeleteTopicsRequest::default()
            .with_topics(topic_names.map(|n| DeleteTopicState::default().with_name(Some(n))).collect())
    } else {
        DeleteTopicsRequest::default().with_topic_names(topic_names.collect())
    }
    .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = connection.send_at(&request, version).await?;
    let outcomes = response.responses.iter().map(|result| {
        let name = result.name.as_ref().map_or("?", |n| n.0.as_str());
        (name, ClientError::check(|| format!("delete topic {name}"), result.error_code, result.error_message.as_ref()))
    });
    report_each("deleted", outcomes.collect())
}

async fn alter_config(
    connection: &mut KafkaConnection,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), ClientError> {
    let changes = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(str_bytes(k))
                .with_config_operation(OP_SET)
                .with_value(Some(str_bytes(v)))
        })
        .chain(
            delete.iter().map(|k| AlterableConfig::default().with_name(str_bytes(k)).with_config_operation(OP_DELETE)),
        )
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(str_bytes(name))
        .with_configs(changes)]);
    let response = connection.send(&request).await?;
    for result in &response.responses {
        ClientError::check(
            || format!("alter configs of topic {name}"),
            result.error_code,
            result.error_message.as_ref(),
        )?;
    }
    println!("altered {name}");
    Ok(())
}
