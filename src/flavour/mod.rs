//! Which SONiC this is, and what that means for the agent (pure).
//!
//! A [`Flavour`] is decided once at start (and on SIGHUP) from three facts
//! ([`Inputs`]): SONiC's `/etc/sonic/sonic_version.yml`, CONFIG_DB's
//! `DEVICE_METADATA|localhost` (`docker_routing_config_mode`,
//! `frr_mgmt_framework_config`) and FRR's `show version`. [`detect`] turns
//! them into the family (community, Enterprise, other), the release, the
//! Debian base, the routing configuration mode, FRR's version and the fpm
//! module zebra loads — and from these, two decisions:
//!
//! - [`Flavour::frr_lines`]: the zebra lines the flavour's own start script
//!   appends to FRR's configuration, which the agent's `frr.conf` must
//!   therefore carry too (`frr-reload.py` removes from the running daemons
//!   every line the installed file lacks);
//! - [`Flavour::refusal`]: a routing configuration mode in which SONiC, not
//!   the agent, writes `frr.conf` (`unified`, `separated`, or none set, which
//!   SONiC's start script treats as `separated`).
//!
//! The facts per release come from SONiC's own start-up files
//! (sonic-buildimage `dockers/docker-fpm-frr/`: `docker_init.sh`,
//! `frr/supervisord/supervisord.conf.j2`, `frr/zebra/zebra.conf.j2` of the
//! release branches 202311, 202411 and 202505) and, for the Enterprise
//! builds, from metal-stack's reports (mini-lab #315, metal-core #160 and
//! #199); `docs/flavours.md` cites each. A flavour that is not recognised
//! gets the community defaults and a warning — never an error.
//!
//! Reading the facts is the thin adapter in [`read`] (feature `agent`).

agent! {
    pub mod read;
}

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The oldest community release whose zebra loads `dplane_fpm_sonic` and
/// whose start script appends the fpm lines (sonic-buildimage 202411
/// `supervisord.conf.j2`: `-M dplane_fpm_sonic`; `docker_init.sh`:
/// `write_default_zebra_config`).
pub const FIRST_FPM_SONIC_RELEASE: u32 = 202411;

/// `DEVICE_METADATA|localhost`: the CONFIG_DB key the mode is read from.
pub const DEVICE_METADATA_KEY: &str = "DEVICE_METADATA|localhost";

/// Who builds the SONiC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// sonic-net's community SONiC (a `YYYYMM` release branch).
    Community,
    /// Dell Enterprise SONiC (`SONiC.4.x.y-Enterprise_*`; Broadcom's
    /// Enterprise SONiC uses the same naming and the same fpm module).
    DellEnterprise,
    /// Edgecore's Enterprise SONiC (`ec<YYYYMM>` branches).
    EdgecoreEnterprise,
    /// Not recognised: the community defaults apply.
    Other,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Community => "community",
            Family::DellEnterprise => "dell-enterprise",
            Family::EdgecoreEnterprise => "edgecore-enterprise",
            Family::Other => "other",
        }
    }

    /// For people: `community SONiC`, `Dell Enterprise SONiC`, ….
    pub fn title(self) -> &'static str {
        match self {
            Family::Community => "community SONiC",
            Family::DellEnterprise => "Dell Enterprise SONiC",
            Family::EdgecoreEnterprise => "Edgecore Enterprise SONiC",
            Family::Other => "unrecognised SONiC",
        }
    }
}

/// `DEVICE_METADATA|localhost docker_routing_config_mode`: who writes FRR's
/// configuration (sonic-buildimage `docker_init.sh`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode", content = "value")]
pub enum RoutingConfigMode {
    /// `split`: per-daemon files; the bgp container deletes `frr.conf` at
    /// every start; an operator (here: the agent) owns the routing config.
    Split,
    /// `split-unified`: one integrated `frr.conf`, kept across starts; the
    /// start script appends its zebra lines to it.
    SplitUnified,
    /// `unified`: `frr.conf` generated from CONFIG_DB at every start.
    Unified,
    /// `separated`: per-daemon files generated from CONFIG_DB.
    Separated,
    /// DEVICE_METADATA|localhost has no `docker_routing_config_mode`: the
    /// start script takes the `separated` branch.
    Unset,
    /// A value the start script has no branch for: it leaves FRR's files
    /// as they are.
    Unrecognised(String),
    /// CONFIG_DB was not read (or has no DEVICE_METADATA|localhost).
    Unknown,
}

impl RoutingConfigMode {
    /// From the field's value (`None`: the field is absent).
    pub fn parse(value: Option<&str>) -> RoutingConfigMode {
        match value.map(str::trim) {
            None | Some("") => RoutingConfigMode::Unset,
            Some("split") => RoutingConfigMode::Split,
            Some("split-unified") => RoutingConfigMode::SplitUnified,
            Some("unified") => RoutingConfigMode::Unified,
            Some("separated") => RoutingConfigMode::Separated,
            Some(other) => RoutingConfigMode::Unrecognised(bounded(other, 64)),
        }
    }
}

