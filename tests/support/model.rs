//! An independent model of what the agent must leave in CONFIG_DB, written
//! from README.md's table "What the agent writes, and what it never touches"
//! and sonic-configdb reference §2.3 — not from `configdb::target` — and the
//! checks the crash, fault and soak tests make with it:
//!
//! - every key the agent created equals the model's expectation (nothing
//!   missing, nothing orphaned, every field as the reference gives it);
//! - every key that was there before the agent started (the base
//!   configuration, foreign VRFs, VLANs, maps and ports) is byte-identical,
//!   except `mtu` / `admin_status` of the ports the agent manages.
//!
//! Per port role (API nic `vrf`): unprovisioned (`""`) → `PORT mtu 9000`,
//! `VLAN_MEMBER|Vlan<pxe>|<port> {tagging_mode: untagged}`; firewall
//! (`default`) → `PORT mtu 9216`, `INTERFACE|<port>
//! {ipv6_use_link_local_only: enable}`; tenant (`vrf<N>`) → `PORT mtu 9000`,
//! `INTERFACE|<port> {ipv6_use_link_local_only: enable, vrf_name: Vrf<N>}`;
//! spine uplink → `PORT mtu 9216`, `INTERFACE|<port>
//! {ipv6_use_link_local_only: enable}`. `admin_status` only when the API
//! sets one. Per tenant VRF `Vrf<N>` with VLAN `V`: `VRF {vni: N, fallback:
//! false}`, `VLAN {vlanid: V}`, `VLAN_INTERFACE {vrf_name: Vrf<N>}`,
//! `SUPPRESS_VLAN_NEIGH {suppress: on}`, `VXLAN_TUNNEL_MAP|<vtep>|map_<N>_Vlan<V>
//! {vlan: Vlan<V>, vni: N}`. A VRF keeps its VLAN; a new one gets the lowest
//! id of the range that no VLAN in CONFIG_DB uses (new VRFs in the order of
//! their VNI).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use metal_switchd::spec::{AdminStatus, SwitchDesc};

pub type Fields = BTreeMap<String, String>;
pub type Dump = BTreeMap<String, Fields>;

/// What a nic is for, read from the API's `vrf` as the README's table does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Pxe,
    Firewall,
    Tenant(u32),
    Uplink,
}

fn role_of(vrf: Option<&str>) -> Role {
    match vrf.unwrap_or("") {
        "" => Role::Pxe,
        "default" => Role::Firewall,
        v => Role::Tenant(
            v.strip_prefix("vrf")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("the model knows vrf<N> only, not {v:?}")),
        ),
    }
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The model of one switch: the agent's settings it depends on and what it
/// remembers between transitions (VLAN ids of VRFs, last admin status).
#[derive(Debug, Clone)]
pub struct Model {
    pub pxe_vlan: u16,
    pub vtep: String,
    /// `vlan_range` (inclusive).
    pub vlan_range: (u16, u16),
    pub uplinks: BTreeSet<String>,
    /// Ports the agent leaves alone (`additional_bridge_ports`).
    pub unmanaged: BTreeSet<String>,
    /// CONFIG_DB before the agent ever wrote.
    pub baseline: Dump,
    /// Tenant VNI → VLAN id, as allocated so far.
    pub vlan_of: BTreeMap<u32, u16>,
    /// Managed port → `admin_status` CONFIG_DB holds (what the base had,
    /// or what the API last asked for).
    pub admin: BTreeMap<String, Option<String>>,
}

/// The expected owned state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Keys the agent creates, with all their fields.
    pub entries: Dump,
    /// Managed port → its `mtu` and (when known) `admin_status`.
    pub ports: BTreeMap<String, Fields>,
}

impl Model {
    /// The model of the lab's leaf01 (mini-lab leaf01: PXE VLAN 3900, VTEP
    /// `vtep0`, spine uplinks Ethernet120 and Ethernet124, VLAN range
    /// 1001–2000) over `baseline`.
    pub fn leaf01(baseline: Dump, unmanaged: &[&str]) -> Model {
        Model {
            pxe_vlan: 3900,
            vtep: "vtep0".into(),
            vlan_range: (1001, 2000),
            uplinks: ["Ethernet120", "Ethernet124"].map(String::from).into(),
            unmanaged: unmanaged.iter().map(|s| (*s).to_owned()).collect(),
            admin: BTreeMap::new(),
            baseline,
            vlan_of: BTreeMap::new(),
        }
    }

