//! The metal API clients against the lab API server, over real HTTP on
//! loopback, for both API versions; registration against a real
//! `redis-server` and real netlink (a veth in a network namespace).
//!
//! Which of the ten traps of metal-api reference §9 each test covers is
//! noted as `traps: ...` in its doc comment.
//!
//! Prerequisites: `redis-server` and `ip` (iproute2) on PATH, root (network
//! namespaces). A missing one fails the test with a message saying so.

// A test crate: its helpers may panic (clippy's allow-*-in-tests only
// covers #[test] functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd::configdb::confirmed::Confirmed;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metal_switchd::api::client::{ApiError, Code};
use metal_switchd::api::transport::RetryPolicy;
use metal_switchd::api::{ComponentPing, PhoneHomeEvent, RegisteredNic, Registration};
use metal_switchd::config::{ApiVersion, Config, HumanDuration, NamingSchema};
use metal_switchd::configdb::dbconfig::Databases;
use metal_switchd::configdb::redis::ConfigDb;
use metal_switchd::kernel::KernelView;
use metal_switchd::observed::{BgpPortState, BgpState, PortOperState, SwitchReport};
use metal_switchd::reconcile::options::api_client;
use metal_switchd::reconcile::register::{self, RegisterOptions};
use metal_switchd_lab::api_server::{
    ApiServer, ApiServerOptions, Call, Fault, FaultKind, PortStatus, Record, TokenGrant,
};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::seed::{SeedOptions, seed_switch};
use serde_json::{Value, json};

const HMAC_KEY: &str = "metal-edit-lab-key-7f3a";
const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-editor-token.c2lnbmF0dXJl";

fn lab_switches() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/switches")
}

fn lab(tokens: &[(&str, TokenGrant)]) -> ApiServer {
    ApiServer::start(ApiServerOptions {
        switches_dir: Some(lab_switches()),
        partitions: vec!["fra-equ01".into()],
        hmac_edit_key: Some(HMAC_KEY.into()),
        tokens: tokens.iter().map(|(t, g)| ((*t).to_owned(), *g)).collect(),
        ..ApiServerOptions::default()
    })
    .expect("starting the lab API server")
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts: Some(attempts),
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        give_up_after: None,
    }
}

