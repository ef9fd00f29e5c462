//! metal-apiserver v2 as the lab serves it (Connect unary, JSON codec).
//!
//! Order per call, as in connect-go + metal-apiserver's infra interceptors:
//! decode the body (protojson: JSON or proto field names, unknown fields
//! discarded, unknown enum names → 0, `null` = unset; a type error or an
//! empty body → `invalid_argument`), authenticate the bearer token,
//! authorise the call, run the protovalidate rules (§3.2 of the reference),
//! then the handler (§3.4): every stored nic must be covered by a present
//! `portStates`, enum value 0 is refused by the conversions, a nic stored
//! without state breaks every later Get, a BGP entry without a timer
//! crashes the heartbeat's update path (the connection is dropped), events
//! are handled one by one and a failed one turns the answer into its error
//! while the others are stored ([`events`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hyper::HeaderMap;
use serde_json::{Map, Value, json};

use super::model::{self, Bgp, LabSwitch, Nic, Os, PortStatus, RenderError, SyncRec};
use super::wire::{self, Instant, Invalid, Msg, enum_value, parse_proto_duration, parse_rfc3339};
use super::{Call, Reply, Shared, TokenGrant, tokens};

const VENDORS: [&str; 3] = [
    "SWITCH_OS_VENDOR_UNSPECIFIED",
    "SWITCH_OS_VENDOR_CUMULUS",
    "SWITCH_OS_VENDOR_SONIC",
];
const REPLACE_MODES: [&str; 3] = [
    "SWITCH_REPLACE_MODE_UNSPECIFIED",
    "SWITCH_REPLACE_MODE_REPLACE",
    "SWITCH_REPLACE_MODE_OPERATIONAL",
];
const EVENT_TYPES: [&str; 12] = [
    "MACHINE_PROVISIONING_EVENT_TYPE_UNSPECIFIED",
    "MACHINE_PROVISIONING_EVENT_TYPE_ALIVE",
    "MACHINE_PROVISIONING_EVENT_TYPE_CRASHED",
    "MACHINE_PROVISIONING_EVENT_TYPE_PXE_BOOTING",
    "MACHINE_PROVISIONING_EVENT_TYPE_PLANNED_REBOOT",
    "MACHINE_PROVISIONING_EVENT_TYPE_PREPARING",
    "MACHINE_PROVISIONING_EVENT_TYPE_REGISTERING",
    "MACHINE_PROVISIONING_EVENT_TYPE_WAITING",
    "MACHINE_PROVISIONING_EVENT_TYPE_INSTALLING",
    "MACHINE_PROVISIONING_EVENT_TYPE_BOOTING_NEW_KERNEL",
    "MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME",
    "MACHINE_PROVISIONING_EVENT_TYPE_MACHINE_RECLAIM",
];
const COMPONENT_TYPES: [&str; 3] = [
    "COMPONENT_TYPE_UNSPECIFIED",
    "COMPONENT_TYPE_PIXIECORE",
    "COMPONENT_TYPE_METAL_CORE",
];

/// A Connect error reply with the protocol's status mapping.
pub(crate) fn rpc_error(code: &str, message: impl Into<String>) -> Reply {
    let status = match code {
        "canceled" => 499,
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "unauthenticated" => 401,
        "permission_denied" => 403,
        "not_found" => 404,
        "already_exists" | "aborted" => 409,
        "resource_exhausted" => 429,
        "unimplemented" => 501,
        "unavailable" => 503,
        "deadline_exceeded" => 504,
        _ => 500,
    };
    Reply::Json {
        status,
        body: json!({"code": code, "message": message.into()}),
    }
}

fn procedure(call: Call) -> &'static str {
    match call {
        Call::V2Get => "/metalstack.infra.v2.SwitchService/Get",
        Call::V2Register => "/metalstack.infra.v2.SwitchService/Register",
        Call::V2Heartbeat => "/metalstack.infra.v2.SwitchService/Heartbeat",
        Call::V2EventSend => "/metalstack.infra.v2.EventService/Send",
        Call::V2TokenRefresh => "/metalstack.api.v2.TokenService/Refresh",
        _ => "/metalstack.infra.v2.ComponentService/Ping",
    }
}

/// The token of the `Authorization` header (metal-apiserver: cut at the
/// first space, trim the rest; the scheme is not checked).
fn bearer(headers: &HeaderMap) -> &str {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    header.split_once(' ').map(|(_, t)| t.trim()).unwrap_or("")
}

