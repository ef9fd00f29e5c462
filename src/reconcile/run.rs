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
//! (from registration on, whatever the desired state). What the daemon
//! does goes to its [`Reporter`] (`crate::report`): the status file
//! (`metal-switchd status`), the Prometheus endpoint, the API reports and
//! systemd's notify protocol (`READY=1` once SONiC's databases and the
//! kernel were read — before registration, which may wait for the API for
//! long —, `WATCHDOG=1` while the loop proves progress (see
//! [`crate::systemd::watchdog`]: it beats every time round and at least
//! every quarter of `WatchdogSec`; a long step — start-up, registration,
//! fetch, a barrier, an FRR reload, a report — declares its bound and
//! reports progress), `STATUS=`, `RELOADING=1`, `STOPPING=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};

use super::Agent;
use super::desired::DesiredSource;
use super::options;
use super::register;
use super::schedule::{Next, Schedule, backoff};
use crate::api::{AGENT_VERSION, ComponentPing};
use crate::config::{ApiVersion, Config};
use crate::configdb::contest::{Contest, ContestPolicy};
use crate::error::Error;
use crate::frr::bgp::{BgpSource, Neighbors, StateFileWatch};
use crate::kernel::KernelView;
use crate::kernel::drift::DriftTracker;
use crate::kernel::expect::{compare, expectations, repair_keys};
use crate::kernel::state::{KernelState, PortEvent};
use crate::lldp::collector::PhoneHomeSnapshot;
use crate::lldp::{PhoneHome, PhoneHomeHandle};
use crate::observed::PortOperState;
use crate::report::api::kernel_name;
use crate::report::metrics::{Metrics, MetricsServer};
use crate::report::{LoopPhase, Observed, Outcome, ReconcileResult, Reporter, Trigger};
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
    let api = options::api_client(cfg)?;
    Agent::new(
        cfg.clone(),
        DesiredSource::Api { id },
        Some(api),
        options::agent(cfg),
    )
}

/// The daemon: registration, then the loop, until SIGTERM / SIGINT. It owns
/// the [`Agent`] (one reconcile), the [`Schedule`] (when), and the side jobs
/// that observe the switch (kernel, BGP, phone-home); what it did goes to
/// its [`Reporter`].
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
    reporter: Reporter,
    metrics_server: Option<MetricsServer>,
    /// The loop's proof of progress, judged by `pinger`.
    liveness: Liveness,
    /// Sends `WATCHDOG=1` while `liveness` says the loop makes progress.
    pinger: Option<Pinger>,
    phone_home: Option<PhoneHomeHandle>,
    /// v2: renews the token before it expires.
    token_renewal: Option<crate::api::renew::RenewalHandle>,
    phone_home_ports: watch::Sender<BTreeSet<String>>,
    drift: DriftTracker,
    /// Owned keys repaired too often: contested by another writer.
    contest: Contest,
    last_outcome: Option<Outcome>,
}

