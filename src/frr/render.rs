//! `frr.conf` from a [`SwitchSpec`] (pure).
//!
//! [`render`] is a plain function of the spec: no clock, no environment, no
//! I/O. Ports are written in natural order (`Ethernet2` before `Ethernet10`),
//! VRFs by VNI, prefixes as the spec compacted them, so the same spec always
//! gives the same bytes and an unchanged switch never causes a reload.
//!
//! The sections follow `frr-config.md` (metal-core's template). Where FRR
//! 8.4 itself prints a line differently in `show running-config`, the
//! renderer writes FRR's form, so that `frr-reload.py --test` between the
//! installed file and the running daemons shows no deltas (see `docs/frr.md`):
//! `debug bgp updates in` + `out` instead of `debug bgp updates`, tenant ports
//! as `interface <port>` (FRR 8.4 ignores and drops the `vrf` qualifier of
//! VRF-lite interfaces), `ipv6 prefix-list` for IPv6 prefixes, no empty
//! `line vty` block. Firewall ports bind `fw-<port>-in6` in the IPv6 family
//! (metal-core binds the IPv4 map there, which denies every IPv6 route).
//!
//! The flavour of SONiC adds its zebra lines ([`FrrLines`], decided by
//! `crate::flavour` from the flavour's own start script): what that script
//! appends to FRR's configuration must be in the agent's file too, or
//! `frr-reload.py` removes it from the running zebra at every reload. The
//! operator's `frr_extra_config` lines close the file.
//!
//! Every name written here comes from a validated spec: ports were checked
//! against the PORT table and the identifier rules, VRFs are numbers, CIDRs
//! were parsed and are re-printed, the hostname is RFC 1123; the operator's
//! lines were checked with the configuration (one line each, no control
//! characters) and are validated by FRR with the rest of the file.

use std::fmt::Display;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::config::LogLevel;
use crate::spec::{Filter, PortRole, Prefixes, SwitchSpec, VrfSpec, natural_cmp, vrf_name};

/// Peer group of the uplinks to the spines.
pub const PEER_GROUP_FABRIC: &str = "FABRIC";
/// Peer group of the firewall ports (nic VRF `default`).
pub const PEER_GROUP_FIREWALL: &str = "FIREWALL";
/// Peer group of the machine ports of a tenant VRF.
pub const PEER_GROUP_MACHINE: &str = "MACHINE";
/// The route-map that keeps management routes out of BGP.
pub const DENY_MGMT: &str = "DENY_MGMT";
/// The route-map that sets the loopback as source of BGP routes.
pub const RM_SET_SRC: &str = "RM_SET_SRC";
/// Maximum prefixes a machine may announce (metal-core's value).
pub const MACHINE_MAX_PREFIX: u32 = 24000;

/// FRR's syslog level name for the agent's log level (metal-core's mapping).
pub fn syslog_level(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debugging",
        LogLevel::Info => "informational",
        LogLevel::Warn => "warnings",
        LogLevel::Error => "errors",
    }
}

/// The zebra lines a flavour's start script appends to FRR's configuration
/// and the agent therefore renders (in the order FRR shows them in `show
/// running-config`). The renderer's only flavour input (decided by [`crate::flavour`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FrrLines {
    /// `no zebra nexthop kernel enable` (every community release's
    /// `write_default_zebra_config`).
    pub no_kernel_nexthop_groups: bool,
    /// `fpm address 127.0.0.1` and `no fpm use-next-hop-groups` (community
    /// ≥ 202411, `dplane_fpm_sonic`).
    pub fpm: bool,
    /// An `interface <port>` stanza without settings for every managed port
    /// without a BGP session (FRR after 10.0, e.g. community 202505's
    /// 10.3). Its `frr-reload.py` removes an interface stanza that the new
    /// file lacks with `no interface <port>`, which FRR refuses for an
    /// interface that exists ("only inactive interfaces can be deleted"),
    /// so every reload that takes a port out of its BGP role would fail;
    /// with the empty stanza it removes the settings one by one, as 10.0.1
    /// and 8.5.1 always do. FRR does not show an empty stanza in `show
    /// running-config`: nothing else changes (docs/frr.md).
    pub idle_interfaces: bool,
}

impl FrrLines {
    /// No flavour lines: FRR outside SONiC (the lab's routers), or a flavour
    /// whose start script appends none that is known.
    pub const NONE: FrrLines = FrrLines {
        no_kernel_nexthop_groups: false,
        fpm: false,
        idle_interfaces: false,
    };

