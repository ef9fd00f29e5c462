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

use super::confirmed::Confirmed;
use super::confirms::{Condition, Db};
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
        }
    }

    /// Apply one update; says what changed (nothing when the value is the
    /// one the view already had).
    pub fn apply(&mut self, u: Update) -> Changed {
        let mut changed = Changed::default();
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
                        Some(f) => self.config.insert(key, f),
                        None => {
                            self.config.remove(&key);
                        }
                    }
                    changed.config = true;
                }
            }
            Update::Other { db, key, value } => {
                changed.confirmed = self.confirmed.set(db, &key, value);
            }
            Update::Touched { db, key } => {
                changed.confirmed = self.confirmed.touch(db, &key);
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
