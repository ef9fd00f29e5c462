//! `metal-switchd-lab lab up | status | down` and `demo` as an operator runs
//! them, with the v1 API: the lab comes up in the background, a crashed
//! supervisor (SIGKILL) leaves leftovers that the next `up` removes, `down`
//! leaves nothing, and Ctrl-C (SIGINT) during `demo` tears the lab down.
//! A unique namespace prefix keeps an operator's own lab untouched. Needs
//! root, redis-server and FRR, and the `metal-switchd` binary next to this
//! package's binary (`cargo nextest run --workspace` builds both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use metal_switchd_lab::minilab::{process, topology};

const LAB: &str = env!("CARGO_BIN_EXE_metal-switchd-lab");

fn agent() -> PathBuf {
    let p = Path::new(LAB).with_file_name("metal-switchd");
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build --bin metal-switchd), or run the workspace's tests",
        p.display()
    );
    p
}

fn lab(prefix: &str, args: &[&str]) -> Output {
    let out = Command::new(LAB)
        .args(args)
        .args(["--prefix", prefix, "--agent"])
        .arg(agent())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "$ metal-switchd-lab {} --prefix {prefix}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains("SKIPPED"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn state_dir(prefix: &str) -> PathBuf {
    PathBuf::from(format!("/run/metal-switchd-lab/{prefix}lab"))
}

fn assert_nothing_left(prefix: &str) {
    for node in topology::nodes() {
        let ns = format!("{prefix}{node}");
        assert!(
            !process::netns_exists(&ns),
            "network namespace {ns} is left over"
        );
    }
    assert!(
        !state_dir(prefix).exists(),
        "the state directory is left over"
    );
}

fn supervisor_pid(prefix: &str) -> i32 {
    let text = std::fs::read_to_string(state_dir(prefix).join("lab.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["owner_pid"].as_i64().unwrap() as i32
}

/// Takes the lab down when the test ends, also when it fails half-way
/// (the supervisor is detached and would outlive the test).
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        if state_dir(&self.0).exists() {
            let _ = Command::new(LAB)
                .args(["lab", "down", "--prefix", &self.0])
                .stdin(Stdio::null())
                .output();
        }
    }
}

#[test]
fn up_status_crash_up_again_down_and_ctrl_c_leave_nothing_behind() {
    let prefix = format!("c{:05x}-", std::process::id() & 0xf_ffff);
    let _down = Down(prefix.clone());

    // Up (v1) in the background; both leaves converged and peering.
    let up = lab(&prefix, &["lab", "up", "--api", "v1"]);
    assert!(up.status.success(), "lab up failed");
    let text = stdout(&up);
    assert!(text.contains("== ready"), "{text}");
    assert_eq!(
        text.matches("FABRIC    Established").count(),
        2,
        "both leaves' uplink sessions: {text}"
    );
    let status = lab(&prefix, &["lab", "status"]);
    assert!(status.status.success());
    let text = stdout(&status);
    assert!(text.contains("supervisor running"), "{text}");
    assert_eq!(text.matches("v1.notify ok").count(), 2, "{text}");
    assert!(
        text.contains("exit       BGP: eth1 Established, eth2 Established"),
        "{text}"
    );

    // A second up while it runs is refused.
    let again = lab(&prefix, &["lab", "up", "--api", "v1"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    // The supervisor crashes: its pieces are left over, and reported so.
    let pid = supervisor_pid(&prefix);
    process::signal(pid, libc::SIGKILL);
    let start = Instant::now();
    while process::alive(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "SIGKILL did not end {pid}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process::netns_exists(&format!("{prefix}leaf01")));
    let status = lab(&prefix, &["lab", "status"]);
    assert!(
        stdout(&status).contains("NOT RUNNING"),
        "{}",
        stdout(&status)
    );

    // The next up removes the leftovers first, then comes up again.
    let up = lab(&prefix, &["lab", "up", "--api", "v1"]);
    assert!(up.status.success(), "lab up after a crash failed");
    let text = stdout(&up);
    assert!(
        text.contains("removed leftovers: network namespace"),
        "{text}"
    );
    assert!(text.contains("== ready"), "{text}");

    let down = lab(&prefix, &["lab", "down"]);
    assert!(down.status.success());
    assert_nothing_left(&prefix);
    assert!(
        !state_dir(&prefix)
            .with_file_name(format!("{prefix}lab.log"))
            .exists()
    );

    // Ctrl-C during the demo: the lab is torn down in order. On this
    // kernel (`--vm never`): on one without vrf the demo would otherwise
    // run in the VM, where its namespaces are not this host's to check.
    let mut demo = Command::new(LAB)
        .args([
            "demo", "--vm", "never", "--api", "v1", "--prefix", &prefix, "--agent",
        ])
        .arg(agent())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = demo.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        let step = line.starts_with("== step 1:");
        seen.push(line);
        if step {
            process::signal(demo.id() as i32, libc::SIGINT);
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("== step 1:")),
        "the demo ended before step 1: {seen:#?}"
    );
    let st = demo.wait().unwrap();
    assert!(!st.success(), "an interrupted demo reports failure");
    assert_nothing_left(&prefix);
}
