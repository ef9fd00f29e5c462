//! The start-up read: everything the [`View`] holds, read from SONiC's redis
//! in bounded steps (feature `agent`).
//!
//! SONiC's redis is single-threaded and shared with orchagent and syncd; on
//! a leaf APPL_DB holds every route and ASIC_DB every SAI object. A command
//! that walks such a database stops SONiC for as long as the walk takes, so
//! this read never does: every command it sends costs a bounded amount of
//! work, and what it reads grows with what the agent works on, not with the
//! routes.
//!
//! - CONFIG_DB and STATE_DB (configuration and per-interface state, no
//!   routes): one `SCAN` walk per database in steps of [`ReadLimits::scan_count`]
//!   keys, the agent's tables picked from the names, then `HGETALL` (PORT:
//!   `HMGET` of the fields the agent uses) of those keys, pipelined
//!   [`ReadLimits::batch`] keys per round trip.
//! - APPL_DB: never walked. Its entries in the agent's domain exist only for
//!   CONFIG_DB entries (vrfmgrd and vxlanmgrd write them from CONFIG_DB) or
//!   as deletions SONiC has not finished; [`appl_keys`] derives every key
//!   either can be from CONFIG_DB and STATE_DB, and only those are read.
//!   A key not derived is taken as absent; the feed, subscribed before this
//!   read, learns every later change of the tables from notifications.
//! - COUNTERS_DB: the two name maps with `HSCAN` in steps.
//! - ASIC_DB: not read here. Its bridge ports can only be found by walking
//!   ASIC_DB (no index by object type exists), so the feed lists them after
//!   the start-up read in bounded steps ([`BridgePortListing`]); until it is
//!   done, a barrier that asks whether a port still has a bridge port waits.
//! - Readiness: `GET CONFIG_DB_INITIALIZED`, `EXISTS PORT_TABLE:PortInitDone`.
//!
//! Bytes SONiC allows but that are not UTF-8 never stop the read: a key
//! whose name is not UTF-8 is skipped and counted (no table of the agent has
//! such keys), a field name or value is read with U+FFFD in place of the bad
//! bytes and counted (foreign entries are kept as they are; an owned value
//! then differs from the target and is written again).
//!
//! Consistency: the feed subscribes to every key it reads before this read
//! starts, and applies the notifications that arrived meanwhile after it;
//! each carries (or makes the feed re-read) the key's current value, so the
//! view ends equal to a full read taken after the last of them.

use redis::Value;
use redis::aio::MultiplexedConnection;

use super::confirmed::{Confirmed, Separators};
use super::confirms::{self, BRIDGE_PORT_FIELD, Db, PORT_NAME_MAP, RIF_NAME_MAP};
use super::connection::ConfigDbError;
use super::schema::{DbState, Fields, Key, PORT_FIELDS, SEP, Table};
use super::view::{CONFIG_DB_INITIALIZED, Readiness, View};
use crate::spec::vni_of_vrf_name;

/// How big one step of the read may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// `COUNT` of one `SCAN` / `HSCAN` step: the keys redis visits for it.
    pub scan_count: usize,
    /// Commands per pipelined round trip (each one cheap on its own).
    pub batch: usize,
}

impl Default for ReadLimits {
    /// Steps that cost redis well under a millisecond each on a busy,
    /// slow machine: a `SCAN` step costs redis about a microsecond per key
    /// it visits, many times that when other work thrashes the CPU's
    /// caches (docs/performance.md, "Never block SONiC").
    fn default() -> Self {
        ReadLimits {
            scan_count: 25,
            batch: 500,
        }
    }
}

/// A database: the index of its instance's connection, and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub conn: usize,
    pub id: i64,
}

/// Where the databases the start-up read looks at are.
#[derive(Debug, Clone)]
pub struct Places {
    pub config: Place,
    pub state: Place,
    pub appl: Place,
    pub counters: Option<Place>,
    /// Whether ASIC_DB is configured (its bridge ports are then listed
    /// after this read).
    pub asic: bool,
    pub seps: Separators,
    /// `PORT_TABLE<sep>PortInitDone` in APPL_DB.
    pub port_init_key: String,
}

/// What the read cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub round_trips: u64,
    /// `SCAN` / `HSCAN` steps.
    pub scan_steps: u64,
    /// Keys whose value was read.
    pub keys_read: u64,
    /// Keys skipped because their name is not UTF-8.
    pub skipped: u64,
    /// Field names and values that are not UTF-8 (read with U+FFFD).
    pub lossy: u64,
}

