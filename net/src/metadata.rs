//! Cluster metadata: topics, their configs, and which shard owns each partition.
//!
//! Shard 0 is the only writer: it applies a change, stores the whole table durably
//! (`<data-dir>/meta/topics.json`, written to a temporary file, fsynced and renamed) and
//! then pushes the new immutable snapshot to every shard. Other shards read their own copy
//! and never lock. The table is small (one entry per topic) and changes rarely, so a whole
//! rewrite per change is cheaper to get right than a log.

use crate::topic_config::TopicConfigs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Longest topic name Kafka allows.
pub const TOPIC_NAME_MAX_BYTES: usize = 249;

/// One topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Kafka topic id (Metadata v10+, CreateTopics v7+).
    pub id: uuid::Uuid,
    /// Owner shard of each partition, by partition index.
    pub shards: Vec<usize>,
    /// Configs set on the topic (unset ones take the broker default).
    #[serde(default)]
    pub configs: TopicConfigs,
}

/// The metadata table. Every change bumps `version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Bumped by every change.
    pub version: u64,
    /// Chosen at the first start and kept (Kafka's cluster id).
    pub cluster_id: String,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// SCRAM credentials and ACLs (shared between snapshots until they change: a shard
    /// rebuilds its authorizer only when this is another one).
    #[serde(default)]
    pub security: std::sync::Arc<crate::security::store::SecurityState>,
    /// In a cluster, the controller's metadata this snapshot was made from (not stored:
    /// the controller quorum keeps it).
    #[serde(skip)]
    pub cluster: Option<std::sync::Arc<crate::cluster::ClusterView>>,
}

/// Why a topic name is not acceptable (Kafka's rules: 1–249 of `[a-zA-Z0-9._-]`, not `.`
/// or `..`).
pub fn check_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > TOPIC_NAME_MAX_BYTES {
        return Err(format!("topic name is {} bytes long, the limit is {TOPIC_NAME_MAX_BYTES}", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name {name:?} contains {bad:?}: only ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

impl Metadata {
    /// Path of the stored table under a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("meta").join("topics.json")
    }

    /// Loads the stored table, or a new one (with a fresh cluster id) if none is stored.
    pub fn load(data_dir: &Path) -> Result<Metadata, String> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Metadata { cluster_id: uuid::Uuid::new_v4().simple().to_string(), ..Metadata::default() })
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Stores the table durably: temporary file, fsync, rename, fsync of the directory.
    pub fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(data_dir);
        let dir = path.parent().expect("the path has a parent");
        std::fs::create_dir_all(dir)?;
        let temporary = path.with_extension("json.tmp");
        // Owner-only: the table holds SCRAM credentials.
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
        file.write_all(&serde_json::to_vec_pretty(self).expect("metadata serializes"))?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }

    /// The shard owning a partition, if the topic and partition exist.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<usize> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.shards.get(index).copied()
    }

    /// Partitions per shard (the placement load).
    pub fn load_per_shard(&self, shards: usize) -> Vec<usize> {
        let mut load = vec![0; shards];
        for topic in self.topics.values() {
            for &shard in &topic.shards {
                load[shard % shards] += 1;
            }
        }
        load
    }

    /// Owners for `count` new partitions: each goes to the least-loaded shard (lowest id
    /// on ties), so a topic's partitions spread over all shards.
    pub fn place(&self, count: usize, shards: usize) -> Vec<usize> {
        let mut load = self.load_per_shard(shards);
        (0..count)
            .map(|_| {
                let (shard, _) =
                    load.iter().enumerate().min_by_key(|(shard, load)| (**load, *shard)).expect("shards > 0");
                load[shard] += 1;
                shard
            })
            .collect()
    }

    /// Maps placements stored by a run with more shards onto `shards` (a restart with
    /// fewer `--cores`).
    pub fn fit_to_shards(&mut self, shards: usize) {
        for topic in self.topics.values_mut() {
            for shard in &mut topic.shards {
                *shard %= shards;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_partitions_go_to_the_least_loaded_shard() {
        let mut metadata = Metadata::default();
        let shards = metadata.place(3, 2);
        assert_eq!(shards, vec![0, 1, 0]);
        metadata.topics.insert("a".into(), TopicMeta { id: uuid::Uuid::nil(), shards, configs: Default::default() });
        assert_eq!(metadata.place(3, 2), vec![1, 0, 1], "shard 1 has fewer partitions, so it goes first");
        assert_eq!(metadata.owner("a", 2), Some(0));
        assert_eq!(metadata.owner("a", 3), None);
        assert_eq!(metadata.owner("a", -1), None);
    }

    #[test]
    fn the_table_survives_a_store_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut metadata = Metadata::load(dir.path()).unwrap();
        assert!(!metadata.cluster_id.is_empty());
        metadata.version = 3;
        metadata.topics.insert(
            "t".into(),
            TopicMeta {
                id: uuid::Uuid::new_v4(),
                shards: vec![1, 0],
                configs: [("retention.ms".into(), "1000".into())].into(),
            },
        );
        metadata.store(dir.path()).unwrap();
        assert_eq!(Metadata::load(dir.path()).unwrap(), metadata);
    }

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(check_topic_name("orders.v1_eu-west").is_ok());
        for bad in ["", ".", "..", "a b", "ä", "x/y"] {
            assert!(check_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_topic_name(&"x".repeat(250)).is_err());
    }
}
