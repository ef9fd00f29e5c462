//! sd_notify: tell systemd about readiness, liveness and state (feature `agent`).
//!
//! The protocol (`sd_notify(3)`): newline-separated `KEY=VALUE` assignments
//! in one datagram to the unix socket named by `NOTIFY_SOCKET` — a path, or
//! an abstract socket when it starts with `@`. Without `NOTIFY_SOCKET` (not
//! started by systemd, or `Type=` other than `notify`) every call is a no-op.
//!
//! The assignments and the monotonic clock of `RELOADING=1` come from the
//! `sd-notify` crate ([`NotifyState`]); the datagram is sent here, to the
//! address read once by [`Notifier::from_env`], because the crate's own
//! `notify` reads the environment on every call and so cannot be pointed at
//! a test socket without changing the process environment.
//!
//! What the daemon sends, and when:
//! - `READY=1` with a `STATUS=` line after its first complete observation
//!   ([`Notifier::ready`]); until then systemd reports the unit as
//!   "activating" and units ordered after it wait;
//! - `WATCHDOG=1` ([`Notifier::watchdog`]) every quarter of the interval
//!   while the loop proves progress — it came round recently, or a long step
//!   (registration, a barrier, an FRR reload, API retries) is within its
//!   bound — and never otherwise, so a stuck loop stops the pings and
//!   systemd kills and restarts it ([`super::watchdog`]);
//! - `STATUS=` after every reconcile and phase change ([`Notifier::status`]);
//! - `RELOADING=1` with `MONOTONIC_USEC=` on SIGHUP, then `READY=1` when the
//!   reload is done ([`Notifier::reloading`]; systemd ≥ 253 wants the clock
//!   value and ignores a `RELOADING=1` without it for `Type=notify-reload`);
//! - `STOPPING=1` when it begins to shut down ([`Notifier::stopping`]).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub use sd_notify::NotifyState;

/// Sends notifications to systemd's notification socket, if there is one.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    /// Shown in errors: the socket as `NOTIFY_SOCKET` named it.
    name: String,
    socket: UnixDatagram,
}

impl Notifier {
    /// The notifier systemd set up for this process: `NOTIFY_SOCKET` and
    /// the watchdog interval (`WATCHDOG_USEC`, when `WATCHDOG_PID` is unset
    /// or this process). A socket that cannot be used is reported in the
    /// error; the daemon logs it and carries on without notifications.
    pub fn from_env() -> io::Result<Notifier> {
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => {
                Ok(Notifier::to_socket(&name)?.with_watchdog(watchdog))
            }
            _ => Ok(Notifier::disabled().with_watchdog(watchdog)),
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// A notifier for the socket `name` (a path, or `@name` for an abstract socket).
    pub fn to_socket(name: &OsStr) -> io::Result<Notifier> {
        let addr = socket_addr(name)?;
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier {
            target: Some(Target {
                addr,
                name: name.to_string_lossy().into_owned(),
                socket,
            }),
            watchdog: None,
        })
    }

    /// The same notifier with a watchdog interval (for tests and for callers
    /// that read it elsewhere).
    pub fn with_watchdog(mut self, interval: Option<Duration>) -> Notifier {
        self.watchdog = interval;
        self
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// systemd's watchdog interval (`WatchdogSec=`), if the watchdog is on.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// How often the loop must call [`Notifier::watchdog`]: half the
    /// interval, as `sd_watchdog_enabled(3)` recommends.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Send assignments in one datagram. A no-op without a socket.
    pub fn send(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        let Some(t) = &self.target else {
            return Ok(());
        };
        let msg = message(states);
        let sent = t
            .socket
            .send_to_addr(msg.as_bytes(), &t.addr)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot notify systemd over {}: {e}", t.name),
                )
            })?;
        if sent != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "cannot notify systemd over {}: sent {sent} of {} bytes",
                    t.name,
                    msg.len()
                ),
            ));
        }
        Ok(())
    }

    /// `READY=1` and the status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        let status = one_line(status);
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)])
    }

    /// `WATCHDOG=1`: the loop is alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send(&[NotifyState::Watchdog])
    }

    /// `STATUS=`: one line for `systemctl status` (newlines become spaces).
    pub fn status(&self, status: &str) -> io::Result<()> {
        let status = one_line(status);
        self.send(&[NotifyState::Status(&status)])
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (now) and a status line. Send
    /// [`Notifier::ready`] when the reload is done.
    pub fn reloading(&self, status: &str) -> io::Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        let now = NotifyState::monotonic_usec_now()?;
        let status = one_line(status);
        self.send(&[NotifyState::Reloading, now, NotifyState::Status(&status)])
    }

    /// `STOPPING=1` and a status line.
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        let status = one_line(status);
        self.send(&[NotifyState::Stopping, NotifyState::Status(&status)])
    }
}

