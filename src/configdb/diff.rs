//! The minimal change set between the owned part of CONFIG_DB and a target (pure).
//!
//! A change is one of: create a key (one `HSET` with every field), update it
//! (`HSET` of changed fields plus `HDEL` of stale ones — only fields the
//! agent owns in that table, [`Table::owned_fields`]; a field it does not
//! know stays until the entry goes — never a `DEL`), or delete it (`DEL`). Entries SONiC treats as immutable or whose change a
//! daemon would drop are *replaced*: a delete and a create of the same key
//! that the planner puts into different phases, with a confirmed barrier in
//! between — never `DEL` followed by `HSET` in one go:
//! - `INTERFACE|<p>` and `VLAN_INTERFACE|Vlan<V>` when `vrf_name` changes
//!   (intfmgrd refuses an in-place VRF change);
//! - `VLAN_MEMBER` when its `tagging_mode` changes (vlanmgrd skips a SET of
//!   an existing member);
//! - `VXLAN_TUNNEL_MAP` when its `vlan` or `vni` changes (vxlanmgrd ignores a
//!   second SET).
//!
//! A VRF whose non-zero `vni` must change goes through `vni = 0` first
//! (vrfmgrd rejects a direct change).
//!
//! Entries that are not owned are never in a change set; PORT keys are never
//! created or deleted.

use std::fmt;

use serde::Serialize;

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::owned::Ownership;
use super::reach::Covered;
use super::schema::{DbState, Fields, Key, Table};
use super::target::{self, Desired, Scope, Scratch};
use crate::spec::SwitchSpec;

/// What happens to one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The key does not exist: write all fields in one `HSET`.
    Create { fields: Fields },
    /// Set changed fields, remove stale ones.
    Update {
        set: Fields,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
    /// Delete the key; `old` is what it held.
    Delete { old: Fields },
}

/// Why a change is there (decides its phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The desired state differs.
    Desired,
    /// One half of a replacement: delete, wait for SONiC, create anew.
    Replace,
    /// First step of a VNI change: set the VRF's `vni` to 0.
    VniReset,
}

/// One change of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub key: Key,
    #[serde(flatten)]
    pub op: Op,
    #[serde(skip_serializing_if = "is_desired")]
    pub cause: Cause,
}

fn is_desired(c: &Cause) -> bool {
    *c == Cause::Desired
}

impl Change {
    /// Redis commands this change costs (`HSET`, `HDEL`, `DEL`).
    pub fn commands(&self) -> usize {
        match &self.op {
            Op::Create { .. } | Op::Delete { .. } => 1,
            Op::Update { set, remove } => {
                usize::from(!set.is_empty()) + usize::from(!remove.is_empty())
            }
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(self.op, Op::Delete { .. })
    }

    pub fn is_create(&self) -> bool {
        matches!(self.op, Op::Create { .. })
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &Fields) -> fmt::Result {
    f.write_str("{")?;
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{k}={v}")?;
    }
    f.write_str("}")
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Create { fields } => {
                write!(f, "+ {} ", self.key)?;
                write_fields(f, fields)?;
            }
            Op::Update { set, remove } => {
                write!(f, "~ {}", self.key)?;
                if !set.is_empty() {
                    f.write_str(" set ")?;
                    write_fields(f, set)?;
                }
                if !remove.is_empty() {
                    write!(f, " remove [{}]", remove.join(", "))?;
                }
            }
            Op::Delete { old } => {
                write!(f, "- {} (was ", self.key)?;
                write_fields(f, old)?;
                f.write_str(")")?;
            }
        }
        match self.cause {
            Cause::Desired => Ok(()),
            Cause::Replace => f.write_str("  [replace]"),
            Cause::VniReset => f.write_str("  [vni via 0]"),
        }
    }
}

/// The changes that turn the owned part of CONFIG_DB into the target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ChangeSet {
    pub changes: Vec<Change>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

/// Whether changing `cur` into `want` needs delete + create.
/// A daemon drops or ignores a change of these fields on an existing entry;
/// other fields (a stray one) are removed in place, which the daemons treat
/// as a no-op.
fn needs_replace(table: Table, cur: &Fields, want: &Fields) -> bool {
    let differs = |f: &str| cur.get(f) != want.get(f);
    match table {
        Table::Interface | Table::VlanInterface => {
            let vrf = |f: &Fields| f.get("vrf_name").cloned().unwrap_or_default();
            vrf(cur) != vrf(want)
        }
        Table::VlanMember => differs("tagging_mode"),
        Table::VxlanTunnelMap => differs("vlan") || differs("vni"),
        _ => false,
    }
}