fn authorize(shared: &Shared, call: Call, headers: &HeaderMap) -> Result<(), Reply> {
    let token = bearer(headers);
    let denied = || {
        Err(rpc_error(
            "permission_denied",
            format!("not allowed to call: {}", procedure(call)),
        ))
    };
    if token.is_empty() {
        return denied();
    }
    if let Some(t) = tokens::find(shared, token) {
        if t.is_expired(wire::now().secs) {
            return Err(rpc_error(
                "unauthenticated",
                "token has invalid claims: token is expired",
            ));
        }
        return match t.grant {
            TokenGrant::Revoked => Err(rpc_error("unauthenticated", "token was revoked")),
            // Refresh is a self method: the token's own permission decides.
            _ if call == Call::V2TokenRefresh => Ok(()),
            TokenGrant::NoRole => denied(),
            TokenGrant::Viewer if call != Call::V2Get => denied(),
            _ => Ok(()),
        };
    }
    match shared.auth().tokens.get(token) {
        None => Err(rpc_error("unauthenticated", "invalid token")),
        Some(TokenGrant::Revoked) => Err(rpc_error("unauthenticated", "token was revoked")),
        Some(TokenGrant::NoRole) => denied(),
        Some(TokenGrant::Viewer) if call != Call::V2Get => denied(),
        // Self methods are not granted to API tokens without an explicit
        // permission; the lab's fixed tokens have none.
        Some(_) if call == Call::V2TokenRefresh => denied(),
        Some(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Decoding (type level) and validation (protovalidate rules)
// ---------------------------------------------------------------------------

struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, field: &str, msg: &str, rule: &str) {
        self.0.push(format!("{field}: {msg} [{rule}]"));
    }
    fn name(&mut self, field: &str, v: &str) {
        let n = v.chars().count();
        if !(2..=128).contains(&n) {
            self.add(
                field,
                "must be within 2 and 128 characters",
                "string.is_name",
            );
        }
    }
    fn reply(self) -> Option<Reply> {
        (!self.0.is_empty()).then(|| {
            rpc_error(
                "invalid_argument",
                format!("validation error:\n - {}", self.0.join("\n - ")),
            )
        })
    }
}

fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    let all_ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    all_ok
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_prefix(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    len.parse::<u8>().is_ok_and(|l| l <= max) && !len.starts_with('+')
}

fn id_rules(v: &mut Violations, field: &str, id: &str) {
    v.name(field, id);
    if !is_hostname(id) {
        v.add(field, "value must be a valid hostname", "string.hostname");
    }
}

fn defined(v: &mut Violations, field: &str, n: i64, max: i64) {
    if !(0..=max).contains(&n) {
        v.add(
            field,
            "value must be one of the defined enum values",
            "enum.defined_only",
        );
    }
}

fn timestamp(m: &Msg<'_>, json: &str, proto: &str) -> Result<Option<Instant>, Invalid> {
    match m.string(json, proto)? {
        None => Ok(None),
        Some(s) => parse_rfc3339(&s).map(Some).ok_or_else(|| {
            Invalid(format!(
                "proto: invalid google.protobuf.Timestamp value {s:?}"
            ))
        }),
    }
}

fn duration(m: &Msg<'_>, json: &str, proto: &str) -> Result<Option<Duration>, Invalid> {
    match m.string(json, proto)? {
        None => Ok(None),
        Some(s) => parse_proto_duration(&s).map(Some).ok_or_else(|| {
            Invalid(format!(
                "proto: invalid google.protobuf.Duration value {s:?}"
            ))
        }),
    }
}

#[derive(Debug, Clone)]
struct BgpReq {
    neighbor: String,
    peer_group: String,
    vrf_name: String,
    state: i64,
    timer: Option<Instant>,
    sent: u64,
    accepted: u64,
}

fn decode_bgp(o: &Map<String, Value>) -> Result<BgpReq, Invalid> {
    let m = Msg { obj: o, path: "" };
    Ok(BgpReq {
        neighbor: m.string("neighbor", "neighbor")?.unwrap_or_default(),
        peer_group: m.string("peerGroup", "peer_group")?.unwrap_or_default(),
        vrf_name: m.string("vrfName", "vrf_name")?.unwrap_or_default(),
        state: enum_value(
            o.get("bgpState").or_else(|| o.get("bgp_state")),
            &model::bgp_v2_names(),
            "bgp_state",
        )?,
        timer: timestamp(&m, "bgpTimerUpEstablished", "bgp_timer_up_established")?,
        sent: m.u64("sentPrefixCounter", "sent_prefix_counter")?,
        accepted: m.u64("acceptedPrefixCounter", "accepted_prefix_counter")?,
    })
}

fn bgp_rules(v: &mut Violations, field: &str, b: &BgpReq) {
    v.name(&format!("{field}.neighbor"), &b.neighbor);
    v.name(&format!("{field}.peer_group"), &b.peer_group);
    v.name(&format!("{field}.vrf_name"), &b.vrf_name);
    defined(v, &format!("{field}.bgp_state"), b.state, 6);
}

fn bgp_store(b: &BgpReq) -> Result<Bgp, String> {
    let state = usize::try_from(b.state)
        .ok()
        .filter(|s| *s > 0)
        .and_then(|s| model::BGP_STATES.get(s))
        .map(|(_, frr)| (*frr).to_owned())
        .ok_or_else(|| format!("unable to fetch stringvalue from bgp state {}", b.state))?;
    Ok(Bgp {
        neighbor: b.neighbor.clone(),
        peer_group: b.peer_group.clone(),
        vrf_name: b.vrf_name.clone(),
        state,
        timer: b.timer.map(|t| t.secs).unwrap_or(0),
        sent: b.sent,
        accepted: b.accepted,
    })
}

#[derive(Debug, Clone)]
struct NicReq {
    name: String,
    identifier: String,
    mac: Option<String>,
    vrf: Option<String>,
    /// (desired, actual) when `state` is present.
    state: Option<(Option<i64>, i64)>,
    filter: Option<(Vec<String>, Vec<String>)>,
    bgp: Option<BgpReq>,
}

#[derive(Debug, Clone)]
struct SwitchReq {
    id: String,
    description: String,
    rack: Option<String>,
    room: Option<String>,
    partition: String,
    replace_mode: i64,
    management_ip: String,
    management_user: Option<String>,
    console_command: Option<String>,
    nics: Vec<NicReq>,
    /// (vendor, version, metal_core_version)
    os: Option<(i64, String, String)>,
}

fn strings(list: Vec<Value>, field: &str) -> Result<Vec<String>, Invalid> {
    list.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(Invalid(format!(
                "proto: invalid value for string field {field}: {other}"
            ))),
        })
        .collect()
}

