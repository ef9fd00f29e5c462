//! What the lab shows about a leaf, read from the real things: the lab API
//! server's recorded reports (v1 notify / v2 heartbeat), FRR (`vtysh ...
//! json` over the leaf's vty sockets), the agent's `status.json` when it
//! writes one, the installed `frr.conf`, CONFIG_DB, and the SONiC stand-in.
//! Also the status table printed after each scenario step and by `lab
//! status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::api_server::{Call, Record};

/// One report (heartbeat or notify) the lab API server recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub seq: u64,
    pub call: &'static str,
    /// HTTP status answered.
    pub status: u16,
    /// The agent's error, if it reported one.
    pub error: Option<String>,
    /// The reconcile duration it reported.
    pub duration: Option<Duration>,
    /// Port states reported (nic → state name).
    pub ports: BTreeMap<String, String>,
    /// BGP states reported (nic → FRR state name).
    pub bgp: BTreeMap<String, String>,
    /// When the server wrote it (from the record file), if known.
    pub at: Option<SystemTime>,
}

impl Report {
    /// Accepted by the server and without an error: the reconcile converged.
    pub fn ok(&self) -> bool {
        self.status == 200 && self.error.is_none()
    }
}

/// The switch id a call is about: v1 from its path, v2 from its body.
pub fn switch_id(call: Call, path: &str, request: &Value) -> Option<String> {
    match call {
        Call::V1Find | Call::V1Notify => {
            let rest = path.split("/v1/switch/").nth(1)?;
            Some(rest.split('/').next()?.to_owned())
        }
        Call::V1Register => request.get("id")?.as_str().map(str::to_owned),
        Call::V2Get | Call::V2Heartbeat => request.get("id")?.as_str().map(str::to_owned),
        Call::V2Register => request
            .get("switch")?
            .get("id")?
            .as_str()
            .map(str::to_owned),
        _ => None,
    }
}

fn v2_duration(s: &str) -> Option<Duration> {
    s.strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
}

/// The report in a recorded call, if it is one.
pub fn report_of(r: &Record, at: Option<SystemTime>) -> Option<Report> {
    let req = &r.request;
    let error = req
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let strings = |v: Option<&Value>, f: &dyn Fn(&Value) -> Option<String>| {
        v.and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), f(v)?)))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default()
    };
    match r.call {
        Call::V2Heartbeat => Some(Report {
            seq: r.seq,
            call: r.call.name(),
            status: r.status,
            error,
            duration: req
                .get("duration")
                .and_then(Value::as_str)
                .and_then(v2_duration),
            ports: strings(req.get("portStates"), &|v| {
                v.as_str()
                    .map(|s| s.trim_start_matches("SWITCH_PORT_STATUS_").to_owned())
            }),
            bgp: strings(req.get("bgpPortStates"), &|v| {
                v.get("bgpState")
                    .and_then(Value::as_str)
                    .map(|s| v2_bgp_state(s).to_owned())
            }),
            at,
        }),
        Call::V1Notify => Some(Report {
            seq: r.seq,
            call: r.call.name(),
            status: r.status,
            error,
            duration: req
                .get("sync_duration")
                .and_then(Value::as_u64)
                .map(Duration::from_nanos),
            ports: strings(req.get("port_states"), &|v| v.as_str().map(str::to_owned)),
            bgp: strings(req.get("bgp_port_states"), &|v| {
                v.get("BgpState").and_then(Value::as_str).map(str::to_owned)
            }),
            at,
        }),
        _ => None,
    }
}

/// FRR's name of a v2 `BGPState` (`BGP_STATE_ESTABLISHED` → `Established`).
pub fn v2_bgp_state(s: &str) -> &str {
    match s {
        "BGP_STATE_IDLE" => "Idle",
        "BGP_STATE_CONNECT" => "Connect",
        "BGP_STATE_ACTIVE" => "Active",
        "BGP_STATE_OPEN_SENT" => "OpenSent",
        "BGP_STATE_OPEN_CONFIRM" => "OpenConfirm",
        "BGP_STATE_ESTABLISHED" => "Established",
        other => other,
    }
}

