//! Planning one desired state (pure): validate it into a
//! [`SwitchSpec`] against the local facts CONFIG_DB holds, and plan the
//! writes. The one place where the desired state meets CONFIG_DB;
//! [`Agent::reconcile_once`](crate::reconcile::Agent) and the offline
//! commands (`plan`, `render`, `fetch`) call it.

use std::collections::BTreeSet;

use crate::config::Config;
use crate::configdb::{Planning, confirmed, facts, plan, schema};
use crate::spec::{self, LocalFacts, Problems, SwitchDesc, SwitchSpec};

/// Validate the desired state into a [`SwitchSpec`] against the local facts
/// of `state` (PORT table, VTEP, VLAN↔VNI maps in use). Pure; rejects the
/// whole state with every problem when it is invalid.
pub fn spec(
    desc: &SwitchDesc,
    cfg: &Config,
    state: &schema::DbState,
) -> Result<SwitchSpec, Problems> {
    spec::build(desc, cfg, &local_facts(cfg, state))
}

/// The local facts of `state` the spec is validated against (the daemon
/// keeps them while CONFIG_DB does not change).
pub fn local_facts(cfg: &Config, state: &schema::DbState) -> LocalFacts {
    let static_vrfs: BTreeSet<String> = cfg.static_vrfs.iter().cloned().collect();
    facts::local_facts(state, cfg.vlan_range, &static_vrfs)
}

/// The result of planning one desired state against one snapshot.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub spec: SwitchSpec,
    pub plan: plan::Plan,
}

/// Validate the desired state against CONFIG_DB and plan the writes
/// against what SONiC confirmed of it ([`Planning::plan`];
/// [`Confirmed::assumed`](confirmed::Confirmed::assumed) for a
/// `config_db.json` file). Pure; rejects the whole state with every problem
/// when it is invalid.
pub fn prepare(
    desc: &SwitchDesc,
    cfg: &Config,
    state: &schema::DbState,
    confirmed: &confirmed::Confirmed,
) -> Result<Prepared, Problems> {
    let spec = spec(desc, cfg, state)?;
    let plan = Planning::new(&spec, state, confirmed).plan();
    Ok(Prepared { spec, plan })
}