fn decode_switch(o: &Map<String, Value>) -> Result<SwitchReq, Invalid> {
    let m = Msg { obj: o, path: "" };
    let mut nics = Vec::new();
    for n in m.list("nics", "nics")? {
        let Value::Object(no) = n else {
            return Err(Invalid(
                "proto: invalid value for message field nics".into(),
            ));
        };
        let nm = Msg { obj: &no, path: "" };
        let state = match nm.message("state", "state")? {
            None => None,
            Some(s) => Some((
                s.get("desired")
                    .filter(|v| !v.is_null())
                    .map(|d| enum_value(Some(d), &PortStatus::V2_NAMES, "desired"))
                    .transpose()?,
                enum_value(s.get("actual"), &PortStatus::V2_NAMES, "actual")?,
            )),
        };
        let filter = match nm.message("bgpFilter", "bgp_filter")? {
            None => None,
            Some(f) => {
                let fm = Msg { obj: &f, path: "" };
                Some((
                    strings(fm.list("cidrs", "cidrs")?, "cidrs")?,
                    strings(fm.list("vnis", "vnis")?, "vnis")?,
                ))
            }
        };
        let bgp = nm
            .message("bgpPortState", "bgp_port_state")?
            .map(|b| decode_bgp(&b))
            .transpose()?;
        nics.push(NicReq {
            name: nm.string("name", "name")?.unwrap_or_default(),
            identifier: nm.string("identifier", "identifier")?.unwrap_or_default(),
            mac: nm.string("mac", "mac")?,
            vrf: nm.string("vrf", "vrf")?,
            state,
            filter,
            bgp,
        });
    }
    let os = match m.message("os", "os")? {
        None => None,
        Some(os) => {
            let om = Msg { obj: &os, path: "" };
            Some((
                enum_value(os.get("vendor"), &VENDORS, "vendor")?,
                om.string("version", "version")?.unwrap_or_default(),
                om.string("metalCoreVersion", "metal_core_version")?
                    .unwrap_or_default(),
            ))
        }
    };
    Ok(SwitchReq {
        id: m.string("id", "id")?.unwrap_or_default(),
        description: m.string("description", "description")?.unwrap_or_default(),
        rack: m.string("rack", "rack")?,
        room: m.string("room", "room")?,
        partition: m.string("partition", "partition")?.unwrap_or_default(),
        replace_mode: enum_value(
            o.get("replaceMode").or_else(|| o.get("replace_mode")),
            &REPLACE_MODES,
            "replace_mode",
        )?,
        management_ip: m
            .string("managementIp", "management_ip")?
            .unwrap_or_default(),
        management_user: m.string("managementUser", "management_user")?,
        console_command: m.string("consoleCommand", "console_command")?,
        nics,
        os,
    })
}

