//! Loading SONiC configurations into a redis server, like SONiC's boot does:
//! `config_db.json` into CONFIG_DB (`sonic-cfggen --write-to-db` semantics:
//! lists as `field@ = a,b`, empty entries as `NULL: NULL`), PORT entries from
//! a `port_config.ini` port map, then the readiness flags.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::redis_server::{APPL_DB, CONFIG_DB, COUNTERS_DB, RedisServer, STATE_DB};

/// A redis hash: full key and fields.
pub type Entry = (String, Vec<(String, String)>);

fn entry_fields(v: &Value) -> Result<Vec<(String, String)>> {
    let obj = v.as_object().context("entry is not a JSON object")?;
    let mut out = Vec::new();
    for (k, v) in obj {
        match v {
            Value::String(s) => out.push((k.clone(), s.clone())),
            Value::Array(items) => {
                let joined: Vec<String> = items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect();
                let name = if k.ends_with('@') {
                    k.clone()
                } else {
                    format!("{k}@")
                };
                out.push((name, joined.join(",")));
            }
            Value::Null => {}
            other => out.push((k.clone(), other.to_string())),
        }
    }
    if out.is_empty() {
        out.push(("NULL".into(), "NULL".into()));
    }
    Ok(out)
}

/// Every entry of a `config_db.json` (nested `{"T": {"k": {}}}` or flat
/// `{"T|k": {}}`), as redis keys with `|` separators.
pub fn config_db_entries(text: &str) -> Result<Vec<Entry>> {
    let root: Map<String, Value> =
        serde_json::from_str(text).context("config_db.json is not a JSON object")?;
    let mut out = Vec::new();
    for (top, v) in root {
        if top.contains('|') {
            out.push((top.clone(), entry_fields(&v).with_context(|| top.clone())?));
            continue;
        }
        let Some(table) = v.as_object() else {
            bail!("table {top} is not an object");
        };
        for (k, e) in table {
            let key = format!("{top}|{k}");
            out.push((key.clone(), entry_fields(e).with_context(|| key.clone())?));
        }
    }
    Ok(out)
}

/// The port names of a `port_config.ini`, in its order.
pub fn port_names(ini: &str) -> Result<Vec<String>> {
    Ok(port_entries(ini)?
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix("PORT|").map(str::to_owned))
        .collect())
}

