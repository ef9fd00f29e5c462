//! Issue 20: `render frr` per SONiC flavour against golden files, and the
//! golden files against the flavours' own start-up files.
//!
//! For each known flavour (`metal_switchd::flavour::Profile`) the lab's
//! firewall case (`testdata/frr/render/firewalls/`) is rendered against the
//! flavour's leaf01 CONFIG_DB; the result must equal
//! `testdata/frr/flavours/<flavour>.frr.conf`, both with `--flavour` and
//! with the flavour detected from the switch's facts (its sonic_version.yml
//! and the snapshot's DEVICE_METADATA). The golden files are written from
//! independent sources, and this test checks them against those sources:
//!
//! - the body is the reviewed rendering of that case
//!   (`tests/snapshots/frr_render__frr_conf@firewalls__switch.json.snap`);
//! - the zebra lines are exactly the ones the flavour's bgp start script
//!   appends: for community releases read from sonic-buildimage's
//!   `docker_init.sh` (`write_default_zebra_config`, copies in
//!   `testdata/sonic/frr-startup/<release>/`), with the fpm lines present
//!   exactly where `supervisord.conf.j2` loads `dplane_fpm_sonic`; for Dell
//!   4.x and Edgecore 202211 none (issue 20; mini-lab #315: "Dell and
//!   Broadcom are still on `fpm` … `fpm address 127.0.0.1` wouldn't be
//!   accepted on switches running with `-M fpm`", the Enterprise builds
//!   "based on upstream SONiC 202211 from before the switch to
//!   `dplane_fpm_sonic`");
//! - mini-lab's template for community ≥ 202411 (mini-lab #315,
//!   `files/sonic_frr_with_fpm.tpl`) adds `fpm address 127.0.0.1`: present;
//! - FRR accepts every golden file (`vtysh --dryrun`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use metal_switchd::flavour::Profile;
use metal_switchd_lab::{fixtures, flavours};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The community release of a profile, if it is one.
fn release(p: Profile) -> Option<&'static str> {
    match p {
        Profile::Community202311 => Some("202311"),
        Profile::Community202411 => Some("202411"),
        Profile::Community202505 => Some("202505"),
        Profile::Dell44 | Profile::Dell45 | Profile::Edgecore202211 => None,
    }
}

/// The lines `write_default_zebra_config` of a release's `docker_init.sh`
/// appends (`echo "LINE" >> $FILE_NAME`).
fn start_script_lines(release: &str) -> BTreeSet<String> {
    let text = read(&root().join(format!(
        "testdata/sonic/frr-startup/{release}/docker_init.sh"
    )));
    let body = text
        .split("write_default_zebra_config()\n{")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .unwrap_or_else(|| panic!("{release}: no write_default_zebra_config in docker_init.sh"));
    body.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("echo \"")?;
            let (line, tail) = rest.split_once('"')?;
            tail.contains(">> $FILE_NAME").then(|| line.to_owned())
        })
        .collect()
}

/// The `-M` modules of zebra in a release's `supervisord.conf.j2`.
fn zebra_modules(release: &str) -> Vec<String> {
    let text = read(&root().join(format!(
        "testdata/sonic/frr-startup/{release}/supervisord.conf.j2"
    )));
    let cmd = text
        .lines()
        .find(|l| l.starts_with("command=/usr/lib/frr/zebra"))
        .unwrap_or_else(|| panic!("{release}: no zebra command"));
    let words: Vec<&str> = cmd.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "-M")
        .map(|w| w[1].to_owned())
        .collect()
}

/// The zebra lines a flavour needs, from its sources (see the module doc).
fn expected_lines(p: Profile) -> BTreeSet<String> {
    match release(p) {
        Some(r) => {
            let lines = start_script_lines(r);
            let fpm = zebra_modules(r).iter().any(|m| m == "dplane_fpm_sonic");
            assert_eq!(
                lines.contains("fpm address 127.0.0.1"),
                fpm,
                "{r}: the start script appends the fpm address exactly where zebra loads \
                 dplane_fpm_sonic"
            );
            lines
        }
        None => BTreeSet::new(),
    }
}

/// The reviewed rendering of the firewall case (flavour-neutral).
fn reviewed_body() -> String {
    let snap =
        read(&root().join("tests/snapshots/frr_render__frr_conf@firewalls__switch.json.snap"));
    let body = snap.splitn(3, "---\n").nth(2).expect("snapshot body");
    body.to_owned()
}

fn golden(p: Profile) -> PathBuf {
    root().join(format!("testdata/frr/flavours/{}.frr.conf", p.name()))
}