fn switch_rules(s: &SwitchReq) -> Violations {
    let mut v = Violations(Vec::new());
    id_rules(&mut v, "switch.id", &s.id);
    if s.description.chars().count() > 256 {
        v.add(
            "switch.description",
            "must be shorter than 256 characters",
            "string.is_description",
        );
    }
    for (f, x) in [
        ("switch.rack", &s.rack),
        ("switch.room", &s.room),
        ("switch.management_user", &s.management_user),
        ("switch.console_command", &s.console_command),
    ] {
        if let Some(x) = x {
            v.name(f, x);
        }
    }
    v.name("switch.partition", &s.partition);
    defined(&mut v, "switch.replace_mode", s.replace_mode, 2);
    if s.management_ip.is_empty() {
        v.add(
            "switch.management_ip",
            "value is empty, which is not a valid IP address",
            "string.ip_empty",
        );
    } else if s.management_ip.parse::<IpAddr>().is_err() {
        v.add(
            "switch.management_ip",
            "value must be a valid IP address",
            "string.ip",
        );
    }
    for (i, n) in s.nics.iter().enumerate() {
        let f = format!("switch.nics[{i}]");
        v.name(&format!("{f}.name"), &n.name);
        v.name(&format!("{f}.identifier"), &n.identifier);
        if let Some(mac) = &n.mac
            && !is_mac(mac)
        {
            v.add(
                &format!("{f}.mac"),
                "must be a valid mac address",
                "string.macaddress",
            );
        }
        if let Some(vrf) = &n.vrf {
            v.name(&format!("{f}.vrf"), vrf);
        }
        if let Some((desired, actual)) = n.state {
            if let Some(d) = desired {
                defined(&mut v, &format!("{f}.state.desired"), d, 3);
            }
            defined(&mut v, &format!("{f}.state.actual"), actual, 3);
        }
        if let Some((cidrs, vnis)) = &n.filter {
            if cidrs.iter().any(|c| !is_prefix(c)) {
                v.add(
                    &format!("{f}.bgp_filter.cidrs"),
                    "must be valid prefixes",
                    "repeated.prefixes",
                );
            }
            for (j, vni) in vnis.iter().enumerate() {
                v.name(&format!("{f}.bgp_filter.vnis[{j}]"), vni);
            }
        }
        if let Some(b) = &n.bgp {
            bgp_rules(&mut v, &format!("{f}.bgp_port_state"), b);
        }
    }
    if let Some((vendor, version, mcv)) = &s.os {
        defined(&mut v, "switch.os.vendor", *vendor, 2);
        v.name("switch.os.version", version);
        v.name("switch.os.metal_core_version", mcv);
    }
    v
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

pub(crate) fn handle(shared: &Shared, call: Call, headers: &HeaderMap, body: &[u8]) -> Reply {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Reply::Json {
            status: 415,
            body: json!({}),
        };
    }
    let message_name = match call {
        Call::V2Get => "metalstack.infra.v2.SwitchServiceGetRequest",
        Call::V2Register => "metalstack.infra.v2.SwitchServiceRegisterRequest",
        Call::V2Heartbeat => "metalstack.infra.v2.SwitchServiceHeartbeatRequest",
        Call::V2EventSend => "metalstack.infra.v2.EventServiceSendRequest",
        Call::V2TokenRefresh => "metalstack.api.v2.TokenServiceRefreshRequest",
        _ => "metalstack.infra.v2.ComponentServicePingRequest",
    };
    let unmarshal = |m: String| {
        rpc_error(
            "invalid_argument",
            format!("unmarshal into {message_name}: {m}"),
        )
    };
    if body.is_empty() {
        return unmarshal("zero-length payload is not a valid JSON object".into());
    }
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return unmarshal(format!("proto: syntax error: {e}")),
    };
    let root = match Msg::root(&doc) {
        Ok(m) => m,
        Err(e) => return unmarshal(e.0),
    };
    let decoded = match call {
        Call::V2Get => root
            .string("id", "id")
            .map(|id| Decoded::Get(id.unwrap_or_default())),
        Call::V2Register => root.message("switch", "switch").and_then(|s| {
            decode_switch(&s.unwrap_or_default()).map(|s| Decoded::Register(Box::new(s)))
        }),
        Call::V2Heartbeat => decode_heartbeat(&root).map(Decoded::Heartbeat),
        Call::V2EventSend => decode_events(&root).map(Decoded::Events),
        Call::V2TokenRefresh => Ok(Decoded::Refresh),
        _ => decode_ping(&root).map(Decoded::Ping),
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => return unmarshal(e.0),
    };
    if let Err(r) = authorize(shared, call, headers) {
        return r;
    }
    match decoded {
        Decoded::Get(id) => get(shared, &id),
        Decoded::Register(s) => register(shared, &s),
        Decoded::Heartbeat(h) => heartbeat(shared, &h),
        Decoded::Events(e) => events(shared, &e),
        Decoded::Ping(p) => ping(shared, &p),
        Decoded::Refresh => match tokens::find(shared, bearer(headers)) {
            Some(old) => {
                let issuer = shared.auth().issuer;
                tokens::refresh(shared, &issuer, &old)
            }
            None => rpc_error(
                "permission_denied",
                "not allowed to call: /metalstack.api.v2.TokenService/Refresh",
            ),
        },
    }
}

