//! The agent's view of SONiC's databases, kept current from updates (pure).
//!
//! [`View`] holds the CONFIG_DB tables the agent reads ([`DbState`]), what
//! SONiC confirmed of them ([`Confirmed`]) and the readiness flags. It is
//! built from one full read and then changed only by [`Update`]s — the
//! current value of one key, as the feed re-read it after a keyspace
//! notification (`configdb::feed`). Two counters say what changed: `version`
//! on any change, `config_version` on a change of CONFIG_DB (the input of
//! planning); a reconcile where neither moved has nothing new to look at.
//!
//! Invariant: applying the updates of every notification in order, each
//! carrying the key's value at re-read time, leaves the view equal to a fresh
//! full read taken after the last of them.

use std::collections::VecDeque;

use super::confirmed::{Confirmed, RIF_FIELD_SEP};
use super::confirms::{Condition, Db, RIF_NAME_MAP};
pub use super::reach::Touched;
use super::schema::{DbState, Fields, Key, PORT_FIELDS, Table};

/// `CONFIG_DB_INITIALIZED`, a plain string key in CONFIG_DB.
pub const CONFIG_DB_INITIALIZED: &str = "CONFIG_DB_INITIALIZED";

/// What CONFIG_DB / APPL_DB say about readiness.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// Value of `CONFIG_DB_INITIALIZED` (empty when absent).
    pub config_db_initialized: String,
    /// Whether `PORT_TABLE:PortInitDone` exists in APPL_DB.
    pub port_init_done: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.config_db_initialized == "1" && self.port_init_done
    }
}

/// The current value of one key (`None`: the key does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A key of CONFIG_DB (tables the agent does not read are ignored).
    Config {
        key: String,
        value: Option<Fields>,
    },
    /// A watched key of another database.
    Other {
        db: Db,
        key: String,
        value: Option<Fields>,
    },
    /// A watched key of another database was written; its value was not
    /// read (it is read when a decision needs it).
    Touched {
        db: Db,
        key: String,
    },
    ConfigDbInitialized(Option<String>),
    PortInitDone(bool),
    /// Every ASIC bridge port has been listed (and is followed since).
    BridgePortsListed,
}

/// What an update changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changed {
    /// A CONFIG_DB entry of the agent's tables.
    pub config: bool,
    /// The confirmed state.
    pub confirmed: bool,
    /// A readiness flag.
    pub readiness: bool,
}

impl Changed {
    pub fn any(&self) -> bool {
        self.config || self.confirmed || self.readiness
    }

    pub fn merge(&mut self, other: Changed) {
        self.config |= other.config;
        self.confirmed |= other.confirmed;
        self.readiness |= other.readiness;
    }
}

/// The keys that changed, version by version, as far back as the journal
/// reaches ([`Journal::since`]). Bounded: the oldest entries fall out, and a
/// new snapshot clears it. A read of the whole router-interface map names
/// the interfaces whose router interface it shows otherwise than the view
/// knew it ([`Confirmed::set_rifs`]).
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Every change after this version is in `entries`.
    from: u64,
    entries: VecDeque<(u64, Touched)>,
}

/// Entries a journal keeps at most (a drift repair names a few keys).
const JOURNAL_MAX: usize = 4096;

impl Journal {
    /// Nothing is known before `version`.
    pub fn reset(&mut self, version: u64) {
        self.from = version;
        self.entries.clear();
    }

    fn push(&mut self, version: u64, t: Touched) {
        if self.entries.len() == JOURNAL_MAX
            && let Some((v, _)) = self.entries.pop_front()
        {
            // Changes at `v` may be only partly left: the journal now starts there.
            self.from = v;
            while self.entries.front().is_some_and(|(w, _)| *w == v) {
                self.entries.pop_front();
            }
        }
        self.entries.push_back((version, t));
    }

    /// The keys that changed after `version`, sorted, without duplicates;
    /// `None` when the journal does not reach back that far.
    pub fn since(&self, version: u64) -> Option<Vec<Touched>> {
        if version < self.from {
            return None;
        }
        let mut out: Vec<Touched> = self
            .entries
            .iter()
            .filter(|(v, _)| *v > version)
            .map(|(_, t)| t.clone())
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }
}

/// CONFIG_DB, its confirmations and the readiness flags.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub config: DbState,
    pub confirmed: Confirmed,
    pub readiness: Readiness,
    /// Bumped on every change.
    pub version: u64,
    /// Bumped on every change of `config`.
    pub config_version: u64,
    /// The keys each change named (what a plan must look at again).
    pub journal: Journal,
}

