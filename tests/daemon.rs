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

use metal_switchd_lab::api_server::{ApiServer, Call, Fault, FaultKind, Record};
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
    support::agent::lab_api(ns, HMAC_KEY, TOKEN)
}

/// What a daemon test starts from: leaf01 with the stand-in (delays from
/// `seed`), the agent's namespace with `ports`, the lab API server, a
/// directory and the agent's configuration (v1 or v2, reconciling every
/// `interval`).
struct Setup {
    sw: Switch,
    ns: AgentNetns,
    server: ApiServer,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Setup {
    fn new(seed: u64, ports: &[&str], v2: bool, interval: &str) -> Setup {
        let sw = Switch::leaf01(StandInOptions::random(seed, Duration::from_millis(25)));
        let ns = AgentNetns::new(ports);
        let server = lab_api(&ns);
        let dir = tempfile::tempdir().unwrap();
        let config = agent_config(&sw, &server, dir.path(), v2, interval);
        Setup {
            sw,
            ns,
            server,
            dir,
            config,
        }
    }

    /// The parts, each kept alive by its binding.
    fn into_parts(
        self,
    ) -> (
        Switch,
        AgentNetns,
        ApiServer,
        tempfile::TempDir,
        std::path::PathBuf,
    ) {
        (self.sw, self.ns, self.server, self.dir, self.config)
    }
}

/// A machine on the agent's `Ethernet0` announcing `machine_id` over LLDP
/// (see [`machine_on_ethernet0`]), the agent's own port `Ethernet1`, v2,
/// reconciles and phone-home every second.
fn phone_home_setup(
    seed: u64,
    name: &str,
    machine_id: &str,
    description: &str,
) -> (
    Setup,
    (
        metal_switchd_lab::netns::Lldpd,
        metal_switchd_lab::netns::Netns,
    ),
) {
    let setup = Setup::new(seed, &["Ethernet1"], true, "1s");
    let text = std::fs::read_to_string(&setup.config).unwrap() + "phone_home_interval = \"1s\"\n";
    std::fs::write(&setup.config, text).unwrap();
    let machine = machine_on_ethernet0(&setup.ns, name, machine_id, description);
    (setup, machine)
}

/// SIGTERM: the agent exits 0, and SONiC saw no bad order.
fn finish(agent: &mut AgentProcess, sw: &Switch) {
    stop_cleanly(agent);
    assert_no_violations(sw);
}

/// SIGTERM: the agent exits 0.
fn stop_cleanly(agent: &mut AgentProcess) {
    let status = agent.stop(HANG);
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        agent.log_text()
    );
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

/// Start the agent (its log: `agent.log` in `dir`) and wait for its first
/// report without error (v2: a heartbeat, v1: a notify).
fn start_reported(
    ns: &AgentNetns,
    config: &Path,
    dir: &Path,
    server: &ApiServer,
    v2: bool,
) -> (AgentProcess, Record) {
    let agent = AgentProcess::start(ns, config, &dir.join("agent.log"));
    let what = if v2 {
        "a converged heartbeat"
    } else {
        "a v1 notify without error"
    };
    let first = wait_for(what, HANG, &agent, || report_after(server, v2, 0, no_error));
    (agent, first)
}

fn no_error(req: &Value) -> bool {
    req.get("error").is_none_or(Value::is_null)
}

fn last_seq(server: &ApiServer) -> u64 {
    server.records().iter().map(|r| r.seq).max().unwrap_or(0)
}

#[test]
fn the_daemon_registers_converges_follows_the_api_and_rides_out_outages() {
    let (mut sw, ns, server, dir, config) = Setup::new(
        0x5eed,
        &["Ethernet0", "Ethernet1", "Ethernet2", "Ethernet3"],
        true,
        "1s",
    )
    .into_parts();
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
    sw.reset_writes();
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
    assert_eq!(sw.agent_writes(), 0, "wrote while the API failed");
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
    finish(&mut agent, &sw);
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
    // The timer never fires during the test: repairs come from notifications.
    let (sw, ns, server, dir, config) =
        Setup::new(0xd1f7, &["Ethernet0", "Ethernet1"], false, "1h").into_parts();
    let (mut agent, _) = start_reported(&ns, &config, dir.path(), &server, false);
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

    finish(&mut agent, &sw);
}

/// The issue's second case: the daemon is killed (SIGKILL) between phases
/// while SONiC's daemons are frozen, and started again; it writes nothing
/// on top of the unconfirmed phase, and converges once SONiC runs again.
#[test]
fn a_daemon_killed_between_phases_resumes_from_what_sonic_confirmed() {
    let (sw, ns, server, dir, config) =
        Setup::new(0x4b11, &["Ethernet0", "Ethernet1"], true, "500ms").into_parts();
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
    let log = agent.log_text();
    drop(agent);
    assert_eq!(
        log.matches("CONFIG_DB phase written").count(),
        1,
        "only the first phase was written:\n{log}"
    );
    // The first phase's writes (SONiC's daemons are frozen: every write
    // redis counted is the agent's).
    let writes = |sw: &Switch| -> u64 {
        ["hset", "hdel", "del"]
            .iter()
            .map(|c| sw.redis.command_calls(c).unwrap())
            .sum()
    };
    let written = writes(&sw);
    assert!(written >= 1);

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
        writes(&sw),
        written,
        "the restarted daemon wrote on top of the unconfirmed phase"
    );
    sw.standin().resume();
    wait_for("convergence", HANG, &agent, || {
        report_after(&server, true, 0, no_error)
    });
    assert_leaf01_target(&sw.dump(CONFIG_DB), true);
    finish(&mut agent, &sw);
}