enum Decoded {
    Refresh,
    Get(String),
    Register(Box<SwitchReq>),
    Heartbeat(HbReq),
    Events(Vec<EventReq>),
    Ping(PingReq),
}

fn render_err(e: RenderError) -> Reply {
    match e {
        RenderError::NoState(p) => rpc_error(
            "internal",
            format!("nic state for port {p} cannot be empty"),
        ),
        RenderError::NoIdentifier(p) => rpc_error(
            "failed_precondition",
            format!("nic {p} has neither an identifier nor a mac"),
        ),
    }
}

fn get(shared: &Shared, id: &str) -> Reply {
    let mut v = Violations(Vec::new());
    id_rules(&mut v, "id", id);
    if let Some(r) = v.reply() {
        return r;
    }
    let st = shared.lock();
    let Some(sw) = st.switches.get(id) else {
        return rpc_error("not_found", format!("no switch with id {id:?} found"));
    };
    match model::render_v2(sw, st.status.get(id)) {
        Ok(s) => Reply::ok(json!({"switch": s})),
        Err(e) => render_err(e),
    }
}

fn port_status(n: i64, field: &str) -> Result<PortStatus, Reply> {
    PortStatus::from_v2(n).ok_or_else(|| {
        rpc_error(
            "invalid_argument",
            format!("unable to fetch stringvalue from switch port status {n} ({field})"),
        )
    })
}

