//! Redis replies as the view's text, and the bytes SONiC allows that are
//! not UTF-8 (feature `agent`).
//!
//! Redis keys, field names and values are bytes; SONiC's daemons and
//! `redis-cli` store whatever they are given (`HSET "VLAN|Vlan3900"
//! description "caf\xe9"`). The view holds text, so every reply the agent
//! reads from SONiC's databases is decoded here, and a byte that is not
//! UTF-8 never stops a read:
//!
//! - an entry whose *name* is not UTF-8 is skipped ([`Handling::Skipped`]):
//!   the agent creates only names it validated, so such an entry is never
//!   its own, and what another writer keeps there is none of its business
//!   (a bridge port whose port id is not UTF-8 is skipped the same way);
//! - an entry with a field name or value that is not UTF-8 is kept, the bad
//!   bytes read as U+FFFD ([`Handling::Kept`]): a foreign entry stays
//!   present (the agent still sees it and never writes over it) and stays
//!   as it is in redis; an owned field read this way differs from every
//!   desired value, so the reconcile writes the desired value again (a
//!   CONFIG_DB drift repair when a notification brought it).
//!
//! Each such entry is counted per database ([`Undecodable`], the metric
//! `metal_switchd_undecodable_entries_total{db,handling}`) and logged with
//! its name, field and value escaped and cut by
//! [`quoted_bytes`](crate::names::quoted_bytes); the log is bounded
//! (the first [`LOGGED`] of each kind, then every power of two).

use redis::Value;

use super::confirms::Db;
use super::schema::Fields;
use crate::names::quoted_bytes;

/// A database of SONiC's, as the metric's `db` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Database {
    Config,
    Appl,
    State,
    Counters,
    Asic,
}

impl Database {
    pub const ALL: [Database; 5] = [
        Database::Config,
        Database::Appl,
        Database::State,
        Database::Counters,
        Database::Asic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Database::Config => "CONFIG_DB",
            Database::Appl => Db::Appl.name(),
            Database::State => Db::State.name(),
            Database::Counters => Db::Counters.name(),
            Database::Asic => Db::Asic.name(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<Db> for Database {
    fn from(db: Db) -> Database {
        match db {
            Db::Appl => Database::Appl,
            Db::State => Database::State,
            Db::Counters => Database::Counters,
            Db::Asic => Database::Asic,
        }
    }
}

/// What became of an entry with bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handling {
    /// Its name (or the one value the agent reads of it) is not UTF-8: left
    /// out of the view.
    Skipped,
    /// A field name or value is not UTF-8: in the view with U+FFFD in place
    /// of the bad bytes.
    Kept,
}

impl Handling {
    pub const ALL: [Handling; 2] = [Handling::Skipped, Handling::Kept];

    pub fn name(self) -> &'static str {
        match self {
            Handling::Skipped => "skipped",
            Handling::Kept => "kept",
        }
    }
}

/// Entries logged of each database and handling before the log thins out
/// to every power of two.
pub const LOGGED: u64 = 10;

/// Entries with bytes that are not UTF-8, per database and handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undecodable {
    counts: [[u64; 2]; 5],
}

impl Undecodable {
    pub fn count(&self, db: Database, h: Handling) -> u64 {
        self.counts[db.index()][h as usize]
    }

    /// Entries of every database handled as `h`.
    pub fn handled(&self, h: Handling) -> u64 {
        self.counts.iter().map(|c| c[h as usize]).sum()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Every count, with its database and handling.
    pub fn iter(&self) -> impl Iterator<Item = (Database, Handling, u64)> + '_ {
        Database::ALL
            .into_iter()
            .flat_map(|db| Handling::ALL.into_iter().map(move |h| (db, h)))
            .map(|(db, h)| (db, h, self.count(db, h)))
    }

    /// Add `other`'s counts.
    pub fn add(&mut self, other: &Undecodable) {
        for (db, h, n) in other.iter() {
            self.counts[db.index()][h as usize] += n;
        }
    }

    /// The counts since `earlier` (all of them where a count is lower than
    /// `earlier`'s: they were counted anew).
    pub fn since(&self, earlier: &Undecodable) -> Undecodable {
        let mut out = *self;
        if self.iter().zip(earlier.iter()).all(|(a, b)| a.2 >= b.2) {
            for (db, h, n) in earlier.iter() {
                out.counts[db.index()][h as usize] -= n;
            }
        }
        out
    }

