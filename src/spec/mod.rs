//! `SwitchSpec`: the validated, typed desired state of one leaf switch.
//!
//! Built by [`build`] from three inputs:
//! - [`SwitchDesc`], the API-neutral reading of the metal API's switch object
//!   (produced by `crate::api` from a v1 or v2 wire object);
//! - the agent [`Config`](crate::config::Config);
//! - [`LocalFacts`] read from CONFIG_DB (the PORT table, the VTEP, existing
//!   tenant VLAN ids, what belongs to others).
//!
//! Building is pure and validates everything that later reaches redis or
//! `frr.conf`: names, ranges, prefixes, port existence, collisions with
//! objects the agent does not own. It collects every problem and rejects the
//! input as a whole ([`Problems`]); nothing downstream re-validates.

mod build;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::config::{LogLevel, VlanRange};

pub(crate) use build::natural_cmp;
pub use build::{build, rebuild, recheck_ports};

/// Largest VXLAN network identifier (24 bit).
pub const MAX_VNI: u32 = 16_777_215;
/// MTU of machine and unprovisioned ports (metal-core's value).
pub const MTU_EDGE: u16 = 9000;
/// MTU of underlay and firewall ports (metal-core's value).
pub const MTU_FABRIC: u16 = 9216;

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// The switch object of the metal API, independent of the wire version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SwitchDesc {
    /// Switch id (the hostname).
    pub id: String,
    pub nics: Vec<NicDesc>,
}

/// One nic of the switch object, as the API describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NicDesc {
    /// `name` as sent by the API (kernel name or alias, per naming schema).
    pub name: String,
    /// `""`/absent: unprovisioned; `default`: firewall; `vrf<VNI>`: tenant.
    pub vrf: Option<String>,
    /// BGP filter (CIDRs and VNIs as strings, unvalidated).
    pub filter: FilterDesc,
    /// Desired admin status; only up/down are applied.
    pub admin: Option<AdminStatus>,
}

/// The unvalidated BGP filter of a nic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FilterDesc {
    pub cidrs: Vec<String>,
    pub vnis: Vec<String>,
}

/// What CONFIG_DB says about the switch, as far as building a spec needs it.
/// Produced by `crate::configdb::facts` (or by hand in tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalFacts {
    /// PORT table: kernel name → alias.
    pub ports: BTreeMap<String, Option<String>>,
    /// Names of the VXLAN_TUNNEL entries.
    pub vteps: Vec<String>,
    /// VXLAN_EVPN_NVO entries: name → source_vtep.
    pub nvos: BTreeMap<String, String>,
    /// Ids of the existing VLAN entries.
    pub vlans: BTreeSet<u16>,
    /// VLAN ids referenced anywhere (VLAN keys and VXLAN map targets).
    pub used_vlans: BTreeSet<u16>,
    /// Tenant VNI → VLAN id, from the agent's own VXLAN maps (stable ids).
    pub tenant_vlans: BTreeMap<u32, u16>,
    /// VNIs in use by objects the agent does not own → who uses them.
    pub foreign_vnis: BTreeMap<u32, String>,
    /// VLAN ids inside the tenant range held by objects the agent does not own.
    pub foreign_vlans: BTreeMap<u16, String>,
    /// VLAN ids the agent owns (tied to its tenant objects).
    pub owned_vlans: BTreeSet<u16>,
    /// Every VRF entry: name → vni (None when absent or 0).
    pub vrfs: BTreeMap<String, Option<u32>>,
    /// `INTERFACE|<port>` entries: port → bound VRF (None = not bound).
    pub interfaces: BTreeMap<String, Option<String>>,
    /// Ports that have IP sub-keys `INTERFACE|<port>|<prefix>`.
    pub interface_ips: BTreeSet<String>,
    /// VLAN memberships: port → VLAN ids.
    pub memberships: BTreeMap<String, BTreeSet<u16>>,
}

// ---------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------

/// Desired administrative state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminStatus {
    Up,
    Down,
}

impl AdminStatus {
    /// CONFIG_DB value of `PORT|<p> admin_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminStatus::Up => "up",
            AdminStatus::Down => "down",
        }
    }

    /// Lenient parse of API values (`UP`, `down`, `SWITCH_PORT_STATUS_UP`);
    /// anything else (e.g. `UNKNOWN`) means "not set".
    pub fn from_api(s: &str) -> Option<Self> {
        let s = s.strip_prefix("SWITCH_PORT_STATUS_").unwrap_or(s);
        if s.eq_ignore_ascii_case("up") {
            Some(AdminStatus::Up)
        } else if s.eq_ignore_ascii_case("down") {
            Some(AdminStatus::Down)
        } else {
            None
        }
    }
}