fn register(shared: &Shared, s: &SwitchReq) -> Reply {
    if let Some(r) = switch_rules(s).reply() {
        return r;
    }
    let Some((vendor, version, mcv)) = &s.os else {
        return rpc_error(
            "invalid_argument",
            format!("switch os for switch {} is empty", s.id),
        );
    };
    let vendor = match vendor {
        1 => "Cumulus",
        2 => "SONiC",
        _ => {
            return rpc_error(
                "invalid_argument",
                format!("unable to fetch stringvalue from switch os vendor {vendor}"),
            );
        }
    };
    let mut nics = Vec::new();
    for n in &s.nics {
        let (desired, actual) = match n.state {
            None => (None, None),
            Some((d, a)) => {
                let d = match d.map(|d| port_status(d, "desired")).transpose() {
                    Ok(d) => d,
                    Err(r) => return r,
                };
                match port_status(a, "actual") {
                    Ok(a) => (d, Some(a)),
                    Err(r) => return r,
                }
            }
        };
        let bgp = match n.bgp.as_ref().map(bgp_store).transpose() {
            Ok(b) => b,
            Err(m) => return rpc_error("invalid_argument", m),
        };
        nics.push(Nic {
            name: n.name.clone(),
            identifier: n.identifier.clone(),
            mac: n.mac.clone(),
            vrf: n.vrf.clone(),
            actual,
            desired,
            filter: n
                .filter
                .clone()
                .map(|(cidrs, vnis)| model::Filter { cidrs, vnis }),
            bgp,
        });
    }
    let mode = match s.replace_mode {
        1 => "replace",
        2 => "operational",
        _ => "",
    };
    let os = Os {
        vendor: vendor.into(),
        version: version.clone(),
        metal_core_version: mcv.clone(),
    };
    let now = wire::now();
    let mut st = shared.lock();
    let sw = match st.switches.get(&s.id).cloned() {
        None => {
            if !st.partitions.contains(&s.partition) {
                return rpc_error(
                    "not_found",
                    format!("partition {:?} not found", s.partition),
                );
            }
            let mut ids = std::collections::BTreeSet::new();
            let mut names = std::collections::BTreeSet::new();
            for n in &nics {
                if !ids.insert(n.identifier.clone()) {
                    return rpc_error(
                        "invalid_argument",
                        format!("switch nics contain duplicate identifier {}", n.identifier),
                    );
                }
                if !names.insert(n.name.clone()) {
                    return rpc_error(
                        "invalid_argument",
                        format!("switch nics contain duplicate name {}", n.name),
                    );
                }
            }
            LabSwitch {
                id: s.id.clone(),
                name: s.id.clone(),
                description: s.description.clone(),
                partition: s.partition.clone(),
                rack: s.rack.clone(),
                room: s.room.clone(),
                mode: mode.into(),
                management_ip: s.management_ip.clone(),
                management_user: s.management_user.clone(),
                console_command: s.console_command.clone(),
                os: Some(os),
                nics,
                connections: Vec::new(),
                created: now,
                changed: now,
                generation: 1,
            }
        }
        Some(mut sw) => {
            if sw.mode == "replace" {
                return rpc_error(
                    "unimplemented",
                    "lab: switch replacement is not implemented",
                );
            }
            if let Some(old) = &sw.os
                && old.vendor != os.vendor
            {
                return rpc_error(
                    "invalid_argument",
                    format!(
                        "cannot change switch os vendor from {}, use replace instead",
                        old.vendor
                    ),
                );
            }
            if let Some(problem) = sw.connected_nic_problem(&nics) {
                return rpc_error("invalid_argument", problem);
            }
            if !nics.is_empty() {
                sw.nics = nics
                    .into_iter()
                    .map(
                        |n| match sw.nics.iter().find(|o| o.identifier == n.identifier) {
                            Some(o) => Nic {
                                name: n.name,
                                ..o.clone()
                            },
                            None => n,
                        },
                    )
                    .collect();
            }
            if !s.description.is_empty() {
                sw.description = s.description.clone();
            }
            if !mode.is_empty() {
                sw.mode = mode.into();
            }
            if !s.management_ip.is_empty() {
                sw.management_ip = s.management_ip.clone();
            }
            if s.management_user.is_some() {
                sw.management_user = s.management_user.clone();
            }
            if s.console_command.is_some() {
                sw.console_command = s.console_command.clone();
            }
            sw.os = Some(os);
            sw.changed = now;
            sw.generation += 1;
            sw
        }
    };
    let rendered = model::render_v2(&sw, st.status.get(&s.id));
    st.switches.insert(s.id.clone(), sw);
    match rendered {
        Ok(v) => Reply::ok(json!({"switch": v})),
        Err(e) => render_err(e),
    }
}

#[derive(Debug, Clone)]
struct HbReq {
    id: String,
    duration: Duration,
    error: Option<String>,
    port_states: Option<BTreeMap<String, i64>>,
    bgp: Option<BTreeMap<String, BgpReq>>,
}

