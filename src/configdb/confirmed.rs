//! What SONiC has confirmed, and what is still pending (pure).
//!
//! CONFIG_DB holds what was asked for; STATE_DB, APPL_DB, COUNTERS_DB and
//! ASIC_DB hold what SONiC's daemons did about it (sonic-configdb reference
//! §4). [`Confirmed`] is the part of those databases the agent watches, and
//! [`assess`] compares it with the owned part of CONFIG_DB:
//!
//! - an owned entry written but not confirmed yet (a `VRF` without
//!   `STATE_DB VRF_TABLE`, a `VLAN_MEMBER` without its STATE entry, an
//!   `INTERFACE` whose STATE `vrf` is not the configured one, …), or a
//!   deletion not confirmed yet (a STATE entry in the agent's domain without
//!   its CONFIG_DB entry — orchagent's `VRF_OBJECT_TABLE` entry of a removed
//!   VRF too —, a router interface still in `COUNTERS_RIF_NAME_MAP`)
//!   is **pending**: the applier waits for it before it writes anything, so no
//!   write ever builds on a state SONiC has not reached;
//! - an entry SONiC has provably dropped — an `INTERFACE` or `VLAN_INTERFACE`
//!   whose `vrf_name` was changed in place (intfmgrd skips that), a VRF whose
//!   VNI was changed directly (vrfmgrd rejects that) — can never be confirmed
//!   and is **replaced** the SONiC way instead (delete → confirm → create; VNI
//!   via 0).
//!
//! Invariants: nothing here reads a clock or does I/O; a [`Condition`] holds
//! against [`Confirmed`] exactly when the applier's barrier would accept it.

use rustc_hash::{FxHashMap, FxHashSet};

pub use super::confirms::Separators;
use super::confirms::{
    self, BRIDGE_PORT_FIELD, CATALOGUE, Check, Condition, Copied, Db, Domain, PORT_NAME_MAP,
    RIF_NAME_MAP, Special,
};
use super::owned::Ownership;
use super::reach::{Covered, Reach};
use super::schema::{DbState, Fields, Key, SEP};
use crate::spec::SwitchSpec;

/// The watched part of STATE_DB, APPL_DB, COUNTERS_DB and ASIC_DB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmed {
    seps: Separators,
    /// Offline (a `config_db.json` file): every condition holds.
    assumed: bool,
    /// STATE_DB entries of the watched marker tables ([`confirms::watched`]), by redis key (`None`: the key
    /// exists, its fields were not read since it last changed).
    state: FxHashMap<String, Option<Fields>>,
    /// APPL_DB entries of the watched marker tables, by redis key (as `state`).
    appl: FxHashMap<String, Option<Fields>>,
    /// Interfaces with a router interface ([`RIF_NAME_MAP`] fields).
    rifs: FxHashSet<String>,
    /// `rifs` changed since it was read.
    rifs_stale: bool,
    /// While `rifs` is stale: single fields read since it went stale
    /// (interface → has a router interface). A barrier waits for one or two
    /// interfaces; reading those beats reading a hash of every router
    /// interface of the switch.
    rif_fields: FxHashMap<String, bool>,
    /// Port name → port OID ([`PORT_NAME_MAP`]).
    port_oids: FxHashMap<String, String>,
    /// `port_oids` changed since it was read.
    port_oids_stale: bool,
    /// ASIC bridge port key → the port OID it bridges (`None`: not read).
    bridge_ports: FxHashMap<String, Option<String>>,
    /// How many entries of `state` and `appl` are unread (`None`), and of
    /// `bridge_ports`: a reconcile asks for what is unread every time, and
    /// most of the time nothing is.
    unread_markers: usize,
    unread_bridge_ports: usize,
    /// Port OID → number of bridge ports known to point at it.
    bridged: FxHashMap<String, u32>,
    /// ASIC_DB's bridge ports are still being listed (the feed walks
    /// ASIC_DB in steps after its start-up read): a bridge port not known
    /// yet may exist.
    bridge_ports_unlisted: bool,
}

/// What is known of one watched entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    Absent,
    /// It exists; its fields were not read since it last changed.
    Unread,
    Known(&'a Fields),
}

/// A watched database entry, as the feed reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    State,
    Appl,
    RifNameMap,
    /// One field of [`RIF_NAME_MAP`], read alone (the key of [`rif_field_key`]).
    RifField,
    PortNameMap,
    BridgePort,
}

/// Between the hash and the field in a [`rif_field_key`].
pub const RIF_FIELD_SEP: char = '\u{1f}';

/// The feed's key for one field of [`RIF_NAME_MAP`] (read with `HGET`).
pub fn rif_field_key(ifname: &str) -> String {
    format!("{RIF_NAME_MAP}{RIF_FIELD_SEP}{ifname}")
}

impl Confirmed {
    /// An empty confirmed state for databases with these separators.
    pub fn new(seps: Separators) -> Confirmed {
        Confirmed {
            seps,
            ..Confirmed::default()
        }
    }

