//! The invariant soak on real SONiC: the transitions and checks of
//! `tests/soak.rs` (`support::soak`), applied by the agent through SONiC's
//! own daemons of one release (syncd on the virtual SAI, orchagent,
//! portsyncd, the config managers, fpmsyncd; `lab/src/sonic_real.rs`)
//! instead of the stand-in.
//!
//! The leaf is mini-lab leaf01 on the release's community base
//! configuration with fifteen front-panel ports: the twelve the soak moves
//! (`Ethernet0`…`Ethernet11`), the operator's `Ethernet100` and the two
//! uplinks, each a veth in the leaf's network namespace. The agent has a
//! kernel view in that namespace (`kernel_checks = true`): every reconcile
//! waits for the real daemons' confirmations and then for the kernel to
//! show the state. After every transition, besides the model of CONFIG_DB,
//! the repeated reconcile and the fresh agent: every SONiC daemon still
//! runs and none logged an error or warning that `support::sonic_logs`
//! does not explain.
//!
//! A repeated reconcile is checked by the agent's own write counter and an
//! unchanged CONFIG_DB (redis' counters include SONiC's daemons, which
//! write all the time).
//!
//! Runs in the full-kernel VM: `./dev sonic soak [RELEASE]`, or
//! `DEV_SONIC_RELEASE=202411 ./dev vm-test soak_sonic -- --nocapture`;
//! `DEV_SONIC_SOAK_TRANSITIONS` and `DEV_SONIC_SOAK_SEED` as
//! `METAL_SWITCHD_SOAK_*` for `tests/soak.rs` (150 transitions, CI's seed by
//! default; `DEV_SONIC_*` variables reach the VM). Prints a `SONIC-SOAK`
//! line with the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::sonic_real::{Release, SoloLeaf, mini_lab_ports};
use support::config::TestConfig;
use support::model::{self, Model};
use support::soak::{self, Soak, Target};
use support::{Dump, leaf01_desc};

/// The real leaf: SONiC's daemons and the error lines already seen.
struct RealLeaf {
    leaf: SoloLeaf,
    seen: usize,
}

impl Target for RealLeaf {
    fn config_db(&self) -> Dump {
        metal_switchd_lab::seed::dump(&self.leaf.redis, CONFIG_DB).unwrap()
    }

    fn check(&mut self, when: &str) {
        if let Err(e) = self.leaf.sonic.check() {
            panic!("{when}: {e:#}");
        }
        let findings = self.leaf.sonic.findings();
        let new: Vec<&String> = findings
            .iter()
            .skip(self.seen)
            .filter(|f| support::sonic_logs::explained(f).is_none())
            .collect();
        assert!(
            new.is_empty(),
            "{when}: SONiC's daemons logged errors or warnings that support::sonic_logs does \
             not explain:\n{}",
            new.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        self.seen = findings.len();
    }

    fn reset_writes(&self) {}

    fn others_writes(&self) -> Option<u64> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transitions_on_real_sonic_keep_every_invariant() {
    metal_switchd_lab::frr_lab::require_full_kernel("soak_sonic").unwrap_or_else(|e| panic!("{e}"));
    let release =
        Release::parse(&std::env::var("DEV_SONIC_RELEASE").unwrap_or_else(|_| "202411".into()))
            .unwrap();
    let mut names: Vec<&str> = soak::PORTS.to_vec();
    names.extend(model::UNMANAGED);
    names.extend(["Ethernet120", "Ethernet124"]);
    let ports = mini_lab_ports(&names).unwrap();
    let leaf = tokio::task::spawn_blocking(move || {
        SoloLeaf::start(release, &ports, &model::foreign_entries())
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("SONiC {release} did not start: {e:#}"));
    eprintln!(
        "SONIC-SOAK release={release} startup_seconds={:.1} netns={} logs={}",
        leaf.sonic.startup.as_secs_f64(),
        leaf.netns,
        leaf.sonic.dir.display()
    );
    let dbconf = leaf.redis.write_database_config().unwrap();
    let mut soak = Soak::from_env(Duration::from_secs(60));
    soak.transitions = soak::env_or("DEV_SONIC_SOAK_TRANSITIONS", soak.transitions);
    soak.seed = soak::env_or("DEV_SONIC_SOAK_SEED", soak.seed);
    soak.kernel_netns = Some(leaf.netns_path());
    let cfg = TestConfig::leaf01()
        .path("database_config", &dbconf)
        .set("barrier_timeout", "60s")
        .set("kernel_checks", true)
        .set("kernel_drift_grace", "30s")
        .extra(model::FOREIGN_SETTINGS)
        .build();
    // The desired state's ports are the leaf's.
    let mut desc = leaf01_desc();
    desc.nics.retain(|n| names.contains(&n.name.as_str()));
    let mut target = RealLeaf { leaf, seen: 0 };
    // SONiC's start-up lines are the baseline's (checked like the rest).
    target.check("at start-up");
    let mut model = Model::leaf01(target.config_db(), model::UNMANAGED);
    eprintln!(
        "soak: {} transitions on real SONiC {release}, seed {:#x}",
        soak.transitions, soak.seed
    );
    let s = soak::run(&mut target, &cfg, desc, &mut model, &soak).await;
    for f in target.leaf.sonic.findings() {
        let why = support::sonic_logs::explained(&f).unwrap_or("NOT EXPLAINED");
        eprintln!("SONIC-LOG release={release} {f} [{why}]");
    }
    eprintln!(
        "SONIC-SOAK release={release} result=pass: {}",
        s.line(&soak)
    );
}
