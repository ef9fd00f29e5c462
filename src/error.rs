//! The crate error: one variant per source module, and what it means for
//! retrying and whether the input was at fault (the CLI turns that into an
//! exit code, [`crate::cli::exit_code`]).

use crate::api::SwitchDocError;
use crate::config::ConfigError;
use crate::configdb::dbconfig::DbConfigError;
use crate::configdb::snapshot::SnapshotError;
use crate::frr::bgp::BgpStateError;
use crate::spec::Problems;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Invalid(#[from] Problems),
    #[error(transparent)]
    SwitchDoc(#[from] SwitchDocError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    DbConfig(#[from] DbConfigError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    ConfigDb(#[from] crate::configdb::connection::ConfigDbError),
    #[error(transparent)]
    BgpState(#[from] BgpStateError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    FrrValidate(#[from] crate::frr::validate::ValidateError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    FrrReload(#[from] crate::frr::reload::ReloadError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    FrrInstall(#[from] crate::frr::install::InstallError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Systemd(#[from] crate::systemd::SystemdError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Api(#[from] crate::api::error::ApiError),
    /// What the switch would register is incomplete (configuration, the
    /// PORT table); nothing was sent.
    #[error("cannot register the switch:\n  - {}", .0.join("\n  - "))]
    Registration(Vec<String>),
    /// `build_version` is missing from `sonic_version.yml`.
    #[error(
        "cannot read the SONiC version from {}: {message}; the switch registers \
         build_version from this file (set sonic_version_file)", path.display()
    )]
    SonicVersion {
        path: std::path::PathBuf,
        message: String,
    },
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    KernelNotConverged(#[from] crate::kernel::NotConverged),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// SONiC writes FRR's configuration itself on this switch
    /// ([`crate::flavour::Flavour::refusal`]): nothing was written.
    #[error("{0}")]
    FlavourRefused(String),
    /// Another instance holds the writer lock (or it cannot be taken).
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Lock(#[from] crate::writer_lock::LockError),
    /// The daemon cannot run on (signal handlers, a stopped internal task).
    #[error("{what}: {source}")]
    Runtime {
        what: &'static str,
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the input is at fault (configuration, the desired state, an
    /// input file that is missing, not a regular file, too large or not
    /// UTF-8, a configuration FRR rejects): nothing was written, and trying
    /// again without a change of input fails the same way.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            #[cfg(feature = "agent")]
            Error::Api(e) => e.is_invalid_input(),
            Error::Config(_)
            | Error::Invalid(_)
            | Error::SwitchDoc(_)
            | Error::Snapshot(_)
            | Error::File(_)
            | Error::Registration(_)
            | Error::DbConfig(_) => true,
            #[cfg(feature = "agent")]
            Error::ConfigDb(crate::configdb::connection::ConfigDbError::Password { .. }) => true,
            // FRR rejected the configuration: nothing was installed.
            #[cfg(feature = "agent")]
            Error::FrrValidate(e) => e.is_rejection(),
            #[cfg(feature = "agent")]
            Error::FrrInstall(e) => e.is_rejection(),
            _ => false,
        }
    }

    /// Whether a later attempt may succeed without a change of input.
    pub fn is_transient(&self) -> bool {
        match self {
            #[cfg(feature = "agent")]
            Error::ConfigDb(e) => e.is_transient(),
            Error::BgpState(e) => e.is_transient(),
            #[cfg(feature = "agent")]
            Error::FrrValidate(e) => !e.is_rejection(),
            #[cfg(feature = "agent")]
            Error::FrrReload(e) => e.is_transient(),
            #[cfg(feature = "agent")]
            Error::FrrInstall(e) => e.is_transient(),
            #[cfg(feature = "agent")]
            Error::Systemd(e) => e.is_transient(),
            #[cfg(feature = "agent")]
            Error::Api(e) => e.is_transient(),
            // The file may appear once SONiC has finished booting.
            Error::SonicVersion { .. } => true,
            #[cfg(feature = "agent")]
            Error::Kernel(e) => e.is_transient(),
            #[cfg(feature = "agent")]
            Error::KernelNotConverged(_) => true,
            Error::File(e) => e.is_transient(),
            Error::DbConfig(e) => e.is_transient(),
            _ => false,
        }
    }
}
