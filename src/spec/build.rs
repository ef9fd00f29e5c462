//! Building and validating a [`SwitchSpec`] (pure).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::{
    Filter, LocalFacts, MAX_VNI, NicDesc, PortRole, PortSpec, Prefixes, Problem, Problems, Routing,
    SwitchDesc, SwitchSpec, VrfSpec, vni_of_vrf_name, vrf_name,
};
use crate::config::Config;
use crate::names::{SHOWN_CHARS, escaped, identifier_problem, ifname_problem, quoted};

/// The parsed filter CIDRs of each tenant VRF's member nics, by VNI.
type TenantNets = BTreeMap<u32, Vec<IpNet>>;

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

/// The spec of `desc` from the spec `prev` built (without problems) from
/// `prev_desc` with the same configuration and local facts, when the two
/// documents differ only in the BGP filters of some nics: only those nics
/// are validated again, everything else is reused — `prev` itself
/// (borrowed) when the new filters come to the same spec, the common case
/// of a document that changed without changing the switch. `None` when
/// that does not apply (the caller builds anew); the result is exactly
/// what [`build`] returns.
pub fn rebuild<'p>(
    prev: &'p SwitchSpec,
    prev_desc: &SwitchDesc,
    desc: &SwitchDesc,
    cfg: &Config,
    facts: &LocalFacts,
) -> Option<Result<Cow<'p, SwitchSpec>, Problems>> {
    if prev_desc.id != desc.id || prev_desc.nics.len() != desc.nics.len() {
        return None;
    }
    let mut changed = Vec::new();
    for (old, new) in prev_desc.nics.iter().zip(&desc.nics) {
        if old == new {
            continue;
        }
        if old.name != new.name || old.vrf != new.vrf || old.admin != new.admin {
            return None;
        }
        changed.push(new);
    }
    let mut b = Builder {
        cfg,
        facts,
        problems: Vec::new(),
        known_ports: None,
    };
    // What differs from `prev`: firewall roles by port, tenant prefixes by VNI.
    let mut roles: Vec<(String, PortRole)> = Vec::new();
    let mut vnis = BTreeSet::new();
    for nic in changed {
        // The port the nic became, as `prev` has it (uplinks, additional
        // bridge ports and unprovisioned ports ignore the filter).
        let name = b.resolve_nic(nic)?;
        let Some(port) = prev.ports.get(&name) else {
            continue;
        };
        match &port.role {
            PortRole::Firewall { .. } => {
                let (role, _) = b.role(&nic.name, nic)?;
                if !matches!(role, PortRole::Firewall { .. }) {
                    return None;
                }
                if role != port.role {
                    roles.push((name, role));
                }
            }
            PortRole::Tenant { vni } => {
                vnis.insert(*vni);
            }
            PortRole::Underlay | PortRole::Unprovisioned => {}
        }
    }
    let mut prefixes: Vec<(u32, Prefixes)> = Vec::new();
    for vni in vnis {
        let vrf = prev.vrfs.get(&vni)?;
        let member = format!("vrf{vni}");
        let mut nets = Vec::new();
        for nic in desc
            .nics
            .iter()
            .filter(|n| n.vrf.as_deref() == Some(&member))
        {
            let name = b.resolve_nic(nic)?;
            if vrf.ports.contains(&name) {
                nets.extend(b.parse_cidrs(&nic.name, &nic.filter.cidrs));
            }
        }
        let compacted = Prefixes::compact(nets);
        if compacted != vrf.prefixes {
            prefixes.push((vni, compacted));
        }
    }
    // A problem in a filter: build anew, for every problem in its order.
    if !b.problems.is_empty() {
        return None;
    }
    if roles.is_empty() && prefixes.is_empty() {
        return Some(Ok(Cow::Borrowed(prev)));
    }
    let mut spec = prev.clone();
    for (name, role) in roles {
        if let Some(port) = spec.ports.get_mut(&name) {
            port.role = role;
        }
    }
    for (vni, p) in prefixes {
        if let Some(vrf) = spec.vrfs.get_mut(&vni) {
            vrf.prefixes = p;
        }
    }
    Some(Ok(Cow::Owned(spec)))
}

