//! The invariant soak's transitions and its loop, shared by the soak
//! against the SONiC stand-in (`tests/soak.rs`) and the soak on real SONiC
//! (`tests/soak_sonic.rs`).
//!
//! Transitions move ports between PXE, tenant VRFs and firewalls, make VRFs
//! appear and disappear (a VRF's VNI changes: all its ports move to another),
//! set admin up / down / nothing, and change CIDR and VNI filters. After every
//! transition:
//! - the reconcile converged (every barrier met, the kernel showing the
//!   state when the agent has a kernel view);
//! - CONFIG_DB equals the independent model (`support::model`, written from
//!   README.md's "What the agent writes" and sonic-configdb reference §2.3,
//!   not from `configdb::target`) on the owned keys, and every foreign key is
//!   byte-identical;
//! - SONiC is fine ([`Target::check`]);
//! - a repeated reconcile writes nothing, and a fresh agent (no memory of
//!   the last run) plans nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metal_switchd::config::Config;
use metal_switchd::configdb::redis::ApplyOptions;
use metal_switchd::kernel::view::KernelView;
use metal_switchd::reconcile::desired::DesiredSource;
use metal_switchd::reconcile::{Agent, AgentOptions, Mode};
use metal_switchd::report::{ReconcileResult, Trigger};
use metal_switchd::spec::{AdminStatus, FilterDesc, SwitchDesc};

use super::Dump;
use super::model::{self, Model};

/// Transitions CI runs.
pub const CI_TRANSITIONS: usize = 150;
pub const CI_SEED: u64 = 0x50a4_2026;

