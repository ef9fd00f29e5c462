//! Generated switch states for measurements and benchmarks.
//!
//! A v1 `SwitchResponse` for the mini-lab leaf (or any port list): the first
//! port is a firewall, the next ports are spread round-robin over `vrfs`
//! tenant VRFs (`vrf<100000+k>`, each port with a /24 and a /32), the rest
//! are unprovisioned; spine uplinks are listed like the API lists them.

use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SwitchShape {
    pub id: String,
    /// Machine-facing port names, in order.
    pub ports: Vec<String>,
    /// Uplinks (listed as nics without VRF).
    pub uplinks: Vec<String>,
    /// Number of tenant VRFs.
    pub vrfs: usize,
    /// Tenant ports per VRF (at most; the ports may run out).
    pub ports_per_vrf: usize,
}

impl SwitchShape {
    /// mini-lab leaf01: Ethernet0..Ethernet119, uplinks Ethernet120/124.
    pub fn mini_lab(vrfs: usize) -> Self {
        SwitchShape {
            id: "leaf01".into(),
            ports: (0..120).map(|i| format!("Ethernet{i}")).collect(),
            uplinks: vec!["Ethernet120".into(), "Ethernet124".into()],
            vrfs,
            ports_per_vrf: 2,
        }
    }
}

/// A benchmark switch: `ports` machine ports `Ethernet0..` plus two uplinks,
/// `vrfs` tenant VRFs. Ports `0..vrfs` get one VRF each; of the rest the
/// first is a firewall (with the VNIs of up to ten VRFs) and the others
/// alternate between a second tenant port of a VRF and unprovisioned.
pub fn bench_switch(ports: usize, vrfs: usize) -> (Value, String) {
    let vrfs = vrfs.min(ports);
    let vrf_of = |i: usize| -> String {
        if i < vrfs {
            format!("vrf{}", vni(i))
        } else if i == vrfs {
            "default".into()
        } else if (i - vrfs).is_multiple_of(2) && vrfs > 0 {
            format!("vrf{}", vni(i % vrfs))
        } else {
            String::new()
        }
    };
    let mut nics: Vec<Value> = (0..ports)
        .map(|i| {
            let name = format!("Ethernet{i}");
            let vrf = vrf_of(i);
            let mut n = nic(&name, &vrf, i);
            if vrf == "default" {
                let vnis: Vec<String> = (0..vrfs.min(10)).map(|k| vni(k).to_string()).collect();
                n["filter"] = json!({"cidrs": ["10.1.0.1/32", "10.1.0.2/32"], "vnis": vnis});
            }
            n
        })
        .collect();
    let uplinks = [format!("Ethernet{ports}"), format!("Ethernet{}", ports + 1)];
    nics.extend(uplinks.iter().map(|u| nic(u, "", 0)));
    let doc = json!({"id": "leaf01", "name": "leaf01", "rack_id": "rack01", "management_ip": "172.17.0.10",
           "management_user": "admin", "console_command": "", "mode": "operational", "nics": nics,
           "connections": [], "last_sync": null, "last_sync_error": null});
    (doc, port_map(ports + 2))
}

/// Agent configuration (TOML) for [`bench_switch`] with `ports` machine ports.
pub fn bench_config(ports: usize) -> String {
    format!(
        "hostname = \"leaf01\"\nasn = 4200000011\nloopback_ip = \"10.0.0.11\"\npxe_vlan_id = 3900\n\
         spine_uplinks = [\"Ethernet{ports}\", \"Ethernet{}\"]\n",
        ports + 1
    )
}

/// The VNI of generated VRF `k`.
pub fn vni(k: usize) -> u32 {
    100_000 + k as u32
}

/// The VRF (`""`, `default` or `vrf<N>`) of port index `i`.
pub fn vrf_of(shape: &SwitchShape, i: usize) -> String {
    if i == 0 {
        return "default".into();
    }
    let j = i - 1;
    if shape.vrfs > 0 && j < shape.vrfs * shape.ports_per_vrf {
        format!("vrf{}", vni(j % shape.vrfs))
    } else {
        String::new()
    }
}

fn nic(name: &str, vrf: &str, i: usize) -> Value {
    let filter = match vrf {
        "" => Value::Null,
        "default" => json!({"cidrs": ["10.1.0.1/32"], "vnis": ["100000", "100001"]}),
        _ => {
            json!({"cidrs": [format!("10.{}.{}.0/24", (i / 250) % 250, i % 250), format!("212.34.{}.{}/32", (i / 250) % 250, i % 250)], "vnis": []})
        }
    };
    json!({"mac": null, "name": name, "identifier": name, "vrf": vrf, "filter": filter,
           "actual": "UP", "admin_status": null, "bgp_port_state": null})
}

/// The switch state as v1 JSON.
pub fn switch_v1(shape: &SwitchShape) -> Value {
    let mut nics: Vec<Value> = shape
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| nic(p, &vrf_of(shape, i), i))
        .collect();
    nics.extend(shape.uplinks.iter().map(|u| nic(u, "", 0)));
    json!({"id": shape.id, "name": shape.id, "rack_id": "rack01", "management_ip": "172.17.0.10",
           "management_user": "admin", "console_command": "", "mode": "operational", "nics": nics,
           "connections": [], "last_sync": null, "last_sync_error": null})
}

/// The same state with the port at `index` moved to VRF `vrf`.
pub fn with_port_vrf(mut doc: Value, index: usize, vrf: &str) -> Value {
    if let Some(n) = doc["nics"].get_mut(index) {
        n["vrf"] = Value::String(vrf.to_owned());
    }
    doc
}

/// A `port_config.ini` with `n` ports `Ethernet0..`, 4 lanes each.
pub fn port_map(n: usize) -> String {
    let mut s = String::from("# name lanes alias index speed\n");
    for i in 0..n {
        s.push_str(&format!(
            "Ethernet{i} {},{},{},{} Eth{i} {i} 100000\n",
            4 * i + 1,
            4 * i + 2,
            4 * i + 3,
            4 * i + 4
        ));
    }
    s
}
