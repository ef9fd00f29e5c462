//! Applying desired states to a real redis with the SONiC stand-in.
//!
//! Every test runs its own redis-server; the stand-in plays vrfmgrd,
//! vlanmgrd, intfmgrd, vxlanmgrd, portmgrd and orchagent and records every
//! order that would crash or wedge them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd::configdb::confirms::Check;
use metal_switchd::configdb::plan::Stage;
use metal_switchd::configdb::schema::Key;
use metal_switchd::configdb::snapshot::parse_config_db_json;
use metal_switchd::configdb::target::Scope;
use metal_switchd::report::ReconcileResult;
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::{ASIC_DB, CONFIG_DB, COUNTERS_DB, STATE_DB};
use metal_switchd_lab::seed::SeedOptions;
use metal_switchd_lab::sonic::StandInOptions;
use support::*;

/// Everything the target asks for is in CONFIG_DB, with the owned fields.
fn assert_target_reached(sw: &Switch, applied: &Applied) {
    let dump = sw.dump(CONFIG_DB);
    for (key, want) in &metal_switchd::configdb::target::target(&applied.spec).entries {
        let have = dump
            .get(&key.redis_key())
            .unwrap_or_else(|| panic!("{key} missing from CONFIG_DB"));
        for (f, v) in &want.fields {
            assert_eq!(have.get(f), Some(v), "{key} field {f}");
        }
        if want.scope == Scope::Schema {
            let extra: Vec<&String> = have
                .keys()
                .filter(|f| key.table.owns_field(f) && !want.fields.contains_key(f))
                .collect();
            assert!(
                extra.is_empty(),
                "{key} has extra owned fields {extra:?}: {have:?}"
            );
        }
    }
}

#[tokio::test]
async fn fresh_apply_writes_each_phase_in_one_round_trip_one_command_per_entry() {
    let sw = Switch::leaf01(StandInOptions::uniform(Duration::from_millis(1)));
    let cfg = sw.config("");
    let applied = sw.apply(&cfg, &leaf01_desc()).await.expect("apply");
    let report = &applied.report;
    let phases = applied.plan.phases.len();
    assert_eq!(phases, 3, "{}", applied.plan);
    // Each entry is one command (one HSET here: nothing to remove), each
    // phase one round trip, no phase one long transaction.
    assert_eq!(report.stats.keys_written, applied.plan.changes() as u64);
    assert_eq!(report.stats.write_commands, applied.plan.commands() as u64);
    assert_eq!(sw.redis.command_calls("multi").unwrap(), 0);
    assert_eq!(sw.redis.command_calls("exec").unwrap(), 0);
    assert_target_reached(&sw, &applied);
    // SONiC confirmed every phase: e.g. the VRFs and the ports' memberships exist in STATE_DB.
    let state = sw.dump(STATE_DB);
    assert!(state.contains_key("VRF_TABLE|Vrf104009"));
    assert!(state.contains_key("VLAN_MEMBER_TABLE|Vlan3900|Ethernet5"));
    assert_eq!(state["INTERFACE_TABLE|Ethernet1"]["vrf"], "Vrf104009");
    assert_no_violations(&sw);
}

#[tokio::test]
async fn second_apply_writes_nothing() {
    let sw = Switch::leaf01(StandInOptions::default());
    let cfg = sw.config("");
    sw.apply(&cfg, &leaf01_desc()).await.expect("first apply");
    sw.settle();
    sw.redis.reset_stats().unwrap();
    let applied = sw.apply(&cfg, &leaf01_desc()).await.expect("second apply");
    let report = &applied.report;
    sw.settle();
    assert!(applied.plan.is_empty(), "{}", applied.plan);
    assert_eq!(report.stats.keys_written, 0);
    assert_eq!(
        sw.writes(),
        0,
        "redis saw write commands during a no-op apply"
    );
    assert_eq!(sw.redis.command_calls("multi").unwrap(), 0);
}

