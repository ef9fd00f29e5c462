//! The FRR adapters against real daemons: `zebra` + `bgpd` + `staticd` in a
//! network namespace per test (see `metal_switchd_lab::frr_lab`), with
//! `vtysh --dryrun` validation and `frr-reload.py` reloads.
//!
//! This kernel has no VRF devices: tenant VRFs load as *inactive* VRFs
//! (their blocks are in the running configuration, their BGP instances
//! exist, no tenant session can come up). The tests print that loudly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{LEAF_SWITCH, exec_installer, leaf_conf, leaf_config, spec, temp_files};
use metal_switchd::flavour::FrrLines;
use metal_switchd::frr;
use metal_switchd::frr::install::{InstallError, Installed, Rollback};
use metal_switchd::frr::reload::ReloadError;
use metal_switchd_lab::frr_lab::{FrrLab, kernel_has_vrf};

fn say_no_vrf() {
    if !kernel_has_vrf() {
        eprintln!(
            "NOTE: this kernel has no `vrf` link type: tenant VRFs stay inactive in zebra \
             (configuration and BGP instances only; no tenant session can be exercised here)"
        );
    }
}

#[tokio::test]
async fn install_and_exec_reload_into_real_daemons() {
    say_no_vrf();
    let lab = FrrLab::start("leaf01").unwrap();
    let text = leaf_conf(
        &lab,
        LEAF_SWITCH,
        "set_src_loopback = true\nmanagement_gateway = \"192.168.0.1\"\n\
         additional_mgmt_routes = [\"10.10.0.0/16\"]\n",
    );
    let installer = exec_installer(&lab);

    let started = Instant::now();
    let outcome = installer.install(&text).await.unwrap_or_else(|e| {
        panic!("{e}\n{}", lab.logs());
    });
    let Installed::Replaced {
        backup,
        validation,
        reload: Some(reload),
    } = outcome
    else {
        panic!("expected a replaced configuration, got {outcome:?}");
    };
    assert_eq!(backup, None, "there was no previous file");
    eprintln!(
        "install into empty daemons: validation {validation:?}, reload {:?}, total {:?}",
        reload.elapsed,
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(lab.config_file()).unwrap(), text);

    let running = lab.running_config().unwrap();
    for needle in [
        "hostname leaf01",
        "frr defaults datacenter",
        "router bgp 4200000011\n",
        " neighbor FABRIC peer-group",
        " neighbor FIREWALL peer-group",
        " neighbor Ethernet120 interface peer-group FABRIC",
        " neighbor Ethernet0 interface peer-group FIREWALL",
        "  neighbor Ethernet0 route-map fw-Ethernet0-in in",
        "  neighbor Ethernet0 route-map fw-Ethernet0-in6 in",
        "  neighbor Ethernet0 route-map fw-Ethernet0-vni out",
        "route-map DENY_MGMT deny 10",
        "route-map fw-Ethernet0-vni permit 11",
        " match evpn vni 104010",
        "ipv6 prefix-list fw-Ethernet0-in6-prefixes seq 5 permit 2001:db8:f::/48 le 128",
        "route-map RM_SET_SRC permit 10",
        "ip protocol bgp route-map RM_SET_SRC",
        "ip route 0.0.0.0/0 192.168.0.1 nexthop-vrf mgmt",
        "ip route 10.10.0.0/16 192.168.0.1 nexthop-vrf mgmt",
        "vrf Vrf104009\n vni 104009\nexit-vrf",
        "vrf Vrf104010\n vni 104010\nexit-vrf",
        "router bgp 4200000011 vrf Vrf104009",
        "router bgp 4200000011 vrf Vrf104010",
        " neighbor MACHINE peer-group",
        " neighbor Ethernet1 interface peer-group MACHINE",
        "  neighbor MACHINE route-map Vrf104010-in6 in",
        "  advertise ipv6 unicast",
        "interface Ethernet2\n ipv6 nd ra-interval 6\n no ipv6 nd suppress-ra",
    ] {
        assert!(
            running.contains(needle),
            "running config lacks {needle:?}:\n{running}"
        );
    }

    // What the agent rendered is what FRR runs: frr-reload.py finds no delta.
    let deltas = lab.reload_test(&lab.config_file()).unwrap();
    assert!(
        deltas.is_empty(),
        "frr-reload.py --test shows deltas after the reload:\n{}",
        deltas.output
    );
    eprintln!(
        "frr-reload.py --test {} against the running daemons:\n{}",
        lab.config_file().display(),
        deltas.output
    );

    // The same text again: nothing to do, no reload.
    assert_eq!(
        installer.install(&text).await.unwrap(),
        Installed::Unchanged
    );

    // A change: frr-reload.py sees it (the check above can fail) ...
    let changed = leaf_conf(&lab, LEAF_SWITCH, "");
    let pending = lab.scratch_dir().join("changed.conf");
    std::fs::write(&pending, &changed).unwrap();
    let deltas = lab.reload_test(&pending).unwrap();
    assert!(
        deltas
            .to_delete
            .iter()
            .any(|l| l.contains("ip protocol bgp route-map RM_SET_SRC")),
        "{}",
        deltas.output
    );
    // ... the previous file becomes .bak, FRR follows.
    let outcome = installer.install(&changed).await.unwrap();
    if let Installed::Replaced {
        reload: Some(r), ..
    } = &outcome
    {
        eprintln!(
            "reload of a change (set-src and mgmt routes removed): {:?}",
            r.elapsed
        );
    }
    assert!(matches!(
        outcome,
        Installed::Replaced { backup: Some(ref b), .. } if *b == installer.backup_path()
    ));
    assert_eq!(
        std::fs::read_to_string(installer.backup_path()).unwrap(),
        text
    );
    let running = lab.running_config().unwrap();
    assert!(!running.contains("RM_SET_SRC"), "{running}");
    assert!(!running.contains("nexthop-vrf mgmt"), "{running}");
    assert!(lab.reload_test(&lab.config_file()).unwrap().is_empty());
    assert!(temp_files(&lab.config_dir()).is_empty());
}

