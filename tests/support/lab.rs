//! A lab around a real `metal-switchd run`: a lab switch (redis + SONiC
//! stand-in), the lab API server (v2, bearer token) serving a desired state,
//! a network namespace for the agent, and a work directory holding the
//! agent's configuration, frr.conf (validated by `vtysh --dryrun`), the
//! status file and an FRR reload stand-in.
//!
//! The reload stand-in (`frr_reload = "exec"`) copies the file it is given
//! to `reloaded.conf` — what FRR "runs" — and appends a line with the
//! file's `cksum` to `reloads.log` ([`Lab::reloads`], [`cksum`]). While `reload-fail` exists in the directory it fails (if
//! the file holds a text: only for configurations containing it); when
//! `reload-hang` exists it removes it and hangs (once).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use metal_switchd::api::parse_switch_document;
use metal_switchd::spec::SwitchDesc;
use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, Call, Record, TokenGrant};
use serde_json::Value;

use super::Switch;
use super::agent::{AgentNetns, AgentProcess, wait_for};

pub const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-reliability-token.c2lnbmF0dXJl";
/// Long enough to only catch hangs.
/// The lab leaf01's ports a lab agent's namespace has: the tenant and PXE
/// ports of the lab's desired state.
pub const LAB_PORTS: &[&str] = &[
    "Ethernet0",
    "Ethernet1",
    "Ethernet2",
    "Ethernet3",
    "Ethernet4",
];

pub const HANG: Duration = Duration::from_secs(90);

const RELOAD_SCRIPT: &str = r#"#!/bin/sh
# FRR reload stand-in (tests/support/lab.rs).
dir=$(dirname "$0")
if [ -e "$dir/reload-fail" ] && { [ ! -s "$dir/reload-fail" ] || grep -qF "$(cat "$dir/reload-fail")" "$1"; }; then
    echo "frr-reload stand-in: reload refused (reload-fail)" >&2
    exit 1
fi
if [ -e "$dir/reload-hang" ]; then
    rm -f "$dir/reload-hang"
    exec sleep 600
fi
cp "$1" "$dir/reloaded.conf.tmp" && mv "$dir/reloaded.conf.tmp" "$dir/reloaded.conf"
echo "reloaded $(cksum < "$1")" >> "$dir/reloads.log"
"#;

/// A v1 switch document: the lab's leaf01 with these nics' `vrf` set
/// (`""` = unprovisioned); filters of tenant nics become `cidrs`. Without
/// the ports left to the operator (`super::model::UNMANAGED`): the agent
/// does not register them, so the API's switch has no nic for them (and
/// refuses a heartbeat that does not cover every nic it has).
pub fn leaf01_doc(vrfs: &[(&str, &str)]) -> String {
    let mut doc: Value =
        serde_json::from_str(metal_switchd_lab::fixtures::LEAF01_SWITCH_V1).unwrap();
    doc["nics"]
        .as_array_mut()
        .unwrap()
        .retain(|n| !super::model::UNMANAGED.contains(&n["name"].as_str().unwrap_or("")));
    for nic in doc["nics"].as_array_mut().unwrap() {
        let name = nic["name"].as_str().unwrap().to_owned();
        if let Some((_, vrf)) = vrfs.iter().find(|(n, _)| *n == name) {
            nic["vrf"] = (*vrf).into();
            if vrf.starts_with("vrf") {
                nic["filter"] = serde_json::json!({"cidrs": ["10.0.24.0/22"], "vnis": []});
            } else if vrf.is_empty() {
                nic["filter"] = Value::Null;
            }
        }
    }
    doc.to_string()
}

/// The desired state of a switch document.
pub fn desc_of(doc: &str) -> SwitchDesc {
    parse_switch_document("switch.json", doc, None).unwrap().1
}

pub struct Lab {
    pub sw: Switch,
    pub ns: AgentNetns,
    pub server: ApiServer,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The switch's id (the API's and the agent's).
    pub id: String,
}

impl Lab {
    /// A lab whose API serves `doc` (a v1 switch document); `extra` is added
    /// to the agent's configuration (TOML).
    pub fn new(sw: Switch, ports: &[&str], doc: &str, extra: &str) -> Lab {
        let ns = AgentNetns::new(ports);
        let server = ApiServer::start(ApiServerOptions {
            switches: vec![doc.to_owned()],
            partitions: vec!["mini-lab".into()],
            tokens: [(TOKEN.to_owned(), TokenGrant::Editor)].into(),
            listen: (ns.host_ip, 0).into(),
            ..ApiServerOptions::default()
        })
        .expect("lab API server");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("sonic_version.yml"),
            "build_version: 'SONiC.4.5.1-Enterprise_Base'\n",
        )
        .unwrap();
        let token = d.join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let reload = d.join("frr-reload.sh");
        std::fs::write(&reload, RELOAD_SCRIPT).unwrap();
        std::fs::set_permissions(&reload, std::fs::Permissions::from_mode(0o755)).unwrap();
        let settings = format!(
            "api_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}/\"\nmetal_apiserver_token_file = {:?}\n\
             reconfigure_switch = true\nreconfigure_switch_interval = \"1s\"\ntimeout = \"10s\"\n\
             management_interface = \"mgmt0\"\nsonic_version_file = {:?}\nbgp_neighbor_state_file = \"\"\n\
             api_retry_backoff = \"20ms\"\napi_retry_max_backoff = \"200ms\"\n\
             frr_reload = \"exec\"\nfrr_reload_path = {:?}\nfrr_reload_args = [\"{{file}}\"]\n\
             frr_reload_timeout = \"2s\"\n{extra}",
            server.base_url(),
            token.display().to_string(),
            d.join("sonic_version.yml").display().to_string(),
            reload.display().to_string(),
        );
        let config = sw.config_file(d, &settings);
        let id = serde_json::from_str::<Value>(doc).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Lab {
            sw,
            ns,
            server,
            dir,
            config,
            id,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Rewrite the agent's configuration file: `f` gets its TOML text.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, f(text)).unwrap();
    }

