//! Helpers shared by the FRR integration tests.

#![allow(dead_code)]

use metal_switchd::configdb::confirmed::Confirmed;
use std::time::Duration;

use metal_switchd::config::Config;
use metal_switchd::configdb::snapshot;
use metal_switchd::frr::install::Installer;
use metal_switchd::frr::reload::Reloader;
use metal_switchd::frr::validate::Validator;
use metal_switchd::reconcile;
use metal_switchd::spec::SwitchSpec;
use metal_switchd::{api, frr};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::frr_lab::{FRR_RELOAD, FrrLab};

/// A leaf with a firewall (CIDRs of both families, VNIs), two tenant VRFs
/// (IPv4, dual-stack), a management gateway and set-src-loopback.
pub const LEAF_SWITCH: &str = r#"{
  "id": "leaf01", "rack_id": "rack01",
  "nics": [
    {"name": "Ethernet0", "vrf": "default",
     "filter": {"cidrs": ["10.1.0.1/32", "2001:db8:f::/48"], "vnis": ["104009", "104010"]}},
    {"name": "Ethernet1", "vrf": "vrf104009", "filter": {"cidrs": ["10.0.16.0/22"], "vnis": []}},
    {"name": "Ethernet2", "vrf": "vrf104010",
     "filter": {"cidrs": ["10.0.20.0/22", "2001:db8:20::/48"], "vnis": []}},
    {"name": "Ethernet3", "vrf": "", "filter": null}
  ]
}"#;

/// The agent configuration of a test leaf (no agentx: Debian's daemons run
/// without the snmp module).
pub fn leaf_config(hostname: &str, asn: u32, loopback: &str, extra: &str) -> Config {
    let text = format!(
        "hostname = \"{hostname}\"\nasn = {asn}\nloopback_ip = \"{loopback}\"\n\
         spine_uplinks = [\"Ethernet120\"]\npxe_vlan_id = 3900\nfrr_agentx = false\n{extra}"
    );
    Config::from_sources(Some(("test config", &text)), vec![]).expect("test configuration")
}

/// The spec of `switch` (v1/v2 JSON) on mini-lab leaf01's CONFIG_DB.
pub fn spec(cfg: &Config, switch: &str) -> SwitchSpec {
    let state = snapshot::parse_config_db_json(
        "leaf01",
        &fixtures::leaf01_with_ports().expect("leaf01 CONFIG_DB"),
    )
    .expect("leaf01 CONFIG_DB parses");
    let (_, desc) = api::parse_switch_document("switch", switch, None).expect("switch document");
    reconcile::prepare(&desc, cfg, &state, &Confirmed::assumed())
        .unwrap_or_else(|e| panic!("{e}"))
        .spec
}

/// The rendered configuration of a test leaf.
pub fn leaf_conf(lab: &FrrLab, switch: &str, extra: &str) -> String {
    let cfg = leaf_config(lab.hostname(), 4200000011, "10.0.0.11", extra);
    frr::render(&spec(&cfg, switch), metal_switchd::flavour::FrrLines::NONE)
}

/// An installer into `lab`: vtysh validation, `frr-reload.py` exec reload.
pub fn exec_installer(lab: &FrrLab) -> Installer {
    Installer {
        dest: lab.config_file(),
        validator: Validator::Vtysh {
            vtysh: "/usr/bin/vtysh".into(),
            timeout: Duration::from_secs(30),
        },
        reloader: Reloader::Exec {
            program: FRR_RELOAD.into(),
            args: lab.frr_reload_args(),
            timeout: Duration::from_secs(60),
        },
    }
}

/// Files in `dir` whose names contain `.new` (left-over temporary files).
pub fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".new"))
        .collect()
}
