//! [`Agent`]: one reconcile and the owner of everything it touches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::desired::DesiredSource;
use super::options::{self, AgentOptions, Mode};
use crate::api::client::ApiClient;
use crate::config::Config;
use crate::configdb::Planning;
use crate::configdb::connection::ConfigDbError;
use crate::configdb::dbconfig::Databases;
use crate::configdb::plan::Plan;
use crate::configdb::redis::ConfigDb;
use crate::configdb::schema::Key;
use crate::error::Error;
use crate::flavour::{Flavour, FrrLines};
use crate::frr::install::Installer;
use crate::kernel::KernelView;
use crate::report::{Outcome, ReconcileResult, Trigger};
use crate::spec::{LocalFacts, SpecDigest, SwitchDesc, SwitchSpec};
use crate::systemd::watchdog::{Liveness, Step};

/// What the last reconcile left behind.
#[derive(Debug, Default)]
pub(super) struct Last {
    /// The desired state the spec was built from.
    pub(super) desc: Option<Arc<SwitchDesc>>,
    /// The API's generation of `desc` (v2), when it has one.
    pub(super) api_generation: Option<u64>,
    /// The spec built from `desc` and CONFIG_DB at `spec_config_version`,
    /// and its digest. Shared with `converged_spec` and `rendered` while
    /// it stays the same spec: a reconcile that finds the same spec again
    /// neither copies nor compares it.
    pub(super) spec: Option<Arc<SwitchSpec>>,
    pub(super) digest: Option<SpecDigest>,
    pub(super) spec_config_version: u64,
    /// The view's version when the spec was built (where its journal of
    /// changed keys starts for [`Agent::respec`]).
    pub(super) spec_view_version: u64,
    /// The local facts of CONFIG_DB at a view version.
    pub(super) facts: Option<(u64, LocalFacts)>,
    /// The view's version when the last reconcile converged.
    pub(super) converged_at: Option<u64>,
    /// The spec CONFIG_DB held, confirmed, at `converged_at`.
    pub(super) converged_spec: Option<Arc<SwitchSpec>>,
    /// The last rendered frr.conf and the spec and flavour lines it was
    /// rendered from.
    pub(super) rendered: Option<(Arc<SwitchSpec>, FrrLines, Arc<str>)>,
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
    pub(super) last: Last,
    /// Reconciles so far.
    pub(super) generation: u64,
    /// FRR runs the installed frr.conf: an install or reload of this process
    /// succeeded. Until then an unchanged file is reloaded anyway.
    pub(super) frr_loaded: bool,
    /// Which SONiC this is ([`Agent::set_flavour`]); `None`: not detected
    /// (FRR outside SONiC, tests): no flavour lines, nothing refused.
    pub(super) flavour: Option<Flavour>,
    /// The frr.conf this agent installed (or found installed) and
    /// verified, the rendered text itself (shared with `last.rendered`): a
    /// file that no longer holds it was changed or deleted under the agent
    /// ([`Agent::frr_drifted`]).
    pub(super) frr_installed: Option<Arc<str>>,
    /// The next reconcile installs frr.conf again even when nothing else
    /// changed ([`Agent::repair_frr`]).
    pub(super) frr_repair: bool,
    /// The daemon's proof of progress for the watchdog: each long step of
    /// a reconcile declares its bound ([`Agent::set_liveness`]).
    pub(super) liveness: Option<Liveness>,
    /// Owned keys another writer keeps changing: left out of every plan
    /// ([`Agent::set_contested`], `configdb::contest`).
    pub(super) contested: std::collections::BTreeSet<Key>,
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
        let installer = opts.frr.then(|| options::installer(&cfg));
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
            frr_installed: None,
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
    pub(super) fn uncontested(&self, plan: Plan) -> Plan {
        if self.contested.is_empty() {
            return plan;
        }
        crate::configdb::contest::without(plan, &|k| self.contested.contains(k))
    }

    /// Report the long steps of every reconcile to `liveness` (the
    /// daemon's watchdog).
    pub fn set_liveness(&mut self, liveness: Liveness) {
        self.liveness = Some(liveness);
    }

    /// Open a long step of at most `bound` without progress (nothing
    /// without a watchdog).
    pub(super) fn step(&self, what: &'static str, bound: Duration) -> Option<Step> {
        self.liveness.as_ref().map(|l| l.step(what, bound))
    }

    /// Whether the installed frr.conf is no longer the one this agent
    /// installed: `Some("deleted")` (SONiC's `split` mode deletes it at every
    /// start of the bgp container), `Some("changed")` (an operator's edit, a
    /// restored backup, a start script's lines). Reads the file (bounded);
    /// `None` before the first verified install and in dry-run mode.
    pub fn frr_drifted(&self) -> Option<&'static str> {
        let installer = self.installer.as_ref()?;
        let want = self.frr_installed.as_ref()?;
        if self.opts.mode != Mode::Apply {
            return None;
        }
        match crate::files::read_bytes(
            crate::files::FileKind::FrrConfig,
            &installer.dest,
            crate::files::FRR_CONFIG_MAX_BYTES,
        ) {
            Ok(bytes) if bytes == want.as_bytes() => None,
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

    pub(super) fn frr_lines(&self) -> FrrLines {
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
    /// repair; see [`Planning::reasserting`]).
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
        self.last.spec.as_deref()
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
            self.installer = Some(options::installer(&cfg));
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
        let touched = self.touched();
        let view = self.db.view();
        let plan = Planning::new(spec, &view.config, &view.confirmed)
            .since_touched(self.last.converged_spec.as_deref(), touched.as_deref())
            .plan();
        let plan = self.uncontested(plan);
        (!plan.phases.is_empty()).then_some(plan)
    }

    /// The keys that changed since the last converged reconcile (empty:
    /// nothing moved); `None` when unknown (never converged, or the view's
    /// journal does not reach back that far).
    pub(super) fn touched(&self) -> Option<Vec<crate::configdb::view::Touched>> {
        let at = self.last.converged_at?;
        self.db.view().touched_since(at)
    }

    /// One reconcile: the steps of [`super::steps`] in order, the first error
    /// turned into the outcome's result. `refetch = false` reuses the
    /// desired state of the last one (a drift repair); `deadline` bounds the
    /// waits for SONiC.
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
        out.undecodable = self.db.undecodable();
        out.duration = started.elapsed();
        out
    }
}