/// systemd's notify protocol (sd_notify), the metrics endpoint and the
/// status file of a running daemon (issue "Operability").
#[test]
fn the_daemon_notifies_systemd_serves_metrics_and_writes_its_status() {
    let (_sw, ns, server, dir, config) =
        Setup::new(0x0b5e, &["Ethernet0", "Ethernet1"], true, "1s").into_parts();
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
    // The report of a reconcile is counted when the API has answered it:
    // wait for both, a scrape may come in between.
    let body = wait_for(
        "a converged, reported reconcile in the metrics",
        HANG,
        &agent,
        || {
            let b = http_get(addr, "/metrics");
            let reported = metric(&b, "metal_switchd_api_requests_total", "call=\"report\"")
                .is_some_and(|v| v >= 1.0);
            metric(&b, "metal_switchd_reconciles_total", "result=\"converged\"")
                .filter(|v| *v >= 1.0 && reported)
                .map(|_| b)
        },
    );
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
    let check = support::process::output_with_stdin(
        std::process::Command::new("promtool").args(["check", "metrics"]),
        body.as_bytes(),
    );
    assert!(
        check.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The status file, read by `metal-switchd status`.
    let status_json = || {
        let out = support::process::succeeded(
            std::process::Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
                .env_remove("METAL_SWITCHD_CONFIG")
                .arg("--config")
                .arg(&config)
                .args(["status", "--format", "json"]),
            "status",
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    // Converged to what (issue 22 item 9): the API's generation of the
    // switch and the digest of the desired state, in the status file and
    // the metrics alike. The agent's own heartbeats change the switch in
    // the API (its BGP states), which counts the generation up as the
    // API's meta.generation does: wait for a reconcile converged to the
    // generation the API has now.
    let (st, generation, digest) = wait_for(
        "a reconcile converged to the API's current generation, in status and metrics",
        HANG,
        &agent,
        || {
            let generation = server.switch("leaf01").unwrap().generation;
            let st = status_json();
            let r = &st["status"]["last_reconcile"];
            if r["result"] != "converged" || r["api_generation"] != generation {
                return None;
            }
            let digest = r["digest"].as_str()?.to_owned();
            let body = http_get(addr, "/metrics");
            let info = metric(
                &body,
                "metal_switchd_converged_state_info",
                &format!("digest=\"{digest}\",api_generation=\"{generation}\""),
            );
            (info == Some(1.0)).then_some((st, generation, digest))
        },
    );
    assert!(generation >= 1, "{st}");
    assert_eq!(st["liveness"], "running", "{st}");
    assert_eq!(st["status"]["ports"]["Ethernet0"]["oper"], "up", "{st}");
    assert_eq!(digest.len(), 16, "{st}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{st}");
    assert_eq!(st["status"]["desired"]["digest"], digest.as_str(), "{st}");

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
    stop_cleanly(&mut agent);
    reader.join().unwrap();
    assert!(has("STOPPING=1"));
}

/// A machine in namespace `name` wired to the agent's `Ethernet0`, running
/// Debian's lldpd as the machine's go-lldpd would (machine id as system
/// name, `description` as system description); both end on drop.
fn machine_on_ethernet0(
    ns: &AgentNetns,
    name: &str,
    machine_id: &str,
    description: &str,
) -> (
    metal_switchd_lab::netns::Lldpd,
    metal_switchd_lab::netns::Netns,
) {
    use metal_switchd_lab::netns::{Lldpd, Netns};
    let machine = Netns::new(name).unwrap();
    support::process::succeeded(
        std::process::Command::new("ip")
            .args([
                "link",
                "add",
                "Ethernet0",
                "netns",
                &ns.name,
                "type",
                "veth",
            ])
            .args(["peer", "name", "lan0", "netns", machine.name()]),
        "ip link add",
    );
    ns.ip(&["link", "set", "Ethernet0", "up"]);
    machine.ip(&["link", "set", "lan0", "up"]).unwrap();
    let lldpd = Lldpd::start(&machine, &["lan0"], machine_id, description).unwrap();
    (lldpd, machine)
}

/// The first accepted phone-home event of `machine_id`.
fn wait_for_phone_home(server: &ApiServer, agent: &AgentProcess, machine_id: &str) -> Record {
    wait_for("a phone-home event", HANG, agent, || {
        server
            .records_of(Call::V2EventSend)
            .into_iter()
            .find(|r| r.status == 200 && r.request["events"].get(machine_id).is_some())
    })
}

/// A machine announcing itself over LLDP (Debian's lldpd, as the machine's
/// go-lldpd does: machine id as system name, `provisioned since …` as
/// description) phones home through the running daemon, and `status` shows
/// it on its port (issue "Phone-home").
#[test]
fn a_machine_seen_over_lldp_phones_home_through_the_daemon() {
    const MACHINE: &str = "00000000-0000-0000-0000-0000000000a1";
    let (s, _machine) = phone_home_setup(
        0x11d9,
        "msd-m",
        MACHINE,
        "provisioned since 2026-08-01T09:58:12Z",
    );
    let mut agent = AgentProcess::start(&s.ns, &s.config, &s.dir.path().join("agent.log"));
    let ev = wait_for_phone_home(&s.server, &agent, MACHINE);
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
            .arg(&s.config)
            .args(["status", "--format", "json"])
            .output()
            .unwrap();
        let st: Value = serde_json::from_slice(&out.stdout).ok()?;
        (st["status"]["ports"]["Ethernet0"]["lldp"]["machine_id"] == MACHINE).then_some(())
    });
    stop_cleanly(&mut agent);
}

/// `WATCHDOG=1` datagrams and the rest of what the daemon tells systemd,
/// each with the moment it arrived.
struct NotifyListener {
    messages: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>,
    path: std::path::PathBuf,
}

impl NotifyListener {
    fn bind(dir: &Path) -> NotifyListener {
        let path = dir.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = messages.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with the test process or when the socket's file is gone.
            while std::sync::Arc::strong_count(&collected) > 1 {
                if let Ok(n) = sock.recv(&mut buf) {
                    let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                    collected
                        .lock()
                        .unwrap()
                        .push((std::time::Instant::now(), m));
                }
            }
        });
        NotifyListener { messages, path }
    }

    fn env(&self) -> String {
        self.path.display().to_string()
    }

    /// When each message containing `needle` arrived.
    fn times(&self, needle: &str) -> Vec<std::time::Instant> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m)| m.contains(needle))
            .map(|(t, _)| *t)
            .collect()
    }
}

