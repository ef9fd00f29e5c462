//! Asking FRR whether a configuration file is acceptable (feature `agent`).
//!
//! Two ways, chosen by `frr_validation`: run `vtysh --dryrun -f FILE`
//! (exit status 0: accepted, 2: rejected with the offending lines on
//! stdout/stderr), or start the template unit `frr_validation_unit` with the
//! file's escaped path as instance (`bgp-validation@<path>.service`, which
//! runs `vtysh --dryrun --inputfile %I` on SONiC) and wait for its job.
//!
//! `vtysh --dryrun` checks syntax, command by command, without the daemons:
//! it accepts commands that a daemon may still refuse at load time (for
//! example `agentx` when the daemons run without their snmp module). That is
//! why a reload can still fail after a successful validation, and why
//! [`install`](super::install) rolls back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::{self, RunError};

use crate::systemd::{self, JobResult, Systemd, SystemdError};

/// Errors validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("FRR rejects {file} (vtysh --dryrun exit status 2):\n{output}")]
    Rejected { file: PathBuf, output: String },
    #[error(
        "FRR rejects {file}: validation unit {unit} ended with result {result}; its output is \
         in `journalctl -u {unit}`"
    )]
    UnitRejected {
        file: PathBuf,
        unit: String,
        result: JobResult,
    },
    #[error(
        "cannot run {program} to validate {file}: {source}; install FRR's vtysh (Debian package \
         frr) or set vtysh_path"
    )]
    Spawn {
        program: PathBuf,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{command} did not finish within {after:?}; raise frr_validation_timeout if FRR is busy"
    )]
    Timeout { command: String, after: Duration },
    #[error("{command} failed with {status} (not a verdict on the file):\n{output}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error(
        "{file} cannot be validated by unit {template}: the unit name would be {unit:?}; use \
         a shorter frr_config path or frr_validation = \"vtysh\""
    )]
    UnitName {
        file: PathBuf,
        template: String,
        unit: String,
    },
    #[error("validating {file} over D-Bus: {source}")]
    Systemd { file: PathBuf, source: SystemdError },
}

impl ValidateError {
    /// FRR said no: the file is bad, retrying the same file cannot help.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ValidateError::Rejected { .. } | ValidateError::UnitRejected { .. }
        )
    }
}

/// How configurations are validated.
#[derive(Debug, Clone)]
pub enum Validator {
    /// `vtysh --dryrun -f FILE`.
    Vtysh { vtysh: PathBuf, timeout: Duration },
    /// `<template name>@<escaped FILE>.service` over D-Bus.
    Systemd {
        bus: Option<String>,
        template: String,
        timeout: Duration,
    },
}

impl Validator {
    /// Ok when FRR accepts `file`.
    pub async fn validate(&self, file: &Path) -> Result<(), ValidateError> {
        match self {
            Validator::Vtysh { vtysh, timeout } => vtysh_dryrun(vtysh, file, *timeout).await,
            Validator::Systemd {
                bus,
                template,
                timeout,
            } => {
                let unit = validation_unit(template, file)?;
                let systemd =
                    Systemd::connect(bus.as_deref(), *timeout)
                        .await
                        .map_err(|source| ValidateError::Systemd {
                            file: file.to_owned(),
                            source,
                        })?;
                let result = systemd
                    .start_unit(&unit, *timeout)
                    .await
                    .map_err(|source| ValidateError::Systemd {
                        file: file.to_owned(),
                        source,
                    })?;
                if result.is_done() {
                    Ok(())
                } else {
                    Err(ValidateError::UnitRejected {
                        file: file.to_owned(),
                        unit,
                        result,
                    })
                }
            }
        }
    }
}

/// The validation unit's name for `file`.
pub fn validation_unit(template: &str, file: &Path) -> Result<String, ValidateError> {
    let instance = systemd::escape_path(file);
    let unit = systemd::template_instance(template, &instance).unwrap_or_default();
    if unit.is_empty() || unit.len() > systemd::UNIT_NAME_MAX {
        return Err(ValidateError::UnitName {
            file: file.to_owned(),
            template: template.to_owned(),
            unit,
        });
    }
    Ok(unit)
}

async fn vtysh_dryrun(vtysh: &Path, file: &Path, timeout: Duration) -> Result<(), ValidateError> {
    let args: Vec<OsString> = vec!["--dryrun".into(), "-f".into(), file.into()];
    let command = command::shown(vtysh, &args);
    let ran = command::run(vtysh, &args, timeout)
        .await
        .map_err(|e| match e {
            RunError::Spawn(source) => ValidateError::Spawn {
                program: vtysh.to_owned(),
                file: file.to_owned(),
                source,
            },
            RunError::Timeout => ValidateError::Timeout {
                command: command.clone(),
                after: timeout,
            },
        })?;
    match ran.status.code() {
        Some(0) => {
            tracing::debug!(file = %file.display(), elapsed = ?ran.elapsed, "FRR accepts the configuration");
            Ok(())
        }
        Some(2) => Err(ValidateError::Rejected {
            file: file.to_owned(),
            output: ran.output_tail(),
        }),
        _ => Err(ValidateError::Failed {
            command,
            status: ran.status,
            output: ran.output_tail(),
        }),
    }
}
