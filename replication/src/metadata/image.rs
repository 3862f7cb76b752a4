//! The metadata image: what the metadata log says at one offset. Applying the same records
//! in the same order gives the same image on every node; `apply` is the only writer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::{AclBindingData, MetadataRecord, PartitionChange, ScramCredentialData};
use crate::ids::{BrokerId, PartitionKey, NO_LEADER};

/// A registered broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    /// Grows with every registration of any broker (KRaft uses the record's offset); a
    /// broker's requests carry it, so a restarted process is told apart from its past self.
    pub broker_epoch: i64,
    /// The registering process.
    pub incarnation: Uuid,
    /// Advertised Kafka listener host.
    pub host: String,
    /// Advertised Kafka listener port.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Every advertised listener; empty when the broker registered only `host`/`port`.
    #[serde(default)]
    pub listeners: Vec<super::AdvertisedListener>,
    /// Fenced brokers lead nothing and are in no ISR (except as the last member).
    pub fenced: bool,
}

/// One partition's replica placement and leadership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// All replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas: every acknowledged (acks=all) record is on each of them.
    /// Never empty: when every member is fenced the last one stays.
    pub isr: Vec<BrokerId>,
    /// The leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Grows with every leader change (including to and from no leader).
    pub leader_epoch: i32,
    /// Grows with every change of this state.
    pub partition_epoch: i32,
    /// Replicas a reassignment adds (Kafka's addingReplicas); they are in `replicas`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<BrokerId>,
    /// Replicas a reassignment removes once every target replica is in the ISR (Kafka's
    /// removingReplicas); they are in `replicas`, after the target ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<BrokerId>,
}

impl PartitionState {
    /// Whether `broker` is in the ISR.
    pub fn in_isr(&self, broker: BrokerId) -> bool {
        self.isr.contains(&broker)
    }

    /// Whether `broker` holds a replica.
    pub fn is_replica(&self, broker: BrokerId) -> bool {
        self.replicas.contains(&broker)
    }

    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition has once its reassignment (if any) completes, preferred
    /// leader first.
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }

    /// The replicas the partition had before its reassignment (if any) began.
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        self.replicas.iter().copied().filter(|r| !self.adding_replicas.contains(r)).collect()
    }
}

/// A topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Its id.
    pub topic_id: Uuid,
    /// Its partition count.
    pub partitions: i32,
    /// The configs set on it.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// Users' SCRAM credentials and the ACL bindings (KRaft's ScramImage and AclsImage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityImage {
    /// Credentials by user and Kafka mechanism code (stored as a list of pairs).
    #[serde(with = "as_pairs")]
    pub credentials: BTreeMap<(String, i8), ScramCredentialData>,
    /// The ACL bindings.
    pub acls: BTreeSet<AclBindingData>,
}

impl SecurityImage {
    /// Whether `user` has a credential for `mechanism`.
    pub fn has_credential(&self, user: &str, mechanism: i8) -> bool {
        // (A tuple key cannot be borrowed as (&str, i8): the rare admin request allocates.)
        self.credentials.contains_key(&(user.to_string(), mechanism))
    }
}

/// The whole metadata at one log offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// The cluster's id, once the first controller wrote it.
    pub cluster_id: Option<String>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<BrokerId, BrokerState>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicState>,
    /// Partitions by key (stored as a list of pairs: JSON keys are strings).
    #[serde(with = "as_pairs")]
    pub partitions: BTreeMap<PartitionKey, PartitionState>,
    /// The broker epoch the next registration gets.
    pub next_broker_epoch: i64,
    /// Users' SCRAM credentials and the ACLs. Behind an `Arc` because the image is cloned
    /// whole for every applied batch and every controller decision, while this part
    /// changes only on the rare security change: clones share it until then. (Images from
    /// before security records have none.)
    #[serde(default)]
    pub security: Arc<SecurityImage>,
    /// How many records have been applied (the image's version).
    pub applied_records: u64,
}

