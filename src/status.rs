//! The daemon's status: one plain-data record the reconcile loop fills, and
//! everything that reads it.
//!
//! The loop owns one [`Status`], updates it as it goes ([`Status::set_phase`],
//! [`Status::record_reconcile`], [`Status::record_drift`], the port, BGP and
//! phone-home fields) and, after each change worth showing, writes it with
//! [`Status::write_atomic`] to `<state_directory>/status.json` (a temporary
//! file renamed over the old one, so a reader never sees half a file). The
//! same value feeds the `STATUS=` line sent to systemd ([`Status::status_line`])
//! and `metal-switchd status` ([`Status::read`], [`Status::text`],
//! [`liveness`]).
//!
//! Pure apart from [`Status::write_atomic`] and [`Status::read`]: no clock
//! (every method that needs the time takes `now`), no async.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::observed::{BgpPortState, BgpState, PortOperState};
use crate::spec::{AdminStatus, SpecDigest};

/// Name of the status file in the state directory.
pub const STATUS_FILE: &str = "status.json";
/// Version of the file's layout; a reader refuses another one.
pub const SCHEMA: u32 = 1;

/// A point in time, written as RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Seconds since the Unix epoch (0 for times before it).
    pub fn unix_seconds(self) -> f64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// A Unix time in whole seconds.
    pub fn from_unix(secs: u64) -> Timestamp {
        Timestamp(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// How long before `now` this was (zero when it lies ahead).
    pub fn age(self, now: SystemTime) -> Duration {
        now.duration_since(self.0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&s)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e}")))
    }
}

/// Durations as fractional seconds.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// A map of durations as fractional seconds.
mod seconds_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::Stage;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<Stage, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let secs: BTreeMap<Stage, f64> = m.iter().map(|(k, v)| (*k, v.as_secs_f64())).collect();
        secs.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Stage, Duration>, D::Error> {
        let m = BTreeMap::<Stage, f64>::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| {
                Duration::try_from_secs_f64(v)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// What the daemon's loop is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoopPhase {
    /// Loading configuration, opening connections.
    Starting,
    /// Registering the switch with the metal API.
    Registering,
    /// Waiting for SONiC (`CONFIG_DB_INITIALIZED`, `PortInitDone`).
    WaitingForSonic,
    /// A reconcile is running.
    Reconciling,
    /// Waiting for the next trigger.
    Idle,
    /// Shutting down.
    Stopping,
}

impl LoopPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            LoopPhase::Starting => "starting",
            LoopPhase::Registering => "registering",
            LoopPhase::WaitingForSonic => "waiting-for-sonic",
            LoopPhase::Reconciling => "reconciling",
            LoopPhase::Idle => "idle",
            LoopPhase::Stopping => "stopping",
        }
    }
}

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReconcileResult {
    /// CONFIG_DB matches the target and SONiC confirmed it; FRR is current.
    Converged,
    /// Written, but SONiC has not confirmed everything yet.
    Pending,
    /// The desired state (or configuration) was rejected; nothing written.
    Invalid,
    /// A runtime error (API, redis, FRR, barrier timeout).
    Error,
    /// `reconfigure_switch = false`: planned and reported, nothing written.
    DryRun,
}

impl ReconcileResult {
    /// Every result, for metric label sets.
    pub const ALL: [ReconcileResult; 5] = [
        ReconcileResult::Converged,
        ReconcileResult::Pending,
        ReconcileResult::Invalid,
        ReconcileResult::Error,
        ReconcileResult::DryRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Converged => "converged",
            ReconcileResult::Pending => "pending",
            ReconcileResult::Invalid => "invalid",
            ReconcileResult::Error => "error",
            ReconcileResult::DryRun => "dry-run",
        }
    }

    /// Counts as a success (resets the failure streak, sets the last success).
    pub fn is_success(self) -> bool {
        matches!(self, ReconcileResult::Converged | ReconcileResult::DryRun)
    }

    /// Counts as a failure (extends the failure streak).
    pub fn is_failure(self) -> bool {
        matches!(self, ReconcileResult::Invalid | ReconcileResult::Error)
    }

    /// Not done: a failure, or written and not confirmed yet.
    pub fn is_failure_or_pending(self) -> bool {
        self.is_failure() || self == ReconcileResult::Pending
    }
}

impl fmt::Display for ReconcileResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The first reconcile after start.
    Startup,
    /// `reconfigure_switch_interval` passed.
    Timer,
    /// A CONFIG_DB keyspace notification (drift or SONiC progress).
    Configdb,
    /// A netlink link event.
    Kernel,
    /// The BGP neighbour state changed.
    BgpState,
    /// SIGHUP.
    Reload,
    /// The installed frr.conf changed or disappeared under the agent.
    Frr,
    /// SONiC became ready again (`config reload`, swss restart).
    Sonic,
    /// A retry after a transient failure.
    Retry,
    /// A one-shot command (`apply --once`).
    Command,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Timer => "timer",
            Trigger::Configdb => "configdb",
            Trigger::Kernel => "kernel",
            Trigger::BgpState => "bgp-state",
            Trigger::Reload => "reload",
            Trigger::Frr => "frr",
            Trigger::Sonic => "sonic",
            Trigger::Retry => "retry",
            Trigger::Command => "command",
        }
    }
}

