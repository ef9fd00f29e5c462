//! The kernel's interfaces as plain data: [`KernelState`] (pure).
//!
//! One network namespace's links (with their kind, flags, MTU, master,
//! lower device), their addresses, and the VLANs of bridge ports, indexed by
//! interface index and by name. The kernel view (`super::view`, feature
//! `agent`) keeps one current from netlink; tests build one by hand.
//!
//! Invariants: every name maps to exactly one link and back; addresses and
//! bridge VLANs only exist for links that exist (removing a link removes
//! them). Mutators report whether anything changed, so the view publishes a
//! new snapshot only when the state differs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::observed::PortOperState;

/// What a link is (`IFLA_INFO_KIND` and the parts of `IFLA_INFO_DATA` the
/// agent reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum LinkKind {
    /// No `IFLA_LINKINFO`: a physical netdev (SONiC's front-panel host
    /// interfaces, `eth0`) or the loopback.
    Device,
    Veth,
    Dummy,
    /// `vlan_filtering` when the kernel reports it.
    Bridge {
        vlan_filtering: Option<bool>,
    },
    /// A VRF device and its routing table.
    Vrf {
        table: Option<u32>,
    },
    /// An 802.1Q VLAN device; its lower device is [`Link::parent`].
    Vlan {
        id: Option<u16>,
    },
    /// A VXLAN device and its VNI.
    Vxlan {
        vni: Option<u32>,
    },
    /// Any other kind, by its kernel name.
    Other {
        name: String,
    },
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkKind::Device => f.write_str("device"),
            LinkKind::Veth => f.write_str("veth"),
            LinkKind::Dummy => f.write_str("dummy"),
            LinkKind::Bridge { .. } => f.write_str("bridge"),
            LinkKind::Vrf { .. } => f.write_str("vrf"),
            LinkKind::Vlan { .. } => f.write_str("vlan"),
            LinkKind::Vxlan { .. } => f.write_str("vxlan"),
            LinkKind::Other { name } => f.write_str(name),
        }
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    /// `IFF_UP`: the administrative state.
    pub admin_up: bool,
    /// `IFF_RUNNING`: the operational state metal-core reports.
    pub running: bool,
    pub mtu: Option<u32>,
    /// `IFLA_MASTER`: the bridge or VRF this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_LINK`: the lower device (a VLAN device's bridge).
    pub parent: Option<u32>,
}

impl Link {
    /// A link with only a name, index and kind (down, no MTU, no master).
    pub fn new(index: u32, name: impl Into<String>, kind: LinkKind) -> Link {
        Link {
            index,
            name: name.into(),
            kind,
            admin_up: false,
            running: false,
            mtu: None,
            master: None,
            parent: None,
        }
    }

    /// The state reported to the API (`IFF_RUNNING`, like metal-core).
    pub fn oper_state(&self) -> PortOperState {
        if self.running {
            PortOperState::Up
        } else {
            PortOperState::Down
        }
    }
}

/// The VLANs of one bridge port (or of the bridge itself, `self`), from
/// `AF_BRIDGE` link messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BridgeVlans {
    pub vids: BTreeSet<u16>,
    /// The port VLAN id (ingress untagged frames land here).
    pub pvid: Option<u16>,
    /// VLANs that egress untagged.
    pub untagged: BTreeSet<u16>,
}

impl BridgeVlans {
    /// `vid` is the port's PVID and egresses untagged — what
    /// `bridge vlan add vid <vid> dev <p> pvid untagged` sets up (vlanmgrd
    /// for untagged members, vxlanmgrd for VXLAN devices).
    pub fn is_untagged_pvid(&self, vid: u16) -> bool {
        self.pvid == Some(vid) && self.untagged.contains(&vid)
    }
}

/// One interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Address {
    pub ip: IpAddr,
    pub prefix_len: u8,
}

/// One entry of the kernel's VLAN↔VNI map: a VXLAN device enslaved to a
/// bridge whose PVID is the VLAN (vxlanmgrd's `<vtep>-<vid>` devices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VniMapping {
    pub device: String,
    pub vni: u32,
}

/// A VLAN device as [`KernelState::vlan_devices`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VlanDevice<'a> {
    pub id: Option<u16>,
    /// The lower device (`Bridge` for SONiC's `Vlan<N>`).
    pub lower: Option<&'a str>,
    /// The VRF it is enslaved to.
    pub master: Option<&'a str>,
}

/// An operational-state change of one port (any link, by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortEvent {
    pub port: String,
    pub old: PortOperState,
    pub new: PortOperState,
}

impl fmt::Display for PortEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?} -> {:?}", self.port, self.old, self.new)
    }
}

