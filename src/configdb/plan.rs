//! Ordering a change set into phases with barriers (pure).
//!
//! SONiC's daemons order work only by key within one table and crash on some
//! cross-table orders (sonic-configdb reference §3, §7). The planner puts
//! every change into one of eight stages (the second and third only when a
//! VXLAN map must be replaced); each non-empty stage becomes one
//! phase, written as one `MULTI/EXEC`, followed by a barrier: conditions in
//! STATE_DB, APPL_DB, COUNTERS_DB and ASIC_DB that say SONiC has processed
//! the phase.
//!
//! | stage | writes | waits for |
//! |---|---|---|
//! | 1 detach | delete VLAN members and INTERFACE entries (ports leave their VLAN or VRF); delete the first half of replacements (not maps); VRF `vni` → 0 where a VNI changes or a map of the VNI is replaced; PORT mtu/admin; create VLANs and VXLAN maps | members gone (STATE + ASIC bridge port), interfaces gone (STATE + RIF), VLANs and maps present, VNI 0 applied |
//! | (unmap) | delete VXLAN maps that had to be replaced (rare), no VRF holding their VNI any more | maps gone |
//! | (remap) | re-create them | maps present |
//! | 2 vrfs | create/update VRFs (with `vni`, after their VLAN-VNI map) | VRFs present / VNI applied |
//! | 3 attach | create INTERFACE (VRF binding), VLAN members, VLAN interfaces, neighbour suppression, replaced maps; delete VLAN interfaces | those present / gone |
//! | 4 remove VRFs | delete VRFs | VRFs gone (vrfmgrd's STATE entry and orchagent's VRF object) |
//! | 5 remove maps | delete VXLAN maps no longer wanted | maps gone |
//! | 6 cleanup | delete neighbour suppression and VLANs | VLANs gone |
//!
//! This keeps the rules: a port leaves its VLANs (STATE member entry and
//! ASIC bridge port gone) before it gets an INTERFACE entry and vice versa; a
//! VRF binding changes only by delete → confirm → create; VLAN-VNI maps
//! exist before a VRF takes the VNI; deletions go ports → VLAN interface →
//! VRF → tunnel map → suppression → VLAN (a map only once orchagent's
//! object of the VRF holding its VNI is gone: orchagent keeps such a map
//! out of the hardware and cannot remove it before; found on real SONiC
//! 202411, `docs/sonic.md`); no key is deleted and re-created in one phase.
//! `super::rules` states these rules as code for the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::confirms::{self, Condition, Special};
use super::diff::{Cause, Change, ChangeSet, Op};
use super::schema::{SEP, Table};

/// The stages of a plan, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Detach,
    /// Delete VXLAN maps that are replaced (only when a map had to be
    /// replaced): after the VRF holding their VNI took it through 0 in
    /// detach ([`super::diff`]), for the reason [`Stage::RemoveMaps`] gives.
    Unmap,
    /// Re-create replaced VXLAN maps (only when a map had to be replaced).
    Remap,
    Vrfs,
    Attach,
    RemoveVrfs,
    /// Remove VXLAN maps no longer wanted: after the VRF that held their VNI
    /// is gone. While a VRF has a VNI, orchagent keeps the VLAN-VNI map of
    /// that VNI out of the hardware (`VxlanVrfMapOrch::addOperation`); a
    /// map deleted then cannot be removed (`VxlanTunnelMapOrch::delOperation`
    /// retries forever, and gives up with the hardware state left behind
    /// once the VLAN is gone). SONiC's CLI refuses that order too (`config
    /// vxlan map del`: "VNI mapped to vrf").
    RemoveMaps,
    Cleanup,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Detach => "detach ports, create VLANs and VXLAN maps",
            Stage::Unmap => "delete replaced VXLAN maps",
            Stage::Remap => "re-create replaced VXLAN maps",
            Stage::Vrfs => "create VRFs",
            Stage::Attach => "bind ports and VLAN interfaces",
            Stage::RemoveVrfs => "remove VRFs",
            Stage::RemoveMaps => "remove VXLAN maps",
            Stage::Cleanup => "remove VLANs",
        }
    }
}

