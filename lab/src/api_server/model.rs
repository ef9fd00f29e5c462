//! The lab server's switch model and how each API version renders it.
//!
//! One model serves both versions: a switch state file in either wire
//! format is read into it, and every answer is rendered from it the way the
//! real server's marshalling does (v1 `encoding/json` with few
//! `omitempty`s, v2 protojson with zero values omitted).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use super::wire::{
    GO_ZERO_TIME, Instant, Msg, parse_proto_duration, parse_rfc3339, proto_duration,
    proto_timestamp, rfc3339_nano,
};

/// Port status as metal-apiserver stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortStatus {
    Up,
    Down,
    Unknown,
}

impl PortStatus {
    pub const V2_NAMES: [&'static str; 4] = [
        "SWITCH_PORT_STATUS_UNSPECIFIED",
        "SWITCH_PORT_STATUS_UP",
        "SWITCH_PORT_STATUS_DOWN",
        "SWITCH_PORT_STATUS_UNKNOWN",
    ];

    pub fn from_v2(n: i64) -> Option<PortStatus> {
        match n {
            1 => Some(PortStatus::Up),
            2 => Some(PortStatus::Down),
            3 => Some(PortStatus::Unknown),
            _ => None,
        }
    }

    pub fn v2(self) -> &'static str {
        match self {
            PortStatus::Up => "SWITCH_PORT_STATUS_UP",
            PortStatus::Down => "SWITCH_PORT_STATUS_DOWN",
            PortStatus::Unknown => "SWITCH_PORT_STATUS_UNKNOWN",
        }
    }

    pub fn from_v1(s: &str) -> Option<PortStatus> {
        match s {
            "UP" => Some(PortStatus::Up),
            "DOWN" => Some(PortStatus::Down),
            "UNKNOWN" => Some(PortStatus::Unknown),
            _ => None,
        }
    }

    pub fn v1(self) -> &'static str {
        match self {
            PortStatus::Up => "UP",
            PortStatus::Down => "DOWN",
            PortStatus::Unknown => "UNKNOWN",
        }
    }
}

/// BGP states: index = v2 enum number, value = FRR / v1 name.
pub const BGP_STATES: [(&str, &str); 7] = [
    ("BGP_STATE_UNSPECIFIED", ""),
    ("BGP_STATE_IDLE", "Idle"),
    ("BGP_STATE_CONNECT", "Connect"),
    ("BGP_STATE_ACTIVE", "Active"),
    ("BGP_STATE_OPEN_SENT", "OpenSent"),
    ("BGP_STATE_OPEN_CONFIRM", "OpenConfirm"),
    ("BGP_STATE_ESTABLISHED", "Established"),
];

pub fn bgp_v2_names() -> Vec<&'static str> {
    BGP_STATES.iter().map(|(n, _)| *n).collect()
}

/// A stored BGP session state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp {
    pub neighbor: String,
    pub peer_group: String,
    pub vrf_name: String,
    /// FRR name (`Established`).
    pub state: String,
    /// Unix seconds.
    pub timer: i64,
    pub sent: u64,
    pub accepted: u64,
}

/// A BGP filter as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub cidrs: Vec<String>,
    pub vnis: Vec<String>,
}

/// A stored nic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub name: String,
    pub identifier: String,
    pub mac: Option<String>,
    pub vrf: Option<String>,
    /// `None` = stored without state (a v2 Get then fails, as on the real server).
    pub actual: Option<PortStatus>,
    pub desired: Option<PortStatus>,
    pub filter: Option<Filter>,
    pub bgp: Option<Bgp>,
}

/// The OS of a switch; `vendor` is the DB string (`SONiC`, `Cumulus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    pub vendor: String,
    pub version: String,
    pub metal_core_version: String,
}

/// A stored switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSwitch {
    pub id: String,
    pub name: String,
    pub description: String,
    pub partition: String,
    pub rack: Option<String>,
    pub room: Option<String>,
    /// `""`, `operational` or `replace`.
    pub mode: String,
    pub management_ip: String,
    pub management_user: Option<String>,
    pub console_command: Option<String>,
    pub os: Option<Os>,
    pub nics: Vec<Nic>,
    /// (machine id, nic name).
    pub connections: Vec<(String, String)>,
    pub created: Instant,
    pub changed: Instant,
    pub generation: u64,
}

