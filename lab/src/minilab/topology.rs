//! The mini-lab's shape: nodes, links, addresses, and the configuration
//! files each node gets. Pure data and text; nothing here touches the
//! machine.
//!
//! Wired like metal-stack's mini-lab (`mini-lab.sonic.yaml`): each machine
//! has `lan0` on `leaf01` and `lan1` on `leaf02` (`Ethernet0` for
//! `machine01`, `Ethernet1` for `machine02`), each leaf's `Ethernet120`
//! goes to the exit router (`eth1`, `eth2`). The management network is a
//! bridge in a namespace of its own (`mgmt`), where the lab API server
//! listens; each leaf's `eth0` is a port of it.

use std::net::Ipv4Addr;

/// The lab API server's address on the management network.
pub const API_IP: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
/// Its port.
pub const API_PORT: u16 = 8080;
/// The management network's prefix length.
pub const MGMT_PREFIX_LEN: u8 = 24;
/// The management bridge in the `mgmt` namespace.
pub const MGMT_BRIDGE: &str = "mgmtbr";
/// The partition both leaves register in.
pub const PARTITION: &str = "mini-lab";
/// The v1 HMAC key (Metal-Edit) of the lab API.
pub const HMAC_KEY: &str = "metal-edit-mini-lab";
/// The v2 bearer token of the lab API (a lab value, not a secret).
pub const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.mini-lab-editor.c2lnbmF0dXJl";
/// The leaves' uplink to the exit router.
pub const UPLINK: &str = "Ethernet120";
/// The leaves' PXE VLAN (in the mini-lab base configuration).
pub const PXE_VLAN: u16 = 3900;

/// The exit router's FRR configuration (metal-stack/mini-lab, unchanged).
pub const EXIT_FRR_CONF: &str = include_str!("../../minilab/exit.frr.conf");
/// The exit router's configuration as the lab loads it: mini-lab's, with
/// one line added — the exit retries a connection to a leaf every second
/// instead of FRR's datacenter default of 10 s, so the sessions come up as
/// soon as a leaf's FRR has the agent's configuration (a setting of the
/// peer; the leaves run what the agent renders).
pub fn exit_frr_conf() -> String {
    EXIT_FRR_CONF
        .replace(
            " neighbor FABRIC timers 1 3\n",
            " neighbor FABRIC timers 1 3\n neighbor FABRIC timers connect 1\n",
        )
        .replace(" ipv6 nd ra-interval 6\n", " ipv6 nd ra-interval 1\n")
}

/// A machine's FRR configuration template.
const MACHINE_FRR_CONF: &str = include_str!("../../minilab/machine.frr.conf");

/// A leaf switch of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    pub name: &'static str,
    pub asn: u32,
    pub loopback: Ipv4Addr,
    /// Address of `eth0` on the management network.
    pub mgmt_ip: Ipv4Addr,
    /// Its base CONFIG_DB (`testdata/sonic/`).
    pub config_db: &'static str,
    /// The exit router's interface on its uplink.
    pub exit_port: &'static str,
}

/// A machine of the lab: `lan0` on leaf01, `lan1` on leaf02.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub name: &'static str,
    /// Its metal machine id (mini-lab's UUIDs).
    pub id: &'static str,
    /// The leaves' port it is cabled to.
    pub port: &'static str,
    pub asn: u32,
    pub loopback: Ipv4Addr,
}

pub const LEAVES: [Leaf; 2] = [
    Leaf {
        name: "leaf01",
        asn: 4200000011,
        loopback: Ipv4Addr::new(10, 0, 0, 11),
        mgmt_ip: Ipv4Addr::new(172, 17, 0, 11),
        config_db: crate::fixtures::LEAF01_CONFIG,
        exit_port: "eth1",
    },
    Leaf {
        name: "leaf02",
        asn: 4200000012,
        loopback: Ipv4Addr::new(10, 0, 0, 12),
        mgmt_ip: Ipv4Addr::new(172, 17, 0, 12),
        config_db: crate::fixtures::LEAF02_CONFIG,
        exit_port: "eth2",
    },
];

pub const MACHINES: [Machine; 2] = [
    Machine {
        name: "machine01",
        id: "00000000-0000-0000-0000-000000000001",
        port: "Ethernet0",
        asn: 4210000001,
        loopback: Ipv4Addr::new(10, 0, 30, 1),
    },
    Machine {
        name: "machine02",
        id: "00000000-0000-0000-0000-000000000002",
        port: "Ethernet1",
        asn: 4210000002,
        loopback: Ipv4Addr::new(10, 1, 0, 1),
    },
];

