//! What one reconcile did, for people, logs, metrics and the API report.

use std::time::Duration;

use serde::Serialize;

use super::vocab::{ReconcileResult, Stage, Trigger};
use crate::config::ApiVersion;
use crate::configdb::plan::Plan;
use crate::configdb::redis::ApplyReport;
use crate::configdb::reply::Undecodable;
use crate::spec::SpecDigest;

/// Time spent per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    #[serde(with = "micros")]
    pub fetch: Duration,
    #[serde(with = "micros")]
    pub plan: Duration,
    #[serde(with = "micros")]
    pub configdb_write: Duration,
    #[serde(with = "micros")]
    pub barrier_wait: Duration,
    #[serde(with = "micros")]
    pub frr: Duration,
    #[serde(with = "micros")]
    pub kernel: Duration,
    #[serde(with = "micros")]
    pub report: Duration,
}

impl Stages {
    /// The stages that ran (non-zero), as the status record keeps them.
    pub fn to_map(&self) -> std::collections::BTreeMap<Stage, Duration> {
        [
            (Stage::Fetch, self.fetch),
            (Stage::Plan, self.plan),
            (Stage::ConfigdbWrite, self.configdb_write),
            (Stage::BarrierWait, self.barrier_wait),
            (Stage::Frr, self.frr),
            (Stage::Kernel, self.kernel),
            (Stage::Report, self.report),
        ]
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .collect()
    }
}

/// What happened to FRR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum FrrOutcome {
    /// Not reached (an earlier step failed) or not configured.
    Skipped,
    /// The installed file already had the rendered bytes.
    Unchanged,
    /// The installed file already had the rendered bytes, and FRR was
    /// reloaded with it: the agent's first install cannot know whether FRR
    /// runs it (an earlier run may have been killed before its reload).
    Reloaded {
        #[serde(with = "micros")]
        reload: Duration,
    },
    /// Installed and (unless `frr_reload = "none"`) reloaded.
    Replaced {
        #[serde(with = "micros")]
        validation: Duration,
        #[serde(with = "micros_opt")]
        reload: Option<Duration>,
    },
}

/// What one reconcile did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The agent's reconcile counter.
    pub generation: u64,
    pub trigger: Trigger,
    pub result: ReconcileResult,
    /// Nothing changed since the last converged reconcile.
    pub unchanged: bool,
    /// The desired state was fetched (not the last one reused).
    pub refetched: bool,
    /// CONFIG_DB is at the desired state and SONiC confirmed it, but the
    /// kernel does not show it (yet): drift repair takes over.
    pub kernel_pending: bool,
    /// The fetch failed (`Some(transient)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch_failed: Option<bool>,
    /// The desired state differs from the previous reconcile's.
    pub desired_changed: bool,
    /// The digest of the validated desired state this reconcile worked
    /// towards (converged to, when it did); `None` when there was none (the
    /// fetch failed, the desired state was invalid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<SpecDigest>,
    /// The API's generation of that desired state (v2), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_generation: Option<u64>,
    pub api_version: Option<ApiVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether a later attempt may succeed without a change of input.
    pub transient: bool,
    /// CONFIG_DB changed under the agent while it applied (the verification
    /// found work left): reconcile again at once rather than back off.
    pub retry_now: bool,
    pub changes: usize,
    pub phases: usize,
    /// Confirmations SONiC owed at the start.
    pub pending: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyReport>,
    pub frr: FrrOutcome,
    /// The installed frr.conf had been changed or deleted under the agent
    /// (an operator, SONiC's `split` mode, a restored backup) and this
    /// reconcile installed the rendered one again.
    pub frr_repaired: bool,
    pub stages: Stages,
    /// Entries of SONiC's databases with bytes that are not UTF-8 the feed
    /// met since the agent started (a running total; the reporter counts
    /// what is new since the last outcome).
    #[serde(skip)]
    pub undecodable: Undecodable,
    #[serde(with = "micros")]
    pub duration: Duration,
}

impl Outcome {
    pub fn new(generation: u64, trigger: Trigger) -> Outcome {
        Outcome {
            generation,
            trigger,
            result: ReconcileResult::Error,
            unchanged: false,
            refetched: false,
            fetch_failed: None,
            kernel_pending: false,
            desired_changed: false,
            digest: None,
            api_generation: None,
            api_version: None,
            error: None,
            transient: false,
            retry_now: false,
            changes: 0,
            phases: 0,
            pending: 0,
            plan: None,
            apply: None,
            frr: FrrOutcome::Skipped,
            frr_repaired: false,
            stages: Stages::default(),
            undecodable: Undecodable::default(),
            duration: Duration::ZERO,
        }
    }

    /// Record the plan the reconcile made.
    pub fn planned(&mut self, plan: &Plan) {
        self.changes = plan.changes();
        self.phases = plan.phases.len();
        self.pending = plan.pending.len();
        self.plan = Some(plan.clone());
    }

    pub fn is_converged(&self) -> bool {
        self.result == ReconcileResult::Converged
    }

    /// One line for logs and `STATUS=`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "reconcile {} ({}): {}",
            self.generation,
            self.trigger.as_str(),
            self.result.as_str()
        );
        if let Some(d) = &self.digest {
            let to = if self.is_converged() { "to" } else { "towards" };
            s.push_str(&format!(" {to} desired state {d}"));
            if let Some(g) = self.api_generation {
                s.push_str(&format!(" (API generation {g})"));
            }
        }
        if self.unchanged {
            s.push_str(", nothing changed");
        } else if self.changes > 0 {
            s.push_str(&format!(
                ", {} change(s) in {} phase(s)",
                self.changes, self.phases
            ));
        }
        if let FrrOutcome::Replaced { .. } = self.frr {
            s.push_str(", frr.conf replaced");
        }
        s.push_str(&format!(" in {:.1} ms", self.duration.as_secs_f64() * 1e3));
        if let Some(e) = &self.error {
            let first = e.lines().next().unwrap_or_default();
            s.push_str(&format!(": {first}"));
        }
        s
    }
}

mod micros {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros().try_into().unwrap_or(u64::MAX))
    }
}

mod micros_opt {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }
}
