//! The Debian package in tests: built by `./dev package` (one build at a
//! time on this machine: a lock file every checkout shares) — in `./dev
//! test` once, before the tests, for all of them —, run with helpers that
//! fail with the command's output.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PACKAGE: &str = "metal-switchd";
/// Taken while a test installs the package system-wide.
pub const INSTALL_LOCK: &str = "/run/lock/metal-switchd-package-test.lock";
/// Taken while `./dev package` runs (it writes target/generated/).
pub const BUILD_LOCK: &str = "/run/lock/metal-switchd-package-build.lock";

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run `cmd`; panic with its output unless it succeeds.
pub fn sh(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The target the package ships for (`./dev package`).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// `cargo metadata` of the workspace, resolved for [`TARGET`] (another
/// platform's crates are never built, and an offline checkout need not
/// hold them).
pub fn cargo_metadata() -> serde_json::Value {
    let out = sh(Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", TARGET])
        .current_dir(manifest_dir()));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An exclusive lock on a file, held until dropped (flock: released by the
/// kernel when the process dies, so a crashed run never blocks the next).
pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    pub fn take(path: &str) -> Lock {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {path}: {}", std::io::Error::last_os_error());
        Lock { _file: f }
    }
}

/// The package `./dev test` built before the tests ran (its path): the one
/// release build every package test shares.
pub const PREBUILT: &str = "DEV_TEST_DEB";

/// The package of this checkout: `./dev package --output OUT_DIR EXTRA…`
/// (with the tests' own build of metal-switchd-dist), or, without EXTRA,
/// the package `./dev test` built for all tests ([`PREBUILT`]). Its path
/// and what the build printed on stderr (lintian's verdict).
pub fn build(out_dir: &Path, extra: &[&str]) -> (PathBuf, String) {
    if let Some(deb) = std::env::var_os(PREBUILT).filter(|_| extra.is_empty()) {
        let deb = PathBuf::from(deb);
        assert!(
            deb.is_file(),
            "{PREBUILT}={}: no such package (./dev test sets it to what it built)",
            deb.display()
        );
        return (deb, format!("(built by ./dev test: {PREBUILT})"));
    }
    let _lock = Lock::take(BUILD_LOCK);
    let out = sh(Command::new(manifest_dir().join("dev"))
        .arg("package")
        .arg("--output")
        .arg(out_dir)
        .args(extra)
        .env("DEV_DIST_BIN", env!("CARGO_BIN_EXE_metal-switchd-dist"))
        .current_dir(manifest_dir()));
    let stdout = text(&out);
    let deb = PathBuf::from(stdout.lines().last().unwrap().trim());
    assert!(deb.is_file(), "{stdout}");
    (deb, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The architecture dpkg builds for (`amd64`).
pub fn architecture() -> String {
    text(&sh(Command::new("dpkg").arg("--print-architecture")))
        .trim()
        .to_owned()
}

/// Assert that this test runs as root (it installs or chroots).
pub fn assert_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "{what}: run it as root (./dev test)"
    );
}

/// dpkg's status of the package: "" when dpkg does not know it.
pub fn dpkg_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", PACKAGE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        text(&out)
    } else {
        String::new()
    }
}

/// Purges the package when dropped: the machine is left as it was found.
pub struct PurgeOnDrop;

impl PurgeOnDrop {
    /// Refuses to go on when the package is installed (a test that installs
    /// and purges it must not remove an operator's), then purges at the end.
    pub fn not_installed_yet() -> PurgeOnDrop {
        let before = dpkg_status();
        assert!(
            before.is_empty() || before.starts_with("unknown") || before.contains("not-installed"),
            "{PACKAGE} is already on this machine ({before}); this test installs and purges it: \
             remove it first with `dpkg --purge {PACKAGE}`"
        );
        PurgeOnDrop
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", PACKAGE])
            .stdin(Stdio::null())
            .output();
    }
}
