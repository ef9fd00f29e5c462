//! metal-api v1 as the lab serves it: the `Metal-Edit` HMAC check of
//! metal-stack/security and the switch handlers of metal-api
//! (`registerSwitch`, `findSwitch`, `notifySwitch`).
//!
//! Request bodies are read like Go's `encoding/json`: unknown fields are
//! ignored, keys match case-insensitively, `null` leaves a field unset.

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::model::{self, Bgp, LabSwitch, Nic, Os, PortStatus, SyncRec};
use super::wire::{self, parse_rfc3339, rfc3339};
use super::{Call, Reply, Shared};

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply::Json {
        status,
        body: json!({"statuscode": status, "message": message.into()}),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// metal-stack/security `HMACAuth.User`: `<type> <mac>`, `X-Date` not older
/// than the lifetime, MAC over `rfc3339(X-Date) ‖ METHOD ‖ X-Data-Salt`.
fn check_hmac(
    shared: &Shared,
    call: Call,
    method: &str,
    headers: &HeaderMap,
) -> Result<(), String> {
    let auth = shared.auth();
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts: Vec<&str> = h("authorization").split(' ').collect();
    let [kind, mac] = parts.as_slice() else {
        return Err("no or malformed Authorization header".into());
    };
    let key = match *kind {
        "Metal-Edit" => auth.hmac_edit_key.clone(),
        "Metal-View" if call == Call::V1Find => auth.hmac_view_key.clone(),
        "Metal-View" => return Err("Metal-View may not call this endpoint (needs editor)".into()),
        other => return Err(format!("unknown auth type {other:?}")),
    }
    .ok_or_else(|| format!("no key configured for {kind}"))?;
    let date = parse_rfc3339(h("x-date")).ok_or("unknown date format in X-Date")?;
    let now = wire::now();
    if now.secs - date.secs > i64::try_from(auth.hmac_lifetime.as_secs()).unwrap_or(i64::MAX) {
        return Err("request too old".into());
    }
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return Err("bad key".into());
    };
    m.update(rfc3339(date.secs).as_bytes());
    m.update(method.as_bytes());
    m.update(h("x-data-salt").as_bytes());
    if hex(&m.finalize().into_bytes()) != *mac {
        return Err("Wrong HMAC found".into());
    }
    Ok(())
}

/// A field of a Go-decoded object: exact key first, then case-insensitive.
fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k)
        .or_else(|| {
            o.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn string(o: &Map<String, Value>, k: &str) -> Result<Option<String>, String> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .{k} of type string",
            kind(v)
        )),
    }
}

