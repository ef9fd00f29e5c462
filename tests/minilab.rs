//! The netns mini-lab end to end (issue: the lab): two leaves running the
//! real `metal-switchd run` in network namespaces against one lab API
//! server (v2), real redis with the SONiC stand-in (random per-daemon
//! delays), real FRR on every node with BGP unnumbered between leaves, exit
//! and machines; the scenario's six steps, each waited for through the
//! agents' reports and checked against the CONFIG_DB entries of the
//! README's table (metal-core's values).
//!
//! The namespaces carry a unique prefix, so a lab an operator runs (`./dev
//! lab up`, no prefix) is not touched. Needs root, redis-server and FRR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use metal_switchd_lab::minilab::observe::established;
use metal_switchd_lab::minilab::topology::{self, ApiVersion};
use metal_switchd_lab::minilab::{Lab, LabOptions, process, scenario};

fn options() -> LabOptions {
    let mut o = LabOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_metal-switchd")));
    // At most 8 characters: "t" + 5 hex digits of the pid + "-".
    o.prefix = format!("t{:05x}-", std::process::id() & 0xf_ffff);
    o.api = ApiVersion::V2;
    // Generous: only catches hangs (the machine is shared).
    o.timeout = Duration::from_secs(120);
    o
}

#[test]
fn the_scenario_converges_at_every_step_with_bgp_established_and_tears_down_cleanly() {
    let opts = options();
    // Labs of earlier runs that were killed (a timeout) are removed first.
    for r in metal_switchd_lab::minilab::clean_dead_labs(&opts.agent).unwrap() {
        eprintln!("removed a dead lab's leftovers: {r}");
    }
    let prefix = opts.prefix.clone();
    let dir = opts.dir();
    let mut lab = Lab::up(opts).unwrap_or_else(|e| panic!("the mini-lab did not come up: {e:#}"));
    let up = lab.established_after.expect("time to Established");
    eprintln!("up to every leaf↔exit session Established: {up:.1?}");

    let result = scenario::run(&mut lab, |n, s| eprint!("{}", scenario::render(n, s)))
        .unwrap_or_else(|e| panic!("the scenario failed: {e:#}"));
    assert_eq!(result.steps.len(), 6);
    for (i, step) in result.steps.iter().enumerate() {
        assert_eq!(step.views.len(), 2, "step {}: a table per leaf", i + 1);
        for v in &step.views {
            let sessions = v.sessions.as_ref().unwrap();
            assert!(
                established(sessions, "default", topology::UPLINK),
                "step {}: {} ↔ exit not Established: {sessions:?}",
                i + 1,
                v.name
            );
            let report = v.report.as_ref().expect("a recorded heartbeat");
            assert!(report.ok(), "step {}: {}: {report:?}", i + 1, v.name);
            assert!(
                v.violations.is_empty(),
                "step {}: {}: {:?}",
                i + 1,
                v.name,
                v.violations
            );
            assert!(v.changes.is_some() && v.frr_changed.is_some());
        }
    }
    // Step 2 made machine02's ports firewall ports: FRR peers with it in
    // the default VRF (peer group FIREWALL), on both leaves.
    for v in &result.steps[1].views {
        let s = v.sessions.as_ref().unwrap();
        assert!(
            s.iter().any(|x| x.neighbor == "Ethernet1"
                && x.peer_group == "FIREWALL"
                && x.state == "Established"
                && x.peer_host == "machine02"),
            "{}: {s:?}",
            v.name
        );
        let changes = v.changes.as_ref().unwrap();
        assert!(
            changes.contains(&"- VLAN_MEMBER|Vlan3900|Ethernet1".to_owned()),
            "{changes:?}"
        );
        assert_eq!(v.frr_changed, Some(true), "the firewall needs FRR lines");
    }
    // Step 3 touched only leaf02.
    let s3 = &result.steps[2].views;
    assert_eq!(
        s3[0].changes.as_ref().unwrap().len(),
        0,
        "{:?}",
        s3[0].changes
    );
    assert_eq!(
        s3[1].changes.as_deref().unwrap(),
        ["~ PORT|Ethernet0 admin_status: up -> down"]
    );
    // The heartbeats carried port and BGP states of both leaves.
    for leaf in ["leaf01", "leaf02"] {
        let r = lab
            .report_after(leaf, 0, |r| {
                r.ports.get("Ethernet120").map(String::as_str) == Some("UP")
                    && r.bgp.get("Ethernet120").map(String::as_str) == Some("Established")
            })
            .unwrap();
        assert!(
            r.is_some(),
            "{leaf}: no heartbeat with Ethernet120 up and Established"
        );
    }

    support::clean_teardown(&mut lab, "the scenario");
    for node in topology::nodes() {
        let ns = format!("{prefix}{node}");
        assert!(!process::netns_exists(&ns), "{ns} is left over");
    }
    assert!(!dir.exists(), "{} is left over", dir.display());
}