/// What the loop waits on besides the timer (taken out of the daemon so
/// that the wait can borrow it alongside the daemon).
struct Wakers {
    port_events: Option<broadcast::Receiver<PortEvent>>,
    kernel_states: Option<watch::Receiver<Arc<KernelState>>>,
    stop: watch::Receiver<bool>,
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
        let bgp = options::bgp_source(cfg);
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
        let drift = DriftTracker::new(options::drift(cfg));
        let started = SystemTime::now();
        let notifier = if opts.notify {
            Notifier::from_env().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot talk to systemd (NOTIFY_SOCKET)");
                Notifier::disabled()
            })
        } else {
            Notifier::disabled()
        };
        let reporter = Reporter::new(
            options::reporter(cfg, opts.status_file),
            notifier,
            std::process::id(),
            started,
        );
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
            reporter,
            metrics_server: None,
            liveness,
            pinger: None,
            phone_home: None,
            token_renewal: None,
            phone_home_ports: watch::channel(BTreeSet::new()).0,
            drift,
            contest: Contest::new(ContestPolicy::default()),
            last_outcome: None,
        }
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The metrics the daemon records (also served on `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.reporter.metrics()
    }

    fn stopping(&self) -> bool {
        *self.signals.stop.borrow()
    }

    fn set_phase(&mut self, phase: LoopPhase) {
        self.reporter.phase(phase, SystemTime::now());
    }

    /// Register, retrying until the API accepts it (or a stop signal).
    /// `Ok(false)` when stopped first.
    async fn register(&mut self) -> Result<bool, Error> {
        let cfg = self.agent.cfg.clone();
        let mut opts = options::register(&cfg);
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
                self.reporter.registered(r.is_ok());
                r?;
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
        if let Some(interval) = self.reporter.watchdog_interval() {
            match Pinger::spawn(self.reporter.notifier(), self.liveness.clone(), interval) {
                Ok(p) => self.pinger = Some(p),
                Err(e) => tracing::error!(error = %e, "cannot start the watchdog's pinger"),
            }
        }
        // Up to 30 s for redis below, the kernel's dump, the flavour.
        let _step = self
            .liveness
            .step("starting", Duration::from_secs(30) + STEP_SLACK * 3);
        if self.opts.metrics {
            self.serve_metrics(&cfg).await;
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
            && let Ok(client) = options::api_client(&cfg)
        {
            let ports = self.phone_home_ports.subscribe();
            self.phone_home = Some(PhoneHome::spawn(ports, client, options::phone_home(&cfg)));
        }
        if self.agent.api.is_some()
            && cfg.api_version() == ApiVersion::V2
            && let Ok(client) = options::api_client(&cfg)
        {
            use crate::api::renew::{RenewalOptions, TokenRenewal};
            let observer = self.reporter.token_renewal_observer();
            self.token_renewal = Some(TokenRenewal::spawn(
                client,
                RenewalOptions::default(),
                observer,
            ));
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
        self.reporter.ready(SystemTime::now());
        Ok(())
    }

    /// Serve `/metrics` (the agent's job matters more than its metrics: a
    /// failure is logged, not fatal).
    async fn serve_metrics(&mut self, cfg: &Config) {
        let addr = format!(
            "{}:{}",
            cfg.metrics_server_bind_address, cfg.metrics_server_port
        );
        match addr.parse::<SocketAddr>() {
            Ok(addr) => match self.reporter.metrics().serve(addr).await {
                Ok(server) => {
                    tracing::info!(addr = %server.local_addr(), "serving /metrics");
                    self.metrics_server = Some(server);
                }
                Err(e) => tracing::error!(error = %e, "metrics are not served"),
            },
            Err(e) => tracing::error!(%addr, error = %e, "metrics are not served"),
        }
    }

    /// Run until SIGTERM / SIGINT.
    pub async fn run(mut self) -> Result<(), Error> {
        self.set_phase(LoopPhase::Starting);
        self.start_side_jobs().await?;
        let mut wakers = Wakers {
            port_events: self.agent.kernel().map(KernelView::port_events),
            kernel_states: self.agent.kernel().map(KernelView::subscribe),
            stop: self.signals.stop.clone(),
        };
        self.set_phase(LoopPhase::Registering);
        if !self.stopping() && !self.register().await? {
            return self.finish().await;
        }
        self.update_phone_home_ports();
        let mut schedule = Schedule::new(
            Instant::now(),
            self.agent.cfg.reconfigure_switch_interval.0,
            (self.agent.cfg.api_version() == ApiVersion::V2).then_some(PING_INTERVAL),
            self.reporter.watchdog_interval().map(Pinger::beat_period),
        );
        // Agents started together (a partition powered up, a fleet update)
        // do not tick in step.
        schedule.spread_start(0.5 + fastrand::f64());
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
                    self.reconcile_scheduled(&mut schedule, trigger, refetch)
                        .await;
                }
                Next::Report => {
                    if let Some(o) = self.last_outcome.clone() {
                        self.report(&o).await;
                        self.reporter.publish(SystemTime::now());
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
                Next::Wait(until) => self.wait(until, &mut schedule, &mut wakers).await?,
            }
        }
        self.finish().await
    }

    /// A reconcile the schedule asked for; tells the schedule how it ended.
    async fn reconcile_scheduled(
        &mut self,
        schedule: &mut Schedule,
        trigger: Trigger,
        refetch: bool,
    ) {
        let started = Instant::now();
        self.reconcile(trigger, refetch).await;
        if let Some(o) = self.last_outcome.as_ref() {
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

    /// Wait until `until` or until something wakes the loop: a signal, a
    /// CONFIG_DB notification, the BGP state file, a port's state, the
    /// kernel view.
    async fn wait(
        &mut self,
        until: Instant,
        schedule: &mut Schedule,
        w: &mut Wakers,
    ) -> Result<(), Error> {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = w.stop.wait_for(|s| *s) => {}
            Some(()) = self.signals.hup.recv() => {
                self.reload(schedule).await;
            }
            ev = self.agent.db_mut().next_event() => {
                if ev.is_none() {
                    return Err(Error::Runtime {
                        what: "following CONFIG_DB",
                        source: std::io::Error::other("the CONFIG_DB feed stopped"),
                    });
                }
                self.on_configdb_change(schedule);
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
            } => self.on_frr_change(schedule),
            ev = async {
                match w.port_events.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => self.on_port_event(ev, schedule)?,
            changed = async {
                match w.kernel_states.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_ok() {
                    schedule.kernel_check_at(Instant::now());
                } else {
                    w.kernel_states = None;
                }
            }
        }
        Ok(())
    }

    /// A port's operational state changed (or events were lost).
    fn on_port_event(
        &mut self,
        ev: Result<PortEvent, broadcast::error::RecvError>,
        schedule: &mut Schedule,
    ) -> Result<(), Error> {
        match ev {
            Ok(PortEvent { port, old, new }) => {
                if self.is_reported_port(&port) {
                    tracing::info!(%port, ?old, ?new, "port operational state changed");
                    schedule.report_soon();
                }
            }
            // Events were lost: report the current states.
            Err(broadcast::error::RecvError::Lagged(_)) => schedule.report_soon(),
            Err(broadcast::error::RecvError::Closed) => {
                return Err(Error::Runtime {
                    what: "following the kernel's links",
                    source: std::io::Error::other("the kernel view stopped"),
                });
            }
        }
        Ok(())
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
        self.reporter.flavour_detected(&f, SystemTime::now());
        self.agent.set_flavour(f);
    }

    /// SIGHUP: re-read the configuration.
    async fn reload(&mut self, schedule: &mut Schedule) {
        self.reporter.reloading("re-reading the configuration");
        let _step = self
            .liveness
            .step("re-reading the configuration", STEP_SLACK * 3);
        match (self.loader)() {
            Ok(cfg) => {
                let interval = cfg.reconfigure_switch_interval.0;
                let reporting = options::reporter(&cfg, self.opts.status_file);
                match self.agent.set_config(cfg) {
                    Ok(()) => {
                        tracing::info!("configuration re-read (SIGHUP)");
                        self.reporter.set_options(reporting);
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
        self.reporter.ready(SystemTime::now());
    }

    /// One reconcile with everything around it: the reporter, the
    /// phone-home ports, the observer.
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
        self.reporter
            .reconciled(&outcome, started_at, SystemTime::now());
        self.judge_repairs(&outcome);
        self.report(&outcome).await;
        self.update_phone_home_ports();
        (self.observer)(&LoopEvent::Reconciled(Box::new(outcome.clone())));
        self.last_outcome = Some(outcome);
        self.set_phase(LoopPhase::Idle);
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

    /// Writes the desired state did not ask for repair what another writer
    /// changed; a key repaired too often is left to it.
    fn judge_repairs(&mut self, o: &Outcome) {
        let repair = matches!(
            o.trigger,
            Trigger::Configdb | Trigger::Timer | Trigger::Retry
        ) && !o.desired_changed
            && !matches!(o.result, ReconcileResult::Invalid | ReconcileResult::DryRun)
            && o.changes > 0;
        let Some(plan) = o.plan.as_ref().filter(|_| repair) else {
            return;
        };
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

    /// The contested keys into the agent (left out of its plans) and the
    /// reporter.
    fn sync_contest(&mut self) {
        let keys: Vec<_> = self.contest.contested().cloned().collect();
        self.reporter.contested(&keys, self.contest.problem());
        self.agent.set_contested(keys);
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
        let newly_reported = self.reporter.kernel_drift(&drift, SystemTime::now());
        if !drift.due.is_empty() {
            self.agent.reassert(repair_keys(&drift.due));
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

    /// What the switch shows now: the kernel's port states, the BGP
    /// sessions (when they can be read), phone-home.
    async fn observe(
        &self,
    ) -> (
        BTreeMap<String, PortOperState>,
        Option<Neighbors>,
        Option<PhoneHomeSnapshot>,
    ) {
        let bgp = match &self.bgp {
            Some(src) => match src.read().await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::debug!(error = %e, "BGP states not reported");
                    None
                }
            },
            None => None,
        };
        let oper = self
            .agent
            .kernel()
            .map(KernelView::oper_states)
            .unwrap_or_default();
        let phone_home = self.phone_home.as_ref().map(PhoneHomeHandle::snapshot);
        (oper, bgp, phone_home)
    }

    /// Observe the switch and send the report of `outcome` (v1 notify, v2
    /// heartbeat).
    async fn report(&mut self, outcome: &Outcome) {
        let (oper, bgp, phone_home) = self.observe().await;
        let seen = Observed {
            oper: &oper,
            bgp: bgp.as_ref(),
            phone_home: phone_home.as_ref(),
        };
        if let Some(spec) = self.agent.spec() {
            self.reporter.observed(spec, &seen);
        }
        let rep = self.reporter.switch_report(
            outcome,
            self.agent.desired(),
            &self.agent.db().view().config,
            &seen,
        );
        let Ok(id) = self.agent.cfg.hostname().map(str::to_owned) else {
            return;
        };
        let bound = self.api_bound();
        let _step = self.liveness.step("reporting to the metal API", bound);
        let Some(client) = self.agent.api.as_mut() else {
            return;
        };
        let sent = self.reporter.send(client, &id, &rep).await;
        let (ok, error) = match sent {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e)),
        };
        (self.observer)(&LoopEvent::Reported { ok, error });
    }

    /// Whether the API hears about `port` (a nic of the desired state).
    fn is_reported_port(&self, port: &str) -> bool {
        let Some(desc) = self.agent.desired() else {
            return false;
        };
        let view = self.agent.db().view();
        let naming = self.agent.cfg.interface_naming_schema;
        desc.nics
            .iter()
            .any(|n| kernel_name(&n.name, naming, &view.config) == Some(port))
    }

    /// The longest an API call with its retries may take.
    fn api_bound(&self) -> Duration {
        let cfg = &self.agent.cfg;
        options::retry(cfg)
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
        let Some(client) = self.agent.api.as_mut() else {
            return;
        };
        let ping = ComponentPing {
            identifier: id,
            started_at,
            interval: PING_INTERVAL,
            version: AGENT_VERSION.to_owned(),
        };
        let result = client.ping(&ping).await;
        self.reporter.pinged(result.as_ref().map(|_| ()));
    }

    /// Shut down: `STOPPING=1`, the side jobs, the last status.
    async fn finish(mut self) -> Result<(), Error> {
        self.reporter.stopping("stopping");
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
