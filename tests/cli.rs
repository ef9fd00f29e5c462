//! The command line, offline: `plan` and `render configdb` from a
//! `config_db.json` snapshot, output formats, `check-config`, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metal_switchd_lab::fixtures;
use metal_switchd_lab::seed::port_entries;
use serde_json::{Map, Value};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    /// leaf01's base configuration plus its PORT table as one config_db.json,
    /// the lab's agent configuration and both wire versions of its state.
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let mut snap: Map<String, Value> = serde_json::from_str(fixtures::LEAF01_CONFIG).unwrap();
        let mut ports = Map::new();
        for (k, f) in port_entries(fixtures::MINI_LAB_PORT_MAP).unwrap() {
            let fields: Map<String, Value> =
                f.into_iter().map(|(a, b)| (a, Value::String(b))).collect();
            ports.insert(
                k.trim_start_matches("PORT|").to_owned(),
                Value::Object(fields),
            );
        }
        snap.insert("PORT".into(), Value::Object(ports));
        std::fs::write(
            dir.path().join("config_db.json"),
            Value::Object(snap).to_string(),
        )
        .unwrap();
        std::fs::write(dir.path().join("agent.toml"), fixtures::LEAF01_AGENT_CONFIG).unwrap();
        let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/switches");
        for f in ["leaf01.v1.json", "leaf01.v2.json"] {
            std::fs::copy(lab.join(f), dir.path().join(f)).unwrap();
        }
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .current_dir(self.dir.path())
            .env_remove("METAL_SWITCHD_CONFIG")
            .args(["--config", "agent.toml"])
            .args(args)
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn plan_from_a_snapshot_is_read_only_and_readable() {
    let f = Files::new();
    let out = stdout(&f.run(&[
        "plan",
        "--switch",
        "leaf01.v1.json",
        "--configdb",
        "config_db.json",
    ]));
    assert!(
        out.starts_with("254 change(s) in 3 phase(s), 254 redis command(s):"),
        "{out}"
    );
    assert!(out.contains("phase 1/3: detach ports, create VLANs and VXLAN maps"));
    assert!(out.contains("  + VRF|Vrf104009 {fallback=false, vni=104009}"));
    assert!(out.contains("  ~ PORT|Ethernet4 set {admin_status=down, mtu=9000}"));
    assert!(out.contains("    STATE_DB VRF_TABLE|Vrf104009 present (vrfmgrd)"));
}