/// Why there is no management address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MgmtAddressError {
    #[error(
        "management interface {interface} does not exist in this network namespace \
         (links: {known}); set management_interface to the interface that carries the \
         switch's management address"
    )]
    NoInterface { interface: String, known: String },
    #[error(
        "management interface {interface} has no global unicast address (found: {found}); \
         the switch registers with its management address, so give {interface} one \
         (DHCP or static) or set management_interface"
    )]
    NoAddress { interface: String, found: String },
}

/// Go's `net.IP.IsGlobalUnicast`: not unspecified, loopback, multicast,
/// link-local or the IPv4 broadcast address. Private ranges count.
pub fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// The interfaces of one network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelState {
    links: BTreeMap<u32, Link>,
    #[serde(skip)]
    names: BTreeMap<String, u32>,
    /// Per link index, in the kernel's order (dump order, then arrival).
    addresses: BTreeMap<u32, Vec<Address>>,
    /// Per link index, from `AF_BRIDGE` messages.
    bridge_vlans: BTreeMap<u32, BridgeVlans>,
    /// The state is complete: a full dump succeeded and no event has been
    /// lost since. `false` while the view resynchronises after a lost event
    /// or a socket error; a barrier must not pass on an incomplete state.
    pub in_sync: bool,
    /// Increases with every published change (set by the view).
    pub generation: u64,
}

impl KernelState {
    /// An empty, in-sync state (for building one by hand).
    pub fn new() -> KernelState {
        KernelState {
            in_sync: true,
            ..KernelState::default()
        }
    }

    // ---- queries ----

