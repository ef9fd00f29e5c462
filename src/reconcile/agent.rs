//! [`Agent`]: one reconcile and the owner of everything it touches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outcome::{FrrOutcome, Outcome, ReconcileResult};
use crate::status::Trigger;

use super::desired::DesiredSource;
use super::prepare;
use crate::api::client::ApiClient;
use crate::config::Config;
use crate::configdb;
use crate::configdb::dbconfig::Databases;
use crate::configdb::plan::Plan;
use crate::configdb::redis::{ApplyOptions, ConfigDb, ConfigDbError, PhaseHook};
use crate::configdb::schema::Key;
use crate::error::Error;
use crate::flavour::{Flavour, FrrLines};
use crate::frr;
use crate::frr::install::{Installed, Installer};
use crate::kernel::KernelView;
use crate::kernel::expect::expectations;
use crate::spec::{self, LocalFacts, SpecDigest, SwitchDesc, SwitchSpec};
use crate::systemd::watchdog::{Liveness, Step};

/// How long one full read of the owned CONFIG_DB entries may take.
const REFRESH_LIMIT: Duration = Duration::from_secs(10);

/// Slack on top of a step's own time limits (scheduling, a redis round
/// trip) before the watchdog calls it stalled.
const STEP_SLACK: Duration = Duration::from_secs(10);

/// Whether (and how) the agent changes the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write CONFIG_DB and FRR (`reconfigure_switch = true`, `apply`).
    Apply,
    /// Compute and report, write nothing (`reconfigure_switch = false`).
    DryRun,
}

/// How the agent is put together.
pub struct AgentOptions {
    pub mode: Mode,
    /// Install and reload FRR (false: CONFIG_DB only).
    pub frr: bool,
    /// How long a reconcile may wait for SONiC to be ready.
    pub wait_ready: Duration,
    /// Called before each CONFIG_DB phase and after its write (crash points,
    /// tests).
    pub hooks: ApplyOptions,
}

impl AgentOptions {
    pub fn from_config(cfg: &Config) -> AgentOptions {
        AgentOptions {
            mode: if cfg.reconfigure_switch {
                Mode::Apply
            } else {
                Mode::DryRun
            },
            frr: true,
            wait_ready: Duration::ZERO,
            hooks: ApplyOptions {
                barrier_timeout: cfg.barrier_timeout.0,
                ..ApplyOptions::default()
            },
        }
    }
}

/// What the last reconcile left behind.
#[derive(Debug, Default)]
struct Last {
    /// The desired state the spec was built from.
    desc: Option<Arc<SwitchDesc>>,
    /// The API's generation of `desc` (v2), when it has one.
    api_generation: Option<u64>,
    /// The spec built from `desc` and CONFIG_DB at `spec_config_version`,
    /// and its digest.
    spec: Option<SwitchSpec>,
    digest: Option<SpecDigest>,
    spec_config_version: u64,
    /// The local facts of CONFIG_DB at a view version.
    facts: Option<(u64, LocalFacts)>,
    /// The view's version when the last reconcile converged.
    converged_at: Option<u64>,
    /// The spec CONFIG_DB held, confirmed, at `converged_at`.
    converged_spec: Option<SwitchSpec>,
    /// The last rendered frr.conf and the spec and flavour lines it was
    /// rendered from.
    rendered: Option<(SwitchSpec, FrrLines, Arc<str>)>,
}

/// The agent: the handles and the last applied state.
pub struct Agent {
    pub(super) cfg: Config,
    pub(super) db: ConfigDb,
    /// The kernel's links (kernel-confirmed convergence), when started.
    pub(super) kernel: Option<KernelView>,
    /// Owned entries the next reconcile writes again (kernel drift repair).
    pub(super) reassert: Vec<Key>,
    pub(super) source: DesiredSource,
    pub(super) api: Option<ApiClient>,
    pub(super) installer: Option<Installer>,
    pub(super) opts: AgentOptions,
    last: Last,
    /// Reconciles so far.
    pub(super) generation: u64,
    /// FRR runs the installed frr.conf: an install or reload of this process
    /// succeeded. Until then an unchanged file is reloaded anyway.
    frr_loaded: bool,
    /// Which SONiC this is ([`Agent::set_flavour`]); `None`: not detected
    /// (FRR outside SONiC, tests): no flavour lines, nothing refused.
    flavour: Option<Flavour>,
    /// SHA-256 of the frr.conf this agent installed (or found installed)
    /// and verified: a file that no longer has it was changed or deleted
    /// under the agent ([`Agent::frr_drifted`]).
    frr_digest: Option<[u8; 32]>,
    /// The next reconcile installs frr.conf again even when nothing else
    /// changed ([`Agent::repair_frr`]).
    frr_repair: bool,
    /// The daemon's proof of progress for the watchdog: each long step of
    /// a reconcile declares its bound ([`Agent::set_liveness`]).
    liveness: Option<Liveness>,
    /// Owned keys another writer keeps changing: left out of every plan
    /// ([`Agent::set_contested`], `configdb::contest`).
    contested: std::collections::BTreeSet<Key>,
}

