//! Crash safety (issue "Reliability and security", item 1): `metal-switchd
//! run` is killed with SIGKILL at every crash point of a multi-phase apply in
//! turn (`src/crash.rs`: before / after each phase's write, inside barrier
//! waits, between FRR validation, installation and reload, before the kernel
//! check), then started again without the crash point. After the restart:
//! - it converges (a heartbeat without error);
//! - CONFIG_DB equals the independent model (`support::model`): no orphaned
//!   owned entry, nothing missing, every foreign key byte-identical;
//! - the SONiC stand-in saw no order that would crash or wedge SONiC;
//! - frr.conf is, at every moment the test looks (right after the kill and
//!   after the restart), the previously installed or the new rendered file
//!   — never a half-written or rejected one — and FRR runs the new one;
//!   no temporary file is left behind.
//!
//! The points of each scenario come from a traced run of the same apply
//! (`METAL_SWITCHD_CRASH_TRACE`); the test also checks that every phase's
//! write points and the FRR points are among them. Scenarios: PXE→VRF and
//! VRF→VRF with a new VRF and the cleanup of an old one (five phases), the
//! way back, and the cleanup of every tenant VRF.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::sonic::StandInOptions;
use support::Switch;
use support::agent::AgentProcess;
use support::lab::{HANG, LAB_PORTS, Lab, desc_of, leaf01_doc, no_error};
use support::model::{self, Model};

/// The lab leaf01 (Ethernet3 in Vrf104010, Ethernet4 unprovisioned).
fn state_a() -> String {
    leaf01_doc(&[])
}

/// Ethernet3 moved to a new Vrf104011 (VRF→VRF), Ethernet4 into it (PXE→VRF),
/// Vrf104010 cleaned up.
fn state_b() -> String {
    leaf01_doc(&[("Ethernet3", "vrf104011"), ("Ethernet4", "vrf104011")])
}

/// Every tenant port unprovisioned: both tenant VRFs cleaned up.
fn state_c() -> String {
    leaf01_doc(&[("Ethernet1", ""), ("Ethernet2", ""), ("Ethernet3", "")])
}

/// Random per-daemon delays from `seed`, each at least 20 ms: the agent
/// checks a barrier right after its write, so every barrier wait blocks and
/// reaches its crash point in every run of a scenario, not only in the
/// traced one (the runs of a scenario share the seed).
fn standin(seed: u64) -> StandInOptions {
    let floor = Duration::from_millis(20);
    let r = StandInOptions::random(seed, Duration::from_millis(20));
    StandInOptions {
        vrfmgrd: r.vrfmgrd + floor,
        vlanmgrd: r.vlanmgrd + floor,
        intfmgrd: r.intfmgrd + floor,
        vxlanmgrd: r.vxlanmgrd + floor,
        portmgrd: r.portmgrd + floor,
        orchagent: r.orchagent + floor,
        ..r
    }
}

fn switch(seed: u64) -> Switch {
    Switch::leaf01_with_foreign(standin(seed))
}

/// A lab whose CONFIG_DB and frr.conf are at `from` (applied by `apply
/// --once`), whose API serves `to`; with the model at `from`.
fn lab_at(from: &str, to: &str, seed: u64) -> (Lab, Model) {
    let sw = switch(seed);
    let baseline = sw.dump(CONFIG_DB);
    let lab = Lab::new(sw, LAB_PORTS, to, model::FOREIGN_SETTINGS);
    let mut model = Model::leaf01(baseline, model::UNMANAGED);
    let before = lab.sw.dump(CONFIG_DB);
    let expected = model.transition(&desc_of(from), &before);
    lab.apply_once(from);
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "setup");
    (lab, model)
}