/// The fields of `cur` the agent owns in `table` but does not want.
fn stale(table: Table, cur: &Fields, want: &Fields) -> Vec<String> {
    cur.keys()
        .filter(|k| table.owns_field(k) && !want.contains_key(k))
        .cloned()
        .collect()
}

/// Field-level difference of an existing entry.
fn field_diff(table: Table, cur: &Fields, want: &Fields, scope: Scope) -> (Fields, Vec<String>) {
    let set: Fields = want
        .iter()
        .filter(|(k, v)| cur.get(k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = match scope {
        Scope::Schema => stale(table, cur, want),
        Scope::Listed => Vec::new(),
    };
    (set, remove)
}

/// Whether an existing entry already holds the desired fields and none of
/// the table's other owned fields.
fn matches(table: Table, want: &[(&str, &str)], cur: &Fields, scope: Scope) -> bool {
    let wanted = want
        .iter()
        .all(|(k, v)| cur.get(k).map(String::as_str) == Some(*v));
    wanted
        && (scope == Scope::Listed
            || cur.len() == want.len()
            || cur
                .keys()
                .all(|k| !table.owns_field(k) || want.iter().any(|(w, _)| w == k)))
}

/// Entries of `current` identified by table and the address of their stored
/// name (stable while `current` is borrowed); no key is copied or hashed as
/// a string.
type Matched = FxHashSet<(usize, usize)>;

fn id(table: Table, stored_name: &str) -> (usize, usize) {
    (table.index(), stored_name.as_ptr() as usize)
}

/// Compare one desired entry with CONFIG_DB. `owned` is `None` where the
/// caller knows the key is the agent's (the incremental path).
fn diff_desired(
    current: &DbState,
    owned: Option<&Ownership<'_>>,
    force: &[Key],
    d: &Desired<'_>,
    matched: &mut Matched,
    out: &mut Vec<Change>,
) {
    match current.entry_in(d.table, d.name) {
        None => {
            if d.table != Table::Port {
                out.push(Change {
                    key: d.key(),
                    op: Op::Create {
                        fields: d.to_fields(),
                    },
                    cause: Cause::Desired,
                });
            }
        }
        Some((stored, cur)) => {
            matched.insert(id(d.table, stored));
            if d.table != Table::Port && owned.is_some_and(|o| !o.owns(d.table, d.name, cur)) {
                // Spec validation refuses desired states that collide with
                // foreign entries; never overwrite one here.
                return;
            }
            if !force.is_empty() && force.iter().any(|k| k.table == d.table && k.name == d.name) {
                force_replace(&d.key(), cur, &d.to_fields(), out);
            } else if !matches(d.table, d.fields, cur, d.scope) {
                diff_entry(&d.key(), cur, &d.to_fields(), d.scope, out);
            }
        }
    }
}

/// The change set that turns the owned part of `current` into the target of
/// `spec`. `owned` must be built from the same `current` and `spec`.
pub fn diff(current: &DbState, spec: &SwitchSpec, owned: &Ownership<'_>) -> ChangeSet {
    diff_forced(current, spec, owned, &[])
}

/// Like [`diff`], and every wanted entry of `force` (entries SONiC dropped,
/// see [`super::confirmed`]) is replaced even where CONFIG_DB already holds
/// the desired fields: `INTERFACE` / `VLAN_INTERFACE` by delete → confirm →
/// create, a VRF by taking its VNI through 0.
pub fn diff_forced(
    current: &DbState,
    spec: &SwitchSpec,
    owned: &Ownership<'_>,
    force: &[Key],
) -> ChangeSet {
    let mut changes = Vec::new();
    let mut matched = Matched::with_capacity_and_hasher(current.len(), Default::default());
    target::visit(spec, &mut |d| {
        diff_desired(current, Some(owned), force, &d, &mut matched, &mut changes)
    });
    deletions(current, owned, &matched, &mut changes);
    release_replaced_maps(current, &mut changes);
    ChangeSet { changes }
}

/// [`diff_forced`] for the entries of `reach` only (the ports and VRFs it
/// names and the entries it covers): the rest of CONFIG_DB is known to be
/// at the target ([`super::reach`]).
pub fn diff_scoped(
    current: &DbState,
    spec: &SwitchSpec,
    owned: &Ownership<'_>,
    force: &[Key],
    covered: &Covered<'_, '_>,
) -> ChangeSet {
    let mut changes = Vec::new();
    let mut matched = Matched::default();
    let reach = covered.reach;
    let mut s = Scratch::default();
    let mut visit =
        |d: Desired<'_>| diff_desired(current, Some(owned), force, &d, &mut matched, &mut changes);
    for p in reach.ports.iter().filter_map(|p| spec.ports.get(p)) {
        target::visit_port(spec, p, &mut s, &mut visit);
    }
    for v in reach.vnis.iter().filter_map(|v| spec.vrfs.get(v)) {
        target::visit_vrf(spec, v, &mut s, &mut visit);
    }
    for table in deletable() {
        for (name, cur) in covered.entries(table).iter().copied() {
            delete_unmatched(owned, &matched, table, name, cur, &mut changes);
        }
    }
    release_replaced_maps(current, &mut changes);
    ChangeSet { changes }
}

/// The tables whose owned entries a plan may delete, in [`Table::ALL`]'s
/// order (`PORT` keys are never deleted; the VTEP is never owned).
fn deletable() -> impl Iterator<Item = Table> {
    Table::ALL
        .into_iter()
        .filter(|t| !matches!(t, Table::Port | Table::VxlanTunnel | Table::VxlanEvpnNvo))
}

/// Delete the owned entries of `current` that no desired entry matched.
fn deletions(
    current: &DbState,
    owned: &Ownership<'_>,
    matched: &Matched,
    changes: &mut Vec<Change>,
) {
    for table in deletable() {
        for (name, cur) in current.table(table) {
            delete_unmatched(owned, matched, table, name, cur, changes);
        }
    }
}

/// Delete `table|name` (holding `cur`) when the agent owns it and no
/// desired entry matched it.
fn delete_unmatched(
    owned: &Ownership<'_>,
    matched: &Matched,
    table: Table,
    name: &str,
    cur: &Fields,
    changes: &mut Vec<Change>,
) {
    if !matched.contains(&id(table, name)) && owned.owns(table, name, cur) {
        changes.push(Change {
            key: Key::new(table, name),
            op: Op::Delete { old: cur.clone() },
            cause: Cause::Desired,
        });
    }
}

/// A VXLAN map that is replaced (deleted, confirmed, created anew) must not
/// be deleted while a VRF holds its VNI: orchagent keeps such a map out of
/// the hardware and cannot remove it (`plan::Stage::RemoveMaps`; found on
/// real SONiC 202411). So every VRF in `current` whose `vni` is the old or
/// the new VNI of a replaced map takes its VNI through 0 around the
/// replacement — `vni` → 0 (stage detach), the map deleted (unmap) and
/// created (remap), the VNI set again (vrfs) — unless the change set
/// already deletes the VRF or takes its VNI through 0.
fn release_replaced_maps(current: &DbState, changes: &mut Vec<Change>) {
    let vni_of = |f: &Fields| {
        f.get("vni")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v != 0)
    };
    let mut vnis: Vec<u32> = changes
        .iter()
        .filter(|c| c.key.table == Table::VxlanTunnelMap && c.cause == Cause::Replace)
        .filter_map(|c| match &c.op {
            Op::Delete { old: f } | Op::Create { fields: f } => vni_of(f),
            Op::Update { .. } => None,
        })
        .collect();
    if vnis.is_empty() {
        return;
    }
    vnis.sort_unstable();
    vnis.dedup();
    let mut holders: Vec<(Key, u32)> = current
        .table(Table::Vrf)
        .filter_map(|(name, f)| Some((Key::new(Table::Vrf, name), vni_of(f)?)))
        .filter(|(_, vni)| vnis.binary_search(vni).is_ok())
        .collect();
    holders.retain(|(key, _)| {
        !changes
            .iter()
            .any(|c| c.key == *key && (c.is_delete() || c.cause == Cause::VniReset))
    });
    holders.sort();
    for (key, vni) in holders {
        changes.push(vni_reset(&key));
        let mut set = Fields::new();
        set.insert("vni".into(), vni.to_string());
        changes.push(Change {
            key,
            op: Op::Update {
                set,
                remove: Vec::new(),
            },
            cause: Cause::Desired,
        });
    }
}

/// The change set from `old` to `new` when CONFIG_DB holds `old`'s target
/// (the agent applied it and nobody changed the agent's entries since):
/// only ports and VRFs whose spec differs are re-targeted and compared.
/// `None` when a switch-wide setting changed (PXE VLAN, VTEP, VLAN range,
/// static VRFs) — plan the whole switch then.
pub fn diff_delta(old: &SwitchSpec, new: &SwitchSpec, current: &DbState) -> Option<ChangeSet> {
    // The very spec (the agent kept it): nothing to compare.
    if std::ptr::eq(old, new) {
        return Some(ChangeSet::default());
    }
    if old.pxe_vlan != new.pxe_vlan
        || old.vtep != new.vtep
        || old.vlan_range != new.vlan_range
        || old.static_vrfs != new.static_vrfs
    {
        return None;
    }
    let mut changes = Vec::new();
    let mut matched = Matched::default();
    let mut wanted: FxHashSet<Key> = FxHashSet::default();
    let mut s = Scratch::default();
    let ports = changed(&old.ports, &new.ports);
    let vrfs = changed(&old.vrfs, &new.vrfs);
    let mut visit_new = |d: Desired<'_>| {
        wanted.insert(d.key());
        diff_desired(current, None, &[], &d, &mut matched, &mut changes);
    };
    for p in ports.iter().filter_map(|k| new.ports.get(*k)) {
        target::visit_port(new, p, &mut s, &mut visit_new);
    }
    for v in vrfs.iter().filter_map(|k| new.vrfs.get(*k)) {
        target::visit_vrf(new, v, &mut s, &mut visit_new);
    }
    let mut visit_old = |d: Desired<'_>| {
        if d.table != Table::Port
            && let Some(cur) = current.get_in(d.table, d.name)
            && !wanted.contains(&d.key())
        {
            changes.push(Change {
                key: d.key(),
                op: Op::Delete { old: cur.clone() },
                cause: Cause::Desired,
            });
        }
    };
    for p in ports.iter().filter_map(|k| old.ports.get(*k)) {
        target::visit_port(old, p, &mut s, &mut visit_old);
    }
    for v in vrfs.iter().filter_map(|k| old.vrfs.get(*k)) {
        target::visit_vrf(old, v, &mut s, &mut visit_old);
    }
    release_replaced_maps(current, &mut changes);
    Some(ChangeSet { changes })
}

