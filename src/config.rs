//! The agent configuration: a TOML file plus environment variables.
//!
//! Every key of the file can also be set as `METAL_SWITCHD_<KEY>` (upper-case),
//! and every setting of the predecessor `metal-core` is accepted under its
//! `METAL_CORE_<KEY>` name, so an existing deployment's environment works
//! unchanged. Precedence, lowest first: built-in default, file,
//! `METAL_CORE_*`, `METAL_SWITCHD_*`. Unknown keys (in the file or in either
//! environment prefix) are an error.
//!
//! This module is pure apart from [`Config::load`], which reads the file and
//! the process environment and hands both to [`Config::from_sources`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where `--config` points when it is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/metal-switchd/config.toml";
/// Environment prefix of this agent's own variables.
pub const ENV_PREFIX: &str = "METAL_SWITCHD_";
/// Environment prefix of the predecessor's variables.
pub const METAL_CORE_PREFIX: &str = "METAL_CORE_";
/// Variables with [`ENV_PREFIX`] that are not configuration keys (read by the
/// CLI; `METAL_SWITCHD_REVISION` by the build).
const RESERVED_ENV: &[&str] = &[
    "METAL_SWITCHD_CONFIG",
    "METAL_SWITCHD_LOG",
    "METAL_SWITCHD_REVISION",
];

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Missing (when named), not a regular file, larger than 1 MiB, not UTF-8.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// Never shows source lines: a line may hold a secret.
    #[error("configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration ({}):{}", crate::names::count(.0.len(), "problem"), crate::names::listed(.0))]
    Invalid(Vec<String>),
}

/// How the value of an environment variable is turned into a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    /// Comma separated in the environment, a TOML array in the file.
    List,
}

/// The type of a setting: how the environment spells it, and whether its
/// value is a secret (never shown in an error).
trait Setting {
    const KIND: Kind;
    const SECRET: bool = false;
}

macro_rules! settings {
    ($kind:ident: $($ty:ty),+) => {
        $(impl Setting for $ty {
            const KIND: Kind = Kind::$kind;
        })+
    };
}
settings!(Int: u16, u32, u64);
settings!(Bool: bool);
settings!(Str: String, PathBuf, Ipv4Addr, IpAddr, HumanDuration, VlanRange, LogLevel, LogFormat);
settings!(Str: NamingSchema, ApiVersion, FrrValidation, FrrReload, BgpStateSource);

impl Setting for Secret {
    const KIND: Kind = Kind::Str;
    const SECRET: bool = true;
}

impl<T: Setting> Setting for Option<T> {
    const KIND: Kind = T::KIND;
    const SECRET: bool = T::SECRET;
}

impl<T> Setting for Vec<T> {
    const KIND: Kind = Kind::List;
}

/// Where a key is documented: one table of `docs/configuration.md` each.
/// Only metal-core's keys are also read from `METAL_CORE_<KEY>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    MetalCore,
    Own,
    Frr,
    Api,
    Operation,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::MetalCore,
        Section::Own,
        Section::Frr,
        Section::Api,
        Section::Operation,
    ];

    /// The heading of the section's table in `docs/configuration.md`.
    pub fn heading(self) -> &'static str {
        match self {
            Section::MetalCore => "## Keys of metal-core (also `METAL_CORE_<KEY>`)",
            Section::Own => "## Keys of metal-switchd (`METAL_SWITCHD_<KEY>` only)",
            Section::Frr => "## FRR keys of metal-switchd",
            Section::Api => "## metal API keys of metal-switchd",
            Section::Operation => "## Operation keys of metal-switchd",
        }
    }
}

/// One configuration key, as `config_keys!` declares it.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    kind: Kind,
    /// Its value is never shown in an error.
    secret: bool,
    pub section: Section,
    /// What it means (the field's documentation and its row in
    /// `docs/configuration.md`).
    pub doc: &'static str,
    /// How the default is shown where it is not a value (`hostname`).
    pub shown: Option<&'static str>,
}

impl KeyDef {
    /// Also read from `METAL_CORE_<KEY>`.
    pub fn metal_core(&self) -> bool {
        self.section == Section::MetalCore
    }
}

/// Declares every configuration key once: its name, type, default, section
/// and meaning (then, after `@derived`, the values filled while the
/// configuration is read, which are not keys). From this one table come the [`Config`] struct and its
/// `Default`, [`KEYS`] (the environment variables and how their values are
/// read) and the key tables of `docs/configuration.md` (a test keeps them
/// equal). A new setting is one entry here.
macro_rules! config_keys {
    ($(
        $(#[$attr:meta])*
        $name:ident : $ty:ty = $default:expr, $section:ident $(, shown $shown:literal)?,
            $doc:literal;
    )*
    $(
        @derived $derived:ident : $dty:ty, $ddoc:literal;
    )*) => {
        /// The agent configuration. Field names are the configuration keys
        /// (and a few values derived while it is read, which are not keys).
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Config {
            $(
                #[doc = $doc]
                $(#[$attr])*
                pub $name: $ty,
            )*
            $(
                #[doc = $ddoc]
                #[serde(skip)]
                pub $derived: $dty,
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($name: $default,)*
                    $($derived: Default::default(),)*
                }
            }
        }

        /// Every configuration key, in the order of [`Config`]'s fields.
        pub const KEYS: &[KeyDef] = &[$(
            KeyDef {
                name: stringify!($name),
                kind: <$ty as Setting>::KIND,
                secret: <$ty as Setting>::SECRET,
                section: Section::$section,
                doc: $doc,
                shown: config_keys!(@shown $($shown)?),
            },
        )*];
    };
    (@shown) => {
        None
    };
    (@shown $shown:literal) => {
        Some($shown)
    };
}

/// What the agent does instead of an unread setting (for its notice).
type Instead = fn(&Config) -> String;

/// Variables metal-roles' `metal-core-env` template sets (metal-roles
/// `partition/roles/metal-core/templates/metal-core-env.j2` @ 0cf6bbe:
/// `METAL_CORE_SYNC_SCHEDULE` from `metal_core_sync_cron_schedule`,
/// `METAL_CORE_SYNC_DELAY` from `metal_core_sync_delay`) that metal-core
/// does not read: no version of its `cmd/config.go` (@ 0170ec5, 74b85a3) or
/// older `pkg/domain/model.go` has such a field, and envconfig skips names
/// it does not know. Accepted with a notice that says what the agent does
/// instead ([`Config::notices`]), so metal-roles' file works unchanged.
const METAL_CORE_UNREAD: &[(&str, Instead)] = &[
    ("sync_schedule", |c| {
        format!(
            "the agent reconciles every reconfigure_switch_interval ({}) and at once when \
             CONFIG_DB, a port or frr.conf changes; there is no schedule to set",
            humantime::format_duration(c.reconfigure_switch_interval.0)
        )
    }),
    ("sync_delay", |_| {
        "the agent does not delay its reconciles; its first one waits for SONiC's \
         CONFIG_DB_INITIALIZED and PortInitDone"
            .to_owned()
    }),
];

/// metal-core settings metal-switchd accepts without using them, because
/// metal-core did not use them on SONiC either. Setting one gives a notice
/// that names it ([`Config::notices`]): `check-config` prints it, `run`
/// logs it. (metal-roles sets both on every switch.)
const WITHOUT_EFFECT: &[(&str, &str)] = &[
    (
        "cidr",
        "metal-core uses it only on Cumulus (its own address in /etc/network/interfaces); it \
         has no effect on SONiC",
    ),
    (
        "bind_address",
        "metal-core does not use it either; the metrics endpoint binds \
         metrics_server_bind_address",
    ),
];

/// Settings of older metal-core versions (its PXE proxy, NSQ machine
/// events, IPMI, DHCP relay; metal-core `domain` and `cmd` config of those
/// versions): refused by name, with what happened to them.
const RETIRED_METAL_CORE: &[(&str, &str)] = &[
    ("port", "the port of metal-core's PXE proxy"),
    ("console_logging", "metal-core's console logging switch"),
    ("mq_address", "metal-core's NSQ machine events"),
    ("mq_ca_cert_file", "metal-core's NSQ machine events"),
    ("mq_client_cert_file", "metal-core's NSQ machine events"),
    ("mq_loglevel", "metal-core's NSQ machine events"),
    ("machine_topic", "metal-core's NSQ machine events"),
    ("machine_topic_ttl", "metal-core's NSQ machine events"),
    ("change_boot_order", "metal-core's IPMI boot order changes"),
    (
        "dhcp_servers",
        "metal-core's DHCP relay on SONiC (the PXE VLAN's dhcp_servers in the base \
         configuration take its place)",
    ),
];

/// Log level as metal-core names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    #[serde(alias = "warning")]
    Warn,
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// How log lines look when they do not go to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (ANSI colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which API nic field holds the kernel port name (metal-api reference §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamingSchema {
    /// nic name = kernel name, identifier = alias
    #[default]
    Default,
    /// nic name = alias, identifier = kernel name
    Swap,
    /// both are the kernel name
    Name,
    /// both are the alias
    Alias,
}

impl NamingSchema {
    /// Whether the API's nic `name` is the port's alias rather than its kernel name.
    pub fn nic_name_is_alias(self) -> bool {
        matches!(self, NamingSchema::Swap | NamingSchema::Alias)
    }
}

/// Which metal API the agent talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// metal-api, REST with HMAC.
    #[default]
    V1,
    /// metal-apiserver, Connect with a bearer token.
    V2,
}