    /// The lines, in the order FRR 8.4 and later show them.
    pub fn lines(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.no_kernel_nexthop_groups {
            out.push("no zebra nexthop kernel enable");
        }
        if self.fpm {
            out.push("fpm address 127.0.0.1");
            out.push("no fpm use-next-hop-groups");
        }
        out
    }
}

/// Render the complete `frr.conf` of a switch on a SONiC flavour whose
/// start script appends `lines` ([`FrrLines::NONE`] for FRR outside SONiC).
pub fn render(spec: &SwitchSpec, lines: FrrLines) -> String {
    let mut out = Out::default();
    let view = View::new(spec);
    global(&mut out, spec, lines);
    vrf_blocks(&mut out, spec);
    interfaces(&mut out, &view, lines.idle_interfaces);
    default_router(&mut out, spec, &view);
    deny_mgmt(&mut out);
    for (port, filter) in &view.firewalls {
        filter_objects(
            &mut out,
            &format!("fw-{port}"),
            &filter.prefixes,
            &filter.vnis,
        );
    }
    management_routes(&mut out, spec);
    for vrf in spec.vrfs.values() {
        tenant_router(&mut out, spec, vrf, &view);
        filter_objects(&mut out, &vrf.name(), &vrf.prefixes, &[]);
    }
    set_src(&mut out, spec);
    extra_config(&mut out, spec);
    out.0
}

/// What FRR runs while CONFIG_DB goes from `old` to `new`, when something
/// leaves FRR: `old` without the BGP neighbours whose port leaves its role,
/// its VRF or the managed ports, and without the VRF instances `new` has no
/// more; everything else as in `old`. `None` when nothing leaves FRR.
///
/// The agent installs it before CONFIG_DB removes those interfaces and
/// VRFs, so that bgpd never holds a neighbour on an interface (or an
/// instance of a VRF) that SONiC is taking away; what `new` adds comes after
/// CONFIG_DB, with the rendering of `new` itself.
pub fn removals_first(old: &SwitchSpec, new: &SwitchSpec) -> Option<SwitchSpec> {
    let mut mid = old.clone();
    for (name, port) in &mut mid.ports {
        let stays = new
            .ports
            .get(name)
            .is_some_and(|n| same_session(&port.role, &n.role));
        if !stays {
            port.role = PortRole::Unprovisioned;
        }
    }
    mid.vrfs.retain(|vni, _| new.vrfs.contains_key(vni));
    for vrf in mid.vrfs.values_mut() {
        vrf.ports.retain(|p| {
            mid.ports
                .get(p)
                .is_some_and(|p| p.role == PortRole::Tenant { vni: vrf.vni })
        });
    }
    (mid != *old).then_some(mid)
}

/// Whether a port keeps its BGP session (same peer group, same VRF) from
/// `old` to `new`; a firewall's filter may change under it.
fn same_session(old: &PortRole, new: &PortRole) -> bool {
    match (old, new) {
        (PortRole::Firewall { .. }, PortRole::Firewall { .. }) => true,
        _ => old == new,
    }
}

/// The ports of a spec, grouped and in natural order.
struct View<'a> {
    underlay: Vec<&'a str>,
    /// Managed ports without a BGP session (unprovisioned), in natural order.
    idle: Vec<&'a str>,
    firewalls: Vec<(&'a str, &'a Filter)>,
    /// Member ports per VNI, in natural order.
    tenants: Vec<(u32, Vec<&'a str>)>,
}

impl<'a> View<'a> {
    fn new(spec: &'a SwitchSpec) -> Self {
        let mut underlay = Vec::new();
        let mut idle = Vec::new();
        let mut firewalls = Vec::new();
        for p in spec.ports.values() {
            match &p.role {
                PortRole::Underlay => underlay.push(p.name.as_str()),
                PortRole::Unprovisioned => idle.push(p.name.as_str()),
                PortRole::Firewall { filter } => firewalls.push((p.name.as_str(), filter)),
                PortRole::Tenant { .. } => {}
            }
        }
        underlay.sort_by(|a, b| natural_cmp(a, b));
        idle.sort_by(|a, b| natural_cmp(a, b));
        firewalls.sort_by(|a, b| natural_cmp(a.0, b.0));
        let tenants = spec
            .vrfs
            .values()
            .map(|v| {
                let mut ports: Vec<&str> = v.ports.iter().map(String::as_str).collect();
                ports.sort_by(|a, b| natural_cmp(a, b));
                (v.vni, ports)
            })
            .collect();
        View {
            underlay,
            idle,
            firewalls,
            tenants,
        }
    }

