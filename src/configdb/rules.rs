//! The ordering rules of sonic-configdb reference §3 and §7 as a checker:
//! a test oracle for the planner, independent of its stage table.
//!
//! Part of the test kit: compiled for the crate's own tests and, through
//! the `testkit` feature, for the integration tests; never in the shipped
//! library.

use std::collections::{BTreeMap, BTreeSet};

use super::confirms::Check;
use super::diff::{Cause, Change, Op};
use super::plan::Plan;
use super::schema::{Key, SEP, Table, vid_of_vlan_name};

/// Every ordering rule of sonic-configdb §3/§7 the plan breaks (empty = none).
pub fn check_rules(plan: &Plan) -> Vec<String> {
    let rules = Rules::new(plan);
    let mut bad = Vec::new();
    rules.keys(&mut bad);
    rules.routed_or_bridged(&mut bad);
    rules.lingering_bridge_ports(&mut bad);
    rules.members_after_unrouting(&mut bad);
    rules.vlan_deletions(&mut bad);
    rules.vrf_deletions(&mut bad);
    rules.vrf_creations(&mut bad);
    rules.map_creations(&mut bad);
    bad
}

/// A plan's changes by key, with their phase indices.
struct Rules<'p> {
    plan: &'p Plan,
    by_key: BTreeMap<&'p Key, Vec<(usize, &'p Change)>>,
}

impl<'p> Rules<'p> {
    fn new(plan: &'p Plan) -> Rules<'p> {
        let mut by_key: BTreeMap<&Key, Vec<(usize, &Change)>> = BTreeMap::new();
        for (i, p) in plan.phases.iter().enumerate() {
            for c in &p.changes {
                by_key.entry(&c.key).or_default().push((i, c));
            }
        }
        Rules { plan, by_key }
    }

    /// The changes of `table` that `pred` picks, with their phases.
    fn changes(&self, table: Table, pred: &dyn Fn(&Change) -> bool) -> Vec<(usize, &'p Change)> {
        self.by_key
            .iter()
            .filter(|(k, _)| k.table == table)
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|(_, c)| pred(c))
            .collect()
    }

    fn first(&self, table: Table, pred: &dyn Fn(&Change) -> bool) -> Option<usize> {
        self.changes(table, pred).into_iter().map(|(i, _)| i).min()
    }

    fn last(&self, table: Table, pred: &dyn Fn(&Change) -> bool) -> Option<usize> {
        self.changes(table, pred).into_iter().map(|(i, _)| i).max()
    }

    /// Per key: PORT is only updated, a key changes once per phase, and a
    /// re-created key is deleted first, with its deletion confirmed.
    fn keys(&self, bad: &mut Vec<String>) {
        for (key, changes) in &self.by_key {
            if key.table == Table::Port
                && changes
                    .iter()
                    .any(|(_, c)| !matches!(c.op, Op::Update { .. }))
            {
                bad.push(format!("{key}: PORT keys are never created or deleted"));
            }
            let phases: BTreeSet<usize> = changes.iter().map(|(i, _)| *i).collect();
            if phases.len() != changes.len() {
                bad.push(format!("{key}: changed twice in one phase"));
            }
            let del = changes.iter().find(|(_, c)| c.is_delete()).map(|(i, _)| *i);
            let cre = changes.iter().find(|(_, c)| c.is_create()).map(|(i, _)| *i);
            if let (Some(d), Some(c)) = (del, cre) {
                if d >= c {
                    bad.push(format!("{key}: re-created before (or with) its deletion"));
                }
                let barrier = &self.plan.phases[d].barrier;
                if !barrier.iter().any(|b| b.check == Check::Gone) {
                    bad.push(format!("{key}: deletion not confirmed before re-creation"));
                }
            }
        }
    }

