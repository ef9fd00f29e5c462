//! metal-apiserver v2 wire types (Connect, proto3 JSON mapping, metal-api
//! reference §3) and their conversion to and from the API-neutral types (pure).
//!
//! Responses use lowerCamelCase names; the snake_case proto names are
//! accepted too, as the server accepts both. Requests follow the traps of
//! reference §9:
//! - enums are the proto value names, never value 0 (trap 4);
//! - `portStates` is omitted or covers every nic of the last Get/Register,
//!   never `{}` (trap 5);
//! - every string the server validates is checked here first (2..128
//!   characters, hostname id, IP management address), so a bad request
//!   fails locally with a message naming the field (trap 6);
//! - every nic carries `state.actual` at registration; every BGP entry
//!   carries `bgpTimerUpEstablished` (the Unix epoch when never
//!   established); entries whose `neighbor`, `peerGroup` or `vrfName` the
//!   server would reject (an Idle peer has no hostname) are dropped, which
//!   the server reads as "no BGP session on this port" (traps 6, 7);
//! - Durations are `"<seconds>s"` strings, Timestamps RFC 3339, 64-bit
//!   integers strings (traps 3, 4); a year-1 timestamp reads as "never".

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{
    ComponentPing, FetchedSwitch, PhoneHomeEvent, Registration, SwitchProblem, SyncRecord,
    SyncStatus, WireNic, fetched, switch_desc,
};
use crate::names::{hostname_problem, quoted};
use crate::observed::{BgpState, PortOperState, SwitchReport};
use crate::spec::{AdminStatus, FilterDesc, SwitchDesc};
use crate::time::{format_duration, format_timestamp, parse_duration, parse_sync_time};

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// `metalstack.api.v2.Switch` (the fields the agent reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Switch {
    pub id: String,
    /// The server's record; the agent reads its `generation` only.
    pub meta: Option<Meta>,
    /// Missing, `null` (protojson: unset) and `[]` are the same: no nics,
    /// which `spec::build` refuses with one clear message.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nics: Vec<SwitchNic>,
    #[serde(default, rename = "lastSync", alias = "last_sync")]
    pub last_sync: Option<SwitchSync>,
    #[serde(default, rename = "lastSyncError", alias = "last_sync_error")]
    pub last_sync_error: Option<SwitchSync>,
}

/// `metalstack.api.v2.Meta` (response only): `generation` counts the
/// server's updates of the object (a uint64: a JSON string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default, deserialize_with = "u64_json")]
    pub generation: u64,
}

/// `SwitchServiceGetResponse`, `SwitchServiceRegisterResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchResponse {
    pub switch: Switch,
}

/// `metalstack.api.v2.SwitchNic` (the fields the agent reads; `identifier`,
/// `state.actual` and `bgpPortState` are the server's record of what the
/// agent reported).
#[derive(Debug, Clone, Deserialize)]
pub struct SwitchNic {
    pub name: String,
    pub vrf: Option<String>,
    pub state: Option<NicState>,
    #[serde(default, alias = "bgp_filter", rename = "bgpFilter")]
    pub bgp_filter: Option<BgpFilter>,
}

/// `NicState`: enum names like `SWITCH_PORT_STATUS_UP` (only `desired`
/// configures the switch).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NicState {
    pub desired: Option<String>,
}

/// `BGPFilter`: repeated fields are omitted when empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BgpFilter {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub cidrs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub vnis: Vec<String>,
}

/// `SwitchSync`: Timestamp and Duration strings, each optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SwitchSync {
    pub time: Option<String>,
    pub duration: Option<String>,
    pub error: Option<String>,
}

/// `SwitchServiceHeartbeatResponse`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeartbeatResponse {
    #[serde(default, rename = "lastSync", alias = "last_sync")]
    pub last_sync: Option<SwitchSync>,
    #[serde(default, rename = "lastSyncError", alias = "last_sync_error")]
    pub last_sync_error: Option<SwitchSync>,
}

