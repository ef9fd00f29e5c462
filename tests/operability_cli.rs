//! The binary's operability surface: where and how it logs (pipe, terminal,
//! JSON, the journal), `--version`, and `metal-switchd status` against real
//! status files and a real process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use metal_switchd::observed::PortOperState;
use metal_switchd::report::status::{PortStatus, ReconcileRecord, Status};
use metal_switchd::report::{LoopPhase, ReconcileResult, Stage, Trigger};
use metal_switchd::time::Timestamp;

const BIN: &str = env!("CARGO_BIN_EXE_metal-switchd");

/// The agent with a clean environment (no METAL_* or journal variables of
/// the caller) and no configuration file.
fn agent(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("METAL_SWITCHD_CONFIG", dir.join("absent.toml"))
        .env("METAL_SWITCHD_STATE_DIRECTORY", dir);
    c
}

fn run(mut c: Command) -> Output {
    c.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    // the config file is optional only when not named: use a real, empty one
    std::fs::write(dir.path().join("absent.toml"), "").unwrap();
    let mut c = agent(dir.path());
    c.args(["--log", "debug", "check-config"]);
    let out = run(c);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("logging started"), "{err}");
    assert!(err.contains("output=text"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "ANSI escape codes in a pipe:\n{err:?}"
    );
}

#[test]
fn logs_to_a_terminal_are_coloured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("absent.toml"), "").unwrap();
    // `script` runs the agent with a pseudo-terminal as stdout and stderr.
    let cmd = format!(
        "METAL_SWITCHD_CONFIG={} {BIN} --log debug check-config",
        dir.path().join("absent.toml").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) is needed for this test");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("logging started"), "{text}");
    assert!(text.contains('\x1b'), "no colour on a terminal:\n{text:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("absent.toml"), "log_format = \"json\"\n").unwrap();
    let mut c = agent(dir.path());
    c.args(["--log", "debug", "check-config"]);
    let out = run(c);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty());
    let mut started = false;
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
        if v["fields"]["message"] == "logging started" {
            assert_eq!(v["level"], "DEBUG");
            assert_eq!(v["fields"]["output"], "json");
            assert_eq!(v["fields"]["filter"], "debug");
            started = true;
        }
    }
    assert!(started, "{err}");
}

#[test]
fn a_journal_stream_is_used_only_when_it_is_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("absent.toml"), "").unwrap();
    let err_path = dir.path().join("stderr.log");
    let err_file = std::fs::File::create(&err_path).unwrap();
    use std::os::unix::fs::MetadataExt;
    let meta = err_file.metadata().unwrap();
    let run_with = |journal_stream: String| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&err_path)
            .unwrap();
        let mut c = agent(dir.path());
        c.env("JOURNAL_STREAM", journal_stream)
            .args(["--log", "debug", "check-config"])
            .stderr(f)
            .stdout(Stdio::null());
        assert!(c.status().unwrap().success());
        std::fs::read_to_string(&err_path).unwrap()
    };
    // stderr is the stream systemd named: journald (or, without its socket,
    // plain text with a warning saying so)
    let err = run_with(format!("{}:{}", meta.dev(), meta.ino()));
    if Path::new("/run/systemd/journal/socket").exists() {
        assert!(
            !err.contains("logging started"),
            "went to stderr, not the journal:\n{err}"
        );
    } else {
        assert!(
            err.contains("stderr is the journal but journald's socket cannot be reached"),
            "{err}"
        );
        assert!(err.contains("output=text"), "{err}");
    }
    // stderr was redirected away from the journal: the variable is stale
    let err = run_with(format!("{}:{}", meta.dev(), meta.ino() + 1));
    assert!(!err.contains("journald"), "{err}");
    assert!(
        err.contains("logging started") && err.contains("output=text"),
        "{err}"
    );
}

#[test]
fn version_names_the_revision() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).unwrap();
    let want = format!(
        "metal-switchd {} ({})\n",
        env!("CARGO_PKG_VERSION"),
        metal_switchd::REVISION
    );
    assert_eq!(v, want);
    // built in this git checkout: the revision is HEAD's commit id
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() && std::env::var_os("METAL_SWITCHD_REVISION").is_none() {
        let head = String::from_utf8(head.stdout).unwrap();
        assert_eq!(metal_switchd::REVISION, head.trim());
    }
}

