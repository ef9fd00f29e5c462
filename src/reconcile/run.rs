//! `metal-switchd run`: register, then reconcile on every trigger, one at a
//! time, and report (feature `agent`).
//!
//! Triggers only wake the loop; [`Agent::reconcile_once`] does the work:
//! - the interval timer (`reconfigure_switch_interval`): fetch and reconcile;
//! - a CONFIG_DB notification that leaves the owned entries different from
//!   the last applied desired state (someone edited or deleted one): repair
//!   at once, without fetching;
//! - SONiC becoming ready again (`config reload`, swss restart);
//! - a change of the BGP state file: report;
//! - `SIGHUP`: re-read the configuration, re-plan;
//! - `SIGTERM` / `SIGINT`: no new write starts; a running FRR reload ends;
//!   exit 0. Stopping between CONFIG_DB phases is safe: the next start waits
//!   for SONiC's confirmations before it writes (see `configdb::confirmed`).
//!
//! Bursts coalesce into one reconcile. Transient failures back off with
//! jitter; an invalid desired state is reported and not applied until it
//! changes; while the API or redis is unreachable the switch keeps its last
//! state and the loop goes on reporting what it can.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::desired::DesiredSource;
use super::outcome::{Outcome, ResultKind, Trigger};
use super::{Agent, AgentOptions, report};
use crate::api::client::ApiClient;
use crate::api::register::{self, RegisterOptions};
use crate::api::{AGENT_VERSION, ComponentPing};
use crate::config::Config;
use crate::error::Error;
use crate::frr::bgp::{BgpSource, StateFileWatch};
use crate::kernel::KernelView;
use crate::kernel::state::PortEvent;
use crate::observed::{PortOperState, SwitchReport};

/// How often the agent announces itself to metal-apiserver (v2), as the Go
/// client does.
pub const PING_INTERVAL: Duration = Duration::from_secs(300);
/// Reconciles in a row started at once because CONFIG_DB changed while the
/// agent applied; then the usual backoff.
const MAX_IMMEDIATE_RETRIES: u32 = 3;
/// Shortest pause between two reports caused by state changes.
pub const REPORT_MIN_GAP: Duration = Duration::from_secs(1);

/// Something the loop did, for observers (status, metrics, tests).
#[derive(Debug, Clone)]
pub enum LoopEvent {
    Registered,
    Reconciled(Box<Outcome>),
    Reported { ok: bool, error: Option<String> },
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

/// Build the daemon's agent from the configuration.
pub fn daemon_agent(cfg: &Config) -> Result<Agent, Error> {
    let id = cfg.hostname()?.to_owned();
    let api = ApiClient::from_config(cfg)?;
    Agent::new(
        cfg.clone(),
        DesiredSource::Api { id },
        Some(api),
        AgentOptions::from_config(cfg),
    )
}

/// Backoff after `failures` consecutive transient failures: 1 s doubling,
/// at most the reconcile interval, with ±20 % jitter.
fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(max.max(Duration::from_secs(1)));
    let jitter = 0.8 + fastrand::f64() * 0.4;
    base.mul_f64(jitter)
}

/// The daemon: registration, then the loop, until SIGTERM / SIGINT.
pub struct Daemon {
    agent: Agent,
    loader: ConfigLoader,
    signals: Signals,
    observer: Observer,
    bgp: Option<BgpSource>,
    bgp_watch: Option<StateFileWatch>,
    started: std::time::SystemTime,
    last_report: Option<SwitchReport>,
    last_report_at: Option<Instant>,
    last_outcome: Option<Outcome>,
    last_error: Option<String>,
    /// The kernel's links and addresses (started with the loop).
    kernel: Option<KernelView>,
}

