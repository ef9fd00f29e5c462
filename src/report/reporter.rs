//! [`Reporter`]: the one owner of what the agent tells the world.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::api;
use super::metrics::{ApiCall, ApiErrorKind, Metrics, PhoneHomeResult};
use super::outcome::{FrrOutcome, Outcome};
use super::status::{
    DesiredState, LldpNeighbor, PhoneHome, PortStatus, ReconcileRecord, Status, StatusFileError,
};
use super::vocab::{DriftSource, LoopPhase, Origin, ReconcileResult, Stage, Trigger};
use crate::api::client::ApiClient;
use crate::api::error::ApiError;
use crate::config::NamingSchema;
use crate::configdb::reply::Undecodable;
use crate::configdb::schema::{DbState, Key};
use crate::frr::bgp::Neighbors;
use crate::kernel::drift::DriftStatus;
use crate::lldp::collector::{PhoneHomeSnapshot, Stats as PhoneHomeStats};
use crate::observed::{PortOperState, SwitchReport};
use crate::spec::{SwitchDesc, SwitchSpec};
use crate::systemd::notify::Notifier;
use crate::time::Timestamp;

/// How the reporter reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReporterOptions {
    /// Where `status.json` is written (`None`: no status file).
    pub status_dir: Option<PathBuf>,
    /// Where the desired state comes from (the status record's `desired`).
    pub origin: Origin,
    /// Which nic field of the desired state holds the kernel name (the
    /// port names of the API report).
    pub naming: NamingSchema,
    /// The installed frr.conf (what a repaired FRR drift names).
    pub frr_config: PathBuf,
}

/// What the switch showed when a report was made: the kernel's port
/// states, the BGP sessions (when they could be read) and phone-home.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Operational state by kernel port name.
    pub oper: &'a BTreeMap<String, PortOperState>,
    pub bgp: Option<&'a Neighbors>,
    pub phone_home: Option<&'a PhoneHomeSnapshot>,
}

/// The reporter: owns the status record, the metrics and the channel to
/// systemd, and turns what the loop hands it — an [`Outcome`], the
/// [`Observed`] states, kernel drift, API calls — into all of them, the
/// logs and the API report. The loop decides; the reporter only tells.
pub struct Reporter {
    opts: ReporterOptions,
    status: Status,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    /// The last reconcile error logged (an error is logged once, not on
    /// every retry of it).
    last_error: Option<String>,
    /// Distinct desired states seen.
    desired_generation: u64,
    /// Kernel drift that is reported, not repaired (for the API report).
    drift_problem: Option<String>,
    /// Owned keys contested by another writer (for the API report).
    contest_problem: Option<String>,
    /// Phone-home counters already turned into metrics.
    phone_home_seen: PhoneHomeStats,
    /// The feed's count of entries that are not UTF-8 already turned into
    /// metrics.
    undecodable_seen: Undecodable,
    status_error_logged: bool,
}

impl Reporter {
    /// A reporter for the process `pid` started at `started`.
    pub fn new(
        opts: ReporterOptions,
        notifier: Notifier,
        pid: u32,
        started: SystemTime,
    ) -> Reporter {
        Reporter {
            opts,
            status: Status::new(pid, started),
            metrics: Arc::new(Metrics::new(started)),
            notifier: Arc::new(notifier),
            last_error: None,
            desired_generation: 0,
            drift_problem: None,
            contest_problem: None,
            phone_home_seen: PhoneHomeStats::default(),
            undecodable_seen: Undecodable::default(),
            status_error_logged: false,
        }
    }

    /// New options (SIGHUP).
    pub fn set_options(&mut self, opts: ReporterOptions) {
        self.opts = opts;
    }

