//! The D-Bus client: private zbus proxies and the typed facade over them.

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

    /// Enqueue a stop job; returns the job's object path.
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    /// The unit's object, loading its file if needed (`LoadState` says
    /// `not-found` for a unit without a file).
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// `systemctl enable`: link the units per their `[Install]` section.
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<(String, String, String)>)>;

    /// `systemctl disable`: remove the units' `[Install]` links.
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;

    /// `systemctl daemon-reload`.
    fn reload(&self) -> zbus::Result<()>;

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

/// The part of `org.freedesktop.systemd1.Unit` the migration reads.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
trait Unit {
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
}

/// What systemd says about a unit (`systemctl show -p LoadState,ActiveState,UnitFileState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// `loaded`, `not-found`, `masked`, …
    pub load: String,
    /// `active`, `inactive`, `activating`, `deactivating`, `failed`, …
    pub active: String,
    /// `enabled`, `disabled`, `static`, … (empty when there is no file)
    pub file: String,
}

impl UnitState {
    /// systemd has a unit file for it.
    pub fn exists(&self) -> bool {
        self.load != "not-found"
    }

    /// It runs, or is starting or reloading.
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// It starts at boot (enabled, also at runtime only).
    pub fn is_enabled(&self) -> bool {
        self.file.starts_with("enabled")
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exists() {
            let file = if self.file.is_empty() {
                "-"
            } else {
                &self.file
            };
            write!(f, "{}, {file}", self.active)
        } else {
            f.write_str("no such unit")
        }
    }
}

/// A job systemd runs for a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Start,
    Stop,
}

impl JobKind {
    fn call(self) -> &'static str {
        match self {
            JobKind::Start => "StartUnit",
            JobKind::Stop => "StopUnit",
        }
    }
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

/// A failed D-Bus call about `unit`.
fn call_err(call: &'static str, unit: &str, source: zbus::Error) -> SystemdError {
    SystemdError::Call {
        call,
        unit: unit.to_owned(),
        source: Box::new(source),
    }
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
            .map_err(|e| call_err("Subscribe", "", e))?;
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
        self.job(JobKind::Start, unit, timeout).await
    }

    /// `StopUnit(unit, "replace")` and wait for the job, like [`Systemd::start_unit`].
    pub async fn stop_unit(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> Result<JobResult, SystemdError> {
        self.job(JobKind::Stop, unit, timeout).await
    }

    /// The unit's load, active and unit-file state.
    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let path = self
            .manager
            .load_unit(unit)
            .await
            .map_err(|e| call_err("LoadUnit", unit, e))?;
        let proxy = UnitProxy::builder(self.manager.inner().connection())
            .path(path)
            .map_err(|e| call_err("LoadUnit", unit, e))?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|e| call_err("LoadUnit", unit, e))?;
        let get = |e| call_err("Get", unit, e);
        Ok(UnitState {
            load: proxy.load_state().await.map_err(get)?,
            active: proxy.active_state().await.map_err(get)?,
            file: proxy.unit_file_state().await.map_err(get)?,
        })
    }

    /// `systemctl enable UNIT` (its `[Install]` links), then a daemon reload.
    pub async fn enable_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager
            .enable_unit_files(&[unit], false, false)
            .await
            .map_err(|e| call_err("EnableUnitFiles", unit, e))?;
        self.daemon_reload(unit).await
    }

    /// `systemctl disable UNIT`, then a daemon reload.
    pub async fn disable_unit(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager
            .disable_unit_files(&[unit], false)
            .await
            .map_err(|e| call_err("DisableUnitFiles", unit, e))?;
        self.daemon_reload(unit).await
    }

    async fn daemon_reload(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager
            .reload()
            .await
            .map_err(|e| call_err("Reload", unit, e))
    }

    async fn job(
        &self,
        kind: JobKind,
        unit: &str,
        timeout: Duration,
    ) -> Result<JobResult, SystemdError> {
        let started = Instant::now();
        let mut job = None;
        let run = self.run_job(kind, unit, &mut job);
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
                    None => format!("unit {unit}: systemd did not answer {}", kind.call()),
                },
                after: timeout,
            }),
        }
    }

    async fn run_job(
        &self,
        kind: JobKind,
        unit: &str,
        job_out: &mut Option<String>,
    ) -> Result<JobResult, SystemdError> {
        // Subscribe before starting: a short job may end before the reply.
        let mut removed = self
            .manager
            .receive_job_removed()
            .await
            .map_err(|e| call_err("AddMatch(JobRemoved)", unit, e))?;
        let job = match kind {
            JobKind::Start => self.manager.start_unit(unit, "replace").await,
            JobKind::Stop => self.manager.stop_unit(unit, "replace").await,
        }
        .map_err(|e| call_err(kind.call(), unit, e))?;
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