impl ApiVersion {
    /// The server of this version, for people.
    pub fn server(self) -> &'static str {
        match self {
            ApiVersion::V1 => "metal-api v1",
            ApiVersion::V2 => "metal-apiserver v2",
        }
    }
}

/// `v1` or `v2`, as the configuration writes it.
impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "v1" => Ok(ApiVersion::V1),
            "v2" => Ok(ApiVersion::V2),
            other => Err(format!("{other:?} is not v1 or v2")),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        })
    }
}

/// How a rendered FRR configuration is checked before it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrrValidation {
    /// Run `vtysh --dryrun -f FILE` directly.
    #[default]
    Vtysh,
    /// Start `frr_validation_unit` (e.g. `bgp-validation@<escaped path>.service`)
    /// over D-Bus, as metal-core does on SONiC.
    Systemd,
}

/// How FRR is told to load an installed configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrrReload {
    /// Start `frr_reload_unit` over D-Bus and wait for its job (metal-core's way).
    #[default]
    Systemd,
    /// Run `frr_reload_path` with `frr_reload_args` directly.
    Exec,
    /// Install only; never reload.
    None,
}

/// Where the BGP neighbour states come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BgpStateSource {
    /// `bgp_neighbor_state_file`, written by metal-stack's bgp-neighbor-stats timer.
    #[default]
    File,
    /// `vtysh -c "show bgp vrf all neighbors json"`, on every read.
    Vtysh,
}

/// An inclusive VLAN id range, written `1001-2000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRange {
    pub first: u16,
    pub last: u16,
}

impl VlanRange {
    pub fn contains(&self, vid: u16) -> bool {
        (self.first..=self.last).contains(&vid)
    }
    pub fn iter(&self) -> impl Iterator<Item = u16> + use<> {
        self.first..=self.last
    }
}

impl Default for VlanRange {
    fn default() -> Self {
        VlanRange {
            first: 1001,
            last: 2000,
        }
    }
}

impl fmt::Display for VlanRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for VlanRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("VLAN range {s:?} is not of the form FIRST-LAST"))?;
        let parse = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| format!("VLAN range {s:?}: {x:?} is not a VLAN id"))
        };
        let (first, last) = (parse(a)?, parse(b)?);
        if first > last {
            return Err(format!("VLAN range {s:?}: first id is above the last"));
        }
        Ok(VlanRange { first, last })
    }
}

impl Serialize for VlanRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VlanRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A secret string (HMAC key). It never appears in `Debug`, logs or errors.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret's value; call only where it is used (signing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// The longest duration any setting or option takes: 30 days. Every
/// duration the agent adds to a clock stays far from overflowing it.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// A duration written like `10s`, `1m30s`, `500ms`, at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err(format!(
            "is longer than {}, the longest duration a setting takes",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// A duration written like `10s`, `1m30s`, `500ms` ([`parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(HumanDuration).map_err(|e| {
            let shown = crate::names::quoted(&s);
            serde::de::Error::custom(format!("{shown} is not a duration: {e}"))
        })
    }
}

/// An optional setting where metal-core treats the empty string as "unset".
fn empty_as_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let s = Option::<String>::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