impl fmt::Display for RoutingConfigMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutingConfigMode::Split => f.write_str("split"),
            RoutingConfigMode::SplitUnified => f.write_str("split-unified"),
            RoutingConfigMode::Unified => f.write_str("unified"),
            RoutingConfigMode::Separated => f.write_str("separated"),
            RoutingConfigMode::Unset => f.write_str("not set (SONiC runs `separated`)"),
            RoutingConfigMode::Unrecognised(v) => write!(f, "{v:?} (not a mode SONiC knows)"),
            RoutingConfigMode::Unknown => f.write_str("unknown (CONFIG_DB not read)"),
        }
    }
}

/// The zebra module that sends routes to SONiC's fpmsyncd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FpmModule {
    /// The old `fpm` module (`-M fpm`): connects to 127.0.0.1:2620 without
    /// configuration; rejects `fpm address` and `fpm use-next-hop-groups`.
    Fpm,
    /// `dplane_fpm_sonic` (sonic-buildimage #18715), SONiC's fork of FRR's
    /// `dplane_fpm_nl`: needs `fpm address 127.0.0.1`.
    DplaneFpmSonic,
    /// Not known for this flavour.
    Unknown,
}

impl FpmModule {
    pub fn as_str(self) -> &'static str {
        match self {
            FpmModule::Fpm => "fpm",
            FpmModule::DplaneFpmSonic => "dplane_fpm_sonic",
            FpmModule::Unknown => "unknown",
        }
    }
}

/// The renderer's only flavour input (defined next to the renderer).
pub use crate::frr::render::FrrLines;

/// What [`detect`] reads. Each fact is `Ok(Some(_))` when read, `Ok(None)`
/// when absent (no file, no key) and `Err(why)` when it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The text of `sonic_version.yml`.
    pub sonic_version: Fact<String>,
    /// The fields of CONFIG_DB `DEVICE_METADATA|localhost`.
    pub device_metadata: Fact<BTreeMap<String, String>>,
    /// The output of FRR's `show version`.
    pub frr_show_version: Fact<String>,
}

/// One fact of [`Inputs`].
pub type Fact<T> = Result<Option<T>, String>;

impl Default for Inputs {
    /// Nothing read: every fact absent.
    fn default() -> Self {
        Inputs {
            sonic_version: Ok(None),
            device_metadata: Ok(None),
            frr_show_version: Ok(None),
        }
    }
}

/// Which SONiC this is: the detected facts and what the agent does about
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flavour {
    pub family: Family,
    /// `202411`, `4.5.1`, `202211` (Edgecore's `ec202211`); `None` when not
    /// recognised.
    pub release: Option<String>,
    /// `build_version` of sonic_version.yml.
    pub build_version: Option<String>,
    /// `branch` of sonic_version.yml.
    pub branch: Option<String>,
    /// The Debian release (`11 (bullseye)`), from `debian_version` or known
    /// for the release.
    pub debian: Option<String>,
    /// The C library that Debian release ships (`2.31`).
    pub glibc: Option<&'static str>,
    pub routing_config_mode: RoutingConfigMode,
    /// `frr_mgmt_framework_config` of DEVICE_METADATA|localhost.
    pub frr_mgmt_framework_config: Option<String>,
    /// The running FRR's version (`show version`).
    pub frr_version: Option<String>,
    /// The FRR version this release ships, where known.
    pub frr_release_version: Option<&'static str>,
    pub fpm_module: FpmModule,
    /// The zebra lines the agent renders for this flavour.
    pub frr_lines: FrrLines,
    /// Whether the flavour was recognised (false: community defaults).
    pub recognised: bool,
    /// Why something could not be read or decided; shown by `check-config`
    /// and `status`, logged at start.
    pub warnings: Vec<String>,
}

impl Flavour {
    /// The zebra lines `frr.conf` carries on this flavour.
    pub fn frr_lines(&self) -> FrrLines {
        self.frr_lines
    }

