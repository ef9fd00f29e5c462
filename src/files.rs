//! Bounded reads of local files: the one way the agent reads a file.
//!
//! Every file the agent reads (configuration, switch document, CONFIG_DB
//! snapshot, `database_config.json`, `sonic_version.yml`, token and key
//! files, the BGP neighbour state file, the redis password file, the CA
//! file, the installed `frr.conf`, two `/proc` files) goes through [`read`]
//! or [`read_bytes`], which
//! - open the path with `O_NONBLOCK`, so a FIFO cannot stall the open;
//! - check the *opened* descriptor (`fstat`) to be a regular file, so a
//!   directory, FIFO, socket or device (`/dev/zero`) is refused before a
//!   single byte is read, and the check and the read concern the same file;
//! - read at most `limit + 1` bytes, so an endless or huge file costs at
//!   most the limit in memory (the size `fstat` reports is not trusted:
//!   `/proc` files report 0 and a file may grow while it is read);
//! - for text, check UTF-8;
//! - for secrets (token, HMAC key, redis password, gRPC client key), refuse
//!   a file that others may read or write, or that belongs to a user other
//!   than root or the agent's own ([`FileKind::secret`]), before reading it.
//!   Group read is allowed where deployments use it: for the token, the
//!   HMAC key and the gRPC client key when the group is root's or the
//!   agent's own (metal-roles writes the gRPC files `0640` as root), for
//!   SONiC's redis password whatever its group;
//! - open with `O_CLOEXEC` (no descriptor leaks into FRR's tools).
//!
//! Writing (feature `agent`): [`Dir`] opens a directory once and works
//! relative to that descriptor: temporary files are created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` under an unpredictable name, their
//! owner and mode are set on the descriptor (`fchown`/`fchmod`, never a
//! setuid, setgid or sticky bit), they are renamed with `renameat`, and an
//! existing file is read through one `O_NOFOLLOW` descriptor
//! ([`Dir::read_regular`]), so a symbolic link or a swapped name in a
//! directory that another user can write is never followed. Used for
//! `status.json`, the renewed token and `frr.conf`.
//!
//! Errors ([`FileError`]) name the file, what it is ([`FileKind`]) and what
//! to do. Reading is pure std plus `libc` for the flags; no feature needed.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size limit of the configuration file (fixed: it is read before any setting).
pub const CONFIGURATION_MAX_BYTES: u64 = 1024 * 1024;
/// Size limit of `database_config.json`.
pub const DATABASE_CONFIG_MAX_BYTES: u64 = 1024 * 1024;
/// Size limit of `sonic_version.yml`.
pub const SONIC_VERSION_MAX_BYTES: u64 = 64 * 1024;
/// Size limit of the token, HMAC key and redis password files.
pub const SECRET_MAX_BYTES: u64 = 64 * 1024;
/// Size limit of the BGP neighbour state file.
pub const BGP_STATE_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Size limit of `api_ca_file`.
pub const CA_FILE_MAX_BYTES: u64 = 1024 * 1024;
/// Size limit of the installed `frr.conf` read back before an install.
pub const FRR_CONFIG_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Size limit of the small `/proc` files (hostname, process status).
pub const PROC_MAX_BYTES: u64 = 64 * 1024;
/// Size limit of the v1 gRPC certificate and key files.
pub const GRPC_PEM_MAX_BYTES: u64 = 1024 * 1024;
/// Size limit of the daemon's status file read by `metal-switchd status`.
pub const STATUS_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Who besides the owner may access a secret file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAccess {
    /// The file's group may read it if that group is root's (gid 0) or the
    /// agent's own (metal-roles writes the gRPC key `0640`, owned by
    /// root:root); no other group, nobody else, and nobody but the owner
    /// writes (`chmod 600`, or `640` with such a group).
    TrustedGroupMayRead,
    /// The file's group may read it, whatever the group (SONiC's redis
    /// password file belongs to SONiC, which may share it with its redis
    /// group); nobody else.
    GroupMayRead,
}

