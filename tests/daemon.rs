//! `metal-switchd run` end to end: the real binary in its own network
//! namespace, a real redis with the SONiC stand-in (random per-daemon
//! delays), the lab API server (v1 and v2), FRR validation by `vtysh`.
//!
//! Expected CONFIG_DB entries are metal-core's, as README.md's table and
//! sonic-configdb reference §2.3 give them; frr.conf lines as frr-config.md
//! gives them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use metal_switchd_lab::api_server::{
    ApiServer, ApiServerOptions, Call, Fault, FaultKind, Record, TokenGrant,
};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::{CONFIG_DB, STATE_DB};
use metal_switchd_lab::seed::{SeedOptions, seed_switch};
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};
use serde_json::Value;
use support::agent::{AgentNetns, AgentProcess, wait_for};
use support::lab::{http_get, metric};
use support::{Switch, assert_no_violations};

const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-daemon-token.c2lnbmF0dXJl";
const HMAC_KEY: &str = "metal-edit-daemon-key";
/// Long enough to only catch hangs.
const HANG: Duration = Duration::from_secs(60);

fn lab_api(ns: &AgentNetns) -> ApiServer {
    ApiServer::start(ApiServerOptions {
        switches: vec![fixtures::LEAF01_SWITCH_V1.to_owned()],
        partitions: vec!["mini-lab".into()],
        hmac_edit_key: Some(HMAC_KEY.into()),
        tokens: [(TOKEN.to_owned(), TokenGrant::Editor)].into(),
        listen: (ns.host_ip, 0).into(),
        ..ApiServerOptions::default()
    })
    .expect("lab API server")
}

/// The agent's configuration: the lab switch, the lab API, FRR installed in
/// `dir` and validated by vtysh (not reloaded), management on `mgmt0`.
fn agent_config(
    sw: &Switch,
    server: &ApiServer,
    dir: &Path,
    v2: bool,
    interval: &str,
) -> std::path::PathBuf {
    let version = dir.join("sonic_version.yml");
    std::fs::write(&version, "build_version: 'SONiC.4.5.1-Enterprise_Base'\n").unwrap();
    let api = if v2 {
        let token = dir.join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "api_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}/\"\nmetal_apiserver_token_file = {:?}\n",
            server.base_url(),
            token.display().to_string()
        )
    } else {
        format!(
            "api_version = \"v1\"\nmetal_api_ip = \"{}\"\nmetal_api_port = {}\nmetal_api_basepath = \"/metal/\"\nhmac_key = \"{HMAC_KEY}\"\n",
            server.addr().ip(),
            server.addr().port()
        )
    };
    sw.config_file(
        dir,
        &format!(
            "{api}reconfigure_switch = true\nreconfigure_switch_interval = \"{interval}\"\n\
             timeout = \"10s\"\nmanagement_interface = \"mgmt0\"\nsonic_version_file = {:?}\n\
             bgp_neighbor_state_file = \"\"\napi_retry_backoff = \"20ms\"\napi_retry_max_backoff = \"200ms\"\n",
            version.display().to_string()
        ),
    )
}

type Dump = BTreeMap<String, BTreeMap<String, String>>;