    /// For offline planning against a `config_db.json` file: SONiC is assumed
    /// to have confirmed everything CONFIG_DB says.
    pub fn assumed() -> Confirmed {
        Confirmed {
            assumed: true,
            ..Confirmed::default()
        }
    }

    pub fn is_assumed(&self) -> bool {
        self.assumed
    }

    pub fn separators(&self) -> Separators {
        self.seps
    }

    /// Which watched kind a redis key of `db` is, if any.
    pub fn classify(&self, db: Db, key: &str) -> Option<Watched> {
        let table_of = |sep: char| key.split_once(sep).map(|(t, _)| t);
        match db {
            Db::State => table_of(self.seps.state)
                .filter(|t| confirms::watches(Db::State, t))
                .map(|_| Watched::State),
            Db::Appl => table_of(self.seps.appl)
                .filter(|t| confirms::watches(Db::Appl, t))
                .map(|_| Watched::Appl),
            Db::Counters => match key {
                RIF_NAME_MAP => Some(Watched::RifNameMap),
                PORT_NAME_MAP => Some(Watched::PortNameMap),
                _ => key
                    .strip_prefix(RIF_NAME_MAP)
                    .and_then(|r| r.strip_prefix(RIF_FIELD_SEP))
                    .map(|_| Watched::RifField),
            },
            Db::Asic => key
                .starts_with(&self.seps.bridge_port_prefix())
                .then_some(Watched::BridgePort),
        }
    }

    /// Record the current value of a watched key (`None`: it does not exist);
    /// returns whether anything changed. Keys that are not watched are ignored.
    pub fn set(&mut self, db: Db, key: &str, value: Option<Fields>) -> bool {
        match self.classify(db, key) {
            Some(Watched::State) => set_entry(
                &mut self.state,
                &mut self.unread_markers,
                key,
                value.map(Some),
            ),
            Some(Watched::Appl) => set_entry(
                &mut self.appl,
                &mut self.unread_markers,
                key,
                value.map(Some),
            ),
            Some(Watched::RifNameMap) => self.set_rifs(value).0,
            Some(Watched::RifField) => {
                let field = key
                    .split_once(RIF_FIELD_SEP)
                    .map_or("", |(_, f)| f)
                    .to_owned();
                self.set_rif_field(field, value.is_some())
            }
            Some(Watched::PortNameMap) => {
                let oids: FxHashMap<String, String> =
                    value.map(|f| f.into_iter().collect()).unwrap_or_default();
                let changed = oids != self.port_oids || self.port_oids_stale;
                self.port_oids = oids;
                self.port_oids_stale = false;
                changed
            }
            Some(Watched::BridgePort) => {
                let oid = value.map(|f| f.get(BRIDGE_PORT_FIELD).cloned());
                self.set_bridge_port(key, oid)
            }
            None => false,
        }
    }

    /// A watched key was written (a notification said so) but its value was
    /// not read: it exists, with fields unknown until read. Returns whether
    /// anything changed.
    pub fn touch(&mut self, db: Db, key: &str) -> bool {
        match self.classify(db, key) {
            Some(Watched::State) => {
                set_entry(&mut self.state, &mut self.unread_markers, key, Some(None))
            }
            Some(Watched::Appl) => {
                set_entry(&mut self.appl, &mut self.unread_markers, key, Some(None))
            }
            Some(Watched::RifNameMap) => {
                let had_fields = !self.rif_fields.is_empty();
                self.rif_fields.clear();
                !std::mem::replace(&mut self.rifs_stale, true) || had_fields
            }
            // Never notified: the feed's own key for a field read.
            Some(Watched::RifField) => false,
            Some(Watched::PortNameMap) => !std::mem::replace(&mut self.port_oids_stale, true),
            Some(Watched::BridgePort) => self.set_bridge_port(key, Some(None)),
            None => false,
        }
    }

    /// Whether every ASIC bridge port is known (listed, then followed by
    /// notifications); returns whether that changed.
    pub fn set_bridge_ports_listed(&mut self, listed: bool) -> bool {
        std::mem::replace(&mut self.bridge_ports_unlisted, !listed) == listed
    }

    /// Whether every ASIC bridge port is known.
    pub fn bridge_ports_listed(&self) -> bool {
        !self.bridge_ports_unlisted
    }

