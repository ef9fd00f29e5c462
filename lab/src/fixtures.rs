//! The repository's test data, embedded so the lab runs from any directory.
//! Origins of the `testdata/` files: `testdata/ORIGIN.md`.

/// Base CONFIG_DB of mini-lab leaf01 (Dell Enterprise SONiC 4.5.1).
pub const LEAF01_CONFIG: &str =
    include_str!("../../testdata/sonic/mini-lab-leaf01-dell-4.5.1.config_db.json");
/// Base CONFIG_DB of mini-lab leaf02.
pub const LEAF02_CONFIG: &str =
    include_str!("../../testdata/sonic/mini-lab-leaf02-dell-4.5.1.config_db.json");
/// Base CONFIG_DB of mini-lab leaf01 on Dell Enterprise SONiC 4.4.3.
pub const LEAF01_CONFIG_DELL_44: &str =
    include_str!("../../testdata/sonic/mini-lab-leaf01-dell-4.4.3.config_db.json");
/// Base CONFIG_DB of mini-lab leaf02 on Dell Enterprise SONiC 4.4.3.
pub const LEAF02_CONFIG_DELL_44: &str =
    include_str!("../../testdata/sonic/mini-lab-leaf02-dell-4.4.3.config_db.json");
/// Port map of the mini-lab virtual leaf: 122 ports (30 × 4×25G + 2 × 100G).
pub const MINI_LAB_PORT_MAP: &str =
    include_str!("../../testdata/sonic/port_config/mini-lab-vs-as7726-breakout.port_config.ini");
/// A generated AS7726-32X leaf config with PORT entries, foreign VRFs, VLANs and maps.
pub const CONFIGDB_UTILS_AS7726: &str =
    include_str!("../../testdata/sonic/configdb-utils-test1-as7726.config_db.json");
/// sonic-utilities' mock CONFIG_DB (flat redis form).
pub const SONIC_UTILITIES_MOCK: &str =
    include_str!("../../testdata/sonic/sonic-utilities-mock.config_db.redis-dump.json");

/// The lab's sample switch state for leaf01 (v1 SwitchResponse).
pub const LEAF01_SWITCH_V1: &str = include_str!("../switches/leaf01.v1.json");
/// The lab's agent configuration for leaf01.
pub const LEAF01_AGENT_CONFIG: &str = include_str!("../config/leaf01.toml");

/// mini-lab leaf01's base CONFIG_DB plus the PORT table of the mini-lab port
/// map (what CONFIG_DB holds after SONiC's first boot), as `config_db.json`
/// text for `--configdb` and for tests that need a complete leaf.
pub fn leaf01_with_ports() -> anyhow::Result<String> {
    with_ports(LEAF01_CONFIG)
}

/// A base `config_db.json` plus the PORT table of the mini-lab port map.
pub fn with_ports(base: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    use serde_json::{Map, Value};
    let mut root: Map<String, Value> =
        serde_json::from_str(base).context("the base config_db.json is not an object")?;
    let mut ports = Map::new();
    for (key, fields) in crate::seed::port_entries(MINI_LAB_PORT_MAP)? {
        let name = key.strip_prefix("PORT|").unwrap_or(&key).to_owned();
        let fields: Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        ports.insert(name, Value::Object(fields));
    }
    root.insert("PORT".into(), Value::Object(ports));
    Ok(serde_json::to_string_pretty(&Value::Object(root))?)
}
/// The lab CA certificate (PEM) that signed [`LAB_TLS_CERT`]; a client
/// trusts the lab's HTTPS server with it (`api_ca_file`).
pub const LAB_TLS_CA: &str = include_str!("../../testdata/tls/ca.pem");
/// The lab's HTTPS server certificate for `localhost` and `127.0.0.1`.
pub const LAB_TLS_CERT: &str = include_str!("../../testdata/tls/server.pem");
/// The key of [`LAB_TLS_CERT`] (test-only, not a secret).
pub const LAB_TLS_KEY: &str = include_str!("../../testdata/tls/server-key.pem");