#[test]
fn v1_and_v2_documents_of_one_switch_plan_the_same() {
    let f = Files::new();
    let plan = |file: &str| -> Value {
        let o = f.run(&[
            "plan",
            "--switch",
            file,
            "--configdb",
            "config_db.json",
            "--format",
            "json",
        ]);
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let one = plan("leaf01.v1.json");
    let two = plan("leaf01.v2.json");
    assert_eq!(one["api"], "v1");
    assert_eq!(two["api"], "v2");
    assert_eq!(one["plan"], two["plan"]);
    assert_eq!(one["plan"]["phases"].as_array().unwrap().len(), 3);
    let first = &one["plan"]["phases"][0];
    assert_eq!(first["stage"], "detach");
    assert_eq!(
        first["changes"][0],
        serde_json::json!({"key": "PORT|Ethernet0", "op": "update", "set": {"mtu": "9216"}})
    );
}

#[test]
fn render_configdb_prints_the_owned_target() {
    let f = Files::new();
    let out = stdout(&f.run(&[
        "render",
        "configdb",
        "--switch",
        "leaf01.v1.json",
        "--configdb",
        "config_db.json",
    ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    // Only the owned PORT fields, never the rest of the port.
    assert_eq!(v["PORT"]["Ethernet0"], serde_json::json!({"mtu": "9216"}));
    insta::assert_json_snapshot!("render_configdb_leaf01", v);
}

#[test]
fn check_config_prints_the_effective_configuration_without_secrets() {
    let f = Files::new();
    let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(f.dir.path())
        .env("METAL_CORE_HMAC_KEY", "very-secret")
        .env("METAL_CORE_ASN", "4200000099")
        .args(["--config", "agent.toml", "check-config"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("asn = 4200000099"), "{out}");
    assert!(out.contains("hmac_key = \"***\""), "{out}");
    assert!(!out.contains("very-secret"));
}

#[test]
fn bad_configuration_and_usage_exit_2() {
    let f = Files::new();
    std::fs::write(f.path("bad.toml"), "asn = 1\nspine_uplink = []\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(f.dir.path())
        .args(["--config", "bad.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown key \"spine_uplink\""));
    // A --config that does not exist is an error (the default path is
    // optional). One --config only: `f.run` passes its own, and a second
    // one would be refused by the argument parser before any file is read.
    let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(f.dir.path())
        .env_remove("METAL_SWITCHD_CONFIG")
        .args(["--config", "nope.toml", "check-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read the configuration file nope.toml: it does not exist"),
        "the error is about the missing file: {err}"
    );
    assert!(!err.contains("cannot be used multiple times"), "{err}");
    // apply needs --once (the continuous loop is `run`).
    let o = f.run(&["apply", "--switch", "leaf01.v1.json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--once"), "{err}");
    // A switch document that is neither version.
    std::fs::write(f.path("odd.json"), r#"{"id": "x", "nics": []}"#).unwrap();
    let o = f.run(&[
        "plan",
        "--switch",
        "odd.json",
        "--configdb",
        "config_db.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pass --api v1 or --api v2"));
}

#[test]
fn unreachable_redis_is_a_runtime_error() {
    let f = Files::new();
    std::fs::write(
        f.path("db.json"),
        metal_switchd_lab::redis_server::database_config_json(&f.path("no-such.sock")),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(f.dir.path())
        .env("METAL_SWITCHD_DATABASE_CONFIG", f.path("db.json"))
        .args([
            "--config",
            "agent.toml",
            "apply",
            "--once",
            "--switch",
            "leaf01.v1.json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot connect to CONFIG_DB (redis instance redis at"),
        "{err}"
    );
}

#[test]
fn a_snapshot_without_ports_is_one_problem_not_one_per_port() {
    let f = Files::new();
    std::fs::write(f.path("no-ports.json"), fixtures::LEAF01_CONFIG).unwrap();
    let o = f.run(&[
        "render",
        "frr",
        "--switch",
        "leaf01.v1.json",
        "--configdb",
        "no-ports.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("CONFIG_DB PORT: the PORT table is empty"),
        "{err}"
    );
    assert!(err.contains("(1 problem"), "{err}");
    assert!(!err.contains("is not in CONFIG_DB PORT"), "{err}");
}

/// Run the binary with `args` from the repository root (as the README's
/// commands are written), ending it if it has not ended after a minute.
fn run_in_repo(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("METAL_SWITCHD_CONFIG")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("metal-switchd {args:?} did not end within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

const LEAF01_SNAPSHOT: &str = "testdata/sonic/mini-lab-leaf01-dell-4.5.1-with-ports.config_db.json";

/// Issue 9, finding 5: the README's offline commands run with files of the
/// repository, and the leaf01 snapshot is what its two sources make.
#[test]
fn readme_offline_commands_work_with_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(LEAF01_SNAPSHOT)).unwrap())
            .unwrap();
    let generated: Value = serde_json::from_str(&fixtures::leaf01_with_ports().unwrap()).unwrap();
    assert_eq!(snapshot, generated, "{LEAF01_SNAPSHOT} is stale");
    assert_eq!(snapshot["PORT"].as_object().unwrap().len(), 122);
    let mut commands = 0;
    for line in readme.lines() {
        let Some(cmd) = line.strip_prefix("metal-switchd ") else {
            continue;
        };
        let cmd = cmd.split("  #").next().unwrap().trim();
        if !cmd.contains("--configdb testdata/") {
            continue;
        }
        commands += 1;
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let out = run_in_repo(&args);
        assert!(
            out.status.success(),
            "README: metal-switchd {cmd}: exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "README: metal-switchd {cmd}");
    }
    assert!(commands >= 3, "the README has {commands} offline commands");
}

/// Issue 9, findings 2 and 5: `--configdb` must name a regular UTF-8 file
/// within max_snapshot_bytes; anything else is invalid input (exit 2),
/// refused without blocking or reading an endless file.
#[test]
fn configdb_snapshots_are_read_bounded() {
    let f = Files::new();
    let fifo = f.path("fifo.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(f.path("bin.json"), b"{\"PORT\": \xff}").unwrap();
    std::fs::write(
        f.path("dup.json"),
        r#"{"VRF": {"Vrf1": {"vni": "1"}}, "VRF": {"Vrf2": {"vni": "2"}}}"#,
    )
    .unwrap();
    std::fs::create_dir(f.path("dir.json")).unwrap();
    std::fs::write(
        f.path("small.toml"),
        format!(
            "{}\nmax_snapshot_bytes = 4096\n",
            fixtures::LEAF01_AGENT_CONFIG
        ),
    )
    .unwrap();
    let config = f.path("agent.toml");
    let small = f.path("small.toml");
    let switch = f.path("leaf01.v1.json");
    let snapshot = f.path("config_db.json");
    for (config, configdb, want) in [
        (
            &config,
            Path::new("/dev/zero"),
            "CONFIG_DB snapshot /dev/zero: it is a character device, not a regular file; pass --configdb",
        ),
        (
            &config,
            fifo.as_path(),
            "it is a FIFO (named pipe), not a regular file",
        ),
        (
            &config,
            f.path("dir.json").as_path(),
            "it is a directory, not a regular file",
        ),
        (&config, f.path("nope.json").as_path(), "it does not exist"),
        (
            &config,
            f.path("bin.json").as_path(),
            "it is not UTF-8 text (invalid byte at offset 9)",
        ),
        (
            &config,
            f.path("dup.json").as_path(),
            "key \"VRF\" appears twice in one object",
        ),
        (
            &small,
            snapshot.as_path(),
            "larger than the limit of 4096 bytes (setting max_snapshot_bytes)",
        ),
    ] {
        let out = run_in_repo(&[
            "--config",
            config.to_str().unwrap(),
            "plan",
            "--switch",
            switch.to_str().unwrap(),
            "--configdb",
            configdb.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{configdb:?}: {err}");
        assert!(err.contains(want), "{configdb:?}: lacks {want:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

/// Issue 9, finding 5: `check-config` refuses what `plan` refuses in the
/// configuration, with the same message, both with exit code 2.
#[test]
fn check_config_and_plan_agree() {
    let f = Files::new();
    for (extra, want) in [
        (
            "hostname = \"leaf 01!\"",
            "hostname: \"leaf 01!\" is not an RFC 1123 host name",
        ),
        (
            "static_vrfs = [\"Vrf1\\nx\"]",
            "static VRF \"Vrf1\\nx\": \"Vrf1\\nx\" contains whitespace or a control character",
        ),
        ("asn = 0", "asn: 0 is not a valid ASN"),
        (
            "barrier_timeout = \"0s\"",
            "barrier_timeout must be longer than 0s",
        ),
        ("timeout = \"0s\"", "timeout must be longer than 0s"),
    ] {
        let mut config: toml::Table = toml::from_str(fixtures::LEAF01_AGENT_CONFIG).unwrap();
        config.extend(toml::from_str::<toml::Table>(extra).unwrap());
        let config = toml::to_string(&config).unwrap();
        std::fs::write(f.path("bad.toml"), config).unwrap();
        let mut errors = Vec::new();
        for args in [
            &["check-config"][..],
            &[
                "plan",
                "--switch",
                "leaf01.v1.json",
                "--configdb",
                "config_db.json",
            ][..],
        ] {
            let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
                .current_dir(f.dir.path())
                .args(["--config", "bad.toml"])
                .args(args)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(2), "{extra} {args:?}: {err}");
            assert!(
                err.contains(want),
                "{extra} {args:?}: lacks {want:?}: {err}"
            );
            assert!(o.stdout.is_empty(), "{extra} {args:?}");
            errors.push(err);
        }
        assert_eq!(errors[0], errors[1], "{extra}");
    }
}

/// Issue 9, finding 4: `check-config` with a syntax error on the hmac_key
/// line names the line and key, never the key's value.
#[test]
fn check_config_never_prints_the_hmac_key_of_a_syntax_error() {
    let f = Files::new();
    std::fs::write(
        f.path("secret.toml"),
        format!(
            "{}hmac_key = \"S3CR3T\" trailing\n",
            fixtures::LEAF01_AGENT_CONFIG
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .current_dir(f.dir.path())
        .args(["--config", "secret.toml", "check-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let line = fixtures::LEAF01_AGENT_CONFIG.lines().count() + 1;
    assert!(
        err.contains(&format!(
            "configuration file secret.toml: line {line}, column 21 (key hmac_key): not valid TOML"
        )),
        "{err}"
    );
    assert!(!err.contains("S3CR3T"), "{err}");
    assert!(o.stdout.is_empty());
}
