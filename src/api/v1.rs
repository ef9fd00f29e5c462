//! metal-api v1 wire types (snake_case JSON, metal-api reference §1) and
//! their conversion to and from the API-neutral types (pure).
//!
//! Quirks handled here (reference §9):
//! - BGP state objects use capitalised Go field names (`Neighbor`, ...),
//!   everything else is snake_case (trap 2);
//! - durations are integer nanoseconds (trap 3);
//! - `"mac": null` and `"actual": null` at registration, like metal-go;
//! - `filter` is `null` or `{cidrs, vnis}` with either list `null` (trap 9);
//! - `last_sync` / `last_sync_error` may be `null`, and a Go zero time
//!   (`0001-01-01T00:00:00Z`) reads as "never".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    FetchedSwitch, Registration, SwitchProblem, SyncRecord, SyncStatus, WireNic, fetched,
    switch_desc,
};
use crate::names::quoted;
use crate::observed::{PortOperState, SwitchReport};
use crate::spec::{AdminStatus, FilterDesc, SwitchDesc};
use crate::time::parse_sync_time;

/// `v1.SwitchResponse` (the fields the agent reads).
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchResponse {
    pub id: String,
    pub nics: Option<Vec<SwitchNic>>,
    pub last_sync: Option<SwitchSync>,
    pub last_sync_error: Option<SwitchSync>,
}

/// `v1.SwitchNic` (the fields the agent reads; the stored `identifier`,
/// `actual` and `bgp_port_state` are the API's record of what the agent
/// reported and are not needed).
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchNic {
    pub name: String,
    /// `""` = unprovisioned, `default` = firewall, `vrf<N>` = tenant.
    pub vrf: Option<String>,
    /// `null`, or `{cidrs, vnis}` where either may be `null`.
    pub filter: Option<BgpFilter>,
    /// Desired admin state (metal-api v0.45, `UP|DOWN|null`).
    pub admin_status: Option<String>,
}

/// `v1.BGPFilter`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BgpFilter {
    pub cidrs: Option<Vec<String>>,
    pub vnis: Option<Vec<String>>,
}

/// `metal.SwitchBGPPortState`: no json tags on the Go struct, so the keys
/// are the capitalised field names (trap 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BgpPortState {
    pub neighbor: String,
    pub peer_group: String,
    pub vrf_name: String,
    pub bgp_state: String,
    /// Unix seconds; 0 = never established.
    pub bgp_timer_up_established: i64,
    pub sent_prefix_counter: i64,
    pub accepted_prefix_counter: i64,
}

/// `v1.SwitchSync`: `duration` in nanoseconds (trap 3).
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchSync {
    pub time: String,
    #[serde(default)]
    pub duration: i64,
    pub error: Option<String>,
}

/// `v1.SwitchRegisterRequest` as metal-core sends it from SONiC.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchRegisterRequest {
    pub id: String,
    pub name: String,
    pub partition_id: String,
    pub rack_id: String,
    /// metal-api v0.45; older servers ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    pub management_ip: String,
    pub management_user: String,
    pub os: SwitchOs,
    pub nics: Vec<RegisterNic>,
}

/// `v1.SwitchOS`.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchOs {
    pub vendor: &'static str,
    pub version: String,
    pub metal_core_version: String,
}

/// A nic at registration: `mac` and `actual` are `null` like metal-go's.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterNic {
    pub name: String,
    pub identifier: String,
    pub mac: Option<String>,
    pub actual: Option<String>,
}

/// `v1.SwitchNotifyRequest`.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchNotifyRequest {
    /// Nanoseconds (trap 3).
    pub sync_duration: i64,
    /// `null` = success.
    pub error: Option<String>,
    pub port_states: BTreeMap<String, &'static str>,
    /// Omitted when unknown (the stored states stay), like metal-go's `omitempty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_port_states: Option<BTreeMap<String, BgpPortState>>,
}

/// `v1.SwitchNotifyResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchNotifyResponse {
    pub last_sync: Option<SwitchSync>,
    pub last_sync_error: Option<SwitchSync>,
}