fn entry(d: &Dump, key: &str) -> Option<BTreeMap<String, String>> {
    d.get(key).cloned()
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The lab leaf01's owned entries the reference prescribes (README table);
/// `ethernet5_pxe`: Ethernet5 is still unprovisioned.
fn assert_leaf01_target(d: &Dump, ethernet5_pxe: bool) {
    assert_eq!(
        entry(d, "INTERFACE|Ethernet1"),
        Some(fields(&[
            ("ipv6_use_link_local_only", "enable"),
            ("vrf_name", "Vrf104009")
        ]))
    );
    assert_eq!(
        entry(d, "INTERFACE|Ethernet0"),
        Some(fields(&[("ipv6_use_link_local_only", "enable")])),
        "a firewall port is routed without a VRF"
    );
    assert_eq!(
        entry(d, "VRF|Vrf104009"),
        Some(fields(&[("fallback", "false"), ("vni", "104009")]))
    );
    assert_eq!(
        entry(d, "VLAN_MEMBER|Vlan3900|Ethernet5"),
        ethernet5_pxe.then(|| fields(&[("tagging_mode", "untagged")]))
    );
    assert_eq!(d["PORT|Ethernet1"]["mtu"], "9000");
    assert_eq!(d["PORT|Ethernet0"]["mtu"], "9216");
}

fn heartbeats(server: &ApiServer, v2: bool) -> Vec<Record> {
    server.records_of(if v2 {
        Call::V2Heartbeat
    } else {
        Call::V1Notify
    })
}

/// The first report after `after` (a record seq) that satisfies `pred`.
fn report_after(
    server: &ApiServer,
    v2: bool,
    after: u64,
    pred: impl Fn(&Value) -> bool,
) -> Option<Record> {
    heartbeats(server, v2)
        .into_iter()
        .find(|r| r.seq > after && r.status == 200 && pred(&r.request))
}

fn no_error(req: &Value) -> bool {
    req.get("error").is_none_or(Value::is_null)
}

fn last_seq(server: &ApiServer) -> u64 {
    server.records().iter().map(|r| r.seq).max().unwrap_or(0)
}

#[test]
fn the_daemon_registers_converges_follows_the_api_and_rides_out_outages() {
    let mut sw = Switch::leaf01(StandInOptions::random(0x5eed, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"]);
    let server = lab_api(&ns);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(&sw, &server, dir.path(), true, "1s");
    let mut agent = AgentProcess::start(&ns, &config, &dir.path().join("agent.log"));

    // 1. Registration, convergence, a heartbeat without error.
    let reg = wait_for("the registration", HANG, &agent, || {
        server
            .records_of(Call::V2Register)
            .into_iter()
            .find(|r| r.status == 200)
    });
    assert_eq!(reg.request["switch"]["id"], "leaf01");
    assert_eq!(reg.request["switch"]["managementIp"], ns.ns_ip.to_string());
    assert_eq!(reg.request["switch"]["nics"].as_array().unwrap().len(), 122);
    let hb = wait_for("a heartbeat without error", HANG, &agent, || {
        report_after(&server, true, reg.seq, |r| {
            no_error(r) && r.get("portStates").is_some()
        })
    });
    assert_leaf01_target(&sw.dump(CONFIG_DB), true);
    let ports = &hb.request["portStates"];
    assert_eq!(ports["Ethernet0"], "SWITCH_PORT_STATUS_UP", "{ports}");
    assert_eq!(
        ports["Ethernet10"], "SWITCH_PORT_STATUS_UNKNOWN",
        "no such netdev: {ports}"
    );
    let frr = std::fs::read_to_string(dir.path().join("frr.conf")).unwrap();
    assert!(frr.contains("router bgp 4200000011 vrf Vrf104009"), "{frr}");

    // 2. The desired state changes in the API: CONFIG_DB and frr.conf follow.
    let before_change = last_seq(&server);
    server
        .update_switch("leaf01", |s| {
            let nic = s.nics.iter_mut().find(|n| n.name == "Ethernet5").unwrap();
            nic.vrf = Some("vrf104009".into());
        })
        .unwrap();
    wait_for("Ethernet5 in Vrf104009", HANG, &agent, || {
        let d = sw.dump(CONFIG_DB);
        (entry(&d, "INTERFACE|Ethernet5")
            == Some(fields(&[
                ("ipv6_use_link_local_only", "enable"),
                ("vrf_name", "Vrf104009"),
            ])))
        .then_some(())
    });
    assert!(
        !sw.dump(CONFIG_DB)
            .contains_key("VLAN_MEMBER|Vlan3900|Ethernet5")
    );
    wait_for("frr.conf with Ethernet5", HANG, &agent, || {
        std::fs::read_to_string(dir.path().join("frr.conf"))
            .ok()
            .filter(|f| f.contains(" neighbor Ethernet5 interface peer-group MACHINE"))
    });
    wait_for("a heartbeat after the change", HANG, &agent, || {
        report_after(&server, true, before_change, no_error)
    });

    // 3. The API fails: nothing is written, the error is reported, and the
    // agent recovers when the API is back.
    sw.redis.reset_stats().unwrap();
    let before_outage = last_seq(&server);
    server.inject(Fault {
        call: Some(Call::V2Get),
        times: 1_000_000,
        kind: FaultKind::Status {
            status: 503,
            body: None,
        },
    });
    let failed = wait_for("a heartbeat reporting the outage", HANG, &agent, || {
        report_after(&server, true, before_outage, |r| !no_error(r))
    });
    assert!(
        failed.request["error"].as_str().unwrap().contains("503")
            || failed.request["error"]
                .as_str()
                .unwrap()
                .contains("unavailable"),
        "{}",
        failed.request
    );
    assert_eq!(
        sw.redis.command_calls("exec").unwrap(),
        0,
        "wrote while the API failed"
    );
    server.clear_faults();
    let back = last_seq(&server);
    wait_for(
        "a heartbeat without error after the outage",
        HANG,
        &agent,
        || report_after(&server, true, back, no_error),
    );

    // 4. redis restarts (SONiC's database container: empty, then reloaded
    // from config_db.json): the agent rebuilds its view and converges again.
    drop(sw.standin.take());
    sw.redis.restart().unwrap();
    seed_switch(
        &sw.redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &SeedOptions::default(),
    )
    .unwrap();
    sw.standin = Some(
        SonicStandIn::start(
            &sw.redis,
            StandInOptions::random(0xbeef, Duration::from_millis(25)),
        )
        .unwrap(),
    );
    let restarted = last_seq(&server);
    wait_for("convergence after the redis restart", HANG, &agent, || {
        let d = sw.dump(CONFIG_DB);
        let s = sw.dump(STATE_DB);
        (entry(&d, "INTERFACE|Ethernet5").is_some()
            && s.get("INTERFACE_TABLE|Ethernet5")
                .is_some_and(|f| f["vrf"] == "Vrf104009")
            && report_after(&server, true, restarted, no_error).is_some())
        .then_some(())
    });
    assert_leaf01_target(&sw.dump(CONFIG_DB), false);

    // 5. SIGTERM: a clean exit.
    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
    assert_no_violations(&sw);
    // `cargo nextest run --test daemon --no-capture` shows the recorded run.
    eprintln!("--- agent log ---\n{}", agent.log_text());
    for r in server.records() {
        eprintln!(
            "--- #{} {} {} -> {}",
            r.seq,
            r.call.name(),
            r.path,
            r.status
        );
    }
}

#[test]
fn owned_entries_changed_by_hand_are_repaired_at_once_and_foreign_ones_left_alone() {
    let sw = Switch::leaf01(StandInOptions::random(0xd1f7, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1"]);
    let server = lab_api(&ns);
    let dir = tempfile::tempdir().unwrap();
    // The timer never fires during the test: repairs come from notifications.
    let config = agent_config(&sw, &server, dir.path(), false, "1h");
    let mut agent = AgentProcess::start(&ns, &config, &dir.path().join("agent.log"));
    wait_for("a v1 notify without error", HANG, &agent, || {
        report_after(&server, false, 0, no_error)
    });
    assert_leaf01_target(&sw.dump(CONFIG_DB), true);
    let finds = server.records_of(Call::V1Find).len();

    let mut c = sw.redis.connection(CONFIG_DB).unwrap();
    // A foreign entry changes: the agent never touches it.
    redis::cmd("HSET")
        .arg("VLAN|Vlan3900")
        .arg("description")
        .arg("operator note")
        .query::<()>(&mut c)
        .unwrap();
    // Owned entries change: a deleted binding, a changed MTU.
    redis::cmd("DEL")
        .arg("INTERFACE|Ethernet1")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("HSET")
        .arg("PORT|Ethernet0")
        .arg("mtu")
        .arg("1500")
        .query::<()>(&mut c)
        .unwrap();
    wait_for("the repair", HANG, &agent, || {
        let d = sw.dump(CONFIG_DB);
        (entry(&d, "INTERFACE|Ethernet1")
            == Some(fields(&[
                ("ipv6_use_link_local_only", "enable"),
                ("vrf_name", "Vrf104009"),
            ]))
            && d["PORT|Ethernet0"]["mtu"] == "9216")
            .then_some(())
    });
    assert_eq!(
        server.records_of(Call::V1Find).len(),
        finds,
        "the repair fetched the desired state instead of using the last one"
    );
    assert_eq!(
        sw.dump(CONFIG_DB)["VLAN|Vlan3900"]["description"],
        "operator note"
    );
    assert!(
        agent.log_text().contains("repairing"),
        "{}",
        agent.log_text()
    );

    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
    assert_no_violations(&sw);
}

/// The second case: the daemon is killed (SIGKILL) between phases
/// while SONiC's daemons are frozen, and started again; it writes nothing
/// on top of the unconfirmed phase, and converges once SONiC runs again.
#[test]
fn a_daemon_killed_between_phases_resumes_from_what_sonic_confirmed() {
    let sw = Switch::leaf01(StandInOptions::random(0x4b11, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1"]);
    let server = lab_api(&ns);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(&sw, &server, dir.path(), true, "500ms");
    // Short barrier waits so that the frozen daemons are noticed quickly.
    let text = std::fs::read_to_string(&config).unwrap() + "\n";
    let text = text.replace("barrier_timeout = \"10s\"", "barrier_timeout = \"300ms\"");
    std::fs::write(&config, text).unwrap();

    sw.standin().pause();
    sw.redis.reset_stats().unwrap();
    let agent = AgentProcess::start(&ns, &config, &dir.path().join("agent-1.log"));
    wait_for(
        "the first phase written and not confirmed",
        HANG,
        &agent,
        || {
            agent
                .log_text()
                .contains("did not confirm it within")
                .then_some(())
        },
    );
    wait_for(
        "a reconcile that waits for the pending confirmations",
        HANG,
        &agent,
        || {
            agent
                .log_text()
                .contains("SONiC has not confirmed what CONFIG_DB already holds")
                .then_some(())
        },
    );
    agent.signal("KILL");
    drop(agent);
    assert_eq!(
        sw.redis.command_calls("exec").unwrap(),
        1,
        "only the first phase was written"
    );

    let mut agent = AgentProcess::start(&ns, &config, &dir.path().join("agent-2.log"));
    wait_for(
        "the restarted daemon waiting for SONiC",
        HANG,
        &agent,
        || {
            agent
                .log_text()
                .contains("SONiC has not confirmed what CONFIG_DB already holds")
                .then_some(())
        },
    );
    assert_eq!(
        sw.redis.command_calls("exec").unwrap(),
        1,
        "the restarted daemon wrote on top of the unconfirmed phase"
    );
    sw.standin().resume();
    wait_for("convergence", HANG, &agent, || {
        report_after(&server, true, 0, no_error)
    });
    assert_leaf01_target(&sw.dump(CONFIG_DB), true);
    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
    assert_no_violations(&sw);
}

/// systemd's notify protocol (sd_notify), the metrics endpoint and the
/// status file of a running daemon (issue "Operability").
#[test]
fn the_daemon_notifies_systemd_serves_metrics_and_writes_its_status() {
    let sw = Switch::leaf01(StandInOptions::random(0x0b5e, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1"]);
    let server = lab_api(&ns);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(&sw, &server, dir.path(), true, "1s");
    let notify_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let collected = messages.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Ok(n) = sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let stop = m.contains("STOPPING=1");
                collected.lock().unwrap().push(m);
                if stop {
                    break;
                }
            }
        }
    });
    let notify = notify_path.display().to_string();
    let mut agent = AgentProcess::start_with_env(
        &ns,
        &config,
        &dir.path().join("agent.log"),
        &[
            ("NOTIFY_SOCKET", notify.as_str()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let has = |needle: &str| messages.lock().unwrap().iter().any(|m| m.contains(needle));
    wait_for("READY=1", HANG, &agent, || has("READY=1").then_some(()));
    wait_for("a converged heartbeat", HANG, &agent, || {
        report_after(&server, true, 0, no_error)
    });
    wait_for("WATCHDOG=1 from the loop", HANG, &agent, || {
        has("WATCHDOG=1").then_some(())
    });
    wait_for("a STATUS= line after a reconcile", HANG, &agent, || {
        has("STATUS=").then_some(())
    });

    // The metrics endpoint (metal-core's default port, in the agent's namespace).
    let addr = std::net::SocketAddr::from((ns.ns_ip, 2112));
    let body = wait_for("a converged reconcile in the metrics", HANG, &agent, || {
        let b = http_get(addr, "/metrics");
        metric(&b, "metal_switchd_reconciles_total", "result=\"converged\"")
            .filter(|v| *v >= 1.0)
            .map(|_| b)
    });
    assert!(
        metric(&body, "metal_core_total_errors", "switch-reconfiguration").is_some(),
        "{body}"
    );
    assert!(
        metric(&body, "metal_switchd_ports", "oper_state=\"up\"").is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        metric(&body, "metal_switchd_api_requests_total", "call=\"report\"")
            .is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        std::path::Path::new("/usr/bin/promtool").exists(),
        "promtool is missing: apt-get install -y prometheus (./dev test does)"
    );
    let check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .output_with_stdin(&body);
    assert!(
        check.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The status file, read by `metal-switchd status`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_remove("METAL_SWITCHD_CONFIG")
        .arg("--config")
        .arg(&config)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["liveness"], "running", "{st}");
    assert_eq!(
        st["status"]["last_reconcile"]["result"], "converged",
        "{st}"
    );
    assert_eq!(st["status"]["ports"]["Ethernet0"]["oper"], "up", "{st}");

    // SIGHUP: RELOADING=1, then READY=1 again.
    let readies = messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("READY=1"))
        .count();
    agent.signal("HUP");
    wait_for("RELOADING=1 and READY=1 after SIGHUP", HANG, &agent, || {
        let m = messages.lock().unwrap();
        (m.iter().any(|m| m.contains("RELOADING=1"))
            && m.iter().filter(|m| m.contains("READY=1")).count() > readies)
            .then_some(())
    });
    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
    reader.join().unwrap();
    assert!(has("STOPPING=1"));
}

/// A machine announcing itself over LLDP (Debian's lldpd, as the machine's
/// go-lldpd does: machine id as system name, `provisioned since …` as
/// description) phones home through the running daemon, and `status` shows
/// it on its port (issue "Phone-home").
#[test]
fn a_machine_seen_over_lldp_phones_home_through_the_daemon() {
    use metal_switchd_lab::netns::{Lldpd, Netns};
    let sw = Switch::leaf01(StandInOptions::random(0x11d9, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet1"]);
    let machine = Netns::new("msd-m").unwrap();
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ip(&[
        "link",
        "add",
        "Ethernet0",
        "netns",
        &ns.name,
        "type",
        "veth",
        "peer",
        "name",
        "lan0",
        "netns",
        machine.name(),
    ]);
    ns.ip(&["link", "set", "Ethernet0", "up"]);
    machine.ip(&["link", "set", "lan0", "up"]).unwrap();
    const MACHINE: &str = "00000000-0000-0000-0000-0000000000a1";
    let _lldpd = Lldpd::start(
        &machine,
        &["lan0"],
        MACHINE,
        "provisioned since 2026-08-01T09:58:12Z",
    )
    .unwrap();

    let server = lab_api(&ns);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(&sw, &server, dir.path(), true, "1s");
    let text = std::fs::read_to_string(&config).unwrap() + "phone_home_interval = \"1s\"\n";
    std::fs::write(&config, text).unwrap();
    let mut agent = AgentProcess::start(&ns, &config, &dir.path().join("agent.log"));
    let ev = wait_for("a phone-home event", HANG, &agent, || {
        server
            .records_of(Call::V2EventSend)
            .into_iter()
            .find(|r| r.status == 200 && r.request["events"].get(MACHINE).is_some())
    });
    let e = &ev.request["events"][MACHINE];
    assert_eq!(
        e["event"], "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME",
        "{}",
        ev.request
    );
    assert_eq!(
        e["message"], "provisioned since 2026-08-01T09:58:12Z",
        "{}",
        ev.request
    );
    wait_for("the machine on Ethernet0 in status", HANG, &agent, || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .env_remove("METAL_SWITCHD_CONFIG")
            .arg("--config")
            .arg(&config)
            .args(["status", "--format", "json"])
            .output()
            .unwrap();
        let st: Value = serde_json::from_slice(&out.stdout).ok()?;
        (st["status"]["ports"]["Ethernet0"]["lldp"]["machine_id"] == MACHINE).then_some(())
    });
    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
}

trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output;
}

impl OutputWithStdin for std::process::Command {
    fn output_with_stdin(&mut self, input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}