/// IPv4 and IPv6 prefixes, each compacted (merged, sorted by address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Prefixes {
    pub v4: Vec<Ipv4Net>,
    pub v6: Vec<Ipv6Net>,
}

impl Prefixes {
    /// Compact a set of prefixes: overlapping and adjacent ones merge.
    pub fn compact(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in nets {
            match n.trunc() {
                IpNet::V4(n) => v4.push(n),
                IpNet::V6(n) => v6.push(n),
            }
        }
        Prefixes {
            v4: Ipv4Net::aggregate(&v4),
            v6: Ipv6Net::aggregate(&v6),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Every prefix as text, IPv4 first.
    pub fn shown(&self) -> Vec<String> {
        let v4 = self.v4.iter().map(ToString::to_string);
        v4.chain(self.v6.iter().map(ToString::to_string)).collect()
    }
}

/// The BGP filter of a firewall port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub prefixes: Prefixes,
    /// VNIs the firewall may announce, sorted, without duplicates.
    pub vnis: Vec<u32>,
}

/// What a managed port is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum PortRole {
    /// Uplink to a spine (BGP unnumbered, peer group FABRIC).
    Underlay,
    /// No machine installed: member of the PXE VLAN.
    Unprovisioned,
    /// A firewall (nic VRF `default`), peer group FIREWALL, with its filter.
    Firewall { filter: Filter },
    /// A machine port bound to tenant VRF `Vrf<vni>`, peer group MACHINE.
    Tenant { vni: u32 },
}

impl PortRole {
    /// The MTU metal-core gives ports of this role.
    pub fn mtu(&self) -> u16 {
        match self {
            PortRole::Underlay | PortRole::Firewall { .. } => MTU_FABRIC,
            PortRole::Unprovisioned | PortRole::Tenant { .. } => MTU_EDGE,
        }
    }

    /// Short name for messages.
    pub fn describe(&self) -> String {
        match self {
            PortRole::Underlay => "underlay".into(),
            PortRole::Unprovisioned => "unprovisioned (PXE)".into(),
            PortRole::Firewall { .. } => "firewall".into(),
            PortRole::Tenant { vni } => format!("tenant {}", vrf_name(*vni)),
        }
    }
}

/// A port the agent manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Kernel / CONFIG_DB name.
    pub name: String,
    #[serde(flatten)]
    pub role: PortRole,
    /// Desired admin status; `None` leaves CONFIG_DB's value alone.
    pub admin: Option<AdminStatus>,
}

/// A tenant VRF (`Vrf<vni>`) with its L3VNI VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VrfSpec {
    pub vni: u32,
    /// VLAN id of the L3VNI (stable across reconciles).
    pub vlan: u16,
    /// Member ports, sorted.
    pub ports: Vec<String>,
    /// Union of the members' filter CIDRs, compacted.
    pub prefixes: Prefixes,
}

impl VrfSpec {
    pub fn name(&self) -> String {
        vrf_name(self.vni)
    }
}

/// Routing settings that feed the FRR renderer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routing {
    pub asn: u32,
    /// Loopback address: router id, VTEP source, `RM_SET_SRC` source.
    pub loopback: Ipv4Addr,
    pub log_level: LogLevel,
    pub management_gateway: Option<IpAddr>,
    pub management_routes: Vec<IpNet>,
    pub set_src_loopback: bool,
    /// Render `agentx` (FRR's SNMP AgentX client; needs the daemons' snmp module).
    pub agentx: bool,
    /// The operator's lines appended to frr.conf (`frr_extra_config`).
    pub extra_config: Vec<String>,
}

/// The validated desired state of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchSpec {
    /// Switch id and FRR hostname (RFC 1123).
    pub hostname: String,
    /// Managed ports by kernel name.
    pub ports: BTreeMap<String, PortSpec>,
    /// Tenant VRFs by VNI.
    pub vrfs: BTreeMap<u32, VrfSpec>,
    /// PXE VLAN id (the VLAN itself is static configuration).
    pub pxe_vlan: u16,
    /// Name of the VXLAN tunnel (VTEP).
    pub vtep: String,
    /// The agent's VLAN range for tenant VRFs.
    pub vlan_range: VlanRange,
    /// VRFs declared static: never written or deleted.
    pub static_vrfs: BTreeSet<String>,
    pub routing: Routing,
}

impl SwitchSpec {
    /// The identity of this desired state: the first 64 bits of the SHA-256
    /// of its JSON form, in hex (16 characters). Equal specs have equal
    /// digests (every collection in a spec is ordered); status, metrics,
    /// logs and tests use it to tell which desired state an outcome reached.
    pub fn digest(&self) -> SpecDigest {
        use sha2::Digest as _;
        // Serialising plain data (strings, numbers, ordered maps) cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let hash = sha2::Sha256::digest(&json);
        let mut hex = String::with_capacity(16);
        for b in hash.iter().take(8) {
            hex.push_str(&format!("{b:02x}"));
        }
        SpecDigest(hex)
    }

