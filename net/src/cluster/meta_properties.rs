//! `meta.properties` in the data directory (Kafka's file name and `key=value` format):
//! the node and the cluster the directory belongs to, so that it is never served under
//! another node id nor joined to another cluster (the controller refuses a registration
//! whose cluster id differs: INCONSISTENT_CLUSTER_ID).

use std::path::Path;

/// The file's name in the data directory.
pub const META_PROPERTIES: &str = "meta.properties";

/// What `meta.properties` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// `node.id`.
    pub node_id: i32,
    /// `cluster.id`, once the broker has seen its cluster's.
    pub cluster_id: Option<String>,
}

impl MetaProperties {
    /// Reads the file, `None` when there is none (a new data directory).
    pub fn read(data_dir: &Path) -> Result<Option<MetaProperties>, String> {
        let path = data_dir.join(META_PROPERTIES);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        let value = |key: &str| {
            text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
                let (name, value) = line.split_once('=')?;
                (name.trim() == key).then(|| value.trim().to_string())
            })
        };
        let node_id = value("node.id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| format!("{}: no valid node.id", path.display()))?;
        Ok(Some(MetaProperties { node_id, cluster_id: value("cluster.id").filter(|id| !id.is_empty()) }))
    }

    /// Writes the file durably (a temporary file renamed over it).
    pub async fn write(&self, data_dir: &Path) -> Result<(), String> {
        let mut text = format!(
            "# Written by sluice: the node and cluster this directory belongs to.\nversion=1\nnode.id={}\n",
            self.node_id
        );
        if let Some(cluster_id) = &self.cluster_id {
            text.push_str(&format!("cluster.id={cluster_id}\n"));
        }
        sluice_engine::fs::write_checkpoint(&data_dir.join(META_PROPERTIES), text.into_bytes())
            .await
            .map_err(|e| format!("cannot write {META_PROPERTIES}: {e}"))
    }

    /// Checks that the directory may serve as node `node_id`.
    pub fn check_node(&self, node_id: i32, data_dir: &Path) -> Result<(), String> {
        if self.node_id != node_id {
            return Err(format!(
                "{} belongs to node {}, not to node {node_id} (see {META_PROPERTIES})",
                data_dir.display(),
                self.node_id
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_a_missing_node_id_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MetaProperties::read(dir.path()), Ok(None));
        let properties = MetaProperties { node_id: 3, cluster_id: Some("abc".into()) };
        glommio::LocalExecutorBuilder::default()
            .spawn({
                let path = dir.path().to_path_buf();
                let properties = properties.clone();
                move || async move { properties.write(&path).await }
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(MetaProperties::read(dir.path()), Ok(Some(properties.clone())));
        assert!(properties.check_node(3, dir.path()).is_ok());
        assert!(properties.check_node(4, dir.path()).unwrap_err().contains("belongs to node 3"));
        std::fs::write(dir.path().join(META_PROPERTIES), "version=1\n").unwrap();
        assert!(MetaProperties::read(dir.path()).is_err());
    }
}