/// `EventServiceSendResponse`: `events` is a uint64 (a JSON string).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventSendResponse {
    #[serde(default, deserialize_with = "u64_json")]
    pub events: u64,
    #[serde(default)]
    pub failed: Vec<String>,
}

/// `metalstack.api.v2.TokenServiceRefreshResponse` (the fields the agent
/// reads): the new token's metadata and its secret (the JWT).
#[derive(Debug, Clone, Deserialize)]
pub struct RefreshResponse {
    pub token: Option<TokenMeta>,
    pub secret: String,
}

/// `metalstack.api.v2.Token`: its validity (Timestamps).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenMeta {
    pub expires: Option<String>,
    #[serde(default, rename = "issuedAt", alias = "issued_at")]
    pub issued_at: Option<String>,
}

/// A Connect error body (`details` are not needed).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// A repeated field: proto3 JSON reads `null` as unset, i.e. empty.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A proto3 JSON 64-bit integer: a string, or a number (both are valid input).
fn u64_json<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a uint64"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a uint64"))),
        other => Err(serde::de::Error::custom(format!("{other} is not a uint64"))),
    }
}

/// A `Switch`, given either bare or wrapped in a `SwitchServiceGetResponse`.
pub fn switch_from_document(doc: Value) -> Result<Switch, serde_json::Error> {
    if doc.get("switch").is_some() {
        Ok(serde_json::from_value::<SwitchResponse>(doc)?.switch)
    } else {
        serde_json::from_value(doc)
    }
}

fn sync_record(s: Option<&SwitchSync>) -> Result<Option<SyncRecord>, String> {
    let Some(s) = s else { return Ok(None) };
    // An unset Timestamp is the same "never" as the Go zero time.
    let Some(time) = s.time.as_deref() else {
        return Ok(None);
    };
    let Some(time) = parse_sync_time(time)? else {
        return Ok(None);
    };
    let duration = match s.duration.as_deref() {
        Some(d) => parse_duration(d)?,
        None => std::time::Duration::ZERO,
    };
    Ok(Some(SyncRecord {
        time,
        duration,
        error: s.error.clone(),
    }))
}

fn sync_status(ok: Option<&SwitchSync>, err: Option<&SwitchSync>) -> Result<SyncStatus, String> {
    super::sync_status(ok, err, sync_record)
}

impl Switch {
    /// The API-neutral reading: admin status from `state.desired` (MC-v2),
    /// or every nic whose `state.desired` is not a `SwitchPortStatus` name.
    pub fn to_desc(&self) -> Result<SwitchDesc, Vec<String>> {
        let nics = self.nics.iter().map(|n| {
            let filter = n.bgp_filter.clone().unwrap_or_default();
            let desired = n.state.as_ref().and_then(|s| s.desired.as_deref());
            WireNic {
                name: &n.name,
                vrf: n.vrf.as_deref(),
                filter: FilterDesc {
                    cidrs: filter.cidrs,
                    vnis: filter.vnis,
                },
                admin: desired_status(desired),
            }
        });
        switch_desc(&self.id, nics)
    }

    /// Everything the agent keeps from a Get or Register response.
    pub fn to_fetched(&self) -> Result<FetchedSwitch, SwitchProblem> {
        fetched(
            self.to_desc(),
            self.nics.iter().map(|n| n.name.clone()).collect(),
            sync_status(self.last_sync.as_ref(), self.last_sync_error.as_ref()),
            // protojson leaves out a zero: no generation.
            self.meta.as_ref().map(|m| m.generation).filter(|g| *g != 0),
        )
    }
}