    /// Ports of one role, in name order.
    pub fn ports_where(&self, pred: impl Fn(&PortRole) -> bool) -> impl Iterator<Item = &PortSpec> {
        self.ports.values().filter(move |p| pred(&p.role))
    }
}

/// The digest of a [`SwitchSpec`] ([`SwitchSpec::digest`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecDigest(pub String);

impl fmt::Display for SpecDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SONiC's name of tenant VRF `vni` (`Vrf<vni>`, capital V).
pub fn vrf_name(vni: u32) -> String {
    format!("Vrf{vni}")
}

/// The VNI of an agent-style VRF name `Vrf<digits>` (exact decimal form).
pub fn vni_of_vrf_name(name: &str) -> Option<u32> {
    let vni = crate::names::parse_canonical(name.strip_prefix("Vrf")?)?;
    (1..=MAX_VNI).contains(&vni).then_some(vni)
}

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

/// One reason the desired state was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What the problem is about, e.g. `port Ethernet999`, `nic Ethernet3`.
    pub object: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// Every problem found in one desired state; the state is rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "desired state rejected, nothing was changed ({}):{}",
            crate::names::count(self.0.len(), "problem"),
            crate::names::listed(&self.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrf_names_round_trip() {
        assert_eq!(vni_of_vrf_name("Vrf104009"), Some(104009));
        assert_eq!(vni_of_vrf_name("Vrf0104009"), None);
        assert_eq!(vni_of_vrf_name("VrfMpls"), None);
        assert_eq!(vni_of_vrf_name("Vrf0"), None);
        assert_eq!(vni_of_vrf_name("Vrf16777216"), None);
        assert_eq!(vrf_name(42), "Vrf42");
    }

    #[test]
    fn compaction_merges_and_sorts() {
        let p = Prefixes::compact(
            [
                "212.17.234.17/32",
                "10.240.0.0/12",
                "100.127.131.0/24",
                "10.240.1.0/24",
                "10.0.0.0/25",
                "10.0.0.128/25",
                "2001:db8::/33",
                "2001:db8:8000::/33",
            ]
            .iter()
            .map(|s| s.parse().unwrap()),
        );
        let v4: Vec<String> = p.v4.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            v4,
            [
                "10.0.0.0/24",
                "10.240.0.0/12",
                "100.127.131.0/24",
                "212.17.234.17/32"
            ]
        );
        assert_eq!(
            p.v6.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["2001:db8::/32"]
        );
    }

    #[test]
    fn long_problem_lists_are_cut() {
        let many = Problems(
            (0..70_000)
                .map(|i| Problem {
                    object: format!("port Ethernet{i}"),
                    message: "is not in CONFIG_DB PORT".into(),
                })
                .collect(),
        );
        let text = many.to_string();
        assert!(text.starts_with("desired state rejected, nothing was changed (70000 problems):"));
        assert_eq!(
            text.lines().count(),
            1 + crate::names::MAX_LISTED + 1,
            "{text}"
        );
        assert!(text.ends_with("\n  - … and 69980 more"), "{text}");
        assert!(text.len() < 2000);
        let one = Problems(vec![Problem {
            object: "asn".into(),
            message: "0 is not a valid ASN".into(),
        }]);
        assert_eq!(
            one.to_string(),
            "desired state rejected, nothing was changed (1 problem):\n  - asn: 0 is not a valid ASN"
        );
    }

    #[test]
    fn the_digest_names_the_spec() {
        use crate::configdb::testkit::{port, spec};
        let a = spec(
            vec![port("Ethernet0", PortRole::Tenant { vni: 104009 }, None)],
            &[(104009, 1001)],
        );
        let same = spec(
            vec![port("Ethernet0", PortRole::Tenant { vni: 104009 }, None)],
            &[(104009, 1001)],
        );
        let other = spec(
            vec![port("Ethernet0", PortRole::Tenant { vni: 104009 }, None)],
            &[(104009, 1002)],
        );
        assert_eq!(a.digest(), same.digest());
        assert_ne!(a.digest(), other.digest());
        assert_eq!(a.digest().0.len(), 16);
        assert!(a.digest().0.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn admin_status_from_api() {
        assert_eq!(AdminStatus::from_api("UP"), Some(AdminStatus::Up));
        assert_eq!(
            AdminStatus::from_api("SWITCH_PORT_STATUS_DOWN"),
            Some(AdminStatus::Down)
        );
        assert_eq!(AdminStatus::from_api("UNKNOWN"), None);
    }
}
