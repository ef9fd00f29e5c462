//! `metal-switchd run`: register, then reconcile on every trigger, one at a
//! time, report, and keep operators informed (feature `agent`).
//!
//! The loop owns the [`Agent`] and asks the [`Schedule`] what to do next;
//! everything else only wakes it:
//! - the interval timer (`reconfigure_switch_interval`): fetch and reconcile;
//! - a CONFIG_DB notification that leaves the owned entries different from
//!   the last applied desired state (someone edited or deleted one): repair
//!   at once, without fetching;
//! - SONiC becoming ready again (`config reload`, swss restart);
//! - the kernel: a port's operational state changed (report); the kernel
//!   disagrees with the desired state for longer than `kernel_drift_grace`
//!   (re-assert the owned CONFIG_DB entries the SONiC way, at most three
//!   times; what SONiC cannot repair from CONFIG_DB is reported);
//! - a change of the BGP state file: report;
//! - `SIGHUP`: re-read the configuration, re-plan;
//! - `SIGTERM` / `SIGINT`: no new write starts; a running FRR reload ends;
//!   exit 0. Stopping between CONFIG_DB phases is safe: the next start waits
//!   for SONiC's confirmations before it writes (see `configdb::confirmed`).
//!
//! Alongside: LLDP phone-home on every PORT port but the spine uplinks
//! (from registration on, whatever the desired state), the status file
//! (`metal-switchd status`), the Prometheus endpoint, and systemd's notify
//! protocol (`READY=1` once SONiC's databases and the kernel were read —
//! before registration, which may wait for the API for long —, `WATCHDOG=1`
//! while the loop proves progress (see [`crate::systemd::watchdog`]: it beats
//! every time round and at least every quarter of `WatchdogSec`; a long step
//! — start-up, registration, fetch, a barrier, an FRR reload, a report —
//! declares its bound and reports progress), `STATUS=`, `RELOADING=1`,
//! `STOPPING=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use super::desired::DesiredSource;
use super::outcome::{FrrOutcome, Outcome, ReconcileResult, Trigger};
use super::register::{self, RegisterOptions};
use super::schedule::{Next, Schedule, backoff};
use super::{Agent, AgentOptions, report};
use crate::api::client::ApiClient;
use crate::api::{AGENT_VERSION, ComponentPing};
use crate::config::{ApiVersion, Config};
use crate::configdb::contest::{Contest, ContestPolicy};
use crate::error::Error;
use crate::frr::bgp::{BgpSource, Neighbors, StateFileWatch};
use crate::kernel::KernelView;
use crate::kernel::drift::{DriftPolicy, DriftTracker};
use crate::kernel::expect::{compare, expectations, repair_keys};
use crate::kernel::state::PortEvent;
use crate::lldp::{PhoneHome, PhoneHomeHandle, PhoneHomeOptions};
use crate::metrics::{
    ApiCall, ApiErrorKind, MetalCoreOperation, Metrics, MetricsServer, PhoneHomeResult,
};
use crate::observed::{PortOperState, SwitchReport};
use crate::status::{
    self, DriftSource, LldpNeighbor, LoopPhase, PortStatus, ReconcileRecord, Status, Timestamp,
};
use crate::systemd::notify::Notifier;
use crate::systemd::watchdog::{Liveness, Pinger};

/// Slack on top of a step's own time limits before the watchdog calls it
/// stalled.
const STEP_SLACK: Duration = Duration::from_secs(10);

/// How often the agent announces itself to metal-apiserver (v2), as the Go
/// client does.
pub const PING_INTERVAL: Duration = Duration::from_secs(300);

/// Something the loop did, for observers (tests, benchmarks).
#[derive(Debug, Clone)]
pub enum LoopEvent {
    Registered,
    Reconciled(Box<Outcome>),
    Reported { ok: bool, error: Option<String> },
    KernelDrift { repaired: usize, reported: usize },
    Stopping,
}

/// Receives [`LoopEvent`]s.
pub type Observer = Box<dyn FnMut(&LoopEvent) + Send>;

/// Re-reads the configuration (SIGHUP).
pub type ConfigLoader = Box<dyn Fn() -> Result<Config, Error> + Send>;

/// What the signal task tells the loop.
pub struct Signals {
    /// Becomes true on SIGTERM / SIGINT.
    pub stop: watch::Receiver<bool>,
    /// One message per SIGHUP.
    pub hup: mpsc::Receiver<()>,
}

impl Signals {
    /// Listen to SIGTERM, SIGINT and SIGHUP.
    pub fn install() -> Result<Signals, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |e: std::io::Error| Error::Runtime {
            what: "cannot install the signal handlers",
            source: e,
        };
        let mut term = signal(SignalKind::terminate()).map_err(io)?;
        let mut int = signal(SignalKind::interrupt()).map_err(io)?;
        let mut hangup = signal(SignalKind::hangup()).map_err(io)?;
        let (stop_tx, stop) = watch::channel(false);
        let (hup_tx, hup) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => { let _ = stop_tx.send(true); }
                    _ = int.recv() => { let _ = stop_tx.send(true); }
                    _ = hangup.recv() => { let _ = hup_tx.try_send(()); }
                }
            }
        });
        Ok(Signals { stop, hup })
    }

    /// Signals driven by the caller (tests).
    pub fn manual() -> (Signals, watch::Sender<bool>, mpsc::Sender<()>) {
        let (stop_tx, stop) = watch::channel(false);
        let (hup_tx, hup) = mpsc::channel(1);
        (Signals { stop, hup }, stop_tx, hup_tx)
    }
}

