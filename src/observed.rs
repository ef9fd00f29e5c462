//! What the agent observes on the switch and reports back, independent of
//! the API version: port operational states and BGP session states.
//!
//! Producers: the kernel adapter (port states) and the FRR adapter (BGP
//! states). Consumer: the API clients, which turn a [`SwitchReport`] into a
//! v1 notify or a v2 heartbeat body.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Operational state of a port (kernel `IFF_RUNNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortOperState {
    Up,
    Down,
    /// The netdev could not be queried.
    Unknown,
}

impl PortOperState {
    /// The name in the status file and the metrics (serde's too).
    pub fn as_str(self) -> &'static str {
        match self {
            PortOperState::Up => "up",
            PortOperState::Down => "down",
            PortOperState::Unknown => "unknown",
        }
    }
}

/// BGP finite-state-machine state, as FRR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BgpState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl BgpState {
    /// FRR's `bgpState` string (`Established`, `Idle`, ...).
    pub fn from_frr(s: &str) -> Option<BgpState> {
        Some(match s {
            "Idle" => BgpState::Idle,
            "Connect" => BgpState::Connect,
            "Active" => BgpState::Active,
            "OpenSent" => BgpState::OpenSent,
            "OpenConfirm" => BgpState::OpenConfirm,
            "Established" => BgpState::Established,
            _ => return None,
        })
    }

    /// FRR's name, also metal-api v1's value.
    pub fn as_str(self) -> &'static str {
        match self {
            BgpState::Idle => "Idle",
            BgpState::Connect => "Connect",
            BgpState::Active => "Active",
            BgpState::OpenSent => "OpenSent",
            BgpState::OpenConfirm => "OpenConfirm",
            BgpState::Established => "Established",
        }
    }
}

/// The BGP session on one port (BGP unnumbered: keyed by port name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpPortState {
    /// Peer's hostname; empty when it never came up.
    pub neighbor: String,
    pub peer_group: String,
    pub vrf_name: String,
    pub state: BgpState,
    /// Unix seconds of the last transition to Established; `None` = never.
    pub established_since: Option<u64>,
    /// Sum over IPv4 and IPv6 unicast (EVPN excluded), like metal-core.
    pub sent_prefixes: u64,
    pub accepted_prefixes: u64,
}

/// What one reconcile reports to the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SwitchReport {
    /// How long the reconcile took.
    pub duration: Duration,
    /// `None` = success.
    pub error: Option<String>,
    /// Per nic (API name): operational state.
    pub port_states: BTreeMap<String, PortOperState>,
    /// Per nic: BGP state; `None` = unknown (leave the stored states alone).
    pub bgp_port_states: Option<BTreeMap<String, BgpPortState>>,
}

impl SwitchReport {
    /// The operational state of `nic` (API name); `Unknown` when the report
    /// has none (a nic of the last registration the kernel did not show).
    pub fn port_state_of(&self, nic: &str) -> PortOperState {
        self.port_states
            .get(nic)
            .copied()
            .unwrap_or(PortOperState::Unknown)
    }
}
