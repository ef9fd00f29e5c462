//! Which existing CONFIG_DB entries belong to the agent (pure).
//!
//! The agent owns only what it creates (ARCHITECTURE.md, "Ownership"):
//! - tenant VRFs: `VRF|Vrf<VNI>` (exact decimal form) not listed in `static_vrfs`;
//! - tenant VLAN ids: ids inside `vlan_range` that are tied to the agent's
//!   tenant objects — by a VXLAN map whose VNI is not a foreign VRF's, by a
//!   `VLAN_INTERFACE` bound to an owned VRF, or by a `SUPPRESS_VLAN_NEIGH`
//!   entry — and not tied to anything foreign. Their `VLAN`, `VLAN_INTERFACE`,
//!   `SUPPRESS_VLAN_NEIGH`, `VLAN_MEMBER` and `VXLAN_TUNNEL_MAP` entries are
//!   owned. A VLAN inside the range without such a tie (an operator's) is
//!   foreign and never touched; new tenant VLANs avoid every existing id;
//! - for managed ports: `VLAN_MEMBER|Vlan<pxe>|<port>`, `INTERFACE|<port>`
//!   unless bound to a VRF the agent does not own, and the `mtu` /
//!   `admin_status` fields of `PORT|<port>` (never the key itself);
//! - `INTERFACE|<port>` of any port bound to an owned VRF.
//!
//! IP sub-keys (`INTERFACE|<p>|<prefix>`), VXLAN_TUNNEL, VXLAN_EVPN_NVO and
//! every other table are never owned.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};

use super::schema::{DbState, Fields, SEP, Table, parse_canonical, vid_of_vlan_name};
use crate::config::VlanRange;
use crate::spec::{MAX_VNI, SwitchSpec, vni_of_vrf_name};

/// The agent's tenant objects found in CONFIG_DB, and what others hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy<'s> {
    /// Owned VRF names.
    pub vrfs: FxHashSet<&'s str>,
    /// Owned VLAN ids.
    pub vlans: FxHashSet<u16>,
    /// Owned VXLAN map names (`<vtep>|<map>`).
    pub maps: FxHashSet<&'s str>,
    /// VNI → VLAN id, from owned maps (the map with the smallest name wins).
    pub vni_vlans: FxHashMap<u32, u16>,
    /// VNIs used by objects the agent does not own → a description.
    pub foreign_vnis: BTreeMap<u32, String>,
    /// VLAN ids inside the range held by objects the agent does not own.
    pub foreign_vlans: BTreeMap<u16, String>,
}

fn nonzero_vni(fields: &Fields) -> Option<u32> {
    fields
        .get("vni")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| (1..=MAX_VNI).contains(v))
}

/// `(vni, vid)` of a VXLAN map entry `name` (`<vtep>|<map>`): from the map
/// name when it follows the agent's convention `map_<vni>_Vlan<vid>` (what
/// the agent created, so a corrupted entry is repaired in place), else from
/// its fields.
pub(crate) fn map_target(name: &str, fields: &Fields) -> (Option<u32>, Option<u16>) {
    let map_name = name.rsplit(SEP).next().unwrap_or("");
    let from_name = map_name
        .strip_prefix("map_")
        .and_then(|r| r.split_once('_'))
        .and_then(|(n, v)| Some((parse_canonical(n)?, vid_of_vlan_name(v)?)));
    if let Some((vni, vid)) = from_name {
        return (Some(vni), Some(vid));
    }
    let vni = fields.get("vni").and_then(|v| v.parse().ok());
    let vid = fields.get("vlan").and_then(|v| vid_of_vlan_name(v));
    (vni, vid)
}