/// Which of the daemon's side jobs run (all for `metal-switchd run`; a
/// benchmark or an embedding may leave some out).
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Serve `/metrics` on `metrics_server_bind_address:metrics_server_port`.
    pub metrics: bool,
    /// Write `status.json` to `state_directory`.
    pub status_file: bool,
    /// Talk to systemd over `NOTIFY_SOCKET` (when set).
    pub notify: bool,
    /// Follow the kernel's links (port states, the management address for
    /// registration, kernel checks, drift).
    pub kernel: bool,
    /// The network namespace the kernel view reads (`None`: the agent's
    /// own; tests point it at a namespace of their switch).
    pub kernel_netns: Option<std::path::PathBuf>,
    /// LLDP phone-home on every PORT port but the spine uplinks.
    pub phone_home: bool,
}

impl DaemonOptions {
    /// Everything: what `metal-switchd run` does.
    pub fn full() -> DaemonOptions {
        DaemonOptions {
            metrics: true,
            status_file: true,
            notify: true,
            kernel: true,
            kernel_netns: None,
            phone_home: true,
        }
    }

    /// Only the loop and its reports (benchmarks, tests of the loop).
    pub fn minimal() -> DaemonOptions {
        DaemonOptions {
            metrics: false,
            status_file: false,
            notify: false,
            kernel: false,
            kernel_netns: None,
            phone_home: false,
        }
    }
}

/// Renew the v2 token beside the loop; every attempt is counted as a
/// `refresh_token` API call.
fn spawn_token_renewal(
    client: ApiClient,
    metrics: Arc<Metrics>,
) -> crate::api::renew::RenewalHandle {
    use crate::api::renew::{Renewal, RenewalOptions, TokenRenewal};
    TokenRenewal::spawn(
        client,
        RenewalOptions::default(),
        Arc::new(move |r: &Renewal| match r {
            Renewal::Renewed { .. } | Renewal::NotSaved { .. } => {
                metrics.api_call(ApiCall::RefreshToken, None)
            }
            Renewal::CallFailed { transient, .. } => metrics.api_call(
                ApiCall::RefreshToken,
                Some(if *transient {
                    ApiErrorKind::Transient
                } else {
                    ApiErrorKind::Permanent
                }),
            ),
        }),
    )
}

/// Build the daemon's agent from the configuration.
pub fn daemon_agent(cfg: &Config) -> Result<Agent, Error> {
    let id = cfg.hostname()?.to_owned();
    // Plain HTTP to the metal API, said loudly at every start.
    for w in cfg.plaintext_warnings() {
        tracing::warn!(risk = "plain-http", "{w}");
    }
    for n in cfg.limit_notes() {
        tracing::info!("{n}");
    }
    let api = ApiClient::from_config(cfg)?;
    Agent::new(
        cfg.clone(),
        DesiredSource::Api { id },
        Some(api),
        AgentOptions::from_config(cfg),
    )
}

/// The daemon: registration, then the loop, until SIGTERM / SIGINT.
pub struct Daemon {
    agent: Agent,
    loader: ConfigLoader,
    signals: Signals,
    observer: Observer,
    opts: DaemonOptions,
    bgp: Option<BgpSource>,
    bgp_watch: Option<StateFileWatch>,
    /// A watch on the installed frr.conf (its directory): a change or
    /// deletion under the agent is repaired at once.
    frr_watch: Option<StateFileWatch>,
    started: SystemTime,
    start: Instant,
    status: Status,
    metrics: Arc<Metrics>,
    metrics_server: Option<MetricsServer>,
    notifier: Arc<Notifier>,
    /// The loop's proof of progress, judged by `pinger`.
    liveness: Liveness,
    /// Sends `WATCHDOG=1` while `liveness` says the loop makes progress.
    pinger: Option<Pinger>,
    phone_home: Option<PhoneHomeHandle>,
    /// v2: renews the token before it expires.
    token_renewal: Option<crate::api::renew::RenewalHandle>,
    phone_home_ports: watch::Sender<BTreeSet<String>>,
    /// Phone-home counters already turned into metrics.
    phone_home_seen: crate::lldp::collector::Stats,
    drift: DriftTracker,
    /// Kernel drift that is reported, not repaired (for the heartbeat).
    drift_problem: Option<String>,
    /// Owned keys repaired too often: contested by another writer.
    contest: Contest,
    last_outcome: Option<Outcome>,
    last_error: Option<String>,
    /// Distinct desired states seen (status and metrics).
    desired_generation: u64,
    status_error_logged: bool,
    /// The feed's count of entries that are not UTF-8 at the last record.
    undecodable_seen: crate::configdb::reply::Undecodable,
}

