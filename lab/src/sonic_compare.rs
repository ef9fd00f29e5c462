//! The stand-in checked against real SONiC: what each leaf's SONiC
//! confirmed — the STATE_DB, APPL_DB, COUNTERS_DB and ASIC_DB entries the
//! agent's barriers wait for (sonic-configdb reference §4) — as a set of
//! normalised lines, so that a leaf running real SONiC and one running the
//! stand-in can be compared after the same transitions.
//!
//! A line names the database, the key with the leaf's own values replaced
//! (each interface address of its CONFIG_DB becomes `<Vlan3900 addr>`, …,
//! its loopback address `<lo>`), and only the fields a barrier reads
//! (`state`, `vrf`, …); OIDs are resolved to port and interface names.
//! [`KNOWN_GAPS`] lists the differences the stand-in keeps on purpose, each
//! with its reason; [`unexplained`] is what is left. Real SONiC confirms
//! some of this after the agent's barriers were met (what the agent does not
//! wait for, such as orchagent's ASIC objects): [`agree`] waits for the two
//! to agree before it reports what is still different.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::redis_server::{APPL_DB, ASIC_DB, CONFIG_DB, COUNTERS_DB, STATE_DB};

/// CONFIG_DB tables whose `<if>|<prefix>` keys give an interface an address.
const ADDRESS_TABLES: [&str; 3] = ["INTERFACE", "VLAN_INTERFACE", "LOOPBACK_INTERFACE"];

/// STATE_DB tables whose entries confirm the managers' work.
const STATE_TABLES: [&str; 7] = [
    "VRF_TABLE",
    "VRF_OBJECT_TABLE",
    "VLAN_TABLE",
    "VLAN_MEMBER_TABLE",
    "INTERFACE_TABLE",
    "PORT_TABLE",
    "SUPPRESS_VLAN_NEIGH_TABLE",
];
/// APPL_DB tables the managers produce for orchagent.
const APPL_TABLES: [&str; 7] = [
    "VRF_TABLE",
    "VLAN_TABLE",
    "VLAN_MEMBER_TABLE",
    "INTF_TABLE",
    "VXLAN_TUNNEL_MAP_TABLE",
    "VXLAN_VRF_TABLE",
    "PORT_TABLE",
];
/// The fields a barrier or the agent's confirmation reads.
const FIELDS: [&str; 4] = ["state", "vrf", "vrf_name", "netdev"];

fn sorted_keys(c: &mut redis::Connection, pattern: &str) -> Result<Vec<String>> {
    let mut keys: Vec<String> = c
        .scan_match::<_, String>(pattern)?
        .collect::<std::result::Result<_, _>>()?;
    keys.sort();
    Ok(keys)
}

use redis::Commands as _;