impl<'s> Tenancy<'s> {
    /// Classify the tenant objects of `state`.
    pub fn from_state(
        state: &'s DbState,
        range: VlanRange,
        static_vrfs: &BTreeSet<String>,
    ) -> Tenancy<'s> {
        let mut t = Tenancy {
            vrfs: FxHashSet::with_capacity_and_hasher(
                state.table_len(Table::Vrf),
                Default::default(),
            ),
            maps: FxHashSet::with_capacity_and_hasher(
                state.table_len(Table::VxlanTunnelMap),
                Default::default(),
            ),
            ..Tenancy::default()
        };
        for (name, fields) in state.table(Table::Vrf) {
            if vni_of_vrf_name(name).is_some() && !static_vrfs.contains(name) {
                t.vrfs.insert(name);
            } else if let Some(vni) = nonzero_vni(fields) {
                t.foreign_vnis
                    .insert(vni, format!("VRF {name} (not owned by the agent)"));
            }
        }
        let mut owned_maps: Vec<(&str, u32, u16)> = Vec::new();
        let mut foreign_maps: Vec<(&str, Option<u32>, Option<u16>)> = Vec::new();
        for (name, fields) in state.table(Table::VxlanTunnelMap) {
            match map_target(name, fields) {
                (Some(vni), Some(vid))
                    if range.contains(vid) && !t.foreign_vnis.contains_key(&vni) =>
                {
                    owned_maps.push((name, vni, vid));
                }
                (vni, vid) => foreign_maps.push((name, vni, vid)),
            }
        }
        // Deterministic descriptions whatever the hash order.
        foreign_maps.sort_unstable_by_key(|m| m.0);
        for (name, vni, vid) in foreign_maps {
            let key = format!("{}{SEP}{name}", Table::VxlanTunnelMap.name());
            if let Some(vni) = vni {
                t.foreign_vnis
                    .entry(vni)
                    .or_insert_with(|| format!("{key} (not owned by the agent)"));
            }
            if let Some(vid) = vid.filter(|v| range.contains(*v)) {
                t.foreign_vlans.entry(vid).or_insert(key);
            }
        }
        let mut candidates: FxHashSet<u16> = FxHashSet::with_capacity_and_hasher(
            owned_maps.len() + state.table_len(Table::SuppressVlanNeigh),
            Default::default(),
        );
        candidates.extend(owned_maps.iter().map(|m| m.2));
        for (name, fields) in state.table(Table::VlanInterface) {
            let Some(vid) = vid_of_vlan_name(name).filter(|v| range.contains(*v)) else {
                continue;
            };
            match fields.get("vrf_name").map(String::as_str) {
                Some(vrf) if t.vrfs.contains(vrf) => {
                    candidates.insert(vid);
                }
                Some(vrf) if !vrf.is_empty() => {
                    t.foreign_vlans.insert(
                        vid,
                        format!("VLAN_INTERFACE{SEP}{name} (bound to VRF {vrf})"),
                    );
                }
                _ => {}
            }
        }
        for (name, _) in state.table(Table::SuppressVlanNeigh) {
            if let Some(vid) = vid_of_vlan_name(name).filter(|v| range.contains(*v)) {
                candidates.insert(vid);
            }
        }
        t.vlans = candidates
            .into_iter()
            .filter(|v| !t.foreign_vlans.contains_key(v))
            .collect();
        let mut smallest: FxHashMap<u32, &str> =
            FxHashMap::with_capacity_and_hasher(owned_maps.len(), Default::default());
        t.vni_vlans.reserve(owned_maps.len());
        for (name, vni, vid) in owned_maps {
            if t.vlans.contains(&vid) {
                let first = smallest.get(&vni).is_none_or(|s| name < *s);
                if first {
                    smallest.insert(vni, name);
                    t.vni_vlans.insert(vni, vid);
                }
                t.maps.insert(name);
            } else {
                // The map's VLAN is held by someone else: so is the map.
                t.foreign_vnis.entry(vni).or_insert_with(|| {
                    format!("VXLAN_TUNNEL_MAP{SEP}{name} (its VLAN is not owned by the agent)")
                });
            }
        }
        t
    }
}

/// Ownership of existing entries for one desired state.
#[derive(Debug, Clone)]
pub struct Ownership<'a> {
    pub tenancy: Tenancy<'a>,
    spec: &'a SwitchSpec,
}

impl<'a> Ownership<'a> {
    pub fn new(state: &'a DbState, spec: &'a SwitchSpec) -> Self {
        Ownership {
            tenancy: Tenancy::from_state(state, spec.vlan_range, &spec.static_vrfs),
            spec,
        }
    }

    fn managed(&self, port: &str) -> bool {
        self.spec.ports.contains_key(port)
    }

