//! Installing a rendered configuration: compare, validate, back up, rename,
//! reload, roll back (feature `agent`).
//!
//! [`Installer::install`] touches two files: the destination (`frr_config`)
//! and `<destination>.bak`, plus a temporary file in the same directory that
//! it always removes or renames.
//!
//! The directory may be writable by FRR's user, who must not be able to
//! make root read, change or give away any other file. So the directory is
//! opened once and everything works on descriptors ([`crate::files::Dir`]):
//! the installed file is read once through an `O_NOFOLLOW` descriptor (its
//! content, owner and mode come from that one file; a symbolic link is
//! refused), temporary files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` under an unpredictable name, their
//! owner and mode are set with `fchown`/`fchmod` on the descriptor (the
//! permission bits only: never setuid, setgid or sticky), and they are
//! renamed with `renameat`. In order:
//!
//! 1. the text is written to a temporary file next to the destination
//!    (same owner and mode as the installed file; new files get the
//!    directory's owner and mode 0640, FRR's configuration file mask);
//! 2. byte-equal to the installed file → nothing else happens;
//! 3. FRR validates the temporary file ([`Validator`]); a rejection leaves
//!    the destination and FRR untouched;
//! 4. the installed file is copied to `.bak` (temporary file, fsync, rename);
//! 5. the temporary file is fsynced and renamed onto the destination, and the
//!    directory is fsynced;
//! 6. FRR reloads it ([`Reloader`]). If that fails, the previous content is
//!    renamed back into place and reloaded (or, if there was none, the new
//!    file is removed), and the error reports the reload failure and what
//!    the roll-back achieved.
//!
//! Before step 1, temporary files an earlier install left behind (the agent
//! was killed between creating and renaming one) are removed.
//!
//! File operations are small and synchronous; only validation and reload
//! wait on other processes.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::reload::{ReloadError, Reloaded, Reloader};
use super::validate::{ValidateError, Validator};

use crate::files::{Dir, FRR_CONFIG_MAX_BYTES, FileKind, TEMP_RANDOM_LEN, TempFile};

/// Mode of a newly created configuration file (FRR's configfile mask).
pub const NEW_FILE_MODE: u32 = 0o640;

/// What the roll-back after a failed reload achieved.
#[derive(Debug)]
pub enum Rollback {
    /// The previous file is back in place and FRR reloaded it.
    Restored,
    /// The previous file is back in place, but reloading it failed too.
    RestoredButReloadFailed(ReloadError),
    /// There was no previous file: the new one was removed. FRR may still
    /// run parts of the failed configuration.
    Removed,
    /// The previous file could not be put back.
    Failed(String),
    /// Nothing was changed: FRR was only asked to load the installed file
    /// again ([`Installer::reload_installed`]).
    NotNeeded,
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollback::Restored => {
                f.write_str("the previous configuration was restored and reloaded")
            }
            Rollback::RestoredButReloadFailed(e) => write!(
                f,
                "the previous configuration was restored, but reloading it failed too: {e}"
            ),
            Rollback::Removed => f.write_str(
                "there was no previous configuration; the new file was removed, FRR may still \
                 run parts of it",
            ),
            Rollback::Failed(m) => write!(f, "restoring the previous configuration failed: {m}"),
            Rollback::NotNeeded => f.write_str("nothing to roll back, the installed file was kept"),
        }
    }
}

/// Errors installing a configuration.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Previous(crate::files::FileError),
    #[error("frr_config {0} has no parent directory; set frr_config to a file path")]
    NoDirectory(PathBuf),
    #[error("the new FRR configuration was not installed, {dest} is unchanged: {source}")]
    Invalid {
        dest: PathBuf,
        source: ValidateError,
    },
    #[error("reloading FRR with {dest} failed: {error}\nroll-back: {rollback}")]
    Reload {
        dest: PathBuf,
        error: Box<ReloadError>,
        rollback: Box<Rollback>,
    },
}

impl InstallError {
    /// FRR rejected the configuration itself (nothing was changed).
    pub fn is_rejection(&self) -> bool {
        matches!(self, InstallError::Invalid { source, .. } if source.is_rejection())
    }

    /// Whether a later attempt may succeed without a change of input.
    pub fn is_transient(&self) -> bool {
        match self {
            InstallError::Io { .. } => true,
            InstallError::Invalid { source, .. } => !source.is_rejection(),
            InstallError::Reload { error, .. } => error.is_transient(),
            InstallError::NoDirectory(_) => false,
            InstallError::Previous(e) => e.is_transient(),
        }
    }
}

/// The outcome of a successful install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The installed file already had these bytes; nothing was done.
    Unchanged,
    /// The file was replaced (and FRR reloaded, unless reloading is off).
    Replaced {
        /// Where the previous content went, if there was any.
        backup: Option<PathBuf>,
        /// How long FRR took to validate.
        validation: Duration,
        /// The reload, `None` when `frr_reload = "none"`.
        reload: Option<Reloaded>,
    },
}