/// A stage of one reconcile; each has its own duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Get the switch from the metal API.
    Fetch,
    /// Read CONFIG_DB, validate, diff and plan.
    Plan,
    /// The phases' `MULTI/EXEC` writes.
    ConfigdbWrite,
    /// Waiting for SONiC to confirm the phases.
    BarrierWait,
    /// Render, validate, install and reload FRR.
    Frr,
    /// Kernel observation (links, VLAN/VNI map).
    Kernel,
    /// Notify / heartbeat to the metal API.
    Report,
}

impl Stage {
    /// Every stage, in reconcile order.
    pub const ALL: [Stage; 7] = [
        Stage::Fetch,
        Stage::Plan,
        Stage::ConfigdbWrite,
        Stage::BarrierWait,
        Stage::Frr,
        Stage::Kernel,
        Stage::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Plan => "plan",
            Stage::ConfigdbWrite => "configdb_write",
            Stage::BarrierWait => "barrier_wait",
            Stage::Frr => "frr",
            Stage::Kernel => "kernel",
            Stage::Report => "report",
        }
    }
}

/// Where a drift repair was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSource {
    /// Someone changed an owned CONFIG_DB entry; the agent wrote it back.
    Configdb,
    /// The kernel disagreed with the expectations (port state, VLAN/VNI map).
    Kernel,
    /// The installed frr.conf was changed or deleted under the agent; the
    /// agent installed the rendered one again.
    Frr,
}

impl DriftSource {
    pub const ALL: [DriftSource; 3] =
        [DriftSource::Configdb, DriftSource::Kernel, DriftSource::Frr];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftSource::Configdb => "configdb",
            DriftSource::Kernel => "kernel",
            DriftSource::Frr => "frr",
        }
    }
}

/// Where the desired state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredSource {
    /// metal-api v1.
    ApiV1,
    /// metal-apiserver v2.
    ApiV2,
    /// A file given on the command line.
    File,
}

impl DesiredSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredSource::ApiV1 => "api-v1",
            DesiredSource::ApiV2 => "api-v2",
            DesiredSource::File => "file",
        }
    }
}

/// The agent process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub version: String,
    pub revision: String,
    pub pid: u32,
    pub started_at: Timestamp,
}

/// The desired state the loop works towards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredState {
    pub source: DesiredSource,
    /// Counts distinct desired states since start (1 = the first one).
    pub generation: u64,
    /// The digest of the validated desired state
    /// ([`crate::spec::SwitchSpec::digest`]); `None` until one was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<SpecDigest>,
    /// The API's generation of it (v2 `meta.generation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_generation: Option<u64>,
}

/// The last reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRecord {
    pub started_at: Timestamp,
    #[serde(with = "seconds")]
    pub duration: Duration,
    pub result: ReconcileResult,
    /// The error (one message, no secrets) for `invalid` and `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub trigger: Trigger,
    /// Time per stage that ran, in seconds.
    #[serde(with = "seconds_map")]
    pub stages: BTreeMap<Stage, Duration>,
    /// CONFIG_DB keys changed.
    pub changes: u64,
    /// CONFIG_DB phases written.
    pub phases: u64,
    /// Whether a new FRR configuration was installed.
    pub frr_changed: bool,
    /// The digest of the desired state this reconcile worked towards — for
    /// `converged`, the one it converged to ([`crate::spec::SwitchSpec::digest`]);
    /// `None` when it had no valid desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<SpecDigest>,
    /// The API's generation of that desired state (v2), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_generation: Option<u64>,
}

/// Drift the agent repaired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Repairs since start, by source.
    pub repairs: BTreeMap<DriftSource, u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<DriftRepair>,
    /// Owned CONFIG_DB keys contested by another writer: not repaired
    /// while contested (`crate::configdb::contest`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contested: Vec<String>,
}

/// One drift repair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRepair {
    pub at: Timestamp,
    pub source: DriftSource,
    /// What was repaired, e.g. `PORT|Ethernet4 mtu`.
    pub what: String,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortStatus {
    pub oper: PortOperState,
    /// Desired admin state, when the API sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminStatus>,
    /// The machine last seen on this port over LLDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lldp: Option<LldpNeighbor>,
}

/// A machine seen over LLDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LldpNeighbor {
    pub machine_id: String,
    pub last_seen: Timestamp,
}

/// The BGP session on one port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgpSession {
    pub state: BgpState,
    pub vrf: String,
    /// Peer's hostname; empty when it never came up.
    pub neighbor: String,
    pub peer_group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub established_since: Option<Timestamp>,
    pub accepted_prefixes: u64,
    pub sent_prefixes: u64,
}