#[tokio::test]
async fn a_configuration_frr_rejects_is_never_installed() {
    let lab = FrrLab::start("leaf01").unwrap();
    let installer = exec_installer(&lab);
    let good = leaf_conf(&lab, LEAF_SWITCH, "");
    installer.install(&good).await.unwrap();
    let running_before = lab.running_config().unwrap();

    let bad = good.replace(
        " neighbor FABRIC timers 2 8\n",
        " neighbor FABRIC timers 2 8\n neighbor FABRIC bogus-option\n",
    );
    let err = installer.install(&bad).await.unwrap_err();
    assert!(err.is_rejection(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("bogus-option"), "{msg}");
    assert!(msg.contains("not installed"), "{msg}");
    assert!(matches!(err, InstallError::Invalid { .. }));
    assert_eq!(std::fs::read_to_string(lab.config_file()).unwrap(), good);
    assert!(
        !installer.backup_path().exists(),
        "a rejected file must not rotate the backup"
    );
    assert_eq!(lab.running_config().unwrap(), running_before);
    assert!(temp_files(&lab.config_dir()).is_empty());
}

#[tokio::test]
async fn a_failing_reload_restores_the_backup_and_reloads_it() {
    let lab = FrrLab::start("leaf01").unwrap();
    let installer = exec_installer(&lab);

    // `agentx` passes `vtysh --dryrun` but zebra without its snmp module
    // refuses it at load time: a real reload failure after validation.
    let mut cfg = leaf_config(lab.hostname(), 4200000011, "10.0.0.11", "");
    cfg.frr_agentx = true;
    let with_agentx = frr::render(&spec(&cfg, LEAF_SWITCH), FrrLines::NONE);
    assert!(with_agentx.contains("\nagentx\n"));

    // No previous file: the failed one is removed.
    let err = installer.install(&with_agentx).await.unwrap_err();
    let InstallError::Reload {
        error, rollback, ..
    } = &err
    else {
        panic!("expected a reload failure, got {err}");
    };
    assert!(matches!(**error, ReloadError::Failed { .. }), "{error}");
    assert!(matches!(**rollback, Rollback::Removed), "{rollback}");
    assert!(!lab.config_file().exists());

    // With a previous file: it is put back and reloaded.
    let good = leaf_conf(&lab, LEAF_SWITCH, "");
    installer.install(&good).await.unwrap();
    let more_firewalls = LEAF_SWITCH.replace(
        r#"{"name": "Ethernet3", "vrf": "", "filter": null}"#,
        r#"{"name": "Ethernet3", "vrf": "default", "filter": {"cidrs": ["10.3.0.0/24"], "vnis": []}}"#,
    );
    let bad = frr::render(&spec(&cfg, &more_firewalls), FrrLines::NONE);
    assert!(bad.contains("neighbor Ethernet3 interface peer-group FIREWALL"));

    let started = Instant::now();
    let err = installer.install(&bad).await.unwrap_err();
    eprintln!("failed reload + roll-back took {:?}", started.elapsed());
    let msg = err.to_string();
    let InstallError::Reload { rollback, .. } = &err else {
        panic!("expected a reload failure, got {msg}");
    };
    assert!(matches!(**rollback, Rollback::Restored), "{msg}");
    assert!(
        msg.contains("agentx"),
        "the error shows FRR's complaint: {msg}"
    );
    assert!(msg.contains("restored and reloaded"), "{msg}");
    assert_eq!(std::fs::read_to_string(lab.config_file()).unwrap(), good);
    let running = lab.running_config().unwrap();
    assert!(
        !running.contains("Ethernet3"),
        "the failed configuration's firewall is still running:\n{running}"
    );
    let deltas = lab.reload_test(&lab.config_file()).unwrap();
    assert!(
        deltas.is_empty(),
        "FRR does not run the restored file:\n{}",
        deltas.output
    );
    assert!(temp_files(&lab.config_dir()).is_empty());
}

/// A reload that never ends is cut off by the timeout and rolled back.
#[tokio::test]
async fn a_hanging_reload_times_out() {
    let lab = FrrLab::start("leaf01").unwrap();
    let mut installer = exec_installer(&lab);
    let good = leaf_conf(&lab, LEAF_SWITCH, "");
    installer.install(&good).await.unwrap();
    installer.reloader = metal_switchd::frr::reload::Reloader::Exec {
        program: "sleep".into(),
        args: vec!["infinity".into()],
        timeout: Duration::from_millis(300),
    };
    let changed = leaf_conf(&lab, LEAF_SWITCH, "set_src_loopback = true\n");
    // The outer minute only catches an install that waits for the reload.
    let err = tokio::time::timeout(Duration::from_secs(60), installer.install(&changed))
        .await
        .expect("the install waited for a reload that never ends")
        .unwrap_err();
    let InstallError::Reload {
        error, rollback, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert!(
        matches!(**error, ReloadError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{error}"
    );
    assert!(
        matches!(**rollback, Rollback::RestoredButReloadFailed(_)),
        "{rollback}"
    );
    assert_eq!(std::fs::read_to_string(lab.config_file()).unwrap(), good);
}

/// Issue 20: why frr.conf must carry a flavour's zebra lines, and why only
/// where its zebra knows them — with real zebra loading each fpm module
/// (Debian's `dplane_fpm_nl` stands in for SONiC's fork `dplane_fpm_sonic`,
/// which takes the same commands).
///
/// 1. zebra started the way SONiC ≥ 202411 starts it: `-M dplane_fpm_sonic`
///    and the lines its start script appends (`docker_init.sh`
///    `write_default_zebra_config`). A reload of a file without them — what
///    metal-core and this agent installed before — takes them out of the
///    running zebra (`frr-reload.py` removes what the file lacks): no `fpm
///    address`, so routes never reach fpmsyncd. With them, they stay.
/// 2. zebra with the old `fpm` module (SONiC 202311, Dell, Edgecore 202211)
///    refuses `fpm address`: the reload fails and is rolled back; without
///    the fpm lines the same leaf loads.
#[tokio::test]
async fn each_flavours_zebra_lines_stay_in_its_zebra_and_the_old_fpm_module_refuses_the_new_ones() {
    use metal_switchd::flavour::Profile;
    let start_script = "no fpm use-next-hop-groups\nfpm address 127.0.0.1\n\
                        no zebra nexthop kernel enable\n";
    let lab = FrrLab::start_with("leaf01", &["dplane_fpm_nl"]).unwrap();
    lab.boot(&format!("hostname leaf01\n{start_script}"))
        .unwrap();
    assert!(
        lab.running_config()
            .unwrap()
            .contains("fpm address 127.0.0.1")
    );
    let installer = exec_installer(&lab);
    let cfg = leaf_config(lab.hostname(), 4200000011, "10.0.0.11", "");
    let s = spec(&cfg, LEAF_SWITCH);
    installer
        .install(&frr::render(&s, FrrLines::NONE))
        .await
        .unwrap();
    let running = lab.running_config().unwrap();
    assert!(
        !running.contains("fpm address"),
        "a reload without the lines kept them?\n{running}"
    );
    let community = frr::render(&s, Profile::Community202411.flavour().frr_lines());
    installer.install(&community).await.unwrap();
    let running = lab.running_config().unwrap();
    for l in [
        "fpm address 127.0.0.1",
        "no fpm use-next-hop-groups",
        "no zebra nexthop kernel enable",
    ] {
        assert!(running.lines().any(|x| x == l), "{l:?} missing:\n{running}");
    }
    let deltas = lab.reload_test(&lab.config_file()).unwrap();
    assert!(
        deltas.is_empty(),
        "FRR does not run the file:\n{}",
        deltas.output
    );
    drop(lab);

    let old = FrrLab::start_with("leaf01", &["fpm"]).unwrap();
    let installer = exec_installer(&old);
    let err = installer.install(&community).await.unwrap_err();
    let msg = err.to_string();
    let InstallError::Reload { rollback, .. } = &err else {
        panic!("expected a reload failure, got {msg}");
    };
    assert!(matches!(**rollback, Rollback::Removed), "{msg}");
    for p in [
        Profile::Dell45,
        Profile::Community202311,
        Profile::Edgecore202211,
    ] {
        let text = frr::render(&s, p.flavour().frr_lines());
        assert!(!text.contains("fpm "), "{p}");
        installer
            .install(&text)
            .await
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    let deltas = old.reload_test(&old.config_file()).unwrap();
    assert!(
        deltas.is_empty(),
        "FRR does not run the file:\n{}",
        deltas.output
    );
}
