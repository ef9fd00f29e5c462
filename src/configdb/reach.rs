//! The part of a switch a change can move (pure): the keys a drift event
//! named and what depends on them.
//!
//! A plan is a union of per-entry decisions (create, update, replace,
//! delete, wait) ordered into phases. An entry's decision reads its own
//! value, its markers in STATE_DB / APPL_DB, its router interface, its
//! target, and its ownership. Ownership ties entries together only through
//! the port, the tenant VLAN id and the tenant VRF they name
//! ([`super::owned`]): a VLAN is the agent's through its VXLAN map, its
//! `VLAN_INTERFACE` (bound to a VRF that exists) or its neighbour
//! suppression; an `INTERFACE` entry through the VRF it is bound to. So when
//! CONFIG_DB held a spec's target, confirmed, and since then only some keys
//! changed, every entry outside the ports, VLANs and VNIs those keys name
//! (closed over the spec's VRFs and the bindings in CONFIG_DB) decides
//! exactly what it decided then: nothing. [`Reach::of`] finds that part, or
//! says that a change cannot be narrowed (a VTEP, a foreign or static VRF, a
//! map not named the agent's way, a switch-wide setting).

use std::collections::BTreeSet;

use super::confirms::{self, Db, Separators};
use super::owned::map_target;
use super::schema::{DbState, Fields, Key, SEP, Table, vid_of_vlan_name, vlan_name};
use crate::spec::{PortRole, SwitchSpec, vni_of_vrf_name, vrf_name};

/// One key whose change can move a plan: a CONFIG_DB entry, a STATE_DB or
/// APPL_DB marker (its redis key), or an interface's router interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Touched {
    Config(Key),
    Marker(Db, String),
    Rif(String),
}

/// Ports, tenant VLAN ids and VNIs whose entries a plan must look at again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub ports: BTreeSet<String>,
    pub vlans: BTreeSet<u16>,
    pub vnis: BTreeSet<u32>,
    /// The PXE VLAN: its members are the ports' own entries.
    pxe: u16,
}

impl Reach {
    /// What `touched` (since CONFIG_DB held `old`'s target, confirmed), the
    /// entries to write again (`reassert`) and the difference from `old` to
    /// `new` can move; `None` when it cannot be narrowed.
    pub fn of(
        touched: &[Touched],
        reassert: &[Key],
        old: &SwitchSpec,
        new: &SwitchSpec,
        config: &DbState,
        seps: Separators,
    ) -> Option<Reach> {
        if old.pxe_vlan != new.pxe_vlan
            || old.vtep != new.vtep
            || old.vlan_range != new.vlan_range
            || old.static_vrfs != new.static_vrfs
        {
            return None;
        }
        let mut s = Reach {
            pxe: new.pxe_vlan,
            ..Reach::default()
        };
        for t in touched {
            match t {
                Touched::Config(k) => s.add_key(k.table, &k.name, new)?,
                Touched::Marker(db, key) => s.add_marker(*db, key, seps, new)?,
                Touched::Rif(ifname) => s.add_part(ifname),
            }
        }
        for k in reassert {
            s.add_key(k.table, &k.name, new)?;
        }
        // The very spec (the agent kept it): no port or VRF differs.
        if std::ptr::eq(old, new) {
            s.close(&[new], config);
            return Some(s);
        }
        changed_keys(&old.ports, &new.ports, |p| {
            s.ports.insert(p.clone());
        });
        changed_keys(&old.vrfs, &new.vrfs, |v| {
            s.vnis.insert(*v);
        });
        s.close(&[old, new], config);
        Some(s)
    }