/// Every recorded call in a record directory (`NNNN-<call>.json`), oldest
/// first, with the time each file was written.
pub fn records_in(dir: &Path) -> Result<Vec<(Record, Option<SystemTime>)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(call) = v["call"].as_str().and_then(Call::from_name) else {
            continue;
        };
        let at = e.metadata().and_then(|m| m.modified()).ok();
        out.push((
            Record {
                seq: v["seq"].as_u64().unwrap_or(0),
                call,
                method: v["method"].as_str().unwrap_or_default().to_owned(),
                path: v["path"].as_str().unwrap_or_default().to_owned(),
                status: v["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(0),
                request: v["request"].clone(),
                response: v["response"].clone(),
                fault: v["fault"].as_str().map(str::to_owned),
            },
            at,
        ));
    }
    out.sort_by_key(|(r, _)| r.seq);
    Ok(out)
}

/// The newest report of `id` among `records`.
pub fn last_report(records: &[(Record, Option<SystemTime>)], id: &str) -> Option<Report> {
    records.iter().rev().find_map(|(r, at)| {
        (switch_id(r.call, &r.path, &r.request).as_deref() == Some(id))
            .then(|| report_of(r, *at))
            .flatten()
    })
}

/// One BGP session as FRR shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The neighbour (an interface name for unnumbered sessions).
    pub neighbor: String,
    pub vrf: String,
    pub peer_group: String,
    /// FRR's state name (`Established`, `Active`, ...).
    pub state: String,
    /// The peer's host name (BGP hostname capability), if known.
    pub peer_host: String,
    /// `bgpTimerUpString` while established.
    pub up: String,
    /// Prefixes received (IPv4 + IPv6 unicast), while established.
    pub received: u64,
}

