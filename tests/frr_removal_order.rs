//! Removal order between FRR and CONFIG_DB (issue 21 item 7): what leaves
//! FRR (a firewall's BGP neighbour, a tenant VRF's instance) leaves it before
//! its interface or VRF leaves CONFIG_DB — bgpd crashing on deprovisioned
//! firewall ports is why metal-core grew a `frr-workaround` branch — and what
//! is added goes into CONFIG_DB first. The agent (in-process) against a lab
//! switch (redis + the SONiC stand-in) and real `zebra` + `bgpd` reloaded by
//! `frr-reload.py`; at every CONFIG_DB phase (before its precondition and
//! right after its write) the test reads both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metal_switchd::configdb::plan::Stage;
use metal_switchd::configdb::redis::{ApplyOptions, PhaseHook};
use metal_switchd::reconcile::desired::DesiredSource;
use metal_switchd::reconcile::{Agent, AgentOptions, Mode};
use metal_switchd::report::{ReconcileResult, Trigger};
use metal_switchd_lab::frr_lab::{FRR_RELOAD, FrrLab};
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::sonic::StandInOptions;
use support::{Switch, assert_no_violations, leaf01_desc, with_vrf};

/// The firewall port of leaf01 and the tenant VRF whose only member is
/// Ethernet3 (`lab/switches/leaf01.v1.json`).
const FIREWALL: &str = "Ethernet0";
const VRF: &str = "Vrf104010";

/// Both sides at one moment of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    when: String,
    db_interface: bool,
    db_vrf: bool,
    frr_neighbor: bool,
    frr_vrf: bool,
}

fn look(sw: &Switch, lab: &FrrLab, vrf: &str, when: String) -> Seen {
    let d = sw.dump(CONFIG_DB);
    let running = lab.running_config().unwrap();
    Seen {
        when,
        db_interface: d.contains_key(&format!("INTERFACE|{FIREWALL}")),
        db_vrf: d.contains_key(&format!("VRF|{vrf}")),
        frr_neighbor: running.contains(&format!("neighbor {FIREWALL} interface")),
        frr_vrf: running.contains(&format!("router bgp 4200000011 vrf {vrf}\n")),
    }
}

/// bgpd never holds a neighbour on an interface, or an instance of a VRF,
/// that CONFIG_DB no longer (or not yet) has.
fn assert_frr_within_configdb(seen: &[Seen]) {
    for s in seen {
        assert!(
            !s.frr_neighbor || s.db_interface,
            "bgpd has neighbor {FIREWALL} while CONFIG_DB has no INTERFACE|{FIREWALL} ({}); \
             all: {seen:#?}",
            s.when
        );
        assert!(
            !s.frr_vrf || s.db_vrf,
            "bgpd has the instance of a VRF CONFIG_DB does not have ({}); all: {seen:#?}",
            s.when
        );
    }
}

/// One reconcile to convergence; what the hooks saw, then the end state.
async fn reconcile(
    agent: &mut Agent,
    sw: &Switch,
    lab: &FrrLab,
    seen: &Mutex<Vec<Seen>>,
    vrf: &Mutex<&'static str>,
) -> Vec<Seen> {
    seen.lock().unwrap().clear();
    let deadline = Instant::now() + Duration::from_secs(120);
    let o = agent.reconcile_once(Trigger::Startup, true, deadline).await;
    assert_eq!(
        o.result,
        ReconcileResult::Converged,
        "{:?}\n{}",
        o.error,
        lab.logs()
    );
    let mut all = seen.lock().unwrap().clone();
    let vrf = *vrf.lock().unwrap();
    all.push(look(sw, lab, vrf, "after the reconcile".into()));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_leaves_frr_leaves_it_before_configdb_and_additions_go_to_configdb_first() {
    let lab = FrrLab::start("leaf01").unwrap();
    let sw = Arc::new(Switch::leaf01(StandInOptions::random(
        0x7e40,
        Duration::from_millis(20),
    )));
    let args = lab
        .frr_reload_args()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cfg = sw.config(&format!(
        "frr_config = {:?}\nfrr_validation = \"vtysh\"\nfrr_reload = \"exec\"\n\
         frr_reload_path = {FRR_RELOAD:?}\nfrr_reload_args = [{args}]\nfrr_agentx = false\n\
         kernel_checks = false\n",
        lab.config_file().display().to_string()
    ));

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let vrf: Arc<Mutex<&'static str>> = Arc::new(Mutex::new(VRF));
    let lab = Arc::new(lab);
    let hook = |label: &'static str| -> PhaseHook {
        let (sw, lab, seen, vrf) = (sw.clone(), lab.clone(), seen.clone(), vrf.clone());
        Arc::new(move |phase: usize, stage: Stage| {
            let v = *vrf.lock().unwrap();
            let s = look(&sw, &lab, v, format!("{label} phase {phase} ({stage:?})"));
            seen.lock().unwrap().push(s);
        })
    };
    let opts = AgentOptions {
        mode: Mode::Apply,
        frr: true,
        wait_ready: Duration::from_secs(30),
        hooks: ApplyOptions {
            barrier_timeout: Duration::from_secs(30),
            before_phase: Some(hook("before")),
            after_write: Some(hook("after the write of")),
            ..ApplyOptions::default()
        },
    };
    let full = leaf01_desc();
    let mut agent = Agent::new(
        cfg.clone(),
        DesiredSource::Memory(Arc::new(full.clone())),
        None,
        opts,
    )
    .unwrap();
    // The firewall and the VRF are there, on both sides.
    let first = reconcile(&mut agent, &sw, &lab, &seen, &vrf).await;
    let end = first.last().unwrap();
    assert!(
        end.db_interface && end.db_vrf && end.frr_neighbor && end.frr_vrf,
        "{first:#?}"
    );
    assert_frr_within_configdb(&first);

    // Deprovisioned: the firewall port and VRF 104010's only machine.
    let removed = with_vrf(with_vrf(full.clone(), FIREWALL, ""), "Ethernet3", "");
    agent.source_mut().set_memory(removed);
    let gone = reconcile(&mut agent, &sw, &lab, &seen, &vrf).await;
    assert_frr_within_configdb(&gone);
    // FRR went first: before the first CONFIG_DB phase bgpd had already
    // forgotten both while CONFIG_DB still held them.
    let before_first = &gone[0];
    assert!(
        before_first.db_interface
            && before_first.db_vrf
            && !before_first.frr_neighbor
            && !before_first.frr_vrf,
        "FRR was not changed before CONFIG_DB: {gone:#?}"
    );
    let end = gone.last().unwrap();
    assert!(
        !end.db_interface && !end.db_vrf && !end.frr_neighbor && !end.frr_vrf,
        "{gone:#?}"
    );

    // The firewall provisioned again: CONFIG_DB first, FRR after. (Without
    // kernel VRF devices — this kernel — zebra cannot create a VRF after it
    // deleted one, "Failure to communicate to zebra", in either order: the
    // VRF stays away here; the order of a VRF's addition is the same code
    // path as the neighbour's.)
    agent
        .source_mut()
        .set_memory(with_vrf(full, "Ethernet3", ""));
    let back = reconcile(&mut agent, &sw, &lab, &seen, &vrf).await;
    assert_frr_within_configdb(&back);
    let last_phase = &back[back.len() - 2];
    assert!(
        last_phase.db_interface && !last_phase.frr_neighbor,
        "CONFIG_DB was not written before FRR: {back:#?}"
    );
    let end = back.last().unwrap();
    assert!(end.db_interface && end.frr_neighbor, "{back:#?}");
    assert_no_violations(&sw);
}