/// The watchdog's interval in the tests below (`WatchdogSec=8`).
const WATCHDOG: Duration = Duration::from_secs(8);

/// With the metal API down for three watchdog intervals, registration keeps
/// retrying and the agent keeps proving progress: `WATCHDOG=1` at least
/// every half interval (systemd would otherwise kill it), `READY=1` before
/// registration (after the first observation of the switch), and once the
/// API is back, registration and a converged heartbeat (issue 21 item 1).
#[test]
fn the_watchdog_is_fed_while_registration_waits_for_the_api() {
    let (_sw, ns, server, dir, config) =
        Setup::new(0x00d0, &["Ethernet0", "Ethernet1"], true, "1s").into_parts();
    server.inject(Fault::status(Call::V2Register, 503, u32::MAX));
    let notify = NotifyListener::bind(dir.path());
    let usec = WATCHDOG.as_micros().to_string();
    let agent = AgentProcess::start_with_env(
        &ns,
        &config,
        &dir.path().join("agent.log"),
        &[
            ("NOTIFY_SOCKET", notify.env().as_str()),
            ("WATCHDOG_USEC", usec.as_str()),
        ],
    );
    let ready = wait_for("READY=1", HANG, &agent, || {
        notify.times("READY=1").first().copied()
    });
    wait_for("a refused registration", HANG, &agent, || {
        server
            .records_of(Call::V2Register)
            .into_iter()
            .find(|r| r.status == 503)
    });
    // The API stays down for three watchdog intervals after READY=1.
    wait_for("three watchdog intervals", HANG, &agent, || {
        (ready.elapsed() > WATCHDOG * 3).then_some(())
    });
    let down_until = std::time::Instant::now();
    assert!(
        server
            .records_of(Call::V2Register)
            .iter()
            .all(|r| r.status == 503),
        "registered while the API was down"
    );
    server.clear_faults();
    let reg = wait_for("the registration", HANG, &agent, || {
        server
            .records_of(Call::V2Register)
            .into_iter()
            .find(|r| r.status == 200)
    });
    wait_for("a converged heartbeat", HANG, &agent, || {
        report_after(&server, true, reg.seq, no_error)
    });

    let pings: Vec<_> = notify
        .times("WATCHDOG=1")
        .into_iter()
        .filter(|t| *t >= ready && *t <= down_until)
        .collect();
    assert!(
        pings.len() >= 6,
        "{} WATCHDOG=1 in {:?} while registration waited for the API; log:\n{}",
        pings.len(),
        down_until - ready,
        agent.log_text()
    );
    let mut at = ready;
    for t in pings.iter().copied().chain([down_until]) {
        assert!(
            t - at <= WATCHDOG / 2,
            "no WATCHDOG=1 for {:?} (more than half of WatchdogSec={WATCHDOG:?}) while \
             registering; log:\n{}",
            t - at,
            agent.log_text()
        );
        at = t;
    }
}

