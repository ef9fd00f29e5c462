//! A switch-sized redis: what SONiC's own daemons keep in APPL_DB, ASIC_DB
//! and COUNTERS_DB on a leaf that carries many routes, next to the
//! configuration the agent works on.
//!
//! On a real leaf the redis the agent shares with SONiC is dominated by
//! routing state, not by configuration: fpmsyncd writes every route FRR
//! installs into APPL_DB, orchagent turns each into SAI objects that syncd
//! keeps in ASIC_DB, and the counters of every port live in COUNTERS_DB.
//! [`fill`] writes that state with SONiC's own key and field shapes, so that
//! benchmarks and tests see a redis where a command that walks a database
//! (`KEYS`, a Lua walk, an unbounded `SCAN`) costs what it costs on a switch.
//!
//! Shapes, from the sources in `/work/shared/vendor/sonic/` (202411):
//!
//! - APPL_DB `ROUTE_TABLE:<prefix>` and `ROUTE_TABLE:<vrf>:<prefix>`
//!   (`sonic-swss/fpmsyncd/routesync.cpp`, `onRouteMsg`: the VRF name and
//!   `:` before the prefix; fields `protocol`, `nexthop`, `ifname`, comma
//!   lists, `weight` only for weighted ECMP; `onEvpnRouteMsg`: `nexthop`
//!   (the remote VTEPs), `ifname`, `vni_label`, `router_mac`, `protocol` for
//!   EVPN type-5 routes of a tenant VRF). fpmsyncd writes through a
//!   `ProducerStateTable`; once orchagent popped a key
//!   (`sonic-swss-common/common/consumer_state_table_pops.lua`) it is a
//!   plain hash under `ROUTE_TABLE:`, which is what a running switch holds.
//! - APPL_DB `NEIGH_TABLE:<ifname>:<ip>` with `neigh` (the MAC) and
//!   `family` (`sonic-swss/neighsyncd/neighsync.cpp`, `onMsg`).
//! - ASIC_DB `ASIC_STATE:<object type>:<key>` as sairedis stores it
//!   (`sonic-sairedis/syncd/RedisClient.cpp`): route entries keyed by
//!   `{"dest","switch_id","vr"}` with `SAI_ROUTE_ENTRY_ATTR_NEXT_HOP_ID`
//!   (`sonic-swss/orchagent/routeorch.cpp`); next hops `oid:…` with
//!   `SAI_NEXT_HOP_ATTR_TYPE`, `_IP`, `_ROUTER_INTERFACE_ID`
//!   (`orchagent/neighorch.cpp`, `addNextHop`); neighbours keyed by
//!   `{"ip","rif","switch_id"}` with `SAI_NEIGHBOR_ENTRY_ATTR_DST_MAC_ADDRESS`;
//!   FDB entries keyed by `{"bvid","mac","switch_id"}` with
//!   `SAI_FDB_ENTRY_ATTR_TYPE` and `SAI_FDB_ENTRY_ATTR_BRIDGE_PORT_ID`
//!   (`orchagent/fdborch.cpp`, `addFdbEntry`). JSON keys are sorted and
//!   serialised as `sonic-sairedis/meta/SaiSerialize.cpp` does (examples in
//!   `sonic-sairedis/tests/BCM56850/full.rec`). Object ids carry the object
//!   type in bits 48–55 (`sonic-sairedis/lib/VirtualObjectIdManager.cpp`);
//!   syncd's `VIDTORID` / `RIDTOVID` hashes map every object id.
//! - COUNTERS_DB `COUNTERS:<port oid>` with orchagent's port counters
//!   (`sonic-swss/orchagent/portsorch.cpp`, `port_stat_ids`), for the port
//!   oids of `COUNTERS_PORT_NAME_MAP` as [`crate::seed`] writes them.
//!
//! Sizes: `routes` APPL_DB routes (a fifth in the default VRF over the
//! spine uplinks, the rest EVPN type-5 routes spread over the tenant VRFs)
//! and `asic_keys` ASIC_DB keys: one route entry per route, the rest a
//! quarter neighbours, a quarter next hops and half FDB entries.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::redis_server::{APPL_DB, ASIC_DB, COUNTERS_DB, RedisServer};

