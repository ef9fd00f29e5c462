//! The netns mini-lab on a full kernel (`vrf`, `vlan`, bridge VLAN
//! filtering): the SONiC stand-in creates the tenant VRF devices as SONiC's
//! managers do, and machine01's BGP sessions to both leaves inside the
//! tenant VRF reach Established (then, after the move, inside the new one).
//! Runs in the full-kernel VM (`./dev vm-test minilab_vm`; `./dev test`
//! runs it there) and fails elsewhere with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use metal_switchd_lab::minilab::topology::ApiVersion;
use metal_switchd_lab::minilab::{Lab, LabOptions, scenario};

#[test]
fn tenant_vrf_sessions_of_a_machine_reach_established_on_a_full_kernel() {
    metal_switchd_lab::frr_lab::require_full_kernel("minilab_vm").unwrap_or_else(|e| panic!("{e}"));
    let mut o = LabOptions::new(PathBuf::from(env!("CARGO_BIN_EXE_metal-switchd")));
    o.prefix = format!("v{:05x}-", std::process::id() & 0xf_ffff);
    o.api = ApiVersion::V2;
    // The VM emulates its CPU: generous bounds that only catch hangs.
    o.timeout = Duration::from_secs(240);
    o.interval = Duration::from_secs(2);
    // SONiC's per-port kernel steps cost a process each: under the
    // emulated CPU the leaves keep only their three cabled ports, and the
    // agents wait longer for SONiC and the kernel.
    o.only_wired_ports = true;
    o.agent_timeout = Duration::from_secs(120);
    o.barrier_timeout = Duration::from_secs(90);
    let mut lab = Lab::up(o).unwrap_or_else(|e| panic!("the mini-lab did not come up: {e:#}"));
    eprintln!(
        "up to every leaf↔exit session Established: {:.1?}",
        lab.established_after.unwrap()
    );
    // The emulated CPU is slow: the allocation step only (the host runs all).
    let result = scenario::run_steps(&mut lab, 1, |n, s| eprint!("{}", scenario::render(n, s)))
        .unwrap_or_else(|e| panic!("the scenario failed: {e:#}"));
    assert!(
        result.tenant_sessions,
        "a full kernel expects tenant sessions"
    );
    assert_eq!(result.tenant_summaries.len(), 2);
    for (leaf, text) in &result.tenant_summaries {
        eprintln!("--- {leaf}: show bgp vrf Vrf30 summary\n{text}");
    }
    // Step 1: machine01's session inside Vrf30 on both leaves.
    let tenant = result.tenant_problems(Some("machine01"));
    assert!(tenant.is_empty(), "{tenant:#?}");
    let t = lab.teardown().unwrap();
    for (name, status, ok) in &t.agents {
        assert!(ok, "metal-switchd on {name} ended with {status}");
    }
    for (name, v) in &t.violations {
        assert!(v.is_empty(), "{name}: {v:?}");
    }
}
