//! Issue 20: no setting is silently ignored. Every `METAL_CORE_*` name the
//! predecessor reads is set, one at a time, to a value that would change
//! something in metal-core; each must be used (the effective configuration
//! carries the value), named in a notice (metal-core did not use it on
//! SONiC either), or refused with an error that names it.
//!
//! The names: metal-core `cmd/config.go` (envconfig prefix `METAL_CORE`,
//! metal-stack/metal-core @ 0170ec5: 32 fields), `INTERFACE_NAMING_SCHEMA`
//! (metal-core `switcher/sonic/sonic.go`; metal-api reference §7.1), the v2
//! branch's `METAL_APISERVER_URL` / `METAL_APISERVER_TOKEN_FILE` (reference
//! §5), the settings of older versions (`domain.Config` of metal-core
//! with its PXE proxy and NSQ events, and `cmd/config.go` @ 74b85a3 with
//! `DHCP_SERVERS`), and the two variables metal-roles' `metal-core-env.j2`
//! sets that metal-core never read (`SYNC_SCHEDULE`, `SYNC_DELAY`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use metal_switchd::config::Config;

/// What the agent does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// The effective configuration (`check-config`) shows this text.
    Used(&'static str),
    /// Accepted, and a notice names it.
    Notice,
    /// Refused at start, by name.
    Refused,
}

use Fate::*;

/// metal-core's names, a value with an effect, and what must happen.
const SETTINGS: &[(&str, &str, Fate)] = &[
    ("CIDR", "10.255.255.2/24", Notice),
    (
        "PARTITION_ID",
        "fra-equ01",
        Used("partition_id = \"fra-equ01\""),
    ),
    ("RACK_ID", "rack01", Used("rack_id = \"rack01\"")),
    ("ROOM_ID", "room01", Used("room_id = \"room01\"")),
    ("BIND_ADDRESS", "127.0.0.1", Notice),
    (
        "METRICS_SERVER_PORT",
        "9100",
        Used("metrics_server_port = 9100"),
    ),
    (
        "METRICS_SERVER_BIND_ADDRESS",
        "127.0.0.1",
        Used("metrics_server_bind_address = \"127.0.0.1\""),
    ),
    ("LOG_LEVEL", "debug", Used("log_level = \"debug\"")),
    (
        "METAL_API_PROTOCOL",
        "https",
        Used("metal_api_protocol = \"https\""),
    ),
    (
        "METAL_API_IP",
        "api.example",
        Used("metal_api_ip = \"api.example\""),
    ),
    ("METAL_API_PORT", "443", Used("metal_api_port = 443")),
    (
        "METAL_API_BASEPATH",
        "/metal/",
        Used("metal_api_basepath = \"/metal/\""),
    ),
    (
        "LOOPBACK_IP",
        "10.0.7.1",
        Used("loopback_ip = \"10.0.7.1\""),
    ),
    ("SET_SRC_LOOPBACK", "true", Used("set_src_loopback = true")),
    ("ASN", "4200017001", Used("asn = 4200017001")),
    (
        "SPINE_UPLINKS",
        "Ethernet120,Ethernet124",
        Used("spine_uplinks = [\"Ethernet120\", \"Ethernet124\"]"),
    ),
    (
        "MANAGEMENT_GATEWAY",
        "10.1.253.129",
        Used("management_gateway = \"10.1.253.129\""),
    ),
    (
        "ADDITIONAL_MGMT_ROUTES",
        "10.0.0.0/8",
        Used("additional_mgmt_routes = [\"10.0.0.0/8\"]"),
    ),
    (
        "RECONFIGURE_SWITCH",
        "true",
        Used("reconfigure_switch = true"),
    ),
    (
        "RECONFIGURE_SWITCH_INTERVAL",
        "20s",
        Used("reconfigure_switch_interval = \"20s\""),
    ),
    ("TIMEOUT", "30s", Used("timeout = \"30s\"")),
    ("ADDITIONAL_BRIDGE_VIDS", "201-256", Refused),
    (
        "ADDITIONAL_BRIDGE_PORTS",
        "Ethernet3",
        Used("additional_bridge_ports = [\"Ethernet3\"]"),
    ),
    (
        "INTERFACES_TPL_FILE",
        "/etc/metal-core/interfaces.tpl",
        Refused,
    ),
    (
        "FRR_TPL_FILE",
        "/etc/metal-core/sonic_frr_with_fpm.tpl",
        Refused,
    ),
    ("HMAC_KEY", "metal-edit", Used("hmac_key = \"***\"")),
    (
        "GRPC_ADDRESS",
        "api.example:50051",
        Used("grpc_address = \"api.example:50051\""),
    ),
    (
        "GRPC_CA_CERT_FILE",
        "/certs/grpc/ca.pem",
        Used("grpc_ca_cert_file = \"/certs/grpc/ca.pem\""),
    ),
    (
        "GRPC_CLIENT_CERT_FILE",
        "/certs/grpc/client.pem",
        Used("grpc_client_cert_file = \"/certs/grpc/client.pem\""),
    ),
    (
        "GRPC_CLIENT_KEY_FILE",
        "/certs/grpc/client-key.pem",
        Used("grpc_client_key_file = \"/certs/grpc/client-key.pem\""),
    ),
    ("PXE_VLAN_ID", "3900", Used("pxe_vlan_id = 3900")),
    (
        "BGP_NEIGHBOR_STATE_FILE",
        "/run/bgp/state.json",
        Used("bgp_neighbor_state_file = \"/run/bgp/state.json\""),
    ),
    (
        "INTERFACE_NAMING_SCHEMA",
        "swap",
        Used("interface_naming_schema = \"swap\""),
    ),
    (
        "METAL_APISERVER_URL",
        "https://api.example",
        Used("metal_apiserver_url = \"https://api.example\""),
    ),
    (
        "METAL_APISERVER_TOKEN_FILE",
        "/run/token",
        Used("metal_apiserver_token_file = \"/run/token\""),
    ),
    // metal-roles' `metal-core-env` template sets these two; no metal-core
    // version reads them.
    ("SYNC_SCHEDULE", "*/5 * * * *", Notice),
    ("SYNC_DELAY", "30s", Notice),
    // Older metal-core versions.
    ("PORT", "4242", Refused),
    ("CONSOLE_LOGGING", "false", Refused),
    ("MQ_ADDRESS", "nsq:4161", Refused),
    ("MQ_CA_CERT_FILE", "/x/ca.pem", Refused),
    ("MQ_CLIENT_CERT_FILE", "/x/client.pem", Refused),
    ("MQ_LOGLEVEL", "debug", Refused),
    ("MACHINE_TOPIC", "machine", Refused),
    ("MACHINE_TOPIC_TTL", "30000", Refused),
    ("CHANGE_BOOT_ORDER", "false", Refused),
    ("DHCP_SERVERS", "10.0.0.21", Refused),
];