/// A loop that is stuck (a crash point that blocks for good, after the
/// CONFIG_DB and FRR steps) stops the pings: systemd would restart it
/// (issue 21 item 1).
#[test]
fn a_wedged_loop_stops_the_watchdog_pings() {
    let (_sw, ns, _server, dir, config) =
        Setup::new(0x0ed9, &["Ethernet0", "Ethernet1"], true, "1s").into_parts();
    let notify = NotifyListener::bind(dir.path());
    let usec = WATCHDOG.as_micros().to_string();
    let trace = dir.path().join("trace");
    let agent = AgentProcess::start_with_env(
        &ns,
        &config,
        &dir.path().join("agent.log"),
        &[
            ("NOTIFY_SOCKET", notify.env().as_str()),
            ("WATCHDOG_USEC", usec.as_str()),
            ("METAL_SWITCHD_HANG_AT", "reconcile.kernel-check"),
            ("METAL_SWITCHD_CRASH_TRACE", trace.to_str().unwrap()),
        ],
    );
    wait_for("the loop at its hang point", HANG, &agent, || {
        std::fs::read_to_string(&trace)
            .ok()
            .filter(|t| t.lines().any(|l| l == "reconcile.kernel-check"))
    });
    let wedged = std::time::Instant::now();
    assert!(
        !notify.times("WATCHDOG=1").is_empty(),
        "no WATCHDOG=1 before the loop wedged; log:\n{}",
        agent.log_text()
    );
    // The last beat is at most half an interval old when it wedged; a ping
    // goes out at most a quarter interval after the pinger looked.
    wait_for("the pinger's verdict", HANG, &agent, || {
        agent
            .log_text()
            .contains("WATCHDOG=1 withheld")
            .then_some(())
    });
    wait_for("two more watchdog intervals", HANG, &agent, || {
        (wedged.elapsed() > WATCHDOG * 3).then_some(())
    });
    let late: Vec<_> = notify
        .times("WATCHDOG=1")
        .into_iter()
        .filter(|t| *t > wedged + WATCHDOG)
        .collect();
    assert!(
        late.is_empty(),
        "{} WATCHDOG=1 more than WatchdogSec after the loop wedged; log:\n{}",
        late.len(),
        agent.log_text()
    );
    assert!(
        agent.log_text().contains("the loop made no progress"),
        "{}",
        agent.log_text()
    );
}