    /// `metal-switchd run` with its log in `<name>.log`.
    pub fn start(&self, name: &str, env: &[(&str, &str)]) -> AgentProcess {
        AgentProcess::start_with_env(
            &self.ns,
            &self.config,
            &self.path(&format!("{name}.log")),
            env,
        )
    }

    /// `metal-switchd apply --once` of `doc` (no API), as a setup step.
    pub fn apply_once(&self, doc: &str) {
        let file = self.path("apply-once.json");
        std::fs::write(&file, doc).unwrap();
        super::process::succeeded(
            std::process::Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
                .env_remove("METAL_SWITCHD_CONFIG")
                .env_remove("METAL_SWITCHD_CRASH_AT")
                .arg("--config")
                .arg(&self.config)
                .args(["apply", "--once", "--wait-ready", "10s", "--switch"])
                .arg(&file),
            "apply --once",
        );
    }

    pub fn frr_conf(&self) -> Option<String> {
        std::fs::read_to_string(self.path("frr.conf")).ok()
    }

    /// What FRR runs: the file the reload stand-in was last given.
    pub fn reloaded(&self) -> Option<String> {
        std::fs::read_to_string(self.path("reloaded.conf")).ok()
    }

    /// The reloads that succeeded, in order: `reloaded <cksum of the file>`.
    pub fn reloads(&self) -> Vec<String> {
        read(&self.path("reloads.log"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Temporary files an install left in the frr.conf directory.
    pub fn frr_temp_files(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("frr.conf.") && n.ends_with(".new"))
            .collect()
    }

    pub fn heartbeats(&self) -> Vec<Record> {
        self.server.records_of(Call::V2Heartbeat)
    }

    pub fn last_seq(&self) -> u64 {
        self.server
            .records()
            .iter()
            .map(|r| r.seq)
            .max()
            .unwrap_or(0)
    }

    /// The first accepted heartbeat after `after` (a record seq) that
    /// satisfies `pred`.
    pub fn heartbeat_after(&self, after: u64, pred: impl Fn(&Value) -> bool) -> Option<Record> {
        self.heartbeats()
            .into_iter()
            .find(|r| r.seq > after && r.status == 200 && pred(&r.request))
    }

    /// The API's generation of the switch now (what a test set last).
    pub fn api_generation(&self) -> u64 {
        self.server.switch(&self.id).unwrap().generation
    }

    /// Wait until the agent converged to the desired state the API holds
    /// now: the status file's last reconcile converged to the switch's
    /// current API generation (or a later one), and a heartbeat without
    /// error came after `after`. A heartbeat alone does not say to what: a
    /// reconcile that fetched before the test's change reports "converged"
    /// after it.
    pub fn wait_converged(&self, agent: &AgentProcess, after: u64, what: &str) -> Record {
        let generation = self.api_generation();
        wait_for(
            &format!("{what} (convergence to API generation {generation})"),
            HANG,
            agent,
            || {
                let status = self.status_if_written()?;
                let r = &status["last_reconcile"];
                let reached = r["result"] == "converged"
                    && r["api_generation"]
                        .as_u64()
                        .is_some_and(|g| g >= generation);
                if !reached {
                    return None;
                }
                self.heartbeat_after(after, no_error)
            },
        )
    }

    /// Wait for a heartbeat after `after` whose error contains `needle`.
    pub fn wait_error(&self, agent: &AgentProcess, after: u64, needle: &str) -> Record {
        wait_for(
            &format!("a heartbeat reporting {needle:?}"),
            HANG,
            agent,
            || {
                self.heartbeat_after(after, |r| {
                    r.get("error")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.contains(needle))
                })
            },
        )
    }

    /// The status file (`state_directory/status.json`).
    pub fn status(&self) -> Value {
        let text = std::fs::read_to_string(self.path("state/status.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The status file, once the agent wrote it.
    pub fn status_if_written(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.path("state/status.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// The metrics the agent serves (port 2112 in its namespace).
    pub fn metrics(&self) -> String {
        http_get(
            std::net::SocketAddr::from((self.ns.ns_ip, 2112)),
            "/metrics",
        )
    }
}

pub fn no_error(req: &Value) -> bool {
    req.get("error").is_none_or(Value::is_null)
}

/// The value of the first sample of `name` whose labels contain `labels`.
pub fn metric(body: &str, name: &str, labels: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next() == Some(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// An HTTP GET of `path` on `addr`; the body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `cksum` of `text`, as the reload stand-in logs it.
pub fn cksum(text: &str) -> String {
    let out = super::process::output_with_stdin(
        &mut std::process::Command::new("cksum"),
        text.as_bytes(),
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
