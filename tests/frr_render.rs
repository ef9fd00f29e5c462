//! Rendered FRR configurations: one case directory per input under
//! `testdata/frr/render/<case>/` (`config.toml` = agent configuration,
//! `switch.json` = the metal API's switch, v1 or v2), rendered against
//! mini-lab leaf01's CONFIG_DB with its port map, snapshot-tested, and
//! every snapshot checked by FRR itself (`vtysh --dryrun`).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd::configdb::confirmed::Confirmed;
use std::path::Path;
use std::process::Command;

use metal_switchd::config::Config;
use metal_switchd::configdb::snapshot;
use metal_switchd::flavour::FrrLines;
use metal_switchd::reconcile;
use metal_switchd::{api, frr};
use metal_switchd_lab::fixtures;

fn base_state() -> metal_switchd::configdb::schema::DbState {
    let text = fixtures::leaf01_with_ports().expect("leaf01 CONFIG_DB with ports");
    snapshot::parse_config_db_json("leaf01", &text).expect("leaf01 CONFIG_DB parses")
}

fn render_case(dir: &Path) -> Result<String, String> {
    let config = std::fs::read_to_string(dir.join("config.toml")).map_err(|e| e.to_string())?;
    let switch = std::fs::read_to_string(dir.join("switch.json")).map_err(|e| e.to_string())?;
    let cfg =
        Config::from_sources(Some(("config.toml", &config)), vec![]).map_err(|e| e.to_string())?;
    let (_, desc) =
        api::parse_switch_document("switch.json", &switch, None).map_err(|e| e.to_string())?;
    let prepared = reconcile::prepare(&desc, &cfg, &base_state(), &Confirmed::assumed())
        .map_err(|e| e.to_string())?;
    Ok(frr::render(&prepared.spec, FrrLines::NONE))
}

/// `vtysh --dryrun` on `text`: Ok, or FRR's complaint.
fn vtysh_dryrun(text: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), text).expect("write temp file");
    let out = Command::new("vtysh")
        .arg("--dryrun")
        .arg("-f")
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run vtysh ({e}); install FRR: apt-get install -y frr frr-pythontools")
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn frr_conf() {
    let mut cases = 0;
    insta::glob!("../testdata/frr/render", "*/switch.json", |path| {
        let dir = path.parent().expect("case directory");
        let text = render_case(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // Stable: the same input gives the same bytes.
        assert_eq!(text, render_case(dir).unwrap(), "{}", dir.display());
        if let Err(e) = vtysh_dryrun(&text) {
            panic!(
                "FRR rejects the rendering of {}:\n{e}\n{text}",
                dir.display()
            );
        }
        insta::assert_snapshot!(text);
        cases += 1;
    });
    assert!(cases >= 9, "only {cases} render cases found");
}

/// A nic or VRF name carrying a newline, a space or `!` never reaches the
/// renderer: the desired state is rejected as a whole, naming the nic.
#[test]
fn injected_names_are_rejected_before_rendering() {
    let cfg = Config::from_sources(
        Some((
            "config.toml",
            "hostname = \"leaf01\"\nspine_uplinks = [\"Ethernet120\"]\npxe_vlan_id = 3900\n",
        )),
        vec![],
    )
    .unwrap();
    let state = base_state();
    let bad_names = [
        "Ethernet0\n!",
        "Ethernet0\nrouter bgp 1",
        "Ethernet0 vrf x",
        "Ethernet0!",
        " Ethernet0",
        "Ethernet0\r",
    ];
    for (field, bad) in bad_names
        .iter()
        .map(|b| ("name", *b))
        .chain(["vrf1\n!", "vrf 1", "vrf1!", "vrf\t1", "default\nexit"].map(|b| ("vrf", b)))
    {
        let nic = match field {
            "name" => serde_json::json!({"name": bad, "vrf": "vrf104009", "filter": null}),
            _ => serde_json::json!({"name": "Ethernet0", "vrf": bad, "filter": null}),
        };
        let doc = serde_json::json!({"id": "leaf01", "rack_id": "r", "nics": [nic]}).to_string();
        let (_, desc) = api::parse_switch_document("t", &doc, None).unwrap();
        let err = match reconcile::prepare(&desc, &cfg, &state, &Confirmed::assumed()) {
            Ok(p) => panic!(
                "{field} {bad:?} was accepted; frr.conf would contain:\n{}",
                frr::render(&p.spec, FrrLines::NONE)
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("nic") && err.contains(&format!("{bad:?}")),
            "{field} {bad:?}: the error does not name the nic and the value: {err}"
        );
    }
    // The hostname (from the configuration) is checked the same way.
    let mut bad_host = cfg.clone();
    bad_host.hostname = Some("leaf01\n!".into());
    let (_, desc) =
        api::parse_switch_document("t", r#"{"id": "leaf01", "rack_id": "r", "nics": []}"#, None)
            .unwrap();
    let err = reconcile::prepare(&desc, &bad_host, &state, &Confirmed::assumed()).unwrap_err();
    assert!(err.to_string().contains("hostname"), "{err}");
}

/// `metal-switchd render frr` prints what the library renders (for the
/// flavour of the snapshot: Dell Enterprise SONiC 4.5, whose start script
/// adds no zebra lines).
#[test]
fn cli_render_frr() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/frr/render/firewalls");
    let configdb = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(configdb.path(), fixtures::leaf01_with_ports().unwrap()).unwrap();
    let out = support::process::succeeded(
        Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .args(["render", "frr", "--flavour", "dell-4.5", "--switch"])
            .arg(dir.join("switch.json"))
            .arg("--configdb")
            .arg(configdb.path())
            .env_remove("METAL_SWITCHD_CONFIG"),
        "render frr",
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        render_case(&dir).unwrap()
    );

    // Invalid input: exit code 2, nothing printed on stdout.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        r#"{"id": "leaf01", "rack_id": "r", "nics": [{"name": "Ethernet0 x", "vrf": "default"}]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .arg("--config")
        .arg(dir.join("config.toml"))
        .args(["render", "frr", "--switch"])
        .arg(bad.path())
        .arg("--configdb")
        .arg(configdb.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// A management route must be of the gateway's address family: a check of
/// the configuration, so `check-config` refuses it as `plan` does.
#[test]
fn management_route_family_must_match_the_gateway() {
    let err = Config::from_sources(
        Some((
            "config.toml",
            "hostname = \"leaf01\"\npxe_vlan_id = 3900\nmanagement_gateway = \"192.168.0.1\"\n\
             additional_mgmt_routes = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n",
        )),
        vec![],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("additional_mgmt_routes 2001:db8::/32"),
        "{err}"
    );
    assert!(!err.contains("10.0.0.0/8"), "{err}");
    // A configuration built in code is checked by spec::build the same way.
    let cfg = Config {
        hostname: Some("leaf01".into()),
        pxe_vlan_id: 3900,
        management_gateway: Some("192.168.0.1".parse().unwrap()),
        additional_mgmt_routes: vec!["2001:db8::/32".parse().unwrap()],
        ..Config::default()
    };
    let (_, desc) = api::parse_switch_document(
        "t",
        r#"{"id": "leaf01", "rack_id": "r", "nics": [{"name": "Ethernet0", "vrf": ""}]}"#,
        None,
    )
    .unwrap();
    let err = reconcile::prepare(&desc, &cfg, &base_state(), &Confirmed::assumed())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("additional_mgmt_routes 2001:db8::/32"),
        "{err}"
    );
}