/// What a file is for; decides the words and the advice of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `--config` (TOML).
    Configuration,
    /// `--switch`: a v1 or v2 switch document.
    SwitchDocument,
    /// `--configdb`: a `config_db.json` snapshot.
    ConfigDbSnapshot,
    /// SONiC's `database_config.json` (`database_config`).
    DatabaseConfig,
    /// SONiC's `sonic_version.yml` (`sonic_version_file`).
    SonicVersion,
    /// The v2 API token (`metal_apiserver_token_file`).
    Token,
    /// The v1 HMAC key (`hmac_key_file`).
    HmacKey,
    /// The BGP neighbour state file (`bgp_neighbor_state_file`).
    BgpState,
    /// A redis instance's `password_path` in `database_config.json`.
    RedisPassword,
    /// Extra CA certificates for the metal API (`api_ca_file`).
    CaCertificates,
    /// The installed FRR configuration (`frr_config`).
    FrrConfig,
    /// `/proc/sys/kernel/hostname`.
    SystemHostname,
    /// `/proc/self/status`.
    ProcessStatus,
    /// `grpc_ca_cert_file` or `grpc_client_cert_file` (PEM).
    GrpcCertificate,
    /// `grpc_client_key_file`: the v1 gRPC client's private key (PEM).
    GrpcClientKey,
    /// `<state_directory>/status.json`, written by the running agent.
    StatusFile,
}