/// How big a switch to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchSize {
    /// Routes in APPL_DB `ROUTE_TABLE` (and route entries in ASIC_DB).
    pub routes: usize,
    /// Keys in ASIC_DB (route entries, neighbours, next hops, FDB entries).
    pub asic_keys: usize,
    /// Tenant VRFs the EVPN routes are spread over (`Vrf<vni>`, the VNIs of
    /// [`crate::generate::vni`]).
    pub vrfs: usize,
}

impl Default for SwitchSize {
    fn default() -> Self {
        SwitchSize {
            routes: 100_000,
            asic_keys: 300_000,
            vrfs: 16,
        }
    }
}

impl SwitchSize {
    /// `routes` routes and three ASIC_DB keys per route (the default ratio).
    pub fn with_routes(routes: usize) -> SwitchSize {
        SwitchSize {
            routes,
            asic_keys: 3 * routes,
            ..SwitchSize::default()
        }
    }
}

/// What [`fill`] wrote, per database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    pub appl_keys: usize,
    pub asic_keys: usize,
    pub counters_keys: usize,
}

/// orchagent's port counters (`sonic-swss/orchagent/portsorch.cpp`,
/// `port_stat_ids`, 202411).
pub const PORT_STATS: &[&str] = &[
    "SAI_PORT_STAT_IF_IN_OCTETS",
    "SAI_PORT_STAT_IF_IN_UCAST_PKTS",
    "SAI_PORT_STAT_IF_IN_NON_UCAST_PKTS",
    "SAI_PORT_STAT_IF_IN_DISCARDS",
    "SAI_PORT_STAT_IF_IN_ERRORS",
    "SAI_PORT_STAT_IF_IN_UNKNOWN_PROTOS",
    "SAI_PORT_STAT_IF_OUT_OCTETS",
    "SAI_PORT_STAT_IF_OUT_UCAST_PKTS",
    "SAI_PORT_STAT_IF_OUT_NON_UCAST_PKTS",
    "SAI_PORT_STAT_IF_OUT_DISCARDS",
    "SAI_PORT_STAT_IF_OUT_ERRORS",
    "SAI_PORT_STAT_IF_OUT_QLEN",
    "SAI_PORT_STAT_IF_IN_MULTICAST_PKTS",
    "SAI_PORT_STAT_IF_IN_BROADCAST_PKTS",
    "SAI_PORT_STAT_IF_OUT_MULTICAST_PKTS",
    "SAI_PORT_STAT_IF_OUT_BROADCAST_PKTS",
    "SAI_PORT_STAT_ETHER_RX_OVERSIZE_PKTS",
    "SAI_PORT_STAT_ETHER_TX_OVERSIZE_PKTS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_64_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_65_TO_127_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_128_TO_255_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_256_TO_511_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_512_TO_1023_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_1024_TO_1518_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_1519_TO_2047_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_2048_TO_4095_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_4096_TO_9216_OCTETS",
    "SAI_PORT_STAT_ETHER_IN_PKTS_9217_TO_16383_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_64_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_65_TO_127_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_128_TO_255_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_256_TO_511_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_512_TO_1023_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_1024_TO_1518_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_1519_TO_2047_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_2048_TO_4095_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_4096_TO_9216_OCTETS",
    "SAI_PORT_STAT_ETHER_OUT_PKTS_9217_TO_16383_OCTETS",
    "SAI_PORT_STAT_PFC_0_TX_PKTS",
    "SAI_PORT_STAT_PFC_1_TX_PKTS",
    "SAI_PORT_STAT_PFC_2_TX_PKTS",
    "SAI_PORT_STAT_PFC_3_TX_PKTS",
    "SAI_PORT_STAT_PFC_4_TX_PKTS",
    "SAI_PORT_STAT_PFC_5_TX_PKTS",
    "SAI_PORT_STAT_PFC_6_TX_PKTS",
    "SAI_PORT_STAT_PFC_7_TX_PKTS",
    "SAI_PORT_STAT_PFC_0_RX_PKTS",
    "SAI_PORT_STAT_PFC_1_RX_PKTS",
    "SAI_PORT_STAT_PFC_2_RX_PKTS",
    "SAI_PORT_STAT_PFC_3_RX_PKTS",
    "SAI_PORT_STAT_PFC_4_RX_PKTS",
    "SAI_PORT_STAT_PFC_5_RX_PKTS",
    "SAI_PORT_STAT_PFC_6_RX_PKTS",
    "SAI_PORT_STAT_PFC_7_RX_PKTS",
    "SAI_PORT_STAT_PAUSE_RX_PKTS",
    "SAI_PORT_STAT_PAUSE_TX_PKTS",
    "SAI_PORT_STAT_ETHER_STATS_TX_NO_ERRORS",
    "SAI_PORT_STAT_IP_IN_UCAST_PKTS",
    "SAI_PORT_STAT_ETHER_STATS_JABBERS",
    "SAI_PORT_STAT_ETHER_STATS_FRAGMENTS",
    "SAI_PORT_STAT_ETHER_STATS_UNDERSIZE_PKTS",
    "SAI_PORT_STAT_IP_IN_RECEIVES",
    "SAI_PORT_STAT_IF_IN_FEC_CORRECTABLE_FRAMES",
    "SAI_PORT_STAT_IF_IN_FEC_NOT_CORRECTABLE_FRAMES",
    "SAI_PORT_STAT_IF_IN_FEC_SYMBOL_ERRORS",
];