/// The spec `prev` (built without problems from the same document and
/// configuration) for local facts that differ from the ones it was built
/// with only in the `INTERFACE` entries, IP sub-keys and VLAN memberships of
/// `ports`: those facts are read only by the per-port conflict check, so it
/// runs again for these ports alone. Whether `prev` stands, exactly what
/// [`build`] would return; `false` when the check finds a problem (the
/// caller builds anew, for every problem in its order).
pub fn recheck_ports(
    prev: &SwitchSpec,
    cfg: &Config,
    facts: &LocalFacts,
    ports: &BTreeSet<String>,
) -> bool {
    let mut b = Builder {
        cfg,
        facts,
        problems: Vec::new(),
        known_ports: None,
    };
    let touched: BTreeMap<String, PortSpec> = prev
        .ports
        .iter()
        .filter(|(n, _)| ports.contains(*n))
        .map(|(n, p)| (n.clone(), p.clone()))
        .collect();
    b.check_local_conflicts(&touched, &prev.static_vrfs);
    b.problems.is_empty()
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
        let hostname = self.check_document(desc);
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
        let (ports, tenant_nets) = self.ports(desc);
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

    /// The configuration's own checks (the same `check-config` runs), and
    /// that the document describes this switch with its nics. Returns the
    /// switch's host name.
    fn check_document(&mut self, desc: &SwitchDesc) -> String {
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
        hostname
    }

    /// The managed ports: spine uplinks are the underlay; the nics give the
    /// rest. Also the parsed filter CIDRs of each tenant VRF's member nics.
    fn ports(&mut self, desc: &SwitchDesc) -> (BTreeMap<String, PortSpec>, TenantNets) {
        let mut ports: BTreeMap<String, PortSpec> = BTreeMap::new();
        let mut tenant_nets = TenantNets::new();
        let cfg = self.cfg;
        // A port left to the operator that names no port (a typo, another
        // switch model) would let the agent take over the port meant: refused
        // by name, as an unknown spine uplink is.
        let bridge_ports: BTreeSet<String> = self
            .config_ports(
                &cfg.additional_bridge_ports,
                "additional_bridge_ports entry",
            )
            .into_iter()
            .collect();
        let uplinks = self.config_ports(&cfg.spine_uplinks, "spine uplink");
        for name in &uplinks {
            self.add_port(&mut ports, name, PortRole::Underlay, None, None);
        }
        for nic in &desc.nics {
            let Some(name) = self.resolve_nic(nic) else {
                continue;
            };
            if uplinks.contains(&name) {
                self.uplink_nic(&mut ports, &name, nic);
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
        (ports, tenant_nets)
    }

    /// A nic on a spine uplink: the underlay takes only its admin status. A
    /// nic the API connects (firewall or machine) cannot be an uplink:
    /// refused, not silently turned into one.
    fn uplink_nic(&mut self, ports: &mut BTreeMap<String, PortSpec>, name: &str, nic: &NicDesc) {
        match nic.vrf.as_deref().unwrap_or("") {
            "" => {
                if let Some(p) = ports.get_mut(name) {
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

    /// The ports a list of the configuration names (kernel names or
    /// aliases), each resolved by [`Self::resolve_config_port`]; a name that
    /// is no port is a problem of `what`.
    fn config_ports(&mut self, names: &[String], what: &str) -> Vec<String> {
        names
            .iter()
            .filter_map(|p| match self.resolve_config_port(p) {
                Some(found) => found.ok(),
                None => {
                    let msg = self.not_a_port(p);
                    self.port_problem(format!("{what} {}", quoted(p)), msg);
                    None
                }
            })
            .collect()
    }

    /// A port named in the configuration: its kernel name or its alias.
    /// `None`: no such port; `Some(Err(()))`: the PORT key found is not a
    /// valid port name ([`Self::port_key`], a problem is recorded).
    fn resolve_config_port(&mut self, p: &str) -> Option<Result<String, ()>> {
        let facts = self.facts;
        let key = if facts.ports.contains_key(p) {
            p
        } else {
            facts
                .ports
                .iter()
                .find(|(_, alias)| alias.as_deref() == Some(p))
                .map(|(name, _)| name.as_str())?
        };
        Some(self.port_key(key, p).ok_or(()))
    }

    /// A PORT key that reaches CONFIG_DB keys, frr.conf and messages: it
    /// must be a network device name (CONFIG_DB is not trusted to hold only
    /// SONiC's names). `via` is how it was named (itself or an alias).
    fn port_key(&mut self, key: &str, via: &str) -> Option<String> {
        match ifname_problem(key) {
            None => Some(key.to_owned()),
            Some(p) => {
                let via = if via == key {
                    String::new()
                } else {
                    format!(" (alias {})", quoted(via))
                };
                self.problem(
                    format!("CONFIG_DB PORT key {}{via}", quoted(key)),
                    format!("is not a valid port name: {p}"),
                );
                None
            }
        }
    }

    /// The kernel name of a nic, per naming schema; records a problem if none.
    fn resolve_nic(&mut self, nic: &NicDesc) -> Option<String> {
        if let Some(p) = identifier_problem(&nic.name) {
            self.problem(format!("nic {}", quoted(&nic.name)), format!("name {p}"));
            return None;
        }
        if self.cfg.interface_naming_schema.nic_name_is_alias() {
            let facts = self.facts;
            let found = facts
                .ports
                .iter()
                .find(|(_, alias)| alias.as_deref() == Some(nic.name.as_str()));
            if let Some((key, _)) = found {
                return self.port_key(key, &nic.name);
            }
            self.port_problem(
                format!("nic {}", nic.name),
                format!(
                    "no port in CONFIG_DB PORT has this alias (interface_naming_schema = {:?})",
                    self.cfg.interface_naming_schema
                ),
            );
            return None;
        }
        if self.facts.ports.contains_key(&nic.name) {
            self.port_key(&nic.name, &nic.name)
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
                (Some(first), Some(last)) => format!(
                    " (known: {}..{}, {} ports)",
                    escaped(first, SHOWN_CHARS),
                    escaped(last, SHOWN_CHARS),
                    known.len()
                ),
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
                let user = escaped(user, SHOWN_CHARS * 3);
                self.problem(object(), format!("VNI {vni} is already used by {user}"));
                continue;
            }
            if let Some(p) = ifname_problem(&name) {
                self.problem(object(), p);
            }
            let vlan = self.facts.tenant_vlans.get(&vni).copied();
            if let Some(v) = vlan {
                if let Some(holder) = self.facts.foreign_vlans.get(&v) {
                    let holder = escaped(holder, SHOWN_CHARS * 3);
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
                        "is bound to VRF {}, which the agent does not own (static or \
                         foreign); it would have to become {}",
                        escaped(bound, SHOWN_CHARS),
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
            extra_config: self.cfg.frr_extra_config.clone(),
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

#[cfg(test)]
mod tests {
    //! Building a spec from hand-written inputs. The expected roles, MTUs
    //! and VRFs follow README.md ("What the agent writes") and the metal-api
    //! reference (nic `vrf`: `""` unprovisioned, `default` firewall,
    //! `vrf<VNI>` tenant); the refusals follow the name and range rules of
    //! sonic-configdb reference §2.4.
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::spec::{AdminStatus, FilterDesc, MTU_EDGE, MTU_FABRIC};

    fn config(extra: &str) -> Config {
        let text = format!(
            "hostname = \"leaf01\"\nasn = 4200000011\nloopback_ip = \"10.0.0.11\"\n\
             pxe_vlan_id = 3900\nspine_uplinks = [\"Ethernet120\"]\n{extra}"
        );
        Config::from_sources(Some(("t.toml", &text)), Vec::new()).unwrap()
    }

    /// Ports Ethernet0..7 and Ethernet120 (aliases Eth1/1...), one VTEP and
    /// NVO, the PXE VLAN.
    fn facts() -> LocalFacts {
        let mut ports: BTreeMap<String, Option<String>> = (0..8)
            .map(|i| (format!("Ethernet{i}"), Some(format!("Eth1/{}", i + 1))))
            .collect();
        ports.insert("Ethernet120".into(), Some("Eth31/1".into()));
        LocalFacts {
            ports,
            vteps: vec!["vtep".into()],
            nvos: BTreeMap::from([("nvo".into(), "vtep".into())]),
            vlans: BTreeSet::from([3900]),
            used_vlans: BTreeSet::from([3900]),
            ..LocalFacts::default()
        }
    }

    fn nic(name: &str, vrf: &str, cidrs: &[&str], vnis: &[&str]) -> NicDesc {
        NicDesc {
            name: name.into(),
            vrf: (!vrf.is_empty()).then(|| vrf.to_owned()),
            filter: FilterDesc {
                cidrs: cidrs.iter().map(|s| (*s).to_owned()).collect(),
                vnis: vnis.iter().map(|s| (*s).to_owned()).collect(),
            },
            admin: None,
        }
    }

    fn desc(nics: Vec<NicDesc>) -> SwitchDesc {
        SwitchDesc {
            id: "leaf01".into(),
            nics,
        }
    }

    /// Every problem's text, one per line.
    fn problems(d: &SwitchDesc, cfg: &Config, f: &LocalFacts) -> Vec<String> {
        match build(d, cfg, f) {
            Ok(spec) => panic!("accepted: {spec:?}"),
            Err(p) => p.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn has(problems: &[String], needle: &str) -> bool {
        problems.iter().any(|p| p.contains(needle))
    }

    #[test]
    fn roles_mtus_and_a_tenant_vrf() {
        let mut tenant = nic(
            "Ethernet1",
            "vrf104009",
            &["10.1.0.0/25", "10.1.0.128/25"],
            &[],
        );
        tenant.admin = Some(AdminStatus::Up);
        let d = desc(vec![
            nic(
                "Ethernet0",
                "default",
                &["10.0.0.0/24", "2001:db8::/48"],
                &["104009", "7"],
            ),
            tenant,
            nic("Ethernet2", "vrf104009", &["192.168.0.1/32"], &[]),
            nic("Ethernet3", "", &[], &[]),
            nic("Ethernet120", "", &[], &[]),
        ]);
        let s = build(&d, &config(""), &facts()).unwrap();
        assert_eq!(s.hostname, "leaf01");
        assert_eq!(s.vtep, "vtep");
        assert_eq!(s.pxe_vlan, 3900);
        let roles: BTreeMap<&str, (&PortRole, u16, Option<AdminStatus>)> = s
            .ports
            .values()
            .map(|p| (p.name.as_str(), (&p.role, p.role.mtu(), p.admin)))
            .collect();
        assert_eq!(roles.len(), 5);
        assert_eq!(
            roles["Ethernet120"],
            (&PortRole::Underlay, MTU_FABRIC, None)
        );
        assert_eq!(
            roles["Ethernet3"],
            (&PortRole::Unprovisioned, MTU_EDGE, None)
        );
        assert_eq!(
            roles["Ethernet1"],
            (
                &PortRole::Tenant { vni: 104009 },
                MTU_EDGE,
                Some(AdminStatus::Up)
            )
        );
        assert_eq!(MTU_FABRIC, 9216);
        assert_eq!(MTU_EDGE, 9000);
        let PortRole::Firewall { filter } = roles["Ethernet0"].0 else {
            panic!("Ethernet0 is a firewall: {:?}", roles["Ethernet0"]);
        };
        assert_eq!(roles["Ethernet0"].1, 9216);
        assert_eq!(filter.vnis, [7, 104009], "sorted");
        assert_eq!(filter.prefixes.v4, ["10.0.0.0/24".parse().unwrap()]);
        assert_eq!(filter.prefixes.v6, ["2001:db8::/48".parse().unwrap()]);
        // One VRF: its members, the union of their CIDRs (compacted), the
        // first VLAN id of the default range 1001..2000.
        assert_eq!(s.vrfs.len(), 1);
        let v = &s.vrfs[&104009];
        assert_eq!(v.name(), "Vrf104009");
        assert_eq!(v.ports, ["Ethernet1", "Ethernet2"]);
        assert_eq!(v.vlan, 1001);
        let v4: Vec<String> = v.prefixes.v4.iter().map(ToString::to_string).collect();
        assert_eq!(v4, ["10.1.0.0/24", "192.168.0.1/32"]);
    }

    /// Issue 22 item 6: CONFIG_DB is not trusted to hold only SONiC's
    /// names. A PORT key with a newline, reached through its alias in
    /// `spine_uplinks`, would put its lines into frr.conf (`neighbor <port>
    /// interface …`) and into the error message.
    #[test]
    fn a_port_key_with_a_newline_reached_through_its_alias_is_refused() {
        let bad = "Ethernet120\n!\nline vty\n";
        let mut f = facts();
        f.ports.remove("Ethernet120");
        f.ports.insert(bad.into(), Some("Eth31/1".into()));
        let d = desc(vec![nic("Ethernet0", "", &[], &[])]);
        let mut cfg = config("");
        cfg.spine_uplinks = vec!["Eth31/1".into()];
        let p = problems(&d, &cfg, &f);
        assert!(
            has(
                &p,
                r#"CONFIG_DB PORT key "Ethernet120\n!\nline vty\n" (alias "Eth31/1")"#
            ),
            "{p:?}"
        );
        assert!(p.iter().all(|p| !p.contains('\n')), "{p:?}");
        // Through a nic's alias (interface_naming_schema) and its own name.
        let d = desc(vec![nic("Eth31/1", "", &[], &[])]);
        let cfg = config("interface_naming_schema = \"alias\"");
        let p = problems(&d, &cfg, &f);
        assert!(has(&p, "is not a valid port name"), "{p:?}");
        assert!(p.iter().all(|p| !p.contains('\n')), "{p:?}");
        let mut f = facts();
        f.ports.insert("Ethernet1\u{202e}".into(), None);
        let d = desc(vec![nic("Ethernet1\u{202e}", "", &[], &[])]);
        let p = problems(&d, &config(""), &f);
        assert!(p.iter().all(|p| !p.contains('\u{202e}')), "{p:?}");
    }

    #[test]
    fn vlans_of_existing_vrfs_are_kept_and_new_ones_take_the_lowest_free_id() {
        let mut f = facts();
        f.tenant_vlans.insert(104010, 1001);
        f.owned_vlans.insert(1001);
        f.used_vlans.extend([1001, 1002]);
        f.vlans.extend([1001, 1002]);
        f.foreign_vlans.insert(
            1003,
            "VLAN_INTERFACE|Vlan1003 (bound to VRF VrfMpls)".into(),
        );
        let d = desc(vec![
            nic("Ethernet1", "vrf104009", &[], &[]),
            nic("Ethernet2", "vrf104010", &[], &[]),
            nic("Ethernet3", "vrf5", &[], &[]),
        ]);
        let s = build(&d, &config(""), &f).unwrap();
        let vlans: BTreeMap<u32, u16> = s.vrfs.values().map(|v| (v.vni, v.vlan)).collect();
        // 1001 stays with 104010; 1002 is used, 1003 foreign; new VRFs in
        // VNI order get 1004 and 1005.
        assert_eq!(
            vlans,
            BTreeMap::from([(5, 1004), (104009, 1005), (104010, 1001)])
        );
    }

    #[test]
    fn bridge_ports_are_skipped_and_uplinks_only_take_the_admin_status() {
        let mut up = nic("Ethernet120", "", &[], &[]);
        up.admin = Some(AdminStatus::Down);
        let d = desc(vec![up, nic("Ethernet7", "vrf104009", &[], &[])]);
        let s = build(
            &d,
            &config("additional_bridge_ports = [\"Ethernet7\"]\n"),
            &facts(),
        )
        .unwrap();
        assert_eq!(s.ports.keys().collect::<Vec<_>>(), ["Ethernet120"]);
        assert_eq!(s.ports["Ethernet120"].role, PortRole::Underlay);
        assert_eq!(s.ports["Ethernet120"].admin, Some(AdminStatus::Down));
        assert!(s.vrfs.is_empty());
    }

    #[test]
    fn bridge_ports_that_name_no_port_are_refused_by_name() {
        let d = desc(vec![nic("Ethernet7", "vrf104009", &[], &[])]);
        let p = problems(
            &d,
            &config("additional_bridge_ports = [\"Ethernet7\", \"Ethernet77\"]\n"),
            &facts(),
        );
        assert!(
            has(
                &p,
                "additional_bridge_ports entry \"Ethernet77\": Ethernet77 is not in CONFIG_DB PORT"
            ),
            "{p:?}"
        );
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn nic_names_can_be_aliases() {
        let d = desc(vec![nic("Eth1/2", "vrf9", &[], &[])]);
        let s = build(
            &d,
            &config("interface_naming_schema = \"swap\"\n"),
            &facts(),
        )
        .unwrap();
        assert!(s.ports.contains_key("Ethernet1"), "{:?}", s.ports.keys());
        let p = problems(&d, &config(""), &facts());
        assert!(
            has(
                &p,
                "port Eth1/2: Eth1/2 is not in CONFIG_DB PORT (known: Ethernet0..Ethernet120, 9 ports)"
            ),
            "{p:#?}"
        );
    }

    #[test]
    fn bad_names_vnis_and_ports_are_all_reported_together() {
        let d = desc(vec![
            nic("Ethernet999", "", &[], &[]),
            nic("Ethernet0", "vrf0", &[], &[]),
            nic("Ethernet1", "vrf16777216", &[], &[]),
            nic("Ethernet2", "vrf0104009", &[], &[]),
            nic("Ethernet3", "Vrf5", &[], &[]),
            nic(
                "Ethernet4",
                "default",
                &["10.0.0.0/33", "not-a-prefix"],
                &["x", "0"],
            ),
            nic("Ether net5", "", &[], &[]),
            nic("Ethernet6\n!", "", &[], &[]),
            nic(&"E".repeat(200), "", &[], &[]),
            nic("Ethernet7", "", &[], &[]),
            nic("Ethernet7", "vrf9", &[], &[]),
        ]);
        let p = problems(&d, &config(""), &facts());
        for want in [
            "port Ethernet999: Ethernet999 is not in CONFIG_DB PORT",
            "nic Ethernet0: VRF \"vrf0\" is not empty, \"default\" or \"vrf<VNI>\": VNI 0 is outside 1..16777215",
            "nic Ethernet1: VRF \"vrf16777216\" is not empty, \"default\" or \"vrf<VNI>\": VNI 16777216 is outside 1..16777215",
            "leading zero",
            "nic Ethernet3: VRF \"Vrf5\" is not empty, \"default\" or \"vrf<VNI>\"",
            "filter CIDR \"10.0.0.0/33\" is not an IP prefix",
            "filter CIDR \"not-a-prefix\" is not an IP prefix",
            "filter VNI \"x\" is not a number",
            "filter VNI 0 is outside 1..16777215",
            "nic \"Ether net5\": name",
            "nic \"Ethernet6\\n!\": name",
            "port Ethernet7: in two roles",
        ] {
            assert!(has(&p, want), "missing {want:?} in {p:#?}");
        }
        // A 200-character name is refused, and shown cut.
        assert!(
            p.iter().any(|x| x.contains("(200 bytes)") && x.len() < 400),
            "{p:#?}"
        );
    }

    /// Issue 9, finding 3: the API writes a tenant VRF as `vrf%d`
    /// (metal-api reference §1.3). `vrf+5` would parse as VNI 5 with Rust's
    /// integer parser; it is refused instead, and so is a minus sign, while
    /// `vrf5` itself is accepted.
    #[test]
    fn a_vni_with_a_sign_is_refused() {
        let ok = build(
            &desc(vec![nic("Ethernet2", "vrf5", &[], &[])]),
            &config(""),
            &facts(),
        )
        .unwrap();
        assert_eq!(
            ok.ports["Ethernet2"].role,
            crate::spec::PortRole::Tenant { vni: 5 }
        );
        for (vrf, digits) in [("vrf+5", "+5"), ("vrf-5", "-5"), ("vrf+0", "+0")] {
            let p = problems(
                &desc(vec![nic("Ethernet2", vrf, &[], &[])]),
                &config(""),
                &facts(),
            );
            assert_eq!(
                p,
                [format!(
                    "nic Ethernet2: VRF \"{vrf}\" is not empty, \"default\" or \"vrf<VNI>\": \
                     VNI \"{digits}\" is not a number"
                )],
                "{vrf:?}"
            );
        }
        assert_eq!(parse_vni("+5"), Err("\"+5\" is not a number".into()));
        assert_eq!(parse_vni("5"), Ok(5));
    }

    #[test]
    fn the_switch_and_its_base_configuration_are_checked() {
        // The document of another switch, without nics, on a switch
        // without VTEP, NVO, PXE VLAN or ports.
        let d = SwitchDesc {
            id: "leaf02".into(),
            nics: Vec::new(),
        };
        let p = problems(&d, &config(""), &LocalFacts::default());
        for want in [
            "switch document: describes switch \"leaf02\", but this switch is \"leaf01\"",
            "switch document: lists no nics",
            "CONFIG_DB VXLAN_TUNNEL: no VTEP is configured",
            "CONFIG_DB PORT: the PORT table is empty",
        ] {
            assert!(has(&p, want), "missing {want:?} in {p:#?}");
        }
        // Unprovisioned ports need the PXE VLAN; tenant VRFs need an NVO.
        let mut f = facts();
        f.vlans.clear();
        f.nvos.clear();
        let d = desc(vec![
            nic("Ethernet1", "", &[], &[]),
            nic("Ethernet2", "vrf9", &[], &[]),
        ]);
        let p = problems(&d, &config(""), &f);
        assert!(
            has(&p, "PXE VLAN Vlan3900: does not exist in CONFIG_DB VLAN"),
            "{p:#?}"
        );
        assert!(
            has(&p, "CONFIG_DB VXLAN_EVPN_NVO: no EVPN NVO is configured"),
            "{p:#?}"
        );
        // Two VTEPs.
        let mut f = facts();
        f.vteps = vec!["vtep".into(), "vtep2".into()];
        let p = problems(&desc(vec![nic("Ethernet1", "", &[], &[])]), &config(""), &f);
        assert!(has(&p, "2 VTEPs are configured"), "{p:#?}");
    }

    #[test]
    fn collisions_with_objects_the_agent_does_not_own_are_refused() {
        let mut f = facts();
        f.foreign_vnis
            .insert(104009, "VRF VrfMpls (not owned by the agent)".into());
        f.tenant_vlans.insert(104010, 1500);
        f.foreign_vlans
            .insert(1500, "VLAN_INTERFACE|Vlan1500 (bound to VRF Vrf42)".into());
        f.interfaces
            .insert("Ethernet3".into(), Some("VrfMpls".into()));
        f.interfaces.insert("Ethernet4".into(), None);
        f.interface_ips.insert("Ethernet4".into());
        f.memberships
            .insert("Ethernet5".into(), BTreeSet::from([1600]));
        let d = desc(vec![
            nic("Ethernet1", "vrf104009", &[], &[]),
            nic("Ethernet2", "vrf104010", &[], &[]),
            nic("Ethernet3", "", &[], &[]),
            nic("Ethernet4", "vrf7", &[], &[]),
            nic("Ethernet5", "default", &[], &[]),
            nic("Ethernet6", "vrf42", &[], &[]),
        ]);
        let p = problems(&d, &config("static_vrfs = [\"Vrf42\"]\n"), &f);
        for want in [
            "VRF Vrf104009: VNI 104009 is already used by VRF VrfMpls",
            "VRF Vrf104010: its VLAN Vlan1500 collides with VLAN_INTERFACE|Vlan1500",
            "port Ethernet3: is bound to VRF VrfMpls, which the agent does not own",
            "port Ethernet4: has IP addresses",
            "port Ethernet5: is a member of Vlan1600, which the agent does not own",
            "VRF Vrf42: is listed in static_vrfs but the API assigns ports to it (Ethernet6)",
        ] {
            assert!(has(&p, want), "missing {want:?} in {p:#?}");
        }
    }

    #[test]
    fn the_vlan_range_can_run_out() {
        let d = desc(vec![
            nic("Ethernet1", "vrf1", &[], &[]),
            nic("Ethernet2", "vrf2", &[], &[]),
        ]);
        let p = problems(&d, &config("vlan_range = \"1001-1001\"\n"), &facts());
        assert!(
            has(&p, "VRF Vrf2: no free VLAN id left in vlan_range 1001-1001"),
            "{p:#?}"
        );
        assert_eq!(p.len(), 1, "{p:#?}");
    }

    #[test]
    fn a_long_vtep_name_would_make_an_over_long_vxlan_device() {
        let mut f = facts();
        f.vteps = vec!["vtep-with-a-long-name".into()];
        f.nvos = BTreeMap::from([("nvo".into(), "vtep-with-a-long-name".into())]);
        let p = problems(
            &desc(vec![nic("Ethernet1", "vrf9", &[], &[])]),
            &config(""),
            &f,
        );
        assert!(has(&p, "use a shorter VTEP name"), "{p:#?}");
    }
}
