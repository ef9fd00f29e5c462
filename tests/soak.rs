//! The invariant soak: random desired-state transitions applied by the agent
//! (`Agent::reconcile_once`, as the daemon runs it) through the SONiC
//! stand-in with random per-daemon delays, a random extra delay per task and
//! each daemon's tasks reordered within a window across its tables.
//!
//! Transitions move ports between PXE, tenant VRFs and firewalls, make VRFs
//! appear and disappear (a VRF's VNI changes: all its ports move to another),
//! set admin up / down / nothing, and change CIDR and VNI filters. After every
//! transition:
//! - CONFIG_DB equals the independent model (`support::model`, written from
//!   README.md's "What the agent writes" and sonic-configdb reference §2.3,
//!   not from `configdb::target`) on the owned keys, and every foreign key
//!   (base configuration, a static VRF with its VLAN and map, an operator's
//!   VLAN inside the range, an unmanaged port) is byte-identical;
//! - the stand-in reports no order that would crash or wedge SONiC;
//! - a repeated reconcile writes nothing, and a fresh agent (no memory of
//!   the last run) plans nothing.
//!
//! CI runs 150 transitions with a fixed seed. The full soak:
//!
//! ```sh
//! METAL_SWITCHD_SOAK_TRANSITIONS=1000 cargo nextest run --test soak --no-capture
//! ```
//!
//! (`METAL_SWITCHD_SOAK_SEED` picks another seed; the summary line gives the
//! figures.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metal_switchd::configdb::redis::ApplyOptions;
use metal_switchd::reconcile::desired::DesiredSource;
use metal_switchd::reconcile::{Agent, AgentOptions, Mode};
use metal_switchd::report::{ReconcileResult, Trigger};
use metal_switchd::spec::{AdminStatus, FilterDesc, SwitchDesc};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::seed::SeedOptions;
use metal_switchd_lab::sonic::StandInOptions;
use support::model::{self, Model};
use support::{Switch, leaf01_desc};

/// Transitions CI runs.
const CI_TRANSITIONS: usize = 150;
const CI_SEED: u64 = 0x50a4_2026;

/// Ports the soak moves around (the others stay unprovisioned).
const PORTS: &[&str] = &[
    "Ethernet0",
    "Ethernet1",
    "Ethernet2",
    "Ethernet3",
    "Ethernet4",
    "Ethernet5",
    "Ethernet6",
    "Ethernet7",
    "Ethernet8",
    "Ethernet9",
    "Ethernet10",
    "Ethernet11",
];
/// Tenant VNIs (the static VRF's 42 is not among them).
const VNIS: &[u32] = &[104009, 104010, 104011, 104012, 104013, 7, 4_000_000];
const CIDRS: &[&str] = &[
    "10.0.16.0/22",
    "10.240.0.0/12",
    "212.34.83.19/32",
    "2001:db8:20::/48",
    "10.1.0.1/32",
    "100.64.0.0/16",
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

fn vrf_of(desc: &SwitchDesc, port: &str) -> Option<String> {
    desc.nics
        .iter()
        .find(|n| n.name == port)
        .and_then(|n| n.vrf.clone())
        .filter(|v| !v.is_empty())
}

fn nic_mut<'a>(desc: &'a mut SwitchDesc, port: &str) -> &'a mut metal_switchd::spec::NicDesc {
    desc.nics.iter_mut().find(|n| n.name == port).unwrap()
}

fn cidrs(rng: &mut fastrand::Rng) -> Vec<String> {
    let n = rng.usize(0..=3);
    (0..n)
        .map(|_| CIDRS[rng.usize(..CIDRS.len())].to_owned())
        .collect()
}

/// One random step away from `desc`, and what it does (for the log).
fn mutate(desc: &SwitchDesc, rng: &mut fastrand::Rng) -> (SwitchDesc, Vec<String>) {
    let mut next = desc.clone();
    let mut what = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        let port = PORTS[rng.usize(..PORTS.len())];
        let in_use: BTreeSet<u32> = PORTS
            .iter()
            .filter_map(|p| vrf_of(&next, p))
            .filter_map(|v| v.strip_prefix("vrf").and_then(|n| n.parse().ok()))
            .collect();
        match rng.usize(0..8) {
            0 => {
                let n = nic_mut(&mut next, port);
                n.vrf = None;
                n.filter = FilterDesc::default();
                what.push(format!("{port}→PXE"));
            }
            1 => {
                let vnis: Vec<String> = (0..rng.usize(0..=2))
                    .map(|_| VNIS[rng.usize(..VNIS.len())].to_string())
                    .collect();
                let c = cidrs(rng);
                let n = nic_mut(&mut next, port);
                n.vrf = Some("default".into());
                n.filter = FilterDesc { cidrs: c, vnis };
                what.push(format!("{port}→firewall"));
            }
            2 | 3 => {
                let vni = VNIS[rng.usize(..VNIS.len())];
                let c = cidrs(rng);
                let n = nic_mut(&mut next, port);
                n.vrf = Some(format!("vrf{vni}"));
                n.filter = FilterDesc {
                    cidrs: c,
                    vnis: Vec::new(),
                };
                what.push(format!("{port}→Vrf{vni}"));
            }
            4 => {
                let admin = match rng.usize(0..3) {
                    0 => Some(AdminStatus::Up),
                    1 => Some(AdminStatus::Down),
                    _ => None,
                };
                nic_mut(&mut next, port).admin = admin;
                what.push(format!("{port} admin {admin:?}"));
            }
            5 => {
                // A VRF's VNI changes: all its ports move to another.
                let Some(&old) = in_use.iter().nth(rng.usize(..in_use.len().max(1))) else {
                    continue;
                };
                let free: Vec<u32> = VNIS
                    .iter()
                    .copied()
                    .filter(|v| !in_use.contains(v))
                    .collect();
                if free.is_empty() {
                    continue;
                }
                let new = free[rng.usize(..free.len())];
                for p in PORTS {
                    if vrf_of(&next, p).as_deref() == Some(format!("vrf{old}").as_str()) {
                        nic_mut(&mut next, p).vrf = Some(format!("vrf{new}"));
                    }
                }
                what.push(format!("Vrf{old}→Vrf{new}"));
            }
            6 => {
                // A VRF disappears: its ports go back to PXE.
                let Some(&old) = in_use.iter().nth(rng.usize(..in_use.len().max(1))) else {
                    continue;
                };
                for p in PORTS {
                    if vrf_of(&next, p).as_deref() == Some(format!("vrf{old}").as_str()) {
                        let n = nic_mut(&mut next, p);
                        n.vrf = None;
                        n.filter = FilterDesc::default();
                    }
                }
                what.push(format!("Vrf{old} removed"));
            }
            _ => {
                let c = cidrs(rng);
                let n = nic_mut(&mut next, port);
                if n.vrf.as_deref().is_some_and(|v| !v.is_empty()) {
                    n.filter.cidrs = c;
                    what.push(format!("{port} CIDRs"));
                }
            }
        }
    }
    (next, what)
}