/// PORT entries from a `port_config.ini` (`name lanes alias index speed`),
/// with the defaults SONiC's config generation adds (`admin_status up`,
/// `mtu 9100`).
pub fn port_entries(ini: &str) -> Result<Vec<Entry>> {
    let mut header: Vec<String> = vec!["name", "lanes", "alias", "index", "speed"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut out = Vec::new();
    for line in ini.lines() {
        let line = line.trim();
        if let Some(h) = line.strip_prefix('#') {
            let cols: Vec<String> = h.split_whitespace().map(String::from).collect();
            if cols.first().map(String::as_str) == Some("name") {
                header = cols;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = cols.first() else { continue };
        let mut fields: Vec<(String, String)> = header
            .iter()
            .zip(cols.iter())
            .skip(1)
            .map(|(h, v)| (h.clone(), (*v).to_owned()))
            .collect();
        fields.push(("admin_status".into(), "up".into()));
        fields.push(("mtu".into(), "9100".into()));
        out.push((format!("PORT|{name}"), fields));
    }
    if out.is_empty() {
        bail!("port map has no ports");
    }
    Ok(out)
}

/// Write entries into one database of `server` (one pipeline).
pub fn write_entries(server: &RedisServer, db: i64, entries: &[Entry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut c = server.connection(db)?;
    let mut pipe = redis::pipe();
    for (key, fields) in entries {
        pipe.cmd("HSET").arg(key).arg(fields).ignore();
    }
    pipe.query::<()>(&mut c)?;
    Ok(())
}

/// How to seed a switch.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Set `CONFIG_DB_INITIALIZED = 1`.
    pub config_db_initialized: bool,
    /// Write `APPL_DB PORT_TABLE:PortInitDone`.
    pub port_init_done: bool,
    /// Give every port an OID in `COUNTERS_PORT_NAME_MAP` and a STATE_DB
    /// `PORT_TABLE` entry (as orchagent/portsyncd do on a switch with an ASIC).
    pub asic: bool,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            config_db_initialized: true,
            port_init_done: true,
            asic: true,
        }
    }
}

/// Load a base configuration and a port map, then set the readiness flags.
pub fn seed_switch(
    server: &RedisServer,
    config_db_json: &str,
    port_map_ini: Option<&str>,
    opts: &SeedOptions,
) -> Result<()> {
    let mut entries = config_db_entries(config_db_json)?;
    let ports = match port_map_ini {
        Some(ini) => port_entries(ini)?,
        None => Vec::new(),
    };
    entries.extend(ports.iter().cloned());
    write_entries(server, CONFIG_DB, &entries)?;
    let all_ports: Vec<String> = entries
        .iter()
        .filter_map(|(k, _)| k.strip_prefix("PORT|").map(str::to_owned))
        .collect();
    if opts.asic {
        let mut counters = server.connection(COUNTERS_DB)?;
        let mut state = server.connection(STATE_DB)?;
        for (i, p) in all_ports.iter().enumerate() {
            let oid = format!("oid:0x10000000{:05x}", i + 1);
            redis::cmd("HSET")
                .arg("COUNTERS_PORT_NAME_MAP")
                .arg(p)
                .arg(&oid)
                .query::<()>(&mut counters)?;
            redis::cmd("HSET")
                .arg(format!("PORT_TABLE|{p}"))
                .arg(&[("state", "ok"), ("netdev_oper_status", "up")])
                .query::<()>(&mut state)?;
        }
    }
    if opts.config_db_initialized {
        let mut c = server.connection(CONFIG_DB)?;
        redis::cmd("SET")
            .arg("CONFIG_DB_INITIALIZED")
            .arg("1")
            .query::<()>(&mut c)?;
    }
    if opts.port_init_done {
        let mut c = server.connection(APPL_DB)?;
        redis::cmd("HSET")
            .arg("PORT_TABLE:PortInitDone")
            .arg("lanes")
            .arg("0")
            .query::<()>(&mut c)?;
    }
    Ok(())
}

/// Every key and hash of one database, sorted (for before/after comparisons).
/// Bytes that are not UTF-8 (SONiC allows them) are shown as U+FFFD: compare
/// the raw bytes where they matter.
pub fn dump(
    server: &RedisServer,
    db: i64,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let mut c = server.connection(db)?;
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c)?;
    let mut out = std::collections::BTreeMap::new();
    for k in keys {
        let t: String = redis::cmd("TYPE").arg(&k).query(&mut c)?;
        let v = if t == "hash" {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg(&k).query(&mut c)?;
            pairs.into_iter().map(|(f, v)| (text(f), text(v))).collect()
        } else if t == "string" {
            let s: Vec<u8> = redis::cmd("GET").arg(&k).query(&mut c)?;
            std::collections::BTreeMap::from([(String::new(), text(s))])
        } else {
            std::collections::BTreeMap::from([(String::new(), format!("<{t}>"))])
        };
        out.insert(text(k), v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_map_and_config() {
        let ports = port_entries(crate::fixtures::MINI_LAB_PORT_MAP).unwrap();
        assert_eq!(ports.len(), 122);
        assert_eq!(ports[0].0, "PORT|Ethernet0");
        assert!(ports[0].1.contains(&("alias".into(), "Eth1/1".into())));
        let e = config_db_entries(crate::fixtures::LEAF01_CONFIG).unwrap();
        let vlan = e.iter().find(|(k, _)| k == "VLAN|Vlan3900").unwrap();
        assert!(
            vlan.1
                .contains(&("dhcp_servers@".into(), "10.0.0.21".into()))
        );
        assert!(e.iter().any(|(k, f)| k == "LOOPBACK_INTERFACE|Loopback0"
            && f == &[("NULL".to_string(), "NULL".to_string())]));
    }
}
