//! Building and validating a [`SwitchSpec`] (pure).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::names::{identifier_problem, ifname_problem, quoted};
use super::{
    Filter, LocalFacts, MAX_VNI, NicDesc, PortRole, PortSpec, Prefixes, Problem, Problems, Routing,
    SwitchDesc, SwitchSpec, VrfSpec, vni_of_vrf_name, vrf_name,
};
use crate::config::Config;

/// Build the validated desired state, or every reason it is invalid.
///
/// Semantics follow metal-core's `buildSwitcherConfig`: spine uplinks are the
/// underlay and are skipped as nics (their admin status still applies),
/// additional bridge ports are skipped, an empty VRF means unprovisioned,
/// `default` means firewall, `vrf<N>` means tenant VRF `Vrf<N>` whose prefix
/// list is the union of its ports' filter CIDRs.
pub fn build(desc: &SwitchDesc, cfg: &Config, facts: &LocalFacts) -> Result<SwitchSpec, Problems> {
    let mut b = Builder {
        cfg,
        facts,
        problems: Vec::new(),
        known_ports: None,
    };
    let spec = b.run(desc);
    if b.problems.is_empty() {
        Ok(spec)
    } else {
        Err(Problems(b.problems))
    }
}

struct Builder<'a> {
    cfg: &'a Config,
    facts: &'a LocalFacts,
    problems: Vec<Problem>,
    /// `" (known: first..last, N ports)"`, once computed.
    known_ports: Option<String>,
}