/// `state.desired`: `SWITCH_PORT_STATUS_UP` / `_DOWN` set it; `_UNKNOWN`,
/// `_UNSPECIFIED` or no value leave it unset; any other name is refused.
fn desired_status(s: Option<&str>) -> Result<Option<AdminStatus>, String> {
    match s {
        None | Some("SWITCH_PORT_STATUS_UNKNOWN" | "SWITCH_PORT_STATUS_UNSPECIFIED") => Ok(None),
        Some("SWITCH_PORT_STATUS_UP") => Ok(Some(AdminStatus::Up)),
        Some("SWITCH_PORT_STATUS_DOWN") => Ok(Some(AdminStatus::Down)),
        Some(other) => Err(format!(
            "state.desired {} is not SWITCH_PORT_STATUS_UP, _DOWN, _UNKNOWN or unset",
            quoted(other)
        )),
    }
}

impl HeartbeatResponse {
    pub fn to_status(&self) -> Result<SyncStatus, String> {
        sync_status(self.last_sync.as_ref(), self.last_sync_error.as_ref())
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// `SwitchServiceGetRequest`.
#[derive(Debug, Clone, Serialize)]
pub struct GetRequest {
    pub id: String,
}

/// `SwitchServiceRegisterRequest`.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterRequest {
    pub switch: RegisterSwitch,
}

/// The `Switch` of a registration (request fields only).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterSwitch {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub partition: String,
    pub management_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_user: Option<String>,
    pub nics: Vec<RegisterNic>,
    pub os: SwitchOs,
}

/// A nic at registration: `state.actual` always set (trap 7), no `mac`.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterNic {
    pub name: String,
    pub identifier: String,
    pub state: RegisterNicState,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterNicState {
    pub actual: &'static str,
}

/// `SwitchOS`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchOs {
    pub vendor: &'static str,
    pub version: String,
    pub metal_core_version: String,
}

/// `SwitchServiceHeartbeatRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    pub id: String,
    pub duration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_states: Option<BTreeMap<String, &'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp_port_states: Option<BTreeMap<String, BgpPortStateOut>>,
}

/// `SwitchBGPPortState` in a heartbeat: every field set (traps 4, 6, 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPortStateOut {
    pub neighbor: String,
    pub peer_group: String,
    pub vrf_name: String,
    pub bgp_state: &'static str,
    pub bgp_timer_up_established: String,
    pub sent_prefix_counter: String,
    pub accepted_prefix_counter: String,
}

/// `EventServiceSendRequest`.
#[derive(Debug, Clone, Serialize)]
pub struct EventSendRequest {
    pub events: BTreeMap<String, ProvisioningEvent>,
}

/// `MachineProvisioningEvent`.
#[derive(Debug, Clone, Serialize)]
pub struct ProvisioningEvent {
    pub time: String,
    pub event: &'static str,
    pub message: String,
}

/// `ComponentServicePingRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PingRequest {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub identifier: String,
    pub started_at: String,
    pub interval: String,
    pub version: PingVersion,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PingVersion {
    pub version: String,
}

/// The enum name of a port state (never `..._UNSPECIFIED`, trap 4).
pub fn port_status(s: PortOperState) -> &'static str {
    match s {
        PortOperState::Up => "SWITCH_PORT_STATUS_UP",
        PortOperState::Down => "SWITCH_PORT_STATUS_DOWN",
        PortOperState::Unknown => "SWITCH_PORT_STATUS_UNKNOWN",
    }
}

/// The enum name of a BGP state (never `BGP_STATE_UNSPECIFIED`, trap 4).
pub fn bgp_state(s: BgpState) -> &'static str {
    match s {
        BgpState::Idle => "BGP_STATE_IDLE",
        BgpState::Connect => "BGP_STATE_CONNECT",
        BgpState::Active => "BGP_STATE_ACTIVE",
        BgpState::OpenSent => "BGP_STATE_OPEN_SENT",
        BgpState::OpenConfirm => "BGP_STATE_OPEN_CONFIRM",
        BgpState::Established => "BGP_STATE_ESTABLISHED",
    }
}

/// `is_name` of `predefined_rules.proto`: 2..128 characters.
fn name_problem(field: &str, s: &str) -> Option<String> {
    let n = s.chars().count();
    (!(2..=128).contains(&n)).then(|| {
        format!("{field} {s:?} must be 2..128 characters long (metal-apiserver rule is_name)")
    })
}