impl FileKind {
    /// What the file is, for messages ("the {what} {path}").
    pub fn what(self) -> &'static str {
        match self {
            FileKind::Configuration => "configuration file",
            FileKind::SwitchDocument => "switch document",
            FileKind::ConfigDbSnapshot => "CONFIG_DB snapshot",
            FileKind::DatabaseConfig => "database_config.json",
            FileKind::SonicVersion => "sonic_version.yml",
            FileKind::Token => "metal-apiserver token file",
            FileKind::HmacKey => "HMAC key file",
            FileKind::BgpState => "BGP neighbour state file",
            FileKind::RedisPassword => "redis password file",
            FileKind::CaCertificates => "CA certificate file",
            FileKind::FrrConfig => "FRR configuration",
            FileKind::SystemHostname => "kernel host name file",
            FileKind::ProcessStatus => "process status file",
            FileKind::GrpcCertificate => "gRPC certificate file",
            FileKind::GrpcClientKey => "gRPC client key file",
            FileKind::StatusFile => "status file",
        }
    }

    /// Whether the file holds a secret, and who besides its owner may
    /// access it then. A secret file must also belong to root or to the
    /// agent's own user.
    pub fn secret(self) -> Option<SecretAccess> {
        match self {
            FileKind::Token | FileKind::HmacKey | FileKind::GrpcClientKey => {
                Some(SecretAccess::TrustedGroupMayRead)
            }
            FileKind::RedisPassword => Some(SecretAccess::GroupMayRead),
            _ => None,
        }
    }

    /// What to do about an unreadable file of this kind.
    pub fn advice(self) -> &'static str {
        match self {
            FileKind::Configuration => {
                "pass --config (or METAL_SWITCHD_CONFIG) a TOML file; see docs/configuration.md"
            }
            FileKind::SwitchDocument => {
                "pass --switch a switch document as the metal API returns it (v1 SwitchResponse \
                 or v2 Switch JSON)"
            }
            FileKind::ConfigDbSnapshot => {
                "pass --configdb a config_db.json (e.g. /etc/sonic/config_db.json), or leave it \
                 out to read CONFIG_DB from redis"
            }
            FileKind::DatabaseConfig => {
                "set database_config to SONiC's database_config.json \
                 (/var/run/redis/sonic-db/database_config.json)"
            }
            FileKind::SonicVersion => {
                "set sonic_version_file to SONiC's version file (/etc/sonic/sonic_version.yml)"
            }
            FileKind::Token => {
                "write the switch's API token there (or set metal_apiserver_token_file)"
            }
            FileKind::HmacKey => "write the Metal-Edit HMAC key there (or set hmac_key_file)",
            FileKind::BgpState => {
                "check the bgp-neighbor-stats timer, or set bgp_neighbor_state_file (empty: off)"
            }
            FileKind::RedisPassword => {
                "fix password_path of the redis instance in database_config.json"
            }
            FileKind::CaCertificates => "set api_ca_file to a PEM file of CA certificates",
            FileKind::FrrConfig => "move the file away or set frr_config",
            FileKind::SystemHostname | FileKind::ProcessStatus => "is /proc mounted?",
            FileKind::GrpcCertificate | FileKind::GrpcClientKey => {
                "set grpc_ca_cert_file, grpc_client_cert_file and grpc_client_key_file to the \
                 PEM files of the v1 gRPC event service's mutual TLS"
            }
            FileKind::StatusFile => {
                "the running agent writes it into state_directory; is metal-switchd running with \
                 this configuration?"
            }
        }
    }

    /// The setting that raises this kind's size limit, if there is one.
    pub fn limit_setting(self) -> Option<&'static str> {
        match self {
            FileKind::SwitchDocument => Some("api_max_response_bytes"),
            FileKind::ConfigDbSnapshot => Some("max_snapshot_bytes"),
            _ => None,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// Why a file was not read.
#[derive(Debug)]
pub enum FileProblem {
    /// Nothing at that path.
    Missing,
    /// Something other than a regular file (e.g. "a directory").
    NotAFile(&'static str),
    /// More than `limit` bytes.
    TooLarge { limit: u64 },
    /// Not UTF-8; `offset` is the first invalid byte.
    NotUtf8 { offset: usize },
    /// A secret file that others may read or write (`mode` & 0o7777).
    Exposed { mode: u32, access: &'static str },
    /// A secret file of another user, who could read or replace it.
    ForeignOwner { uid: u32 },
    /// A secret file readable by a group that is neither root's nor the
    /// agent's own.
    ForeignGroup { gid: u32, mode: u32 },
    /// Any other error of open or read (e.g. permission denied).
    Io(std::io::Error),
}

/// A file that was not read, with what it is and what to do.
#[derive(Debug, thiserror::Error)]
pub struct FileError {
    pub kind: FileKind,
    pub path: PathBuf,
    pub problem: FileProblem,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, path) = (self.kind, self.path.display());
        write!(f, "cannot read the {kind} {path}: ")?;
        match &self.problem {
            FileProblem::Missing => f.write_str("it does not exist")?,
            FileProblem::NotAFile(what) => write!(f, "it is {what}, not a regular file")?,
            FileProblem::TooLarge { limit } => {
                write!(f, "it is larger than the limit of {limit} bytes")?;
                if let Some(setting) = kind.limit_setting() {
                    write!(f, " (setting {setting})")?;
                }
            }
            FileProblem::NotUtf8 { offset } => {
                write!(f, "it is not UTF-8 text (invalid byte at offset {offset})")?
            }
            FileProblem::Exposed { mode, access } => write!(
                f,
                "it has mode {mode:04o}: it is {access}, so the agent refuses to use it; run \
                 `chmod {} {path}`",
                match kind.secret() {
                    Some(SecretAccess::GroupMayRead) => "640",
                    _ => "600",
                }
            )?,
            FileProblem::ForeignOwner { uid } => write!(
                f,
                "it belongs to uid {uid}, who could read or replace it, so the agent refuses to \
                 use it; run `chown root {path}` (or give it to the agent's user)"
            )?,
            FileProblem::ForeignGroup { gid, mode } => write!(
                f,
                "it has mode {mode:04o} and group {gid}: members of that group can read it, and \
                 it is neither root's group nor the agent's, so the agent refuses to use it; run \
                 `chgrp root {path}` or `chmod 600 {path}`"
            )?,
            FileProblem::Io(e) => write!(f, "{e}")?,
        }
        write!(f, "; {}", kind.advice())
    }
}

impl FileError {
    /// Whether reading again later may succeed without a change of
    /// configuration: the file is missing (it may appear, e.g. while SONiC
    /// boots) or the read failed. A wrong type, size or encoding is not.
    pub fn is_transient(&self) -> bool {
        matches!(self.problem, FileProblem::Missing | FileProblem::Io(_))
    }

    /// Whether the file does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self.problem, FileProblem::Missing)
    }
}

/// A file's text and the metadata of the descriptor it was read from.
#[derive(Debug)]
pub struct FileText {
    pub text: String,
    pub meta: Metadata,
}

/// Read a regular file of at most `limit` bytes as UTF-8 text.
pub fn read(kind: FileKind, path: &Path, limit: u64) -> Result<FileText, FileError> {
    let (bytes, meta) = read_regular(kind, path, limit)?;
    let text = String::from_utf8(bytes).map_err(|e| FileError {
        kind,
        path: path.to_owned(),
        problem: FileProblem::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        },
    })?;
    Ok(FileText { text, meta })
}