/// The settings a variable needs to be valid on its own.
fn companions(name: &str) -> Vec<(String, String)> {
    let grpc = [
        ("METAL_CORE_GRPC_ADDRESS", "api.example:50051"),
        ("METAL_CORE_GRPC_CA_CERT_FILE", "/certs/grpc/ca.pem"),
        ("METAL_CORE_GRPC_CLIENT_CERT_FILE", "/certs/grpc/client.pem"),
        (
            "METAL_CORE_GRPC_CLIENT_KEY_FILE",
            "/certs/grpc/client-key.pem",
        ),
    ];
    if name.starts_with("GRPC_") {
        return grpc
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    Vec::new()
}

#[test]
fn every_metal_core_setting_is_used_or_refused_by_name() {
    let default = Config::from_sources(None, vec![]).unwrap().to_toml();
    let mut checked = Vec::new();
    for (name, value, fate) in SETTINGS {
        let var = format!("METAL_CORE_{name}");
        let mut env = companions(name);
        env.retain(|(k, _)| *k != var);
        env.push((var.clone(), value.to_string()));
        let result = Config::from_sources(None, env);
        match (fate, result) {
            (Used(shown), Ok(cfg)) => {
                let toml = cfg.to_toml();
                assert!(
                    toml.lines().any(|l| l == *shown),
                    "{var}={value}: the effective configuration does not show {shown:?}:\n{toml}"
                );
                assert!(
                    !default.lines().any(|l| l == *shown),
                    "{var}: {shown:?} is the default"
                );
                assert!(cfg.notices().is_empty(), "{var}: {:?}", cfg.notices());
            }
            (Notice, Ok(cfg)) => {
                let n = cfg.notices().join("\n");
                assert!(
                    n.contains(&format!(
                        "environment variable {var} sets {}",
                        name.to_lowercase()
                    )),
                    "{var}: no notice names it: {n:?}"
                );
            }
            (Refused, Err(e)) => {
                let e = e.to_string();
                assert!(e.contains(&var), "{var}: the refusal does not name it: {e}");
            }
            (fate, r) => panic!("{var}={value}: expected {fate:?}, got {r:?}"),
        }
        checked.push(name.to_lowercase());
    }
    // Every metal-core key the configuration knows is in the table above.
    let keys = Config::metal_core_keys();
    let missing: Vec<&&str> = keys
        .iter()
        .filter(|k| !checked.contains(&k.to_string()))
        .collect();
    assert!(missing.is_empty(), "not checked: {missing:?}");
}

/// `check-config` prints the notices with the configuration, and refuses a
/// template with what to use instead.
#[test]
fn check_config_names_the_settings_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "hostname = \"leaf01\"\n").unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_metal-switchd"));
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .arg("--config")
            .arg(&config)
            .arg("check-config");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[
        ("METAL_CORE_CIDR", "10.255.255.2/24"),
        ("METAL_CORE_BIND_ADDRESS", "0.0.0.0"),
        ("METAL_CORE_FRR_TPL_FILE", ""),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("# not used: environment variable METAL_CORE_CIDR sets cidr: metal-core uses it only on Cumulus"),
        "{stdout}"
    );
    assert!(
        stdout.contains("METAL_CORE_BIND_ADDRESS sets bind_address"),
        "{stdout}"
    );
    let out = run(&[("METAL_CORE_FRR_TPL_FILE", "/etc/metal-core/frr.tpl")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("METAL_CORE_FRR_TPL_FILE"), "{stderr}");
    assert!(stderr.contains("frr_extra_config"), "{stderr}");
}