    /// A port is never routed and bridged at once: INTERFACE creation after
    /// all VLAN_MEMBER deletions of the port, which wait for its ASIC
    /// bridge port to go.
    fn routed_or_bridged(&self, bad: &mut Vec<String>) {
        for (ci, c) in self.changes(Table::Interface, &|c| c.is_create()) {
            let port = &c.key.name;
            let of_port = |m: &Change| port_of_member(m).as_deref() == Some(port);
            for (mi, m) in self.changes(Table::VlanMember, &of_port) {
                let waited = self.plan.phases[mi]
                    .barrier
                    .iter()
                    .any(|b| b.check == Check::NoBridgePort && b.name == *port);
                if m.is_create() {
                    bad.push(format!(
                        "{port}: INTERFACE and VLAN_MEMBER created in one plan"
                    ));
                } else if mi >= ci {
                    bad.push(format!(
                        "{port}: INTERFACE created before {} is deleted",
                        m.key
                    ));
                } else if !waited {
                    bad.push(format!(
                        "{port}: routed without waiting for its ASIC bridge port to go"
                    ));
                }
            }
        }
    }

    /// Every port that becomes routed is checked for a lingering bridge
    /// port (a membership may have ended in an earlier, interrupted
    /// reconcile).
    fn lingering_bridge_ports(&self, bad: &mut Vec<String>) {
        for (ci, c) in self.changes(Table::Interface, &|c| c.is_create()) {
            let port = &c.key.name;
            let waited = self.plan.phases[..=ci].iter().any(|p| {
                p.preconditions
                    .iter()
                    .chain(&p.barrier)
                    .any(|b| b.check == Check::NoBridgePort && b.name == *port)
            });
            if !waited {
                bad.push(format!(
                    "{port}: routed without checking for a lingering ASIC bridge port"
                ));
            }
        }
    }

    /// A port becomes a VLAN member only after its INTERFACE is deleted.
    fn members_after_unrouting(&self, bad: &mut Vec<String>) {
        for (mi, m) in self.changes(Table::VlanMember, &|c| c.is_create()) {
            let Some(port) = port_of_member(m) else {
                continue;
            };
            let Some(dels) = self.by_key.get(&Key::interface(&port)) else {
                continue;
            };
            for _ in dels.iter().filter(|(di, d)| d.is_delete() && *di >= mi) {
                bad.push(format!(
                    "{port}: VLAN member created before INTERFACE is deleted"
                ));
            }
        }
    }

    /// A VLAN goes after its members, its VLAN interface and its VXLAN
    /// map; a VLAN interface after its map.
    fn vlan_deletions(&self, bad: &mut Vec<String>) {
        let vid_of = |c: &Change| vid_of_vlan_name(c.key.parts().next().unwrap_or(""));
        let map_of =
            |vlan: &str, c: &Change| c.is_delete() && c.key.name.ends_with(&format!("_{vlan}"));
        for (vi, v) in self.changes(Table::Vlan, &|c| c.is_delete()) {
            let vid = vid_of(v);
            for (table, what) in [
                (Table::VlanMember, "members"),
                (Table::VlanInterface, "VLAN interface"),
            ] {
                if self
                    .last(table, &|c| c.is_delete() && vid_of(c) == vid)
                    .is_some_and(|i| i >= vi)
                {
                    bad.push(format!("{}: deleted before its {what}", v.key));
                }
            }
            if self
                .last(Table::VxlanTunnelMap, &|c| map_of(&v.key.name, c))
                .is_some_and(|i| i >= vi)
            {
                bad.push(format!("{}: deleted before its VXLAN map", v.key));
            }
        }
        let desired_delete = |c: &Change| c.is_delete() && c.cause == Cause::Desired;
        for (vi, v) in self.changes(Table::VlanInterface, &desired_delete) {
            if self
                .last(Table::VxlanTunnelMap, &|c| map_of(&v.key.name, c))
                .is_some_and(|i| i > vi)
            {
                bad.push(format!("{}: deleted before its VXLAN map", v.key));
            }
        }
    }

    /// A VRF goes after the ports and the VLAN interface bound to it.
    fn vrf_deletions(&self, bad: &mut Vec<String>) {
        for (ri, r) in self.changes(Table::Vrf, &|c| c.is_delete()) {
            let vrf = r.key.name.as_str();
            let bound = |c: &Change| matches!(&c.op, Op::Delete { old } if old.get("vrf_name").map(String::as_str) == Some(vrf));
            if self.last(Table::Interface, &bound).is_some_and(|i| i >= ri) {
                bad.push(format!("{}: deleted while ports are still bound", r.key));
            }
            if self
                .last(Table::VlanInterface, &bound)
                .is_some_and(|i| i >= ri)
            {
                bad.push(format!("{}: deleted before its VLAN interface", r.key));
            }
        }
    }

