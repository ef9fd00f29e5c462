//! The systemd adapter and the FRR validation/reload over D-Bus, against a
//! private `dbus-daemon` with the systemd stand-in of the lab crate
//! (`StartUnit` + `JobRemoved`: done, failed, never finishes), and against
//! real FRR daemons where a unit runs a real command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{LEAF_SWITCH, leaf_conf, temp_files};
use metal_switchd::frr::install::{InstallError, Installed, Installer, Rollback};
use metal_switchd::frr::reload::{ReloadError, Reloader};
use metal_switchd::frr::validate::{ValidateError, Validator, validation_unit};
use metal_switchd::systemd::{JobResult, Systemd, SystemdError};
use metal_switchd_lab::frr_lab::{FRR_RELOAD, FrrLab};
use metal_switchd_lab::systemd_standin::{StartCall, SystemdStandin, UnitAction};

const VALIDATION_TEMPLATE: &str = "bgp-validation@.service";

/// Generous: only catches a wait that never ends.
const HANG: Duration = Duration::from_secs(60);

/// The SONiC unit: `ExecStart=vtysh --dryrun --inputfile %I`.
fn bgp_validation() -> (&'static str, UnitAction) {
    (
        VALIDATION_TEMPLATE,
        UnitAction::Exec(
            ["/usr/bin/vtysh", "--dryrun", "--inputfile", "%I"]
                .map(String::from)
                .to_vec(),
        ),
    )
}

#[tokio::test]
async fn start_unit_reports_how_the_job_ended() {
    let standin = SystemdStandin::start(vec![
        ("ok.service", UnitAction::Done),
        ("fast.service", UnitAction::DoneBeforeReply),
        ("broken.service", UnitAction::Failed),
        ("stuck.service", UnitAction::Hang),
    ])
    .await
    .unwrap();
    let systemd = Systemd::connect(Some(standin.address()), Duration::from_secs(5))
        .await
        .unwrap();
    let t = Duration::from_secs(5);

    assert_eq!(
        systemd.start_unit("ok.service", t).await.unwrap(),
        JobResult::Done
    );
    // A job that ends before StartUnit returns is not missed.
    assert_eq!(
        systemd.start_unit("fast.service", t).await.unwrap(),
        JobResult::Done
    );
    assert_eq!(
        systemd.start_unit("broken.service", t).await.unwrap(),
        JobResult::Failed
    );

    // A job that never ends: the 300 ms limit ends the wait (the outer
    // minute only catches a wait that ignores it).
    let err = tokio::time::timeout(
        HANG,
        systemd.start_unit("stuck.service", Duration::from_millis(300)),
    )
    .await
    .expect("start_unit waited for a job that never ends")
    .unwrap_err();
    assert!(
        matches!(err, SystemdError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(err.to_string().contains("stuck.service"), "{err}");
    assert!(err.is_transient());

    let err = systemd.start_unit("nope.service", t).await.unwrap_err();
    assert!(err.to_string().contains("NoSuchUnit"), "{err}");
    assert!(!err.is_transient());

    // Every start is a StartUnit in mode "replace".
    let calls = standin.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c.mode == "replace"), "{calls:?}");
    assert_eq!(
        calls[0],
        StartCall {
            unit: "ok.service".into(),
            mode: "replace".into()
        }
    );
}

