//! The Debian package on this machine: `./dev package` builds it (cargo-deb,
//! lintian without errors or warnings), `dpkg -i` installs it, an upgrade to
//! a newer version keeps an edited configuration, and remove and purge leave
//! nothing behind.
//!
//! It installs system-wide, so it needs root, takes a lock file that every
//! checkout's run shares (runs wait for each other), refuses to start when
//! the package is already installed, and purges the package when it ends,
//! also when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PACKAGE: &str = "metal-switchd";
const LOCK: &str = "/run/lock/metal-switchd-package-test.lock";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sh(cmd: &mut Command) -> Output {
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

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg's status of the package: "" when dpkg does not know it.
fn dpkg_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", PACKAGE])
        .output()
        .unwrap();
    if out.status.success() {
        text(&out)
    } else {
        String::new()
    }
}

/// An exclusive lock on [`LOCK`], held until dropped (flock: released by
/// the kernel when the process dies, so a crashed run never blocks the next).
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    fn take() -> Lock {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .unwrap_or_else(|e| panic!("cannot open {LOCK}: {e}"));
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {LOCK}: {}", std::io::Error::last_os_error());
        Lock { _file: f }
    }
}

/// Purges the package when dropped: the machine is left as it was found.
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", PACKAGE])
            .stdin(Stdio::null())
            .output();
    }
}

