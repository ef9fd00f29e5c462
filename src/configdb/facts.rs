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
        tenant_vlans: tenancy.vni_vlans.clone(),
        foreign_vnis: tenancy.foreign_vnis.clone(),
        foreign_vlans: tenancy.foreign_vlans.clone(),
        owned_vlans: tenancy.vlans.clone(),
        ..LocalFacts::default()
    };
    for (key, fields) in state.table(Table::Port) {
        f.ports
            .insert(key.name.clone(), fields.get("alias").cloned());
    }
    f.vteps = state
        .table(Table::VxlanTunnel)
        .map(|(k, _)| k.name.clone())
        .collect();
    for (key, fields) in state.table(Table::VxlanEvpnNvo) {
        f.nvos.insert(
            key.name.clone(),
            fields.get("source_vtep").cloned().unwrap_or_default(),
        );
    }
    for (key, _) in state.table(Table::Vlan) {
        if let Some(v) = vid_of_vlan_name(&key.name) {
            f.vlans.insert(v);
        }
    }
    f.used_vlans = f.vlans.clone();
    for (_, fields) in state.table(Table::VxlanTunnelMap) {
        if let Some(v) = fields.get("vlan").and_then(|v| vid_of_vlan_name(v)) {
            f.used_vlans.insert(v);
        }
    }
    for (key, fields) in state.table(Table::Vrf) {
        let vni = fields
            .get("vni")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v != 0);
        f.vrfs.insert(key.name.clone(), vni);
    }
    for (key, fields) in state.table(Table::Interface) {
        match key.name.split_once(SEP) {
            Some((port, _prefix)) => {
                f.interface_ips.insert(port.to_owned());
            }
            None => {
                let vrf = fields.get("vrf_name").filter(|v| !v.is_empty()).cloned();
                f.interfaces.insert(key.name.clone(), vrf);
            }
        }
    }
    for (key, _) in state.table(Table::VlanMember) {
        if let Some((vlan, port)) = key.name.split_once(SEP)
            && let Some(v) = vid_of_vlan_name(vlan)
        {
            f.memberships.entry(port.to_owned()).or_default().insert(v);
        }
    }
    f
}
