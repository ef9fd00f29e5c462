//! CONFIG_DB: from a desired state to ordered, atomic writes.
//!
//! The pure part turns a [`SwitchSpec`](crate::spec::SwitchSpec) and a
//! snapshot of CONFIG_DB into a [`Plan`](plan::Plan):
//! [`facts`] (local facts for the spec) → [`target`] (owned entries wanted)
//! → [`diff`] (minimal [`ChangeSet`](diff::ChangeSet) against the owned part,
//! see [`owned`]) → [`plan`] (phases and barriers). [`prepare`] runs the whole
//! chain. The adapter (`redis`, feature `agent`) reads the snapshot in one
//! round trip and applies a plan phase by phase.

pub mod confirmed;
pub mod dbconfig;
pub mod diff;
pub mod facts;
#[cfg(feature = "agent")]
pub mod feed;
pub mod owned;
pub mod plan;
#[cfg(test)]
mod proptests;
#[cfg(feature = "agent")]
pub mod redis;
pub mod schema;
pub mod snapshot;
pub mod target;
#[cfg(test)]
pub(crate) mod testkit;
pub mod view;

use std::collections::BTreeSet;

use crate::config::Config;
use crate::spec::{self, Problems, SwitchDesc, SwitchSpec};

/// The result of planning one desired state against one snapshot.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub spec: SwitchSpec,
    pub plan: plan::Plan,
}

/// Validate the desired state against the snapshot and plan the writes.
/// Pure; rejects the whole state with every problem when it is invalid.
pub fn prepare(
    desc: &SwitchDesc,
    cfg: &Config,
    state: &schema::DbState,
) -> Result<Prepared, Problems> {
    let static_vrfs: BTreeSet<String> = cfg.static_vrfs.iter().cloned().collect();
    let facts = facts::local_facts(state, cfg.vlan_range, &static_vrfs);
    let spec = spec::build(desc, cfg, &facts)?;
    let plan = plan_spec(&spec, state);
    Ok(Prepared { spec, plan })
}

/// Diff and plan of a validated spec against a snapshot (pure), assuming
/// SONiC has confirmed everything the snapshot holds (offline planning).
pub fn plan_spec(spec: &SwitchSpec, state: &schema::DbState) -> plan::Plan {
    let owned = owned::Ownership::new(state, spec);
    plan::plan(diff::diff(state, spec, &owned))
}

/// Diff and plan of a validated spec against CONFIG_DB and what SONiC has
/// confirmed of it (pure): the plan first waits for every pending
/// confirmation and replaces what SONiC dropped ([`confirmed::assess`]).
/// It is empty only when CONFIG_DB matches the spec and SONiC confirmed it.
pub fn plan_confirmed(
    spec: &SwitchSpec,
    state: &schema::DbState,
    confirmed: &confirmed::Confirmed,
) -> plan::Plan {
    let owned = owned::Ownership::new(state, spec);
    let assessment = confirmed::assess(state, confirmed, spec, &owned);
    let mut plan = plan::plan(diff::diff_forced(state, spec, &owned, &assessment.replace));
    plan.pending = assessment.pending;
    plan
}

/// Validate the desired state against CONFIG_DB and what SONiC confirmed,
/// and plan the writes ([`plan_confirmed`]).
pub fn prepare_confirmed(
    desc: &SwitchDesc,
    cfg: &Config,
    state: &schema::DbState,
    confirmed: &confirmed::Confirmed,
) -> Result<Prepared, Problems> {
    let static_vrfs: BTreeSet<String> = cfg.static_vrfs.iter().cloned().collect();
    let facts = facts::local_facts(state, cfg.vlan_range, &static_vrfs);
    let spec = spec::build(desc, cfg, &facts)?;
    let plan = plan_confirmed(&spec, state, confirmed);
    Ok(Prepared { spec, plan })
}

/// The incremental path: plan `new` when CONFIG_DB holds `old`'s target.
/// Falls back to [`plan_spec`] when a switch-wide setting changed.
pub fn plan_delta(old: &SwitchSpec, new: &SwitchSpec, state: &schema::DbState) -> plan::Plan {
    match diff::diff_delta(old, new, state) {
        Some(changes) => plan::plan(changes),
        None => plan_spec(new, state),
    }
}