    fn members(&self, vni: u32) -> &[&'a str] {
        self.tenants
            .iter()
            .find(|(v, _)| *v == vni)
            .map(|(_, p)| p.as_slice())
            .unwrap_or(&[])
    }
}

/// The text being built; one method per line shape.
#[derive(Default)]
struct Out(String);

impl Out {
    /// One line at an indentation depth (one space per level, as FRR prints).
    fn line(&mut self, depth: usize, text: impl Display) {
        for _ in 0..depth {
            self.0.push(' ');
        }
        self.0.push_str(&text.to_string());
        self.0.push('\n');
    }

    fn bang(&mut self) {
        self.0.push_str("!\n");
    }
}

fn global(out: &mut Out, spec: &SwitchSpec, lines: FrrLines) {
    let r = &spec.routing;
    out.line(
        0,
        "! frr.conf rendered by metal-switchd from the switch's desired state.",
    );
    out.line(
        0,
        "! Local changes are replaced at the next change of that state.",
    );
    out.line(0, "frr defaults datacenter");
    out.line(0, format!("hostname {}", spec.hostname));
    out.line(0, "password zebra");
    out.line(0, "enable password zebra");
    if r.agentx {
        out.line(0, "agentx");
    }
    out.line(0, format!("log syslog {}", syslog_level(r.log_level)));
    out.line(0, "log facility local4");
    let flavour = lines.lines();
    if !flavour.is_empty() {
        out.line(
            0,
            "! SONiC's bgp start script adds these zebra lines; a reload without them would \
             remove them.",
        );
        for l in flavour {
            out.line(0, l);
        }
    }
    // `debug bgp updates` is shown by FRR as these two lines.
    for d in [
        "debug bgp updates in",
        "debug bgp updates out",
        "debug bgp nht",
        "debug bgp update-groups",
        "debug bgp zebra",
        "debug zebra events",
        "debug zebra nexthop detail",
        "debug zebra rib detailed",
        "debug zebra nht detailed",
    ] {
        out.line(0, d);
    }
    out.bang();
}

fn vrf_blocks(out: &mut Out, spec: &SwitchSpec) {
    for vrf in spec.vrfs.values() {
        out.line(0, format!("vrf {}", vrf.name()));
        out.line(1, format!("vni {}", vrf.vni));
        out.line(0, "exit-vrf");
        out.bang();
    }
}

/// The session ports' interface stanzas, then (`idle`) an empty one for
/// each port without a session ([`FrrLines::idle_interfaces`]).
fn interfaces(out: &mut Out, view: &View<'_>, idle: bool) {
    let ports = view
        .underlay
        .iter()
        .copied()
        .chain(view.firewalls.iter().map(|(p, _)| *p))
        .chain(
            view.tenants
                .iter()
                .flat_map(|(_, ports)| ports.iter().copied()),
        );
    for port in ports {
        // Tenant ports too are written without `vrf Vrf<VNI>`: FRR 8.4 takes
        // the VRF of a VRF-lite interface from the kernel, ignores the
        // qualifier and leaves it out of `show running-config`.
        out.line(0, format!("interface {port}"));
        out.line(1, "ipv6 nd ra-interval 6");
        out.line(1, "no ipv6 nd suppress-ra");
        out.line(0, "exit");
        out.bang();
    }
    if idle {
        for port in &view.idle {
            out.line(0, format!("interface {port}"));
            out.line(0, "exit");
            out.bang();
        }
    }
}

fn peer_group(out: &mut Out, group: &str, members: &[&str]) {
    out.line(1, format!("neighbor {group} peer-group"));
    out.line(1, format!("neighbor {group} remote-as external"));
    out.line(1, format!("neighbor {group} timers 2 8"));
    for m in members {
        out.line(1, format!("neighbor {m} interface peer-group {group}"));
    }
}

