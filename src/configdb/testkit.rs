//! Test data for the pure CONFIG_DB modules: hand-written states and specs
//! (not produced by the code under test).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use super::confirmed::{Confirmed, Separators};
use super::confirms::{Db, RIF_NAME_MAP};
use super::schema::{DbState, Fields, Key, Table};
use crate::config::{LogLevel, VlanRange};
use crate::spec::{
    AdminStatus, Filter, PortRole, PortSpec, Prefixes, Routing, SwitchSpec, VrfSpec,
};

/// Fields from pairs.
pub fn f(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The entries of the agent's tenant VRF 104009 with its L3VNI objects in
/// VLAN 1001 on VTEP `vtep`, as metal-core writes them.
pub const TENANT_104009: [(&str, &[(&str, &str)]); 5] = [
    ("VRF|Vrf104009", &[("vni", "104009"), ("fallback", "false")]),
    ("VLAN|Vlan1001", &[("vlanid", "1001")]),
    ("VLAN_INTERFACE|Vlan1001", &[("vrf_name", "Vrf104009")]),
    ("SUPPRESS_VLAN_NEIGH|Vlan1001", &[("suppress", "on")]),
    (
        "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
        &[("vlan", "Vlan1001"), ("vni", "104009")],
    ),
];

/// A snapshot from `(redis key, fields)` pairs.
pub fn state(entries: &[(&str, &[(&str, &str)])]) -> DbState {
    let mut s = DbState::new();
    for (key, fields) in entries {
        s.insert(
            Key::parse(key).unwrap_or_else(|| panic!("not a key: {key}")),
            f(fields),
        );
    }
    s
}

pub fn port(name: &str, role: PortRole, admin: Option<AdminStatus>) -> (String, PortSpec) {
    (
        name.to_owned(),
        PortSpec {
            name: name.to_owned(),
            role,
            admin,
        },
    )
}

pub fn firewall() -> PortRole {
    PortRole::Firewall {
        filter: Filter {
            prefixes: Prefixes::compact(["10.0.0.0/24".parse().unwrap()]),
            vnis: vec![104009],
        },
    }
}

/// A switch spec written by hand: VTEP `vtep`, PXE VLAN 3900, tenant VLANs
/// 1001..2000, the given ports and tenant VRFs `(vni, vlan)` (members are
/// the tenant ports of that VNI).
pub fn spec(ports: Vec<(String, PortSpec)>, vrfs: &[(u32, u16)]) -> SwitchSpec {
    let ports: BTreeMap<String, PortSpec> = ports.into_iter().collect();
    let vrfs = vrfs
        .iter()
        .map(|&(vni, vlan)| {
            let members = ports
                .values()
                .filter(|p| p.role == PortRole::Tenant { vni })
                .map(|p| p.name.clone())
                .collect();
            (
                vni,
                VrfSpec {
                    vni,
                    vlan,
                    ports: members,
                    prefixes: Prefixes::default(),
                },
            )
        })
        .collect();
    SwitchSpec {
        hostname: "leaf01".into(),
        ports,
        vrfs,
        pxe_vlan: 3900,
        vtep: "vtep".into(),
        vlan_range: VlanRange {
            first: 1001,
            last: 2000,
        },
        static_vrfs: BTreeSet::new(),
        routing: routing(),
    }
}

/// The lab leaf01's routing (ASN, loopback; no agentx).
pub(crate) fn routing() -> Routing {
    Routing {
        asn: 4200000011,
        loopback: "10.0.0.11".parse().unwrap(),
        log_level: LogLevel::Info,
        management_gateway: None,
        management_routes: Vec::new(),
        set_src_loopback: false,
        agentx: false,
        extra_config: Vec::new(),
    }
}

/// What SONiC's daemons write once they processed `config` (§4).
pub fn sonic_confirms(config: &DbState) -> Confirmed {
    let mut c = Confirmed::new(Separators::default());
    for (name, fl) in config.table(Table::Vrf) {
        for table in ["VRF_TABLE", "VRF_OBJECT_TABLE"] {
            c.set(
                Db::State,
                &format!("{table}|{name}"),
                Some(f(&[("state", "ok")])),
            );
        }
        c.set(Db::Appl, &format!("VRF_TABLE:{name}"), Some(fl.clone()));
    }
    for (name, _) in config.table(Table::Vlan) {
        c.set(
            Db::State,
            &format!("VLAN_TABLE|{name}"),
            Some(f(&[("state", "ok")])),
        );
    }
    for (name, _) in config.table(Table::VlanMember) {
        c.set(
            Db::State,
            &format!("VLAN_MEMBER_TABLE|{name}"),
            Some(f(&[("state", "ok")])),
        );
    }
    let mut rifs = Fields::new();
    for t in [Table::Interface, Table::VlanInterface] {
        for (name, fl) in config.table(t) {
            let vrf = fl.get("vrf_name").cloned().unwrap_or_default();
            c.set(
                Db::State,
                &format!("INTERFACE_TABLE|{name}"),
                Some(f(&[("vrf", &vrf)])),
            );
            rifs.insert(name.to_owned(), "oid:0x6000000000001".into());
        }
    }
    c.set(Db::Counters, RIF_NAME_MAP, Some(rifs));
    for (name, _) in config.table(Table::VxlanTunnelMap) {
        let key = format!("VXLAN_TUNNEL_MAP_TABLE:{}", name.replace('|', ":"));
        c.set(Db::Appl, &key, Some(f(&[("vni", "1")])));
    }
    c
}