/// One report the server recorded (`last_sync` / `last_sync_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRec {
    pub time: Instant,
    pub duration: Duration,
    pub error: Option<String>,
}

/// The status record of a switch (separate from the switch, as on both servers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub last_sync: Option<SyncRec>,
    pub last_sync_error: Option<SyncRec>,
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|x| !x.is_empty())
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A BGP filter object of a switch document (both versions use the same keys).
fn filter_of(f: &Value) -> Filter {
    Filter {
        cidrs: str_list(f.get("cidrs")),
        vnis: str_list(f.get("vnis")),
    }
}

/// The (machine id, nic name) pairs of a switch document's connection list
/// `list` (v1 `connections`, v2 `machineConnections`); entries without
/// either are skipped.
fn connections_of(d: &Value, list: &str, machine_id: &str) -> Vec<(String, String)> {
    d.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                opt_str(c, machine_id)?,
                c.get("nic").and_then(|n| opt_str(n, "name"))?,
            ))
        })
        .collect()
}

/// Which wire format a switch document is in.
pub fn is_v2_document(doc: &Value) -> bool {
    if doc.get("switch").is_some_and(Value::is_object) {
        return true;
    }
    [
        "managementIp",
        "machineConnections",
        "replaceMode",
        "lastSync",
    ]
    .iter()
    .any(|k| doc.get(*k).is_some())
        || doc.get("partition").is_some_and(Value::is_string)
}

impl LabSwitch {
    /// Read a switch state file (v1 `SwitchResponse` or v2 `Switch` /
    /// `SwitchServiceGetResponse`), plus its status record.
    pub fn from_document(doc: &Value) -> Result<(LabSwitch, Status)> {
        if is_v2_document(doc) {
            let sw = doc.get("switch").unwrap_or(doc);
            from_v2(sw)
        } else {
            from_v1(doc)
        }
    }

    pub fn nic_by_name(&self, name: &str) -> Option<&Nic> {
        self.nics.iter().find(|n| n.name == name)
    }