#[tokio::test]
async fn pxe_to_vrf_waits_until_the_port_left_the_bridge() {
    let (sw, cfg) = Switch::leaf01_applied(StandInOptions::adversarial()).await;

    let desc = with_vrf(leaf01_desc(), "Ethernet5", "vrf104009");
    let applied = sw
        .apply(&cfg, &desc)
        .await
        .expect("move Ethernet5 into Vrf104009");
    // The member deletion is confirmed by STATE_DB and by the ASIC bridge port
    // before the INTERFACE entry is written.
    let first = &applied.plan.phases[0];
    assert!(
        first
            .barrier
            .iter()
            .any(|c| c.check == Check::Gone && c.table == "VLAN_MEMBER_TABLE")
    );
    assert!(
        first
            .barrier
            .iter()
            .any(|c| c.check == Check::NoBridgePort && c.name == "Ethernet5")
    );
    let left = event(&sw, "del VLAN_MEMBER|Vlan3900|Ethernet5");
    let bound = event(&sw, "set INTERFACE|Ethernet5 vrf=Vrf104009");
    assert!(left < bound, "bound to the VRF before leaving the VLAN");
    assert_no_violations(&sw);
    // Only that port's keys were written.
    let keys: Vec<String> = applied
        .plan
        .iter_changes()
        .map(|c| c.key.to_string())
        .collect();
    assert_eq!(
        keys,
        ["VLAN_MEMBER|Vlan3900|Ethernet5", "INTERFACE|Ethernet5"]
    );
}

#[tokio::test]
async fn vrf_to_vrf_unbinds_confirms_and_rebinds() {
    let (sw, cfg) = Switch::leaf01_applied(StandInOptions::adversarial()).await;

    let desc = with_vrf(leaf01_desc(), "Ethernet1", "vrf104010");
    let applied = sw
        .apply(&cfg, &desc)
        .await
        .expect("move Ethernet1 to Vrf104010");
    assert_eq!(applied.plan.phases.len(), 2, "{}", applied.plan);
    assert_eq!(applied.plan.phases[0].stage, Stage::Detach);
    assert_eq!(applied.plan.phases[1].stage, Stage::Attach);
    let unbound = event(&sw, "del INTERFACE|Ethernet1");
    let rebound = event(&sw, "set INTERFACE|Ethernet1 vrf=Vrf104010");
    assert!(unbound < rebound);
    assert_no_violations(&sw);
    assert_eq!(
        sw.dump(STATE_DB)["INTERFACE_TABLE|Ethernet1"]["vrf"],
        "Vrf104010"
    );
    // The router interface was removed and created anew.
    assert!(sw.dump(COUNTERS_DB)["COUNTERS_RIF_NAME_MAP"].contains_key("Ethernet1"));
}

#[tokio::test]
async fn vrf_to_pxe_and_a_vrf_no_longer_wanted_is_cleaned_up_in_order() {
    let (sw, cfg) = Switch::leaf01_applied(StandInOptions::adversarial()).await;

    // Ethernet3 was the only member of Vrf104010.
    let desc = with_vrf(leaf01_desc(), "Ethernet3", "");
    let applied = sw.apply(&cfg, &desc).await.expect("Ethernet3 back to PXE");
    let order = [
        "del INTERFACE|Ethernet3",
        "set VLAN_MEMBER|Vlan3900|Ethernet3",
        "del VXLAN_TUNNEL_MAP|vtep0|map_104010_Vlan1002",
        "del VLAN_INTERFACE|Vlan1002",
        "del VLAN|Vlan1002",
        "del VRF|Vrf104010",
    ];
    let at: Vec<usize> = order.iter().map(|e| event(&sw, e)).collect();
    assert!(at[0] < at[1], "joined the PXE VLAN before leaving the VRF");
    assert!(
        at[0] < at[2] && at[2] < at[3] && at[3] < at[4] && at[4] < at[5],
        "cleanup order {at:?}"
    );
    assert_no_violations(&sw);
    let config = sw.dump(CONFIG_DB);
    for gone in [
        "VRF|Vrf104010",
        "VLAN|Vlan1002",
        "VLAN_INTERFACE|Vlan1002",
        "SUPPRESS_VLAN_NEIGH|Vlan1002",
        "VXLAN_TUNNEL_MAP|vtep0|map_104010_Vlan1002",
        "INTERFACE|Ethernet3",
    ] {
        assert!(!config.contains_key(gone), "{gone} left behind");
    }
    assert!(config.contains_key("VLAN_MEMBER|Vlan3900|Ethernet3"));
    // Vrf104009 is untouched.
    assert!(config.contains_key("VRF|Vrf104009"));
    assert!(
        applied
            .plan
            .iter_changes()
            .all(|c| !c.key.name.contains("104009"))
    );
}