impl Agent {
    /// Put an agent together; the CONFIG_DB view starts following redis at
    /// once (without waiting for it).
    pub fn new(
        cfg: Config,
        source: DesiredSource,
        api: Option<ApiClient>,
        opts: AgentOptions,
    ) -> Result<Agent, Error> {
        let dbs = Databases::load(&cfg.database_config)?;
        let db = ConfigDb::start(dbs);
        let installer = opts.frr.then(|| Installer::from_config(&cfg));
        Ok(Agent {
            cfg,
            db,
            kernel: None,
            reassert: Vec::new(),
            source,
            api,
            installer,
            opts,
            last: Last::default(),
            generation: 0,
            frr_loaded: false,
            flavour: None,
            frr_digest: None,
            frr_repair: false,
            liveness: None,
            contested: Default::default(),
        })
    }

    /// Stop repairing these keys (contested by another writer): they are
    /// left out of every plan until set again.
    pub fn set_contested(&mut self, keys: impl IntoIterator<Item = Key>) {
        self.contested = keys.into_iter().collect();
    }

    /// `plan` without the contested keys.
    fn uncontested(&self, plan: Plan) -> Plan {
        if self.contested.is_empty() {
            return plan;
        }
        configdb::contest::without(plan, &|k| self.contested.contains(k))
    }

    /// Report the long steps of every reconcile to `liveness` (the
    /// daemon's watchdog).
    pub fn set_liveness(&mut self, liveness: Liveness) {
        self.liveness = Some(liveness);
    }

    /// Open a long step of at most `bound` without progress (nothing
    /// without a watchdog).
    fn step(&self, what: &'static str, bound: Duration) -> Option<Step> {
        self.liveness.as_ref().map(|l| l.step(what, bound))
    }