impl From<&BgpPortState> for BgpSession {
    fn from(b: &BgpPortState) -> Self {
        BgpSession {
            state: b.state,
            vrf: b.vrf_name.clone(),
            neighbor: b.neighbor.clone(),
            peer_group: b.peer_group.clone(),
            established_since: b.established_since.map(Timestamp::from_unix),
            accepted_prefixes: b.accepted_prefixes,
            sent_prefixes: b.sent_prefixes,
        }
    }
}

/// Phone-home of machines seen over LLDP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhoneHome {
    /// Events waiting to be sent.
    pub pending: u64,
    /// Events sent since start.
    pub sent: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<Timestamp>,
    /// Failed sends since start.
    pub failures: u64,
}

/// The detected SONiC flavour as the status shows it
/// ([`crate::flavour::Flavour`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlavourStatus {
    /// `community 202411`, `dell-enterprise 4.5.1`, `other`.
    pub name: String,
    /// What was detected, as `check-config` shows it (name, value).
    pub facts: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why the agent does not manage FRR here (the setting to change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl From<&crate::flavour::Flavour> for FlavourStatus {
    fn from(f: &crate::flavour::Flavour) -> FlavourStatus {
        FlavourStatus {
            name: f.name(),
            facts: f
                .describe()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            warnings: f.warnings.clone(),
            refused: f.refusal(),
        }
    }
}

/// Everything `metal-switchd status` shows; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// [`SCHEMA`].
    pub schema: u32,
    pub agent: Agent,
    /// When the daemon last wrote this record.
    pub updated_at: Timestamp,
    pub phase: LoopPhase,
    /// Reconciles since start.
    pub reconciles: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<DesiredState>,
    /// The SONiC flavour detected at start (and on SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavour: Option<FlavourStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<ReconcileRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    pub consecutive_failures: u64,
    pub drift: Drift,
    /// Per port (kernel name).
    pub ports: BTreeMap<String, PortStatus>,
    /// Per port (BGP unnumbered: the session's interface).
    pub bgp: BTreeMap<String, BgpSession>,
    pub phone_home: PhoneHome,
}

