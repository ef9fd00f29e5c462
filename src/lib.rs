//! metal-switchd: the metal-stack agent of a SONiC leaf switch.
//!
//! One reconcile, from the metal API to the switch:
//!
//! ```text
//! metal API ──▶ api (v1/v2 wire) ──▶ SwitchDesc
//!                                        │ spec::build (+ Config, + LocalFacts from CONFIG_DB)
//!                                        ▼
//!                                    SwitchSpec (validated; rejected as a whole if bad)
//!                                        │
//!            configdb::target ◀──────────┤
//!                  │                     │
//!  configdb::diff(current, target) ─▶ ChangeSet
//!  configdb::plan ─▶ Plan (phases + barriers)
//!  ─────────────────────── I/O ───────────────────────
//!  configdb::redis: one MULTI/EXEC per phase, then wait for
//!  the phase's barrier in STATE_DB / APPL_DB / ASIC_DB
//!
//!  SwitchSpec ──▶ frr::render ──▶ frr.conf text (pure)
//!  ─────────────────────── I/O ───────────────────────
//!  frr::install: temp file → frr::validate (vtysh --dryrun or the
//!  validation unit) → .bak + rename → frr::reload (frr-reload.py or
//!  frr-reload.service via systemd) → roll back on failure
//!  frr::bgp: show bgp vrf all neighbors json (vtysh or state file)
//!  ──▶ observed::BgpPortState per port
//!
//!  lldp: AF_PACKET capture per port ──▶ lldp::frame (pure parser) ──▶
//!  lldp::collector (pure: port → neighbour, one event per machine)
//!  ──▶ every phone_home_interval one EventService/Send (v1 gRPC, v2 Connect)
//!
//!  SwitchSpec ──▶ kernel::expect ──▶ KernelExpectations (pure)
//!  ─────────────────────── I/O ───────────────────────
//!  kernel::view: rtnetlink dump + events ──▶ KernelState (port oper
//!  states, VLAN↔VNI map, mgmt address); expect::compare ──▶ mismatches
//!  and the owned CONFIG_DB keys that repair them
//! ```
//!
//! Everything above the I/O line is pure (no async, sockets or clock) and
//! compiles without the `agent` feature. The adapters live behind it.

/// The items of a module that exist only with the `agent` feature (its
/// adapters), declared together, each behind the feature.
macro_rules! agent {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "agent")]
            $item
        )*
    };
}

pub mod api;
pub mod config;
pub mod configdb;
pub mod crash;
pub mod error;
pub mod files;
pub mod flavour;
pub mod frr;
pub mod json;
pub mod kernel;
pub mod lldp;
pub mod names;
pub mod observed;
pub mod reconcile;
pub mod report;
pub mod spec;
pub mod systemd;
pub mod time;
agent! {
    pub mod cli;
    pub mod config_check;
    pub mod migrate;
    pub mod telemetry;
    pub mod writer_lock;
}

pub use error::Error;

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision the binary was built from (`build.rs`): a short
/// commit id, the `METAL_SWITCHD_REVISION` given at build time, or `unknown`.
pub const REVISION: &str = env!("SWITCHD_SOURCE_REVISION");
/// `VERSION (REVISION)`, as `metal-switchd --version` prints it.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SWITCHD_SOURCE_REVISION"),
    ")"
);