fn new_agent(cfg: &metal_switchd::config::Config, desc: &SwitchDesc, mode: Mode) -> Agent {
    let opts = AgentOptions {
        mode,
        // CONFIG_DB only: frr.conf is checked by the crash and fault tests.
        frr: false,
        wait_ready: Duration::from_secs(10),
        hooks: ApplyOptions {
            barrier_timeout: Duration::from_secs(10),
            ..ApplyOptions::default()
        },
    };
    Agent::new(
        cfg.clone(),
        DesiredSource::Memory(Arc::new(desc.clone())),
        None,
        opts,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transitions_keep_every_invariant() {
    let transitions: usize = env_or("METAL_SWITCHD_SOAK_TRANSITIONS", CI_TRANSITIONS);
    let seed: u64 = env_or("METAL_SWITCHD_SOAK_SEED", CI_SEED);
    let standin = StandInOptions::shuffled(seed, Duration::from_millis(20));
    eprintln!("soak: {transitions} transitions, seed {seed:#x}, stand-in {standin:?}");
    let sw = Switch::new(
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &model::foreign_entries(),
        SeedOptions::default(),
        Some(standin),
    );
    let baseline = sw.dump(CONFIG_DB);
    let cfg = sw.config(model::FOREIGN_SETTINGS);
    let mut model = Model::leaf01(baseline, model::UNMANAGED);
    let mut rng = fastrand::Rng::with_seed(seed);

    let mut desc = leaf01_desc();
    let mut agent = new_agent(&cfg, &desc, Mode::Apply);
    let (mut changes, mut phases, mut retries, mut empty) = (0usize, 0usize, 0usize, 0usize);
    let started = Instant::now();
    for t in 0..=transitions {
        // Transition 0 is the first apply of the lab state.
        let what = if t == 0 {
            vec!["first apply".to_owned()]
        } else {
            let (next, what) = mutate(&desc, &mut rng);
            desc = next;
            what
        };
        let before = sw.dump(CONFIG_DB);
        let expected = model.transition(&desc, &before);
        agent.source_mut().set_memory(desc.clone());
        let mut o = agent.reconcile_once(Trigger::Timer, true, far()).await;
        // What the daemon does with a reconcile that found CONFIG_DB moved
        // under it or SONiC still busy: try again (counted, bounded).
        let mut tries = 1;
        while o.result != ReconcileResult::Converged && o.transient && tries < 5 {
            retries += 1;
            tries += 1;
            o = agent.reconcile_once(Trigger::Timer, false, far()).await;
        }
        let when = format!("transition {t} ({})", what.join(", "));
        assert_eq!(
            o.result,
            ReconcileResult::Converged,
            "{when}: {}",
            o.error.clone().unwrap_or_default()
        );
        changes += o.changes;
        phases += o.phases;
        if o.changes == 0 {
            empty += 1;
        }
        support::assert_no_violations_when(&sw, &when);
        let after = sw.dump(CONFIG_DB);
        model::assert_matches(&model, &expected, &after, &when);

        // A repeated reconcile writes nothing.
        sw.reset_writes();
        let again = agent.reconcile_once(Trigger::Timer, true, far()).await;
        assert_eq!(again.result, ReconcileResult::Converged, "{when}: again");
        assert_eq!(again.changes, 0, "{when}: again: {}", again.summary());
        assert_eq!(sw.agent_writes(), 0, "{when}: the repeated reconcile wrote");
        assert_eq!(sw.dump(CONFIG_DB), after, "{when}: the repeated reconcile");
        // So does an agent that starts from scratch.
        if t % 10 == 0 || t == transitions {
            let mut fresh = new_agent(&cfg, &desc, Mode::DryRun);
            let f = fresh.reconcile_once(Trigger::Startup, true, far()).await;
            assert_eq!(
                (f.result, f.changes),
                (ReconcileResult::Converged, 0),
                "{when}: a fresh agent plans {}",
                f.plan.map(|p| p.to_string()).unwrap_or_default()
            );
        }
    }
    eprintln!(
        "soak: {transitions} transitions (seed {seed:#x}) in {:.1} s: {changes} CONFIG_DB \
         changes in {phases} phases, {empty} transitions without a CONFIG_DB change, {retries} \
         reconcile(s) retried; 0 violations, 0 model mismatches",
        started.elapsed().as_secs_f64()
    );
}
