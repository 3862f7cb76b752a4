//! One process per data directory: an exclusive `flock` on `<data-dir>/.lock`, held for
//! the life of the process. Two brokers on one directory would corrupt each other's logs.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Holds the lock until dropped (or the process exits; the kernel releases it on SIGKILL).
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, or says which directory is already in use.
    pub fn acquire(data_dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(".lock");
        let file = File::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            return Err(format!(
                "{} is in use by another sluice process (lock {} is held)",
                data_dir.display(),
                path.display()
            ));
        }
        Ok(DataDirLock { _file: file })
    }
}
