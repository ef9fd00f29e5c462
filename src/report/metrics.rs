//! Every Prometheus metric of the agent, and the `/metrics` endpoint (feature `agent`).
//!
//! [`Metrics`] owns the registry and one typed handle per metric family; the
//! reporter (`super::Reporter`) records through its methods (`reconcile_finished`,
//! `observe_stage`, `record_plan`, …), never through label strings, so every
//! label set stays bounded: results, stages, tables, actions, drift sources,
//! API calls, error kinds and phone-home results are enums; `port` labels
//! are bounded by the switch's PORT table; `version`/`revision` take one
//! value per binary.
//!
//! The endpoint ([`Metrics::serve`]) answers `GET`/`HEAD /metrics` with the
//! Prometheus text format 0.0.4 (what Prometheus and `promtool check metrics`
//! read), 404 for any other path and 405 for other methods, within the
//! [`limits`] that keep any client from locking out a scrape. It binds to
//! `metrics_server_bind_address:metrics_server_port` (metal-core's
//! 0.0.0.0:2112) and stops through [`MetricsServer::shutdown`].
//!
//! metal-core's one metric, `metal_core_total_errors{operation}`, keeps its
//! name so that existing dashboards and alerts keep working. It is exposed as
//! `untyped`: the text format's linter insists that a `counter` ends in
//! `_total`, and renaming it would break those queries; `rate()` and
//! `increase()` work on it as before.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::vocab::{DriftSource, ReconcileResult, Stage};
use crate::configdb::diff::Op;
use crate::configdb::plan::Plan;
use crate::configdb::reply::{Database, Handling, Undecodable};
use crate::configdb::schema::Table;
use crate::observed::{BgpPortState, BgpState, PortOperState};

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// Limits of the metrics endpoint, which anyone who reaches the port can
/// talk to: it serves GET/HEAD of [`METRICS_PATH`] and nothing else, never
/// reads a request body, and bounds what a client can hold. No client can
/// lock out a scrape: a peer (IP address) holds a few connections at most,
/// an idle connection is closed early, and when every slot is taken a new
/// connection takes the slot of an idle one (of the peer holding the most,
/// idle the longest).
pub mod limits {
    use std::time::Duration;

    /// Connections served at once.
    pub const MAX_CONNECTIONS: usize = 32;
    /// Connections of one peer (IP address) at once; a peer's new
    /// connection replaces its own longest idle one (Prometheus uses one).
    pub const MAX_CONNECTIONS_PER_PEER: usize = 4;
    /// A kept-alive connection without a request for this long is closed
    /// (Prometheus scrapes every 15 s or more and reconnects at once).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Time a client gets to send a request's headers (slowloris).
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Largest request head read (hyper's smallest allowed buffer):
    /// larger heads are answered 431 and the connection closed.
    pub const MAX_HEAD_BYTES: usize = 8 * 1024;
    /// Longest life of one connection (Prometheus reconnects).
    pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(120);
}
/// `Content-Type` of the answer (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

macro_rules! label_value {
    ($t:ty) => {
        impl EncodeLabelValue for $t {
            fn encode(&self, e: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(e, self.as_str())
            }
        }
    };
}

/// A label value that wraps a type shown by its `$show` method.
macro_rules! label_newtype {
    ($name:ident($inner:ty), $show:ident) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        struct $name($inner);
        impl EncodeLabelValue for $name {
            fn encode(&self, e: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(e, self.0.$show())
            }
        }
    };
}

label_newtype!(TableName(Table), name);
label_newtype!(DbName(Database), name);
label_newtype!(HandlingName(Handling), name);
label_newtype!(OperState(PortOperState), as_str);
label_newtype!(Bgp(BgpState), as_str);

label_value!(ReconcileResult);
label_value!(Stage);
label_value!(DriftSource);

/// What a plan does to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanAction {
    Create,
    Update,
    Delete,
}

impl PlanAction {
    pub const ALL: [PlanAction; 3] = [PlanAction::Create, PlanAction::Update, PlanAction::Delete];
    pub fn as_str(self) -> &'static str {
        match self {
            PlanAction::Create => "create",
            PlanAction::Update => "update",
            PlanAction::Delete => "delete",
        }
    }
    fn of(op: &Op) -> PlanAction {
        match op {
            Op::Create { .. } => PlanAction::Create,
            Op::Update { .. } => PlanAction::Update,
            Op::Delete { .. } => PlanAction::Delete,
        }
    }
}
label_value!(PlanAction);

/// A metal API call (both API versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiCall {
    /// v1 `POST /v1/switch/register`, v2 `SwitchService/Register`.
    Register,
    /// v1 `GET /v1/switch/{id}`, v2 `SwitchService/Get`.
    GetSwitch,
    /// v1 notify, v2 heartbeat.
    Report,
    /// Phone-home events (v2 `EventService/Send`).
    SendEvents,
    /// v2 `ComponentService/Ping`.
    Ping,
    /// v2 `TokenService/Refresh`.
    RefreshToken,
}

