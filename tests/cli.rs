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
    // A --config that does not exist is an error (the default path is optional).
    let o = f.run(&["--config", "nope.toml", "check-config"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // apply needs --once (the continuous loop is `run`).
    let o = f.run(&["apply", "--switch", "leaf01.v1.json"]);
    assert_eq!(o.status.code(), Some(2));
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