/// `render frr` of the firewall case on `profile`'s leaf01.
fn render(p: Profile, flavour_arg: bool, dir: &Path) -> String {
    let case = root().join("testdata/frr/render/firewalls");
    let configdb = dir.join(format!("{}.config_db.json", p.name()));
    let base = flavours::base_config(p, "leaf01").unwrap();
    std::fs::write(&configdb, fixtures::with_ports(&base).unwrap()).unwrap();
    let version = dir.join(format!("{}.sonic_version.yml", p.name()));
    std::fs::write(&version, p.sonic_version_yml()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metal-switchd"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("METAL_SWITCHD_SONIC_VERSION_FILE", &version)
        // FRR is not asked: the flavours here are recognised without it.
        .env("METAL_SWITCHD_VTYSH_PATH", "/nonexistent/vtysh")
        .arg("--config")
        .arg(case.join("config.toml"))
        .args(["render", "frr"]);
    if flavour_arg {
        cmd.args(["--flavour", p.name()]);
    }
    cmd.arg("--switch")
        .arg(case.join("switch.json"))
        .arg("--configdb")
        .arg(&configdb);
    let out = support::process::succeeded(&mut cmd, &p.to_string());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn render_frr_matches_each_flavours_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let body = reviewed_body();
    for p in Profile::ALL {
        let want = read(&golden(p));
        // 1. The golden file is the reviewed body plus the flavour's lines.
        let lines: Vec<&str> = want.lines().collect();
        let extra: BTreeSet<String> = lines
            .iter()
            .filter(|l| !body.lines().any(|b| b == **l))
            .map(|l| l.to_string())
            .collect();
        let mut expected = expected_lines(p);
        if !expected.is_empty() {
            expected.insert(
                "! SONiC's bgp start script adds these zebra lines; a reload without them would \
                 remove them."
                    .to_owned(),
            );
        }
        assert_eq!(extra, expected, "{p}: lines beyond the reviewed body");
        let without: String = lines
            .iter()
            .filter(|l| !expected.contains(**l))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(without, body, "{p}: the rest is the reviewed body");
        if matches!(p, Profile::Community202411 | Profile::Community202505) {
            // mini-lab #315's template adds this line on these releases.
            assert!(lines.contains(&"fpm address 127.0.0.1"), "{p}");
        }
        // 2. FRR accepts it.
        let f = dir.path().join(format!("{}.check.conf", p.name()));
        std::fs::write(&f, &want).unwrap();
        let out = Command::new("vtysh")
            .arg("--dryrun")
            .arg("-f")
            .arg(&f)
            .output()
            .expect("vtysh (apt-get install -y frr)");
        assert!(
            out.status.success(),
            "{p}: vtysh --dryrun rejects the golden file: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // 3. The agent renders it: for the flavour named, and for the
        // flavour detected from the switch's facts.
        assert_eq!(
            render(p, true, dir.path()),
            want,
            "{p}: render frr --flavour"
        );
        assert_eq!(
            render(p, false, dir.path()),
            want,
            "{p}: render frr (detected)"
        );
    }
}

/// The lab's stand-in appends what the start script appends (`flavours`
/// module); the same lines as `docker_init.sh` of each release.
#[test]
fn the_stand_in_appends_what_each_start_script_appends() {
    for p in Profile::ALL {
        let lab: BTreeSet<String> = flavours::start_script_lines(p)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(lab, expected_lines(p), "{p}");
    }
}

/// An unknown flavour (no sonic_version.yml) gets the community defaults
/// (the newest community release's lines) and a warning naming why.
#[test]
fn an_unknown_flavour_renders_the_community_defaults_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let case = root().join("testdata/frr/render/firewalls");
    let configdb = dir.path().join("c.json");
    std::fs::write(&configdb, fixtures::leaf01_with_ports().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env(
            "METAL_SWITCHD_SONIC_VERSION_FILE",
            dir.path().join("none.yml"),
        )
        .env("METAL_SWITCHD_VTYSH_PATH", "/nonexistent/vtysh")
        .arg("--config")
        .arg(case.join("config.toml"))
        .args(["render", "frr", "--switch"])
        .arg(case.join("switch.json"))
        .arg("--configdb")
        .arg(&configdb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, read(&golden(Profile::Community202505)));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sonic_version.yml does not exist"), "{err}");
    // An unknown name is refused with the known ones.
    let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_clear()
        .arg("--config")
        .arg(case.join("config.toml"))
        .args(["render", "frr", "--flavour", "sonic-9", "--switch"])
        .arg(case.join("switch.json"))
        .arg("--configdb")
        .arg(&configdb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"sonic-9\"") && err.contains("community-202411"),
        "{err}"
    );
}

/// Issue 20: `check-config` shows the flavour of the switch it runs on
/// (sonic_version.yml, CONFIG_DB's DEVICE_METADATA|localhost through
/// database_config, FRR's version), and refuses — exit 2, the setting named
/// — a routing configuration mode in which SONiC writes frr.conf itself.
#[test]
fn check_config_shows_the_flavour_and_refuses_unified_by_name() {
    use metal_switchd_lab::redis_server::CONFIG_DB;
    use metal_switchd_lab::seed::write_entries;
    let redis = support::start_redis();
    let dbconf = redis.write_database_config().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let version = dir.path().join("sonic_version.yml");
    std::fs::write(&version, Profile::Community202411.sonic_version_yml()).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"leaf01\"\ndatabase_config = {:?}\nsonic_version_file = {:?}\n\
             vtysh_path = \"/nonexistent/vtysh\"\n",
            dbconf.display().to_string(),
            version.display().to_string()
        ),
    )
    .unwrap();
    let check = |mode: &str| {
        write_entries(
            &redis,
            CONFIG_DB,
            &[(
                "DEVICE_METADATA|localhost".to_owned(),
                vec![("docker_routing_config_mode".to_owned(), mode.to_owned())],
            )],
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .env_clear()
            .arg("--config")
            .arg(&config)
            .arg("check-config")
            .output()
            .unwrap()
    };
    let out = check("split-unified");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for want in [
        "# SONiC flavour of this switch: community 202411",
        "#   debian                      12 (bookworm), glibc 2.36",
        "#   docker_routing_config_mode  split-unified",
        "#   fpm_module                  dplane_fpm_sonic",
        "#   frr_lines                   no zebra nexthop kernel enable; fpm address 127.0.0.1; no fpm use-next-hop-groups",
        "# warning: FRR's version cannot be read: cannot run /nonexistent/vtysh",
    ] {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
    let out = check("unified");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(
        text.contains("# REFUSED: FRR is not managed on this switch"),
        "{text}"
    );
    assert!(
        err.contains("docker_routing_config_mode") && err.contains("is `unified`"),
        "{err}"
    );
}