impl ApiCall {
    pub const ALL: [ApiCall; 6] = [
        ApiCall::Register,
        ApiCall::GetSwitch,
        ApiCall::Report,
        ApiCall::SendEvents,
        ApiCall::Ping,
        ApiCall::RefreshToken,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCall::Register => "register",
            ApiCall::GetSwitch => "get_switch",
            ApiCall::Report => "report",
            ApiCall::SendEvents => "send_events",
            ApiCall::Ping => "ping",
            ApiCall::RefreshToken => "refresh_token",
        }
    }
}
label_value!(ApiCall);

/// How an API call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// May succeed later unchanged (connection, timeout, 5xx, `unavailable`).
    Transient,
    /// Refused or unusable (4xx, invalid answer, not sent).
    Permanent,
}

impl ApiErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiErrorKind::Transient => "transient",
            ApiErrorKind::Permanent => "permanent",
        }
    }
}
label_value!(ApiErrorKind);

/// What became of a phone-home event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneHomeResult {
    /// A machine was seen over LLDP; an event was queued.
    Queued,
    /// The API accepted it.
    Sent,
    /// Sending failed (it stays queued for the next attempt).
    Failed,
    /// Dropped (queue full, or refused for good).
    Dropped,
}

impl PhoneHomeResult {
    pub const ALL: [PhoneHomeResult; 4] = [
        PhoneHomeResult::Queued,
        PhoneHomeResult::Sent,
        PhoneHomeResult::Failed,
        PhoneHomeResult::Dropped,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneHomeResult::Queued => "queued",
            PhoneHomeResult::Sent => "sent",
            PhoneHomeResult::Failed => "failed",
            PhoneHomeResult::Dropped => "dropped",
        }
    }
}
label_value!(PhoneHomeResult);

/// metal-core's `operation` values of `metal_core_total_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetalCoreOperation {
    /// A reconcile failed (metal-core: `switch-reconfiguration`).
    SwitchReconfiguration,
    /// The notify/heartbeat after a reconcile failed (`reconfiguration-notification`).
    ReconfigurationNotification,
    /// Sending phone-home events failed (`send-provisioning`).
    SendProvisioning,
}

impl MetalCoreOperation {
    pub const ALL: [MetalCoreOperation; 3] = [
        MetalCoreOperation::SwitchReconfiguration,
        MetalCoreOperation::ReconfigurationNotification,
        MetalCoreOperation::SendProvisioning,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            MetalCoreOperation::SwitchReconfiguration => "switch-reconfiguration",
            MetalCoreOperation::ReconfigurationNotification => "reconfiguration-notification",
            MetalCoreOperation::SendProvisioning => "send-provisioning",
        }
    }
}
label_value!(MetalCoreOperation);