/// The exit router's node name.
pub const EXIT: &str = "exit";
/// The management network's node name.
pub const MGMT: &str = "mgmt";

/// Every node (network namespace) of the lab, without prefix.
pub fn nodes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = vec![MGMT];
    v.extend(LEAVES.iter().map(|l| l.name));
    v.push(EXIT);
    v.extend(MACHINES.iter().map(|m| m.name));
    v
}

/// One veth link: (node, interface) ↔ (node, interface), with an MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub a: (&'static str, &'static str),
    pub b: (&'static str, &'static str),
    pub mtu: u32,
}

/// The data links of mini-lab (management links aside).
pub fn links() -> Vec<Link> {
    let mut v = Vec::new();
    for m in MACHINES {
        for (i, leaf) in LEAVES.iter().enumerate() {
            let lan = if i == 0 { "lan0" } else { "lan1" };
            v.push(Link {
                a: (leaf.name, m.port),
                b: (m.name, lan),
                mtu: 9000,
            });
        }
    }
    for leaf in LEAVES {
        v.push(Link {
            a: (leaf.name, UPLINK),
            b: (EXIT, leaf.exit_port),
            mtu: 9216,
        });
    }
    v
}

/// A machine's FRR configuration.
pub fn machine_frr_conf(m: &Machine) -> String {
    MACHINE_FRR_CONF
        .replace("@NAME@", m.name)
        .replace("@ASN@", &m.asn.to_string())
        .replace("@LOOPBACK@", &m.loopback.to_string())
}

/// Which metal API the agents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// metal-api: REST with HMAC.
    V1,
    /// metal-apiserver: Connect with a bearer token.
    V2,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" => Ok(ApiVersion::V1),
            "v2" => Ok(ApiVersion::V2),
            o => Err(format!("unknown API version {o:?} (v1 or v2)")),
        }
    }
}

/// Paths and settings of one leaf's agent.
#[derive(Debug, Clone)]
pub struct AgentFiles {
    pub database_config: String,
    pub sonic_version_file: String,
    pub frr_config: String,
    pub vty_socket_dir: String,
    pub frr_reload_args: Vec<String>,
    /// frr-reload.py and vtysh of the leaf's FRR.
    pub frr_reload_path: String,
    pub vtysh_path: String,
    pub state_directory: String,
    /// v1: the HMAC key file; v2: the token file.
    pub secret_file: String,
    /// `reconfigure_switch_interval`.
    pub interval: String,
    /// `kernel_checks`: on where the kernel can create what SONiC's
    /// managers make (VRF devices); off on a kernel without them, where a
    /// reconcile could never be confirmed.
    pub kernel_checks: bool,
    /// `timeout` and `barrier_timeout`.
    pub timeout: String,
    pub barrier_timeout: String,
    /// `frr_reload_timeout`.
    pub frr_reload_timeout: String,
}

