//! The metal API's switch object: wire types and their conversion.
//!
//! Wire types of both API versions live here and never leak past this
//! module: callers get a [`SwitchDesc`](crate::spec::SwitchDesc), the
//! API-neutral reading that `spec::build` validates.
//! - [`v1`]: metal-api (Swagger REST): `SwitchResponse`, snake_case JSON.
//! - [`v2`]: metal-apiserver (Connect, proto3 JSON): `Switch` or
//!   `SwitchServiceGetResponse`, camelCase JSON.

pub mod v1;
pub mod v2;

use serde::Serialize;
use serde_json::Value;

use crate::spec::SwitchDesc;

/// Which wire format a switch document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WireVersion {
    V1,
    V2,
}

/// A switch document that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SwitchDocError {
    #[error("{origin}: not JSON: {message}")]
    Json { origin: String, message: String },
    #[error(
        "{origin}: cannot tell whether this is a v1 SwitchResponse or a v2 Switch; pass --api v1 or --api v2"
    )]
    Ambiguous { origin: String },
    #[error("{origin}: not a {version:?} switch object: {message}")]
    Shape {
        origin: String,
        version: WireVersion,
        message: String,
    },
}

/// Guess the wire version of a switch document.
pub fn detect(doc: &Value) -> Option<WireVersion> {
    let obj = doc.as_object()?;
    if obj.get("switch").is_some_and(Value::is_object) {
        return Some(WireVersion::V2);
    }
    const V2_KEYS: &[&str] = &[
        "managementIp",
        "machineConnections",
        "replaceMode",
        "lastSync",
        "lastSyncError",
    ];
    const V1_KEYS: &[&str] = &[
        "rack_id",
        "connections",
        "management_ip",
        "last_sync",
        "last_sync_error",
        "console_command",
    ];
    if V2_KEYS.iter().any(|k| obj.contains_key(*k))
        || obj.get("partition").is_some_and(Value::is_string)
    {
        return Some(WireVersion::V2);
    }
    if V1_KEYS.iter().any(|k| obj.contains_key(*k))
        || obj.get("partition").is_some_and(Value::is_object)
    {
        return Some(WireVersion::V1);
    }
    let nics = obj.get("nics")?.as_array()?;
    let has = |k: &str| nics.iter().any(|n| n.get(k).is_some());
    if has("bgpFilter") || has("state") || has("bgpPortState") {
        Some(WireVersion::V2)
    } else if has("filter") || has("actual") || has("admin_status") || has("bgp_port_state") {
        Some(WireVersion::V1)
    } else {
        None
    }
}

/// Read a switch document of the given (or detected) version.
pub fn parse_switch_document(
    origin: &str,
    text: &str,
    version: Option<WireVersion>,
) -> Result<(WireVersion, SwitchDesc), SwitchDocError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| SwitchDocError::Json {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let version = match version.or_else(|| detect(&doc)) {
        Some(v) => v,
        None => {
            return Err(SwitchDocError::Ambiguous {
                origin: origin.to_owned(),
            });
        }
    };
    let shape = |message: String| SwitchDocError::Shape {
        origin: origin.to_owned(),
        version,
        message,
    };
    let desc = match version {
        WireVersion::V1 => serde_json::from_value::<v1::SwitchResponse>(doc)
            .map_err(|e| shape(e.to_string()))?
            .to_desc(),
        WireVersion::V2 => v2::switch_from_document(doc)
            .map_err(|e| shape(e.to_string()))?
            .to_desc(),
    };
    Ok((version, desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(p: &str) -> String {
        std::fs::read_to_string(format!("{}/testdata/api/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn v1_and_v2_fixtures_describe_the_same_switch() {
        let (v, one) =
            parse_switch_document("v1", &fixture("v1/switch-response.json"), None).unwrap();
        assert_eq!(v, WireVersion::V1);
        let (v, two) =
            parse_switch_document("v2", &fixture("v2/switch-get-response.json"), None).unwrap();
        assert_eq!(v, WireVersion::V2);
        assert_eq!(one.id, "r01leaf01");
        // The v1 fixture has one nic more (Ethernet2) and no desired admin status.
        let common: Vec<_> = one
            .nics
            .iter()
            .filter(|n| n.name != "Ethernet2")
            .cloned()
            .collect();
        let mut two_without_admin = two.nics.clone();
        for n in &mut two_without_admin {
            n.admin = None;
        }
        assert_eq!(common, two_without_admin);
        assert_eq!(two.nics[1].admin, Some(crate::spec::AdminStatus::Down));
    }

    #[test]
    fn ambiguous_documents_are_refused() {
        let e = parse_switch_document("x", r#"{"id": "a", "nics": []}"#, None).unwrap_err();
        assert!(e.to_string().contains("--api v1"), "{e}");
        let (_, d) =
            parse_switch_document("x", r#"{"id": "a", "nics": []}"#, Some(WireVersion::V1))
                .unwrap();
        assert!(d.nics.is_empty());
    }
}