impl Daemon {
    pub fn new(
        mut agent: Agent,
        loader: ConfigLoader,
        signals: Signals,
        observer: Observer,
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
        Daemon {
            agent,
            loader,
            signals,
            observer,
            bgp,
            bgp_watch,
            started: std::time::SystemTime::now(),
            last_report: None,
            last_report_at: None,
            last_outcome: None,
            last_error: None,
            kernel: None,
        }
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    fn stopping(&self) -> bool {
        *self.signals.stop.borrow()
    }

    /// Register, retrying until the API accepts it (or a stop signal).
    /// `Ok(false)` when stopped first.
    async fn register(&mut self) -> Result<bool, Error> {
        let cfg = self.agent.cfg.clone();
        let opts = RegisterOptions::from_config(&cfg);
        let mut stop = self.signals.stop.clone();
        let Some(kernel) = &self.kernel else {
            return Ok(true);
        };
        let Agent { db, api, .. } = &mut self.agent;
        let Some(client) = api.as_mut() else {
            return Ok(true);
        };
        tokio::select! {
            r = register::register(&cfg, db, kernel, client, &opts) => {
                r?;
                (self.observer)(&LoopEvent::Registered);
                Ok(true)
            }
            _ = stop.wait_for(|s| *s) => Ok(false),
        }
    }

    /// Run until SIGTERM / SIGINT.
    pub async fn run(mut self) -> Result<(), Error> {
        let kernel = KernelView::start().await?;
        let mut port_events = kernel.port_events();
        self.kernel = Some(kernel);
        if !self.register().await? {
            (self.observer)(&LoopEvent::Stopping);
            return Ok(());
        }
        let mut trigger: Option<(Trigger, bool)> = Some((Trigger::Start, true));
        let mut next_tick = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut failures = 0u32;
        let mut immediate = 0u32;
        let mut next_ping = Instant::now();
        let mut report_due = false;
        let mut stop = self.signals.stop.clone();
        loop {
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if now >= next_ping {
                self.ping().await;
                next_ping = now + PING_INTERVAL;
            }
            if now >= next_tick {
                trigger = Some(merge(trigger, (Trigger::Timer, true)));
            }
            if let Some((t, refetch)) = trigger
                && retry_at.is_none_or(|r| now >= r)
            {
                trigger = None;
                let interval = self.agent.cfg.reconfigure_switch_interval.0;
                next_tick = Instant::now() + interval;
                let deadline = Instant::now() + self.agent.cfg.timeout.0;
                let outcome = self.agent.reconcile_once(t, refetch, deadline).await;
                self.log(&outcome);
                if outcome.retry_now && immediate < MAX_IMMEDIATE_RETRIES {
                    // Someone changed CONFIG_DB while the agent applied.
                    immediate += 1;
                    retry_at = None;
                    trigger = Some((Trigger::ConfigDb, false));
                } else if outcome.result == ResultKind::Error && outcome.transient {
                    failures += 1;
                    let wait = backoff(failures, interval);
                    retry_at = Some(Instant::now() + wait);
                    trigger = Some((Trigger::Retry, refetch));
                } else {
                    failures = 0;
                    retry_at = None;
                }
                if !outcome.retry_now {
                    immediate = 0;
                }
                self.report(&outcome).await;
                report_due = false;
                (self.observer)(&LoopEvent::Reconciled(Box::new(outcome.clone())));
                self.last_outcome = Some(outcome);
                continue;
            }
            if report_due
                && self
                    .last_report_at
                    .is_none_or(|t| t.elapsed() >= REPORT_MIN_GAP)
            {
                report_due = false;
                if let Some(o) = self.last_outcome.clone() {
                    self.report(&o).await;
                }
            }
            let wake = [Some(next_tick), retry_at, Some(next_ping)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_tick);
            let report_wake = if report_due {
                self.last_report_at
                    .map(|t| t + REPORT_MIN_GAP)
                    .unwrap_or_else(Instant::now)
            } else {
                wake
            };
            let wake = wake.min(report_wake);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = stop.wait_for(|s| *s) => {}
                Some(()) = self.signals.hup.recv() => {
                    match (self.loader)() {
                        Ok(cfg) => match self.agent.set_config(cfg) {
                            Ok(()) => {
                                tracing::info!("configuration re-read (SIGHUP)");
                                trigger = Some(merge(trigger, (Trigger::Reload, true)));
                                retry_at = None;
                            }
                            Err(e) => tracing::error!(error = %e, "SIGHUP: the new configuration cannot be used; keeping the old one"),
                        },
                        Err(e) => tracing::error!(error = %e, "SIGHUP: the configuration is invalid; keeping the old one"),
                    }
                }
                ev = self.agent.db_mut().next_event() => {
                    if ev.is_none() {
                        return Err(Error::Runtime {
                            what: "following CONFIG_DB",
                            source: std::io::Error::other("the CONFIG_DB feed stopped"),
                        });
                    }
                    let changed = self.agent.db_mut().take_changed();
                    let converged = self.last_outcome.as_ref().is_some_and(Outcome::is_converged);
                    if changed.readiness && self.agent.db().view().readiness.ready() && !converged {
                        trigger = Some(merge(trigger, (Trigger::Sonic, false)));
                    } else if (changed.config || changed.confirmed)
                        && let Some(plan) = self.agent.drifted()
                    {
                        if trigger.is_none() {
                            tracing::info!(
                                changes = plan.changes(),
                                "CONFIG_DB differs from the desired state (changed under the agent); repairing"
                            );
                        }
                        trigger = Some(merge(trigger, (Trigger::ConfigDb, false)));
                    }
                }
                Some(()) = async {
                    match self.bgp_watch.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    report_due = true;
                }
                ev = port_events.recv() => match ev {
                    Ok(PortEvent { port, old, new }) => {
                        if self.is_reported_port(&port) {
                            tracing::info!(%port, ?old, ?new, "port operational state changed");
                            report_due = true;
                        }
                    }
                    // Events were lost: report the current states.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => report_due = true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Err(Error::Runtime {
                            what: "following the kernel's links",
                            source: std::io::Error::other("the kernel view stopped"),
                        });
                    }
                },
            }
        }
        (self.observer)(&LoopEvent::Stopping);
        tracing::info!("stopping");
        Ok(())
    }

    fn log(&mut self, o: &Outcome) {
        match o.result {
            ResultKind::Converged | ResultKind::DryRun => {
                if o.unchanged {
                    tracing::debug!(generation = o.generation, "{}", o.summary());
                } else {
                    tracing::info!(
                        generation = o.generation,
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
            ResultKind::Invalid | ResultKind::Error => {
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

    /// Send the report of `outcome` (v1 notify, v2 heartbeat).
    async fn report(&mut self, outcome: &Outcome) {
        if self.agent.api.is_none() {
            return;
        }
        let started = Instant::now();
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
        let oper: BTreeMap<String, PortOperState> = self
            .kernel
            .as_ref()
            .map(KernelView::oper_states)
            .unwrap_or_default();
        let rep = {
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
        let id = match self.agent.cfg.hostname() {
            Ok(id) => id.to_owned(),
            Err(_) => return,
        };
        let Some(client) = self.agent.api_mut() else {
            return;
        };
        let result = client.report(&id, &rep).await;
        let (ok, error) = match result {
            Ok(_) => (true, None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot report to the metal API");
                (false, Some(e.to_string()))
            }
        };
        tracing::debug!(elapsed = ?started.elapsed(), ok, "reported");
        self.last_report = Some(rep);
        self.last_report_at = Some(Instant::now());
        (self.observer)(&LoopEvent::Reported { ok, error });
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

    /// v2 `ComponentService/Ping` (v1: nothing).
    async fn ping(&mut self) {
        let Ok(id) = self.agent.cfg.hostname().map(str::to_owned) else {
            return;
        };
        let started_at = self
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let Some(client) = self.agent.api_mut() else {
            return;
        };
        let ping = ComponentPing {
            identifier: id,
            started_at,
            interval: PING_INTERVAL,
            version: AGENT_VERSION.to_owned(),
        };
        if let Err(e) = client.ping(&ping).await {
            tracing::warn!(error = %e, "component ping failed");
        }
    }
}

/// Coalesce two triggers: a fetching one wins over a repair.
fn merge(current: Option<(Trigger, bool)>, new: (Trigger, bool)) -> (Trigger, bool) {
    match current {
        Some((t, refetch)) => (t, refetch || new.1),
        None => new,
    }
}