/// A process whose name is `metal-switchd` (a copy of sleep(1)), standing
/// in for the daemon whose pid the status file names. Killed on drop.
struct FakeDaemon {
    child: Child,
    _dir: tempfile::TempDir,
}

impl FakeDaemon {
    fn start() -> FakeDaemon {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("metal-switchd");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let child = Command::new(&exe).arg("600").spawn().unwrap();
        // wait until the kernel shows the new name (after exec)
        let comm = PathBuf::from(format!("/proc/{}/comm", child.id()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "metal-switchd" {
            assert!(
                std::time::Instant::now() < deadline,
                "fake daemon did not start"
            );
            std::thread::yield_now();
        }
        FakeDaemon { child, _dir: dir }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_for(pid: u32) -> Status {
    let started = SystemTime::now() - Duration::from_secs(3600);
    let mut s = Status::new(pid, started);
    s.set_phase(LoopPhase::Idle);
    s.record_reconcile(ReconcileRecord {
        started_at: Timestamp(SystemTime::now() - Duration::from_secs(5)),
        duration: Duration::from_millis(420),
        result: ReconcileResult::Error,
        error: Some("barrier of phase 2 (attach) not confirmed within 30s: STATE_DB INTERFACE_TABLE|Ethernet4".into()),
        trigger: Trigger::Configdb,
        stages: [(Stage::BarrierWait, Duration::from_secs(30))].into_iter().collect(),
        changes: 2,
        phases: 2,
        frr_changed: false,
        digest: None,
        api_generation: None,
    });
    s.ports.insert(
        "Ethernet4".into(),
        PortStatus {
            oper: PortOperState::Down,
            admin: None,
            lldp: None,
        },
    );
    s
}

fn status_cmd(dir: &Path, format: &str) -> Output {
    std::fs::write(dir.join("absent.toml"), "").unwrap();
    let mut c = agent(dir);
    c.args(["status", "--format", format]);
    run(c)
}

#[test]
fn status_of_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = FakeDaemon::start();
    let mut s = status_for(daemon.pid());
    s.write_atomic(dir.path(), SystemTime::now()).unwrap();

    let out = status_cmd(dir.path(), "text");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "metal-switchd is running\n",
        &format!("pid {}, up 1h0m", daemon.pid()),
        "phase:            idle",
        "last reconcile:   error at",
        "trigger configdb",
        "  error:          barrier of phase 2 (attach) not confirmed within 30s",
        "stages:         barrier_wait 30.0s",
        "reconciles:       1 (1 failed in a row)",
        "  Ethernet4     Down",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    let out = status_cmd(dir.path(), "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["liveness"], "running");
    assert_eq!(v["status"]["agent"]["pid"], daemon.pid());
    assert_eq!(v["status"]["last_reconcile"]["result"], "error");
    assert_eq!(v["stale_after_seconds"], 120.0);
}

#[test]
fn status_of_a_stuck_daemon_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = FakeDaemon::start();
    let mut s = status_for(daemon.pid());
    s.write_atomic(dir.path(), SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let out = status_cmd(dir.path(), "text");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("has not updated its status for 10m0s (allowed 2m0s)"),
        "{err}"
    );
    // --stale-after widens the bound
    let mut c = agent(dir.path());
    c.args(["status", "--stale-after", "15m"]);
    assert_eq!(run(c).status.code(), Some(0));
}

#[test]
fn status_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    // no file at all
    let out = status_cmd(dir.path(), "text");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("status.json does not exist"), "{err}");

    // a file whose process is gone
    let pid = {
        let d = FakeDaemon::start();
        d.pid()
    };
    status_for(pid)
        .write_atomic(dir.path(), SystemTime::now())
        .unwrap();
    let out = status_cmd(dir.path(), "json");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["liveness"], "not-running");

    // a pid that belongs to another program does not count
    status_for(std::process::id())
        .write_atomic(dir.path(), SystemTime::now())
        .unwrap();
    assert_eq!(status_cmd(dir.path(), "text").status.code(), Some(3));

    // an unreadable file: status unknown
    std::fs::write(dir.path().join("status.json"), "{").unwrap();
    let out = status_cmd(dir.path(), "text");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}