    fn sorted_nics(&self) -> Vec<&Nic> {
        let mut v: Vec<&Nic> = self.nics.iter().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Why registering `nics` in place of the stored ones is refused: a nic
    /// connected to a machine must stay, under the same identifier and name.
    pub fn connected_nic_problem(&self, nics: &[Nic]) -> Option<String> {
        for (_, nic_name) in &self.connections {
            let Some(old) = self.nic_by_name(nic_name) else {
                continue;
            };
            match nics.iter().find(|n| n.identifier == old.identifier) {
                None => {
                    return Some(format!(
                        "nic {} is connected to a machine and cannot be removed",
                        old.name
                    ));
                }
                Some(n) if n.name != old.name => {
                    return Some(format!(
                        "nic {} is connected to a machine and cannot be renamed",
                        old.name
                    ));
                }
                _ => {}
            }
        }
        None
    }
}

fn from_v1(d: &Value) -> Result<(LabSwitch, Status)> {
    let id = opt_str(d, "id").context("v1 switch without id")?;
    let mut nics = Vec::new();
    for n in d
        .get("nics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = opt_str(n, "name").context("v1 nic without name")?;
        let bgp = match n.get("bgp_port_state") {
            Some(b) if b.is_object() => Some(Bgp {
                neighbor: opt_str(b, "Neighbor").unwrap_or_default(),
                peer_group: opt_str(b, "PeerGroup").unwrap_or_default(),
                vrf_name: opt_str(b, "VrfName").unwrap_or_default(),
                state: opt_str(b, "BgpState").unwrap_or_default(),
                timer: b
                    .get("BgpTimerUpEstablished")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                sent: b
                    .get("SentPrefixCounter")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                accepted: b
                    .get("AcceptedPrefixCounter")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            }),
            _ => None,
        };
        let filter = n.get("filter").filter(|f| f.is_object()).map(filter_of);
        nics.push(Nic {
            identifier: opt_str(n, "identifier").unwrap_or_default(),
            mac: nonempty(opt_str(n, "mac")),
            vrf: nonempty(opt_str(n, "vrf")),
            actual: opt_str(n, "actual")
                .as_deref()
                .and_then(PortStatus::from_v1)
                .or(Some(PortStatus::Unknown)),
            desired: opt_str(n, "admin_status")
                .as_deref()
                .and_then(PortStatus::from_v1),
            filter,
            bgp,
            name,
        });
    }
    let os = d.get("os").filter(|o| o.is_object()).map(|o| Os {
        vendor: opt_str(o, "vendor").unwrap_or_default(),
        version: opt_str(o, "version").unwrap_or_default(),
        metal_core_version: opt_str(o, "metal_core_version").unwrap_or_default(),
    });
    let partition = d
        .get("partition")
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .or_else(|| d.get("partition_id").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let connections = connections_of(d, "connections", "machine_id");
    let sync = |k: &str| -> Result<Option<SyncRec>> {
        match d.get(k) {
            Some(s) if s.is_object() => {
                let time = opt_str(s, "time")
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .ok_or_else(|| anyhow!("{k}.time is not RFC 3339"))?;
                let ns = s.get("duration").and_then(Value::as_u64).unwrap_or(0);
                Ok(Some(SyncRec {
                    time,
                    duration: Duration::from_nanos(ns),
                    error: opt_str(s, "error"),
                }))
            }
            _ => Ok(None),
        }
    };
    let time = |k: &str| opt_str(d, k).as_deref().and_then(parse_rfc3339);
    let created = time("created").unwrap_or(GO_ZERO_TIME);
    Ok((
        LabSwitch {
            name: nonempty(opt_str(d, "name")).unwrap_or_else(|| id.clone()),
            description: opt_str(d, "description").unwrap_or_default(),
            rack: nonempty(opt_str(d, "rack_id")),
            room: nonempty(opt_str(d, "room_id")),
            mode: opt_str(d, "mode").unwrap_or_default(),
            management_ip: opt_str(d, "management_ip").unwrap_or_default(),
            management_user: nonempty(opt_str(d, "management_user")),
            console_command: nonempty(opt_str(d, "console_command")),
            os,
            nics,
            connections,
            created,
            changed: time("changed").unwrap_or(created),
            generation: 0,
            partition,
            id,
        },
        Status {
            last_sync: sync("last_sync")?,
            last_sync_error: sync("last_sync_error")?,
        },
    ))
}

fn from_v2(d: &Value) -> Result<(LabSwitch, Status)> {
    let m = Msg::root(d).map_err(|e| anyhow!(e.0))?;
    let id = m
        .string("id", "id")
        .map_err(|e| anyhow!(e.0))?
        .context("v2 switch without id")?;
    let s = |k: &str, p: &str| m.string(k, p).ok().flatten();
    let mut nics = Vec::new();
    for n in d
        .get("nics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let nm = Msg::root(n).map_err(|e| anyhow!(e.0))?;
        let ns = |k: &str, p: &str| nm.string(k, p).ok().flatten();
        let state = n.get("state");
        let status = |k: &str| {
            state
                .and_then(|st| st.get(k))
                .and_then(Value::as_str)
                .and_then(|x| PortStatus::V2_NAMES.iter().position(|n| *n == x))
                .and_then(|i| PortStatus::from_v2(i as i64))
        };
        let filter = n
            .get("bgpFilter")
            .or_else(|| n.get("bgp_filter"))
            .filter(|f| f.is_object())
            .map(filter_of);
        let bgp = n
            .get("bgpPortState")
            .or_else(|| n.get("bgp_port_state"))
            .and_then(Value::as_object)
            .map(|obj| bgp_from_v2(&Msg { obj, path: "" }))
            .transpose()?;
        nics.push(Nic {
            name: ns("name", "name").context("v2 nic without name")?,
            identifier: ns("identifier", "identifier").unwrap_or_default(),
            mac: ns("mac", "mac"),
            vrf: ns("vrf", "vrf"),
            actual: status("actual"),
            desired: status("desired"),
            filter,
            bgp,
        });
    }
    let os = d.get("os").filter(|o| o.is_object()).map(|o| Os {
        vendor: match o.get("vendor").and_then(Value::as_str) {
            Some("SWITCH_OS_VENDOR_SONIC") => "SONiC".into(),
            Some("SWITCH_OS_VENDOR_CUMULUS") => "Cumulus".into(),
            _ => String::new(),
        },
        version: opt_str(o, "version").unwrap_or_default(),
        metal_core_version: opt_str(o, "metalCoreVersion")
            .or_else(|| opt_str(o, "metal_core_version"))
            .unwrap_or_default(),
    });
    let mode = match s("replaceMode", "replace_mode").as_deref() {
        Some("SWITCH_REPLACE_MODE_REPLACE") => "replace",
        Some("SWITCH_REPLACE_MODE_OPERATIONAL") => "operational",
        _ => "",
    };
    let connections = connections_of(d, "machineConnections", "machineId");
    let meta = d.get("meta");
    let mt = |k: &str| {
        meta.and_then(|x| x.get(k))
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
    };
    let created = mt("createdAt").unwrap_or(GO_ZERO_TIME);
    let sync = |k: &str| -> Result<Option<SyncRec>> {
        let Some(v) = d.get(k).filter(|v| v.is_object()) else {
            return Ok(None);
        };
        let time = opt_str(v, "time")
            .as_deref()
            .map(|t| parse_rfc3339(t).ok_or_else(|| anyhow!("{k}.time is not RFC 3339")))
            .transpose()?
            .unwrap_or(GO_ZERO_TIME);
        if time == GO_ZERO_TIME {
            return Ok(None);
        }
        let duration = opt_str(v, "duration")
            .as_deref()
            .map(|x| {
                parse_proto_duration(x).ok_or_else(|| anyhow!("{k}.duration is not a Duration"))
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Some(SyncRec {
            time,
            duration,
            error: opt_str(v, "error"),
        }))
    };
    Ok((
        LabSwitch {
            name: id.clone(),
            description: s("description", "description").unwrap_or_default(),
            partition: s("partition", "partition").unwrap_or_default(),
            rack: s("rack", "rack"),
            room: s("room", "room"),
            mode: mode.into(),
            management_ip: s("managementIp", "management_ip").unwrap_or_default(),
            management_user: s("managementUser", "management_user"),
            console_command: s("consoleCommand", "console_command"),
            os,
            nics,
            connections,
            created,
            changed: mt("updatedAt").unwrap_or(created),
            generation: meta
                .and_then(|x| x.get("generation"))
                .and_then(super::wire::u64_value)
                .unwrap_or(0),
            id,
        },
        Status {
            last_sync: sync("lastSync")?,
            last_sync_error: sync("lastSyncError")?,
        },
    ))
}

/// A BGP entry of a v2 document (state file or heartbeat).
pub fn bgp_from_v2(b: &Msg<'_>) -> Result<Bgp> {
    let err = |e: super::wire::Invalid| anyhow!(e.0);
    let state_n = super::wire::enum_value(
        b.obj.get("bgpState").or_else(|| b.obj.get("bgp_state")),
        &bgp_v2_names(),
        "bgp_state",
    )
    .map_err(err)?;
    let state = usize::try_from(state_n)
        .ok()
        .and_then(|i| BGP_STATES.get(i))
        .map(|(_, frr)| (*frr).to_owned())
        .unwrap_or_default();
    let timer = match b
        .string("bgpTimerUpEstablished", "bgp_timer_up_established")
        .map_err(err)?
    {
        Some(t) => {
            parse_rfc3339(&t)
                .ok_or_else(|| anyhow!("bgpTimerUpEstablished {t:?} is not a Timestamp"))?
                .secs
        }
        None => bail!("bgpTimerUpEstablished is missing"),
    };
    Ok(Bgp {
        neighbor: b
            .string("neighbor", "neighbor")
            .map_err(err)?
            .unwrap_or_default(),
        peer_group: b
            .string("peerGroup", "peer_group")
            .map_err(err)?
            .unwrap_or_default(),
        vrf_name: b
            .string("vrfName", "vrf_name")
            .map_err(err)?
            .unwrap_or_default(),
        state,
        timer,
        sent: b
            .u64("sentPrefixCounter", "sent_prefix_counter")
            .map_err(err)?,
        accepted: b
            .u64("acceptedPrefixCounter", "accepted_prefix_counter")
            .map_err(err)?,
    })
}

// ---------------------------------------------------------------------------
// v1 rendering (metal-api, encoding/json)
// ---------------------------------------------------------------------------

fn v1_sync(s: Option<&SyncRec>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "time": rfc3339_nano(s.time),
            "duration": u64::try_from(s.duration.as_nanos()).unwrap_or(u64::MAX),
            "error": s.error,
        }),
    }
}

