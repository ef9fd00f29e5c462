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
use metal_switchd_lab::redis_server::{CONFIG_DB, STATE_DB};
use metal_switchd_lab::sonic::StandInOptions;
use support::{Switch, apply_once, assert_no_violations, leaf01_desc, output_text, with_vrf};

/// leaf01 with Ethernet3 moved from Vrf104010 into a new Vrf104011 and
/// Ethernet4 moved from the PXE VLAN into it: PXE→VRF, VRF→VRF, a new VRF
/// and the cleanup of Vrf104010, five phases in all.
fn moved_switch_file(dir: &Path) -> std::path::PathBuf {
    let mut doc: serde_json::Value =
        serde_json::from_str(metal_switchd_lab::fixtures::LEAF01_SWITCH_V1).unwrap();
    for nic in doc["nics"].as_array_mut().unwrap() {
        if nic["name"] == "Ethernet3" || nic["name"] == "Ethernet4" {
            nic["vrf"] = "vrf104011".into();
            nic["filter"] = serde_json::json!({"cidrs": ["10.0.24.0/22"], "vnis": []});
        }
    }
    let path = dir.join("moved.v1.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
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