/// A v1 configuration pointing at the lab server, under base path `/metal/`.
fn v1_config(server: &ApiServer, key: &str) -> Config {
    let cfg = Config::from_sources(
        None,
        [
            ("METAL_CORE_METAL_API_PROTOCOL", "http".to_owned()),
            ("METAL_CORE_METAL_API_IP", "127.0.0.1".to_owned()),
            (
                "METAL_CORE_METAL_API_PORT",
                server.addr().port().to_string(),
            ),
            ("METAL_CORE_METAL_API_BASEPATH", "/metal/".to_owned()),
            ("METAL_CORE_HMAC_KEY", key.to_owned()),
            ("METAL_CORE_TIMEOUT", "2s".to_owned()),
            ("METAL_SWITCHD_API_RETRY_BACKOFF", "5ms".to_owned()),
            ("METAL_SWITCHD_API_RETRY_MAX_BACKOFF", "20ms".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    )
    .expect("v1 configuration");
    assert_eq!(cfg.api_version(), ApiVersion::V1);
    cfg
}

/// A v2 configuration pointing at the lab server, with a token file.
fn v2_config(server: &ApiServer, dir: &Path, token: &str) -> Config {
    let token_file = write_token(dir, "token", &format!("{token}\n"), 0o600);
    Config::from_sources(
        None,
        [
            ("METAL_SWITCHD_API_VERSION", "v2".to_owned()),
            ("METAL_SWITCHD_API_ALLOW_PLAINTEXT", "true".to_owned()),
            (
                "METAL_CORE_METAL_APISERVER_URL",
                format!("{}/", server.base_url()),
            ),
            (
                "METAL_CORE_METAL_APISERVER_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("METAL_CORE_TIMEOUT", "2s".to_owned()),
            ("METAL_SWITCHD_API_RETRY_BACKOFF", "5ms".to_owned()),
            ("METAL_SWITCHD_API_RETRY_MAX_BACKOFF", "20ms".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    )
    .expect("v2 configuration")
}

fn write_token(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn registration(id: &str) -> Registration {
    Registration {
        id: id.into(),
        partition: "fra-equ01".into(),
        rack: Some("rack01".into()),
        room: None,
        management_ip: "10.1.0.11".parse().unwrap(),
        management_user: "admin".into(),
        os_version: "ec202211_metal-stack_1.0.0".into(),
        agent_version: metal_switchd::api::AGENT_VERSION.into(),
        nics: [
            ("Ethernet0", "Eth1(Port1)", PortOperState::Up),
            ("Ethernet1", "Eth2(Port2)", PortOperState::Down),
            ("Ethernet120", "Eth31(Port31)", PortOperState::Up),
        ]
        .iter()
        .map(|(n, i, s)| RegisteredNic {
            name: (*n).into(),
            identifier: (*i).into(),
            oper: *s,
        })
        .collect(),
    }
}

fn bgp(
    neighbor: &str,
    group: &str,
    vrf: &str,
    state: BgpState,
    since: Option<u64>,
) -> BgpPortState {
    BgpPortState {
        neighbor: neighbor.into(),
        peer_group: group.into(),
        vrf_name: vrf.into(),
        state,
        established_since: since,
        sent_prefixes: 60,
        accepted_prefixes: 1,
    }
}

/// One reconcile's report: Ethernet1 has no port state (the client
/// completes it), an Idle peer without hostname on Ethernet1, an
/// established one on Ethernet0, a never-established one on Ethernet120.
fn report() -> SwitchReport {
    SwitchReport {
        duration: Duration::from_nanos(812_345_678),
        error: None,
        port_states: BTreeMap::from([
            ("Ethernet0".into(), PortOperState::Up),
            ("Ethernet120".into(), PortOperState::Down),
        ]),
        bgp_port_states: Some(BTreeMap::from([
            (
                "Ethernet0".into(),
                bgp(
                    "fw-1",
                    "FIREWALL",
                    "default",
                    BgpState::Established,
                    Some(1_776_078_835),
                ),
            ),
            (
                "Ethernet1".into(),
                bgp("", "MACHINE", "Vrf104009", BgpState::Idle, None),
            ),
            (
                "Ethernet120".into(),
                bgp("spine02", "FABRIC", "default", BgpState::Active, None),
            ),
        ])),
    }
}

fn show(title: &str, records: &[Record]) {
    println!("==== {title}");
    for r in records {
        println!(
            "--- #{} {} {} {} -> {}{}",
            r.seq,
            r.call.name(),
            r.method,
            r.path,
            r.status,
            r.fault
                .as_ref()
                .map(|f| format!(" (fault: {f})"))
                .unwrap_or_default()
        );
        println!(
            "request:  {}",
            serde_json::to_string_pretty(&r.request).unwrap()
        );
        println!(
            "response: {}",
            serde_json::to_string_pretty(&r.response).unwrap()
        );
    }
}

// ---------------------------------------------------------------------------
// The exchanges
// ---------------------------------------------------------------------------

/// v1 register → get → notify against the lab server under base path
/// `/metal/`, every request HMAC-signed.
/// traps: 1 (HMAC over X-Date‖METHOD‖salt), 2 (capitalised BGP keys),
/// 3 (nanosecond durations), 8 (identifiers; `"mac": null`), 9 (vrf/filter
/// of the answer), runner-up: `last_sync_error: null` read as never.
#[tokio::test]
async fn v1_register_get_notify_exchange() {
    let server = lab(&[]);
    let cfg = v1_config(&server, HMAC_KEY);
    let mut client = api_client(&cfg).unwrap();
    assert_eq!(
        client.base_url(),
        format!("http://127.0.0.1:{}/metal", server.addr().port())
    );

    let reg = registration("r01leaf01");
    let registered = client.register(&reg).await.unwrap();
    assert_eq!(
        registered.nic_names,
        ["Ethernet0", "Ethernet1", "Ethernet120"]
    );
    // Registering again updates the existing switch (200 instead of 201).
    client.register(&reg).await.unwrap();

    // The operator assigns a machine to Ethernet1 meanwhile.
    server
        .update_switch("r01leaf01", |sw| {
            let n = sw.nics.iter_mut().find(|n| n.name == "Ethernet1").unwrap();
            n.vrf = Some("vrf104009".into());
            n.filter = Some(metal_switchd_lab::api_server::Filter {
                cidrs: vec!["10.0.16.0/22".into()],
                vnis: vec![],
            });
        })
        .unwrap();
    let got = client.get("r01leaf01").await.unwrap();
    let e1 = got
        .desc
        .nics
        .iter()
        .find(|n| n.name == "Ethernet1")
        .unwrap();
    assert_eq!(e1.vrf.as_deref(), Some("vrf104009"));
    assert_eq!(e1.filter.cidrs, ["10.0.16.0/22"]);
    assert!(got.sync.last_sync.is_none() && got.sync.last_sync_error.is_none());

    let status = client.report("r01leaf01", &report()).await.unwrap();
    let last = status.last_sync.expect("notify recorded a last_sync");
    assert_eq!(last.duration, Duration::from_nanos(812_345_678));
    assert!(status.last_sync_error.is_none());

    let records = server.records();
    show("v1 exchange", &records);
    let calls: Vec<(Call, u16)> = records.iter().map(|r| (r.call, r.status)).collect();
    assert_eq!(
        calls,
        [
            (Call::V1Register, 201),
            (Call::V1Register, 200),
            (Call::V1Find, 200),
            (Call::V1Notify, 200)
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r.path.starts_with("/metal/v1/switch/"))
    );
    let body = &records[0].request;
    assert_eq!(
        body["nics"][0],
        json!({"name": "Ethernet0", "identifier": "Eth1(Port1)", "mac": null, "actual": null})
    );
    assert_eq!(body["os"]["vendor"], "SONiC");
    let notify = &records[3].request;
    assert_eq!(notify["sync_duration"], 812_345_678);
    assert_eq!(notify["error"], Value::Null);
    assert_eq!(
        notify["port_states"],
        json!({"Ethernet0": "UP", "Ethernet1": "UNKNOWN", "Ethernet120": "DOWN"})
    );
    assert_eq!(notify["bgp_port_states"]["Ethernet0"]["Neighbor"], "fw-1");
    assert_eq!(
        notify["bgp_port_states"]["Ethernet1"]["BgpTimerUpEstablished"],
        0
    );

    // What the lab server stored from it.
    let sw = server.switch("r01leaf01").unwrap();
    let e0 = sw.nic_by_name("Ethernet0").unwrap();
    assert_eq!(e0.actual, Some(PortStatus::Up));
    assert_eq!(e0.bgp.as_ref().unwrap().timer, 1_776_078_835);
    assert_eq!(
        sw.nic_by_name("Ethernet120").unwrap().actual,
        Some(PortStatus::Down)
    );
    // Recorded bodies are also files.
    let files = std::fs::read_dir(server.record_dir()).unwrap().count();
    assert_eq!(files, 4);
}

/// v2 Register → Get → Heartbeat, EventService/Send and ComponentService/Ping
/// against the lab server, which applies metal-apiserver's validation rules
/// and handler behaviour: everything the client sends passes them.
/// traps: 3 (Duration string), 4 (enum names, never 0; 64-bit integers as
/// strings), 5 (portStates covers every nic), 6 (BGP entry without
/// neighbor dropped, valid managementIp), 7 (state.actual at registration;
/// timer on every BGP entry), 8 (identifiers), 9 (bgpFilter `{}`),
/// runner-up: year-1 lastSyncError read as never.
#[tokio::test]
async fn v2_register_get_heartbeat_exchange() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = v2_config(&server, dir.path(), TOKEN);
    let mut client = api_client(&cfg).unwrap();
    assert_eq!(client.base_url(), server.base_url());

    let reg = registration("r01leaf01");
    let registered = client.register(&reg).await.unwrap();
    assert_eq!(
        registered.nic_names,
        ["Ethernet0", "Ethernet1", "Ethernet120"]
    );
    assert!(registered.desc.nics.iter().all(|n| n.vrf.is_none()));

    let got = client.get("r01leaf01").await.unwrap();
    assert_eq!(got.desc.nics.len(), 3);

    let status = client.report("r01leaf01", &report()).await.unwrap();
    assert_eq!(
        status.last_sync.as_ref().unwrap().duration,
        Duration::from_nanos(812_345_678)
    );
    // The server emits a year-1 lastSyncError: it reads as "never".
    assert!(status.last_sync_error.is_none());

    // A failed reconcile goes to lastSyncError.
    let failed = SwitchReport {
        duration: Duration::from_secs(15),
        error: Some("could not apply switch config".into()),
        ..SwitchReport::default()
    };
    let status = client.report("r01leaf01", &failed).await.unwrap();
    assert_eq!(
        status.last_sync_error.unwrap().error.as_deref(),
        Some("could not apply switch config")
    );

    let sent = client
        .send_events(&[PhoneHomeEvent {
            machine_id: "00000000-0000-0000-0000-0000000000a1".into(),
            time: Duration::from_secs(1_787_315_760),
            message: "provisioned since 2026-08-01T09:58:12Z".into(),
        }])
        .await
        .unwrap();
    assert_eq!(sent.sent, 1);
    client
        .ping(&ComponentPing {
            identifier: "r01leaf01".into(),
            started_at: Duration::from_secs(1_787_313_600),
            interval: Duration::from_secs(300),
            version: metal_switchd::api::AGENT_VERSION.into(),
        })
        .await
        .unwrap();

    let records = server.records();
    show("v2 exchange", &records);
    let calls: Vec<(Call, u16)> = records.iter().map(|r| (r.call, r.status)).collect();
    assert_eq!(
        calls,
        [
            (Call::V2Register, 200),
            (Call::V2Get, 200),
            (Call::V2Heartbeat, 200),
            (Call::V2Heartbeat, 200),
            (Call::V2EventSend, 200),
            (Call::V2Ping, 200)
        ]
    );
    let reg_body = &records[0].request["switch"];
    assert_eq!(reg_body["managementIp"], "10.1.0.11");
    assert_eq!(reg_body["os"]["vendor"], "SWITCH_OS_VENDOR_SONIC");
    assert_eq!(
        reg_body["nics"][1]["state"]["actual"],
        "SWITCH_PORT_STATUS_DOWN"
    );
    let hb = &records[2].request;
    assert_eq!(hb["duration"], "0.812345678s");
    assert_eq!(
        hb["portStates"],
        json!({
            "Ethernet0": "SWITCH_PORT_STATUS_UP",
            "Ethernet1": "SWITCH_PORT_STATUS_UNKNOWN",
            "Ethernet120": "SWITCH_PORT_STATUS_DOWN"
        })
    );
    let bgp = hb["bgpPortStates"].as_object().unwrap();
    assert_eq!(bgp.keys().collect::<Vec<_>>(), ["Ethernet0", "Ethernet120"]);
    assert_eq!(bgp["Ethernet0"]["sentPrefixCounter"], "60");
    assert_eq!(
        bgp["Ethernet120"]["bgpTimerUpEstablished"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(bgp["Ethernet120"]["bgpState"], "BGP_STATE_ACTIVE");
    // The failed report omits portStates (none known) instead of sending {}.
    assert!(records[3].request.get("portStates").is_none());
    assert!(
        !records
            .iter()
            .any(|r| r.request.to_string().contains("UNSPECIFIED"))
    );
    // The Get answer carries bgpFilter {} on every nic (trap 9).
    assert_eq!(
        records[1].response["switch"]["nics"][0]["bgpFilter"],
        json!({})
    );

    // What the server stored: states and BGP (Ethernet1's Idle entry was dropped).
    let sw = server.switch("r01leaf01").unwrap();
    assert_eq!(
        sw.nic_by_name("Ethernet120").unwrap().actual,
        Some(PortStatus::Down)
    );
    assert!(sw.nic_by_name("Ethernet1").unwrap().bgp.is_none());
    assert_eq!(
        sw.nic_by_name("Ethernet0")
            .unwrap()
            .bgp
            .as_ref()
            .unwrap()
            .state,
        "Established"
    );
    // The token never reaches a recorded file.
    for f in std::fs::read_dir(server.record_dir()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(TOKEN));
    }
}

/// A test changes a switch's desired state at runtime (Rust API and HTTP);
/// the next Get shows it, in both versions; v2 `state.desired` and v1
/// `admin_status` both become the admin status.
/// traps: 9 (`vrf<VNI>`, `default` with filter VNIs).
#[tokio::test]
async fn desired_state_changes_at_runtime() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let mut v2 = api_client(&v2_config(&server, dir.path(), TOKEN)).unwrap();
    let mut v1 = api_client(&v1_config(&server, HMAC_KEY)).unwrap();
    let before = v2.get("leaf01").await.unwrap();
    assert_eq!(before.nic_names.len(), 122);
    let e4 = |f: &metal_switchd::api::FetchedSwitch| {
        f.desc
            .nics
            .iter()
            .find(|n| n.name == "Ethernet4")
            .cloned()
            .unwrap()
    };
    assert_eq!(
        e4(&before).admin,
        Some(metal_switchd::spec::AdminStatus::Down)
    );
    assert_eq!(e4(&before).vrf, None);

    server
        .update_switch("leaf01", |sw| {
            let n = sw.nics.iter_mut().find(|n| n.name == "Ethernet4").unwrap();
            n.vrf = Some("vrf104010".into());
            n.desired = Some(PortStatus::Up);
        })
        .unwrap();
    for after in [
        v2.get("leaf01").await.unwrap(),
        v1.get("leaf01").await.unwrap(),
    ] {
        assert_eq!(e4(&after).vrf.as_deref(), Some("vrf104010"));
        assert_eq!(e4(&after).admin, Some(metal_switchd::spec::AdminStatus::Up));
    }

    // Over HTTP: replace the whole state with the v1 document.
    let doc = fixtures::LEAF01_SWITCH_V1;
    let (status, _) = raw_http(&server, "PUT", "/lab/switches/leaf01", &[], doc);
    assert_eq!(status, 200);
    let after = v2.get("leaf01").await.unwrap();
    assert_eq!(e4(&after).vrf, None);
    let (status, records) = raw_http(&server, "GET", "/lab/records", &[], "");
    assert_eq!(status, 200);
    assert_eq!(records.as_array().unwrap().len(), 4);
}

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/// v1: a wrong HMAC key and a stale X-Date give 403 (as metal-api), not
/// retried; v2: unknown token 401 `unauthenticated`, revoked 401, viewer on
/// a write 403 `permission_denied`, no Authorization header 403.
/// traps: 1 (403 for HMAC failures), 10 (401 vs 403 for tokens).
#[tokio::test]
async fn authentication_failures() {
    let server = lab(&[
        (TOKEN, TokenGrant::Editor),
        ("viewer-token", TokenGrant::Viewer),
        ("revoked-token", TokenGrant::Revoked),
    ]);
    let mut bad = api_client(&v1_config(&server, "wrong-key")).unwrap();
    bad.set_retry(fast_retry(4));
    let e = bad.get("leaf01").await.unwrap_err();
    assert!(matches!(e, ApiError::Http { status: 403, .. }), "{e}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("hmac_key"), "{e}");
    assert_eq!(
        server.records_of(Call::V1Find).len(),
        1,
        "403 must not be retried"
    );

    // A signature over a non-canonical spelling of the same X-Date never
    // matches: the server re-formats the date before hashing (trap 1).
    let now = now_rfc3339();
    let headers = signed_headers(HMAC_KEY, "GET", &now);
    assert_eq!(
        raw_http(&server, "GET", "/v1/switch/leaf01", &headers, "").0,
        200
    );
    let offset = now.replace('Z', "+00:00");
    let headers = signed_headers(HMAC_KEY, "GET", &offset);
    let (status, body) = raw_http(&server, "GET", "/v1/switch/leaf01", &headers, "");
    assert_eq!((status, body["statuscode"].as_i64()), (403, Some(403)));
    // An X-Date older than the server's 30 s lifetime is refused.
    let headers = signed_headers(HMAC_KEY, "GET", "2020-01-01T00:00:00Z");
    assert_eq!(
        raw_http(&server, "GET", "/v1/switch/leaf01", &headers, "").0,
        403
    );

    let dir = tempfile::tempdir().unwrap();
    for (token, status, code) in [
        ("not-a-known-token", 401, Code::Unauthenticated),
        ("revoked-token", 401, Code::Unauthenticated),
    ] {
        let mut c = api_client(&v2_config(&server, dir.path(), token)).unwrap();
        let e = c.get("leaf01").await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(status), Some(code)), "{e}");
        assert!(e.to_string().contains("metal_apiserver_token_file"), "{e}");
        assert!(!e.is_transient());
    }
    let mut viewer = api_client(&v2_config(&server, dir.path(), "viewer-token")).unwrap();
    viewer.get("leaf01").await.unwrap();
    let e = viewer.report("leaf01", &report()).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some(Code::PermissionDenied)),
        "{e}"
    );
    assert!(e.to_string().contains("INFRA_ROLE_EDITOR"), "{e}");

    let (status, body) = raw_http(
        &server,
        "POST",
        "/metalstack.infra.v2.SwitchService/Get",
        &[("Content-Type", "application/json".into())],
        r#"{"id":"leaf01"}"#,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("permission_denied"))
    );
}

/// A token file readable by others is refused with the chmod that
/// fixes it, before anything is sent; the token never appears in the message.
#[tokio::test]
async fn token_file_with_mode_0644_is_refused() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = v2_config(&server, dir.path(), TOKEN);
    std::fs::set_permissions(
        &cfg.metal_apiserver_token_file,
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut client = api_client(&cfg).unwrap();
    let e = client.get("leaf01").await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ApiError::Secret(_)), "{e:?}");
    assert!(msg.contains("mode 0644"), "{msg}");
    assert!(msg.contains("readable by others"), "{msg}");
    assert!(msg.contains("chmod 600"), "{msg}");
    assert!(!msg.contains(TOKEN) && !format!("{e:?}").contains(TOKEN));
    assert!(
        server.records().is_empty(),
        "nothing may be sent with a refused token"
    );
    // Fixed: the same client works (the file is read per request).
    std::fs::set_permissions(
        &cfg.metal_apiserver_token_file,
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    client.get("leaf01").await.unwrap();
}

// ---------------------------------------------------------------------------
// Retries and faults
// ---------------------------------------------------------------------------

/// 503 is retried with backoff until it succeeds; 400 / invalid_argument
/// is not retried; a retry budget ends with the transient error.
#[tokio::test]
async fn retries_on_503_but_not_on_400() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    for version in ["v1", "v2"] {
        server.clear_records();
        let (mut client, get, report_call) = if version == "v1" {
            (
                api_client(&v1_config(&server, HMAC_KEY)).unwrap(),
                Call::V1Find,
                Call::V1Notify,
            )
        } else {
            (
                api_client(&v2_config(&server, dir.path(), TOKEN)).unwrap(),
                Call::V2Get,
                Call::V2Heartbeat,
            )
        };
        client.set_retry(fast_retry(4));
        server.inject(Fault::status(get, 503, 2));
        client.get("leaf01").await.unwrap();
        let gets = server.records_of(get);
        assert_eq!(
            gets.iter().map(|r| r.status).collect::<Vec<_>>(),
            [503, 503, 200],
            "{version}"
        );

        server.inject(Fault::status(report_call, 400, 1));
        let e = client.report("leaf01", &report()).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{version}: {e}");
        assert!(!e.is_transient());
        if version == "v2" {
            assert_eq!(e.code(), Some(Code::InvalidArgument));
        }
        assert_eq!(
            server.records_of(report_call).len(),
            1,
            "{version}: 400 retried"
        );

        server.inject(Fault::status(get, 503, 10));
        let e = client.get("leaf01").await.unwrap_err();
        assert!(e.is_transient(), "{version}: {e}");
        if version == "v2" {
            assert_eq!(e.code(), Some(Code::Unavailable));
        }
        assert_eq!(server.records_of(get).len(), 3 + 4, "{version}: 4 attempts");
        server.clear_faults();
    }
}