#[tokio::test]
async fn connecting_to_a_missing_bus_says_what_to_do() {
    let err = Systemd::connect(
        Some("unix:path=/nonexistent/bus.sock"),
        Duration::from_secs(5),
    )
    .await
    .err()
    .expect("no bus there");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/bus.sock"), "{msg}");
    assert!(msg.contains("systemd_bus_address"), "{msg}");

    // A socket that accepts but never speaks D-Bus: the timeout ends the wait.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let err = tokio::time::timeout(
        HANG,
        Systemd::connect(
            Some(&format!("unix:path={}", socket.display())),
            Duration::from_millis(300),
        ),
    )
    .await
    .expect("connect waited for a bus that never speaks")
    .err()
    .expect("nothing answers there");
    assert!(
        matches!(err, SystemdError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(err.to_string().contains("silent.sock"), "{err}");
}

#[tokio::test]
async fn validation_unit_runs_vtysh_on_the_escaped_path() {
    let standin = SystemdStandin::start(vec![bgp_validation()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let validator = Validator::Systemd {
        bus: Some(standin.address().to_owned()),
        template: VALIDATION_TEMPLATE.into(),
        timeout: Duration::from_secs(10),
    };
    // A path that needs escaping (`-` becomes `\x2d`).
    let good = dir.path().join("frr-good.conf");
    std::fs::write(&good, "router bgp 4200000011\n bgp router-id 10.0.0.11\n").unwrap();
    validator.validate(&good).await.unwrap();
    let bad = dir.path().join("frr-bad.conf");
    std::fs::write(&bad, "router bgp 4200000011\n bgp frobnicate\n").unwrap();
    let err = validator.validate(&bad).await.unwrap_err();
    assert!(err.is_rejection(), "{err}");
    assert!(matches!(
        err,
        ValidateError::UnitRejected {
            result: JobResult::Failed,
            ..
        }
    ));
    let calls = standin.calls();
    assert_eq!(
        calls[0].unit,
        validation_unit(VALIDATION_TEMPLATE, &good).unwrap()
    );
    assert!(
        calls[0].unit.contains(r"frr\x2dgood.conf.service"),
        "{calls:?}"
    );
}

/// The SONiC way end to end: validation unit + `frr-reload.service`, both
/// over D-Bus, the reload unit running the real frr-reload.py into real
/// daemons.
#[tokio::test]
async fn install_with_units_over_dbus_into_real_daemons() {
    let lab = FrrLab::start("leaf01").unwrap();
    let mut reload_argv = vec!["python3".to_owned(), FRR_RELOAD.to_owned()];
    reload_argv.extend(
        lab.frr_reload_args()
            .into_iter()
            .map(|a| a.replace("{file}", &lab.config_file().display().to_string())),
    );
    let standin = SystemdStandin::start(vec![
        bgp_validation(),
        ("frr-reload.service", UnitAction::Exec(reload_argv)),
    ])
    .await
    .unwrap();
    let installer = Installer {
        dest: lab.config_file(),
        validator: Validator::Systemd {
            bus: Some(standin.address().to_owned()),
            template: VALIDATION_TEMPLATE.into(),
            timeout: Duration::from_secs(10),
        },
        reloader: Reloader::Systemd {
            bus: Some(standin.address().to_owned()),
            unit: "frr-reload.service".into(),
            timeout: Duration::from_secs(60),
        },
    };
    let text = leaf_conf(&lab, LEAF_SWITCH, "");
    let outcome = installer.install(&text).await.unwrap();
    assert!(matches!(
        outcome,
        Installed::Replaced {
            reload: Some(_),
            ..
        }
    ));
    let running = lab.running_config().unwrap();
    assert!(
        running.contains(" neighbor FIREWALL peer-group"),
        "{running}"
    );
    assert!(lab.reload_test(&lab.config_file()).unwrap().is_empty());

    // A file FRR rejects never reaches the reload unit.
    let before = standin.calls().len();
    let bad = text.replace(
        "bgp bestpath as-path multipath-relax",
        "bgp bestpath sideways",
    );
    let err = installer.install(&bad).await.unwrap_err();
    assert!(err.is_rejection(), "{err}");
    let calls = standin.calls();
    assert_eq!(calls.len(), before + 1, "{calls:?}");
    assert!(calls[before].unit.starts_with("bgp-validation@"));
    assert_eq!(std::fs::read_to_string(lab.config_file()).unwrap(), text);
    assert!(temp_files(&lab.config_dir()).is_empty());
}

/// `frr-reload.service` failing or never finishing: the previous file is
/// restored and the reload unit is started again for it.
#[tokio::test]
async fn failed_and_stuck_reload_units_roll_back() {
    for (action, want) in [
        (UnitAction::Failed, "failed"),
        (UnitAction::Hang, "timeout"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("frr.conf");
        let previous = "hostname leaf01\n";
        std::fs::write(&dest, previous).unwrap();
        let standin = SystemdStandin::start(vec![
            ("ok@.service", UnitAction::Done),
            ("frr-reload.service", action),
        ])
        .await
        .unwrap();
        let installer = Installer {
            dest: dest.clone(),
            validator: Validator::Systemd {
                bus: Some(standin.address().to_owned()),
                template: "ok@.service".into(),
                timeout: Duration::from_secs(5),
            },
            reloader: Reloader::Systemd {
                bus: Some(standin.address().to_owned()),
                unit: "frr-reload.service".into(),
                timeout: Duration::from_millis(300),
            },
        };
        let err = installer.install("hostname leaf02\n").await.unwrap_err();
        let InstallError::Reload {
            error, rollback, ..
        } = &err
        else {
            panic!("{err}");
        };
        match want {
            "failed" => assert!(
                matches!(
                    **error,
                    ReloadError::Unit {
                        result: JobResult::Failed,
                        ..
                    }
                ),
                "{error}"
            ),
            _ => assert!(
                matches!(**error, ReloadError::Systemd(SystemdError::Timeout { .. })),
                "{error}"
            ),
        }
        assert!(
            matches!(**rollback, Rollback::RestoredButReloadFailed(_)),
            "{rollback}"
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), previous);
        let reloads = standin
            .calls()
            .iter()
            .filter(|c| c.unit == "frr-reload.service")
            .count();
        assert_eq!(reloads, 2, "the new file, then the restored one");
        assert!(temp_files(dir.path()).is_empty());
    }
}
