//! The records of the metadata log, modelled on KRaft's (RegisterBrokerRecord,
//! FenceBrokerRecord, TopicRecord, PartitionRecord, PartitionChangeRecord,
//! UserScramCredentialRecord, AccessControlEntryRecord and their removals). Serializable,
//! because the Raft log stores them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PartitionState;
use crate::ids::{BrokerId, PartitionKey};

/// Where a broker serves Kafka clients, and which process it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// The broker's node id.
    pub broker: BrokerId,
    /// Random per process start: a registration with another incarnation is a restart,
    /// which fences the broker and moves its leaderships.
    pub incarnation: Uuid,
    /// Advertised Kafka listener host.
    pub host: String,
    /// Advertised Kafka listener port.
    pub port: u16,
    /// Kafka's `broker.rack`, if set.
    pub rack: Option<String>,
    /// Every advertised listener (Kafka's `advertised.listeners`); `host`/`port` are the
    /// first. Empty in registrations from before brokers had several.
    #[serde(default)]
    pub listeners: Vec<AdvertisedListener>,
    /// The cluster the broker's data directory belongs to, once it has joined one (Kafka's
    /// `cluster.id` in `meta.properties`): a registration with another is refused.
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// The voters the broker was started with (`controller.quorum.voters`); a controller
    /// started with other voters refuses the registration. Empty: not checked.
    #[serde(default)]
    pub voters: std::collections::BTreeMap<u64, String>,
}

/// One of a broker's listeners as clients reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertisedListener {
    /// Its security protocol (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`): clients
    /// are told the address of the listener of the kind they came in on.
    pub protocol: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

#[cfg(test)]
impl BrokerRegistration {
    /// A new process of `broker` on loopback, in no cluster yet (unit tests).
    pub(crate) fn on_loopback(broker: BrokerId) -> Self {
        BrokerRegistration {
            broker,
            incarnation: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
            cluster_id: None,
            voters: Default::default(),
        }
    }
}

/// A partition's next state, valid only on top of the state it was computed from: it
/// applies when `state.partition_epoch` is one more than the current partition epoch and is
/// ignored otherwise, so a decision made on stale metadata never lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    /// The partition.
    pub key: PartitionKey,
    /// Its whole next state.
    pub state: PartitionState,
}

/// A user's SCRAM credential for one mechanism as the log and the image hold it (KRaft's
/// UserScramCredentialRecord less the user and mechanism, which key it): what checks the
/// user's logins, never the password. The broker turns it into
/// `sluice_security::sasl::ScramCredential`; this crate keeps only the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredentialData {
    /// The salt of Hi.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// Iterations of Hi.
    pub iterations: u32,
}

impl std::fmt::Debug for ScramCredentialData {
    // The keys let whoever holds them pose as the server to the user: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialData").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// An ACL binding as the log and the image hold it (KRaft's AccessControlEntryRecord, less
/// its id: a binding is its own identity here). Kafka's codes for the enums, unchecked:
/// the broker that asked validated them, and a broker that does not know a code (a newer
/// version's) skips the binding instead of failing to replay the log.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBindingData {
    /// Kafka's ResourceType code (2 TOPIC, 3 GROUP, 4 CLUSTER, ...).
    pub resource_type: i8,
    /// The resource name, prefix or `*`.
    pub resource_name: String,
    /// Kafka's PatternType code (3 LITERAL, 4 PREFIXED).
    pub pattern_type: i8,
    /// `Type:name`, e.g. `User:alice`, or `User:*`.
    pub principal: String,
    /// The client's IP address, or `*`.
    pub host: String,
    /// Kafka's AclOperation code (2 ALL, 3 READ, 4 WRITE, ...).
    pub operation: i8,
    /// Kafka's AclPermissionType code (2 DENY, 3 ALLOW).
    pub permission: i8,
}

/// One entry of the metadata log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker (re)registered; it starts fenced, with the next broker epoch.
    RegisterBroker(BrokerRegistration),
    /// The broker may lead and join ISRs again (it heartbeats).
    UnfenceBroker {
        /// The broker.
        broker: BrokerId,
        /// Its broker epoch at the decision; a record for an older epoch is ignored.
        broker_epoch: i64,
    },
    /// The broker missed heartbeats (or restarted): no leaderships, no ISR places.
    FenceBroker {
        /// The broker.
        broker: BrokerId,
        /// Its broker epoch at the decision; a record for an older epoch is ignored.
        broker_epoch: i64,
    },
    /// The cluster's id, written once by the first active controller (Kafka's
    /// `cluster.id`; a broker whose data directory belongs to another cluster refuses it).
    InitializeCluster {
        /// The id.
        cluster_id: String,
    },
    /// A topic was created; its partitions follow as [`MetadataRecord::Partition`]s.
    Topic {
        /// The topic name.
        name: String,
        /// Its id.
        topic_id: Uuid,
        /// The configs set at creation (Kafka topic config names).
        #[serde(default)]
        configs: std::collections::BTreeMap<String, String>,
    },
    /// A new partition of an existing topic, in its first state.
    Partition {
        /// The partition.
        key: PartitionKey,
        /// Its first state (partition epoch 0).
        state: PartitionState,
    },
    /// A partition's leader, ISR or replicas changed.
    PartitionChange(PartitionChange),
    /// A topic and its partitions were deleted (KRaft's RemoveTopicRecord).
    RemoveTopic {
        /// The topic name.
        name: String,
        /// Its id: a record for an earlier topic of the same name is ignored.
        topic_id: Uuid,
    },
    /// The configs set on a topic, replaced whole.
    TopicConfigs {
        /// The topic name.
        name: String,
        /// Its id: a record for an earlier topic of the same name is ignored.
        topic_id: Uuid,
        /// Every config set on it (Kafka topic config names).
        configs: std::collections::BTreeMap<String, String>,
    },
    /// A user's SCRAM credential for a mechanism was set, replacing any it had (KRaft's
    /// UserScramCredentialRecord).
    ScramCredential {
        /// The user name.
        user: String,
        /// Kafka's mechanism code: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
        mechanism: i8,
        /// The credential.
        credential: ScramCredentialData,
    },
    /// A user's SCRAM credential for a mechanism was removed (KRaft's
    /// RemoveUserScramCredentialRecord); one already gone changes nothing.
    RemoveScramCredential {
        /// The user name.
        user: String,
        /// Kafka's mechanism code.
        mechanism: i8,
    },
    /// An ACL binding was added (KRaft's AccessControlEntryRecord); one already there
    /// changes nothing.
    AccessControlEntry(AclBindingData),
    /// An ACL binding was removed (KRaft's RemoveAccessControlEntryRecord); one already
    /// gone changes nothing.
    RemoveAccessControlEntry(AclBindingData),
}
