//! Kernel test helpers: a small leaf desired state whose ports exist as
//! veth pairs in a network namespace, for the SONiC stand-in's kernel side
//! and the kernel view.

use metal_switchd::spec::{AdminStatus, FilterDesc, NicDesc, SwitchDesc};
use metal_switchd_lab::netns::Netns;

/// The ports of [`small_leaf`] (the lab config's spine uplinks included).
pub const PORTS: [&str; 7] = [
    "Ethernet0",
    "Ethernet1",
    "Ethernet2",
    "Ethernet3",
    "Ethernet4",
    "Ethernet120",
    "Ethernet124",
];

/// leaf01 with a firewall (Ethernet0), two tenant VRFs (Ethernet1 and
/// Ethernet2 in vrf104009, Ethernet3 in vrf104010), one unprovisioned port
/// set admin down (Ethernet4); Ethernet120/124 are the lab config's spine
/// uplinks.
pub fn small_leaf() -> SwitchDesc {
    let nic = |name: &str, vrf: &str, admin| NicDesc {
        name: name.into(),
        vrf: (!vrf.is_empty()).then(|| vrf.to_owned()),
        filter: FilterDesc::default(),
        admin,
    };
    SwitchDesc {
        id: "leaf01".into(),
        nics: vec![
            nic("Ethernet0", "default", None),
            nic("Ethernet1", "vrf104009", None),
            nic("Ethernet2", "vrf104009", Some(AdminStatus::Up)),
            nic("Ethernet3", "vrf104010", None),
            nic("Ethernet4", "", Some(AdminStatus::Down)),
        ],
    }
}

/// Every port of [`small_leaf`] as a veth pair (`<port>`, `<port>p`) with
/// the peer up, so a port that SONiC sets up also runs.
pub fn add_ports(ns: &Netns) {
    let mut batch = String::new();
    for p in PORTS {
        batch.push_str(&format!(
            "link add {p} type veth peer name {p}p\nlink set {p}p up\n"
        ));
    }
    ns.ip_batch(&batch).expect("veth ports");
}
