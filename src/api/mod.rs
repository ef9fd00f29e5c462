//! The metal API: wire types, their conversion, and the clients.
//!
//! Wire types of both API versions live here and never leak past this
//! module: callers hand in and get back API-neutral values —
//! [`SwitchDesc`](crate::spec::SwitchDesc) (what `spec::build` validates),
//! [`Registration`], [`SwitchReport`](crate::observed::SwitchReport),
//! [`PhoneHomeEvent`], [`SyncStatus`].
//! - `v1` (private): metal-api (Swagger REST), snake_case JSON, HMAC.
//! - `v2` (private): metal-apiserver (Connect, proto3 JSON), bearer token.
//! - [`hmac`]: request signing (pure); wire time formats are
//!   [`crate::time`]'s.
//! - [`client`] (feature `agent`): one client for either version over
//!   HTTP(S), with retries for transient failures; [`transport`] is its
//!   HTTP layer, [`token`] reads (and writes back) the v2 token file,
//!   [`renew`] renews the v2 token before it expires, [`grpc`] is v1's gRPC
//!   event service (phone-home, mutual TLS), [`error`] their errors.
//!
//! Everything except `client`, `error`, `grpc`, `renew`, `transport` and
//! `token` is pure. Registration (what the switch registers, gathered from CONFIG_DB
//! and the kernel) is orchestrated by [`crate::reconcile::register`].

pub mod hmac;
// Without `agent` there is no client, so the request builders are unused.
#[cfg_attr(not(feature = "agent"), allow(dead_code))]
mod v1;
#[cfg_attr(not(feature = "agent"), allow(dead_code))]
mod v2;
agent! {
    pub mod client;
    pub mod error;
    pub mod grpc;
    pub mod renew;
    pub mod token;
    pub mod transport;
}

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::config::ApiVersion;
use serde_json::Value;

use crate::names::quoted;
use crate::observed::PortOperState;
use crate::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};

/// This agent's version string, registered as `metal_core_version`.
pub const AGENT_VERSION: &str = concat!("metal-switchd v", env!("CARGO_PKG_VERSION"));

/// What the switch registers, independent of the API version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Switch id: the hostname the switch advertises over LLDP.
    pub id: String,
    pub partition: String,
    pub rack: Option<String>,
    pub room: Option<String>,
    pub management_ip: IpAddr,
    /// `admin` on SONiC.
    pub management_user: String,
    /// `build_version` of `sonic_version.yml`.
    pub os_version: String,
    /// [`AGENT_VERSION`].
    pub agent_version: String,
    pub nics: Vec<RegisteredNic>,
}

/// One registered nic (names per `interface_naming_schema`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredNic {
    pub name: String,
    /// Must equal the LLDP port id the switch advertises; unique, non-empty.
    pub identifier: String,
    /// Operational state at registration (v2 `state.actual`).
    pub oper: PortOperState,
}

impl Registration {
    /// Problems every API version refuses (trap 8): empty or duplicate
    /// identifiers or names, no nics.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.id.is_empty() {
            problems.push("switch id is empty; set hostname".into());
        }
        if self.nics.is_empty() {
            problems.push(
                "no nics to register: CONFIG_DB PORT has no ports outside additional_bridge_ports"
                    .into(),
            );
        }
        let mut ids = std::collections::BTreeMap::new();
        let mut names = std::collections::BTreeMap::new();
        for n in &self.nics {
            if n.identifier.is_empty() {
                problems.push(format!("nic {} has an empty identifier", n.name));
            } else if let Some(first) = ids.insert(n.identifier.as_str(), n.name.as_str()) {
                problems.push(format!(
                    "nics {first} and {} have the same identifier {:?}; identifiers must be unique",
                    n.name, n.identifier
                ));
            }
            if names.insert(n.name.as_str(), ()).is_some() {
                problems.push(format!("nic name {:?} appears twice", n.name));
            }
        }
        problems
    }
}