    /// `oid`: `None` gone, `Some(None)` present unread, `Some(Some(x))` known.
    fn set_bridge_port(&mut self, key: &str, oid: Option<Option<String>>) -> bool {
        if self.bridge_ports.get(key) == oid.as_ref() && !matches!(oid, Some(None)) {
            return false;
        }
        count_unread(
            &mut self.unread_bridge_ports,
            matches!(self.bridge_ports.get(key), Some(None)),
            matches!(oid, Some(None)),
        );
        let old = match oid {
            Some(oid) => {
                if let Some(o) = &oid {
                    *self.bridged.entry(o.clone()).or_default() += 1;
                }
                self.bridge_ports.insert(key.to_owned(), oid)
            }
            None => self.bridge_ports.remove(key),
        };
        if let Some(Some(old)) = old
            && let Some(n) = self.bridged.get_mut(&old)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.bridged.remove(&old);
            }
        }
        true
    }

    /// The watched keys whose current value is not known (to be read).
    pub fn unread(&self) -> Vec<(Db, String)> {
        let mut out: Vec<(Db, String)> = Vec::new();
        if self.unread_markers > 0 {
            out.extend(
                self.state
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| (Db::State, k.clone())),
            );
            out.extend(
                self.appl
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| (Db::Appl, k.clone())),
            );
        }
        if self.rifs_stale {
            out.push((Db::Counters, RIF_NAME_MAP.to_owned()));
        }
        if self.port_oids_stale {
            out.push((Db::Counters, PORT_NAME_MAP.to_owned()));
        }
        if self.unread_bridge_ports > 0 {
            out.extend(
                self.bridge_ports
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| (Db::Asic, k.clone())),
            );
        }
        out
    }

    /// A watched STATE_DB or APPL_DB entry by table and name (parts joined
    /// with `|`); absent in any other database.
    pub fn entry(&self, db: Db, table: &str, name: &str) -> Entry<'_> {
        match db {
            Db::State => entry_of(self.state.get(&redis_key(table, name, self.seps.state))),
            Db::Appl => entry_of(self.appl.get(&redis_key(table, name, self.seps.appl))),
            Db::Counters | Db::Asic => Entry::Absent,
        }
    }

    /// Whether `port` has an ASIC bridge port (only known where
    /// `COUNTERS_PORT_NAME_MAP` knows the port); `None` when unread data
    /// (or bridge ports not listed yet) could tell otherwise.
    pub fn has_bridge_port(&self, port: &str) -> Option<bool> {
        if self.port_oids_stale {
            return None;
        }
        let Some(oid) = self.port_oids.get(port) else {
            return Some(false);
        };
        if self.bridged.contains_key(oid) {
            return Some(true);
        }
        if self.bridge_ports_unlisted || self.unread_bridge_ports > 0 {
            return None;
        }
        Some(false)
    }

    /// Whether `ifname` has a router interface; `None` while unread.
    pub fn has_rif(&self, ifname: &str) -> Option<bool> {
        if self.rifs_stale {
            self.rif_fields.get(ifname).copied()
        } else {
            Some(self.rifs.contains(ifname))
        }
    }

    /// A full read of [`RIF_NAME_MAP`] (`value`; `None`: the hash is gone):
    /// whether anything changed, and the interfaces whose router interface
    /// it shows otherwise than the view knew it — the map as last read, or,
    /// while it was stale, the single fields read since (sorted).
    pub fn set_rifs(&mut self, value: Option<Fields>) -> (bool, Vec<String>) {
        let rifs: FxHashSet<String> = value
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        let known = |ifname: &str| match self.rif_fields.get(ifname) {
            Some(present) if self.rifs_stale => *present,
            _ => self.rifs.contains(ifname),
        };
        let mut moved: Vec<String> = self
            .rifs
            .iter()
            .chain(self.rif_fields.keys())
            .chain(rifs.iter())
            .filter(|i| known(i) != rifs.contains(*i))
            .cloned()
            .collect();
        moved.sort();
        moved.dedup();
        let changed = rifs != self.rifs || self.rifs_stale;
        self.rifs = rifs;
        self.rifs_stale = false;
        self.rif_fields.clear();
        (changed, moved)
    }

    /// The interfaces whose field of [`RIF_NAME_MAP`] was read alone while
    /// the map is stale (a notification of the map forgets them).
    pub fn rif_fields_read(&self) -> Vec<String> {
        let mut read: Vec<String> = self.rif_fields.keys().cloned().collect();
        read.sort();
        read
    }

    /// One field of [`RIF_NAME_MAP`] was read: `present` or not.
    fn set_rif_field(&mut self, ifname: String, present: bool) -> bool {
        if self.rifs_stale {
            return self.rif_fields.insert(ifname, present) != Some(present);
        }
        if present {
            self.rifs.insert(ifname)
        } else {
            self.rifs.remove(&ifname)
        }
    }

    /// Number of watched entries (for status and tests).
    pub fn len(&self) -> usize {
        self.state.len() + self.appl.len() + self.rifs.len() + self.bridge_ports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a barrier condition holds; `None` when it depends on data
    /// not read since it changed.
    pub fn check(&self, c: &Condition) -> Option<bool> {
        self.check_at(c, &self.key_of(c))
    }

    /// The redis key a condition looks at (empty for the COUNTERS_DB and
    /// ASIC_DB checks, which look at whole hashes).
    pub fn key_of(&self, c: &Condition) -> String {
        match c.db {
            Db::State | Db::Appl => c.redis_key(self.seps.of(c.db)),
            Db::Counters | Db::Asic => String::new(),
        }
    }

    /// [`Confirmed::check`] with the condition's key computed beforehand
    /// ([`Confirmed::key_of`]): a barrier re-checks its conditions on every
    /// notification.
    pub fn check_at(&self, c: &Condition, key: &str) -> Option<bool> {
        if self.assumed {
            return Some(true);
        }
        let entry = || match c.db {
            Db::State => entry_of(self.state.get(key)),
            Db::Appl => entry_of(self.appl.get(key)),
            Db::Counters | Db::Asic => Entry::Absent,
        };
        match &c.check {
            Check::NoBridgePort => self.has_bridge_port(&c.name).map(|b| !b),
            Check::FieldGone { field } if c.table == RIF_NAME_MAP => {
                self.has_rif(field).map(|b| !b)
            }
            Check::FieldGone { field } => match entry() {
                Entry::Absent => Some(true),
                Entry::Unread => None,
                Entry::Known(f) => Some(!f.contains_key(field)),
            },
            Check::Present => Some(entry() != Entry::Absent),
            Check::Gone => Some(entry() == Entry::Absent),
            Check::FieldIs { field, value } => match entry() {
                Entry::Absent => Some(false),
                Entry::Unread => None,
                Entry::Known(f) => Some(f.get(field).map(String::as_str) == Some(value.as_str())),
            },
        }
    }

    /// Whether a barrier condition is known to hold.
    pub fn holds(&self, c: &Condition) -> bool {
        self.check(c) == Some(true)
    }

    /// The keys to read to decide `c` (empty when it can be decided).
    pub fn to_read(&self, c: &Condition) -> Vec<(Db, String)> {
        if self.check(c).is_some() {
            return Vec::new();
        }
        match &c.check {
            Check::NoBridgePort => {
                let mut keys = Vec::new();
                if self.port_oids_stale {
                    keys.push((Db::Counters, PORT_NAME_MAP.to_owned()));
                }
                if self.unread_bridge_ports > 0 {
                    keys.extend(
                        self.bridge_ports
                            .iter()
                            .filter(|(_, v)| v.is_none())
                            .map(|(k, _)| (Db::Asic, k.clone())),
                    );
                }
                keys
            }
            Check::FieldGone { field } if c.table == RIF_NAME_MAP => {
                vec![(Db::Counters, rif_field_key(field))]
            }
            _ => vec![(c.db, c.redis_key(self.seps.of(c.db)))],
        }
    }
}

