//! `sluice group list|describe|delete|reset-offsets`: consumer group administration over
//! the Kafka protocol (ListGroups, DescribeGroups, OffsetFetch, ListOffsets, DeleteGroups,
//! OffsetCommit), like `kafka-consumer-groups.sh`, so it works against any
//! Kafka-compatible broker. Group requests go to the group's coordinator (FindCoordinator);
//! ListOffsets goes to the broker named by `--brokers`.

use crate::client_args::{run_client, BrokerArgs};
use crate::table::print_table;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Message, StrBytes};
use kafka_protocol::ResponseError;
use sluice_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::{ClientError, KafkaConnection};
use std::collections::{BTreeMap, BTreeSet};

/// OffsetFetch v10 names topics by id only; this tool names them.
const OFFSET_FETCH_VERSION_MAX: i16 = 9;
/// The consumer protocol's assignment schema versions this crate decodes.
const ASSIGNMENT_VERSION_MAX: i16 = 3;

/// Consumer group administration.
#[derive(clap::Subcommand)]
pub enum GroupCommand {
    /// List the broker's groups with their state.
    List,
    /// Show a group's state, members and, per partition, committed offset, end and lag.
    Describe {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete groups and their committed offsets (only groups without members).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets of a topic (only while it has no active members).
    ResetOffsets(ResetArgs),
}

/// `group reset-offsets` arguments.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false)))]
pub struct ResetArgs {
    /// Group id.
    group: String,
    /// Topic whose offsets move.
    #[arg(long)]
    topic: String,
    /// Only this partition (repeatable; default: all partitions of the topic).
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// To the oldest offset still kept.
    #[arg(long, group = "target")]
    to_earliest: bool,
    /// To the end of each partition.
    #[arg(long, group = "target")]
    to_latest: bool,
    /// To this offset (held within the partition's earliest..latest range).
    #[arg(long, group = "target", value_name = "N")]
    to_offset: Option<i64>,
    /// To the first record with a timestamp at or after MS (epoch milliseconds); the end
    /// where there is none.
    #[arg(long, group = "target", value_name = "MS")]
    to_datetime_ms: Option<i64>,
    /// Print the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn group_id(group: &str) -> GroupId {
    GroupId(str_bytes(group))
}

fn protocol_error(connection: &KafkaConnection, reason: String) -> ClientError {
    ClientError::Protocol { address: connection.address().to_string(), reason }
}

/// Runs a group subcommand, printing its result on stdout.
pub fn run(brokers: BrokerArgs, command: GroupCommand) -> Result<(), String> {
    run_client(move || async move {
        let mut connection = brokers.connect().await?;
        match command {
            GroupCommand::List => list(&mut connection).await.map_err(|e| e.to_string()),
            GroupCommand::Describe { groups } => {
                for (n, group) in groups.iter().enumerate() {
                    if n > 0 {
                        println!();
                    }
                    let mut other = coordinator(&mut connection, group).await.map_err(|e| e.to_string())?;
                    describe(&mut connection, other.as_mut(), group).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            GroupCommand::Delete { groups } => delete(&mut connection, &groups).await,
            GroupCommand::ResetOffsets(args) => {
                let mut other = coordinator(&mut connection, &args.group).await.map_err(|e| e.to_string())?;
                reset_offsets(&mut connection, other.as_mut(), &args).await
            }
        }
    })
}

/// A connection to the group's coordinator when it is not the broker connected to
/// (`None`: that broker coordinates the group).
async fn coordinator(connection: &mut KafkaConnection, group: &str) -> Result<Option<KafkaConnection>, ClientError> {
    crate::coordinator::connect_to_coordinator(connection, crate::coordinator::KEY_TYPE_GROUP, group).await
}

async fn list(connection: &mut KafkaConnection) -> Result<(), ClientError> {
    let response = connection.send(&ListGroupsRequest::default()).await?;
    ClientError::check(|| "list groups".to_string(), response.error_code, None)?;
    let mut groups: Vec<_> = response
        .groups
        .iter()
        .map(|g| {
            let state = if g.group_state.is_empty() { "-" } else { g.group_state.as_str() };
            let protocol_type = if g.protocol_type.is_empty() { "-" } else { g.protocol_type.as_str() };
            (g.group_id.0.to_string(), state.to_string(), protocol_type.to_string())
        })
        .collect();
    groups.sort();
    let width = groups.iter().map(|(g, _, _)| g.len()).max().unwrap_or(0).max("GROUP".len());
    let state_width = groups.iter().map(|(_, s, _)| s.len()).max().unwrap_or(0).max("STATE".len());
    println!("{:width$}  {:state_width$}  PROTOCOL-TYPE", "GROUP", "STATE");
    for (group, state, protocol_type) in groups {
        println!("{group:width$}  {state:state_width$}  {protocol_type}");
    }
    Ok(())
}

/// One member of a described group.
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// (topic, partition) assigned to it.
    assigned: Vec<(String, i32)>,
}

/// What DescribeGroups says of a group.
struct GroupDescription {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

/// Decodes a consumer protocol assignment: a version (i16) then the schema of that
/// version. Empty bytes: nothing assigned yet.
fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.len() < 2 {
        return Err("assignment shorter than its version".into());
    }
    let (head, mut buf) = bytes.split_at(2);
    let version = i16::from_be_bytes([head[0], head[1]]);
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    // Newer versions only add fields at the end, so they read as the newest one known.
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.min(ASSIGNMENT_VERSION_MAX))
        .map_err(|e| format!("assignment v{version}: {e}"))?;
    Ok(assignment
        .assigned_partitions
        .iter()
        .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.0.to_string(), *p)))
        .collect())
}