fn v1_nic(n: &Nic, with_filter: bool) -> Value {
    json!({
        "mac": n.mac.clone().unwrap_or_default(),
        "name": n.name,
        "identifier": n.identifier,
        "vrf": n.vrf.clone().unwrap_or_default(),
        "filter": match (&n.filter, with_filter) {
            (Some(f), true) => json!({"cidrs": f.cidrs, "vnis": f.vnis}),
            _ => Value::Null,
        },
        "actual": n.actual.unwrap_or(PortStatus::Unknown).v1(),
        "admin_status": n.desired.map(PortStatus::v1),
        "bgp_port_state": n.bgp.as_ref().map(|b| json!({
            "Neighbor": b.neighbor,
            "PeerGroup": b.peer_group,
            "VrfName": b.vrf_name,
            "BgpState": b.state,
            "BgpTimerUpEstablished": b.timer,
            "SentPrefixCounter": b.sent,
            "AcceptedPrefixCounter": b.accepted,
        })),
    })
}

/// `v1.SwitchResponse`.
pub fn render_v1(sw: &LabSwitch, st: &Status) -> Value {
    let mut conns: Vec<&(String, String)> = sw.connections.iter().collect();
    conns.sort();
    let mut v = json!({
        "id": sw.id,
        "name": sw.name,
        "description": sw.description,
        "rack_id": sw.rack.clone().unwrap_or_default(),
        "mode": sw.mode,
        "os": sw.os.as_ref().map(|o| json!({
            "vendor": o.vendor, "version": o.version, "metal_core_version": o.metal_core_version
        })),
        "management_ip": sw.management_ip,
        "management_user": sw.management_user.clone().unwrap_or_default(),
        "console_command": sw.console_command.clone().unwrap_or_default(),
        "nics": sw.sorted_nics().into_iter().map(|n| v1_nic(n, true)).collect::<Vec<_>>(),
        "partition": {
            "id": sw.partition, "name": sw.partition, "description": "",
            "mgmtserviceaddress": "",
            "bootconfig": {"imageurl": "", "kernelurl": "", "commandline": ""},
            "created": rfc3339_nano(sw.created), "changed": rfc3339_nano(sw.created),
            "labels": null
        },
        "connections": conns.iter().filter_map(|(m, nic)| {
            let n = sw.nic_by_name(nic)?;
            Some(json!({"nic": v1_nic(n, false), "machine_id": m}))
        }).collect::<Vec<_>>(),
        "last_sync": v1_sync(st.last_sync.as_ref()),
        "last_sync_error": v1_sync(st.last_sync_error.as_ref()),
        "created": rfc3339_nano(sw.created),
        "changed": rfc3339_nano(sw.changed),
    });
    if let (Some(room), Some(obj)) = (&sw.room, v.as_object_mut()) {
        obj.insert("room_id".into(), json!(room));
    }
    v
}

