//! The vocabulary of the report wing: what the loop is doing, how a
//! reconcile ended, what woke it, its stages, where drift came from and
//! where the desired state came from. Plain data (pure); the status file,
//! metrics, logs and the CLI all speak it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::ApiVersion;

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

/// Where the desired state came from: `api-v1`, `api-v2` or `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The metal API of this version (metal-api v1, metal-apiserver v2).
    Api(ApiVersion),
    /// A file given on the command line.
    File,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Api(ApiVersion::V1) => "api-v1",
            Origin::Api(ApiVersion::V2) => "api-v2",
            Origin::File => "file",
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        [
            Origin::Api(ApiVersion::V1),
            Origin::Api(ApiVersion::V2),
            Origin::File,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown origin {s:?}")))
    }
}
