//! The quorum's state machine: committed batches applied to the [`MetadataImage`], which
//! is published to whoever watches it (the controller's decisions, the broker on the same
//! node). Snapshots are the image as JSON, kept in a file so a restarted controller starts
//! from it and replays only the log after it.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::files::{open_private_directory, read_if_exists, replace_durably};
use super::types::{BatchApplied, MetadataRaft};
use crate::metadata::MetadataImage;

const SNAPSHOT_FILE: &str = "snapshot.json";

/// A snapshot as stored and as sent to a lagging controller.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMetaOf<MetadataRaft>,
    image: MetadataImage,
}

struct Inner {
    dir: PathBuf,
    image: MetadataImage,
    applied: Option<LogIdOf<MetadataRaft>>,
    membership: StoredMembershipOf<MetadataRaft>,
    snapshot: Option<SnapshotOf<MetadataRaft, Vec<u8>>>,
    published: watch::Sender<Arc<MetadataImage>>,
}

/// The state machine; clones share it.
#[derive(Clone)]
pub struct MetadataStateMachine(Rc<RefCell<Inner>>);

impl MetadataStateMachine {
    /// Opens the state machine in `dir`, from its snapshot if there is one.
    pub fn open(dir: &Path) -> io::Result<Self> {
        open_private_directory(dir)?;
        let stored = read_if_exists(&dir.join(SNAPSHOT_FILE))?;
        let (image, applied, membership, snapshot) = match stored {
            Some(bytes) => {
                let stored: StoredSnapshot = serde_json::from_slice(&bytes)
                    .map_err(|e| io::Error::other(format!("{}: {e}", dir.join(SNAPSHOT_FILE).display())))?;
                let snapshot = SnapshotOf::<MetadataRaft, Vec<u8>> { meta: stored.meta.clone(), snapshot: bytes };
                (stored.image, stored.meta.last_log_id, stored.meta.last_membership.clone(), Some(snapshot))
            }
            None => (MetadataImage::default(), None, StoredMembershipOf::<MetadataRaft>::default(), None),
        };
        let (published, _) = watch::channel(Arc::new(image.clone()));
        let inner = Inner { dir: dir.to_path_buf(), image, applied, membership, snapshot, published };
        Ok(MetadataStateMachine(Rc::new(RefCell::new(inner))))
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.0.borrow().published.borrow().clone()
    }

    /// A receiver that sees every new image.
    pub fn watch(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.0.borrow().published.subscribe()
    }
}

impl RaftSnapshotBuilder<MetadataRaft> for MetadataStateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> io::Result<SnapshotOf<MetadataRaft, Vec<u8>>> {
        let (dir, bytes, meta) = {
            let inner = self.0.borrow();
            let meta = SnapshotMetaOf::<MetadataRaft> {
                last_log_id: inner.applied,
                last_membership: inner.membership.clone(),
            };
            let stored = StoredSnapshot { meta: meta.clone(), image: inner.image.clone() };
            (inner.dir.clone(), serde_json::to_vec(&stored).map_err(io::Error::other)?, meta)
        };
        replace_durably(&dir.join(SNAPSHOT_FILE), bytes.clone()).await?;
        let snapshot = SnapshotOf::<MetadataRaft, Vec<u8>> { meta, snapshot: bytes };
        self.0.borrow_mut().snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }
}

impl RaftStateMachine<MetadataRaft> for MetadataStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = MetadataStateMachine;

    async fn applied_state(&mut self) -> io::Result<(Option<LogIdOf<MetadataRaft>>, StoredMembershipOf<MetadataRaft>)> {
        let inner = self.0.borrow();
        Ok((inner.applied, inner.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<MetadataRaft>>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let applied = {
                let mut inner = self.0.borrow_mut();
                inner.applied = Some(entry.log_id());
                match &entry.payload {
                    EntryPayload::Normal(batch) => {
                        for record in &batch.0 {
                            inner.image.apply(record);
                        }
                        let image = Arc::new(inner.image.clone());
                        inner.published.send_replace(image);
                    }
                    EntryPayload::Membership(membership) => {
                        inner.membership =
                            StoredMembershipOf::<MetadataRaft>::new(Some(entry.log_id()), membership.clone());
                    }
                    EntryPayload::Blank => {}
                }
                BatchApplied { applied_records: inner.image.applied_records }
            };
            if let Some(responder) = responder {
                responder.send(applied);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMetaOf<MetadataRaft>, data: Vec<u8>) -> io::Result<()> {
        let stored: StoredSnapshot = serde_json::from_slice(&data).map_err(io::Error::other)?;
        let dir = self.0.borrow().dir.clone();
        replace_durably(&dir.join(SNAPSHOT_FILE), data.clone()).await?;
        let mut inner = self.0.borrow_mut();
        inner.image = stored.image;
        inner.applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some(SnapshotOf::<MetadataRaft, Vec<u8>> { meta: meta.clone(), snapshot: data });
        let image = Arc::new(inner.image.clone());
        inner.published.send_replace(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<SnapshotOf<MetadataRaft, Vec<u8>>>> {
        Ok(self.0.borrow().snapshot.clone())
    }
}
