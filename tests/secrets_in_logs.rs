//! Secrets never reach a log line: the real daemon (`metal-switchd run`)
//! end to end, at debug level, for both API versions — registration,
//! reconciles, heartbeats and a refused call (401/403) — and then every
//! line of its log is searched for the token, the HMAC key and every
//! `Authorization` value the lab API received (bearer token, HMAC MACs).
//! The secrets come from files the agent accepts (mode 0600, root's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use metal_switchd_lab::api_server::{Call, Fault};
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::sonic::StandInOptions;
use support::Switch;
use support::agent::{AgentNetns, AgentProcess, wait_for};

const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.secret-log-token-7f3a.c2lnbmF0dXJlLXNlY3JldA";
const HMAC_KEY: &str = "metal-edit-secret-log-key-91c2";
const HANG: Duration = Duration::from_secs(90);

fn secret_file(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{content}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

fn run(v2: bool) {
    let sw = Switch::leaf01(StandInOptions::random(0x10c5, Duration::from_millis(10)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1"]);
    let server = support::agent::lab_api(&ns, HMAC_KEY, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let version = dir.path().join("sonic_version.yml");
    std::fs::write(&version, "build_version: 'SONiC.4.5.1-Enterprise_Base'\n").unwrap();
    let api = if v2 {
        format!(
            "api_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}/\"\nmetal_apiserver_token_file = {:?}\n",
            server.base_url(),
            secret_file(dir.path(), "token", TOKEN)
        )
    } else {
        format!(
            "api_version = \"v1\"\nmetal_api_ip = \"{}\"\nmetal_api_port = {}\n\
             metal_api_basepath = \"/metal/\"\nhmac_key_file = {:?}\n",
            server.addr().ip(),
            server.addr().port(),
            secret_file(dir.path(), "hmac-key", HMAC_KEY)
        )
    };
    let config = sw.config_file(
        dir.path(),
        &format!(
            "{api}reconfigure_switch = true\nreconfigure_switch_interval = \"1s\"\n\
             timeout = \"10s\"\nmanagement_interface = \"mgmt0\"\nsonic_version_file = {:?}\n\
             bgp_neighbor_state_file = \"\"\napi_retry_backoff = \"20ms\"\n\
             api_retry_max_backoff = \"200ms\"\n",
            version.display().to_string()
        ),
    );
    let log = dir.path().join("agent.log");
    let mut agent = AgentProcess::start_with(&ns, &config, &log, &["--log", "debug"]);
    let (register, report) = if v2 {
        (Call::V2Register, Call::V2Heartbeat)
    } else {
        (Call::V1Register, Call::V1Notify)
    };
    wait_for("the registration", HANG, &agent, || {
        server
            .records_of(register)
            .into_iter()
            .find(|r| r.status / 100 == 2)
    });
    wait_for("CONFIG_DB converged", HANG, &agent, || {
        sw.dump(CONFIG_DB)
            .contains_key("VRF|Vrf104009")
            .then_some(())
    });
    // A refused call: its error is logged (with the answer, never the credentials).
    let refused = if v2 { 401 } else { 403 };
    server.inject(Fault::status(report, refused, 1));
    wait_for(
        "a refused report, then an accepted one",
        HANG,
        &agent,
        || {
            let recs = server.records_of(report);
            let first = recs.iter().position(|r| r.status == refused)?;
            recs[first..]
                .iter()
                .any(|r| r.status / 100 == 2)
                .then_some(())
        },
    );
    let status = agent.stop(HANG);
    assert!(status.success(), "{status:?}\n{}", agent.log_text());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().filter(|l| l.contains("DEBUG")).count() >= 10,
        "the agent did not log at debug level:\n{text}"
    );
    // Every credential the API received, and the MAC / token part alone.
    let mut needles: Vec<String> = vec![TOKEN.into(), HMAC_KEY.into()];
    for value in server.credentials() {
        if let Some((scheme, cred)) = value.split_once(' ') {
            assert!(
                matches!(scheme, "Bearer" | "Metal-Edit"),
                "unexpected Authorization scheme {scheme:?}"
            );
            needles.push(cred.to_owned());
            needles.push(value.clone());
        }
    }
    let macs = needles.len() - 2;
    assert!(macs >= 2, "the lab API saw no Authorization header");
    let mut leaks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for n in &needles {
            if line.contains(n.as_str()) {
                leaks.push(format!("line {}: {line}", i + 1));
            }
        }
    }
    eprintln!(
        "{}: {} log lines ({} at debug level) searched for {} secrets and credentials: {} found",
        if v2 { "v2" } else { "v1" },
        lines.len(),
        lines.iter().filter(|l| l.contains("DEBUG")).count(),
        needles.len(),
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "secrets in the log:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn no_secret_in_a_debug_log_of_the_daemon_v2() {
    run(true);
}

#[test]
fn no_secret_in_a_debug_log_of_the_daemon_v1() {
    run(false);
}
