//! The Raft log of the metadata quorum, on disk: one append-only file of frames
//! `[length u32][crc32c u32][entry as JSON]`, every entry also held in memory (the
//! metadata log is small: snapshots purge it).
//!
//! An append is acknowledged to openraft (`IOFlushed`) only after its fdatasync; the vote
//! is durable before `save_vote` returns. A torn or corrupt frame at the end (a crash
//! mid-append) is cut off at open, and reported with its offset.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};
use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use super::files::{open_private_directory, read_if_exists, replace_durably};
use super::types::MetadataRaft;

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";
const PURGED_FILE: &str = "purged.json";
const FRAME_HEADER_BYTES: usize = 8;

struct Inner {
    dir: PathBuf,
    file: Rc<BufferedFile>,
    /// Entries by index, each with where its frame starts in the file.
    entries: BTreeMap<u64, (EntryOf<MetadataRaft>, u64)>,
    file_end: u64,
    vote: Option<VoteOf<MetadataRaft>>,
    purged: Option<LogIdOf<MetadataRaft>>,
}

/// The log store; clones share it.
#[derive(Clone)]
pub struct MetadataLogStore(Rc<RefCell<Inner>>);

fn frame(entry: &EntryOf<MetadataRaft>) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The entries of a log file and where the valid part ends.
fn parse_frames(bytes: &[u8], path: &Path) -> (Vec<(EntryOf<MetadataRaft>, u64)>, u64) {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + FRAME_HEADER_BYTES <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + FRAME_HEADER_BYTES..at + FRAME_HEADER_BYTES + length) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<EntryOf<MetadataRaft>>(body) else { break };
        entries.push((entry, at as u64));
        at += FRAME_HEADER_BYTES + length;
    }
    if at < bytes.len() {
        tracing::warn!(file = %path.display(), offset = at, bytes = bytes.len() - at, "metadata log: cutting a torn or corrupt tail");
    }
    (entries, at as u64)
}

impl MetadataLogStore {
    /// Opens (or creates) the log in `dir`.
    pub async fn open(dir: &Path) -> io::Result<Self> {
        open_private_directory(dir)?;
        let path = dir.join(LOG_FILE);
        let bytes = read_if_exists(&path)?.unwrap_or_default();
        let (parsed, valid_end) = parse_frames(&bytes, &path);
        let vote = match read_if_exists(&dir.join(VOTE_FILE))? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(io::Error::other)?),
            None => None,
        };
        let purged: Option<LogIdOf<MetadataRaft>> = match read_if_exists(&dir.join(PURGED_FILE))? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            None => None,
        };
        let file = OpenOptions::new().read(true).write(true).create(true).buffered_open(&path).await?;
        if valid_end < bytes.len() as u64 {
            file.truncate(valid_end).await?;
            file.fdatasync().await?;
        }
        let purged_index = purged.as_ref().map(|p| p.index);
        let entries = parsed
            .into_iter()
            .filter(|(entry, _)| purged_index.is_none_or(|p| entry.log_id().index > p))
            .map(|(entry, at)| (entry.log_id().index, (entry, at)))
            .collect();
        let inner = Inner { dir: dir.to_path_buf(), file: Rc::new(file), entries, file_end: valid_end, vote, purged };
        Ok(MetadataLogStore(Rc::new(RefCell::new(inner))))
    }
}

impl RaftLogReader<MetadataRaft> for MetadataLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<EntryOf<MetadataRaft>>> {
        Ok(self.0.borrow().entries.range(range).map(|(_, (entry, _))| entry.clone()).collect())
    }

    async fn read_vote(&mut self) -> io::Result<Option<VoteOf<MetadataRaft>>> {
        Ok(self.0.borrow().vote)
    }
}

impl RaftLogStorage<MetadataRaft> for MetadataLogStore {
    type LogReader = MetadataLogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState<MetadataRaft>> {
        let inner = self.0.borrow();
        let last = inner.entries.values().next_back().map(|(entry, _)| entry.log_id()).or(inner.purged);
        Ok(LogState { last_purged_log_id: inner.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<MetadataRaft>) -> io::Result<()> {
        let dir = self.0.borrow().dir.clone();
        replace_durably(&dir.join(VOTE_FILE), serde_json::to_vec(vote).map_err(io::Error::other)?).await?;
        self.0.borrow_mut().vote = Some(*vote);
        Ok(())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<MetadataRaft>) -> io::Result<()>
    where
        I: IntoIterator<Item = EntryOf<MetadataRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let (file, start) = {
            let inner = self.0.borrow();
            (inner.file.clone(), inner.file_end)
        };
        let mut bytes = Vec::new();
        let mut placed = Vec::new();
        for entry in entries {
            placed.push((entry.log_id().index, (entry.clone(), start + bytes.len() as u64)));
            bytes.extend_from_slice(&frame(&entry)?);
        }
        let length = bytes.len() as u64;
        {
            // In memory first: openraft may read what it appended before the flush ends.
            let mut inner = self.0.borrow_mut();
            inner.file_end = start + length;
            inner.entries.extend(placed);
        }
        let written = async {
            let written = file.write_at(bytes, start).await?;
            if written as u64 != length {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to the metadata log"));
            }
            file.fdatasync().await.map_err(io::Error::from)
        }
        .await;
        callback.io_completed(written);
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<MetadataRaft>>) -> io::Result<()> {
        let from = last.map_or(0, |l| l.index + 1);
        let (file, cut_at) = {
            let mut inner = self.0.borrow_mut();
            let removed = inner.entries.split_off(&from);
            let Some((_, (_, at))) = removed.into_iter().next() else { return Ok(()) };
            inner.file_end = at;
            (inner.file.clone(), at)
        };
        file.truncate(cut_at).await?;
        file.fdatasync().await?;
        Ok(())
    }

    async fn purge(&mut self, upto: LogIdOf<MetadataRaft>) -> io::Result<()> {
        // The purge point first: a crash before the rewrite leaves purged entries in the
        // file, which open skips.
        let dir = self.0.borrow().dir.clone();
        replace_durably(&dir.join(PURGED_FILE), serde_json::to_vec(&Some(&upto)).map_err(io::Error::other)?).await?;
        let remaining: Vec<EntryOf<MetadataRaft>> = {
            let mut inner = self.0.borrow_mut();
            inner.purged = Some(upto);
            inner.entries = inner.entries.split_off(&(upto.index + 1));
            inner.entries.values().map(|(entry, _)| entry.clone()).collect()
        };
        let mut bytes = Vec::new();
        let mut placed = BTreeMap::new();
        for entry in remaining {
            placed.insert(entry.log_id().index, (entry.clone(), bytes.len() as u64));
            bytes.extend_from_slice(&frame(&entry)?);
        }
        let path = dir.join(LOG_FILE);
        let file_end = bytes.len() as u64;
        replace_durably(&path, bytes).await?;
        let file = OpenOptions::new().read(true).write(true).buffered_open(&path).await?;
        let mut inner = self.0.borrow_mut();
        inner.file = Rc::new(file);
        inner.file_end = file_end;
        inner.entries = placed;
        Ok(())
    }
}