fn default_router(out: &mut Out, spec: &SwitchSpec, view: &View<'_>) {
    let r = &spec.routing;
    let firewalls: Vec<&str> = view.firewalls.iter().map(|(p, _)| *p).collect();
    out.line(0, format!("router bgp {}", r.asn));
    out.line(1, format!("bgp router-id {}", r.loopback));
    out.line(1, "bgp bestpath as-path multipath-relax");
    peer_group(out, PEER_GROUP_FABRIC, &view.underlay);
    peer_group(out, PEER_GROUP_FIREWALL, &firewalls);
    for (family, suffix) in [("ipv4", "in"), ("ipv6", "in6")] {
        out.line(1, "!");
        out.line(1, format!("address-family {family} unicast"));
        out.line(2, format!("redistribute connected route-map {DENY_MGMT}"));
        out.line(2, format!("redistribute kernel route-map {DENY_MGMT}"));
        if family == "ipv6" {
            out.line(2, format!("neighbor {PEER_GROUP_FIREWALL} activate"));
        }
        out.line(2, format!("neighbor {PEER_GROUP_FIREWALL} allowas-in 2"));
        for fw in &firewalls {
            out.line(2, format!("neighbor {fw} route-map fw-{fw}-{suffix} in"));
        }
        out.line(1, "exit-address-family");
    }
    out.line(1, "!");
    out.line(1, "address-family l2vpn evpn");
    out.line(2, "advertise-all-vni");
    for group in [PEER_GROUP_FABRIC, PEER_GROUP_FIREWALL] {
        out.line(2, format!("neighbor {group} activate"));
        out.line(2, format!("neighbor {group} allowas-in 2"));
    }
    for fw in &firewalls {
        out.line(2, format!("neighbor {fw} route-map fw-{fw}-vni out"));
    }
    out.line(1, "exit-address-family");
    out.line(0, "exit");
    out.bang();
}

fn deny_mgmt(out: &mut Out) {
    out.line(0, format!("route-map {DENY_MGMT} deny 10"));
    out.line(1, "match interface eth0");
    out.line(0, "exit");
    out.line(0, format!("route-map {DENY_MGMT} permit 20"));
    out.line(0, "exit");
    out.bang();
}

/// One address family's prefix list `MAP-prefixes` and route-map `MAP`
/// (`ip` or `ipv6`, up to host routes of `max_len`); nothing without nets.
fn family_filter<N: std::fmt::Display>(
    out: &mut Out,
    nets: &[N],
    ip: &str,
    map: &str,
    max_len: u8,
) {
    if nets.is_empty() {
        return;
    }
    for net in nets {
        out.line(
            0,
            format!("{ip} prefix-list {map}-prefixes permit {net} le {max_len}"),
        );
    }
    out.line(0, format!("route-map {map} permit 10"));
    out.line(1, format!("match {ip} address prefix-list {map}-prefixes"));
    out.line(0, "exit");
}

/// Prefix lists and route-maps `P-in` (IPv4), `P-in6` (IPv6), `P-vni`.
/// A family without prefixes gets neither list nor map.
fn filter_objects(out: &mut Out, prefix: &str, prefixes: &Prefixes, vnis: &[u32]) {
    if prefixes.is_empty() && vnis.is_empty() {
        return;
    }
    family_filter(out, &prefixes.v4, "ip", &format!("{prefix}-in"), 32);
    family_filter(out, &prefixes.v6, "ipv6", &format!("{prefix}-in6"), 128);
    for (i, vni) in vnis.iter().enumerate() {
        let seq = 10 + i;
        out.line(0, format!("route-map {prefix}-vni permit {seq}"));
        out.line(1, format!("match evpn vni {vni}"));
        out.line(0, "exit");
    }
    out.bang();
}

fn management_routes(out: &mut Out, spec: &SwitchSpec) {
    let Some(gw) = spec.routing.management_gateway else {
        return;
    };
    let default: IpNet = match gw {
        IpAddr::V4(_) => IpNet::V4(Ipv4Net::default()),
        IpAddr::V6(_) => IpNet::V6(Ipv6Net::default()),
    };
    for net in std::iter::once(&default).chain(spec.routing.management_routes.iter()) {
        let cmd = if net.addr().is_ipv4() { "ip" } else { "ipv6" };
        out.line(0, format!("{cmd} route {net} {gw} nexthop-vrf mgmt"));
    }
    out.bang();
}

