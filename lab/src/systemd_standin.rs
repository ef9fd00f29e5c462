//! A stand-in for systemd's D-Bus manager: a private `dbus-daemon` plus a
//! service named `org.freedesktop.systemd1` that implements the calls
//! metal-switchd makes (`Subscribe`, `StartUnit`, `StopUnit`, `LoadUnit`
//! and the unit's `LoadState`/`ActiveState`/`UnitFileState`,
//! `EnableUnitFiles`, `DisableUnitFiles`, `Reload`, the `JobRemoved` signal).
//!
//! systemd itself cannot run here (PID 1 is not systemd); this service
//! behaves like it for those calls: `StartUnit`/`StopUnit` return a job path
//! at once and the job's end is announced later with `JobRemoved(id, job,
//! unit, result)`. What a unit does is given per unit name or per template
//! (`name@.service`): finish with `done` or `failed`, announce the end
//! before the reply, never finish, run a real command (`%I` and `%f` expand
//! like systemd's specifiers; the result is `done` on exit status 0, else
//! `failed`), or run a long-lived service as its unit file says
//! ([`ServiceUnit`]: `ExecStart=`, `EnvironmentFile=`, `Type=notify` with a
//! real `NOTIFY_SOCKET` — the start job ends at `READY=1` —,
//! `RuntimeDirectory=`, `Conflicts=` both ways, `WantedBy=`).
//! `StartUnit` of an unknown unit fails with
//! `org.freedesktop.systemd1.NoSuchUnit`; `LoadUnit` of one answers
//! `LoadState` `not-found`, as systemd does.
//!
//! Everything stops on drop (services are killed, the dbus-daemon too, its
//! directory removed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

/// What a unit does when it is started.
#[derive(Debug, Clone)]
pub enum UnitAction {
    /// The job ends with `done` shortly after the reply.
    Done,
    /// The job ends with `done` before `StartUnit` returns (a fast job).
    DoneBeforeReply,
    /// The job ends with `failed`.
    Failed,
    /// The job never ends.
    Hang,
    /// Run this command (with `%I`/`%f` expanded, working directory `/`);
    /// `done` if it exits 0, else `failed`.
    Exec(Vec<String>),
    /// A long-lived service, as its unit file describes it.
    Service(ServiceUnit),
}

/// The part of a service's unit file the stand-in runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceUnit {
    /// `ExecStart=`, split at white space (no quoting).
    pub exec_start: Vec<String>,
    /// `EnvironmentFile=`: the path, and whether a missing file is fine (`-`).
    pub environment_files: Vec<(PathBuf, bool)>,
    /// `Conflicts=`.
    pub conflicts: Vec<String>,
    /// `Type=notify`: the start job ends at `READY=1`.
    pub notify: bool,
    /// `RuntimeDirectory=`: made under `/run` at start, removed at stop.
    pub runtime_directory: Vec<String>,
    /// `[Install] WantedBy=`.
    pub wanted_by: Vec<String>,
    /// The unit file (what `EnableUnitFiles` links to).
    pub path: Option<PathBuf>,
}

impl ServiceUnit {
    /// Read the keys above from a unit file's text; others are ignored.
    pub fn parse(text: &str) -> Result<ServiceUnit> {
        let mut unit = ServiceUnit::default();
        for line in text.lines().map(str::trim) {
            if line.starts_with(['#', ';', '[']) || line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let words = || value.split_whitespace().map(str::to_owned);
            match key.trim() {
                "ExecStart" => unit.exec_start = words().collect(),
                "EnvironmentFile" => {
                    let v = value.trim();
                    let (path, optional) = match v.strip_prefix('-') {
                        Some(p) => (p, true),
                        None => (v, false),
                    };
                    unit.environment_files.push((PathBuf::from(path), optional));
                }
                "Conflicts" => unit.conflicts.extend(words()),
                "Type" => unit.notify = value.trim() == "notify",
                "RuntimeDirectory" => unit.runtime_directory.extend(words()),
                "WantedBy" => unit.wanted_by.extend(words()),
                _ => {}
            }
        }
        if unit.exec_start.is_empty() {
            bail!("the unit has no ExecStart=");
        }
        Ok(unit)
    }

    /// Read a unit file.
    pub fn from_file(path: &Path) -> Result<ServiceUnit> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the unit file {}", path.display()))?;
        let mut unit =
            ServiceUnit::parse(&text).with_context(|| format!("unit file {}", path.display()))?;
        unit.path = Some(path.to_owned());
        Ok(unit)
    }
}