fn toml_str(s: &str) -> String {
    toml_string(s)
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The agent configuration of `leaf` (`metal-switchd --config`).
pub fn agent_config(leaf: &Leaf, api: ApiVersion, f: &AgentFiles) -> String {
    let api_keys = match api {
        ApiVersion::V1 => format!(
            "api_version = \"v1\"\nmetal_api_protocol = \"http\"\nmetal_api_ip = \"{API_IP}\"\n\
             metal_api_port = {API_PORT}\nmetal_api_basepath = \"/metal/\"\nhmac_key_file = {}\n",
            toml_str(&f.secret_file)
        ),
        ApiVersion::V2 => format!(
            "api_version = \"v2\"\napi_allow_plaintext = true\nmetal_apiserver_url = \"http://{API_IP}:{API_PORT}/\"\n\
             metal_apiserver_token_file = {}\n",
            toml_str(&f.secret_file)
        ),
    };
    let reload_args: Vec<String> = f.frr_reload_args.iter().map(|a| toml_str(a)).collect();
    format!(
        "# metal-switchd configuration of the mini-lab's {name}, written by metal-switchd-lab.\n\
         hostname = \"{name}\"\n\
         partition_id = \"{PARTITION}\"\n\
         rack_id = \"rack01\"\n\
         asn = {asn}\n\
         loopback_ip = \"{lo}\"\n\
         spine_uplinks = [\"{UPLINK}\"]\n\
         pxe_vlan_id = {PXE_VLAN}\n\
         log_level = \"info\"\n\
         {api_keys}\
         api_retry_backoff = \"100ms\"\n\
         api_retry_max_backoff = \"1s\"\n\
         reconfigure_switch = true\n\
         reconfigure_switch_interval = {interval}\n\
         timeout = {timeout}\n\
         barrier_timeout = {barrier}\n\
         frr_reload_timeout = {reload_timeout}\n\
         kernel_checks = {kernel_checks}\n\
         management_interface = \"eth0\"\n\
         database_config = {dbconf}\n\
         sonic_version_file = {version}\n\
         state_directory = {state}\n\
         metrics_server_bind_address = \"0.0.0.0\"\n\
         metrics_server_port = 2112\n\
         frr_config = {frr}\n\
         frr_agentx = false\n\
         frr_validation = \"vtysh\"\n\
         frr_reload = \"exec\"\n\
         frr_reload_path = {reload}\n\
         vtysh_path = {vtysh}\n\
         frr_reload_args = [{args}]\n\
         frr_vty_socket_dir = {vty}\n\
         bgp_state_source = \"vtysh\"\n\
         bgp_neighbor_state_file = \"\"\n",
        name = leaf.name,
        asn = leaf.asn,
        lo = leaf.loopback,
        interval = toml_str(&f.interval),
        dbconf = toml_str(&f.database_config),
        version = toml_str(&f.sonic_version_file),
        state = toml_str(&f.state_directory),
        frr = toml_str(&f.frr_config),
        reload = toml_str(&f.frr_reload_path),
        vtysh = toml_str(&f.vtysh_path),
        args = reload_args.join(", "),
        vty = toml_str(&f.vty_socket_dir),
        kernel_checks = f.kernel_checks,
        timeout = toml_str(&f.timeout),
        barrier = toml_str(&f.barrier_timeout),
        reload_timeout = toml_str(&f.frr_reload_timeout),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_mini_lab() {
        let l = links();
        assert!(l.contains(&Link {
            a: ("leaf02", "Ethernet1"),
            b: ("machine02", "lan1"),
            mtu: 9000
        }));
        assert!(l.contains(&Link {
            a: ("leaf01", "Ethernet120"),
            b: ("exit", "eth1"),
            mtu: 9216
        }));
        assert_eq!(l.len(), 6);
        assert_eq!(nodes().len(), 6);
    }

    #[test]
    fn exit_config_retries_every_second() {
        assert!(exit_frr_conf().contains(" neighbor FABRIC timers connect 1\n"));
        assert!(exit_frr_conf().contains("router bgp 4200000021\n"));
    }

    #[test]
    fn machine_config_is_filled_in() {
        let c = machine_frr_conf(&MACHINES[1]);
        assert!(c.contains("hostname machine02"));
        assert!(c.contains("router bgp 4210000002"));
        assert!(c.contains(" ip address 10.1.0.1/32"));
        assert!(!c.contains('@'));
    }

    #[test]
    fn agent_config_is_toml() {
        let f = AgentFiles {
            database_config: "/x/db.json".into(),
            sonic_version_file: "/x/v.yml".into(),
            frr_config: "/x/etc/frr.conf".into(),
            vty_socket_dir: "/x/run".into(),
            frr_reload_args: vec!["--reload".into(), "{file}".into()],
            frr_reload_path: "/usr/lib/frr/frr-reload.py".into(),
            vtysh_path: "/usr/bin/vtysh".into(),
            state_directory: "/x".into(),
            secret_file: "/x/token".into(),
            interval: "1s".into(),
            kernel_checks: false,
            timeout: "20s".into(),
            barrier_timeout: "15s".into(),
            frr_reload_timeout: "90s".into(),
        };
        for api in [ApiVersion::V1, ApiVersion::V2] {
            let t: toml::Table = toml::from_str(&agent_config(&LEAVES[1], api, &f)).unwrap();
            assert_eq!(t["hostname"].as_str(), Some("leaf02"));
            assert_eq!(t["api_version"].as_str(), Some(api.as_str()));
            assert_eq!(t["frr_reload_args"].as_array().unwrap().len(), 2);
            assert_eq!(t["kernel_checks"].as_bool(), Some(false));
            assert_eq!(t["frr_reload_timeout"].as_str(), Some("90s"));
            assert_eq!(t["vtysh_path"].as_str(), Some("/usr/bin/vtysh"));
        }
        assert_eq!(toml_string("a\"b\\c"), r#""a\"b\\c""#);
    }
}
