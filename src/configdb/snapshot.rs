//! `config_db.json` files as CONFIG_DB snapshots (pure).
//!
//! Two shapes are read: SONiC's nested `{"TABLE": {"key": {fields}}}` (what
//! `config save` writes) and the flat redis form `{"TABLE|key": {fields}}`
//! (sonic-utilities' mock tables). Only the tables of
//! [`Table`](super::schema::Table) are kept. Values follow ConfigDBConnector's
//! `typed_to_raw`: lists become `field@ = a,b`, an empty entry becomes
//! `NULL: NULL`, numbers and booleans become strings.

use serde_json::{Map, Value};

use super::schema::{DbState, Fields, Key, NULL_FIELD, Table};
use super::target::Target;
use crate::names::quoted;

/// A `config_db.json` that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct SnapshotError {
    pub origin: String,
    pub message: String,
}

fn raw_fields(v: &Value) -> Option<Fields> {
    let obj = v.as_object()?;
    let mut f = Fields::new();
    for (k, v) in obj {
        match v {
            Value::String(s) => {
                f.insert(k.clone(), s.clone());
            }
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
                f.insert(name, joined.join(","));
            }
            Value::Null => {}
            other => {
                f.insert(k.clone(), other.to_string());
            }
        }
    }
    if f.is_empty() {
        f.insert(NULL_FIELD.into(), NULL_FIELD.into());
    }
    Some(f)
}

/// Parse a `config_db.json` (either shape) into the agent's tables.
pub fn parse_config_db_json(origin: &str, text: &str) -> Result<DbState, SnapshotError> {
    let err = |message: String| SnapshotError {
        origin: origin.to_owned(),
        message,
    };
    // Strict: a key given twice (a table, an entry or a field) is refused.
    let root = match crate::json::from_str(text) {
        Ok(Value::Object(root)) => root,
        Ok(_) => {
            return Err(err(
                "not a config_db.json: the document is not a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err(err(format!(
                "not JSON: {}",
                crate::names::escaped(&e.to_string(), 300)
            )));
        }
    };
    let mut state = DbState::new();
    for (top, value) in &root {
        if top.contains('|') {
            // flat redis form
            let Some(key) = Key::parse(top) else { continue };
            let f = raw_fields(value)
                .ok_or_else(|| err(format!("{}: entry is not an object", quoted(top))))?;
            state.insert(key, f);
            continue;
        }
        let Some(table) = Table::from_name(top) else {
            continue;
        };
        let entries = value
            .as_object()
            .ok_or_else(|| err(format!("table {} is not an object", quoted(top))))?;
        for (name, v) in entries {
            let f = raw_fields(v).ok_or_else(|| {
                err(format!(
                    "{}: entry is not an object",
                    quoted(&format!("{top}|{name}"))
                ))
            })?;
            state.insert(Key::new(table, name.clone()), f);
        }
    }
    Ok(state)
}

/// The target in `config_db.json` shape (`NULL: NULL` written as `{}`).
pub fn target_to_config_db_json(target: &Target) -> Value {
    let mut root = Map::new();
    for (key, entry) in &target.entries {
        let table = root
            .entry(key.table.name().to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let fields: Map<String, Value> = entry
            .fields
            .iter()
            .filter(|(k, _)| k.as_str() != NULL_FIELD)
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Value::Object(t) = table {
            t.insert(key.name.clone(), Value::Object(fields));
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_shapes() {
        let nested = r#"{"VLAN": {"Vlan3900": {"vlanid": "3900", "dhcp_servers": ["10.0.0.21", "10.0.0.22"]}},
            "LOOPBACK_INTERFACE": {"Loopback0": {}}, "VXLAN_TUNNEL": {"vtep0": {"src_ip": "10.0.0.11"}},
            "VLAN_INTERFACE": {"Vlan3900": {}}}"#;
        let s = parse_config_db_json("n", nested).unwrap();
        let v = s.get(&Key::vlan(3900)).unwrap();
        assert_eq!(v.get("dhcp_servers@").unwrap(), "10.0.0.21,10.0.0.22");
        assert_eq!(
            s.get(&Key::vlan_interface(3900))
                .unwrap()
                .get("NULL")
                .unwrap(),
            "NULL"
        );
        assert_eq!(s.len(), 3);
        let flat = r#"{"VRF|Vrf1": {"vni": "1000", "fallback": "false"}, "ACL_RULE|x": {}}"#;
        let s = parse_config_db_json("f", flat).unwrap();
        assert_eq!(s.field(&Key::vrf("Vrf1"), "vni"), Some("1000"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn repeated_keys_are_refused() {
        let e = parse_config_db_json(
            "dup.json",
            r#"{"VRF": {"Vrf1": {"vni": "1"}}, "VRF": {"Vrf2": {"vni": "2"}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("key \"VRF\" appears twice"), "{e}");
        assert!(
            parse_config_db_json(
                "x",
                r#"{"PORT": {"Ethernet0": {"mtu": "9100", "mtu": "9000"}}}"#
            )
            .is_err()
        );
    }
}