    /// Nothing to look at again.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.vlans.is_empty() && self.vnis.is_empty()
    }

    /// A CONFIG_DB key: the port, VLAN and VNI its name gives.
    fn add_key(&mut self, table: Table, name: &str, spec: &SwitchSpec) -> Option<()> {
        let first = name.split(SEP).next().unwrap_or(name);
        match table {
            Table::Port | Table::Interface => {
                self.ports.insert(first.to_owned());
            }
            Table::VlanMember => {
                let (vlan, port) = name.split_once(SEP)?;
                let vid = vid_of_vlan_name(vlan)?;
                if vid != self.pxe {
                    self.vlans.insert(vid);
                }
                self.ports.insert(port.to_owned());
            }
            Table::Vlan | Table::VlanInterface | Table::SuppressVlanNeigh => {
                self.vlans.insert(vid_of_vlan_name(first)?);
            }
            Table::Vrf => {
                // A static or foreign VRF decides which VNIs are foreign.
                let vni = vni_of_vrf_name(name).filter(|_| !spec.static_vrfs.contains(name))?;
                self.vnis.insert(vni);
            }
            Table::VxlanTunnelMap => {
                // Only a map named the agent's way says which VNI and VLAN
                // it held before it changed.
                let map = name.rsplit(SEP).next()?;
                let (vni, vlan) = map.strip_prefix("map_")?.split_once('_')?;
                let vni = crate::names::parse_canonical(vni)?;
                self.vnis.insert(vni);
                self.vlans.insert(vid_of_vlan_name(vlan)?);
            }
            Table::VxlanTunnel | Table::VxlanEvpnNvo => return None,
        }
        Some(())
    }

    /// A STATE_DB / APPL_DB marker: the CONFIG_DB entry it confirms.
    /// Bridge ports and the port name map decide barriers, never a plan.
    fn add_marker(&mut self, db: Db, key: &str, seps: Separators, spec: &SwitchSpec) -> Option<()> {
        if matches!(db, Db::Counters | Db::Asic) {
            return Some(());
        }
        let sep = seps.of(db);
        let (table, rest) = key.split_once(sep)?;
        let name = rest.replace(sep, &SEP.to_string());
        let mut found = false;
        for e in confirms::CATALOGUE {
            let marks = |m: &confirms::Marker| m.db == db && m.table == table;
            if (e.deletion_markers().any(marks)
                || e.mirror.as_ref().is_some_and(|m| marks(&m.marker)))
                && may_name(e.table, &name)
            {
                self.add_key(e.table, &name, spec)?;
                found = true;
            }
        }
        found.then_some(())
    }

    /// An interface name (a router interface's): a port or a VLAN.
    fn add_part(&mut self, ifname: &str) {
        match vid_of_vlan_name(ifname) {
            Some(v) => {
                self.vlans.insert(v);
            }
            None => {
                self.ports.insert(ifname.to_owned());
            }
        }
    }

    /// Close over what ties entries together: a tenant VRF's VLAN and
    /// ports in either spec, and the `INTERFACE` / `VLAN_INTERFACE` entries
    /// bound to a VRF in CONFIG_DB.
    fn close(&mut self, specs: &[&SwitchSpec], config: &DbState) {
        // The VNIs the bindings in CONFIG_DB were last looked up for (the
        // lookup walks two tables: only again when more VNIs came in).
        let mut bound_for = 0;
        loop {
            let before = (self.ports.len(), self.vlans.len(), self.vnis.len());
            for spec in specs {
                for p in &self.ports {
                    if let Some(PortRole::Tenant { vni }) = spec.ports.get(p).map(|p| &p.role) {
                        self.vnis.insert(*vni);
                    }
                }
                for vrf in spec.vrfs.values() {
                    if self.vnis.contains(&vrf.vni) || self.vlans.contains(&vrf.vlan) {
                        self.vnis.insert(vrf.vni);
                        self.vlans.insert(vrf.vlan);
                        self.ports.extend(vrf.ports.iter().cloned());
                    }
                }
            }
            if self.vnis.len() != bound_for {
                bound_for = self.vnis.len();
                let bound = |f: &Fields| {
                    f.get("vrf_name")
                        .and_then(|v| vni_of_vrf_name(v))
                        .is_some_and(|n| self.vnis.contains(&n))
                };
                let ports: Vec<String> = config
                    .table(Table::Interface)
                    .filter(|(n, f)| !n.contains(SEP) && bound(f))
                    .map(|(n, _)| n.to_owned())
                    .collect();
                let vlans: Vec<u16> = config
                    .table(Table::VlanInterface)
                    .filter(|(_, f)| bound(f))
                    .filter_map(|(n, _)| vid_of_vlan_name(n))
                    .collect();
                self.ports.extend(ports);
                self.vlans.extend(vlans);
            }
            if before == (self.ports.len(), self.vlans.len(), self.vnis.len()) {
                return;
            }
        }
    }

    /// Whether the entry `table|name` (holding `fields`) lies in the scope.
    pub fn covers(&self, table: Table, name: &str, fields: &Fields) -> bool {
        let first = name.split(SEP).next().unwrap_or(name);
        match table {
            Table::Port | Table::Interface => self.ports.contains(first),
            Table::VlanMember => name.split_once(SEP).is_some_and(|(vlan, port)| {
                self.ports.contains(port)
                    || vid_of_vlan_name(vlan)
                        .is_some_and(|v| v != self.pxe && self.vlans.contains(&v))
            }),
            Table::Vlan | Table::VlanInterface | Table::SuppressVlanNeigh => {
                vid_of_vlan_name(first).is_some_and(|v| self.vlans.contains(&v))
            }
            Table::Vrf => vni_of_vrf_name(name).is_some_and(|n| self.vnis.contains(&n)),
            Table::VxlanTunnelMap => {
                let (vni, vid) = map_target(name, fields);
                vni.is_some_and(|n| self.vnis.contains(&n))
                    || vid.is_some_and(|v| self.vlans.contains(&v))
            }
            Table::VxlanTunnel | Table::VxlanEvpnNvo => false,
        }
    }

    /// The names of `table` the scope covers that the agent can own, when
    /// they follow from the scope alone (a port's `INTERFACE` entry, a
    /// VLAN's `VLAN` entry, a VRF); `None` for the tables whose covered
    /// names must be looked for (`VLAN_MEMBER`, `VXLAN_TUNNEL_MAP`). The
    /// agent owns no name with a separator in the tables named here (no IP
    /// sub-key) and only the canonical `Vlan<id>` and `Vrf<VNI>`, so these
    /// are all the names a plan needs to look at there.
    pub fn names(&self, table: Table) -> Option<Vec<String>> {
        if !Reach::gives_names(table) {
            return None;
        }
        match table {
            Table::Port | Table::Interface => Some(self.ports.iter().cloned().collect()),
            Table::Vlan | Table::VlanInterface | Table::SuppressVlanNeigh => {
                Some(self.vlans.iter().map(|v| vlan_name(*v)).collect())
            }
            Table::Vrf => Some(self.vnis.iter().map(|v| vrf_name(*v)).collect()),
            Table::VxlanTunnel
            | Table::VxlanEvpnNvo
            | Table::VlanMember
            | Table::VxlanTunnelMap => Some(Vec::new()),
        }
    }

    /// Whether [`Reach::names`] gives the names of `table` (whatever the
    /// scope): all but `VLAN_MEMBER` and `VXLAN_TUNNEL_MAP`.
    pub fn gives_names(table: Table) -> bool {
        !matches!(table, Table::VlanMember | Table::VxlanTunnelMap)
    }

    /// The interfaces whose router interface a plan within the scope asks
    /// about: the ports' and the VLANs' (the names of `INTERFACE` and
    /// `VLAN_INTERFACE` entries, [`Reach::names`]).
    pub fn interfaces(&self) -> Vec<String> {
        let mut names = self.names(Table::Interface).unwrap_or_default();
        names.extend(self.names(Table::VlanInterface).unwrap_or_default());
        names
    }

    /// The entries of `table` in `config` the scope covers, among them
    /// every one the agent can own ([`Reach::names`]): looked up by name
    /// where the scope gives the names, else found by a walk of the table.
    pub fn entries<'c>(&self, config: &'c DbState, table: Table) -> Vec<(&'c str, &'c Fields)> {
        match self.names(table) {
            Some(names) => names
                .iter()
                .filter_map(|n| config.entry_in(table, n))
                .collect(),
            None => config
                .table(table)
                .filter(|(n, f)| self.covers(table, n, f))
                .collect(),
        }
    }

    /// [`Reach::covers`] for a key whose fields are not at hand (a marker's
    /// claimed entry, which is absent from CONFIG_DB).
    pub fn covers_key(&self, key: &Key) -> bool {
        self.covers(key.table, &key.name, &Fields::new())
    }
}