fn build(out_dir: &Path, extra: &[&str]) -> (PathBuf, String) {
    let out = sh(Command::new(manifest_dir().join("dev"))
        .arg("package")
        .arg("--output")
        .arg(out_dir)
        .args(extra)
        .current_dir(manifest_dir()));
    let stdout = text(&out);
    let deb = PathBuf::from(stdout.lines().last().unwrap().trim());
    assert!(deb.is_file(), "{stdout}");
    (deb, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The installed binary with a clean environment.
fn installed(args: &[&str]) -> Output {
    sh(Command::new("/usr/bin/metal-switchd")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(args))
}

const CONFFILE: &str = "/etc/metal-switchd/config.toml";
const UNIT: &str = "/usr/lib/systemd/system/metal-switchd.service";
const WANTS: &str = "/etc/systemd/system/sonic.target.wants/metal-switchd.service";
const MASK: &str = "/etc/systemd/system/metal-switchd.service";

#[test]
fn build_install_upgrade_remove_purge() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the package test installs system-wide: run it as root (./dev test)"
    );
    let _lock = Lock::take();
    let before = dpkg_status();
    assert!(
        before.is_empty() || before.starts_with("unknown") || before.contains("not-installed"),
        "{PACKAGE} is already on this machine ({before}); this test installs and purges it: \
         remove it first with `dpkg --purge {PACKAGE}`"
    );
    let _purge = PurgeOnDrop;
    let dir = tempfile::tempdir().unwrap();
    let (deb1, lintian) = build(&dir.path().join("v1"), &[]);
    eprintln!("{lintian}");
    let name = deb1.file_name().unwrap().to_string_lossy().into_owned();
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        name,
        format!(
            "{PACKAGE}_{version}_{}.deb",
            text(&sh(Command::new("dpkg").arg("--print-architecture"))).trim()
        )
    );

    // what the package holds
    let listing = text(&sh(Command::new("dpkg-deb").arg("-c").arg(&deb1)));
    for path in [
        "./usr/bin/metal-switchd",
        "./usr/lib/systemd/system/metal-switchd.service",
        "./etc/metal-switchd/config.toml",
        "./usr/share/doc/metal-switchd/copyright",
        "./usr/share/doc/metal-switchd/changelog.Debian.gz",
        "./usr/share/doc/metal-switchd/README.md",
        "./usr/share/man/man1/metal-switchd.1.gz",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in\n{listing}"
        );
    }
    // Crash points (src/crash.rs) exist only in the tests' build: the
    // packaged binary has neither the points nor their names.
    let x = dir.path().join("x");
    sh(Command::new("dpkg-deb").arg("-x").arg(&deb1).arg(&x));
    let packaged = std::fs::read(x.join("usr/bin/metal-switchd")).unwrap();
    for marker in support::process::CRASH_MARKERS {
        assert!(
            !support::process::contains(&packaged, marker),
            "the packaged metal-switchd contains {marker:?}: crash points must stay out of it"
        );
    }
    let conffiles = text(&sh(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb1)
        .arg("conffiles")));
    assert_eq!(conffiles, format!("{CONFFILE}\n"));

    // install: files in place, the unit enabled; not started (no systemd here)
    sh(Command::new("dpkg").arg("-i").arg(&deb1));
    assert_eq!(dpkg_status(), format!("install ok installed {version}"));
    let mode = std::fs::metadata("/usr/bin/metal-switchd")
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read_to_string(UNIT).unwrap(),
        include_str!("../systemd/metal-switchd.service")
    );
    assert_eq!(
        std::fs::read_to_string(CONFFILE).unwrap(),
        include_str!("../debian/config.toml")
    );
    // (deb-systemd-helper links to /lib/systemd/system, the same directory
    // as /usr/lib/systemd/system on a merged-/usr system)
    assert_eq!(
        std::fs::canonicalize(WANTS).unwrap(),
        std::fs::canonicalize(UNIT).unwrap(),
        "enabled under sonic.target"
    );
    if !Path::new("/run/systemd/system").exists() {
        assert!(
            !Path::new("/run/metal-switchd").exists(),
            "started without systemd?"
        );
    }
    let v = text(&installed(&["--version"]));
    assert_eq!(
        v,
        format!(
            "metal-switchd {} ({})\n",
            env!("CARGO_PKG_VERSION"),
            metal_switchd::REVISION
        )
    );
    let checked = text(&installed(&["check-config"]));
    assert!(
        checked.starts_with("# configuration is valid\n"),
        "{checked}"
    );

    // an operator's edit survives an upgrade
    let mut edited = std::fs::read_to_string(CONFFILE).unwrap();
    edited.push_str("log_format = \"json\"\n");
    std::fs::write(CONFFILE, &edited).unwrap();
    let newer = format!("{}-2", env!("CARGO_PKG_VERSION"));
    let (deb2, _) = build(
        &dir.path().join("v2"),
        &["--no-build", "--deb-version", &newer],
    );
    sh(Command::new("dpkg").arg("-i").arg(&deb2));
    assert_eq!(dpkg_status(), format!("install ok installed {newer}"));
    assert_eq!(std::fs::read_to_string(CONFFILE).unwrap(), edited);
    let checked = text(&installed(&["check-config"]));
    assert!(checked.contains("log_format = \"json\""), "{checked}");
    assert!(std::fs::read_link(WANTS).is_ok(), "still enabled");

    // remove: program gone, configuration kept, unit masked until purge
    sh(Command::new("dpkg").args(["-r", PACKAGE]));
    assert!(
        dpkg_status().starts_with("deinstall ok config-files"),
        "{}",
        dpkg_status()
    );
    for gone in ["/usr/bin/metal-switchd", UNIT] {
        assert!(!Path::new(gone).exists(), "{gone} left after remove");
    }
    assert_eq!(std::fs::read_to_string(CONFFILE).unwrap(), edited);

    // purge: nothing left
    sh(Command::new("dpkg").args(["-P", PACKAGE]));
    let after = dpkg_status();
    assert!(
        after.is_empty() || after.contains("not-installed"),
        "{after}"
    );
    for gone in [
        "/etc/metal-switchd",
        WANTS,
        MASK,
        "/usr/share/doc/metal-switchd",
    ] {
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} left after purge"
        );
    }
    let state = Path::new("/var/lib/systemd/deb-systemd-helper-enabled");
    if state.exists() {
        let left = Command::new("grep")
            .args(["-rl", "metal-switchd"])
            .arg(state)
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "{}", text(&left));
    }
}