/// A cut-off body and a dropped connection are transient, a body that is
/// not JSON is not, a slow answer times out; each names the call and URL.
#[tokio::test]
async fn broken_answers_are_typed_errors() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = v2_config(&server, dir.path(), TOKEN);
    cfg.timeout = HumanDuration(Duration::from_millis(300));
    let mut client = api_client(&cfg).unwrap();
    client.set_retry(RetryPolicy::NONE);
    let fault = |kind| Fault {
        call: Some(Call::V2Get),
        times: 1,
        kind,
    };

    server.inject(fault(FaultKind::Truncate));
    let e = client.get("leaf01").await.unwrap_err();
    assert!(
        matches!(e, ApiError::Body { .. } | ApiError::Connect { .. }),
        "{e:?}"
    );
    assert!(e.is_transient());

    server.inject(fault(FaultKind::InvalidBody));
    let e = client.get("leaf01").await.unwrap_err();
    assert!(matches!(e, ApiError::Decode { status: 200, .. }), "{e:?}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("get switch"), "{e}");

    server.inject(fault(FaultKind::Drop));
    let e = client.get("leaf01").await.unwrap_err();
    assert!(matches!(e, ApiError::Connect { .. }), "{e:?}");
    assert!(e.is_transient());

    // An answer that would take ten minutes: the configured 300 ms cut it
    // off (the outer minute only catches a client that waits for it).
    server.inject(fault(FaultKind::Delay(Duration::from_secs(600))));
    let e = tokio::time::timeout(Duration::from_secs(60), client.get("leaf01"))
        .await
        .expect("the client waited for the slow answer instead of timing out")
        .unwrap_err();
    assert!(
        matches!(e, ApiError::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(e.to_string().contains("did not answer within 300ms"), "{e}");
    assert!(e.is_transient());

    // Too large: a limit below the 122-nic answer.
    cfg.api_max_response_bytes = 4096;
    let mut small = api_client(&cfg).unwrap();
    let e = small.get("leaf01").await.unwrap_err();
    assert!(matches!(e, ApiError::TooLarge { limit: 4096, .. }), "{e:?}");

    // Unknown switch: not_found, not retried.
    client.set_retry(fast_retry(3));
    let e = client.get("nosuchswitch").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
}

/// Issue 22 item 5: an API's error text is shown escaped and cut
/// (`names::MESSAGE_CHARS`): a 200 KB message with `ESC[2J`, a
/// newline and U+202E reached the status file, the heartbeat and a forged
/// log line.
#[tokio::test]
async fn api_error_texts_are_escaped_and_cut() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let hostile = format!("\u{1b}[2J\nINFO forged line\u{202e}{}", "x".repeat(200_000));
    for version in ["v1", "v2"] {
        let (mut client, get, body) = if version == "v1" {
            (
                api_client(&v1_config(&server, HMAC_KEY)).unwrap(),
                Call::V1Find,
                json!({"message": hostile}),
            )
        } else {
            (
                api_client(&v2_config(&server, dir.path(), TOKEN)).unwrap(),
                Call::V2Get,
                json!({"code": "invalid_argument", "message": hostile}),
            )
        };
        client.set_retry(RetryPolicy::NONE);
        for body in [body.to_string().into_bytes(), hostile.clone().into_bytes()] {
            server.inject(Fault {
                call: Some(get),
                times: 1,
                kind: FaultKind::Body {
                    status: 400,
                    body: body.into(),
                },
            });
            let e = client.get("leaf01").await.unwrap_err().to_string();
            assert!(
                !e.contains(['\u{1b}', '\n', '\u{202e}']),
                "{version}: {}",
                &e[..e.len().min(400)]
            );
            assert!(e.len() < 2_000, "{version}: {} bytes", e.len());
        }
    }
}

/// The HMAC key and the token never reach an error message, `Debug`
/// output or a log line, including the warnings logged while retrying.
#[tokio::test]
async fn secrets_never_reach_errors_or_logs() {
    const KEY: &str = "topsecret-hmac-key-0451";
    const BAD_TOKEN: &str = "topsecret-token-9d2c";
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logs = logs.clone();
        move || LogWriter(logs.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut errors = Vec::new();
    let mut v1 = api_client(&v1_config(&server, KEY)).unwrap();
    v1.set_retry(fast_retry(3));
    server.inject(Fault::status(Call::V1Find, 503, 2));
    errors.push(v1.get("leaf01").await.unwrap_err());
    errors.push(v1.report("leaf01", &report()).await.unwrap_err());
    let mut v2 = api_client(&v2_config(&server, dir.path(), BAD_TOKEN)).unwrap();
    v2.set_retry(fast_retry(3));
    server.inject(Fault::status(Call::V2Get, 503, 2));
    errors.push(v2.get("leaf01").await.unwrap_err());
    let debug = format!("{v1:?} {v2:?} {errors:?}");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "the retries were logged: {logs}");
    for secret in [KEY, BAD_TOKEN] {
        assert!(!logs.contains(secret), "secret in logs: {logs}");
        assert!(!debug.contains(secret), "secret in Debug: {debug}");
        assert!(
            !text.iter().any(|t| t.contains(secret)),
            "secret in errors: {text:?}"
        );
    }
    // And the configuration never prints them either.
    let cfg = v1_config(&server, KEY);
    assert!(!format!("{cfg:?}").contains(KEY) && !cfg.to_toml().contains(KEY));
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// HTTPS with rustls: the lab CA from `api_ca_file` makes the lab's
/// certificate trusted; without it the system roots do not, and the error
/// says why.
#[tokio::test]
async fn https_with_an_extra_ca_file() {
    let server = ApiServer::start(ApiServerOptions {
        switches_dir: Some(lab_switches()),
        tokens: BTreeMap::from([(TOKEN.to_owned(), TokenGrant::Editor)]),
        tls: Some((fixtures::LAB_TLS_CERT.into(), fixtures::LAB_TLS_KEY.into())),
        ..ApiServerOptions::default()
    })
    .unwrap();
    assert!(server.base_url().starts_with("https://localhost:"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, fixtures::LAB_TLS_CA).unwrap();
    let mut cfg = v2_config(&server, dir.path(), TOKEN);

    let mut untrusted = api_client(&cfg).unwrap();
    untrusted.set_retry(RetryPolicy::NONE);
    let e = untrusted.get("leaf01").await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    assert!(server.records().is_empty());

    cfg.api_ca_file = Some(ca);
    let mut trusted = api_client(&cfg).unwrap();
    let got = trusted.get("leaf01").await.unwrap();
    assert_eq!(got.nic_names.len(), 122);

    cfg.api_ca_file = Some(dir.path().join("token"));
    let e = api_client(&cfg).unwrap_err();
    assert!(e.to_string().contains("api_ca_file"), "{e}");
}

// ---------------------------------------------------------------------------
// The lab server refuses what a naive client sends (it is a faithful stand-in)
// ---------------------------------------------------------------------------

/// Bodies a naive v2 client would send, and what metal-apiserver (and so
/// the lab) answers. traps: 4 (enum 0 / unknown name), 5 (`portStates: {}`),
/// 6 (validation: empty managementIp, 1-char name, `neighbor: ""`, bad id),
/// 7 (nic without state breaks Get; BGP entry without timer drops the
/// connection).
#[test]
fn lab_refuses_what_metal_apiserver_refuses() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let call = |procedure: &str, body: Value| {
        raw_http(
            &server,
            "POST",
            &format!("/metalstack.infra.v2.{procedure}"),
            &[
                ("Content-Type", "application/json".into()),
                ("Authorization", format!("Bearer {TOKEN}")),
            ],
            &body.to_string(),
        )
    };
    let hb = |extra: Value| {
        let mut b = json!({"id": "leaf01", "duration": "1s"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        call("SwitchService/Heartbeat", b)
    };
    let code = |r: (u16, Value)| (r.0, r.1["code"].as_str().unwrap_or("").to_owned());

    assert_eq!(
        code(hb(json!({"portStates": {}}))),
        (500, "internal".into())
    );
    assert_eq!(
        code(hb(
            json!({"portStates": {"Ethernet0": "SWITCH_PORT_STATUS_UP"}})
        )),
        (500, "internal".into())
    );
    let (s, b) = hb(
        json!({"bgpPortStates": {"Ethernet23": {"neighbor": "", "peerGroup": "MACHINE",
        "vrfName": "Vrf1", "bgpState": "BGP_STATE_IDLE", "bgpTimerUpEstablished": "1970-01-01T00:00:00Z"}}}),
    );
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_argument")));
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("bgp_port_states[\"Ethernet23\"].neighbor")
    );
    let (s, _) = hb(
        json!({"bgpPortStates": {"Ethernet0": {"neighbor": "fw-1", "peerGroup": "FIREWALL",
        "vrfName": "default", "bgpState": "BGP_STATE_ESTABLISHED"}}}),
    );
    assert_eq!(
        s, 0,
        "a BGP entry without timer crashes the server's update path"
    );
    // Unknown enum names decode to 0, which the conversions refuse.
    let all_up: serde_json::Map<String, Value> = server
        .switch("leaf01")
        .unwrap()
        .nics
        .iter()
        .map(|n| (n.name.clone(), json!("up")))
        .collect();
    assert_eq!(
        code(hb(json!({"portStates": all_up}))),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        code(call("SwitchService/Get", json!({"id": "leaf_01"}))),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        code(call("SwitchService/Get", json!(null))),
        (400, "invalid_argument".into())
    );

    let nic = |state: Value| json!({"name": "Ethernet0", "identifier": "Eth1/1", "state": state});
    let switch = |ip: &str, nics: Vec<Value>, vendor: &str| {
        json!({"switch": {"id": "leaf09", "partition": "mini-lab", "managementIp": ip,
            "nics": nics, "os": {"vendor": vendor, "version": "4.5.1", "metalCoreVersion": "x"}}})
    };
    let (s, b) = call(
        "SwitchService/Register",
        switch("", vec![], "SWITCH_OS_VENDOR_SONIC"),
    );
    assert_eq!(s, 400);
    assert!(
        b["message"].as_str().unwrap().contains("string.ip_empty"),
        "{b}"
    );
    let (s, b) = call(
        "SwitchService/Register",
        switch("10.0.0.9", vec![], "SWITCH_OS_VENDOR_SONIC"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains(
            "switch.os.metal_core_version: must be within 2 and 128 characters [string.is_name]"
        ),
        "{b}"
    );
    let sw = |nics, vendor| {
        let mut v = switch("10.0.0.9", nics, vendor);
        v["switch"]["os"]["metalCoreVersion"] = json!("metal-switchd lab");
        v
    };
    assert_eq!(
        code(call(
            "SwitchService/Register",
            sw(
                vec![nic(json!({"actual": "SWITCH_PORT_STATUS_UP"}))],
                "SWITCH_OS_VENDOR_UNSPECIFIED"
            )
        )),
        (400, "invalid_argument".into())
    );
    assert_eq!(
        code(call(
            "SwitchService/Register",
            sw(
                vec![nic(json!({"actual": "SWITCH_PORT_STATUS_UNSPECIFIED"}))],
                "SWITCH_OS_VENDOR_SONIC"
            )
        )),
        (400, "invalid_argument".into())
    );
    // Registered without state: stored, but the answer (and every Get) fails.
    let (s, b) = call(
        "SwitchService/Register",
        sw(
            vec![json!({"name": "Ethernet0", "identifier": "Eth1/1"})],
            "SWITCH_OS_VENDOR_SONIC",
        ),
    );
    assert_eq!((s, b["code"].as_str()), (500, Some("internal")), "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("nic state for port Ethernet0")
    );
    assert_eq!(
        code(call("SwitchService/Get", json!({"id": "leaf09"}))),
        (500, "internal".into())
    );
    // Events for an unknown non-UUID machine fail the whole batch.
    assert_eq!(
        code(call(
            "EventService/Send",
            json!({"events": {"machine-1": {"event": "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME"}}})
        )),
        (400, "invalid_argument".into())
    );
    // And v1 without os: metal-api's handler panics, the connection drops.
    let headers = signed_headers(HMAC_KEY, "POST", &now_rfc3339());
    let (s, _) = raw_http(
        &server,
        "POST",
        "/v1/switch/register",
        &headers,
        r#"{"id": "leaf09", "partition_id": "mini-lab", "nics": []}"#,
    );
    assert_eq!(s, 0);
}

// ---------------------------------------------------------------------------
// Registration: real redis, real netlink, both versions, and the CLI
// ---------------------------------------------------------------------------

static NETNS_SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace for one test, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!(
            "msw-{tag}-{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `ip` ({e}); install iproute2 (apt-get install -y iproute2)")
            });
        assert!(
            out.status.success(),
            "`ip netns add {name}` failed: {}; these tests need root (network namespaces)",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    fn ip(&self, args: &str) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend(args.split_whitespace());
        let out = Command::new("ip").args(&a).output().unwrap();
        assert!(
            out.status.success(),
            "ip {}: {}",
            a.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run `f` on a thread that has entered this namespace.
    fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace fd affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {path}: {}",
                std::io::Error::last_os_error()
            );
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A namespace with management interface `mgmt0` (a link-local and a
/// global address) and two switch ports: Ethernet0 running, Ethernet1 not.
fn switch_netns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ip("link add mgmt0 type veth peer name mgmt0p");
    ns.ip("addr add 169.254.7.7/16 dev mgmt0");
    ns.ip("addr add 10.99.0.11/24 dev mgmt0");
    ns.ip("link set mgmt0 up");
    ns.ip("link set mgmt0p up");
    ns.ip("link add Ethernet0 type veth peer name Ethernet0p");
    ns.ip("link set Ethernet0 up");
    ns.ip("link set Ethernet0p up");
    ns.ip("link add Ethernet1 type veth peer name Ethernet1p");
    ns.ip("link set Ethernet1 up");
    // The kernel sets the operational state (IFF_RUNNING) asynchronously.
    let start = Instant::now();
    loop {
        let out = Command::new("ip")
            .args(["-n", &ns.name, "-o", "link", "show", "Ethernet0"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("state UP") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Ethernet0 did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ns
}

fn sonic_version_file(dir: &Path) -> PathBuf {
    let p = dir.join("sonic_version.yml");
    std::fs::write(
        &p,
        "---\nbuild_version: 'SONiC.4.5.1-Enterprise_Base'\ndebian_version: '11.9'\nasic_type: vs\n",
    )
    .unwrap();
    p
}

/// Registration as the agent does it at start, for both API versions:
/// waits for PortInitDone, 122 nics from the seeded PORT table (default
/// naming schema: name = kernel name, identifier = alias), oper state and
/// management IP over real netlink in a namespace, the OS version from
/// sonic_version.yml; then fetches the switch and builds the SwitchSpec
/// from it and the same CONFIG_DB. traps: 6 (valid managementIp, skipping
/// the link-local one), 7 (state.actual per nic), 8 (identifier = alias).
#[tokio::test]
async fn registration_from_redis_and_netlink() {
    let redis = support::start_redis();
    seed_switch(
        &redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &SeedOptions {
            port_init_done: false,
            ..SeedOptions::default()
        },
    )
    .unwrap();
    let ns = switch_netns("reg");
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();

    for version in [ApiVersion::V2, ApiVersion::V1] {
        let mut cfg = match version {
            ApiVersion::V1 => v1_config(&server, HMAC_KEY),
            ApiVersion::V2 => v2_config(&server, dir.path(), TOKEN),
        };
        let lab_cfg = support::config::TestConfig::leaf01().build();
        cfg.hostname = lab_cfg.hostname.clone();
        cfg.partition_id = lab_cfg.partition_id.clone();
        cfg.rack_id = lab_cfg.rack_id.clone();
        cfg.spine_uplinks = lab_cfg.spine_uplinks.clone();
        cfg.pxe_vlan_id = lab_cfg.pxe_vlan_id;
        cfg.asn = lab_cfg.asn;
        cfg.management_interface = "mgmt0".into();
        cfg.sonic_version_file = sonic_version_file(dir.path());
        cfg.database_config = redis.write_database_config().unwrap();
        cfg.interface_naming_schema = NamingSchema::Default;

        let kernel = KernelView::start_in_netns(format!("/var/run/netns/{}", ns.name))
            .await
            .unwrap();
        let mut db = ConfigDb::connect(Databases::load(&cfg.database_config).unwrap())
            .await
            .unwrap();
        let mut client = api_client(&cfg).unwrap();
        let opts = RegisterOptions {
            wait_ready: Duration::from_secs(10),
            retry: fast_retry(1),
            give_up_after: Some(Duration::from_secs(20)),
            progress: None,
        };
        if version == ApiVersion::V2 {
            // Without PortInitDone nothing is registered: the wait ends in
            // NotReady and the API never sees a request.
            let not_yet = RegisterOptions {
                wait_ready: Duration::from_millis(300),
                retry: fast_retry(1),
                give_up_after: Some(Duration::ZERO),
                progress: None,
            };
            let e = register::register(&cfg, &mut db, &kernel, &mut client, &not_yet)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("PortInitDone missing"), "{e}");
            assert!(
                server.records_of(Call::V2Register).is_empty(),
                "registered before PortInitDone: {:?}",
                server.records_of(Call::V2Register)
            );
        }
        // SONiC finishes port initialisation: now the switch registers.
        if version == ApiVersion::V2 {
            support::process::port_init_done(&redis);
        }
        let (reg, fetched) = register::register(&cfg, &mut db, &kernel, &mut client, &opts)
            .await
            .unwrap();
        assert_eq!(reg.id, "leaf01");
        assert_eq!(reg.management_ip.to_string(), "10.99.0.11");
        assert_eq!(reg.os_version, "SONiC.4.5.1-Enterprise_Base");
        assert_eq!(reg.nics.len(), 122);
        assert_eq!(
            (reg.nics[0].name.as_str(), reg.nics[0].identifier.as_str()),
            ("Ethernet0", "Eth1/1")
        );
        assert_eq!(reg.nics[0].oper, PortOperState::Up);
        assert_eq!(reg.nics[1].oper, PortOperState::Down);
        assert_eq!(reg.nics[2].oper, PortOperState::Unknown);
        assert_eq!(fetched.nic_names.len(), 122);

        // The API's switch (leaf01 existed: VRFs kept) as a SwitchSpec.
        let got = client.get("leaf01").await.unwrap();
        let state = db.read().await.unwrap().0;
        let spec =
            metal_switchd::reconcile::prepare(&got.desc, &cfg, &state, &Confirmed::assumed())
                .unwrap()
                .spec;
        assert_eq!(spec.hostname, "leaf01");
        assert_eq!(
            spec.vrfs.keys().copied().collect::<Vec<_>>(),
            [104009, 104010]
        );

        let call = match version {
            ApiVersion::V1 => Call::V1Register,
            ApiVersion::V2 => Call::V2Register,
        };
        let recorded = server.records_of(call);
        let body = &recorded.last().unwrap().request;
        match version {
            ApiVersion::V2 => {
                assert_eq!(body["switch"]["managementIp"], "10.99.0.11");
                assert_eq!(
                    body["switch"]["nics"][0]["state"]["actual"],
                    "SWITCH_PORT_STATUS_UP"
                );
                assert_eq!(body["switch"]["nics"].as_array().unwrap().len(), 122);
            }
            ApiVersion::V1 => {
                assert_eq!(body["management_ip"], "10.99.0.11");
                assert_eq!(body["nics"][121]["identifier"], "Eth32");
            }
        }
    }
}

/// `metal-switchd register --once` end to end: the binary runs inside the
/// namespace (`ip netns exec`), where its management interface and the lab
/// server's listening socket live; redis is reached over its unix socket.
/// Then `metal-switchd fetch --format json` prints the SwitchSpec.
#[test]
fn cli_register_once_and_fetch() {
    let redis = support::start_redis();
    seed_switch(
        &redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &SeedOptions::default(),
    )
    .unwrap();
    let ns = switch_netns("cli");
    // The lab server's socket is bound inside the namespace.
    let server = ns.enter(|| lab(&[(TOKEN, TokenGrant::Editor)]));
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN, 0o600);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{}\napi_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}\"\n\
             metal_apiserver_token_file = \"{}\"\nmanagement_interface = \"mgmt0\"\n\
             sonic_version_file = \"{}\"\ndatabase_config = \"{}\"\n",
            fixtures::LEAF01_AGENT_CONFIG,
            server.base_url(),
            token.display(),
            sonic_version_file(dir.path()).display(),
            redis.write_database_config().unwrap().display(),
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_metal-switchd");
    let run = |args: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, bin, "--config"])
            .arg(&config)
            .args(args)
            .env_remove("METAL_SWITCHD_LOG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stdout, stderr) = run(&[
        "register",
        "--once",
        "--wait-ready",
        "5s",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["api"], "v2");
    assert_eq!(out["registration"]["management_ip"], "10.99.0.11");
    assert_eq!(out["registration"]["nics"].as_array().unwrap().len(), 122);
    assert_eq!(server.records_of(Call::V2Register).len(), 1);

    let (code, stdout, stderr) = run(&["fetch", "--format", "json"]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["spec"]["hostname"], "leaf01");
    assert_eq!(out["spec"]["ports"]["Ethernet0"]["role"], "firewall");
    assert_eq!(out["spec"]["ports"]["Ethernet1"]["role"], "tenant");
    assert_eq!(out["spec"]["ports"]["Ethernet120"]["role"], "underlay");

    let (code, stdout, _) = run(&["fetch"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("Vrf104009 VNI 104009"), "{stdout}");
    assert!(stdout.contains("Ethernet0    firewall"), "{stdout}");

    // A refused token file: exit code 2, the message says what to do.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = run(&["fetch"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}

/// Issue 9, finding 3 on the API path: `metal-switchd fetch` refuses a switch
/// the API describes without nics, with another id, with a non-canonical
/// VRF, an unknown admin status, an uplink connected to a firewall, or a
/// repeated key — exit code 2 and the same message as for a file.
#[test]
fn fetch_refuses_what_a_switch_file_is_refused_for() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/sonic/mini-lab-leaf01-dell-4.5.1-with-ports.config_db.json");
    let config = |port: u16| -> PathBuf {
        let p = dir.path().join(format!("config-{port}.toml"));
        std::fs::write(
            &p,
            format!(
                "{}
metal_api_ip = \"127.0.0.1\"\nmetal_api_port = {port}\n\
                 metal_api_basepath = \"/metal/\"\nhmac_key = \"{HMAC_KEY}\"\n\
                 api_retry_attempts = 1\ntimeout = \"5s\"\n",
                fixtures::LEAF01_AGENT_CONFIG
            ),
        )
        .unwrap();
        p
    };
    let fetch = |config: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .arg("--config")
            .arg(config)
            .arg("fetch")
            .arg("--configdb")
            .arg(&snapshot)
            .env_remove("METAL_SWITCHD_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let lab_config = config(server.addr().port());
    // The lab's leaf01 as it is: accepted.
    let (code, stdout, stderr) = fetch(&lab_config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Ethernet0    firewall"), "{stdout}");

    let doc: Value = serde_json::from_str(fixtures::LEAF01_SWITCH_V1).unwrap();
    let nic = |doc: &mut Value, name: &str| -> Value {
        let nics = doc["nics"].as_array_mut().unwrap();
        nics.iter().find(|n| n["name"] == name).unwrap().clone()
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d.to_string()
    };
    let set_nic = |d: &mut Value, name: &str, key: &str, v: Value| {
        let mut n = nic(d, name);
        n[key] = v;
        let nics = d["nics"].as_array_mut().unwrap();
        let i = nics.iter().position(|x| x["name"] == name).unwrap();
        nics[i] = n;
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "nics null",
            with(&|d| d["nics"] = Value::Null),
            "switch document: lists no nics (`nics` is missing, null or empty)",
        ),
        (
            "nics missing",
            with(&|d| {
                d.as_object_mut().unwrap().remove("nics");
            }),
            "switch document: lists no nics",
        ),
        (
            "another switch",
            with(&|d| d["id"] = json!("leaf02")),
            "describes switch \"leaf02\", but this switch is \"leaf01\" (hostname)",
        ),
        (
            "vrf+5",
            with(&|d| set_nic(d, "Ethernet7", "vrf", json!("vrf+5"))),
            "VNI \"+5\" is not a number",
        ),
        (
            "vrf0104009",
            with(&|d| set_nic(d, "Ethernet7", "vrf", json!("vrf0104009"))),
            "VNI \"0104009\" has a leading zero",
        ),
        (
            "admin status",
            with(&|d| set_nic(d, "Ethernet7", "admin_status", json!("SIDEWAYS"))),
            "nic \"Ethernet7\": admin_status \"SIDEWAYS\" is not UP, DOWN, UNKNOWN or null",
        ),
        (
            "uplink as firewall",
            with(&|d| set_nic(d, "Ethernet120", "vrf", json!("default"))),
            "port Ethernet120: is a spine uplink (spine_uplinks), but the API makes it a firewall port",
        ),
        (
            "uplink as tenant",
            with(&|d| set_nic(d, "Ethernet120", "vrf", json!("vrf104009"))),
            "port Ethernet120: is a spine uplink (spine_uplinks), but the API makes it a machine port",
        ),
    ];
    for (name, body, want) in &cases {
        server.inject(Fault {
            call: Some(Call::V1Find),
            times: 1,
            kind: FaultKind::Status {
                status: 200,
                body: Some(body.clone()),
            },
        });
        let (code, stdout, stderr) = fetch(&lab_config);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert!(stderr.contains(want), "{name}: lacks {want:?}: {stderr}");
    }

    // A repeated key, which the lab server cannot send (it re-encodes its
    // answers): one answer from a bare socket.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = fixtures::LEAF01_SWITCH_V1.replacen(
        "\"id\": \"leaf01\",",
        "\"id\": \"leaf01\", \"nics\": null,",
        1,
    );
    assert_ne!(body, fixtures::LEAF01_SWITCH_V1);
    let answer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before its request ended");
            req.extend_from_slice(&buf[..n]);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
    });
    let (code, _, stderr) = fetch(&config(port));
    answer.join().unwrap();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("key \"nics\" appears twice in one object"),
        "{stderr}"
    );
}