impl MetadataImage {
    /// Applies one record. Returns false when the record was ignored because it was made
    /// on a state that is no longer current (a stale broker epoch or partition epoch, an
    /// unknown topic) or changes nothing (removing a credential or an ACL that is not
    /// there, adding an ACL that is); ignoring is deterministic, so every node ignores the
    /// same records, and replay never fails.
    pub fn apply(&mut self, record: &MetadataRecord) -> bool {
        self.applied_records += 1;
        match record {
            MetadataRecord::RegisterBroker(registration) => {
                let broker_epoch = self.next_broker_epoch;
                self.next_broker_epoch += 1;
                self.brokers.insert(
                    registration.broker,
                    BrokerState {
                        broker_epoch,
                        incarnation: registration.incarnation,
                        host: registration.host.clone(),
                        port: registration.port,
                        rack: registration.rack.clone(),
                        listeners: registration.listeners.clone(),
                        fenced: true,
                    },
                );
                true
            }
            MetadataRecord::UnfenceBroker { broker, broker_epoch } => self.set_fenced(*broker, *broker_epoch, false),
            MetadataRecord::FenceBroker { broker, broker_epoch } => self.set_fenced(*broker, *broker_epoch, true),
            MetadataRecord::InitializeCluster { cluster_id } => {
                if self.cluster_id.is_some() {
                    return false;
                }
                self.cluster_id = Some(cluster_id.clone());
                true
            }
            MetadataRecord::Topic { name, topic_id, configs } => {
                if self.topics.contains_key(name) {
                    return false;
                }
                self.topics
                    .insert(name.clone(), TopicState { topic_id: *topic_id, partitions: 0, configs: configs.clone() });
                true
            }
            MetadataRecord::Partition { key, state } => {
                let Some(topic) = self.topics.values_mut().find(|t| t.topic_id == key.topic_id) else {
                    return false;
                };
                if key.partition != topic.partitions || self.partitions.contains_key(key) {
                    return false;
                }
                assert!(!state.isr.is_empty(), "a partition is created with a non-empty ISR");
                topic.partitions += 1;
                self.partitions.insert(*key, state.clone());
                true
            }
            MetadataRecord::RemoveTopic { name, topic_id } => {
                if self.topic_id(name) != Some(*topic_id) {
                    return false;
                }
                self.topics.remove(name);
                self.partitions.retain(|key, _| key.topic_id != *topic_id);
                true
            }
            MetadataRecord::TopicConfigs { name, topic_id, configs } => match self.topics.get_mut(name) {
                Some(topic) if topic.topic_id == *topic_id => {
                    topic.configs = configs.clone();
                    true
                }
                _ => false,
            },
            MetadataRecord::PartitionChange(PartitionChange { key, state }) => {
                let Some(current) = self.partitions.get_mut(key) else {
                    return false;
                };
                if state.partition_epoch != current.partition_epoch + 1 {
                    return false;
                }
                assert!(!state.isr.is_empty(), "the ISR is never empty");
                assert!(
                    state.adding_replicas.iter().chain(&state.removing_replicas).all(|r| state.is_replica(*r))
                        && !state.adding_replicas.iter().any(|r| state.removing_replicas.contains(r)),
                    "adding and removing replicas are disjoint replicas"
                );
                assert!(state.leader_epoch >= current.leader_epoch, "leader epochs never go back");
                assert!(
                    (state.leader == current.leader) == (state.leader_epoch == current.leader_epoch),
                    "a leader change, and only a leader change, bumps the leader epoch"
                );
                *current = state.clone();
                true
            }
            MetadataRecord::ScramCredential { user, mechanism, credential } => {
                let security = Arc::make_mut(&mut self.security);
                security.credentials.insert((user.clone(), *mechanism), credential.clone());
                true
            }
            MetadataRecord::RemoveScramCredential { user, mechanism } => {
                // Looked up before `make_mut`: a no-op keeps the part shared.
                if !self.security.has_credential(user, *mechanism) {
                    return false;
                }
                Arc::make_mut(&mut self.security).credentials.remove(&(user.clone(), *mechanism));
                true
            }
            MetadataRecord::AccessControlEntry(binding) => {
                if self.security.acls.contains(binding) {
                    return false;
                }
                Arc::make_mut(&mut self.security).acls.insert(binding.clone());
                true
            }
            MetadataRecord::RemoveAccessControlEntry(binding) => {
                if !self.security.acls.contains(binding) {
                    return false;
                }
                Arc::make_mut(&mut self.security).acls.remove(binding);
                true
            }
        }
    }

    fn set_fenced(&mut self, broker: BrokerId, broker_epoch: i64, fenced: bool) -> bool {
        match self.brokers.get_mut(&broker) {
            Some(state) if state.broker_epoch == broker_epoch => {
                state.fenced = fenced;
                true
            }
            _ => false,
        }
    }

    /// Whether `broker` is registered and unfenced.
    pub fn is_active(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// The topic's id, by name.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.topics.get(name).map(|t| t.topic_id)
    }
}