    /// Why the agent must not manage FRR on this switch, naming the setting
    /// to change; `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        let why = match &self.routing_config_mode {
            RoutingConfigMode::Unified => {
                "is `unified`: SONiC's bgp container generates frr.conf from CONFIG_DB at every \
                 start, so the agent's frr.conf would be replaced"
            }
            RoutingConfigMode::Separated => {
                "is `separated`: SONiC's bgp container generates per-daemon files from CONFIG_DB \
                 and deletes frr.conf at every start, so the agent's frr.conf would never be used"
            }
            RoutingConfigMode::Unset => {
                "is not set, so SONiC's bgp container runs `separated` mode: it generates \
                 per-daemon files from CONFIG_DB and deletes frr.conf at every start, so the \
                 agent's frr.conf would never be used"
            }
            _ => return None,
        };
        Some(format!(
            "FRR is not managed on this switch: docker_routing_config_mode in CONFIG_DB \
             {DEVICE_METADATA_KEY} {why}; set it to `split-unified` (community SONiC) or \
             `split` (Enterprise SONiC), e.g. `sonic-db-cli CONFIG_DB HSET {DEVICE_METADATA_KEY} \
             docker_routing_config_mode split-unified`, save it (`config save -y`) and restart \
             the bgp service; nothing was written"
        ))
    }

    /// `community 202411`, `dell-enterprise 4.5.1`, `other`.
    pub fn name(&self) -> String {
        match &self.release {
            Some(r) => format!("{} {r}", self.family.as_str()),
            None => self.family.as_str().to_owned(),
        }
    }

    /// Lines for `check-config` and `status`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        let frr = match (&self.frr_version, self.frr_release_version) {
            (Some(v), Some(r)) if !v.starts_with(r) => format!("{v} (this release ships {r})"),
            (Some(v), _) => v.clone(),
            (None, Some(r)) => format!("unknown (this release ships {r})"),
            (None, None) => "unknown".into(),
        };
        let lines = self.frr_lines.lines();
        vec![
            (
                "family",
                format!(
                    "{}{}",
                    self.family.title(),
                    if self.recognised {
                        ""
                    } else {
                        " (community defaults)"
                    }
                ),
            ),
            ("release", or_unknown(&self.release)),
            ("build_version", or_unknown(&self.build_version)),
            (
                "debian",
                match (&self.debian, self.glibc) {
                    (Some(d), Some(g)) => format!("{d}, glibc {g}"),
                    (Some(d), None) => d.clone(),
                    (None, _) => "unknown".into(),
                },
            ),
            (
                "docker_routing_config_mode",
                self.routing_config_mode.to_string(),
            ),
            (
                "frr_mgmt_framework_config",
                self.frr_mgmt_framework_config
                    .clone()
                    .unwrap_or_else(|| "not set".into()),
            ),
            ("frr_version", frr),
            ("fpm_module", self.fpm_module.as_str().to_owned()),
            (
                "frr_lines",
                if lines.is_empty() {
                    "none".into()
                } else {
                    lines.join("; ")
                },
            ),
            (
                "frr_idle_interfaces",
                if self.frr_lines.idle_interfaces {
                    "an empty interface stanza for each port without a BGP session".into()
                } else {
                    "none".into()
                },
            ),
        ]
    }
}

/// The fields of a flat YAML map of scalars (`sonic_version.yml`): `key:
/// value` lines, quotes and trailing comments removed, values bounded.
pub fn yaml_fields(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t', '#', '-']) {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let v = rest.split(" #").next().unwrap_or("").trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|x| x.strip_suffix('\''))
            .or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
            .unwrap_or(v)
            .trim();
        if !v.is_empty() {
            out.entry(key.to_owned()).or_insert_with(|| v.to_owned());
        }
    }
    out
}

/// One scalar of a flat YAML map ([`yaml_fields`]).
pub fn yaml_scalar(text: &str, key: &str) -> Option<String> {
    yaml_fields(text).remove(key)
}

/// `text` with control and format characters escaped, at most `max` chars:
/// everything detected comes from outside and is shown to people.
fn bounded(text: &str, max: usize) -> String {
    crate::names::escaped(text, max)
}

/// The FRR version in `show version` output (`FRRouting 10.0.1-sonic-0
/// (leaf01) on Linux(…)` → `10.0.1-sonic-0`).
pub fn parse_frr_version(show_version: &str) -> Option<String> {
    let rest = show_version
        .lines()
        .find_map(|l| l.trim().strip_prefix("FRRouting "))?;
    let v = rest.split_whitespace().next()?;
    (v.starts_with(|c: char| c.is_ascii_digit()) && v.len() <= 64).then(|| bounded(v, 64))
}

/// `(major, minor)` of an FRR version (`10.0.1-sonic-0` → `(10, 0)`).
pub fn frr_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// A six-digit `YYYYMM` release at the start of `s` (`202411`,
/// `202411.12-abc`, `SONiC.202311.1`), 2017 to 2099.
fn community_release(s: &str) -> Option<u32> {
    let s = s.strip_prefix("SONiC.").unwrap_or(s);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() != 6 {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let (year, month) = (n / 100, n % 100);
    ((2017..=2099).contains(&year) && (1..=12).contains(&month)).then_some(n)
}

/// `4.5.1` in `SONiC.4.5.1-Enterprise_Base`, `SONiC-OS-4.4.3-Enterprise_Standard`.
fn enterprise_version(build_version: &str) -> Option<String> {
    if !build_version.to_ascii_lowercase().contains("enterprise") {
        return None;
    }
    build_version
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|p| p.trim_matches('.'))
        .find(|p| {
            let n: Vec<&str> = p.split('.').collect();
            n.len() >= 2 && n.iter().all(|x| !x.is_empty() && x.len() <= 3)
        })
        .map(|p| bounded(p, 32))
}

