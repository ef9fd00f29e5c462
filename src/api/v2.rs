//! metal-apiserver v2 wire types (proto3 JSON mapping, metal-api reference §3).
//!
//! Responses use lowerCamelCase names; the snake_case proto names are
//! accepted too, as the server accepts both.

use serde::Deserialize;
use serde_json::Value;

use crate::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};

/// `metalstack.api.v2.Switch` (the fields the agent reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Switch {
    pub id: String,
    #[serde(default)]
    pub nics: Vec<SwitchNic>,
}

/// `SwitchServiceGetResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchServiceGetResponse {
    pub switch: Switch,
}

/// `metalstack.api.v2.SwitchNic`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchNic {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub vrf: Option<String>,
    #[serde(default)]
    pub state: Option<NicState>,
    #[serde(default, alias = "bgp_filter", rename = "bgpFilter")]
    pub bgp_filter: Option<BgpFilter>,
}

/// `NicState`: enum names like `SWITCH_PORT_STATUS_UP`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NicState {
    #[serde(default)]
    pub desired: Option<String>,
    #[serde(default)]
    pub actual: Option<String>,
}

/// `BGPFilter`: repeated fields are omitted when empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BgpFilter {
    #[serde(default)]
    pub cidrs: Vec<String>,
    #[serde(default)]
    pub vnis: Vec<String>,
}

/// A `Switch`, given either bare or wrapped in a `SwitchServiceGetResponse`.
pub fn switch_from_document(doc: Value) -> Result<Switch, serde_json::Error> {
    if doc.get("switch").is_some() {
        Ok(serde_json::from_value::<SwitchServiceGetResponse>(doc)?.switch)
    } else {
        serde_json::from_value(doc)
    }
}

impl Switch {
    /// The API-neutral reading: admin status from `state.desired` (MC-v2).
    pub fn to_desc(&self) -> SwitchDesc {
        SwitchDesc {
            id: self.id.clone(),
            nics: self
                .nics
                .iter()
                .map(|n| {
                    let filter = n.bgp_filter.clone().unwrap_or_default();
                    NicDesc {
                        name: n.name.clone(),
                        vrf: n.vrf.clone().filter(|v| !v.is_empty()),
                        filter: FilterDesc {
                            cidrs: filter.cidrs,
                            vnis: filter.vnis,
                        },
                        admin: n
                            .state
                            .as_ref()
                            .and_then(|s| s.desired.as_deref())
                            .and_then(AdminStatus::from_api),
                    }
                })
                .collect(),
        }
    }
}