/// The datagram for `states`: one `KEY=VALUE` per line.
pub fn message(states: &[NotifyState<'_>]) -> String {
    let mut msg = String::new();
    for s in states {
        msg.push_str(&s.to_string());
        msg.push('\n');
    }
    msg
}

/// A status text as one line: a newline would end the assignment and start
/// another, so line breaks and other control characters become spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The watchdog interval from `WATCHDOG_USEC` and `WATCHDOG_PID`, as
/// `sd_watchdog_enabled(3)` reads them: on when `WATCHDOG_USEC` is a
/// positive number and `WATCHDOG_PID` is unset or `own_pid`.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(p) = pid
        && p.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    Some(Duration::from_micros(usec))
}

fn socket_addr(name: &OsStr) -> io::Result<SocketAddr> {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(name),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET={} is neither an absolute path nor an abstract socket (@name)",
                name.to_string_lossy()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    struct Listener {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        socket: UnixDatagram,
    }

    fn listener() -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Listener {
            _dir: dir,
            path,
            socket,
        }
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn each_call_is_one_datagram_of_assignments() {
        let l = listener();
        let n = Notifier::to_socket(l.path.as_os_str()).unwrap();
        assert!(n.is_enabled());
        n.ready("idle: converged\nsecond line").unwrap();
        assert_eq!(
            recv(&l.socket),
            "READY=1\nSTATUS=idle: converged second line\n"
        );
        n.watchdog().unwrap();
        assert_eq!(recv(&l.socket), "WATCHDOG=1\n");
        n.status("reconciling #3").unwrap();
        assert_eq!(recv(&l.socket), "STATUS=reconciling #3\n");
        n.stopping("stopping").unwrap();
        assert_eq!(recv(&l.socket), "STOPPING=1\nSTATUS=stopping\n");
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let l = listener();
        let n = Notifier::to_socket(l.path.as_os_str()).unwrap();
        // CLOCK_MONOTONIC in µs, read independently of the crate.
        let before = monotonic_usec();
        n.reloading("reloading configuration").unwrap();
        let after = monotonic_usec();
        let msg = recv(&l.socket);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "RELOADING=1", "{msg}");
        let usec: u128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{msg}"))
            .parse()
            .unwrap();
        assert!(
            before <= usec && usec <= after,
            "{before} <= {usec} <= {after}"
        );
        assert_eq!(lines[2], "STATUS=reloading configuration");
    }

    fn monotonic_usec() -> u128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into the pointer given.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
            0
        );
        ts.tv_sec as u128 * 1_000_000 + ts.tv_nsec as u128 / 1000
    }

    #[test]
    fn abstract_socket() {
        let name = format!("metal-switchd-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let n = Notifier::to_socket(OsStr::new(&format!("@{name}"))).unwrap();
        n.watchdog().unwrap();
        assert_eq!(recv(&socket), "WATCHDOG=1\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        n.ready("x").unwrap();
        n.reloading("x").unwrap();
        n.watchdog().unwrap();
    }

    #[test]
    fn a_vanished_socket_is_an_error_that_names_it() {
        let l = listener();
        let n = Notifier::to_socket(l.path.as_os_str()).unwrap();
        let path = l.path.clone();
        drop(l);
        let e = n.watchdog().unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn relative_socket_names_are_refused() {
        let e = Notifier::to_socket(OsStr::new("notify.sock"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither an absolute path"), "{e}");
    }

    #[test]
    fn watchdog_interval_follows_sd_watchdog_enabled() {
        let s = |us| Some(Duration::from_micros(us));
        assert_eq!(watchdog_interval(Some("60000000"), None, 7), s(60_000_000));
        assert_eq!(
            watchdog_interval(Some("60000000"), Some("7"), 7),
            s(60_000_000)
        );
        assert_eq!(watchdog_interval(Some("60000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("60000000"), Some("x"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
        let n = Notifier::disabled().with_watchdog(s(60_000_000));
        assert_eq!(n.watchdog_period(), Some(Duration::from_secs(30)));
    }
}