/// A map with keys JSON cannot have, as a list of `[key, value]` pairs.
mod as_pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerRegistration;

    fn register(image: &mut MetadataImage, broker: BrokerId) {
        assert!(image.apply(&MetadataRecord::RegisterBroker(BrokerRegistration::on_loopback(broker))));
    }

    #[test]
    fn a_registration_starts_fenced_with_a_new_broker_epoch() {
        let mut image = MetadataImage::default();
        register(&mut image, 1);
        register(&mut image, 2);
        register(&mut image, 1);
        assert_eq!(image.brokers[&1].broker_epoch, 2);
        assert_eq!(image.brokers[&2].broker_epoch, 1);
        assert!(image.brokers[&1].fenced);
        assert!(!image.apply(&MetadataRecord::UnfenceBroker { broker: 1, broker_epoch: 0 }), "stale epoch");
        assert!(image.apply(&MetadataRecord::UnfenceBroker { broker: 1, broker_epoch: 2 }));
        assert!(image.is_active(1));
    }

    #[test]
    fn a_partition_change_lands_only_on_the_state_it_was_made_from() {
        let mut image = MetadataImage::default();
        let topic_id = Uuid::new_v4();
        assert!(image.apply(&MetadataRecord::Topic { name: "t".into(), topic_id, configs: Default::default() }));
        let key = PartitionKey { topic_id, partition: 0 };
        let first = PartitionState {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        assert!(image.apply(&MetadataRecord::Partition { key, state: first.clone() }));
        let shrink = PartitionState { isr: vec![1, 2], partition_epoch: 1, ..first.clone() };
        assert!(image.apply(&MetadataRecord::PartitionChange(PartitionChange { key, state: shrink.clone() })));
        // A second decision made on partition epoch 0 is stale now.
        let stale = PartitionState { isr: vec![1, 3], partition_epoch: 1, ..first };
        assert!(!image.apply(&MetadataRecord::PartitionChange(PartitionChange { key, state: stale })));
        assert_eq!(image.partitions[&key], shrink);
        assert_eq!(image.topics["t"].partitions, 1);
        let json = serde_json::to_vec(&image).expect("an image serializes (snapshots, metadata fetches)");
        assert_eq!(serde_json::from_slice::<MetadataImage>(&json).unwrap(), image);
    }

    fn credential(iterations: u32) -> ScramCredentialData {
        ScramCredentialData { salt: vec![1; 32], stored_key: vec![2; 64], server_key: vec![3; 64], iterations }
    }

    fn read_topic(principal: &str) -> AclBindingData {
        AclBindingData {
            resource_type: 2,
            resource_name: "t".into(),
            pattern_type: 3,
            principal: principal.into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        }
    }

    #[test]
    fn credentials_and_acls_are_set_and_removed_and_removing_what_is_gone_changes_nothing() {
        let mut image = MetadataImage::default();
        let set = |iterations| MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: 2,
            credential: credential(iterations),
        };
        assert!(image.apply(&set(4096)));
        assert!(image.apply(&set(8192)), "a second credential for the mechanism replaces the first");
        assert!(image.apply(&MetadataRecord::AccessControlEntry(read_topic("User:alice"))));
        assert!(!image.apply(&MetadataRecord::AccessControlEntry(read_topic("User:alice"))), "already there");
        assert_eq!(image.security.credentials[&("alice".to_string(), 2)].iterations, 8192);
        assert_eq!(image.security.acls.len(), 1);

        // Clones share the security part; a record that changes nothing keeps it shared.
        let before = image.clone();
        assert!(Arc::ptr_eq(&before.security, &image.security));
        let remove_credential = |mechanism| MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism };
        assert!(!image.apply(&remove_credential(1)), "no SCRAM-SHA-256 credential");
        assert!(!image.apply(&MetadataRecord::RemoveAccessControlEntry(read_topic("User:bob"))));
        assert!(Arc::ptr_eq(&before.security, &image.security));
        assert_eq!(image.applied_records, before.applied_records + 2, "ignored records count as applied");

        assert!(image.apply(&remove_credential(2)));
        assert!(image.apply(&MetadataRecord::RemoveAccessControlEntry(read_topic("User:alice"))));
        assert!(!Arc::ptr_eq(&before.security, &image.security));
        assert_eq!(*image.security, SecurityImage::default());
        assert_eq!(before.security.acls.len(), 1, "the earlier image keeps its own");
    }

    #[test]
    fn the_security_part_survives_json_and_images_from_before_it_still_load() {
        let mut image = MetadataImage::default();
        let credential =
            MetadataRecord::ScramCredential { user: "a".into(), mechanism: 1, credential: credential(4096) };
        assert!(image.apply(&credential));
        assert!(image.apply(&MetadataRecord::AccessControlEntry(read_topic("User:a"))));
        let json = serde_json::to_vec(&image).unwrap();
        assert_eq!(serde_json::from_slice::<MetadataImage>(&json).unwrap(), image);
        let record = serde_json::to_vec(&credential).unwrap();
        assert_eq!(serde_json::from_slice::<MetadataRecord>(&record).unwrap(), credential);

        let old =
            r#"{"cluster_id":"c","brokers":{},"topics":{},"partitions":[],"next_broker_epoch":0,"applied_records":1}"#;
        let old: MetadataImage = serde_json::from_str(old).expect("a snapshot from before security records");
        assert_eq!(*old.security, SecurityImage::default());
        assert!(!format!("{image:?}").contains("stored_key"), "no keys in logs");
    }
}