fn entry_of(e: Option<&Option<Fields>>) -> Entry<'_> {
    match e {
        None => Entry::Absent,
        Some(None) => Entry::Unread,
        Some(Some(f)) => Entry::Known(f),
    }
}

/// `value`: `None` gone, `Some(None)` present unread, `Some(Some(f))` known.
fn set_entry(
    map: &mut FxHashMap<String, Option<Fields>>,
    unread: &mut usize,
    key: &str,
    value: Option<Option<Fields>>,
) -> bool {
    if map.get(key) == value.as_ref() && !matches!(value, Some(None)) {
        return false;
    }
    count_unread(
        unread,
        matches!(map.get(key), Some(None)),
        matches!(value, Some(None)),
    );
    match value {
        Some(f) => {
            map.insert(key.to_owned(), f);
        }
        None => {
            map.remove(key);
        }
    }
    true
}

/// Keep a count of unread entries across one entry going from unread
/// (`was`) or not to unread (`is`) or not.
fn count_unread(count: &mut usize, was: bool, is: bool) {
    match (was, is) {
        (true, false) => *count = count.saturating_sub(1),
        (false, true) => *count += 1,
        _ => {}
    }
}

fn redis_key(table: &str, name: &str, sep: char) -> String {
    let mut k = String::with_capacity(table.len() + name.len() + 1);
    k.push_str(table);
    k.push(sep);
    if sep == SEP {
        k.push_str(name);
    } else {
        k.extend(name.chars().map(|c| if c == SEP { sep } else { c }));
    }
    k
}

/// What a reconcile must respect before it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Confirmations SONiC still owes for the current CONFIG_DB; the applier
    /// waits for all of them before its first write.
    pub pending: Vec<Condition>,
    /// Owned entries SONiC dropped and that must be replaced (delete →
    /// confirm → create; a VRF's VNI via 0).
    pub replace: Vec<Key>,
}

impl Assessment {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.replace.is_empty()
    }
}

/// Compare the owned part of CONFIG_DB with what SONiC confirmed, entry by
/// entry of the catalogue ([`confirms::CATALOGUE`]). `owned` must be built
/// from the same `config` and `spec`.
pub fn assess(
    config: &DbState,
    confirmed: &Confirmed,
    spec: &SwitchSpec,
    owned: &Ownership<'_>,
) -> Assessment {
    assess_within(config, confirmed, spec, owned, None)
}

/// [`assess`] for the entries a scope covers only ([`super::reach`]).
pub fn assess_scoped(
    config: &DbState,
    confirmed: &Confirmed,
    spec: &SwitchSpec,
    owned: &Ownership<'_>,
    covered: &Covered<'_, '_>,
) -> Assessment {
    assess_within(config, confirmed, spec, owned, Some(covered))
}