/// One writer per switch (issue 21 item 6): while `run` holds the writer
/// lock in its runtime directory, a second `run` and an `apply --once` exit
/// 1 naming its PID and write nothing.
#[test]
fn a_second_writer_is_refused_naming_the_first_ones_pid() {
    let (sw, ns, server, dir, config) =
        Setup::new(0x10c4, &["Ethernet0", "Ethernet1"], true, "1s").into_parts();
    let (mut agent, _) = start_reported(&ns, &config, dir.path(), &server, true);
    let pid = agent.pid();
    let writes = sw.writes();
    let second = |args: &[&str]| {
        let err = dir.path().join("second.log");
        let mut child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_metal-switchd"),
            ])
            .env_remove("METAL_SWITCHD_CONFIG")
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        // A second writer that is not refused runs on: end it, and fail.
        let status = support::process::exit_within(&mut child, HANG).unwrap_or_else(|| {
            panic!(
                "{args:?} still runs beside the first agent after {HANG:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            )
        });
        (
            status.code(),
            std::fs::read_to_string(&err).unwrap_or_default(),
        )
    };
    let switch = dir.path().join("switch.json");
    std::fs::write(&switch, fixtures::LEAF01_SWITCH_V1).unwrap();
    for args in [
        vec!["run"],
        vec!["apply", "--once", "--switch", switch.to_str().unwrap()],
    ] {
        let (code, err) = second(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "another metal-switchd (PID {pid}) writes this switch"
            )),
            "{args:?}: {err}"
        );
    }
    assert_eq!(sw.writes(), writes, "the refused instances wrote CONFIG_DB");
    let status = agent.stop(HANG);
    assert!(status.success(), "{}", agent.log_text());
}