/// The journal entry of a changed key of another database (one field of
/// the router-interface map: that interface's router interface). Bridge
/// ports and the port name map only decide barriers, never a plan: they
/// name nothing a plan reads.
fn touched_marker(db: Db, key: String) -> Touched {
    match key
        .strip_prefix(RIF_NAME_MAP)
        .and_then(|rest| rest.strip_prefix(RIF_FIELD_SEP))
    {
        Some(ifname) if db == Db::Counters => Touched::Rif(ifname.to_owned()),
        _ => Touched::Marker(db, key),
    }
}

/// Keep only the PORT fields the agent uses.
pub fn port_fields(f: Fields) -> Fields {
    f.into_iter()
        .filter(|(k, _)| PORT_FIELDS.contains(&k.as_str()))
        .collect()
}

impl View {
    pub fn new(config: DbState, confirmed: Confirmed, readiness: Readiness) -> View {
        View {
            config,
            confirmed,
            readiness,
            version: 1,
            config_version: 1,
            journal: Journal {
                from: 1,
                entries: VecDeque::new(),
            },
        }
    }

    /// The keys that changed after `version` ([`Journal::since`]).
    pub fn touched_since(&self, version: u64) -> Option<Vec<Touched>> {
        self.journal.since(version)
    }

    /// Record a change of CONFIG_DB made by the agent itself.
    pub fn wrote(&mut self, key: Key) {
        self.journal.push(self.version, Touched::Config(key));
    }

    /// Apply one update; says what changed (nothing when the value is the
    /// one the view already had).
    pub fn apply(&mut self, u: Update) -> Changed {
        let mut changed = Changed::default();
        // The keys this update changed, for the journal (readiness and the
        // bridge-port listing move no plan).
        let mut touched = Vec::new();
        match u {
            Update::Config { key, value } => {
                let Some(key) = Key::parse(&key) else {
                    return changed;
                };
                let value = match (key.table, value) {
                    (Table::Port, Some(f)) => Some(port_fields(f)),
                    (_, v) => v,
                };
                if self.config.get(&key) != value.as_ref() {
                    match value {
                        Some(f) => self.config.insert(key.clone(), f),
                        None => {
                            self.config.remove(&key);
                        }
                    }
                    changed.config = true;
                    touched.push(Touched::Config(key));
                }
            }
            Update::Other { db, key, value } if db == Db::Counters && key == RIF_NAME_MAP => {
                // The whole map read anew: what moved are the interfaces
                // whose router interface is not what the view knew.
                let (rifs_changed, moved) = self.confirmed.set_rifs(value);
                changed.confirmed = rifs_changed;
                touched = moved.into_iter().map(Touched::Rif).collect();
            }
            Update::Other { db, key, value } => {
                changed.confirmed = self.confirmed.set(db, &key, value);
                touched.push(touched_marker(db, key));
            }
            Update::Touched { db, key } if db == Db::Counters && key == RIF_NAME_MAP => {
                // The router-interface map marked unread: the interfaces it
                // listed stay what the next full read is compared with; the
                // ones read alone since it went stale are forgotten, and a
                // plan may have read them.
                touched = self
                    .confirmed
                    .rif_fields_read()
                    .into_iter()
                    .map(Touched::Rif)
                    .collect();
                changed.confirmed = self.confirmed.touch(db, &key);
            }
            Update::Touched { db, key } => {
                changed.confirmed = self.confirmed.touch(db, &key);
                touched.push(touched_marker(db, key));
            }
            Update::ConfigDbInitialized(v) => {
                let v = v.unwrap_or_default();
                if self.readiness.config_db_initialized != v {
                    self.readiness.config_db_initialized = v;
                    changed.readiness = true;
                }
            }
            Update::BridgePortsListed => {
                changed.confirmed = self.confirmed.set_bridge_ports_listed(true);
            }
            Update::PortInitDone(b) => {
                if self.readiness.port_init_done != b {
                    self.readiness.port_init_done = b;
                    changed.readiness = true;
                }
            }
        }
        if changed.any() {
            self.version += 1;
            for t in touched {
                self.journal.push(self.version, t);
            }
        }
        if changed.config {
            self.config_version += 1;
        }
        changed
    }

    /// Whether every condition holds.
    pub fn all_hold(&self, conditions: &[Condition]) -> bool {
        conditions.iter().all(|c| self.confirmed.holds(c))
    }