    /// Whether the whole entry `table|name` (currently `fields`) belongs to
    /// the agent. `PORT` entries never do (only some of their fields, see
    /// `target`).
    pub fn owns(&self, table: Table, name: &str, fields: &Fields) -> bool {
        let t = &self.tenancy;
        let single_vlan = || vid_of_vlan_name(name).is_some_and(|v| t.vlans.contains(&v));
        match table {
            Table::Port | Table::VxlanTunnel | Table::VxlanEvpnNvo => false,
            Table::Interface => {
                if name.contains(SEP) {
                    return false;
                }
                match fields.get("vrf_name").map(String::as_str) {
                    Some(vrf) if !vrf.is_empty() => t.vrfs.contains(vrf),
                    _ => self.managed(name),
                }
            }
            Table::Vrf => t.vrfs.contains(name),
            Table::Vlan | Table::VlanInterface | Table::SuppressVlanNeigh => single_vlan(),
            Table::VlanMember => {
                let Some((vlan, port)) = name.split_once(SEP) else {
                    return false;
                };
                match vid_of_vlan_name(vlan) {
                    Some(v) if v == self.spec.pxe_vlan => self.managed(port),
                    Some(v) => t.vlans.contains(&v),
                    None => false,
                }
            }
            Table::VxlanTunnelMap => t.maps.contains(name),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Ownership as ARCHITECTURE.md ("Ownership") and README.md ("What the
    //! agent writes, and what it never touches") state it, on a snapshot
    //! written by hand.
    use super::*;
    use crate::configdb::schema::Key;
    use crate::configdb::testkit::{TENANT_104009, firewall, port, spec, state};
    use crate::spec::PortRole;

    fn snapshot() -> DbState {
        let mut e: Vec<(&str, &[(&str, &str)])> = vec![
            ("PORT|Ethernet0", &[("mtu", "9216"), ("alias", "Eth1/1")]),
            ("VXLAN_TUNNEL|vtep", &[("src_ip", "10.0.0.11")]),
            ("VXLAN_EVPN_NVO|nvo", &[("source_vtep", "vtep")]),
        ];
        // the agent's tenant VRF with its L3VNI objects (VLAN 1001)
        e.extend(TENANT_104009);
        e.extend_from_slice(&[
            (
                "VLAN_MEMBER|Vlan1001|Ethernet7",
                &[("tagging_mode", "tagged")],
            ),
            // an operator's VRF with a VNI and a map of its own (VLAN 1004)
            ("VRF|VrfMpls", &[("vni", "5000")]),
            ("VLAN|Vlan1004", &[("vlanid", "1004")]),
            (
                "VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan1004",
                &[("vlan", "Vlan1004"), ("vni", "5000")],
            ),
            // a static VRF (static_vrfs) whose VLAN is inside the range
            ("VRF|Vrf42", &[("vni", "42")]),
            ("VLAN|Vlan1500", &[("vlanid", "1500")]),
            ("VLAN_INTERFACE|Vlan1500", &[("vrf_name", "Vrf42")]),
            // not the agent's decimal form
            ("VRF|Vrf0104010", &[("NULL", "NULL")]),
            // an operator's VLAN inside the range, tied to nothing
            ("VLAN|Vlan1002", &[("vlanid", "1002")]),
            // suppression alone ties a VLAN of the range to the agent
            ("SUPPRESS_VLAN_NEIGH|Vlan1003", &[("suppress", "on")]),
            // outside the range: never the agent's
            ("VLAN|Vlan3000", &[("vlanid", "3000")]),
            ("SUPPRESS_VLAN_NEIGH|Vlan3000", &[("suppress", "on")]),
            // the PXE VLAN and memberships of a managed and an unmanaged port
            ("VLAN|Vlan3900", &[("vlanid", "3900")]),
            (
                "VLAN_MEMBER|Vlan3900|Ethernet2",
                &[("tagging_mode", "untagged")],
            ),
            (
                "VLAN_MEMBER|Vlan3900|Ethernet50",
                &[("tagging_mode", "untagged")],
            ),
            // interfaces
            (
                "INTERFACE|Ethernet0",
                &[("ipv6_use_link_local_only", "enable")],
            ),
            ("INTERFACE|Ethernet0|10.0.0.1/31", &[("NULL", "NULL")]),
            ("INTERFACE|Ethernet10", &[("vrf_name", "VrfMpls")]),
            (
                "INTERFACE|Ethernet11",
                &[
                    ("vrf_name", "Vrf104009"),
                    ("ipv6_use_link_local_only", "enable"),
                ],
            ),
            (
                "INTERFACE|Ethernet12",
                &[("ipv6_use_link_local_only", "enable")],
            ),
        ]);
        state(&e)
    }

    fn owned(o: &Ownership<'_>, s: &DbState, key: &str) -> bool {
        let k = Key::parse(key).unwrap();
        let fields = s
            .get(&k)
            .unwrap_or_else(|| panic!("{key} not in the snapshot"));
        o.owns(k.table, &k.name, fields)
    }

    #[test]
    fn the_agent_owns_what_it_creates_and_nothing_else() {
        let s = snapshot();
        let mut sp = spec(
            vec![
                port("Ethernet0", firewall(), None),
                port("Ethernet2", PortRole::Unprovisioned, None),
                port("Ethernet10", PortRole::Underlay, None),
            ],
            &[],
        );
        sp.static_vrfs.insert("Vrf42".into());
        let o = Ownership::new(&s, &sp);
        let yes = [
            "VRF|Vrf104009",
            "VLAN|Vlan1001",
            "VLAN_INTERFACE|Vlan1001",
            "SUPPRESS_VLAN_NEIGH|Vlan1001",
            "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
            "VLAN_MEMBER|Vlan1001|Ethernet7",
            "SUPPRESS_VLAN_NEIGH|Vlan1003",
            "VLAN_MEMBER|Vlan3900|Ethernet2",
            "INTERFACE|Ethernet0",
            // bound to an owned VRF, even on a port the API does not list
            "INTERFACE|Ethernet11",
        ];
        let no = [
            "PORT|Ethernet0",
            "VXLAN_TUNNEL|vtep",
            "VXLAN_EVPN_NVO|nvo",
            "VRF|VrfMpls",
            "VLAN|Vlan1004",
            "VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan1004",
            "VRF|Vrf42",
            "VLAN|Vlan1500",
            "VLAN_INTERFACE|Vlan1500",
            "VRF|Vrf0104010",
            "VLAN|Vlan1002",
            "VLAN|Vlan3000",
            "SUPPRESS_VLAN_NEIGH|Vlan3000",
            "VLAN|Vlan3900",
            "VLAN_MEMBER|Vlan3900|Ethernet50",
            "INTERFACE|Ethernet0|10.0.0.1/31",
            // managed, but bound to a VRF the agent does not own
            "INTERFACE|Ethernet10",
            // not managed and not bound
            "INTERFACE|Ethernet12",
        ];
        for k in yes {
            assert!(owned(&o, &s, k), "{k} should be the agent's");
        }
        for k in no {
            assert!(!owned(&o, &s, k), "{k} must never be the agent's");
        }
    }

    #[test]
    fn tenancy_finds_vlans_of_vnis_and_what_others_hold() {
        let s = snapshot();
        let statics = ["Vrf42".to_owned()].into_iter().collect();
        let range = VlanRange {
            first: 1001,
            last: 2000,
        };
        let t = Tenancy::from_state(&s, range, &statics);
        let mut vlans: Vec<u16> = t.vlans.iter().copied().collect();
        vlans.sort();
        assert_eq!(vlans, [1001, 1003]);
        assert_eq!(t.vni_vlans.get(&104009), Some(&1001));
        assert_eq!(t.vni_vlans.len(), 1);
        let foreign_vnis: Vec<u32> = t.foreign_vnis.keys().copied().collect();
        assert_eq!(foreign_vnis, [42, 5000]);
        assert!(
            t.foreign_vnis[&5000].contains("VrfMpls"),
            "{:?}",
            t.foreign_vnis
        );
        let foreign_vlans: Vec<u16> = t.foreign_vlans.keys().copied().collect();
        assert_eq!(foreign_vlans, [1004, 1500]);
        assert!(
            t.foreign_vlans[&1500].contains("Vrf42"),
            "{:?}",
            t.foreign_vlans
        );
        // A static VRF is not the agent's, whatever its name.
        let none = BTreeSet::new();
        let t = Tenancy::from_state(&s, range, &none);
        assert!(t.vrfs.contains("Vrf42"));
        assert!(t.vlans.contains(&1500));
    }

    #[test]
    fn a_map_in_the_range_of_a_foreign_vni_makes_its_vlan_foreign() {
        let s = state(&[
            ("VRF|VrfMpls", &[("vni", "5000")]),
            (
                "VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan1001",
                &[("vlan", "Vlan1001"), ("vni", "5000")],
            ),
            ("SUPPRESS_VLAN_NEIGH|Vlan1001", &[("suppress", "on")]),
        ]);
        let range = VlanRange {
            first: 1001,
            last: 2000,
        };
        let t = Tenancy::from_state(&s, range, &BTreeSet::new());
        assert!(t.vlans.is_empty(), "{:?}", t.vlans);
        assert!(t.maps.is_empty());
        assert!(t.foreign_vlans.contains_key(&1001));
    }
}