fn assess_within(
    config: &DbState,
    confirmed: &Confirmed,
    spec: &SwitchSpec,
    owned: &Ownership<'_>,
    covered: Option<&Covered<'_, '_>>,
) -> Assessment {
    let mut a = Assessment::default();
    if confirmed.assumed {
        return a;
    }
    for entry in CATALOGUE {
        let entries: Box<dyn Iterator<Item = (&str, &Fields)>> = match covered {
            Some(c) => Box::new(c.entries(entry.table).iter().copied()),
            None => Box::new(config.table(entry.table)),
        };
        for (name, fields) in entries {
            if owned.owns(entry.table, name, fields) {
                owed(confirmed, entry, name, fields, &mut a);
            }
        }
    }
    let reach = covered.map(|c| c.reach);
    let mut gone = unconfirmed_deletions(config, confirmed, &Domain::new(spec), reach);
    gone.sort();
    a.pending.extend(gone);
    a.pending.sort();
    a.pending.dedup();
    a.replace.sort();
    a.replace.dedup();
    a
}

/// What SONiC owes for one owned CONFIG_DB entry: its marker (or the copy of
/// a mirrored field, which stands for the marker when it lives there), or
/// its replacement when the daemon will never apply the field in place.
fn owed(
    confirmed: &Confirmed,
    entry: &confirms::Confirmation,
    name: &str,
    fields: &Fields,
    a: &mut Assessment,
) {
    let mut want = |c: Condition| {
        if !confirmed.holds(&c) {
            a.pending.push(c);
        }
    };
    let mirror = entry.mirror;
    if mirror.is_none_or(|m| m.marker != entry.marker) {
        want(entry.marker.present(name));
    }
    let Some(mirror) = mirror else {
        return;
    };
    let marker = match confirmed.entry(mirror.marker.db, mirror.marker.table, name) {
        Entry::Absent => None,
        Entry::Unread => Some(None),
        Entry::Known(f) => Some(Some(f)),
    };
    match mirror.compare(name, fields, marker) {
        Copied::Confirmed => {}
        Copied::Wait(c) => want(c),
        Copied::Replace => a.replace.push(Key::new(entry.table, name)),
    }
}