/// Issue 9, finding 3 on the v2 API path: `metal-switchd fetch` with
/// `api_version = "v2"` refuses a Switch whose `nics` is missing, `null`
/// (protojson: unset) or empty, and a spine uplink the API makes a tenant
/// port: exit 2, nothing on stdout, the problem named on stderr.
#[test]
fn fetch_v2_refuses_a_switch_without_nics_or_with_an_uplink_as_tenant() {
    let server = lab(&[(TOKEN, TokenGrant::Editor)]);
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN, 0o600);
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/sonic/mini-lab-leaf01-dell-4.5.1-with-ports.config_db.json");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{}\napi_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}\"\n\
             metal_apiserver_token_file = \"{}\"\napi_retry_attempts = 1\ntimeout = \"5s\"\n",
            fixtures::LEAF01_AGENT_CONFIG,
            server.base_url(),
            token.display(),
        ),
    )
    .unwrap();
    let fetch = || {
        let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .arg("--config")
            .arg(&config)
            .arg("fetch")
            .arg("--configdb")
            .arg(&snapshot)
            .env_remove("METAL_SWITCHD_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The lab's leaf01 over v2 as it is: accepted.
    let (code, stdout, stderr) = fetch();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("Ethernet0    firewall"), "{stdout}");
    assert_eq!(server.records_of(Call::V2Get).len(), 1);

    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(lab_switches().join("leaf01.v2.json")).unwrap(),
    )
    .unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut d = doc.clone();
        f(d["switch"].as_object_mut().unwrap());
        d.to_string()
    };
    let no_nics = "switch document: lists no nics (`nics` is missing, null or empty)";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "nics missing",
            with(&|s| {
                assert!(s.remove("nics").is_some());
            }),
            no_nics,
        ),
        (
            "nics null",
            with(&|s| {
                s.insert("nics".into(), Value::Null);
            }),
            no_nics,
        ),
        (
            "nics empty",
            with(&|s| {
                s.insert("nics".into(), json!([]));
            }),
            no_nics,
        ),
        (
            "uplink as tenant",
            with(&|s| {
                let nics = s["nics"].as_array_mut().unwrap();
                let n = nics
                    .iter_mut()
                    .find(|n| n["name"] == "Ethernet120")
                    .unwrap();
                n["vrf"] = json!("vrf104009");
            }),
            "port Ethernet120: is a spine uplink (spine_uplinks), but the API makes it a machine port",
        ),
    ];
    for (i, (name, body, want)) in cases.iter().enumerate() {
        server.inject(Fault {
            call: Some(Call::V2Get),
            times: 1,
            kind: FaultKind::Status {
                status: 200,
                body: Some(body.clone()),
            },
        });
        let (code, stdout, stderr) = fetch();
        // The answer came from the API (the injected one), not elsewhere.
        assert_eq!(server.records_of(Call::V2Get).len(), i + 2, "{name}");
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert!(stderr.contains(want), "{name}: lacks {want:?}: {stderr}");
    }
}