/// Start the agent; wait until it ends at `point` (SIGKILL) and return;
/// panic if it converges instead.
fn crash_at(lab: &Lab, point: &str, name: &str) {
    let mut agent = lab.start(name, &[("METAL_SWITCHD_CRASH_AT", point)]);
    let started = Instant::now();
    loop {
        if !agent.running() {
            let status = agent.wait_exit(HANG);
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "{point}: the agent ended with {status:?}, not SIGKILL; log:\n{}",
                agent.log_text()
            );
            assert!(
                agent
                    .log_text()
                    .contains(&format!("crash point {point}: SIGKILL")),
                "{}",
                agent.log_text()
            );
            return;
        }
        if lab.heartbeat_after(0, no_error).is_some() {
            panic!(
                "{point}: the agent converged without reaching the crash point; log:\n{}",
                agent.log_text()
            );
        }
        assert!(
            started.elapsed() < HANG,
            "{point}: neither crashed nor converged; log:\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// frr.conf is one of the two complete files.
fn assert_frr_is_one_of(lab: &Lab, old: &str, new: &str, when: &str) {
    let now = lab.frr_conf().unwrap_or_default();
    assert!(
        now == old || now == new,
        "{when}: frr.conf is neither the previous nor the rendered configuration:\n{now}"
    );
}

/// One scenario: learn its points from a traced run, then crash at each.
fn scenario(name: &str, from: &str, to: &str, seed: u64) -> Vec<(String, String)> {
    // The traced run: which points does this apply pass?
    let (lab, mut model) = lab_at(from, to, seed);
    let old_frr = lab.frr_conf().expect("frr.conf after the setup");
    let trace = lab.path("trace");
    let before = lab.sw.dump(CONFIG_DB);
    let expected = model.transition(&desc_of(to), &before);
    let mut agent = lab.start(
        "traced",
        &[("METAL_SWITCHD_CRASH_TRACE", trace.to_str().unwrap())],
    );
    lab.wait_converged(&agent, 0, "the traced run to converge");
    let status = agent.stop(HANG);
    assert!(status.success(), "{}", agent.log_text());
    lab.sw.settle();
    model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), "traced run");
    support::assert_no_violations(&lab.sw);
    let new_frr = lab.frr_conf().unwrap();
    assert_ne!(old_frr, new_frr, "{name}: FRR must change too");
    assert_eq!(lab.reloaded().as_deref(), Some(new_frr.as_str()));
    let points: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let phases = points
        .iter()
        .filter(|p| p.ends_with(".before-write"))
        .count();
    assert!(phases >= 2, "{name}: a multi-phase plan: {points:?}");
    let mut required: Vec<String> = (1..=phases)
        .flat_map(|n| {
            [
                format!("configdb.phase.{n}.before-write"),
                format!("configdb.phase.{n}.after-write"),
            ]
        })
        .collect();
    required.extend(
        [
            "frr.validated",
            "frr.backed-up",
            "frr.installed",
            "frr.reloaded",
            "reconcile.kernel-check",
        ]
        .map(String::from),
    );
    for r in &required {
        assert!(points.contains(r), "{name}: {r} not reached: {points:?}");
    }
    assert!(
        points.iter().any(|p| p.ends_with(".barrier")),
        "{name}: no barrier wait: {points:?}"
    );
    drop(lab);

    let mut outcomes = Vec::new();
    for point in &points {
        let (lab, mut model) = lab_at(from, to, seed);
        let before = lab.sw.dump(CONFIG_DB);
        let expected = model.transition(&desc_of(to), &before);
        crash_at(&lab, point, "crashed");
        assert_frr_is_one_of(
            &lab,
            &old_frr,
            &new_frr,
            &format!("{point}: after the kill"),
        );
        let was = if lab.frr_conf().as_deref() == Some(new_frr.as_str()) {
            "new"
        } else {
            "previous"
        };
        let after_kill = lab.last_seq();
        let agent = lab.start("restarted", &[]);
        lab.wait_converged(
            &agent,
            after_kill,
            &format!("{point}: convergence after the restart"),
        );
        let when = format!("{name}, killed at {point}, restarted");
        lab.sw.settle();
        model::assert_matches(&model, &expected, &lab.sw.dump(CONFIG_DB), &when);
        support::assert_no_violations(&lab.sw);
        assert_eq!(lab.frr_conf().as_deref(), Some(new_frr.as_str()), "{when}");
        assert_eq!(
            lab.reloaded().as_deref(),
            Some(new_frr.as_str()),
            "{when}: FRR does not run the installed configuration"
        );
        assert_eq!(lab.frr_temp_files(), Vec::<String>::new(), "{when}");
        stop(agent, &when);
        outcomes.push((
            point.clone(),
            format!("frr.conf after the kill: {was}; converged"),
        ));
    }
    outcomes
}

fn stop(mut agent: AgentProcess, when: &str) {
    let status = agent.stop(HANG);
    assert!(status.success(), "{when}: {status:?}\n{}", agent.log_text());
}

fn report(name: &str, outcomes: &[(String, String)]) {
    eprintln!("crash points of {name}: {}", outcomes.len());
    for (p, o) in outcomes {
        eprintln!("  {p:<36} {o}");
    }
}

#[test]
fn killed_at_every_point_of_pxe_to_vrf_and_vrf_to_vrf_it_converges_after_a_restart() {
    let o = scenario("A→B", &state_a(), &state_b(), 0xc4a5_0001);
    report("A→B (PXE→VRF, VRF→VRF, new VRF, VRF cleanup)", &o);
}

#[test]
fn killed_at_every_point_of_the_way_back_it_converges_after_a_restart() {
    let o = scenario("B→A", &state_b(), &state_a(), 0xc4a5_0100);
    report("B→A (VRF→PXE, VRF→VRF, VRF re-created, VRF cleanup)", &o);
}

#[test]
fn killed_at_every_point_of_a_vrf_cleanup_it_converges_after_a_restart() {
    let o = scenario("A→C", &state_a(), &state_c(), 0xc4a5_0200);
    report("A→C (every tenant VRF cleaned up)", &o);
}

/// A crash while recovering from a crash: killed right after phase 1 was
/// written while SONiC's daemons are frozen, started again and killed while
/// it waits for the confirmations SONiC still owes (`configdb.pending`),
/// then started again with SONiC running: it converges.
#[test]
fn killed_again_while_waiting_for_what_sonic_owes_it_still_converges() {
    let (a, b) = (state_a(), state_b());
    let (lab, mut model) = lab_at(&a, &b, 0xc4a5_0300);
    let before = lab.sw.dump(CONFIG_DB);
    let expected = model.transition(&desc_of(&b), &before);
    lab.sw.standin().pause();
    crash_at(&lab, "configdb.phase.1.after-write", "crashed-1");
    crash_at(&lab, "configdb.pending", "crashed-2");
    lab.sw.standin().resume();
    let after = lab.last_seq();
    let agent = lab.start("restarted", &[]);
    lab.wait_converged(&agent, after, "convergence after two crashes");
    lab.sw.settle();
    model::assert_matches(
        &model,
        &expected,
        &lab.sw.dump(CONFIG_DB),
        "after two crashes",
    );
    support::assert_no_violations(&lab.sw);
    stop(agent, "after two crashes");
}
