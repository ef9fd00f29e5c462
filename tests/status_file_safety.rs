//! Issue 22, item 8: the status file is read and written safely. `status`
//! reads through `crate::files` (a FIFO in its place is refused without
//! blocking), and the daemon writes it through a temporary file created
//! with `O_EXCL|O_NOFOLLOW` under an unpredictable name (a link planted at
//! the name the agent used to use is never followed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use metal_switchd::report::status::Status;

/// Only catches a `status` that never returns.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn status_does_not_block_on_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let fifo = state.join("status.json");
    support::process::mkfifo(&fifo);
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("hostname = \"r01leaf01\"\nstate_directory = {state:?}\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_clear()
        .arg("--config")
        .arg(&config)
        .arg("status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = support::process::exit_within(&mut child, HANG)
        .unwrap_or_else(|| panic!("`metal-switchd status` blocked on a FIFO for {HANG:?}"));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{err}");
    assert!(err.contains("a FIFO"), "{err}");
}

#[test]
fn the_status_temporary_file_never_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me\n").unwrap();
    // The name the agent used to write through (predictable: its pid).
    let old_name = dir
        .path()
        .join(format!(".status.json.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &old_name).unwrap();
    let mut st = Status::new(std::process::id(), SystemTime::now());
    let path = st.write_atomic(dir.path(), SystemTime::now()).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_file()
    );
    let back = Status::read(dir.path()).unwrap();
    assert_eq!(back.agent.pid, std::process::id());
    // Only the status file and what the test put there.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![
        "status.json".to_owned(),
        "victim".to_owned(),
        format!(".status.json.{}.tmp", std::process::id()),
    ];
    expected.sort();
    assert_eq!(names, expected);
}
