//! The D-Bus client: a private zbus proxy and the typed facade over it.

use std::fmt;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

/// The part of `org.freedesktop.systemd1.Manager` the agent uses.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
trait Manager {
    /// Ask systemd to emit job and unit signals (it sends none before).
    fn subscribe(&self) -> zbus::Result<()>;

    /// Enqueue a start job; returns the job's object path.
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// A job ended; `result` is done, canceled, timeout, failed, dependency or skipped.
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// Errors talking to systemd.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "cannot connect to systemd's D-Bus at {address}: {source}; check that the socket is \
         mounted and set systemd_bus_address or DBUS_SYSTEM_BUS_ADDRESS"
    )]
    Connect {
        address: String,
        source: Box<zbus::Error>,
    },
    #[error("systemd {call} for unit {unit} failed: {source}")]
    Call {
        call: &'static str,
        unit: String,
        source: Box<zbus::Error>,
    },
    #[error("timed out after {after:?}: {what}")]
    Timeout { what: String, after: Duration },
    #[error("unit {unit}: the D-Bus connection closed while waiting for job {job}")]
    SignalsLost { unit: String, job: String },
}

impl SystemdError {
    /// Whether a later attempt may succeed without a change of input.
    pub fn is_transient(&self) -> bool {
        !matches!(self, SystemdError::Call { .. })
    }
}

/// How a systemd job ended (`JobRemoved`'s `result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Done,
    Canceled,
    Timeout,
    Failed,
    Dependency,
    Skipped,
    Other(String),
}

impl JobResult {
    fn parse(s: &str) -> JobResult {
        match s {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            other => JobResult::Other(other.to_owned()),
        }
    }

    /// The job did what was asked.
    pub fn is_done(&self) -> bool {
        *self == JobResult::Done
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobResult::Done => "done",
            JobResult::Canceled => "canceled",
            JobResult::Timeout => "timeout",
            JobResult::Failed => "failed",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Other(s) => s,
        })
    }
}

/// A connection to systemd's manager.
pub struct Systemd {
    manager: ManagerProxy<'static>,
    address: String,
}

impl Systemd {
    /// Connect to `address` (a D-Bus address such as
    /// `unix:path=/run/dbus/system_bus_socket`), or to the system bus, and
    /// subscribe to systemd's signals; all within `timeout`.
    pub async fn connect(
        address: Option<&str>,
        timeout: Duration,
    ) -> Result<Systemd, SystemdError> {
        let shown = address.unwrap_or("the system bus").to_owned();
        match tokio::time::timeout(timeout, Self::connect_now(address, &shown)).await {
            Ok(result) => result,
            Err(_) => Err(SystemdError::Timeout {
                what: format!("connecting to systemd's D-Bus at {shown}"),
                after: timeout,
            }),
        }
    }

    async fn connect_now(address: Option<&str>, shown: &str) -> Result<Systemd, SystemdError> {
        let connect_err = |source: zbus::Error| SystemdError::Connect {
            address: shown.to_owned(),
            source: Box::new(source),
        };
        let conn = match address {
            Some(a) => zbus::connection::Builder::address(a)
                .map_err(connect_err)?
                .build()
                .await
                .map_err(connect_err)?,
            None => zbus::Connection::system().await.map_err(connect_err)?,
        };
        let manager = ManagerProxy::new(&conn).await.map_err(connect_err)?;
        manager
            .subscribe()
            .await
            .map_err(|source| SystemdError::Call {
                call: "Subscribe",
                unit: String::new(),
                source: Box::new(source),
            })?;
        Ok(Systemd {
            manager,
            address: shown.to_owned(),
        })
    }

    /// The bus this connection talks to (for messages).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `StartUnit(unit, "replace")` and wait for the job's `JobRemoved`, all
    /// within `timeout`. Returns how the job ended; only [`JobResult::Done`]
    /// is success.
    pub async fn start_unit(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> Result<JobResult, SystemdError> {
        let started = Instant::now();
        let mut job = None;
        let run = self.start_and_wait(unit, &mut job);
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(result)) => {
                tracing::debug!(unit, %result, elapsed = ?started.elapsed(), "systemd job removed");
                Ok(result)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SystemdError::Timeout {
                what: match job {
                    Some(job) => format!(
                        "unit {unit}: job {job} did not finish; it may still be running (see \
                         `systemctl status {unit}`)"
                    ),
                    None => format!("unit {unit}: systemd did not answer StartUnit"),
                },
                after: timeout,
            }),
        }
    }

    async fn start_and_wait(
        &self,
        unit: &str,
        job_out: &mut Option<String>,
    ) -> Result<JobResult, SystemdError> {
        let call_err = |call, source| SystemdError::Call {
            call,
            unit: unit.to_owned(),
            source: Box::new(source),
        };
        // Subscribe before starting: a short job may end before the reply.
        let mut removed = self
            .manager
            .receive_job_removed()
            .await
            .map_err(|e| call_err("AddMatch(JobRemoved)", e))?;
        let job = self
            .manager
            .start_unit(unit, "replace")
            .await
            .map_err(|e| call_err("StartUnit", e))?;
        tracing::debug!(unit, job = %job.as_str(), "systemd job enqueued");
        *job_out = Some(job.to_string());
        while let Some(signal) = removed.next().await {
            let Ok(args) = signal.args() else {
                continue;
            };
            if args.job().as_str() == job.as_str() {
                return Ok(JobResult::parse(args.result()));
            }
        }
        Err(SystemdError::SignalsLost {
            unit: unit.to_owned(),
            job: job.to_string(),
        })
    }
}