const BGP_STATES: [BgpState; 6] = [
    BgpState::Idle,
    BgpState::Connect,
    BgpState::Active,
    BgpState::OpenSent,
    BgpState::OpenConfirm,
    BgpState::Established,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: ReconcileResult,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StageLabels {
    stage: Stage,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PlanLabels {
    table: TableName,
    action: PlanAction,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DriftLabels {
    source: DriftSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct UndecodableLabels {
    db: DbName,
    handling: HandlingName,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperStateLabels {
    oper_state: OperState,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PortLabels {
    port: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BgpStateLabels {
    state: Bgp,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BgpPortLabels {
    port: String,
    vrf: String,
    peer_group: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApiLabels {
    call: ApiCall,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApiErrorLabels {
    call: ApiCall,
    kind: ApiErrorKind,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhoneHomeLabels {
    result: PhoneHomeResult,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: MetalCoreOperation,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
}
/// A desired state's identity: one series per family, replaced when it
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DesiredStateLabels {
    digest: String,
    /// The API's generation (v2), `""` when it has none.
    api_generation: String,
}

/// The detected SONiC flavour: one series, replaced when it is detected
/// again (SIGHUP); every value comes from `crate::flavour`, bounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FlavourLabels {
    family: String,
    release: String,
    debian: String,
    routing_config_mode: String,
    frr_version: String,
    fpm_module: String,
    refused: String,
}

/// A counter exposed under its exact name as `untyped` (see the module docs).
#[derive(Debug, Clone, Default)]
struct UntypedCounter(Counter);

impl TypedMetric for UntypedCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for UntypedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

/// Buckets of the duration histograms: 1 ms to about 4.5 min, doubling.
fn duration_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 19)
}

fn seconds_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the process is: its build and start time.
fn register_process(reg: &mut Registry, started: SystemTime) {
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: crate::VERSION.to_owned(),
            revision: crate::REVISION.to_owned(),
        })
        .set(1);
    reg.register(
        "build_info",
        "Version and source revision of the running agent (always 1)",
        build,
    );
    let start_time = Gauge::<f64, AtomicU64>::default();
    start_time.set(seconds_since_epoch(started));
    reg.register_with_unit(
        "start_time",
        "When the agent process started, as a Unix time",
        Unit::Seconds,
        start_time,
    );
}

/// The agent's metrics. Share it as `Arc<Metrics>`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    stage_duration: Family<StageLabels, Histogram>,
    plan_operations: Family<PlanLabels, Counter>,
    redis_round_trips: Counter,
    drift_repairs: Family<DriftLabels, Counter>,
    undecodable_entries: Family<UndecodableLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    consecutive_failures: Gauge,
    desired_changes: Counter,
    ports: Family<OperStateLabels, Gauge>,
    port_up: Family<PortLabels, Gauge>,
    bgp_sessions: Family<BgpStateLabels, Gauge>,
    bgp_established: Family<BgpPortLabels, Gauge>,
    api_requests: Family<ApiLabels, Counter>,
    api_errors: Family<ApiErrorLabels, Counter>,
    phone_home_events: Family<PhoneHomeLabels, Counter>,
    phone_home_pending: Gauge,
    contested_keys: Gauge,
    metal_core_errors: Family<OperationLabels, UntypedCounter>,
    flavour: Family<FlavourLabels, Gauge>,
    desired_state: Family<DesiredStateLabels, Gauge>,
    converged_state: Family<DesiredStateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(SystemTime::now())
    }
}

impl Metrics {
    /// Declare every metric; `started` is the process start time.
    pub fn new(started: SystemTime) -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(duration_buckets()),
            stage_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            plan_operations: Family::default(),
            redis_round_trips: Counter::default(),
            drift_repairs: Family::default(),
            undecodable_entries: Family::default(),
            last_success: Gauge::default(),
            consecutive_failures: Gauge::default(),
            desired_changes: Counter::default(),
            desired_state: Family::default(),
            converged_state: Family::default(),
            ports: Family::default(),
            port_up: Family::default(),
            bgp_sessions: Family::default(),
            bgp_established: Family::default(),
            api_requests: Family::default(),
            api_errors: Family::default(),
            phone_home_events: Family::default(),
            phone_home_pending: Gauge::default(),
            contested_keys: Gauge::default(),
            metal_core_errors: Family::default(),
            flavour: Family::default(),
        };
        let mut root = Registry::default();
        let reg = root.sub_registry_with_prefix("metal_switchd");
        register_process(reg, started);
        reg.register(
            "sonic_flavour_info",
            "The SONiC flavour of this switch as detected at start and on SIGHUP: family, \
             release, Debian base, docker_routing_config_mode, FRR version, fpm module, and \
             whether the agent refuses to manage FRR there (always 1; none before detection)",
            m.flavour.clone(),
        );
        m.register_reconciles(reg);
        m.register_outcomes(reg);
        m.register_switch_state(reg);
        m.register_api(reg);
        m.register_metal_core(&mut root);
        // The process_* family Prometheus' client libraries export, read from
        // /proc at every scrape (prometheus-client has no process collector).
        root.register_collector(Box::new(ProcessCollector { started }));
        m.registry = root;
        m
    }

    /// The reconciles: by result, their duration and stages, what they changed.
    fn register_reconciles(&self, reg: &mut Registry) {
        for result in ReconcileResult::ALL {
            let _ = self.reconciles.get_or_create(&ResultLabels { result });
        }
        reg.register(
            "reconciles",
            "Reconciles by result: converged (the switch matches and SONiC confirmed it), \
             pending (written, not yet confirmed), invalid (desired state rejected, nothing \
             written), error (API, redis, FRR or a barrier failed), dry-run \
             (reconfigure_switch = false)",
            self.reconciles.clone(),
        );
        reg.register_with_unit(
            "reconcile_duration",
            "Wall time of one whole reconcile",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        for stage in Stage::ALL {
            let _ = self.stage_duration.get_or_create(&StageLabels { stage });
        }
        reg.register_with_unit(
            "reconcile_stage_duration",
            "Wall time of one stage of a reconcile: fetch (metal API), plan (read CONFIG_DB, \
             validate, diff, plan), configdb_write (MULTI/EXEC of the phases), barrier_wait \
             (SONiC confirming the phases), frr (render, validate, install, reload), kernel \
             (netlink observation), report (notify/heartbeat)",
            Unit::Seconds,
            self.stage_duration.clone(),
        );
        reg.register(
            "plan_operations",
            "CONFIG_DB keys changed by applied plans, by table and action (create, update, delete)",
            self.plan_operations.clone(),
        );
        reg.register(
            "redis_round_trips",
            "Round trips to redis for reads and writes (barrier polls excluded)",
            self.redis_round_trips.clone(),
        );
        for source in DriftSource::ALL {
            let _ = self.drift_repairs.get_or_create(&DriftLabels { source });
        }
        reg.register(
            "drift_repairs",
            "Owned state changed behind the agent's back and put back, by where it was noticed \
             (configdb: a keyspace notification; kernel: netlink)",
            self.drift_repairs.clone(),
        );
        for db in Database::ALL {
            for h in Handling::ALL {
                let _ = self.undecodable_entries.get_or_create(&UndecodableLabels {
                    db: DbName(db),
                    handling: HandlingName(h),
                });
            }
        }
        reg.register(
            "undecodable_entries",
            "Entries of SONiC's databases read with bytes that are not UTF-8, by database and \
             handling (skipped: the name or the one value read is not UTF-8, left out; kept: a \
             field read with U+FFFD), counted each time they are read",
            self.undecodable_entries.clone(),
        );
    }

    /// What the reconciles led to: the last success, the failure streak,
    /// the desired state's generation.
    fn register_outcomes(&self, reg: &mut Registry) {
        reg.register_with_unit(
            "last_success_timestamp",
            "When the last successful (converged or dry-run) reconcile ended, as a Unix time; \
             0 = none since start",
            Unit::Seconds,
            self.last_success.clone(),
        );
        reg.register(
            "consecutive_failures",
            "Reconciles that ended invalid or in error since the last success",
            self.consecutive_failures.clone(),
        );
        reg.register(
            "desired_state_changes",
            "Distinct desired states received since start (grows when the API's state of the \
             switch changes)",
            self.desired_changes.clone(),
        );
        reg.register(
            "desired_state_info",
            "The desired state the last reconcile worked towards: the digest of the validated \
             SwitchSpec and the API's generation (v2; empty for v1) (always 1; one series, \
             none before the first valid desired state)",
            self.desired_state.clone(),
        );
        reg.register(
            "converged_state_info",
            "The desired state the last converged reconcile reached: digest and API generation \
             as in desired_state_info (always 1; one series, none before the first convergence)",
            self.converged_state.clone(),
        );
    }

    /// What the switch shows: ports, BGP sessions.
    fn register_switch_state(&self, reg: &mut Registry) {
        for s in [
            PortOperState::Up,
            PortOperState::Down,
            PortOperState::Unknown,
        ] {
            let _ = self.ports.get_or_create(&OperStateLabels {
                oper_state: OperState(s),
            });
        }
        reg.register(
            "ports",
            "Managed ports by kernel operational state",
            self.ports.clone(),
        );
        reg.register(
            "port_oper_up",
            "1 when the managed port is operationally up, else 0 (one series per port of the \
             PORT table)",
            self.port_up.clone(),
        );
        for s in BGP_STATES {
            let _ = self
                .bgp_sessions
                .get_or_create(&BgpStateLabels { state: Bgp(s) });
        }
        reg.register(
            "bgp_sessions",
            "BGP sessions by FSM state",
            self.bgp_sessions.clone(),
        );
        reg.register(
            "bgp_session_established",
            "1 when the BGP session on the port is Established, else 0",
            self.bgp_established.clone(),
        );
    }

    /// Calls to the metal API and phone-home.
    fn register_api(&self, reg: &mut Registry) {
        for call in ApiCall::ALL {
            let _ = self.api_requests.get_or_create(&ApiLabels { call });
        }
        reg.register(
            "api_requests",
            "Calls to the metal API (each attempt counts), by call",
            self.api_requests.clone(),
        );
        reg.register(
            "api_errors",
            "Failed calls to the metal API, by call and kind (transient: may succeed unchanged \
             later; permanent: refused)",
            self.api_errors.clone(),
        );
        for result in PhoneHomeResult::ALL {
            let _ = self
                .phone_home_events
                .get_or_create(&PhoneHomeLabels { result });
        }
        reg.register(
            "phone_home_events",
            "Phone-home events of machines seen over LLDP, by what became of them",
            self.phone_home_events.clone(),
        );
        reg.register(
            "phone_home_pending",
            "Phone-home events waiting to be sent",
            self.phone_home_pending.clone(),
        );
        reg.register(
            "contested_keys",
            "Owned CONFIG_DB keys contested by another writer (repaired too often in a short \
             time): left alone, not repaired, while contested",
            self.contested_keys.clone(),
        );
    }

    /// metal-core's one metric, under its own name.
    fn register_metal_core(&self, root: &mut Registry) {
        for operation in MetalCoreOperation::ALL {
            let _ = self
                .metal_core_errors
                .get_or_create(&OperationLabels { operation });
        }
        root.register(
            "metal_core_total_errors",
            "total number of errors",
            self.metal_core_errors.clone(),
        );
    }

    /// The detected flavour (replaces the previous one).
    pub fn set_flavour(&self, f: &crate::flavour::Flavour) {
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        let mode = match &f.routing_config_mode {
            crate::flavour::RoutingConfigMode::Unrecognised(_) => "unrecognised".to_owned(),
            crate::flavour::RoutingConfigMode::Unset => "unset".to_owned(),
            crate::flavour::RoutingConfigMode::Unknown => "unknown".to_owned(),
            m => m.to_string(),
        };
        self.flavour.clear();
        self.flavour
            .get_or_create(&FlavourLabels {
                family: f.family.as_str().to_owned(),
                release: or(&f.release),
                debian: f
                    .debian
                    .as_deref()
                    .and_then(|d| d.split(' ').next())
                    .unwrap_or("unknown")
                    .to_owned(),
                routing_config_mode: mode,
                frr_version: or(&f.frr_version),
                fpm_module: f.fpm_module.as_str().to_owned(),
                refused: f.refusal().is_some().to_string(),
            })
            .set(1);
    }

    /// A reconcile ended with `result` after `duration`, at `now`. Counts it,
    /// observes its duration, keeps the failure streak and the last success,
    /// and counts metal-core's `switch-reconfiguration` error for `invalid`
    /// and `error`.
    pub fn reconcile_finished(&self, result: ReconcileResult, duration: Duration, now: SystemTime) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
        if result.is_success() {
            self.consecutive_failures.set(0);
            self.last_success.set(seconds_since_epoch(now));
        } else if result.is_failure() {
            self.consecutive_failures.inc();
            self.metal_core_error(MetalCoreOperation::SwitchReconfiguration);
        }
    }

    /// One stage of a reconcile took `d`.
    pub fn observe_stage(&self, stage: Stage, d: Duration) {
        self.stage_duration
            .get_or_create(&StageLabels { stage })
            .observe(d.as_secs_f64());
    }

    /// An applied plan: its changes by table and action.
    pub fn record_plan(&self, plan: &Plan) {
        for c in plan.iter_changes() {
            self.plan_operations
                .get_or_create(&PlanLabels {
                    table: TableName(c.key.table),
                    action: PlanAction::of(&c.op),
                })
                .inc();
        }
    }

    /// Round trips to redis.
    pub fn redis_round_trips(&self, n: u64) {
        self.redis_round_trips.inc_by(n);
    }

    /// Drift was repaired.
    pub fn drift_repaired(&self, source: DriftSource) {
        self.drift_repairs
            .get_or_create(&DriftLabels { source })
            .inc();
    }

    /// Entries with bytes that are not UTF-8 read since the last call.
    pub fn undecodable_entries(&self, new: &Undecodable) {
        for (db, h, n) in new.iter().filter(|(_, _, n)| *n > 0) {
            self.undecodable_entries
                .get_or_create(&UndecodableLabels {
                    db: DbName(db),
                    handling: HandlingName(h),
                })
                .inc_by(n);
        }
    }

    /// A new desired state arrived (its generation is
    /// [`super::status::DesiredState`]'s).
    pub fn desired_state_changed(&self) {
        self.desired_changes.inc();
    }

    /// The desired state a reconcile worked towards, and whether it
    /// converged to it (`desired_state_info`, `converged_state_info`).
    pub fn set_desired_state(
        &self,
        digest: &crate::spec::SpecDigest,
        api_generation: Option<u64>,
        converged: bool,
    ) {
        let labels = DesiredStateLabels {
            digest: digest.0.clone(),
            api_generation: api_generation.map(|g| g.to_string()).unwrap_or_default(),
        };
        let families: &[&Family<DesiredStateLabels, Gauge>] = if converged {
            &[&self.desired_state, &self.converged_state]
        } else {
            &[&self.desired_state]
        };
        for f in families {
            if f.get(&labels).is_none() {
                f.clear();
                f.get_or_create(&labels).set(1);
            }
        }
    }

    /// The managed ports' operational states (replaces the previous set).
    pub fn set_port_states<'a>(&self, ports: impl IntoIterator<Item = (&'a str, PortOperState)>) {
        let mut counts = [0i64; 3];
        self.port_up.clear();
        for (port, state) in ports {
            let i = match state {
                PortOperState::Up => 0,
                PortOperState::Down => 1,
                PortOperState::Unknown => 2,
            };
            counts[i] += 1;
            self.port_up
                .get_or_create(&PortLabels {
                    port: port.to_owned(),
                })
                .set(i64::from(state == PortOperState::Up));
        }
        for (s, n) in [
            PortOperState::Up,
            PortOperState::Down,
            PortOperState::Unknown,
        ]
        .into_iter()
        .zip(counts)
        {
            self.ports
                .get_or_create(&OperStateLabels {
                    oper_state: OperState(s),
                })
                .set(n);
        }
    }

    /// The BGP sessions per port (replaces the previous set).
    pub fn set_bgp_states<'a>(
        &self,
        sessions: impl IntoIterator<Item = (&'a str, &'a BgpPortState)>,
    ) {
        let mut counts = [0i64; BGP_STATES.len()];
        self.bgp_established.clear();
        for (port, b) in sessions {
            if let Some(i) = BGP_STATES.iter().position(|s| *s == b.state) {
                counts[i] += 1;
            }
            self.bgp_established
                .get_or_create(&BgpPortLabels {
                    port: port.to_owned(),
                    vrf: b.vrf_name.clone(),
                    peer_group: b.peer_group.clone(),
                })
                .set(i64::from(b.state == BgpState::Established));
        }
        for (s, n) in BGP_STATES.into_iter().zip(counts) {
            self.bgp_sessions
                .get_or_create(&BgpStateLabels { state: Bgp(s) })
                .set(n);
        }
    }

    /// One attempt of an API call; `error` is `None` when it succeeded.
    /// A failed `report` also counts metal-core's `reconfiguration-notification`
    /// error, a failed `send_events` its `send-provisioning` error.
    pub fn api_call(&self, call: ApiCall, error: Option<ApiErrorKind>) {
        self.api_requests.get_or_create(&ApiLabels { call }).inc();
        if let Some(kind) = error {
            self.api_errors
                .get_or_create(&ApiErrorLabels { call, kind })
                .inc();
            match call {
                ApiCall::Report => {
                    self.metal_core_error(MetalCoreOperation::ReconfigurationNotification)
                }
                ApiCall::SendEvents => self.metal_core_error(MetalCoreOperation::SendProvisioning),
                _ => {}
            }
        }
    }

    /// `n` phone-home events had `result`.
    pub fn phone_home(&self, result: PhoneHomeResult, n: u64) {
        self.phone_home_events
            .get_or_create(&PhoneHomeLabels { result })
            .inc_by(n);
    }

    /// Phone-home events waiting to be sent.
    pub fn set_phone_home_pending(&self, n: u64) {
        self.phone_home_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Owned CONFIG_DB keys contested by another writer.
    pub fn set_contested_keys(&self, n: usize) {
        self.contested_keys
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// metal-core's error counter (called by the methods above; direct use
    /// only for an operation they do not cover).
    pub fn metal_core_error(&self, operation: MetalCoreOperation) {
        self.metal_core_errors
            .get_or_create(&OperationLabels { operation })
            .0
            .inc();
    }

    /// The exposition: Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }

    /// Serve `/metrics` on `addr` until [`MetricsServer::shutdown`]. Binding
    /// happens before this returns, so a port in use is an error here.
    pub async fn serve(self: Arc<Self>, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut table = ConnTable::default();
            let mut connections: JoinSet<u64> = JoinSet::new();
            loop {
                tokio::select! {
                    _ = rx.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            while let Some(done) = connections.try_join_next() {
                                if let Ok(id) = done {
                                    table.ended(id);
                                }
                            }
                            let Some(conn) = table.admit(peer.ip()) else {
                                tracing::debug!(%peer, "metrics endpoint busy with active clients, connection closed");
                                drop(stream);
                                continue;
                            };
                            connections.spawn(self.clone().serve_connection(stream, peer, conn));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics endpoint cannot accept a connection");
                            // e.g. out of file descriptors: do not spin
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    Some(done) = connections.join_next(), if !connections.is_empty() => {
                        if let Ok(id) = done {
                            table.ended(id);
                        }
                    }
                }
            }
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        });
        tracing::info!(address = %local, "metrics endpoint listening");
        Ok(MetricsServer {
            addr: local,
            stop: tx,
            task,
        })
    }

    /// One connection until it ends, is idle for [`limits::IDLE_TIMEOUT`],
    /// is evicted, or reaches [`limits::MAX_CONNECTION_TIME`]; returns its id.
    async fn serve_connection(
        self: Arc<Self>,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        conn: Admitted,
    ) -> u64 {
        let Admitted { id, state, evict } = conn;
        let in_service = state.clone();
        let metrics = self;
        let service = service_fn(move |req| {
            in_service.busy.store(true, Ordering::SeqCst);
            let answer = metrics.answer(&req);
            in_service.touch();
            in_service.busy.store(false, Ordering::SeqCst);
            async move { Ok::<_, std::convert::Infallible>(answer) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits::HEADER_READ_TIMEOUT)
            .max_buf_size(limits::MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let deadline = tokio::time::Instant::now() + limits::MAX_CONNECTION_TIME;
        loop {
            let idle_until =
                tokio::time::Instant::from_std(state.last_active() + limits::IDLE_TIMEOUT);
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "metrics connection ended with an error");
                    }
                    break;
                }
                _ = evict.notified() => {
                    tracing::debug!(%peer, "idle metrics connection closed for another client");
                    break;
                }
                _ = tokio::time::sleep_until(idle_until) => {
                    if !state.busy.load(Ordering::SeqCst)
                        && state.last_active().elapsed() >= limits::IDLE_TIMEOUT
                    {
                        tracing::debug!(%peer, "idle metrics connection closed");
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(%peer, "metrics connection closed after its time");
                    break;
                }
            }
        }
        id
    }

    fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let plain = |status: StatusCode, text: &'static str| {
            let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *r.status_mut() = status;
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        };
        if req.uri().path() != METRICS_PATH {
            return plain(
                StatusCode::NOT_FOUND,
                "not found: metrics are at /metrics\n",
            );
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return r;
        }
        let mut r = Response::new(Full::new(Bytes::from(self.encode())));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        r
    }
}

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot listen for metrics on {addr}: {source} (metrics_server_bind_address, \
         metrics_server_port)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, close open connections and wait until the listener is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What the accept loop and a connection's task share.