/// An optional object field; the error says what it is instead.
fn object_field(o: &Map<String, Value>, k: &str) -> Result<Option<Map<String, Value>>, String> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(v) => Err(format!("{k} is a {}", kind(v))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn handle(
    shared: &Shared,
    call: Call,
    id: &str,
    method: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Err(m) = check_hmac(shared, call, method, headers) {
        return error(403, m);
    }
    match call {
        Call::V1Find => {
            let st = shared.lock();
            match st.switches.get(id) {
                Some(sw) => Reply::ok(model::render_v1(
                    sw,
                    &st.status.get(id).cloned().unwrap_or_default(),
                )),
                None => error(404, format!("no switch with id {id:?} found")),
            }
        }
        Call::V1Register => register(shared, body),
        Call::V1Notify => notify(shared, id, body),
        _ => error(404, "not a v1 call"),
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(v) => Err(error(
            400,
            format!(
                "cannot read request body: json: cannot unmarshal {} into Go value",
                kind(&v)
            ),
        )),
        Err(e) => Err(error(400, format!("cannot read request body: {e}"))),
    }
}

fn register(shared: &Shared, body: &[u8]) -> Reply {
    let req = match object(body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<_, String> {
        let id = string(&req, "id")?.unwrap_or_default();
        let mut nics = Vec::new();
        match field(&req, "nics") {
            None => {}
            Some(Value::Array(a)) => {
                for n in a {
                    let Value::Object(n) = n else {
                        return Err("json: cannot unmarshal into v1.SwitchNic".into());
                    };
                    nics.push(Nic {
                        name: string(n, "name")?.unwrap_or_default(),
                        identifier: string(n, "identifier")?.unwrap_or_default(),
                        mac: string(n, "mac")?.filter(|m| !m.is_empty()),
                        vrf: string(n, "vrf")?.filter(|m| !m.is_empty()),
                        actual: string(n, "actual")?
                            .as_deref()
                            .and_then(PortStatus::from_v1),
                        desired: None,
                        filter: None,
                        bgp: None,
                    });
                }
            }
            Some(v) => return Err(format!("json: cannot unmarshal {} into nics", kind(v))),
        }
        let os = match field(&req, "os") {
            Some(Value::Object(o)) => Some(Os {
                vendor: string(o, "vendor")?.unwrap_or_default(),
                version: string(o, "version")?.unwrap_or_default(),
                metal_core_version: string(o, "metal_core_version")?.unwrap_or_default(),
            }),
            None => None,
            Some(v) => return Err(format!("json: cannot unmarshal {} into os", kind(v))),
        };
        Ok((id, nics, os))
    })();
    let (id, nics, os) = match parsed {
        Ok(x) => x,
        Err(m) => return error(400, format!("cannot read request body: {m}")),
    };
    let s = |k: &str| string(&req, k).ok().flatten().filter(|v| !v.is_empty());
    if id.is_empty() {
        return error(400, "uuid cannot be empty");
    }
    let partition = s("partition_id").unwrap_or_default();
    let mut st = shared.lock();
    if !st.partitions.contains(&partition) {
        return error(404, format!("no partition with id {partition:?} found"));
    }
    // Nics are keyed by identifier, falling back to the MAC.
    let mut keys = std::collections::BTreeSet::new();
    for n in &nics {
        keys.insert(if n.identifier.is_empty() {
            n.mac.clone().unwrap_or_default()
        } else {
            n.identifier.clone()
        });
    }
    if keys.len() != nics.len() {
        return error(400, "duplicate identifier found in nics");
    }
    // The handler dereferences the request's os without a nil check.
    let Some(os) = os else {
        return Reply::Drop {
            why: "metal-api would panic: register request without os".into(),
        };
    };
    if os.vendor != "SONiC" && os.vendor != "Cumulus" {
        return error(400, format!("unknown switch os vendor {:?}", os.vendor));
    }
    let now = wire::now();
    let existing = st.switches.get(&id).cloned();
    let (sw, status) = match existing {
        None => {
            let sw = LabSwitch {
                id: id.clone(),
                name: s("name").unwrap_or_else(|| id.clone()),
                description: s("description").unwrap_or_default(),
                partition,
                rack: s("rack_id"),
                room: s("room_id"),
                mode: String::new(),
                management_ip: s("management_ip").unwrap_or_default(),
                management_user: s("management_user"),
                console_command: s("console_command"),
                os: Some(os),
                nics,
                connections: Vec::new(),
                created: now,
                changed: now,
                generation: 0,
            };
            (sw, 201)
        }
        Some(mut sw) => {
            if sw.mode == "replace" {
                return error(422, "lab: switch replacement is not implemented");
            }
            if let Some(problem) = sw.connected_nic_problem(&nics) {
                return error(400, problem);
            }
            let merged = nics
                .into_iter()
                .map(
                    |n| match sw.nics.iter().find(|o| o.identifier == n.identifier) {
                        Some(o) => Nic {
                            name: n.name,
                            mac: n.mac,
                            ..o.clone()
                        },
                        None => n,
                    },
                )
                .collect();
            sw.nics = merged;
            if let Some(n) = s("name") {
                sw.name = n;
            }
            if let Some(d) = s("description") {
                sw.description = d;
            }
            sw.rack = s("rack_id");
            sw.room = s("room_id").or(sw.room);
            sw.partition = partition;
            sw.os = Some(os);
            sw.management_ip = s("management_ip").unwrap_or_default();
            sw.management_user = s("management_user");
            sw.changed = now;
            sw.generation += 1;
            (sw, 200)
        }
    };
    let rendered = model::render_v1(&sw, &st.status.get(&id).cloned().unwrap_or_default());
    st.switches.insert(id, sw);
    Reply::Json {
        status,
        body: rendered,
    }
}

fn notify(shared: &Shared, id: &str, body: &[u8]) -> Reply {
    let req = match object(body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let duration = match field(&req, "sync_duration") {
        None => 0,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
        Some(v) => {
            return error(
                400,
                format!(
                    "cannot read request body: json: cannot unmarshal {} into Go struct field \
                     SwitchNotifyRequest.sync_duration of type time.Duration",
                    kind(v)
                ),
            );
        }
    };
    let fields = string(&req, "error").and_then(|err| {
        Ok((
            err,
            object_field(&req, "port_states")?,
            object_field(&req, "bgp_port_states")?,
        ))
    });
    let (err, port_states, bgp_states) = match fields {
        Ok(f) => f,
        Err(m) => return error(400, format!("cannot read request body: {m}")),
    };
    let mut st = shared.lock();
    let Some(mut sw) = st.switches.get(id).cloned() else {
        return error(404, format!("no switch with id {id:?} found"));
    };
    let rec = SyncRec {
        time: wire::now(),
        duration: std::time::Duration::from_nanos(u64::try_from(duration).unwrap_or(0)),
        error: err.clone(),
    };
    let status = st.status.entry(id.to_owned()).or_default();
    if err.is_none() {
        status.last_sync = Some(rec);
    } else {
        status.last_sync_error = Some(rec);
    }
    let status = status.clone();
    if let Some(ps) = &port_states {
        for nic in &mut sw.nics {
            match ps.get(&nic.name) {
                Some(Value::String(s)) => match PortStatus::from_v1(s) {
                    Some(p) => nic.actual = Some(p),
                    None => {
                        return error(
                            422,
                            format!("unknown port status {s:?} for port {}", nic.name),
                        );
                    }
                },
                Some(v) => {
                    return error(400, format!("port state of {} is a {}", nic.name, kind(v)));
                }
                None => {} // metal-api logs "unknown switch port" and goes on
            }
        }
    }
    if let Some(bs) = &bgp_states {
        for nic in &mut sw.nics {
            nic.bgp = match bs.get(&nic.name) {
                Some(Value::Object(b)) => {
                    let num = |k: &str| field(b, k).and_then(Value::as_i64).unwrap_or(0);
                    Some(Bgp {
                        neighbor: string(b, "Neighbor").ok().flatten().unwrap_or_default(),
                        peer_group: string(b, "PeerGroup").ok().flatten().unwrap_or_default(),
                        vrf_name: string(b, "VrfName").ok().flatten().unwrap_or_default(),
                        state: string(b, "BgpState").ok().flatten().unwrap_or_default(),
                        timer: num("BgpTimerUpEstablished"),
                        sent: u64::try_from(num("SentPrefixCounter")).unwrap_or(0),
                        accepted: u64::try_from(num("AcceptedPrefixCounter")).unwrap_or(0),
                    })
                }
                _ => None,
            };
        }
    }
    st.switches.insert(id.to_owned(), sw);
    Reply::ok(model::render_v1_notify(id, &status))
}