/// The stage a change belongs in.
pub fn stage_of(c: &Change) -> Stage {
    use Table::*;
    match (c.key.table, &c.op, c.cause) {
        (VlanMember | Interface, Op::Delete { .. }, _) => Stage::Detach,
        (VlanInterface, Op::Delete { .. }, Cause::Replace) => Stage::Detach,
        (VxlanTunnelMap, Op::Delete { .. }, Cause::Replace) => Stage::Unmap,
        (Vrf, Op::Update { .. }, Cause::VniReset) => Stage::Detach,
        (Vlan, Op::Create { .. } | Op::Update { .. }, _) => Stage::Detach,
        (VxlanTunnelMap, Op::Create { .. }, Cause::Desired) => Stage::Detach,
        (VxlanTunnelMap, Op::Create { .. }, Cause::Replace) => Stage::Remap,
        (Vrf, Op::Create { .. } | Op::Update { .. }, _) => Stage::Vrfs,
        (VxlanTunnelMap, Op::Delete { .. }, _) => Stage::RemoveMaps,
        (
            Interface | VlanMember | VlanInterface | SuppressVlanNeigh | VxlanTunnelMap,
            Op::Create { .. },
            _,
        ) => Stage::Attach,
        (VlanInterface, Op::Delete { .. }, _) => Stage::Attach,
        (SuppressVlanNeigh | Vlan, Op::Delete { .. }, _) => Stage::Cleanup,
        (Vrf, Op::Delete { .. }, _) => Stage::RemoveVrfs,
        // In-place updates of PORT, INTERFACE, members, suppression: anytime.
        (_, Op::Update { .. }, _) => Stage::Detach,
        // VXLAN_TUNNEL / VXLAN_EVPN_NVO / PORT are never created or deleted.
        (VxlanTunnel | VxlanEvpnNvo | Port, _, _) => Stage::Detach,
    }
}

/// One atomic write, what must hold before it, and what to wait for afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub stage: Stage,
    /// Conditions checked (and waited for) right before the write: a port
    /// that becomes routed must have no ASIC bridge port left, also when
    /// its VLAN membership ended in an earlier reconcile.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preconditions: Vec<Condition>,
    pub changes: Vec<Change>,
    pub barrier: Vec<Condition>,
}

impl Phase {
    pub fn commands(&self) -> usize {
        self.changes.iter().map(Change::commands).sum()
    }
}

/// The ordered phases that apply a change set safely.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Confirmations SONiC still owes for what CONFIG_DB already holds
    /// (see [`super::confirmed`]); waited for before the first write.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Condition>,
    pub phases: Vec<Phase>,
}

impl Plan {
    /// Nothing to write and nothing to wait for: CONFIG_DB matches the
    /// desired state and SONiC has confirmed it.
    pub fn is_empty(&self) -> bool {
        self.phases.is_empty() && self.pending.is_empty()
    }
    /// Number of changed keys.
    pub fn changes(&self) -> usize {
        self.phases.iter().map(|p| p.changes.len()).sum()
    }
    /// Number of redis write commands.
    pub fn commands(&self) -> usize {
        self.phases.iter().map(Phase::commands).sum()
    }
    /// Every change, in phase order.
    pub fn iter_changes(&self) -> impl Iterator<Item = &Change> {
        self.phases.iter().flat_map(|p| p.changes.iter())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(
                f,
                "no changes: CONFIG_DB matches the desired state and SONiC has confirmed it"
            );
        }
        if !self.pending.is_empty() {
            writeln!(
                f,
                "first wait for SONiC to confirm what CONFIG_DB already holds ({} condition(s)):",
                self.pending.len()
            )?;
            write_barrier(f, &self.pending)?;
        }
        if self.phases.is_empty() {
            return writeln!(f, "no changes to write");
        }
        writeln!(
            f,
            "{} change(s) in {} phase(s), {} redis command(s):",
            self.changes(),
            self.phases.len(),
            self.commands()
        )?;
        for (i, p) in self.phases.iter().enumerate() {
            writeln!(
                f,
                "phase {}/{}: {}",
                i + 1,
                self.phases.len(),
                p.stage.describe()
            )?;
            if !p.preconditions.is_empty() {
                writeln!(f, "  first check:")?;
                write_barrier(f, &p.preconditions)?;
            }
            for c in &p.changes {
                writeln!(f, "  {c}")?;
            }
            if !p.barrier.is_empty() {
                writeln!(f, "  then wait for:")?;
                write_barrier(f, &p.barrier)?;
            }
        }
        Ok(())
    }
}

