//! The records of the metadata log, modelled on KRaft's (RegisterBrokerRecord,
//! FenceBrokerRecord, TopicRecord, PartitionRecord, PartitionChangeRecord). Serializable,
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
}
