//! Phone-home end to end: LLDP frames on veth ports of a switch network
//! namespace, captured with AF_PACKET sockets, reported to the lab API
//! server over v2 Connect and over v1 gRPC with mutual TLS.
//!
//! Senders: Debian's `lldpd` (configured like go-lldpd: system name =
//! machine UUID, description `provisioned since …`) in machine namespaces,
//! and hand-built frames (metal-api reference §4.3, IEEE 802.1AB) for the
//! edge cases. Each test process makes its own namespaces; the test thread
//! enters the switch namespace, so the agent's sockets, the lab server and
//! its loopback port all live there.
//!
//! Prerequisites: root, `ip` (iproute2), `lldpd` (Debian package; `./dev
//! test` installs it). A missing one fails the test with a message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use metal_switchd::api::client::ApiClient;
use metal_switchd::config::Config;
use metal_switchd::lldp::{
    PhoneHome, PhoneHomeHandle, PhoneHomeOptions, PhoneHomeSnapshot, PortCapture,
};
use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, Call, Record, TokenGrant};
use metal_switchd_lab::netns::{Lldpd, Netns, RawSender, ethernet, go_lldpd_pdu, tlv, veth};
use metal_switchd_lab::pki::TestPki;
use serde_json::json;
use tokio::sync::watch;

const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-phone-home-token.c2lnbmF0dXJl";
const MACHINE_A: &str = "00000000-0000-0000-0000-0000000000a1";
const MACHINE_B: &str = "00000000-0000-0000-0000-0000000000b2";
const MACHINE_C: &str = "00000000-0000-0000-0000-0000000000c3";
const MACHINE_D: &str = "00000000-0000-0000-0000-0000000000d4";
const SINCE_A: &str = "provisioned since 2026-08-01T09:58:12Z";
const SINCE_B: &str = "provisioned since 2026-08-02T17:01:44Z";
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Only catches hangs; every wait ends as soon as its condition holds.
const HANG: Duration = Duration::from_secs(90);

