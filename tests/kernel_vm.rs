//! Kernel-confirmed convergence and kernel drift on a full kernel (`vrf`,
//! `vlan`, bridge VLAN filtering): these tests run in the full-kernel VM
//! (`./dev vm-test`), and fail elsewhere with a message saying so.
//!
//! A leaf with tenant VRFs is applied through the agent's CONFIG_DB apply
//! path to a real redis; the SONiC stand-in creates the kernel objects as
//! SONiC's managers do (`lab/src/sonic_kernel.rs`) in a network namespace;
//! the kernel view confirms the expectations. Then objects are broken by
//! hand and each shows up as the mismatch the reference predicts; the
//! repairable ones are repaired the SONiC way through CONFIG_DB (delete,
//! wait for the manager, write again).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use metal_switchd::kernel::KernelView;
use metal_switchd::kernel::expect::{
    KernelExpectations, Mismatch, MismatchKind, RepairMethod, compare, expectations,
};
use metal_switchd_lab::netns::Netns;
use metal_switchd_lab::redis_server::{CONFIG_DB, STATE_DB};
use metal_switchd_lab::sonic::StandInOptions;
use support::kernel::{add_ports, small_leaf};
use support::{Switch, assert_no_violations};

/// Generous (the VM emulates its CPU): only catches hangs.
const WAIT: Duration = Duration::from_secs(90);

/// A namespace on a kernel that has what SONiC's managers need, or a
/// failure that says where these tests run.
fn full_kernel_netns(tag: &str) -> Netns {
    let ns = Netns::new(tag).unwrap_or_else(|e| panic!("{e:#}"));
    let missing: Vec<&str> = [
        ("vrf", ns.supports("vrf")),
        ("vlan", ns.supports("vlan")),
        ("bridge vlan_filtering", ns.supports_vlan_filtering()),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(n, _)| n)
    .collect();
    assert!(
        missing.is_empty(),
        "this kernel ({}) lacks {}: the kernel_vm tests run in the full-kernel VM; \
         run them with `./dev vm-test` (`./dev test` does too)",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        missing.join(", ")
    );
    ns
}