/// Options of [`SystemdStandin::start_with`].
#[derive(Debug, Clone, Default)]
pub struct StandinOptions {
    /// Put before every service's command (e.g. `ip netns exec NAME`).
    pub exec_prefix: Vec<String>,
    /// Where `EnableUnitFiles` links units into `<target>.wants/` (systemd's
    /// `/etc/systemd/system`); none: enablement is only remembered.
    pub enable_dir: Option<PathBuf>,
    /// Units enabled from the start.
    pub enabled: Vec<String>,
}

/// One `StartUnit` call the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCall {
    pub unit: String,
    pub mode: String,
}

/// A private dbus-daemon (bus type `custom`, everything allowed).
pub struct DbusDaemon {
    dir: tempfile::TempDir,
    child: Child,
    address: String,
}

impl DbusDaemon {
    /// Start one on a unix socket in its own temp dir.
    pub fn start() -> Result<DbusDaemon> {
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-dbus-")
            .tempdir()
            .context("creating a temp dir for dbus-daemon")?;
        let socket = dir.path().join("bus.sock");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )?;
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon; install it with `apt-get install -y dbus`")?;
        let address = format!("unix:path={}", socket.display());
        let mut bus = DbusDaemon {
            dir,
            child,
            address,
        };
        let start = Instant::now();
        while !socket.exists() {
            if let Some(status) = bus.child.try_wait()? {
                bail!(
                    "dbus-daemon exited at start ({status}); config {}",
                    config.display()
                );
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("dbus-daemon did not create {} within 10s", socket.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(bus)
    }

    /// The bus address (`unix:path=...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The daemon's directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// systemd's manager on a private bus.
pub struct SystemdStandin {
    // Declared before the bus so the connection closes first.
    _conn: zbus::Connection,
    calls: Arc<Mutex<Vec<StartCall>>>,
    runtime: Arc<Mutex<Runtime>>,
    bus: DbusDaemon,
}

/// What the stand-in knows of its services while they run.
#[derive(Debug, Default)]
struct Runtime {
    /// Per unit name: `active`, `activating`, `deactivating`, `failed`
    /// (absent: `inactive`).
    active: BTreeMap<String, &'static str>,
    /// Main process of a running service.
    pids: BTreeMap<String, u32>,
    /// Units that start at boot.
    enabled: std::collections::BTreeSet<String>,
    /// Units being stopped on request (their exit is not a failure).
    stopping: std::collections::BTreeSet<String>,
}

impl SystemdStandin {
    /// Start a bus and the manager with these units (names or templates).
    pub async fn start(units: Vec<(&str, UnitAction)>) -> Result<SystemdStandin> {
        SystemdStandin::start_with(units, StandinOptions::default()).await
    }

    /// [`SystemdStandin::start`] with options for services.
    pub async fn start_with(
        units: Vec<(&str, UnitAction)>,
        options: StandinOptions,
    ) -> Result<SystemdStandin> {
        let bus = DbusDaemon::start()?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let runtime = Arc::new(Mutex::new(Runtime {
            enabled: options.enabled.iter().cloned().collect(),
            ..Runtime::default()
        }));
        let manager = Manager {
            units: units.into_iter().map(|(n, a)| (n.to_owned(), a)).collect(),
            calls: calls.clone(),
            next_job: Mutex::new(0),
            runtime: runtime.clone(),
            options,
            dir: bus.dir(),
        };
        // Every unit's object, as systemd has one per loaded unit (systemctl
        // computes the path and reads the properties without a call first).
        let objects: Vec<(String, UnitObject)> = manager
            .units
            .iter()
            .filter(|(n, _)| !n.contains("@."))
            .map(|(n, _)| {
                (
                    unit_path(n),
                    UnitObject {
                        name: n.clone(),
                        known: true,
                        runtime: runtime.clone(),
                    },
                )
            })
            .collect();
        let mut builder = zbus::connection::Builder::address(bus.address())?
            .name("org.freedesktop.systemd1")?
            .serve_at(MANAGER_PATH, manager)?;
        for (path, object) in objects {
            builder = builder.serve_at(path, object)?;
        }
        let conn = builder
            .build()
            .await
            .context("connecting the systemd stand-in to its bus")?;
        Ok(SystemdStandin {
            _conn: conn,
            calls,
            runtime,
            bus,
        })
    }

    /// The bus address for the agent (`systemd_bus_address`).
    pub fn address(&self) -> &str {
        self.bus.address()
    }

    /// Every `StartUnit` and `StopUnit` call so far (`mode` of a stop is
    /// prefixed `stop:`).
    pub fn calls(&self) -> Vec<StartCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// A unit's `ActiveState`.
    pub fn active_state(&self, unit: &str) -> &'static str {
        self.runtime
            .lock()
            .ok()
            .and_then(|r| r.active.get(unit).copied())
            .unwrap_or("inactive")
    }

    /// Whether a unit is enabled.
    pub fn is_enabled(&self, unit: &str) -> bool {
        self.runtime
            .lock()
            .map(|r| r.enabled.contains(unit))
            .unwrap_or(false)
    }

    /// The main process of a running service.
    pub fn main_pid(&self, unit: &str) -> Option<u32> {
        self.runtime.lock().ok()?.pids.get(unit).copied()
    }

    /// What a service wrote to stdout and stderr.
    pub fn service_log(&self, unit: &str) -> String {
        std::fs::read_to_string(self.bus.dir().join(format!("{unit}.log"))).unwrap_or_default()
    }
}

impl Drop for SystemdStandin {
    fn drop(&mut self) {
        if let Ok(r) = self.runtime.lock() {
            for pid in r.pids.values() {
                kill(*pid, libc::SIGKILL);
            }
        }
    }
}

fn kill(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a process id this stand-in started.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";

struct Manager {
    units: Vec<(String, UnitAction)>,
    calls: Arc<Mutex<Vec<StartCall>>>,
    next_job: Mutex<u32>,
    runtime: Arc<Mutex<Runtime>>,
    options: StandinOptions,
    dir: PathBuf,
}

/// systemd's object path of a unit: bytes outside `[A-Za-z0-9]` as `_xx`.
fn unit_path(unit: &str) -> String {
    let mut p = format!("{MANAGER_PATH}/unit/");
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(char::from(b));
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// A unit's object (`org.freedesktop.systemd1.Unit`).
struct UnitObject {
    name: String,
    known: bool,
    runtime: Arc<Mutex<Runtime>>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl UnitObject {
    #[zbus(property)]
    fn load_state(&self) -> String {
        if self.known { "loaded" } else { "not-found" }.into()
    }

    #[zbus(property)]
    fn active_state(&self) -> String {
        self.runtime
            .lock()
            .ok()
            .and_then(|r| r.active.get(&self.name).copied())
            .unwrap_or("inactive")
            .into()
    }

    #[zbus(property)]
    fn unit_file_state(&self) -> String {
        if !self.known {
            return String::new();
        }
        let enabled = self
            .runtime
            .lock()
            .map(|r| r.enabled.contains(&self.name))
            .unwrap_or(false);
        if enabled { "enabled" } else { "disabled" }.into()
    }
}

/// Errors of the stand-in, named like systemd's.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum ManagerError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchUnit(String),
}

impl Manager {
    /// Note a job call (`calls()`).
    fn record(&self, unit: &str, mode: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(StartCall {
                unit: unit.to_owned(),
                mode,
            });
        }
    }

    /// A new job's id and object path.
    fn next_job(&self) -> Result<(u32, OwnedObjectPath), ManagerError> {
        let id = {
            let mut n = self.next_job.lock().map_err(|_| {
                ManagerError::ZBus(zbus::Error::Failure("job counter poisoned".into()))
            })?;
            *n += 1;
            *n
        };
        let path = OwnedObjectPath::try_from(format!("{MANAGER_PATH}/job/{id}"))
            .map_err(|e| ManagerError::ZBus(e.into()))?;
        Ok((id, path))
    }

    /// A known unit: its service description if it is a service.
    fn service(&self, unit: &str) -> Result<Option<ServiceUnit>, ManagerError> {
        match self.action(unit) {
            Some((UnitAction::Service(s), _)) => Ok(Some(s)),
            Some(_) => Ok(None),
            None => Err(ManagerError::NoSuchUnit(format!("Unit {unit} not found."))),
        }
    }

    /// `<enable_dir>/<target>.wants/<unit>`.
    fn wants_link(&self, target: &str, unit: &str) -> Option<PathBuf> {
        let dir = self.options.enable_dir.as_ref()?;
        Some(dir.join(format!("{target}.wants")).join(unit))
    }

    /// The action of `unit` and, for a template instance, the instance.
    fn action(&self, unit: &str) -> Option<(UnitAction, Option<String>)> {
        if let Some((_, a)) = self.units.iter().find(|(n, _)| n == unit) {
            return Some((a.clone(), None));
        }
        let (prefix, rest) = unit.split_once('@')?;
        let (instance, suffix) = rest.rsplit_once('.')?;
        let template = format!("{prefix}@.{suffix}");
        self.units
            .iter()
            .find(|(n, _)| *n == template)
            .map(|(_, a)| (a.clone(), Some(instance.to_owned())))
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {}

    async fn reload(&self) {}

    async fn get_unit(&self, name: &str) -> Result<OwnedObjectPath, ManagerError> {
        self.service(name)?;
        OwnedObjectPath::try_from(unit_path(name)).map_err(|e| ManagerError::ZBus(e.into()))
    }

    async fn get_unit_file_state(&self, name: &str) -> Result<String, ManagerError> {
        self.service(name)?;
        let enabled = self
            .runtime
            .lock()
            .map(|r| r.enabled.contains(name))
            .unwrap_or(false);
        Ok(if enabled { "enabled" } else { "disabled" }.into())
    }

    async fn load_unit(
        &self,
        name: &str,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> Result<OwnedObjectPath, ManagerError> {
        let path = unit_path(name);
        let object = UnitObject {
            name: name.to_owned(),
            known: self.action(name).is_some(),
            runtime: self.runtime.clone(),
        };
        server
            .at(path.as_str(), object)
            .await
            .map_err(ManagerError::ZBus)?;
        OwnedObjectPath::try_from(path).map_err(|e| ManagerError::ZBus(e.into()))
    }

    async fn enable_unit_files(
        &self,
        files: Vec<String>,
        _runtime: bool,
        _force: bool,
    ) -> Result<(bool, Vec<(String, String, String)>), ManagerError> {
        let mut changes = Vec::new();
        for f in files {
            let unit = self.service(&f)?;
            if let Ok(mut r) = self.runtime.lock() {
                r.enabled.insert(f.clone());
            }
            for target in unit
                .as_ref()
                .map(|u| u.wanted_by.clone())
                .unwrap_or_default()
            {
                if let Some(link) = self.wants_link(&target, &f) {
                    if let Some(dir) = link.parent() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| ManagerError::ZBus(zbus::Error::Failure(e.to_string())))?;
                    }
                    let _ = std::fs::remove_file(&link);
                    let file = unit
                        .as_ref()
                        .and_then(|u| u.path.clone())
                        .unwrap_or_else(|| Path::new("/lib/systemd/system").join(&f));
                    std::os::unix::fs::symlink(file, &link)
                        .map_err(|e| ManagerError::ZBus(zbus::Error::Failure(e.to_string())))?;
                    changes.push(("symlink".into(), link.display().to_string(), f.clone()));
                }
            }
        }
        Ok((true, changes))
    }

    async fn disable_unit_files(
        &self,
        files: Vec<String>,
        _runtime: bool,
    ) -> Result<Vec<(String, String, String)>, ManagerError> {
        let mut changes = Vec::new();
        for f in files {
            let unit = self.service(&f)?;
            if let Ok(mut r) = self.runtime.lock() {
                r.enabled.remove(&f);
            }
            for target in unit
                .as_ref()
                .map(|u| u.wanted_by.clone())
                .unwrap_or_default()
            {
                if let Some(link) = self.wants_link(&target, &f)
                    && std::fs::remove_file(&link).is_ok()
                {
                    changes.push(("unlink".into(), link.display().to_string(), String::new()));
                }
            }
        }
        Ok(changes)
    }

    async fn stop_unit(
        &self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, ManagerError> {
        self.record(name, format!("stop:{mode}"));
        self.service(name)?;
        let (id, path) = self.next_job()?;
        let emitter = emitter.to_owned();
        let runtime = self.runtime.clone();
        let unit = name.to_owned();
        let job = path.clone();
        tokio::spawn(async move {
            stop_service(&runtime, &unit).await;
            let _ = Manager::job_removed(&emitter, id, job.as_ref(), &unit, "done").await;
        });
        Ok(path)
    }

    async fn start_unit(
        &self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, ManagerError> {
        self.record(name, mode.to_owned());
        let (action, instance) = self
            .action(name)
            .ok_or_else(|| ManagerError::NoSuchUnit(format!("Unit {name} not found.")))?;
        let (id, path) = self.next_job()?;
        let emitter = emitter.to_owned();
        let unit = name.to_owned();
        let job = path.clone();
        match action {
            UnitAction::Service(service) => {
                let conflicting: Vec<String> = self
                    .units
                    .iter()
                    .filter(|(n, a)| {
                        n != &unit
                            && (service.conflicts.contains(n)
                                || matches!(a, UnitAction::Service(s) if s.conflicts.contains(&unit)))
                    })
                    .map(|(n, _)| n.clone())
                    .collect();
                let run = ServiceRun {
                    runtime: self.runtime.clone(),
                    unit: unit.clone(),
                    service,
                    prefix: self.options.exec_prefix.clone(),
                    dir: self.dir.clone(),
                };
                tokio::spawn(async move {
                    for c in &conflicting {
                        stop_service(&run.runtime, c).await;
                    }
                    let result = run.start().await;
                    let _ = Manager::job_removed(&emitter, id, job.as_ref(), &unit, result).await;
                });
            }
            UnitAction::Hang => {}
            UnitAction::DoneBeforeReply => {
                Manager::job_removed(&emitter, id, job.as_ref(), &unit, "done")
                    .await
                    .map_err(ManagerError::ZBus)?;
            }
            UnitAction::Done | UnitAction::Failed => {
                let result = if matches!(action, UnitAction::Done) {
                    "done"
                } else {
                    "failed"
                };
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = Manager::job_removed(&emitter, id, job.as_ref(), &unit, result).await;
                });
            }
            UnitAction::Exec(argv) => {
                let argv: Vec<String> = argv
                    .iter()
                    .map(|a| expand(a, instance.as_deref().unwrap_or("")))
                    .collect();
                tokio::spawn(async move {
                    let ok = match argv.split_first() {
                        Some((program, args)) => tokio::process::Command::new(program)
                            .args(args)
                            .current_dir("/")
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .await
                            .map(|s| s.success())
                            .unwrap_or(false),
                        None => false,
                    };
                    let result = if ok { "done" } else { "failed" };
                    let _ = Manager::job_removed(&emitter, id, job.as_ref(), &unit, result).await;
                });
            }
        }
        Ok(path)
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// One start of a service.
struct ServiceRun {
    runtime: Arc<Mutex<Runtime>>,
    unit: String,
    service: ServiceUnit,
    prefix: Vec<String>,
    dir: PathBuf,
}

impl ServiceRun {
    fn set(&self, state: &'static str) {
        if let Ok(mut r) = self.runtime.lock() {
            r.active.insert(self.unit.clone(), state);
        }
    }

    /// Start the service; the job's result.
    async fn start(self) -> &'static str {
        if self
            .runtime
            .lock()
            .map(|r| r.pids.contains_key(&self.unit))
            .unwrap_or(false)
        {
            return "done";
        }
        self.set("activating");
        match self.spawn().await {
            Ok(()) => "done",
            Err(e) => {
                let _ = std::fs::write(
                    self.dir.join(format!("{}.start-error", self.unit)),
                    format!("{e:#}"),
                );
                self.set("failed");
                "failed"
            }
        }
    }

    async fn spawn(&self) -> Result<()> {
        let mut env: Vec<(String, String)> = vec![(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        )];
        for (file, optional) in &self.service.environment_files {
            match std::fs::read_to_string(file) {
                Ok(text) => env.extend(environment_file(&text)),
                Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bail!("EnvironmentFile {}: {e}", file.display()),
            }
        }
        for d in &self.service.runtime_directory {
            let dir = Path::new("/run").join(d);
            std::fs::create_dir_all(&dir)?;
        }
        let notify = if self.service.notify {
            let path = self.dir.join(format!("{}.notify", self.unit));
            let _ = std::fs::remove_file(&path);
            let sock = tokio::net::UnixDatagram::bind(&path)?;
            env.push(("NOTIFY_SOCKET".into(), path.display().to_string()));
            Some(sock)
        } else {
            None
        };
        let argv: Vec<&String> = self
            .prefix
            .iter()
            .chain(self.service.exec_start.iter())
            .collect();
        let (program, args) = argv.split_first().context("empty ExecStart")?;
        let log = std::fs::File::create(self.dir.join(format!("{}.log", self.unit)))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let pid = child.id().context("no pid")?;
        if let Ok(mut r) = self.runtime.lock() {
            r.pids.insert(self.unit.clone(), pid);
        }
        if let Some(sock) = notify {
            let mut buf = vec![0u8; 4096];
            loop {
                tokio::select! {
                    got = sock.recv(&mut buf) => {
                        let n = got?;
                        if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1") {
                            break;
                        }
                    }
                    status = child.wait() => {
                        self.ended();
                        bail!("{} exited before READY=1: {:?}", self.unit, status);
                    }
                }
            }
        }
        self.set("active");
        let runtime = self.runtime.clone();
        let unit = self.unit.clone();
        let dirs = self.service.runtime_directory.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            if let Ok(mut r) = runtime.lock() {
                r.pids.remove(&unit);
                let requested = r.stopping.remove(&unit);
                let ok = requested || status.map(|s| s.success()).unwrap_or(false);
                r.active
                    .insert(unit.clone(), if ok { "inactive" } else { "failed" });
            }
            for d in dirs {
                let _ = std::fs::remove_dir_all(Path::new("/run").join(d));
            }
        });
        Ok(())
    }

    fn ended(&self) {
        if let Ok(mut r) = self.runtime.lock() {
            r.pids.remove(&self.unit);
        }
    }
}

/// Stop a running service: SIGTERM, then wait (SIGKILL after 90 s, as
/// systemd's default `TimeoutStopSec=`).
async fn stop_service(runtime: &Arc<Mutex<Runtime>>, unit: &str) {
    let pid = match runtime.lock() {
        Ok(mut r) => {
            let pid = r.pids.get(unit).copied();
            if pid.is_some() {
                r.stopping.insert(unit.to_owned());
                r.active.insert(unit.to_owned(), "deactivating");
            }
            pid
        }
        Err(_) => None,
    };
    let Some(pid) = pid else {
        return;
    };
    kill(pid, libc::SIGTERM);
    let start = Instant::now();
    loop {
        let gone = runtime
            .lock()
            .map(|r| !r.pids.contains_key(unit))
            .unwrap_or(true);
        if gone {
            return;
        }
        if start.elapsed() > Duration::from_secs(90) {
            kill(pid, libc::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `EnvironmentFile=` lines (systemd.exec(5)): `KEY=VALUE`, comments `#`/`;`,
/// a quoted value loses its quotes; other lines are ignored, as systemd does.
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = ['"', '\'']
                .iter()
                .find_map(|q| v.strip_prefix(*q).and_then(|x| x.strip_suffix(*q)))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// systemd's `%I` (unescaped instance) and `%f` (`/` + unescaped instance).
fn expand(arg: &str, instance: &str) -> String {
    let unescaped = unescape(instance);
    let path = format!("/{}", unescaped.trim_start_matches('/'));
    arg.replace("%I", &unescaped).replace("%f", &path)
}

/// `systemd-escape --unescape`: `\xNN` → byte, `-` → `/`.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 3 < bytes.len() && bytes.get(i + 1) == Some(&b'x') => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 4;
                    }
                    Err(_) => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            }
            b'-' => {
                out.push(b'/');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescaping() {
        assert_eq!(unescape("etc-sonic-frr-frr.conf"), "etc/sonic/frr/frr.conf");
        assert_eq!(
            unescape(r"with\x20space-\xc3\xbc.conf"),
            "with space/ü.conf"
        );
        assert_eq!(unescape(r"a\x2db"), "a-b");
        assert_eq!(
            expand("--inputfile=%f", r"tmp-x\x2dy"),
            "--inputfile=/tmp/x-y"
        );
        assert_eq!(expand("%I", "tmp-x"), "tmp/x");
    }

    #[test]
    fn unit_files_and_bus_paths() {
        let u = ServiceUnit::parse(
            "[Unit]\nConflicts=metal-core.service\n[Service]\nType=notify\n\
             ExecStart=/usr/bin/metal-switchd run\nEnvironmentFile=-/etc/default/metal-core\n\
             EnvironmentFile=/etc/x\nRuntimeDirectory=metal-switchd\n[Install]\nWantedBy=sonic.target\n",
        )
        .unwrap();
        assert_eq!(u.exec_start, ["/usr/bin/metal-switchd", "run"]);
        assert!(u.notify);
        assert_eq!(
            u.environment_files,
            [
                (PathBuf::from("/etc/default/metal-core"), true),
                (PathBuf::from("/etc/x"), false)
            ]
        );
        assert_eq!(u.conflicts, ["metal-core.service"]);
        assert_eq!(u.wanted_by, ["sonic.target"]);
        // systemd: `busctl` shows metal-core.service as metal_2dcore_2eservice
        assert_eq!(
            unit_path("metal-core.service"),
            "/org/freedesktop/systemd1/unit/metal_2dcore_2eservice"
        );
        assert_eq!(
            environment_file("# c\nA=1\nB=\"x y\"\nnoise\n"),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "x y".to_owned())
            ]
        );
    }
}