/// Errors reading or writing the status file.
#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    #[error("cannot write the status file in {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} does not exist: metal-switchd is not running (or runs with another state_directory)"
    )]
    Missing { path: PathBuf },
    /// Not a regular file (a FIFO is refused without waiting), too large,
    /// not UTF-8, unreadable.
    #[error(transparent)]
    Unreadable(crate::files::FileError),
    #[error("{path} is not a status file of this version: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Status {
    /// A fresh record for this build, process `pid` started at `started_at`.
    pub fn new(pid: u32, started_at: SystemTime) -> Status {
        Status {
            schema: SCHEMA,
            agent: Agent {
                version: crate::VERSION.to_owned(),
                revision: crate::REVISION.to_owned(),
                pid,
                started_at: Timestamp(started_at),
            },
            updated_at: Timestamp(started_at),
            phase: LoopPhase::Starting,
            reconciles: 0,
            desired: None,
            flavour: None,
            last_reconcile: None,
            last_success: None,
            consecutive_failures: 0,
            drift: Drift::default(),
            ports: BTreeMap::new(),
            bgp: BTreeMap::new(),
            phone_home: PhoneHome::default(),
        }
    }

    pub fn set_phase(&mut self, phase: LoopPhase) {
        self.phase = phase;
    }

    /// Record a finished reconcile: the counter, the failure streak and the
    /// last success follow from its result.
    pub fn record_reconcile(&mut self, rec: ReconcileRecord) {
        self.reconciles += 1;
        if rec.result.is_success() {
            self.consecutive_failures = 0;
            self.last_success = Some(Timestamp(rec.started_at.0 + rec.duration));
        } else if rec.result.is_failure() {
            self.consecutive_failures += 1;
        }
        self.last_reconcile = Some(rec);
    }

    /// Record one drift repair.
    pub fn record_drift(&mut self, source: DriftSource, what: impl Into<String>, now: SystemTime) {
        *self.drift.repairs.entry(source).or_insert(0) += 1;
        self.drift.last = Some(DriftRepair {
            at: Timestamp(now),
            source,
            what: what.into(),
        });
    }

    /// Replace the BGP sessions with the observed ones.
    pub fn set_bgp<'a>(
        &mut self,
        sessions: impl IntoIterator<Item = (&'a String, &'a BgpPortState)>,
    ) {
        self.bgp = sessions
            .into_iter()
            .map(|(port, b)| (port.clone(), BgpSession::from(b)))
            .collect();
    }

    /// The path of the status file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STATUS_FILE)
    }

    /// Set `updated_at` to `now` and write the record to `dir`/[`STATUS_FILE`]
    /// atomically: a temporary file in the same directory, created with
    /// `O_EXCL|O_NOFOLLOW` under an unpredictable name
    /// ([`crate::files::replace_file`]), flushed, then renamed over the old
    /// one. Mode 0644: it holds no secrets, and operators read it without
    /// root.
    #[cfg(feature = "agent")]
    pub fn write_atomic(
        &mut self,
        dir: &Path,
        now: SystemTime,
    ) -> Result<PathBuf, StatusFileError> {
        self.updated_at = Timestamp(now);
        let err = |source| StatusFileError::Write {
            dir: dir.to_owned(),
            source,
        };
        let mut body = serde_json::to_vec_pretty(self)
            .map_err(|e| err(std::io::Error::other(e.to_string())))?;
        body.push(b'\n');
        crate::files::replace_file(dir, STATUS_FILE, &body, None, 0o644).map_err(err)?;
        Ok(Status::path(dir))
    }

    /// Read the status file in `dir` (bounded, and refused without
    /// blocking unless it is a regular file: [`crate::files`]).
    pub fn read(dir: &Path) -> Result<Status, StatusFileError> {
        use crate::files::{FileKind, FileProblem, STATUS_MAX_BYTES};
        let path = Status::path(dir);
        let text = crate::files::read_text(FileKind::StatusFile, &path, STATUS_MAX_BYTES).map_err(
            |e| match e.problem {
                FileProblem::Missing => StatusFileError::Missing { path: path.clone() },
                _ => StatusFileError::Unreadable(e),
            },
        )?;
        let status: Status = serde_json::from_str(&text).map_err(|e| StatusFileError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if status.schema != SCHEMA {
            return Err(StatusFileError::Parse {
                path,
                message: format!("schema {} (this build reads {SCHEMA})", status.schema),
            });
        }
        Ok(status)
    }

    /// The one-line summary for systemd's `STATUS=` (shown by `systemctl status`).
    pub fn status_line(&self, now: SystemTime) -> String {
        let mut s = String::from(self.phase.as_str());
        if let Some(r) = &self.last_reconcile {
            let _ = write!(
                s,
                "; last reconcile #{} {} {} ago in {}",
                self.reconciles,
                r.result,
                short_duration(r.started_at.age(now)),
                short_duration(r.duration)
            );
            if r.changes > 0 {
                let _ = write!(s, ", {} changes", r.changes);
            }
            if let Some(e) = &r.error {
                let first = e.lines().next().unwrap_or_default();
                let _ = write!(s, ": {}", truncate(&shown(first), 120));
            }
        }
        if self.consecutive_failures > 1 {
            let _ = write!(s, "; {} failures in a row", self.consecutive_failures);
        }
        if let Some(d) = &self.desired {
            let _ = write!(s, "; generation {}", d.generation);
            if let Some(digest) = &d.digest {
                let _ = write!(s, " = {}", truncate(&shown(&digest.0), 16));
            }
            if let Some(g) = d.api_generation {
                let _ = write!(s, " (API {g})");
            }
        }
        let (up, total) = self.ports_up();
        if total > 0 {
            let _ = write!(s, "; ports {up}/{total} up");
        }
        if !self.bgp.is_empty() {
            let est = self
                .bgp
                .values()
                .filter(|b| b.state == BgpState::Established)
                .count();
            let _ = write!(s, "; BGP {est}/{} established", self.bgp.len());
        }
        s
    }

    fn ports_up(&self) -> (usize, usize) {
        let up = self
            .ports
            .values()
            .filter(|p| p.oper == PortOperState::Up)
            .count();
        (up, self.ports.len())
    }

    /// The human summary of `metal-switchd status`.
    pub fn text(&self, now: SystemTime) -> String {
        let mut o = String::new();
        let a = &self.agent;
        let _ = writeln!(
            o,
            "metal-switchd {} ({}), pid {}, up {} (since {})",
            a.version,
            a.revision,
            a.pid,
            short_duration(a.started_at.age(now)),
            a.started_at
        );
        let _ = writeln!(
            o,
            "phase:            {} (updated {} ago)",
            self.phase.as_str(),
            short_duration(self.updated_at.age(now))
        );
        let _ = writeln!(
            o,
            "reconciles:       {} ({} failed in a row)",
            self.reconciles, self.consecutive_failures
        );
        match &self.desired {
            Some(d) => {
                let _ = writeln!(
                    o,
                    "desired state:    {} generation {}{}",
                    d.source.as_str(),
                    d.generation,
                    identity(d.digest.as_ref(), d.api_generation)
                );
            }
            None => o.push_str("desired state:    none yet\n"),
        }
        if let Some(f) = &self.flavour {
            let fact = |k: &str| {
                shown(
                    f.facts
                        .iter()
                        .find(|(n, _)| n == k)
                        .map_or("unknown", |(_, v)| v.as_str()),
                )
            };
            let _ = writeln!(
                o,
                "SONiC flavour:    {} (Debian {}, {}, FRR {}, fpm module {})",
                shown(&f.name),
                fact("debian"),
                fact("docker_routing_config_mode"),
                fact("frr_version"),
                fact("fpm_module")
            );
            let _ = writeln!(o, "  frr.conf adds:  {}", fact("frr_lines"));
            for w in &f.warnings {
                let _ = writeln!(o, "  warning:        {}", shown(w));
            }
            if let Some(r) = &f.refused {
                let _ = writeln!(o, "  REFUSED:        {}", shown(r));
            }
        }
        match &self.last_reconcile {
            Some(r) => {
                let _ = writeln!(
                    o,
                    "last reconcile:   {} at {} ({} ago), took {}, trigger {}",
                    r.result,
                    r.started_at,
                    short_duration(r.started_at.age(now)),
                    short_duration(r.duration),
                    r.trigger.as_str()
                );
                if r.digest.is_some() {
                    let to = if r.result == ReconcileResult::Converged {
                        "converged to"
                    } else {
                        "towards"
                    };
                    let _ = writeln!(
                        o,
                        "  {to:<16}{}",
                        identity(r.digest.as_ref(), r.api_generation).trim_start_matches(", ")
                    );
                }
                if let Some(e) = &r.error {
                    for (i, line) in e.lines().enumerate() {
                        let label = if i == 0 { "  error:" } else { "" };
                        let _ = writeln!(o, "{label:<18}{}", shown(line));
                    }
                }
                if !r.stages.is_empty() {
                    let stages: Vec<String> = r
                        .stages
                        .iter()
                        .map(|(k, v)| format!("{} {}", k.as_str(), short_duration(*v)))
                        .collect();
                    let _ = writeln!(o, "  stages:         {}", stages.join(", "));
                }
                let _ = writeln!(
                    o,
                    "  changes:        {} CONFIG_DB keys in {} phases; FRR {}",
                    r.changes,
                    r.phases,
                    if r.frr_changed {
                        "reloaded"
                    } else {
                        "unchanged"
                    }
                );
            }
            None => o.push_str("last reconcile:   none yet\n"),
        }
        match &self.last_success {
            Some(t) => {
                let _ = writeln!(
                    o,
                    "last success:     {t} ({} ago)",
                    short_duration(t.age(now))
                );
            }
            None => o.push_str("last success:     never\n"),
        }
        let repairs: Vec<String> = DriftSource::ALL
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.as_str(),
                    self.drift.repairs.get(s).copied().unwrap_or(0)
                )
            })
            .collect();
        let _ = write!(o, "drift repairs:    {}", repairs.join(", "));
        if let Some(l) = &self.drift.last {
            let _ = write!(
                o,
                " (last: {} {} at {})",
                l.source.as_str(),
                shown(&l.what),
                l.at
            );
        }
        o.push('\n');
        if !self.drift.contested.is_empty() {
            let _ = writeln!(
                o,
                "contested:        {} (by another writer; not repaired)",
                self.drift.contested.join(", ")
            );
        }
        let (up, total) = self.ports_up();
        let lldp = self.ports.values().filter(|p| p.lldp.is_some()).count();
        let _ = writeln!(
            o,
            "ports:            {total} ({up} up, {} not up); {lldp} with a machine seen over LLDP",
            total - up
        );
        for (name, p) in self
            .ports
            .iter()
            .filter(|(_, p)| p.oper != PortOperState::Up)
        {
            let admin = p
                .admin
                .map(|a| format!(", admin {}", a.as_str()))
                .unwrap_or_default();
            let _ = writeln!(o, "  {:<14}{:?}{admin}", shown(name), p.oper);
        }
        let mut by_state: BTreeMap<BgpState, usize> = BTreeMap::new();
        for b in self.bgp.values() {
            *by_state.entry(b.state).or_insert(0) += 1;
        }
        let states: Vec<String> = by_state
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "BGP sessions:     {}{}",
            self.bgp.len(),
            if states.is_empty() {
                String::new()
            } else {
                format!(" ({})", states.join(", "))
            }
        );
        for (port, b) in self
            .bgp
            .iter()
            .filter(|(_, b)| b.state != BgpState::Established)
        {
            let _ = writeln!(
                o,
                "  {:<14}{:<12}vrf {} peer-group {} neighbor {}",
                shown(port),
                b.state.as_str(),
                shown(&b.vrf),
                shown(&b.peer_group),
                if b.neighbor.is_empty() {
                    "-".to_owned()
                } else {
                    shown(&b.neighbor)
                }
            );
        }
        let ph = &self.phone_home;
        let _ = writeln!(
            o,
            "phone-home:       {} pending, {} sent, {} failed{}",
            ph.pending,
            ph.sent,
            ph.failures,
            ph.last_sent
                .map(|t| format!(", last sent {t}"))
                .unwrap_or_default()
        );
        o
    }
}