    /// Every link, by index.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.names.get(name).and_then(|i| self.links.get(i))
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.get(&index)
    }

    /// The name of the link `name` is enslaved to.
    pub fn master_of(&self, name: &str) -> Option<&str> {
        let master = self.link(name)?.master?;
        self.links.get(&master).map(|l| l.name.as_str())
    }

    /// The name of a link's lower device.
    pub fn parent_of(&self, name: &str) -> Option<&str> {
        let parent = self.link(name)?.parent?;
        self.links.get(&parent).map(|l| l.name.as_str())
    }

    /// A port's operational state; `Unknown` when the netdev does not exist.
    pub fn oper_state(&self, name: &str) -> PortOperState {
        self.link(name)
            .map_or(PortOperState::Unknown, Link::oper_state)
    }

    /// Operational state per link name.
    pub fn oper_states(&self) -> BTreeMap<String, PortOperState> {
        self.links
            .values()
            .map(|l| (l.name.clone(), l.oper_state()))
            .collect()
    }

    /// The addresses of `name`, in the kernel's order.
    pub fn addresses(&self, name: &str) -> &[Address] {
        self.names
            .get(name)
            .and_then(|i| self.addresses.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// The bridge VLANs of port `name` (`None`: not a bridge port, or the
    /// kernel reported none).
    pub fn bridge_vlans(&self, name: &str) -> Option<&BridgeVlans> {
        self.names.get(name).and_then(|i| self.bridge_vlans.get(i))
    }

    /// VRF devices: name → routing table.
    pub fn vrfs(&self) -> BTreeMap<&str, Option<u32>> {
        self.links
            .values()
            .filter_map(|l| match l.kind {
                LinkKind::Vrf { table } => Some((l.name.as_str(), table)),
                _ => None,
            })
            .collect()
    }

    /// VLAN devices by name.
    pub fn vlan_devices(&self) -> BTreeMap<&str, VlanDevice<'_>> {
        self.links
            .values()
            .filter_map(|l| match l.kind {
                LinkKind::Vlan { id } => Some((
                    l.name.as_str(),
                    VlanDevice {
                        id,
                        lower: self.parent_of(&l.name),
                        master: self.master_of(&l.name),
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// VXLAN devices: name → (VNI, PVID in their bridge).
    pub fn vxlan_devices(&self) -> BTreeMap<&str, (Option<u32>, Option<u16>)> {
        self.links
            .values()
            .filter_map(|l| match l.kind {
                LinkKind::Vxlan { vni } => Some((
                    l.name.as_str(),
                    (vni, self.bridge_vlans(&l.name).and_then(|v| v.pvid)),
                )),
                _ => None,
            })
            .collect()
    }

    /// The kernel's VLAN↔VNI map in `bridge`: VLAN id → the VXLAN device
    /// enslaved to `bridge` with that PVID, and its VNI.
    pub fn vlan_vni_map(&self, bridge: &str) -> BTreeMap<u16, VniMapping> {
        let Some(br) = self.link(bridge).map(|l| l.index) else {
            return BTreeMap::new();
        };
        self.links
            .values()
            .filter(|l| l.master == Some(br))
            .filter_map(|l| {
                let LinkKind::Vxlan { vni: Some(vni) } = l.kind else {
                    return None;
                };
                let pvid = self.bridge_vlans.get(&l.index)?.pvid?;
                Some((
                    pvid,
                    VniMapping {
                        device: l.name.clone(),
                        vni,
                    },
                ))
            })
            .collect()
    }

    /// The first global unicast address of `interface` (metal-core's
    /// management address: IPv4 before IPv6, each in the kernel's order).
    pub fn management_address(&self, interface: &str) -> Result<IpAddr, MgmtAddressError> {
        if self.link(interface).is_none() {
            let mut known: Vec<&str> = self.names.keys().map(String::as_str).collect();
            known.truncate(12);
            return Err(MgmtAddressError::NoInterface {
                interface: interface.to_owned(),
                known: known.join(", "),
            });
        }
        let addrs = self.addresses(interface);
        let ordered: Vec<IpAddr> = addrs
            .iter()
            .map(|a| a.ip)
            .filter(IpAddr::is_ipv4)
            .chain(addrs.iter().map(|a| a.ip).filter(IpAddr::is_ipv6))
            .collect();
        ordered
            .iter()
            .copied()
            .find(is_global_unicast)
            .ok_or_else(|| MgmtAddressError::NoAddress {
                interface: interface.to_owned(),
                found: if ordered.is_empty() {
                    "none".into()
                } else {
                    ordered
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    // ---- mutators (the view's decoder, and tests) ----

    /// Insert or replace a link; `true` when something changed. A link of
    /// the same name under another index is gone (names are unique).
    pub fn upsert_link(&mut self, link: Link) -> bool {
        if self.links.get(&link.index) == Some(&link) {
            return false;
        }
        if let Some(&other) = self.names.get(&link.name)
            && other != link.index
        {
            self.remove_link(other);
        }
        if let Some(old) = self.links.get(&link.index)
            && old.name != link.name
        {
            self.names.remove(&old.name);
        }
        self.names.insert(link.name.clone(), link.index);
        self.links.insert(link.index, link);
        true
    }

    /// Remove a link with its addresses and bridge VLANs.
    pub fn remove_link(&mut self, index: u32) -> Option<Link> {
        let link = self.links.remove(&index)?;
        self.names.remove(&link.name);
        self.addresses.remove(&index);
        self.bridge_vlans.remove(&index);
        Some(link)
    }

    /// Set (or clear) a link's bridge VLANs; `true` when something changed.
    /// Ignored for a link that does not exist.
    pub fn set_bridge_vlans(&mut self, index: u32, vlans: Option<BridgeVlans>) -> bool {
        if !self.links.contains_key(&index) {
            return false;
        }
        match vlans {
            Some(v) => self.bridge_vlans.insert(index, v.clone()) != Some(v),
            None => self.bridge_vlans.remove(&index).is_some(),
        }
    }

    /// Add an address (kept in arrival order); `true` when it is new.
    /// Ignored for a link that does not exist.
    pub fn add_address(&mut self, index: u32, address: Address) -> bool {
        if !self.links.contains_key(&index) {
            return false;
        }
        let list = self.addresses.entry(index).or_default();
        if list.contains(&address) {
            return false;
        }
        list.push(address);
        true
    }

    /// Remove an address; `true` when it was there.
    pub fn remove_address(&mut self, index: u32, address: &Address) -> bool {
        let Some(list) = self.addresses.get_mut(&index) else {
            return false;
        };
        let before = list.len();
        list.retain(|a| a != address);
        let changed = list.len() != before;
        if list.is_empty() {
            self.addresses.remove(&index);
        }
        changed
    }

    /// Same links, addresses and bridge VLANs (ignores sync status and
    /// generation).
    pub fn same_content(&self, other: &KernelState) -> bool {
        self.links == other.links
            && self.addresses == other.addresses
            && self.bridge_vlans == other.bridge_vlans
    }
}

/// The operational-state changes from `old` to `new`, by link name (a link
/// that appears comes from `Unknown`, one that disappears goes to it).
pub fn port_events(old: &KernelState, new: &KernelState) -> Vec<PortEvent> {
    let mut out = Vec::new();
    for (name, &i) in &old.names {
        let before = old
            .links
            .get(&i)
            .map_or(PortOperState::Unknown, Link::oper_state);
        let after = new.oper_state(name);
        if before != after {
            out.push(PortEvent {
                port: name.clone(),
                old: before,
                new: after,
            });
        }
    }
    for name in new.names.keys() {
        if !old.names.contains_key(name) {
            let after = new.oper_state(name);
            out.push(PortEvent {
                port: name.clone(),
                old: PortOperState::Unknown,
                new: after,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, kind: LinkKind) -> Link {
        Link::new(index, name, kind)
    }

    #[test]
    fn global_unicast_like_go() {
        for (ip, want) in [
            ("10.1.0.11", true),
            ("172.17.0.10", true),
            ("2001:db8::1", true),
            ("fd00::1", true),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("fe80::1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_global_unicast(&ip), want, "{ip}");
        }
    }

    #[test]
    fn names_stay_unique_across_renames_and_reuse() {
        let mut s = KernelState::new();
        assert!(s.upsert_link(link(5, "Ethernet0", LinkKind::Device)));
        assert!(!s.upsert_link(link(5, "Ethernet0", LinkKind::Device)));
        // Renamed in place.
        assert!(s.upsert_link(link(5, "eth5", LinkKind::Device)));
        assert!(s.link("Ethernet0").is_none());
        assert_eq!(s.link("eth5").unwrap().index, 5);
        // The name comes back under another index: the old link is gone.
        s.add_address(
            5,
            Address {
                ip: "10.0.0.1".parse().unwrap(),
                prefix_len: 24,
            },
        );
        assert!(s.upsert_link(link(9, "eth5", LinkKind::Veth)));
        assert_eq!(s.len(), 1);
        assert_eq!(s.link("eth5").unwrap().index, 9);
        assert!(s.addresses("eth5").is_empty(), "addresses of the old link");
    }

    #[test]
    fn management_address_prefers_ipv4_then_kernel_order() {
        let mut s = KernelState::new();
        s.upsert_link(link(2, "eth0", LinkKind::Device));
        let a = |ip: &str, p| Address {
            ip: ip.parse().unwrap(),
            prefix_len: p,
        };
        assert_eq!(
            s.management_address("eth0").unwrap_err(),
            MgmtAddressError::NoAddress {
                interface: "eth0".into(),
                found: "none".into()
            }
        );
        s.add_address(2, a("fe80::1", 64));
        s.add_address(2, a("2001:db8::11", 64));
        s.add_address(2, a("169.254.7.7", 16));
        assert_eq!(
            s.management_address("eth0").unwrap().to_string(),
            "2001:db8::11"
        );
        s.add_address(2, a("10.99.0.11", 24));
        assert_eq!(
            s.management_address("eth0").unwrap().to_string(),
            "10.99.0.11"
        );
        assert!(s.remove_address(2, &a("10.99.0.11", 24)));
        assert!(!s.remove_address(2, &a("10.99.0.11", 24)));
        assert_eq!(
            s.management_address("eth0").unwrap().to_string(),
            "2001:db8::11"
        );
        let e = s.management_address("mgmt9").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.to_string().contains("eth0"), "{e}");
    }

    #[test]
    fn vlan_vni_map_follows_vxlan_pvids_in_the_bridge() {
        let mut s = KernelState::new();
        s.upsert_link(link(
            1,
            "Bridge",
            LinkKind::Bridge {
                vlan_filtering: Some(true),
            },
        ));
        let mut vx = link(2, "vtep-1001", LinkKind::Vxlan { vni: Some(104009) });
        vx.master = Some(1);
        s.upsert_link(vx);
        // Not in the bridge: not part of the map.
        s.upsert_link(link(3, "vtep-1002", LinkKind::Vxlan { vni: Some(104010) }));
        s.set_bridge_vlans(
            2,
            Some(BridgeVlans {
                vids: [1001].into(),
                pvid: Some(1001),
                untagged: [1001].into(),
            }),
        );
        let map = s.vlan_vni_map("Bridge");
        assert_eq!(map.len(), 1);
        assert_eq!(map[&1001].vni, 104009);
        assert_eq!(map[&1001].device, "vtep-1001");
        assert!(s.vlan_vni_map("NoBridge").is_empty());
        assert_eq!(s.vxlan_devices()["vtep-1002"], (Some(104010), None));
    }

    #[test]
    fn events_by_name_with_unknown_for_missing_links() {
        let mut old = KernelState::new();
        let mut up = link(1, "Ethernet0", LinkKind::Veth);
        up.running = true;
        old.upsert_link(up.clone());
        old.upsert_link(link(2, "Ethernet1", LinkKind::Veth));
        let mut new = KernelState::new();
        let mut down = up.clone();
        down.running = false;
        new.upsert_link(down);
        new.upsert_link(link(3, "Ethernet2", LinkKind::Veth));
        let ev = port_events(&old, &new);
        let s: Vec<String> = ev.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "Ethernet0: Up -> Down",
                "Ethernet1: Down -> Unknown",
                "Ethernet2: Unknown -> Down"
            ]
        );
    }
}