fn redis_err(what: &str) -> impl FnOnce(redis::RedisError) -> ConfigDbError + '_ {
    move |source| ConfigDbError::Redis {
        what: what.to_owned(),
        source,
    }
}

fn bad_reply(what: &str, reply: impl std::fmt::Debug) -> ConfigDbError {
    ConfigDbError::Reply {
        what: what.to_owned(),
        reply: format!("{reply:?}"),
    }
}

fn conn(
    conns: &mut [MultiplexedConnection],
    place: Place,
) -> Result<&mut MultiplexedConnection, ConfigDbError> {
    conns
        .get_mut(place.conn)
        .ok_or_else(|| bad_reply("connections", place.conn))
}

/// A reply as text; `None` for nil or bytes that are not UTF-8.
pub(crate) fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A field name or value as text: bytes that are not UTF-8 become U+FFFD
/// (`lossy` counts them). An owned value read this way differs from what
/// the agent wants and is written again; a foreign one is kept as it is in
/// redis, untouched.
fn text_lossy(v: Value, lossy: &mut u64) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => {
                *lossy += 1;
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        }),
        v => text(v),
    }
}

/// A hash reply (`HGETALL`, RESP2 array or RESP3 map); `None` when the hash
/// does not exist (or the reply is not a hash).
pub(crate) fn hash(v: Value, lossy: &mut u64) -> Option<Fields> {
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
    let mut f = Fields::new();
    for (k, v) in pairs {
        if let (Some(k), Some(v)) = (text_lossy(k, lossy), text_lossy(v, lossy)) {
            f.insert(k, v);
        }
    }
    (!f.is_empty()).then_some(f)
}

/// Every key of database `place`, walked with `SCAN` in steps of `count`;
/// names that are not UTF-8 are counted in `stats.skipped`.
pub async fn scan_keys(
    conns: &mut [MultiplexedConnection],
    place: Place,
    pattern: Option<&str>,
    count: usize,
    stats: &mut ReadStats,
) -> Result<Vec<String>, ConfigDbError> {
    let c = conn(conns, place)?;
    let mut keys = rustc_hash::FxHashSet::default();
    let mut cursor: u64 = 0;
    loop {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(place.id).ignore();
        let scan = pipe.cmd("SCAN").arg(cursor);
        if let Some(p) = pattern {
            scan.arg("MATCH").arg(p);
        }
        scan.arg("COUNT").arg(count.max(1));
        let (reply,): (Value,) = pipe
            .query_async(c)
            .await
            .map_err(redis_err("walking SONiC's databases (SCAN)"))?;
        stats.round_trips += 1;
        stats.scan_steps += 1;
        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("SCAN", reply));
        };
        let (Some(batch), Some(next)) = (parts.pop(), parts.pop()) else {
            return Err(bad_reply("SCAN", "short reply"));
        };
        cursor = text(next)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_reply("SCAN", "cursor"))?;
        let Value::Array(batch) = batch else {
            return Err(bad_reply("SCAN", batch));
        };
        for k in batch {
            match text(k) {
                Some(k) => {
                    keys.insert(k);
                }
                None => stats.skipped += 1,
            }
        }
        if cursor == 0 {
            break;
        }
    }
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort_unstable();
    Ok(keys)
}

/// How a key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashRead {
    All,
    /// `HMGET` of [`PORT_FIELDS`].
    PortFields,
}

/// The values of `keys` in database `place`, `batch` keys per round trip;
/// absent keys are left out, undecodable ones counted as skipped.
async fn read_hashes(
    conns: &mut [MultiplexedConnection],
    place: Place,
    keys: &[(String, HashRead)],
    batch: usize,
    stats: &mut ReadStats,
) -> Result<Vec<(String, Fields)>, ConfigDbError> {
    let c = conn(conns, place)?;
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(batch.max(1)) {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(place.id).ignore();
        for (k, how) in chunk {
            match how {
                HashRead::All => pipe.cmd("HGETALL").arg(k),
                HashRead::PortFields => pipe.cmd("HMGET").arg(k).arg(&PORT_FIELDS[..]),
            };
        }
        let replies: Vec<Value> = pipe
            .query_async(c)
            .await
            .map_err(redis_err("reading SONiC's databases"))?;
        stats.round_trips += 1;
        stats.keys_read += chunk.len() as u64;
        for ((k, how), v) in chunk.iter().zip(replies) {
            let fields = match how {
                HashRead::All => hash(v, &mut stats.lossy),
                HashRead::PortFields => port_fields(v, &mut stats.lossy),
            };
            if let Some(f) = fields {
                out.push((k.clone(), f));
            }
        }
    }
    Ok(out)
}