#[derive(Debug)]
struct ConnState {
    /// A request is being answered.
    busy: AtomicBool,
    /// When the connection was accepted or last answered a request.
    last_active: std::sync::Mutex<std::time::Instant>,
}

impl ConnState {
    fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = std::time::Instant::now();
    }

    fn last_active(&self) -> std::time::Instant {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::SeqCst)
    }
}

/// A connection the table let in.
struct Admitted {
    id: u64,
    state: Arc<ConnState>,
    /// Notified when the connection must close for another client.
    evict: Arc<tokio::sync::Notify>,
}

struct Entry {
    peer: std::net::IpAddr,
    state: Arc<ConnState>,
    evict: Arc<tokio::sync::Notify>,
}

/// The open connections of the metrics endpoint, and who may open one.
#[derive(Default)]
struct ConnTable {
    next: u64,
    open: std::collections::HashMap<u64, Entry>,
}

impl ConnTable {
    /// Let a connection of `peer` in, making room by evicting an idle one
    /// when the peer's share or the table is full; `None` when every
    /// connection that would have to go is busy.
    fn admit(&mut self, peer: std::net::IpAddr) -> Option<Admitted> {
        let of_peer = self.open.values().filter(|e| e.peer == peer).count();
        if of_peer >= limits::MAX_CONNECTIONS_PER_PEER {
            let victim = self.idlest(|e| e.peer == peer)?;
            self.evict(victim);
        }
        if self.open.len() >= limits::MAX_CONNECTIONS {
            // The peer holding the most gives up its longest idle one.
            let mut per_peer: std::collections::HashMap<std::net::IpAddr, usize> =
                std::collections::HashMap::new();
            for e in self.open.values() {
                *per_peer.entry(e.peer).or_default() += 1;
            }
            let victim = self
                .open
                .iter()
                .filter(|(_, e)| e.state.is_idle())
                .max_by_key(|(_, e)| {
                    (
                        per_peer.get(&e.peer).copied().unwrap_or(0),
                        std::cmp::Reverse(e.state.last_active()),
                    )
                })
                .map(|(id, _)| *id)?;
            self.evict(victim);
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        let state = Arc::new(ConnState {
            busy: AtomicBool::new(false),
            last_active: std::sync::Mutex::new(std::time::Instant::now()),
        });
        let evict = Arc::new(tokio::sync::Notify::new());
        self.open.insert(
            id,
            Entry {
                peer,
                state: state.clone(),
                evict: evict.clone(),
            },
        );
        Some(Admitted { id, state, evict })
    }

    /// The idle connection matching `pred` that was idle the longest.
    fn idlest(&self, pred: impl Fn(&Entry) -> bool) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, e)| pred(e) && e.state.is_idle())
            .min_by_key(|(_, e)| e.state.last_active())
            .map(|(id, _)| *id)
    }

    /// Close connection `id` (its task ends at once) and free its slot.
    fn evict(&mut self, id: u64) {
        if let Some(e) = self.open.remove(&id) {
            e.evict.notify_one();
        }
    }

    /// Connection `id`'s task ended.
    fn ended(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn names_and_labels_are_the_documented_ones() {
        let m = Metrics::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2000);
        m.reconcile_finished(ReconcileResult::Converged, Duration::from_millis(40), now);
        m.reconcile_finished(ReconcileResult::Error, Duration::from_millis(5), now);
        m.observe_stage(Stage::Fetch, Duration::from_millis(3));
        m.api_call(ApiCall::Report, Some(ApiErrorKind::Transient));
        m.api_call(ApiCall::SendEvents, Some(ApiErrorKind::Permanent));
        m.drift_repaired(DriftSource::Kernel);
        let mut u = Undecodable::default();
        u.skipped(Database::Asic, b"ASIC_STATE:\xff", None);
        m.undecodable_entries(&u);
        m.undecodable_entries(&u);
        let text = m.encode();
        let v = |s| sample_value(&text, s).unwrap_or_else(|| panic!("no {s} in\n{text}"));
        assert_eq!(
            v("metal_switchd_undecodable_entries_total{db=\"ASIC_DB\",handling=\"skipped\"}"),
            2.0
        );
        assert_eq!(
            v("metal_switchd_undecodable_entries_total{db=\"CONFIG_DB\",handling=\"kept\"}"),
            0.0
        );
        assert_eq!(
            v("metal_switchd_reconciles_total{result=\"converged\"}"),
            1.0
        );
        assert_eq!(v("metal_switchd_reconciles_total{result=\"error\"}"), 1.0);
        assert_eq!(v("metal_switchd_reconciles_total{result=\"dry-run\"}"), 0.0);
        assert_eq!(v("metal_switchd_last_success_timestamp_seconds"), 2000.0);
        assert_eq!(v("metal_switchd_start_time_seconds"), 1000.0);
        assert_eq!(v("metal_switchd_consecutive_failures"), 1.0);
        assert_eq!(v("metal_switchd_reconcile_duration_seconds_count"), 2.0);
        assert_eq!(
            v(
                "metal_switchd_reconcile_stage_duration_seconds_bucket{stage=\"fetch\",le=\"0.004\"}"
            ),
            1.0
        );
        assert_eq!(
            v("metal_switchd_drift_repairs_total{source=\"kernel\"}"),
            1.0
        );
        assert_eq!(
            v("metal_switchd_api_errors_total{call=\"report\",kind=\"transient\"}"),
            1.0
        );
        // metal-core's counter, under its own name
        assert!(
            text.contains("# TYPE metal_core_total_errors untyped\n"),
            "{text}"
        );
        assert_eq!(
            v("metal_core_total_errors{operation=\"switch-reconfiguration\"}"),
            1.0
        );
        assert_eq!(
            v("metal_core_total_errors{operation=\"reconfiguration-notification\"}"),
            1.0
        );
        assert_eq!(
            v("metal_core_total_errors{operation=\"send-provisioning\"}"),
            1.0
        );
        assert!(text.contains(&format!(
            "metal_switchd_build_info{{version=\"{}\",revision=\"{}\"}} 1",
            crate::VERSION,
            crate::REVISION
        )));
        // a success ends the streak
        m.reconcile_finished(ReconcileResult::DryRun, Duration::from_millis(5), now);
        assert_eq!(
            sample_value(&m.encode(), "metal_switchd_consecutive_failures"),
            Some(0.0)
        );
    }

    /// Issue 20: the detected flavour, build_info-style; a new detection
    /// (SIGHUP) replaces the series.
    #[test]
    fn the_flavour_is_one_info_series() {
        use crate::flavour::Profile;
        let m = Metrics::default();
        assert!(!m.encode().contains("sonic_flavour_info{"));
        m.set_flavour(&Profile::Community202411.flavour());
        let text = m.encode();
        assert!(
            text.contains(
                "metal_switchd_sonic_flavour_info{family=\"community\",release=\"202411\",\
                 debian=\"12\",routing_config_mode=\"split-unified\",frr_version=\"10.0.1\",\
                 fpm_module=\"dplane_fpm_sonic\",refused=\"false\"} 1"
            ),
            "{text}"
        );
        m.set_flavour(&Profile::Dell45.flavour());
        let text = m.encode();
        assert_eq!(
            text.matches("metal_switchd_sonic_flavour_info{").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("family=\"dell-enterprise\",release=\"4.5.1\""),
            "{text}"
        );
        assert!(text.contains("fpm_module=\"fpm\""), "{text}");
    }

    /// Issue 22 item 9: which desired state the agent works towards and
    /// which it converged to, one series each.
    #[test]
    fn the_desired_and_converged_states_are_one_series_each() {
        use crate::spec::SpecDigest;
        let m = Metrics::default();
        assert!(!m.encode().contains("desired_state_info{"));
        m.set_desired_state(&SpecDigest("00000000000000aa".into()), Some(3), true);
        m.set_desired_state(&SpecDigest("00000000000000bb".into()), Some(4), false);
        let text = m.encode();
        let v = |s| sample_value(&text, s);
        assert_eq!(
            v("metal_switchd_desired_state_info{digest=\"00000000000000bb\",api_generation=\"4\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            v(
                "metal_switchd_converged_state_info{digest=\"00000000000000aa\",api_generation=\"3\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(text.matches("_state_info{").count(), 2, "{text}");
        m.set_desired_state(&SpecDigest("00000000000000bb".into()), None, true);
        let text = m.encode();
        assert!(
            text.contains(
                "metal_switchd_converged_state_info{digest=\"00000000000000bb\",api_generation=\"\"} 1"
            ),
            "{text}"
        );
        assert_eq!(text.matches("_state_info{").count(), 2, "{text}");
    }

    #[test]
    fn port_and_bgp_sets_are_replaced_not_accumulated() {
        let m = Metrics::default();
        m.set_port_states([
            ("Ethernet0", PortOperState::Up),
            ("Ethernet4", PortOperState::Down),
        ]);
        m.set_port_states([("Ethernet0", PortOperState::Down)]);
        let text = m.encode();
        assert_eq!(
            sample_value(&text, "metal_switchd_port_oper_up{port=\"Ethernet0\"}"),
            Some(0.0)
        );
        assert!(!text.contains("Ethernet4"), "{text}");
        assert_eq!(
            sample_value(&text, "metal_switchd_ports{oper_state=\"down\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, "metal_switchd_ports{oper_state=\"up\"}"),
            Some(0.0)
        );
        let b = |state| BgpPortState {
            neighbor: "m1".into(),
            peer_group: "MACHINE".into(),
            vrf_name: "Vrf104009".into(),
            state,
            established_since: None,
            sent_prefixes: 0,
            accepted_prefixes: 0,
        };
        let (e, a) = (b(BgpState::Established), b(BgpState::Active));
        m.set_bgp_states([("Ethernet0", &e), ("Ethernet4", &a)]);
        let text = m.encode();
        assert_eq!(
            sample_value(&text, "metal_switchd_bgp_sessions{state=\"Established\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, "metal_switchd_bgp_sessions{state=\"Active\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample_value(&text, "metal_switchd_bgp_sessions{state=\"Idle\"}"),
            Some(0.0)
        );
        assert_eq!(
            sample_value(
                &text,
                "metal_switchd_bgp_session_established{port=\"Ethernet4\",vrf=\"Vrf104009\",peer_group=\"MACHINE\"}"
            ),
            Some(0.0)
        );
    }
}

/// `process_*` metrics of this process, read at every scrape: CPU time and
/// the open-files limit from `getrusage`/`getrlimit`, memory and threads
/// from `/proc/self/status`, open descriptors from `/proc/self/fd`. A value
/// that cannot be read is left out of that scrape.
#[derive(Debug)]
struct ProcessCollector {
    started: SystemTime,
}

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            let cpu = ConstCounter::new(secs(u.user_time()) + secs(u.system_time()));
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        for (name, key, help) in [
            (
                "process_resident_memory",
                "VmRSS",
                "Resident memory size in bytes",
            ),
            (
                "process_virtual_memory",
                "VmSize",
                "Virtual memory size in bytes",
            ),
        ] {
            if let Some(kib) = field(key) {
                let g =
                    ConstGauge::new(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
                g.encode(encoder.encode_descriptor(
                    name,
                    help,
                    Some(&Unit::Bytes),
                    g.metric_type(),
                )?)?;
            }
        }
        if let Some(n) = field("Threads") {
            let g = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "process_threads",
                "Number of OS threads in the process",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let g = ConstGauge::new(i64::try_from(dir.count()).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let g = ConstGauge::new(i64::try_from(soft).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                g.metric_type(),
            )?)?;
        }
        let g = ConstGauge::new(seconds_since_epoch(self.started));
        g.encode(encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since the Unix epoch in seconds",
            Some(&Unit::Seconds),
            g.metric_type(),
        )?)?;
        Ok(())
    }
}
