//! The command line, offline: `plan` and `render configdb` from a
//! `config_db.json` snapshot, output formats, `check-config`, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd::configdb::confirmed::Confirmed;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metal_switchd_lab::fixtures;
use serde_json::{Map, Value};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    /// leaf01's base configuration plus its PORT table as one config_db.json,
    /// the lab's agent configuration and both wire versions of its state.
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config_db.json"),
            fixtures::leaf01_with_ports().unwrap(),
        )
        .unwrap();
        // The writer lock in the test's own runtime directory.
        support::config::TestConfig::leaf01()
            .path("state_directory", &dir.path().join("state"))
            .write(&dir.path().join("agent.toml"));
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

    /// `command --switch SWITCH --configdb config_db.json EXTRA`: an
    /// offline command on the snapshot.
    fn offline(&self, command: &[&str], switch: &str, extra: &[&str]) -> Output {
        let mut args = command.to_vec();
        args.extend(["--switch", switch, "--configdb", "config_db.json"]);
        args.extend(extra);
        self.run(&args)
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
    let out = stdout(&f.offline(&["plan"], "leaf01.v1.json", &[]));
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
        let o = f.offline(&["plan"], file, &["--format", "json"]);
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
    let out = stdout(&f.offline(&["render", "configdb"], "leaf01.v1.json", &[]));
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
    let o = f.offline(&["plan"], "odd.json", &[]);
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
    support::process::mkfifo(&fifo);
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

/// leaf01 converged: the repository's leaf01 snapshot with every change of
/// the plan for `lab/switches/leaf01.v1.json` applied (as SONiC holds it
/// after a successful `apply`), in config_db.json form. Tables the agent
/// does not read are kept as they are.
fn converged_leaf01_snapshot() -> Value {
    use metal_switchd::configdb::redis::apply_to_state;
    use metal_switchd::configdb::schema::Table;
    use metal_switchd::configdb::snapshot::parse_config_db_json;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(LEAF01_SNAPSHOT)).unwrap();
    let mut state = parse_config_db_json(LEAF01_SNAPSHOT, &text).unwrap();
    let doc = std::fs::read_to_string(root.join("lab/switches/leaf01.v1.json")).unwrap();
    let (_, desc) =
        metal_switchd::api::parse_switch_document("leaf01.v1.json", &doc, None).unwrap();
    let cfg = support::config::TestConfig::leaf01().build();
    let prepared =
        metal_switchd::reconcile::prepare(&desc, &cfg, &state, &Confirmed::assumed()).unwrap();
    assert!(prepared.plan.changes() > 0, "the base is already converged");
    for change in prepared.plan.iter_changes() {
        apply_to_state(&mut state, change);
    }
    assert!(
        metal_switchd::reconcile::prepare(&desc, &cfg, &state, &Confirmed::assumed())
            .unwrap()
            .plan
            .is_empty(),
        "applying the plan did not converge"
    );
    // config_db.json: the agent's tables from the converged state, the
    // others from the snapshot.
    let mut snap: Map<String, Value> = serde_json::from_str(&text).unwrap();
    snap.retain(|table, _| Table::from_name(table).is_none());
    for (key, fields) in state.sorted() {
        let table = snap
            .entry(key.table.name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let fields: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        table
            .as_object_mut()
            .unwrap()
            .insert(key.name.clone(), Value::Object(fields));
    }
    Value::Object(snap)
}

/// Issue 9, finding 3, the issue's own scenario: `plan` with a switch
/// document without nics against a converged leaf would plan the deletion
/// of every tenant VRF, VLAN, map and binding. Required: the document is
/// refused (exit 2, "lists no nics"), and nothing is planned, for `nics`
/// missing, null and empty, in both API versions (v2 omits an empty list).
#[test]
fn plan_refuses_a_switch_without_nics_against_a_converged_leaf() {
    let f = Files::new();
    let converged = converged_leaf01_snapshot();
    // What the converged leaf holds: the tenant VRFs of leaf01.v1.json.
    for vrf in ["Vrf104009", "Vrf104010"] {
        assert!(converged["VRF"].get(vrf).is_some(), "{vrf} missing");
    }
    assert!(converged["INTERFACE"].get("Ethernet1").is_some());
    std::fs::write(f.path("converged.json"), converged.to_string()).unwrap();
    // The valid document plans nothing against it.
    let out = stdout(&f.run(&[
        "plan",
        "--switch",
        "leaf01.v1.json",
        "--configdb",
        "converged.json",
    ]));
    assert!(out.starts_with("no changes"), "{out}");

    let v1: Value =
        serde_json::from_str(&std::fs::read_to_string(f.path("leaf01.v1.json")).unwrap()).unwrap();
    let v2: Value =
        serde_json::from_str(&std::fs::read_to_string(f.path("leaf01.v2.json")).unwrap()).unwrap();
    let mut docs: Vec<(String, Value)> = Vec::new();
    for (version, doc, obj) in [("v1", &v1, None), ("v2", &v2, Some("switch"))] {
        for (how, nics) in [
            ("missing", None),
            ("null", Some(Value::Null)),
            ("empty", Some(Value::Array(Vec::new()))),
        ] {
            let mut d = doc.clone();
            let o = match obj {
                Some(k) => d[k].as_object_mut().unwrap(),
                None => d.as_object_mut().unwrap(),
            };
            assert!(o.remove("nics").is_some());
            if let Some(n) = nics {
                o.insert("nics".into(), n);
            }
            docs.push((format!("{version}-nics-{how}.json"), d));
        }
    }
    for (name, doc) in &docs {
        std::fs::write(f.path(name), doc.to_string()).unwrap();
        for format in ["text", "json"] {
            let o = f.run(&[
                "plan",
                "--switch",
                name,
                "--configdb",
                "converged.json",
                "--format",
                format,
            ]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{name} {format}: {err}");
            // Nothing planned: no output in text, the error document in JSON.
            if format == "json" {
                let v: Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(
                    v.as_object()
                        .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()),
                    Some(vec!["error"]),
                    "{name} {format}: planned: {v}"
                );
            } else {
                assert!(
                    o.stdout.is_empty(),
                    "{name} {format}: planned: {}",
                    String::from_utf8_lossy(&o.stdout)
                );
            }
            assert!(
                err.contains("switch document: lists no nics (`nics` is missing, null or empty)"),
                "{name} {format}: {err}"
            );
            for deletion in ["- VRF|", "- VLAN|", "- VXLAN_TUNNEL_MAP|", "- INTERFACE|"] {
                assert!(!err.contains(deletion), "{name} {format}: {err}");
            }
        }
    }
}

/// Issue 9, finding 2 and docs/configuration.md "Input files": the redis
/// password file (`password_path` of an instance in database_config.json)
/// is a regular file of at most 64 KiB. A FIFO or a larger file is invalid
/// input (exit 2), refused before redis is contacted, with an error that
/// names the file, the reason and the instance; a usable file gets as far
/// as connecting (here: no redis, a runtime error, exit 1).
#[test]
fn unusable_redis_password_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let f = Files::new();
    let fifo = f.path("passwd-fifo");
    support::process::mkfifo(&fifo);
    let secret = |name: &str, content: &str| {
        let p = f.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let big = secret("passwd-big", &"p".repeat(64 * 1024 + 1));
    let good = secret("passwd-good", "lab-redis-password\n");
    // No redis listens on this socket: only the password decides exit 2.
    let socket = f.path("no-redis.sock");
    for (password, want, code) in [
        (
            &fifo,
            format!(
                "cannot read the redis password file {}: it is a FIFO (named pipe), not a \
                 regular file",
                fifo.display()
            ),
            2,
        ),
        (
            &big,
            format!(
                "cannot read the redis password file {}: it is larger than the limit of 65536 \
                 bytes",
                big.display()
            ),
            2,
        ),
        (&good, "(redis instance redis".to_owned(), 1),
    ] {
        let dbconfig = serde_json::json!({
            "INSTANCES": {"redis": {
                "hostname": "127.0.0.1", "port": 6379,
                "unix_socket_path": socket, "password_path": password,
            }},
            "DATABASES": {
                "APPL_DB": {"id": 0, "separator": ":", "instance": "redis"},
                "CONFIG_DB": {"id": 4, "separator": "|", "instance": "redis"},
                "STATE_DB": {"id": 6, "separator": "|", "instance": "redis"},
            },
        });
        std::fs::write(f.path("database_config.json"), dbconfig.to_string()).unwrap();
        std::fs::write(
            f.path("pw.toml"),
            format!(
                "{}\ndatabase_config = \"{}\"\n",
                fixtures::LEAF01_AGENT_CONFIG,
                f.path("database_config.json").display()
            ),
        )
        .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .current_dir(f.dir.path())
            .env_remove("METAL_SWITCHD_CONFIG")
            .args(["--config", "pw.toml", "plan", "--switch", "leaf01.v1.json"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{password:?}: {err}");
        assert!(o.stdout.is_empty(), "{password:?}");
        assert!(err.contains(&want), "{password:?}: lacks {want:?}: {err}");
        if code == 2 {
            assert!(
                err.contains("(password_path of instance redis)"),
                "{password:?}: {err}"
            );
        }
        assert!(!err.contains("pppp") && !err.contains("lab-redis-password"));
    }
}

/// Every option and sub-command says what it is for (issue 21 item 8):
/// walks clap's command tree, so a new option without help fails here.
#[test]
fn every_option_and_command_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() {
                missing.push(format!("{path} --{id}"));
            }
            if !arg.get_action().takes_values() {
                continue;
            }
            for v in arg.get_possible_values() {
                if !v.is_hide_set() && v.get_help().is_none() {
                    missing.push(format!("{path} --{id} {}", v.get_name()));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                missing.push(p.clone());
            }
            walk(sub, &p, missing);
        }
    }
    let mut missing = Vec::new();
    walk(
        &metal_switchd::cli::Cli::command(),
        "metal-switchd",
        &mut missing,
    );
    assert!(missing.is_empty(), "without help text: {missing:#?}");
}

/// `--format json` on every command that prints a result, and an error as
/// one JSON document there (issue 21 item 8).
#[test]
fn json_output_and_json_errors() {
    let f = Files::new();
    // check-config: the configuration as JSON.
    let o = f.run(&["check-config", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["config"]["hostname"], "leaf01", "{v}");
    assert!(v["api_version"].is_string(), "{v}");
    // render frr: the text inside a document.
    let o = f.offline(
        &["render", "frr"],
        "leaf01.v1.json",
        &["--flavour", "community-202411", "--format", "json"],
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["frr_conf"].as_str().unwrap().contains("router bgp"),
        "{v}"
    );
    // An error: one JSON document on stdout with the exit code, the text on
    // stderr as before.
    let o = f.offline(&["plan"], "missing.json", &["--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["error"]["exit_code"], 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.json"),
        "{v}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.json"));
    // The same error in text: nothing on stdout.
    let o = f.offline(&["plan"], "missing.json", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}
