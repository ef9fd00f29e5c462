//! Making FRR load the installed configuration (feature `agent`).
//!
//! Chosen by `frr_reload`: `systemd` starts `frr_reload_unit`
//! (`frr-reload.service`) over D-Bus in mode `replace` and waits for its job
//! to end with result `done`; `exec` runs `frr_reload_path` with
//! `frr_reload_args` (`{file}` replaced by the installed path), by default
//! `frr-reload.py --reload --stdout FILE`; `none` does nothing. Every way is
//! bounded by `frr_reload_timeout`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::command::{self, RunError};

use crate::systemd::{JobResult, Systemd, SystemdError};

/// Placeholder in `frr_reload_args` for the installed file's path.
pub const FILE_PLACEHOLDER: &str = "{file}";

/// Errors reloading FRR.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "cannot run {program}: {source}; install frr-pythontools (frr-reload.py) or set \
         frr_reload_path"
    )]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{command} failed with {status}:\n{output}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("{command} did not finish within {after:?}; raise frr_reload_timeout if FRR is busy")]
    Timeout { command: String, after: Duration },
    #[error(
        "reload unit {unit} ended with result {result}; its output is in `journalctl -u {unit}`"
    )]
    Unit { unit: String, result: JobResult },
    #[error("reloading FRR over D-Bus: {0}")]
    Systemd(#[from] SystemdError),
}

impl ReloadError {
    /// Whether a later attempt may succeed without a change of input.
    pub fn is_transient(&self) -> bool {
        match self {
            ReloadError::Timeout { .. } => true,
            ReloadError::Systemd(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// How FRR is reloaded.
#[derive(Debug, Clone)]
pub enum Reloader {
    /// Start a unit over D-Bus and wait for its job.
    Systemd {
        bus: Option<String>,
        unit: String,
        timeout: Duration,
    },
    /// Run a program.
    Exec {
        program: PathBuf,
        args: Vec<String>,
        timeout: Duration,
    },
    /// Never reload.
    None,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// How long it took.
    pub elapsed: Duration,
    /// The reloader's output (exec only; empty otherwise).
    pub output: String,
}

impl Reloader {
    /// Whether this reloader does anything.
    pub fn is_none(&self) -> bool {
        matches!(self, Reloader::None)
    }

    /// Make FRR load `file` (the installed configuration).
    pub async fn reload(&self, file: &Path) -> Result<Reloaded, ReloadError> {
        let started = Instant::now();
        match self {
            Reloader::None => Ok(Reloaded {
                elapsed: started.elapsed(),
                output: String::new(),
            }),
            Reloader::Systemd { bus, unit, timeout } => {
                let systemd = Systemd::connect(bus.as_deref(), *timeout).await?;
                let result = systemd.start_unit(unit, *timeout).await?;
                if !result.is_done() {
                    return Err(ReloadError::Unit {
                        unit: unit.clone(),
                        result,
                    });
                }
                Ok(Reloaded {
                    elapsed: started.elapsed(),
                    output: String::new(),
                })
            }
            Reloader::Exec {
                program,
                args,
                timeout,
            } => {
                let args = substitute(args, file);
                let command = command::shown(program, &args);
                let ran = command::run(program, &args, *timeout)
                    .await
                    .map_err(|e| match e {
                        RunError::Spawn(source) => ReloadError::Spawn {
                            program: program.clone(),
                            source,
                        },
                        RunError::Timeout => ReloadError::Timeout {
                            command: command.clone(),
                            after: *timeout,
                        },
                    })?;
                if !ran.status.success() {
                    return Err(ReloadError::Failed {
                        command,
                        status: ran.status,
                        output: ran.output_tail(),
                    });
                }
                Ok(Reloaded {
                    elapsed: ran.elapsed,
                    output: format!("{}{}", ran.stdout, ran.stderr),
                })
            }
        }
    }
}

/// `args` with every `{file}` replaced by `file`.
pub fn substitute(args: &[String], file: &Path) -> Vec<OsString> {
    let path = file.to_string_lossy();
    args.iter()
        .map(|a| OsString::from(a.replace(FILE_PLACEHOLDER, &path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_placeholder() {
        let args: Vec<String> = ["--reload", "{file}", "--confdir={file}.d"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            substitute(&args, Path::new("/etc/frr/frr.conf")),
            [
                "--reload",
                "/etc/frr/frr.conf",
                "--confdir=/etc/frr/frr.conf.d"
            ]
            .map(OsString::from)
            .to_vec()
        );
    }
}
