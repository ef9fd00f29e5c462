//! Logging: where the agent's log lines go and how they look (feature `agent`).
//!
//! One `tracing` subscriber for the whole process, chosen once at start by
//! [`choose_output`]:
//! - **journald** when stderr *is* the journal: systemd sets
//!   `JOURNAL_STREAM=<device>:<inode>` for a service whose output goes to the
//!   journal, and that pair matches stderr's `fstat` only while stderr is that
//!   stream (a shell started from the service with stderr redirected does not
//!   match). Each event becomes a journal entry with its fields
//!   (`F_<FIELD>`, e.g. `journalctl -u metal-switchd F_PHASE=2`) and the
//!   level as `PRIORITY`;
//! - **JSON**, one object per line, when `log_format = "json"`;
//! - **plain text** otherwise, with ANSI colours only when stderr is a terminal.
//!
//! If journald was chosen but its socket cannot be reached the agent falls
//! back to plain text and says so in its first log line.
//!
//! The filter is `--log` / `METAL_SWITCHD_LOG` when given, else `log_level`
//! (metal-core's `debug`, `info`, `warn`, `error`).

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// systemd's journal, with structured fields.
    Journald,
    /// Human-readable lines on stderr.
    Text { ansi: bool },
    /// One JSON object per line on stderr.
    Json,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Output::Journald => "journald",
            Output::Text { ansi: true } => "text with ANSI colours",
            Output::Text { ansi: false } => "text",
            Output::Json => "json",
        })
    }
}

/// Whether `JOURNAL_STREAM` (`<device>:<inode>`, decimal) names the file
/// stderr is (`stderr` = its device and inode number).
pub fn journal_stream_matches(journal_stream: &str, stderr: (u64, u64)) -> bool {
    let Some((dev, ino)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    match (dev.parse::<u64>(), ino.parse::<u64>()) {
        (Ok(dev), Ok(ino)) => (dev, ino) == stderr,
        _ => false,
    }
}

/// The device and inode number of the process's stderr, if it is open.
pub fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Pick the output: journald when stderr is the journal, else JSON or text.
pub fn choose_output(
    format: LogFormat,
    journal_stream: Option<&str>,
    stderr: Option<(u64, u64)>,
    stderr_is_terminal: bool,
) -> Output {
    if let (Some(js), Some(id)) = (journal_stream, stderr)
        && journal_stream_matches(js, id)
    {
        return Output::Journald;
    }
    match format {
        LogFormat::Json => Output::Json,
        LogFormat::Text => Output::Text {
            ansi: stderr_is_terminal,
        },
    }
}

/// Install the process-wide subscriber with `filter` (an `EnvFilter`
/// directive such as `info` or `metal_switchd=debug`). Returns the output
/// in use. A second call changes nothing (the first subscriber stays).
pub fn init(filter: &str, format: LogFormat) -> Output {
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let wanted = choose_output(
        format,
        journal_stream.as_deref(),
        stderr_id(),
        std::io::stderr().is_terminal(),
    );
    let (env_filter, bad_filter) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    let mut journald_error = None;
    let journald = match wanted {
        Output::Journald => match tracing_journald::layer() {
            Ok(l) => Some(l.with_syslog_identifier("metal-switchd".to_owned())),
            Err(e) => {
                journald_error = Some(e.to_string());
                None
            }
        },
        _ => None,
    };
    let output = match (wanted, &journald) {
        (Output::Journald, None) => Output::Text {
            ansi: std::io::stderr().is_terminal(),
        },
        (o, _) => o,
    };
    let text = match output {
        Output::Text { ansi } => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        ),
        _ => None,
    };
    let json = match output {
        Output::Json => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_current_span(true)
                .with_span_list(false),
        ),
        _ => None,
    };
    let installed = tracing_subscriber::registry()
        .with(env_filter)
        .with(journald)
        .with(text)
        .with(json)
        .try_init()
        .is_ok();
    if installed {
        if let Some(e) = journald_error {
            tracing::warn!(
                error = %e,
                "stderr is the journal but journald's socket cannot be reached; logging plain text to stderr"
            );
        }
        if let Some(e) = bad_filter {
            tracing::warn!(filter, error = %e, "invalid log filter; logging at info");
        }
        tracing::debug!(%output, filter, "logging started");
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(journal_stream_matches("8:123456", (8, 123456)));
        assert!(journal_stream_matches(" 8:123456\n", (8, 123456)));
        assert!(!journal_stream_matches("8:123457", (8, 123456)));
        assert!(!journal_stream_matches("9:123456", (8, 123456)));
        assert!(!journal_stream_matches("8", (8, 123456)));
        assert!(!journal_stream_matches("", (8, 123456)));
        assert!(!journal_stream_matches("x:y", (8, 123456)));
    }

    #[test]
    fn output_choice() {
        let id = Some((8, 99));
        // stderr is the journal: journald, whatever log_format says
        for f in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(choose_output(f, Some("8:99"), id, false), Output::Journald);
        }
        // a stale JOURNAL_STREAM (stderr redirected elsewhere) is ignored
        assert_eq!(
            choose_output(LogFormat::Text, Some("8:98"), id, false),
            Output::Text { ansi: false }
        );
        assert_eq!(
            choose_output(LogFormat::Text, None, id, true),
            Output::Text { ansi: true }
        );
        assert_eq!(choose_output(LogFormat::Json, None, id, true), Output::Json);
        assert_eq!(
            choose_output(LogFormat::Text, Some("8:99"), None, false),
            Output::Text { ansi: false }
        );
    }

    #[test]
    fn stderr_id_is_the_file_behind_fd_2() {
        use std::os::unix::fs::MetadataExt;
        // fd 2 of the test process, seen through /proc: the same file
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert_eq!(stderr_id(), Some((meta.dev(), meta.ino())));
    }
}
