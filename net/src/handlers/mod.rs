//! One module per Kafka API: each turns a decoded request into a response. The table
//! below is what the broker serves and advertises in ApiVersions.

use crate::context::ShardContext;
use crate::ordering::Admission;
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

mod acls;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod api_versions;
mod authorization;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_transactions;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod partition_reassignments;
mod produce;
mod scram_credentials;
mod sync_group;
mod txn_offset_commit;
mod write_txn_markers;

pub use api_versions::unsupported_version_response;

/// The APIs served, with the version ranges advertised.
///
/// Produce and Fetch are advertised from v0 although the oldest versions (Produce 0–2,
/// Fetch 0–3: record formats v0/v1) are refused by closing the connection: librdkafka
/// enables features such as compression only when a range reaches down to v0
/// (DESIGN.md §5). Lower bounds elsewhere are the oldest versions `kafka-protocol` decodes.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 0, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    // Transactions (KIP-98), up to the versions before KIP-890 part 2.
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    // Security: answered by the connection itself (`security::connection_auth`) and the
    // ACL and credential handlers.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The advertised range of an API, if served.
pub fn advertised_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key).map(|(_, min, max)| (*min, *max))
}

/// Whether a version of an API can be decoded and answered (advertised, and within what
/// the protocol crate decodes).
pub fn is_served(key: ApiKey, version: i16) -> bool {
    let crate_range = key.valid_versions();
    advertised_range(key).is_some_and(|(min, max)| version >= min && version <= max)
        && version >= crate_range.min
        && version <= crate_range.max
}

/// Who sent a request: the header's client id, the connection's address and its
/// session (principal, listener). Cheap to make for every request (no copies).
#[derive(Debug, Clone)]
pub struct RequestSource {
    /// The client id from the request header (empty when null).
    pub client_id: StrBytes,
    /// The client's address as Kafka shows it (`/127.0.0.1`), one per connection.
    pub client_host: Rc<str>,
    /// Who the connection authenticated as, and on which listener.
    pub session: Rc<crate::security::session::Session>,
}

/// Whether requests of this API change partitions or groups, so that their effects must
/// follow the connection's arrival order (see [`crate::ordering`]). The others only read
/// and may overlap, or change metadata (serialized on shard 0).
pub fn has_ordered_effects(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::Produce
            | ApiKey::DeleteRecords
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
    )
}

/// Answers one request. `None`: no response is sent (Produce with acks=0). `admission`
/// is the request's place in its connection's order, for the APIs with
/// [`has_ordered_effects`]; any other request drops it unused. `frame` is the frame the
/// request was decoded from (Produce takes its record data out of it without copying).
pub async fn handle(
    context: Rc<ShardContext>,
    version: i16,
    request: RequestKind,
    source: RequestSource,
    admission: Option<Admission>,
    frame: Bytes,
) -> Option<ResponseKind> {
    let context = &context;
    Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle(version)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(context, r, version, &source.session).await)
        }
        RequestKind::Produce(r) => {
            // The client id is a slice of the frame, which produce takes back whole.
            let RequestSource { session, .. } = source;
            ResponseKind::Produce(produce::handle(context, r, version, admission, frame, &session).await?)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(context, r, &source.session).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(context, r, version, &source.session).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(context, r, &source.session).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(context, r, &source.session).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(context, r, &source.session).await)
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::handle(context, r, admission, &source.session).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(context, r, version, &source.session).await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(context, r, &source.session).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(context, r, &source.session))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter_configs::handle(context, r, &source.session).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(alter_configs::handle_incremental(context, r, &source.session).await)
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(context, r, &source.session))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(context, r, version, &source.session).await)
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(context, r, version, source, admission).await)
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(sync_group::handle(context, r, admission, &source.session).await)
        }
        RequestKind::Heartbeat(r) => {
            ResponseKind::Heartbeat(heartbeat::handle(context, r, admission, &source.session).await)
        }
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(leave_group::handle(context, r, version, admission, &source.session).await)
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offset_commit::handle(context, r, admission, &source.session).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(context, r, version, &source.session).await)
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(context, r, &source.session).await),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::handle(context, r, &source.session).await)
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(delete_groups::handle(context, r, admission, &source.session).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offset_delete::handle(context, r, admission, &source.session).await)
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(elect_leaders::handle(context, r, version, &source.session).await)
        }
        RequestKind::AlterPartitionReassignments(r) => ResponseKind::AlterPartitionReassignments(
            partition_reassignments::handle_alter(context, r, &source.session).await,
        ),
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(partition_reassignments::handle_list(context, r, &source.session))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn::handle(context, r, version, &source.session).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(context, r, version, &source.session).await)
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(end_txn::handle(context, r, version, &source.session).await),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(context, r, &source.session).await)
        }
        RequestKind::WriteTxnMarkers(r) => {
            ResponseKind::WriteTxnMarkers(write_txn_markers::handle(context, r, &source.session).await)
        }
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(context, r, &source.session).await)
        }
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(list_transactions::handle(context, r, &source.session).await)
        }
        RequestKind::CreateAcls(r) => ResponseKind::CreateAcls(acls::create(context, r, &source.session).await),
        RequestKind::DescribeAcls(r) => ResponseKind::DescribeAcls(acls::describe(context, r, &source.session)),
        RequestKind::DeleteAcls(r) => ResponseKind::DeleteAcls(acls::delete(context, r, &source.session).await),
        RequestKind::DescribeUserScramCredentials(r) => {
            ResponseKind::DescribeUserScramCredentials(scram_credentials::describe(context, r, &source.session))
        }
        RequestKind::AlterUserScramCredentials(r) => {
            ResponseKind::AlterUserScramCredentials(scram_credentials::alter(context, r, &source.session).await)
        }
        other => {
            // `is_served` admits only the APIs above, so the connection never gets here.
            unreachable!("request {:?} passed is_served but has no handler", std::mem::discriminant(&other))
        }
    })
}