    /// The role of every managed port in `desc`.
    pub fn roles(&self, desc: &SwitchDesc) -> BTreeMap<String, (Role, Option<AdminStatus>)> {
        let mut out = BTreeMap::new();
        for nic in &desc.nics {
            if self.unmanaged.contains(&nic.name) {
                continue;
            }
            let role = if self.uplinks.contains(&nic.name) {
                Role::Uplink
            } else {
                role_of(nic.vrf.as_deref())
            };
            out.insert(nic.name.clone(), (role, nic.admin));
        }
        for u in &self.uplinks {
            out.entry(u.clone()).or_insert((Role::Uplink, None));
        }
        out
    }

    /// VLAN ids in use in `config` (VLAN keys and VXLAN map targets).
    fn used_vlans(config: &Dump) -> BTreeSet<u16> {
        let mut used = BTreeSet::new();
        for (k, f) in config {
            if let Some(v) = k.strip_prefix("VLAN|Vlan") {
                used.extend(v.parse::<u16>().ok());
            }
            if k.starts_with("VXLAN_TUNNEL_MAP|") {
                used.extend(
                    f.get("vlan")
                        .and_then(|v| v.strip_prefix("Vlan"))
                        .and_then(|v| v.parse::<u16>().ok()),
                );
            }
        }
        used
    }

    /// Move the model to `desc`, applied on top of `before` (CONFIG_DB when
    /// the agent planned the transition), and return what CONFIG_DB must hold
    /// afterwards.
    pub fn transition(&mut self, desc: &SwitchDesc, before: &Dump) -> Expected {
        let roles = self.roles(desc);
        let vnis: BTreeSet<u32> = roles
            .values()
            .filter_map(|(r, _)| match r {
                Role::Tenant(n) => Some(*n),
                _ => None,
            })
            .collect();
        self.vlan_of.retain(|vni, _| vnis.contains(vni));
        let mut used = Model::used_vlans(before);
        for vni in &vnis {
            if self.vlan_of.contains_key(vni) {
                continue;
            }
            let free = (self.vlan_range.0..=self.vlan_range.1)
                .find(|v| !used.contains(v))
                .expect("a free VLAN id in the range");
            used.insert(free);
            self.vlan_of.insert(*vni, free);
        }
        for (port, (_, admin)) in &roles {
            let base = self
                .baseline
                .get(&format!("PORT|{port}"))
                .and_then(|f| f.get("admin_status").cloned());
            let cur = self.admin.entry(port.clone()).or_insert(base);
            if let Some(a) = admin {
                *cur = Some(a.as_str().to_owned());
            }
        }
        self.expected(&roles)
    }

    fn expected(&self, roles: &BTreeMap<String, (Role, Option<AdminStatus>)>) -> Expected {
        let mut e = Expected::default();
        for (port, (role, _)) in roles {
            let (mtu, entry) = match role {
                Role::Pxe => (
                    "9000",
                    (
                        format!("VLAN_MEMBER|Vlan{}|{port}", self.pxe_vlan),
                        fields(&[("tagging_mode", "untagged")]),
                    ),
                ),
                Role::Firewall | Role::Uplink => (
                    "9216",
                    (
                        format!("INTERFACE|{port}"),
                        fields(&[("ipv6_use_link_local_only", "enable")]),
                    ),
                ),
                Role::Tenant(n) => (
                    "9000",
                    (
                        format!("INTERFACE|{port}"),
                        fields(&[
                            ("ipv6_use_link_local_only", "enable"),
                            ("vrf_name", &format!("Vrf{n}")),
                        ]),
                    ),
                ),
            };
            e.entries.insert(entry.0, entry.1);
            let mut pf = fields(&[("mtu", mtu)]);
            if let Some(Some(a)) = self.admin.get(port) {
                pf.insert("admin_status".into(), a.clone());
            }
            e.ports.insert(port.clone(), pf);
        }
        for (vni, vlan) in &self.vlan_of {
            let (vrf, v) = (format!("Vrf{vni}"), format!("Vlan{vlan}"));
            let n = vni.to_string();
            e.entries.insert(
                format!("VRF|{vrf}"),
                fields(&[("vni", &n), ("fallback", "false")]),
            );
            e.entries.insert(
                format!("VLAN|{v}"),
                fields(&[("vlanid", &vlan.to_string())]),
            );
            e.entries
                .insert(format!("VLAN_INTERFACE|{v}"), fields(&[("vrf_name", &vrf)]));
            e.entries.insert(
                format!("SUPPRESS_VLAN_NEIGH|{v}"),
                fields(&[("suppress", "on")]),
            );
            e.entries.insert(
                format!("VXLAN_TUNNEL_MAP|{}|map_{vni}_{v}", self.vtep),
                fields(&[("vlan", &v), ("vni", &n)]),
            );
        }
        e
    }