/// What the leaf's SONiC confirmed, normalised (see the module docs).
pub fn snapshot(socket: &Path, loopback: Ipv4Addr) -> Result<BTreeSet<String>> {
    let url = |db: i64| format!("redis+unix://{}?db={db}", socket.display());
    let conn = |db: i64| -> Result<redis::Connection> {
        Ok(redis::Client::open(url(db))?.get_connection()?)
    };
    // The leaf's own addresses, longest first (no prefix of another).
    let mut addresses: Vec<(String, String)> = Vec::new();
    {
        let mut config = conn(CONFIG_DB)?;
        for t in ADDRESS_TABLES {
            for key in sorted_keys(&mut config, &format!("{t}|*|*"))? {
                let mut parts = key.splitn(3, '|');
                if let (Some(_), Some(ifname), Some(prefix)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    addresses.push((prefix.to_owned(), format!("<{ifname} addr>")));
                }
            }
        }
    }
    addresses.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
    let lo = loopback.to_string();
    let norm = |s: &str| {
        let mut s = s.to_owned();
        for (a, name) in &addresses {
            s = s.replace(a.as_str(), name);
        }
        s.replace(&lo, "<lo>")
    };
    let mut out = BTreeSet::new();
    let fields_line =
        |db: &str, key: &str, h: &BTreeMap<String, String>, out: &mut BTreeSet<String>| {
            let f: Vec<String> = FIELDS
                .iter()
                .filter_map(|k| h.get(*k).map(|v| format!("{k}={v}")))
                .collect();
            out.insert(norm(format!("{db} {key} {}", f.join(" ")).trim_end()));
        };
    for (db, name, tables, sep) in [
        (STATE_DB, "STATE_DB", &STATE_TABLES, '|'),
        (APPL_DB, "APPL_DB", &APPL_TABLES, ':'),
    ] {
        let mut c = conn(db)?;
        for t in tables {
            for key in sorted_keys(&mut c, &format!("{t}{sep}*"))? {
                let h: BTreeMap<String, String> = c.hgetall(&key).unwrap_or_default();
                fields_line(name, &key, &h, &mut out);
            }
        }
    }
    let mut counters = conn(COUNTERS_DB)?;
    let ports: BTreeMap<String, String> = counters.hgetall("COUNTERS_PORT_NAME_MAP")?;
    let port_of: BTreeMap<&str, &str> = ports
        .iter()
        .map(|(n, o)| (o.as_str(), n.as_str()))
        .collect();
    for p in ports.keys() {
        out.insert(format!("COUNTERS_DB COUNTERS_PORT_NAME_MAP {p}"));
    }
    let rifs: BTreeMap<String, String> = counters.hgetall("COUNTERS_RIF_NAME_MAP")?;
    for r in rifs.keys() {
        out.insert(norm(&format!("COUNTERS_DB COUNTERS_RIF_NAME_MAP {r}")));
    }
    let mut asic = conn(ASIC_DB)?;
    for key in sorted_keys(&mut asic, "ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:*")? {
        let h: BTreeMap<String, String> = asic.hgetall(&key)?;
        if h.get("SAI_BRIDGE_PORT_ATTR_TYPE").map(String::as_str)
            == Some("SAI_BRIDGE_PORT_TYPE_PORT")
        {
            let port = h
                .get("SAI_BRIDGE_PORT_ATTR_PORT_ID")
                .and_then(|o| port_of.get(o.as_str()))
                .copied()
                .unwrap_or("?");
            out.insert(format!("ASIC_DB BRIDGE_PORT {port}"));
        }
    }
    for key in sorted_keys(&mut asic, "ASIC_STATE:SAI_OBJECT_TYPE_VLAN:*")? {
        let h: BTreeMap<String, String> = asic.hgetall(&key)?;
        if let Some(v) = h.get("SAI_VLAN_ATTR_VLAN_ID") {
            out.insert(format!("ASIC_DB VLAN {v}"));
        }
    }
    // A RIF in ASIC_DB for each name in COUNTERS_RIF_NAME_MAP.
    for (name, oid) in &rifs {
        let exists: bool =
            asic.exists(format!("ASIC_STATE:SAI_OBJECT_TYPE_ROUTER_INTERFACE:{oid}"))?;
        if exists {
            out.insert(norm(&format!("ASIC_DB ROUTER_INTERFACE {name}")));
        }
    }
    Ok(out)
}

/// Lines only one side has: `real only: …` and `stand-in only: …`.
pub fn differences(real: &BTreeSet<String>, standin: &BTreeSet<String>) -> Vec<String> {
    real.difference(standin)
        .map(|l| format!("real only: {l}"))
        .chain(
            standin
                .difference(real)
                .map(|l| format!("stand-in only: {l}")),
        )
        .collect()
}

/// A difference the stand-in keeps, with the reason.
#[derive(Debug, Clone, Copy)]
pub struct KnownGap {
    /// Matches a line of [`differences`] that starts with this.
    pub prefix: &'static str,
    pub reason: &'static str,
}

/// The differences between the stand-in and real SONiC that are not bugs
/// of the stand-in (docs/sonic.md lists them too).
pub const KNOWN_GAPS: &[KnownGap] = &[];

/// The differences no known gap explains.
pub fn unexplained(diffs: &[String]) -> Vec<String> {
    diffs
        .iter()
        .filter(|d| !KNOWN_GAPS.iter().any(|g| d.starts_with(g.prefix)))
        .cloned()
        .collect()
}

/// Compare what `real` and `standin` confirm (each a fresh snapshot) until
/// no unexplained difference is left or `timeout` has passed; the
/// differences of the last comparison (known gaps included).
pub fn agree(
    mut real: impl FnMut() -> Result<BTreeSet<String>>,
    mut standin: impl FnMut() -> Result<BTreeSet<String>>,
    timeout: Duration,
) -> Result<Vec<String>> {
    let start = Instant::now();
    loop {
        let diffs = differences(&real()?, &standin()?);
        if unexplained(&diffs).is_empty() || start.elapsed() > timeout {
            return Ok(diffs);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_side_and_known_gaps_filter() {
        let a: BTreeSet<String> = ["x".to_owned(), "y".to_owned()].into();
        let b: BTreeSet<String> = ["y".to_owned(), "z".to_owned()].into();
        assert_eq!(differences(&a, &b), ["real only: x", "stand-in only: z"]);
        assert_eq!(unexplained(&differences(&a, &a)), Vec::<String>::new());
    }
}