/// Keys whose value differs between two sorted maps (added, removed, changed).
fn changed<'a, K: Ord, V: PartialEq>(
    old: &'a BTreeMap<K, V>,
    new: &'a BTreeMap<K, V>,
) -> Vec<&'a K> {
    let mut out = Vec::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((k, _)), None) => {
                out.push(*k);
                a.next();
            }
            (None, Some((k, _))) => {
                out.push(*k);
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.push(*ka);
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(*kb);
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.push(*ka);
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    out
}

/// Re-assert an entry SONiC dropped although CONFIG_DB holds it (or whose
/// effect the kernel lost): PORT fields are written again in place (the agent
/// never deletes a PORT key); a VRF takes its VNI through 0; everything else
/// is replaced by delete → confirm → create.
fn force_replace(key: &Key, cur: &Fields, want: &Fields, out: &mut Vec<Change>) {
    if key.table == Table::Port {
        out.push(Change {
            key: key.clone(),
            op: Op::Update {
                set: want.clone(),
                remove: Vec::new(),
            },
            cause: Cause::Desired,
        });
        return;
    }
    if key.table == Table::Vrf {
        out.push(vni_reset(key));
        let remove = stale(key.table, cur, want);
        out.push(Change {
            key: key.clone(),
            op: Op::Update {
                set: want.clone(),
                remove,
            },
            cause: Cause::Desired,
        });
        return;
    }
    replace(key, cur, want, out);
}