/// Print a barrier; runs of more than three conditions of one kind are shortened.
fn write_barrier(f: &mut fmt::Formatter<'_>, barrier: &[Condition]) -> fmt::Result {
    let kind = |c: &Condition| (c.db, c.table, std::mem::discriminant(&c.check), c.by);
    let mut i = 0;
    while i < barrier.len() {
        let k = kind(&barrier[i]);
        let n = barrier[i..].iter().take_while(|c| kind(c) == k).count();
        if n <= 3 {
            for c in &barrier[i..i + n] {
                writeln!(f, "    {c}")?;
            }
        } else {
            let group = &barrier[i..i + n];
            let sep = group[0].db.default_separator();
            let names: Vec<String> = group.iter().take(3).map(|c| c.name_with(sep)).collect();
            writeln!(
                f,
                "    {} (x{n}: {}, ... and {} more)",
                group[0],
                names.join(", "),
                n - 3
            )?;
        }
        i += n;
    }
    Ok(())
}

/// Order a change set into phases with barriers.
pub fn plan(set: ChangeSet) -> Plan {
    // Ports that get an INTERFACE entry in this plan: their VLAN-member
    // deletions must also wait for the ASIC bridge port to go.
    let routed_later: BTreeSet<String> = set
        .changes
        .iter()
        .filter(|c| c.key.table == Table::Interface && c.is_create())
        .map(|c| c.key.name.clone())
        .collect();
    // Ports whose VLAN membership ends in this plan: that phase's barrier
    // already waits for their bridge port to go.
    let unbridged_here: BTreeSet<String> = set
        .changes
        .iter()
        .filter(|c| c.key.table == Table::VlanMember && c.is_delete())
        .filter_map(|c| c.key.name.split_once(SEP).map(|(_, p)| p.to_owned()))
        .collect();
    let mut stages: BTreeMap<Stage, Vec<Change>> = BTreeMap::new();
    for c in set.changes {
        stages.entry(stage_of(&c)).or_default().push(c);
    }
    let phases = stages
        .into_iter()
        .map(|(stage, mut changes)| {
            changes.sort_by(|a, b| a.key.cmp(&b.key));
            let mut barrier: Vec<Condition> = changes
                .iter()
                .flat_map(|c| confirmations(c, &routed_later))
                .collect();
            barrier.sort();
            barrier.dedup();
            let preconditions: Vec<Condition> = changes
                .iter()
                .filter(|c| c.key.table == Table::Interface && c.is_create())
                .filter(|c| !unbridged_here.contains(&c.key.name))
                .map(|c| confirms::no_bridge_port(&c.key.name))
                .collect();
            Phase {
                stage,
                preconditions,
                changes,
                barrier,
            }
        })
        .collect();
    Plan {
        pending: Vec::new(),
        phases,
    }
}