/// Wait until `key` no longer exists in redis database `db` (keyspace
/// notifications; checked after subscribing, so no event is missed).
async fn wait_gone(sw: &Switch, db: i64, key: &str) {
    let url = sw.redis.url(db);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("__keyspace@{db}__:{key}"))
        .await
        .unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    if exists == 0 {
        return;
    }
    let mut messages = pubsub.on_message();
    let wait = async {
        while let Some(m) = messages.next().await {
            let op: String = m.get_payload().unwrap_or_default();
            if op == "del" {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{key} in db {db} never went away"));
}

/// Re-assert CONFIG_DB entries the way `method` says.
async fn reassert(sw: &Switch, m: &Mismatch) {
    assert_eq!(m.method, RepairMethod::Recreate, "{m}");
    let url = sw.redis.url(CONFIG_DB);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for key in &m.repair {
        let k = key.redis_key();
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(!fields.is_empty(), "{k} is in CONFIG_DB");
        let () = redis::cmd("DEL")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        // The manager's confirmation that it processed the DEL (reference §4).
        let confirmation = match key.table {
            metal_switchd::configdb::schema::Table::Interface => {
                format!("INTERFACE_TABLE|{}", key.name)
            }
            metal_switchd::configdb::schema::Table::VxlanTunnelMap => {
                let vlan = fields
                    .iter()
                    .find(|(f, _)| f == "vlan")
                    .map(|(_, v)| v.clone())
                    .unwrap();
                format!("SUPPRESS_VLAN_NEIGH_TABLE|{vlan}")
            }
            other => panic!("no confirmation known for {other}"),
        };
        wait_gone(sw, STATE_DB, &confirmation).await;
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&k);
        for (f, v) in &fields {
            cmd.arg(f).arg(v);
        }
        let _: i64 = cmd.query_async(&mut conn).await.unwrap();
    }
}

/// Wait until the mismatches are exactly `want` (kind and object).
async fn wait_mismatches(
    view: &KernelView,
    exp: &KernelExpectations,
    want: &[(MismatchKind, &str)],
) -> Vec<Mismatch> {
    let s = view
        .wait_for(WAIT, |s| {
            let got: Vec<(MismatchKind, String)> = compare(s, exp)
                .into_iter()
                .map(|m| (m.kind, m.object))
                .collect();
            s.in_sync
                && got
                    == want
                        .iter()
                        .map(|(k, o)| (*k, (*o).to_owned()))
                        .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "mismatches never became {want:?}; they are:\n{:#?}",
                compare(&s, exp)
            )
        });
    compare(&s, exp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_leaf_is_confirmed_by_the_kernel_and_drift_is_named() {
    let ns = full_kernel_netns("vm");
    add_ports(&ns);
    let view = KernelView::start_in_netns(ns.path()).await.unwrap();
    let sw = Switch::leaf01(StandInOptions {
        kernel_netns: Some(ns.name().to_owned()),
        ..StandInOptions::adversarial()
    });
    let cfg = sw.config("");
    let started = Instant::now();
    let done = sw.apply(&cfg, &small_leaf()).await.unwrap();
    let applied = started.elapsed();
    let spec = &done.spec;
    let exp = expectations(spec);
    // Reference §2.3/§3.2: tenant VRFs Vrf<vni>, their L3VNI VLANs from the
    // agent's range, vxlanmgrd's `<vtep>-<vid>` devices (the VTEP is
    // leaf01's `vtep0`).
    let vlan = |vni| spec.vrfs[&vni].vlan;
    let (v1, v2) = (vlan(104009), vlan(104010));
    assert!(cfg.vlan_range.contains(v1) && cfg.vlan_range.contains(v2));
    assert_eq!(exp.vrfs["Vrf104010"].vxlan, format!("vtep0-{v2}"));

    let s = view
        .wait_until(&exp, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "applied in {applied:?}, kernel confirmed after {:?} ({} links)",
        started.elapsed(),
        s.len()
    );
    assert_no_violations(&sw);
    // Read back what the managers built (independently of compare()).
    assert!(matches!(
        s.link("Vrf104009").unwrap().kind,
        metal_switchd::kernel::state::LinkKind::Vrf { table: Some(t) } if t >= 1001
    ));
    assert_eq!(s.master_of("Ethernet1"), Some("Vrf104009"));
    assert_eq!(s.master_of("Ethernet3"), Some("Vrf104010"));
    assert_eq!(s.master_of(&format!("Vlan{v2}")), Some("Vrf104010"));
    assert_eq!(s.master_of("Ethernet4"), Some("Bridge"));
    assert_eq!(s.bridge_vlans("Ethernet4").unwrap().pvid, Some(3900));
    assert_eq!(s.master_of("Ethernet0"), None);
    let map = s.vlan_vni_map("Bridge");
    assert_eq!(map[&v1].vni, 104009);
    assert_eq!(map[&v2].vni, 104010);
    assert_eq!(map[&v2].device, format!("vtep0-{v2}"));
    let vdev = s.vlan_devices();
    assert_eq!(vdev[format!("Vlan{v1}").as_str()].id, Some(v1));
    assert_eq!(vdev[format!("Vlan{v1}").as_str()].lower, Some("Bridge"));

    // 1. A port taken out of its VRF by hand.
    ns.ip("link set Ethernet2 nomaster").unwrap();
    let m = wait_mismatches(&view, &exp, &[(MismatchKind::PortMaster, "port Ethernet2")]).await;
    eprintln!("drift: {}", m[0]);
    assert_eq!(m[0].repair[0].to_string(), "INTERFACE|Ethernet2");
    assert_eq!(m[0].found, "no master");
    reassert(&sw, &m[0]).await;
    view.wait_until(&exp, WAIT)
        .await
        .unwrap_or_else(|e| panic!("INTERFACE|Ethernet2 re-created, but: {e}"));

    // 2. A VXLAN device re-created by hand with another VNI (the kernel
    // cannot change a VNI in place), in the same VLAN.
    let dev = format!("vtep0-{v2}");
    ns.ip(&format!("link del {dev}")).unwrap();
    ns.ip(&format!(
        "link add {dev} type vxlan id 999 local 10.0.0.11 nolearning dstport 4789"
    ))
    .unwrap();
    ns.ip(&format!("link set {dev} master Bridge")).unwrap();
    ns.bridge(&format!("vlan add vid {v2} untagged pvid dev {dev}"))
        .unwrap();
    ns.bridge(&format!("vlan del vid 1 dev {dev}")).unwrap();
    ns.ip(&format!("link set {dev} up")).unwrap();
    let object = format!("VXLAN device {dev}");
    let m = wait_mismatches(&view, &exp, &[(MismatchKind::VxlanVni, &object)]).await;
    eprintln!("drift: {}", m[0]);
    assert_eq!(
        (m[0].expected.as_str(), m[0].found.as_str()),
        ("vni 104010", "vni 999")
    );
    assert_eq!(
        m[0].repair[0].to_string(),
        format!("VXLAN_TUNNEL_MAP|vtep0|map_104010_Vlan{v2}")
    );
    reassert(&sw, &m[0]).await;
    view.wait_until(&exp, WAIT)
        .await
        .unwrap_or_else(|e| panic!("the VXLAN map re-created, but: {e}"));
    assert_eq!(view.state().vlan_vni_map("Bridge")[&v2].vni, 104010);

    // 3. A VRF device deleted by hand: its ports and VLAN interface fall
    // out with it; one mismatch, which SONiC cannot repair from CONFIG_DB.
    ns.ip("link del Vrf104010").unwrap();
    let m = wait_mismatches(
        &view,
        &exp,
        &[(MismatchKind::VrfMissing, "VRF device Vrf104010")],
    )
    .await;
    eprintln!("drift: {}", m[0]);
    let keys: Vec<String> = m[0].repair.iter().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "VRF|Vrf104010".to_owned(),
            format!("VLAN_INTERFACE|Vlan{v2}"),
            "INTERFACE|Ethernet3".to_owned()
        ]
    );
    assert_eq!(m[0].method, RepairMethod::RestartOnly);
    assert_no_violations(&sw);
    let stats = view.stats();
    eprintln!("kernel view: {stats:?}; test took {:?}", started.elapsed());
    assert_eq!(stats.reconnects, 0, "{stats:?}");
}