/// Set a VRF's `vni` to 0 first (vrfmgrd replaces a VNI only through 0).
fn vni_reset(key: &Key) -> Change {
    let mut reset = Fields::new();
    reset.insert("vni".into(), "0".into());
    Change {
        key: key.clone(),
        op: Op::Update {
            set: reset,
            remove: Vec::new(),
        },
        cause: Cause::VniReset,
    }
}

/// Delete the entry, then create it anew (the plan confirms the deletion
/// in between).
fn replace(key: &Key, cur: &Fields, want: &Fields, out: &mut Vec<Change>) {
    out.push(Change {
        key: key.clone(),
        op: Op::Delete { old: cur.clone() },
        cause: Cause::Replace,
    });
    out.push(Change {
        key: key.clone(),
        op: Op::Create {
            fields: want.clone(),
        },
        cause: Cause::Replace,
    });
}

/// The changes for one existing entry (none when it already matches).
pub fn diff_entry(key: &Key, cur: &Fields, want: &Fields, scope: Scope, out: &mut Vec<Change>) {
    let (set, remove) = field_diff(key.table, cur, want, scope);
    if set.is_empty() && remove.is_empty() {
        return;
    }
    if needs_replace(key.table, cur, want) {
        replace(key, cur, want, out);
        return;
    }
    if key.table == Table::Vrf {
        let vni = |f: &Fields| {
            f.get("vni")
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|v| *v != 0)
        };
        if let (Some(a), Some(b)) = (vni(cur), vni(want))
            && a != b
        {
            out.push(vni_reset(key));
        }
    }
    out.push(Change {
        key: key.clone(),
        op: Op::Update { set, remove },
        cause: Cause::Desired,
    });
}