/// `202211` of an Edgecore branch or build (`ec202211_ecsonic`,
/// `ec202211_metal-stack_1.0.0`).
fn edgecore_release(s: &str) -> Option<u32> {
    community_release(s.strip_prefix("ec")?)
}

/// Debian major version → (`11 (bullseye)`, glibc).
fn debian_of(major: u32) -> Option<(String, &'static str)> {
    match major {
        10 => Some(("10 (buster)".into(), "2.28")),
        11 => Some(("11 (bullseye)".into(), "2.31")),
        12 => Some(("12 (bookworm)".into(), "2.36")),
        13 => Some(("13 (trixie)".into(), "2.41")),
        _ => None,
    }
}

/// What is known per recognised release: Debian major version, FRR
/// version, fpm module. Sources in `docs/flavours.md`.
fn release_facts(
    family: Family,
    release: Option<&str>,
) -> (Option<u32>, Option<&'static str>, FpmModule) {
    match family {
        Family::Community => match release.and_then(community_release) {
            // sonic-buildimage 202311: supervisord.conf.j2 `-M fpm`; mini-lab
            // base-202311: debs/bullseye, frr 8.5.1.
            Some(r) if r < FIRST_FPM_SONIC_RELEASE => (
                Some(if r >= 202106 { 11 } else { 10 }),
                (r == 202311).then_some("8.5.1"),
                FpmModule::Fpm,
            ),
            // 202411: `-M dplane_fpm_sonic`, debs/bookworm, frr 10.0.1;
            // 202505: the same module, frr 10.3.
            Some(r) => (
                Some(12),
                match r {
                    202411 => Some("10.0.1"),
                    202505 => Some("10.3"),
                    _ => None,
                },
                FpmModule::DplaneFpmSonic,
            ),
            None => (None, None, FpmModule::Unknown),
        },
        // Dell 4.x: based on 202311, Debian 11, the old fpm module (issue 20;
        // mini-lab #315).
        Family::DellEnterprise => (Some(11), None, FpmModule::Fpm),
        // Edgecore ec202211: FRR 9.0.1 (metal-core #160), the old fpm module
        // (mini-lab #315); ec202411 loads dplane_fpm_sonic like community.
        Family::EdgecoreEnterprise => match release.and_then(community_release) {
            Some(r) if r >= FIRST_FPM_SONIC_RELEASE => (Some(12), None, FpmModule::DplaneFpmSonic),
            Some(202211) => (Some(11), Some("9.0.1"), FpmModule::Fpm),
            _ => (None, None, FpmModule::Unknown),
        },
        Family::Other => (None, None, FpmModule::Unknown),
    }
}

/// Decide the flavour from what was read (pure; never fails: whatever is
/// missing becomes a warning and the community defaults).
pub fn detect(inputs: &Inputs) -> Flavour {
    let mut warnings = Vec::new();
    let version = version_fields(inputs, &mut warnings);
    let field = |k: &str| version.get(k).map(|v| bounded(v, 128));
    let build_version = field("build_version");
    let branch = field("branch");
    let (family, release) = family_and_release(
        build_version.as_deref(),
        branch.as_deref(),
        field("release").as_deref(),
        !version.is_empty(),
        &mut warnings,
    );
    let recognised = family != Family::Other;
    let (debian_major, frr_release_version, fpm_module) = release_facts(family, release.as_deref());

    // Debian: what the file says wins over what the release is known for.
    let debian_major = field("debian_version")
        .and_then(|v| v.split('.').next().and_then(|m| m.parse::<u32>().ok()))
        .or(debian_major);
    let (debian, glibc) = match debian_major.and_then(debian_of) {
        Some((d, g)) => (Some(d), Some(g)),
        None => (debian_major.map(|m| format!("{m}")), None),
    };
    let (routing_config_mode, frr_mgmt_framework_config) =
        routing_facts(&inputs.device_metadata, &mut warnings);
    let frr_version = frr_version_fact(&inputs.frr_show_version, &mut warnings);

    // Unknown fpm module: FRR ≥ 10 comes with dplane_fpm_sonic in every
    // known flavour, older FRR with the old module; without a version, the
    // newest community release's.
    let fpm_module = match fpm_module {
        FpmModule::Unknown => match frr_version.as_deref().and_then(frr_major_minor) {
            Some((major, _)) if major >= 10 => FpmModule::DplaneFpmSonic,
            Some(_) => FpmModule::Fpm,
            None => FpmModule::DplaneFpmSonic,
        },
        known => known,
    };
    let frr_lines = FrrLines {
        // Every community release's start script appends it; unknown
        // flavours get the community defaults. The Enterprise start
        // scripts are not public: nothing is assumed.
        no_kernel_nexthop_groups: matches!(family, Family::Community | Family::Other),
        fpm: fpm_module == FpmModule::DplaneFpmSonic,
        // FRR 10.0.1's frr-reload.py removes an interface's settings one by
        // one, 10.3's the whole stanza (which FRR refuses for a port that
        // exists); the versions between are not vendored here, so every FRR
        // after 10.0 gets the empty stanzas, and so does an unknown FRR 10
        // (the fpm module says which; they are harmless where not needed).
        idle_interfaces: match frr_version
            .as_deref()
            .or(frr_release_version)
            .and_then(frr_major_minor)
        {
            Some(v) => v > (10, 0),
            None => fpm_module == FpmModule::DplaneFpmSonic,
        },
    };
    Flavour {
        family,
        release,
        build_version,
        branch,
        debian,
        glibc,
        routing_config_mode,
        frr_mgmt_framework_config,
        frr_version,
        frr_release_version,
        fpm_module,
        frr_lines,
        recognised,
        warnings,
    }
}