fn decode_heartbeat(m: &Msg<'_>) -> Result<HbReq, Invalid> {
    let port_states = m
        .map("portStates", "port_states")?
        .map(|ps| {
            ps.iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        enum_value(Some(v), &PortStatus::V2_NAMES, "port_states")?,
                    ))
                })
                .collect::<Result<BTreeMap<_, _>, Invalid>>()
        })
        .transpose()?;
    let bgp = m
        .map("bgpPortStates", "bgp_port_states")?
        .map(|bs| {
            bs.iter()
                .map(|(k, v)| match v {
                    Value::Object(o) => Ok((k.clone(), decode_bgp(o)?)),
                    other => Err(Invalid(format!(
                        "proto: invalid value for message field bgp_port_states: {other}"
                    ))),
                })
                .collect::<Result<BTreeMap<_, _>, Invalid>>()
        })
        .transpose()?;
    Ok(HbReq {
        id: m.string("id", "id")?.unwrap_or_default(),
        duration: duration(m, "duration", "duration")?.unwrap_or_default(),
        error: m.string("error", "error")?,
        port_states,
        bgp,
    })
}

fn heartbeat(shared: &Shared, h: &HbReq) -> Reply {
    let mut v = Violations(Vec::new());
    id_rules(&mut v, "id", &h.id);
    for (port, b) in h.bgp.iter().flatten() {
        bgp_rules(&mut v, &format!("bgp_port_states[{port:?}]"), b);
    }
    if let Some(r) = v.reply() {
        return r;
    }
    let mut st = shared.lock();
    // 1. the status record, before the switch is even looked up
    let rec = SyncRec {
        time: wire::now(),
        duration: h.duration,
        error: h.error.clone(),
    };
    let status = st.status.entry(h.id.clone()).or_default();
    if h.error.is_none() {
        status.last_sync = Some(rec);
    } else {
        status.last_sync_error = Some(rec);
    }
    let status = status.clone();
    // 2. the switch
    let Some(mut sw) = st.switches.get(&h.id).cloned() else {
        return rpc_error("not_found", format!("no switch with id {:?} found", h.id));
    };
    let mut changed = false;
    // 3. port states: a present map must cover every nic
    if let Some(ps) = &h.port_states {
        for nic in &mut sw.nics {
            let Some(reported) = ps.get(&nic.name) else {
                return rpc_error(
                    "internal",
                    format!(
                        "failed to determine switch port state because port {} was not found on switch",
                        nic.name
                    ),
                );
            };
            let reported = match port_status(*reported, &format!("port_states[{}]", nic.name)) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let desired = if nic.desired == Some(reported) {
                None
            } else {
                nic.desired
            };
            if nic.actual != Some(reported) || nic.desired != desired {
                nic.actual = Some(reported);
                nic.desired = desired;
                changed = true;
            }
        }
    }
    // 4. BGP states: absent nics are cleared, the others replaced
    if let Some(bs) = &h.bgp {
        for nic in &mut sw.nics {
            let new = match bs.get(&nic.name) {
                None => None,
                Some(b) => {
                    if b.timer.is_none() {
                        // toSwitchBGPPortState reads the timer's seconds without a nil check
                        return Reply::Drop {
                            why: format!(
                                "metal-apiserver would panic: bgp_port_states[{:?}] has no \
                                 bgpTimerUpEstablished",
                                nic.name
                            ),
                        };
                    }
                    match bgp_store(b) {
                        Ok(b) => Some(b),
                        Err(m) => return rpc_error("invalid_argument", m),
                    }
                }
            };
            if nic.bgp != new {
                nic.bgp = new;
                changed = true;
            }
        }
    }
    if changed {
        sw.generation += 1;
        sw.changed = wire::now();
        st.switches.insert(h.id.clone(), sw);
    }
    Reply::ok(model::render_v2_heartbeat(&h.id, &status))
}

#[derive(Debug, Clone)]
struct EventReq {
    machine_id: String,
    event: i64,
}