/// The switch id rule: a hostname of 2..128 characters.
fn id_problems(field: &str, id: &str) -> Vec<String> {
    let mut p: Vec<String> = name_problem(field, id).into_iter().collect();
    if let Some(h) = hostname_problem(id) {
        p.push(format!("{field}: {h}"));
    }
    p
}

/// The register body, or every field the server's validation would refuse.
pub fn register_request(r: &Registration) -> Result<RegisterRequest, Vec<String>> {
    let mut problems = id_problems("switch id", &r.id);
    problems.extend(name_problem("partition_id", &r.partition));
    for (field, v) in [("rack_id", &r.rack), ("room_id", &r.room)] {
        if let Some(v) = v {
            problems.extend(name_problem(field, v));
        }
    }
    problems.extend(name_problem("management user", &r.management_user));
    problems.extend(name_problem(
        "os version (build_version of sonic_version.yml)",
        &r.os_version,
    ));
    problems.extend(name_problem("metal_core_version", &r.agent_version));
    for n in &r.nics {
        problems.extend(name_problem("nic name", &n.name));
        problems.extend(name_problem(
            &format!("identifier of nic {}", n.name),
            &n.identifier,
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RegisterRequest {
        switch: RegisterSwitch {
            id: r.id.clone(),
            rack: r.rack.clone(),
            room: r.room.clone(),
            partition: r.partition.clone(),
            management_ip: r.management_ip.to_string(),
            management_user: Some(r.management_user.clone()),
            nics: r
                .nics
                .iter()
                .map(|n| RegisterNic {
                    name: n.name.clone(),
                    identifier: n.identifier.clone(),
                    state: RegisterNicState {
                        actual: port_status(n.oper),
                    },
                })
                .collect(),
            os: SwitchOs {
                vendor: "SWITCH_OS_VENDOR_SONIC",
                version: r.os_version.clone(),
                metal_core_version: r.agent_version.clone(),
            },
        },
    })
}

/// A heartbeat body and the BGP entries left out of it (port → why).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub request: HeartbeatRequest,
    pub dropped_bgp: BTreeMap<String, String>,
}

/// The heartbeat body.
///
/// - `portStates`: omitted when the report has none or the nics of the last
///   Get/Register are unknown; otherwise exactly those nics, a missing one as
///   `SWITCH_PORT_STATUS_UNKNOWN` (the server fails the whole call with
///   `internal` if a present map lacks a nic; trap 5).
/// - `bgpPortStates`: `None` in the report → omitted (stored states stay);
///   entries the server would refuse are dropped and listed in
///   [`Heartbeat::dropped_bgp`]; the timer is always set (trap 7).
pub fn heartbeat_request(
    id: &str,
    report: &SwitchReport,
    known_nics: Option<&[String]>,
) -> Result<Heartbeat, Vec<String>> {
    let problems = id_problems("switch id", id);
    if !problems.is_empty() {
        return Err(problems);
    }
    let port_states = match known_nics {
        Some(nics) if !report.port_states.is_empty() && !nics.is_empty() => Some(
            nics.iter()
                .map(|n| (n.clone(), port_status(report.port_state_of(n))))
                .collect(),
        ),
        _ => None,
    };
    let mut dropped_bgp = BTreeMap::new();
    let bgp_port_states = report.bgp_port_states.as_ref().map(|states| {
        let mut out = BTreeMap::new();
        for (port, b) in states {
            let why: Vec<String> = [
                ("neighbor", &b.neighbor),
                ("peerGroup", &b.peer_group),
                ("vrfName", &b.vrf_name),
            ]
            .iter()
            .filter_map(|(f, v)| name_problem(f, v))
            .collect();
            if !why.is_empty() {
                dropped_bgp.insert(port.clone(), why.join("; "));
                continue;
            }
            let since = b
                .established_since
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(0);
            out.insert(
                port.clone(),
                BgpPortStateOut {
                    neighbor: b.neighbor.clone(),
                    peer_group: b.peer_group.clone(),
                    vrf_name: b.vrf_name.clone(),
                    bgp_state: bgp_state(b.state),
                    bgp_timer_up_established: format_timestamp(since, 0),
                    sent_prefix_counter: b.sent_prefixes.to_string(),
                    accepted_prefix_counter: b.accepted_prefixes.to_string(),
                },
            );
        }
        out
    });
    Ok(Heartbeat {
        request: HeartbeatRequest {
            id: id.to_owned(),
            duration: format_duration(report.duration),
            error: report.error.clone(),
            port_states,
            bgp_port_states,
        },
        dropped_bgp,
    })
}

/// The phone-home batch: one event per machine (the last one wins).
pub fn event_request(events: &[PhoneHomeEvent]) -> EventSendRequest {
    EventSendRequest {
        events: events
            .iter()
            .map(|e| {
                (
                    e.machine_id.clone(),
                    ProvisioningEvent {
                        time: format_timestamp(
                            i64::try_from(e.time.as_secs()).unwrap_or(i64::MAX),
                            e.time.subsec_nanos(),
                        ),
                        event: "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME",
                        message: e.message.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// The component ping body, or what the server would refuse.
pub fn ping_request(p: &ComponentPing) -> Result<PingRequest, Vec<String>> {
    let mut problems: Vec<String> = name_problem("identifier", &p.identifier)
        .into_iter()
        .collect();
    if p.interval.as_secs() < 5 || p.interval.as_secs() > 3600 {
        problems.push(format!(
            "ping interval {} must be between 5s and 1h",
            format_duration(p.interval)
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(PingRequest {
        kind: "COMPONENT_TYPE_METAL_CORE",
        identifier: p.identifier.clone(),
        started_at: format_timestamp(i64::try_from(p.started_at.as_secs()).unwrap_or(i64::MAX), 0),
        interval: format_duration(p.interval),
        version: PingVersion {
            version: p.version.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::api::RegisteredNic;
    use crate::api::samples::{self, established};
    use crate::observed::BgpPortState as Observed;

    fn fixture(name: &str) -> String {
        samples::fixture("v2", name)
    }

    fn json_fixture(name: &str) -> Value {
        serde_json::from_str(&fixture(name)).unwrap()
    }

    /// The heartbeat body for `report`, as JSON.
    fn heartbeat_body(report: &SwitchReport, known: Option<&[String]>) -> Value {
        serde_json::to_value(
            heartbeat_request("r01leaf01", report, known)
                .unwrap()
                .request,
        )
        .unwrap()
    }

    /// protojson: a JSON null leaves a repeated field unset (empty).
    #[test]
    fn null_filter_lists_are_empty() {
        let f: BgpFilter = serde_json::from_value(json!({"cidrs": null, "vnis": null})).unwrap();
        assert!(f.cidrs.is_empty() && f.vnis.is_empty());
        let f: BgpFilter = serde_json::from_value(json!({"cidrs": ["10.0.0.0/8"]})).unwrap();
        assert_eq!(f.cidrs, ["10.0.0.0/8"]);
        assert!(serde_json::from_value::<BgpFilter>(json!({"cidrs": "10.0.0.0/8"})).is_err());
    }

    /// Every v2 fixture parses into the type it is an example of.
    #[test]
    fn every_v2_fixture_parses() {
        let get: SwitchResponse =
            serde_json::from_str(&fixture("switch-get-response.json")).unwrap();
        let f = get.switch.to_fetched().unwrap();
        assert_eq!(f.nic_names, ["Ethernet0", "Ethernet1", "Ethernet120"]);
        let ls = f.sync.last_sync.unwrap();
        assert_eq!(ls.duration, Duration::from_nanos(812_345_678));
        assert_eq!(ls.time, 1_787_315_706);
        // lastSyncError at year 1 reads as "never"
        assert!(f.sync.last_sync_error.is_none());
        assert_eq!(f.desc.nics[1].admin, Some(AdminStatus::Down));
        assert_eq!(f.desc.nics[2].filter, FilterDesc::default());

        let hb: HeartbeatResponse =
            serde_json::from_str(&fixture("switch-heartbeat-response.json")).unwrap();
        let st = hb.to_status().unwrap();
        assert_eq!(
            st.last_sync_error.unwrap().error.as_deref(),
            Some("could not apply switch config: context deadline exceeded")
        );
        let ev: EventSendResponse =
            serde_json::from_str(&fixture("event-send-response.json")).unwrap();
        assert_eq!(ev.events, 1);
        let err: ConnectError =
            serde_json::from_str(&fixture("connect-error-response.json")).unwrap();
        assert_eq!(err.code, "invalid_argument");
        assert!(err.message.contains("Ethernet23"));
        let get_req = serde_json::to_value(GetRequest {
            id: "r01leaf01".into(),
        })
        .unwrap();
        assert_eq!(get_req, json_fixture("switch-get-request.json"));
        // The request fixtures are checked against what the builders produce below;
        // these two have no builder of their own:
        for name in [
            "switch-heartbeat-request-with-error.json",
            "component-ping-request.json",
        ] {
            assert!(json_fixture(name).is_object(), "{name}");
        }
    }

    #[test]
    fn register_body_matches_the_fixture() {
        // The v2 fixture registers Ethernet1 down.
        let mut reg = samples::registration();
        reg.nics[1].oper = PortOperState::Down;
        let got = serde_json::to_value(register_request(&reg).unwrap()).unwrap();
        assert_eq!(got, json_fixture("switch-register-request.json"));

        // Every field the server validates is checked locally first.
        let bad = Registration {
            id: "leaf_01".into(),
            os_version: "4".into(),
            nics: vec![RegisteredNic {
                name: "Ethernet0".into(),
                identifier: String::new(),
                oper: PortOperState::Up,
            }],
            ..reg
        };
        let problems = register_request(&bad).unwrap_err().join("\n");
        assert!(problems.contains("switch id: \"leaf_01\""), "{problems}");
        assert!(
            problems.contains("identifier of nic Ethernet0"),
            "{problems}"
        );
        assert!(problems.contains("os version"), "{problems}");
    }

    #[test]
    fn heartbeat_body_matches_the_fixture() {
        let report = samples::report();
        let known: Vec<String> = ["Ethernet0", "Ethernet1", "Ethernet120"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let hb = heartbeat_request("r01leaf01", &report, Some(&known)).unwrap();
        assert!(hb.dropped_bgp.is_empty());
        let got = serde_json::to_value(&hb.request).unwrap();
        assert_eq!(got, json_fixture("switch-heartbeat-request.json"));

        let failed = SwitchReport {
            duration: Duration::from_secs(15),
            error: Some("could not apply switch config: context deadline exceeded".into()),
            ..SwitchReport::default()
        };
        assert_eq!(
            heartbeat_body(&failed, Some(&known)),
            json_fixture("switch-heartbeat-request-with-error.json")
        );
    }

    /// Traps 5, 6 and 7: no `{}` port states, every nic covered, incomplete
    /// BGP entries dropped, the timer always present.
    #[test]
    fn heartbeat_never_sends_what_the_server_refuses() {
        let idle = samples::idle_machine();
        let active = Observed {
            neighbor: "m".into(),
            state: BgpState::Active,
            ..established("x", "MACHINE", 0, 0, 0)
        };
        let never = Observed {
            established_since: None,
            state: BgpState::Connect,
            ..established("spine01", "FABRIC", 0, 3, 4)
        };
        let report = SwitchReport {
            duration: Duration::from_millis(1500),
            error: None,
            port_states: BTreeMap::from([("Ethernet0".into(), PortOperState::Down)]),
            bgp_port_states: Some(BTreeMap::from([
                ("Ethernet23".into(), idle),
                ("Ethernet24".into(), active),
                ("Ethernet120".into(), never),
            ])),
        };
        let known = vec!["Ethernet0".to_owned(), "Ethernet1".to_owned()];
        let hb = heartbeat_request("r01leaf01", &report, Some(&known)).unwrap();
        let got = serde_json::to_value(&hb.request).unwrap();
        assert_eq!(
            got,
            json!({
                "id": "r01leaf01",
                "duration": "1.500s",
                "portStates": {
                    "Ethernet0": "SWITCH_PORT_STATUS_DOWN",
                    "Ethernet1": "SWITCH_PORT_STATUS_UNKNOWN"
                },
                "bgpPortStates": {
                    "Ethernet120": {
                        "neighbor": "spine01", "peerGroup": "FABRIC", "vrfName": "default",
                        "bgpState": "BGP_STATE_CONNECT",
                        "bgpTimerUpEstablished": "1970-01-01T00:00:00Z",
                        "sentPrefixCounter": "3", "acceptedPrefixCounter": "4"
                    }
                }
            })
        );
        assert_eq!(
            hb.dropped_bgp.keys().collect::<Vec<_>>(),
            ["Ethernet23", "Ethernet24"]
        );
        assert!(hb.dropped_bgp["Ethernet23"].contains("neighbor"));
        assert!(hb.dropped_bgp["Ethernet24"].contains("neighbor \"m\""));

        // No port states, or nics unknown: the field is omitted, never {}.
        let empty = SwitchReport {
            port_states: BTreeMap::new(),
            bgp_port_states: None,
            ..report.clone()
        };
        let v = heartbeat_body(&empty, Some(&known));
        assert!(
            v.get("portStates").is_none() && v.get("bgpPortStates").is_none(),
            "{v}"
        );
        let v = heartbeat_body(&report, None);
        assert!(v.get("portStates").is_none(), "{v}");
        let v = heartbeat_body(&report, Some(&[]));
        assert!(v.get("portStates").is_none(), "{v}");
        // No enum value is ever 0 / UNSPECIFIED.
        assert!(!got.to_string().contains("UNSPECIFIED"));
    }

    #[test]
    fn event_and_ping_bodies_match_the_fixtures() {
        let ev = event_request(&[PhoneHomeEvent {
            machine_id: "00000000-0000-0000-0000-0000000000a1".into(),
            time: Duration::new(1_787_315_760, 500_000_000),
            message: "provisioned since 2026-08-01T09:58:12Z".into(),
        }]);
        assert_eq!(
            serde_json::to_value(ev).unwrap(),
            json_fixture("event-send-request.json")
        );
        let ping = ping_request(&ComponentPing {
            identifier: "r01leaf01".into(),
            started_at: Duration::from_secs(1_787_313_600),
            interval: Duration::from_secs(300),
            version: "v0.18.0".into(),
        })
        .unwrap();
        let got = serde_json::to_value(ping).unwrap();
        let want = json_fixture("component-ping-request.json");
        for k in ["type", "identifier", "startedAt", "interval"] {
            assert_eq!(got[k], want[k], "{k}");
        }
        assert_eq!(got["version"]["version"], want["version"]["version"]);
        let e = ping_request(&ComponentPing {
            identifier: "x".into(),
            started_at: Duration::ZERO,
            interval: Duration::from_secs(1),
            version: "v".into(),
        })
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn sixty_four_bit_integers_as_strings_or_numbers() {
        let r: EventSendResponse =
            serde_json::from_value(json!({"events": "18446744073709551615"})).unwrap();
        assert_eq!(r.events, u64::MAX);
        let r: EventSendResponse = serde_json::from_value(json!({"events": 7})).unwrap();
        assert_eq!(r.events, 7);
        let r: EventSendResponse = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r.events, 0);
        assert!(serde_json::from_value::<EventSendResponse>(json!({"events": "-1"})).is_err());
    }
}
