//! The steps of one reconcile, in order: (flavour check →) fetch → spec →
//! plan → write → FRR → verify → kernel. Each is a method of the [`Agent`] with its own
//! error type; [`Agent::reconcile_once`] runs them in this order and turns
//! the first error into the outcome.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::agent::Agent;
use super::desired::FetchError;
use super::options::{self, Mode};
use super::prepare;
use crate::configdb::connection::ConfigDbError;
use crate::configdb::plan::Plan;
use crate::configdb::redis::PhaseHook;
use crate::configdb::schema::Key;
use crate::configdb::view::Touched;
use crate::configdb::{Planning, facts};
use crate::error::Error;
use crate::files::{self, FileError, FileKind};
use crate::flavour::{Flavour, FrrLines};
use crate::frr;
use crate::frr::install::{InstallError, Installed};
use crate::kernel::NotConverged;
use crate::kernel::expect::expectations;
use crate::report::{FrrOutcome, Outcome, ReconcileResult};
use crate::spec::{self, Problems, SpecDigest, SwitchDesc, SwitchSpec};

/// How long one full read of the owned CONFIG_DB entries may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack on top of a step's own time limits (scheduling, a redis round
/// trip) before the watchdog calls it stalled.
const STEP_SLACK: Duration = Duration::from_secs(10);