/// An `HMGET` of [`PORT_FIELDS`]: the fields that exist (a PORT entry
/// without any of them still exists).
fn port_fields(v: Value, lossy: &mut u64) -> Option<Fields> {
    let Value::Array(values) = v else {
        return None;
    };
    let mut f = Fields::new();
    for (name, v) in PORT_FIELDS.iter().zip(values) {
        if let Some(v) = text_lossy(v, lossy) {
            f.insert((*name).to_owned(), v);
        }
    }
    Some(f)
}

/// A whole hash, read with `HSCAN` in steps of `count`; `None` when it does
/// not exist.
async fn scan_hash(
    conns: &mut [MultiplexedConnection],
    place: Place,
    key: &str,
    count: usize,
    stats: &mut ReadStats,
) -> Result<Option<Fields>, ConfigDbError> {
    let c = conn(conns, place)?;
    let mut fields = Fields::new();
    let mut cursor: u64 = 0;
    loop {
        let (reply,): (Value,) = redis::pipe()
            .cmd("SELECT")
            .arg(place.id)
            .ignore()
            .cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(c)
            .await
            .map_err(redis_err("reading SONiC's databases (HSCAN)"))?;
        stats.round_trips += 1;
        stats.scan_steps += 1;
        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("HSCAN", reply));
        };
        let (Some(batch), Some(next)) = (parts.pop(), parts.pop()) else {
            return Err(bad_reply("HSCAN", "short reply"));
        };
        cursor = text(next)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_reply("HSCAN", "cursor"))?;
        if let Some(f) = hash(batch, &mut stats.lossy) {
            fields.extend(f);
        }
        if cursor == 0 {
            break;
        }
    }
    stats.keys_read += 1;
    Ok((!fields.is_empty()).then_some(fields))
}

