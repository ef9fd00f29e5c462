//! The local facts a [`SwitchSpec`](crate::spec::SwitchSpec) is built from,
//! read off a CONFIG_DB snapshot (pure).

use std::collections::BTreeSet;

use super::owned::Tenancy;
use super::schema::{DbState, Key, SEP, Table, vid_of_vlan_name};
use crate::config::VlanRange;
use crate::spec::LocalFacts;

/// Extract the facts; `range` and `static_vrfs` decide what is foreign.
pub fn local_facts(
    state: &DbState,
    range: VlanRange,
    static_vrfs: &BTreeSet<String>,
) -> LocalFacts {
    let tenancy = Tenancy::from_state(state, range, static_vrfs);
    let mut f = LocalFacts {
        tenant_vlans: tenancy.vni_vlans.iter().map(|(k, v)| (*k, *v)).collect(),
        owned_vlans: tenancy.vlans.iter().copied().collect(),
        foreign_vnis: tenancy.foreign_vnis,
        foreign_vlans: tenancy.foreign_vlans,
        ..LocalFacts::default()
    };
    for (name, fields) in state.table(Table::Port) {
        f.ports
            .insert(name.to_owned(), fields.get("alias").cloned());
    }
    f.vteps = state
        .table(Table::VxlanTunnel)
        .map(|(n, _)| n.to_owned())
        .collect();
    f.vteps.sort();
    for (name, fields) in state.table(Table::VxlanEvpnNvo) {
        f.nvos.insert(
            name.to_owned(),
            fields.get("source_vtep").cloned().unwrap_or_default(),
        );
    }
    for (name, _) in state.table(Table::Vlan) {
        if let Some(v) = vid_of_vlan_name(name) {
            f.vlans.insert(v);
        }
    }
    f.used_vlans = f.vlans.clone();
    for (_, fields) in state.table(Table::VxlanTunnelMap) {
        if let Some(v) = fields.get("vlan").and_then(|v| vid_of_vlan_name(v)) {
            f.used_vlans.insert(v);
        }
    }
    for (name, fields) in state.table(Table::Vrf) {
        let vni = fields
            .get("vni")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v != 0);
        f.vrfs.insert(name.to_owned(), vni);
    }
    for (name, fields) in state.table(Table::Interface) {
        match name.split_once(SEP) {
            Some((port, _prefix)) => {
                f.interface_ips.insert(port.to_owned());
            }
            None => {
                let vrf = fields.get("vrf_name").filter(|v| !v.is_empty()).cloned();
                f.interfaces.insert(name.to_owned(), vrf);
            }
        }
    }
    for (name, _) in state.table(Table::VlanMember) {
        if let Some((vlan, port)) = name.split_once(SEP)
            && let Some(v) = vid_of_vlan_name(vlan)
        {
            f.memberships.entry(port.to_owned()).or_default().insert(v);
        }
    }
    f
}

/// `facts` of a state that changed only in the keys `changed`, when those
/// are `INTERFACE|<port>` and `VLAN_MEMBER|Vlan<v>|<port>` entries (which
/// only the per-port facts read): updated in place from `state`, returning
/// the ports whose facts may have changed. `None` for any other key (read
/// the facts anew).
pub fn update_port_facts(
    facts: &mut LocalFacts,
    state: &DbState,
    changed: &[Key],
) -> Option<BTreeSet<String>> {
    if changed
        .iter()
        .any(|k| !matches!(k.table, Table::Interface | Table::VlanMember))
    {
        return None;
    }
    let mut ports = BTreeSet::new();
    for k in changed {
        match k.table {
            Table::Interface => {
                // An IP sub-key: whether the port has any is a scan away.
                if k.name.contains(SEP) {
                    return None;
                }
                match state.get(k) {
                    Some(fields) => {
                        let vrf = fields.get("vrf_name").filter(|v| !v.is_empty()).cloned();
                        facts.interfaces.insert(k.name.clone(), vrf);
                    }
                    None => {
                        facts.interfaces.remove(&k.name);
                    }
                }
                ports.insert(k.name.clone());
            }
            _ => {
                let (vlan, port) = k.name.split_once(SEP)?;
                let v = vid_of_vlan_name(vlan)?;
                let set = facts.memberships.entry(port.to_owned()).or_default();
                if state.contains(k) {
                    set.insert(v);
                } else {
                    set.remove(&v);
                }
                if set.is_empty() {
                    facts.memberships.remove(port);
                }
                ports.insert(port.to_owned());
            }
        }
    }
    Some(ports)
}

#[cfg(test)]
mod tests {
    //! What spec validation needs from CONFIG_DB, read off a hand-written
    //! snapshot.
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::configdb::testkit::state;