/// One synchronisation the API recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRecord {
    /// Unix seconds (server clock).
    pub time: i64,
    pub duration: Duration,
    pub error: Option<String>,
}

/// The API's record of the switch's last reports (`None` = never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub last_sync: Option<SyncRecord>,
    pub last_sync_error: Option<SyncRecord>,
}

/// A switch as the API returned it (Get or Register), read API-neutrally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FetchedSwitch {
    pub desc: SwitchDesc,
    /// The nic names, in the API's order (what port states must cover).
    pub nic_names: Vec<String>,
    pub sync: SyncStatus,
    /// The API's generation of the switch (v2 `meta.generation`), when it
    /// has one.
    pub generation: Option<u64>,
}

/// A machine that phoned home (LLDP), for the event service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneHomeEvent {
    pub machine_id: String,
    /// When the frame was seen, since the Unix epoch (the servers replace it).
    pub time: Duration,
    /// The LLDP system description.
    pub message: String,
}

/// What the event service accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventOutcome {
    pub sent: u64,
    pub failed: Vec<String>,
}

/// A v2 component ping (metal-apiserver's list of running agents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentPing {
    pub identifier: String,
    /// Start of the agent, since the Unix epoch.
    pub started_at: Duration,
    /// How often the agent pings (5s..1h).
    pub interval: Duration,
    pub version: String,
}

/// A switch document that cannot be read (from a file or the API).
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
        version: ApiVersion,
        message: String,
    },
    #[error(
        "{origin}: invalid nics, nothing was changed ({}):{}",
        crate::names::count(problems.len(), "problem"),
        crate::names::listed(problems)
    )]
    Nics {
        origin: String,
        problems: Vec<String>,
    },
}

/// Why a decoded switch object cannot be used.
#[derive(Debug)]
pub enum SwitchProblem {
    /// Nic values the wire format does not allow (e.g. an unknown admin status).
    Nics(Vec<String>),
    /// `last_sync` / `last_sync_error` cannot be read.
    Sync(String),
}

/// One nic as either wire version carries it, before it is checked.
struct WireNic<'a> {
    name: &'a str,
    vrf: Option<&'a str>,
    filter: FilterDesc,
    /// The admin status the version names, or why it cannot be read.
    admin: Result<Option<AdminStatus>, String>,
}

