//! systemd/metal-switchd.service, checked by systemd's own tools:
//! `systemd-analyze verify` in a root tree with the built binary and
//! stand-ins of SONiC's units, and `systemd-analyze security --offline=true`
//! with the exposure score kept at or below 3.0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = include_str!("../systemd/metal-switchd.service");

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/metal-switchd.service")
}

fn systemd_analyze() -> Command {
    support::process::tool("systemd-analyze", "systemd")
}

/// `systemd-analyze verify` of the unit in the root tree `root`.
fn verify(root: &Path) -> std::process::Output {
    systemd_analyze()
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("metal-switchd.service")
        .output()
        .unwrap()
}

/// Values of `key=` in the unit (every occurrence, comments skipped).
fn values(key: &str) -> Vec<String> {
    UNIT.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

/// A root tree for `systemd-analyze verify --root`: the system's own units,
/// stand-ins of SONiC's units (which this machine does not have), the unit
/// under test and the binary it starts.
fn verify_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let sys = root.path().join("lib/systemd/system");
    let etc = root.path().join("etc/systemd/system");
    for d in [
        &sys,
        &etc,
        &root.path().join("usr/bin"),
        &root.path().join("bin"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg("/lib/systemd/system/.")
        .arg(&sys)
        .status()
        .unwrap();
    assert!(status.success());
    for u in ["database.service", "bgp.service", "syncd.service"] {
        std::fs::write(
            etc.join(u),
            format!(
                "[Unit]\nDescription=stand-in of SONiC's {u}\n[Service]\nExecStart=/bin/true\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(
        etc.join("sonic.target"),
        "[Unit]\nDescription=stand-in of SONiC's sonic.target\n",
    )
    .unwrap();
    std::fs::copy(unit_path(), sys.join("metal-switchd.service")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_metal-switchd"),
        root.path().join("usr/bin/metal-switchd"),
    )
    .unwrap();
    for b in ["kill", "true"] {
        std::fs::copy(Path::new("/bin").join(b), root.path().join("bin").join(b)).unwrap();
    }
    root
}

#[test]
fn verify_passes_without_a_word() {
    let root = verify_root();
    let out = verify(root.path());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    // the same check does catch a broken unit (an unknown key is only a warning)
    let broken = UNIT.replace("\nType=notify\n", "\nTpye=notify\n");
    std::fs::write(
        root.path().join("lib/systemd/system/metal-switchd.service"),
        broken,
    )
    .unwrap();
    let out = verify(root.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown key 'Tpye'"));
}

#[test]
fn security_exposure_is_at_most_3() {
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for metal-switchd.service:"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .rsplit(':')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("{line}");
    assert!(score <= 3.0, "{line}");
}

#[test]
fn the_unit_is_the_one_the_agent_expects() {
    assert_eq!(values("Type"), ["notify"]);
    assert_eq!(values("ExecStart"), ["/usr/bin/metal-switchd run"]);
    assert_eq!(values("Restart"), ["on-failure"]);
    assert_eq!(values("WatchdogSec").len(), 1);
    let after = values("After").join(" ");
    for u in ["database.service", "bgp.service"] {
        assert!(after.split(' ').any(|a| a == u), "After= lacks {u}");
    }
    assert!(values("EnvironmentFile").contains(&"-/etc/default/metal-core".to_owned()));
    // the status file lands where `metal-switchd status` looks by default
    let runtime = values("RuntimeDirectory");
    assert_eq!(runtime.len(), 1);
    let default = metal_switchd::config::Config::default();
    assert_eq!(default.state_directory, Path::new("/run").join(&runtime[0]));
    // FRR's directory is writable: the agent installs frr.conf there
    let frr_dir = default.frr_config.parent().unwrap().display().to_string();
    assert!(values("ReadWritePaths").contains(&format!("-{frr_dir}")));
    // The default token file's directory too: the agent renews the token
    // in place (/var/run is /run).
    let token_dir = default.metal_apiserver_token_file.parent().unwrap();
    let token_dir = Path::new("/run").join(token_dir.strip_prefix("/var/run").unwrap());
    assert!(values("ReadWritePaths").contains(&format!("-{}", token_dir.display())));
    assert_eq!(
        values("RestrictAddressFamilies"),
        ["AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET"]
    );
}

/// metal-core's limits (metal-roles `partition/roles/metal-core/tasks/main.yaml`:
/// `systemd_docker_memory: 1024m`, `systemd_docker_cpu_quota: 10000` per
/// `systemd_docker_cpu_period: 50000`), as systemd reads them.
#[test]
fn resource_limits_are_metal_cores() {
    assert_eq!(values("MemoryMax"), ["1G"], "1024m: 1 GiB");
    assert_eq!(values("CPUQuota"), ["20%"], "10000 µs per 50000 µs: 20 %");
    // systemd accepts them: an impossible value is refused by the same check
    let root = verify_root();
    let unit = root.path().join("lib/systemd/system/metal-switchd.service");
    let out = verify(root.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&unit, UNIT.replace("CPUQuota=20%", "CPUQuota=twenty")).unwrap();
    let out = verify(root.path());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Invalid CPU quota 'twenty'"), "{said}");
}