/// Whether the daemon that wrote a status record is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// The writer runs and wrote within the allowed age.
    Running,
    /// The writer runs, but has not written for `age` (more than allowed):
    /// the loop may be stuck.
    Stale { age: Duration },
    /// The writer's process is gone.
    NotRunning,
}

/// Judge a status record: `process_alive` tells whether the process of
/// `status.agent.pid` still runs, `max_age` how old the record may be.
pub fn liveness(
    status: &Status,
    now: SystemTime,
    max_age: Duration,
    process_alive: bool,
) -> Liveness {
    if !process_alive {
        return Liveness::NotRunning;
    }
    let age = status.updated_at.age(now);
    if age > max_age {
        Liveness::Stale { age }
    } else {
        Liveness::Running
    }
}

/// Exit code of `metal-switchd status`: the daemon runs and its status is current.
pub const EXIT_RUNNING: u8 = 0;
/// Exit code of `metal-switchd status`: the daemon is not running (no status
/// file, or the process that wrote it is gone) — LSB's "program is not running".
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code of `metal-switchd status`: the daemon's process exists but has
/// not updated its status in time (the loop may be stuck), or the file cannot
/// be read — LSB's "status is unknown".
pub const EXIT_STALE: u8 = 4;

impl Liveness {
    /// The exit code of `metal-switchd status` for this judgement.
    pub fn exit_code(&self) -> u8 {
        match self {
            Liveness::Running => EXIT_RUNNING,
            Liveness::NotRunning => EXIT_NOT_RUNNING,
            Liveness::Stale { .. } => EXIT_STALE,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Liveness::Running => "running",
            Liveness::NotRunning => "not-running",
            Liveness::Stale { .. } => "stale",
        }
    }
}