    fn bump(&mut self, db: Database, h: Handling) -> bool {
        let n = &mut self.counts[db.index()][h as usize];
        *n += 1;
        *n <= LOGGED || n.is_power_of_two()
    }

    /// Count (and log) an entry of `db` left out of the view: its name
    /// `key`, or its value `value` when `key` is text, is not UTF-8.
    pub fn skipped(&mut self, db: Database, key: &[u8], value: Option<&[u8]>) {
        if self.bump(db, Handling::Skipped) {
            tracing::warn!(
                db = db.name(),
                key = %quoted_bytes(key),
                value = value.map(quoted_bytes).map(tracing::field::display),
                entries = self.count(db, Handling::Skipped),
                "entry of SONiC's databases skipped: it is not UTF-8 (never the agent's; left as it is)"
            );
        }
    }

    /// Count (and log) an entry of `db` kept with the field `field` =
    /// `value` read with U+FFFD in place of bytes that are not UTF-8.
    pub fn kept(&mut self, db: Database, key: &str, field: &[u8], value: &[u8]) {
        if self.bump(db, Handling::Kept) {
            tracing::warn!(
                db = db.name(),
                key = %quoted_bytes(key.as_bytes()),
                field = %quoted_bytes(field),
                value = %quoted_bytes(value),
                entries = self.count(db, Handling::Kept),
                "field of SONiC's databases is not UTF-8: read with U+FFFD (a foreign entry \
                 is left as it is; an owned field is written again)"
            );
        }
    }
}

/// A reply's bytes; `None` for nil (or a reply that is not a string).
pub fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// A reply as text; `None` for nil or bytes that are not UTF-8 (for the
/// agent's own protocol values: cursors, counts).
pub fn text(v: Value) -> Option<String> {
    String::from_utf8(bytes(v)?).ok()
}

/// Bytes as text, U+FFFD in place of what is not UTF-8; `Err` keeps the
/// original bytes for the log.
fn lossy(b: Vec<u8>) -> Result<String, (String, Vec<u8>)> {
    String::from_utf8(b).map_err(|e| {
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        (text, e.into_bytes())
    })
}

/// The fields of entry `key` of `db` from `(name, value)` pairs; an entry
/// with bytes that are not UTF-8 is kept and counted once in `tally`.
pub fn fields(
    pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    db: Database,
    key: &str,
    tally: &mut Undecodable,
) -> Fields {
    let mut f = Fields::new();
    let mut bad: Option<(Vec<u8>, Vec<u8>)> = None;
    for (name, value) in pairs {
        let (name, name_bytes) = match lossy(name) {
            Ok(n) => (n, None),
            Err((n, b)) => (n, Some(b)),
        };
        let value = match lossy(value) {
            Ok(v) => {
                if let (Some(b), None) = (name_bytes, &bad) {
                    bad = Some((b, v.clone().into_bytes()));
                }
                v
            }
            Err((v, b)) => {
                if bad.is_none() {
                    bad = Some((name_bytes.unwrap_or_else(|| name.clone().into_bytes()), b));
                }
                v
            }
        };
        f.insert(name, value);
    }
    if let Some((name, value)) = bad {
        tally.kept(db, key, &name, &value);
    }
    f
}

/// The `(name, value)` pairs of a hash reply (`HGETALL`, `HSCAN`'s batch;
/// RESP2 array or RESP3 map); empty when the hash does not exist.
pub fn pairs(v: Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let mut out = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        Value::Map(m) => m,
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
        .collect()
}

/// A hash reply of entry `key` of `db`; `None` when the hash does not exist
/// (or the reply is not a hash).
pub fn hash(v: Value, db: Database, key: &str, tally: &mut Undecodable) -> Option<Fields> {
    let f = fields(pairs(v), db, key, tally);
    (!f.is_empty()).then_some(f)
}

/// A string value (`GET`) of `key` in `db`, U+FFFD in place of bytes that
/// are not UTF-8 (counted as kept); `None` for nil.
pub fn string(v: Value, db: Database, key: &str, tally: &mut Undecodable) -> Option<String> {
    match lossy(bytes(v)?) {
        Ok(s) => Some(s),
        Err((s, b)) => {
            tally.kept(db, key, b"", &b);
            Some(s)
        }
    }
}