    /// Whether the installed frr.conf is no longer the one this agent
    /// installed: `Some("deleted")` (SONiC's `split` mode deletes it at every
    /// start of the bgp container), `Some("changed")` (an operator's edit, a
    /// restored backup, a start script's lines). Reads the file (bounded);
    /// `None` before the first verified install and in dry-run mode.
    pub fn frr_drifted(&self) -> Option<&'static str> {
        let installer = self.installer.as_ref()?;
        let want = self.frr_digest?;
        if self.opts.mode != Mode::Apply {
            return None;
        }
        match crate::files::read_bytes(
            crate::files::FileKind::FrrConfig,
            &installer.dest,
            crate::files::FRR_CONFIG_MAX_BYTES,
        ) {
            Ok(bytes) if digest(&bytes) == want => None,
            Ok(_) => Some("changed"),
            Err(e) if e.is_missing() => Some("deleted"),
            Err(_) => Some("unreadable"),
        }
    }

    /// Install frr.conf again in the next reconcile, through the usual
    /// validate → install → reload (drift repair of the file).
    pub fn repair_frr(&mut self) {
        self.frr_repair = true;
    }

    /// Use the detected flavour: its zebra lines are rendered, a routing
    /// configuration mode in which SONiC writes frr.conf is refused. The
    /// next reconcile re-plans.
    pub fn set_flavour(&mut self, flavour: Flavour) {
        if self.flavour.as_ref() != Some(&flavour) {
            self.flavour = Some(flavour);
            self.last = Last::default();
        }
    }

    /// The flavour in use.
    pub fn flavour(&self) -> Option<&Flavour> {
        self.flavour.as_ref()
    }

    fn frr_lines(&self) -> FrrLines {
        self.flavour
            .as_ref()
            .map_or(FrrLines::NONE, Flavour::frr_lines)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Use the kernel view: a reconcile then counts as converged only once
    /// the kernel shows the desired state (`kernel_checks`).
    pub fn set_kernel(&mut self, view: KernelView) {
        self.kernel = Some(view);
    }

    pub fn kernel(&self) -> Option<&KernelView> {
        self.kernel.as_ref()
    }

    /// Write these owned entries again in the next reconcile (kernel drift
    /// repair; see [`configdb::plan_reasserting`]).
    pub fn reassert(&mut self, keys: impl IntoIterator<Item = Key>) {
        self.reassert.extend(keys);
    }

    pub fn db(&self) -> &ConfigDb {
        &self.db
    }

    pub fn db_mut(&mut self) -> &mut ConfigDb {
        &mut self.db
    }

    pub fn api_mut(&mut self) -> Option<&mut ApiClient> {
        self.api.as_mut()
    }

    /// The spec of the last valid desired state.
    pub fn spec(&self) -> Option<&SwitchSpec> {
        self.last.spec.as_ref()
    }

    /// The desired state last fetched.
    pub fn desired(&self) -> Option<&SwitchDesc> {
        self.last.desc.as_deref()
    }

    /// The source of the desired state (to change an in-memory one).
    pub fn source_mut(&mut self) -> &mut DesiredSource {
        &mut self.source
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Replace the configuration (SIGHUP): the next reconcile re-plans.
    pub fn set_config(&mut self, cfg: Config) -> Result<(), Error> {
        if cfg.database_config != self.cfg.database_config {
            let dbs = Databases::load(&cfg.database_config)?;
            self.db = ConfigDb::start(dbs);
        }
        if self.opts.frr {
            self.installer = Some(Installer::from_config(&cfg));
        }
        self.opts.mode = if cfg.reconfigure_switch {
            Mode::Apply
        } else {
            self.opts.mode
        };
        self.opts.hooks.barrier_timeout = cfg.barrier_timeout.0;
        self.cfg = cfg;
        self.last = Last::default();
        Ok(())
    }

    /// Whether the owned CONFIG_DB state or its confirmations moved since the
    /// last converged reconcile (a cheap check for the daemon's triggers).
    pub fn view_moved(&self) -> bool {
        self.last.converged_at != Some(self.db.view().version)
    }

    /// Whether CONFIG_DB no longer matches the last applied spec (someone
    /// changed or deleted an owned entry): plans against the view, no I/O.
    pub fn drifted(&self) -> Option<Plan> {
        let spec = self.last.spec.as_ref()?;
        let view = self.db.view();
        let plan = self.uncontested(configdb::plan_confirmed(
            spec,
            &view.config,
            &view.confirmed,
        ));
        (!plan.phases.is_empty()).then_some(plan)
    }

    /// One reconcile. `refetch = false` reuses the desired state of the last
    /// one (a drift repair); `deadline` bounds the waits for SONiC.
    pub async fn reconcile_once(
        &mut self,
        trigger: Trigger,
        refetch: bool,
        deadline: Instant,
    ) -> Outcome {
        self.generation += 1;
        let started = Instant::now();
        let mut out = Outcome::new(self.generation, trigger);
        out.refetched = refetch || self.last.desc.is_none();
        let result = self.reconcile(&mut out, refetch, deadline).await;
        match result {
            Ok(kind) => out.result = kind,
            Err(e) => {
                out.result = match &e {
                    e if e.is_invalid_input() => ReconcileResult::Invalid,
                    // Written (or waiting), SONiC has not confirmed it yet.
                    Error::ConfigDb(
                        ConfigDbError::Barrier { .. }
                        | ConfigDbError::Pending { .. }
                        | ConfigDbError::Precondition { .. },
                    )
                    | Error::KernelNotConverged(_) => ReconcileResult::Pending,
                    _ => ReconcileResult::Error,
                };
                out.transient = e.is_transient();
                out.error = Some(e.to_string());
            }
        }
        out.duration = started.elapsed();
        out
    }

    async fn reconcile(
        &mut self,
        out: &mut Outcome,
        refetch: bool,
        deadline: Instant,
    ) -> Result<ReconcileResult, Error> {
        // 0. SONiC must leave frr.conf to the agent (every reconcile says so
        // while it does not).
        if self.installer.is_some()
            && let Some(refusal) = self.flavour.as_ref().and_then(Flavour::refusal)
        {
            return Err(Error::FlavourRefused(refusal));
        }
        // 1. The desired state.
        let t = Instant::now();
        let (desc, api_generation) = match (refetch, &self.last.desc) {
            (false, Some(d)) => (d.clone(), self.last.api_generation),
            _ => {
                let policy = crate::api::transport::RetryPolicy::from_config(&self.cfg);
                let _step = self.step(
                    "fetching the desired state",
                    policy.worst_case(self.cfg.timeout.0).unwrap_or_default() + STEP_SLACK,
                );
                let fetched = match self.source.fetch(self.api.as_mut()).await {
                    Ok(f) => f,
                    Err(e) => {
                        out.fetch_failed = Some(e.is_transient());
                        return Err(e);
                    }
                };
                out.api_version = Some(fetched.version);
                (fetched.desc, fetched.api_generation)
            }
        };
        out.api_generation = api_generation;
        out.stages.fetch = t.elapsed();
        let desired_changed = self
            .last
            .desc
            .as_ref()
            .is_none_or(|d| !Arc::ptr_eq(d, &desc) && **d != *desc);
        out.desired_changed = desired_changed;

        // 2. SONiC must be ready, the view filled.
        self.db.pump();
        if !self.db.view().readiness.ready() || !self.db.is_connected() {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = self.opts.wait_ready.min(left).max(Duration::from_millis(1));
            let _step = self.step("waiting for SONiC to be ready", wait + STEP_SLACK);
            self.db.wait_ready(wait).await?;
        }
        let view_moved = self.view_moved();

        let reassert = std::mem::take(&mut self.reassert);
        let frr_repair = std::mem::take(&mut self.frr_repair);

        // Nothing new since the last converged reconcile: nothing to do.
        if !desired_changed
            && !view_moved
            && reassert.is_empty()
            && !frr_repair
            && self.last.spec.is_some()
        {
            self.last.desc = Some(desc);
            self.last.api_generation = api_generation;
            out.unchanged = true;
            out.digest = self.last.digest.clone();
            return Ok(ReconcileResult::Converged);
        }

        // What SONiC confirmed, with every value read (planning decides on
        // them).
        let refresh = self.step("reading CONFIG_DB", REFRESH_LIMIT + STEP_SLACK);
        self.db.refresh(REFRESH_LIMIT).await?;
        drop(refresh);

        // 3. The spec (rebuilt when the desired state or CONFIG_DB changed).
        let t = Instant::now();
        let view_config_version = self.db.view().config_version;
        let rebuild = desired_changed
            || self.last.spec.is_none()
            || self.last.spec_config_version != view_config_version;
        if rebuild {
            self.last.desc = Some(desc.clone());
            self.last.api_generation = api_generation;
            self.last.spec = None;
            self.last.digest = None;
            if self
                .last
                .facts
                .as_ref()
                .is_none_or(|(v, _)| *v != view_config_version)
            {
                let facts = prepare::local_facts(&self.cfg, &self.db.view().config);
                self.last.facts = Some((view_config_version, facts));
            }
            let spec = match &self.last.facts {
                Some((_, facts)) => spec::build(&desc, &self.cfg, facts)?,
                None => prepare::spec(&desc, &self.cfg, &self.db.view().config)?,
            };
            self.last.digest = Some(spec.digest());
            self.last.spec = Some(spec);
            self.last.spec_config_version = view_config_version;
        }
        self.last.api_generation = api_generation;
        out.digest = self.last.digest.clone();
        let Some(spec) = self.last.spec.clone() else {
            return Err(Error::Invalid(spec::Problems(Vec::new())));
        };
        let plan = {
            let view = self.db.view();
            match (&self.last.converged_spec, view_moved) {
                // CONFIG_DB holds the converged spec's target, confirmed, and
                // nothing moved since: only what the desired state changed.
                (Some(old), false) if reassert.is_empty() => {
                    configdb::plan_delta(old, &spec, &view.config)
                }
                _ => configdb::plan_reasserting(&spec, &view.config, &view.confirmed, &reassert),
            }
        };
        let plan = self.uncontested(plan);
        out.stages.plan = t.elapsed();
        out.changes = plan.changes();
        out.phases = plan.phases.len();
        out.pending = plan.pending.len();
        out.plan = Some(plan.clone());

        if self.opts.mode == Mode::DryRun {
            out.frr = FrrOutcome::Skipped;
            return Ok(if plan.is_empty() {
                ReconcileResult::Converged
            } else {
                ReconcileResult::DryRun
            });
        }

        // frr.conf must be one the agent can read back (verify, drift):
        // refused before anything is written, like any invalid state.
        if self.installer.is_some() {
            let text = self.rendered(&spec);
            if let Some(p) = frr_size_problem(text.len(), crate::files::FRR_CONFIG_MAX_BYTES) {
                return Err(Error::Invalid(spec::Problems(vec![p])));
            }
        }

        // 4. What leaves FRR (a neighbour, a VRF instance) leaves it before
        // its interface or VRF leaves CONFIG_DB: bgpd must not hold a
        // session on an interface SONiC takes away. What is added goes into
        // CONFIG_DB first (step 5), FRR after (step 6).
        if !plan.is_empty()
            && self.installer.is_some()
            && let Some(old) = &self.last.converged_spec
            && let Some(mid) = frr::render::removals_first(old, &spec)
        {
            let t = Instant::now();
            let text = frr::render(&mid, self.frr_lines());
            let step = self.step(
                "validating and reloading FRR",
                self.cfg.frr_validation_timeout.0 + self.cfg.frr_reload_timeout.0 + STEP_SLACK,
            );
            if let Some(installer) = &self.installer {
                tracing::info!("removing from FRR what leaves CONFIG_DB, before CONFIG_DB");
                installer.install(&text).await?;
                self.frr_loaded = true;
            }
            drop(step);
            out.stages.frr += t.elapsed();
        }

        // 5. CONFIG_DB, phase by phase, each confirmed by SONiC.
        if !plan.is_empty() {
            let mut opts = self.opts.hooks.clone();
            let left = deadline.saturating_duration_since(Instant::now());
            opts.barrier_timeout = opts.barrier_timeout.min(left).max(Duration::from_millis(1));
            // Each wait (pending confirmations, a phase's precondition, its
            // barrier) is bounded by the barrier timeout; every phase is
            // progress.
            let step = self.step("applying CONFIG_DB", opts.barrier_timeout + STEP_SLACK);
            if let Some(l) = self.liveness.clone() {
                let progress = |hook: Option<PhaseHook>| -> Option<PhaseHook> {
                    let l = l.clone();
                    Some(Arc::new(move |phase, stage| {
                        l.progress();
                        if let Some(h) = &hook {
                            h(phase, stage);
                        }
                    }))
                };
                opts.before_phase = progress(opts.before_phase.take());
                opts.after_write = progress(opts.after_write.take());
            }
            let report = self.db.apply(&plan, &opts).await;
            drop(step);
            match report {
                Ok(r) => {
                    out.stages.configdb_write = r.write_time;
                    out.stages.barrier_wait = r.barrier_time + r.pending_wait;
                    out.apply = Some(r);
                }
                Err(e) => return Err(e.into()),
            }
        }

        // 6. FRR (not started once a shutdown was asked for).
        if self.opts.hooks.stop.as_ref().is_some_and(|s| *s.borrow()) {
            return Err(ConfigDbError::Stopped.into());
        }
        let t = Instant::now();
        let frr_step = self.step(
            "validating and reloading FRR",
            self.cfg.frr_validation_timeout.0 + self.cfg.frr_reload_timeout.0 + STEP_SLACK,
        );
        out.frr = self.install_frr(&spec).await?;
        drop(frr_step);
        out.stages.frr += t.elapsed();
        out.frr_repaired = frr_repair && matches!(out.frr, FrrOutcome::Replaced { .. });

        // 7. Verify: the installed frr.conf is the rendered one, and — when
        // anything was written — SONiC's view now matches the desired state.
        self.verify_frr(&spec)?;
        if !plan.is_empty() {
            // The apply ended synced with redis; read what changed unread.
            let refresh = self.step("reading CONFIG_DB", REFRESH_LIMIT + STEP_SLACK);
            self.db.refresh(REFRESH_LIMIT).await?;
            drop(refresh);
            let again = {
                let view = self.db.view();
                configdb::plan_confirmed(&spec, &view.config, &view.confirmed)
            };
            let again = self.uncontested(again);
            if !again.is_empty() {
                out.retry_now = true;
                return Err(ConfigDbError::NotConverged {
                    remaining: again.to_string(),
                }
                .into());
            }
        }
        crate::crash_point!("reconcile.kernel-check");
        // 8. The kernel shows what SONiC's managers made of it. They write
        // their STATE_DB confirmations after their kernel commands, so a
        // mismatch left now is drift rather than lag: wait at most the
        // drift grace period, then let drift repair take over.
        if self.cfg.kernel_checks
            && let Some(kernel) = &self.kernel
        {
            let t = Instant::now();
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = self
                .cfg
                .kernel_drift_grace
                .0
                .min(left)
                .max(Duration::from_millis(1));
            let step = self.step("waiting for the kernel", wait + STEP_SLACK);
            let confirmed = kernel.wait_until(&expectations(&spec), wait).await;
            drop(step);
            out.stages.kernel = t.elapsed();
            if let Err(e) = confirmed {
                out.kernel_pending = true;
                // CONFIG_DB is at the desired state: remember it, so that
                // drift repair can run.
                self.last.converged_at = Some(self.db.view().version);
                self.last.converged_spec = Some(spec);
                return Err(e.into());
            }
        }
        self.last.converged_at = Some(self.db.view().version);
        self.last.converged_spec = Some(spec);
        Ok(ReconcileResult::Converged)
    }

    /// Render, validate, install and reload FRR when the rendered text
    /// differs from the installed file.
    async fn install_frr(&mut self, spec: &SwitchSpec) -> Result<FrrOutcome, Error> {
        if self.installer.is_none() {
            return Ok(FrrOutcome::Skipped);
        }
        let text = self.rendered(spec);
        let Some(installer) = &self.installer else {
            return Ok(FrrOutcome::Skipped);
        };
        let installed = installer.install(&text).await?;
        let outcome = match installed {
            // An earlier run may have been killed between installing this
            // file and reloading FRR (crash point `frr.installed`).
            Installed::Unchanged if !self.frr_loaded => match installer.reload_installed().await? {
                Some(r) => {
                    tracing::info!(
                        elapsed = ?r.elapsed,
                        "FRR reloaded with the installed configuration (first install of this run)"
                    );
                    FrrOutcome::Reloaded { reload: r.elapsed }
                }
                None => FrrOutcome::Unchanged,
            },
            Installed::Unchanged => FrrOutcome::Unchanged,
            Installed::Replaced {
                validation, reload, ..
            } => FrrOutcome::Replaced {
                validation,
                reload: reload.map(|r| r.elapsed),
            },
        };
        self.frr_loaded = true;
        Ok(outcome)
    }

    /// frr.conf for `spec` (rendered again only when the spec or the
    /// flavour's lines changed).
    fn rendered(&mut self, spec: &SwitchSpec) -> Arc<str> {
        let lines = self.frr_lines();
        match &self.last.rendered {
            Some((s, l, text)) if s == spec && *l == lines => text.clone(),
            _ => {
                let text: Arc<str> = frr::render(spec, lines).into();
                self.last.rendered = Some((spec.clone(), lines, text.clone()));
                text
            }
        }
    }

    /// The installed frr.conf is the rendered one.
    fn verify_frr(&mut self, spec: &SwitchSpec) -> Result<(), Error> {
        if self.installer.is_none() {
            return Ok(());
        }
        let text = self.rendered(spec);
        let Some(installer) = &self.installer else {
            return Ok(());
        };
        let installed = crate::files::read_bytes(
            crate::files::FileKind::FrrConfig,
            &installer.dest,
            crate::files::FRR_CONFIG_MAX_BYTES,
        )?;
        if installed != text.as_bytes() {
            return Err(ConfigDbError::NotConverged {
                remaining: format!(
                    "{} changed after it was installed (someone else writes it?)",
                    installer.dest.display()
                ),
            }
            .into());
        }
        self.frr_digest = Some(digest(&installed));
        Ok(())
    }
}

/// A rendered frr.conf of `len` bytes is larger than the agent reads back
/// (`limit`): every later install would fail to read the installed file.
fn frr_size_problem(len: usize, limit: u64) -> Option<spec::Problem> {
    (u64::try_from(len).unwrap_or(u64::MAX) > limit).then(|| spec::Problem {
        object: "frr.conf".into(),
        message: format!(
            "the rendered configuration has {len} bytes; the agent reads at most {limit} back \
             (too many VRFs or prefixes for one frr.conf)"
        ),
    })
}

/// SHA-256 of an installed frr.conf.
fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 22 item 8: a rendered frr.conf larger than the agent reads back
    /// is refused (as invalid, before any write), at the read limit exactly
    /// not.
    #[test]
    fn a_rendered_frr_conf_over_the_read_limit_is_refused() {
        let limit = crate::files::FRR_CONFIG_MAX_BYTES;
        let at = usize::try_from(limit).unwrap();
        assert_eq!(frr_size_problem(at, limit), None);
        let p = frr_size_problem(at + 1, limit).unwrap();
        assert_eq!(p.object, "frr.conf");
        assert!(p.message.contains("67108865 bytes"), "{}", p.message);
        assert!(p.message.contains("at most 67108864"), "{}", p.message);
    }
}