    /// Creation order: VLAN → map → VRF (vni) → VLAN interface / bindings.
    fn vrf_creations(&self, bad: &mut Vec<String>) {
        let desired = |c: &Change| !c.is_delete() && c.cause == Cause::Desired;
        for (ri, r) in self.changes(Table::Vrf, &desired) {
            let vrf = r.key.name.clone();
            let vni = match &r.op {
                Op::Create { fields } | Op::Update { set: fields, .. } => {
                    fields.get("vni").cloned()
                }
                Op::Delete { .. } => None,
            };
            if let Some(vni) = vni {
                let prefix = format!("map_{vni}_");
                let is_map = |c: &Change| {
                    c.is_create()
                        && c.key
                            .name
                            .rsplit(SEP)
                            .next()
                            .is_some_and(|m| m.starts_with(&prefix))
                };
                if self
                    .first(Table::VxlanTunnelMap, &is_map)
                    .is_some_and(|i| i >= ri)
                {
                    bad.push(format!(
                        "{}: takes VNI {vni} before its VLAN-VNI map exists",
                        r.key
                    ));
                }
            }
            let binds = |c: &Change| matches!(&c.op, Op::Create { fields } if fields.get("vrf_name") == Some(&vrf));
            let bound = self
                .first(Table::Interface, &binds)
                .into_iter()
                .chain(self.first(Table::VlanInterface, &binds))
                .min();
            if bound.is_some_and(|i| i <= ri) {
                bad.push(format!(
                    "{}: an interface is bound before the VRF exists",
                    r.key
                ));
            }
        }
    }

    /// A VXLAN map is created with or after its VLAN.
    fn map_creations(&self, bad: &mut Vec<String>) {
        for (mi, m) in self.changes(Table::VxlanTunnelMap, &|c| c.is_create()) {
            let vlan = match &m.op {
                Op::Create { fields } => fields.get("vlan").cloned().unwrap_or_default(),
                _ => String::new(),
            };
            if self
                .first(Table::Vlan, &|c| c.is_create() && c.key.name == vlan)
                .is_some_and(|i| i > mi)
            {
                bad.push(format!("{}: created before {vlan}", m.key));
            }
        }
    }
}

/// The port of a VLAN member change.
fn port_of_member(c: &Change) -> Option<String> {
    c.key.name.split_once(SEP).map(|(_, p)| p.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configdb::plan::{Phase, Stage};
    use crate::configdb::testkit::f;

    fn change(key: &str, op: Op) -> Change {
        Change {
            key: Key::parse(key).unwrap(),
            op,
            cause: Cause::Desired,
        }
    }

    #[test]
    fn the_rule_checker_catches_broken_orders() {
        // A hand-made plan that routes a port in the phase that removes it
        // from its VLAN, and deletes a VLAN with its map.
        let bad = Plan {
            pending: Vec::new(),
            phases: vec![Phase {
                stage: Stage::Detach,
                preconditions: Vec::new(),
                changes: vec![
                    change(
                        "VLAN_MEMBER|Vlan3900|Ethernet1",
                        Op::Delete {
                            old: f(&[("tagging_mode", "untagged")]),
                        },
                    ),
                    change(
                        "INTERFACE|Ethernet1",
                        Op::Create {
                            fields: f(&[("ipv6_use_link_local_only", "enable")]),
                        },
                    ),
                    change(
                        "VLAN|Vlan1001",
                        Op::Delete {
                            old: f(&[("vlanid", "1001")]),
                        },
                    ),
                    change(
                        "VXLAN_TUNNEL_MAP|vtep|map_7_Vlan1001",
                        Op::Delete {
                            old: f(&[("vlan", "Vlan1001"), ("vni", "7")]),
                        },
                    ),
                ],
                barrier: Vec::new(),
            }],
        };
        let found = check_rules(&bad).join("\n");
        for want in [
            "Ethernet1: INTERFACE created before VLAN_MEMBER|Vlan3900|Ethernet1 is deleted",
            "Ethernet1: routed without checking for a lingering ASIC bridge port",
            "VLAN|Vlan1001: deleted before its VXLAN map",
        ] {
            assert!(found.contains(want), "missing {want:?} in:\n{found}");
        }
    }
}
