//! Whether the daemon behind a status file runs (`metal-switchd status`):
//! its process (through `/proc`), the record's age, and the exit code that
//! says so.

use std::time::{Duration, SystemTime};

use super::status::Status;

/// Whether the daemon that wrote a status record is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The writer runs and wrote within the allowed age.
    Running,
    /// The writer runs, but has not written for `age` (more than allowed):
    /// the loop may be stuck.
    Stale { age: Duration },
    /// The writer's process is gone.
    NotRunning,
}

/// Judge a status record: `process_alive` tells whether the process of
/// `status.agent.pid` still runs, `max_age` how old the record may be.
pub fn liveness(
    status: &Status,
    now: SystemTime,
    max_age: Duration,
    process_alive: bool,
) -> Liveness {
    if !process_alive {
        return Liveness::NotRunning;
    }
    let age = status.updated_at.age(now);
    if age > max_age {
        Liveness::Stale { age }
    } else {
        Liveness::Running
    }
}

/// Exit code of `metal-switchd status`: the daemon runs and its status is current.
pub const EXIT_RUNNING: u8 = 0;
/// Exit code of `metal-switchd status`: the daemon is not running (no status
/// file, or the process that wrote it is gone) — LSB's "program is not running".
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code of `metal-switchd status`: the daemon's process exists but has
/// not updated its status in time (the loop may be stuck), or the file cannot
/// be read — LSB's "status is unknown".
pub const EXIT_STALE: u8 = 4;

impl Liveness {
    /// The exit code of `metal-switchd status` for this judgement.
    pub fn exit_code(&self) -> u8 {
        match self {
            Liveness::Running => EXIT_RUNNING,
            Liveness::NotRunning => EXIT_NOT_RUNNING,
            Liveness::Stale { .. } => EXIT_STALE,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Liveness::Running => "running",
            Liveness::NotRunning => "not-running",
            Liveness::Stale { .. } => "stale",
        }
    }
}

/// Whether process `pid` runs and is a metal-switchd (its `comm` in
/// `/proc`), so that a pid reused by another program does not count.
pub fn process_is_agent(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim_end() == "metal-switchd")
        .unwrap_or(false)
}

/// How old a status record may be before `status` calls it stale: three
/// reconcile intervals plus the time limit of one reconcile, at least two
/// minutes (a reconcile that waits on barriers or retries the API is slow,
/// not stuck).
pub fn max_age(reconcile_interval: Duration, reconcile_timeout: Duration) -> Duration {
    (reconcile_interval * 3 + reconcile_timeout).max(Duration::from_secs(120))
}

#[cfg(test)]
mod tests {
    use super::super::status::sample::{sample, t};
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn liveness_and_age() {
        let mut s = sample();
        s.updated_at = Timestamp(t(100));
        let max = max_age(Duration::from_secs(10), Duration::from_secs(15));
        assert_eq!(max, Duration::from_secs(120));
        assert_eq!(
            max_age(Duration::from_secs(60), Duration::from_secs(15)),
            Duration::from_secs(195)
        );
        assert_eq!(liveness(&s, t(150), max, true), Liveness::Running);
        assert_eq!(
            liveness(&s, t(300), max, true),
            Liveness::Stale {
                age: Duration::from_secs(200)
            }
        );
        assert_eq!(liveness(&s, t(150), max, false), Liveness::NotRunning);
    }
}