async fn describe_group(connection: &mut KafkaConnection, group: &str) -> Result<GroupDescription, ClientError> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = connection.send(&request).await?;
    let described = response
        .groups
        .into_iter()
        .find(|g| g.group_id.0.as_str() == group)
        .ok_or_else(|| protocol_error(connection, format!("DescribeGroups does not mention group {group}")))?;
    if described.error_code == ResponseError::GroupIdNotFound.code() {
        return Ok(GroupDescription {
            state: "Dead".into(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        });
    }
    ClientError::check(|| format!("describe group {group}"), described.error_code, described.error_message.as_ref())?;
    let consumer = described.protocol_type.as_str() == "consumer";
    let mut members = Vec::with_capacity(described.members.len());
    for m in &described.members {
        let assigned = if consumer {
            decode_assignment(&m.member_assignment).map_err(|reason| {
                protocol_error(connection, format!("member {} of group {group}: {reason}", m.member_id.as_str()))
            })?
        } else {
            Vec::new()
        };
        members.push(Member {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assigned,
        });
    }
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupDescription {
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
    })
}

/// A group's committed offsets, (topic, partition) → offset; partitions without one are
/// left out. `only`: these partitions of one topic (all the group's partitions for `None`).
async fn committed_offsets(
    connection: &mut KafkaConnection,
    group: &str,
    only: Option<(&str, &[i32])>,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    let version = connection.version_for(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION_MAX)?;
    let operation = || format!("fetch the committed offsets of group {group}");
    let mut offsets = BTreeMap::new();
    let mut keep = |topic: &str, partition: i32, offset: i64, code: i16| {
        ClientError::check(|| format!("committed offset of {topic}-{partition} in group {group}"), code, None)?;
        if offset >= 0 {
            offsets.insert((topic.to_string(), partition), offset);
        }
        Ok::<(), ClientError>(())
    };
    if version >= 8 {
        let topics = only.map(|(topic, partitions)| {
            vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_indexes(partitions.to_vec())]
        });
        let request = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_member_id(None)
            .with_member_epoch(-1)
            .with_topics(topics)]);
        let response = connection.send_at(&request, version).await?;
        let answer = response
            .groups
            .iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| protocol_error(connection, format!("OffsetFetch does not mention group {group}")))?;
        ClientError::check(operation, answer.error_code, None)?;
        for topic in &answer.topics {
            for p in &topic.partitions {
                keep(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    } else {
        let topics = only.map(|(topic, partitions)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_indexes(partitions.to_vec())]
        });
        let request = OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(topics);
        let response = connection.send_at(&request, version).await?;
        ClientError::check(operation, response.error_code, None)?;
        for topic in &response.topics {
            for p in &topic.partitions {
                keep(topic.name.0.as_str(), p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    }
    Ok(offsets)
}

/// Offsets at `timestamp` of these partitions, (topic, partition) → offset.
async fn offsets_at(
    connection: &mut KafkaConnection,
    partitions: &BTreeSet<(String, i32)>,
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut offsets = BTreeMap::new();
    for (topic, partitions) in by_topic {
        for (partition, offset) in connection.list_offsets(topic, &partitions, timestamp).await? {
            offsets.insert((topic.to_string(), partition), offset);
        }
    }
    Ok(offsets)
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

async fn describe(
    bootstrap: &mut KafkaConnection,
    coordinator: Option<&mut KafkaConnection>,
    group: &str,
) -> Result<(), ClientError> {
    let coordinator = match coordinator {
        Some(c) => c,
        None => &mut *bootstrap,
    };
    let description = describe_group(coordinator, group).await?;
    let committed = committed_offsets(coordinator, group, None).await?;
    let dead = description.state == "Dead";
    if dead && committed.is_empty() {
        println!("group {group} does not exist (state Dead, no members, no committed offsets)");
        return Ok(());
    }
    let show = |text: &str| if text.is_empty() { "-".to_string() } else { text.to_string() };
    println!(
        "group {group}: state {}, protocol type {}, protocol {}, {} member{}",
        description.state,
        show(&description.protocol_type),
        show(&description.protocol),
        description.members.len(),
        if description.members.len() == 1 { "" } else { "s" }
    );
    if dead {
        println!("(the group has no members; only committed offsets remain)");
    }
    let mut owner: BTreeMap<(String, i32), &str> = BTreeMap::new();
    if !description.members.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = description
            .members
            .iter()
            .map(|m| {
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &m.assigned {
                    by_topic.entry(topic).or_default().push(*partition);
                }
                let assignment: Vec<String> = by_topic
                    .iter_mut()
                    .map(|(topic, partitions)| {
                        partitions.sort_unstable();
                        let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
                        format!("{topic}:{}", list.join(","))
                    })
                    .collect();
                vec![
                    m.member_id.clone(),
                    or_dash(m.instance_id.as_ref()),
                    show(&m.client_id),
                    show(&m.host),
                    if assignment.is_empty() { "-".into() } else { assignment.join(" ") },
                ]
            })
            .collect();
        print_table(&["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"], &rows);
        for m in &description.members {
            for tp in &m.assigned {
                owner.insert(tp.clone(), &m.member_id);
            }
        }
    }
    let partitions: BTreeSet<(String, i32)> = committed.keys().chain(owner.keys()).cloned().collect();
    if partitions.is_empty() {
        println!("\nno committed offsets and no assigned partitions");
        return Ok(());
    }
    let ends = offsets_at(bootstrap, &partitions, LATEST_TIMESTAMP).await?;
    let mut total_lag = 0;
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|tp| {
            let current = committed.get(tp).copied();
            let end = ends.get(tp).copied();
            let lag = current.zip(end).map(|(c, e)| (e - c).max(0));
            total_lag += lag.unwrap_or(0);
            vec![
                tp.0.clone(),
                tp.1.to_string(),
                or_dash(current),
                or_dash(end),
                or_dash(lag),
                owner.get(tp).map_or("-", |m| m).to_string(),
            ]
        })
        .collect();
    println!();
    print_table(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"], &rows);
    println!("total lag {total_lag}");
    Ok(())
}

async fn delete(bootstrap: &mut KafkaConnection, groups: &[String]) -> Result<(), String> {
    let mut failed = 0;
    for group in groups {
        let outcome = async {
            let mut other = coordinator(bootstrap, group).await?;
            let connection = match other.as_mut() {
                Some(c) => c,
                None => &mut *bootstrap,
            };
            let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let response = connection.send(&request).await?;
            let result =
                response.results.iter().find(|r| r.group_id.0.as_str() == group.as_str()).ok_or_else(|| {
                    protocol_error(connection, format!("DeleteGroups does not mention group {group}"))
                })?;
            ClientError::check(|| format!("delete group {group}"), result.error_code, None)
        }
        .await;
        match outcome {
            Ok(()) => println!("deleted {group}"),
            Err(ClientError::Kafka { error: ResponseError::NonEmptyGroup, .. }) => {
                failed += 1;
                eprintln!(
                    "sluice: delete group {group}: the group has active members (NonEmptyGroup); stop them first"
                );
            }
            Err(error) => {
                failed += 1;
                eprintln!("sluice: {error}");
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(format!("{n} of {} groups not deleted", groups.len())),
    }
}

/// Why a commit without a member was refused, when it is the group's members.
fn active_members_refusal(group: &str, error: &ClientError) -> Option<String> {
    match error {
        ClientError::Kafka {
            error:
                ResponseError::UnknownMemberId | ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress,
            code,
            ..
        } => Some(format!("group {group} has active members; stop them first (the broker answered error {code})")),
        _ => None,
    }
}

async fn reset_offsets(
    bootstrap: &mut KafkaConnection,
    coordinator: Option<&mut KafkaConnection>,
    args: &ResetArgs,
) -> Result<(), String> {
    let group = args.group.as_str();
    let topic = args.topic.as_str();
    let partitions: Vec<i32> = if args.partitions.is_empty() {
        let count = bootstrap.partition_count(topic, false).await.map_err(|e| e.to_string())?;
        (0..count).collect()
    } else {
        let mut partitions = args.partitions.clone();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
    };
    let wanted: BTreeSet<(String, i32)> = partitions.iter().map(|p| (topic.to_string(), *p)).collect();
    let earliest = offsets_at(bootstrap, &wanted, EARLIEST_TIMESTAMP).await.map_err(|e| e.to_string())?;
    let latest = offsets_at(bootstrap, &wanted, LATEST_TIMESTAMP).await.map_err(|e| e.to_string())?;
    let at_time = match args.to_datetime_ms {
        Some(ms) => Some(offsets_at(bootstrap, &wanted, ms).await.map_err(|e| e.to_string())?),
        None => None,
    };
    let mut targets = BTreeMap::new();
    for tp in &wanted {
        let (low, high) = match (earliest.get(tp), latest.get(tp)) {
            (Some(low), Some(high)) => (*low, *high),
            _ => return Err(format!("ListOffsets does not mention {}-{}", tp.0, tp.1)),
        };
        let target = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(offset) = args.to_offset {
            offset.clamp(low, high)
        } else {
            match at_time.as_ref().and_then(|offsets| offsets.get(tp)) {
                Some(offset) if *offset >= 0 => *offset,
                _ => high,
            }
        };
        targets.insert(tp.clone(), target);
    }

    let coordinator = match coordinator {
        Some(c) => c,
        None => &mut *bootstrap,
    };
    // A broker that describes groups says up front whether the group has members; the
    // commit below is refused in that case anyway.
    if coordinator.version_for(ApiKey::DescribeGroups, DescribeGroupsRequest::VERSIONS.max).is_ok() {
        let description = describe_group(coordinator, group).await.map_err(|e| e.to_string())?;
        if !args.dry_run && !description.members.is_empty() {
            return Err(format!(
                "group {group} has active members ({} in state {}); stop them first",
                description.members.len(),
                description.state
            ));
        }
    }
    let only: (&str, &[i32]) = (topic, &partitions);
    let current = committed_offsets(coordinator, group, Some(only)).await.map_err(|e| e.to_string())?;
    let rows: Vec<Vec<String>> = targets
        .iter()
        .map(|(tp, target)| vec![tp.0.clone(), tp.1.to_string(), or_dash(current.get(tp)), target.to_string()])
        .collect();
    print_table(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"], &rows);
    if args.dry_run {
        println!("dry run: nothing committed");
        return Ok(());
    }
    let commit_partitions = targets
        .iter()
        .map(|((_, partition), offset)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default()))
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_group_instance_id(None)
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(str_bytes(topic)))
            .with_partitions(commit_partitions)]);
    let response = coordinator.send(&request).await.map_err(|e| e.to_string())?;
    for answer in &response.topics {
        for p in &answer.partitions {
            let checked = ClientError::check(
                || format!("commit offset of {}-{} for group {group}", answer.name.0.as_str(), p.partition_index),
                p.error_code,
                None,
            );
            if let Err(error) = checked {
                return Err(active_members_refusal(group, &error).unwrap_or_else(|| error.to_string()));
            }
        }
    }
    println!("committed {} offsets for group {group}", targets.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    fn encoded(version: i16, assignment: &ConsumerProtocolAssignment) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        out.extend_from_slice(&version.to_be_bytes());
        assignment.encode(&mut out, version).unwrap();
        out.to_vec()
    }

    #[test]
    fn assignments_decode_at_their_version() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default().with_topic(TopicName(str_bytes("a"))).with_partitions(vec![0, 2]),
            TopicPartition::default().with_topic(TopicName(str_bytes("b"))).with_partitions(vec![1]),
        ]);
        let want = vec![("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)];
        for version in 0..=3 {
            assert_eq!(decode_assignment(&encoded(version, &assignment)).unwrap(), want, "v{version}");
        }
        assert_eq!(decode_assignment(&[]).unwrap(), Vec::new());
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_assignment(&[0, 0, 0]).is_err());
    }

    #[test]
    fn commits_refused_for_members_say_to_stop_them() {
        let refused = ClientError::check(|| "commit".into(), ResponseError::UnknownMemberId.code(), None).unwrap_err();
        let message = active_members_refusal("g", &refused).unwrap();
        assert!(message.contains("group g has active members; stop them first"), "{message}");
        let other = ClientError::check(|| "commit".into(), ResponseError::GroupAuthorizationFailed.code(), None);
        assert!(active_members_refusal("g", &other.unwrap_err()).is_none());
    }
}