/// The fields of `sonic_version.yml` (none, with a warning, when it is
/// missing or unreadable).
fn version_fields(inputs: &Inputs, warnings: &mut Vec<String>) -> BTreeMap<String, String> {
    match &inputs.sonic_version {
        Ok(Some(text)) => yaml_fields(text),
        Ok(None) => {
            warnings.push("sonic_version.yml does not exist (not a SONiC switch?)".into());
            BTreeMap::new()
        }
        Err(e) => {
            warnings.push(format!("sonic_version.yml cannot be read: {e}"));
            BTreeMap::new()
        }
    }
}

/// The family and release from `sonic_version.yml`'s build version, branch
/// and release; `read` says whether the file had any fields (an unknown
/// build is then worth a warning).
fn family_and_release(
    build_version: Option<&str>,
    branch: Option<&str>,
    release_field: Option<&str>,
    read: bool,
    warnings: &mut Vec<String>,
) -> (Family, Option<String>) {
    let edgecore = [branch, build_version]
        .into_iter()
        .flatten()
        .find_map(edgecore_release);
    let dell = build_version.and_then(enterprise_version);
    let community = [release_field, branch, build_version]
        .into_iter()
        .flatten()
        .find_map(community_release);
    if let Some(r) = edgecore {
        (Family::EdgecoreEnterprise, Some(r.to_string()))
    } else if let Some(v) = dell {
        (Family::DellEnterprise, Some(v))
    } else if let Some(r) = community {
        (Family::Community, Some(r.to_string()))
    } else {
        if read {
            warnings.push(format!(
                "SONiC build {} (branch {}) is not a flavour the agent knows; it uses the \
                 community defaults",
                build_version.unwrap_or("without build_version"),
                branch.unwrap_or("unknown")
            ));
        }
        (Family::Other, None)
    }
}

/// CONFIG_DB's `docker_routing_config_mode` and `frr_mgmt_framework_config`,
/// with the warnings they call for.
fn routing_facts(
    device_metadata: &Fact<BTreeMap<String, String>>,
    warnings: &mut Vec<String>,
) -> (RoutingConfigMode, Option<String>) {
    let (mode, mgmt_framework) = match device_metadata {
        Ok(Some(m)) => (
            RoutingConfigMode::parse(m.get("docker_routing_config_mode").map(String::as_str)),
            m.get("frr_mgmt_framework_config").map(|v| bounded(v, 32)),
        ),
        Ok(None) => {
            warnings.push(format!(
                "CONFIG_DB has no {DEVICE_METADATA_KEY}: the routing configuration mode is \
                 unknown"
            ));
            (RoutingConfigMode::Unknown, None)
        }
        Err(e) => {
            warnings.push(format!(
                "CONFIG_DB {DEVICE_METADATA_KEY} cannot be read ({e}): the routing \
                 configuration mode is unknown"
            ));
            (RoutingConfigMode::Unknown, None)
        }
    };
    if let RoutingConfigMode::Unrecognised(v) = &mode {
        warnings.push(format!(
            "docker_routing_config_mode {v:?} is not a mode SONiC's start script knows (split, \
             split-unified, unified, separated); it leaves FRR's files alone, and the agent \
             manages frr.conf as in split-unified"
        ));
    }
    if mgmt_framework
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        warnings.push(
            "frr_mgmt_framework_config is true: SONiC runs frrcfgd, which configures FRR from \
             CONFIG_DB's BGP tables; the agent's reloads remove what frrcfgd configured and \
             frrcfgd may change what the agent rendered; set it to false"
                .into(),
        );
    }
    (mode, mgmt_framework)
}

/// FRR's version from `show version`.
fn frr_version_fact(show_version: &Fact<String>, warnings: &mut Vec<String>) -> Option<String> {
    match show_version {
        Ok(Some(out)) => {
            let v = parse_frr_version(out);
            if v.is_none() {
                warnings.push("FRR's `show version` names no FRRouting version".into());
            }
            v
        }
        Ok(None) => None,
        Err(e) => {
            warnings.push(format!("FRR's version cannot be read: {e}"));
            None
        }
    }
}