impl Builder<'_> {
    fn problem(&mut self, object: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            message: message.into(),
        });
    }

    /// A port that is not in PORT; left out when PORT is empty altogether,
    /// which is reported once.
    fn port_problem(&mut self, object: impl Into<String>, message: impl Into<String>) {
        if !self.facts.ports.is_empty() {
            self.problem(object, message);
        }
    }

    fn run(&mut self, desc: &SwitchDesc) -> SwitchSpec {
        // The configuration's own checks, the same `check-config` runs.
        for p in self.cfg.problems() {
            self.problem("configuration", p);
        }
        let hostname = match self.cfg.hostname.clone().filter(|h| !h.is_empty()) {
            Some(h) => h,
            None => {
                self.problem(
                    "hostname",
                    "is not set and the system host name is unknown; set hostname to this \
                     switch's id",
                );
                desc.id.clone()
            }
        };
        if desc.id != hostname {
            self.problem(
                "switch document",
                format!(
                    "describes switch {}, but this switch is {} (hostname); the desired state \
                     of another switch is never applied",
                    quoted(&desc.id),
                    quoted(&hostname)
                ),
            );
        }
        if desc.nics.is_empty() {
            // metal-api reference §1.2/§1.3: a switch is registered with one
            // nic per port and `nics` is required; v2 omits an empty list
            // (§3.3), so missing, null and [] are the same and none of them
            // describes a registered switch. Taken literally it would delete
            // every tenant VRF, VLAN and binding.
            self.problem(
                "switch document",
                "lists no nics (`nics` is missing, null or empty); a registered switch has one \
                 nic per port, so this is refused instead of removing every tenant \
                 configuration; check the switch in the metal API",
            );
        }

        let vtep = self.vtep();
        if self.facts.ports.is_empty() {
            // One problem instead of one per port.
            self.problem(
                "CONFIG_DB PORT",
                "the PORT table is empty: SONiC has not created its ports yet, or the \
                 config_db.json snapshot (--configdb) lacks the PORT table",
            );
        }
        let static_vrfs: BTreeSet<String> = self.cfg.static_vrfs.iter().cloned().collect();

        // Ports: spine uplinks are the underlay; nics give the rest.
        let mut ports: BTreeMap<String, PortSpec> = BTreeMap::new();
        // The parsed filter CIDRs of each tenant VRF's member nics.
        let mut tenant_nets: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
        let bridge_ports: BTreeSet<String> = self
            .cfg
            .additional_bridge_ports
            .iter()
            .filter_map(|p| self.resolve_config_port(p))
            .collect();
        let uplinks: Vec<String> = self
            .cfg
            .spine_uplinks
            .iter()
            .filter_map(|p| match self.resolve_config_port(p) {
                Some(name) => Some(name),
                None => {
                    let msg = self.not_a_port(p);
                    self.port_problem(format!("spine uplink {p}"), msg);
                    None
                }
            })
            .collect();
        for name in &uplinks {
            self.add_port(&mut ports, name, PortRole::Underlay, None, None);
        }

        for nic in &desc.nics {
            let Some(name) = self.resolve_nic(nic) else {
                continue;
            };
            if uplinks.contains(&name) {
                // The underlay: only the admin status comes from the nic. A
                // nic the API connects (firewall or machine) cannot be an
                // uplink: refused, not silently turned into one.
                match nic.vrf.as_deref().unwrap_or("") {
                    "" => {
                        if let Some(p) = ports.get_mut(&name) {
                            p.admin = nic.admin;
                        }
                    }
                    vrf => {
                        let role = if vrf == "default" {
                            "a firewall port"
                        } else {
                            "a machine port"
                        };
                        self.problem(
                            format!("port {name}"),
                            format!(
                                "is a spine uplink (spine_uplinks), but the API makes it {role} \
                                 (nic {}, vrf {}); fix spine_uplinks or the switch's nics in the API",
                                quoted(&nic.name),
                                quoted(vrf)
                            ),
                        );
                    }
                }
                continue;
            }
            if bridge_ports.contains(&name) {
                continue;
            }
            let Some((role, nets)) = self.role(&nic.name, nic) else {
                continue;
            };
            let vni = match role {
                PortRole::Tenant { vni } => Some(vni),
                _ => None,
            };
            if self.add_port(&mut ports, &name, role, nic.admin, Some(&nic.name))
                && let Some(vni) = vni
            {
                tenant_nets.entry(vni).or_default().extend(nets);
            }
        }

        let vrfs = self.vrfs(&ports, tenant_nets, &static_vrfs, vtep.as_deref());
        self.check_pxe(&ports);
        self.check_local_conflicts(&ports, &static_vrfs);
        let routing = self.routing();

        SwitchSpec {
            hostname,
            ports,
            vrfs,
            pxe_vlan: self.cfg.pxe_vlan_id,
            vtep: vtep.unwrap_or_default(),
            vlan_range: self.cfg.vlan_range,
            static_vrfs,
            routing,
        }
    }

    fn vtep(&mut self) -> Option<String> {
        match self.facts.vteps.as_slice() {
            [one] => {
                if let Some(p) = identifier_problem(one) {
                    self.problem(format!("VXLAN_TUNNEL {}", quoted(one)), p);
                    return None;
                }
                Some(one.clone())
            }
            [] => {
                self.problem(
                    "CONFIG_DB VXLAN_TUNNEL",
                    "no VTEP is configured; the base configuration must define exactly one \
                     VXLAN_TUNNEL entry (with src_ip) before the agent can configure the switch",
                );
                None
            }
            many => {
                self.problem(
                    "CONFIG_DB VXLAN_TUNNEL",
                    format!(
                        "{} VTEPs are configured ({}); exactly one is supported",
                        many.len(),
                        many.join(", ")
                    ),
                );
                None
            }
        }
    }

    /// A port named in the configuration: its kernel name or its alias.
    fn resolve_config_port(&self, p: &str) -> Option<String> {
        if self.facts.ports.contains_key(p) {
            return Some(p.to_owned());
        }
        self.facts
            .ports
            .iter()
            .find(|(_, alias)| alias.as_deref() == Some(p))
            .map(|(name, _)| name.clone())
    }

    /// The kernel name of a nic, per naming schema; records a problem if none.
    fn resolve_nic(&mut self, nic: &NicDesc) -> Option<String> {
        if let Some(p) = identifier_problem(&nic.name) {
            self.problem(format!("nic {}", quoted(&nic.name)), format!("name {p}"));
            return None;
        }
        if self.cfg.interface_naming_schema.nic_name_is_alias() {
            let found = self
                .facts
                .ports
                .iter()
                .find(|(_, alias)| alias.as_deref() == Some(nic.name.as_str()))
                .map(|(name, _)| name.clone());
            if found.is_none() {
                self.port_problem(
                    format!("nic {}", nic.name),
                    format!(
                        "no port in CONFIG_DB PORT has this alias (interface_naming_schema = {:?})",
                        self.cfg.interface_naming_schema
                    ),
                );
            }
            return found;
        }
        if self.facts.ports.contains_key(&nic.name) {
            Some(nic.name.clone())
        } else {
            let msg = self.not_a_port(&nic.name);
            self.port_problem(format!("port {}", nic.name), msg);
            None
        }
    }

    fn not_a_port(&mut self, name: &str) -> String {
        // The range of known ports, computed once: a document may name
        // thousands of unknown ports.
        let known = self.known_ports.get_or_insert_with(|| {
            let mut known: Vec<&str> = self.facts.ports.keys().map(String::as_str).collect();
            known.sort_by(|a, b| natural_cmp(a, b));
            match (known.first(), known.last()) {
                (Some(first), Some(last)) => {
                    format!(" (known: {first}..{last}, {} ports)", known.len())
                }
                _ => String::new(),
            }
        });
        format!("{name} is not in CONFIG_DB PORT{known}")
    }

    /// The role of a nic and, for a tenant port, its parsed filter CIDRs.
    fn role(&mut self, nic_name: &str, nic: &NicDesc) -> Option<(PortRole, Vec<IpNet>)> {
        let object = || format!("nic {nic_name}");
        match nic.vrf.as_deref().unwrap_or("") {
            "" => Some((PortRole::Unprovisioned, Vec::new())),
            "default" => {
                let prefixes = Prefixes::compact(self.parse_cidrs(nic_name, &nic.filter.cidrs));
                let mut vnis = BTreeSet::new();
                for v in &nic.filter.vnis {
                    match parse_vni(v) {
                        Ok(n) => {
                            vnis.insert(n);
                        }
                        Err(m) => self.problem(object(), format!("filter VNI {m}")),
                    }
                }
                let filter = Filter {
                    prefixes,
                    vnis: vnis.into_iter().collect(),
                };
                Some((PortRole::Firewall { filter }, Vec::new()))
            }
            vrf => {
                if let Some(p) = identifier_problem(vrf) {
                    self.problem(object(), format!("VRF {p}"));
                    return None;
                }
                // The union of the members' CIDRs is compacted per VRF later.
                let nets = self.parse_cidrs(nic_name, &nic.filter.cidrs);
                // Only the API's own form `vrf<VNI>` (metal-api reference
                // §1.3: `fmt.Sprintf("vrf%d")`): `vrf+5`, `vrf0104009` or a
                // bare number would be silently read as another name.
                let parsed = match vrf.strip_prefix("vrf") {
                    Some(digits) => parse_vni(digits).map_err(|m| format!(": VNI {m}")),
                    None => Err(String::new()),
                };
                match parsed {
                    Ok(vni) => Some((PortRole::Tenant { vni }, nets)),
                    Err(m) => {
                        self.problem(
                            object(),
                            format!(
                                "VRF {} is not empty, \"default\" or \"vrf<VNI>\"{m}",
                                quoted(vrf)
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    /// Parse filter CIDRs, recording every one that is not a prefix.
    fn parse_cidrs(&mut self, nic_name: &str, cidrs: &[String]) -> Vec<IpNet> {
        let mut nets = Vec::with_capacity(cidrs.len());
        for c in cidrs {
            match c.parse::<IpNet>() {
                Ok(n) => nets.push(n),
                Err(_) => self.problem(
                    format!("nic {nic_name}"),
                    format!("filter CIDR {} is not an IP prefix", quoted(c)),
                ),
            }
        }
        nets
    }

    /// Add a managed port; `nic` is the API nic it came from (`None`: the
    /// spine uplinks). Returns whether it was added (not a duplicate).
    fn add_port(
        &mut self,
        ports: &mut BTreeMap<String, PortSpec>,
        name: &str,
        role: PortRole,
        admin: Option<super::AdminStatus>,
        nic: Option<&str>,
    ) -> bool {
        if let Some(existing) = ports.get(name) {
            // Underlay ports come from spine_uplinks, all others from nics.
            let first = match existing.role {
                PortRole::Underlay => "spine_uplinks".to_owned(),
                _ => format!("nic {name}"),
            };
            let why = nic.map_or_else(|| "spine_uplinks".to_owned(), |n| format!("nic {n}"));
            let msg = if existing.role == role {
                format!("listed twice ({first} and {why})")
            } else {
                format!(
                    "in two roles: {} ({first}) and {} ({why})",
                    existing.role.describe(),
                    role.describe()
                )
            };
            self.problem(format!("port {name}"), msg);
            return false;
        }
        ports.insert(
            name.to_owned(),
            PortSpec {
                name: name.to_owned(),
                role,
                admin,
            },
        );
        true
    }

    fn vrfs(
        &mut self,
        ports: &BTreeMap<String, PortSpec>,
        mut tenant_nets: BTreeMap<u32, Vec<IpNet>>,
        static_vrfs: &BTreeSet<String>,
        vtep: Option<&str>,
    ) -> BTreeMap<u32, VrfSpec> {
        // Members and the union of their CIDRs, per VNI.
        let mut members: BTreeMap<u32, (Vec<String>, Vec<IpNet>)> = BTreeMap::new();
        for p in ports.values() {
            if let PortRole::Tenant { vni } = p.role {
                let m = members.entry(vni).or_default();
                m.0.push(p.name.clone());
                if m.1.is_empty() {
                    m.1 = tenant_nets.remove(&vni).unwrap_or_default();
                }
            }
        }

        if !members.is_empty() {
            self.check_nvo(vtep);
        }

        let range = self.cfg.vlan_range;
        let mut taken: BTreeSet<u16> = self.facts.used_vlans.clone();
        taken.extend(self.facts.foreign_vlans.keys());
        taken.insert(self.cfg.pxe_vlan_id);
        let mut vrfs = BTreeMap::new();
        let mut need_vlan = Vec::new();
        for (vni, (ports, nets)) in members {
            let name = vrf_name(vni);
            let object = || format!("VRF Vrf{vni}");
            if static_vrfs.contains(&name) {
                self.problem(
                    object(),
                    format!(
                        "is listed in static_vrfs but the API assigns ports to it ({})",
                        ports.join(", ")
                    ),
                );
                continue;
            }
            if let Some(user) = self.facts.foreign_vnis.get(&vni) {
                self.problem(object(), format!("VNI {vni} is already used by {user}"));
                continue;
            }
            if let Some(p) = ifname_problem(&name) {
                self.problem(object(), p);
            }
            let vlan = self.facts.tenant_vlans.get(&vni).copied();
            if let Some(v) = vlan {
                if let Some(holder) = self.facts.foreign_vlans.get(&v) {
                    self.problem(object(), format!("its VLAN Vlan{v} collides with {holder}"));
                }
            } else {
                need_vlan.push(vni);
            }
            vrfs.insert(
                vni,
                VrfSpec {
                    vni,
                    vlan: vlan.unwrap_or(0),
                    ports,
                    prefixes: Prefixes::compact(nets),
                },
            );
        }
        // New VRFs get the lowest free id of the range, in VNI order. Ids that
        // exist in CONFIG_DB (even ones being deleted now) are never reused in
        // the same reconcile, so no key is deleted and re-created in one plan.
        let mut free = range.iter().filter(|v| !taken.contains(v));
        for vni in need_vlan {
            match free.next() {
                Some(v) => {
                    if let Some(vrf) = vrfs.get_mut(&vni) {
                        vrf.vlan = v;
                    }
                }
                None => {
                    self.problem(
                        format!("VRF {}", vrf_name(vni)),
                        format!("no free VLAN id left in vlan_range {range}"),
                    );
                    vrfs.remove(&vni);
                }
            }
        }
        if let Some(vtep) = vtep {
            for vrf in vrfs.values() {
                let dev = format!("{vtep}-{}", vrf.vlan);
                if let Some(p) = ifname_problem(&dev) {
                    self.problem(
                        format!("VRF {}", vrf.name()),
                        format!("the VXLAN device name {p}; use a shorter VTEP name"),
                    );
                }
            }
        }
        vrfs
    }

    fn check_nvo(&mut self, vtep: Option<&str>) {
        let nvos = &self.facts.nvos;
        if nvos.is_empty() {
            self.problem(
                "CONFIG_DB VXLAN_EVPN_NVO",
                "no EVPN NVO is configured; tenant VRFs need exactly one VXLAN_EVPN_NVO entry \
                 in the base configuration",
            );
        } else if let Some(vtep) = vtep
            && !nvos.values().any(|v| v == vtep)
        {
            self.problem(
                "CONFIG_DB VXLAN_EVPN_NVO",
                format!("no NVO has source_vtep {}", quoted(vtep)),
            );
        }
    }

    fn check_pxe(&mut self, ports: &BTreeMap<String, PortSpec>) {
        // The range checks of pxe_vlan_id are the configuration's (run()).
        let pxe = self.cfg.pxe_vlan_id;
        let unprovisioned = ports
            .values()
            .filter(|p| p.role == PortRole::Unprovisioned)
            .count();
        if unprovisioned > 0 && !self.facts.vlans.contains(&pxe) {
            self.problem(
                format!("PXE VLAN Vlan{pxe}"),
                format!(
                    "does not exist in CONFIG_DB VLAN, but {unprovisioned} unprovisioned port(s) \
                     must join it; set pxe_vlan_id to the PXE VLAN of the base configuration"
                ),
            );
        }
    }

    /// Objects the agent does not own that stand where it must write.
    fn check_local_conflicts(
        &mut self,
        ports: &BTreeMap<String, PortSpec>,
        static_vrfs: &BTreeSet<String>,
    ) {
        let owned_vrf = |v: &str| vni_of_vrf_name(v).is_some() && !static_vrfs.contains(v);
        for p in ports.values() {
            let object = || format!("port {}", p.name);
            let current = self.facts.interfaces.get(&p.name);
            // The INTERFACE binding wanted: None = no INTERFACE entry,
            // Some(None) = unbound, Some(Some(vni)) = bound to Vrf<vni>.
            let desired: Option<Option<u32>> = match &p.role {
                PortRole::Unprovisioned => None,
                PortRole::Underlay | PortRole::Firewall { .. } => Some(None),
                PortRole::Tenant { vni } => Some(Some(*vni)),
            };
            if let Some(Some(bound)) = current
                && !owned_vrf(bound)
            {
                self.problem(
                    object(),
                    format!(
                        "is bound to VRF {bound}, which the agent does not own (static or \
                         foreign); it would have to become {}",
                        p.role.describe()
                    ),
                );
                continue;
            }
            let interface_changes = match (current, &desired) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(cur), Some(want)) => cur.as_deref().and_then(vni_of_vrf_name) != *want,
            };
            if interface_changes && self.facts.interface_ips.contains(&p.name) {
                self.problem(
                    object(),
                    "has IP addresses (INTERFACE|<port>|<prefix>), which the agent does not \
                     manage; its INTERFACE entry cannot be replaced while they exist",
                );
            }
            if desired.is_some() {
                let foreign: Vec<String> = self
                    .facts
                    .memberships
                    .get(&p.name)
                    .into_iter()
                    .flatten()
                    .filter(|v| **v != self.cfg.pxe_vlan_id && !self.owned_vlan(**v))
                    .map(|v| format!("Vlan{v}"))
                    .collect();
                if !foreign.is_empty() {
                    self.problem(
                        object(),
                        format!(
                            "is a member of {}, which the agent does not own; a {} port must \
                             leave every VLAN",
                            foreign.join(", "),
                            p.role.describe()
                        ),
                    );
                }
            }
        }
    }

    fn owned_vlan(&self, vid: u16) -> bool {
        self.facts.owned_vlans.contains(&vid)
    }

    fn routing(&mut self) -> Routing {
        // asn and the management routes are checked with the configuration (run()).
        Routing {
            asn: self.cfg.asn,
            loopback: self.cfg.loopback_ip,
            log_level: self.cfg.log_level,
            management_gateway: self.cfg.management_gateway,
            management_routes: self
                .cfg
                .additional_mgmt_routes
                .iter()
                .map(IpNet::trunc)
                .collect(),
            set_src_loopback: self.cfg.set_src_loopback,
            agentx: self.cfg.frr_agentx,
        }
    }
}

/// A VNI in 1..=16777215, written in canonical decimal (digits only, no
/// sign, no leading zero).
fn parse_vni(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a number", quoted(s)));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!(
            "{} has a leading zero; the API writes VNIs without one",
            quoted(s)
        ));
    }
    match s.parse::<u64>() {
        Ok(n) if (1..=u64::from(MAX_VNI)).contains(&n) => Ok(n as u32),
        Ok(n) => Err(format!("{n} is outside 1..{MAX_VNI}")),
        Err(_) => Err(format!("{} is outside 1..{MAX_VNI}", quoted(s))),
    }
}

/// Compare names so that `Ethernet2` sorts before `Ethernet10`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> (String, u64) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head.to_owned(), tail.parse().unwrap_or(0))
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}
