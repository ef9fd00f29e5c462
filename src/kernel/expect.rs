//! What the kernel must show once SONiC has processed the agent's CONFIG_DB
//! state, and how a [`KernelState`] differs from it (pure).
//!
//! [`expectations`] derives [`KernelExpectations`] from a [`SwitchSpec`],
//! following what SONiC's managers do in the kernel for the agent's entries
//! (reference `sonic-configdb.md` §3.2, and the managers' sources it cites):
//!
//! | CONFIG_DB entry | manager | kernel object |
//! | --- | --- | --- |
//! | (start) | vlanmgrd | `Bridge`, VLAN filtering on |
//! | `VRF\|Vrf<N>` | vrfmgrd | `Vrf<N>` of type vrf (own table), up |
//! | `VLAN\|Vlan<V>` | vlanmgrd | `Vlan<V>`: type vlan, id V, on `Bridge`, up |
//! | `VLAN_INTERFACE\|Vlan<V> {vrf_name}` | intfmgrd | `Vlan<V>` master `Vrf<N>` |
//! | `VXLAN_TUNNEL_MAP\|<vtep>\|map_<N>_Vlan<V>` | vxlanmgrd | `<vtep>-<V>`: type vxlan, id N, master `Bridge`, PVID V untagged, up |
//! | `INTERFACE\|<p> {vrf_name}` | intfmgrd | `<p>` master `Vrf<N>` |
//! | `INTERFACE\|<p>` without VRF | intfmgrd | `<p>` without master (routed, default VRF) |
//! | `VLAN_MEMBER\|Vlan<pxe>\|<p> untagged` | vlanmgrd | `<p>` master `Bridge`, PVID pxe untagged |
//! | `PORT\|<p> {mtu, admin_status}` | portmgrd | `<p>` MTU, `IFF_UP` |
//!
//! [`compare`] lists every [`Mismatch`]: the object, what was expected,
//! what was found, the owned CONFIG_DB keys behind it (in the order they
//! would be created) and the [`RepairMethod`] — whether writing them again
//! makes SONiC's managers repair it, whether they must be deleted and
//! re-created, or whether the manager cannot rebuild it from CONFIG_DB at
//! all (vrfmgrd and vlanmgrd remember what they created: a SET of a known
//! VRF or VLAN is ignored, and a DEL runs `ip link del` on the missing
//! device, which throws and restarts swss). A mismatch caused by another
//! one is folded into it: a missing VRF device also covers its VLAN
//! interface and ports no longer enslaved to it; a missing `Bridge` covers
//! everything on it. Nothing here touches the kernel: repairs go through
//! CONFIG_DB, the SONiC way.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::state::{KernelState, Link, LinkKind};
use crate::configdb::schema::{Key, vlan_name};
use crate::spec::{AdminStatus, PortRole, SwitchSpec, vrf_name};

/// The VLAN-aware bridge vlanmgrd creates (`DOT1Q_BRIDGE_NAME`).
pub const BRIDGE: &str = "Bridge";

/// The kernel name vxlanmgrd gives the VXLAN device of VLAN `vid`.
pub fn vxlan_device_name(vtep: &str, vid: u16) -> String {
    format!("{vtep}-{vid}")
}

/// What a tenant VRF must look like in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VrfExpectation {
    /// `Vrf<N>`.
    pub name: String,
    pub vni: u32,
    /// The L3VNI VLAN id; its device is `Vlan<V>`.
    pub vlan: u16,
    /// `<vtep>-<V>`.
    pub vxlan: String,
    /// Member ports (enslaved to the VRF device).
    pub ports: Vec<String>,
}

impl VrfExpectation {
    pub fn svi(&self) -> String {
        vlan_name(self.vlan)
    }
}

/// Where a managed port must be attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "name")]
pub enum Attachment {
    /// No master: a routed port in the default VRF (underlay, firewall).
    Routed,
    /// Enslaved to this VRF device (tenant port).
    Vrf(String),
    /// In the bridge with this VLAN as untagged PVID (unprovisioned port in
    /// the PXE VLAN).
    UntaggedMember(u16),
}

/// What a managed port must look like in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortExpectation {
    pub name: String,
    pub mtu: u16,
    /// `None`: the agent leaves the admin state alone.
    pub admin: Option<AdminStatus>,
    pub attachment: Attachment,
}

/// Everything the kernel must show for one desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelExpectations {
    /// The VLAN-aware bridge (`Bridge`).
    pub bridge: String,
    /// The VTEP (VXLAN_TUNNEL) name: VXLAN devices are `<vtep>-<vid>`.
    pub vtep: String,
    /// Tenant VRFs by name.
    pub vrfs: BTreeMap<String, VrfExpectation>,
    /// Managed ports by name.
    pub ports: BTreeMap<String, PortExpectation>,
}

impl KernelExpectations {
    /// Whether the bridge is needed at all (VXLAN devices or bridge members).
    fn needs_bridge(&self) -> bool {
        !self.vrfs.is_empty()
            || self
                .ports
                .values()
                .any(|p| matches!(p.attachment, Attachment::UntaggedMember(_)))
    }
}

