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
//! Bytes SONiC allows but that are not UTF-8 never stop the read: an entry
//! whose name is not UTF-8 is skipped, one with a field name or value that
//! is not UTF-8 is kept with U+FFFD in place of the bad bytes; both are
//! counted and logged escaped ([`reply`](super::reply)).
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
use super::reply::{self, Database, Undecodable, text};
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
    /// Entries with bytes that are not UTF-8 (skipped or kept).
    pub undecodable: Undecodable,
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

/// One step of a `SCAN` or `HSCAN` walk (`cmd`): its reply split into the
/// next cursor (0: the walk is done) and the step's batch, counted.
fn scan_step(
    cmd: &str,
    reply: Value,
    stats: &mut ReadStats,
) -> Result<(u64, Value), ConfigDbError> {
    stats.round_trips += 1;
    stats.scan_steps += 1;
    let Value::Array(mut parts) = reply else {
        return Err(bad_reply(cmd, reply));
    };
    let (Some(batch), Some(next)) = (parts.pop(), parts.pop()) else {
        return Err(bad_reply(cmd, "short reply"));
    };
    let cursor = text(next)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad_reply(cmd, "cursor"))?;
    Ok((cursor, batch))
}

/// Whether a key name is one the agent reads (by its bytes).
pub type Watched<'a> = dyn Fn(&[u8]) -> bool + Sync + 'a;

/// The keys of database `place` (`db`) the agent reads (`watched`), walked
/// with `SCAN` in steps of `count`, sorted; a watched name that is not
/// UTF-8 is left out and counted as skipped.
pub async fn scan_keys(
    conns: &mut [MultiplexedConnection],
    (place, db): (Place, Database),
    watched: &Watched<'_>,
    count: usize,
    stats: &mut ReadStats,
) -> Result<Vec<String>, ConfigDbError> {
    let c = conn(conns, place)?;
    let mut keys = rustc_hash::FxHashSet::default();
    let mut cursor: u64 = 0;
    loop {
        let mut pipe = redis::pipe();
        pipe.cmd("SELECT").arg(place.id).ignore();
        pipe.cmd("SCAN").arg(cursor).arg("COUNT").arg(count.max(1));
        let (reply,): (Value,) = pipe
            .query_async(c)
            .await
            .map_err(redis_err("walking SONiC's databases (SCAN)"))?;
        let (next, batch) = scan_step("SCAN", reply, stats)?;
        cursor = next;
        let Value::Array(batch) = batch else {
            return Err(bad_reply("SCAN", batch));
        };
        for k in batch {
            if let Some(k) = reply::key(k, db, watched, &mut stats.undecodable)
                && watched(k.as_bytes())
            {
                keys.insert(k);
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

/// The values of `keys` in database `place` (`db`), `batch` keys per round
/// trip; absent keys are left out.
async fn read_hashes(
    conns: &mut [MultiplexedConnection],
    (place, db): (Place, Database),
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
                HashRead::All => reply::hash(v, db, k, &mut stats.undecodable),
                HashRead::PortFields => port_fields(v, k, &mut stats.undecodable),
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
fn port_fields(v: Value, key: &str, tally: &mut Undecodable) -> Option<Fields> {
    let Value::Array(values) = v else {
        return None;
    };
    let pairs = PORT_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(name, v)| Some((name.as_bytes().to_vec(), reply::bytes(v)?)));
    Some(reply::fields(pairs, Database::Config, key, tally))
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
        let (next, batch) = scan_step("HSCAN", reply, stats)?;
        cursor = next;
        if let Some(f) = reply::hash(batch, Database::Counters, key, &mut stats.undecodable) {
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
    let (seps, scan) = (places.seps, limits.scan_count);

    // CONFIG_DB: the agent's tables.
    let config_table = |k: &[u8]| Table::ALL.iter().any(|t| reply::in_table(k, t.name(), SEP));
    let config_place = (places.config, Database::Config);
    let keys = scan_keys(conns, config_place, &config_table, scan, &mut stats).await?;
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
    for (k, f) in read_hashes(conns, config_place, &wanted, limits.batch, &mut stats).await? {
        if let Some(key) = Key::parse(&k) {
            config.insert(key, f);
        }
    }

    // STATE_DB: the confirmation tables.
    let state_tables: Vec<&str> = confirms::watched(Db::State).collect();
    let state_table = |k: &[u8]| {
        state_tables
            .iter()
            .any(|t| reply::in_table(k, t, seps.state))
    };
    let state_place = (places.state, Database::State);
    let keys = scan_keys(conns, state_place, &state_table, scan, &mut stats).await?;
    let wanted: Vec<(String, HashRead)> = keys.into_iter().map(|k| (k, HashRead::All)).collect();
    let mut confirmed = Confirmed::new(seps);
    let state = read_hashes(conns, state_place, &wanted, limits.batch, &mut stats).await?;
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
    let appl_place = (places.appl, Database::Appl);
    for (k, f) in read_hashes(conns, appl_place, &wanted, limits.batch, &mut stats).await? {
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
    let readiness = read_readiness(conns, places, &mut stats).await?;
    Ok((View::new(config, confirmed, readiness), stats))
}

/// SONiC's readiness flags: `CONFIG_DB_INITIALIZED` and `PortInitDone`.
async fn read_readiness(
    conns: &mut [MultiplexedConnection],
    places: &Places,
    stats: &mut ReadStats,
) -> Result<Readiness, ConfigDbError> {
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
    readiness.config_db_initialized = reply::string(
        initialized,
        Database::Config,
        CONFIG_DB_INITIALIZED,
        &mut stats.undecodable,
    )
    .unwrap_or_default();
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
    Ok(readiness)
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
        let (next, batch) = scan_step("SCAN", reply, &mut self.stats)?;
        let Value::Array(batch) = batch else {
            return Err(bad_reply("SCAN", batch));
        };
        self.cursor = next;
        self.done = self.cursor == 0;
        let keys: Vec<String> = batch
            .into_iter()
            .filter_map(|k| reply::key(k, Database::Asic, |_| true, &mut self.stats.undecodable))
            .collect();
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
        let undecodable = &mut self.stats.undecodable;
        Ok(keys
            .into_iter()
            .zip(oids)
            .filter_map(|(k, o)| Some((k, reply::bytes(o)?)))
            .filter_map(|(k, o)| match String::from_utf8(o) {
                Ok(o) => Some((k, o)),
                Err(e) => {
                    undecodable.skipped(Database::Asic, k.as_bytes(), Some(e.as_bytes()));
                    None
                }
            })
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
}