/// `v1.SwitchNotifyResponse`.
pub fn render_v1_notify(id: &str, st: &Status) -> Value {
    json!({
        "id": id, "name": "", "description": "",
        "last_sync": v1_sync(st.last_sync.as_ref()),
        "last_sync_error": v1_sync(st.last_sync_error.as_ref()),
    })
}

// ---------------------------------------------------------------------------
// v2 rendering (metal-apiserver, protojson)
// ---------------------------------------------------------------------------

/// Why a stored switch cannot be rendered (the Get fails).
#[derive(Debug, Clone)]
pub enum RenderError {
    /// `internal`: a nic stored without state.
    NoState(String),
    /// `failed_precondition`: neither identifier nor mac.
    NoIdentifier(String),
}

fn insert_if(obj: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj.insert(k.into(), v);
    }
}

fn v2_nic(n: &Nic) -> Result<Value, RenderError> {
    let actual = n
        .actual
        .ok_or_else(|| RenderError::NoState(n.name.clone()))?;
    let identifier = if n.identifier.is_empty() {
        n.mac
            .clone()
            .ok_or_else(|| RenderError::NoIdentifier(n.name.clone()))?
    } else {
        n.identifier.clone()
    };
    let mut o = Map::new();
    o.insert("name".into(), json!(n.name));
    o.insert("identifier".into(), json!(identifier));
    insert_if(&mut o, "mac", n.mac.clone().map(Value::from));
    insert_if(&mut o, "vrf", n.vrf.clone().map(Value::from));
    let mut state = Map::new();
    insert_if(&mut state, "desired", n.desired.map(|d| json!(d.v2())));
    state.insert("actual".into(), json!(actual.v2()));
    o.insert("state".into(), Value::Object(state));
    let mut filter = Map::new();
    if let Some(f) = &n.filter {
        if !f.cidrs.is_empty() {
            filter.insert("cidrs".into(), json!(f.cidrs));
        }
        if !f.vnis.is_empty() {
            filter.insert("vnis".into(), json!(f.vnis));
        }
    }
    o.insert("bgpFilter".into(), Value::Object(filter));
    if let Some(b) = &n.bgp {
        let state = BGP_STATES
            .iter()
            .find(|(_, frr)| *frr == b.state)
            .map(|(v2, _)| *v2)
            .unwrap_or("BGP_STATE_UNSPECIFIED");
        let mut bo = Map::new();
        for (k, v) in [
            ("neighbor", &b.neighbor),
            ("peerGroup", &b.peer_group),
            ("vrfName", &b.vrf_name),
        ] {
            if !v.is_empty() {
                bo.insert(k.into(), json!(v));
            }
        }
        if state != "BGP_STATE_UNSPECIFIED" {
            bo.insert("bgpState".into(), json!(state));
        }
        bo.insert(
            "bgpTimerUpEstablished".into(),
            json!(proto_timestamp(Instant {
                secs: b.timer,
                nanos: 0
            })),
        );
        if b.sent != 0 {
            bo.insert("sentPrefixCounter".into(), json!(b.sent.to_string()));
        }
        if b.accepted != 0 {
            bo.insert(
                "acceptedPrefixCounter".into(),
                json!(b.accepted.to_string()),
            );
        }
        o.insert("bgpPortState".into(), Value::Object(bo));
    }
    Ok(Value::Object(o))
}