/// Whether process `pid` runs and is a metal-switchd (its `comm` in
/// `/proc`), so that a pid reused by another program does not count.
pub fn process_is_agent(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim_end() == "metal-switchd")
        .unwrap_or(false)
}

/// How old a status record may be before `status` calls it stale: three
/// reconcile intervals plus the time limit of one reconcile, at least two
/// minutes (a reconcile that waits on barriers or retries the API is slow,
/// not stuck).
pub fn max_age(reconcile_interval: Duration, reconcile_timeout: Duration) -> Duration {
    (reconcile_interval * 3 + reconcile_timeout).max(Duration::from_secs(120))
}

/// `1.2s`, `340ms`, `2h3m`: short and rounded, for people.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{:.0}µs", d.as_secs_f64() * 1e6)
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if d.as_secs() < 3600 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else if d.as_secs() < 86400 {
        format!("{}h{}m", d.as_secs() / 3600, d.as_secs() % 3600 / 60)
    } else {
        format!("{}d{}h", d.as_secs() / 86400, d.as_secs() % 86400 / 3600)
    }
}

/// `, digest D (API generation G)` of a desired state, or nothing.
fn identity(digest: Option<&SpecDigest>, api_generation: Option<u64>) -> String {
    let mut s = String::new();
    if let Some(d) = digest {
        let _ = write!(s, ", digest {}", shown(&d.0));
    }
    if let Some(g) = api_generation {
        let _ = write!(s, " (API generation {g})");
    }
    s
}