/// Run vtysh against the daemons whose vty sockets are in `vty_dir`.
pub fn vtysh(vty_dir: &Path, commands: &[&str]) -> Result<String> {
    let mut cmd = Command::new("/usr/bin/vtysh");
    cmd.arg("--vty_socket").arg(vty_dir);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("cannot run vtysh (apt-get install -y frr)")?;
    if !out.status.success() {
        bail!(
            "vtysh {commands:?} ({}) failed: {}{}",
            vty_dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every BGP neighbour in every VRF (`show bgp vrf all neighbors json`).
pub fn bgp_sessions(vty_dir: &Path) -> Result<Vec<Session>> {
    let text = vtysh(vty_dir, &["show bgp vrf all neighbors json"])?;
    parse_neighbors(&text)
}

/// Parse `show bgp vrf all neighbors json` (FRR 8.4: VRF name → neighbour
/// → object with `bgpState`, besides `vrfId` / `vrfName`).
pub fn parse_neighbors(text: &str) -> Result<Vec<Session>> {
    let v: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(text).context("vtysh's neighbors JSON")?
    };
    let mut out = Vec::new();
    for (vrf, n) in v.as_object().into_iter().flatten() {
        for (name, s) in n.as_object().into_iter().flatten() {
            let Some(state) = s.get("bgpState").and_then(Value::as_str) else {
                continue;
            };
            let received: u64 = s
                .get("addressFamilyInfo")
                .and_then(Value::as_object)
                .map(|afs| {
                    afs.iter()
                        .filter(|(k, _)| k.ends_with("Unicast"))
                        .filter_map(|(_, a)| a.get("acceptedPrefixCounter")?.as_u64())
                        .sum()
                })
                .unwrap_or(0);
            out.push(Session {
                neighbor: name.clone(),
                vrf: vrf.clone(),
                peer_group: s
                    .get("peerGroup")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                state: state.to_owned(),
                peer_host: s
                    .get("hostname")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                up: s
                    .get("bgpTimerUpString")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                received,
            });
        }
    }
    out.sort_by(|a, b| (&a.vrf, &a.neighbor).cmp(&(&b.vrf, &b.neighbor)));
    Ok(out)
}

/// Whether `neighbor` in `vrf` is `Established`.
pub fn established(sessions: &[Session], vrf: &str, neighbor: &str) -> bool {
    sessions
        .iter()
        .any(|s| s.vrf == vrf && s.neighbor == neighbor && s.state == "Established")
}

/// A CONFIG_DB (or other database) dump: key → fields.
pub type Dump = BTreeMap<String, BTreeMap<String, String>>;

/// Every key of database `db` of the redis on unix socket `socket`.
pub fn dump(socket: &Path, db: i64) -> Result<Dump> {
    let client = redis::Client::open(format!("redis+unix://{}?db={db}", socket.display()))?;
    let mut c = client
        .get_connection()
        .with_context(|| format!("connecting to redis at {}", socket.display()))?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c)?;
    let mut out = Dump::new();
    for k in keys {
        let t: String = redis::cmd("TYPE").arg(&k).query(&mut c)?;
        let v = match t.as_str() {
            "hash" => redis::cmd("HGETALL").arg(&k).query(&mut c)?,
            "string" => {
                let s: String = redis::cmd("GET").arg(&k).query(&mut c)?;
                BTreeMap::from([(String::new(), s)])
            }
            _ => continue,
        };
        out.insert(k, v);
    }
    Ok(out)
}

/// `metal-switchd --config CONFIG status --format json`: the agent's own
/// account (`liveness`, and `status`: what it wrote to `status.json`), or
/// None when it has not written one.
pub fn agent_status(agent: &Path, config: &Path) -> Option<Value> {
    let out = Command::new(agent)
        .arg("--config")
        .arg(config)
        .args(["status", "--format", "json"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_str::<Value>(&String::from_utf8_lossy(&out.stdout))
        .ok()
        .filter(|v| v.get("status").is_some())
}

/// Drift repairs by source, from `status --format json`
/// (`status.drift.repairs`), e.g. `configdb 1, kernel 0`.
pub fn drift_repairs(status: &Value) -> Option<String> {
    let m = status
        .get("status")?
        .get("drift")?
        .get("repairs")?
        .as_object()?;
    if m.is_empty() {
        return Some("0".into());
    }
    Some(
        m.iter()
            .map(|(k, v)| format!("{k} {}", v.as_u64().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The last reconcile as the agent's status shows it.
pub fn last_reconcile(status: &Value) -> Option<String> {
    let r = status.get("status")?.get("last_reconcile")?;
    let secs = r.get("duration").and_then(Value::as_f64).unwrap_or(0.0);
    Some(format!(
        "{} ({} trigger), {} CONFIG_DB changes in {} phases, frr.conf {}, {:.0} ms",
        r.get("result").and_then(Value::as_str).unwrap_or("?"),
        r.get("trigger").and_then(Value::as_str).unwrap_or("?"),
        r.get("changes").and_then(Value::as_u64).unwrap_or(0),
        r.get("phases").and_then(Value::as_u64).unwrap_or(0),
        if r.get("frr_changed").and_then(Value::as_bool) == Some(true) {
            "installed"
        } else {
            "unchanged"
        },
        secs * 1e3
    ))
}

/// What one leaf looks like right now.
#[derive(Debug, Clone)]
pub struct LeafView {
    pub name: String,
    /// `running`, or how the agent ended.
    pub agent: String,
    pub report: Option<Report>,
    pub sessions: Result<Vec<Session>, String>,
    /// A digest of the installed frr.conf (None: not installed yet).
    pub frr_digest: Option<u64>,
    /// `metal-switchd status --format json`, if the agent wrote a status.
    pub status: Option<Value>,
    /// CONFIG_DB changes since the previous view (scenario steps only).
    pub changes: Option<Vec<String>>,
    /// Whether frr.conf changed since the previous view (scenario steps only).
    pub frr_changed: Option<bool>,
    /// What runs the leaf's SONiC: `stand-in` or `SONiC <release>`.
    pub sonic: String,
    /// Ordering violations the SONiC stand-in reported so far (always
    /// empty for real SONiC, whose daemons report in their logs).
    pub violations: Vec<String>,
    /// Owned CONFIG_DB summary: tenant VRFs and port bindings.
    pub vrfs: Vec<String>,
    pub bindings: Vec<String>,
}

/// A cheap digest of a file's bytes (FNV-1a), None when it cannot be read.
pub fn digest(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    Some(bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// Tenant VRFs and port bindings in a CONFIG_DB dump, for the summary line.
pub fn owned_summary(d: &Dump) -> (Vec<String>, Vec<String>) {
    let vrfs = d
        .iter()
        .filter_map(|(k, f)| {
            let name = k.strip_prefix("VRF|")?;
            Some(match f.get("vni") {
                Some(v) => format!("{name} (vni {v})"),
                None => name.to_owned(),
            })
        })
        .collect();
    let bindings = d
        .iter()
        .filter_map(|(k, f)| {
            let port = k.strip_prefix("INTERFACE|")?;
            if port.contains('|') {
                return None;
            }
            Some(format!(
                "{port}→{}",
                f.get("vrf_name").map(String::as_str).unwrap_or("default")
            ))
        })
        .collect();
    (vrfs, bindings)
}

fn age(at: Option<SystemTime>) -> String {
    match at.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(d) => format!("{:.1} s ago", d.as_secs_f64()),
        None => "just now".into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// The status table of one leaf.
pub fn table(v: &LeafView) -> String {
    let mut s = String::new();
    let row = |s: &mut String, k: &str, val: &str| {
        let _ = writeln!(s, "  {k:<18} {val}");
    };
    let liveness = v
        .status
        .as_ref()
        .and_then(|st| {
            Some(format!(
                ", status: {} {}",
                st.get("liveness")?.as_str()?,
                st.get("status")?.get("phase")?.as_str()?
            ))
        })
        .unwrap_or_default();
    let _ = writeln!(s, "{}  (agent {}{liveness})", v.name, v.agent);
    if let Some(c) = &v.changes {
        row(&mut s, "CONFIG_DB changes", &format!("{} keys", c.len()));
        for line in c {
            let _ = writeln!(s, "  {:<18}   {line}", "");
        }
    }
    row(
        &mut s,
        "tenant VRFs",
        &if v.vrfs.is_empty() {
            "none".to_owned()
        } else {
            v.vrfs.join(", ")
        },
    );
    row(
        &mut s,
        "routed ports",
        &if v.bindings.is_empty() {
            "none".to_owned()
        } else {
            v.bindings.join(", ")
        },
    );
    let frr = match (v.frr_changed, v.frr_digest) {
        (_, None) => "not installed".to_owned(),
        (Some(true), Some(d)) => format!("changed and reloaded ({d:016x})"),
        (Some(false), Some(d)) => format!("unchanged ({d:016x})"),
        (None, Some(d)) => format!("installed ({d:016x})"),
    };
    row(&mut s, "frr.conf", &frr);
    match &v.sessions {
        Err(e) => row(&mut s, "BGP sessions", &format!("cannot read: {e}")),
        Ok(list) if list.is_empty() => row(&mut s, "BGP sessions", "none configured"),
        Ok(list) => {
            row(
                &mut s,
                "BGP sessions",
                &format!(
                    "{:<12} {:<9} {:<9} {:<12} {:<10} {:>4}  {}",
                    "neighbor", "vrf", "group", "state", "peer", "pfx", "up"
                ),
            );
            for x in list {
                let _ = writeln!(
                    s,
                    "  {:<18} {:<12} {:<9} {:<9} {:<12} {:<10} {:>4}  {}",
                    "",
                    x.neighbor,
                    x.vrf,
                    x.peer_group,
                    x.state,
                    if x.peer_host.is_empty() {
                        "-"
                    } else {
                        &x.peer_host
                    },
                    x.received,
                    if x.up.is_empty() { "-" } else { &x.up },
                );
            }
        }
    }
    match &v.report {
        None => row(&mut s, "last heartbeat", "none yet"),
        Some(r) => {
            let what = outcome(r);
            row(
                &mut s,
                "last heartbeat",
                &format!("#{} {} {}, {}", r.seq, r.call, what, age(r.at)),
            );
            let bgp: Vec<String> = r.bgp.iter().map(|(k, v)| format!("{k} {v}")).collect();
            if !bgp.is_empty() {
                row(&mut s, "  reported BGP", &bgp.join(", "));
            }
            if let Some(d) = r.duration {
                row(&mut s, "reconcile duration", &ms(d));
            }
        }
    }
    if let Some(r) = v.status.as_ref().and_then(last_reconcile) {
        row(&mut s, "last reconcile", &r);
    }
    let drift = v
        .status
        .as_ref()
        .and_then(drift_repairs)
        .unwrap_or_else(|| "not reported (metal-switchd status has no status yet)".into());
    row(&mut s, "drift repairs", &drift);
    row(&mut s, "SONiC", &sonic_line(v));
    for x in &v.violations {
        let _ = writeln!(s, "  {:<18}   ! {x}", "");
    }
    s
}

/// `ok`, the error, or the API's answer of a report.
fn outcome(r: &Report) -> String {
    if r.ok() {
        "ok".to_owned()
    } else if let Some(e) = &r.error {
        format!("error: {e}")
    } else {
        format!("answered {}", r.status)
    }
}

/// A leaf's view in a few lines (the demo's ~150-line budget): the agent
/// and its last heartbeat on one line, the CONFIG_DB changes (or "the same
/// as `same_as`" when `same_as_changes` says so), frr.conf, and the BGP
/// sessions as `neighbor/vrf state (peer)`.
pub fn compact_table(v: &LeafView, same_as: Option<&str>) -> String {
    let mut s = String::new();
    let beat = match &v.report {
        None => "no heartbeat yet".to_owned(),
        Some(r) => {
            let what = outcome(r);
            let took = r
                .duration
                .map(|d| format!(", reconcile {}", ms(d)))
                .unwrap_or_default();
            format!("heartbeat #{} {what}{took}", r.seq)
        }
    };
    let violations = if v.violations.is_empty() {
        String::new()
    } else {
        format!(", {} ORDERING VIOLATIONS", v.violations.len())
    };
    let on = if v.sonic == "stand-in" {
        String::new()
    } else {
        format!(" on {}", v.sonic)
    };
    let _ = writeln!(s, "{}{on}  agent {}, {beat}{violations}", v.name, v.agent);
    match (&v.changes, same_as) {
        (Some(c), Some(other)) if !c.is_empty() => {
            let _ = writeln!(s, "  CONFIG_DB  the same {} changes as {other}", c.len());
        }
        (Some(c), _) if c.is_empty() => {
            let _ = writeln!(s, "  CONFIG_DB  unchanged");
        }
        (Some(c), _) => {
            for (i, line) in c.iter().enumerate() {
                let _ = writeln!(s, "  {:<10} {line}", if i == 0 { "CONFIG_DB" } else { "" });
            }
        }
        (None, _) => {}
    }
    let frr = match (v.frr_changed, v.frr_digest) {
        (_, None) => "not installed",
        (Some(true), Some(_)) => "changed and reloaded",
        (Some(false), Some(_)) => "unchanged",
        (None, Some(_)) => "installed",
    };
    let _ = writeln!(s, "  {:<10} {frr}", "frr.conf");
    let bgp = match &v.sessions {
        Err(e) => format!("cannot read: {e}"),
        Ok(list) if list.is_empty() => "none configured".to_owned(),
        Ok(list) => list
            .iter()
            .map(|x| {
                let peer = if x.peer_host.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", x.peer_host)
                };
                format!("{}/{} {}{peer}", x.neighbor, x.vrf, x.state)
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let _ = writeln!(s, "  {:<10} {bgp}", "BGP");
    for x in &v.violations {
        let _ = writeln!(s, "  ! {x}");
    }
    s
}

/// Where a leaf's pieces are.
#[derive(Debug, Clone)]
pub struct LeafPaths {
    pub name: String,
    pub redis_socket: PathBuf,
    pub vty_dir: PathBuf,
    pub frr_config: PathBuf,
    pub state_dir: PathBuf,
    /// The agent binary and its configuration (for `metal-switchd status`).
    pub agent: PathBuf,
    pub agent_config: PathBuf,
}

/// The table's SONiC row: the stand-in's ordering check, or which real
/// SONiC runs the leaf (its daemons' error lines are checked at teardown).
fn sonic_line(v: &LeafView) -> String {
    if v.sonic != "stand-in" {
        format!("{}, its own daemons", v.sonic)
    } else if v.violations.is_empty() {
        "stand-in, no ordering violations".to_owned()
    } else {
        format!("stand-in, {} ORDERING VIOLATIONS", v.violations.len())
    }
}

/// Read a leaf's view (without the per-step fields); `sonic` as
/// [`LeafView::sonic`].
pub fn view(
    p: &LeafPaths,
    sonic: String,
    agent: String,
    report: Option<Report>,
    violations: Vec<String>,
) -> LeafView {
    let config = dump(&p.redis_socket, 4).unwrap_or_default();
    let (vrfs, bindings) = owned_summary(&config);
    LeafView {
        name: p.name.clone(),
        agent,
        report,
        sessions: bgp_sessions(&p.vty_dir).map_err(|e| format!("{e:#}")),
        frr_digest: digest(&p.frr_config),
        status: agent_status(&p.agent, &p.agent_config),
        changes: None,
        frr_changed: None,
        sonic,
        violations,
        vrfs,
        bindings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbors_json_of_frr() {
        let text = r#"{"default":{"vrfId":0,"vrfName":"default","Ethernet120":{"bgpNeighborAddr":"fe80::1","remoteAs":4200000021,"hostname":"exit","peerGroup":"FABRIC","bgpState":"Established","bgpTimerUpString":"00:00:05","addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":2},"ipv6Unicast":{"acceptedPrefixCounter":1},"l2VpnEvpn":{"acceptedPrefixCounter":7}}}},"Vrf30":{"vrfId":-1,"vrfName":"Vrf30","Ethernet0":{"peerGroup":"MACHINE","bgpState":"Active"}}}"#;
        let s = parse_neighbors(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].vrf, "Vrf30");
        assert_eq!(s[0].state, "Active");
        assert_eq!(s[1].neighbor, "Ethernet120");
        assert_eq!(s[1].peer_group, "FABRIC");
        assert_eq!(s[1].received, 3);
        assert!(established(&s, "default", "Ethernet120"));
        assert!(!established(&s, "Vrf30", "Ethernet0"));
        assert!(parse_neighbors("").unwrap().is_empty());
    }

    #[test]
    fn reports_of_both_versions() {
        let v2 = Record {
            seq: 7,
            call: Call::V2Heartbeat,
            method: "POST".into(),
            path: "/metalstack.infra.v2.SwitchService/Heartbeat".into(),
            status: 200,
            request: serde_json::json!({"id": "leaf01", "duration": "0.250s",
                "portStates": {"Ethernet0": "SWITCH_PORT_STATUS_UP"},
                "bgpPortStates": {"Ethernet120": {"bgpState": "BGP_STATE_ESTABLISHED"}}}),
            response: Value::Null,
            fault: None,
        };
        assert_eq!(
            switch_id(v2.call, &v2.path, &v2.request).as_deref(),
            Some("leaf01")
        );
        let r = report_of(&v2, None).unwrap();
        assert!(r.ok());
        assert_eq!(r.duration, Some(Duration::from_millis(250)));
        assert_eq!(r.ports["Ethernet0"], "UP");
        assert_eq!(r.bgp["Ethernet120"], "Established");
        let v1 = Record {
            seq: 8,
            call: Call::V1Notify,
            method: "POST".into(),
            path: "/metal/v1/switch/leaf02/notify".into(),
            status: 200,
            request: serde_json::json!({"sync_duration": 1_000_000, "error": "boom",
                "port_states": {"Ethernet0": "DOWN"}}),
            response: Value::Null,
            fault: None,
        };
        assert_eq!(
            switch_id(v1.call, &v1.path, &v1.request).as_deref(),
            Some("leaf02")
        );
        let r = report_of(&v1, None).unwrap();
        assert!(!r.ok());
        assert_eq!(r.duration, Some(Duration::from_millis(1)));
        assert_eq!(r.ports["Ethernet0"], "DOWN");
    }
}