#[tokio::test]
async fn a_skipped_barrier_is_caught_by_the_stand_in() {
    // Negative control: the same PXE -> VRF move written as ONE phase (no
    // barrier) is reported as the sonic-buildimage#13772 crash.
    let (sw, cfg) = Switch::leaf01_applied(StandInOptions::adversarial()).await;
    let desc = with_vrf(leaf01_desc(), "Ethernet5", "vrf104009");
    let mut plan = sw.plan(&cfg, &desc).await;
    let mut merged = plan.phases.remove(0);
    for p in plan.phases.drain(..) {
        merged.changes.extend(p.changes);
    }
    merged.barrier.clear();
    plan.phases.push(merged);
    let mut db = sw.connect().await;
    db.apply(&plan, &Default::default()).await.expect("write");
    sw.settle();
    let v = sw.violations();
    assert!(
        v.iter().any(|v| v.contains("13772")),
        "stand-in missed the crash order: {v:?}"
    );
}

#[tokio::test]
async fn foreign_and_static_objects_are_never_touched() {
    // Base: the AS7726 leaf generated by sonic-configdb-utils, which holds
    // foreign VRFs (VrfMpls, VrfInternet), static ones (Vrf42, Vrf45), their
    // VLANs, a VXLAN map and INTERFACE bindings; plus a foreign VLAN inside the
    // tenant range with a member, and an operator's map in the range bound to
    // the static Vrf42.
    let extra = vec![
        (
            "VLAN|Vlan1001".to_string(),
            vec![("vlanid".to_string(), "1001".to_string())],
        ),
        (
            "VLAN_MEMBER|Vlan1001|Ethernet8".into(),
            vec![("tagging_mode".into(), "untagged".into())],
        ),
        (
            "VLAN|Vlan1500".into(),
            vec![("vlanid".into(), "1500".into())],
        ),
        (
            "VLAN_INTERFACE|Vlan1500".into(),
            vec![("vrf_name".into(), "Vrf42".into())],
        ),
        (
            "VXLAN_TUNNEL_MAP|vtep|map_42_Vlan1500".into(),
            vec![
                ("vlan".into(), "Vlan1500".into()),
                ("vni".into(), "42".into()),
            ],
        ),
        ("VRF|Vrf42".into(), vec![("vni".into(), "42".into())]),
    ];
    let sw = Switch::new(
        fixtures::CONFIGDB_UTILS_AS7726,
        None,
        &extra,
        SeedOptions::default(),
        Some(StandInOptions::uniform(Duration::from_millis(1))),
    );
    let before = sw.dump(CONFIG_DB);
    // Ports of that leaf: Ethernet0.. with 4x25G breakout on Ethernet0..3.
    let state = parse_config_db_json("as7726", fixtures::CONFIGDB_UTILS_AS7726).unwrap();
    assert!(state.contains(&Key::port("Ethernet16")));
    let cfg = sw.config("pxe_vlan_id = 4000\nspine_uplinks = [\"Ethernet120\", \"Ethernet124\"]\nstatic_vrfs = [\"Vrf42\", \"Vrf45\"]\n");
    let desc = metal_switchd::spec::SwitchDesc {
        id: "leaf01".into(),
        nics: vec![
            nic("Ethernet16", Some("vrf104009"), &["10.0.16.0/22"]),
            nic("Ethernet20", Some("vrf104009"), &[]),
            nic("Ethernet24", Some("vrf104011"), &["10.0.20.0/22"]),
            nic("Ethernet28", Some("default"), &["10.1.0.1/32"]),
            nic("Ethernet32", None, &[]),
        ],
    };
    let applied = sw.apply(&cfg, &desc).await.expect("apply");
    // The allocator skipped the foreign Vlan1001 and the static Vlan1500.
    let vlans: Vec<u16> = applied.spec.vrfs.values().map(|v| v.vlan).collect();
    assert_eq!(vlans, [1002, 1003]);
    assert_no_violations(&sw);
    // Move things around once more, then remove every tenant.
    let desc2 = metal_switchd::spec::SwitchDesc {
        id: "leaf01".into(),
        nics: vec![
            nic("Ethernet16", Some("vrf104011"), &[]),
            nic("Ethernet20", None, &[]),
            nic("Ethernet24", None, &[]),
        ],
    };
    sw.apply(&cfg, &desc2).await.expect("second apply");
    let desc3 = metal_switchd::spec::SwitchDesc {
        id: "leaf01".into(),
        nics: vec![
            nic("Ethernet16", None, &[]),
            nic("Ethernet20", None, &[]),
            nic("Ethernet24", None, &[]),
        ],
    };
    sw.apply(&cfg, &desc3).await.expect("third apply");
    assert_no_violations(&sw);
    let after = sw.dump(CONFIG_DB);
    let managed = [
        "Ethernet16",
        "Ethernet20",
        "Ethernet24",
        "Ethernet28",
        "Ethernet32",
        "Ethernet120",
        "Ethernet124",
    ];
    for (key, fields) in &before {
        let port = key.strip_prefix("PORT|");
        match port {
            Some(p) if managed.contains(&p) => {
                let mut a = after[key].clone();
                let mut b = fields.clone();
                for f in ["mtu", "admin_status"] {
                    a.remove(f);
                    b.remove(f);
                }
                assert_eq!(a, b, "{key}: fields other than mtu/admin_status changed");
            }
            _ => assert_eq!(after.get(key), Some(fields), "{key} was changed or deleted"),
        }
    }
    // Nothing of the tenants is left, and nothing else was added except
    // the agent's PXE memberships and underlay/firewall interfaces.
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        assert!(
            key.starts_with("VLAN_MEMBER|Vlan4000|")
                || key.starts_with("INTERFACE|Ethernet12")
                || key == "INTERFACE|Ethernet28",
            "unexpected leftover {key}"
        );
    }
}

