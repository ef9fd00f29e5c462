//! Running FRR's tools (vtysh, frr-reload.py) with a time limit.

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A finished run.
pub(crate) struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// stdout and stderr, trimmed to their last lines, for an error message.
    pub fn output_tail(&self) -> String {
        let both = format!("{}{}", self.stdout, self.stderr);
        tail(&both, 40)
    }
}

/// Why a run did not finish.
pub(crate) enum RunError {
    Spawn(std::io::Error),
    Timeout,
}

/// Run `program args…` with stdin closed; kill it when `timeout` passes.
pub(crate) async fn run(
    program: &Path,
    args: &[OsString],
    timeout: Duration,
) -> Result<Ran, RunError> {
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(RunError::Spawn)?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Ran {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }),
        Ok(Err(e)) => Err(RunError::Spawn(e)),
        Err(_) => Err(RunError::Timeout),
    }
}

/// The last `lines` non-empty lines of `text` (all of it if shorter).
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let skip = all.len().saturating_sub(lines);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[… {skip} earlier lines]\n"));
    }
    out.push_str(&all[skip..].join("\n"));
    out
}

/// Program and arguments for a display.
pub(crate) fn shown(program: &Path, args: &[OsString]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