/// The kernel objects SONiC's managers create for `spec`'s owned entries.
pub fn expectations(spec: &SwitchSpec) -> KernelExpectations {
    let vrfs = spec
        .vrfs
        .values()
        .map(|v| {
            let name = v.name();
            (
                name.clone(),
                VrfExpectation {
                    name,
                    vni: v.vni,
                    vlan: v.vlan,
                    vxlan: vxlan_device_name(&spec.vtep, v.vlan),
                    ports: v.ports.clone(),
                },
            )
        })
        .collect();
    let ports = spec
        .ports
        .values()
        .map(|p| {
            let attachment = match &p.role {
                PortRole::Underlay | PortRole::Firewall { .. } => Attachment::Routed,
                PortRole::Tenant { vni } => Attachment::Vrf(vrf_name(*vni)),
                PortRole::Unprovisioned => Attachment::UntaggedMember(spec.pxe_vlan),
            };
            (
                p.name.clone(),
                PortExpectation {
                    name: p.name.clone(),
                    mtu: p.role.mtu(),
                    admin: p.admin,
                    attachment,
                },
            )
        })
        .collect();
    KernelExpectations {
        bridge: BRIDGE.to_owned(),
        vtep: spec.vtep.clone(),
        vrfs,
        ports,
    }
}

/// What kind of disagreement (a bounded set: a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// The VLAN-aware bridge is missing or not a bridge: SONiC's vlanmgrd
    /// is not running properly; no owned entry can repair it.
    BridgeMissing,
    /// No VRF device of that name (or a device of another type).
    VrfMissing,
    /// The VRF device is down.
    VrfDown,
    /// No `Vlan<V>` VLAN device with id V on the bridge.
    SviMissing,
    /// `Vlan<V>` is down.
    SviDown,
    /// `Vlan<V>` is not enslaved to its VRF.
    SviNotInVrf,
    /// No VXLAN device `<vtep>-<V>`.
    VxlanMissing,
    /// The VXLAN device carries another VNI.
    VxlanVni,
    /// The VXLAN device is not in the bridge with PVID V untagged.
    VxlanVlan,
    /// The VXLAN device is down.
    VxlanDown,
    /// The port's netdev does not exist.
    PortMissing,
    PortMtu,
    PortAdmin,
    /// The port is enslaved to the wrong master (or to none).
    PortMaster,
    /// The port is in the bridge, but not with the PXE VLAN as untagged PVID.
    PortVlan,
}

impl MismatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchKind::BridgeMissing => "bridge_missing",
            MismatchKind::VrfMissing => "vrf_missing",
            MismatchKind::VrfDown => "vrf_down",
            MismatchKind::SviMissing => "svi_missing",
            MismatchKind::SviDown => "svi_down",
            MismatchKind::SviNotInVrf => "svi_not_in_vrf",
            MismatchKind::VxlanMissing => "vxlan_missing",
            MismatchKind::VxlanVni => "vxlan_vni",
            MismatchKind::VxlanVlan => "vxlan_vlan",
            MismatchKind::VxlanDown => "vxlan_down",
            MismatchKind::PortMissing => "port_missing",
            MismatchKind::PortMtu => "port_mtu",
            MismatchKind::PortAdmin => "port_admin",
            MismatchKind::PortMaster => "port_master",
            MismatchKind::PortVlan => "port_vlan",
        }
    }
}

/// How SONiC's managers can be made to repair a mismatch through CONFIG_DB
/// (from the managers' code, reference §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairMethod {
    /// Write the entries again as they are (one HSET each): portmgrd
    /// applies MTU and admin state on every SET.
    Rewrite,
    /// Delete the entries, wait until the manager confirmed (its STATE_DB
    /// entry is gone), write them again: intfmgrd unbinds and rebinds
    /// (`nomaster`, `master`), vxlanmgrd deletes and re-creates the VXLAN
    /// device, vlanmgrd removes and re-adds a member still in the VLAN.
    Recreate,
    /// The manager cannot rebuild it from CONFIG_DB: it remembers the
    /// object, so a SET is ignored, and a DEL runs `ip link del` / `bridge
    /// vlan del` on what is gone, which throws and restarts swss
    /// (vrfmgrd, vlanmgrd). Report it; a swss restart replays CONFIG_DB.
    RestartOnly,
    /// Nothing the agent owns can repair it (a missing port netdev or
    /// bridge).
    None,
}

impl RepairMethod {
    /// Whether the agent may repair it by writing CONFIG_DB.
    pub fn is_repairable(self) -> bool {
        matches!(self, RepairMethod::Rewrite | RepairMethod::Recreate)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RepairMethod::Rewrite => "rewrite",
            RepairMethod::Recreate => "recreate",
            RepairMethod::RestartOnly => "restart_only",
            RepairMethod::None => "none",
        }
    }
}