/// The flavours the agent knows, by name: `render frr --flavour NAME`
/// renders for one of them without reading the switch, and the lab's SONiC
/// stand-in presents their facts. Each profile is a set of [`Inputs`] as
/// such a switch presents them (constructed from the facts in
/// `docs/flavours.md`; the Dell build string and Edgecore's are the ones
/// metal-stack's own fixtures and reference use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Profile {
    Community202311,
    Community202411,
    Community202505,
    Dell44,
    Dell45,
    Edgecore202211,
}

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::Community202311,
        Profile::Community202411,
        Profile::Community202505,
        Profile::Dell44,
        Profile::Dell45,
        Profile::Edgecore202211,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Community202311 => "community-202311",
            Profile::Community202411 => "community-202411",
            Profile::Community202505 => "community-202505",
            Profile::Dell44 => "dell-4.4",
            Profile::Dell45 => "dell-4.5",
            Profile::Edgecore202211 => "edgecore-202211",
        }
    }

    /// The profile called `name`, or an error listing the names.
    pub fn from_name(name: &str) -> Result<Profile, String> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown flavour {}; known: {}",
                    crate::names::quoted(name),
                    Profile::ALL.map(Profile::name).join(", ")
                )
            })
    }

    /// The `sonic_version.yml` such a switch has (the fields the agent reads).
    pub fn sonic_version_yml(self) -> &'static str {
        match self {
            Profile::Community202311 => {
                "build_version: '202311.1-metal-switchd-lab'\ndebian_version: '11.9'\n\
                 asic_type: vs\nbranch: '202311'\nrelease: '202311'\n"
            }
            Profile::Community202411 => {
                "build_version: '202411.1-metal-switchd-lab'\ndebian_version: '12.7'\n\
                 asic_type: vs\nbranch: '202411'\nrelease: '202411'\n"
            }
            Profile::Community202505 => {
                "build_version: '202505.1-metal-switchd-lab'\ndebian_version: '12.10'\n\
                 asic_type: vs\nbranch: '202505'\nrelease: '202505'\n"
            }
            Profile::Dell44 => {
                "build_version: 'SONiC.4.4.3-Enterprise_Base'\ndebian_version: '11.9'\n\
                 asic_type: broadcom\n"
            }
            Profile::Dell45 => {
                "build_version: 'SONiC.4.5.1-Enterprise_Base'\ndebian_version: '11.9'\n\
                 asic_type: broadcom\n"
            }
            Profile::Edgecore202211 => {
                "build_version: 'ec202211_metal-stack_1.0.0'\ndebian_version: '11.9'\n\
                 asic_type: broadcom\nbranch: 'ec202211_ecsonic'\n"
            }
        }
    }

    /// `docker_routing_config_mode` of such a switch: metal-stack's mini-lab
    /// runs community SONiC in `split-unified` (mini-lab
    /// `images/sonic/config_db.json`) and Dell / Edgecore in `split`
    /// (mini-lab's Dell configurations, sonic-configdb-utils).
    pub fn routing_config_mode(self) -> &'static str {
        match self {
            Profile::Community202311 | Profile::Community202411 | Profile::Community202505 => {
                "split-unified"
            }
            Profile::Dell44 | Profile::Dell45 | Profile::Edgecore202211 => "split",
        }
    }

    /// The FRR version such a switch runs, where known.
    pub fn frr_version(self) -> Option<&'static str> {
        match self {
            Profile::Community202311 => Some("8.5.1"),
            Profile::Community202411 => Some("10.0.1"),
            Profile::Community202505 => Some("10.3"),
            Profile::Edgecore202211 => Some("9.0.1"),
            Profile::Dell44 | Profile::Dell45 => None,
        }
    }

    /// The facts such a switch presents.
    pub fn inputs(self) -> Inputs {
        let metadata: BTreeMap<String, String> = [
            ("hostname", "leaf01"),
            ("docker_routing_config_mode", self.routing_config_mode()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Inputs {
            sonic_version: Ok(Some(self.sonic_version_yml().to_owned())),
            device_metadata: Ok(Some(metadata)),
            frr_show_version: Ok(self
                .frr_version()
                .map(|v| format!("FRRouting {v} (leaf01) on Linux(5.10.0).\n"))),
        }
    }

    /// [`detect`] of [`Profile::inputs`].
    pub fn flavour(self) -> Flavour {
        detect(&self.inputs())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    //! Expectations from the flavours' own files: sonic-buildimage
    //! `dockers/docker-fpm-frr/` per release (copies in
    //! `../shared/vendor/sonic-frr-startup/`), mini-lab #315 and metal-core
    //! #160 / #199 (`docs/flavours.md` cites each).
    use super::*;

    fn meta(mode: Option<&str>) -> Fact<BTreeMap<String, String>> {
        let mut m = BTreeMap::from([("hostname".to_owned(), "leaf01".to_owned())]);
        if let Some(mode) = mode {
            m.insert("docker_routing_config_mode".into(), mode.into());
        }
        Ok(Some(m))
    }

    fn inputs(yml: &str, mode: Option<&str>, frr: Option<&str>) -> Inputs {
        Inputs {
            sonic_version: Ok(Some(yml.to_owned())),
            device_metadata: meta(mode),
            frr_show_version: Ok(frr.map(|v| format!("FRRouting {v} (x) on Linux(6.1).\n"))),
        }
    }

    #[test]
    fn community_releases_follow_their_start_scripts() {
        // 202311: supervisord.conf.j2 `-M fpm`; write_default_zebra_config
        // appends only `no zebra nexthop kernel enable`.
        let f = detect(&inputs(
            "build_version: '202311.5-abc'\nrelease: '202311'\ndebian_version: '11.9'\n",
            Some("split-unified"),
            Some("8.5.1-sonic-0"),
        ));
        assert_eq!(f.family, Family::Community);
        assert_eq!(f.release.as_deref(), Some("202311"));
        assert_eq!(f.fpm_module, FpmModule::Fpm);
        assert_eq!(f.frr_lines.lines(), ["no zebra nexthop kernel enable"]);
        assert_eq!(f.debian.as_deref(), Some("11 (bullseye)"));
        assert_eq!(f.glibc, Some("2.31"));
        assert_eq!(f.routing_config_mode, RoutingConfigMode::SplitUnified);
        assert_eq!(f.frr_version.as_deref(), Some("8.5.1-sonic-0"));
        assert!(!f.frr_lines.idle_interfaces);
        assert!(f.refusal().is_none());
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        // 202411 and 202505: `-M dplane_fpm_sonic`; the start script appends
        // `no fpm use-next-hop-groups`, `fpm address 127.0.0.1` and `no zebra
        // nexthop kernel enable`.
        // Only 10.3's frr-reload.py deletes a whole interface stanza.
        for (release, frr, idle) in [("202411", "10.0.1", false), ("202505", "10.3", true)] {
            let f = detect(&inputs(
                &format!("build_version: '{release}.12-x'\nbranch: '{release}'\n"),
                Some("split-unified"),
                None,
            ));
            assert_eq!(f.release.as_deref(), Some(release));
            assert_eq!(f.fpm_module, FpmModule::DplaneFpmSonic);
            assert_eq!(
                f.frr_lines.lines(),
                [
                    "no zebra nexthop kernel enable",
                    "fpm address 127.0.0.1",
                    "no fpm use-next-hop-groups"
                ]
            );
            assert_eq!(f.debian.as_deref(), Some("12 (bookworm)"));
            assert_eq!(f.frr_release_version, Some(frr));
            assert_eq!(f.frr_lines.idle_interfaces, idle, "{release}");
        }
    }

    #[test]
    fn enterprise_builds_are_recognised() {
        // The form of the issue and of the lab: SONiC.4.5.1-Enterprise_Base.
        let f = detect(&inputs(
            "---\nbuild_version: 'SONiC.4.5.1-Enterprise_Base'\ndebian_version: '11.9'\n",
            Some("split"),
            None,
        ));
        assert_eq!(f.family, Family::DellEnterprise);
        assert_eq!(f.release.as_deref(), Some("4.5.1"));
        assert_eq!(f.fpm_module, FpmModule::Fpm);
        assert_eq!(f.frr_lines, FrrLines::NONE);
        assert_eq!(f.routing_config_mode, RoutingConfigMode::Split);
        assert!(f.refusal().is_none());
        // Edgecore: the branch and build of metal-stack's reference.
        let f = detect(&inputs(
            "build_version: ec202211_metal-stack_1.0.0\nbranch: ec202211_ecsonic\n",
            Some("split"),
            Some("9.0.1"),
        ));
        assert_eq!(f.family, Family::EdgecoreEnterprise);
        assert_eq!(f.release.as_deref(), Some("202211"));
        assert_eq!(f.fpm_module, FpmModule::Fpm);
        assert_eq!(f.frr_lines, FrrLines::NONE);
        assert_eq!(f.frr_release_version, Some("9.0.1"));
        let f = detect(&inputs("build_version: ec202411_x\n", Some("split"), None));
        assert_eq!(f.fpm_module, FpmModule::DplaneFpmSonic);
        assert!(f.frr_lines.fpm);
        // An FRR 10 of unknown minor version: the empty interface stanzas.
        assert!(f.frr_lines.idle_interfaces);
        // FRR's own answer wins over the release's: 202411 with FRR 10.3.
        let f = detect(&inputs(
            "build_version: '202411.12-x'\nbranch: '202411'\n",
            Some("split-unified"),
            Some("10.3-sonic-0"),
        ));
        assert!(f.frr_lines.idle_interfaces);
    }

    #[test]
    fn unknown_flavours_get_the_community_defaults_and_a_warning() {
        let f = detect(&inputs(
            "build_version: 'master.123-abc'\n",
            Some("split-unified"),
            None,
        ));
        assert_eq!(f.family, Family::Other);
        assert!(!f.recognised);
        assert_eq!(f.fpm_module, FpmModule::DplaneFpmSonic);
        assert!(f.frr_lines.fpm && f.frr_lines.no_kernel_nexthop_groups);
        assert!(
            f.warnings.iter().any(|w| w.contains("community defaults")),
            "{:?}",
            f.warnings
        );
        // An old FRR decides for the old module.
        let f = detect(&inputs(
            "build_version: 'x'\n",
            Some("split"),
            Some("8.2.2"),
        ));
        assert_eq!(f.fpm_module, FpmModule::Fpm);
        assert!(!f.frr_lines.fpm);
        // Nothing readable: still a flavour, with warnings, never a panic.
        let f = detect(&Inputs {
            sonic_version: Err("permission denied".into()),
            device_metadata: Err("redis unreachable".into()),
            frr_show_version: Err("vtysh timed out".into()),
        });
        assert_eq!(f.family, Family::Other);
        assert_eq!(f.routing_config_mode, RoutingConfigMode::Unknown);
        assert!(f.refusal().is_none());
        assert_eq!(f.warnings.len(), 3, "{:?}", f.warnings);
        let f = detect(&Inputs::default());
        assert_eq!(f.routing_config_mode, RoutingConfigMode::Unknown);
    }

    #[test]
    fn modes_where_sonic_writes_frr_conf_are_refused_by_name() {
        for (mode, word) in [
            (Some("unified"), "`unified`"),
            (Some("separated"), "`separated`"),
            (None, "is not set"),
        ] {
            let f = detect(&inputs("release: '202411'\n", mode, None));
            let r = f.refusal().unwrap_or_default();
            assert!(r.contains("docker_routing_config_mode"), "{r}");
            assert!(r.contains("DEVICE_METADATA|localhost"), "{r}");
            assert!(r.contains(word), "{r}");
            assert!(r.contains("split-unified"), "{r}");
        }
        let f = detect(&inputs("release: '202411'\n", Some("weird\u{202e}"), None));
        assert!(f.refusal().is_none());
        assert!(
            f.warnings.iter().any(|w| w.contains("\\u{202e}")),
            "{:?}",
            f.warnings
        );
    }

    #[test]
    fn hostile_version_files_are_bounded_and_escaped() {
        let long = "9".repeat(10_000);
        let f = detect(&inputs(
            &format!("build_version: '{long}\u{1b}[31m'\nbranch: \"a\nb\"\n"),
            Some("split"),
            Some(&format!("{long}\u{7}")),
        ));
        let b = f.build_version.unwrap_or_default();
        assert!(b.chars().count() <= 130, "{}", b.len());
        assert!(!b.contains('\u{1b}'));
        assert!(f.frr_version.is_none());
        assert_eq!(parse_frr_version("hello\n"), None);
        assert_eq!(
            parse_frr_version("\nFRRouting 10.0.1-sonic-0 (sonic) on Linux(6.1.0-22-2-amd64).\n")
                .as_deref(),
            Some("10.0.1-sonic-0")
        );
        assert_eq!(frr_major_minor("10.0.1-sonic-0"), Some((10, 0)));
        assert_eq!(frr_major_minor("8.5"), Some((8, 5)));
    }

    #[test]
    fn yaml_fields_read_sonic_version_files() {
        let y = "---\nbuild_version: 'SONiC.4.5.1-Enterprise_Base'\ndebian_version: \"11.9\" # x\n  nested: no\nasic_type: broadcom\nbuild_version: second\n";
        let f = yaml_fields(y);
        assert_eq!(f["build_version"], "SONiC.4.5.1-Enterprise_Base");
        assert_eq!(f["debian_version"], "11.9");
        assert_eq!(f["asic_type"], "broadcom");
        assert!(!f.contains_key("nested"));
        assert_eq!(yaml_scalar("build_version: ''\n", "build_version"), None);
    }

    #[test]
    fn every_profile_detects_as_what_it_names() {
        for p in Profile::ALL {
            let f = p.flavour();
            assert!(f.recognised, "{p}: {f:?}");
            assert!(f.warnings.is_empty(), "{p}: {:?}", f.warnings);
            assert!(f.refusal().is_none(), "{p}");
            let want = match p {
                Profile::Community202311 => ("community", "202311"),
                Profile::Community202411 => ("community", "202411"),
                Profile::Community202505 => ("community", "202505"),
                Profile::Dell44 => ("dell-enterprise", "4.4.3"),
                Profile::Dell45 => ("dell-enterprise", "4.5.1"),
                Profile::Edgecore202211 => ("edgecore-enterprise", "202211"),
            };
            assert_eq!(
                (f.family.as_str(), f.release.as_deref().unwrap_or("")),
                want,
                "{p}"
            );
            assert_eq!(Profile::from_name(p.name()), Ok(p));
        }
        let e = Profile::from_name("dell-9").unwrap_err();
        assert!(
            e.contains("community-202411") && e.contains("\"dell-9\""),
            "{e}"
        );
    }
}