config_keys! {
    cidr: Option<String> = None, MetalCore,
        "accepted without effect, named in a notice (`check-config` prints it, `run` logs it): \
         metal-core uses it only on Cumulus; metal-roles sets it everywhere";
    partition_id: Option<String> = None, MetalCore,
        "partition of the switch (registration)";
    rack_id: Option<String> = None, MetalCore,
        "rack of the switch (registration)";
    room_id: Option<String> = None, MetalCore,
        "room of the switch (registration, optional)";
    bind_address: String = "0.0.0.0".into(), MetalCore,
        "accepted without effect, named in a notice: metal-core does not use it either (the \
         metrics endpoint binds `metrics_server_bind_address`)";
    metrics_server_port: u16 = 2112, MetalCore,
        "port of the Prometheus endpoint";
    metrics_server_bind_address: String = "0.0.0.0".into(), MetalCore,
        "address of the Prometheus endpoint";
    log_level: LogLevel = LogLevel::Info, MetalCore,
        "`debug`, `info`, `warn` (or `warning`) or `error`; also FRR's syslog level; `--log` / \
         `METAL_SWITCHD_LOG` (a `tracing` filter such as `metal_switchd=debug`) overrides it";
    metal_api_protocol: String = "http".into(), MetalCore,
        "v1 base URL: protocol";
    metal_api_ip: String = "localhost".into(), MetalCore,
        "v1 base URL: host";
    metal_api_port: u16 = 8080, MetalCore,
        "v1 base URL: port";
    metal_api_basepath: String = String::new(), MetalCore,
        "v1 base URL: base path, e.g. `/metal/`";
    loopback_ip: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11), MetalCore,
        "loopback address: BGP router id, `RM_SET_SRC` source";
    set_src_loopback: bool = false, MetalCore,
        "render `RM_SET_SRC` so BGP routes use the loopback as source";
    asn: u32 = 420000011, MetalCore,
        "the switch's BGP ASN (not 0)";
    spine_uplinks: Vec<String> = Vec::new(), MetalCore,
        "uplink ports to the spines: the underlay (peer group FABRIC); metal-core's default \
         `swp31,swp32` names Cumulus ports, which SONiC has not";
    #[serde(deserialize_with = "empty_as_none")]
    management_gateway: Option<IpAddr> = None, MetalCore,
        "gateway of the management VRF (empty = none)";
    additional_mgmt_routes: Vec<IpNet> = Vec::new(), MetalCore,
        "extra prefixes routed via the management gateway";
    reconfigure_switch: bool = false, MetalCore,
        "whether `run` applies the desired state (false, metal-core's default: compute and \
         report only, write nothing); `apply --once` always applies";
    reconfigure_switch_interval: HumanDuration = HumanDuration(Duration::from_secs(10)), MetalCore,
        "how often `run` fetches the desired state and reconciles without another trigger; also \
         the longest backoff after failures; more than `0s`";
    timeout: HumanDuration = HumanDuration(Duration::from_secs(15)), MetalCore,
        "limit of one reconcile and of API calls; more than `0s`. It bounds everything one \
         reconcile waits for: a longer `barrier_timeout` or `kernel_drift_grace` is cut to what \
         is left of it, which `check-config` and the start say in a note";
    additional_bridge_vids: Vec<String> = Vec::new(), MetalCore,
        "Cumulus only: empty is accepted (metal-roles writes it empty), any VLAN is refused at \
         start, by name";
    additional_bridge_ports: Vec<String> = Vec::new(), MetalCore,
        "ports the agent leaves alone and does not register, by PORT name or alias; an entry \
         that names no port is refused by name (desired state and registration) rather than \
         skipped, since the port meant would be taken over";
    interfaces_tpl_file: Option<PathBuf> = None, MetalCore,
        "Cumulus only: empty is accepted, a file is refused at start, by name";
    frr_tpl_file: Option<PathBuf> = None, MetalCore,
        "metal-core's custom FRR template: empty is accepted, a file is refused at start, by \
         name — the agent renders frr.conf itself with the lines the switch's SONiC flavour \
         needs (`docs/flavours.md`); add lines with `frr_extra_config`";
    hmac_key: Option<Secret> = None, MetalCore,
        "v1 HMAC key (Metal-Edit); never printed; prefer `hmac_key_file`";
    #[serde(deserialize_with = "empty_as_none")]
    grpc_address: Option<String> = None, MetalCore,
        "v1 phone-home: `host:port` of metal-api's gRPC event service \
         (`api.v1.EventService/Send`, mutual TLS; metal-roles: `<metal-api>:50051`); when set, \
         the three files below are required";
    #[serde(deserialize_with = "empty_as_none")]
    grpc_ca_cert_file: Option<PathBuf> = None, MetalCore,
        "v1 phone-home: CA certificate (PEM) the server's certificate is checked against (with \
         the host of `grpc_address`)";
    #[serde(deserialize_with = "empty_as_none")]
    grpc_client_cert_file: Option<PathBuf> = None, MetalCore,
        "v1 phone-home: client certificate (PEM) presented to metal-api";
    #[serde(deserialize_with = "empty_as_none")]
    grpc_client_key_file: Option<PathBuf> = None, MetalCore,
        "v1 phone-home: the client certificate's private key (PEM)";
    pxe_vlan_id: u16 = 4000, MetalCore,
        "VLAN of unprovisioned ports; must exist in the base configuration and lie outside \
         `vlan_range`";
    #[serde(deserialize_with = "empty_as_none")]
    bgp_neighbor_state_file: Option<PathBuf> =
        Some(PathBuf::from("/var/run/bgp-neighbors/bgp-neighbors.json")), MetalCore,
        "BGP neighbour state written by the bgp-neighbor-stats timer (empty disables it)";
    interface_naming_schema: NamingSchema = NamingSchema::Default, MetalCore,
        "which nic field carries the kernel name: `default` (name = kernel, identifier = \
         alias), `swap`, `name`, `alias`";
    metal_apiserver_url: Option<String> = None, MetalCore,
        "v2 base URL of the metal-apiserver";
    metal_apiserver_token_file: PathBuf =
        PathBuf::from("/var/run/metal-core/metal-apiserver-token"), MetalCore,
        "v2 bearer token file";
    #[serde(deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    api_version: Option<ApiVersion> = None, Own, shown "from the credentials",
        "`v1` (metal-api, REST + HMAC) or `v2` (metal-apiserver, Connect + token); unset: v1 \
         with an HMAC key, v2 with `metal_apiserver_url` or a non-default \
         `metal_apiserver_token_file` and no HMAC key, refused with both an HMAC key and \
         `metal_apiserver_url` (docs/api.md)";
    api_allow_plaintext: bool = false, Own,
        "accept plain `http://` to the metal API; without it a v2 token is never sent over \
         plain HTTP (docs/api.md, \"Plain HTTP\")";
    hmac_key_file: Option<PathBuf> = None, Own,
        "file holding the v1 HMAC key";
    hostname: Option<String> = None, Own, shown "system hostname",
        "switch id and FRR hostname (RFC 1123); a switch document whose `id` differs is refused";
    vlan_range: VlanRange = VlanRange::default(), Own,
        "VLAN ids the agent allocates for tenant VRFs";
    static_vrfs: Vec<String> = Vec::new(), Own,
        "VRFs an operator declared; the agent never writes or deletes them or their VLANs, maps \
         and bindings";
    database_config: PathBuf = PathBuf::from("/var/run/redis/sonic-db/database_config.json"), Own,
        "SONiC's database locations (instances, ids, separators, `password_path`); one redis \
         command may take up to 30 s before the connection counts as broken and is re-opened";
    frr_config: PathBuf = PathBuf::from("/etc/sonic/frr/frr.conf"), Own,
        "where FRR's configuration is installed";
    barrier_timeout: HumanDuration = HumanDuration(Duration::from_secs(30)), Own,
        "how long the applier waits for SONiC to confirm one phase (more than `0s`), at most \
         what is left of `timeout` for the reconcile (the default `timeout` of 15 s cuts it: set \
         `timeout` to at least `barrier_timeout` to wait longer)";
    kernel_checks: bool = true, Own,
        "a reconcile counts as converged only once the kernel shows the desired state (VRF \
         devices, their VLAN interfaces, port masters, VXLAN devices with the right VNI in the \
         right VLAN, MTU, admin state; `docs/kernel.md`), and kernel drift is repaired through \
         CONFIG_DB; turn it off where the kernel cannot create these objects (a lab on a kernel \
         without `vrf`)";
    kernel_drift_grace: HumanDuration = HumanDuration(Duration::from_secs(10)), Own,
        "how long the kernel may disagree with the desired state before it counts as drift \
         (reported, and repaired through CONFIG_DB where SONiC can: at most 3 times, 30 s \
         apart)";
    frr_agentx: bool = true, Frr,
        "render `agentx` (FRR's SNMP AgentX client; needs the daemons' snmp module, which SONiC \
         loads)";
    frr_extra_config: Vec<String> = Vec::new(), Frr,
        "the operator's lines, appended to the end of frr.conf as given, one FRR command per \
         element (in the environment: comma separated, trimmed — FRR does not need indentation; \
         a line with a comma needs the file); validated by FRR with the rest of the file; \
         refused at start: a control character, more than 512 characters, more than 1000 lines, \
         and what the agent renders itself (`hostname`, `password`, `enable password`, `frr \
         defaults`/`version`, `router bgp <asn>`, `router bgp <asn> vrf Vrf<VNI>`, `vrf \
         Vrf<VNI>`; a static VRF's `router bgp <asn> vrf <name>` is fine)";
    frr_validation: FrrValidation = FrrValidation::Vtysh, Frr,
        "how a rendered configuration is checked before install: `vtysh` (`vtysh --dryrun -f \
         FILE`) or `systemd` (start `frr_validation_unit` over D-Bus, as metal-core does on \
         SONiC)";
    frr_validation_unit: String = "bgp-validation@.service".into(), Frr,
        "template unit that validates the file named by its instance (`vtysh --dryrun \
         --inputfile %I`)";
    frr_validation_timeout: HumanDuration = HumanDuration(Duration::from_secs(30)), Frr,
        "limit of one validation";
    frr_reload: FrrReload = FrrReload::Systemd, Frr,
        "how FRR loads an installed configuration: `systemd` (start `frr_reload_unit` over \
         D-Bus and wait for its job), `exec` (run `frr_reload_path`), `none` (install only)";
    frr_reload_unit: String = "frr-reload.service".into(), Frr,
        "unit that makes FRR load `frr_config`";
    frr_reload_path: PathBuf = PathBuf::from("/usr/lib/frr/frr-reload.py"), Frr,
        "program run by `frr_reload = \"exec\"`";
    frr_reload_args: Vec<String> =
        ["--reload", "--stdout", "{file}"].map(String::from).to_vec(), Frr,
        "its arguments; `{file}` is replaced by the installed configuration's path";
    frr_reload_timeout: HumanDuration = HumanDuration(Duration::from_secs(60)), Frr,
        "limit of one reload";
    vtysh_path: PathBuf = PathBuf::from("/usr/bin/vtysh"), Frr,
        "vtysh, for validation, for reading BGP state and for FRR's version (`show version`, \
         part of the SONiC flavour)";
    #[serde(deserialize_with = "empty_as_none")]
    frr_vty_socket_dir: Option<PathBuf> = None, Frr,
        "directory of FRR's vty sockets (`vtysh --vty_socket`); empty: FRR's default";
    bgp_state_source: BgpStateSource = BgpStateSource::File, Frr,
        "where BGP neighbour states come from: `file` (`bgp_neighbor_state_file`) or `vtysh` \
         (`show bgp vrf all neighbors json` on every read)";
    #[serde(deserialize_with = "empty_as_none")]
    systemd_bus_address: Option<String> = None, Frr,
        "D-Bus address of systemd's bus; empty: `DBUS_SYSTEM_BUS_ADDRESS`, else the system bus";
    sonic_version_file: PathBuf = PathBuf::from("/etc/sonic/sonic_version.yml"), Api,
        "SONiC's version file; its `build_version` is the registered OS version, and with \
         `branch`, `release` and `debian_version` it tells the SONiC flavour \
         (`docs/flavours.md`)";
    management_interface: String = "eth0".into(), Api,
        "interface whose first global unicast address is registered as the management IP";
    api_ca_file: Option<PathBuf> = None, Api,
        "extra CA certificates (PEM) trusted for the metal API, on top of the system roots";
    api_retry_attempts: u32 = 4, Api,
        "attempts per API call when it fails transiently (connection errors, 5xx, \
         `unavailable`); 1 = no retry; registration retries until it succeeds";
    api_retry_backoff: HumanDuration = HumanDuration(Duration::from_millis(500)), Api,
        "first pause between attempts; doubles per attempt, with jitter; more than `0s`";
    api_retry_max_backoff: HumanDuration = HumanDuration(Duration::from_secs(30)), Api,
        "longest pause between attempts";
    api_max_response_bytes: u64 = 16 * 1024 * 1024, Api,
        "largest API response body accepted, and largest switch document file (`--switch`)";
    max_snapshot_bytes: u64 = 64 * 1024 * 1024, Own,
        "largest CONFIG_DB snapshot (`--configdb`) read; see [Input files](#input-files)";
    log_format: LogFormat = LogFormat::Text, Operation,
        "how log lines on stderr look: `text` (ANSI colours only when stderr is a terminal) or \
         `json` (one object per line); when stderr is the journal (`JOURNAL_STREAM`, as under \
         systemd) the agent writes structured journal entries instead";
    state_directory: PathBuf = PathBuf::from("/run/metal-switchd"), Operation,
        "where the daemon writes `status.json` for `metal-switchd status`; the unit creates it \
         (`RuntimeDirectory=metal-switchd`)";
    phone_home_interval: HumanDuration = HumanDuration(Duration::from_secs(60)), Operation,
        "how often the machines seen over LLDP are reported to the event service, all in one \
         call (metal-core's fixed 60 s); failed batches are retried at the next interval";
    @derived unused_set: Vec<String>,
        "metal-core settings without effect on SONiC that were set, with where (filled by \
         [`Config::from_sources`]; [`Config::notices`] names them)";
}

/// Whether the value of key `name` is a secret.
fn is_secret(name: &str) -> bool {
    KEYS.iter().any(|k| k.secret && k.name == name)
}

