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
//! The entries are produced by one visitor per port and per VRF
//! ([`visit_port`], [`visit_vrf`]), which borrows and allocates nothing per
//! entry; the diff compares them with CONFIG_DB on the fly, and [`target`]
//! materializes them (for `render configdb` and the tests).

use std::collections::BTreeMap;

use serde::Serialize;

use super::schema::{Fields, Key, SEP, Table, push_decimal};
use crate::spec::{PortRole, PortSpec, SwitchSpec, VrfSpec};

/// Which fields of a target entry the agent owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The table's fields ([`Table::owned_fields`]): one of them that the
    /// target does not list is removed; any other field is left alone and
    /// goes only with the entry.
    Schema,
    /// Only the fields listed; others are left as they are (PORT).
    Listed,
}

/// One desired entry as the visitor hands it out (borrowed).
#[derive(Debug, Clone, Copy)]
pub struct Desired<'a> {
    pub table: Table,
    /// The key without the table.
    pub name: &'a str,
    pub fields: &'a [(&'static str, &'a str)],
    pub scope: Scope,
}

impl Desired<'_> {
    pub fn key(&self) -> Key {
        Key::new(self.table, self.name)
    }

    /// The fields as an owned hash.
    pub fn to_fields(&self) -> Fields {
        self.fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

/// Reusable buffers of the visitors (no allocation once warmed up).
#[derive(Debug, Default)]
pub struct Scratch {
    a: String,
    b: String,
    c: String,
    d: String,
}

/// Fill `buf` with `prefix`, the decimal `n` and `suffix`; return it.
fn num<'a>(buf: &'a mut String, prefix: &str, n: u32, suffix: &str) -> &'a str {
    buf.clear();
    buf.push_str(prefix);
    push_decimal(buf, n);
    buf.push_str(suffix);
    buf.as_str()
}

