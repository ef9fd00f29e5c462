//! The invariant soak: random desired-state transitions applied by the agent
//! (`Agent::reconcile_once`, as the daemon runs it) through the SONiC
//! stand-in with random per-daemon delays, a random extra delay per task and
//! each daemon's tasks reordered within a window across its tables.
//!
//! The transitions and the checks after each are `support::soak`'s (shared
//! with the soak on real SONiC, `tests/soak_sonic.rs`): CONFIG_DB equals the
//! independent model on the owned keys and every foreign key (base
//! configuration, a static VRF with its VLAN and map, an operator's VLAN
//! inside the range, an unmanaged port) is byte-identical; the stand-in
//! reports no order that would crash or wedge SONiC; a repeated reconcile
//! writes nothing (redis' own counters, every client but the stand-in), and
//! a fresh agent (no memory of the last run) plans nothing.
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

use std::time::Duration;

use metal_switchd_lab::fixtures;
use metal_switchd_lab::seed::SeedOptions;
use metal_switchd_lab::sonic::StandInOptions;
use support::model::{self, Model};
use support::soak::{self, Soak, Target};
use support::{Switch, leaf01_desc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_transitions_keep_every_invariant() {
    let soak = Soak::from_env(Duration::from_secs(10));
    let standin = StandInOptions::shuffled(soak.seed, Duration::from_millis(20));
    eprintln!(
        "soak: {} transitions, seed {:#x}, stand-in {standin:?}",
        soak.transitions, soak.seed
    );
    let mut sw = Switch::new(
        fixtures::LEAF01_CONFIG,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &model::foreign_entries(),
        SeedOptions::default(),
        Some(standin),
    );
    let cfg = sw.config(model::FOREIGN_SETTINGS);
    let mut model = Model::leaf01(sw.config_db(), model::UNMANAGED);
    let s = soak::run(&mut sw, &cfg, leaf01_desc(), &mut model, &soak).await;
    eprintln!("soak: {}; 0 violations, 0 model mismatches", s.line(&soak));
}