/// `httperrors.HTTPErrorResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpErrorResponse {
    #[serde(default)]
    pub message: String,
}

/// v1 value of a port state.
pub fn port_state(s: PortOperState) -> &'static str {
    match s {
        PortOperState::Up => "UP",
        PortOperState::Down => "DOWN",
        PortOperState::Unknown => "UNKNOWN",
    }
}

impl SwitchResponse {
    /// The API-neutral reading (metal-core master reads `admin_status`, not
    /// `actual`), or every nic whose `admin_status` is not `UP`, `DOWN`,
    /// `UNKNOWN` (not set) or `null`.
    pub fn to_desc(&self) -> Result<SwitchDesc, Vec<String>> {
        let nics = self.nics.iter().flatten().map(|n| {
            let filter = n.filter.clone().unwrap_or_default();
            WireNic {
                name: &n.name,
                vrf: n.vrf.as_deref(),
                filter: FilterDesc {
                    cidrs: filter.cidrs.unwrap_or_default(),
                    vnis: filter.vnis.unwrap_or_default(),
                },
                admin: admin_status(n.admin_status.as_deref()),
            }
        });
        switch_desc(&self.id, nics)
    }

    /// Everything the agent keeps from a register or find response.
    pub fn to_fetched(&self) -> Result<FetchedSwitch, SwitchProblem> {
        fetched(
            self.to_desc(),
            self.nics.iter().flatten().map(|n| n.name.clone()).collect(),
            sync_status(self.last_sync.as_ref(), self.last_sync_error.as_ref()),
            // v1's switch has no generation (only `changed`, a time).
            None,
        )
    }
}

/// `admin_status`: `UP`/`DOWN` (any case: metal-core lower-cases it), `null`
/// or `UNKNOWN` (not set: metal-core applies only up and down); anything
/// else is refused rather than ignored.
fn admin_status(s: Option<&str>) -> Result<Option<AdminStatus>, String> {
    match s.map(str::to_ascii_lowercase).as_deref() {
        None | Some("unknown") => Ok(None),
        Some("up") => Ok(Some(AdminStatus::Up)),
        Some("down") => Ok(Some(AdminStatus::Down)),
        Some(_) => Err(format!(
            "admin_status {} is not UP, DOWN, UNKNOWN or null",
            quoted(s.unwrap_or_default())
        )),
    }
}

fn sync_record(s: Option<&SwitchSync>) -> Result<Option<SyncRecord>, String> {
    let Some(s) = s else { return Ok(None) };
    let Some(time) = parse_sync_time(&s.time)? else {
        return Ok(None);
    };
    Ok(Some(SyncRecord {
        time,
        duration: std::time::Duration::from_nanos(u64::try_from(s.duration).unwrap_or(0)),
        error: s.error.clone(),
    }))
}

fn sync_status(ok: Option<&SwitchSync>, err: Option<&SwitchSync>) -> Result<SyncStatus, String> {
    super::sync_status(ok, err, sync_record)
}

impl SwitchNotifyResponse {
    pub fn to_status(&self) -> Result<SyncStatus, String> {
        sync_status(self.last_sync.as_ref(), self.last_sync_error.as_ref())
    }
}

/// The register body: nics with `mac: null` and `actual: null` (metal-core
/// on SONiC sends neither), vendor `SONiC`.
pub fn register_request(r: &Registration) -> SwitchRegisterRequest {
    SwitchRegisterRequest {
        id: r.id.clone(),
        name: r.id.clone(),
        partition_id: r.partition.clone(),
        rack_id: r.rack.clone().unwrap_or_default(),
        room_id: r.room.clone(),
        management_ip: r.management_ip.to_string(),
        management_user: r.management_user.clone(),
        os: SwitchOs {
            vendor: "SONiC",
            version: r.os_version.clone(),
            metal_core_version: r.agent_version.clone(),
        },
        nics: r.nics.iter().map(RegisterNic::of).collect(),
    }
}

