//! BGP unnumbered between two real FRRs, each configured by the agent, and
//! the BGP state reader (vtysh and state file) reporting the session.
//!
//! Two network namespaces joined by a veth pair named `Ethernet120` on both
//! sides; each namespace's FRR gets the configuration the agent renders for
//! a leaf whose spine uplink is `Ethernet120` (peer group FABRIC).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{exec_installer, leaf_config, spec};
use metal_switchd::frr;
use metal_switchd::frr::bgp::{BgpSource, MAX_STATE_FILE_AGE, SHOW_NEIGHBORS, StateFileWatch};
use metal_switchd::observed::BgpState;
use metal_switchd_lab::frr_lab::{FrrLab, run};

/// A switch without machines: one unprovisioned nic (a document without
/// nics is refused); the underlay comes from spine_uplinks.
fn no_machines(id: &str) -> String {
    format!(
        r#"{{"id": "{id}", "rack_id": "rack01", "nics": [{{"name": "Ethernet0", "vrf": ""}}]}}"#
    )
}

#[tokio::test]
async fn unnumbered_session_reaches_established_and_is_reported() {
    let a = FrrLab::start("leaf01").unwrap();
    let b = FrrLab::start("leaf02").unwrap();
    a.link("Ethernet120", &b, "Ethernet120").unwrap();
    // A loopback address each, redistributed as connected: prefix counters.
    run(
        "ip",
        &["-n", a.netns(), "addr", "add", "10.0.0.11/32", "dev", "lo"],
    )
    .unwrap();
    run(
        "ip",
        &["-n", b.netns(), "addr", "add", "10.0.0.12/32", "dev", "lo"],
    )
    .unwrap();

    for (lab, asn, lo) in [(&a, 4200000011, "10.0.0.11"), (&b, 4200000012, "10.0.0.12")] {
        let cfg = leaf_config(lab.hostname(), asn, lo, "");
        let text = frr::render(
            &spec(&cfg, &no_machines(lab.hostname())),
            metal_switchd::flavour::FrrLines::NONE,
        );
        assert!(text.contains(" neighbor Ethernet120 interface peer-group FABRIC\n"));
        exec_installer(lab)
            .install(&text)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", lab.hostname()));
    }

    let reader = BgpSource::Vtysh {
        vtysh: "/usr/bin/vtysh".into(),
        vty_socket_dir: Some(a.vty_socket_dir()),
        timeout: Duration::from_secs(10),
    };
    let started = Instant::now();
    let state = loop {
        let n = reader.read().await.unwrap();
        match n.states.get("Ethernet120") {
            Some(s)
                if s.state == BgpState::Established
                    && s.accepted_prefixes > 0
                    && s.sent_prefixes > 0 =>
            {
                break s.clone();
            }
            other => {
                if started.elapsed() > Duration::from_secs(60) {
                    panic!(
                        "no Established session with routes both ways on Ethernet120 \
                         after 60s: {other:?}\n{}\n{}",
                        a.vtysh(&["show bgp summary"]).unwrap_or_default(),
                        a.logs()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!(
        "BGP unnumbered Established after {:?}: {state:?}",
        started.elapsed()
    );
    assert_eq!(state.neighbor, "leaf02", "the peer's hostname");
    assert_eq!(state.peer_group, "FABRIC");
    assert_eq!(state.vrf_name, "default");
    assert_eq!(state.accepted_prefixes, 1, "leaf02's loopback");
    assert!(state.sent_prefixes >= 1, "leaf01's loopback");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let since = state
        .established_since
        .expect("an Established session has a timer");
    assert!(
        since <= now && now - since < 120,
        "epoch {since}, now {now}"
    );

    // The other side reports the session too.
    let reader_b = BgpSource::Vtysh {
        vtysh: "/usr/bin/vtysh".into(),
        vty_socket_dir: Some(b.vty_socket_dir()),
        timeout: Duration::from_secs(10),
    };
    let nb = reader_b.read().await.unwrap();
    assert_eq!(nb.states["Ethernet120"].neighbor, "leaf01");

    // The state file the metal-stack timer writes (temporary file + rename),
    // watched and read like metal-core's.
    let dir = a.scratch_dir().join("bgp-neighbors");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bgp-neighbors.json");
    let (seen_tx, seen) = std::sync::mpsc::channel::<(String, bool)>();
    let mut watch = StateFileWatch::observed(&path, move |p, counted| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let _ = seen_tx.send((name.unwrap_or_default(), counted));
    })
    .unwrap();
    let output = a.vtysh(&[SHOW_NEIGHBORS]).unwrap();
    let tmp = dir.join("tmp.XXXX");
    std::fs::write(&tmp, &output).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    tokio::time::timeout(Duration::from_secs(60), watch.changed())
        .await
        .expect("the watch reports the replaced state file")
        .expect("the watch is alive");
    let from_file = BgpSource::File {
        path: path.clone(),
        max_age: MAX_STATE_FILE_AGE,
    }
    .read()
    .await
    .unwrap();
    let s = &from_file.states["Ethernet120"];
    assert_eq!(s.state, BgpState::Established);
    assert_eq!(s.neighbor, "leaf02");
    // Unrelated files in the directory do not wake the watcher. The watch
    // handles events in order: once it has seen the barrier file, it has
    // handled every event of other.json.
    let until = |barrier: &str| {
        std::fs::write(dir.join(barrier), "").unwrap();
        let mut events = Vec::new();
        while events
            .last()
            .is_none_or(|(n, _): &(String, bool)| n != barrier)
        {
            events.push(
                seen.recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("the watch never saw {barrier}: {events:?}")),
            );
        }
        events
    };
    // Everything of the replacement above is handled; drop its notices.
    until("barrier.0");
    while watch.try_changed() {}
    std::fs::write(dir.join("other.json"), "{}").unwrap();
    let events = until("barrier.1");
    assert!(events.iter().any(|(n, _)| n == "other.json"), "{events:?}");
    assert!(
        events
            .iter()
            .filter(|(n, _)| n == "other.json")
            .all(|(_, counted)| !counted),
        "a change of another file counted: {events:?}"
    );
    assert!(
        !watch.try_changed(),
        "a change of another file was reported"
    );
}
