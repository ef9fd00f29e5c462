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
//! databases current (first read by [`startup`] in bounded steps; every
//! reply decoded by [`reply`], which never lets bytes that are not UTF-8
//! stop a read), `redis` applies a plan phase by phase.

pub mod confirmed;
pub mod confirms;
pub mod contest;
pub mod dbconfig;
pub mod diff;
pub mod facts;
pub mod owned;
pub mod plan;
#[cfg(test)]
mod proptests;
pub mod reach;
#[cfg(any(test, feature = "testkit"))]
pub mod rules;
pub mod schema;
pub mod snapshot;
pub mod target;
#[cfg(test)]
pub(crate) mod testkit;
pub mod view;
agent! {
    pub mod connection;
    pub mod feed;
    pub mod redis;
    pub mod reply;
    pub mod startup;
}

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
    /// The keys that changed since CONFIG_DB held `since`, confirmed
    /// (empty: nothing moved); only what they can move is planned again
    /// ([`reach`]).
    pub touched: &'a [view::Touched],
}

/// The way a plan is made, and what of the switch it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading<'a> {
    /// Only what the desired state changed from this converged spec:
    /// CONFIG_DB's entries there, nothing SONiC confirmed.
    Delta(&'a SwitchSpec),
    /// The entries a scope covers and what SONiC confirmed of them (of the
    /// router interfaces, only [`reach::Reach::interfaces`]).
    Within(reach::Reach),
    /// All of CONFIG_DB and all SONiC confirmed.
    Everything,
}

impl Reading<'_> {
    /// The interfaces whose router interface the plan asks about (`None`:
    /// any).
    pub fn interfaces(&self) -> Option<Vec<String>> {
        match self {
            Reading::Delta(_) => Some(Vec::new()),
            Reading::Within(scope) => Some(scope.interfaces()),
            Reading::Everything => None,
        }
    }
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
            touched: &[],
        }
    }

    /// CONFIG_DB holds `old`'s target, confirmed, and nothing moved since
    /// (`None`: unknown).
    pub fn since(self, old: Option<&'a SwitchSpec>) -> Planning<'a> {
        Planning { since: old, ..self }
    }

    /// CONFIG_DB held `old`'s target, confirmed, and since then only the
    /// keys `touched` changed (the view's journal, [`view::View::touched_since`];
    /// `None`: unknown).
    pub fn since_touched(
        self,
        old: Option<&'a SwitchSpec>,
        touched: Option<&'a [view::Touched]>,
    ) -> Planning<'a> {
        match touched {
            Some(touched) => Planning {
                since: old,
                touched,
                ..self
            },
            None => Planning {
                since: None,
                ..self
            },
        }
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
    /// - only some keys moved since then (or are re-asserted): the full
    ///   plan narrowed to what they can move ([`reach::Reach`]), when it can
    ///   be narrowed;
    /// - otherwise against CONFIG_DB and what SONiC confirmed of it: the
    ///   plan first waits for every pending confirmation and replaces what
    ///   SONiC dropped ([`confirmed::assess`]) or what is re-asserted. It is
    ///   empty only when CONFIG_DB matches the spec and SONiC confirmed it.
    pub fn plan(&self) -> plan::Plan {
        match self.reading() {
            Reading::Delta(old) => {
                let changes = diff::diff_delta(old, self.spec, self.config).unwrap_or_else(|| {
                    let owned = owned::Ownership::new(self.config, self.spec);
                    diff::diff(self.config, self.spec, &owned)
                });
                plan::plan(changes)
            }
            Reading::Within(scope) => self.full(Some(&scope)),
            Reading::Everything => self.full(None),
        }
    }

    /// Which of the three ways [`Planning::plan`] takes, and so what of the
    /// switch it reads (the agent reads what is unread of that first).
    pub fn reading(&self) -> Reading<'a> {
        let Some(old) = self.since else {
            return Reading::Everything;
        };
        if self.touched.is_empty() && self.reassert.is_empty() {
            return Reading::Delta(old);
        }
        let seps = self.confirmed.separators();
        match reach::Reach::of(
            self.touched,
            self.reassert,
            old,
            self.spec,
            self.config,
            seps,
        ) {
            Some(scope) => Reading::Within(scope),
            None => Reading::Everything,
        }
    }

    /// Against CONFIG_DB and what SONiC confirmed, within `scope` (`None`:
    /// everything).
    fn full(&self, scope: Option<&reach::Reach>) -> plan::Plan {
        let owned = owned::Ownership::new(self.config, self.spec);
        let covered = scope.map(|s| reach::Covered::new(s, self.config));
        let assessment = match &covered {
            Some(c) => confirmed::assess_scoped(self.config, self.confirmed, self.spec, &owned, c),
            None => confirmed::assess(self.config, self.confirmed, self.spec, &owned),
        };
        let mut force = assessment.replace;
        force.extend(self.reassert.iter().cloned());
        force.sort();
        force.dedup();
        let changes = match &covered {
            Some(c) => diff::diff_scoped(self.config, self.spec, &owned, &force, c),
            None => diff::diff_forced(self.config, self.spec, &owned, &force),
        };
        let mut plan = plan::plan(changes);
        plan.pending = assessment.pending;
        plan
    }
}