fn nic(name: &str, vrf: Option<&str>, cidrs: &[&str]) -> metal_switchd::spec::NicDesc {
    metal_switchd::spec::NicDesc {
        name: name.into(),
        vrf: vrf.map(String::from),
        filter: metal_switchd::spec::FilterDesc {
            cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            vnis: if vrf == Some("default") {
                vec!["104009".into()]
            } else {
                vec![]
            },
        },
        admin: None,
    }
}

#[tokio::test]
async fn missing_vtep_is_an_error_and_nothing_is_written() {
    let base = fixtures::LEAF01_CONFIG.replace("\"VXLAN_TUNNEL\"", "\"NOT_A_VXLAN_TUNNEL\"");
    let sw = Switch::new(
        &base,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &[],
        SeedOptions::default(),
        None,
    );
    let cfg = sw.config("");
    let err = sw
        .apply(&cfg, &leaf01_desc())
        .await
        .expect_err("must refuse");
    // Invalid input: `apply --once` exits 2.
    assert_eq!(err.result, ReconcileResult::Invalid, "{}", err.summary());
    assert!(!err.transient);
    let text = err.error.unwrap_or_default();
    assert!(text.contains("no VTEP is configured"), "{text}");
    assert_eq!(sw.writes(), 0);
}

#[tokio::test]
async fn a_barrier_that_never_holds_times_out_naming_it() {
    // No stand-in: nobody confirms anything.
    let sw = Switch::leaf01_unconfirmed();
    let cfg = sw.config("barrier_timeout = \"300ms\"");
    let err = sw
        .apply(&cfg, &leaf01_desc())
        .await
        .expect_err("must time out");
    // Written, not confirmed: pending, worth retrying.
    assert_eq!(err.result, ReconcileResult::Pending, "{}", err.summary());
    assert!(err.transient);
    let text = err.error.unwrap_or_default();
    assert!(
        text.starts_with("phase 1/3 (") && text.contains("still waiting for:\n  - "),
        "{text}"
    );
    assert!(
        text.contains("STATE_DB VLAN_TABLE|Vlan1001 present (vlanmgrd)"),
        "{text}"
    );
    assert!(
        text.contains("APPL_DB VXLAN_TUNNEL_MAP_TABLE:vtep0:map_104009_Vlan1001 present"),
        "{text}"
    );
    // Phase 1 is written, phase 2 is not.
    let config = sw.dump(CONFIG_DB);
    assert!(config.contains_key("VLAN|Vlan1001"));
    assert!(!config.contains_key("VRF|Vrf104009"));
}