/// Text of the status file as `status` shows it: the file may hold what
/// came from outside (API errors, CONFIG_DB names, a BGP peer's host name),
/// and anyone who can write it could put anything there. Control and
/// format characters escaped, cut at `MESSAGE_CHARS` per value
/// ([`crate::spec::names::escaped`]).
fn shown(s: &str) -> String {
    crate::spec::names::escaped(s, crate::spec::names::MESSAGE_CHARS)
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `date -u -d @1790000000` = 2026-09-21T14:13:20Z.
    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
    }

    fn record(result: ReconcileResult, at: u64) -> ReconcileRecord {
        ReconcileRecord {
            started_at: Timestamp(t(at)),
            duration: Duration::from_millis(1500),
            result,
            error: (result == ReconcileResult::Error)
                .then(|| "redis: connection refused\nsecond line".to_owned()),
            trigger: Trigger::Timer,
            stages: [
                (Stage::Fetch, Duration::from_millis(12)),
                (Stage::BarrierWait, Duration::from_millis(800)),
            ]
            .into_iter()
            .collect(),
            changes: 3,
            phases: 2,
            frr_changed: true,
            digest: Some(SpecDigest("0123456789abcdef".into())),
            api_generation: Some(12),
        }
    }

    fn sample() -> Status {
        let mut s = Status::new(4242, t(0));
        s.set_phase(LoopPhase::Idle);
        s.desired = Some(DesiredState {
            source: DesiredSource::ApiV1,
            generation: 7,
            digest: Some(SpecDigest("0123456789abcdef".into())),
            api_generation: Some(12),
        });
        s.record_reconcile(record(ReconcileResult::Converged, 10));
        s.record_drift(DriftSource::Configdb, "PORT|Ethernet4 mtu", t(20));
        s.ports.insert(
            "Ethernet0".into(),
            PortStatus {
                oper: PortOperState::Up,
                admin: Some(AdminStatus::Up),
                lldp: Some(LldpNeighbor {
                    machine_id: "00000000-0000-0000-0000-000000000001".into(),
                    last_seen: Timestamp(t(25)),
                }),
            },
        );
        s.ports.insert(
            "Ethernet4".into(),
            PortStatus {
                oper: PortOperState::Down,
                admin: None,
                lldp: None,
            },
        );
        let bgp: BTreeMap<String, BgpPortState> = [
            (
                "Ethernet0".to_owned(),
                BgpPortState {
                    neighbor: "machine-1".into(),
                    peer_group: "MACHINE".into(),
                    vrf_name: "Vrf104009".into(),
                    state: BgpState::Established,
                    established_since: Some(1_790_000_005),
                    sent_prefixes: 4,
                    accepted_prefixes: 2,
                },
            ),
            (
                "Ethernet120".to_owned(),
                BgpPortState {
                    neighbor: String::new(),
                    peer_group: "FABRIC".into(),
                    vrf_name: "default".into(),
                    state: BgpState::Active,
                    established_since: None,
                    sent_prefixes: 0,
                    accepted_prefixes: 0,
                },
            ),
        ]
        .into_iter()
        .collect();
        s.set_bgp(&bgp);
        s.phone_home = PhoneHome {
            pending: 1,
            sent: 5,
            last_sent: Some(Timestamp(t(26))),
            failures: 0,
        };
        s
    }

    #[test]
    fn results_drive_the_counters() {
        let mut s = Status::new(1, t(0));
        s.record_reconcile(record(ReconcileResult::Error, 1));
        s.record_reconcile(record(ReconcileResult::Invalid, 2));
        assert_eq!((s.reconciles, s.consecutive_failures), (2, 2));
        assert_eq!(s.last_success, None);
        // pending neither ends nor extends a failure streak
        s.record_reconcile(record(ReconcileResult::Pending, 3));
        assert_eq!(s.consecutive_failures, 2);
        s.record_reconcile(record(ReconcileResult::Converged, 4));
        assert_eq!(s.consecutive_failures, 0);
        // the success time is the reconcile's end
        assert_eq!(
            s.last_success,
            Some(Timestamp(t(4) + Duration::from_millis(1500)))
        );
        s.record_reconcile(record(ReconcileResult::DryRun, 9));
        assert_eq!(s.reconciles, 5);
        assert_eq!(
            s.last_success,
            Some(Timestamp(t(9) + Duration::from_millis(1500)))
        );
    }

    #[test]
    fn the_file_round_trips_and_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sample();
        let path = s.write_atomic(dir.path(), t(30)).unwrap();
        assert_eq!(path, dir.path().join("status.json"));
        assert_eq!(s.updated_at, Timestamp(t(30)));
        let back = Status::read(dir.path()).unwrap();
        assert_eq!(back, s);
        // no temporary file left behind
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["status.json"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // an open reader keeps the old content; a new read gets the new one
        let old = std::fs::File::open(&path).unwrap();
        s.reconciles = 99;
        s.write_atomic(dir.path(), t(31)).unwrap();
        let old: Status = serde_json::from_reader(old).unwrap();
        assert_eq!(old.reconciles, 1);
        assert_eq!(Status::read(dir.path()).unwrap().reconciles, 99);
    }

    #[test]
    fn the_json_is_plain_data() {
        let s = sample();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["agent"]["pid"], 4242);
        assert_eq!(v["agent"]["started_at"], "2026-09-21T14:13:20.000Z");
        assert_eq!(v["phase"], "idle");
        assert_eq!(v["desired"]["source"], "api-v1");
        let r = &v["last_reconcile"];
        assert_eq!(r["result"], "converged");
        assert_eq!(r["trigger"], "timer");
        assert_eq!(r["duration"], 1.5);
        assert_eq!(r["stages"]["fetch"], 0.012);
        assert_eq!(r["stages"]["barrier_wait"], 0.8);
        assert_eq!(v["drift"]["repairs"]["configdb"], 1);
        assert_eq!(v["drift"]["last"]["what"], "PORT|Ethernet4 mtu");
        assert_eq!(v["ports"]["Ethernet0"]["oper"], "up");
        assert_eq!(v["ports"]["Ethernet0"]["admin"], "up");
        assert_eq!(
            v["ports"]["Ethernet0"]["lldp"]["machine_id"],
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(v["bgp"]["Ethernet0"]["state"], "Established");
        assert_eq!(
            v["bgp"]["Ethernet0"]["established_since"],
            "2026-09-21T14:13:25.000Z"
        );
        assert_eq!(v["bgp"]["Ethernet120"]["peer_group"], "FABRIC");
        assert_eq!(v["phone_home"]["pending"], 1);
    }

    #[test]
    fn reading_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let e = Status::read(dir.path()).unwrap_err();
        assert!(matches!(e, StatusFileError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("not running"), "{e}");
        std::fs::write(dir.path().join(STATUS_FILE), "{\"schema\": 1}").unwrap();
        let e = Status::read(dir.path()).unwrap_err();
        assert!(matches!(e, StatusFileError::Parse { .. }), "{e}");
        let mut s = sample();
        s.schema = 2;
        std::fs::write(
            dir.path().join(STATUS_FILE),
            serde_json::to_string(&s).unwrap(),
        )
        .unwrap();
        let e = Status::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("schema 2"), "{e}");
    }

    #[test]
    fn status_line_is_one_short_line() {
        let mut s = sample();
        let line = s.status_line(t(40));
        assert_eq!(
            line,
            "idle; last reconcile #1 converged 30.0s ago in 1.5s, 3 changes; generation 7 = \
             0123456789abcdef (API 12); ports 1/2 up; BGP 1/2 established"
        );
        s.record_reconcile(record(ReconcileResult::Error, 41));
        s.record_reconcile(record(ReconcileResult::Error, 50));
        s.set_phase(LoopPhase::Reconciling);
        let line = s.status_line(t(52));
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(
                "reconciling; last reconcile #3 error 2.0s ago in 1.5s, 3 changes: \
                 redis: connection refused; 2 failures in a row"
            ),
            "{line}"
        );
        let mut long = record(ReconcileResult::Error, 60);
        long.error = Some("x".repeat(500));
        s.record_reconcile(long);
        assert!(s.status_line(t(61)).chars().count() < 300);
    }

    /// Issue 20: the detected flavour is in the status record and its text.
    #[test]
    fn the_flavour_is_shown() {
        use crate::flavour::Profile;
        let mut s = Status::new(4242, t(0));
        s.flavour = Some((&Profile::Community202411.flavour()).into());
        let text = s.text(t(1));
        assert!(
            text.contains(
                "SONiC flavour:    community 202411 (Debian 12 (bookworm), glibc 2.36, \
                 split-unified, FRR 10.0.1, fpm module dplane_fpm_sonic)\n  frr.conf adds:  \
                 no zebra nexthop kernel enable; fpm address 127.0.0.1; no fpm use-next-hop-groups\n"
            ),
            "{text}"
        );
        let json = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let mut refused = Profile::Community202411.flavour();
        refused.routing_config_mode = crate::flavour::RoutingConfigMode::Unified;
        s.flavour = Some((&refused).into());
        assert!(
            s.text(t(1))
                .contains("  REFUSED:        FRR is not managed"),
            "{}",
            s.text(t(1))
        );
    }

    #[test]
    fn text_summary_shows_what_needs_attention() {
        let s = sample();
        let text = s.text(t(40));
        for want in [
            "metal-switchd 0.1.0",
            "pid 4242, up 40.0s",
            "phase:            idle",
            "desired state:    api-v1 generation 7, digest 0123456789abcdef (API generation 12)\n",
            "  converged to    digest 0123456789abcdef (API generation 12)\n",
            "last reconcile:   converged at 2026-09-21T14:13:30.000Z (30.0s ago), took 1.5s, trigger timer",
            "stages:         fetch 12ms, barrier_wait 800ms",
            "changes:        3 CONFIG_DB keys in 2 phases; FRR reloaded",
            "drift repairs:    configdb 1, kernel 0, frr 0 (last: configdb PORT|Ethernet4 mtu",
            "ports:            2 (1 up, 1 not up); 1 with a machine seen over LLDP",
            "  Ethernet4     Down",
            "BGP sessions:     2 (1 Active, 1 Established)",
            "  Ethernet120   Active      vrf default peer-group FABRIC neighbor -",
            "phone-home:       1 pending, 5 sent, 0 failed, last sent",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Ethernet0     Up"), "{text}");
    }

    /// Issue 22 item 5: what came from outside is shown escaped and cut —
    /// an API error with `ESC[2J` and a forged line, a BGP peer's host name
    /// with U+202E, a CONFIG_DB name with a newline.
    #[test]
    fn the_text_escapes_what_came_from_outside() {
        let mut s = sample();
        let mut r = record(ReconcileResult::Error, 30);
        r.error = Some(format!(
            "get switch: answered HTTP 400: \u{1b}[2J{}\nfirst\u{202e}line",
            "x".repeat(10_000)
        ));
        s.record_reconcile(r);
        s.record_drift(DriftSource::Configdb, "PORT|Eth\u{1b}]0;x\u{7}", t(31));
        if let Some(b) = s.bgp.values_mut().next() {
            b.neighbor = "evil\u{202e}txt.exe\u{1b}[31m".into();
            b.state = BgpState::Active;
        }
        let text = s.text(t(40));
        let line = s.status_line(t(40));
        for shown in [&text, &line] {
            assert!(!shown.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{shown}");
        }
        assert!(text.contains("evil\\u{202e}txt.exe\\u{1b}[31m"), "{text}");
        assert!(text.contains("\\u{1b}[2Jxxx"), "{text}");
        assert!(text.len() < 4_000, "{} bytes", text.len());
    }

    #[test]
    fn liveness_and_age() {
        let mut s = sample();
        s.updated_at = Timestamp(t(100));
        let max = max_age(Duration::from_secs(10), Duration::from_secs(15));
        assert_eq!(max, Duration::from_secs(120));
        assert_eq!(
            max_age(Duration::from_secs(60), Duration::from_secs(15)),
            Duration::from_secs(195)
        );
        assert_eq!(liveness(&s, t(150), max, true), Liveness::Running);
        assert_eq!(
            liveness(&s, t(300), max, true),
            Liveness::Stale {
                age: Duration::from_secs(200)
            }
        );
        assert_eq!(liveness(&s, t(150), max, false), Liveness::NotRunning);
    }

    #[test]
    fn short_durations() {
        assert_eq!(short_duration(Duration::from_micros(300)), "300µs");
        assert_eq!(short_duration(Duration::from_millis(41)), "41ms");
        assert_eq!(short_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(short_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(short_duration(Duration::from_secs(7380)), "2h3m");
        assert_eq!(short_duration(Duration::from_secs(90000)), "1d1h");
    }
}
