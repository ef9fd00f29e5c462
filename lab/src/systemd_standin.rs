//! A stand-in for systemd's D-Bus manager: a private `dbus-daemon` plus a
//! service named `org.freedesktop.systemd1` that implements the calls
//! metal-switchd makes (`Subscribe`, `StartUnit`, the `JobRemoved` signal).
//!
//! systemd itself cannot run here; this service behaves like it for those
//! calls: `StartUnit` returns a job path at once and the job's end is
//! announced later with `JobRemoved(id, job, unit, result)`. What a unit
//! does is given per unit name or per template (`name@.service`):
//! finish with `done` or `failed`, announce the end before the reply, never
//! finish, or run a real command (`%I` and `%f` expand like systemd's
//! specifiers; the result is `done` on exit status 0, else `failed`).
//! Unknown units fail the call with `org.freedesktop.systemd1.NoSuchUnit`.
//!
//! Everything stops on drop (the dbus-daemon is killed, its directory removed).

use std::path::PathBuf;
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
    bus: DbusDaemon,
}

impl SystemdStandin {
    /// Start a bus and the manager with these units (names or templates).
    pub async fn start(units: Vec<(&str, UnitAction)>) -> Result<SystemdStandin> {
        let bus = DbusDaemon::start()?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let manager = Manager {
            units: units.into_iter().map(|(n, a)| (n.to_owned(), a)).collect(),
            calls: calls.clone(),
            next_job: Mutex::new(0),
        };
        let conn = zbus::connection::Builder::address(bus.address())?
            .name("org.freedesktop.systemd1")?
            .serve_at(MANAGER_PATH, manager)?
            .build()
            .await
            .context("connecting the systemd stand-in to its bus")?;
        Ok(SystemdStandin {
            _conn: conn,
            calls,
            bus,
        })
    }

    /// The bus address for the agent (`systemd_bus_address`).
    pub fn address(&self) -> &str {
        self.bus.address()
    }

    /// Every `StartUnit` call so far.
    pub fn calls(&self) -> Vec<StartCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";

struct Manager {
    units: Vec<(String, UnitAction)>,
    calls: Arc<Mutex<Vec<StartCall>>>,
    next_job: Mutex<u32>,
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

    async fn start_unit(
        &self,
        name: &str,
        mode: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, ManagerError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(StartCall {
                unit: name.to_owned(),
                mode: mode.to_owned(),
            });
        }
        let (action, instance) = self
            .action(name)
            .ok_or_else(|| ManagerError::NoSuchUnit(format!("Unit {name} not found.")))?;
        let id = {
            let mut n = self.next_job.lock().map_err(|_| {
                ManagerError::ZBus(zbus::Error::Failure("job counter poisoned".into()))
            })?;
            *n += 1;
            *n
        };
        let path = OwnedObjectPath::try_from(format!("{MANAGER_PATH}/job/{id}"))
            .map_err(|e| ManagerError::ZBus(e.into()))?;
        let emitter = emitter.to_owned();
        let unit = name.to_owned();
        let job = path.clone();
        match action {
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
}
