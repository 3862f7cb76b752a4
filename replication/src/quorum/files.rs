//! Small durable files of the quorum (vote, purge point, snapshot): written whole to a
//! temporary name, fsynced, renamed over the old one, the directory fsynced.

use std::io;
use std::path::Path;

use glommio::io::BufferedFile;

/// Replaces `path` with `bytes`, durably and atomically.
pub async fn replace_durably(path: &Path, bytes: Vec<u8>) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = BufferedFile::create(&temporary).await.map_err(io::Error::from)?;
    let length = bytes.len();
    let written = file.write_at(bytes, 0).await.map_err(io::Error::from)?;
    if written != length {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("short write to {}", temporary.display())));
    }
    file.fdatasync().await.map_err(io::Error::from)?;
    file.rename(path).await.map_err(io::Error::from)?;
    file.close().await.map_err(io::Error::from)?;
    sync_directory(path.parent().unwrap_or(Path::new(".")))
}

/// fsync of a directory, so that a rename or a new file in it survives a crash. (Rare:
/// votes, purges, snapshots; a blocking call is acceptable there.)
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates the quorum's directory if needed, readable by its owner alone: the log and the
/// snapshot hold users' SCRAM credentials (set again at every open, so a directory made by
/// an older version is closed too).
pub fn open_private_directory(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The file's content, or `None` if it does not exist.
pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