fn tenant_router(out: &mut Out, spec: &SwitchSpec, vrf: &VrfSpec, view: &View<'_>) {
    let r = &spec.routing;
    let name = vrf_name(vrf.vni);
    let (v4, v6) = (!vrf.prefixes.v4.is_empty(), !vrf.prefixes.v6.is_empty());
    out.line(0, format!("router bgp {} vrf {name}", r.asn));
    out.line(1, format!("bgp router-id {}", r.loopback));
    out.line(1, "bgp bestpath as-path multipath-relax");
    peer_group(out, PEER_GROUP_MACHINE, view.members(vrf.vni));
    for (family, present, suffix) in [("ipv4", v4, "in"), ("ipv6", v6, "in6")] {
        if !present {
            continue;
        }
        out.line(1, "!");
        out.line(1, format!("address-family {family} unicast"));
        out.line(2, "redistribute connected");
        if family == "ipv6" {
            out.line(2, format!("neighbor {PEER_GROUP_MACHINE} activate"));
        }
        out.line(
            2,
            format!("neighbor {PEER_GROUP_MACHINE} maximum-prefix {MACHINE_MAX_PREFIX}"),
        );
        out.line(
            2,
            format!("neighbor {PEER_GROUP_MACHINE} route-map {name}-{suffix} in"),
        );
        out.line(1, "exit-address-family");
    }
    // An empty address family is not shown by FRR; leave it out too.
    if v4 || v6 {
        out.line(1, "!");
        out.line(1, "address-family l2vpn evpn");
        if v4 {
            out.line(2, "advertise ipv4 unicast");
        }
        if v6 {
            out.line(2, "advertise ipv6 unicast");
        }
        out.line(1, "exit-address-family");
    }
    out.line(0, "exit");
    out.bang();
}

fn set_src(out: &mut Out, spec: &SwitchSpec) {
    if !spec.routing.set_src_loopback {
        return;
    }
    out.line(0, format!("route-map {RM_SET_SRC} permit 10"));
    out.line(1, format!("set src {}", spec.routing.loopback));
    out.line(0, "exit");
    out.bang();
    out.line(0, format!("ip protocol bgp route-map {RM_SET_SRC}"));
    out.bang();
}

