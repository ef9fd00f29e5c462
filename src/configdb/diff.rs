//! The minimal change set between the owned part of CONFIG_DB and a target (pure).
//!
//! A change is one of: create a key (one `HSET` with every field), update it
//! (`HSET` of changed fields plus `HDEL` of stale ones, never a `DEL`), or
//! delete it (`DEL`). Entries SONiC treats as immutable or whose change a
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

use super::owned::Ownership;
use super::schema::{DbState, Fields, Key, Table};
use super::target::{Scope, Target};

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

/// Field-level difference of an existing entry.
fn field_diff(cur: &Fields, want: &Fields, scope: Scope) -> (Fields, Vec<String>) {
    let set: Fields = want
        .iter()
        .filter(|(k, v)| cur.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = match scope {
        Scope::Whole => cur
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect(),
        Scope::Listed => Vec::new(),
    };
    (set, remove)
}

/// Compute the change set. `owned` must be built from the same `current`.
pub fn diff(current: &DbState, target: &Target, owned: &Ownership<'_>) -> ChangeSet {
    let mut changes = Vec::new();
    for (key, want) in &target.entries {
        let Some(cur) = current.get(key) else {
            if key.table != Table::Port {
                changes.push(Change {
                    key: key.clone(),
                    op: Op::Create {
                        fields: want.fields.clone(),
                    },
                    cause: Cause::Desired,
                });
            }
            continue;
        };
        if key.table != Table::Port && !owned.owns(key, cur) {
            // Spec validation refuses desired states that collide with foreign
            // entries; never overwrite one here.
            continue;
        }
        diff_entry(key, cur, &want.fields, want.scope, &mut changes);
    }
    for table in Table::ALL {
        if table == Table::Port {
            continue;
        }
        for (key, cur) in current.table(table) {
            if !target.entries.contains_key(key) && owned.owns(key, cur) {
                changes.push(Change {
                    key: key.clone(),
                    op: Op::Delete { old: cur.clone() },
                    cause: Cause::Desired,
                });
            }
        }
    }
    ChangeSet { changes }
}

/// The changes for one existing entry (none when it already matches).
pub fn diff_entry(key: &Key, cur: &Fields, want: &Fields, scope: Scope, out: &mut Vec<Change>) {
    let (set, remove) = field_diff(cur, want, scope);
    if set.is_empty() && remove.is_empty() {
        return;
    }
    if needs_replace(key.table, cur, want) {
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
            let mut reset = Fields::new();
            reset.insert("vni".into(), "0".into());
            out.push(Change {
                key: key.clone(),
                op: Op::Update {
                    set: reset,
                    remove: Vec::new(),
                },
                cause: Cause::VniReset,
            });
        }
    }
    out.push(Change {
        key: key.clone(),
        op: Op::Update { set, remove },
        cause: Cause::Desired,
    });
}