fn decode_events(m: &Msg<'_>) -> Result<Vec<EventReq>, Invalid> {
    let Some(events) = m.map("events", "events")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (id, e) in events {
        let Value::Object(o) = e else {
            return Err(Invalid(format!(
                "proto: invalid value for message field events: {e}"
            )));
        };
        let em = Msg { obj: &o, path: "" };
        timestamp(&em, "time", "time")?;
        em.string("message", "message")?;
        out.push(EventReq {
            machine_id: id,
            event: enum_value(o.get("event"), &EVENT_TYPES, "event")?,
        });
    }
    Ok(out)
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `EventService/Send` as metal-apiserver answers it (metal-api reference
/// §3.4; MAS `pkg/service/infra/event/event-service.go`): every event is
/// handled on its own, in turn; an unknown machine id is created when it is
/// a UUID and refused (`invalid_argument`) otherwise; events of machines the
/// lab was told to refuse ([`super::ApiServer::refuse_events_of`], standing
/// in for a storage or state-machine failure) fail with the code given. The
/// events that succeed are stored even when others fail. If any failed, the
/// answer is an error (connect-go sends the code and message of the first
/// failure of the joined errors) and the counts are not seen; otherwise
/// `{events: <count>}`.
fn events(shared: &Shared, events: &[EventReq]) -> Reply {
    let mut st = shared.lock();
    let mut processed = 0u64;
    let mut errors: Vec<(String, String)> = Vec::new();
    for e in events {
        let id = &e.machine_id;
        let known = st
            .switches
            .values()
            .any(|s| s.connections.iter().any(|(m, _)| m == id))
            || st.machine_events.contains_key(id);
        if !known && !is_uuid(id) {
            errors.push((
                "invalid_argument".into(),
                format!("machine with id {id:?} not found and not a uuid"),
            ));
            continue;
        }
        if e.event <= 0 || e.event as usize >= EVENT_TYPES.len() {
            errors.push((
                "invalid_argument".into(),
                format!("unable to fetch stringvalue from event type {}", e.event),
            ));
            continue;
        }
        if let Some(code) = st.refused_machines.get(id) {
            errors.push((
                code.clone(),
                format!("machine {id}: the event could not be stored"),
            ));
            continue;
        }
        let kind = EVENT_TYPES
            .get(e.event as usize)
            .copied()
            .unwrap_or_default()
            .to_owned();
        let stored = st.machine_events.entry(id.clone()).or_default();
        stored.push(kind);
        // metal-apiserver keeps the last 100 events of a machine.
        if stored.len() > 100 {
            stored.remove(0);
        }
        processed += 1;
    }
    if let Some((code, message)) = errors.into_iter().next() {
        return rpc_error(&code, message);
    }
    if processed == 0 {
        Reply::ok(json!({}))
    } else {
        Reply::ok(json!({"events": processed.to_string()}))
    }
}

#[derive(Debug, Clone)]
struct PingReq {
    kind: i64,
    identifier: String,
    started_at: Option<Instant>,
    interval: Option<Duration>,
    raw: Value,
}

fn decode_ping(m: &Msg<'_>) -> Result<PingReq, Invalid> {
    Ok(PingReq {
        kind: enum_value(m.obj.get("type"), &COMPONENT_TYPES, "type")?,
        identifier: m.string("identifier", "identifier")?.unwrap_or_default(),
        started_at: timestamp(m, "startedAt", "started_at")?,
        interval: duration(m, "interval", "interval")?,
        raw: Value::Object(m.obj.clone()),
    })
}

fn ping(shared: &Shared, p: &PingReq) -> Reply {
    let mut v = Violations(Vec::new());
    v.name("identifier", &p.identifier);
    defined(&mut v, "type", p.kind, 2);
    if p.started_at.is_none_or(|t| t >= wire::now()) {
        v.add(
            "started_at",
            "value must be less than now",
            "timestamp.lt_now",
        );
    }
    if p.interval
        .is_none_or(|i| i < Duration::from_secs(5) || i > Duration::from_secs(3600))
    {
        v.add(
            "interval",
            "value must be greater than or equal to 5s and less than or equal to 1h",
            "duration.gte_lte",
        );
    }
    if let Some(r) = v.reply() {
        return r;
    }
    shared
        .lock()
        .components
        .insert(p.identifier.clone(), p.raw.clone());
    Reply::ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(is_hostname("r01leaf01"));
        assert!(is_hostname("r01leaf01.example.com"));
        assert!(!is_hostname("leaf_01"));
        assert!(!is_hostname("-leaf"));
        assert!(!is_hostname("1.2.3.4"));
        assert!(is_mac("aa:bb:cc:dd:ee:FF"));
        assert!(!is_mac(""));
        assert!(is_prefix("10.0.0.0/8") && is_prefix("2001:db8::/48"));
        assert!(!is_prefix("10.0.0.0/33") && !is_prefix("10.0.0.0"));
        assert!(is_uuid("00000000-0000-0000-0000-0000000000a1"));
        assert!(!is_uuid("machine-1"));
    }
}
