//! The local facts a [`SwitchSpec`](crate::spec::SwitchSpec) is built from,
//! read off a CONFIG_DB snapshot (pure).

use std::collections::BTreeSet;

use super::owned::Tenancy;
use super::schema::{DbState, SEP, Table, vid_of_vlan_name};
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