/// A switch's desired state from its wire nics; every nic whose admin
/// status cannot be read is a problem (all of them together).
fn switch_desc<'a>(
    id: &str,
    nics: impl Iterator<Item = WireNic<'a>>,
) -> Result<SwitchDesc, Vec<String>> {
    let mut problems = Vec::new();
    let nics = nics
        .map(|n| {
            let admin = n.admin.unwrap_or_else(|p| {
                problems.push(format!("nic {}: {p}", quoted(n.name)));
                None
            });
            NicDesc {
                name: n.name.to_owned(),
                vrf: n.vrf.filter(|v| !v.is_empty()).map(str::to_owned),
                filter: n.filter,
                admin,
            }
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SwitchDesc {
        id: id.to_owned(),
        nics,
    })
}

/// The API's record of the last sync and the last failed one, each read
/// by `record` (the wire versions differ in how they write a record).
fn sync_status<T>(
    ok: Option<&T>,
    err: Option<&T>,
    record: fn(Option<&T>) -> Result<Option<SyncRecord>, String>,
) -> Result<SyncStatus, String> {
    Ok(SyncStatus {
        last_sync: record(ok)?,
        last_sync_error: record(err)?,
    })
}

/// Everything the agent keeps from a register, find or get response.
fn fetched(
    desc: Result<SwitchDesc, Vec<String>>,
    nic_names: Vec<String>,
    sync: Result<SyncStatus, String>,
    generation: Option<u64>,
) -> Result<FetchedSwitch, SwitchProblem> {
    Ok(FetchedSwitch {
        desc: desc.map_err(SwitchProblem::Nics)?,
        nic_names,
        sync: sync.map_err(SwitchProblem::Sync)?,
        generation,
    })
}

/// A switch object of either wire version, decoded but not yet converted.
pub(crate) enum SwitchObject {
    V1(v1::SwitchResponse),
    V2(v2::Switch),
}

impl SwitchObject {
    /// Decode `doc` (strictly parsed JSON) as a switch object of `version`,
    /// or of the version [`detect`] finds.
    pub(crate) fn decode(
        origin: &str,
        doc: Value,
        version: Option<ApiVersion>,
    ) -> Result<(ApiVersion, SwitchObject), SwitchDocError> {
        let version = match version.or_else(|| detect(&doc)) {
            Some(v) => v,
            None => {
                return Err(SwitchDocError::Ambiguous {
                    origin: origin.to_owned(),
                });
            }
        };
        let shape = |e: serde_json::Error| SwitchDocError::Shape {
            origin: origin.to_owned(),
            version,
            message: crate::names::escaped(&e.to_string(), 300),
        };
        let obj = match version {
            ApiVersion::V1 => SwitchObject::V1(serde_json::from_value(doc).map_err(shape)?),
            ApiVersion::V2 => SwitchObject::V2(v2::switch_from_document(doc).map_err(shape)?),
        };
        Ok((version, obj))
    }

    fn version(&self) -> ApiVersion {
        match self {
            SwitchObject::V1(_) => ApiVersion::V1,
            SwitchObject::V2(_) => ApiVersion::V2,
        }
    }

    fn problem(&self, origin: &str, p: SwitchProblem) -> SwitchDocError {
        match p {
            SwitchProblem::Nics(problems) => SwitchDocError::Nics {
                origin: origin.to_owned(),
                problems,
            },
            SwitchProblem::Sync(message) => SwitchDocError::Shape {
                origin: origin.to_owned(),
                version: self.version(),
                message: crate::names::escaped(&message, 300),
            },
        }
    }

    /// The API-neutral desired state.
    pub(crate) fn desc(&self, origin: &str) -> Result<SwitchDesc, SwitchDocError> {
        match self {
            SwitchObject::V1(s) => s.to_desc(),
            SwitchObject::V2(s) => s.to_desc(),
        }
        .map_err(|p| self.problem(origin, SwitchProblem::Nics(p)))
    }

    /// Everything the agent keeps from an API answer.
    #[cfg_attr(not(feature = "agent"), allow(dead_code))]
    pub(crate) fn fetched(&self, origin: &str) -> Result<FetchedSwitch, SwitchDocError> {
        match self {
            SwitchObject::V1(s) => s.to_fetched(),
            SwitchObject::V2(s) => s.to_fetched(),
        }
        .map_err(|p| self.problem(origin, p))
    }
}

/// Guess the wire version of a switch document.
pub fn detect(doc: &Value) -> Option<ApiVersion> {
    let obj = doc.as_object()?;
    if obj.get("switch").is_some_and(Value::is_object) {
        return Some(ApiVersion::V2);
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
        return Some(ApiVersion::V2);
    }
    if V1_KEYS.iter().any(|k| obj.contains_key(*k))
        || obj.get("partition").is_some_and(Value::is_object)
    {
        return Some(ApiVersion::V1);
    }
    let nics = obj.get("nics")?.as_array()?;
    let has = |k: &str| nics.iter().any(|n| n.get(k).is_some());
    if has("bgpFilter") || has("state") || has("bgpPortState") {
        Some(ApiVersion::V2)
    } else if has("filter") || has("actual") || has("admin_status") || has("bgp_port_state") {
        Some(ApiVersion::V1)
    } else {
        None
    }
}

/// Read a switch document of the given (or detected) version.
///
/// The JSON is read strictly: an object with a repeated key (`"nics"`
/// twice) is refused, because which of the two counts is a guess.
pub fn parse_switch_document(
    origin: &str,
    text: &str,
    version: Option<ApiVersion>,
) -> Result<(ApiVersion, SwitchDesc), SwitchDocError> {
    let doc = crate::json::from_str(text).map_err(|e| SwitchDocError::Json {
        origin: origin.to_owned(),
        message: crate::names::escaped(&e.to_string(), 300),
    })?;
    let (version, obj) = SwitchObject::decode(origin, doc, version)?;
    Ok((version, obj.desc(origin)?))
}

/// Samples the v1 and v2 body tests share: switch r01leaf01 as the fixtures
/// under `testdata/api` describe it. Each test adjusts them to its fixture.
#[cfg(test)]
pub(crate) mod samples {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::{RegisteredNic, Registration};
    use crate::observed::{BgpPortState, BgpState, PortOperState, SwitchReport};

    /// A wire fixture of `testdata/api/<version>/`.
    pub(crate) fn fixture(version: &str, name: &str) -> String {
        let path = format!(
            "{}/testdata/api/{version}/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// An established session in VRF `default`.
    pub(crate) fn established(
        neighbor: &str,
        peer_group: &str,
        since: u64,
        sent: u64,
        accepted: u64,
    ) -> BgpPortState {
        BgpPortState {
            neighbor: neighbor.into(),
            peer_group: peer_group.into(),
            vrf_name: "default".into(),
            state: BgpState::Established,
            established_since: Some(since),
            sent_prefixes: sent,
            accepted_prefixes: accepted,
        }
    }

    /// An idle machine session that never learnt its neighbor's name.
    pub(crate) fn idle_machine() -> BgpPortState {
        BgpPortState {
            neighbor: String::new(),
            peer_group: "MACHINE".into(),
            vrf_name: "Vrf104009".into(),
            state: BgpState::Idle,
            established_since: None,
            sent_prefixes: 0,
            accepted_prefixes: 0,
        }
    }

    /// The registration of r01leaf01: Ethernet0, Ethernet1 and Ethernet120,
    /// all up.
    pub(crate) fn registration() -> Registration {
        Registration {
            id: "r01leaf01".into(),
            partition: "fra-equ01".into(),
            rack: Some("rack01".into()),
            room: None,
            management_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 11)),
            management_user: "admin".into(),
            os_version: "ec202211_metal-stack_1.0.0".into(),
            agent_version: "v0.18.0 (eb8219c1), tags/v0.18.0-0-geb8219c, 2026-08-11T09:06:07+00:00"
                .into(),
            nics: [
                ("Ethernet0", "Eth1(Port1)"),
                ("Ethernet1", "Eth2(Port2)"),
                ("Ethernet120", "Eth31(Port31)"),
            ]
            .iter()
            .map(|(n, i)| RegisteredNic {
                name: (*n).into(),
                identifier: (*i).into(),
                oper: PortOperState::Up,
            })
            .collect(),
        }
    }

    /// A successful reconcile of r01leaf01: Ethernet0, Ethernet1 and
    /// Ethernet120 up, established sessions to a firewall on Ethernet0 and
    /// a spine on Ethernet120.
    pub(crate) fn report() -> SwitchReport {
        SwitchReport {
            duration: Duration::from_nanos(812_345_678),
            error: None,
            port_states: [
                ("Ethernet0", PortOperState::Up),
                ("Ethernet1", PortOperState::Up),
                ("Ethernet120", PortOperState::Up),
            ]
            .iter()
            .map(|(n, s)| ((*n).to_owned(), *s))
            .collect(),
            bgp_port_states: Some(BTreeMap::from([
                (
                    "Ethernet0".to_owned(),
                    established("fw-1", "FIREWALL", 1_776_078_835, 60, 1),
                ),
                (
                    "Ethernet120".to_owned(),
                    established("fra-equ01-spine02", "FABRIC", 1_773_056_572, 59, 95),
                ),
            ])),
        }
    }
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
        assert_eq!(v, ApiVersion::V1);
        let (v, two) =
            parse_switch_document("v2", &fixture("v2/switch-get-response.json"), None).unwrap();
        assert_eq!(v, ApiVersion::V2);
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

    /// The lab's leaf01 in both wire formats, against the same CONFIG_DB
    /// (mini-lab leaf01 base config + the 122-port mini-lab port map, seeded
    /// the way the lab does): identical SwitchSpecs and plans.
    #[test]
    fn v1_and_v2_of_the_same_switch_give_identical_specs() {
        use metal_switchd_lab::{fixtures, seed};
        let mut flat = serde_json::Map::new();
        let entries = seed::config_db_entries(fixtures::LEAF01_CONFIG)
            .unwrap()
            .into_iter()
            .chain(seed::port_entries(fixtures::MINI_LAB_PORT_MAP).unwrap());
        for (key, fields) in entries {
            let obj: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(f, v)| (f, Value::String(v)))
                .collect();
            flat.insert(key, Value::Object(obj));
        }
        let state = crate::configdb::snapshot::parse_config_db_json(
            "leaf01",
            &Value::Object(flat).to_string(),
        )
        .unwrap();
        let cfg = crate::config::Config::from_sources(
            Some(("leaf01.toml", fixtures::LEAF01_AGENT_CONFIG)),
            Vec::new(),
        )
        .unwrap();
        let lab = |f: &str| {
            std::fs::read_to_string(format!("{}/lab/switches/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        };
        let (v, one) = parse_switch_document("v1", &lab("leaf01.v1.json"), None).unwrap();
        assert_eq!(v, ApiVersion::V1);
        let (v, two) = parse_switch_document("v2", &lab("leaf01.v2.json"), None).unwrap();
        assert_eq!(v, ApiVersion::V2);
        let assumed = crate::configdb::confirmed::Confirmed::assumed();
        let prepared = |doc| crate::reconcile::prepare(doc, &cfg, &state, &assumed).unwrap();
        let (a, b) = (prepared(&one), prepared(&two));
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.plan, b.plan);
        // Not trivially equal: the spec has the lab's tenants, firewall and a
        // port set down.
        assert_eq!(a.spec.vrfs.len(), 2);
        assert!(matches!(
            a.spec.ports["Ethernet0"].role,
            crate::spec::PortRole::Firewall { .. }
        ));
        assert_eq!(
            a.spec.ports["Ethernet4"].admin,
            Some(crate::spec::AdminStatus::Down)
        );
        assert!(!a.plan.phases.is_empty());
    }

    /// The reference fixtures (r01leaf01) through `spec::build` with local
    /// facts made by hand. They differ in two documented ways: the v1
    /// fixture has one more (unprovisioned) nic, Ethernet2, and it is a
    /// metal-api HEAD answer without `admin_status`, while the v2 one asks
    /// for Ethernet1 DOWN. Apart from those the specs are identical.
    #[test]
    fn reference_fixtures_give_identical_specs() {
        use crate::spec::{AdminStatus, LocalFacts, build};
        let facts = LocalFacts {
            ports: [
                ("Ethernet0", "Eth1(Port1)"),
                ("Ethernet1", "Eth2(Port2)"),
                ("Ethernet2", "Eth3(Port3)"),
                ("Ethernet120", "Eth31(Port31)"),
            ]
            .iter()
            .map(|(n, a)| ((*n).to_owned(), Some((*a).to_owned())))
            .collect(),
            vteps: vec!["vtep".into()],
            nvos: [("nvo".to_owned(), "vtep".to_owned())].into(),
            vlans: [4000].into(),
            used_vlans: [4000].into(),
            ..LocalFacts::default()
        };
        let cfg = crate::config::Config {
            hostname: Some("r01leaf01".into()),
            spine_uplinks: vec!["Ethernet120".into()],
            ..crate::config::Config::default()
        };
        let (_, one) =
            parse_switch_document("v1", &fixture("v1/switch-response.json"), None).unwrap();
        let (_, two) =
            parse_switch_document("v2", &fixture("v2/switch-get-response.json"), None).unwrap();
        let mut a = build(&one, &cfg, &facts).unwrap();
        let mut b = build(&two, &cfg, &facts).unwrap();
        let extra = a.ports.remove("Ethernet2").unwrap();
        assert_eq!(extra.role, crate::spec::PortRole::Unprovisioned);
        let e1 = b.ports.get_mut("Ethernet1").unwrap();
        assert_eq!(e1.admin.take(), Some(AdminStatus::Down));
        assert_eq!(a, b);
        assert_eq!(a.vrfs.keys().copied().collect::<Vec<_>>(), [104009]);
    }

    #[test]
    fn ambiguous_documents_are_refused() {
        let e = parse_switch_document("x", r#"{"id": "a", "nics": []}"#, None).unwrap_err();
        assert!(e.to_string().contains("--api v1"), "{e}");
        let (_, d) =
            parse_switch_document("x", r#"{"id": "a", "nics": []}"#, Some(ApiVersion::V1)).unwrap();
        assert!(d.nics.is_empty());
    }

    /// Issue 9, finding 3: a repeated key is refused, in both versions.
    #[test]
    fn repeated_keys_are_refused() {
        let v1 = r#"{"id": "leaf01", "rack_id": "r", "nics": [{"name": "Ethernet0", "vrf": ""}], "nics": null}"#;
        let e = parse_switch_document("v1.json", v1, None).unwrap_err();
        assert!(matches!(e, SwitchDocError::Json { .. }), "{e}");
        assert!(e.to_string().contains("key \"nics\" appears twice"), "{e}");
        let v2 = r#"{"switch": {"id": "leaf01", "partition": "p", "nics": [{"name": "Ethernet0", "vrf": "vrf1", "vrf": "default"}]}}"#;
        let e = parse_switch_document("v2.json", v2, None).unwrap_err();
        assert!(e.to_string().contains("key \"vrf\" appears twice"), "{e}");
    }

    /// Issue 9, finding 3: an admin status outside the wire enum is refused
    /// (metal-api reference §1.2: `admin_status` is `DOWN|UP`, nullable;
    /// §3.2: `SwitchPortStatus` names), every such nic named.
    #[test]
    fn unknown_admin_status_is_refused() {
        let v1 = r#"{"id": "leaf01", "rack_id": "r", "nics": [
            {"name": "Ethernet0", "vrf": "", "admin_status": "SIDEWAYS"},
            {"name": "Ethernet1", "vrf": "", "admin_status": "up"},
            {"name": "Ethernet2", "vrf": "", "admin_status": "UNKNOWN"},
            {"name": "Ethernet3", "vrf": "", "admin_status": "DOWN\u202e"}]}"#;
        let e = parse_switch_document("v1.json", v1, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(2 problems)"), "{e}");
        assert!(
            e.contains(
                "nic \"Ethernet0\": admin_status \"SIDEWAYS\" is not UP, DOWN, UNKNOWN or null"
            ),
            "{e}"
        );
        assert!(e.contains("\"DOWN\\u{202e}\""), "{e}");
        let v2 = r#"{"switch": {"id": "leaf01", "partition": "p", "nics": [
            {"name": "Ethernet0", "state": {"desired": "UP"}},
            {"name": "Ethernet1", "state": {"desired": "SWITCH_PORT_STATUS_DOWN"}}]}}"#;
        let e = parse_switch_document("v2.json", v2, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nic \"Ethernet0\": state.desired \"UP\" is not"),
            "{e}"
        );
        assert!(!e.contains("Ethernet1"), "{e}");
    }
}
