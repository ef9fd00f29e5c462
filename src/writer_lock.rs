//! One writer per switch: `run` and `apply` hold an exclusive `flock` on
//! `writer.lock` in the runtime directory (`state_directory`,
//! `/run/metal-switchd`) for as long as they may write (feature `agent`).
//!
//! A second instance does not wait: it ends with exit code 1 and an error
//! that names the holder's PID (written into the file by the holder). The
//! kernel drops the lock when the holder's process ends, however it ends
//! (SIGKILL included), so a stale file never blocks a start.
//!
//! What this cannot see — another program writing CONFIG_DB, e.g. metal-core
//! still running in its container — is found by the contested-key limit of
//! the repairs (`crate::configdb::contest`).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name in the runtime directory.
pub const LOCK_FILE: &str = "writer.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another metal-switchd{} writes this switch (it holds {}); stop it first \
         (systemctl stop metal-switchd) — two writers would undo each other's work",
        holder.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        path.display()
    )]
    Held { path: PathBuf, holder: Option<u32> },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct WriterLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl WriterLock {
    /// Take the lock in `dir` (created if missing) without waiting, and
    /// write this process's PID into it.
    pub fn acquire(dir: &Path) -> Result<WriterLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source: std::io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = Read::by_ref(&mut file).take(32).read_to_string(&mut text);
                return Err(LockError::Held {
                    path,
                    holder: text.trim().parse().ok(),
                });
            }
            Err((_, e)) => return Err(io(std::io::Error::from(e))),
        };
        let pid = format!("{}\n", std::process::id());
        lock.set_len(0).map_err(io)?;
        lock.rewind().map_err(io)?;
        lock.write_all(pid.as_bytes()).map_err(io)?;
        Ok(WriterLock { _lock: lock, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to the open file: a second open conflicts even
        // within one process.
        let e = WriterLock::acquire(dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("(PID {})", std::process::id())),
            "{text}"
        );
        assert!(text.contains("writer.lock"), "{text}");
        drop(first);
        let again = WriterLock::acquire(dir.path()).unwrap();
        drop(again);
    }
}