    /// The metrics (also served on `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// systemd's `WatchdogSec` (`None`: no watchdog, or no systemd).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.notifier
            .watchdog_interval()
            .filter(|_| self.notifier.is_enabled())
    }

    /// The channel to systemd, for the watchdog's pinger (which sends
    /// `WATCHDOG=1` from a thread of its own).
    pub fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    // --- the loop's life, for systemd and the status file -----------------

    /// The loop entered `phase`: record and publish it.
    pub fn phase(&mut self, phase: LoopPhase, now: SystemTime) {
        self.status.set_phase(phase);
        self.publish(now);
    }

    /// `READY=1` with the status line.
    pub fn ready(&self, now: SystemTime) {
        if let Err(e) = self.notifier.ready(&self.status.status_line(now)) {
            tracing::warn!(error = %e, "READY=1 not sent");
        }
    }

    /// `RELOADING=1`.
    pub fn reloading(&self, what: &str) {
        let _ = self.notifier.reloading(what);
    }

    /// `STOPPING=1`.
    pub fn stopping(&self, what: &str) {
        let _ = self.notifier.stopping(what);
    }

    /// Write the status file and send `STATUS=`.
    pub fn publish(&mut self, now: SystemTime) {
        if let Some(dir) = self.opts.status_dir.clone() {
            let written = std::fs::create_dir_all(&dir)
                .map_err(|source| StatusFileError::Write {
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

    /// Which SONiC this is (at start and on SIGHUP): in the status record
    /// and the metrics.
    pub fn flavour_detected(&mut self, f: &crate::flavour::Flavour, now: SystemTime) {
        self.status.flavour = Some(f.into());
        self.metrics.set_flavour(f);
        self.publish(now);
    }

    // --- one reconcile ----------------------------------------------------

    /// A reconcile that started at `started_at` ended with `o`: its log
    /// lines, its metrics and the status record.
    pub fn reconciled(&mut self, o: &Outcome, started_at: SystemTime, now: SystemTime) {
        self.log(o);
        self.count(o, now);
        self.metrics
            .undecodable_entries(&o.undecodable.since(&self.undecodable_seen));
        self.undecodable_seen = o.undecodable;
        if o.desired_changed {
            self.desired_generation += 1;
            self.metrics.desired_state_changed();
        }
        let before = self.status.desired.take();
        self.status.desired = Some(DesiredState {
            source: self.opts.origin,
            generation: self.desired_generation,
            digest: o
                .digest
                .clone()
                .or_else(|| before.as_ref().and_then(|d| d.digest.clone())),
            api_generation: o
                .api_generation
                .or_else(|| before.as_ref().and_then(|d| d.api_generation)),
        });
        if let Some(d) = &o.digest {
            self.metrics
                .set_desired_state(d, o.api_generation, o.is_converged());
        }
        if o.frr_repaired {
            self.metrics.drift_repaired(DriftSource::Frr);
            let what = self.opts.frr_config.display().to_string();
            self.status.record_drift(DriftSource::Frr, what, now);
        }
        if o.trigger == Trigger::Configdb && o.is_converged() && o.changes > 0 {
            self.metrics.drift_repaired(DriftSource::Configdb);
            let what = o
                .plan
                .as_ref()
                .and_then(|p| p.iter_changes().next())
                .map(|c| c.key.to_string())
                .unwrap_or_default();
            self.status.record_drift(DriftSource::Configdb, what, now);
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

    /// The metrics of one reconcile: its result and stages (each stage
    /// once), what the applied plan changed, the redis round trips and the
    /// fetch from the API.
    fn count(&self, o: &Outcome, now: SystemTime) {
        let m = &self.metrics;
        m.reconcile_finished(o.result, o.duration, now);
        for (stage, d) in o.stages.to_map() {
            m.observe_stage(stage, d);
        }
        if let Some(r) = &o.apply {
            if let Some(plan) = &o.plan {
                m.record_plan(plan);
            }
            m.redis_round_trips(r.stats.round_trips);
        }
        match o.fetch_failed {
            Some(transient) => m.api_call(ApiCall::GetSwitch, Some(error_kind(transient))),
            None if o.refetched && !o.stages.fetch.is_zero() => {
                m.api_call(ApiCall::GetSwitch, None)
            }
            None => {}
        }
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

    // --- what the switch shows ----------------------------------------------

    /// Port, BGP and phone-home states of the managed ports of `spec` into
    /// the status record and the metrics.
    pub fn observed(&mut self, spec: &SwitchSpec, seen: &Observed<'_>) {
        let mut ports = BTreeMap::new();
        for (name, p) in &spec.ports {
            let lldp = seen
                .phone_home
                .and_then(|s| s.neighbors.get(name))
                .and_then(|n| {
                    Some(LldpNeighbor {
                        machine_id: n.machine_id.clone()?,
                        last_seen: Timestamp(UNIX_EPOCH + n.last_seen),
                    })
                });
            let port = PortStatus {
                oper: seen
                    .oper
                    .get(name)
                    .copied()
                    .unwrap_or(PortOperState::Unknown),
                admin: p.admin,
                lldp,
            };
            ports.insert(name.clone(), port);
        }
        self.metrics
            .set_port_states(ports.iter().map(|(n, p)| (n.as_str(), p.oper)));
        self.status.ports = ports;
        if let Some(n) = seen.bgp {
            self.metrics
                .set_bgp_states(n.states.iter().map(|(p, b)| (p.as_str(), b)));
            self.status.set_bgp(n.states.iter());
        }
        if let Some(s) = seen.phone_home {
            self.phone_home(s);
        }
    }

    /// Phone-home counters since the last look, into metrics and status.
    fn phone_home(&mut self, s: &PhoneHomeSnapshot) {
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
        }
        for _ in 0..delta(s.stats.sends_ok, &mut seen.sends_ok) {
            m.api_call(ApiCall::SendEvents, None);
        }
        let dropped = delta(s.stats.dropped_overflow, &mut seen.dropped_overflow)
            + delta(s.stats.events_rejected, &mut seen.events_rejected);
        m.phone_home(PhoneHomeResult::Dropped, dropped);
        m.set_phone_home_pending(s.pending.len() as u64);
        self.status.phone_home = PhoneHome {
            pending: s.pending.len() as u64,
            sent: s.stats.events_sent,
            last_sent: s.last_success.map(|d| Timestamp(UNIX_EPOCH + d)),
            failures: s.stats.sends_failed,
        };
    }

    /// Kernel drift as the drift tracker judged it: what is reported (and
    /// logged once), what is repaired now. Returns whether a problem is
    /// reported that was not before.
    pub fn kernel_drift(&mut self, drift: &DriftStatus, now: SystemTime) -> bool {
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
        for m in &drift.due {
            tracing::warn!(mismatch = %m, "kernel drift; re-asserting its CONFIG_DB entries");
            self.metrics.drift_repaired(DriftSource::Kernel);
            self.status
                .record_drift(DriftSource::Kernel, m.to_string(), now);
        }
        newly_reported
    }

    /// The owned CONFIG_DB keys contested by another writer now (left
    /// alone, not repaired) and the problem the API hears of them: into the
    /// metrics, the status record and the API report.
    pub fn contested(&mut self, keys: &[Key], problem: Option<String>) {
        self.metrics.set_contested_keys(keys.len());
        self.status.drift.contested = keys.iter().map(ToString::to_string).collect();
        self.contest_problem = problem;
    }

    // --- the metal API ------------------------------------------------------

    /// The report of `outcome` to the metal API: port states for every nic
    /// of `desc`, BGP states where they could be read, and the outcome's
    /// error (or the kernel drift that is not repaired).
    pub fn switch_report(
        &self,
        outcome: &Outcome,
        desc: Option<&SwitchDesc>,
        config: &DbState,
        seen: &Observed<'_>,
    ) -> SwitchReport {
        let mut rep = api::build(outcome, desc, self.opts.naming, config, seen.oper, seen.bgp);
        if rep.error.is_none() {
            rep.error = self
                .drift_problem
                .clone()
                .or_else(|| self.contest_problem.clone());
        }
        rep
    }

    /// Send a report (v1 notify, v2 heartbeat); counts and logs the call.
    /// Returns the error shown to observers.
    pub async fn send(
        &self,
        client: &mut ApiClient,
        id: &str,
        report: &SwitchReport,
    ) -> Result<(), String> {
        let started = Instant::now();
        let result = client.report(id, report).await.map(|_| ());
        let sent = self.api_call(ApiCall::Report, result.as_ref().err());
        if let Err(e) = &result {
            tracing::warn!(error = %e, "cannot report to the metal API");
        }
        tracing::debug!(elapsed = ?started.elapsed(), ok = sent.is_ok(), "reported");
        self.metrics.observe_stage(Stage::Report, started.elapsed());
        sent
    }

    /// Count a registration: accepted, or given up on (a permanent error).
    pub fn registered(&self, accepted: bool) {
        let error = (!accepted).then_some(ApiErrorKind::Permanent);
        self.metrics.api_call(ApiCall::Register, error);
    }

    /// Count a component ping (v2) and log a failed one: a failed ping
    /// counts as transient, the next one comes in five minutes.
    pub fn pinged(&self, result: Result<(), &ApiError>) {
        match result {
            Ok(()) => self.metrics.api_call(ApiCall::Ping, None),
            Err(e) => {
                tracing::warn!(error = %e, "component ping failed");
                self.metrics
                    .api_call(ApiCall::Ping, Some(ApiErrorKind::Transient));
            }
        }
    }

    /// What counts the v2 token's renewals: every attempt is a
    /// `refresh_token` API call (the renewal runs beside the loop).
    pub fn token_renewal_observer(&self) -> crate::api::renew::Observer {
        use crate::api::renew::Renewal;
        let metrics = self.metrics.clone();
        Arc::new(move |r: &Renewal| match r {
            Renewal::Renewed { .. } | Renewal::NotSaved { .. } => {
                metrics.api_call(ApiCall::RefreshToken, None)
            }
            Renewal::CallFailed { transient, .. } => {
                metrics.api_call(ApiCall::RefreshToken, Some(error_kind(*transient)))
            }
        })
    }

    /// Count one call to the metal API that ended with `error`.
    pub fn api_call(&self, call: ApiCall, error: Option<&ApiError>) -> Result<(), String> {
        match error {
            None => {
                self.metrics.api_call(call, None);
                Ok(())
            }
            Some(e) => {
                self.metrics
                    .api_call(call, Some(error_kind(e.is_transient())));
                Err(e.to_string())
            }
        }
    }
}

fn error_kind(transient: bool) -> ApiErrorKind {
    if transient {
        ApiErrorKind::Transient
    } else {
        ApiErrorKind::Permanent
    }
}

#[cfg(test)]
mod tests {
    //! The reporter without a daemon: an outcome in, the status record, the
    //! metrics and the API report out.
    use super::*;
    use crate::config::ApiVersion;
    use crate::configdb::diff::{Cause, Change, ChangeSet, Op};
    use crate::configdb::plan::plan;
    use crate::configdb::redis::ApplyReport;
    use crate::configdb::schema::{Fields, Key};
    use crate::spec::NicDesc;

    fn reporter() -> Reporter {
        Reporter::new(
            ReporterOptions {
                status_dir: None,
                origin: Origin::Api(ApiVersion::V2),
                naming: NamingSchema::Default,
                frr_config: PathBuf::from("/etc/sonic/frr/frr.conf"),
            },
            Notifier::disabled(),
            7,
            UNIX_EPOCH + Duration::from_secs(1_790_000_000),
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
    }

    /// A reconcile that wrote one INTERFACE entry and reloaded FRR.
    fn applied(trigger: Trigger) -> Outcome {
        let change = Change {
            key: Key::interface("Ethernet1"),
            op: Op::Create {
                fields: Fields::from_iter([("vrf_name".to_owned(), "Vrf104009".to_owned())]),
            },
            cause: Cause::Desired,
        };
        let p = plan(ChangeSet {
            changes: vec![change],
        });
        let mut o = Outcome::new(3, trigger);
        o.result = ReconcileResult::Converged;
        o.refetched = true;
        o.desired_changed = true;
        o.changes = p.changes();
        o.phases = p.phases.len();
        o.plan = Some(p);
        let mut report = ApplyReport {
            write_time: Duration::from_millis(2),
            barrier_time: Duration::from_millis(40),
            ..ApplyReport::default()
        };
        report.stats.round_trips = 5;
        o.apply = Some(report);
        o.stages.fetch = Duration::from_millis(10);
        o.stages.configdb_write = Duration::from_millis(2);
        o.stages.barrier_wait = Duration::from_millis(40);
        o.frr = FrrOutcome::Replaced {
            validation: Duration::from_millis(30),
            reload: Some(Duration::from_millis(300)),
        };
        o.duration = Duration::from_millis(400);
        o
    }

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn an_outcome_fills_the_status_record() {
        let mut r = reporter();
        r.reconciled(&applied(Trigger::Timer), at(1), at(2));
        let s = r.status();
        assert_eq!(s.reconciles, 1);
        let rec = s.last_reconcile.as_ref().unwrap();
        assert_eq!(rec.result, ReconcileResult::Converged);
        assert_eq!((rec.changes, rec.phases), (1, 1));
        assert!(rec.frr_changed);
        assert_eq!(rec.started_at, Timestamp(at(1)));
        assert_eq!(
            rec.stages.keys().copied().collect::<Vec<_>>(),
            [Stage::Fetch, Stage::ConfigdbWrite, Stage::BarrierWait]
        );
        let desired = s.desired.as_ref().unwrap();
        assert_eq!((desired.source.as_str(), desired.generation), ("api-v2", 1));
        // A timer reconcile is not a drift repair.
        assert!(s.drift.repairs.is_empty());
        assert_eq!(
            s.last_success,
            Some(Timestamp(at(1) + Duration::from_millis(400)))
        );
    }

    #[test]
    fn a_configdb_repair_is_recorded_as_drift() {
        let mut r = reporter();
        r.reconciled(&applied(Trigger::Configdb), at(1), at(2));
        let d = &r.status().drift;
        assert_eq!(d.repairs.get(&DriftSource::Configdb), Some(&1));
        let last = d.last.as_ref().unwrap();
        assert_eq!(last.what, "INTERFACE|Ethernet1");
        assert_eq!(last.at, Timestamp(at(2)));
        let text = r.metrics().encode();
        assert_eq!(
            sample(
                &text,
                "metal_switchd_drift_repairs_total{source=\"configdb\"}"
            ),
            Some(1.0)
        );
    }

    /// The feed's running count of entries that are not UTF-8 is counted
    /// once: each outcome adds what is new since the last one.
    #[test]
    fn undecodable_entries_are_counted_once_per_reading() {
        use crate::configdb::reply::Database;
        let mut r = reporter();
        let mut o = applied(Trigger::Timer);
        o.undecodable
            .skipped(Database::Asic, b"ASIC_STATE:\xff", None);
        r.reconciled(&o, at(1), at(2));
        r.reconciled(&o, at(3), at(4));
        o.undecodable
            .skipped(Database::Asic, b"ASIC_STATE:\xfe", None);
        r.reconciled(&o, at(5), at(6));
        let text = r.metrics().encode();
        let series = "metal_switchd_undecodable_entries_total{db=\"ASIC_DB\",handling=\"skipped\"}";
        assert_eq!(sample(&text, series), Some(2.0), "{text}");
    }

    #[test]
    fn each_stage_is_observed_once_per_reconcile() {
        let r = &mut reporter();
        r.reconciled(&applied(Trigger::Timer), at(1), at(2));
        let text = r.metrics().encode();
        for stage in ["fetch", "configdb_write", "barrier_wait"] {
            assert_eq!(
                sample(
                    &text,
                    &format!(
                        "metal_switchd_reconcile_stage_duration_seconds_count{{stage=\"{stage}\"}}"
                    )
                ),
                Some(1.0),
                "{stage}:\n{text}"
            );
        }
        assert_eq!(
            sample(&text, "metal_switchd_redis_round_trips_total"),
            Some(5.0)
        );
        assert_eq!(
            sample(
                &text,
                "metal_switchd_plan_operations_total{table=\"INTERFACE\",action=\"create\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "metal_switchd_api_requests_total{call=\"get_switch\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "metal_switchd_desired_state_changes_total"),
            Some(1.0)
        );
    }

    #[test]
    fn a_failed_api_call_counts_one_metal_core_error() {
        let r = reporter();
        let e = ApiError::Timeout {
            call: "report",
            url: "http://api".into(),
            timeout: Duration::from_secs(15),
        };
        assert!(r.api_call(ApiCall::Report, Some(&e)).is_err());
        let text = r.metrics().encode();
        assert_eq!(
            sample(
                &text,
                "metal_core_total_errors{operation=\"reconfiguration-notification\"}"
            ),
            Some(1.0),
            "{text}"
        );
    }

    fn neighbors() -> Neighbors {
        Neighbors {
            states: [(
                "Ethernet1".to_owned(),
                super::super::status::sample::established(),
            )]
            .into_iter()
            .collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn the_api_report_covers_every_nic_and_carries_the_error() {
        let r = reporter();
        let desc = SwitchDesc {
            id: "leaf01".into(),
            nics: ["Ethernet0", "Ethernet1"]
                .map(|n| NicDesc {
                    name: n.into(),
                    ..NicDesc::default()
                })
                .to_vec(),
        };
        let oper: BTreeMap<String, PortOperState> = [("Ethernet1".to_owned(), PortOperState::Up)]
            .into_iter()
            .collect();
        let bgp = neighbors();
        let seen = Observed {
            oper: &oper,
            bgp: Some(&bgp),
            phone_home: None,
        };
        let mut o = applied(Trigger::Timer);
        o.result = ReconcileResult::Error;
        o.error = Some("redis: connection refused".into());
        let rep = r.switch_report(&o, Some(&desc), &DbState::new(), &seen);
        assert_eq!(rep.error.as_deref(), Some("redis: connection refused"));
        assert_eq!(rep.duration, Duration::from_millis(400));
        assert_eq!(rep.port_states["Ethernet0"], PortOperState::Unknown);
        assert_eq!(rep.port_states["Ethernet1"], PortOperState::Up);
        let bgp = rep.bgp_port_states.unwrap();
        assert_eq!(bgp.keys().collect::<Vec<_>>(), ["Ethernet1"]);
    }
}