/// Markers (and router interfaces) SONiC still has in the agent's domain
/// whose CONFIG_DB entry is gone: their deletion is not confirmed yet.
/// Within a [`Reach`], the markers of the names it gives are looked up and
/// only the other marker tables are walked.
fn unconfirmed_deletions(
    config: &DbState,
    confirmed: &Confirmed,
    domain: &Domain<'_>,
    reach: Option<&Reach>,
) -> Vec<Condition> {
    let within = |k: &Key| reach.is_none_or(|s| s.covers_key(k));
    let mut gone: Vec<Condition> = Vec::new();
    // `entry` claims `name` in the scope, and CONFIG_DB no longer has it.
    let left = |entry: &confirms::Confirmation, name: &str| {
        (entry.claims)(domain, name).is_some_and(|key| within(&key) && !config.contains(&key))
    };
    // The tables whose names the scope gives: every such name looked up;
    // the markers of the other tables walked.
    let named = |entry: &confirms::Confirmation| reach.is_some() && Reach::gives_names(entry.table);
    for (db, markers) in [(Db::State, &confirmed.state), (Db::Appl, &confirmed.appl)] {
        let sep = confirmed.seps.of(db);
        // Every marker whose going confirms a deletion: the entry's own and
        // a later daemon's object (orchagent's VRF object).
        let deletion_markers = || {
            CATALOGUE.iter().flat_map(move |e| {
                e.deletion_markers()
                    .filter(move |m| m.db == db)
                    .map(move |m| (e, m))
            })
        };
        for (entry, marker) in deletion_markers() {
            let names = reach.and_then(|s| s.names(entry.table)).unwrap_or_default();
            for name in names {
                if markers.contains_key(&redis_key(marker.table, &name, sep)) && left(entry, &name)
                {
                    gone.push(marker.gone(&name));
                }
            }
        }
        // The marker tables walked (a prefix test per key picks them out).
        let mut walked: Vec<&str> = deletion_markers()
            .filter(|(e, _)| !named(e))
            .map(|(_, m)| m.table)
            .collect();
        walked.sort_unstable();
        walked.dedup();
        for key in markers.keys() {
            let Some((table, rest)) = walked.iter().find_map(|t| {
                let rest = key.strip_prefix(*t)?.strip_prefix(sep)?;
                Some((*t, rest))
            }) else {
                continue;
            };
            // The first entry that claims the marker's name decides.
            let mut entries = confirms::with_marker(db, table).filter(|(e, _)| !named(e));
            let name = rest.replace(sep, &SEP.to_string());
            let claimed = entries.find_map(|(e, m)| Some(((e.claims)(domain, &name)?, m)));
            if let Some((config_key, marker)) = claimed
                && within(&config_key)
                && !config.contains(&config_key)
            {
                gone.push(marker.gone(&name));
            }
        }
    }
    // Router interfaces: claimed by one entry each (a port's or a tenant
    // VLAN's interface). Within a scope, an interface whose router
    // interface was not read since the map changed counts as present: the
    // plan waits for it to go, and that wait reads it.
    for entry in confirms::with_special(Special::RouterInterface) {
        let names = reach.and_then(|s| s.names(entry.table));
        let rifs: Box<dyn Iterator<Item = &String>> = match &names {
            Some(names) => Box::new(names.iter().filter(|n| confirmed.has_rif(n) != Some(false))),
            None => Box::new(confirmed.rifs.iter()),
        };
        for ifname in rifs {
            if left(entry, ifname) {
                gone.push(confirms::rif_gone(ifname));
            }
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    //! Expectations from sonic-configdb reference §4 ("Confirming that a
    //! change took effect"): which daemon writes which STATE_DB / APPL_DB /
    //! COUNTERS_DB entry for which CONFIG_DB entry.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::config::Config;
    use crate::configdb::owned::Ownership;
    use crate::configdb::schema::{Table, fields};
    use crate::configdb::testkit::sonic_confirms;
    use crate::spec::{FilterDesc, NicDesc, SwitchDesc};

    fn f(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Four ports, a VTEP, the PXE VLAN 3900; tenant ranges 1001–2000.
    fn base() -> DbState {
        let mut s = DbState::new();
        for i in 0..4 {
            s.insert(
                Key::port(&format!("Ethernet{i}")),
                f(&[("alias", &format!("Eth{i}")), ("mtu", "9000")]),
            );
        }
        s.insert(
            Key::new(Table::VxlanTunnel, "vtep"),
            f(&[("src_ip", "10.0.0.11")]),
        );
        s.insert(
            Key::new(Table::VxlanEvpnNvo, "nvo"),
            f(&[("source_vtep", "vtep")]),
        );
        s.insert(Key::vlan(3900), f(&[("vlanid", "3900")]));
        s
    }

    fn spec_for(state: &DbState, nics: &[(&str, &str)]) -> SwitchSpec {
        let cfg = Config::from_sources(
            Some(("t", "hostname = \"leaf01\"\npxe_vlan_id = 3900\n")),
            vec![],
        )
        .unwrap();
        let desc = SwitchDesc {
            id: "leaf01".into(),
            nics: nics
                .iter()
                .map(|(n, v)| NicDesc {
                    name: (*n).into(),
                    vrf: (!v.is_empty()).then(|| (*v).to_owned()),
                    filter: FilterDesc::default(),
                    ..NicDesc::default()
                })
                .collect(),
        };
        crate::reconcile::prepare(&desc, &cfg, state, &Confirmed::assumed())
            .unwrap()
            .spec
    }

    /// `base` with `nics` applied (target written to CONFIG_DB).
    fn applied(nics: &[(&str, &str)]) -> (DbState, SwitchSpec) {
        let mut state = base();
        let spec = spec_for(&state, nics);
        let plan = crate::configdb::Planning::new(&spec, &state, &Confirmed::assumed()).plan();
        for c in plan.iter_changes() {
            match &c.op {
                crate::configdb::diff::Op::Create { fields } => {
                    state.insert(c.key.clone(), fields.clone())
                }
                crate::configdb::diff::Op::Update { set, .. } => {
                    let e = state.get_mut(&c.key).unwrap();
                    e.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                crate::configdb::diff::Op::Delete { .. } => {
                    state.remove(&c.key);
                }
            }
        }
        let spec = spec_for(&state, nics);
        (state, spec)
    }

    fn assess_of(state: &DbState, confirmed: &Confirmed, spec: &SwitchSpec) -> Assessment {
        assess(state, confirmed, spec, &Ownership::new(state, spec))
    }

    const NICS: &[(&str, &str)] = &[
        ("Ethernet0", ""),
        ("Ethernet1", "vrf104009"),
        ("Ethernet2", "default"),
    ];

    #[test]
    fn a_confirmed_switch_owes_nothing() {
        let (state, spec) = applied(NICS);
        let a = assess_of(&state, &sonic_confirms(&state), &spec);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn written_but_unconfirmed_entries_are_pending() {
        let (state, spec) = applied(NICS);
        let mut c = sonic_confirms(&state);
        // vrfmgrd and vlanmgrd have not got to the new VRF and member yet.
        c.set(Db::State, "VRF_TABLE|Vrf104009", None);
        c.set(Db::State, "VLAN_MEMBER_TABLE|Vlan3900|Ethernet0", None);
        c.set(Db::State, "INTERFACE_TABLE|Ethernet1", None);
        let a = assess_of(&state, &c, &spec);
        let shown: Vec<String> = a.pending.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "STATE_DB INTERFACE_TABLE|Ethernet1 vrf=\"Vrf104009\" (intfmgrd)",
                "STATE_DB VLAN_MEMBER_TABLE|Vlan3900|Ethernet0 present (vlanmgrd)",
                "STATE_DB VRF_TABLE|Vrf104009 present (vrfmgrd)",
            ]
        );
        assert!(a.replace.is_empty());
    }

    /// A barrier waiting for one router interface to go reads that field
    /// alone once the map changed; any later change of the map forgets it.
    #[test]
    fn a_removed_router_interface_is_read_by_its_field() {
        let mut c = Confirmed::new(Separators::default());
        c.set(
            Db::Counters,
            RIF_NAME_MAP,
            Some(f(&[
                ("Ethernet1", "oid:0x6000000000001"),
                ("Vlan1001", "oid:0x6000000000002"),
            ])),
        );
        let gone = Condition::new(
            Db::Counters,
            RIF_NAME_MAP,
            "",
            Check::FieldGone {
                field: "Ethernet1".into(),
            },
            "orchagent removed the router interface",
        );
        assert_eq!(c.check(&gone), Some(false));
        assert!(c.to_read(&gone).is_empty(), "known: nothing to read");

        // orchagent changed the map (a notification without the value).
        assert!(c.touch(Db::Counters, RIF_NAME_MAP));
        assert_eq!(c.check(&gone), None);
        let key = rif_field_key("Ethernet1");
        assert_eq!(c.to_read(&gone), vec![(Db::Counters, key.clone())]);
        assert_eq!(c.classify(Db::Counters, &key), Some(Watched::RifField));

        // HGET answered: still there, then gone.
        assert!(c.set(Db::Counters, &key, Some(Fields::new())));
        assert_eq!(c.check(&gone), Some(false));
        assert!(c.set(Db::Counters, &key, None));
        assert_eq!(c.check(&gone), Some(true));
        // Other interfaces stay unknown until the map is read.
        assert_eq!(c.has_rif("Vlan1001"), None);
        // The full read still lists what `assess` needs.
        assert!(
            c.unread()
                .contains(&(Db::Counters, RIF_NAME_MAP.to_owned()))
        );

        // Another change of the map: the field read is forgotten.
        assert!(c.touch(Db::Counters, RIF_NAME_MAP));
        assert_eq!(c.check(&gone), None);
        // A full read replaces everything.
        c.set(
            Db::Counters,
            RIF_NAME_MAP,
            Some(f(&[("Vlan1001", "oid:0x6000000000002")])),
        );
        assert_eq!(c.check(&gone), Some(true));
        assert_eq!(c.has_rif("Vlan1001"), Some(true));
    }

    #[test]
    fn deletions_not_yet_confirmed_are_pending() {
        // Ethernet1 left its VRF and Vrf104009 was removed from CONFIG_DB, but
        // intfmgrd, orchagent and vrfmgrd still show them.
        let (old, _) = applied(NICS);
        let c = sonic_confirms(&old);
        let (state, spec) = applied(&[
            ("Ethernet0", ""),
            ("Ethernet1", ""),
            ("Ethernet2", "default"),
        ]);
        let a = assess_of(&state, &c, &spec);
        let shown: Vec<String> = a.pending.iter().map(ToString::to_string).collect();
        for want in [
            "STATE_DB INTERFACE_TABLE|Ethernet1 gone (intfmgrd)",
            "COUNTERS_DB COUNTERS_RIF_NAME_MAP[Ethernet1] gone (orchagent removed the router interface)",
            "STATE_DB VRF_TABLE|Vrf104009 gone (vrfmgrd)",
            "STATE_DB VRF_OBJECT_TABLE|Vrf104009 gone (orchagent)",
            "STATE_DB VLAN_MEMBER_TABLE|Vlan3900|Ethernet1 present (vlanmgrd)",
        ] {
            assert!(
                shown.iter().any(|s| s == want),
                "missing {want:?} in {shown:#?}"
            );
        }
        // The VLAN and its VXLAN map of the removed VRF: confirmed gone too.
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("STATE_DB VLAN_TABLE|Vlan1001 gone")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|s| s
                    .starts_with("APPL_DB VXLAN_TUNNEL_MAP_TABLE:vtep:map_104009_Vlan1001 gone")),
            "{shown:#?}"
        );
    }

    #[test]
    fn a_binding_changed_in_place_is_replaced() {
        // Someone rewrote vrf_name in place: intfmgrd skipped it ("can not
        // change to … directly"), STATE_DB keeps the old VRF forever.
        let (state, spec) = applied(NICS);
        let mut c = sonic_confirms(&state);
        c.set(
            Db::State,
            "INTERFACE_TABLE|Ethernet1",
            Some(f(&[("vrf", "Vrf104010")])),
        );
        let a = assess_of(&state, &c, &spec);
        assert_eq!(a.replace, [Key::interface("Ethernet1")]);
        assert!(a.pending.is_empty(), "{:?}", a.pending);
        let plan = {
            let owned = Ownership::new(&state, &spec);
            crate::configdb::plan::plan(crate::configdb::diff::diff_forced(
                &state, &spec, &owned, &a.replace,
            ))
        };
        // Delete, confirm, create: two phases with the deletion's barrier between.
        let keys: Vec<String> = plan.iter_changes().map(ToString::to_string).collect();
        assert_eq!(keys.len(), 2, "{plan}");
        assert!(keys[0].starts_with("- INTERFACE|Ethernet1"), "{plan}");
        assert!(keys[1].starts_with("+ INTERFACE|Ethernet1"), "{plan}");
        assert!(
            crate::configdb::rules::check_rules(&plan).is_empty(),
            "{plan}"
        );
    }

    #[test]
    fn a_vni_changed_directly_goes_through_zero() {
        let (state, spec) = applied(NICS);
        let mut c = sonic_confirms(&state);
        // vrfmgrd rejected a direct VNI change and still has the old one.
        c.set(
            Db::Appl,
            "VRF_TABLE:Vrf104009",
            Some(f(&[("vni", "104010")])),
        );
        let a = assess_of(&state, &c, &spec);
        assert_eq!(a.replace, [Key::vrf("Vrf104009")]);
        let owned = Ownership::new(&state, &spec);
        let plan = crate::configdb::plan::plan(crate::configdb::diff::diff_forced(
            &state, &spec, &owned, &a.replace,
        ));
        let shown = plan.to_string();
        assert!(
            shown.contains("~ VRF|Vrf104009 set {vni=0}  [vni via 0]"),
            "{shown}"
        );
        assert!(shown.contains("vni=104009"), "{shown}");
    }

    #[test]
    fn entries_outside_the_agents_domain_are_ignored() {
        let (state, spec) = applied(NICS);
        let mut c = sonic_confirms(&state);
        // An operator's VRF and VLAN outside the range, an unmanaged port's binding.
        c.set(Db::State, "VRF_TABLE|VrfMpls", Some(f(&[("state", "ok")])));
        c.set(
            Db::State,
            "VRF_OBJECT_TABLE|VrfMpls",
            Some(f(&[("state", "ok")])),
        );
        c.set(
            Db::State,
            "VLAN_TABLE|Vlan3000",
            Some(f(&[("state", "ok")])),
        );
        c.set(
            Db::State,
            "INTERFACE_TABLE|Ethernet120",
            Some(f(&[("vrf", "")])),
        );
        c.set(
            Db::State,
            "INTERFACE_TABLE|Loopback0|10.0.0.11/32",
            Some(f(&[("state", "ok")])),
        );
        let a = assess_of(&state, &c, &spec);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn bridge_ports_are_found_through_the_port_oid() {
        let mut c = Confirmed::new(Separators::default());
        let no_bridge = Condition::new(Db::Asic, "", "Ethernet0", Check::NoBridgePort, "orchagent");
        assert!(
            c.holds(&no_bridge),
            "a port COUNTERS_DB does not know has no bridge port"
        );
        c.set(
            Db::Counters,
            PORT_NAME_MAP,
            Some(f(&[("Ethernet0", "oid:0x1000000000002")])),
        );
        let bp = "ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:oid:0x3a000000000010";
        c.set(
            Db::Asic,
            bp,
            Some(f(&[(BRIDGE_PORT_FIELD, "oid:0x1000000000002")])),
        );
        assert!(!c.holds(&no_bridge));
        c.set(Db::Asic, bp, None);
        assert!(c.holds(&no_bridge));
        // While ASIC_DB's bridge ports are still being listed, a port the
        // listing has not reached may have one: undecided, not "none".
        assert!(c.set_bridge_ports_listed(false));
        assert_eq!(c.check(&no_bridge), None);
        assert!(c.to_read(&no_bridge).is_empty(), "the listing is under way");
        c.set(
            Db::Asic,
            bp,
            Some(f(&[(BRIDGE_PORT_FIELD, "oid:0x1000000000002")])),
        );
        assert_eq!(c.check(&no_bridge), Some(false), "known before the end");
        c.set(Db::Asic, bp, None);
        assert!(c.set_bridge_ports_listed(true));
        assert!(!c.set_bridge_ports_listed(true));
        assert!(c.holds(&no_bridge));
        // Not a watched key: ignored.
        assert!(!c.set(
            Db::Asic,
            "ASIC_STATE:SAI_OBJECT_TYPE_ROUTE_ENTRY:x",
            Some(fields([]))
        ));
    }

    proptest::proptest! {
        /// The counts of unread entries (which spare a reconcile a scan of
        /// every watched entry) always equal a count of the entries.
        #[test]
        fn the_unread_counts_follow_the_entries(
            ops in proptest::collection::vec((0..3usize, 0..4usize, 0..3usize), 1..40),
        ) {
            let mut c = Confirmed::new(Separators::default());
            for (db, i, what) in ops {
                let (db, key) = match db {
                    0 => (Db::State, format!("VRF_TABLE|Vrf{i}")),
                    1 => (Db::Appl, format!("VRF_TABLE:Vrf{i}")),
                    _ => (Db::Asic, format!("ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:oid:0x{i}")),
                };
                match what {
                    0 => {
                        c.touch(db, &key);
                    }
                    1 => {
                        c.set(db, &key, None);
                    }
                    _ => {
                        c.set(db, &key, Some(f(&[(BRIDGE_PORT_FIELD, "oid:0x1"), ("state", "ok")])));
                    }
                }
                let markers = c.state.values().chain(c.appl.values()).filter(|v| v.is_none()).count();
                let bridge_ports = c.bridge_ports.values().filter(|v| v.is_none()).count();
                proptest::prop_assert_eq!(c.unread_markers, markers);
                proptest::prop_assert_eq!(c.unread_bridge_ports, bridge_ports);
                proptest::prop_assert_eq!(c.unread().len(), markers + bridge_ports);
            }
        }
    }
}