#[cfg(test)]
mod tests {
    //! Change sets against hand-written snapshots; the expected writes follow
    //! sonic-configdb reference §2.2 (one HSET per entry, HDEL for stale
    //! fields, never DEL + HSET of one key), §3.2 (intfmgrd drops an
    //! in-place VRF change, vrfmgrd rejects a direct VNI change, vlanmgrd
    //! skips a SET of an existing member, vxlanmgrd ignores a second SET of
    //! a map) and §7.
    use super::*;
    use crate::configdb::testkit::{TENANT_104009, f, port, spec, state};
    use crate::spec::{AdminStatus, PortRole};

    fn changes(current: &DbState, spec: &SwitchSpec) -> Vec<String> {
        let owned = Ownership::new(current, spec);
        diff(current, spec, &owned)
            .changes
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn base() -> Vec<(&'static str, &'static [(&'static str, &'static str)])> {
        vec![
            (
                "PORT|Ethernet1",
                &[("mtu", "9100"), ("speed", "25000"), ("alias", "Eth1/2")],
            ),
            ("PORT|Ethernet2", &[("mtu", "9000"), ("admin_status", "up")]),
            ("VXLAN_TUNNEL|vtep", &[("src_ip", "10.0.0.11")]),
            ("VLAN|Vlan3900", &[("vlanid", "3900")]),
        ]
    }

    /// Ethernet1 a tenant port of Vrf104009 (VLAN 1001), Ethernet2 unprovisioned.
    fn tenant_spec() -> SwitchSpec {
        spec(
            vec![
                port("Ethernet1", PortRole::Tenant { vni: 104009 }, None),
                port("Ethernet2", PortRole::Unprovisioned, Some(AdminStatus::Up)),
            ],
            &[(104009, 1001)],
        )
    }

    /// The snapshot holding exactly `tenant_spec`'s entries.
    fn converged() -> DbState {
        let mut e = base();
        e.extend([
            (
                "PORT|Ethernet1",
                &[("mtu", "9000"), ("speed", "25000"), ("alias", "Eth1/2")] as &[_],
            ),
            (
                "INTERFACE|Ethernet1",
                &[
                    ("ipv6_use_link_local_only", "enable"),
                    ("vrf_name", "Vrf104009"),
                ],
            ),
            (
                "VLAN_MEMBER|Vlan3900|Ethernet2",
                &[("tagging_mode", "untagged")],
            ),
        ]);
        e.extend(TENANT_104009);
        state(&e)
    }

    #[test]
    fn a_fresh_switch_gets_one_create_per_entry_and_port_fields_only() {
        let c = changes(&state(&base()), &tenant_spec());
        assert_eq!(
            c,
            [
                // PORT: only the owned field that differs; never created
                "~ PORT|Ethernet1 set {mtu=9000}",
                "+ INTERFACE|Ethernet1 {ipv6_use_link_local_only=enable, vrf_name=Vrf104009}",
                "+ VLAN_MEMBER|Vlan3900|Ethernet2 {tagging_mode=untagged}",
                "+ VRF|Vrf104009 {fallback=false, vni=104009}",
                "+ VLAN|Vlan1001 {vlanid=1001}",
                "+ VLAN_INTERFACE|Vlan1001 {vrf_name=Vrf104009}",
                "+ SUPPRESS_VLAN_NEIGH|Vlan1001 {suppress=on}",
                "+ VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001 {vlan=Vlan1001, vni=104009}",
            ]
        );
    }

    #[test]
    fn a_converged_switch_needs_nothing() {
        assert!(changes(&converged(), &tenant_spec()).is_empty());
    }

    #[test]
    fn a_port_missing_from_port_is_never_created() {
        let s = spec(vec![port("Ethernet9", PortRole::Underlay, None)], &[]);
        assert_eq!(
            changes(&state(&base()), &s),
            ["+ INTERFACE|Ethernet9 {ipv6_use_link_local_only=enable}"]
        );
    }

    /// Issue 20 item 5: inside an owned entry the agent owns only its
    /// table's fields; what a flavour's daemons or CLI added stays (Dell's
    /// VLAN fields, from mini-lab-leaf01-dell-4.5.1 config_db.json Vlan3900).
    #[test]
    fn fields_the_agent_does_not_own_are_left_alone() {
        let mut cur = converged();
        let dell = [
            ("admin_status", "up"),
            ("autostate", "enable"),
            ("dhcp_relay_link_select", "enable"),
            ("dhcp_relay_src_intf", "Loopback0"),
            ("dhcp_servers@", "10.0.0.21"),
        ];
        for (k, v) in dell {
            cur.get_mut(&Key::vlan(1001))
                .unwrap()
                .insert(k.into(), v.into());
        }
        cur.get_mut(&Key::vrf("Vrf104009"))
            .unwrap()
            .insert("NULL".into(), "NULL".into());
        assert!(changes(&cur, &tenant_spec()).is_empty());
        // A wrong owned field is set; the others are not touched.
        cur.get_mut(&Key::suppress_vlan_neigh(1001))
            .unwrap()
            .insert("suppress".into(), "off".into());
        cur.get_mut(&Key::suppress_vlan_neigh(1001))
            .unwrap()
            .insert("mode".into(), "x".into());
        let c = changes(&cur, &tenant_spec());
        assert_eq!(c, ["~ SUPPRESS_VLAN_NEIGH|Vlan1001 set {suppress=on}"]);
        // An owned field that must go (a VRF binding of a port that becomes
        // an uplink) goes by replacing the entry: the extras go with it.
        let mut cur = converged();
        cur.get_mut(&Key::interface("Ethernet1"))
            .unwrap()
            .insert("nat_zone".into(), "1".into());
        let s = spec(
            vec![
                port("Ethernet1", PortRole::Underlay, None),
                port("Ethernet2", PortRole::Unprovisioned, Some(AdminStatus::Up)),
            ],
            &[],
        );
        let c = changes(&cur, &s);
        assert!(
            c.contains(
                &"+ INTERFACE|Ethernet1 {ipv6_use_link_local_only=enable}  [replace]".to_owned()
            ),
            "{c:#?}"
        );
    }

    #[test]
    fn owned_fields_per_table() {
        assert!(Table::Vlan.owns_field("vlanid"));
        assert!(!Table::Vlan.owns_field("admin_status"));
        assert!(!Table::Vlan.owns_field("NULL"));
        assert!(Table::Interface.owns_field("vrf_name"));
        assert!(Table::VxlanTunnel.owned_fields().is_empty());
        // Every field the target writes is owned in its table.
        let t = crate::configdb::target::target(&tenant_spec());
        for (k, e) in &t.entries {
            for f in e.fields.keys() {
                assert!(k.table.owns_field(f), "{k} {f}");
            }
        }
    }

    #[test]
    fn a_vrf_binding_is_replaced_never_edited() {
        let mut cur = converged();
        cur.insert(
            Key::interface("Ethernet1"),
            f(&[
                ("ipv6_use_link_local_only", "enable"),
                ("vrf_name", "Vrf104010"),
            ]),
        );
        cur.insert(
            Key::vrf("Vrf104010"),
            f(&[("vni", "104010"), ("fallback", "false")]),
        );
        let c = changes(&cur, &tenant_spec());
        assert!(
            c.contains(&"- INTERFACE|Ethernet1 (was {ipv6_use_link_local_only=enable, vrf_name=Vrf104010})  [replace]".to_owned()),
            "{c:#?}"
        );
        assert!(
            c.contains(&"+ INTERFACE|Ethernet1 {ipv6_use_link_local_only=enable, vrf_name=Vrf104009}  [replace]".to_owned()),
            "{c:#?}"
        );
        // The VRF no longer wanted goes.
        assert!(
            c.contains(&"- VRF|Vrf104010 (was {fallback=false, vni=104010})".to_owned()),
            "{c:#?}"
        );
        assert!(!c.iter().any(|l| l.starts_with("~ INTERFACE")), "{c:#?}");
    }

    #[test]
    fn a_changed_member_or_map_is_replaced() {
        let mut cur = converged();
        cur.insert(
            Key::parse("VLAN_MEMBER|Vlan3900|Ethernet2").unwrap(),
            f(&[("tagging_mode", "tagged")]),
        );
        cur.insert(
            Key::parse("VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001").unwrap(),
            f(&[("vlan", "Vlan1001"), ("vni", "1")]),
        );
        let want = tenant_spec();
        let owned = Ownership::new(&cur, &want);
        let set = diff(&cur, &want, &owned);
        for key in [
            "VLAN_MEMBER|Vlan3900|Ethernet2",
            "VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001",
        ] {
            let ops: Vec<(&str, Cause)> = set
                .changes
                .iter()
                .filter(|c| c.key.redis_key() == key)
                .map(|c| {
                    let op = match c.op {
                        Op::Create { .. } => "create",
                        Op::Update { .. } => "update",
                        Op::Delete { .. } => "delete",
                    };
                    (op, c.cause)
                })
                .collect();
            assert_eq!(
                ops,
                [("delete", Cause::Replace), ("create", Cause::Replace)],
                "{key}"
            );
        }
    }

    /// A map re-asserted (the kernel lost its VXLAN device's VNI) while
    /// Vrf104009 holds the VNI: the VRF lets go of the VNI before the map
    /// is deleted and takes it again after the map is back (orchagent
    /// cannot remove a map whose VNI a VRF holds; found on real SONiC).
    #[test]
    fn a_replaced_map_is_released_by_the_vrf_holding_its_vni_first() {
        let cur = converged();
        let want = tenant_spec();
        let owned = Ownership::new(&cur, &want);
        let map = Key::parse("VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001").unwrap();
        let set = diff_forced(&cur, &want, &owned, std::slice::from_ref(&map));
        let shown: Vec<String> = set.changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "- VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001 (was {vlan=Vlan1001, vni=104009})  [replace]",
                "+ VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001 {vlan=Vlan1001, vni=104009}  [replace]",
                "~ VRF|Vrf104009 set {vni=0}  [vni via 0]",
                "~ VRF|Vrf104009 set {vni=104009}",
            ]
        );
        let plan = super::super::plan::plan(set);
        let stages: Vec<(super::super::plan::Stage, Vec<String>)> = plan
            .phases
            .iter()
            .map(|p| (p.stage, p.changes.iter().map(ToString::to_string).collect()))
            .collect();
        use super::super::plan::Stage;
        assert_eq!(
            stages.iter().map(|s| s.0).collect::<Vec<_>>(),
            [Stage::Detach, Stage::Unmap, Stage::Remap, Stage::Vrfs],
            "{plan}"
        );
        assert!(
            stages[0].1[0].starts_with("~ VRF|Vrf104009 set {vni=0}"),
            "{plan}"
        );
        assert!(stages[1].1[0].starts_with("- VXLAN_TUNNEL_MAP"), "{plan}");
        assert!(stages[2].1[0].starts_with("+ VXLAN_TUNNEL_MAP"), "{plan}");
        assert!(
            stages[3].1[0].starts_with("~ VRF|Vrf104009 set {vni=104009}"),
            "{plan}"
        );
        // The VNI reset is confirmed (vrfmgrd's APPL_DB copy) before the
        // map's deletion is written.
        let barrier: Vec<String> = plan.phases[0]
            .barrier
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            barrier
                .iter()
                .any(|b| b.contains("VRF_TABLE") && b.contains("Vrf104009")),
            "{barrier:?}"
        );

        // A VRF already taking its VNI through 0, or deleted, is left as is.
        let mut vrf_too = vec![map.clone(), Key::vrf("Vrf104009")];
        vrf_too.sort();
        let set = diff_forced(&cur, &want, &owned, &vrf_too);
        let resets = set
            .changes
            .iter()
            .filter(|c| c.cause == Cause::VniReset)
            .count();
        assert_eq!(resets, 1, "{:?}", set.changes);
    }

    #[test]
    fn a_vni_change_goes_through_zero() {
        let mut cur = converged();
        cur.insert(
            Key::vrf("Vrf104009"),
            f(&[("vni", "555"), ("fallback", "false")]),
        );
        let c = changes(&cur, &tenant_spec());
        assert_eq!(
            c,
            [
                "~ VRF|Vrf104009 set {vni=0}  [vni via 0]",
                "~ VRF|Vrf104009 set {vni=104009}"
            ]
        );
    }

    #[test]
    fn unwanted_owned_entries_go_and_foreign_ones_stay() {
        let mut e = converged();
        e.insert(
            Key::parse("VLAN_MEMBER|Vlan3900|Ethernet50").unwrap(),
            f(&[("tagging_mode", "untagged")]),
        );
        e.insert(Key::vrf("VrfMpls"), f(&[("vni", "5000")]));
        e.insert(Key::vlan(1002), f(&[("vlanid", "1002")]));
        // Ethernet1 becomes unprovisioned: the VRF and its objects go.
        let s = spec(
            vec![
                port("Ethernet1", PortRole::Unprovisioned, None),
                port("Ethernet2", PortRole::Unprovisioned, Some(AdminStatus::Up)),
            ],
            &[],
        );
        let mut c = changes(&e, &s);
        c.sort();
        assert_eq!(
            c,
            [
                "+ VLAN_MEMBER|Vlan3900|Ethernet1 {tagging_mode=untagged}",
                "- INTERFACE|Ethernet1 (was {ipv6_use_link_local_only=enable, vrf_name=Vrf104009})",
                "- SUPPRESS_VLAN_NEIGH|Vlan1001 (was {suppress=on})",
                "- VLAN_INTERFACE|Vlan1001 (was {vrf_name=Vrf104009})",
                "- VLAN|Vlan1001 (was {vlanid=1001})",
                "- VRF|Vrf104009 (was {fallback=false, vni=104009})",
                "- VXLAN_TUNNEL_MAP|vtep|map_104009_Vlan1001 (was {vlan=Vlan1001, vni=104009})",
            ]
        );
    }

    #[test]
    fn an_update_costs_one_command_per_kind() {
        let c = Change {
            key: Key::vlan(1001),
            op: Op::Update {
                set: f(&[("vlanid", "1001")]),
                remove: vec!["mtu".into()],
            },
            cause: Cause::Desired,
        };
        assert_eq!(c.commands(), 2, "HSET + HDEL");
    }

    #[test]
    fn the_incremental_diff_matches_the_full_one() {
        // A port moves from unprovisioned to the tenant VRF.
        let old = spec(
            vec![
                port("Ethernet1", PortRole::Tenant { vni: 104009 }, None),
                port("Ethernet2", PortRole::Unprovisioned, Some(AdminStatus::Up)),
            ],
            &[(104009, 1001)],
        );
        let new = spec(
            vec![
                port("Ethernet1", PortRole::Tenant { vni: 104009 }, None),
                port(
                    "Ethernet2",
                    PortRole::Tenant { vni: 104009 },
                    Some(AdminStatus::Up),
                ),
            ],
            &[(104009, 1001)],
        );
        let cur = converged();
        let mut full: Vec<String> = changes(&cur, &new);
        let mut delta: Vec<String> = diff_delta(&old, &new, &cur)
            .unwrap()
            .changes
            .iter()
            .map(ToString::to_string)
            .collect();
        full.sort();
        delta.sort();
        assert_eq!(delta, full);
        assert_eq!(
            full,
            [
                "+ INTERFACE|Ethernet2 {ipv6_use_link_local_only=enable, vrf_name=Vrf104009}",
                "- VLAN_MEMBER|Vlan3900|Ethernet2 (was {tagging_mode=untagged})",
            ]
        );
        // A switch-wide change falls back to the full diff.
        let mut other = new.clone();
        other.pxe_vlan = 3901;
        assert!(diff_delta(&old, &other, &cur).is_none());
    }
}
