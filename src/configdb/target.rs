//! The CONFIG_DB entries a [`SwitchSpec`] asks for (pure).
//!
//! Only agent-owned entries appear here, with metal-core's values:
//! - every managed port: `PORT|<p>` fields `mtu` (9000 machine and
//!   unprovisioned, 9216 underlay and firewall) and `admin_status` when the
//!   API sets one — only these fields, never the key;
//! - unprovisioned: `VLAN_MEMBER|Vlan<pxe>|<p> {tagging_mode: untagged}`;
//! - underlay and firewall: `INTERFACE|<p> {ipv6_use_link_local_only: enable}`;
//! - tenant: `INTERFACE|<p> {ipv6_use_link_local_only: enable, vrf_name: Vrf<N>}`;
//! - every tenant VRF: `VRF|Vrf<N> {vni: N, fallback: false}`,
//!   `VLAN|Vlan<V> {vlanid: V}`, `VLAN_INTERFACE|Vlan<V> {vrf_name: Vrf<N>}`,
//!   `SUPPRESS_VLAN_NEIGH|Vlan<V> {suppress: on}` and
//!   `VXLAN_TUNNEL_MAP|<vtep>|map_<N>_Vlan<V> {vlan: Vlan<V>, vni: N}`.
//!
//! The target is built per port and per VRF so that a change of one object
//! can be re-targeted without rebuilding the rest.

use std::collections::BTreeMap;

use serde::Serialize;

use super::schema::{Fields, Key, fields, vlan_name};
use crate::spec::{PortRole, PortSpec, SwitchSpec, VrfSpec, vrf_name};

/// Which fields of a target entry the agent owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The whole hash: fields not in the target are removed.
    Whole,
    /// Only the fields listed; others are left as they are (PORT).
    Listed,
}

/// One desired entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetEntry {
    pub fields: Fields,
    pub scope: Scope,
}

/// The desired owned entries of a switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Target {
    pub entries: BTreeMap<Key, TargetEntry>,
}

impl Target {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The whole target of a spec.
pub fn target(spec: &SwitchSpec) -> Target {
    let mut entries = BTreeMap::new();
    for port in spec.ports.values() {
        entries.extend(port_entries(spec, port));
    }
    for vrf in spec.vrfs.values() {
        entries.extend(vrf_entries(spec, vrf));
    }
    Target { entries }
}

fn whole(f: Fields) -> TargetEntry {
    TargetEntry {
        fields: f,
        scope: Scope::Whole,
    }
}

/// The entries of one managed port.
pub fn port_entries(spec: &SwitchSpec, port: &PortSpec) -> Vec<(Key, TargetEntry)> {
    let p = port.name.as_str();
    let mut port_fields = Fields::new();
    port_fields.insert("mtu".into(), port.role.mtu().to_string());
    if let Some(a) = port.admin {
        port_fields.insert("admin_status".into(), a.as_str().into());
    }
    let mut out = vec![(
        Key::port(p),
        TargetEntry {
            fields: port_fields,
            scope: Scope::Listed,
        },
    )];
    match &port.role {
        PortRole::Unprovisioned => out.push((
            Key::vlan_member(spec.pxe_vlan, p),
            whole(fields([("tagging_mode", "untagged".into())])),
        )),
        PortRole::Underlay | PortRole::Firewall { .. } => out.push((
            Key::interface(p),
            whole(fields([("ipv6_use_link_local_only", "enable".into())])),
        )),
        PortRole::Tenant { vni } => out.push((
            Key::interface(p),
            whole(fields([
                ("ipv6_use_link_local_only", "enable".into()),
                ("vrf_name", vrf_name(*vni)),
            ])),
        )),
    }
    out
}

/// The entries of one tenant VRF.
pub fn vrf_entries(spec: &SwitchSpec, vrf: &VrfSpec) -> Vec<(Key, TargetEntry)> {
    let name = vrf.name();
    let vni = vrf.vni.to_string();
    vec![
        (
            Key::vrf(&name),
            whole(fields([("fallback", "false".into()), ("vni", vni.clone())])),
        ),
        (
            Key::vlan(vrf.vlan),
            whole(fields([("vlanid", vrf.vlan.to_string())])),
        ),
        (
            Key::vlan_interface(vrf.vlan),
            whole(fields([("vrf_name", name)])),
        ),
        (
            Key::suppress_vlan_neigh(vrf.vlan),
            whole(fields([("suppress", "on".into())])),
        ),
        (
            Key::vxlan_tunnel_map(&spec.vtep, vrf.vni, vrf.vlan),
            whole(fields([("vlan", vlan_name(vrf.vlan)), ("vni", vni)])),
        ),
    ]
}