/// One disagreement between the kernel and the expectations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub kind: MismatchKind,
    /// The kernel object, e.g. `VRF device Vrf104009`, `port Ethernet1`.
    pub object: String,
    pub expected: String,
    pub found: String,
    /// The owned CONFIG_DB entries behind the object, in creation order:
    /// the ones to re-assert (see `method`). Empty: none.
    pub repair: Vec<Key>,
    /// How re-asserting them works, or why it must not be tried.
    pub method: RepairMethod,
}

impl Mismatch {
    /// Identity for tracking over time: the kind and the object.
    pub fn id(&self) -> (MismatchKind, &str) {
        (self.kind, self.object.as_str())
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.object, self.expected, self.found
        )?;
        let keys = || {
            self.repair
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.method {
            RepairMethod::Rewrite => write!(f, "; repair by writing {} again", keys()),
            RepairMethod::Recreate => write!(
                f,
                "; repair by deleting and re-creating {} (waiting for SONiC in between)",
                keys()
            ),
            RepairMethod::RestartOnly => write!(
                f,
                "; SONiC cannot rebuild it from CONFIG_DB ({}): restart swss",
                keys()
            ),
            RepairMethod::None => f.write_str(" (no agent-owned CONFIG_DB entry can repair this)"),
        }
    }
}

fn describe_master(state: &KernelState, link: &Link) -> String {
    match link.master {
        None => "no master".into(),
        Some(i) => match state.link_by_index(i) {
            Some(m) => format!("master {}", m.name),
            None => format!("master ifindex {i}"),
        },
    }
}

fn describe_device(link: Option<&Link>) -> String {
    match link {
        None => "no such device".into(),
        Some(l) => format!("a {} device", l.kind),
    }
}

fn up_down(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

/// Every way `state` differs from `exp`, in a stable order: the bridge,
/// then per VRF (device, VLAN interface, VXLAN device), then per port.
///
/// Pure; the caller decides what an incomplete state means
/// ([`KernelState::in_sync`]).
pub fn compare(state: &KernelState, exp: &KernelExpectations) -> Vec<Mismatch> {
    let bridge = state
        .link(&exp.bridge)
        .filter(|l| matches!(l.kind, LinkKind::Bridge { .. }));
    let mut c = Comparison {
        state,
        exp,
        bridge: bridge.map(|b| b.index),
        out: Vec::new(),
        broken_vrfs: Vec::new(),
    };
    if bridge.is_none() && exp.needs_bridge() {
        c.push(
            MismatchKind::BridgeMissing,
            format!("bridge {}", exp.bridge),
            "a VLAN-filtering bridge (created by SONiC's vlanmgrd at start)".into(),
            describe_device(state.link(&exp.bridge)),
            Vec::new(),
            RepairMethod::None,
        );
    }
    for v in exp.vrfs.values() {
        let vrf_link = c.vrf(v);
        if c.bridge.is_some() {
            c.svi(v, vrf_link);
            c.vxlan(v);
        }
    }
    for p in exp.ports.values() {
        c.port(p);
    }
    c.out
}

/// One comparison of the kernel with the expectations: per object kind a
/// method, the mismatches in the order found.
struct Comparison<'a> {
    state: &'a KernelState,
    exp: &'a KernelExpectations,
    /// The VLAN-aware bridge's ifindex, when it exists as a bridge.
    bridge: Option<u32>,
    out: Vec<Mismatch>,
    /// VRFs whose device is missing: their bound objects are folded in.
    broken_vrfs: Vec<&'a str>,
}

impl<'a> Comparison<'a> {
    fn push(
        &mut self,
        kind: MismatchKind,
        object: String,
        expected: String,
        found: String,
        repair: Vec<Key>,
        method: RepairMethod,
    ) {
        self.out.push(Mismatch {
            kind,
            object,
            expected,
            found,
            repair,
            method,
        });
    }

