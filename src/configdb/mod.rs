//! CONFIG_DB: from a desired state to ordered, atomic writes.
//!
//! The pure part turns a [`SwitchSpec`](crate::spec::SwitchSpec) and a
//! snapshot of CONFIG_DB into a [`Plan`](plan::Plan):
//! [`facts`] (local facts for the spec) → [`target`] (owned entries wanted)
//! → [`diff`] (minimal [`ChangeSet`](diff::ChangeSet) against the owned part,
//! see [`owned`]) → [`plan`] (phases and barriers).
//! [`crate::reconcile::prepare`] runs the whole chain from a desired state.
//! The adapters (feature `agent`): [`feed`] keeps a view of SONiC's
//! databases current (first read by [`startup`] in bounded steps; every
//! reply decoded by [`reply`], which never lets bytes that are not UTF-8
//! stop a read), `redis` applies a plan phase by phase.

pub mod confirmed;
pub mod contest;
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
#[cfg(feature = "agent")]
pub mod reply;
pub mod schema;
pub mod snapshot;
#[cfg(feature = "agent")]
pub mod startup;
pub mod target;
#[cfg(test)]
pub(crate) mod testkit;
pub mod view;

use crate::spec::SwitchSpec;

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
    plan_reasserting(spec, state, confirmed, &[])
}

/// [`plan_confirmed`], also re-asserting the owned entries `reassert` (a
/// kernel drift repair: written again the SONiC way, see
/// [`diff::diff_forced`]).
pub fn plan_reasserting(
    spec: &SwitchSpec,
    state: &schema::DbState,
    confirmed: &confirmed::Confirmed,
    reassert: &[schema::Key],
) -> plan::Plan {
    let owned = owned::Ownership::new(state, spec);
    let assessment = confirmed::assess(state, confirmed, spec, &owned);
    let mut force = assessment.replace;
    force.extend(reassert.iter().cloned());
    force.sort();
    force.dedup();
    let mut plan = plan::plan(diff::diff_forced(state, spec, &owned, &force));
    plan.pending = assessment.pending;
    plan
}

/// The incremental path: plan `new` when CONFIG_DB holds `old`'s target.
/// Falls back to [`plan_spec`] when a switch-wide setting changed.
pub fn plan_delta(old: &SwitchSpec, new: &SwitchSpec, state: &schema::DbState) -> plan::Plan {
    match diff::diff_delta(old, new, state) {
        Some(changes) => plan::plan(changes),
        None => plan_spec(new, state),
    }
}