    /// Keys to read before the unmet `conditions` can be decided.
    pub fn to_read<'c>(
        &self,
        conditions: impl IntoIterator<Item = &'c Condition>,
    ) -> Vec<(Db, String)> {
        let mut keys: Vec<(Db, String)> = conditions
            .into_iter()
            .flat_map(|c| self.confirmed.to_read(c))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The conditions that do not hold yet.
    pub fn unmet<'a>(&self, conditions: &'a [Condition]) -> Vec<&'a Condition> {
        conditions
            .iter()
            .filter(|c| !self.confirmed.holds(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::configdb::confirmed::{Separators, rif_field_key};

    fn view() -> View {
        View::new(
            DbState::default(),
            Confirmed::new(Separators::default()),
            Readiness::default(),
        )
    }

    fn rif_map(ifnames: &[&str]) -> Update {
        let mut f = Fields::new();
        for i in ifnames {
            f.insert((*i).to_owned(), format!("oid:{i}"));
        }
        Update::Other {
            db: Db::Counters,
            key: RIF_NAME_MAP.to_owned(),
            value: Some(f),
        }
    }

    fn rif_field(ifname: &str, present: bool) -> Update {
        let mut f = Fields::new();
        f.insert(ifname.to_owned(), "oid".to_owned());
        Update::Other {
            db: Db::Counters,
            key: rif_field_key(ifname),
            value: present.then_some(f),
        }
    }

    fn map_touched() -> Update {
        Update::Touched {
            db: Db::Counters,
            key: RIF_NAME_MAP.to_owned(),
        }
    }

    fn rifs(names: &[&str]) -> Option<Vec<Touched>> {
        Some(
            names
                .iter()
                .map(|n| Touched::Rif((*n).to_owned()))
                .collect(),
        )
    }

    /// Issue 23: reading the whole router-interface map anew names the
    /// interfaces it shows otherwise than the view knew them (a drift
    /// repair stays narrowed), not "everything".
    #[test]
    fn a_full_read_of_the_router_interface_map_names_what_moved() {
        let mut v = view();
        v.apply(rif_map(&["Ethernet0", "Ethernet4"]));
        let read = v.version;
        v.apply(map_touched());
        assert_eq!(v.touched_since(read), Some(Vec::new()));
        v.apply(rif_map(&["Ethernet4", "Ethernet8"]));
        assert_eq!(v.touched_since(read), rifs(&["Ethernet0", "Ethernet8"]));
        // The same map again moves nothing.
        let again = v.version;
        v.apply(map_touched());
        v.apply(rif_map(&["Ethernet4", "Ethernet8"]));
        assert_eq!(v.touched_since(again), Some(Vec::new()));
    }

    /// While the map is stale, a plan reads the single fields read since:
    /// a full read that differs from those (but not from the map as read
    /// before it went stale) still names the interface.
    #[test]
    fn a_full_read_is_compared_with_the_fields_read_while_stale() {
        let mut v = view();
        v.apply(rif_map(&["Ethernet0"]));
        v.apply(map_touched());
        v.apply(rif_field("Ethernet0", false));
        assert_eq!(v.confirmed.has_rif("Ethernet0"), Some(false));
        let planned = v.version;
        v.apply(rif_map(&["Ethernet0"]));
        assert_eq!(v.touched_since(planned), rifs(&["Ethernet0"]));
    }

    #[derive(Debug, Clone)]
    enum RifOp {
        Touched,
        Field(u8, bool),
        Map(Vec<bool>),
    }

    const IFNAMES: usize = 5;

    fn ifname(i: usize) -> String {
        format!("Ethernet{}", i * 4)
    }

    fn rif_op() -> impl Strategy<Value = RifOp> {
        prop_oneof![
            Just(RifOp::Touched),
            (0..IFNAMES as u8, any::<bool>()).prop_map(|(i, p)| RifOp::Field(i, p)),
            prop::collection::vec(any::<bool>(), IFNAMES).prop_map(RifOp::Map),
        ]
    }

    proptest! {
        /// Whatever the order of notifications, single-field reads and full
        /// reads of the router-interface map: every interface whose known
        /// router interface (what a plan reads) differs between an earlier
        /// version and now is in the journal since that version.
        #[test]
        fn the_journal_names_every_router_interface_a_plan_would_read_otherwise(
            ops in prop::collection::vec(rif_op(), 1..12),
        ) {
            let mut v = view();
            let known = |v: &View| -> Vec<Option<bool>> {
                (0..IFNAMES).map(|i| v.confirmed.has_rif(&ifname(i))).collect()
            };
            let mut seen = vec![(v.version, known(&v))];
            for op in ops {
                let u = match op {
                    RifOp::Touched => map_touched(),
                    RifOp::Field(i, p) => rif_field(&ifname(usize::from(i)), p),
                    RifOp::Map(present) => {
                        let names: Vec<String> = (0..IFNAMES)
                            .filter(|i| present[*i])
                            .map(ifname)
                            .collect();
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        rif_map(&names)
                    }
                };
                v.apply(u);
                seen.push((v.version, known(&v)));
            }
            let now = known(&v);
            for (version, then) in &seen {
                let touched = v.touched_since(*version).expect("the journal reaches back");
                for i in 0..IFNAMES {
                    if let (Some(a), Some(b)) = (then[i], now[i])
                        && a != b
                    {
                        prop_assert!(
                            touched.contains(&Touched::Rif(ifname(i))),
                            "{} moved since version {version} but is not in {touched:?}",
                            ifname(i)
                        );
                    }
                }
            }
        }
    }
}
