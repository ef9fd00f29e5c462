//! metal-api v1 wire types (snake_case JSON, metal-api reference §1).

use serde::Deserialize;

use crate::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};

/// `v1.SwitchResponse` (the fields the agent reads).
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchResponse {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nics: Vec<SwitchNic>,
}

/// `v1.SwitchNic`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchNic {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    /// `""` = unprovisioned, `default` = firewall, `vrf<N>` = tenant.
    #[serde(default)]
    pub vrf: Option<String>,
    /// `null`, or `{cidrs, vnis}` where either may be `null`.
    #[serde(default)]
    pub filter: Option<BgpFilter>,
    /// Reported state (`UP|DOWN|UNKNOWN`); not used for configuration.
    #[serde(default)]
    pub actual: Option<String>,
    /// Desired admin state (metal-api v0.45, `UP|DOWN|null`).
    #[serde(default)]
    pub admin_status: Option<String>,
}

/// `v1.BGPFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BgpFilter {
    #[serde(default)]
    pub cidrs: Option<Vec<String>>,
    #[serde(default)]
    pub vnis: Option<Vec<String>>,
}

impl SwitchResponse {
    /// The API-neutral reading (metal-core master reads `admin_status`, not `actual`).
    pub fn to_desc(&self) -> SwitchDesc {
        SwitchDesc {
            id: self.id.clone(),
            nics: self
                .nics
                .iter()
                .map(|n| {
                    let filter = n.filter.clone().unwrap_or_default();
                    NicDesc {
                        name: n.name.clone(),
                        vrf: n.vrf.clone().filter(|v| !v.is_empty()),
                        filter: FilterDesc {
                            cidrs: filter.cidrs.unwrap_or_default(),
                            vnis: filter.vnis.unwrap_or_default(),
                        },
                        admin: n.admin_status.as_deref().and_then(AdminStatus::from_api),
                    }
                })
                .collect(),
        }
    }
}