impl RegisterNic {
    /// A registered nic as metal-core sends it from SONiC: without `mac`
    /// and `actual`.
    fn of(n: &super::RegisteredNic) -> RegisterNic {
        RegisterNic {
            name: n.name.clone(),
            identifier: n.identifier.clone(),
            mac: None,
            actual: None,
        }
    }
}

/// The notify body.
///
/// - `port_states`: when the nics of the last register/find are known, exactly
///   those (missing ones as `UNKNOWN`, others dropped: metal-api would only
///   log them); otherwise the report as is.
/// - `bgp_port_states`: every entry, capitalised keys, a never-established
///   timer as 0; omitted when the report has none (stored states stay).
pub fn notify_request(report: &SwitchReport, known_nics: Option<&[String]>) -> SwitchNotifyRequest {
    let port_states = match known_nics {
        Some(nics) => nics
            .iter()
            .map(|n| (n.clone(), port_state(report.port_state_of(n))))
            .collect(),
        None => report
            .port_states
            .iter()
            .map(|(n, s)| (n.clone(), port_state(*s)))
            .collect(),
    };
    let bgp_port_states = report.bgp_port_states.as_ref().map(|states| {
        states
            .iter()
            .map(|(port, b)| {
                (
                    port.clone(),
                    BgpPortState {
                        neighbor: b.neighbor.clone(),
                        peer_group: b.peer_group.clone(),
                        vrf_name: b.vrf_name.clone(),
                        bgp_state: b.state.as_str().to_owned(),
                        bgp_timer_up_established: b
                            .established_since
                            .and_then(|s| i64::try_from(s).ok())
                            .unwrap_or(0),
                        sent_prefix_counter: i64::try_from(b.sent_prefixes).unwrap_or(i64::MAX),
                        accepted_prefix_counter: i64::try_from(b.accepted_prefixes)
                            .unwrap_or(i64::MAX),
                    },
                )
            })
            .collect()
    });
    SwitchNotifyRequest {
        sync_duration: i64::try_from(report.duration.as_nanos()).unwrap_or(i64::MAX),
        error: report.error.clone(),
        port_states,
        bgp_port_states,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::api::samples;

    fn fixture(name: &str) -> String {
        samples::fixture("v1", name)
    }

    /// Every v1 fixture parses into the type it is an example of.
    #[test]
    fn every_v1_fixture_parses() {
        let r: SwitchResponse = serde_json::from_str(&fixture("switch-response.json")).unwrap();
        let f = r.to_fetched().unwrap();
        assert_eq!(f.desc.id, "r01leaf01");
        assert_eq!(f.nic_names.len(), 4);
        let ls = f.sync.last_sync.unwrap();
        assert_eq!(ls.duration, Duration::from_nanos(812_345_678));
        assert_eq!(ls.time, 1_787_315_706);
        assert!(f.sync.last_sync_error.is_none());
        // capitalised BGP keys (trap 2) read into the notify type
        let doc: Value = serde_json::from_str(&fixture("switch-response.json")).unwrap();
        let bgp: BgpPortState =
            serde_json::from_value(doc["nics"][0]["bgp_port_state"].clone()).unwrap();
        assert_eq!(bgp.neighbor, "fw-1");
        assert_eq!(bgp.bgp_timer_up_established, 1_776_078_835);
        // filter null / {cidrs, vnis: []}
        let nics = r.nics.as_ref().unwrap();
        assert!(nics[2].filter.is_none());
        assert_eq!(f.desc.nics[2].filter, FilterDesc::default());

        let n: SwitchNotifyResponse =
            serde_json::from_str(&fixture("switch-notify-response.json")).unwrap();
        let st = n.to_status().unwrap();
        assert_eq!(st.last_sync.unwrap().duration.as_nanos(), 812_345_678);

        let e: HttpErrorResponse = serde_json::from_str(&fixture("error-response.json")).unwrap();
        assert_eq!(e.message, "Wrong HMAC found");

        // Requests: the notify fixture has the shape notify_request produces.
        let req: Value = serde_json::from_str(&fixture("switch-notify-request.json")).unwrap();
        let states: BTreeMap<String, BgpPortState> =
            serde_json::from_value(req["bgp_port_states"].clone()).unwrap();
        assert_eq!(states["Ethernet120"].accepted_prefix_counter, 95);
        for name in [
            "switch-register-request-sonic.json",
            "register-body-from-metal-api-tests.json",
            "swagger-switch-subset.json",
        ] {
            let v: Value = serde_json::from_str(&fixture(name)).unwrap();
            assert!(v.is_object(), "{name}");
        }
        let swagger: Value = serde_json::from_str(&fixture("swagger-switch-subset.json")).unwrap();
        // the wire names used here are the ones the spec defines
        let bgp_props = &swagger["definitions"]["metal.SwitchBGPPortState"]["properties"];
        for k in [
            "Neighbor",
            "PeerGroup",
            "VrfName",
            "BgpState",
            "BgpTimerUpEstablished",
            "SentPrefixCounter",
            "AcceptedPrefixCounter",
        ] {
            assert!(bgp_props.get(k).is_some(), "swagger lacks {k}");
        }
        let notify_props = &swagger["definitions"]["v1.SwitchNotifyRequest"]["properties"];
        for k in ["sync_duration", "error", "port_states", "bgp_port_states"] {
            assert!(notify_props.get(k).is_some(), "swagger lacks {k}");
        }
    }

    #[test]
    fn register_body_matches_the_sonic_fixture() {
        let reg = samples::registration();
        let got = serde_json::to_value(register_request(&reg)).unwrap();
        let want: Value =
            serde_json::from_str(&fixture("switch-register-request-sonic.json")).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn notify_body_matches_the_fixture() {
        // The v1 fixture also reports Ethernet2, down.
        let mut report = samples::report();
        report
            .port_states
            .insert("Ethernet2".to_owned(), PortOperState::Down);
        let got = serde_json::to_value(notify_request(&report, None)).unwrap();
        let want: Value = serde_json::from_str(&fixture("switch-notify-request.json")).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn notify_completes_known_nics_and_keeps_incomplete_bgp_entries() {
        let report = SwitchReport {
            duration: Duration::from_secs(15),
            error: Some("boom".into()),
            port_states: BTreeMap::from([
                ("Ethernet0".into(), PortOperState::Up),
                ("Ethernet99".into(), PortOperState::Up),
            ]),
            bgp_port_states: Some(BTreeMap::from([(
                "Ethernet1".into(),
                samples::idle_machine(),
            )])),
        };
        let known = vec!["Ethernet0".to_owned(), "Ethernet1".to_owned()];
        let got = serde_json::to_value(notify_request(&report, Some(&known))).unwrap();
        assert_eq!(
            got,
            json!({
                "sync_duration": 15_000_000_000_i64,
                "error": "boom",
                "port_states": {"Ethernet0": "UP", "Ethernet1": "UNKNOWN"},
                "bgp_port_states": {"Ethernet1": {
                    "Neighbor": "", "PeerGroup": "MACHINE", "VrfName": "Vrf104009",
                    "BgpState": "Idle", "BgpTimerUpEstablished": 0,
                    "SentPrefixCounter": 0, "AcceptedPrefixCounter": 0}}
            })
        );
        // No BGP information: the field is omitted, stored states stay.
        let none = SwitchReport {
            bgp_port_states: None,
            ..report
        };
        let got = serde_json::to_value(notify_request(&none, None)).unwrap();
        assert!(got.get("bgp_port_states").is_none(), "{got}");
    }

    #[test]
    fn year_one_and_null_sync_read_as_never() {
        let r: SwitchResponse = serde_json::from_value(json!({
            "id": "x", "nics": null,
            "last_sync": {"time": "0001-01-01T00:00:00Z", "duration": 0, "error": null},
            "last_sync_error": null
        }))
        .unwrap();
        let f = r.to_fetched().unwrap();
        assert!(f.sync.last_sync.is_none() && f.sync.last_sync_error.is_none());
        assert!(f.desc.nics.is_empty());
    }
}