impl Daemon {
    pub fn new(
        mut agent: Agent,
        loader: ConfigLoader,
        signals: Signals,
        observer: Observer,
        opts: DaemonOptions,
    ) -> Daemon {
        agent.opts.hooks.stop = Some(signals.stop.clone());
        let cfg = agent.config();
        let bgp = BgpSource::from_config(cfg);
        let bgp_watch = match &bgp {
            Some(BgpSource::File { path, .. }) => match StateFileWatch::new(path) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "BGP state file not watched; read at every report");
                    None
                }
            },
            _ => None,
        };
        let frr_watch = match StateFileWatch::new(&cfg.frr_config) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "frr.conf not watched; a change under the agent is found at the next timer \
                     reconcile"
                );
                None
            }
        };
        let drift = DriftTracker::new(DriftPolicy {
            grace: cfg.kernel_drift_grace.0,
            ..DriftPolicy::default()
        });
        let started = SystemTime::now();
        let notifier = if opts.notify {
            Notifier::from_env().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot talk to systemd (NOTIFY_SOCKET)");
                Notifier::disabled()
            })
        } else {
            Notifier::disabled()
        };
        let liveness = Liveness::new();
        agent.set_liveness(liveness.clone());
        Daemon {
            agent,
            loader,
            signals,
            observer,
            opts,
            bgp,
            bgp_watch,
            frr_watch,
            started,
            start: Instant::now(),
            status: Status::new(std::process::id(), started),
            metrics: Arc::new(Metrics::new(started)),
            metrics_server: None,
            notifier: Arc::new(notifier),
            liveness,
            pinger: None,
            phone_home: None,
            token_renewal: None,
            phone_home_ports: watch::channel(BTreeSet::new()).0,
            phone_home_seen: Default::default(),
            drift,
            drift_problem: None,
            contest: Contest::new(ContestPolicy::default()),
            last_outcome: None,
            last_error: None,
            desired_generation: 0,
            status_error_logged: false,
            undecodable_seen: Default::default(),
        }
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The metrics the daemon records (also served on `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    fn stopping(&self) -> bool {
        *self.signals.stop.borrow()
    }

    fn set_phase(&mut self, phase: LoopPhase) {
        self.status.set_phase(phase);
        self.publish_status();
    }

    /// Write the status file and send `STATUS=`.
    fn publish_status(&mut self) {
        let now = SystemTime::now();
        if self.opts.status_file {
            let dir = self.agent.cfg.state_directory.clone();
            let written = std::fs::create_dir_all(&dir)
                .map_err(|source| status::StatusFileError::Write {
                    dir: dir.clone(),
                    source,
                })
                .and_then(|()| self.status.write_atomic(&dir, now));
            match written {
                Ok(_) => self.status_error_logged = false,
                Err(e) if !self.status_error_logged => {
                    tracing::warn!(error = %e, "cannot write the status file");
                    self.status_error_logged = true;
                }
                Err(_) => {}
            }
        }
        let line = self.status.status_line(now);
        if let Err(e) = self.notifier.status(&line) {
            tracing::debug!(error = %e, "STATUS= not sent");
        }
    }

    /// Register, retrying until the API accepts it (or a stop signal).
    /// `Ok(false)` when stopped first.
    async fn register(&mut self) -> Result<bool, Error> {
        let cfg = self.agent.cfg.clone();
        let opts = RegisterOptions::from_config(&cfg);
        let mut opts = opts;
        opts.progress = Some(self.liveness.clone());
        let _step = self.liveness.step(
            "registering with the metal API",
            opts.attempt_bound(cfg.timeout.0) + STEP_SLACK,
        );
        let mut stop = self.signals.stop.clone();
        let Some(kernel) = self.agent.kernel.clone() else {
            return Ok(true);
        };
        let Agent { db, api, .. } = &mut self.agent;
        let Some(client) = api.as_mut() else {
            return Ok(true);
        };
        tokio::select! {
            r = register::register(&cfg, db, &kernel, client, &opts) => {
                match r {
                    Ok(_) => self.metrics.api_call(ApiCall::Register, None),
                    Err(e) => {
                        self.metrics.api_call(ApiCall::Register, Some(ApiErrorKind::Permanent));
                        return Err(e);
                    }
                }
                (self.observer)(&LoopEvent::Registered);
                Ok(true)
            }
            _ = stop.wait_for(|s| *s) => Ok(false),
        }
    }

    /// Start what runs beside the loop: metrics, the kernel view,
    /// phone-home; then wait for the first full read of SONiC's databases
    /// and tell systemd the agent is ready.
    async fn start_side_jobs(&mut self) -> Result<(), Error> {
        let cfg = self.agent.cfg.clone();
        if let (true, Some(interval)) = (
            self.notifier.is_enabled(),
            self.notifier.watchdog_interval(),
        ) {
            match Pinger::spawn(self.notifier.clone(), self.liveness.clone(), interval) {
                Ok(p) => self.pinger = Some(p),
                Err(e) => tracing::error!(error = %e, "cannot start the watchdog's pinger"),
            }
        }
        // Up to 30 s for redis below, the kernel's dump, the flavour.
        let _step = self
            .liveness
            .step("starting", Duration::from_secs(30) + STEP_SLACK * 3);
        if self.opts.metrics {
            let addr = format!(
                "{}:{}",
                cfg.metrics_server_bind_address, cfg.metrics_server_port
            );
            match addr.parse::<SocketAddr>() {
                Ok(addr) => match self.metrics.clone().serve(addr).await {
                    Ok(server) => {
                        tracing::info!(addr = %server.local_addr(), "serving /metrics");
                        self.metrics_server = Some(server);
                    }
                    // The agent's job matters more than its metrics.
                    Err(e) => tracing::error!(error = %e, "metrics are not served"),
                },
                Err(e) => tracing::error!(%addr, error = %e, "metrics are not served"),
            }
        }
        if self.opts.kernel {
            let view = match &self.opts.kernel_netns {
                Some(ns) => KernelView::start_in_netns(ns).await?,
                None => KernelView::start().await?,
            };
            self.agent.set_kernel(view);
        }
        if self.opts.phone_home
            && self.agent.api.is_some()
            && let Ok(client) = ApiClient::from_config(&cfg)
        {
            let ports = self.phone_home_ports.subscribe();
            self.phone_home = Some(PhoneHome::spawn(
                ports,
                client,
                PhoneHomeOptions::from_config(&cfg),
            ));
        }
        if self.agent.api.is_some()
            && cfg.api_version() == ApiVersion::V2
            && let Ok(client) = ApiClient::from_config(&cfg)
        {
            self.token_renewal = Some(spawn_token_renewal(client, self.metrics.clone()));
        }
        // READY=1 once the switch was observed: SONiC's databases read in
        // full (or found unreachable for now) and the kernel dumped.
        let mut stop = self.signals.stop.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.agent.db().is_connected() && Instant::now() < deadline {
            tokio::select! {
                _ = self.agent.db_mut().next_event() => {}
                _ = tokio::time::sleep_until(deadline.into()) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        if !self.agent.db().is_connected() {
            tracing::warn!("SONiC's redis is not reachable yet; starting anyway");
        }
        self.detect_flavour().await;
        if let Err(e) = self
            .notifier
            .ready(&self.status.status_line(SystemTime::now()))
        {
            tracing::warn!(error = %e, "READY=1 not sent");
        }
        Ok(())
    }

    /// Run until SIGTERM / SIGINT.
    pub async fn run(mut self) -> Result<(), Error> {
        self.set_phase(LoopPhase::Starting);
        for n in self.agent.cfg.notices() {
            tracing::warn!("setting without effect: {n}");
        }
        self.start_side_jobs().await?;
        let mut port_events = self.agent.kernel().map(KernelView::port_events);
        let mut kernel_states = self.agent.kernel().map(KernelView::subscribe);
        self.set_phase(LoopPhase::Registering);
        if !self.stopping() && !self.register().await? {
            return self.finish().await;
        }
        self.update_phone_home_ports();
        let mut schedule = Schedule::new(
            Instant::now(),
            self.agent.cfg.reconfigure_switch_interval.0,
            (self.agent.cfg.api_version() == ApiVersion::V2).then_some(PING_INTERVAL),
            self.notifier.watchdog_interval().map(Pinger::beat_period),
        );
        // Agents started together (a partition powered up, a fleet update)
        // do not tick in step.
        schedule.spread_start(0.5 + fastrand::f64());
        let mut stop = self.signals.stop.clone();
        self.set_phase(LoopPhase::Idle);
        while !self.stopping() {
            // Every time round is progress; an idle loop comes round at
            // least every quarter of the watchdog interval (Next::Watchdog).
            self.liveness.beat();
            match schedule.next(Instant::now()) {
                Next::Watchdog => schedule.watchdog_sent(Instant::now()),
                Next::Ping => {
                    self.ping().await;
                    schedule.pinged(Instant::now());
                }
                Next::Reconcile { trigger, refetch } => {
                    let started = Instant::now();
                    self.reconcile(trigger, refetch).await;
                    let o = self.last_outcome.as_ref();
                    if let Some(o) = o {
                        let wait = backoff(
                            schedule.failures() + 1,
                            self.agent.cfg.reconfigure_switch_interval.0,
                            0.8 + fastrand::f64() * 0.4,
                        );
                        schedule.reconciled(started, o, wait);
                        if o.is_converged() || o.kernel_pending {
                            schedule.kernel_check_at(Instant::now());
                        }
                    }
                    schedule.reported(Instant::now());
                }
                Next::Report => {
                    if let Some(o) = self.last_outcome.clone() {
                        self.report(&o).await;
                        self.publish_status();
                    }
                    schedule.reported(Instant::now());
                }
                Next::KernelCheck => {
                    schedule.kernel_checked();
                    if let Some(after) = self.kernel_check() {
                        schedule.kernel_check_at(Instant::now() + after);
                    }
                    if !self.agent.reassert.is_empty() {
                        schedule.trigger(Trigger::Kernel, false);
                    }
                }
                Next::Wait(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = stop.wait_for(|s| *s) => {}
                        Some(()) = self.signals.hup.recv() => {
                            self.reload(&mut schedule).await;
                        }
                        ev = self.agent.db_mut().next_event() => {
                            if ev.is_none() {
                                return Err(Error::Runtime {
                                    what: "following CONFIG_DB",
                                    source: std::io::Error::other("the CONFIG_DB feed stopped"),
                                });
                            }
                            self.on_configdb_change(&mut schedule);
                        }
                        Some(()) = async {
                            match self.bgp_watch.as_mut() {
                                Some(w) => w.changed().await,
                                None => std::future::pending().await,
                            }
                        } => schedule.report_soon(),
                        Some(()) = async {
                            match self.frr_watch.as_mut() {
                                Some(w) => w.changed().await,
                                None => std::future::pending().await,
                            }
                        } => self.on_frr_change(&mut schedule),
                        ev = async {
                            match port_events.as_mut() {
                                Some(rx) => rx.recv().await,
                                None => std::future::pending().await,
                            }
                        } => match ev {
                            Ok(PortEvent { port, old, new }) => {
                                if self.is_reported_port(&port) {
                                    tracing::info!(%port, ?old, ?new, "port operational state changed");
                                    schedule.report_soon();
                                }
                            }
                            // Events were lost: report the current states.
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                schedule.report_soon();
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                return Err(Error::Runtime {
                                    what: "following the kernel's links",
                                    source: std::io::Error::other("the kernel view stopped"),
                                });
                            }
                        },
                        changed = async {
                            match kernel_states.as_mut() {
                                Some(rx) => rx.changed().await,
                                None => std::future::pending().await,
                            }
                        } => {
                            if changed.is_ok() {
                                schedule.kernel_check_at(Instant::now());
                            } else {
                                kernel_states = None;
                            }
                        }
                    }
                }
            }
        }
        self.finish().await
    }

    /// The installed frr.conf's directory changed: if the file is no longer
    /// what the agent installed, install it again at once.
    fn on_frr_change(&mut self, schedule: &mut Schedule) {
        if self.check_frr_drift() {
            schedule.trigger(Trigger::Frr, false);
        }
    }

    /// Whether frr.conf drifted (then the next reconcile repairs it).
    fn check_frr_drift(&mut self) -> bool {
        let Some(what) = self.agent.frr_drifted() else {
            return false;
        };
        tracing::warn!(
            file = %self.agent.cfg.frr_config.display(),
            "frr.conf was {what} under the agent; installing the rendered one again"
        );
        self.agent.repair_frr();
        true
    }

    /// A CONFIG_DB notification arrived (and was applied to the view).
    fn on_configdb_change(&mut self, schedule: &mut Schedule) {
        let changed = self.agent.db_mut().take_changed();
        let converged = self
            .last_outcome
            .as_ref()
            .is_some_and(Outcome::is_converged);
        if changed.readiness && self.agent.db().view().readiness.ready() && !converged {
            schedule.trigger(Trigger::Sonic, false);
        } else if (changed.config || changed.confirmed)
            && let Some(plan) = self.agent.drifted()
        {
            if !schedule.is_pending() {
                tracing::info!(
                    changes = plan.changes(),
                    "CONFIG_DB differs from the desired state (changed under the agent); repairing"
                );
            }
            schedule.trigger(Trigger::Configdb, false);
        }
    }

    /// Which SONiC this is (at start and on SIGHUP): logged, used by the
    /// agent (its zebra lines; a routing configuration mode in which SONiC
    /// writes frr.conf is refused at every reconcile).
    async fn detect_flavour(&mut self) {
        let f = crate::flavour::read::detect_switch(&self.agent.cfg, None).await;
        let lines = f.frr_lines().lines();
        tracing::info!(
            flavour = %f.name(),
            build_version = f.build_version.as_deref().unwrap_or("unknown"),
            debian = f.debian.as_deref().unwrap_or("unknown"),
            routing_config_mode = %f.routing_config_mode,
            frr_version = f.frr_version.as_deref().unwrap_or("unknown"),
            fpm_module = f.fpm_module.as_str(),
            frr_lines = %if lines.is_empty() { "none".to_owned() } else { lines.join("; ") },
            "SONiC flavour detected"
        );
        for w in &f.warnings {
            tracing::warn!(flavour = %f.name(), "{w}");
        }
        if let Some(r) = f.refusal() {
            tracing::error!("{r}");
        }
        for n in self.agent.cfg.notices() {
            tracing::warn!("setting without effect: {n}");
        }
        self.status.flavour = Some((&f).into());
        self.metrics.set_flavour(&f);
        self.agent.set_flavour(f);
        self.publish_status();
    }

    /// SIGHUP: re-read the configuration.
    async fn reload(&mut self, schedule: &mut Schedule) {
        let _ = self.notifier.reloading("re-reading the configuration");
        let _step = self
            .liveness
            .step("re-reading the configuration", STEP_SLACK * 3);
        match (self.loader)() {
            Ok(cfg) => {
                let interval = cfg.reconfigure_switch_interval.0;
                match self.agent.set_config(cfg) {
                    Ok(()) => {
                        tracing::info!("configuration re-read (SIGHUP)");
                        // The other writer may be gone: repair everything again.
                        self.contest.clear();
                        self.sync_contest();
                        self.detect_flavour().await;
                        schedule.set_interval(Instant::now(), interval);
                        schedule.trigger(Trigger::Reload, true);
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: the new configuration cannot be used; keeping the old one"
                    ),
                }
            }
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: the configuration is invalid; keeping the old one"
            ),
        }
        let _ = self
            .notifier
            .ready(&self.status.status_line(SystemTime::now()));
    }

    /// One reconcile with everything around it: status, metrics, log,
    /// report, phone-home ports.
    async fn reconcile(&mut self, trigger: Trigger, refetch: bool) {
        self.set_phase(LoopPhase::Reconciling);
        let released = self.contest.release_due(Instant::now());
        if !released.is_empty() {
            for key in &released {
                tracing::info!(%key, "repairing a contested CONFIG_DB key once more");
            }
            self.sync_contest();
        }
        let started_at = SystemTime::now();
        let deadline = Instant::now() + self.agent.cfg.timeout.0;
        // A change of frr.conf whose event was missed (no watch) is found
        // here, at the latest at the next timer reconcile.
        if trigger != Trigger::Frr {
            self.check_frr_drift();
        }
        let outcome = self.agent.reconcile_once(trigger, refetch, deadline).await;
        self.log(&outcome);
        self.record(&outcome, started_at);
        self.report(&outcome).await;
        self.update_phone_home_ports();
        (self.observer)(&LoopEvent::Reconciled(Box::new(outcome.clone())));
        self.last_outcome = Some(outcome);
        self.status.set_phase(LoopPhase::Idle);
        self.publish_status();
    }

    /// LLDP capture runs on every port of CONFIG_DB PORT but the spine
    /// uplinks, from registration on — like metal-core, and whether or not
    /// the desired state is valid: a refused desired state must not make
    /// every machine on the switch look dead to the API.
    fn update_phone_home_ports(&mut self) {
        let uplinks = &self.agent.cfg.spine_uplinks;
        let ports: BTreeSet<String> = self
            .agent
            .db()
            .view()
            .config
            .table(crate::configdb::schema::Table::Port)
            .map(|(name, _)| name.to_owned())
            .filter(|name| !uplinks.contains(name))
            .collect();
        self.phone_home_ports.send_if_modified(|p| {
            let changed = *p != ports;
            *p = ports;
            changed
        });
    }

    /// Metrics and the status record of one reconcile.
    fn record(&mut self, o: &Outcome, started_at: SystemTime) {
        let now = SystemTime::now();
        let m = &self.metrics;
        m.reconcile_finished(o.result, o.duration, now);
        let undecodable = self.agent.db().undecodable();
        m.undecodable_entries(&undecodable.since(&self.undecodable_seen));
        self.undecodable_seen = undecodable;
        for (stage, d) in o.stages.to_map() {
            m.observe_stage(stage, d);
        }
        if let Some(r) = &o.apply {
            if let Some(plan) = &o.plan {
                m.record_plan(plan);
            }
            m.record_apply(r);
        }
        match o.fetch_failed {
            Some(transient) => m.api_call(
                ApiCall::GetSwitch,
                Some(if transient {
                    ApiErrorKind::Transient
                } else {
                    ApiErrorKind::Permanent
                }),
            ),
            None if o.refetched && !o.stages.fetch.is_zero() => {
                m.api_call(ApiCall::GetSwitch, None)
            }
            None => {}
        }
        if o.desired_changed {
            self.desired_generation += 1;
            m.desired_state_changed();
        }
        self.status.desired = Some(status::DesiredState {
            source: match self.agent.cfg.api_version() {
                ApiVersion::V1 => status::DesiredSource::ApiV1,
                ApiVersion::V2 => status::DesiredSource::ApiV2,
            },
            generation: self.desired_generation,
            digest: o
                .digest
                .clone()
                .or_else(|| self.status.desired.as_ref().and_then(|d| d.digest.clone())),
            api_generation: o
                .api_generation
                .or_else(|| self.status.desired.as_ref().and_then(|d| d.api_generation)),
        });
        if let Some(d) = &o.digest {
            m.set_desired_state(d, o.api_generation, o.is_converged());
        }
        if o.frr_repaired {
            m.drift_repaired(DriftSource::Frr);
            let what = self.agent.cfg.frr_config.display().to_string();
            self.status.record_drift(DriftSource::Frr, what, now);
        }
        if o.trigger == Trigger::Configdb && o.is_converged() && o.changes > 0 {
            m.drift_repaired(DriftSource::Configdb);
            let what = o
                .plan
                .as_ref()
                .and_then(|p| p.iter_changes().next())
                .map(|c| c.key.to_string())
                .unwrap_or_default();
            self.status.record_drift(DriftSource::Configdb, what, now);
        }
        // Writes the desired state did not ask for repair what another
        // writer changed; a key repaired too often is left to it.
        let repair = matches!(
            o.trigger,
            Trigger::Configdb | Trigger::Timer | Trigger::Retry
        ) && !o.desired_changed
            && !matches!(o.result, ReconcileResult::Invalid | ReconcileResult::DryRun)
            && o.changes > 0;
        if repair && let Some(plan) = &o.plan {
            let newly = self
                .contest
                .repaired(Instant::now(), plan.iter_changes().map(|c| &c.key));
            for key in &newly {
                tracing::error!(
                    %key,
                    "CONFIG_DB key contested by another writer (changed back after every \
                     repair); no longer repaired for now — is metal-core or a second agent \
                     running?"
                );
            }
            if !newly.is_empty() {
                self.sync_contest();
            }
        }
        self.status.record_reconcile(ReconcileRecord {
            started_at: Timestamp(started_at),
            duration: o.duration,
            result: o.result,
            error: o.error.clone(),
            trigger: o.trigger,
            stages: o.stages.to_map(),
            changes: o.changes as u64,
            phases: o.phases as u64,
            frr_changed: matches!(o.frr, FrrOutcome::Replaced { .. }),
            digest: o.digest.clone(),
            api_generation: o.api_generation,
        });
    }

    /// The contested keys into the agent (left out of its plans), the
    /// metrics and the status.
    fn sync_contest(&mut self) {
        let keys: Vec<_> = self.contest.contested().cloned().collect();
        self.metrics.set_contested_keys(keys.len());
        self.status.drift.contested = keys.iter().map(ToString::to_string).collect();
        self.agent.set_contested(keys);
    }

    fn log(&mut self, o: &Outcome) {
        match o.result {
            ReconcileResult::Converged | ReconcileResult::DryRun => {
                let digest = o.digest.as_ref().map(|d| d.0.as_str());
                if o.unchanged {
                    tracing::debug!(generation = o.generation, digest, "{}", o.summary());
                } else {
                    tracing::info!(
                        generation = o.generation,
                        digest,
                        api_generation = o.api_generation,
                        trigger = o.trigger.as_str(),
                        changes = o.changes,
                        phases = o.phases,
                        duration_ms = o.duration.as_secs_f64() * 1e3,
                        "{}",
                        o.summary()
                    );
                }
                self.last_error = None;
            }
            ReconcileResult::Invalid | ReconcileResult::Error | ReconcileResult::Pending => {
                // An error is logged once, not on every retry of it.
                if self.last_error != o.error {
                    tracing::error!(generation = o.generation, "{}", o.summary());
                    if let Some(e) = &o.error {
                        tracing::error!("{e}");
                    }
                    self.last_error = o.error.clone();
                } else {
                    tracing::debug!(generation = o.generation, "{}", o.summary());
                }
            }
        }
    }

    /// Compare the kernel with the desired state; schedule repairs of drift
    /// that lasted its grace period. Returns when to look again.
    fn kernel_check(&mut self) -> Option<Duration> {
        if !self.agent.cfg.kernel_checks {
            return None;
        }
        // CONFIG_DB must be at the desired state (the kernel may lag).
        let converged = self
            .last_outcome
            .as_ref()
            .is_some_and(|o| o.is_converged() || o.kernel_pending);
        let (Some(kernel), Some(spec)) = (self.agent.kernel(), self.agent.spec()) else {
            return None;
        };
        let state = kernel.state();
        if !state.in_sync || !converged {
            return None;
        }
        let mismatches = compare(&state, &expectations(spec));
        let now = self.start.elapsed();
        let drift = self.drift.observe(now, &mismatches);
        let mut problems: Vec<String> = Vec::new();
        for f in &drift.failed {
            problems.push(format!(
                "{} (not repaired by {} re-assertion(s) through CONFIG_DB)",
                f.mismatch, f.repairs
            ));
        }
        for m in &drift.unrepairable {
            problems.push(format!("{m} (SONiC cannot repair this from CONFIG_DB)"));
        }
        let problem =
            (!problems.is_empty()).then(|| format!("kernel drift: {}", problems.join("; ")));
        let newly_reported = problem.is_some() && problem != self.drift_problem;
        if problem != self.drift_problem {
            if let Some(p) = &problem {
                tracing::error!("{p}");
            }
            self.drift_problem = problem;
        }
        if !drift.due.is_empty() {
            let keys = repair_keys(&drift.due);
            for m in &drift.due {
                tracing::warn!(mismatch = %m, "kernel drift; re-asserting its CONFIG_DB entries");
                self.metrics.drift_repaired(DriftSource::Kernel);
                self.status
                    .record_drift(DriftSource::Kernel, m.to_string(), SystemTime::now());
            }
            self.agent.reassert(keys);
            self.drift.repaired(now, &drift.due);
        }
        if !drift.due.is_empty() || newly_reported {
            (self.observer)(&LoopEvent::KernelDrift {
                repaired: drift.due.len(),
                reported: drift.failed.len() + drift.unrepairable.len(),
            });
        }
        drift.next_check
    }

    /// Send the report of `outcome` (v1 notify, v2 heartbeat) and record the
    /// observed states.
    async fn report(&mut self, outcome: &Outcome) {
        let started = Instant::now();
        let bgp: Option<Neighbors> = match &self.bgp {
            Some(src) => match src.read().await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::debug!(error = %e, "BGP states not reported");
                    None
                }
            },
            None => None,
        };
        let oper: BTreeMap<String, PortOperState> = self
            .agent
            .kernel()
            .map(KernelView::oper_states)
            .unwrap_or_default();
        self.observe_states(&oper, bgp.as_ref());
        let mut rep: SwitchReport = {
            let view = self.agent.db().view();
            report::build(
                outcome,
                self.agent.desired(),
                &self.agent.cfg,
                &view.config,
                &oper,
                bgp.as_ref(),
            )
        };
        if rep.error.is_none() {
            rep.error = self
                .drift_problem
                .clone()
                .or_else(|| self.contest.problem());
        }
        let Ok(id) = self.agent.cfg.hostname().map(str::to_owned) else {
            return;
        };
        let bound = self.api_bound();
        let _step = self.liveness.step("reporting to the metal API", bound);
        let Some(client) = self.agent.api_mut() else {
            return;
        };
        let result = client.report(&id, &rep).await;
        let (ok, error) = match result {
            Ok(_) => {
                self.metrics.api_call(ApiCall::Report, None);
                (true, None)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot report to the metal API");
                let kind = if e.is_transient() {
                    ApiErrorKind::Transient
                } else {
                    ApiErrorKind::Permanent
                };
                self.metrics.api_call(ApiCall::Report, Some(kind));
                self.metrics
                    .metal_core_error(MetalCoreOperation::ReconfigurationNotification);
                (false, Some(e.to_string()))
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), ok, "reported");
        self.metrics
            .observe_stage(status::Stage::Report, started.elapsed());
        (self.observer)(&LoopEvent::Reported { ok, error });
    }

    /// Port, BGP and phone-home states into the status record and metrics.
    fn observe_states(&mut self, oper: &BTreeMap<String, PortOperState>, bgp: Option<&Neighbors>) {
        let Some(spec) = self.agent.spec() else {
            return;
        };
        let snapshot = self.phone_home.as_ref().map(PhoneHomeHandle::snapshot);
        let mut ports = BTreeMap::new();
        for (name, p) in &spec.ports {
            let state = oper.get(name).copied().unwrap_or(PortOperState::Unknown);
            let lldp = snapshot
                .as_ref()
                .and_then(|s| s.neighbors.get(name))
                .and_then(|n| {
                    Some(LldpNeighbor {
                        machine_id: n.machine_id.clone()?,
                        last_seen: Timestamp(std::time::UNIX_EPOCH + n.last_seen),
                    })
                });
            ports.insert(
                name.clone(),
                PortStatus {
                    oper: state,
                    admin: p.admin,
                    lldp,
                },
            );
        }
        self.metrics
            .set_port_states(ports.iter().map(|(n, p)| (n.as_str(), p.oper)));
        self.status.ports = ports;
        if let Some(n) = bgp {
            self.metrics
                .set_bgp_states(n.states.iter().map(|(p, b)| (p.as_str(), b)));
            self.status.set_bgp(n.states.iter());
        }
        if let Some(s) = snapshot {
            let seen = &mut self.phone_home_seen;
            let m = &self.metrics;
            let delta = |now: u64, before: &mut u64| {
                let d = now.saturating_sub(*before);
                *before = now;
                d
            };
            m.phone_home(
                PhoneHomeResult::Queued,
                delta(s.stats.phone_home_frames, &mut seen.phone_home_frames),
            );
            m.phone_home(
                PhoneHomeResult::Sent,
                delta(s.stats.events_sent, &mut seen.events_sent),
            );
            let failed = delta(s.stats.sends_failed, &mut seen.sends_failed);
            m.phone_home(PhoneHomeResult::Failed, failed);
            for _ in 0..failed {
                m.api_call(ApiCall::SendEvents, Some(ApiErrorKind::Transient));
                m.metal_core_error(MetalCoreOperation::SendProvisioning);
            }
            for _ in 0..delta(s.stats.sends_ok, &mut seen.sends_ok) {
                m.api_call(ApiCall::SendEvents, None);
            }
            let dropped = delta(s.stats.dropped_overflow, &mut seen.dropped_overflow)
                + delta(s.stats.events_rejected, &mut seen.events_rejected);
            m.phone_home(PhoneHomeResult::Dropped, dropped);
            m.set_phone_home_pending(s.pending.len() as u64);
            self.status.phone_home = status::PhoneHome {
                pending: s.pending.len() as u64,
                sent: s.stats.events_sent,
                last_sent: s.last_success.map(|d| Timestamp(std::time::UNIX_EPOCH + d)),
                failures: s.stats.sends_failed,
            };
        }
    }

    /// Whether the API hears about `port` (a nic of the desired state).
    fn is_reported_port(&self, port: &str) -> bool {
        let Some(desc) = self.agent.desired() else {
            return false;
        };
        let view = self.agent.db().view();
        desc.nics
            .iter()
            .any(|n| report::kernel_name(&n.name, &self.agent.cfg, &view.config) == Some(port))
    }

    /// The longest an API call with its retries may take.
    fn api_bound(&self) -> Duration {
        let cfg = &self.agent.cfg;
        crate::api::transport::RetryPolicy::from_config(cfg)
            .worst_case(cfg.timeout.0)
            .unwrap_or_default()
            + STEP_SLACK
    }

    /// v2 `ComponentService/Ping` (v1: nothing).
    async fn ping(&mut self) {
        let Ok(id) = self.agent.cfg.hostname().map(str::to_owned) else {
            return;
        };
        let started_at = self
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let bound = self.api_bound();
        let _step = self.liveness.step("pinging the metal API", bound);
        let Some(client) = self.agent.api_mut() else {
            return;
        };
        let ping = ComponentPing {
            identifier: id,
            started_at,
            interval: PING_INTERVAL,
            version: AGENT_VERSION.to_owned(),
        };
        match client.ping(&ping).await {
            Ok(()) => self.metrics.api_call(ApiCall::Ping, None),
            Err(e) => {
                tracing::warn!(error = %e, "component ping failed");
                self.metrics
                    .api_call(ApiCall::Ping, Some(ApiErrorKind::Transient));
            }
        }
    }

    /// Shut down: `STOPPING=1`, the side jobs, the last status.
    async fn finish(mut self) -> Result<(), Error> {
        let _ = self.notifier.stopping("stopping");
        (self.observer)(&LoopEvent::Stopping);
        tracing::info!("stopping");
        self.set_phase(LoopPhase::Stopping);
        if let Some(p) = self.phone_home.take() {
            p.shutdown().await;
        }
        if let Some(r) = self.token_renewal.take() {
            r.shutdown().await;
        }
        if let Some(m) = self.metrics_server.take() {
            m.shutdown().await;
        }
        drop(self.pinger.take());
        Ok(())
    }
}