fn ports(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The switch namespace, entered by the calling (test) thread.
fn switch_ns() -> Netns {
    let ns = Netns::new("lsw").expect("switch namespace");
    ns.enter_current_thread()
        .expect("entering the switch namespace");
    ns
}

/// Which API the agent reports to, and the lab server for it.
enum Api {
    V1 { pki: TestPki },
    V2,
}

impl Api {
    fn v1() -> Api {
        Api::V1 {
            pki: TestPki::generate("r01leaf01").expect("test certificates"),
        }
    }

    fn call(&self) -> Call {
        match self {
            Api::V1 { .. } => Call::V1EventSend,
            Api::V2 => Call::V2EventSend,
        }
    }

    /// A lab server (on the given ports, or free ones).
    fn server(&self, http: u16, grpc: u16) -> ApiServer {
        ApiServer::start(ApiServerOptions {
            tokens: [(TOKEN.to_owned(), TokenGrant::Editor)].into(),
            grpc: match self {
                Api::V1 { pki } => Some(pki.server_tls()),
                Api::V2 => None,
            },
            listen: ([127, 0, 0, 1], http).into(),
            grpc_listen: ([127, 0, 0, 1], grpc).into(),
            ..ApiServerOptions::default()
        })
        .expect("lab API server")
    }

    /// The agent's configuration for a server at these ports.
    fn config(&self, dir: &Path, http: u16, grpc: u16) -> Config {
        let mut env: Vec<(String, String)> = vec![
            ("METAL_CORE_TIMEOUT".into(), "3s".into()),
            ("METAL_SWITCHD_API_RETRY_ATTEMPTS".into(), "1".into()),
        ];
        match self {
            Api::V1 { pki } => {
                let files = pki.write(dir).unwrap();
                env.extend([
                    ("METAL_CORE_HMAC_KEY".into(), "metal-edit".into()),
                    ("METAL_CORE_METAL_API_IP".into(), "127.0.0.1".into()),
                    ("METAL_CORE_METAL_API_PORT".into(), http.to_string()),
                    (
                        "METAL_CORE_GRPC_ADDRESS".into(),
                        format!("localhost:{grpc}"),
                    ),
                    (
                        "METAL_CORE_GRPC_CA_CERT_FILE".into(),
                        files.ca.display().to_string(),
                    ),
                    (
                        "METAL_CORE_GRPC_CLIENT_CERT_FILE".into(),
                        files.client_cert.display().to_string(),
                    ),
                    (
                        "METAL_CORE_GRPC_CLIENT_KEY_FILE".into(),
                        files.client_key.display().to_string(),
                    ),
                ]);
            }
            Api::V2 => {
                let token = dir.join("token");
                std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
                std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
                env.extend([
                    ("METAL_SWITCHD_API_VERSION".into(), "v2".into()),
                    ("METAL_SWITCHD_API_ALLOW_PLAINTEXT".into(), "true".into()),
                    (
                        "METAL_CORE_METAL_APISERVER_URL".into(),
                        format!("http://127.0.0.1:{http}"),
                    ),
                    (
                        "METAL_CORE_METAL_APISERVER_TOKEN_FILE".into(),
                        token.display().to_string(),
                    ),
                ]);
            }
        }
        Config::from_sources(None, env).expect("agent configuration")
    }

    fn client(&self, server: &ApiServer, dir: &Path) -> ApiClient {
        let grpc = server
            .grpc_address()
            .and_then(|a| a.rsplit_once(':').map(|(_, p)| p.parse().unwrap()))
            .unwrap_or(1);
        metal_switchd::reconcile::options::api_client(&self.config(dir, server.addr().port(), grpc))
            .unwrap()
    }
}

fn options(interval_ms: u64) -> PhoneHomeOptions {
    PhoneHomeOptions {
        interval: Duration::from_millis(interval_ms),
        recheck: Duration::from_millis(100),
        ..PhoneHomeOptions::default()
    }
}

async fn wait_snapshot(
    h: &PhoneHomeHandle,
    what: &str,
    pred: impl Fn(&PhoneHomeSnapshot) -> bool,
) -> PhoneHomeSnapshot {
    match tokio::time::timeout(HANG, h.wait_for(pred)).await {
        Ok(s) => s,
        Err(_) => panic!(
            "timed out waiting for {what}; snapshot: {}",
            serde_json::to_string_pretty(&h.snapshot()).unwrap()
        ),
    }
}

/// Wait until the lab recorded `n` calls of `call` after `seq`.
async fn wait_records(server: &ApiServer, call: Call, after_seq: u64, n: usize) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + HANG;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let recs: Vec<Record> = server
            .records_of(call)
            .into_iter()
            .filter(|r| r.seq > after_seq)
            .collect();
        if recs.len() >= n {
            return recs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {n} {} calls; recorded: {:#?}",
            call.name(),
            server.records()
        );
        tick.tick().await;
    }
}

fn is_open(s: &PhoneHomeSnapshot, port: &str) -> bool {
    matches!(s.ports.get(port), Some(PortCapture::Open { .. }))
}

fn machine_on(s: &PhoneHomeSnapshot, port: &str) -> Option<String> {
    s.neighbors.get(port).and_then(|n| n.machine_id.clone())
}