/// The operator's lines (`frr_extra_config`), last, as given.
fn extra_config(out: &mut Out, spec: &SwitchSpec) {
    if spec.routing.extra_config.is_empty() {
        return;
    }
    out.line(0, "! frr_extra_config: the operator's lines");
    for l in &spec.routing.extra_config {
        out.line(0, l);
    }
    out.bang();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::VlanRange;
    use crate::spec::{PortSpec, Routing};

    fn spec(ports: &[(&str, PortRole)], vrfs: &[(u32, &[&str], &[&str])]) -> SwitchSpec {
        SwitchSpec {
            hostname: "leaf01".into(),
            ports: ports
                .iter()
                .map(|(n, role)| {
                    (
                        n.to_string(),
                        PortSpec {
                            name: n.to_string(),
                            role: role.clone(),
                            admin: None,
                        },
                    )
                })
                .collect(),
            vrfs: vrfs
                .iter()
                .map(|(vni, ports, cidrs)| {
                    (
                        *vni,
                        VrfSpec {
                            vni: *vni,
                            vlan: 1001,
                            ports: ports.iter().map(|p| p.to_string()).collect(),
                            prefixes: Prefixes::compact(cidrs.iter().map(|c| c.parse().unwrap())),
                        },
                    )
                })
                .collect(),
            pxe_vlan: 4000,
            vtep: "vtep0".into(),
            vlan_range: VlanRange::default(),
            static_vrfs: BTreeSet::new(),
            routing: Routing {
                agentx: true,
                ..crate::configdb::testkit::routing()
            },
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn ports_in_natural_order_and_stable() {
        let s = spec(
            &[
                ("Ethernet10", PortRole::Underlay),
                ("Ethernet2", PortRole::Underlay),
                ("Ethernet1", PortRole::Unprovisioned),
            ],
            &[],
        );
        let text = render(&s, FrrLines::NONE);
        assert_eq!(text, render(&s.clone(), FrrLines::NONE));
        let l = lines(&text);
        let pos = |needle: &str| l.iter().position(|x| *x == needle).unwrap();
        assert!(pos("interface Ethernet2") < pos("interface Ethernet10"));
        assert!(
            pos(" neighbor Ethernet2 interface peer-group FABRIC")
                < pos(" neighbor Ethernet10 interface peer-group FABRIC")
        );
        // Unprovisioned ports have no routing configuration.
        assert!(!text.contains("Ethernet1\n") && !text.contains("Ethernet1 "));
        // No tenant VRF, no management route, no set-src.
        assert!(!text.contains("vrf Vrf"));
        assert!(!text.contains("nexthop-vrf"));
        assert!(!text.contains(RM_SET_SRC));
        assert!(!text.contains("line vty"));
    }

    #[test]
    fn firewall_maps_per_family() {
        let filter = Filter {
            prefixes: Prefixes::compact(
                ["10.1.0.0/24", "2001:db8::/32"]
                    .iter()
                    .map(|c| c.parse().unwrap()),
            ),
            vnis: vec![5, 7],
        };
        let text = render(
            &spec(&[("Ethernet0", PortRole::Firewall { filter })], &[]),
            FrrLines::NONE,
        );
        let ipv4 = text.find("address-family ipv4 unicast").unwrap();
        let ipv6 = text.find("address-family ipv6 unicast").unwrap();
        let evpn = text.find("address-family l2vpn evpn").unwrap();
        let bind4 = text
            .find("neighbor Ethernet0 route-map fw-Ethernet0-in in")
            .unwrap();
        let bind6 = text
            .find("neighbor Ethernet0 route-map fw-Ethernet0-in6 in")
            .unwrap();
        assert!(ipv4 < bind4 && bind4 < ipv6 && ipv6 < bind6 && bind6 < evpn);
        for l in [
            "ip prefix-list fw-Ethernet0-in-prefixes permit 10.1.0.0/24 le 32",
            "ipv6 prefix-list fw-Ethernet0-in6-prefixes permit 2001:db8::/32 le 128",
            " match ipv6 address prefix-list fw-Ethernet0-in6-prefixes",
            "route-map fw-Ethernet0-vni permit 10",
            " match evpn vni 5",
            "route-map fw-Ethernet0-vni permit 11",
            " match evpn vni 7",
            "  neighbor Ethernet0 route-map fw-Ethernet0-vni out",
        ] {
            assert!(lines(&text).contains(&l), "missing {l:?} in\n{text}");
        }
    }

    #[test]
    fn removals_first_drops_what_leaves_and_keeps_the_rest() {
        let filter = |cidr: &str| Filter {
            prefixes: Prefixes::compact([cidr.parse().unwrap()]),
            vnis: vec![],
        };
        let old = spec(
            &[
                (
                    "Ethernet0",
                    PortRole::Firewall {
                        filter: filter("10.0.0.0/8"),
                    },
                ),
                ("Ethernet1", PortRole::Tenant { vni: 7 }),
                ("Ethernet2", PortRole::Tenant { vni: 8 }),
                ("Ethernet3", PortRole::Tenant { vni: 8 }),
                ("Ethernet4", PortRole::Underlay),
            ],
            &[
                (7, &["Ethernet1"], &["10.7.0.0/16"]),
                (8, &["Ethernet2", "Ethernet3"], &["10.8.0.0/16"]),
            ],
        );
        // Only additions and a firewall's new filter: nothing leaves FRR.
        let mut grown = old.clone();
        grown.ports.get_mut("Ethernet0").unwrap().role = PortRole::Firewall {
            filter: filter("10.1.0.0/16"),
        };
        assert_eq!(removals_first(&old, &grown), None);
        assert_eq!(removals_first(&old, &old), None);

        // The firewall is deprovisioned, Ethernet2 moves to VRF 7, VRF 8
        // loses Ethernet3 too and goes: FRR first loses the firewall's
        // neighbour, Ethernet2's and Ethernet3's sessions and VRF 8.
        let new = spec(
            &[
                ("Ethernet0", PortRole::Unprovisioned),
                ("Ethernet1", PortRole::Tenant { vni: 7 }),
                ("Ethernet2", PortRole::Tenant { vni: 7 }),
                ("Ethernet3", PortRole::Unprovisioned),
                ("Ethernet4", PortRole::Underlay),
            ],
            &[(7, &["Ethernet1", "Ethernet2"], &["10.7.0.0/16"])],
        );
        let mid = removals_first(&old, &new).unwrap();
        let role = |n: &str| mid.ports[n].role.clone();
        assert_eq!(role("Ethernet0"), PortRole::Unprovisioned);
        assert_eq!(role("Ethernet1"), PortRole::Tenant { vni: 7 });
        assert_eq!(
            role("Ethernet2"),
            PortRole::Unprovisioned,
            "not yet in VRF 7"
        );
        assert_eq!(role("Ethernet4"), PortRole::Underlay);
        assert_eq!(mid.vrfs.keys().copied().collect::<Vec<_>>(), [7]);
        assert_eq!(mid.vrfs[&7].ports, ["Ethernet1"]);
        let text = render(&mid, FrrLines::NONE);
        for gone in [
            "neighbor Ethernet0 interface",
            "neighbor Ethernet2 interface",
            "neighbor Ethernet3 interface",
            "router bgp 4200000011 vrf Vrf8",
        ] {
            assert!(!text.contains(gone), "{gone} still in\n{text}");
        }
        for kept in [
            "neighbor Ethernet1 interface peer-group MACHINE",
            "neighbor Ethernet4 interface peer-group FABRIC",
        ] {
            assert!(text.contains(kept), "{kept} missing in\n{text}");
        }
    }

    #[test]
    fn tenant_families_follow_prefixes() {
        let s = spec(
            &[
                ("Ethernet1", PortRole::Tenant { vni: 7 }),
                ("Ethernet2", PortRole::Tenant { vni: 8 }),
            ],
            &[
                (7, &["Ethernet1"], &["2001:db8::/48"]),
                (8, &["Ethernet2"], &[]),
            ],
        );
        let text = render(&s, FrrLines::NONE);
        let vrf7 = &text[text.find("router bgp 4200000011 vrf Vrf7").unwrap()..];
        let vrf7 = &vrf7[..vrf7.find("\nexit\n").unwrap()];
        assert!(!vrf7.contains("address-family ipv4 unicast"), "{vrf7}");
        assert!(vrf7.contains("  neighbor MACHINE activate"));
        assert!(vrf7.contains("  neighbor MACHINE route-map Vrf7-in6 in"));
        assert!(vrf7.contains("  advertise ipv6 unicast"));
        assert!(!vrf7.contains("advertise ipv4 unicast"));
        let vrf8 = &text[text.find("router bgp 4200000011 vrf Vrf8").unwrap()..];
        let vrf8 = &vrf8[..vrf8.find("\nexit\n").unwrap()];
        assert!(!vrf8.contains("address-family"), "{vrf8}");
        assert!(!text.contains("Vrf8-in"));
        // Tenant interfaces carry no vrf qualifier (FRR 8.4 drops it).
        assert!(lines(&text).contains(&"interface Ethernet1"));
        assert!(!text.contains("interface Ethernet1 vrf"));
        assert!(lines(&text).contains(&"vrf Vrf7"));
        assert!(lines(&text).contains(&" vni 7"));
    }

    #[test]
    fn routing_options() {
        let mut s = spec(&[], &[]);
        s.routing.agentx = false;
        s.routing.set_src_loopback = true;
        s.routing.log_level = LogLevel::Error;
        s.routing.management_gateway = Some("192.168.0.1".parse().unwrap());
        s.routing.management_routes = vec!["10.10.0.0/16".parse().unwrap()];
        let text = render(&s, FrrLines::NONE);
        let l = lines(&text);
        assert!(!l.contains(&"agentx"));
        assert!(l.contains(&"log syslog errors"));
        assert!(l.contains(&"ip route 0.0.0.0/0 192.168.0.1 nexthop-vrf mgmt"));
        assert!(l.contains(&"ip route 10.10.0.0/16 192.168.0.1 nexthop-vrf mgmt"));
        assert!(l.contains(&" set src 10.0.0.11"));
        assert!(l.contains(&"ip protocol bgp route-map RM_SET_SRC"));
        s.routing.management_gateway = Some("2001:db8::1".parse().unwrap());
        s.routing.management_routes = vec![];
        assert!(
            render(&s, FrrLines::NONE).contains("ipv6 route ::/0 2001:db8::1 nexthop-vrf mgmt\n")
        );
    }

    #[test]
    fn log_levels() {
        assert_eq!(syslog_level(LogLevel::Debug), "debugging");
        assert_eq!(syslog_level(LogLevel::Info), "informational");
        assert_eq!(syslog_level(LogLevel::Warn), "warnings");
        assert_eq!(syslog_level(LogLevel::Error), "errors");
    }

    #[test]
    fn empty_spec_renders_peer_groups() {
        let text = render(&spec(&[], &[]), FrrLines::NONE);
        assert!(text.contains(" neighbor FABRIC peer-group\n"));
        assert!(text.contains(" neighbor FIREWALL peer-group\n"));
    }

    /// FRR 10.3's frr-reload.py deletes a missing interface stanza with
    /// `no interface <port>`, which FRR refuses for a port that exists (its
    /// `lib/if.c`, "only inactive interfaces can be deleted"). With
    /// `idle_interfaces` every port without a session keeps an empty stanza
    /// — also in the configuration installed before CONFIG_DB's removals —
    /// so a port leaving its role loses its settings line by line; nothing
    /// else in the file differs.
    #[test]
    fn ports_without_a_session_keep_an_empty_interface_stanza_where_frr_needs_it() {
        let old = spec(
            &[
                ("Ethernet10", PortRole::Unprovisioned),
                ("Ethernet1", PortRole::Tenant { vni: 7 }),
                ("Ethernet2", PortRole::Unprovisioned),
                ("Ethernet4", PortRole::Underlay),
            ],
            &[(7, &["Ethernet1"], &["10.7.0.0/16"])],
        );
        let idle = FrrLines {
            idle_interfaces: true,
            ..FrrLines::NONE
        };
        let plain = render(&old, FrrLines::NONE);
        let text = render(&old, idle);
        for l in ["interface Ethernet2", "interface Ethernet10"] {
            assert!(!lines(&plain).contains(&l), "{plain}");
        }
        let pos = |l: &str| lines(&text).iter().position(|x| *x == l).unwrap();
        // After the session ports' stanzas, in natural order, each empty.
        assert!(pos("interface Ethernet1") < pos("interface Ethernet2"));
        assert!(pos("interface Ethernet2") < pos("interface Ethernet10"));
        for port in ["Ethernet2", "Ethernet10"] {
            let at = pos(&format!("interface {port}"));
            assert_eq!(lines(&text)[at + 1], "exit", "{text}");
        }
        let empty = |port: &str| format!("interface {port}\nexit\n!\n");
        assert_eq!(
            text.replace(&empty("Ethernet2"), "")
                .replace(&empty("Ethernet10"), ""),
            plain
        );

        // Ethernet1 leaves VRF 7: before CONFIG_DB's removals FRR gets a
        // file where it has an empty stanza instead of none.
        let new = spec(
            &[
                ("Ethernet10", PortRole::Unprovisioned),
                ("Ethernet1", PortRole::Unprovisioned),
                ("Ethernet2", PortRole::Unprovisioned),
                ("Ethernet4", PortRole::Underlay),
            ],
            &[],
        );
        let mid = render(&removals_first(&old, &new).unwrap(), idle);
        let at = lines(&mid)
            .iter()
            .position(|x| *x == "interface Ethernet1")
            .unwrap();
        assert_eq!(lines(&mid)[at + 1], "exit", "{mid}");
        assert!(!lines(&render(&new, FrrLines::NONE)).contains(&"interface Ethernet1"));
    }

    /// The zebra lines of a flavour come right after the logging lines, in
    /// the order FRR shows them; the operator's lines close the file.
    #[test]
    fn flavour_lines_and_operator_lines() {
        let mut s = spec(&[], &[]);
        let plain = render(&s, FrrLines::NONE);
        assert!(!plain.contains("fpm") && !plain.contains("nexthop kernel"));
        let all = FrrLines {
            no_kernel_nexthop_groups: true,
            fpm: true,
            idle_interfaces: false,
        };
        let text = render(&s, all);
        let l = lines(&text);
        let at = l.iter().position(|x| *x == "log facility local4").unwrap();
        assert_eq!(
            l[at + 2..at + 5],
            [
                "no zebra nexthop kernel enable",
                "fpm address 127.0.0.1",
                "no fpm use-next-hop-groups"
            ]
        );
        // Nothing else differs.
        let without: Vec<&str> = l
            .iter()
            .copied()
            .filter(|x| !all.lines().contains(x) && !x.starts_with("! SONiC's bgp start script"))
            .collect();
        assert_eq!(without, lines(&plain));
        s.routing.extra_config = vec!["ip nht resolve-via-default".into(), "bfd".into()];
        let text = render(&s, FrrLines::NONE);
        assert!(
            text.ends_with(
                "! frr_extra_config: the operator's lines\nip nht resolve-via-default\nbfd\n!\n"
            ),
            "{text}"
        );
    }
}