/// A `SwitchSync` the way `convertToProto` fills a missing one: year 1.
fn v2_sync(s: Option<&SyncRec>) -> Value {
    match s {
        Some(s) => {
            let mut o = Map::new();
            o.insert("time".into(), json!(proto_timestamp(s.time)));
            o.insert("duration".into(), json!(proto_duration(s.duration)));
            insert_if(&mut o, "error", s.error.clone().map(Value::from));
            Value::Object(o)
        }
        None => json!({"time": proto_timestamp(GO_ZERO_TIME), "duration": "0s"}),
    }
}

/// `SwitchServiceGetResponse.switch`; `status` is `None` when no report was
/// ever received (then neither lastSync nor lastSyncError is present).
pub fn render_v2(sw: &LabSwitch, status: Option<&Status>) -> Result<Value, RenderError> {
    let mut o = Map::new();
    o.insert("id".into(), json!(sw.id));
    let mut meta = Map::new();
    if sw.created != GO_ZERO_TIME {
        meta.insert("createdAt".into(), json!(proto_timestamp(sw.created)));
    }
    if sw.changed != GO_ZERO_TIME {
        meta.insert("updatedAt".into(), json!(proto_timestamp(sw.changed)));
    }
    if sw.generation != 0 {
        meta.insert("generation".into(), json!(sw.generation.to_string()));
    }
    o.insert("meta".into(), Value::Object(meta));
    if !sw.description.is_empty() {
        o.insert("description".into(), json!(sw.description));
    }
    insert_if(&mut o, "rack", sw.rack.clone().map(Value::from));
    insert_if(&mut o, "room", sw.room.clone().map(Value::from));
    o.insert("partition".into(), json!(sw.partition));
    match sw.mode.as_str() {
        "replace" => {
            o.insert("replaceMode".into(), json!("SWITCH_REPLACE_MODE_REPLACE"));
        }
        "operational" => {
            o.insert(
                "replaceMode".into(),
                json!("SWITCH_REPLACE_MODE_OPERATIONAL"),
            );
        }
        _ => {}
    }
    if !sw.management_ip.is_empty() {
        o.insert("managementIp".into(), json!(sw.management_ip));
    }
    insert_if(
        &mut o,
        "managementUser",
        sw.management_user.clone().map(Value::from),
    );
    insert_if(
        &mut o,
        "consoleCommand",
        sw.console_command.clone().map(Value::from),
    );
    let nics = sw
        .sorted_nics()
        .into_iter()
        .map(v2_nic)
        .collect::<Result<Vec<_>, _>>()?;
    if !nics.is_empty() {
        o.insert("nics".into(), Value::Array(nics));
    }
    if let Some(os) = &sw.os {
        let vendor = match os.vendor.as_str() {
            "SONiC" => "SWITCH_OS_VENDOR_SONIC",
            "Cumulus" => "SWITCH_OS_VENDOR_CUMULUS",
            _ => "SWITCH_OS_VENDOR_UNSPECIFIED",
        };
        o.insert(
            "os".into(),
            json!({"vendor": vendor, "version": os.version, "metalCoreVersion": os.metal_core_version}),
        );
    }
    let mut conns: Vec<&(String, String)> = sw.connections.iter().collect();
    conns.sort();
    let conns: Vec<Value> = conns
        .iter()
        .filter_map(|(m, nic)| sw.nic_by_name(nic).map(|n| (m, n)))
        .map(|(m, n)| Ok(json!({"machineId": m, "nic": v2_nic(n)?})))
        .collect::<Result<_, RenderError>>()?;
    if !conns.is_empty() {
        o.insert("machineConnections".into(), Value::Array(conns));
    }
    if let Some(st) = status {
        o.insert("lastSync".into(), v2_sync(st.last_sync.as_ref()));
        o.insert("lastSyncError".into(), v2_sync(st.last_sync_error.as_ref()));
    }
    Ok(Value::Object(o))
}

