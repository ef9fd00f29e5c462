//! The report of a reconcile to the metal API: v2 `Heartbeat`, v1 `notify`
//! — duration, error, every nic's operational state and the BGP sessions.

use std::collections::BTreeMap;

use crate::config::NamingSchema;
use crate::configdb::schema::{DbState, Table};
use crate::frr::bgp::Neighbors;
use crate::observed::{BgpPortState, PortOperState, SwitchReport};
use crate::spec::SwitchDesc;

use super::outcome::Outcome;
use super::vocab::ReconcileResult;

/// The kernel name of a nic as the API names it (per
/// `interface_naming_schema`: the name, or the alias in CONFIG_DB PORT).
pub fn kernel_name<'a>(nic: &'a str, naming: NamingSchema, config: &'a DbState) -> Option<&'a str> {
    if !naming.nic_name_is_alias() {
        return Some(nic);
    }
    config
        .table(Table::Port)
        .find(|(_, f)| f.get("alias").map(String::as_str) == Some(nic))
        .map(|(name, _)| name)
}

/// The report of `outcome`: port states for every nic of `desc` (from the
/// kernel's states by netdev name; `UNKNOWN` where the netdev is missing),
/// BGP states per nic when they could be read.
pub fn build(
    outcome: &Outcome,
    desc: Option<&SwitchDesc>,
    naming: NamingSchema,
    config: &DbState,
    oper: &BTreeMap<String, PortOperState>,
    bgp: Option<&Neighbors>,
) -> SwitchReport {
    let error = match outcome.result {
        ReconcileResult::Converged | ReconcileResult::DryRun => None,
        ReconcileResult::Invalid | ReconcileResult::Error | ReconcileResult::Pending => Some(
            outcome
                .error
                .clone()
                .unwrap_or_else(|| outcome.result.as_str().to_owned()),
        ),
    };
    let mut port_states = BTreeMap::new();
    let mut bgp_port_states: Option<BTreeMap<String, BgpPortState>> = bgp.map(|_| BTreeMap::new());
    for nic in desc.map(|d| d.nics.as_slice()).unwrap_or_default() {
        let kernel = kernel_name(&nic.name, naming, config);
        let state = kernel
            .and_then(|k| oper.get(k).copied())
            .unwrap_or(PortOperState::Unknown);
        port_states.insert(nic.name.clone(), state);
        if let (Some(out), Some(n), Some(k)) = (bgp_port_states.as_mut(), bgp, kernel)
            && let Some(b) = n.states.get(k)
        {
            out.insert(nic.name.clone(), b.clone());
        }
    }
    SwitchReport {
        duration: outcome.duration,
        error,
        port_states,
        bgp_port_states,
    }
}

/// Whether two reports differ in what the API shows (states, not timings).
pub fn states_differ(a: &SwitchReport, b: &SwitchReport) -> bool {
    let bgp = |r: &SwitchReport| {
        r.bgp_port_states.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.state, v.neighbor.clone()))
                .collect::<Vec<_>>()
        })
    };
    a.port_states != b.port_states || bgp(a) != bgp(b)
}