/// [`read`], the text only.
pub fn read_text(kind: FileKind, path: &Path, limit: u64) -> Result<String, FileError> {
    read(kind, path, limit).map(|t| t.text)
}

/// Read a regular file of at most `limit` bytes, any content.
pub fn read_bytes(kind: FileKind, path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    read_regular(kind, path, limit).map(|(b, _)| b)
}

fn read_regular(kind: FileKind, path: &Path, limit: u64) -> Result<(Vec<u8>, Metadata), FileError> {
    let err = |problem| FileError {
        kind,
        path: path.to_owned(),
        problem,
    };
    let io = |e: std::io::Error| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            FileProblem::Missing
        } else {
            FileProblem::Io(e)
        })
    };
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    read_opened(kind, path, file, limit)
}

/// Check and read a file opened by the caller: the checks of [`read`] on
/// the descriptor itself.
fn read_opened(
    kind: FileKind,
    path: &Path,
    file: File,
    limit: u64,
) -> Result<(Vec<u8>, Metadata), FileError> {
    let err = |problem| FileError {
        kind,
        path: path.to_owned(),
        problem,
    };
    let meta = file.metadata().map_err(|e| err(FileProblem::Io(e)))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(err(FileProblem::NotAFile(type_name(&meta))));
    }
    if let Some(access) = kind.secret() {
        secret_problem(&meta, access).map_or(Ok(()), |p| Err(err(p)))?;
    }
    if meta.len() > limit {
        return Err(err(FileProblem::TooLarge { limit }));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(FileProblem::Io(e)))?;
    if bytes.len() as u64 > limit {
        return Err(err(FileProblem::TooLarge { limit }));
    }
    Ok((bytes, meta))
}

/// What a file that is not a regular file is, for messages.
fn type_name(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Why a secret file with metadata `meta` must not be used, if it must not.
fn secret_problem(meta: &Metadata, access: SecretAccess) -> Option<FileProblem> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode() & 0o7777;
    let (read, write) = (mode & 0o004, mode & 0o022);
    let access_text = match (read != 0, write != 0) {
        (true, true) => "readable by others and writable by group or others",
        (true, false) => "readable by others",
        (false, true) => "writable by group or others",
        (false, false) => "",
    };
    if !access_text.is_empty() {
        return Some(FileProblem::Exposed {
            mode,
            access: access_text,
        });
    }
    let (uid, gid) = (meta.uid(), meta.gid());
    if uid != 0 && Some(uid) != own_ids().map(|(u, _)| u) {
        return Some(FileProblem::ForeignOwner { uid });
    }
    let group_reads = mode & 0o040 != 0;
    if access == SecretAccess::TrustedGroupMayRead
        && group_reads
        && gid != 0
        && Some(gid) != own_ids().map(|(_, g)| g)
    {
        return Some(FileProblem::ForeignGroup { gid, mode });
    }
    None
}

/// The agent's effective user and group: the owner of its `/proc/self`
/// (without `/proc`, only root's files count as its own).
fn own_ids() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .ok()
        .map(|m| (m.uid(), m.gid()))
}

#[cfg(feature = "agent")]
pub use writer::{Dir, TEMP_RANDOM_LEN, TempFile, random_name, replace_file};