/// The APPL_DB keys (in APPL_DB's separator `sep`) where confirmations of
/// the agent's entries can be: `VRF_TABLE` of every VRF CONFIG_DB or
/// STATE_DB names, `VXLAN_TUNNEL_MAP_TABLE` of every map CONFIG_DB holds,
/// and the map of every VLAN interface CONFIG_DB still binds to a VRF with
/// a VNI (`map_<vni>_<vlan>` on every VXLAN tunnel): a map whose deletion
/// SONiC has not finished yet (the agent removes a VLAN's interface only
/// after its map's deletion was confirmed). Sorted, without duplicates.
pub fn appl_keys<'a>(
    config: &DbState,
    state_vrfs: impl IntoIterator<Item = &'a str>,
    sep: char,
) -> Vec<String> {
    let key = |table: &str, name: &str| -> String {
        let mut k = String::with_capacity(table.len() + name.len() + 1);
        k.push_str(table);
        k.push(sep);
        k.extend(name.chars().map(|c| if c == SEP { sep } else { c }));
        k
    };
    let mut keys: Vec<String> = Vec::new();
    for (name, _) in config.table(Table::Vrf) {
        keys.push(key("VRF_TABLE", name));
    }
    for name in state_vrfs {
        keys.push(key("VRF_TABLE", name));
    }
    for (name, _) in config.table(Table::VxlanTunnelMap) {
        keys.push(key("VXLAN_TUNNEL_MAP_TABLE", name));
    }
    let tunnels: Vec<&str> = config.table(Table::VxlanTunnel).map(|(n, _)| n).collect();
    for (vlan, f) in config.table(Table::VlanInterface) {
        if vlan.contains(SEP) {
            continue;
        }
        let Some(vni) = f.get("vrf_name").and_then(|v| vni_of_vrf_name(v.as_str())) else {
            continue;
        };
        for t in &tunnels {
            keys.push(key(
                "VXLAN_TUNNEL_MAP_TABLE",
                &format!("{t}{SEP}map_{vni}_{vlan}"),
            ));
        }
    }
    debug_assert!(keys.iter().all(|k| {
        k.split_once(sep)
            .is_some_and(|(t, _)| confirms::watched(Db::Appl).any(|w| w == t))
    }));
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Read everything the view holds (the feed subscribed beforehand). The
/// ASIC bridge ports are left to [`BridgePortListing`]: the view says they
/// are not listed yet when ASIC_DB is configured.
pub async fn read(
    conns: &mut [MultiplexedConnection],
    places: &Places,
    limits: ReadLimits,
) -> Result<(View, ReadStats), ConfigDbError> {
    let mut stats = ReadStats::default();
    let seps = places.seps;

    // CONFIG_DB: the agent's tables.
    let keys = scan_keys(conns, places.config, None, limits.scan_count, &mut stats).await?;
    let wanted: Vec<(String, HashRead)> = keys
        .into_iter()
        .filter_map(|k| {
            let how = match Key::parse(&k)?.table {
                Table::Port => HashRead::PortFields,
                _ => HashRead::All,
            };
            Some((k, how))
        })
        .collect();
    let mut config = DbState::new();
    for (k, f) in read_hashes(conns, places.config, &wanted, limits.batch, &mut stats).await? {
        if let Some(key) = Key::parse(&k) {
            config.insert(key, f);
        }
    }

    // STATE_DB: the confirmation tables.
    let keys = scan_keys(conns, places.state, None, limits.scan_count, &mut stats).await?;
    let state_tables: Vec<&str> = confirms::watched(Db::State).collect();
    let wanted: Vec<(String, HashRead)> = keys
        .into_iter()
        .filter(|k| {
            k.split_once(seps.state)
                .is_some_and(|(t, _)| state_tables.contains(&t))
        })
        .map(|k| (k, HashRead::All))
        .collect();
    let mut confirmed = Confirmed::new(seps);
    let state = read_hashes(conns, places.state, &wanted, limits.batch, &mut stats).await?;
    let vrf_prefix = format!("VRF_TABLE{}", seps.state);
    let state_vrfs: Vec<String> = state
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(&vrf_prefix).map(str::to_owned))
        .collect();
    for (k, f) in state {
        confirmed.set(Db::State, &k, Some(f));
    }

    // APPL_DB: only the keys derived from CONFIG_DB and STATE_DB.
    let wanted: Vec<(String, HashRead)> =
        appl_keys(&config, state_vrfs.iter().map(String::as_str), seps.appl)
            .into_iter()
            .map(|k| (k, HashRead::All))
            .collect();
    for (k, f) in read_hashes(conns, places.appl, &wanted, limits.batch, &mut stats).await? {
        confirmed.set(Db::Appl, &k, Some(f));
    }

    // COUNTERS_DB: the name maps.
    if let Some(counters) = places.counters {
        for map in [RIF_NAME_MAP, PORT_NAME_MAP] {
            let f = scan_hash(conns, counters, map, limits.scan_count, &mut stats).await?;
            confirmed.set(Db::Counters, map, Some(f.unwrap_or_default()));
        }
    }
    if places.asic {
        confirmed.set_bridge_ports_listed(false);
    }

    // Readiness (after the tables: a `config reload` that finished while
    // they were read is seen here, and its notifications follow).
    let mut readiness = Readiness::default();
    let (initialized,): (Value,) = redis::pipe()
        .cmd("SELECT")
        .arg(places.config.id)
        .ignore()
        .cmd("GET")
        .arg(CONFIG_DB_INITIALIZED)
        .query_async(conn(conns, places.config)?)
        .await
        .map_err(redis_err("reading CONFIG_DB_INITIALIZED"))?;
    readiness.config_db_initialized = text(initialized).unwrap_or_default();
    let (port_init,): (i64,) = redis::pipe()
        .cmd("SELECT")
        .arg(places.appl.id)
        .ignore()
        .cmd("EXISTS")
        .arg(&places.port_init_key)
        .query_async(conn(conns, places.appl)?)
        .await
        .map_err(redis_err("reading PortInitDone"))?;
    readiness.port_init_done = port_init == 1;
    stats.round_trips += 2;
    Ok((View::new(config, confirmed, readiness), stats))
}

/// Listing ASIC_DB's bridge ports, one bounded step at a time: `SCAN MATCH
/// ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:*` in steps of
/// [`ReadLimits::scan_count`] keys, then `HGET` of the port each found one
/// bridges. ASIC_DB has no index by object type, so the whole listing walks
/// every SAI object; it runs after the start-up read, between the feed's
/// other work, and only barriers about bridge ports wait for it.
#[derive(Debug, Clone)]
pub struct BridgePortListing {
    place: Place,
    pattern: String,
    cursor: u64,
    count: usize,
    done: bool,
    pub stats: ReadStats,
}

