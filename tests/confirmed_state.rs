//! Every reconcile starts from what SONiC has confirmed (issue: "never build
//! on unconfirmed state").
//!
//! With SONiC's daemons frozen, repeated `apply --once` runs of a multi-phase
//! change must not write anything on top of the first, unconfirmed phase:
//! binding a port that is still a VLAN member (sonic-buildimage#13772),
//! re-binding a port whose old binding is not gone, or giving a VRF a VNI
//! before its VLAN-VNI map is confirmed are the orders that crash or wedge
//! the real daemons (sonic-configdb reference §3.3, §7). Once the daemons
//! run again, a run converges and exits 0 only after SONiC confirmed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use metal_switchd::configdb::diff::Op;
use metal_switchd_lab::redis_server::{APPL_DB, CONFIG_DB, STATE_DB};
use metal_switchd_lab::sonic::StandInOptions;
use support::{Switch, apply_once, assert_no_violations, leaf01_desc, output_text, with_vrf};

/// The lab's leaf01 document with these nics' `vrf` set (`""`:
/// unprovisioned), written to `dir/name`.
fn leaf01_file(dir: &Path, name: &str, vrfs: &[(&str, &str)]) -> std::path::PathBuf {
    let mut doc: serde_json::Value =
        serde_json::from_str(metal_switchd_lab::fixtures::LEAF01_SWITCH_V1).unwrap();
    for nic in doc["nics"].as_array_mut().unwrap() {
        if let Some((_, vrf)) = vrfs.iter().find(|(n, _)| nic["name"] == *n) {
            nic["vrf"] = (*vrf).into();
            nic["filter"] = if vrf.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!({"cidrs": ["10.0.24.0/22"], "vnis": []})
            };
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// leaf01 with Ethernet3 moved from Vrf104010 into a new Vrf104011 and
/// Ethernet4 moved from the PXE VLAN into it: PXE→VRF, VRF→VRF, a new VRF
/// and the cleanup of Vrf104010, six phases in all.
fn moved_switch_file(dir: &Path) -> std::path::PathBuf {
    let moved = [("Ethernet3", "vrf104011"), ("Ethernet4", "vrf104011")];
    leaf01_file(dir, "moved.v1.json", &moved)
}

/// leaf01 with Ethernet3 unprovisioned: Vrf104010 (Ethernet3's only) is
/// removed, with its VLAN interface, its VXLAN map and its VLAN.
fn unprovisioned_switch_file(dir: &Path) -> std::path::PathBuf {
    leaf01_file(dir, "unprovisioned.v1.json", &[("Ethernet3", "")])
}

/// A tenant's removal deletes ports → VLAN interface → VRF → VXLAN map →
/// suppression and VLAN, the VLAN only once SONiC removed the map (orchagent
/// fails on a map whose VLAN is gone, vlanmgrd deletes a VLAN without
/// checks). Stopped after the map's deletion was written and before
/// vxlanmgrd removed its APPL_DB entry, nothing left in CONFIG_DB names the
/// map's VNI; a new process must still find that entry (the start-up read's
/// walk for a VLAN with neither map nor interface) and wait for it rather
/// than delete the VLAN under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_at_the_last_step_of_a_removal_waits_for_the_map_sonic_still_has() {
    let (sw, _) = Switch::leaf01_applied(StandInOptions::adversarial()).await;
    let dir = tempfile::tempdir().unwrap();
    let short = sw.config_file(dir.path(), "barrier_timeout = \"300ms\"");
    let switch = unprovisioned_switch_file(dir.path());
    let before = sw.dump(CONFIG_DB);
    let map = before
        .keys()
        .find(|k| k.starts_with("VXLAN_TUNNEL_MAP|") && k.contains("|map_104010_"))
        .expect("Vrf104010's map")
        .clone();
    let vlan = map.rsplit('_').next().unwrap().to_owned();
    let appl_map = map
        .replacen("VXLAN_TUNNEL_MAP|", "VXLAN_TUNNEL_MAP_TABLE:", 1)
        .replace('|', ":");
    assert!(sw.dump(APPL_DB).contains_key(&appl_map), "{appl_map}");

    // vxlanmgrd hangs: the first run gets as far as the map's deletion.
    sw.standin().pause_daemon("vxlanmgrd");
    let first = apply_once(&short, &switch, "5s");
    assert_eq!(first.status.code(), Some(1), "{}", output_text(&first));
    assert!(
        output_text(&first).contains("did not confirm it within"),
        "{}",
        output_text(&first)
    );
    let stopped = sw.dump(CONFIG_DB);
    for gone in [
        map.clone(),
        "VRF|Vrf104010".to_owned(),
        format!("VLAN_INTERFACE|{vlan}"),
    ] {
        assert!(!stopped.contains_key(&gone), "{gone} is still in CONFIG_DB");
    }
    for kept in [
        format!("VLAN|{vlan}"),
        format!("SUPPRESS_VLAN_NEIGH|{vlan}"),
    ] {
        assert!(
            stopped.contains_key(&kept),
            "{kept} was deleted before SONiC removed the map"
        );
    }
    assert!(
        sw.dump(APPL_DB).contains_key(&appl_map),
        "vxlanmgrd is paused"
    );

    // A new process: it finds the map in APPL_DB and waits for it.
    sw.reset_writes();
    for run in 2..=3 {
        let o = apply_once(&short, &switch, "5s");
        assert_eq!(o.status.code(), Some(1), "run {run}: {}", output_text(&o));
        let text = output_text(&o);
        assert!(
            text.contains("SONiC has not confirmed what CONFIG_DB already holds")
                && text.contains(&appl_map),
            "run {run} waits for {appl_map}: {text}"
        );
    }
    assert_eq!(
        sw.agent_writes(),
        0,
        "nothing written while the map is there"
    );
    assert_eq!(sw.dump(CONFIG_DB), stopped);

    // vxlanmgrd goes on: the removal finishes, in SONiC's order.
    sw.standin().resume_daemon("vxlanmgrd");
    let dir_ok = tempfile::tempdir().unwrap();
    let normal = sw.config_file(dir_ok.path(), "");
    let last = apply_once(&normal, &switch, "5s");
    assert_eq!(last.status.code(), Some(0), "{}", output_text(&last));
    sw.settle();
    let after = sw.dump(CONFIG_DB);
    for gone in [
        format!("VLAN|{vlan}"),
        format!("SUPPRESS_VLAN_NEIGH|{vlan}"),
    ] {
        assert!(!after.contains_key(&gone), "{gone} is left");
    }
    assert!(!sw.dump(APPL_DB).contains_key(&appl_map));
    assert_no_violations(&sw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_daemons_get_nothing_written_on_top_of_unconfirmed_phases() {
    let (sw, _) = Switch::leaf01_applied(StandInOptions::adversarial()).await;
    let dir = tempfile::tempdir().unwrap();
    let short = sw.config_file(dir.path(), "barrier_timeout = \"300ms\"");
    let switch = moved_switch_file(dir.path());

    // The plan really has several phases.
    let desc = with_vrf(
        with_vrf(leaf01_desc(), "Ethernet3", "vrf104011"),
        "Ethernet4",
        "vrf104011",
    );
    let planned = sw.plan(&sw.config(""), &desc).await;
    assert!(planned.phases.len() >= 4, "{planned}");

    sw.standin().pause();
    sw.reset_writes();
    let first = apply_once(&short, &switch, "5s");
    assert_eq!(first.status.code(), Some(1), "{}", output_text(&first));
    assert!(
        output_text(&first).contains("did not confirm it within"),
        "the first run writes phase 1 and times out at its barrier: {}",
        output_text(&first)
    );
    // Phase 1's commands as redis counts them (an update that also removes
    // fields is a transaction: its EXEC counts too).
    let phase1: u64 = planned.phases[0]
        .changes
        .iter()
        .map(|c| {
            let tx = matches!(&c.op, Op::Update { set, remove } if !set.is_empty() && !remove.is_empty());
            c.commands() as u64 + u64::from(tx)
        })
        .sum();
    assert_eq!(sw.agent_writes(), phase1, "one phase written");
    let after_first = sw.dump(CONFIG_DB);

    for run in 2..=6 {
        let o = apply_once(&short, &switch, "5s");
        assert_eq!(o.status.code(), Some(1), "run {run}: {}", output_text(&o));
        assert!(
            output_text(&o).contains("SONiC has not confirmed what CONFIG_DB already holds"),
            "run {run} waits for the pending confirmations: {}",
            output_text(&o)
        );
        assert!(
            !output_text(&o).contains("no changes"),
            "run {run} claims convergence: {}",
            output_text(&o)
        );
    }
    assert_eq!(
        sw.agent_writes(),
        phase1,
        "runs 2..6 wrote nothing on top of the unconfirmed phase"
    );
    assert_eq!(
        sw.dump(CONFIG_DB),
        after_first,
        "CONFIG_DB changed while SONiC was frozen"
    );

    sw.standin().resume();
    let dir_ok = tempfile::tempdir().unwrap();
    let normal = sw.config_file(dir_ok.path(), "");
    let last = apply_once(&normal, &switch, "5s");
    assert_eq!(last.status.code(), Some(0), "{}", output_text(&last));
    // Exit 0 only after SONiC confirmed the state: right now, before anything
    // settles, STATE_DB holds the new bindings and the old VRF is gone.
    let state = sw.dump(STATE_DB);
    assert_eq!(state["INTERFACE_TABLE|Ethernet3"]["vrf"], "Vrf104011");
    assert_eq!(state["INTERFACE_TABLE|Ethernet4"]["vrf"], "Vrf104011");
    assert!(state.contains_key("VRF_TABLE|Vrf104011"));
    assert!(!state.contains_key("VRF_TABLE|Vrf104010"));
    assert!(!state.contains_key("VLAN_MEMBER_TABLE|Vlan3900|Ethernet4"));
    assert_no_violations(&sw);

    // FRR got the new VRF in the same run (frr-config.md: `vrf Vrf<VNI>` with
    // `vni <VNI>`, the port as a MACHINE neighbour of its VRF's BGP instance).
    let frr = std::fs::read_to_string(dir_ok.path().join("frr.conf")).unwrap();
    assert!(
        frr.contains("vrf Vrf104011\n vni 104011\nexit-vrf"),
        "{frr}"
    );
    assert!(frr.contains("router bgp 4200000011 vrf Vrf104011"), "{frr}");
    assert!(
        frr.contains(" neighbor Ethernet4 interface peer-group MACHINE"),
        "{frr}"
    );
    assert!(!frr.contains("Vrf104010"), "{frr}");

    // And the next run has nothing left to do or to wait for.
    let again = apply_once(&normal, &switch, "5s");
    assert_eq!(again.status.code(), Some(0), "{}", output_text(&again));
    assert!(
        output_text(&again)
            .contains("no changes: CONFIG_DB matches the desired state and SONiC has confirmed it"),
        "{}",
        output_text(&again)
    );
}