/// The entries of one managed port.
pub fn visit_port(
    spec: &SwitchSpec,
    port: &PortSpec,
    s: &mut Scratch,
    f: &mut impl FnMut(Desired<'_>),
) {
    let p = port.name.as_str();
    let mtu = num(&mut s.a, "", u32::from(port.role.mtu()), "");
    let port_fields = [
        ("mtu", mtu),
        ("admin_status", port.admin.map_or("", |a| a.as_str())),
    ];
    let n = if port.admin.is_some() { 2 } else { 1 };
    f(Desired {
        table: Table::Port,
        name: p,
        fields: &port_fields[..n],
        scope: Scope::Listed,
    });
    match &port.role {
        PortRole::Unprovisioned => f(Desired {
            table: Table::VlanMember,
            name: {
                num(&mut s.b, "Vlan", u32::from(spec.pxe_vlan), "|");
                s.b.push_str(p);
                s.b.as_str()
            },
            fields: &[("tagging_mode", "untagged")],
            scope: Scope::Schema,
        }),
        PortRole::Underlay | PortRole::Firewall { .. } => f(Desired {
            table: Table::Interface,
            name: p,
            fields: &[("ipv6_use_link_local_only", "enable")],
            scope: Scope::Schema,
        }),
        PortRole::Tenant { vni } => f(Desired {
            table: Table::Interface,
            name: p,
            fields: &[
                ("ipv6_use_link_local_only", "enable"),
                ("vrf_name", num(&mut s.b, "Vrf", *vni, "")),
            ],
            scope: Scope::Schema,
        }),
    }
}

fn schema<'a>(table: Table, name: &'a str, fields: &'a [(&'static str, &'a str)]) -> Desired<'a> {
    Desired {
        table,
        name,
        fields,
        scope: Scope::Schema,
    }
}

/// The entries of one tenant VRF.
pub fn visit_vrf(
    spec: &SwitchSpec,
    vrf: &VrfSpec,
    s: &mut Scratch,
    f: &mut impl FnMut(Desired<'_>),
) {
    let name = num(&mut s.a, "Vrf", vrf.vni, "");
    let vni = num(&mut s.b, "", vrf.vni, "");
    let vlan = num(&mut s.c, "Vlan", u32::from(vrf.vlan), "");
    f(schema(
        Table::Vrf,
        name,
        &[("fallback", "false"), ("vni", vni)],
    ));
    f(schema(Table::Vlan, vlan, &[("vlanid", &vlan[4..])]));
    f(schema(Table::VlanInterface, vlan, &[("vrf_name", name)]));
    f(schema(
        Table::SuppressVlanNeigh,
        vlan,
        &[("suppress", "on")],
    ));
    s.d.clear();
    s.d.push_str(&spec.vtep);
    s.d.push(SEP);
    s.d.push_str("map_");
    push_decimal(&mut s.d, vrf.vni);
    s.d.push_str("_Vlan");
    push_decimal(&mut s.d, u32::from(vrf.vlan));
    let map = s.d.as_str();
    f(schema(
        Table::VxlanTunnelMap,
        map,
        &[("vlan", vlan), ("vni", vni)],
    ));
}

/// Every desired entry of a spec.
pub fn visit(spec: &SwitchSpec, f: &mut impl FnMut(Desired<'_>)) {
    let mut s = Scratch::default();
    for port in spec.ports.values() {
        visit_port(spec, port, &mut s, f);
    }
    for vrf in spec.vrfs.values() {
        visit_vrf(spec, vrf, &mut s, f);
    }
}

/// One materialized desired entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetEntry {
    pub fields: Fields,
    pub scope: Scope,
}

/// The desired owned entries of a switch, materialized.
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

/// The whole target of a spec, materialized.
pub fn target(spec: &SwitchSpec) -> Target {
    let mut entries = BTreeMap::new();
    visit(spec, &mut |d| {
        entries.insert(
            d.key(),
            TargetEntry {
                fields: d.to_fields(),
                scope: d.scope,
            },
        );
    });
    Target { entries }
}

#[cfg(test)]
mod tests {
    //! Expected entries from README.md "What the agent writes" and
    //! sonic-configdb reference §2.3 (metal-core's values), written out by
    //! hand.
    use std::collections::BTreeMap;

    use super::*;
    use crate::configdb::testkit::{firewall, port, spec};
    use crate::spec::AdminStatus;

    /// Redis key → (fields sorted, scope).
    type Rows = BTreeMap<String, (Vec<(String, String)>, Scope)>;
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], Scope);

    fn entries(t: &Target) -> Rows {
        t.entries
            .iter()
            .map(|(k, e)| {
                (
                    k.redis_key(),
                    (
                        e.fields
                            .iter()
                            .map(|(a, b)| (a.clone(), b.clone()))
                            .collect(),
                        e.scope,
                    ),
                )
            })
            .collect()
    }

    fn want(rows: &[Row<'_>]) -> Rows {
        rows.iter()
            .map(|(k, f, s)| {
                let mut f: Vec<(String, String)> = f
                    .iter()
                    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                    .collect();
                f.sort();
                ((*k).to_owned(), (f, *s))
            })
            .collect()
    }

    #[test]
    fn every_role_and_a_tenant_vrf_give_metal_cores_entries() {
        let s = spec(
            vec![
                port("Ethernet0", firewall(), None),
                port(
                    "Ethernet1",
                    PortRole::Tenant { vni: 104009 },
                    Some(AdminStatus::Up),
                ),
                port(
                    "Ethernet2",
                    PortRole::Unprovisioned,
                    Some(AdminStatus::Down),
                ),
                port("Ethernet120", PortRole::Underlay, None),
            ],
            &[(104009, 1001)],
        );
        use Scope::{Listed, Schema};
        let lls = ("ipv6_use_link_local_only", "enable");
        assert_eq!(
            entries(&target(&s)),
            want(&[
                // firewall: PORT mtu 9216, routed without a VRF
                ("PORT|Ethernet0", &[("mtu", "9216")], Listed),
                ("INTERFACE|Ethernet0", &[lls], Schema),
                // tenant: PORT mtu 9000, bound to Vrf<N>; admin status from the API
                (
                    "PORT|Ethernet1",
                    &[("mtu", "9000"), ("admin_status", "up")],
                    Listed
                ),
                (
                    "INTERFACE|Ethernet1",
                    &[lls, ("vrf_name", "Vrf104009")],
                    Schema
                ),
                // unprovisioned: PORT mtu 9000, untagged member of the PXE VLAN
                (
                    "PORT|Ethernet2",
                    &[("mtu", "9000"), ("admin_status", "down")],
                    Listed
                ),
                (
                    "VLAN_MEMBER|Vlan3900|Ethernet2",
                    &[("tagging_mode", "untagged")],
                    Schema
                ),
                // spine uplink: PORT mtu 9216, routed without a VRF
                ("PORT|Ethernet120", &[("mtu", "9216")], Listed),
                ("INTERFACE|Ethernet120", &[lls], Schema),
                // the tenant VRF and its L3VNI objects
                (
                    "VRF|Vrf104009",
                    &[("vni", "104009"), ("fallback", "false")],
                    Schema
                ),
                ("VLAN|Vlan1001", &[("vlanid", "1001")], Schema),
                (
                    "VLAN_INTERFACE|Vlan1001",
                    &[("vrf_name", "Vrf104009")],
                    Schema
                ),
                (
                    "SUPPRESS_VLAN_NEIGH|Vlan1001",
                    &[("suppress", "on")],
                    Schema
                ),
                (
                    "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
                    &[("vlan", "Vlan1001"), ("vni", "104009")],
                    Schema
                ),
            ])
        );
    }

    #[test]
    fn no_admin_status_no_ports_no_vrfs() {
        // Without a desired admin status only the MTU is owned.
        let s = spec(vec![port("Ethernet4", PortRole::Unprovisioned, None)], &[]);
        let t = target(&s);
        assert_eq!(
            t.entries[&Key::port("Ethernet4")].fields,
            [("mtu".to_owned(), "9000".to_owned())]
                .into_iter()
                .collect()
        );
        assert_eq!(t.len(), 2);
        assert!(target(&spec(Vec::new(), &[])).is_empty());
    }

    #[test]
    fn two_vrfs_get_their_own_vlans_and_maps() {
        let s = spec(
            vec![
                port("Ethernet1", PortRole::Tenant { vni: 7 }, None),
                port("Ethernet2", PortRole::Tenant { vni: 16_777_215 }, None),
            ],
            &[(7, 1999), (16_777_215, 2000)],
        );
        let t = target(&s);
        for key in [
            "VRF|Vrf7",
            "VRF|Vrf16777215",
            "VLAN|Vlan1999",
            "VLAN|Vlan2000",
            "VXLAN_TUNNEL_MAP|vtep|map_7_Vlan1999",
            "VXLAN_TUNNEL_MAP|vtep|map_16777215_Vlan2000",
            "VLAN_INTERFACE|Vlan2000",
        ] {
            assert!(
                t.entries.contains_key(&Key::parse(key).unwrap()),
                "{key} missing from {:?}",
                t.entries.keys().collect::<Vec<_>>()
            );
        }
        assert_eq!(
            t.entries[&Key::parse("VLAN_INTERFACE|Vlan2000").unwrap()]
                .fields
                .get("vrf_name")
                .map(String::as_str),
            Some("Vrf16777215")
        );
        assert_eq!(t.len(), 2 * 2 + 2 * 5);
    }
}