/// Installs configurations at one destination.
#[derive(Debug, Clone)]
pub struct Installer {
    pub dest: PathBuf,
    pub validator: Validator,
    pub reloader: Reloader,
}

impl Installer {
    /// `<dest>.bak`.
    pub fn backup_path(&self) -> PathBuf {
        let mut s = self.dest.clone().into_os_string();
        s.push(".bak");
        PathBuf::from(s)
    }

    /// Make FRR load the installed file again, unchanged (`None` when
    /// reloading is off). For a process that cannot know whether FRR runs
    /// the installed file: an earlier run may have been killed between
    /// installing it and reloading FRR.
    pub async fn reload_installed(&self) -> Result<Option<Reloaded>, InstallError> {
        if self.reloader.is_none() {
            return Ok(None);
        }
        match self.reloader.reload(&self.dest).await {
            Ok(r) => Ok(Some(r)),
            Err(error) => Err(InstallError::Reload {
                dest: self.dest.clone(),
                error: Box::new(error),
                rollback: Box::new(Rollback::NotNeeded),
            }),
        }
    }

    /// Install `text` (see the module documentation for the steps).
    pub async fn install(&self, text: &str) -> Result<Installed, InstallError> {
        let dest = &self.dest;
        let (dir_path, name) = match (dest.parent(), dest.file_name()) {
            (Some(d), Some(n)) if !d.as_os_str().is_empty() => (d.to_owned(), n.to_owned()),
            _ => return Err(InstallError::NoDirectory(dest.clone())),
        };
        // Opened once: every later step works relative to this descriptor.
        let dir = Dir::open(&dir_path).map_err(|e| io("open the directory", &dir_path, e))?;
        // A run killed between writing a temporary file and renaming it left
        // it behind.
        remove_stale_temps(&dir, &name);
        // Read once, through one O_NOFOLLOW descriptor: its content, owner
        // and mode belong to the same file (a symbolic link, a FIFO or a
        // device is refused), and nothing else is read or stat'ed by path.
        let previous = dir
            .read_regular(FileKind::FrrConfig, &name, FRR_CONFIG_MAX_BYTES)
            .map_err(InstallError::Previous)?;
        if previous.as_ref().map(|(b, _)| b.as_slice()) == Some(text.as_bytes()) {
            tracing::debug!(file = %dest.display(), "FRR configuration unchanged");
            return Ok(Installed::Unchanged);
        }
        let owner = match &previous {
            Some((_, m)) => Owner {
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o777,
            },
            None => {
                let d = dir.metadata().map_err(|e| io("inspect", &dir_path, e))?;
                Owner {
                    uid: d.uid(),
                    gid: d.gid(),
                    mode: NEW_FILE_MODE,
                }
            }
        };
        let previous = previous.map(|(bytes, _)| bytes);

        let new = write_temp(&dir, &name, text.as_bytes(), owner)?;
        let started = Instant::now();
        if let Err(source) = self.validator.validate(&new.path()).await {
            return Err(InstallError::Invalid {
                dest: dest.clone(),
                source,
            });
        }
        let validation = started.elapsed();
        crate::crash_point!("frr.validated");

        let backup = match &previous {
            Some(bytes) => {
                let bak = self.backup_path();
                let bak_name = bak.file_name().map(OsStr::to_owned).unwrap_or_default();
                let tmp = write_temp(&dir, &bak_name, bytes, owner)?;
                tmp.persist(&bak_name)
                    .map_err(|e| io("rename a temporary file to", &bak, e))?;
                Some(bak)
            }
            None => None,
        };
        crate::crash_point!("frr.backed-up");
        new.persist(&name)
            .map_err(|e| io("rename the new configuration to", dest, e))?;
        dir.sync()
            .map_err(|e| io("fsync the directory", &dir_path, e))?;
        crate::crash_point!("frr.installed");
        tracing::info!(file = %dest.display(), ?validation, "installed a new FRR configuration");

        if self.reloader.is_none() {
            return Ok(Installed::Replaced {
                backup,
                validation,
                reload: None,
            });
        }
        match self.reloader.reload(dest).await {
            Ok(reloaded) => {
                crate::crash_point!("frr.reloaded");
                tracing::info!(elapsed = ?reloaded.elapsed, "FRR reloaded");
                Ok(Installed::Replaced {
                    backup,
                    validation,
                    reload: Some(reloaded),
                })
            }
            Err(error) => {
                tracing::warn!(%error, "FRR reload failed; rolling back");
                let rollback = self
                    .roll_back(&dir, &name, previous.as_deref(), owner)
                    .await;
                Err(InstallError::Reload {
                    dest: dest.clone(),
                    error: Box::new(error),
                    rollback: Box::new(rollback),
                })
            }
        }
    }