/// Whether the key name `key` is in table `table` (`<table><sep>…`).
pub fn in_table(key: &[u8], table: &str, sep: char) -> bool {
    let mut buf = [0u8; 4];
    key.strip_prefix(table.as_bytes())
        .is_some_and(|rest| rest.starts_with(sep.encode_utf8(&mut buf).as_bytes()))
}

/// A key name read from redis: text, or counted as skipped (and `None`)
/// when it is not UTF-8 and `watched` (a name the agent would have read).
pub fn key(
    v: Value,
    db: Database,
    watched: impl Fn(&[u8]) -> bool,
    tally: &mut Undecodable,
) -> Option<String> {
    match String::from_utf8(bytes(v)?) {
        Ok(k) => Some(k),
        Err(e) => {
            if watched(e.as_bytes()) {
                tally.skipped(db, e.as_bytes(), None);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn b(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn hash_replies_of_both_protocols_and_bad_bytes() {
        let mut t = Undecodable::default();
        let h = hash(
            Value::Array(vec![b(b"vni"), b(b"7")]),
            Database::Config,
            "VRF|Vrf7",
            &mut t,
        )
        .unwrap();
        assert_eq!(h.get("vni").map(String::as_str), Some("7"));
        let h = hash(
            Value::Map(vec![(b(b"a"), b(b"1"))]),
            Database::Appl,
            "k",
            &mut t,
        )
        .unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(
            hash(Value::Array(vec![]), Database::Config, "k", &mut t),
            None
        );
        assert_eq!(t.total(), 0);
        // Two bad fields in one entry: the entry is kept, counted once.
        let h = hash(
            Value::Array(vec![
                b(b"description"),
                b(b"caf\xe9"),
                b(b"x\xff"),
                b(b"1"),
                b(b"vlanid"),
                b(b"3900"),
            ]),
            Database::Config,
            "VLAN|Vlan3900",
            &mut t,
        )
        .unwrap();
        assert_eq!(
            h.get("description").map(String::as_str),
            Some("caf\u{fffd}")
        );
        assert_eq!(h.get("x\u{fffd}").map(String::as_str), Some("1"));
        assert_eq!(h.get("vlanid").map(String::as_str), Some("3900"));
        assert_eq!(t.count(Database::Config, Handling::Kept), 1);
        assert_eq!(t.total(), 1);
    }

    #[test]
    fn names_that_are_not_utf8_are_skipped_and_counted_when_watched() {
        let mut t = Undecodable::default();
        let watched = |k: &[u8]| k.starts_with(b"VLAN|");
        assert_eq!(
            key(b(b"VLAN|Vlan1"), Database::Config, watched, &mut t).as_deref(),
            Some("VLAN|Vlan1")
        );
        assert_eq!(
            key(b(b"VLAN|\xff"), Database::Config, watched, &mut t),
            None
        );
        assert_eq!(key(b(b"ACL|\xff"), Database::Config, watched, &mut t), None);
        assert_eq!(t.count(Database::Config, Handling::Skipped), 1);
        assert_eq!(t.total(), 1);
    }

    #[test]
    fn counts_since_an_earlier_tally() {
        let mut a = Undecodable::default();
        a.skipped(Database::Asic, b"k\xff", None);
        let mut b2 = a;
        b2.kept(Database::State, "k", b"f", b"\xff");
        b2.kept(Database::State, "k", b"f", b"\xff");
        let d = b2.since(&a);
        assert_eq!(d.count(Database::State, Handling::Kept), 2);
        assert_eq!(d.count(Database::Asic, Handling::Skipped), 0);
        // A new feed counts from zero: everything it counted is new.
        let fresh = Undecodable::default();
        let mut c = fresh;
        c.kept(Database::Config, "k", b"f", b"\xff");
        assert_eq!(c.since(&b2), c);
    }

    #[test]
    fn the_log_is_bounded() {
        let mut t = Undecodable::default();
        let logged = (0..1000)
            .filter(|_| t.bump(Database::Config, Handling::Kept))
            .count();
        // 1..=10, then 16, 32, 64, 128, 256, 512.
        assert_eq!(logged, 16);
    }
}
