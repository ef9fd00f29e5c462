//! Processes, special files and SONiC's readiness flags, for tests: each
//! written once here.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use metal_switchd_lab::redis_server::{APPL_DB, CONFIG_DB, RedisServer};

/// A FIFO at `path` (`mkfifo`).
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Wait for `child` to end by itself; after `timeout` it is killed and
/// `None` returned (the caller says what hung).
pub fn exit_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command for the tool `program`, which must be installed (it answers
/// `--version`); a test without it fails saying which Debian `package`
/// brings it.
pub fn tool(program: &str, package: &str) -> Command {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{program} is missing: install the Debian package `{package}` (./dev test does)"
    );
    Command::new(program)
}

/// Run `cmd` and require it to succeed; its output. A failure panics with
/// `what`, the exit status and both streams.
pub fn succeeded(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run `cmd` with `input` on its stdin; its stdout and stderr.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// SONiC's ports are initialised: `PORT_TABLE:PortInitDone` in APPL_DB,
/// as portsyncd writes it.
pub fn port_init_done(redis: &RedisServer) {
    let mut c = redis.connection(APPL_DB).unwrap();
    redis::cmd("HSET")
        .arg("PORT_TABLE:PortInitDone")
        .arg("lanes")
        .arg("0")
        .query::<()>(&mut c)
        .unwrap();
}

/// CONFIG_DB is loaded: `CONFIG_DB_INITIALIZED` = 1, as `config load` sets it.
pub fn config_db_initialized(redis: &RedisServer) {
    let mut c = redis.connection(CONFIG_DB).unwrap();
    redis::cmd("SET")
        .arg("CONFIG_DB_INITIALIZED")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap();
}

/// Texts only a build with crash points (`src/crash.rs`) contains: the
/// tests' binary has them, the packaged one must not.
pub const CRASH_MARKERS: &[&str] = &[
    "METAL_SWITCHD_CRASH_AT",
    "METAL_SWITCHD_CRASH_TRACE",
    "configdb.phase.",
    "frr.backed-up",
    "reconcile.kernel-check",
    "crash point",
];

/// Whether `haystack` (a binary's bytes) contains `needle`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