/// Issue 9, finding 2 on the registration path: `sonic_version.yml`
/// (`sonic_version_file`) is a regular file of at most 64 KiB. /dev/zero, a
/// FIFO and a larger file are invalid input: `register --once` exits 2 with
/// an error that names the file and the reason, without blocking, and
/// registers nothing.
#[test]
fn register_refuses_an_endless_or_oversized_sonic_version_file() {
    let redis = support::start_redis();
    seed_switch(
        &redis,
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &SeedOptions::default(),
    )
    .unwrap();
    let ns = switch_netns("sver");
    let server = ns.enter(|| lab(&[(TOKEN, TokenGrant::Editor)]));
    let dir = tempfile::tempdir().unwrap();
    let token = write_token(dir.path(), "token", TOKEN, 0o600);
    let fifo = dir.path().join("sonic_version-fifo.yml");
    support::process::mkfifo(&fifo);
    let big = dir.path().join("sonic_version-big.yml");
    let mut text = String::from("---\nbuild_version: 'SONiC.4.5.1-Enterprise_Base'\n");
    while text.len() <= 64 * 1024 {
        text.push_str("# padding to make the file larger than its limit\n");
    }
    std::fs::write(&big, &text).unwrap();
    let database_config = redis.write_database_config().unwrap();
    let bin = env!("CARGO_BIN_EXE_metal-switchd");
    for (version_file, want) in [
        (
            PathBuf::from("/dev/zero"),
            "sonic_version.yml /dev/zero: it is a character device, not a regular file".to_owned(),
        ),
        (
            fifo.clone(),
            format!(
                "sonic_version.yml {}: it is a FIFO (named pipe), not a regular file",
                fifo.display()
            ),
        ),
        (
            big.clone(),
            format!(
                "sonic_version.yml {}: it is larger than the limit of 65536 bytes",
                big.display()
            ),
        ),
    ] {
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "{}\napi_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"{}\"\n\
                 metal_apiserver_token_file = \"{}\"\nmanagement_interface = \"mgmt0\"\n\
                 sonic_version_file = \"{}\"\ndatabase_config = \"{}\"\n",
                fixtures::LEAF01_AGENT_CONFIG,
                server.base_url(),
                token.display(),
                version_file.display(),
                database_config.display(),
            ),
        )
        .unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, bin, "--config"])
            .arg(&config)
            .args(["register", "--once", "--wait-ready", "5s"])
            .env_remove("METAL_SWITCHD_LOG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{version_file:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{version_file:?}");
        assert!(
            stderr.contains(&want),
            "{version_file:?}: lacks {want:?}: {stderr}"
        );
        assert!(
            server.records_of(Call::V2Register).is_empty(),
            "{version_file:?}: registered"
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers: raw HTTP and HMAC headers (for requests the client would not send)
// ---------------------------------------------------------------------------

/// One HTTP/1.1 request over a plain TCP socket; returns the status (0 if
/// the server closed the connection without an answer) and the JSON body.
fn raw_http(
    server: &ApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    metal_switchd::time::format_rfc3339_seconds(secs as i64)
}

fn signed_headers(key: &str, method: &str, date: &str) -> Vec<(&'static str, String)> {
    let salt = "xKqLmNbVcZaSdFgHjWeRtYuI";
    let mac = metal_switchd::api::hmac::mac_hex(key.as_bytes(), date, method, salt.as_bytes());
    vec![
        ("Authorization", format!("Metal-Edit {mac}")),
        ("X-Date", date.to_owned()),
        ("X-Data-Salt", salt.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ]
}

/// Issue 21, item 4: `TokenService/Refresh` against the lab server, which
/// answers as metal-apiserver does: a new token with the old one's
/// lifetime for a token with the self permission; `permission_denied`
/// without it; `unauthenticated` once the token expired.
#[tokio::test]
async fn the_v2_token_is_refreshed_by_the_api() {
    use metal_switchd::api::token::claims;
    let server = lab(&[]);
    let dir = tempfile::tempdir().unwrap();
    let lifetime = Duration::from_secs(600);
    let old = server.issue_token(TokenGrant::Editor, lifetime, true);
    let mut client = api_client(&v2_config(&server, dir.path(), &old)).unwrap();
    let new = client.refresh_token().await.unwrap();
    assert_ne!(new.secret.expose(), old);
    let (c_old, c_new) = (claims(&old).unwrap(), claims(new.secret.expose()).unwrap());
    assert_eq!(
        c_new.exp.unwrap() - c_new.iat.unwrap(),
        c_old.exp.unwrap() - c_old.iat.unwrap(),
        "the same lifetime"
    );
    assert_eq!(
        new.expires, c_new.exp,
        "the API's answer and the claims agree"
    );
    assert_eq!(server.issued_tokens().len(), 2);
    // The refresh was sent with the old token; the new one is not written
    // by the client (that is the renewal's job).
    let rec = server.records_of(Call::V2TokenRefresh);
    assert_eq!((rec.len(), rec[0].status), (1, 200));

    let without = server.issue_token(TokenGrant::Editor, lifetime, false);
    let mut client = api_client(&v2_config(&server, dir.path(), &without)).unwrap();
    let e = client.refresh_token().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    assert!(!e.to_string().contains(&without));

    let expired = server.issue_token(TokenGrant::Editor, Duration::ZERO, true);
    let mut client = api_client(&v2_config(&server, dir.path(), &expired)).unwrap();
    let e = client.refresh_token().await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated), "{e}");
    assert!(client.get("leaf01").await.is_err());
}