/// Another writer that changes an owned field back after every repair
/// (metal-core left running, a second agent on another host): after more
/// than five repairs within a minute the agent leaves that key alone,
/// reports it as contested — heartbeat error, status, metric — and goes on
/// with the rest (issue 21 item 6).
#[test]
fn a_key_contested_by_another_writer_is_left_alone_and_reported() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let (sw, ns, server, dir, config) =
        Setup::new(0xc0de, &["Ethernet0", "Ethernet1"], true, "1s").into_parts();
    let (agent, converged) = start_reported(&ns, &config, dir.path(), &server, true);

    // The other writer: sets Ethernet1's MTU to 1500 whenever it finds the
    // agent's value (9000) there, a moment later (metal-core writes on its
    // own schedule too).
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reverts = std::sync::Arc::new(AtomicU32::new(0));
    let mut conn = sw.redis.connection(CONFIG_DB).unwrap();
    let writer = {
        let (stop, reverts) = (stop.clone(), reverts.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mtu: Option<String> = redis::cmd("HGET")
                    .arg("PORT|Ethernet1")
                    .arg("mtu")
                    .query(&mut conn)
                    .unwrap();
                if mtu.as_deref() == Some("9000") {
                    std::thread::sleep(Duration::from_millis(300));
                    let _: () = redis::cmd("HSET")
                        .arg("PORT|Ethernet1")
                        .arg("mtu")
                        .arg("1500")
                        .query(&mut conn)
                        .unwrap();
                    reverts.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let hb = wait_for("a heartbeat naming the contested key", HANG, &agent, || {
        report_after(&server, true, converged.seq, |r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("contested by another writer"))
        })
    });
    let error = hb.request["error"].as_str().unwrap().to_owned();
    assert!(error.contains("PORT|Ethernet1"), "{error}");

    // The rest goes on: a change of the desired state is applied.
    server
        .update_switch("leaf01", |s| {
            let nic = s.nics.iter_mut().find(|n| n.name == "Ethernet5").unwrap();
            nic.vrf = Some("vrf104009".into());
        })
        .unwrap();
    wait_for("Ethernet5 in Vrf104009", HANG, &agent, || {
        entry(&sw.dump(CONFIG_DB), "INTERFACE|Ethernet5")
            .filter(|e| e.get("vrf_name").map(String::as_str) == Some("Vrf104009"))
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_remove("METAL_SWITCHD_CONFIG")
        .arg("--config")
        .arg(&config)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        st["status"]["drift"]["contested"],
        serde_json::json!(["PORT|Ethernet1"]),
        "{st}"
    );
    let body = http_get(std::net::SocketAddr::from((ns.ns_ip, 2112)), "/metrics");
    assert_eq!(
        metric(&body, "metal_switchd_contested_keys", ""),
        Some(1.0),
        "{body}"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // No repair loop faster than the limit: the writer's first change (of
    // the converged value), then at most five repairs in the window and the
    // one that found the key contested.
    let n = reverts.load(Ordering::Relaxed);
    assert!(
        n <= 7,
        "the agent repaired the contested key {n} times; log:\n{}",
        agent.log_text()
    );
    assert_eq!(
        entry(&sw.dump(CONFIG_DB), "PORT|Ethernet1").and_then(|e| e.get("mtu").cloned()),
        Some("1500".into()),
        "the contested key is the other writer's"
    );
}

/// Phone-home does not wait for a valid desired state (issue 21 item 5):
/// with every reconcile refused (the PXE VLAN of the configuration is not in
/// CONFIG_DB), heartbeats carry the refusal as their error and a machine
/// announcing itself over LLDP (Debian's lldpd in its own namespace) still
/// phones home, as with metal-core, which listens on every PORT port from
/// registration on.
#[test]
fn a_machine_phones_home_while_the_desired_state_is_refused() {
    const MACHINE: &str = "00000000-0000-0000-0000-0000000000b2";
    let (s, _machine) = phone_home_setup(
        0x5ef0,
        "msd-r",
        MACHINE,
        "provisioned since 2026-08-02T10:00:00Z",
    );
    let text = std::fs::read_to_string(&s.config).unwrap();
    assert!(text.contains("pxe_vlan_id = 3900"), "{text}");
    std::fs::write(
        &s.config,
        text.replace("pxe_vlan_id = 3900", "pxe_vlan_id = 3999"),
    )
    .unwrap();
    let agent = AgentProcess::start(&s.ns, &s.config, &s.dir.path().join("agent.log"));
    let refused = wait_for("a heartbeat with the refusal", HANG, &agent, || {
        report_after(&s.server, true, 0, |r| {
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("PXE VLAN Vlan3999"))
        })
    });
    assert!(
        refused.request.get("portStates").is_some(),
        "{}",
        refused.request
    );
    let ev = wait_for_phone_home(&s.server, &agent, MACHINE);
    assert_eq!(
        ev.request["events"][MACHINE]["event"], "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME",
        "{}",
        ev.request
    );
    // Nothing was ever accepted.
    assert!(
        heartbeats(&s.server, true)
            .iter()
            .all(|r| !no_error(&r.request)),
        "a heartbeat without error although the desired state is refused"
    );
}