impl BridgePortListing {
    pub fn new(place: Place, seps: Separators, limits: ReadLimits) -> BridgePortListing {
        BridgePortListing {
            place,
            pattern: format!("{}*", seps.bridge_port_prefix()),
            cursor: 0,
            count: limits.scan_count,
            done: false,
            stats: ReadStats::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One step: the bridge ports it found and the port OID each bridges.
    pub async fn step(
        &mut self,
        conns: &mut [MultiplexedConnection],
    ) -> Result<Vec<(String, String)>, ConfigDbError> {
        if self.done {
            return Ok(Vec::new());
        }
        let c = conn(conns, self.place)?;
        let (reply,): (Value,) = redis::pipe()
            .cmd("SELECT")
            .arg(self.place.id)
            .ignore()
            .cmd("SCAN")
            .arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(self.count.max(1))
            .query_async(c)
            .await
            .map_err(redis_err("listing ASIC_DB bridge ports"))?;
        self.stats.round_trips += 1;
        self.stats.scan_steps += 1;
        let Value::Array(mut parts) = reply else {
            return Err(bad_reply("SCAN", reply));
        };
        let (Some(Value::Array(batch)), Some(next)) = (parts.pop(), parts.pop()) else {
            return Err(bad_reply("SCAN", "short reply"));
        };
        self.cursor = text(next)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad_reply("SCAN", "cursor"))?;
        self.done = self.cursor == 0;
        let keys: Vec<String> = batch.into_iter().filter_map(text).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(self.place.id).ignore();
        for k in &keys {
            pipe.cmd("HGET").arg(k).arg(BRIDGE_PORT_FIELD);
        }
        let oids: Vec<Value> = pipe
            .query_async(c)
            .await
            .map_err(redis_err("listing ASIC_DB bridge ports"))?;
        self.stats.round_trips += 1;
        self.stats.keys_read += keys.len() as u64;
        // A bridge port deleted between SCAN and HGET is gone (nil).
        Ok(keys
            .into_iter()
            .zip(oids)
            .filter_map(|(k, o)| Some((k, text(o)?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn fields<const N: usize>(pairs: [(&str, &str); N]) -> Fields {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn appl_keys_follow_config_db_and_state_db() {
        let mut c = DbState::new();
        c.insert(Key::vrf("Vrf104009"), fields([("vni", "104009")]));
        c.insert(
            Key::new(Table::VxlanTunnel, "vtep"),
            fields([("src_ip", "10.0.0.11")]),
        );
        c.insert(
            Key::new(Table::VxlanTunnelMap, "vtep|map_104009_Vlan1001"),
            fields([("vlan", "Vlan1001"), ("vni", "104009")]),
        );
        // Vlan1002's map was removed from CONFIG_DB, its interface still
        // binds the VRF: the map's APPL_DB entry may still be there.
        c.insert(
            Key::new(Table::VlanInterface, "Vlan1002"),
            fields([("vrf_name", "Vrf104010")]),
        );
        c.insert(
            Key::new(Table::VlanInterface, "Vlan1002|10.0.0.1/24"),
            fields([("NULL", "NULL")]),
        );
        // An operator's VLAN interface in the default VRF: no map.
        c.insert(
            Key::new(Table::VlanInterface, "Vlan3900"),
            fields([("NULL", "NULL")]),
        );
        let keys = appl_keys(&c, ["Vrf104011"], ':');
        assert_eq!(
            keys,
            [
                "VRF_TABLE:Vrf104009",
                "VRF_TABLE:Vrf104011",
                "VXLAN_TUNNEL_MAP_TABLE:vtep:map_104009_Vlan1001",
                "VXLAN_TUNNEL_MAP_TABLE:vtep:map_104010_Vlan1002",
            ]
        );
        // Another separator (a flavour's database_config.json).
        let keys = appl_keys(&c, [], '|');
        assert!(keys.contains(&"VXLAN_TUNNEL_MAP_TABLE|vtep|map_104009_Vlan1001".to_owned()));
    }

    #[test]
    fn hash_replies_of_both_protocols_and_bad_bytes() {
        let b = |s: &[u8]| Value::BulkString(s.to_vec());
        let mut lossy = 0;
        let h = hash(Value::Array(vec![b(b"vni"), b(b"7")]), &mut lossy).unwrap();
        assert_eq!(h.get("vni").map(String::as_str), Some("7"));
        let h = hash(Value::Map(vec![(b(b"a"), b(b"1"))]), &mut lossy).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(hash(Value::Array(vec![]), &mut lossy), None);
        assert_eq!(lossy, 0);
        let h = hash(
            Value::Array(vec![b(b"description"), b(b"caf\xe9")]),
            &mut lossy,
        )
        .unwrap();
        assert_eq!(
            h.get("description").map(String::as_str),
            Some("caf\u{fffd}")
        );
        assert_eq!(lossy, 1);
    }
}
