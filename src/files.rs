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
//!
//! Errors ([`FileError`]) name the file, what it is ([`FileKind`]) and what
//! to do. Pure std plus `libc` for the flag; no feature needed.

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

/// Who besides the owner may access a secret file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAccess {
    /// Nobody: no read or write bit for group or others (`chmod 600`).
    OwnerOnly,
    /// The file's group may read it (SONiC's redis password file belongs to
    /// SONiC, which may share it with its redis group); nobody else.
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
        }
    }

    /// Whether the file holds a secret, and who besides its owner may
    /// access it then. A secret file must also belong to root or to the
    /// agent's own user.
    pub fn secret(self) -> Option<SecretAccess> {
        match self {
            FileKind::Token | FileKind::HmacKey | FileKind::GrpcClientKey => {
                Some(SecretAccess::OwnerOnly)
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
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(err(FileProblem::NotAFile(what)));
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
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(err(FileProblem::TooLarge { limit }));
    }
    Ok((bytes, meta))
}

/// Why a secret file with metadata `meta` must not be used, if it must not.
fn secret_problem(meta: &Metadata, access: SecretAccess) -> Option<FileProblem> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode() & 0o7777;
    let (read, write) = match access {
        SecretAccess::OwnerOnly => (mode & 0o044, mode & 0o022),
        SecretAccess::GroupMayRead => (mode & 0o004, mode & 0o022),
    };
    let who = match access {
        SecretAccess::OwnerOnly => "group or others",
        SecretAccess::GroupMayRead => "others",
    };
    let access = match (read != 0, write != 0, who) {
        (true, true, "others") => "readable by others and writable by group or others",
        (true, true, _) => "readable and writable by group or others",
        (true, false, "others") => "readable by others",
        (true, false, _) => "readable by group or others",
        (false, true, _) => "writable by group or others",
        (false, false, _) => {
            let uid = meta.uid();
            return (uid != 0 && Some(uid) != own_uid())
                .then_some(FileProblem::ForeignOwner { uid });
        }
    };
    Some(FileProblem::Exposed { mode, access })
}

/// The agent's effective user: the owner of its `/proc/self` (without
/// `/proc`, only root's files count as its own).
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
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
        let p = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {}", p.display());
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
            for (mode, access) in [
                (0o640, "readable by group or others"),
                (0o604, "readable by group or others"),
                (0o620, "writable by group or others"),
                (0o666, "readable and writable by group or others"),
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
            assert_ne!(own_uid(), Some(0), "root could not chown");
            return;
        }
        let e = read_bytes(FileKind::Token, &p, 100).unwrap_err();
        assert!(
            matches!(e.problem, FileProblem::ForeignOwner { uid: 4242 }),
            "{e}"
        );
        assert!(e.to_string().contains("belongs to uid 4242"), "{e}");
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