/// The entries a scope covers in one CONFIG_DB, each table looked up (or
/// walked) once for a plan ([`Reach::entries`]): the assessment and the
/// diff both go through them.
#[derive(Debug, Clone)]
pub struct Covered<'r, 'c> {
    pub reach: &'r Reach,
    tables: Vec<Vec<(&'c str, &'c Fields)>>,
}

impl<'r, 'c> Covered<'r, 'c> {
    pub fn new(reach: &'r Reach, config: &'c DbState) -> Covered<'r, 'c> {
        Covered {
            reach,
            tables: Table::ALL
                .iter()
                .map(|t| reach.entries(config, *t))
                .collect(),
        }
    }

    /// [`Reach::entries`] of `table`.
    pub fn entries(&self, table: Table) -> &[(&'c str, &'c Fields)] {
        self.tables
            .get(table.index())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Whether `name` can be an entry of `table`: one marker table confirms
/// entries of several (intfmgrd's `INTERFACE_TABLE` those of `INTERFACE`
/// and `VLAN_INTERFACE`), and the name says which — a VLAN's tables hold
/// only VLAN names.
fn may_name(table: Table, name: &str) -> bool {
    match table {
        Table::Vlan | Table::VlanInterface | Table::SuppressVlanNeigh => {
            vid_of_vlan_name(name.split(SEP).next().unwrap_or(name)).is_some()
        }
        _ => true,
    }
}

/// Call `f` with every key whose value differs between two sorted maps.
fn changed_keys<K: Ord, V: PartialEq>(
    old: &std::collections::BTreeMap<K, V>,
    new: &std::collections::BTreeMap<K, V>,
    mut f: impl FnMut(&K),
) {
    for (k, v) in old {
        if new.get(k) != Some(v) {
            f(k);
        }
    }
    for k in new.keys() {
        if !old.contains_key(k) {
            f(k);
        }
    }
}
