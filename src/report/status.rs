//! The daemon's status: one plain-data record the reporter fills, and its
//! file.
//!
//! The [`Reporter`](super::Reporter) owns one [`Status`], updates it as the
//! loop goes ([`Status::set_phase`], [`Status::record_reconcile`],
//! [`Status::record_drift`], the port, BGP and phone-home fields) and, after
//! each change worth showing, writes it with [`Status::write_atomic`] to
//! `<state_directory>/status.json` (a temporary file renamed over the old
//! one, so a reader never sees half a file). The same value feeds the
//! `STATUS=` line sent to systemd and `metal-switchd status` ([`Status::read`];
//! the text in [`super::text`], the judgement in [`super::liveness`]).
//!
//! Pure apart from [`Status::write_atomic`] and [`Status::read`]: no clock
//! (every method that needs the time takes `now`), no async.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::vocab::{DriftSource, LoopPhase, Origin, ReconcileResult, Stage, Trigger};
use crate::observed::{BgpPortState, BgpState, PortOperState};
use crate::spec::{AdminStatus, SpecDigest};
use crate::time::Timestamp;

/// Name of the status file in the state directory.
pub const STATUS_FILE: &str = "status.json";
/// Version of the file's layout; a reader refuses another one.
pub const SCHEMA: u32 = 1;

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
/// The agent process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub version: String,
    pub revision: String,
    pub pid: u32,
    pub started_at: Timestamp,
}

/// The desired state the loop works towards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredState {
    pub source: Origin,
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
    pub agent: Process,
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
            agent: Process {
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
}

#[cfg(test)]
pub(crate) mod sample {
    //! A status record of a running daemon, for the tests of the wing.
    use std::time::UNIX_EPOCH;

    use super::*;

    /// `date -u -d @1790000000` = 2026-09-21T14:13:20Z.
    pub fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
    }

    pub fn record(result: ReconcileResult, at: u64) -> ReconcileRecord {
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

    /// An established session with a machine in Vrf104009.
    pub fn established() -> BgpPortState {
        BgpPortState {
            neighbor: "machine-1".into(),
            peer_group: "MACHINE".into(),
            vrf_name: "Vrf104009".into(),
            state: BgpState::Established,
            established_since: Some(1_790_000_005),
            sent_prefixes: 4,
            accepted_prefixes: 2,
        }
    }

    pub fn sample() -> Status {
        let mut s = Status::new(4242, t(0));
        s.set_phase(LoopPhase::Idle);
        s.desired = Some(DesiredState {
            source: Origin::Api(crate::config::ApiVersion::V1),
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
            ("Ethernet0".to_owned(), established()),
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
}

#[cfg(test)]
mod tests {
    use super::sample::{record, sample, t};
    use super::*;

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
}