    async fn roll_back(
        &self,
        dir: &Dir,
        name: &OsStr,
        previous: Option<&[u8]>,
        owner: Owner,
    ) -> Rollback {
        let dest = &self.dest;
        let Some(bytes) = previous else {
            return match dir.remove(name).and_then(|()| dir.sync()) {
                Ok(()) => Rollback::Removed,
                Err(e) => Rollback::Failed(format!("cannot remove {}: {e}", dest.display())),
            };
        };
        let restored = write_temp(dir, name, bytes, owner).and_then(|tmp| {
            tmp.persist(name)
                .map_err(|e| io("rename the previous configuration to", dest, e))?;
            dir.sync()
                .map_err(|e| io("fsync the directory", dir.path(), e))
        });
        if let Err(e) = restored {
            return Rollback::Failed(e.to_string());
        }
        match self.reloader.reload(dest).await {
            Ok(_) => Rollback::Restored,
            Err(e) => Rollback::RestoredButReloadFailed(e),
        }
    }
}

/// Owner, group and permission bits a written file gets (those of the file
/// it replaces; never a setuid, setgid or sticky bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
    mode: u32,
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> InstallError {
    InstallError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A temporary file `<target>.<random>.new` in `dir` holding `bytes`,
/// fsynced, with `owner` set on its descriptor ([`Dir::create_temp`]:
/// `O_EXCL|O_NOFOLLOW|O_CLOEXEC`, `fchown`, `fchmod`).
fn write_temp<'d>(
    dir: &'d Dir,
    target: &OsStr,
    bytes: &[u8],
    owner: Owner,
) -> Result<TempFile<'d>, InstallError> {
    let name = target.to_string_lossy();
    let mut tmp = dir
        .create_temp(&format!("{name}."), ".new")
        .map_err(|e| io("create a temporary file in", dir.path(), e))?;
    let path = tmp.path();
    tmp.set_owner(Some((owner.uid, owner.gid)), owner.mode)
        .map_err(|e| io("set the owner and mode of", &path, e))?;
    tmp.write_synced(bytes).map_err(|e| io("write", &path, e))?;
    Ok(tmp)
}

/// Whether `file` is a temporary file [`write_temp`] makes for `dest` or its
/// backup: `<name>.X….new` or `<name>.bak.X….new` with
/// [`TEMP_RANDOM_LEN`] random alphanumerics (or 6, as earlier versions made
/// them).
fn is_temp_of(file: &str, name: &str) -> bool {
    let Some(rest) = file
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".new"))
    else {
        return false;
    };
    let random = rest.strip_prefix("bak.").unwrap_or(rest);
    (random.len() == 6 || random.len() == TEMP_RANDOM_LEN)
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Remove the temporary files an earlier, killed install left next to
/// `dest` (the process ended between creating one and renaming or removing
/// it). Best effort: a file that cannot be removed is logged and left.
/// `unlinkat` removes the entry, never what it may link to.
fn remove_stale_temps(dir: &Dir, dest: &OsStr) {
    let Some(name) = dest.to_str() else {
        return;
    };
    let entries = match dir.names() {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(dir = %dir.path().display(), error = %e, "cannot list for stale temporary files");
            return;
        }
    };
    for file in entries {
        if !file.to_str().is_some_and(|f| is_temp_of(f, name)) {
            continue;
        }
        let path = dir.path().join(&file);
        match dir.remove(&file) {
            Ok(()) => tracing::info!(
                file = %path.display(),
                "removed a temporary file an interrupted install left behind"
            ),
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot remove a temporary file an interrupted install left behind"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_temp_of;

    #[test]
    fn only_the_installers_own_temporary_files_count_as_stale() {
        // Prefix, twelve random alphanumerics, suffix (six in earlier
        // versions, which used the tempfile crate).
        assert!(is_temp_of("frr.conf.GcJx6tQ2mZ8w.new", "frr.conf"));
        assert!(is_temp_of("frr.conf.bak.a1B2c3d4E5f6.new", "frr.conf"));
        assert!(is_temp_of("frr.conf.GcJx6t.new", "frr.conf"));
        assert!(is_temp_of("frr.conf.bak.a1B2c3.new", "frr.conf"));
        for other in [
            "frr.conf",
            "frr.conf.bak",
            "frr.conf.new",
            "frr.conf.GcJx6t",
            "frr.conf.GcJx6.new",
            "frr.conf.operator.new",
            "frr.conf.Gc-x6t.new",
            "daemons.GcJx6t.new",
            "vtysh.conf.GcJx6t.new",
        ] {
            assert!(!is_temp_of(other, "frr.conf"), "{other}");
        }
    }
}