    /// The VRF device: exists as a vrf, up. Returns it when it exists.
    fn vrf(&mut self, v: &'a VrfExpectation) -> Option<&'a Link> {
        let vrf_link = self
            .state
            .link(&v.name)
            .filter(|l| matches!(l.kind, LinkKind::Vrf { .. }));
        let repair = || {
            let mut keys = vec![Key::vrf(&v.name), Key::vlan_interface(v.vlan)];
            keys.extend(v.ports.iter().map(|p| Key::interface(p)));
            keys
        };
        let object = format!("VRF device {}", v.name);
        match vrf_link {
            None => {
                self.broken_vrfs.push(&v.name);
                let expected = format!("a vrf device {} (vni {})", v.name, v.vni);
                let found = describe_device(self.state.link(&v.name));
                let method = RepairMethod::RestartOnly;
                self.push(
                    MismatchKind::VrfMissing,
                    object,
                    expected,
                    found,
                    repair(),
                    method,
                );
            }
            Some(l) if !l.admin_up => {
                let (expected, found) = ("admin up".into(), "admin down".into());
                let method = RepairMethod::RestartOnly;
                self.push(
                    MismatchKind::VrfDown,
                    object,
                    expected,
                    found,
                    repair(),
                    method,
                );
            }
            Some(_) => {}
        }
        vrf_link
    }

    /// The VRF's VLAN interface: a vlan device with the VRF's VLAN id on
    /// the bridge, up, enslaved to the VRF.
    fn svi(&mut self, v: &VrfExpectation, vrf_link: Option<&Link>) {
        let svi = v.svi();
        let svi_link = self.state.link(&svi);
        let svi_ok = svi_link
            .filter(|l| l.kind == LinkKind::Vlan { id: Some(v.vlan) } && l.parent == self.bridge);
        let repair = || vec![Key::vlan(v.vlan), Key::vlan_interface(v.vlan)];
        let object = format!("VLAN interface {svi}");
        let Some(l) = svi_ok else {
            let expected = format!("a vlan device with id {} on {}", v.vlan, self.exp.bridge);
            let found = match svi_link {
                Some(l) => match &l.kind {
                    LinkKind::Vlan { id } => format!(
                        "a vlan device with id {} on {}",
                        id.map_or("?".into(), |i| i.to_string()),
                        self.state.parent_of(&svi).unwrap_or("no lower device")
                    ),
                    _ => describe_device(Some(l)),
                },
                None => describe_device(None),
            };
            let method = RepairMethod::RestartOnly;
            self.push(
                MismatchKind::SviMissing,
                object,
                expected,
                found,
                repair(),
                method,
            );
            return;
        };
        if !l.admin_up {
            let (expected, found) = ("admin up".into(), "admin down".into());
            let method = RepairMethod::RestartOnly;
            self.push(
                MismatchKind::SviDown,
                object.clone(),
                expected,
                found,
                repair(),
                method,
            );
        }
        if let Some(vrf) = vrf_link
            && l.master != Some(vrf.index)
        {
            let expected = format!("master {}", v.name);
            let found = describe_master(self.state, l);
            let repair = vec![Key::vlan_interface(v.vlan)];
            let method = RepairMethod::Recreate;
            self.push(
                MismatchKind::SviNotInVrf,
                object,
                expected,
                found,
                repair,
                method,
            );
        }
    }

    /// The VRF's VXLAN device: the VRF's VNI, in the bridge with the VRF's
    /// VLAN as untagged PVID, up.
    fn vxlan(&mut self, v: &VrfExpectation) {
        let map_key = Key::vxlan_tunnel_map(&self.exp.vtep, v.vni, v.vlan);
        let object = format!("VXLAN device {}", v.vxlan);
        let method = RepairMethod::Recreate;
        let l = match self.state.link(&v.vxlan) {
            Some(l) if matches!(l.kind, LinkKind::Vxlan { .. }) => l,
            other => {
                let expected = format!(
                    "a vxlan device with vni {} in {} VLAN {}",
                    v.vni, self.exp.bridge, v.vlan
                );
                let found = describe_device(other);
                self.push(
                    MismatchKind::VxlanMissing,
                    object,
                    expected,
                    found,
                    vec![map_key],
                    method,
                );
                return;
            }
        };
        if l.kind != (LinkKind::Vxlan { vni: Some(v.vni) }) {
            let found = match l.kind {
                LinkKind::Vxlan { vni: Some(n) } => format!("vni {n}"),
                _ => "no vni".into(),
            };
            let expected = format!("vni {}", v.vni);
            let repair = vec![map_key.clone()];
            self.push(
                MismatchKind::VxlanVni,
                object.clone(),
                expected,
                found,
                repair,
                method,
            );
        }
        let vlans = self.state.bridge_vlans(&v.vxlan);
        let in_vlan = l.master == self.bridge && vlans.is_some_and(|b| b.is_untagged_pvid(v.vlan));
        if !in_vlan {
            let found = if l.master != self.bridge {
                describe_master(self.state, l)
            } else {
                match vlans.and_then(|b| b.pvid) {
                    Some(p) => format!("pvid {p} in {}", self.exp.bridge),
                    None => format!("no pvid in {}", self.exp.bridge),
                }
            };
            let expected = format!("in {} with pvid {} untagged", self.exp.bridge, v.vlan);
            let repair = vec![map_key.clone()];
            self.push(
                MismatchKind::VxlanVlan,
                object.clone(),
                expected,
                found,
                repair,
                method,
            );
        }
        if !l.admin_up {
            let (expected, found) = ("admin up".into(), "admin down".into());
            self.push(
                MismatchKind::VxlanDown,
                object,
                expected,
                found,
                vec![map_key],
                method,
            );
        }
    }

    /// A port: its netdev, MTU, admin state and attachment.
    fn port(&mut self, p: &PortExpectation) {
        let object = format!("port {}", p.name);
        let Some(link) = self.state.link(&p.name) else {
            let (expected, found) = ("the port's netdev".into(), "no such device".into());
            let method = RepairMethod::None;
            self.push(
                MismatchKind::PortMissing,
                object,
                expected,
                found,
                Vec::new(),
                method,
            );
            return;
        };
        let rewrite = || vec![Key::port(&p.name)];
        if link.mtu != Some(u32::from(p.mtu)) {
            let expected = format!("mtu {}", p.mtu);
            let found = link.mtu.map_or("no mtu".into(), |m| format!("mtu {m}"));
            let method = RepairMethod::Rewrite;
            self.push(
                MismatchKind::PortMtu,
                object.clone(),
                expected,
                found,
                rewrite(),
                method,
            );
        }
        if let Some(admin) = p.admin
            && link.admin_up != (admin == AdminStatus::Up)
        {
            let expected = format!("admin {}", up_down(admin == AdminStatus::Up));
            let found = format!("admin {}", up_down(link.admin_up));
            let method = RepairMethod::Rewrite;
            self.push(
                MismatchKind::PortAdmin,
                object.clone(),
                expected,
                found,
                rewrite(),
                method,
            );
        }
        match &p.attachment {
            Attachment::Routed => {
                if link.master.is_some() {
                    let expected = "no master (routed in the default VRF)".into();
                    self.port_master(p, link, object, expected);
                }
            }
            Attachment::Vrf(vrf) => {
                let want = self.state.link(vrf).map(|l| l.index);
                let broken = self.broken_vrfs.contains(&vrf.as_str());
                if !broken && (link.master.is_none() || link.master != want) {
                    self.port_master(p, link, object, format!("master {vrf}"));
                }
            }
            Attachment::UntaggedMember(vid) => {
                if self.bridge.is_some() {
                    self.member(p, link, object, *vid);
                }
            }
        }
    }

    /// A routed port with the wrong master: intfmgrd rebinds it when its
    /// INTERFACE entry is re-created.
    fn port_master(&mut self, p: &PortExpectation, link: &Link, object: String, expected: String) {
        let repair = vec![Key::interface(&p.name)];
        self.wrong_master(link, object, expected, repair, RepairMethod::Recreate);
    }

    /// `link` has another master than `expected`.
    fn wrong_master(
        &mut self,
        link: &Link,
        object: String,
        expected: String,
        repair: Vec<Key>,
        method: RepairMethod,
    ) {
        let found = describe_master(self.state, link);
        let kind = MismatchKind::PortMaster;
        self.push(kind, object, expected, found, repair, method);
    }

    /// A port that is an untagged member of VLAN `vid` (PXE).
    fn member(&mut self, p: &PortExpectation, link: &Link, object: String, vid: u16) {
        let repair = vec![Key::vlan_member(vid, &p.name)];
        let vlans = self.state.bridge_vlans(&p.name);
        if link.master != self.bridge {
            let expected = format!("master {}", self.exp.bridge);
            // vlanmgrd's DEL runs `bridge vlan del` on a port that left the
            // bridge: it throws (#13772).
            let method = RepairMethod::RestartOnly;
            self.wrong_master(link, object, expected, repair, method);
        } else if !vlans.is_some_and(|b| b.is_untagged_pvid(vid)) {
            // The DEL's `bridge vlan del` only works while the port still
            // has the VLAN.
            let method = match vlans.is_some_and(|b| b.vids.contains(&vid)) {
                true => RepairMethod::Recreate,
                false => RepairMethod::RestartOnly,
            };
            let expected = format!("pvid {vid} untagged in {}", self.exp.bridge);
            let found = match vlans.and_then(|b| b.pvid) {
                Some(pv) => format!("pvid {pv}"),
                None => "no pvid".into(),
            };
            self.push(
                MismatchKind::PortVlan,
                object,
                expected,
                found,
                repair,
                method,
            );
        }
    }
}

/// The keys of several mismatches, each once, in first-mentioned order.
pub fn repair_keys<'a>(mismatches: impl IntoIterator<Item = &'a Mismatch>) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::new();
    for m in mismatches {
        for k in &m.repair {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VlanRange;
    use crate::kernel::state::BridgeVlans;
    use crate::spec::{Filter, PortSpec, Prefixes, VrfSpec};

    /// A leaf like the lab's: a firewall and two underlay ports, three
    /// tenant ports in two VRFs, one unprovisioned port (admin down).
    fn spec() -> SwitchSpec {
        let port = |name: &str, role: PortRole, admin| {
            (
                name.to_owned(),
                PortSpec {
                    name: name.into(),
                    role,
                    admin,
                },
            )
        };
        let vrf = |vni, vlan, ports: &[&str]| {
            (
                vni,
                VrfSpec {
                    vni,
                    vlan,
                    ports: ports.iter().map(|p| (*p).to_owned()).collect(),
                    prefixes: Prefixes::default(),
                },
            )
        };
        SwitchSpec {
            hostname: "leaf01".into(),
            ports: [
                port(
                    "Ethernet0",
                    PortRole::Firewall {
                        filter: Filter::default(),
                    },
                    None,
                ),
                port("Ethernet1", PortRole::Tenant { vni: 104009 }, None),
                port(
                    "Ethernet2",
                    PortRole::Tenant { vni: 104009 },
                    Some(AdminStatus::Up),
                ),
                port("Ethernet3", PortRole::Tenant { vni: 104010 }, None),
                port(
                    "Ethernet4",
                    PortRole::Unprovisioned,
                    Some(AdminStatus::Down),
                ),
                port("Ethernet120", PortRole::Underlay, None),
            ]
            .into(),
            vrfs: [
                vrf(104009, 1001, &["Ethernet1", "Ethernet2"]),
                vrf(104010, 1002, &["Ethernet3"]),
            ]
            .into(),
            pxe_vlan: 3900,
            vtep: "vtep".into(),
            vlan_range: VlanRange {
                first: 1001,
                last: 2000,
            },
            static_vrfs: Default::default(),
            routing: crate::configdb::testkit::routing(),
        }
    }

    /// The kernel as SONiC's managers leave it for `spec()` (reference
    /// §3.2 and the managers' commands): vlanmgrd's `Bridge` (VLAN
    /// filtering, `dummy` in it, PXE `Vlan3900`), per VRF vrfmgrd's
    /// `ip link add Vrf<N> type vrf table T` + up, vlanmgrd's
    /// `ip link add link Bridge up name Vlan<V> type vlan id V`, intfmgrd's
    /// `ip link set Vlan<V> master Vrf<N>`, vxlanmgrd's `vtep-<V>` (vxlan id
    /// N, master Bridge, `bridge vlan add vid V untagged pvid`, up); per port
    /// portmgrd's MTU and admin state and intfmgrd's / vlanmgrd's master.
    struct Sonic {
        s: KernelState,
        next: u32,
    }

    impl Sonic {
        fn add(&mut self, name: &str, kind: LinkKind, f: impl FnOnce(&mut Link)) -> u32 {
            self.next += 1;
            let mut l = Link::new(self.next, name, kind);
            f(&mut l);
            self.s.upsert_link(l);
            self.next
        }
        fn idx(&self, name: &str) -> u32 {
            self.s.link(name).unwrap().index
        }
        fn edit(&mut self, name: &str, f: impl FnOnce(&mut Link)) {
            let mut l = self.s.link(name).unwrap().clone();
            f(&mut l);
            self.s.upsert_link(l);
        }
        fn pvid(&mut self, name: &str, vid: u16) {
            let i = self.idx(name);
            self.s.set_bridge_vlans(
                i,
                Some(BridgeVlans {
                    vids: [vid].into(),
                    pvid: Some(vid),
                    untagged: [vid].into(),
                }),
            );
        }
    }

    fn converged() -> Sonic {
        let mut k = Sonic {
            s: KernelState::new(),
            next: 0,
        };
        let up = |l: &mut Link| l.admin_up = true;
        let br = k.add(
            "Bridge",
            LinkKind::Bridge {
                vlan_filtering: Some(true),
            },
            up,
        );
        k.add("dummy", LinkKind::Dummy, |l| l.master = Some(br));
        k.add("Vlan3900", LinkKind::Vlan { id: Some(3900) }, |l| {
            l.admin_up = true;
            l.parent = Some(br);
        });
        for (vni, vlan, table) in [(104009u32, 1001u16, 1001u32), (104010, 1002, 1002)] {
            let vrf = k.add(
                &format!("Vrf{vni}"),
                LinkKind::Vrf { table: Some(table) },
                up,
            );
            k.add(
                &format!("Vlan{vlan}"),
                LinkKind::Vlan { id: Some(vlan) },
                |l| {
                    l.admin_up = true;
                    l.parent = Some(br);
                    l.master = Some(vrf);
                },
            );
            let dev = format!("vtep-{vlan}");
            k.add(&dev, LinkKind::Vxlan { vni: Some(vni) }, |l| {
                l.admin_up = true;
                l.master = Some(br);
            });
            k.pvid(&dev, vlan);
        }
        let vrf1 = k.idx("Vrf104009");
        let vrf2 = k.idx("Vrf104010");
        for (p, mtu, master) in [
            ("Ethernet0", 9216, None),
            ("Ethernet1", 9000, Some(vrf1)),
            ("Ethernet2", 9000, Some(vrf1)),
            ("Ethernet3", 9000, Some(vrf2)),
            ("Ethernet4", 9000, Some(br)),
            ("Ethernet120", 9216, None),
        ] {
            k.add(p, LinkKind::Device, |l| {
                l.mtu = Some(mtu);
                l.master = master;
                l.admin_up = p != "Ethernet4";
                l.running = l.admin_up;
            });
        }
        k.pvid("Ethernet4", 3900);
        k
    }

    fn keys(m: &Mismatch) -> Vec<String> {
        m.repair.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn expectations_follow_the_spec() {
        let e = expectations(&spec());
        assert_eq!(e.bridge, "Bridge");
        assert_eq!(
            e.vrfs.keys().collect::<Vec<_>>(),
            ["Vrf104009", "Vrf104010"]
        );
        let v = &e.vrfs["Vrf104009"];
        assert_eq!((v.vni, v.vlan), (104009, 1001));
        assert_eq!(v.svi(), "Vlan1001");
        assert_eq!(v.vxlan, "vtep-1001");
        assert_eq!(v.ports, ["Ethernet1", "Ethernet2"]);
        let p = |n: &str| e.ports[n].clone();
        assert_eq!(p("Ethernet0").attachment, Attachment::Routed);
        assert_eq!(p("Ethernet0").mtu, 9216);
        assert_eq!(p("Ethernet120").mtu, 9216);
        assert_eq!(
            p("Ethernet1").attachment,
            Attachment::Vrf("Vrf104009".into())
        );
        assert_eq!(p("Ethernet1").mtu, 9000);
        assert_eq!(p("Ethernet4").attachment, Attachment::UntaggedMember(3900));
        assert_eq!(p("Ethernet4").admin, Some(AdminStatus::Down));
        assert_eq!(p("Ethernet1").admin, None);
    }

    #[test]
    fn a_converged_kernel_has_no_mismatch() {
        let m = compare(&converged().s, &expectations(&spec()));
        assert!(m.is_empty(), "{m:#?}");
    }

    #[test]
    fn a_missing_vrf_device_names_the_vrf_and_everything_bound_to_it() {
        let mut k = converged();
        // `ip link del Vrf104009`: the kernel releases its slaves.
        let i = k.idx("Vrf104009");
        k.s.remove_link(i);
        for n in ["Vlan1001", "Ethernet1", "Ethernet2"] {
            k.edit(n, |l| l.master = None);
        }
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0].kind, MismatchKind::VrfMissing);
        assert_eq!(m[0].object, "VRF device Vrf104009");
        assert_eq!(m[0].found, "no such device");
        assert_eq!(
            keys(&m[0]),
            [
                "VRF|Vrf104009",
                "VLAN_INTERFACE|Vlan1001",
                "INTERFACE|Ethernet1",
                "INTERFACE|Ethernet2"
            ]
        );
        assert_eq!(m[0].method, RepairMethod::RestartOnly);
        assert!(m[0].to_string().contains("restart swss"), "{}", m[0]);
    }

    #[test]
    fn a_port_out_of_its_vrf_names_its_interface_entry() {
        let mut k = converged();
        k.edit("Ethernet3", |l| l.master = None);
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0].kind, MismatchKind::PortMaster);
        assert_eq!(m[0].object, "port Ethernet3");
        assert_eq!(m[0].expected, "master Vrf104010");
        assert_eq!(m[0].found, "no master");
        assert_eq!(keys(&m[0]), ["INTERFACE|Ethernet3"]);
        assert_eq!(m[0].method, RepairMethod::Recreate);
        // In the wrong VRF.
        let other = k.idx("Vrf104009");
        k.edit("Ethernet3", |l| l.master = Some(other));
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m[0].found, "master Vrf104009");
    }

    #[test]
    fn a_wrong_vni_names_the_vxlan_map() {
        let mut k = converged();
        // vxlan ids cannot change in place: delete and re-create with
        // another VNI, in the same VLAN.
        let i = k.idx("vtep-1002");
        k.s.remove_link(i);
        let br = k.idx("Bridge");
        k.add("vtep-1002", LinkKind::Vxlan { vni: Some(999) }, |l| {
            l.admin_up = true;
            l.master = Some(br);
        });
        k.pvid("vtep-1002", 1002);
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0].kind, MismatchKind::VxlanVni);
        assert_eq!(
            (m[0].expected.as_str(), m[0].found.as_str()),
            ("vni 104010", "vni 999")
        );
        assert_eq!(keys(&m[0]), ["VXLAN_TUNNEL_MAP|vtep|map_104010_Vlan1002"]);
        assert_eq!(m[0].method, RepairMethod::Recreate);
        assert_eq!(k.s.vlan_vni_map("Bridge")[&1002].vni, 999);
    }

    #[test]
    fn vxlan_svi_and_member_mismatches() {
        let mut k = converged();
        // The VXLAN device left its VLAN, the SVI left its VRF and went down,
        // the PXE member lost its PVID.
        k.pvid("vtep-1001", 7);
        k.edit("Vlan1002", |l| {
            l.master = None;
            l.admin_up = false;
        });
        k.pvid("Ethernet4", 1);
        let m = compare(&k.s, &expectations(&spec()));
        let got: Vec<(MismatchKind, String, Vec<String>)> = m
            .iter()
            .map(|m| (m.kind, m.found.clone(), keys(m)))
            .collect();
        let methods: Vec<RepairMethod> = m.iter().map(|m| m.method).collect();
        assert_eq!(
            methods,
            [
                RepairMethod::Recreate,
                RepairMethod::RestartOnly,
                RepairMethod::Recreate,
                // Ethernet4 lost VLAN 3900 altogether: vlanmgrd's
                // `bridge vlan del vid 3900` would throw.
                RepairMethod::RestartOnly,
            ]
        );
        assert_eq!(
            got,
            [
                (
                    MismatchKind::VxlanVlan,
                    "pvid 7 in Bridge".to_owned(),
                    vec!["VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001".to_owned()]
                ),
                (
                    MismatchKind::SviDown,
                    "admin down".into(),
                    vec!["VLAN|Vlan1002".into(), "VLAN_INTERFACE|Vlan1002".into()]
                ),
                (
                    MismatchKind::SviNotInVrf,
                    "no master".into(),
                    vec!["VLAN_INTERFACE|Vlan1002".into()]
                ),
                (
                    MismatchKind::PortVlan,
                    "pvid 1".into(),
                    vec!["VLAN_MEMBER|Vlan3900|Ethernet4".into()]
                ),
            ]
        );
        // A missing SVI and VXLAN device.
        let mut k = converged();
        for n in ["Vlan1001", "vtep-1001"] {
            let i = k.idx(n);
            k.s.remove_link(i);
        }
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(
            m.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [MismatchKind::SviMissing, MismatchKind::VxlanMissing]
        );
        assert_eq!(keys(&m[0]), ["VLAN|Vlan1001", "VLAN_INTERFACE|Vlan1001"]);
    }

    #[test]
    fn port_mtu_admin_and_missing() {
        let mut k = converged();
        k.edit("Ethernet0", |l| l.mtu = Some(1500));
        k.edit("Ethernet2", |l| l.admin_up = false);
        k.edit("Ethernet4", |l| l.admin_up = true);
        let i = k.idx("Ethernet120");
        k.s.remove_link(i);
        // The admin state of Ethernet1 is not the agent's: not checked.
        k.edit("Ethernet1", |l| l.admin_up = false);
        let m = compare(&k.s, &expectations(&spec()));
        let got: Vec<String> = m.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "port Ethernet0: expected mtu 9216, found mtu 1500; repair by writing PORT|Ethernet0 again",
                "port Ethernet120: expected the port's netdev, found no such device (no agent-owned CONFIG_DB entry can repair this)",
                "port Ethernet2: expected admin up, found admin down; repair by writing PORT|Ethernet2 again",
                "port Ethernet4: expected admin down, found admin up; repair by writing PORT|Ethernet4 again",
            ]
        );
    }

    #[test]
    fn a_missing_bridge_is_one_unrepairable_mismatch() {
        let mut k = converged();
        let br = k.idx("Bridge");
        // Deleting the bridge deletes the VLAN devices on it and frees its ports.
        k.s.remove_link(br);
        for n in ["Vlan3900", "Vlan1001", "Vlan1002"] {
            let i = k.idx(n);
            k.s.remove_link(i);
        }
        for n in ["vtep-1001", "vtep-1002", "Ethernet4", "dummy"] {
            k.edit(n, |l| l.master = None);
            let i = k.idx(n);
            k.s.set_bridge_vlans(i, None);
        }
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(m[0].kind, MismatchKind::BridgeMissing);
        assert!(m[0].repair.is_empty());
        assert_eq!(m[0].method, RepairMethod::None);
    }

    #[test]
    fn pxe_member_repairs_depend_on_what_vlanmgrd_can_delete() {
        let mut k = converged();
        let i = k.idx("Ethernet4");
        // Still in VLAN 3900, but tagged and another PVID: DEL works.
        k.s.set_bridge_vlans(
            i,
            Some(BridgeVlans {
                vids: [1, 3900].into(),
                pvid: Some(1),
                untagged: [1].into(),
            }),
        );
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert_eq!(
            (m[0].kind, m[0].method),
            (MismatchKind::PortVlan, RepairMethod::Recreate)
        );
        assert_eq!(keys(&m[0]), ["VLAN_MEMBER|Vlan3900|Ethernet4"]);
        // Out of the bridge.
        k.edit("Ethernet4", |l| l.master = None);
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(
            (m[0].kind, m[0].method, m[0].found.as_str()),
            (
                MismatchKind::PortMaster,
                RepairMethod::RestartOnly,
                "no master"
            )
        );
    }

    #[test]
    fn an_underlay_port_in_a_vrf_or_bridge_is_reported() {
        let mut k = converged();
        let vrf = k.idx("Vrf104009");
        k.edit("Ethernet120", |l| l.master = Some(vrf));
        let m = compare(&k.s, &expectations(&spec()));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, MismatchKind::PortMaster);
        assert_eq!(m[0].found, "master Vrf104009");
        assert_eq!(keys(&m[0]), ["INTERFACE|Ethernet120"]);
    }

    #[test]
    fn repair_keys_are_deduplicated_in_order() {
        let mut k = converged();
        let i = k.idx("Vrf104009");
        k.s.remove_link(i);
        k.edit("Ethernet1", |l| l.mtu = Some(1500));
        let m = compare(&k.s, &expectations(&spec()));
        let ks: Vec<String> = repair_keys(&m).iter().map(ToString::to_string).collect();
        assert_eq!(
            ks,
            [
                "VRF|Vrf104009",
                "VLAN_INTERFACE|Vlan1001",
                "INTERFACE|Ethernet1",
                "INTERFACE|Ethernet2",
                "PORT|Ethernet1"
            ]
        );
    }
}