/// syncd's switch object (`SAI_OBJECT_TYPE_SWITCH`, 0x21).
const SWITCH_OID: &str = "oid:0x21000000000000";
/// Object types (SAI's `sai_object_type_t`) used in object ids.
const OT_VIRTUAL_ROUTER: u64 = 0x03;
const OT_NEXT_HOP: u64 = 0x04;
const OT_ROUTER_INTERFACE: u64 = 0x06;
const OT_VLAN: u64 = 0x26;
const OT_BRIDGE_PORT: u64 = 0x3a;

/// A virtual object id as sairedis makes them: the type in bits 48–55, the
/// index below (`VirtualObjectIdManager::constructObjectId`, switch index 0,
/// global context 0). Indexes start high so that they never meet the ids
/// the SONiC stand-in gives out.
fn oid(object_type: u64, index: usize) -> String {
    format!(
        "oid:0x{:x}",
        (object_type << 48) | (0x8000_0000 + index as u64)
    )
}

/// The `i`th IPv4 host of a /8 (`10.x.y.z` from 1).
fn host(first: u8, i: usize) -> String {
    let n = i + 1;
    format!(
        "{first}.{}.{}.{}",
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// A MAC as `sai_serialize_mac` writes it (upper case, colons).
fn mac(i: usize) -> String {
    let b = (i as u64).to_be_bytes();
    format!("52:54:{:02X}:{:02X}:{:02X}:{:02X}", b[4], b[5], b[6], b[7])
}

/// Writes commands in pipelines of bounded size, one per database.
struct Loader {
    conns: Vec<(i64, redis::Connection, redis::Pipeline, usize)>,
}

impl Loader {
    const BATCH: usize = 5_000;

    fn new(server: &RedisServer) -> Result<Loader> {
        let mut conns = Vec::new();
        for db in [APPL_DB, ASIC_DB, COUNTERS_DB] {
            conns.push((db, server.connection(db)?, redis::pipe(), 0));
        }
        Ok(Loader { conns })
    }

    fn hset(&mut self, db: i64, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        let Some((_, conn, pipe, queued)) = self.conns.iter_mut().find(|c| c.0 == db) else {
            anyhow::bail!("no connection to database {db}");
        };
        pipe.cmd("HSET").arg(key).arg(fields).ignore();
        *queued += 1;
        if *queued >= Self::BATCH {
            Self::flush_one(conn, pipe, queued)?;
        }
        Ok(())
    }

    fn flush_one(
        conn: &mut redis::Connection,
        pipe: &mut redis::Pipeline,
        queued: &mut usize,
    ) -> Result<()> {
        if *queued > 0 {
            pipe.query::<()>(conn)
                .context("filling the switch-sized redis")?;
            pipe.clear();
            *queued = 0;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for (_, conn, pipe, queued) in &mut self.conns {
            Self::flush_one(conn, pipe, queued)?;
        }
        Ok(())
    }
}

/// Fill APPL_DB, ASIC_DB and COUNTERS_DB of `server` with a switch of
/// `size` whose ports are `ports` ([`generate`]). Run it before anything
/// subscribes to the keyspace (it is a bulk load, not a model of SONiC's
/// pace).
pub fn fill(server: &RedisServer, size: &SwitchSize, ports: &[String]) -> Result<Filled> {
    let mut loader = Loader::new(server)?;
    let filled = generate(size, ports, &mut |db, key, fields| {
        loader.hset(db, key, fields)
    })?;
    loader.flush()?;
    Ok(filled)
}

/// Where [`generate`] hands each entry: database, key, fields.
pub type Emit<'a> = dyn FnMut(i64, &str, &[(&str, &str)]) -> Result<()> + 'a;

/// Every entry of a switch of `size` whose ports are `ports`, handed to
/// `emit(database, key, fields)`: routes and neighbours (APPL_DB), their
/// SAI objects and syncd's id maps (ASIC_DB), every port's counters
/// (COUNTERS_DB, for the port oids of `COUNTERS_PORT_NAME_MAP` as
/// [`crate::seed::seed_switch`] assigns them: the `i`th port is
/// `oid:0x10000000{i+1:05x}`).
pub fn generate(size: &SwitchSize, ports: &[String], emit: &mut Emit<'_>) -> Result<Filled> {
    let mut filled = Filled::default();
    let uplinks: Vec<&String> = ports.iter().rev().take(2).collect();
    let vrf_names: Vec<String> = (0..size.vrfs.max(1))
        .map(|k| format!("Vrf{}", crate::generate::vni(k)))
        .collect();
    let default_routes = size.routes / 5;
    let neighbours = size.asic_keys.saturating_sub(size.routes) / 4;
    let next_hops = neighbours;
    let fdb = size
        .asic_keys
        .saturating_sub(size.routes + neighbours + next_hops);

    // APPL_DB: routes as fpmsyncd writes them, neighbours as neighsyncd does.
    let ifnames = uplinks
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    for i in 0..size.routes {
        if i < default_routes {
            let key = format!("ROUTE_TABLE:{}/32", host(10, i));
            emit(
                APPL_DB,
                &key,
                &[
                    ("protocol", "bgp"),
                    ("nexthop", "fe80::1,fe80::2"),
                    ("ifname", &ifnames),
                ],
            )?;
        } else {
            let k = i % vrf_names.len();
            let vni = crate::generate::vni(k).to_string();
            let key = format!("ROUTE_TABLE:{}:{}/32", vrf_names[k], host(20, i));
            emit(
                APPL_DB,
                &key,
                &[
                    ("nexthop", "10.0.0.21,10.0.0.22"),
                    ("ifname", "Vlan3901,Vlan3901"),
                    ("vni_label", &format!("{vni},{vni}")),
                    ("router_mac", "52:54:00:aa:00:21,52:54:00:aa:00:22"),
                    ("protocol", "bgp"),
                ],
            )?;
        }
        filled.appl_keys += 1;
    }
    for i in 0..neighbours {
        let key = format!("NEIGH_TABLE:Vlan{}:{}", 1001 + i % 1000, host(30, i));
        emit(APPL_DB, &key, &[("neigh", &mac(i)), ("family", "IPv4")])?;
        filled.appl_keys += 1;
    }

    // ASIC_DB: the SAI objects orchagent created for them.
    let default_vr = oid(OT_VIRTUAL_ROUTER, 0);
    let vrs: Vec<String> = (0..vrf_names.len())
        .map(|k| oid(OT_VIRTUAL_ROUTER, k + 1))
        .collect();
    let rif = |i: usize| oid(OT_ROUTER_INTERFACE, i % 1000);
    let nh = |i: usize| oid(OT_NEXT_HOP, i);
    let mut vid_to_rid: Vec<(String, String)> = Vec::new();
    for i in 0..size.routes {
        let (vr, dest) = if i < default_routes {
            (&default_vr, host(10, i))
        } else {
            (&vrs[i % vrs.len()], host(20, i))
        };
        let key = format!(
            "ASIC_STATE:SAI_OBJECT_TYPE_ROUTE_ENTRY:{{\"dest\":\"{dest}/32\",\"switch_id\":\"{SWITCH_OID}\",\"vr\":\"{vr}\"}}"
        );
        let next = nh(i % next_hops.max(1));
        emit(
            ASIC_DB,
            &key,
            &[("SAI_ROUTE_ENTRY_ATTR_NEXT_HOP_ID", &next)],
        )?;
        filled.asic_keys += 1;
    }
    for i in 0..neighbours {
        let ip = host(30, i);
        let key = format!(
            "ASIC_STATE:SAI_OBJECT_TYPE_NEIGHBOR_ENTRY:{{\"ip\":\"{ip}\",\"rif\":\"{}\",\"switch_id\":\"{SWITCH_OID}\"}}",
            rif(i)
        );
        emit(
            ASIC_DB,
            &key,
            &[("SAI_NEIGHBOR_ENTRY_ATTR_DST_MAC_ADDRESS", &mac(i))],
        )?;
        filled.asic_keys += 1;
    }
    for i in 0..next_hops {
        let id = nh(i);
        let key = format!("ASIC_STATE:SAI_OBJECT_TYPE_NEXT_HOP:{id}");
        emit(
            ASIC_DB,
            &key,
            &[
                ("SAI_NEXT_HOP_ATTR_TYPE", "SAI_NEXT_HOP_TYPE_IP"),
                ("SAI_NEXT_HOP_ATTR_IP", &host(30, i)),
                ("SAI_NEXT_HOP_ATTR_ROUTER_INTERFACE_ID", &rif(i)),
            ],
        )?;
        vid_to_rid.push((id, format!("oid:0x{:x}", 0x4_0000_0000_0000u64 + i as u64)));
        filled.asic_keys += 1;
    }
    for i in 0..fdb {
        let key = format!(
            "ASIC_STATE:SAI_OBJECT_TYPE_FDB_ENTRY:{{\"bvid\":\"{}\",\"mac\":\"{}\",\"switch_id\":\"{SWITCH_OID}\"}}",
            oid(OT_VLAN, i % 1000),
            mac(1 << 24 | i)
        );
        emit(
            ASIC_DB,
            &key,
            &[
                ("SAI_FDB_ENTRY_ATTR_TYPE", "SAI_FDB_ENTRY_TYPE_DYNAMIC"),
                (
                    "SAI_FDB_ENTRY_ATTR_BRIDGE_PORT_ID",
                    &oid(OT_BRIDGE_PORT, i % ports.len().max(1)),
                ),
            ],
        )?;
        filled.asic_keys += 1;
    }
    // syncd's id maps: one field per object id, in two hashes.
    for chunk in vid_to_rid.chunks(1000) {
        let fwd: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(v, r)| (v.as_str(), r.as_str()))
            .collect();
        let back: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(v, r)| (r.as_str(), v.as_str()))
            .collect();
        emit(ASIC_DB, "VIDTORID", &fwd)?;
        emit(ASIC_DB, "RIDTOVID", &back)?;
    }
    filled.asic_keys += usize::from(!vid_to_rid.is_empty()) * 2;

    // COUNTERS_DB: every port's counters.
    let mut values: Vec<String> = Vec::with_capacity(PORT_STATS.len());
    for (i, _) in ports.iter().enumerate() {
        values.clear();
        for (k, _) in PORT_STATS.iter().enumerate() {
            let mut v = String::new();
            let _ = write!(v, "{}", (i * 7919 + k * 104_729) % 1_000_000_007);
            values.push(v);
        }
        let fields: Vec<(&str, &str)> = PORT_STATS
            .iter()
            .zip(&values)
            .map(|(f, v)| (*f, v.as_str()))
            .collect();
        emit(
            COUNTERS_DB,
            &format!("COUNTERS:oid:0x10000000{:05x}", i + 1),
            &fields,
        )?;
        filled.counters_keys += 1;
    }
    Ok(filled)
}

/// Redis files (`SAVE`'s `dump.rdb`) holding [`fill`]'s data for one size,
/// one per port list, made on first use: a benchmark starts many servers
/// with them ([`RedisServer::start_with_data`]), loading a file is much
/// faster than writing the keys again. The files go when this is dropped.
#[derive(Debug)]
pub struct SwitchData {
    pub size: SwitchSize,
    files: std::sync::Mutex<Vec<(Vec<String>, tempfile::TempDir)>>,
}

impl SwitchData {
    pub fn new(size: SwitchSize) -> SwitchData {
        SwitchData {
            size,
            files: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The file for a switch whose ports are `ports` (see [`fill`]).
    pub fn file(&self, ports: &[String]) -> Result<std::path::PathBuf> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, dir)) = files.iter().find(|(p, _)| p == ports) {
            return Ok(dir.path().join("dump.rdb"));
        }
        let server = RedisServer::start()?;
        fill(&server, &self.size, ports)?;
        let saved = server.save()?;
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-switch-redis-")
            .tempdir()?;
        let path = dir.path().join("dump.rdb");
        std::fs::rename(&saved, &path)
            .or_else(|_| std::fs::copy(&saved, &path).map(|_| ()))
            .context("keeping the switch-sized redis file")?;
        files.push((ports.to_vec(), dir));
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Five create lines of sairedis' recording of a real switch
    /// (testdata/ORIGIN.md).
    const RECORDING: &str = include_str!("../../testdata/sonic/sairedis-BCM56850-full.rec.excerpt");

    type Entry = (i64, String, Vec<(String, String)>);
    type Fields = BTreeMap<String, String>;

    fn entries(size: &SwitchSize, ports: &[String]) -> (Vec<Entry>, Filled) {
        let mut out = Vec::new();
        let filled = generate(size, ports, &mut |db, key, fields| {
            out.push((
                db,
                key.to_owned(),
                fields
                    .iter()
                    .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                    .collect(),
            ));
            Ok(())
        })
        .unwrap();
        (out, filled)
    }

    fn small() -> (Vec<Entry>, Filled, SwitchSize, Vec<String>) {
        let size = SwitchSize {
            routes: 200,
            asic_keys: 1000,
            vrfs: 4,
        };
        let ports: Vec<String> = (0..8).map(|i| format!("Ethernet{i}")).collect();
        let (e, f) = entries(&size, &ports);
        (e, f, size, ports)
    }

    /// The object type (bits 48-55) of an object id `oid:0x…`.
    fn type_of(oid: &str) -> Option<u64> {
        let hex = oid.strip_prefix("oid:0x")?;
        Some(u64::from_str_radix(hex, 16).ok()? >> 48)
    }

    /// An ASIC_DB key after `ASIC_STATE:` split into the object type and
    /// its id: the fields of a JSON key (an entry) or `oid` (an object).
    fn parse_key(key: &str) -> (String, Fields) {
        let (ot, rest) = key.split_once(':').unwrap();
        let id = if rest.starts_with('{') {
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(rest).unwrap();
            // sairedis writes the JSON compact, with sorted names.
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                rest,
                "not in sairedis' form: {key}"
            );
            v.into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
                .collect()
        } else {
            BTreeMap::from([("oid".to_owned(), rest.to_owned())])
        };
        (ot.to_owned(), id)
    }

    /// (object type → (key fields, attributes)) of the recording's creates.
    fn recorded() -> BTreeMap<String, (Fields, Fields)> {
        let mut out = BTreeMap::new();
        for line in RECORDING.lines() {
            let mut parts = line.split('|');
            let (_, op, key) = (parts.next(), parts.next(), parts.next().unwrap());
            assert_eq!(op, Some("c"), "{line}");
            let attrs = parts
                .map(|a| {
                    let (n, v) = a.split_once('=').unwrap();
                    (n.to_owned(), v.to_owned())
                })
                .collect();
            let (ot, id) = parse_key(key);
            out.entry(ot).or_insert((id, attrs));
        }
        out
    }

    #[test]
    fn asic_db_objects_look_like_sairedis_records_them() {
        let rec = recorded();
        assert_eq!(rec.len(), 3, "route entry, neighbour entry, next hop");
        let (entries, ..) = small();
        let asic: Vec<(String, Fields, Fields)> = entries
            .iter()
            .filter(|(db, ..)| *db == ASIC_DB)
            .filter_map(|(_, k, f)| {
                let (ot, id) = parse_key(k.strip_prefix("ASIC_STATE:")?);
                Some((ot, id, f.iter().cloned().collect()))
            })
            .collect();
        let next_hops: BTreeSet<&String> = asic
            .iter()
            .filter(|(ot, ..)| ot == "SAI_OBJECT_TYPE_NEXT_HOP")
            .map(|(_, id, _)| &id["oid"])
            .collect();
        assert!(!next_hops.is_empty());
        for (ot, (rec_id, rec_attrs)) in &rec {
            let mine: Vec<_> = asic.iter().filter(|(o, ..)| o == ot).collect();
            assert!(!mine.is_empty(), "no {ot} generated");
            for (_, id, attrs) in mine {
                // The same key fields, each object id of the same type.
                assert_eq!(
                    id.keys().collect::<Vec<_>>(),
                    rec_id.keys().collect::<Vec<_>>(),
                    "{ot}"
                );
                for (name, value) in id {
                    if let Some(t) = type_of(&rec_id[name]) {
                        assert_eq!(type_of(value), Some(t), "{ot} {name}={value}");
                    }
                }
                // Attributes the recording has for the type, of the same
                // shape (object ids of the same type, MACs upper case).
                for (name, value) in attrs {
                    let Some(r) = rec_attrs.get(name) else {
                        panic!("{ot}: {name} is not an attribute sairedis records for it");
                    };
                    if name == "SAI_ROUTE_ENTRY_ATTR_NEXT_HOP_ID" {
                        // The recording's route goes to the CPU port; ours
                        // go to next hops that exist.
                        assert!(next_hops.contains(value), "{value}");
                    } else if let Some(t) = type_of(r) {
                        assert_eq!(type_of(value), Some(t), "{ot} {name}={value}");
                    } else if r.len() == 17 && r.matches(':').count() == 5 {
                        assert_eq!(value.len(), 17, "{value}");
                        assert_eq!(value, &value.to_uppercase(), "{value}");
                    }
                }
            }
        }
        // FDB entries: `sai_serialize_fdb_entry`
        // (sonic-sairedis/meta/SaiSerialize.cpp) names bvid, mac, switch_id.
        let fdb: Vec<_> = asic
            .iter()
            .filter(|(o, ..)| o == "SAI_OBJECT_TYPE_FDB_ENTRY")
            .collect();
        assert!(!fdb.is_empty());
        for (_, id, attrs) in fdb {
            assert_eq!(id.keys().collect::<Vec<_>>(), ["bvid", "mac", "switch_id"]);
            assert_eq!(type_of(&id["bvid"]), Some(OT_VLAN));
            assert_eq!(
                type_of(&attrs["SAI_FDB_ENTRY_ATTR_BRIDGE_PORT_ID"]),
                Some(OT_BRIDGE_PORT)
            );
        }
    }

    #[test]
    fn routes_are_keyed_and_listed_as_fpmsyncd_writes_them() {
        let (entries, filled, size, ports) = small();
        let routes: Vec<&Entry> = entries
            .iter()
            .filter(|(db, k, _)| *db == APPL_DB && k.starts_with("ROUTE_TABLE:"))
            .collect();
        assert_eq!(routes.len(), size.routes);
        let (mut default_vrf, mut tenant) = (0, 0);
        for (_, key, fields) in routes {
            let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
            let rest = key.strip_prefix("ROUTE_TABLE:").unwrap();
            // onRouteMsg: `<vrf>:` before the prefix for a VRF's route, the
            // VRF name starting with `Vrf` (VRF_PREFIX).
            let prefix = match rest.split_once(':') {
                Some((vrf, prefix)) => {
                    assert!(vrf.starts_with("Vrf"), "{key}");
                    // onEvpnRouteMsg's fields.
                    let mut sorted = names.clone();
                    sorted.sort_unstable();
                    assert_eq!(
                        sorted,
                        ["ifname", "nexthop", "protocol", "router_mac", "vni_label"],
                        "{key}"
                    );
                    tenant += 1;
                    prefix
                }
                None => {
                    let mut sorted = names.clone();
                    sorted.sort_unstable();
                    assert_eq!(sorted, ["ifname", "nexthop", "protocol"], "{key}");
                    default_vrf += 1;
                    rest
                }
            };
            let (ip, len) = prefix.split_once('/').unwrap();
            assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{key}");
            assert!(len.parse::<u8>().is_ok_and(|l| l <= 32), "{key}");
            // One element per next hop in every list.
            let hops = fields.iter().find(|(f, _)| f == "nexthop").unwrap();
            let n = hops.1.split(',').count();
            for (f, v) in fields {
                if f != "protocol" {
                    assert_eq!(v.split(',').count(), n, "{key} {f}");
                }
            }
            if rest.split_once(':').is_none() {
                let ifname = &fields.iter().find(|(f, _)| f == "ifname").unwrap().1;
                assert!(ifname.split(',').all(|p| ports.contains(&p.to_owned())));
            }
        }
        assert_eq!(default_vrf, size.routes / 5);
        assert_eq!(tenant, size.routes - size.routes / 5);
        // What fill reports is what it wrote.
        let count = |db| entries.iter().filter(|(d, ..)| *d == db).count();
        let maps = entries
            .iter()
            .filter(|(d, k, _)| *d == ASIC_DB && !k.starts_with("ASIC_STATE:"))
            .count();
        assert_eq!(filled.appl_keys, count(APPL_DB));
        assert_eq!(filled.asic_keys, size.asic_keys + 2);
        assert_eq!(count(ASIC_DB) - maps, size.asic_keys);
        assert_eq!(filled.counters_keys, ports.len());
        assert_eq!(count(COUNTERS_DB), ports.len());
    }

    #[test]
    fn object_ids_carry_their_type() {
        // sairedis: the type in bits 48-55 (VirtualObjectIdManager).
        assert_eq!(type_of(&oid(OT_NEXT_HOP, 1)), Some(OT_NEXT_HOP));
        assert_eq!(type_of(SWITCH_OID), Some(0x21));
        assert_eq!(mac(0x0102), "52:54:00:00:01:02");
        assert_eq!(host(10, 0), "10.0.0.1");
        assert_eq!(host(10, 0x1_00ff), "10.1.1.0");
    }
}