/// Writing files in a directory through its descriptor (feature `agent`).
#[cfg(feature = "agent")]
mod writer {
    use std::ffi::{OsStr, OsString};
    use std::fs::{File, Metadata, Permissions};
    use std::io::{self, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    use nix::errno::Errno;
    use nix::fcntl::{OFlag, openat, renameat};
    use nix::sys::stat::Mode;
    use nix::unistd::{UnlinkatFlags, unlinkat};

    use super::{FileError, FileKind, FileProblem, read_opened};

    /// Random characters in a temporary file's name.
    pub const TEMP_RANDOM_LEN: usize = 12;

    /// `len` random ASCII letters and digits. The randomness is std's
    /// `RandomState` (SipHash keyed from the operating system's random
    /// source): unpredictable to another user, no extra crate.
    pub fn random_name(len: usize) -> String {
        use std::hash::{BuildHasher, Hasher};
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let state = std::collections::hash_map::RandomState::new();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut out = String::with_capacity(len);
        let mut round = 0u64;
        while out.len() < len {
            let mut h = state.build_hasher();
            h.write_u64(round);
            h.write_u128(nanos);
            let mut v = h.finish();
            round = round.wrapping_add(1);
            // 10 characters of 62 take 59.5 bits of the 64.
            for _ in 0..10 {
                if out.len() >= len {
                    break;
                }
                let i = usize::try_from(v % 62).unwrap_or(0);
                out.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
                v /= 62;
            }
        }
        out
    }

    /// A directory opened once; every operation is relative to its
    /// descriptor.
    #[derive(Debug)]
    pub struct Dir {
        fd: OwnedFd,
        path: PathBuf,
    }

    impl Dir {
        /// Open `path` as a directory.
        pub fn open(path: &Path) -> io::Result<Dir> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(path)?;
            Ok(Dir {
                fd: file.into(),
                path: path.to_owned(),
            })
        }

        /// The path it was opened with (for messages and for tools that
        /// take a path).
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// `fstat` of the directory.
        pub fn metadata(&self) -> io::Result<Metadata> {
            File::from(self.fd.try_clone()?).metadata()
        }

        /// Create a new file `<prefix><random><suffix>` with
        /// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` (mode 0600 until
        /// [`TempFile::set_owner`]): nothing that exists under that name,
        /// a symbolic link included, is ever opened. Removed on drop unless
        /// persisted.
        pub fn create_temp(&self, prefix: &str, suffix: &str) -> io::Result<TempFile<'_>> {
            let flags = OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC;
            for _ in 0..32 {
                let name = format!("{prefix}{}{suffix}", random_name(TEMP_RANDOM_LEN));
                match openat(
                    &self.fd,
                    name.as_str(),
                    flags,
                    Mode::from_bits_truncate(0o600),
                ) {
                    Ok(fd) => {
                        return Ok(TempFile {
                            dir: self,
                            name: name.into(),
                            file: File::from(fd),
                            kept: false,
                        });
                    }
                    Err(Errno::EEXIST) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "no free temporary file name {prefix}*{suffix} in {}",
                    self.path.display()
                ),
            ))
        }

        /// Read the regular file `name` through one descriptor opened with
        /// `O_NOFOLLOW|O_NONBLOCK`: the checks of [`super::read`] (type,
        /// size, secret rules of `kind`) and the content concern that one
        /// file. `Ok(None)` when there is none; a symbolic link is refused.
        pub fn read_regular(
            &self,
            kind: FileKind,
            name: &OsStr,
            limit: u64,
        ) -> Result<Option<(Vec<u8>, Metadata)>, FileError> {
            let path = self.path.join(name);
            let err = |problem| FileError {
                kind,
                path: path.clone(),
                problem,
            };
            let flags = OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC;
            let fd = match openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) => return Err(err(FileProblem::NotAFile("a symbolic link"))),
                Err(e) => return Err(err(FileProblem::Io(e.into()))),
            };
            read_opened(kind, &path, File::from(fd), limit).map(Some)
        }

        /// `renameat(dir, from, dir, to)`.
        pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
            renameat(&self.fd, from, &self.fd, to).map_err(io::Error::from)
        }

        /// `unlinkat(dir, name)`: removes the entry, never what a link
        /// points to.
        pub fn remove(&self, name: &OsStr) -> io::Result<()> {
            unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir).map_err(io::Error::from)
        }

        /// `fsync` the directory (a rename is durable after this).
        pub fn sync(&self) -> io::Result<()> {
            File::from(self.fd.try_clone()?).sync_all()
        }

        /// The names in the directory.
        pub fn names(&self) -> io::Result<Vec<OsString>> {
            Ok(std::fs::read_dir(&self.path)?
                .flatten()
                .map(|e| e.file_name())
                .collect())
        }
    }

    /// A file [`Dir::create_temp`] made; removed on drop unless persisted.
    #[derive(Debug)]
    pub struct TempFile<'d> {
        dir: &'d Dir,
        name: OsString,
        file: File,
        kept: bool,
    }

    impl TempFile<'_> {
        pub fn name(&self) -> &OsStr {
            &self.name
        }

        /// Its path (for a tool that reads it by name, e.g. `vtysh -f`).
        pub fn path(&self) -> PathBuf {
            self.dir.path.join(&self.name)
        }

        /// Set owner (when given) and mode on the descriptor. Only the
        /// permission bits of `mode` are used: a setuid, setgid or sticky
        /// bit is never set. Only root can give a file away: an
        /// unprivileged run keeps its own user.
        pub fn set_owner(&self, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
            if let Some((uid, gid)) = owner
                && let Err(e) = std::os::unix::fs::fchown(&self.file, Some(uid), Some(gid))
            {
                if e.raw_os_error() != Some(libc::EPERM) {
                    return Err(e);
                }
                tracing::debug!(file = %self.path().display(), error = %e, "cannot keep the owner");
            }
            self.file
                .set_permissions(Permissions::from_mode(mode & 0o777))
        }

        /// Write `bytes` and `fsync`.
        pub fn write_synced(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.file.write_all(bytes)?;
            self.file.sync_all()
        }

        /// Rename it to `to` in the same directory (`renameat`), after
        /// checking that its name still refers to this file (not, say, a
        /// link another user of the directory put in its place while a
        /// tool read it).
        pub fn persist(mut self, to: &OsStr) -> io::Result<()> {
            use std::os::unix::fs::MetadataExt;
            let ours = self.file.metadata()?;
            let named = nix::sys::stat::fstatat(
                &self.dir.fd,
                self.name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(io::Error::from)?;
            if named.st_ino != ours.ino() || named.st_dev != ours.dev() {
                return Err(io::Error::other(format!(
                    "{} was replaced by something else after it was written; not installed",
                    self.path().display()
                )));
            }
            self.dir.rename(&self.name, to)?;
            self.kept = true;
            Ok(())
        }
    }

    impl Drop for TempFile<'_> {
        fn drop(&mut self) {
            if !self.kept {
                let _ = self.dir.remove(&self.name);
            }
        }
    }

    /// Replace `dir/name` with `bytes` atomically: a temporary file
    /// `.<name>.<random>.tmp` made by [`Dir::create_temp`], owner (when
    /// given) and mode set on its descriptor, written, fsynced, renamed
    /// over `name`, the directory fsynced.
    pub fn replace_file(
        dir: &Path,
        name: &str,
        bytes: &[u8],
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> io::Result<()> {
        let dir = Dir::open(dir)?;
        let mut tmp = dir.create_temp(&format!(".{name}."), ".tmp")?;
        tmp.set_owner(owner, mode)?;
        tmp.write_synced(bytes)?;
        tmp.persist(OsStr::new(name))?;
        dir.sync()
    }
}

