//! The crate error: one variant per source module, and what it means for
//! the exit code and for retrying.

use crate::api::SwitchDocError;
use crate::config::ConfigError;
use crate::configdb::dbconfig::DbConfigError;
use crate::configdb::snapshot::SnapshotError;
use crate::frr::bgp::BgpStateError;
use crate::spec::Problems;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a runtime failure (redis, SONiC, I/O); may have written phases.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: invalid input (configuration, switch state, an input file that
/// is missing, not a regular file, too large or not UTF-8); nothing was written.
pub const EXIT_INVALID: u8 = 2;

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
    ConfigDb(#[from] crate::configdb::redis::ConfigDbError),
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
    Api(#[from] crate::api::client::ApiError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Register(#[from] crate::api::register::RegisterError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    #[cfg(feature = "agent")]
    #[error(transparent)]
    KernelNotConverged(#[from] crate::kernel::NotConverged),
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The daemon cannot run on (signal handlers, a stopped internal task).
    #[error("{what}: {source}")]
    Runtime {
        what: &'static str,
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            #[cfg(feature = "agent")]
            Error::Api(e) => e.exit_code(),
            #[cfg(feature = "agent")]
            Error::Register(e) => e.exit_code(),
            Error::Config(_)
            | Error::Invalid(_)
            | Error::SwitchDoc(_)
            | Error::Snapshot(_)
            | Error::File(_)
            | Error::DbConfig(_) => EXIT_INVALID,
            #[cfg(feature = "agent")]
            Error::ConfigDb(crate::configdb::redis::ConfigDbError::Password { .. }) => EXIT_INVALID,
            // FRR rejected the configuration: nothing was installed.
            #[cfg(feature = "agent")]
            Error::FrrValidate(e) if e.is_rejection() => EXIT_INVALID,
            #[cfg(feature = "agent")]
            Error::FrrInstall(e) if e.is_rejection() => EXIT_INVALID,
            _ => EXIT_RUNTIME,
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
            #[cfg(feature = "agent")]
            Error::Register(e) => e.is_transient(),
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
