//! CONFIG_DB: from a desired state to ordered, atomic writes.
//!
//! The pure part turns a [`SwitchSpec`](crate::spec::SwitchSpec) and a
//! snapshot of CONFIG_DB into a [`Plan`](plan::Plan):
//! [`facts`] (local facts for the spec) → [`target`] (owned entries wanted)
//! → [`diff`] (minimal [`ChangeSet`](diff::ChangeSet) against the owned part,
//! see [`owned`]) → [`plan`] (phases and barriers).
//! [`Planning::plan`] is the one way in: it chooses the incremental path,
//! re-assertion or the full plan (against what SONiC confirmed, see
//! [`confirmed`] and the catalogue [`confirms`]).
//! [`crate::reconcile::prepare`] runs the whole chain from a desired state.
//! The adapters (feature `agent`): [`feed`] keeps a view of SONiC's
//! databases current (first read by [`startup`] in bounded steps), `redis`
//! applies a plan phase by phase.

pub mod confirmed;
pub mod confirms;
#[cfg(feature = "agent")]
pub mod connection;
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
#[cfg(any(test, feature = "testkit"))]
pub mod rules;
pub mod schema;
pub mod snapshot;
#[cfg(feature = "agent")]
pub mod startup;
pub mod target;
#[cfg(test)]
pub(crate) mod testkit;
pub mod view;

use crate::spec::SwitchSpec;

/// What a plan is made from. [`Planning::plan`] is the one way to plan: it
/// chooses between the incremental path, re-assertion and the full plan
/// from what changed.
#[derive(Debug, Clone, Copy)]
pub struct Planning<'a> {
    /// The validated desired state.
    pub spec: &'a SwitchSpec,
    /// CONFIG_DB as it is.
    pub config: &'a schema::DbState,
    /// What SONiC confirmed of it ([`confirmed::Confirmed::assumed`] for a
    /// `config_db.json` file: everything).
    pub confirmed: &'a confirmed::Confirmed,
    /// The spec CONFIG_DB held, confirmed, at the last converged reconcile,
    /// when nothing moved since: only what the desired state changed from
    /// it is planned.
    pub since: Option<&'a SwitchSpec>,
    /// Owned entries to write again the SONiC way (kernel drift repair, see
    /// [`diff::diff_forced`]).
    pub reassert: &'a [schema::Key],
}

impl<'a> Planning<'a> {
    /// Plan `spec` against `config` and what SONiC `confirmed` of it.
    pub fn new(
        spec: &'a SwitchSpec,
        config: &'a schema::DbState,
        confirmed: &'a confirmed::Confirmed,
    ) -> Planning<'a> {
        Planning {
            spec,
            config,
            confirmed,
            since: None,
            reassert: &[],
        }
    }

    /// CONFIG_DB holds `old`'s target, confirmed, and nothing moved since
    /// (`None`: unknown).
    pub fn since(self, old: Option<&'a SwitchSpec>) -> Planning<'a> {
        Planning { since: old, ..self }
    }

    /// Also write these owned entries again.
    pub fn reasserting(self, keys: &'a [schema::Key]) -> Planning<'a> {
        Planning {
            reassert: keys,
            ..self
        }
    }

    /// The plan (pure):
    /// - nothing moved since a converged spec and nothing to re-assert:
    ///   only what the desired state changed ([`diff::diff_delta`]), or the
    ///   whole target when a switch-wide setting changed;
    /// - otherwise against CONFIG_DB and what SONiC confirmed of it: the
    ///   plan first waits for every pending confirmation and replaces what
    ///   SONiC dropped ([`confirmed::assess`]) or what is re-asserted. It is
    ///   empty only when CONFIG_DB matches the spec and SONiC confirmed it.
    pub fn plan(&self) -> plan::Plan {
        if let Some(old) = self.since.filter(|_| self.reassert.is_empty()) {
            let changes = diff::diff_delta(old, self.spec, self.config).unwrap_or_else(|| {
                let owned = owned::Ownership::new(self.config, self.spec);
                diff::diff(self.config, self.spec, &owned)
            });
            return plan::plan(changes);
        }
        let owned = owned::Ownership::new(self.config, self.spec);
        let assessment = confirmed::assess(self.config, self.confirmed, self.spec, &owned);
        let mut force = assessment.replace;
        force.extend(self.reassert.iter().cloned());
        force.sort();
        force.dedup();
        let mut plan = plan::plan(diff::diff_forced(self.config, self.spec, &owned, &force));
        plan.pending = assessment.pending;
        plan
    }
}
