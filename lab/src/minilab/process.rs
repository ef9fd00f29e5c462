//! Processes and namespaces of the lab: starting a program inside a node
//! (its network namespace, and a UTS namespace with the node's host name),
//! signalling it by pid, and sweeping a namespace (every process in it, then
//! the namespace itself) — the one teardown that works also after a crash.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// A command that runs `program` in network namespace `netns`, with host
/// name `hostname` (in a UTS namespace of its own) when given.
/// `ip netns exec`, `unshare` and `sh` all `exec`, so the child's pid is the
/// program's.
pub fn in_node(netns: &str, hostname: Option<&str>, program: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns]);
    if let Some(h) = hostname {
        c.args(["unshare", "--uts", "--"])
            .args(["sh", "-c", "hostname \"$1\" && shift && exec \"$@\"", "sh"])
            .arg(h);
    }
    c.arg(program);
    c
}

/// Whether a network namespace of that name exists (`ip netns`).
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// The pids of the processes in a network namespace (`ip netns pids`).
pub fn netns_pids(name: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", name])
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Send `sig` to `pid` (errors ignored: it may be gone).
pub fn signal(pid: i32, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: kill(2) with a positive pid.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Stop every process in namespace `name` (SIGTERM, then SIGKILL after
/// `grace`) and delete the namespace. Returns how many processes it ended.
pub fn sweep_netns(name: &str, grace: Duration) -> Result<usize> {
    if !netns_exists(name) {
        return Ok(0);
    }
    let first = netns_pids(name);
    for p in &first {
        signal(*p, libc::SIGTERM);
    }
    let start = Instant::now();
    loop {
        let left: Vec<i32> = netns_pids(name).into_iter().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        if start.elapsed() > grace {
            for p in &left {
                signal(*p, libc::SIGKILL);
            }
            if start.elapsed() > grace + Duration::from_secs(5) {
                bail!("processes {left:?} in network namespace {name} do not end");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("ip")
        .args(["netns", "del", name])
        .output()
        .context("cannot run ip")?;
    if !out.status.success() && netns_exists(name) {
        bail!(
            "ip netns del {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(first.len())
}

/// Run `f` on a thread that has entered network namespace `name`: sockets
/// it creates belong to that namespace.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = Path::new("/run/netns").join(name);
    std::thread::spawn(move || -> Result<T> {
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: setns with an open namespace fd; affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(anyhow!(
                "entering {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        f()
    })
    .join()
    .map_err(|_| anyhow!("the thread in network namespace {name} panicked"))?
}

/// Wait until `f` returns `Some` (checking every `every`), or fail after
/// `timeout` with `what` — a bound that only catches hangs.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if super::control::interrupted() {
            bail!("interrupted while waiting for {what}");
        }
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every);
    }
}