/// The conditions that confirm one change, from the catalogue
/// ([`confirms::CATALOGUE`]): a created entry's marker is present, a deleted
/// one's gone (and orchagent's object of it, its router interface, and — for
/// a port routed later in the plan — its ASIC bridge port); an update waits
/// for the copy of a field the daemon mirrors.
fn confirmations(c: &Change, routed_later: &BTreeSet<String>) -> Vec<Condition> {
    let Some(entry) = confirms::of(c.key.table) else {
        return Vec::new();
    };
    let name = c.key.name.as_str();
    match &c.op {
        Op::Create { .. } => vec![entry.marker.present(name)],
        Op::Update { set, .. } => entry
            .mirror
            .iter()
            .filter(|m| m.on_update)
            .filter_map(|m| {
                set.get(m.config_field)
                    .map(|v| m.marker.field_is(name, m.marker_field, v))
            })
            .collect(),
        Op::Delete { .. } => {
            let mut v: Vec<Condition> = entry.deletion_markers().map(|m| m.gone(name)).collect();
            match entry.special {
                Some(Special::RouterInterface) => v.push(confirms::rif_gone(name)),
                Some(Special::BridgePort) => {
                    if let Some((_, port)) = name.split_once(SEP)
                        && routed_later.contains(port)
                    {
                        v.push(confirms::no_bridge_port(port));
                    }
                }
                None => {}
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    //! Phases and barriers of hand-written change sets, checked against the
    //! ordering rules of sonic-configdb reference §3.3 and §7 and the
    //! confirmations of §4 — not against this module's own table.
    use super::*;
    use crate::configdb::rules::check_rules;
    use crate::configdb::schema::Key;
    use crate::configdb::testkit::f;

    fn create(key: &str, fields: &[(&str, &str)], cause: Cause) -> Change {
        Change {
            key: Key::parse(key).unwrap(),
            op: Op::Create { fields: f(fields) },
            cause,
        }
    }

    fn delete(key: &str, old: &[(&str, &str)], cause: Cause) -> Change {
        Change {
            key: Key::parse(key).unwrap(),
            op: Op::Delete { old: f(old) },
            cause,
        }
    }

    fn update(key: &str, set: &[(&str, &str)], cause: Cause) -> Change {
        Change {
            key: Key::parse(key).unwrap(),
            op: Op::Update {
                set: f(set),
                remove: Vec::new(),
            },
            cause,
        }
    }

    /// The phase index of the change of `key` that `pred` picks.
    fn phase_of(p: &Plan, key: &str, pred: impl Fn(&Change) -> bool) -> usize {
        p.phases
            .iter()
            .position(|ph| {
                ph.changes
                    .iter()
                    .any(|c| c.key.redis_key() == key && pred(c))
            })
            .unwrap_or_else(|| panic!("{key} is not in the plan:\n{p}"))
    }

    /// A phase's barrier as text, sorted (the order of conditions does not matter).
    fn barrier(p: &Plan, phase: usize) -> Vec<String> {
        let mut b: Vec<String> = p.phases[phase]
            .barrier
            .iter()
            .map(ToString::to_string)
            .collect();
        b.sort();
        b
    }

    const D: Cause = Cause::Desired;
    const R: Cause = Cause::Replace;
    const LLO: (&str, &str) = ("ipv6_use_link_local_only", "enable");

    #[test]
    fn pxe_to_vrf_leaves_the_bridge_before_it_is_routed() {
        // §3.3 rule 2: DEL VLAN_MEMBER, wait until STATE_DB's member entry
        // and the ASIC bridge port are gone, then HSET INTERFACE.
        let p = plan(ChangeSet {
            changes: vec![
                create("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf104009")], D),
                delete(
                    "VLAN_MEMBER|Vlan3900|Ethernet1",
                    &[("tagging_mode", "untagged")],
                    D,
                ),
            ],
        });
        let del = phase_of(&p, "VLAN_MEMBER|Vlan3900|Ethernet1", Change::is_delete);
        let cre = phase_of(&p, "INTERFACE|Ethernet1", Change::is_create);
        assert!(del < cre, "{p}");
        assert_eq!(
            barrier(&p, del),
            [
                "ASIC_DB has no bridge port for Ethernet1 (orchagent)",
                "STATE_DB VLAN_MEMBER_TABLE|Vlan3900|Ethernet1 gone (vlanmgrd)",
            ]
        );
        assert_eq!(
            barrier(&p, cre),
            ["STATE_DB INTERFACE_TABLE|Ethernet1 present (intfmgrd)"]
        );
        assert!(check_rules(&p).is_empty(), "{:?}", check_rules(&p));
    }

    #[test]
    fn a_port_routed_without_a_membership_ending_now_checks_for_a_bridge_port_first() {
        // A membership may have ended in an interrupted earlier reconcile:
        // the bridge port is checked right before the INTERFACE entry.
        let p = plan(ChangeSet {
            changes: vec![create("INTERFACE|Ethernet3", &[LLO], D)],
        });
        assert_eq!(p.phases.len(), 1);
        let pre: Vec<String> = p.phases[0]
            .preconditions
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            pre,
            ["ASIC_DB has no bridge port for Ethernet3 (orchagent)"]
        );
    }

    #[test]
    fn vrf_to_pxe_unroutes_before_it_bridges() {
        // §3.3 rule 3: DEL INTERFACE, wait for STATE_DB and the RIF to go,
        // then HSET VLAN_MEMBER.
        let p = plan(ChangeSet {
            changes: vec![
                delete("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf104009")], D),
                create(
                    "VLAN_MEMBER|Vlan3900|Ethernet1",
                    &[("tagging_mode", "untagged")],
                    D,
                ),
            ],
        });
        let del = phase_of(&p, "INTERFACE|Ethernet1", Change::is_delete);
        let cre = phase_of(&p, "VLAN_MEMBER|Vlan3900|Ethernet1", Change::is_create);
        assert!(del < cre, "{p}");
        assert_eq!(
            barrier(&p, del),
            [
                "COUNTERS_DB COUNTERS_RIF_NAME_MAP[Ethernet1] gone (orchagent removed the router interface)",
                "STATE_DB INTERFACE_TABLE|Ethernet1 gone (intfmgrd)",
            ]
        );
        assert_eq!(
            barrier(&p, cre),
            ["STATE_DB VLAN_MEMBER_TABLE|Vlan3900|Ethernet1 present (vlanmgrd)"]
        );
        assert!(check_rules(&p).is_empty(), "{:?}", check_rules(&p));
    }

    #[test]
    fn vrf_to_vrf_unbinds_confirms_and_rebinds() {
        // §3.3 rule 4 / §7.2: never rewrite vrf_name in place.
        let p = plan(ChangeSet {
            changes: vec![
                delete("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf1")], R),
                create("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf2")], R),
            ],
        });
        let del = phase_of(&p, "INTERFACE|Ethernet1", Change::is_delete);
        let cre = phase_of(&p, "INTERFACE|Ethernet1", Change::is_create);
        assert!(del < cre, "{p}");
        assert!(
            barrier(&p, del)
                .contains(&"STATE_DB INTERFACE_TABLE|Ethernet1 gone (intfmgrd)".to_owned()),
            "{p}"
        );
        assert!(check_rules(&p).is_empty(), "{:?}", check_rules(&p));
    }

    #[test]
    fn a_tenant_vrf_is_built_vlan_and_map_first_then_the_vrf_then_its_interface() {
        // §3.3 rule 5: VLAN → VXLAN_TUNNEL_MAP → VRF (vni) → VLAN_INTERFACE.
        let p = plan(ChangeSet {
            changes: vec![
                create(
                    "VRF|Vrf104009",
                    &[("vni", "104009"), ("fallback", "false")],
                    D,
                ),
                create("VLAN_INTERFACE|Vlan1001", &[("vrf_name", "Vrf104009")], D),
                create("SUPPRESS_VLAN_NEIGH|Vlan1001", &[("suppress", "on")], D),
                create(
                    "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
                    &[("vlan", "Vlan1001"), ("vni", "104009")],
                    D,
                ),
                create("VLAN|Vlan1001", &[("vlanid", "1001")], D),
                create("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf104009")], D),
            ],
        });
        let vlan = phase_of(&p, "VLAN|Vlan1001", |_| true);
        let map = phase_of(&p, "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001", |_| true);
        let vrf = phase_of(&p, "VRF|Vrf104009", |_| true);
        let svi = phase_of(&p, "VLAN_INTERFACE|Vlan1001", |_| true);
        let bind = phase_of(&p, "INTERFACE|Ethernet1", |_| true);
        assert!(vlan <= map && map < vrf && vrf < svi && vrf < bind, "{p}");
        // The VRF takes its VNI only once vxlanmgrd confirmed the map.
        assert!(
            barrier(&p, map).contains(
                &"APPL_DB VXLAN_TUNNEL_MAP_TABLE:vtep:map_104009_Vlan1001 present (vxlanmgrd)"
                    .to_owned()
            ),
            "{p}"
        );
        assert!(
            barrier(&p, vlan)
                .contains(&"STATE_DB VLAN_TABLE|Vlan1001 present (vlanmgrd)".to_owned()),
            "{p}"
        );
        assert!(
            barrier(&p, vrf).contains(&"STATE_DB VRF_TABLE|Vrf104009 present (vrfmgrd)".to_owned()),
            "{p}"
        );
        assert!(check_rules(&p).is_empty(), "{:?}", check_rules(&p));
    }

    #[test]
    fn a_tenant_vrf_is_removed_ports_interface_vrf_map_then_suppression_and_vlan() {
        // §7.7 / §3.3 rule 6.
        let p = plan(ChangeSet {
            changes: vec![
                delete(
                    "VRF|Vrf104009",
                    &[("vni", "104009"), ("fallback", "false")],
                    D,
                ),
                delete("VLAN|Vlan1001", &[("vlanid", "1001")], D),
                delete("SUPPRESS_VLAN_NEIGH|Vlan1001", &[("suppress", "on")], D),
                delete("VLAN_INTERFACE|Vlan1001", &[("vrf_name", "Vrf104009")], D),
                delete(
                    "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
                    &[("vlan", "Vlan1001"), ("vni", "104009")],
                    D,
                ),
                delete("INTERFACE|Ethernet1", &[LLO, ("vrf_name", "Vrf104009")], D),
            ],
        });
        let port = phase_of(&p, "INTERFACE|Ethernet1", |_| true);
        let map = phase_of(&p, "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001", |_| true);
        let svi = phase_of(&p, "VLAN_INTERFACE|Vlan1001", |_| true);
        let sup = phase_of(&p, "SUPPRESS_VLAN_NEIGH|Vlan1001", |_| true);
        let vlan = phase_of(&p, "VLAN|Vlan1001", |_| true);
        let vrf = phase_of(&p, "VRF|Vrf104009", |_| true);
        // The VRF (with its VNI) before the VLAN-VNI map: orchagent keeps
        // that map out of the hardware while a VRF holds the VNI.
        assert!(
            port < svi && svi < vrf && vrf < map && map < vlan && sup <= vlan,
            "{p}"
        );
        // Each deletion is confirmed before the next step.
        assert!(
            barrier(&p, map)
                .iter()
                .any(|b| b.contains("VXLAN_TUNNEL_MAP_TABLE:vtep:map_104009_Vlan1001 gone")),
            "{p}"
        );
        assert!(
            barrier(&p, vlan)
                .iter()
                .any(|b| b == "STATE_DB VLAN_TABLE|Vlan1001 gone (vlanmgrd)"),
            "{p}"
        );
        assert!(
            barrier(&p, vrf)
                .iter()
                .any(|b| b == "STATE_DB VRF_TABLE|Vrf104009 gone (vrfmgrd)"),
            "{p}"
        );
        assert!(
            barrier(&p, vrf)
                .iter()
                .any(|b| b == "STATE_DB VRF_OBJECT_TABLE|Vrf104009 gone (orchagent)"),
            "{p}"
        );
        assert!(check_rules(&p).is_empty(), "{:?}", check_rules(&p));
    }

    #[test]
    fn a_vni_reset_is_confirmed_before_the_new_vni() {
        let p = plan(ChangeSet {
            changes: vec![
                update("VRF|Vrf104009", &[("vni", "0")], Cause::VniReset),
                update("VRF|Vrf104009", &[("vni", "104009")], D),
            ],
        });
        assert_eq!(p.phases.len(), 2, "{p}");
        assert_eq!(
            barrier(&p, 0),
            ["APPL_DB VRF_TABLE:Vrf104009 vni=\"0\" (vrfmgrd)"]
        );
        assert_eq!(
            barrier(&p, 1),
            ["APPL_DB VRF_TABLE:Vrf104009 vni=\"104009\" (vrfmgrd)"]
        );
    }

    #[test]
    fn phases_are_atomic_sorted_and_port_updates_wait_for_nothing() {
        let p = plan(ChangeSet {
            changes: vec![
                update("PORT|Ethernet2", &[("mtu", "9000")], D),
                update("PORT|Ethernet1", &[("admin_status", "up")], D),
            ],
        });
        assert_eq!(p.phases.len(), 1);
        let keys: Vec<String> = p.phases[0]
            .changes
            .iter()
            .map(|c| c.key.redis_key())
            .collect();
        assert_eq!(keys, ["PORT|Ethernet1", "PORT|Ethernet2"]);
        assert!(p.phases[0].barrier.is_empty());
        assert_eq!(p.commands(), 2);
        assert_eq!(p.changes(), 2);
    }

    #[test]
    fn an_empty_change_set_is_an_empty_plan() {
        let p = plan(ChangeSet::default());
        assert!(p.is_empty());
        assert_eq!(
            p.to_string(),
            "no changes: CONFIG_DB matches the desired state and SONiC has confirmed it\n"
        );
    }
}