    /// Every difference between `config` (a CONFIG_DB dump) and the model:
    /// owned keys against `expected`, foreign keys against the baseline.
    /// Empty when CONFIG_DB is as it must be.
    pub fn check(&self, expected: &Expected, config: &Dump) -> Vec<String> {
        let mut problems = Vec::new();
        // Foreign keys: byte-identical (PORT: all but the owned fields).
        for (k, base) in &self.baseline {
            let Some(now) = config.get(k) else {
                problems.push(format!("foreign {k} was deleted (was {base:?})"));
                continue;
            };
            let port = k.strip_prefix("PORT|");
            let managed = port.is_some_and(|p| expected.ports.contains_key(p));
            let strip = |f: &Fields| -> Fields {
                f.iter()
                    .filter(|(n, _)| {
                        !managed || (n.as_str() != "mtu" && n.as_str() != "admin_status")
                    })
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect()
            };
            if strip(now) != strip(base) {
                problems.push(format!(
                    "foreign {k} changed: {:?} -> {:?}",
                    strip(base),
                    strip(now)
                ));
            }
        }
        // Owned keys: exactly the expectation.
        let created: Dump = config
            .iter()
            .filter(|(k, _)| !self.baseline.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, want) in &expected.entries {
            match created.get(k) {
                None => problems.push(format!("missing {k} {want:?}")),
                Some(got) if got != want => {
                    problems.push(format!("{k}: {got:?}, expected {want:?}"))
                }
                Some(_) => {}
            }
        }
        for (k, got) in &created {
            if !expected.entries.contains_key(k) {
                problems.push(format!("orphaned {k} {got:?}"));
            }
        }
        for (port, want) in &expected.ports {
            let Some(now) = config.get(&format!("PORT|{port}")) else {
                problems.push(format!("PORT|{port} is gone"));
                continue;
            };
            for (f, v) in want {
                if now.get(f) != Some(v) {
                    problems.push(format!("PORT|{port} {f}: {:?}, expected {v:?}", now.get(f)));
                }
            }
        }
        problems
    }
}

/// Panic with every problem [`Model::check`] finds.
pub fn assert_matches(model: &Model, expected: &Expected, config: &Dump, when: &str) {
    let problems = model.check(expected, config);
    assert!(
        problems.is_empty(),
        "{when}: CONFIG_DB differs from the model:\n  {}",
        problems.join("\n  ")
    );
}

/// Foreign objects added to leaf01's base configuration, so that the checks
/// have something to leave alone: a static VRF `Vrf42` (VNI 42) with its
/// VLAN 1003 inside the agent's range, VLAN interface, suppression and map;
/// an operator's VLAN 1001 inside the range; a VRF named `VrfMpls`; and
/// Ethernet100, left to the operator (`additional_bridge_ports`), bound to
/// `Vrf42` with an address. Use with [`FOREIGN_SETTINGS`].
pub fn foreign_entries() -> Vec<(String, Vec<(String, String)>)> {
    let e = |k: &str, f: &[(&str, &str)]| {
        (
            k.to_owned(),
            f.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect::<Vec<_>>(),
        )
    };
    vec![
        e("VRF|Vrf42", &[("vni", "42"), ("fallback", "false")]),
        e("VLAN|Vlan1003", &[("vlanid", "1003")]),
        e("VLAN_INTERFACE|Vlan1003", &[("vrf_name", "Vrf42")]),
        e("SUPPRESS_VLAN_NEIGH|Vlan1003", &[("suppress", "on")]),
        e(
            "VXLAN_TUNNEL_MAP|vtep0|map_42_Vlan1003",
            &[("vlan", "Vlan1003"), ("vni", "42")],
        ),
        e(
            "VLAN|Vlan1001",
            &[("vlanid", "1001"), ("description", "operator VLAN")],
        ),
        e("VRF|VrfMpls", &[("NULL", "NULL")]),
        e(
            "INTERFACE|Ethernet100",
            &[
                ("vrf_name", "Vrf42"),
                ("ipv6_use_link_local_only", "enable"),
            ],
        ),
        e("INTERFACE|Ethernet100|10.9.9.1/31", &[("NULL", "NULL")]),
    ]
}

/// The agent settings that go with [`foreign_entries`] (TOML).
pub const FOREIGN_SETTINGS: &str =
    "static_vrfs = [\"Vrf42\"]\nadditional_bridge_ports = [\"Ethernet100\"]\n";

/// Ports [`foreign_entries`] leaves to the operator.
pub const UNMANAGED: &[&str] = &["Ethernet100"];