    #[test]
    fn facts_of_a_small_switch() {
        let s = state(&[
            ("PORT|Ethernet0", &[("alias", "Eth1/1"), ("mtu", "9100")]),
            ("PORT|Ethernet4", &[("mtu", "9100")]),
            ("VXLAN_TUNNEL|vtep1", &[("src_ip", "10.0.0.11")]),
            ("VXLAN_TUNNEL|vtep0", &[("src_ip", "10.0.0.12")]),
            ("VXLAN_EVPN_NVO|nvo", &[("source_vtep", "vtep0")]),
            ("VLAN|Vlan3900", &[("vlanid", "3900")]),
            ("VLAN|Vlan1001", &[("vlanid", "1001")]),
            ("VLAN|Vlan01002", &[("vlanid", "1002")]),
            (
                "VXLAN_TUNNEL_MAP|vtep0|map_104009_Vlan1001",
                &[("vlan", "Vlan1001"), ("vni", "104009")],
            ),
            // a map whose VLAN entry is missing still uses its VLAN id
            (
                "VXLAN_TUNNEL_MAP|vtep0|map_7_Vlan1100",
                &[("vlan", "Vlan1100"), ("vni", "7")],
            ),
            ("VRF|Vrf104009", &[("vni", "104009"), ("fallback", "false")]),
            ("VRF|Vrf7", &[("vni", "0")]),
            ("VRF|VrfMpls", &[("NULL", "NULL")]),
            (
                "INTERFACE|Ethernet0",
                &[("ipv6_use_link_local_only", "enable")],
            ),
            ("INTERFACE|Ethernet8", &[("vrf_name", "Vrf104009")]),
            ("INTERFACE|Ethernet8|10.1.0.1/31", &[("NULL", "NULL")]),
            (
                "VLAN_MEMBER|Vlan3900|Ethernet4",
                &[("tagging_mode", "untagged")],
            ),
            (
                "VLAN_MEMBER|Vlan1001|Ethernet4",
                &[("tagging_mode", "tagged")],
            ),
        ]);
        let range = VlanRange {
            first: 1001,
            last: 2000,
        };
        let f = local_facts(&s, range, &BTreeSet::new());
        assert_eq!(
            f.ports,
            BTreeMap::from([
                ("Ethernet0".to_owned(), Some("Eth1/1".to_owned())),
                ("Ethernet4".to_owned(), None),
            ])
        );
        assert_eq!(f.vteps, ["vtep0", "vtep1"], "sorted");
        assert_eq!(
            f.nvos,
            BTreeMap::from([("nvo".to_owned(), "vtep0".to_owned())])
        );
        // `Vlan01002` is not a VLAN name (no leading zero, reference §2.3).
        assert_eq!(f.vlans, BTreeSet::from([1001, 3900]));
        assert_eq!(f.used_vlans, BTreeSet::from([1001, 1100, 3900]));
        assert_eq!(
            f.vrfs,
            BTreeMap::from([
                ("Vrf104009".to_owned(), Some(104009)),
                ("Vrf7".to_owned(), None),
                ("VrfMpls".to_owned(), None),
            ])
        );
        assert_eq!(
            f.interfaces,
            BTreeMap::from([
                ("Ethernet0".to_owned(), None),
                ("Ethernet8".to_owned(), Some("Vrf104009".to_owned())),
            ])
        );
        assert_eq!(f.interface_ips, BTreeSet::from(["Ethernet8".to_owned()]));
        assert_eq!(
            f.memberships,
            BTreeMap::from([("Ethernet4".to_owned(), BTreeSet::from([1001, 3900]))])
        );
        // Tenancy: the agent's map ties VNI 104009 to VLAN 1001.
        assert_eq!(f.tenant_vlans.get(&104009), Some(&1001));
        assert!(f.owned_vlans.contains(&1001));
        assert!(f.foreign_vnis.is_empty(), "{:?}", f.foreign_vnis);
    }

    #[test]
    fn static_vrfs_and_their_vlans_are_foreign() {
        let s = state(&[
            ("VRF|Vrf42", &[("vni", "42")]),
            ("VLAN|Vlan1500", &[("vlanid", "1500")]),
            ("VLAN_INTERFACE|Vlan1500", &[("vrf_name", "Vrf42")]),
        ]);
        let range = VlanRange {
            first: 1001,
            last: 2000,
        };
        let f = local_facts(&s, range, &BTreeSet::from(["Vrf42".to_owned()]));
        assert!(f.foreign_vnis.contains_key(&42), "{:?}", f.foreign_vnis);
        assert!(f.foreign_vlans.contains_key(&1500), "{:?}", f.foreign_vlans);
        assert!(f.owned_vlans.is_empty());
    }
}