/// The daemon itself finds kernel drift and repairs it through CONFIG_DB
/// (issue "Kernel interfaces over netlink", item 4): with kernel checks on,
/// its first reconcile converges only once the kernel shows the leaf; a
/// port taken out of its VRF and a VXLAN device with the wrong VNI are
/// re-asserted the SONiC way after the grace period; a deleted VRF device,
/// which SONiC cannot rebuild from CONFIG_DB, is reported, not looped on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_repairs_kernel_drift_through_configdb() {
    use metal_switchd::reconcile::desired::DesiredSource;
    use metal_switchd::reconcile::run::{Daemon, DaemonOptions, LoopEvent, Signals};
    use metal_switchd::reconcile::{Agent, Mode};
    use metal_switchd::report::ReconcileResult;
    use std::sync::Arc;

    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "metal_switchd=info,metal_switchd::configdb::redis=warn",
        ))
        .try_init();
    let ns = full_kernel_netns("vmd");
    add_ports(&ns);
    let sw = Switch::leaf01(StandInOptions {
        kernel_netns: Some(ns.name().to_owned()),
        ..StandInOptions::adversarial()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = sw.config(&format!(
        "reconfigure_switch = true\nkernel_checks = true\nkernel_drift_grace = \"1s\"\n\
         barrier_timeout = \"60s\"\ntimeout = \"120s\"\nfrr_reload = \"none\"\nfrr_agentx = false\n\
         frr_config = {:?}\nbgp_neighbor_state_file = \"\"\n",
        dir.path().join("frr.conf").display().to_string()
    ));
    let mut opts = metal_switchd::reconcile::options::agent(&cfg);
    opts.mode = Mode::Apply;
    let agent = Agent::new(
        cfg.clone(),
        DesiredSource::Memory(Arc::new(small_leaf())),
        None,
        opts,
    )
    .unwrap();
    let (signals, stop, _hup) = Signals::manual();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<LoopEvent>();
    let observer = Box::new(move |e: &LoopEvent| {
        let _ = tx.send(e.clone());
    });
    let daemon_opts = DaemonOptions {
        kernel: true,
        kernel_netns: Some(ns.path()),
        ..DaemonOptions::minimal()
    };
    let loader_cfg = cfg.clone();
    let daemon = Daemon::new(
        agent,
        Box::new(move || Ok(loader_cfg.clone())),
        signals,
        observer,
        daemon_opts,
    );
    let view = KernelView::start_in_netns(ns.path()).await.unwrap();
    let exp = {
        let mut db = sw.connect().await;
        db.wait_ready(WAIT).await.unwrap();
        let v = db.view();
        metal_switchd::reconcile::prepare(&small_leaf(), &cfg, &v.config, &v.confirmed)
            .unwrap()
            .spec
    };
    let exp = expectations(&exp);

    async fn next_event(
        events: &mut tokio::sync::mpsc::UnboundedReceiver<LoopEvent>,
        what: &str,
    ) -> LoopEvent {
        tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no loop event while waiting for {what}"))
            .unwrap_or_else(|| panic!("the daemon stopped while waiting for {what}"))
    }
    /// Drift of `what` is repaired and the repair's reconcile converges,
    /// kernel confirmed; its outcome.
    async fn repaired(
        events: &mut tokio::sync::mpsc::UnboundedReceiver<LoopEvent>,
        what: &str,
    ) -> Box<metal_switchd::report::Outcome> {
        loop {
            if let LoopEvent::KernelDrift { repaired, .. } =
                next_event(events, &format!("{what}'s drift")).await
                && repaired > 0
            {
                break;
            }
        }
        loop {
            if let LoopEvent::Reconciled(o) = next_event(events, &format!("{what}'s repair")).await
            {
                assert_eq!(o.result, ReconcileResult::Converged, "{:?}", o.error);
                return o;
            }
        }
    }
    let scenario = async {
        let events = &mut events;
        // The first reconcile converges only once the kernel confirmed it.
        loop {
            if let LoopEvent::Reconciled(o) = next_event(events, "the first reconcile").await {
                assert_eq!(o.result, ReconcileResult::Converged, "{:?}", o.error);
                assert!(!o.stages.kernel.is_zero() || o.unchanged, "{}", o.summary());
                break;
            }
        }
        assert!(compare(&view.state(), &exp).is_empty());

        // A port out of its VRF: repaired by the daemon.
        ns.ip("link set Ethernet2 nomaster").unwrap();
        let o = repaired(events, "the port").await;
        assert!(o.changes > 0, "{}", o.summary());
        assert!(compare(&view.state(), &exp).is_empty());
        eprintln!("drift repaired: Ethernet2 back in Vrf104009");

        // A VXLAN device with the wrong VNI: repaired by the daemon.
        let v2 = exp.vrfs["Vrf104010"].vlan;
        let dev = format!("vtep0-{v2}");
        ns.ip(&format!("link del {dev}")).unwrap();
        ns.ip(&format!(
            "link add {dev} type vxlan id 999 local 10.0.0.11 nolearning dstport 4789"
        ))
        .unwrap();
        ns.ip(&format!("link set {dev} master Bridge")).unwrap();
        ns.bridge(&format!("vlan add vid {v2} untagged pvid dev {dev}"))
            .unwrap();
        ns.bridge(&format!("vlan del vid 1 dev {dev}")).unwrap();
        ns.ip(&format!("link set {dev} up")).unwrap();
        repaired(events, "the VNI").await;
        assert!(compare(&view.state(), &exp).is_empty());
        assert_eq!(view.state().vlan_vni_map("Bridge")[&v2].vni, 104010);
        eprintln!("drift repaired: {dev} carries VNI 104010 again");

        // A VRF device deleted: reported, not repaired.
        ns.ip("link del Vrf104010").unwrap();
        loop {
            if let LoopEvent::KernelDrift { reported, repaired } =
                next_event(events, "the VRF's drift").await
            {
                assert_eq!(
                    repaired, 0,
                    "SONiC cannot rebuild a VRF device from CONFIG_DB"
                );
                if reported > 0 {
                    break;
                }
            }
        }
        stop.send(true).unwrap();
    };
    let (_, ran) = tokio::join!(scenario, daemon.run());
    ran.unwrap();
    assert_no_violations(&sw);
}