/// The events of one recorded Send body: machine id → (event, message).
fn events(r: &Record) -> BTreeMap<String, (String, String)> {
    r.request["events"]
        .as_object()
        .unwrap_or_else(|| panic!("no events in {}", r.request))
        .iter()
        .map(|(id, e)| {
            (
                id.clone(),
                (
                    e["event"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

/// Machines A (on Ethernet0 and Ethernet4) and B (Ethernet8) run lldpd
/// like go-lldpd; C (Ethernet12) runs lldpd without `provisioned`. Every
/// Send holds exactly one event per provisioned machine.
async fn phone_home_with_lldpd(api: Api) {
    let _switch = switch_ns();
    let a = Netns::new("lma").unwrap();
    let b = Netns::new("lmb").unwrap();
    let c = Netns::new("lmc").unwrap();
    veth(&_switch, "Ethernet0", &a, "eth0", 1500).unwrap();
    veth(&_switch, "Ethernet4", &a, "eth1", 1500).unwrap();
    veth(&_switch, "Ethernet8", &b, "eth0", 1500).unwrap();
    veth(&_switch, "Ethernet12", &c, "eth0", 1500).unwrap();
    let _la = Lldpd::start(&a, &["eth0", "eth1"], MACHINE_A, SINCE_A).unwrap();
    let _lb = Lldpd::start(&b, &["eth0"], MACHINE_B, SINCE_B).unwrap();
    let _lc = Lldpd::start(
        &c,
        &["eth0"],
        MACHINE_C,
        "metal-hammer waiting for installation",
    )
    .unwrap();

    let server = api.server(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let client = api.client(&server, dir.path());
    let (_tx, rx) = watch::channel(ports(&[
        "Ethernet0",
        "Ethernet4",
        "Ethernet8",
        "Ethernet12",
    ]));
    let h = PhoneHome::spawn(rx, client, options(3000));

    let snap = wait_snapshot(&h, "all four neighbours", |s| {
        machine_on(s, "Ethernet0").as_deref() == Some(MACHINE_A)
            && machine_on(s, "Ethernet4").as_deref() == Some(MACHINE_A)
            && machine_on(s, "Ethernet8").as_deref() == Some(MACHINE_B)
            && s.neighbors.contains_key("Ethernet12")
    })
    .await;
    let c_neighbor = &snap.neighbors["Ethernet12"];
    assert_eq!(c_neighbor.machine_id, None);
    assert_eq!(c_neighbor.system_name.as_deref(), Some(MACHINE_C));
    assert_eq!(
        snap.neighbors["Ethernet4"].port_description.as_deref(),
        Some("eth1")
    );
    assert_eq!(
        snap.neighbors["Ethernet0"].ttl, 4,
        "lldpd: TTL = 4 × tx-interval"
    );

    // From now on every interval has frames of A and B. The first call
    // recorded after this point may stem from a batch taken just before
    // it; the two after that each carry exactly one event per machine.
    let seen_at = server.records().last().map(|r| r.seq).unwrap_or(0);
    let recs = wait_records(&server, api.call(), seen_at, 3).await;
    let recs = &recs[1..];
    let (event, message_a, message_b) = match api {
        Api::V1 { .. } => ("Phoned Home", SINCE_A, SINCE_B),
        Api::V2 => (
            "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME",
            SINCE_A,
            SINCE_B,
        ),
    };
    for r in &recs[..2] {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            events(r),
            BTreeMap::from([
                (
                    MACHINE_A.to_owned(),
                    (event.to_owned(), message_a.to_owned())
                ),
                (
                    MACHINE_B.to_owned(),
                    (event.to_owned(), message_b.to_owned())
                ),
            ]),
            "{}",
            r.request
        );
        assert!(r.request["events"][MACHINE_A]["time"].is_string());
    }
    match api {
        Api::V1 { .. } => assert_eq!(recs[0].response, json!({"events": "2", "failed": []})),
        Api::V2 => assert_eq!(recs[0].response, json!({"events": "2"})),
    }
    println!(
        "recorded {} request body from lldpd senders:\n{}",
        api.call().name(),
        serde_json::to_string_pretty(&recs[0].request).unwrap()
    );
    let snap = wait_snapshot(&h, "three successful sends", |s| s.stats.sends_ok >= 3).await;
    assert_eq!(snap.stats.sends_failed, 0);
    assert_eq!(
        snap.stats.malformed.total(),
        0,
        "{:?}",
        snap.stats.malformed
    );
    println!(
        "status snapshot:\n{}",
        serde_json::to_string_pretty(&snap).unwrap()
    );
    h.shutdown().await;
}

#[tokio::test]
async fn lldpd_machines_phone_home_over_v2_connect() {
    phone_home_with_lldpd(Api::V2).await;
}

#[tokio::test]
async fn lldpd_machines_phone_home_over_v1_grpc_with_mtls() {
    phone_home_with_lldpd(Api::v1()).await;
}

/// The lab's gRPC port really requires a client certificate of its CA.
#[tokio::test]
async fn v1_grpc_refuses_a_client_certificate_of_another_ca() {
    let _switch = switch_ns();
    let api = Api::v1();
    let server = api.server(0, 0);
    let Api::V1 { pki } = &api else {
        unreachable!()
    };
    let intruder = Api::V1 {
        pki: pki.foreign().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut client = intruder.client(&server, dir.path());
    let ev = metal_switchd::api::PhoneHomeEvent {
        machine_id: MACHINE_A.into(),
        time: Duration::from_secs(1_775_000_000),
        message: SINCE_A.into(),
    };
    let e = client
        .send_events(std::slice::from_ref(&ev))
        .await
        .unwrap_err();
    assert!(e.grpc_code().is_some(), "{e}");
    assert!(server.records_of(Call::V1EventSend).is_empty());
    // The right certificate gets through.
    let dir = tempfile::tempdir().unwrap();
    let mut client = api.client(&server, dir.path());
    let out = client.send_events(&[ev]).await.unwrap();
    assert_eq!(out.sent, 1);
    assert!(out.failed.is_empty());
}

/// Hand-built frames: each malformed kind is counted once and dropped, a
/// wrong EtherType never reaches the socket, a non-provisioned neighbour is
/// shown but not reported, and a frame after all of them still works.
#[tokio::test]
async fn edge_case_frames_are_counted_and_dropped() {
    let switch = switch_ns();
    let m = Netns::new("lme").unwrap();
    veth(&switch, "Ethernet0", &m, "eth0", 9500).unwrap();
    let raw = RawSender::open(&m, "eth0").unwrap();
    let api = Api::V2;
    let server = api.server(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(ports(&["Ethernet0"]));
    let h = PhoneHome::spawn(rx, api.client(&server, dir.path()), options(500));
    wait_snapshot(&h, "Ethernet0 captured", |s| is_open(s, "Ethernet0")).await;

    let good = go_lldpd_pdu(MAC, "eth0", MACHINE_A, SINCE_A);
    let chassis = tlv(1, &[4, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    let port = tlv(2, b"\x05eth0");
    let ttl = tlv(3, &[0, 4]);
    let mut too_long_tlv = tlv(6, SINCE_A.as_bytes());
    too_long_tlv[1] = 0xff; // declares 255 bytes, carries 38
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "missing TTL",
            ethernet(
                MAC,
                0x88cc,
                &[chassis.clone(), port.clone(), tlv(0, &[])].concat(),
            ),
        ),
        (
            "truncated inside a TLV",
            ethernet(MAC, 0x88cc, &good[..good.len() - 10]),
        ),
        (
            "TLV longer than the frame",
            ethernet(
                MAC,
                0x88cc,
                &[chassis.clone(), port.clone(), ttl.clone(), too_long_tlv].concat(),
            ),
        ),
        (
            "out of order",
            ethernet(
                MAC,
                0x88cc,
                &[port.clone(), chassis.clone(), ttl.clone()].concat(),
            ),
        ),
        ("oversized (9400 bytes)", {
            let mut f = ethernet(MAC, 0x88cc, &good);
            f.resize(9400, 0);
            f
        }),
        ("wrong EtherType", ethernet(MAC, 0x0800, &good)),
        (
            "not provisioned",
            ethernet(
                MAC,
                0x88cc,
                &go_lldpd_pdu(MAC, "eth0", MACHINE_C, "metal-hammer waiting"),
            ),
        ),
        ("provisioned (last)", ethernet(MAC, 0x88cc, &good)),
    ];
    for (what, f) in &frames {
        raw.send(f).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // One socket delivers in order: once the last frame is seen, all are.
    let snap = wait_snapshot(&h, "the last frame", |s| {
        machine_on(s, "Ethernet0").as_deref() == Some(MACHINE_A)
    })
    .await;
    let malformed: BTreeMap<&str, u64> = snap.stats.malformed.0.clone();
    assert_eq!(
        malformed,
        BTreeMap::from([
            ("missing_tlv", 1),
            ("out_of_order", 1),
            ("too_long", 1),
            ("truncated", 2),
        ])
    );
    assert_eq!(
        snap.stats.frames, 2,
        "the non-provisioned and the provisioned frame"
    );
    assert_eq!(snap.stats.phone_home_frames, 1);
    let recs = wait_records(&server, Call::V2EventSend, 0, 1).await;
    assert_eq!(
        events(&recs[0]).keys().collect::<Vec<_>>(),
        vec![MACHINE_A],
        "only the provisioned machine: {}",
        recs[0].request
    );
    h.shutdown().await;
}

/// The watch channel decides what is captured: a port added later is
/// picked up, a removed one released; a port whose netdev is deleted and
/// created again (new ifindex) is re-opened by itself.
#[tokio::test]
async fn ports_follow_the_watch_channel_and_the_netdevs() {
    let switch = switch_ns();
    let m = Netns::new("lmp").unwrap();
    veth(&switch, "Ethernet0", &m, "p0", 1500).unwrap();
    veth(&switch, "Ethernet4", &m, "p4", 1500).unwrap();
    let api = Api::V2;
    let server = api.server(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(ports(&["Ethernet0"]));
    let h = PhoneHome::spawn(rx, api.client(&server, dir.path()), options(60_000));
    wait_snapshot(&h, "Ethernet0 captured", |s| is_open(s, "Ethernet0")).await;
    let frame = |id: &str, nic: &str| ethernet(MAC, 0x88cc, &go_lldpd_pdu(MAC, nic, id, SINCE_A));

    // Not followed: a frame on Ethernet4 is not captured.
    let p0 = RawSender::open(&m, "p0").unwrap();
    let p4 = RawSender::open(&m, "p4").unwrap();
    p4.send(&frame(MACHINE_B, "p4")).unwrap();
    p0.send(&frame(MACHINE_A, "p0")).unwrap();
    let snap = wait_snapshot(&h, "A on Ethernet0", |s| {
        machine_on(s, "Ethernet0").is_some()
    })
    .await;
    assert!(!snap.ports.contains_key("Ethernet4"));
    assert!(!snap.neighbors.contains_key("Ethernet4"));

    // Added later: picked up.
    tx.send(ports(&["Ethernet0", "Ethernet4"])).unwrap();
    wait_snapshot(&h, "Ethernet4 captured", |s| is_open(s, "Ethernet4")).await;
    p4.send(&frame(MACHINE_B, "p4")).unwrap();
    wait_snapshot(&h, "B on Ethernet4", |s| {
        machine_on(s, "Ethernet4").as_deref() == Some(MACHINE_B)
    })
    .await;

    // Removed: released, its neighbour forgotten; pending events stay.
    tx.send(ports(&["Ethernet4"])).unwrap();
    let snap = wait_snapshot(&h, "Ethernet0 released", |s| {
        !s.ports.contains_key("Ethernet0") && !s.neighbors.contains_key("Ethernet0")
    })
    .await;
    assert_eq!(
        snap.pending,
        vec![MACHINE_A.to_owned(), MACHINE_B.to_owned()]
    );

    // The netdev vanishes and comes back with a new ifindex.
    let old = switch.ifindex("Ethernet4").unwrap();
    switch.ip(&["link", "del", "Ethernet4"]).unwrap();
    wait_snapshot(&h, "Ethernet4 unavailable", |s| {
        matches!(
            s.ports.get("Ethernet4"),
            Some(PortCapture::Unavailable { .. })
        )
    })
    .await;
    veth(&switch, "Ethernet4", &m, "p4", 1500).unwrap();
    let new = switch.ifindex("Ethernet4").unwrap();
    assert_ne!(old, new);
    wait_snapshot(&h, "Ethernet4 re-opened", |s| {
        s.ports.get("Ethernet4") == Some(&PortCapture::Open { ifindex: new })
    })
    .await;
    let p4 = RawSender::open(&m, "p4").unwrap();
    p4.send(&frame(MACHINE_D, "p4")).unwrap();
    wait_snapshot(&h, "D on the new Ethernet4", |s| {
        machine_on(s, "Ethernet4").as_deref() == Some(MACHINE_D)
    })
    .await;
    h.shutdown().await;
}

/// While the API is unreachable every batch fails and is kept; once it is
/// up, the events seen before (and no newer frame since) arrive.
async fn unreachable_api_loses_no_event(api: Api) {
    let switch = switch_ns();
    let m = Netns::new("lmu").unwrap();
    veth(&switch, "Ethernet0", &m, "eth0", 1500).unwrap();
    veth(&switch, "Ethernet4", &m, "eth1", 1500).unwrap();
    // The switch namespace is ours alone: these ports stay free.
    let (http, grpc) = (18080, 50051);
    let dir = tempfile::tempdir().unwrap();
    let client =
        metal_switchd::reconcile::options::api_client(&api.config(dir.path(), http, grpc)).unwrap();
    let (_tx, rx) = watch::channel(ports(&["Ethernet0", "Ethernet4"]));
    let h = PhoneHome::spawn(rx, client, options(300));
    wait_snapshot(&h, "both ports captured", |s| {
        is_open(s, "Ethernet0") && is_open(s, "Ethernet4")
    })
    .await;
    let send = |dev: &str, id: &str, desc: &str| {
        RawSender::open(&m, dev)
            .unwrap()
            .send(&ethernet(MAC, 0x88cc, &go_lldpd_pdu(MAC, dev, id, desc)))
            .unwrap();
    };
    send("eth0", MACHINE_A, SINCE_A);
    send("eth1", MACHINE_B, SINCE_B);
    let snap = wait_snapshot(&h, "two failed sends with both machines kept", |s| {
        s.stats.sends_failed >= 2 && s.pending.len() == 2
    })
    .await;
    assert_eq!(snap.stats.sends_ok, 0);
    assert!(
        snap.last_send
            .as_ref()
            .is_some_and(|l| !l.ok && l.error.is_some())
    );

    let server = api.server(http, grpc);
    let recs = wait_records(&server, api.call(), 0, 1).await;
    let got = events(&recs[0]);
    assert_eq!(got.len(), 2, "{}", recs[0].request);
    assert_eq!(got[MACHINE_A].1, SINCE_A);
    assert_eq!(got[MACHINE_B].1, SINCE_B);
    let snap = wait_snapshot(&h, "delivered", |s| s.stats.events_sent == 2).await;
    assert!(snap.pending.is_empty());
    assert!(snap.last_success.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_v2_api_loses_no_event() {
    unreachable_api_loses_no_event(Api::V2).await;
}

#[tokio::test]
async fn unreachable_v1_grpc_loses_no_event() {
    unreachable_api_loses_no_event(Api::v1()).await;
}

/// A machine namespace wired to a switch namespace (`eth<i>` ↔
/// `Ethernet<4·i>`), a v2 lab server, and phone-home on those ports every
/// `interval_ms`, all of them captured. Keep every field alive (bind it by
/// name, never `..`): the namespaces, the token file and the port list end
/// with them.
struct Wired {
    _switch: Netns,
    m: Netns,
    server: ApiServer,
    _dir: tempfile::TempDir,
    _ports: watch::Sender<BTreeSet<String>>,
    h: PhoneHomeHandle,
}

async fn wired_v2(name: &str, nics: usize, interval_ms: u64) -> Wired {
    let switch = switch_ns();
    let m = Netns::new(name).unwrap();
    let names: Vec<String> = (0..nics).map(|i| format!("Ethernet{}", 4 * i)).collect();
    for (i, port) in names.iter().enumerate() {
        veth(&switch, port, &m, &format!("eth{i}"), 1500).unwrap();
    }
    let api = Api::V2;
    let server = api.server(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    let (tx, rx) = watch::channel(wanted);
    let h = PhoneHome::spawn(rx, api.client(&server, dir.path()), options(interval_ms));
    wait_snapshot(&h, "the ports captured", |s| {
        names.iter().all(|p| is_open(s, p))
    })
    .await;
    Wired {
        _switch: switch,
        m,
        server,
        _dir: dir,
        _ports: tx,
        h,
    }
}

/// A go-lldpd frame of machine `id` on the machine's `dev`.
fn send_from(m: &Netns, dev: &str, id: &str, desc: &str) {
    RawSender::open(m, dev)
        .unwrap()
        .send(&ethernet(MAC, 0x88cc, &go_lldpd_pdu(MAC, dev, id, desc)))
        .unwrap();
}

/// Issue 22, item 1: metal-apiserver handles every event of a batch on its
/// own and answers with the error of a failed one (the counts hidden); the
/// events that succeeded are stored. A batch refused in part is therefore
/// split by that answer (the machine it names is dropped and counted, the
/// others were taken) in one call, never resent one by one.
#[tokio::test]
async fn a_batch_refused_in_part_is_split_by_the_answer() {
    // The first interval ends 2 s after the start: the frames below are
    // seen long before, so they share one batch.
    let Wired {
        m,
        server,
        h,
        _switch,
        _dir,
        _ports,
    } = wired_v2("lmr", 3, 2000).await;
    server.refuse_events_of(MACHINE_B, "invalid_argument");
    send_from(&m, "eth0", MACHINE_A, SINCE_A);
    send_from(&m, "eth1", MACHINE_B, SINCE_A);
    send_from(&m, "eth2", MACHINE_C, SINCE_A);
    let snap = wait_snapshot(&h, "the batch handled", |s| {
        s.stats.events_sent + s.stats.events_rejected == 3
    })
    .await;
    assert_eq!(snap.stats.events_rejected, 1, "{:?}", snap.stats);
    assert!(snap.pending.is_empty(), "{:?}", snap.pending);
    let recs = server.records_of(Call::V2EventSend);
    let bodies: Vec<(u16, Vec<String>)> = recs
        .iter()
        .map(|r| (r.status, events(r).into_keys().collect()))
        .collect();
    assert_eq!(
        bodies,
        vec![(
            400,
            vec![
                MACHINE_A.to_owned(),
                MACHINE_B.to_owned(),
                MACHINE_C.to_owned()
            ]
        )],
        "one call for the batch, nothing sent again"
    );
    // What the API took in that one call.
    let phoned = vec!["MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME".to_owned()];
    assert_eq!(server.machine_events(MACHINE_A), phoned);
    assert_eq!(server.machine_events(MACHINE_C), phoned);
    assert!(server.machine_events(MACHINE_B).is_empty());
    h.shutdown().await;
}

/// A name of `len` random letters and digits.
fn random_text(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

/// A random UUID-shaped name.
fn random_uuid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

/// Issue 22, item 1: anything on a port can send LLDP frames. A flood of
/// 10,000 forged phone-homes with random names (half of them UUID-shaped)
/// on one port costs at most one API call per interval, never sends a name
/// that is not a UUID, takes a bounded share of each batch, and leaves the
/// real machines' events (on other ports) intact.
#[tokio::test]
async fn forged_frames_on_one_port_cost_one_call_per_interval() {
    const INTERVAL_MS: u64 = 500;
    let started = std::time::Instant::now();
    let Wired {
        m,
        server,
        h,
        _switch,
        _dir,
        _ports,
    } = wired_v2("lmf", 3, INTERVAL_MS).await;
    send_from(&m, "eth1", MACHINE_A, SINCE_B);
    send_from(&m, "eth2", MACHINE_B, SINCE_B);
    let attacker = RawSender::open(&m, "eth0").unwrap();
    for n in 0..10_000 {
        let name = if n % 2 == 0 {
            random_text(1 + n % 60)
        } else {
            random_uuid()
        };
        attacker
            .send(&ethernet(
                MAC,
                0x88cc,
                &go_lldpd_pdu(MAC, "eth0", &name, SINCE_A),
            ))
            .unwrap();
    }
    // The last frame on the port (sent again until it is seen: the socket
    // may drop frames of a flood, never reorder them).
    let sentinel = random_uuid();
    loop {
        attacker
            .send(&ethernet(
                MAC,
                0x88cc,
                &go_lldpd_pdu(MAC, "eth0", &sentinel, SINCE_A),
            ))
            .unwrap();
        let seen = tokio::time::timeout(
            Duration::from_secs(1),
            h.wait_for(|s| machine_on(s, "Ethernet0").as_deref() == Some(sentinel.as_str())),
        )
        .await;
        if seen.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < HANG,
            "the sentinel frame was never seen"
        );
    }
    // One more call after the flood.
    let calls_then = h.snapshot().stats.sends_ok + h.snapshot().stats.sends_failed;
    let snap = wait_snapshot(&h, "one more call, nothing pending", |s| {
        s.stats.sends_ok + s.stats.sends_failed > calls_then && s.pending.is_empty()
    })
    .await;
    let elapsed = started.elapsed();
    let recs = server.records_of(Call::V2EventSend);
    let calls = snap.stats.sends_ok + snap.stats.sends_failed;
    assert_eq!(recs.len() as u64, calls, "every call is one lab record");
    // The ticker never fires faster than the interval (it only falls behind
    // on a loaded machine), so this bound holds whatever the load.
    let intervals = elapsed.as_millis() as u64 / INTERVAL_MS + 1;
    assert!(
        calls <= intervals,
        "{calls} event calls in {elapsed:?} ({intervals} intervals of {INTERVAL_MS} ms)"
    );
    assert_eq!(calls, snap.stats.batches, "one call per batch");
    for r in &recs {
        let ids: Vec<String> = events(r).into_keys().collect();
        assert!(
            ids.iter()
                .all(|id| metal_switchd::lldp::collector::is_uuid(id)),
            "a name that is not a UUID was sent: {ids:?}"
        );
        let forged = ids
            .iter()
            .filter(|id| *id != MACHINE_A && *id != MACHINE_B)
            .count();
        assert!(
            forged <= metal_switchd::lldp::collector::MAX_PENDING_PER_PORT,
            "{forged} events of one port in one batch"
        );
        assert_eq!(r.status, 200, "{}", r.response);
    }
    assert!(snap.stats.not_a_machine_id >= 1, "{:?}", snap.stats);
    for id in [MACHINE_A, MACHINE_B] {
        assert_eq!(
            server.machine_events(id),
            vec!["MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME".to_owned()],
            "{id}"
        );
    }
    h.shutdown().await;
}

/// Issue 22, item 8: a neighbour that stops sending is forgotten once the
/// TTL of its last frame (4 s, go-lldpd's) has run out.
#[tokio::test]
async fn a_silent_neighbour_expires_by_its_ttl() {
    let Wired {
        m,
        h,
        server: _server,
        _switch,
        _dir,
        _ports,
    } = wired_v2("lmt", 1, 300).await;
    send_from(&m, "eth0", MACHINE_A, SINCE_A);
    wait_snapshot(&h, "A seen", |s| {
        machine_on(s, "Ethernet0").as_deref() == Some(MACHINE_A)
    })
    .await;
    // The snapshot is re-read at every interval; the neighbour goes once
    // its 4 s are over.
    let snap = wait_snapshot(&h, "A forgotten after its TTL", |s| {
        !s.neighbors.contains_key("Ethernet0")
    })
    .await;
    assert_eq!(snap.stats.neighbors_expired, 1);
    h.shutdown().await;
}