#[tokio::test]
async fn nothing_is_written_before_sonic_is_ready() {
    let seed = SeedOptions {
        config_db_initialized: true,
        port_init_done: false,
        asic: true,
    };
    let sw = Switch::new(
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &[],
        seed,
        None,
    );
    let mut db = sw.connect().await;
    let (_, ready) = db.read().await.unwrap();
    assert!(!ready.port_init_done);
    let err = db
        .read_when_ready(Duration::from_millis(300), Duration::from_millis(50))
        .await
        .expect_err("must wait for PortInitDone");
    assert!(err.to_string().contains("PortInitDone missing"), "{err}");
    assert_eq!(sw.writes(), 0);
}

#[tokio::test]
async fn asic_bridge_port_removal_is_awaited() {
    // orchagent is much slower than vlanmgrd: the STATE_DB entry goes quickly,
    // the bridge port late. The INTERFACE entry must still wait for it.
    let opts = StandInOptions {
        orchagent: Duration::from_millis(300),
        ..StandInOptions::uniform(Duration::from_millis(1))
    };
    let (sw, cfg) = Switch::leaf01_applied(opts).await;
    let desc = with_vrf(leaf01_desc(), "Ethernet6", "vrf104009");
    sw.apply(&cfg, &desc).await.expect("apply");
    // What SONiC saw, in order: orchagent removed the bridge port before
    // intfmgrd got the VRF binding (the stand-in also reports the opposite
    // order as a violation, checked below).
    let removed = event(&sw, "del BRIDGE_PORT Ethernet6");
    let bound = event(&sw, "set INTERFACE|Ethernet6 vrf=Vrf104009");
    assert!(
        removed < bound,
        "INTERFACE|Ethernet6 was processed before its ASIC bridge port was gone: {:#?}",
        sw.standin().events()
    );
    let asic = sw.dump(ASIC_DB);
    let port_oid = &sw.dump(COUNTERS_DB)["COUNTERS_PORT_NAME_MAP"]["Ethernet6"];
    assert!(
        !asic
            .values()
            .any(|h| h.get("SAI_BRIDGE_PORT_ATTR_PORT_ID") == Some(port_oid))
    );
    assert_no_violations(&sw);
}