impl Config {
    /// Load from `path` (if it exists, or if `required`) and the process environment.
    ///
    /// The file is read bounded ([`crate::files`]): at most 1 MiB, a regular
    /// file, UTF-8. Without `hostname`, the system host name is used and
    /// checked like a configured one.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        Config::load_with_env(path, required, std::env::vars())
    }

    /// [`Config::load`] with the given environment instead of the process'
    /// (`migrate` checks what the systemd unit will see: only its
    /// environment files).
    pub fn load_with_env(
        path: &Path,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        use crate::files::{CONFIGURATION_MAX_BYTES, FileKind, read_text};
        let text = match read_text(FileKind::Configuration, path, CONFIGURATION_MAX_BYTES) {
            Ok(t) => Some(t),
            Err(e) if e.is_missing() && !required => None,
            Err(e) => return Err(e.into()),
        };
        let origin = path.display().to_string();
        let mut cfg = Config::from_sources(text.as_deref().map(|t| (origin.as_str(), t)), env)?;
        if cfg.hostname.is_none() {
            let system = system_hostname().ok_or_else(|| {
                ConfigError::Invalid(vec![
                    "hostname is not set and the system host name is unknown; set hostname".into(),
                ])
            })?;
            if let Some(p) = crate::names::hostname_problem(&system) {
                return Err(ConfigError::Invalid(vec![format!(
                    "hostname is not set and the system host name cannot be used: {p}; set \
                     hostname"
                )]));
            }
            cfg.hostname = Some(system);
        }
        Ok(cfg)
    }

    /// Build a configuration from an optional file `(name, text)` and
    /// environment variables. Pure: no file or process access.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some((path, text)) => {
                toml::from_str::<toml::Table>(text).map_err(|e| syntax_error(path, text, &e))?
            }
            None => toml::Table::new(),
        };
        // Where each key's value comes from, for errors.
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        if let Some((path, _)) = file {
            for k in table.keys() {
                origins.insert(k.clone(), format!("configuration file {path}"));
            }
            let unknown: Vec<String> = table
                .keys()
                .filter(|k| !KEYS.iter().any(|d| d.name == k.as_str()))
                .map(|k| format!("unknown key {}", crate::names::quoted(k)))
                .collect();
            if !unknown.is_empty() {
                return Err(ConfigError::Parse {
                    path: path.to_owned(),
                    message: format!("{} (known keys: {})", unknown.join(", "), known_keys()),
                });
            }
        }
        // metal-core variables first, so that METAL_SWITCHD_* overrides them.
        let mut core = BTreeMap::new();
        let mut own = BTreeMap::new();
        for (var, value) in env {
            if let Some(k) = var.strip_prefix(ENV_PREFIX) {
                if RESERVED_ENV.contains(&var.as_str()) || crate::crash::is_crash_var(&var) {
                    continue;
                }
                own.insert(var.clone(), (k.to_ascii_lowercase(), value));
            } else if let Some(k) = var.strip_prefix(METAL_CORE_PREFIX) {
                core.insert(var.clone(), (k.to_ascii_lowercase(), value));
            }
        }
        let mut unread = Vec::new();
        for (vars, metal_core) in [(core, true), (own, false)] {
            for (var, (name, value)) in vars {
                if let Some((_, instead)) = METAL_CORE_UNREAD
                    .iter()
                    .find(|(k, _)| metal_core && *k == name)
                {
                    unread.push((var, value, *instead));
                    continue;
                }
                let def = KEYS
                    .iter()
                    .find(|d| d.name == name && (d.metal_core() || !metal_core))
                    .ok_or_else(|| ConfigError::Env {
                        var: var.clone(),
                        message: match RETIRED_METAL_CORE.iter().find(|(k, _)| *k == name) {
                            Some((_, what)) if metal_core => format!(
                                "a setting of older metal-core versions ({what}), which \
                                 metal-switchd does not do; remove it"
                            ),
                            _ => format!("not a configuration key (known keys: {})", known_keys()),
                        },
                    })?;
                table.insert(name.clone(), env_value(&var, def.kind, &value)?);
                origins.insert(name, format!("environment variable {var}"));
            }
        }
        let mut cfg: Config = match table.clone().try_into() {
            Ok(c) => c,
            Err(e) => return Err(type_errors(&table, &origins, &e)),
        };
        for (var, value, instead) in unread {
            let notice = format!(
                "environment variable {var} sets {} = {}: metal-core does not read it either; {}",
                var.trim_start_matches(METAL_CORE_PREFIX)
                    .to_ascii_lowercase(),
                crate::names::quoted(&value),
                instead(&cfg)
            );
            cfg.unused_set.push(notice);
        }
        for (key, why) in WITHOUT_EFFECT {
            if let Some(origin) = origins.get(*key) {
                cfg.unused_set.push(format!("{origin} sets {key}: {why}"));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The keys metal-core knows (also read as `METAL_CORE_<KEY>`).
    pub fn metal_core_keys() -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| k.metal_core())
            .map(|k| k.name)
            .collect()
    }

    /// The settings that were given but have no effect (each named, with
    /// where it was set and why); empty when there are none.
    pub fn notices(&self) -> &[String] {
        &self.unused_set
    }

    /// Checks that cannot be expressed in the types; all problems together.
    ///
    /// These are also the configuration checks of `spec::build`, so
    /// `check-config` accepts exactly what `plan` accepts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Every problem [`Config::validate`] reports, in the order of the
    /// settings they concern.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.name_problems(&mut problems);
        self.network_problems(&mut problems);
        self.frr_problems(&mut problems);
        self.duration_problems(&mut problems);
        self.api_problems(&mut problems);
        problems.extend(self.metal_core_refusals());
        problems.extend(self.frr_extra_config_problems());
        problems
    }

    /// Names that reach frr.conf or CONFIG_DB.
    fn name_problems(&self, problems: &mut Vec<String>) {
        use crate::names::{hostname_problem, ifname_problem, quoted};
        if let Some(h) = &self.hostname
            && let Some(p) = hostname_problem(h)
        {
            problems.push(format!("hostname: {p}"));
        }
        for v in &self.static_vrfs {
            if let Some(p) = ifname_problem(v) {
                problems.push(format!("static VRF {}: {p}", quoted(v)));
            }
        }
    }

    /// The switch's network: ASN, management routes, VLANs, port lists.
    fn network_problems(&self, problems: &mut Vec<String>) {
        if self.asn == 0 {
            problems.push("asn: 0 is not a valid ASN".into());
        }
        if let Some(gw) = self.management_gateway {
            for r in &self.additional_mgmt_routes {
                if r.addr().is_ipv4() != gw.is_ipv4() {
                    problems.push(format!(
                        "additional_mgmt_routes {r}: is not of the address family of \
                         management_gateway {gw}; a route via the management gateway must be"
                    ));
                }
            }
        }
        if !(2..=4094).contains(&self.pxe_vlan_id) {
            problems.push(format!(
                "pxe_vlan_id {} is outside 2..4094",
                self.pxe_vlan_id
            ));
        }
        if self.vlan_range.first < 2 || self.vlan_range.last > 4094 {
            problems.push(format!("vlan_range {} is outside 2..4094", self.vlan_range));
        }
        if self.vlan_range.contains(self.pxe_vlan_id) {
            problems.push(format!(
                "pxe_vlan_id {} lies inside the tenant vlan_range {}",
                self.pxe_vlan_id, self.vlan_range
            ));
        }
        for p in self
            .spine_uplinks
            .iter()
            .filter(|p| self.additional_bridge_ports.contains(p))
        {
            problems.push(format!(
                "port {p} is listed in both spine_uplinks and additional_bridge_ports"
            ));
        }
    }

    /// FRR's units.
    fn frr_problems(&self, problems: &mut Vec<String>) {
        if !self.frr_validation_unit.ends_with("@.service") {
            problems.push(format!(
                "frr_validation_unit {:?} is not a template unit (NAME@.service); the agent \
                 starts NAME@<escaped file path>.service",
                self.frr_validation_unit
            ));
        }
        if !self.frr_reload_unit.ends_with(".service") || self.frr_reload_unit.contains('@') {
            problems.push(format!(
                "frr_reload_unit {:?} is not a plain service unit name (NAME.service)",
                self.frr_reload_unit
            ));
        }
    }

    /// Durations that must not be zero.
    fn duration_problems(&self, problems: &mut Vec<String>) {
        for (key, d) in [
            ("barrier_timeout", self.barrier_timeout),
            ("kernel_drift_grace", self.kernel_drift_grace),
            ("timeout", self.timeout),
            (
                "reconfigure_switch_interval",
                self.reconfigure_switch_interval,
            ),
            ("api_retry_backoff", self.api_retry_backoff),
            ("frr_validation_timeout", self.frr_validation_timeout),
            ("frr_reload_timeout", self.frr_reload_timeout),
            ("phone_home_interval", self.phone_home_interval),
        ] {
            if d.0.is_zero() {
                problems.push(format!("{key} must be longer than 0s"));
            }
        }
    }

    /// The metal API: credentials, phone-home, retries, size limits.
    fn api_problems(&self, problems: &mut Vec<String>) {
        if self.api_version.is_none() && self.has_hmac_key() && self.metal_apiserver_url.is_some() {
            problems.push(
                "api_version is not set and both an HMAC key (v1) and metal_apiserver_url (v2) \
                 are: set api_version = \"v1\" or \"v2\""
                    .into(),
            );
        }
        if self.hmac_key.is_some() && self.hmac_key_file.is_some() {
            problems.push(
                "hmac_key and hmac_key_file are both set; set only one (prefer hmac_key_file)"
                    .into(),
            );
        }
        if self.grpc_address.is_some() {
            let missing: Vec<&str> = [
                ("grpc_ca_cert_file", self.grpc_ca_cert_file.is_none()),
                (
                    "grpc_client_cert_file",
                    self.grpc_client_cert_file.is_none(),
                ),
                ("grpc_client_key_file", self.grpc_client_key_file.is_none()),
            ]
            .into_iter()
            .filter_map(|(k, m)| m.then_some(k))
            .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "grpc_address is set, so the gRPC event service needs mutual TLS: set {}",
                    missing.join(", ")
                ));
            }
        }
        if self.api_retry_attempts == 0 {
            problems.push("api_retry_attempts must be at least 1 (1 = no retry)".into());
        }
        if self.api_retry_backoff.0 > self.api_retry_max_backoff.0 {
            problems.push(format!(
                "api_retry_backoff {} is longer than api_retry_max_backoff {}",
                humantime::format_duration(self.api_retry_backoff.0),
                humantime::format_duration(self.api_retry_max_backoff.0)
            ));
        }
        if self.api_max_response_bytes < 1024 {
            problems.push(format!(
                "api_max_response_bytes {} is below 1024; a switch response needs more",
                self.api_max_response_bytes
            ));
        }
        if self.max_snapshot_bytes < 1024 {
            problems.push(format!(
                "max_snapshot_bytes {} is below 1024; a config_db.json needs more",
                self.max_snapshot_bytes
            ));
        }
    }

    /// metal-core settings that would have changed what metal-core did and
    /// that metal-switchd cannot honour: each refused by name, with what to
    /// do instead. Empty values (metal-roles writes them) mean "not used"
    /// in metal-core too and pass.
    fn metal_core_refusals(&self) -> Vec<String> {
        use crate::names::quoted;
        let mut problems = Vec::new();
        let set = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .filter(|p| !p.trim().is_empty())
        };
        if let Some(p) = set(&self.frr_tpl_file) {
            problems.push(format!(
                "frr_tpl_file (METAL_CORE_FRR_TPL_FILE) is {}: metal-switchd has no FRR \
                 templates; it renders frr.conf itself, with the zebra lines the switch's SONiC \
                 flavour needs (on community SONiC 202411 and later the fpm lines a custom \
                 metal-core template used to add; docs/flavours.md); put further lines in \
                 frr_extra_config and remove frr_tpl_file",
                quoted(&p)
            ));
        }
        if let Some(p) = set(&self.interfaces_tpl_file) {
            problems.push(format!(
                "interfaces_tpl_file (METAL_CORE_INTERFACES_TPL_FILE) is {}: it is Cumulus \
                 only (metal-core renders /etc/network/interfaces with it, which SONiC does not \
                 use); remove it",
                quoted(&p)
            ));
        }
        if self
            .additional_bridge_vids
            .iter()
            .any(|v| !v.trim().is_empty())
        {
            problems.push(format!(
                "additional_bridge_vids (METAL_CORE_ADDITIONAL_BRIDGE_VIDS) is {}: it is \
                 Cumulus only (VLANs of Cumulus' vlan-aware bridge); on SONiC the agent takes \
                 tenant VLANs from vlan_range and the base configuration holds the others; \
                 remove it",
                quoted(&self.additional_bridge_vids.join(","))
            ));
        }
        problems
    }

    /// `frr_extra_config`: one FRR command per line, printable, bounded,
    /// and none of what the agent renders itself (a second `hostname` or
    /// `router bgp <asn>` block would be merged or fought over by
    /// frr-reload.py). FRR validates the lines with the whole file.
    fn frr_extra_config_problems(&self) -> Vec<String> {
        use crate::names::quoted;
        const MAX_LINES: usize = 1000;
        const MAX_LINE_CHARS: usize = 512;
        let mut problems = Vec::new();
        if self.frr_extra_config.len() > MAX_LINES {
            problems.push(format!(
                "frr_extra_config has {} lines; at most {MAX_LINES}",
                self.frr_extra_config.len()
            ));
            return problems;
        }
        for (i, line) in self.frr_extra_config.iter().enumerate() {
            let n = i + 1;
            let words: Vec<&str> = line.split_whitespace().collect();
            let vrf_num = |w: Option<&&str>| {
                w.and_then(|w| w.strip_prefix("Vrf"))
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            };
            let why = if line.chars().any(crate::names::needs_escape) {
                Some("has a control or invisible character; one FRR command per line".to_owned())
            } else if line.chars().count() > MAX_LINE_CHARS {
                Some(format!("is longer than {MAX_LINE_CHARS} characters"))
            } else if words.is_empty() {
                Some("is empty".to_owned())
            } else if matches!(words[0], "hostname" | "password")
                || words.starts_with(&["frr", "defaults"])
                || words.starts_with(&["frr", "version"])
                || words.starts_with(&["enable", "password"])
            {
                let n = if matches!(words[0], "frr" | "enable") {
                    2
                } else {
                    1
                };
                Some(format!("{} is rendered by the agent", words[..n].join(" ")))
            } else if words.starts_with(&["router", "bgp"])
                && (words.len() <= 3 || (words.get(3) == Some(&"vrf") && vrf_num(words.get(4))))
            {
                Some(
                    "the agent renders the default BGP instance and those of its tenant VRFs; \
                     a second block of one of them would be merged into the agent's by \
                     frr-reload.py (a static VRF's `router bgp <asn> vrf <name>` is fine)"
                        .to_owned(),
                )
            } else if words.first() == Some(&"vrf") && vrf_num(words.get(1)) {
                Some("the agent renders the `vrf Vrf<VNI>` blocks of its tenant VRFs".to_owned())
            } else {
                None
            };
            if let Some(why) = why {
                problems.push(format!("frr_extra_config line {n} {}: {why}", quoted(line)));
            }
        }
        problems
    }

    /// Whether a v1 HMAC key is configured (`hmac_key` or `hmac_key_file`).
    pub fn has_hmac_key(&self) -> bool {
        self.hmac_key.is_some() || self.hmac_key_file.is_some()
    }

    /// The API version the agent uses: `api_version`, or when it is unset
    /// the one the credentials name ([`Config::api_version_choice`]).
    pub fn api_version(&self) -> ApiVersion {
        self.api_version_choice().0
    }

    /// The API version and why it was chosen (for `check-config`). Unset:
    /// an HMAC key means v1 (metal-core's API); no HMAC key but a
    /// metal-apiserver URL or token file means v2 (metal-core's v2 settings);
    /// neither means v1, metal-core's default.
    pub fn api_version_choice(&self) -> (ApiVersion, &'static str) {
        if let Some(v) = self.api_version {
            return (v, "set by api_version");
        }
        let default_token = Config::default().metal_apiserver_token_file;
        let v2_settings =
            self.metal_apiserver_url.is_some() || self.metal_apiserver_token_file != default_token;
        match (self.has_hmac_key(), v2_settings) {
            (true, _) => (
                ApiVersion::V1,
                "chosen automatically: an HMAC key is configured",
            ),
            (false, true) => (
                ApiVersion::V2,
                "chosen automatically: a metal-apiserver URL or token file and no HMAC key",
            ),
            (false, false) => (
                ApiVersion::V1,
                "chosen automatically: no credentials configured, metal-core's default",
            ),
        }
    }

    /// Limits that bound others, said where they do: `timeout` bounds
    /// everything one reconcile waits for (SONiC's confirmations, the
    /// kernel), so a longer `barrier_timeout` or `kernel_drift_grace` is
    /// cut to what is left of it.
    pub fn limit_notes(&self) -> Vec<String> {
        [
            ("barrier_timeout", self.barrier_timeout, "a phase waits"),
            (
                "kernel_drift_grace",
                self.kernel_drift_grace,
                "a reconcile waits for the kernel",
            ),
        ]
        .into_iter()
        .filter(|(_, d, _)| d.0 > self.timeout.0)
        .map(|(key, d, what)| {
            format!(
                "{key} ({}) is longer than timeout ({}), which bounds everything one reconcile \
                 waits for: {what} at most what is left of {}; set timeout to at least {key} \
                 to wait longer",
                humantime::format_duration(d.0),
                humantime::format_duration(self.timeout.0),
                humantime::format_duration(self.timeout.0),
            )
        })
        .collect()
    }

    /// What is wrong with the transport to the metal API, loudly: plain
    /// `http://` lets anyone on the path read and change requests. v1's
    /// HMAC signs only `X-Date`, the method and the salt — not the path or
    /// the body — so a request can be replayed within its 30 s with any
    /// body; a v2 bearer token would be readable by anyone on the path.
    pub fn plaintext_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.api_version() {
            ApiVersion::V1 => {
                if self.metal_api_protocol.trim().eq_ignore_ascii_case("http") {
                    out.push(format!(
                        "the metal API is reached over plain HTTP (metal_api_protocol = \"http\", \
                         {}): the v1 HMAC signs only the date, the method and the salt, not the \
                         path or the body, so anyone on the path can read every answer and \
                         replay a signed request with any body within 30 s; set \
                         metal_api_protocol = \"https\"{}",
                        self.metal_api_ip,
                        if self.api_allow_plaintext {
                            " (api_allow_plaintext = true accepts this risk)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            ApiVersion::V2 => {
                if let Some(url) = &self.metal_apiserver_url
                    && url.trim().to_ascii_lowercase().starts_with("http://")
                {
                    out.push(if self.api_allow_plaintext {
                        format!(
                            "metal_apiserver_url {url} is plain HTTP and api_allow_plaintext = \
                             true: the switch's token is sent in clear text and anyone on the \
                             path can read it and act as this switch; use https"
                        )
                    } else {
                        format!(
                            "metal_apiserver_url {url} is plain HTTP: the agent will not send \
                             the switch's token over it; use https (or, in a lab, set \
                             api_allow_plaintext = true to accept that the token can be read \
                             on the way)"
                        )
                    });
                }
            }
        }
        out
    }

    /// The switch id / hostname, or an error saying how to set it.
    pub fn hostname(&self) -> Result<&str, ConfigError> {
        self.hostname.as_deref().ok_or_else(|| {
            ConfigError::Invalid(vec![
                "hostname is not set and the system hostname is unknown; set `hostname`".into(),
            ])
        })
    }

    /// The configuration as TOML with secrets masked (for `check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

fn known_keys() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// A TOML syntax error: position, the key of that line (when it is a
/// configuration key) and the parser's message; never the source line,
/// which may hold a secret (`hmac_key = "..." junk`).
fn syntax_error(path: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let mut message = format!(
        "not valid TOML: {}",
        crate::names::escaped(e.message(), 200)
    );
    if let Some(span) = e.span() {
        let before = text.get(..span.start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let key = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split('=').next())
            .map(str::trim)
            .and_then(|k| KEYS.iter().find(|d| d.name == k))
            .map(|d| format!(" (key {})", d.name))
            .unwrap_or_default();
        message = format!("line {line}, column {column}{key}: {message}");
    }
    ConfigError::Parse {
        path: path.to_owned(),
        message,
    }
}

/// The keys whose values do not fit their type, each with where it was set.
/// Found by deserialising each key alone (every other key at its default);
/// the value of a secret key is never shown.
fn type_errors(
    table: &toml::Table,
    origins: &BTreeMap<String, String>,
    whole: &toml::de::Error,
) -> ConfigError {
    let mut problems = Vec::new();
    for (k, v) in table {
        let one: toml::Table = [(k.clone(), v.clone())].into_iter().collect();
        if let Err(e) = one.try_into::<Config>() {
            let origin = origins.get(k).map_or("configuration", String::as_str);
            let message = if is_secret(k) {
                "not a string (the value is not shown: it is a secret)".to_owned()
            } else {
                crate::names::escaped(e.message(), 200)
            };
            problems.push(format!("{origin}: key {k}: {message}"));
        }
    }
    if problems.is_empty() {
        let secret = table.keys().any(|k| is_secret(k));
        problems.push(if secret {
            "a value does not fit its key's type".to_owned()
        } else {
            crate::names::escaped(whole.message(), 200)
        });
    }
    ConfigError::Invalid(problems)
}

fn env_value(var: &str, kind: Kind, value: &str) -> Result<toml::Value, ConfigError> {
    let err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    Ok(match kind {
        Kind::Str => toml::Value::String(value.to_owned()),
        Kind::Int => toml::Value::Integer(
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| err(format!("{value:?} is not a whole number")))?,
        ),
        Kind::Bool => toml::Value::Boolean(match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" | "" => false,
            _ => return Err(err(format!("{value:?} is not true or false"))),
        }),
        Kind::List => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
    })
}

/// The kernel's hostname, as `hostname(1)` prints it.
pub fn system_hostname() -> Option<String> {
    crate::files::read_text(
        crate::files::FileKind::SystemHostname,
        Path::new("/proc/sys/kernel/hostname"),
        crate::files::PROC_MAX_BYTES,
    )
    .ok()
    .map(|s| s.trim().to_owned())
    .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A key's value as an environment variable spells it.
    fn env_form(v: &toml::Value) -> String {
        match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(a) => a.iter().map(env_form).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }

    #[test]
    fn every_key_is_read_from_its_environment_variables() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for k in KEYS {
            // The default where there is one; else an empty value (none).
            let value = match (k.name, defaults.get(k.name)) {
                ("hostname", _) => "leaf01".to_owned(),
                (_, Some(v)) => env_form(v),
                (_, None) => String::new(),
            };
            let mut prefixes = vec!["METAL_SWITCHD_"];
            if k.metal_core() {
                prefixes.push("METAL_CORE_");
            }
            for prefix in prefixes {
                let var = format!("{prefix}{}", k.name.to_uppercase());
                let cfg = Config::from_sources(None, vec![(var.clone(), value.clone())])
                    .unwrap_or_else(|e| panic!("{var}: {e}"));
                let read = toml::Table::try_from(&cfg).unwrap();
                match defaults.get(k.name) {
                    _ if k.name == "hostname" => {
                        assert_eq!(cfg.hostname.as_deref(), Some("leaf01"))
                    }
                    Some(d) => assert_eq!(read.get(k.name), Some(d), "{var}"),
                    None => {}
                }
            }
        }
    }

    /// How the docs show a key's default.
    fn shown(k: &KeyDef, defaults: &toml::Table) -> String {
        if let Some(s) = k.shown {
            return s.to_owned();
        }
        let Some(v) = defaults.get(k.name) else {
            return "–".to_owned();
        };
        let text = match v {
            toml::Value::String(s) if s.is_empty() => "\"\"".to_owned(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(ToString::to_string).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.to_string(),
        };
        format!("`{text}`")
    }

    /// The table of a section as `docs/configuration.md` must show it.
    fn docs_table(section: Section) -> String {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut t = String::from("| key | default | meaning |\n|---|---|---|\n");
        for k in KEYS.iter().filter(|k| k.section == section) {
            let row = format!("| `{}` | {} | {} |\n", k.name, shown(k, &defaults), k.doc);
            t.push_str(&row);
        }
        t
    }

    /// The key tables of `docs/configuration.md` come from [`KEYS`]: a
    /// changed key fails here with the table to put there (or run the test
    /// with `METAL_SWITCHD_BLESS_DOCS=1` to write them).
    #[test]
    fn the_documented_keys_are_the_declared_ones() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let mut doc = std::fs::read_to_string(path).unwrap();
        let mut wrong = Vec::new();
        for section in Section::ALL {
            let want = docs_table(section);
            let at = doc
                .find(section.heading())
                .unwrap_or_else(|| panic!("docs/configuration.md lacks {:?}", section.heading()));
            let start = at + doc[at..].find("| key |").unwrap();
            let end = doc[start..]
                .find("\n\n")
                .map_or(doc.len(), |e| start + e + 1);
            if doc[start..end] != want {
                wrong.push(format!("{}\n\n{want}", section.heading()));
                doc.replace_range(start..end, &want);
            }
        }
        if !wrong.is_empty() && std::env::var_os("METAL_SWITCHD_BLESS_DOCS").is_some() {
            std::fs::write(path, &doc).unwrap();
        } else {
            assert!(
                wrong.is_empty(),
                "docs/configuration.md differs from KEYS; its tables should be:\n\n{}",
                wrong.join("\n\n")
            );
        }
    }

    #[test]
    fn defaults_are_metal_core_defaults() {
        let c = Config::from_sources(None, vec![]).unwrap();
        assert_eq!(c.pxe_vlan_id, 4000);
        assert_eq!(
            c.vlan_range,
            VlanRange {
                first: 1001,
                last: 2000
            }
        );
        assert_eq!(c.asn, 420000011);
        assert_eq!(c.metrics_server_port, 2112);
        assert_eq!(
            c.database_config,
            PathBuf::from("/var/run/redis/sonic-db/database_config.json")
        );
        assert_eq!(c.frr_config, PathBuf::from("/etc/sonic/frr/frr.conf"));
        assert_eq!(c.reconfigure_switch_interval.0, Duration::from_secs(10));
        // metal-core's phonedHomeInterval.
        assert_eq!(c.phone_home_interval.0, Duration::from_secs(60));
    }

    #[test]
    fn file_then_metal_core_then_own_env() {
        let file = "asn = 4200000001\npxe_vlan_id = 3900\nspine_uplinks = [\"Ethernet120\"]\n";
        let c = Config::from_sources(
            Some(("f.toml", file)),
            env(&[
                ("METAL_CORE_ASN", "4200000002"),
                ("METAL_CORE_SPINE_UPLINKS", "Ethernet120, Ethernet124"),
                ("METAL_SWITCHD_ASN", "4200000003"),
                ("METAL_CORE_SET_SRC_LOOPBACK", "true"),
                ("METAL_CORE_MANAGEMENT_GATEWAY", "192.168.0.1"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.asn, 4200000003);
        assert_eq!(c.pxe_vlan_id, 3900);
        assert_eq!(c.spine_uplinks, vec!["Ethernet120", "Ethernet124"]);
        assert!(c.set_src_loopback);
        assert_eq!(c.management_gateway, Some("192.168.0.1".parse().unwrap()));
    }

    #[test]
    fn frr_settings() {
        let c = Config::from_sources(None, vec![]).unwrap();
        assert_eq!(c.frr_validation, FrrValidation::Vtysh);
        assert_eq!(c.frr_reload, FrrReload::Systemd);
        assert_eq!(c.frr_reload_unit, "frr-reload.service");
        assert_eq!(c.frr_validation_unit, "bgp-validation@.service");
        assert_eq!(c.frr_reload_args, ["--reload", "--stdout", "{file}"]);
        assert_eq!(c.bgp_state_source, BgpStateSource::File);
        assert!(c.frr_agentx);
        let c = Config::from_sources(
            Some((
                "f.toml",
                "frr_reload = \"exec\"\nfrr_validation = \"systemd\"\nbgp_state_source = \"vtysh\"\n",
            )),
            env(&[
                ("METAL_SWITCHD_FRR_RELOAD_ARGS", "--reload,{file}"),
                ("METAL_SWITCHD_FRR_VTY_SOCKET_DIR", "/run/frr/x"),
                ("METAL_SWITCHD_SYSTEMD_BUS_ADDRESS", ""),
            ]),
        )
        .unwrap();
        assert_eq!(c.frr_reload, FrrReload::Exec);
        assert_eq!(c.frr_validation, FrrValidation::Systemd);
        assert_eq!(c.bgp_state_source, BgpStateSource::Vtysh);
        assert_eq!(c.frr_reload_args, ["--reload", "{file}"]);
        assert_eq!(c.frr_vty_socket_dir, Some(PathBuf::from("/run/frr/x")));
        assert_eq!(c.systemd_bus_address, None);
        let e = Config::from_sources(
            None,
            env(&[
                (
                    "METAL_SWITCHD_FRR_VALIDATION_UNIT",
                    "bgp-validation.service",
                ),
                ("METAL_SWITCHD_FRR_RELOAD_TIMEOUT", "0s"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a template unit"), "{e}");
        assert!(e.contains("frr_reload_timeout must be longer"), "{e}");
        let e = Config::from_sources(None, env(&[("METAL_SWITCHD_FRR_RELOAD", "restart")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("restart"), "{e}");
    }

    #[test]
    fn empty_gateway_means_none() {
        let c = Config::from_sources(None, env(&[("METAL_CORE_MANAGEMENT_GATEWAY", "")])).unwrap();
        assert_eq!(c.management_gateway, None);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::from_sources(Some(("f.toml", "asn = 1\nspine_uplink = []\n")), vec![])
            .unwrap_err();
        assert!(
            e.to_string().contains("unknown key \"spine_uplink\""),
            "{e}"
        );
        let e = Config::from_sources(None, env(&[("METAL_SWITCHD_ASNN", "1")])).unwrap_err();
        assert!(e.to_string().contains("METAL_SWITCHD_ASNN"), "{e}");
        let e = Config::from_sources(None, env(&[("METAL_CORE_VLAN_RANGE", "1-2")])).unwrap_err();
        assert!(e.to_string().contains("METAL_CORE_VLAN_RANGE"), "{e}");
        // the variable naming the config file is not a key
        Config::from_sources(None, env(&[("METAL_SWITCHD_CONFIG", "/x.toml")])).unwrap();
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_sources(None, env(&[("METAL_CORE_ASN", "lots")])).unwrap_err();
        assert!(e.to_string().contains("METAL_CORE_ASN"), "{e}");
        let e = Config::from_sources(None, env(&[("METAL_CORE_PXE_VLAN_ID", "1500")])).unwrap_err();
        assert!(
            e.to_string().contains("inside the tenant vlan_range"),
            "{e}"
        );
    }

    #[test]
    fn registration_and_transport_defaults() {
        let c = Config::from_sources(None, vec![]).unwrap();
        assert_eq!(
            c.sonic_version_file,
            PathBuf::from("/etc/sonic/sonic_version.yml")
        );
        assert_eq!(c.management_interface, "eth0");
        assert_eq!(c.api_ca_file, None);
        assert_eq!(c.api_retry_attempts, 4);
        assert_eq!(c.api_retry_backoff.0, Duration::from_millis(500));
        assert_eq!(c.api_retry_max_backoff.0, Duration::from_secs(30));
        let c = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_METAL_APISERVER_URL", "https://api.example.com"),
                ("METAL_CORE_METAL_APISERVER_TOKEN_FILE", "/run/t"),
                ("METAL_SWITCHD_API_VERSION", "v2"),
                ("METAL_SWITCHD_MANAGEMENT_INTERFACE", "mgmt0"),
            ]),
        )
        .unwrap();
        assert_eq!(c.api_version, Some(ApiVersion::V2));
        assert_eq!(c.metal_apiserver_token_file, PathBuf::from("/run/t"));
        assert_eq!(c.management_interface, "mgmt0");
        let e = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_HMAC_KEY", "k"),
                ("METAL_SWITCHD_HMAC_KEY_FILE", "/k"),
                ("METAL_SWITCHD_API_RETRY_ATTEMPTS", "0"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("set only one"), "{e}");
        assert!(e.contains("api_retry_attempts"), "{e}");
        assert!(!e.contains("\"k\""), "{e}");
    }

    /// Issue 9, finding 4: a syntax error on a secret's line never shows
    /// the secret; the position and the key are named instead.
    #[test]
    fn syntax_errors_never_show_the_source_line() {
        for (text, line, column) in [
            ("asn = 1\nhmac_key = \"S3CR3T\" trailing\n", 2, 21),
            ("hmac_key = \"S3CR3T\n", 1, 19),
            ("hmac_key = S3CR3T\n", 1, 12),
            ("hmac_key = \"S3\\qCR3T\"\n", 1, 16),
        ] {
            let e = Config::from_sources(Some(("f.toml", text)), vec![]).unwrap_err();
            let msg = e.to_string();
            assert!(
                !msg.contains("S3CR3T") && !msg.contains("S3\\q"),
                "{text:?}: {msg}"
            );
            assert!(!format!("{e:?}").contains("S3CR3T"), "{text:?}: {e:?}");
            assert!(
                msg.starts_with(&format!(
                    "configuration file f.toml: line {line}, column {column} (key hmac_key): \
                     not valid TOML: "
                )),
                "{text:?}: {msg}"
            );
        }
        // A multi-line secret: the error is on a line without the key.
        let e = Config::from_sources(
            Some(("f.toml", "hmac_key = \"\"\"\nS3CR3T\n\"\"\" x\n")),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("S3CR3T"), "{e}");
        assert!(e.contains("line 3, column 5: not valid TOML"), "{e}");
        // A secret of the wrong type is not shown either.
        let e = Config::from_sources(Some(("f.toml", "hmac_key = 31337\n")), vec![])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("31337"), "{e}");
        assert!(
            e.contains("configuration file f.toml: key hmac_key: not a string"),
            "{e}"
        );
    }

    /// Issue 9, finding 4: control and format characters of the input are
    /// escaped where they are echoed.
    #[test]
    fn echoed_input_is_escaped() {
        let e = Config::from_sources(Some(("f.toml", "\"a\u{202e}b\" = 1\n")), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"a\\u{202e}b\""), "{e}");
        assert!(!e.contains('\u{202e}'), "{e}");
        let e = Config::from_sources(
            Some(("f.toml", "static_vrfs = [\"Vrf1\\nrouter bgp 1\"]\n")),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("static VRF \"Vrf1\\nrouter bgp 1\""), "{e}");
        assert!(!e.contains("Vrf1\nrouter"), "{e}");
    }

    /// Issue 9, finding 5: a type error names its key, and for an
    /// environment variable the variable.
    #[test]
    fn type_errors_name_the_key_and_where_it_was_set() {
        let e = Config::from_sources(
            Some(("f.toml", "asn = \"abc\"\npxe_vlan_id = 3900\n")),
            env(&[("METAL_CORE_LOOPBACK_IP", "not-an-ip")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "configuration file f.toml: key asn: invalid type: string \"abc\", expected u32"
            ),
            "{e}"
        );
        assert!(
            e.contains("environment variable METAL_CORE_LOOPBACK_IP: key loopback_ip: "),
            "{e}"
        );
        assert!(e.contains("(2 problems)"), "{e}");
    }

    /// Issue 9, finding 5: what `plan` refuses in the configuration,
    /// `check-config` (which is `Config::load`) refuses too.
    #[test]
    fn plan_checks_are_configuration_checks() {
        let e = Config::from_sources(
            Some((
                "f.toml",
                "hostname = \"leaf 01!\"\nasn = 0\nstatic_vrfs = [\"Vrf1\\n\"]\n\
                 barrier_timeout = \"0s\"\ntimeout = \"0s\"\nreconfigure_switch_interval = \"0s\"\n\
                 api_retry_backoff = \"0s\"\n",
            )),
            vec![],
        )
        .unwrap_err()
        .to_string();
        for want in [
            "invalid configuration (7 problems):",
            "hostname: \"leaf 01!\" is not an RFC 1123 host name",
            "static VRF \"Vrf1\\n\": ",
            "asn: 0 is not a valid ASN",
            "barrier_timeout must be longer than 0s",
            "  - timeout must be longer than 0s",
            "reconfigure_switch_interval must be longer than 0s",
            "api_retry_backoff must be longer than 0s",
        ] {
            assert!(e.contains(want), "lacks {want:?}: {e}");
        }
    }

    /// Issue 9, finding 5: a configuration with many problems lists the
    /// first 20 (`names::MAX_LISTED`) and counts the rest, like a desired
    /// state with many problems.
    #[test]
    fn more_than_20_configuration_problems_are_cut() {
        // 25 static VRFs whose names are too long for a network device.
        let names: Vec<String> = (0..25).map(|i| format!("\"Vrf{i:013}\"")).collect();
        let text = format!("static_vrfs = [{}]\n", names.join(", "));
        let e = Config::from_sources(Some(("f.toml", &text)), vec![]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid(p) if p.len() == 25),
            "{e}"
        );
        let msg = e.to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "invalid configuration (25 problems):", "{msg}");
        assert_eq!(lines.len(), 1 + 20 + 1, "{msg}");
        for (i, line) in lines[1..21].iter().enumerate() {
            let want = format!("  - static VRF \"Vrf{i:013}\": ");
            assert!(line.starts_with(&want), "line {}: {line:?}", i + 1);
        }
        assert_eq!(lines[21], "  - … and 5 more", "{msg}");
        assert!(!msg.contains("Vrf0000000000020"), "{msg}");
        // Exactly 20 are all listed, without a count.
        let text = format!("static_vrfs = [{}]\n", names[..20].join(", "));
        let msg = Config::from_sources(Some(("f.toml", &text)), vec![])
            .unwrap_err()
            .to_string();
        assert_eq!(msg.lines().count(), 21, "{msg}");
        assert!(!msg.contains("more"), "{msg}");
    }

    /// Issue 9, finding 2 and docs/configuration.md "Input files": the
    /// configuration file is read up to 1 MiB (fixed); a larger one is
    /// refused by its size, naming the file and the limit.
    #[test]
    fn a_configuration_file_over_1_mib_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        // Valid TOML: a short setting, then comment lines past 1 MiB.
        let mut text = String::from("asn = 4200000011\n");
        while text.len() <= 1024 * 1024 {
            text.push_str("# a comment line to make the file large enough\n");
        }
        std::fs::write(&p, &text).unwrap();
        let e = Config::load(&p, true).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                &e,
                ConfigError::File(crate::files::FileError {
                    problem: crate::files::FileProblem::TooLarge { limit: 1048576 },
                    ..
                })
            ),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "configuration file {}: it is larger than the limit of 1048576 bytes",
                p.display()
            )),
            "{msg}"
        );
        // The same file within the limit is read.
        std::fs::write(&p, &text[..1024 * 1024]).unwrap();
        let e = Config::load(&p, true).err().map(|e| e.to_string());
        assert!(
            e.as_deref().is_none_or(|m| !m.contains("larger than")),
            "{e:?}"
        );
    }

    /// metal-roles' `metal-core-env` template sets METAL_CORE_SYNC_SCHEDULE
    /// and METAL_CORE_SYNC_DELAY, which no metal-core release reads: accepted
    /// with a notice that says what the agent does instead. Only under
    /// metal-core's prefix: the agent's own prefix has no such names.
    #[test]
    fn metal_roles_sync_variables_get_a_notice() {
        let c = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_SYNC_SCHEDULE", "*/10 * * * *"),
                ("METAL_CORE_SYNC_DELAY", "5s\u{1b}"),
                ("METAL_CORE_RECONFIGURE_SWITCH_INTERVAL", "20s"),
            ]),
        )
        .unwrap();
        let n = c.notices();
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(
            n[0].starts_with(
                "environment variable METAL_CORE_SYNC_DELAY sets sync_delay = \"5s\\u{1b}\": "
            ) && n[0].contains("does not delay"),
            "{n:?}"
        );
        assert!(
            n[1].starts_with(
                "environment variable METAL_CORE_SYNC_SCHEDULE sets sync_schedule = \"*/10 * * * *\": "
            )
                && n[1].contains("every reconfigure_switch_interval (20s)"),
            "{n:?}"
        );
        assert!(!c.to_toml().contains("sync"), "{}", c.to_toml());
        assert!(
            Config::from_sources(None, vec![])
                .unwrap()
                .notices()
                .is_empty()
        );
        let e = Config::from_sources(None, env(&[("METAL_SWITCHD_SYNC_DELAY", "5s")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("METAL_SWITCHD_SYNC_DELAY: not a configuration key"),
            "{e}"
        );
    }

    /// Issue 20: metal-core's template settings are refused by name with
    /// what to use instead; the settings without effect are named in a
    /// notice; empty values (metal-roles writes them) pass silently because
    /// they mean "not used" in metal-core too.
    #[test]
    fn template_and_cumulus_settings_are_refused_by_name() {
        let e = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_FRR_TPL_FILE", "/etc/metal-core/frr.tpl"),
                ("METAL_CORE_INTERFACES_TPL_FILE", "/x/interfaces.tpl"),
                ("METAL_CORE_ADDITIONAL_BRIDGE_VIDS", "201-256"),
            ]),
        )
        .unwrap_err()
        .to_string();
        for want in [
            "frr_tpl_file (METAL_CORE_FRR_TPL_FILE) is \"/etc/metal-core/frr.tpl\"",
            "frr_extra_config",
            "interfaces_tpl_file (METAL_CORE_INTERFACES_TPL_FILE)",
            "additional_bridge_vids (METAL_CORE_ADDITIONAL_BRIDGE_VIDS) is \"201-256\"",
            "Cumulus only",
        ] {
            assert!(e.contains(want), "lacks {want:?}: {e}");
        }
        let c = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_FRR_TPL_FILE", ""),
                ("METAL_CORE_INTERFACES_TPL_FILE", ""),
                ("METAL_CORE_ADDITIONAL_BRIDGE_VIDS", ""),
                ("METAL_CORE_CIDR", "10.255.255.2/24"),
                ("METAL_CORE_BIND_ADDRESS", "0.0.0.0"),
            ]),
        )
        .unwrap();
        let n = c.notices().join("\n");
        assert!(
            n.contains("environment variable METAL_CORE_CIDR sets cidr"),
            "{n}"
        );
        assert!(
            n.contains("METAL_CORE_BIND_ADDRESS sets bind_address"),
            "{n}"
        );
        assert_eq!(c.notices().len(), 2, "{n}");
        assert!(
            Config::from_sources(None, vec![])
                .unwrap()
                .notices()
                .is_empty()
        );
        // Settings of older metal-core versions: refused with what they were.
        let e = Config::from_sources(None, env(&[("METAL_CORE_MQ_ADDRESS", "nsq:4161")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("METAL_CORE_MQ_ADDRESS") && e.contains("older metal-core"),
            "{e}"
        );
    }

    #[test]
    fn frr_extra_config_lines_are_checked() {
        let c = Config::from_sources(
            Some((
                "f.toml",
                "frr_extra_config = [\"ip nht resolve-via-default\", \"router bgp 4200000011 vrf VrfMpls\", \" bgp router-id 10.0.0.1\"]\n",
            )),
            vec![],
        )
        .unwrap();
        assert_eq!(c.frr_extra_config.len(), 3);
        let e = Config::from_sources(
            Some((
                "f.toml",
                "frr_extra_config = [\"hostname x\", \"router bgp 1\", \"router bgp 1 vrf Vrf5\", \"vrf Vrf7\", \"ip route 1.2.3.4/32 Null0\\nrouter bgp 2\", \"  \", \"frr defaults traditional\"]\n",
            )),
            vec![],
        )
        .unwrap_err()
        .to_string();
        for want in [
            "frr_extra_config line 1 \"hostname x\": hostname is rendered by the agent",
            "line 2 \"router bgp 1\": the agent renders the default BGP instance",
            "line 3 \"router bgp 1 vrf Vrf5\"",
            "line 4 \"vrf Vrf7\": the agent renders",
            "line 5 \"ip route 1.2.3.4/32 Null0\\nrouter bgp 2\": has a control",
            "line 6 \"  \": is empty",
            "line 7 \"frr defaults traditional\"",
        ] {
            assert!(e.contains(want), "lacks {want:?}: {e}");
        }
        // From the environment: comma separated.
        let c = Config::from_sources(
            None,
            env(&[(
                "METAL_SWITCHD_FRR_EXTRA_CONFIG",
                "ip nht resolve-via-default, bfd",
            )]),
        )
        .unwrap();
        assert_eq!(c.frr_extra_config, ["ip nht resolve-via-default", "bfd"]);
    }

    #[test]
    fn secrets_are_masked() {
        let c = Config::from_sources(None, env(&[("METAL_CORE_HMAC_KEY", "topsecret")])).unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        assert!(!c.to_toml().contains("topsecret"));
        assert_eq!(c.hmac_key.unwrap().expose(), "topsecret");
    }

    /// Issue 21, item 4: without `api_version`, a token and no HMAC key
    /// mean v2 (metal-core's v2 settings); an HMAC key means v1; both
    /// together are refused by name.
    #[test]
    fn api_version_is_chosen_from_the_credentials_when_unset() {
        let v = |pairs: &[(&str, &str)]| {
            let c = Config::from_sources(None, env(pairs)).unwrap();
            (c.api_version(), c.api_version_choice().1.to_owned())
        };
        let (ver, why) = v(&[
            ("METAL_CORE_METAL_APISERVER_URL", "https://api.example.com"),
            ("METAL_CORE_METAL_APISERVER_TOKEN_FILE", "/run/t"),
        ]);
        assert_eq!(ver, ApiVersion::V2, "{why}");
        assert!(why.contains("no HMAC key"), "{why}");
        assert_eq!(
            v(&[("METAL_CORE_METAL_APISERVER_URL", "https://a.example")]).0,
            ApiVersion::V2
        );
        let (ver, why) = v(&[("METAL_CORE_HMAC_KEY", "k")]);
        assert_eq!(ver, ApiVersion::V1);
        assert!(why.contains("HMAC key"), "{why}");
        assert_eq!(v(&[]).0, ApiVersion::V1);
        let (ver, why) = v(&[
            ("METAL_SWITCHD_API_VERSION", "v1"),
            ("METAL_CORE_METAL_APISERVER_URL", "https://a.example"),
        ]);
        assert_eq!((ver, why.as_str()), (ApiVersion::V1, "set by api_version"));
        let e = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_HMAC_KEY", "k"),
                ("METAL_CORE_METAL_APISERVER_URL", "https://a.example"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("set api_version"), "{e}");
    }

    /// Issue 22, item 4: plain HTTP is warned about (v1's HMAC does not
    /// cover the body), a v2 URL over plain HTTP names api_allow_plaintext.
    #[test]
    fn plain_http_is_warned_about() {
        let c = Config::from_sources(None, env(&[("METAL_CORE_HMAC_KEY", "k")])).unwrap();
        let w = c.plaintext_warnings().join("\n");
        assert!(w.contains("plain HTTP"), "{w}");
        assert!(
            w.contains("not the\npath") || w.contains("not the path or the body"),
            "{w}"
        );
        let c = Config::from_sources(
            None,
            env(&[
                ("METAL_CORE_HMAC_KEY", "k"),
                ("METAL_CORE_METAL_API_PROTOCOL", "https"),
            ]),
        )
        .unwrap();
        assert!(c.plaintext_warnings().is_empty());
        let c = Config::from_sources(
            None,
            env(&[("METAL_CORE_METAL_APISERVER_URL", "http://10.0.0.1:8080")]),
        )
        .unwrap();
        let w = c.plaintext_warnings().join("\n");
        assert!(w.contains("will not send"), "{w}");
        assert!(w.contains("api_allow_plaintext = true"), "{w}");
    }
}