/// The verification after a write failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The installed frr.conf cannot be read back.
    #[error(transparent)]
    Read(#[from] FileError),
    /// CONFIG_DB or frr.conf is not at the desired state.
    #[error(transparent)]
    NotConverged(#[from] ConfigDbError),
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Error {
        match e {
            VerifyError::Read(e) => Error::File(e),
            VerifyError::NotConverged(e) => Error::ConfigDb(e),
        }
    }
}

/// The rest of `deadline`, at least a millisecond, at most `limit`.
fn bounded(limit: Duration, deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    limit.min(left).max(Duration::from_millis(1))
}

impl Agent {
    /// The steps in order (see the module documentation).
    pub(super) async fn reconcile(
        &mut self,
        out: &mut Outcome,
        refetch: bool,
        deadline: Instant,
    ) -> Result<ReconcileResult, Error> {
        self.flavour_allows()?;
        let (desc, api_generation) = self.fetch(out, refetch).await?;
        self.ready(deadline).await?;
        let view_moved = self.view_moved();
        let reassert = std::mem::take(&mut self.reassert);
        let frr_repair = std::mem::take(&mut self.frr_repair);
        if !out.desired_changed
            && !view_moved
            && reassert.is_empty()
            && !frr_repair
            && self.last.spec.is_some()
        {
            // Nothing new since the last converged reconcile.
            self.last.desc = Some(desc);
            self.last.api_generation = api_generation;
            out.unchanged = true;
            out.digest = self.last.digest.clone();
            return Ok(ReconcileResult::Converged);
        }
        // What SONiC confirmed, with every value read (planning decides on
        // them); of the router-interface map only what the plan asks about
        // (a drift repair: its interfaces, not every one of the switch).
        self.refresh(Some(&[])).await?;
        let t = Instant::now();
        let mut spec = self.build_spec(desc.clone(), out.desired_changed)?;
        let interfaces = self.planning_reads(&spec, &reassert);
        let mut planning = t.elapsed();
        if interfaces.as_ref().is_none_or(|i| !i.is_empty()) {
            let version = self.db.view().config_version;
            self.refresh(interfaces.as_deref()).await?;
            // The spec is built against the CONFIG_DB the plan reads.
            if self.db.view().config_version != version {
                let t = Instant::now();
                spec = self.build_spec(desc, out.desired_changed)?;
                planning += t.elapsed();
            }
        }
        self.last.api_generation = api_generation;
        out.digest = self.last.digest.clone();
        let t = Instant::now();
        let plan = self.plan(&spec, &reassert);
        out.stages.plan = planning + t.elapsed();
        out.planned(&plan);
        if self.opts.mode == Mode::DryRun {
            out.frr = FrrOutcome::Skipped;
            return Ok(match plan.is_empty() {
                true => ReconcileResult::Converged,
                false => ReconcileResult::DryRun,
            });
        }
        self.frr_fits(&spec)?;
        self.frr_removals_first(&spec, &plan, out).await?;
        self.write(&plan, deadline, out).await?;
        self.continue_after_write()?;
        let t = Instant::now();
        let step = self.step("validating and reloading FRR", self.frr_bound());
        out.frr = self.frr(&spec).await?;
        drop(step);
        out.stages.frr += t.elapsed();
        out.frr_repaired = frr_repair && matches!(out.frr, FrrOutcome::Replaced { .. });
        self.verify(&spec, &plan, out).await?;
        crate::crash_point!("reconcile.kernel-check");
        let kernel = self.await_kernel(&spec, deadline, out).await;
        // CONFIG_DB is at the desired state, also when the kernel does not
        // show it yet: remember it, so that drift repair can run.
        self.last.converged_at = Some(self.db.view().version);
        self.last.converged_spec = Some(spec);
        kernel?;
        Ok(ReconcileResult::Converged)
    }

    /// SONiC must leave frr.conf to the agent: a flavour whose routing
    /// configuration mode makes SONiC write it is refused (every reconcile
    /// says so while it lasts).
    fn flavour_allows(&self) -> Result<(), Error> {
        match self.flavour.as_ref().and_then(Flavour::refusal) {
            Some(refusal) if self.installer.is_some() => Err(Error::FlavourRefused(refusal)),
            _ => Ok(()),
        }
    }

    /// Fetch: the desired state (or the last one, for a drift repair) and
    /// the API's generation of it.
    async fn fetch(
        &mut self,
        out: &mut Outcome,
        refetch: bool,
    ) -> Result<(Arc<SwitchDesc>, Option<u64>), FetchError> {
        let t = Instant::now();
        let (desc, api_generation) = match (refetch, &self.last.desc) {
            (false, Some(d)) => (d.clone(), self.last.api_generation),
            _ => {
                let bound = options::retry(&self.cfg)
                    .worst_case(self.cfg.timeout.0)
                    .unwrap_or_default();
                let _step = self.step("fetching the desired state", bound + STEP_SLACK);
                let fetched = self
                    .source
                    .fetch(self.api.as_mut())
                    .await
                    .inspect_err(|e| {
                        out.fetch_failed = Some(e.is_transient());
                    })?;
                out.api_version = Some(fetched.version);
                (fetched.desc, fetched.api_generation)
            }
        };
        out.api_generation = api_generation;
        out.stages.fetch = t.elapsed();
        out.desired_changed = self
            .last
            .desc
            .as_ref()
            .is_none_or(|d| !Arc::ptr_eq(d, &desc) && **d != *desc);
        Ok((desc, api_generation))
    }

    /// SONiC must be ready and the view filled before anything is decided.
    async fn ready(&mut self, deadline: Instant) -> Result<(), ConfigDbError> {
        self.db.pump();
        if !self.db.view().readiness.ready() || !self.db.is_connected() {
            let wait = bounded(self.opts.wait_ready, deadline);
            let _step = self.step("waiting for SONiC to be ready", wait + STEP_SLACK);
            self.db.wait_ready(wait).await?;
        }
        Ok(())
    }

    /// Read what changed unread: every owned entry with its values; of the
    /// router-interface map only the fields of `interfaces` (`None`: all).
    async fn refresh(&mut self, interfaces: Option<&[String]>) -> Result<(), ConfigDbError> {
        let _step = self.step("reading CONFIG_DB", REFRESH_TIMEOUT + STEP_SLACK);
        self.db.refresh_for(interfaces, REFRESH_TIMEOUT).await
    }

    /// Spec: the desired state validated against CONFIG_DB's local facts;
    /// built again only when the desired state or CONFIG_DB changed.
    fn build_spec(
        &mut self,
        desc: Arc<SwitchDesc>,
        desired_changed: bool,
    ) -> Result<Arc<SwitchSpec>, Problems> {
        let version = self.db.view().config_version;
        let rebuild =
            desired_changed || self.last.spec.is_none() || self.last.spec_config_version != version;
        if rebuild && !desired_changed && self.respec(version) {
            return self.last.spec.clone().ok_or(Problems(Vec::new()));
        }
        if rebuild {
            // The spec of the same CONFIG_DB and the document it came from:
            // only the nics that changed are validated again when that is
            // enough (spec::rebuild), and the same spec is kept as it is.
            let prev_desc = self.last.desc.replace(desc.clone());
            let prev = self.last.spec.take();
            let same_facts = self.last.spec_config_version == version;
            let prev_digest = self.last.digest.take();
            if self.last.facts.as_ref().is_none_or(|(v, _)| *v != version) {
                let facts = prepare::local_facts(&self.cfg, &self.db.view().config);
                self.last.facts = Some((version, facts));
            }
            let rebuilt = match (&self.last.facts, &prev, &prev_desc) {
                (Some((_, facts)), Some(prev), Some(prev_desc)) if same_facts => {
                    spec::rebuild(prev, prev_desc, &desc, &self.cfg, facts)
                }
                _ => None,
            };
            let spec = match rebuilt {
                Some(Ok(Cow::Borrowed(_))) => prev.clone().ok_or(Problems(Vec::new()))?,
                Some(Ok(Cow::Owned(s))) => Arc::new(s),
                Some(Err(p)) => return Err(p),
                None => Arc::new(match &self.last.facts {
                    Some((_, facts)) => spec::build(&desc, &self.cfg, facts)?,
                    None => prepare::spec(&desc, &self.cfg, &self.db.view().config)?,
                }),
            };
            let (spec, digest) = keep_very(prev.zip(prev_digest), spec);
            self.last.digest = Some(digest);
            self.last.spec = Some(spec);
            self.last.spec_config_version = version;
            self.last.spec_view_version = self.db.view().version;
        }
        self.last.spec.clone().ok_or(Problems(Vec::new()))
    }

    /// The same document after CONFIG_DB changed only in `INTERFACE` and
    /// `VLAN_MEMBER` entries (a drift repair): the local facts are updated
    /// for those ports and only their conflict check runs again
    /// (`spec::recheck_ports`); returns whether the spec stands.
    fn respec(&mut self, version: u64) -> bool {
        let Some(prev) = &self.last.spec else {
            return false;
        };
        let view = self.db.view();
        let Some(touched) = view.touched_since(self.last.spec_view_version) else {
            return false;
        };
        let changed: Vec<Key> = touched
            .into_iter()
            .filter_map(|t| match t {
                Touched::Config(k) => Some(k),
                _ => None,
            })
            .collect();
        // The facts the spec was built with, updated in place (dropped when
        // that does not work out: read anew then).
        let Some((at, mut facts)) = self.last.facts.take() else {
            return false;
        };
        if at != self.last.spec_config_version {
            return false;
        }
        let stands = facts::update_port_facts(&mut facts, &view.config, &changed)
            .is_some_and(|ports| spec::recheck_ports(prev, &self.cfg, &facts, &ports));
        if stands {
            self.last.facts = Some((version, facts));
            self.last.spec_config_version = version;
            self.last.spec_view_version = view.version;
        }
        stands
    }

    /// The interfaces whose router interface the plan will ask about
    /// (`None`: any; [`Planning::reading`]).
    fn planning_reads(&self, spec: &SwitchSpec, reassert: &[Key]) -> Option<Vec<String>> {
        let touched = self.touched();
        let view = self.db.view();
        Planning::new(spec, &view.config, &view.confirmed)
            .since_touched(self.last.converged_spec.as_deref(), touched.as_deref())
            .reasserting(reassert)
            .reading()
            .interfaces()
    }

    /// Plan: only what changed when CONFIG_DB still holds the converged
    /// spec, confirmed, or only what the keys changed since can move;
    /// otherwise against what SONiC confirmed, re-asserting `reassert`
    /// (pure: [`Planning::plan`]); contested keys left out.
    fn plan(&self, spec: &SwitchSpec, reassert: &[Key]) -> Plan {
        let touched = self.touched();
        let view = self.db.view();
        let plan = Planning::new(spec, &view.config, &view.confirmed)
            .since_touched(self.last.converged_spec.as_deref(), touched.as_deref())
            .reasserting(reassert)
            .plan();
        self.uncontested(plan)
    }

    /// frr.conf must be one the agent can read back (verify, drift):
    /// refused before anything is written, like any invalid state.
    fn frr_fits(&mut self, spec: &Arc<SwitchSpec>) -> Result<(), Problems> {
        if self.installer.is_none() {
            return Ok(());
        }
        let text = self.rendered(spec);
        match frr_size_problem(text.len(), files::FRR_CONFIG_MAX_BYTES) {
            Some(p) => Err(Problems(vec![p])),
            None => Ok(()),
        }
    }

    /// The longest FRR's validation and reload may take.
    fn frr_bound(&self) -> Duration {
        self.cfg.frr_validation_timeout.0 + self.cfg.frr_reload_timeout.0 + STEP_SLACK
    }

    /// What leaves FRR (a neighbour, a VRF instance) leaves it before its
    /// interface or VRF leaves CONFIG_DB: bgpd must not hold a session on
    /// an interface SONiC takes away. What is added goes into CONFIG_DB
    /// first ([`Agent::write`]), FRR after ([`Agent::frr`]).
    async fn frr_removals_first(
        &mut self,
        spec: &Arc<SwitchSpec>,
        plan: &Plan,
        out: &mut Outcome,
    ) -> Result<(), InstallError> {
        if plan.is_empty() {
            return Ok(());
        }
        let (Some(installer), Some(old)) = (&self.installer, &self.last.converged_spec) else {
            return Ok(());
        };
        if Arc::ptr_eq(old, spec) {
            return Ok(());
        }
        let Some(mid) = frr::render::removals_first(old, spec) else {
            return Ok(());
        };
        let t = Instant::now();
        let text = frr::render(&mid, self.frr_lines());
        let _step = self.step("validating and reloading FRR", self.frr_bound());
        tracing::info!("removing from FRR what leaves CONFIG_DB, before CONFIG_DB");
        installer.install(&text).await?;
        self.frr_loaded = true;
        out.stages.frr += t.elapsed();
        Ok(())
    }

    /// Write: CONFIG_DB phase by phase, each confirmed by SONiC.
    async fn write(
        &mut self,
        plan: &Plan,
        deadline: Instant,
        out: &mut Outcome,
    ) -> Result<(), ConfigDbError> {
        if plan.is_empty() {
            return Ok(());
        }
        let mut opts = self.opts.hooks.clone();
        opts.barrier_timeout = bounded(opts.barrier_timeout, deadline);
        // Each wait (pending confirmations, a phase's precondition, its
        // barrier) is bounded by the barrier timeout; every phase is
        // progress.
        let _step = self.step("applying CONFIG_DB", opts.barrier_timeout + STEP_SLACK);
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
        let r = self.db.apply(plan, &opts).await?;
        out.stages.configdb_write = r.write_time;
        out.stages.barrier_wait = r.barrier_time + r.pending_wait;
        out.apply = Some(r);
        Ok(())
    }

    /// No step after a write starts once a shutdown was asked for.
    fn continue_after_write(&self) -> Result<(), ConfigDbError> {
        match self.opts.hooks.stop.as_ref().is_some_and(|s| *s.borrow()) {
            true => Err(ConfigDbError::Stopped),
            false => Ok(()),
        }
    }

    /// FRR: render, validate, install and reload when the rendered text
    /// differs from the installed file (or FRR may not run it yet).
    async fn frr(&mut self, spec: &Arc<SwitchSpec>) -> Result<FrrOutcome, InstallError> {
        if self.installer.is_none() {
            return Ok(FrrOutcome::Skipped);
        }
        let text = self.rendered(spec);
        let Some(installer) = &self.installer else {
            return Ok(FrrOutcome::Skipped);
        };
        let outcome = match installer.install(&text).await? {
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
    fn rendered(&mut self, spec: &Arc<SwitchSpec>) -> Arc<str> {
        let lines = self.frr_lines();
        render_cached(&mut self.last.rendered, spec, lines)
    }

    /// Verify: the installed frr.conf is the rendered one, and — when
    /// anything was written — planning again against what SONiC now
    /// confirms finds nothing left.
    async fn verify(
        &mut self,
        spec: &Arc<SwitchSpec>,
        plan: &Plan,
        out: &mut Outcome,
    ) -> Result<(), VerifyError> {
        if let Some(dest) = self.installer.as_ref().map(|i| i.dest.clone()) {
            let text = self.rendered(spec);
            // Unchanged: the FRR step has just read the file and found these
            // bytes, and nothing ran since; it is read again only after FRR
            // was given a file (validated, reloaded).
            let installed = match out.frr == FrrOutcome::Unchanged {
                true => None,
                false => Some(files::read_bytes(
                    FileKind::FrrConfig,
                    &dest,
                    files::FRR_CONFIG_MAX_BYTES,
                )?),
            };
            if installed.is_some_and(|i| i != text.as_bytes()) {
                return Err(ConfigDbError::NotConverged {
                    remaining: format!(
                        "{} changed after it was installed (someone else writes it?)",
                        dest.display()
                    ),
                }
                .into());
            }
            self.frr_installed = Some(text);
        }
        if plan.is_empty() {
            return Ok(());
        }
        // The apply ended synced with redis; read what changed unread. The
        // full plan, not the narrowed one: an independent check.
        self.refresh(None).await?;
        let view = self.db.view();
        let again = self.uncontested(Planning::new(spec, &view.config, &view.confirmed).plan());
        if !again.is_empty() {
            out.retry_now = true;
            return Err(ConfigDbError::NotConverged {
                remaining: again.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Kernel: the kernel shows what SONiC's managers made of it. They
    /// write their STATE_DB confirmations after their kernel commands, so
    /// a mismatch left now is drift rather than lag: wait at most the drift
    /// grace period, then let drift repair take over.
    async fn await_kernel(
        &mut self,
        spec: &Arc<SwitchSpec>,
        deadline: Instant,
        out: &mut Outcome,
    ) -> Result<(), NotConverged> {
        let Some(kernel) = self.kernel.as_ref().filter(|_| self.cfg.kernel_checks) else {
            return Ok(());
        };
        let t = Instant::now();
        let wait = bounded(self.cfg.kernel_drift_grace.0, deadline);
        let _step = self.step("waiting for the kernel", wait + STEP_SLACK);
        let confirmed = kernel.wait_until(&expectations(spec), wait).await;
        out.stages.kernel = t.elapsed();
        out.kernel_pending = confirmed.is_err();
        confirmed.map(|_| ())
    }
}

/// The same spec: the very value (no comparison needed), or an equal one.
fn same_spec(a: &Arc<SwitchSpec>, b: &Arc<SwitchSpec>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

/// The spec to go on with after `built` was built: the last one with its
/// digest when `built` equals it (CONFIG_DB moved without changing the
/// spec), so that every later step compares pointers instead of two
/// switches' specs; otherwise `built` with its digest.
fn keep_very(
    last: Option<(Arc<SwitchSpec>, SpecDigest)>,
    built: Arc<SwitchSpec>,
) -> (Arc<SwitchSpec>, SpecDigest) {
    match last {
        Some((last, digest)) if same_spec(&last, &built) => (last, digest),
        _ => {
            let digest = built.digest();
            (built, digest)
        }
    }
}

/// frr.conf for `spec` with `lines`: the text in `cache` when it was
/// rendered for an equal spec with the same lines (the cache then holds
/// `spec`, so that the next call compares pointers), else rendered anew
/// into it.
fn render_cached(
    cache: &mut Option<(Arc<SwitchSpec>, FrrLines, Arc<str>)>,
    spec: &Arc<SwitchSpec>,
    lines: FrrLines,
) -> Arc<str> {
    if let Some((s, l, text)) = cache
        && *l == lines
        && same_spec(s, spec)
    {
        *s = spec.clone();
        return text.clone();
    }
    let text: Arc<str> = frr::render(spec, lines).into();
    *cache = Some((spec.clone(), lines, text.clone()));
    text
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configdb::testkit;
    use crate::spec::{AdminStatus, PortRole};

    fn spec_with(vni: u32) -> Arc<SwitchSpec> {
        Arc::new(testkit::spec(
            vec![
                testkit::port("Ethernet0", PortRole::Tenant { vni }, None),
                testkit::port("Ethernet4", testkit::firewall(), Some(AdminStatus::Up)),
            ],
            &[(vni, 1001)],
        ))
    }

    /// A spec built anew that equals the last one: the last one is kept,
    /// and with it its digest, which is the digest of the one built anew.
    #[test]
    fn an_equal_spec_built_anew_keeps_the_very_last_one_and_its_digest() {
        let last = spec_with(104001);
        let built = spec_with(104001);
        assert!(!Arc::ptr_eq(&last, &built));
        let (kept, digest) = keep_very(Some((last.clone(), last.digest())), built.clone());
        assert!(Arc::ptr_eq(&kept, &last));
        assert_eq!(*kept, *built);
        assert_eq!(digest, built.digest());

        let other = spec_with(104002);
        let (kept, digest) = keep_very(Some((last.clone(), last.digest())), other.clone());
        assert!(Arc::ptr_eq(&kept, &other));
        assert_eq!(digest, other.digest());
        let (kept, digest) = keep_very(None, built.clone());
        assert!(Arc::ptr_eq(&kept, &built));
        assert_eq!(digest, built.digest());
    }

    /// The text kept for an equal spec is the text rendered anew, and the
    /// cache follows the spec it was asked for; a different spec or other
    /// flavour lines render anew.
    #[test]
    fn a_kept_frr_conf_is_the_one_rendered_anew() {
        let mut cache = None;
        let first = spec_with(104001);
        let text = render_cached(&mut cache, &first, FrrLines::NONE);
        assert_eq!(&*text, frr::render(&first, FrrLines::NONE));

        let equal = spec_with(104001);
        let again = render_cached(&mut cache, &equal, FrrLines::NONE);
        assert!(Arc::ptr_eq(&again, &text), "not rendered again");
        assert_eq!(&*again, frr::render(&equal, FrrLines::NONE));
        assert!(cache.as_ref().is_some_and(|(s, _, _)| Arc::ptr_eq(s, &equal)));

        let other = spec_with(104002);
        let rendered = render_cached(&mut cache, &other, FrrLines::NONE);
        assert_eq!(&*rendered, frr::render(&other, FrrLines::NONE));
        assert_ne!(rendered, text);
    }

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