/// Issue 20 item 5: inside the entries it owns, the agent owns only its
/// table's fields (`Table::owned_fields`). Dell Enterprise SONiC's CLI and
/// daemons add fields community SONiC does not write — on VLANs
/// `admin_status`, `autostate`, `dhcp_relay_link_select`,
/// `dhcp_relay_src_intf`, `dhcp_servers@`
/// (`mini-lab-leaf01-dell-4.5.1.config_db.json`, `Vlan3900`) — and a
/// flavour may add one anywhere: seeded into every owned entry, no write
/// touches them (no plan — the exact list of writes — names them, and
/// CONFIG_DB still holds them), through an
/// unchanged state, a port move and a VRF move; they go only with their
/// entry. Failed on main before the change: the update of an owned entry
/// removed every field the agent does not write (`HDEL`).
#[tokio::test]
async fn flavour_fields_in_owned_entries_are_never_touched() {
    let (sw, cfg) = Switch::leaf01_applied(StandInOptions::uniform(Duration::from_millis(1))).await;
    let dell_vlan = [
        ("admin_status", "up"),
        ("autostate", "enable"),
        ("dhcp_relay_link_select", "enable"),
        ("dhcp_relay_src_intf", "Loopback0"),
        ("dhcp_servers@", "10.0.0.21"),
    ];
    let owned: Vec<String> =
        metal_switchd::configdb::target::target(&sw.plan_spec(&cfg, &leaf01_desc()).await)
            .entries
            .keys()
            .filter(|k| k.table != metal_switchd::configdb::schema::Table::Port)
            .map(|k| k.redis_key())
            .collect();
    assert!(
        owned.iter().any(|k| k.starts_with("VLAN|Vlan")),
        "{owned:?}"
    );
    let mut seeded = Vec::new();
    for key in &owned {
        let mut fields: Vec<(String, String)> = vec![("x_flavour_field".into(), "kept".into())];
        if key.starts_with("VLAN|") {
            fields.extend(
                dell_vlan
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
        }
        seeded.push((key.clone(), fields));
    }
    metal_switchd_lab::seed::write_entries(&sw.redis, CONFIG_DB, &seeded).unwrap();
    sw.settle();
    let still_there = |sw: &Switch, keys: &[(String, Vec<(String, String)>)]| {
        let dump = sw.dump(CONFIG_DB);
        for (key, fields) in keys {
            let Some(have) = dump.get(key) else { continue };
            for (f, v) in fields {
                assert_eq!(have.get(f), Some(v), "{key} lost {f}: {have:?}");
            }
        }
    };
    let foreign = |c: &metal_switchd::configdb::diff::Change| -> Vec<String> {
        use metal_switchd::configdb::diff::Op;
        let names: Vec<String> = match &c.op {
            Op::Create { fields } => fields.keys().cloned().collect(),
            Op::Update { set, remove } => {
                set.keys().cloned().chain(remove.iter().cloned()).collect()
            }
            Op::Delete { .. } => Vec::new(),
        };
        names
            .into_iter()
            .filter(|f| !c.key.table.owns_field(f))
            .collect()
    };

    // Unchanged desired state: nothing to write.
    sw.redis.reset_stats().unwrap();
    let applied = sw.apply(&cfg, &leaf01_desc()).await.expect("same state");
    assert!(applied.plan.is_empty(), "{}", applied.plan);
    assert_eq!(sw.writes(), 0);
    // A port joins the VRF, another VRF appears (Ethernet1 moves there).
    for desc in [
        with_vrf(leaf01_desc(), "Ethernet5", "vrf104009"),
        with_vrf(
            with_vrf(leaf01_desc(), "Ethernet5", "vrf104009"),
            "Ethernet1",
            "vrf104010",
        ),
    ] {
        sw.redis.reset_stats().unwrap();
        let applied = sw.apply(&cfg, &desc).await.expect("apply");
        sw.settle();
        for c in applied.plan.iter_changes() {
            assert!(
                foreign(c).is_empty(),
                "{c} writes a field the agent does not own"
            );
        }
        // An entry the plan deleted (a port leaving the PXE VLAN, a VRF
        // binding replaced by delete → confirm → create) took its fields
        // with it; every other keeps them.
        let went: Vec<String> = applied
            .plan
            .iter_changes()
            .filter(|c| c.is_delete())
            .map(|c| c.key.redis_key())
            .collect();
        seeded.retain(|(k, _)| !went.contains(k));
        still_there(&sw, &seeded);
    }
    assert_no_violations(&sw);
    // No tenant left: the VRFs and their VLANs go, with their fields.
    let mut bare = leaf01_desc();
    for n in &mut bare.nics {
        if n.vrf.as_deref().is_some_and(|v| v.starts_with("vrf")) {
            n.vrf = None;
        }
    }
    let applied = sw.apply(&cfg, &bare).await.expect("no tenants");
    sw.settle();
    let gone: Vec<String> = applied
        .plan
        .iter_changes()
        .filter(|c| c.is_delete())
        .map(|c| c.key.redis_key())
        .collect();
    assert!(gone.iter().any(|k| k.starts_with("VLAN|")), "{gone:?}");
    let dump = sw.dump(CONFIG_DB);
    for k in &gone {
        assert!(!dump.contains_key(k), "{k} still there");
    }
    still_there(&sw, &seeded);
    assert_no_violations(&sw);
}