/// Ports the soak moves around (the others stay unprovisioned).
pub const PORTS: &[&str] = &[
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
pub const VNIS: &[u32] = &[104009, 104010, 104011, 104012, 104013, 7, 4_000_000];
pub const CIDRS: &[&str] = &[
    "10.0.16.0/22",
    "10.240.0.0/12",
    "212.34.83.19/32",
    "2001:db8:20::/48",
    "10.1.0.1/32",
    "100.64.0.0/16",
];

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
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
pub fn mutate(desc: &SwitchDesc, rng: &mut fastrand::Rng) -> (SwitchDesc, Vec<String>) {
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

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct Soak {
    pub transitions: usize,
    pub seed: u64,
    /// The agent's barrier timeout.
    pub barrier_timeout: Duration,
    /// A kernel view in this network namespace for the agent (with
    /// `kernel_checks` set in the configuration): each reconcile then waits
    /// until the kernel shows the state too.
    pub kernel_netns: Option<PathBuf>,
}

impl Soak {
    /// `METAL_SWITCHD_SOAK_TRANSITIONS` and `METAL_SWITCHD_SOAK_SEED`, or
    /// CI's.
    pub fn from_env(barrier_timeout: Duration) -> Soak {
        Soak {
            transitions: env_or("METAL_SWITCHD_SOAK_TRANSITIONS", CI_TRANSITIONS),
            seed: env_or("METAL_SWITCHD_SOAK_SEED", CI_SEED),
            barrier_timeout,
            kernel_netns: None,
        }
    }
}

/// The switch a soak runs on.
pub trait Target {
    /// Its CONFIG_DB now.
    fn config_db(&self) -> Dump;
    /// SONiC neither crashed nor wedged up to now; panics with `when`.
    fn check(&mut self, when: &str);
    /// Start counting the writes of every client but SONiC's.
    fn reset_writes(&self);
    /// Writes of every client but SONiC's since [`Target::reset_writes`],
    /// when the target can tell.
    fn others_writes(&self) -> Option<u64>;
}

/// What a soak did.
#[derive(Debug, Default)]
pub struct Summary {
    pub changes: usize,
    pub phases: usize,
    /// Transitions without a CONFIG_DB change.
    pub empty: usize,
    /// Reconciles tried again (CONFIG_DB moved under the agent, SONiC busy).
    pub retries: usize,
    /// Each transition's reconcile (its first try).
    pub durations: Vec<Duration>,
    pub elapsed: Duration,
}

impl Summary {
    /// The figures of `soak` in one line.
    pub fn line(&self, soak: &Soak) -> String {
        let (median, max) = self.median_max();
        format!(
            "{} transitions (seed {:#x}) in {:.1} s: {} CONFIG_DB changes in {} phases, {} \
             transitions without a CONFIG_DB change, {} reconcile(s) retried; reconcile median \
             {} ms, max {} ms",
            soak.transitions,
            soak.seed,
            self.elapsed.as_secs_f64(),
            self.changes,
            self.phases,
            self.empty,
            self.retries,
            median.as_millis(),
            max.as_millis()
        )
    }

    /// The median and the largest reconcile duration.
    pub fn median_max(&self) -> (Duration, Duration) {
        let mut d = self.durations.clone();
        d.sort();
        (
            d.get(d.len() / 2).copied().unwrap_or_default(),
            d.last().copied().unwrap_or_default(),
        )
    }
}

fn new_agent(cfg: &Config, desc: &SwitchDesc, mode: Mode, barrier_timeout: Duration) -> Agent {
    let opts = AgentOptions {
        mode,
        // CONFIG_DB only: frr.conf is checked by the crash and fault tests.
        frr: false,
        wait_ready: Duration::from_secs(10),
        hooks: ApplyOptions {
            barrier_timeout,
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

/// Run `soak` from `desc` on `target` with the agent configuration `cfg`;
/// `model` starts from the target's CONFIG_DB before the first apply.
pub async fn run(
    target: &mut impl Target,
    cfg: &Config,
    mut desc: SwitchDesc,
    model: &mut Model,
    soak: &Soak,
) -> Summary {
    let mut rng = fastrand::Rng::with_seed(soak.seed);
    let mut agent = new_agent(cfg, &desc, Mode::Apply, soak.barrier_timeout);
    if let Some(ns) = &soak.kernel_netns {
        agent.set_kernel(KernelView::start_in_netns(ns).await.unwrap());
    }
    let mut s = Summary::default();
    let started = Instant::now();
    for t in 0..=soak.transitions {
        // Transition 0 is the first apply of the lab state.
        let what = if t == 0 {
            vec!["first apply".to_owned()]
        } else {
            let (next, what) = mutate(&desc, &mut rng);
            desc = next;
            what
        };
        let before = target.config_db();
        let expected = model.transition(&desc, &before);
        agent.source_mut().set_memory(desc.clone());
        let mut o = agent.reconcile_once(Trigger::Timer, true, far()).await;
        s.durations.push(o.duration);
        // What the daemon does with a reconcile that found CONFIG_DB moved
        // under it or SONiC still busy: try again (counted, bounded).
        let mut tries = 1;
        while o.result != ReconcileResult::Converged && o.transient && tries < 5 {
            s.retries += 1;
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
        assert!(
            !o.kernel_pending,
            "{when}: the kernel did not show the state within kernel_drift_grace"
        );
        s.changes += o.changes;
        s.phases += o.phases;
        if o.changes == 0 {
            s.empty += 1;
        }
        target.check(&when);
        let after = target.config_db();
        model::assert_matches(model, &expected, &after, &when);

        // A repeated reconcile writes nothing.
        target.reset_writes();
        let written = agent.db().stats().write_commands;
        let again = agent.reconcile_once(Trigger::Timer, true, far()).await;
        assert_eq!(again.result, ReconcileResult::Converged, "{when}: again");
        assert_eq!(again.changes, 0, "{when}: again: {}", again.summary());
        assert_eq!(
            agent.db().stats().write_commands,
            written,
            "{when}: the repeated reconcile sent writes"
        );
        if let Some(w) = target.others_writes() {
            assert_eq!(w, 0, "{when}: the repeated reconcile wrote");
        }
        assert_eq!(target.config_db(), after, "{when}: the repeated reconcile");
        // So does an agent that starts from scratch.
        if t % 10 == 0 || t == soak.transitions {
            eprintln!(
                "soak: {t}/{} transitions after {:.1} s",
                soak.transitions,
                started.elapsed().as_secs_f64()
            );
            let mut fresh = new_agent(cfg, &desc, Mode::DryRun, soak.barrier_timeout);
            let f = fresh.reconcile_once(Trigger::Startup, true, far()).await;
            assert_eq!(
                (f.result, f.changes),
                (ReconcileResult::Converged, 0),
                "{when}: a fresh agent plans {}",
                f.plan.map(|p| p.to_string()).unwrap_or_default()
            );
        }
    }
    s.elapsed = started.elapsed();
    s
}

/// The stand-in's switch: redis counts every client's writes, the stand-in
/// its own; its violation list says whether SONiC would have crashed or
/// wedged.
impl Target for super::Switch {
    fn config_db(&self) -> Dump {
        self.dump(metal_switchd_lab::redis_server::CONFIG_DB)
    }

    fn check(&mut self, when: &str) {
        super::assert_no_violations_when(self, when);
    }

    fn reset_writes(&self) {
        super::Switch::reset_writes(self);
    }

    fn others_writes(&self) -> Option<u64> {
        Some(self.agent_writes())
    }
}