/// `SwitchServiceHeartbeatResponse`.
pub fn render_v2_heartbeat(id: &str, st: &Status) -> Value {
    json!({
        "id": id,
        "lastSync": v2_sync(st.last_sync.as_ref()),
        "lastSyncError": v2_sync(st.last_sync_error.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(p: &str) -> Value {
        let path = format!("{}/../{p}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The lab's sample states describe the same switch in both formats.
    #[test]
    fn sample_states_agree() {
        let (a, _) = LabSwitch::from_document(&doc("lab/switches/leaf01.v1.json")).unwrap();
        let (b, _) = LabSwitch::from_document(&doc("lab/switches/leaf01.v2.json")).unwrap();
        assert_eq!(a.nics.len(), 122);
        for (x, y) in a.nics.iter().zip(&b.nics) {
            assert_eq!((&x.name, &x.vrf, &x.desired), (&y.name, &y.vrf, &y.desired));
            assert_eq!(
                x.filter.clone().unwrap_or_default(),
                y.filter.clone().unwrap_or_default()
            );
        }
    }

    /// Rendering the reference fixtures gives back what they say.
    #[test]
    fn fixtures_round_trip() {
        let v2 = doc("testdata/api/v2/switch-get-response.json");
        let (sw, st) = LabSwitch::from_document(&v2).unwrap();
        let mut back = render_v2(&sw, Some(&st)).unwrap();
        let want = v2["switch"].clone();
        // The fixture's meta has no generation source beyond the string.
        back["meta"] = want["meta"].clone();
        assert_eq!(back, want);
        let v1 = doc("testdata/api/v1/switch-response.json");
        let (sw, st) = LabSwitch::from_document(&v1).unwrap();
        let mut back = render_v1(&sw, &st);
        back["partition"] = v1["partition"].clone();
        // The fixture is metal-api HEAD (no admin_status); the lab renders v0.45.
        for n in back["nics"].as_array_mut().unwrap() {
            assert_eq!(
                n.as_object_mut().unwrap().remove("admin_status"),
                Some(Value::Null)
            );
        }
        for c in back["connections"].as_array_mut().unwrap() {
            c["nic"].as_object_mut().unwrap().remove("admin_status");
        }
        assert_eq!(back["nics"], v1["nics"]);
        assert_eq!(back["connections"], v1["connections"]);
        assert_eq!(back["last_sync"], v1["last_sync"]);
    }
}