/// For tests: a FIFO at `dir/fifo` (`mkfifo`), its path.
#[cfg(test)]
pub(crate) fn test_fifo(dir: &Path) -> PathBuf {
    let p = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .unwrap_or_else(|e| panic!("mkfifo (coreutils): {e}"));
    assert!(made.success(), "mkfifo {}", p.display());
    p
}

/// For tests: `file` refused the file `path` as larger than `limit` bytes,
/// and `msg`, the message of the error around it, names it as `what file`.
#[cfg(test)]
pub(crate) fn assert_too_large(
    file: Option<&FileError>,
    msg: &str,
    (what, path): (&str, &Path),
    limit: u64,
) {
    assert!(
        matches!(file, Some(FileError { problem: FileProblem::TooLarge { limit: l }, .. }) if *l == limit),
        "{msg}"
    );
    let said = format!(
        "{what} file {}: it is larger than the limit of {limit} bytes",
        path.display()
    );
    assert!(msg.contains(&said), "{msg}");
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    fn problem(r: Result<FileText, FileError>) -> (FileProblem, String) {
        let e = r.unwrap_err();
        let msg = e.to_string();
        (e.problem, msg)
    }

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        std::fs::write(&p, "{}\n").unwrap();
        let t = read(FileKind::SwitchDocument, &p, 3).unwrap();
        assert_eq!(t.text, "{}\n");
        assert!(t.meta.is_file());
    }

    #[test]
    fn missing_directory_and_too_large() {
        let dir = tempfile::tempdir().unwrap();
        let (p, msg) = problem(read(FileKind::SwitchDocument, &dir.path().join("x"), 10));
        assert!(matches!(p, FileProblem::Missing), "{msg}");
        assert!(msg.contains("switch document"), "{msg}");
        assert!(msg.contains("does not exist; pass --switch"), "{msg}");
        let (p, msg) = problem(read(FileKind::Configuration, dir.path(), 10));
        assert!(matches!(p, FileProblem::NotAFile("a directory")), "{msg}");
        let f = dir.path().join("big");
        std::fs::write(&f, "12345").unwrap();
        let (p, msg) = problem(read(FileKind::ConfigDbSnapshot, &f, 4));
        assert!(matches!(p, FileProblem::TooLarge { limit: 4 }), "{msg}");
        assert!(
            msg.contains("larger than the limit of 4 bytes (setting max_snapshot_bytes)"),
            "{msg}"
        );
    }

    #[test]
    fn devices_are_refused_before_reading() {
        // /dev/zero is endless: refused by type, not by reading it.
        let (p, msg) = problem(read(
            FileKind::SwitchDocument,
            Path::new("/dev/zero"),
            u64::MAX,
        ));
        assert!(
            matches!(p, FileProblem::NotAFile("a character device")),
            "{msg}"
        );
    }

    #[test]
    fn a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = test_fifo(dir.path());
        // Without a writer, a blocking open would never return.
        let (p, msg) = problem(read(FileKind::ConfigDbSnapshot, &p, 100));
        assert!(
            matches!(p, FileProblem::NotAFile("a FIFO (named pipe)")),
            "{msg}"
        );
    }

    #[test]
    fn non_utf8_is_refused_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"ab\xffcd").unwrap();
        let (p2, msg) = problem(read(FileKind::Configuration, &p, 100));
        assert!(matches!(p2, FileProblem::NotUtf8 { offset: 2 }), "{msg}");
        assert_eq!(read_bytes(FileKind::FrrConfig, &p, 100).unwrap().len(), 5);
    }

    #[test]
    fn secret_files_others_can_use_are_refused_before_reading() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "s3cr3t-value\n").unwrap();
        let set =
            |mode| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        for kind in [FileKind::Token, FileKind::HmacKey, FileKind::GrpcClientKey] {
            set(0o600);
            assert!(read_bytes(kind, &p, 100).is_ok(), "{kind}");
            set(0o400);
            assert!(read_bytes(kind, &p, 100).is_ok(), "{kind}");
            // Group read: the file's group here is the agent's own.
            set(0o640);
            assert!(read_bytes(kind, &p, 100).is_ok(), "{kind} 0640");
            set(0o440);
            assert!(read_bytes(kind, &p, 100).is_ok(), "{kind} 0440");
            for (mode, access) in [
                (0o644, "readable by others"),
                (0o604, "readable by others"),
                (0o620, "writable by group or others"),
                (0o660, "writable by group or others"),
                (0o666, "readable by others and writable by group or others"),
            ] {
                set(mode);
                let e = read_bytes(kind, &p, 100).unwrap_err();
                let msg = e.to_string();
                assert!(
                    matches!(e.problem, FileProblem::Exposed { .. }),
                    "{kind} {mode:o}: {msg}"
                );
                assert!(
                    msg.contains(&format!("mode {mode:04o}: it is {access}")),
                    "{msg}"
                );
                assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
                assert!(!msg.contains("s3cr3t"), "{msg}");
                assert!(!e.is_transient());
            }
        }
        // SONiC's redis password may be readable by its group, not by others.
        set(0o640);
        assert!(read_bytes(FileKind::RedisPassword, &p, 100).is_ok());
        set(0o644);
        let msg = read_bytes(FileKind::RedisPassword, &p, 100)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("it is readable by others"), "{msg}");
        assert!(msg.contains("chmod 640"), "{msg}");
        // Other files are not secrets.
        set(0o666);
        assert!(read_bytes(FileKind::SwitchDocument, &p, 100).is_ok());
    }

    #[test]
    fn a_secret_file_of_another_user_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "t").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        if std::os::unix::fs::chown(&p, Some(4242), None).is_err() {
            // Only root can give a file away; the check itself is pure.
            assert_ne!(own_ids().map(|i| i.0), Some(0), "root could not chown");
            return;
        }
        let e = read_bytes(FileKind::Token, &p, 100).unwrap_err();
        assert!(
            matches!(e.problem, FileProblem::ForeignOwner { uid: 4242 }),
            "{e}"
        );
        assert!(e.to_string().contains("belongs to uid 4242"), "{e}");
    }

    /// Issue 21, item 3: metal-roles' metal-core role writes the gRPC
    /// certificates and the client key with `mode: 0640` as root (group
    /// root). Such a key (and a token or HMAC key deployed the same way) is
    /// accepted; readable by another group or by others it is not.
    #[test]
    fn secret_files_as_metal_roles_deploys_them() {
        use std::os::unix::fs::PermissionsExt;
        let (uid, _) = own_ids().unwrap();
        assert_eq!(
            uid, 0,
            "this test gives files to root's group and to another group: run it as root \
             (./dev test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("client-key.pem");
        std::fs::write(&p, "-----BEGIN PRIVATE KEY-----\nsecret\n").unwrap();
        std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
        let set =
            |mode| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        for kind in [FileKind::GrpcClientKey, FileKind::Token, FileKind::HmacKey] {
            set(0o640);
            assert!(read_bytes(kind, &p, 1000).is_ok(), "{kind}: root:root 0640");
            set(0o644);
            let e = read_bytes(kind, &p, 1000).unwrap_err();
            assert!(matches!(e.problem, FileProblem::Exposed { .. }), "{e}");
            // Group read by a group that is neither root's nor the agent's.
            std::os::unix::fs::chown(&p, None, Some(4242)).unwrap();
            set(0o640);
            let e = read_bytes(kind, &p, 1000).unwrap_err();
            assert!(
                matches!(
                    e.problem,
                    FileProblem::ForeignGroup {
                        gid: 4242,
                        mode: 0o640
                    }
                ),
                "{kind}: {e}"
            );
            let msg = e.to_string();
            assert!(msg.contains("group 4242"), "{msg}");
            assert!(
                msg.contains(&format!("chgrp root {}", p.display())),
                "{msg}"
            );
            assert!(!msg.contains("secret"), "{msg}");
            // That group without read access is fine.
            set(0o600);
            assert!(read_bytes(kind, &p, 1000).is_ok(), "{kind}: root:4242 0600");
            std::os::unix::fs::chown(&p, None, Some(0)).unwrap();
        }
        // SONiC's redis password may be shared with any group.
        std::os::unix::fs::chown(&p, None, Some(4242)).unwrap();
        set(0o640);
        assert!(read_bytes(FileKind::RedisPassword, &p, 1000).is_ok());
    }

    #[test]
    fn temporary_files_are_exclusive_unpredictable_and_never_follow_links() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::open(d.path()).unwrap();
        let a = dir.create_temp("x.", ".tmp").unwrap();
        let b = dir.create_temp("x.", ".tmp").unwrap();
        let (na, nb) = (
            a.name().to_string_lossy().into_owned(),
            b.name().to_string_lossy().into_owned(),
        );
        assert_ne!(na, nb);
        assert_eq!(na.len(), "x.".len() + TEMP_RANDOM_LEN + ".tmp".len());
        let names: std::collections::BTreeSet<String> =
            (0..200).map(|_| random_name(TEMP_RANDOM_LEN)).collect();
        assert_eq!(names.len(), 200, "random names repeat");
        drop((a, b));
        assert!(
            dir.names().unwrap().is_empty(),
            "dropped temporary files stay"
        );

        // An existing file read through a symbolic link is refused; the
        // link's target is neither read nor changed.
        let victim = d.path().join("victim");
        std::fs::write(&victim, "VICTIM").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("link")).unwrap();
        let e = dir
            .read_regular(FileKind::FrrConfig, OsStr::new("link"), 100)
            .unwrap_err();
        assert!(
            matches!(e.problem, FileProblem::NotAFile("a symbolic link")),
            "{e}"
        );
        assert!(
            dir.read_regular(FileKind::FrrConfig, OsStr::new("none"), 100)
                .unwrap()
                .is_none()
        );
        let (bytes, _) = dir
            .read_regular(FileKind::FrrConfig, OsStr::new("victim"), 100)
            .unwrap()
            .unwrap();
        assert_eq!(bytes, b"VICTIM");

        // replace_file: mode set on the descriptor, setuid bits dropped.
        replace_file(d.path(), "status.json", b"{}", None, 0o4755).unwrap();
        let m = std::fs::metadata(d.path().join("status.json")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755);
        assert_eq!(std::fs::read(victim).unwrap(), b"VICTIM");
    }

    #[test]
    fn proc_files_report_size_0_but_are_read() {
        let t = read_text(
            FileKind::ProcessStatus,
            Path::new("/proc/self/status"),
            PROC_MAX_BYTES,
        )
        .unwrap();
        assert!(t.contains("VmHWM"), "{t}");
    }
}
