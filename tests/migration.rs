//! Migration from metal-core, as an operator runs it, on this machine: the
//! package built by `./dev package`, metal-roles' deployment of metal-core
//! (its unit file, enabled under sonic.target, running; its environment in
//! /etc/default/metal-core; the gRPC certificates), a lab switch (redis with
//! the SONiC stand-in) and the lab metal API. PID 1 is not systemd here: the
//! systemd stand-in (lab/src/systemd_standin.rs) runs the units from their
//! unit files over D-Bus — metal-core's as a stand-in process, the
//! package's metal-switchd.service as the real installed binary in a network
//! namespace — and `systemctl` itself is pointed at it
//! (`SYSTEMCTL_FORCE_BUS`, with /run/systemd/system present in a private
//! mount namespace) while dpkg runs the maintainer scripts.
//!
//! 1. `dpkg -i` while metal-core runs: metal-core keeps running, the agent is
//!    neither enabled nor started, the postinst says how to switch over.
//! 2. `metal-switchd migrate` with a world-readable environment file holding
//!    the HMAC key: refused, nothing changed (exit 2).
//! 3. `metal-switchd migrate`: metal-core stopped and disabled, the agent
//!    enabled, started and converged (CONFIG_DB has leaf01's target).
//! 4. `metal-switchd migrate --rollback`: the agent stopped and disabled,
//!    metal-core enabled and running again.
//!
//! It installs system-wide: the package lock, a refusal when the package or
//! any of the files it writes are already there, and everything removed at
//! the end, also when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, Call};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::pki::TestPki;
use metal_switchd_lab::redis_server::CONFIG_DB;
use metal_switchd_lab::sonic::StandInOptions;
use metal_switchd_lab::systemd_standin::{ServiceUnit, StandinOptions, SystemdStandin, UnitAction};
use support::Switch;
use support::agent::AgentNetns;
use support::package::{INSTALL_LOCK, Lock, PACKAGE, PurgeOnDrop, assert_root, build, sh, text};

const HMAC_KEY: &str = "metal-edit-migration-key";
/// METAL_CORE_MANAGEMENT_GATEWAY: FRR routes the management VRF through it.
const MGMT_GATEWAY: &str = "192.168.0.1";
const METAL_CORE_UNIT: &str = "/etc/systemd/system/metal-core.service";
const METAL_CORE_WANTS: &str = "/etc/systemd/system/sonic.target.wants/metal-core.service";
const AGENT_WANTS: &str = "/etc/systemd/system/sonic.target.wants/metal-switchd.service";
const AGENT_UNIT: &str = "/usr/lib/systemd/system/metal-switchd.service";
const CORE_ENV: &str = "/etc/default/metal-core";
const CONFFILE: &str = "/etc/metal-switchd/config.toml";
/// Long enough to only catch hangs.
const HANG: Duration = Duration::from_secs(120);

/// metal-core's unit as metal-roles' systemd-docker-service role writes it
/// (ordering, sonic.target), running a stand-in process instead of
/// `docker run … metal-core`.
const METAL_CORE_UNIT_TEXT: &str = "[Unit]
Description=metal-core (stand-in of metal-roles' docker unit)
After=bgp.service database.service sonic.target syncd.service
BindsTo=sonic.target
Wants=database.service

[Service]
ExecStart=/bin/sleep infinity
Restart=always
RestartSec=10

[Install]
WantedBy=sonic.target
";

/// Everything this test puts on the machine, removed when dropped (the
/// package purged after these files).
struct Cleanup {
    _purge: PurgeOnDrop,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in [METAL_CORE_WANTS, AGENT_WANTS, METAL_CORE_UNIT, CORE_ENV] {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir("/etc/systemd/system/sonic.target.wants");
    }
}

/// `dpkg -i` with `systemctl` talking to the stand-in: /run/systemd/system
/// exists (a tmpfs over /run/systemd, in a private mount namespace) and
/// `SYSTEMCTL_FORCE_BUS=1` sends systemctl to the bus in
/// `DBUS_SYSTEM_BUS_ADDRESS` instead of PID 1.
fn dpkg_install_with_systemd(deb: &Path, bus: &str) -> Output {
    std::fs::create_dir_all("/run/systemd").unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && \
             systemctl --quiet is-active metal-core.service && echo 'systemctl: metal-core is active' >&2; \
             dpkg -i \"$0\"",
        )
        .arg(deb)
        .env("SYSTEMCTL_FORCE_BUS", "1")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg -i: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The installed binary as root runs it from a shell: a clean environment.
fn installed(args: &[&str]) -> Output {
    Command::new("/usr/bin/metal-switchd")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn migration_from_metal_core_and_back() {
    assert_root("the migration test installs the package system-wide");
    let _lock = Lock::take(INSTALL_LOCK);
    for f in [METAL_CORE_UNIT, METAL_CORE_WANTS, CORE_ENV] {
        assert!(
            !Path::new(f).exists(),
            "{f} exists: this test writes it (a stand-in of metal-roles' deployment); \
             remove it first"
        );
    }
    let _cleanup = Cleanup {
        _purge: PurgeOnDrop::not_installed_yet(),
    };
    let dir = tempfile::tempdir().unwrap();
    let (deb, _) = build(&dir.path().join("out"), &[]);

    // The switch and the metal API.
    let sw = Switch::leaf01(StandInOptions::random(0x3a11, Duration::from_millis(25)));
    let ns = AgentNetns::new(&["Ethernet0", "Ethernet1"]);
    let server = ApiServer::start(ApiServerOptions {
        switches: vec![fixtures::LEAF01_SWITCH_V1.to_owned()],
        partitions: vec!["mini-lab".into()],
        hmac_edit_key: Some(HMAC_KEY.into()),
        listen: (ns.host_ip, 0).into(),
        ..ApiServerOptions::default()
    })
    .expect("lab API server");

    // What metal-roles deployed: the unit (enabled), the gRPC certificates,
    // and its environment carried into /etc/default/metal-core (README.md,
    // "Upgrade from metal-core", step 1), with metal-roles' variables.
    std::fs::create_dir_all("/etc/systemd/system/sonic.target.wants").unwrap();
    std::fs::write(METAL_CORE_UNIT, METAL_CORE_UNIT_TEXT).unwrap();
    std::os::unix::fs::symlink(METAL_CORE_UNIT, METAL_CORE_WANTS).unwrap();
    let certs = dir.path().join("certs/grpc");
    std::fs::create_dir_all(&certs).unwrap();
    // metal-roles' metal-core role copies all three with mode 0640 (root).
    let pki = TestPki::generate("leaf01").unwrap().write(&certs).unwrap();
    for f in [&pki.ca, &pki.client_cert, &pki.client_key] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    // Every variable of metal-roles' `metal-core-env.j2` (@ 0cf6bbe), in its
    // order, with the lab's values (the management gateway is set, as the
    // template does when the partition has one); the sync schedule and
    // delay are examples (metal-core does not read them; the agent names
    // them in a notice).
    let env = format!(
        "TZ=Europe/Berlin\n\
         METAL_CORE_LOOPBACK_IP=10.0.0.11\nMETAL_CORE_ASN=4200000011\n\
         METAL_CORE_CIDR=10.255.255.0/24\nMETAL_CORE_PARTITION_ID=mini-lab\n\
         METAL_CORE_RACK_ID=rack01\nMETAL_CORE_BIND_ADDRESS=0.0.0.0\n\
         METAL_CORE_METAL_API_IP={ip}\nMETAL_CORE_METAL_API_PORT={port}\n\
         METAL_CORE_METAL_API_PROTOCOL=http\nMETAL_CORE_METAL_API_BASEPATH=/metal/\n\
         METAL_CORE_HMAC_KEY={HMAC_KEY}\nMETAL_CORE_LOG_LEVEL=info\n\
         METAL_CORE_RECONFIGURE_SWITCH=true\n\
         METAL_CORE_SYNC_SCHEDULE=\"*/5 * * * *\"\nMETAL_CORE_SYNC_DELAY=\"30s\"\n\
         METAL_CORE_MANAGEMENT_GATEWAY={MGMT_GATEWAY}\n\
         METAL_CORE_GRPC_ADDRESS={ip}:50051\nMETAL_CORE_GRPC_CA_CERT_FILE={ca}\n\
         METAL_CORE_GRPC_CLIENT_CERT_FILE={cert}\nMETAL_CORE_GRPC_CLIENT_KEY_FILE={key}\n\
         METAL_CORE_ADDITIONAL_BRIDGE_VIDS=\nMETAL_CORE_ADDITIONAL_BRIDGE_PORTS=\n\
         METAL_CORE_SPINE_UPLINKS=Ethernet120,Ethernet124\n\
         METAL_CORE_INTERFACES_TPL_FILE=\nMETAL_CORE_FRR_TPL_FILE=\n\
         METAL_CORE_PXE_VLAN_ID=3900\n",
        ip = server.addr().ip(),
        port = server.addr().port(),
        ca = pki.ca.display(),
        cert = pki.client_cert.display(),
        key = pki.client_key.display(),
    );
    std::fs::write(CORE_ENV, &env).unwrap();
    std::fs::set_permissions(CORE_ENV, std::fs::Permissions::from_mode(0o600)).unwrap();

    // systemd: metal-core runs; the agent's unit is the package's (the
    // package test checks the installed file is this one).
    let core_unit = ServiceUnit::from_file(Path::new(METAL_CORE_UNIT)).unwrap();
    let mut agent_unit =
        ServiceUnit::parse(include_str!("../systemd/metal-switchd.service")).unwrap();
    agent_unit.path = Some(PathBuf::from(AGENT_UNIT));
    assert_eq!(agent_unit.conflicts, ["metal-core.service"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let standin = rt
        .block_on(SystemdStandin::start_with(
            vec![
                ("metal-core.service", UnitAction::Service(core_unit)),
                ("metal-switchd.service", UnitAction::Service(agent_unit)),
            ],
            StandinOptions {
                exec_prefix: vec!["ip".into(), "netns".into(), "exec".into(), ns.name.clone()],
                enable_dir: Some(PathBuf::from("/etc/systemd/system")),
                enabled: vec!["metal-core.service".into()],
            },
        ))
        .unwrap();
    rt.block_on(async {
        let systemd = metal_switchd::systemd::Systemd::connect(Some(standin.address()), HANG)
            .await
            .unwrap();
        let r = systemd
            .start_unit("metal-core.service", HANG)
            .await
            .unwrap();
        assert!(r.is_done(), "{r}");
    });
    assert_eq!(standin.active_state("metal-core.service"), "active");
    let core_pid = standin.main_pid("metal-core.service").unwrap();

    // 1. Install while metal-core runs.
    let out = dpkg_install_with_systemd(&deb, standin.address());
    let said = both(&out);
    eprintln!("--- dpkg -i\n{said}");
    assert!(
        said.contains("systemctl: metal-core is active"),
        "systemctl does not see the stand-in: {said}"
    );
    assert!(
        said.contains("neither enabled nor started") && said.contains("metal-switchd migrate"),
        "{said}"
    );
    assert_eq!(standin.active_state("metal-core.service"), "active");
    assert_eq!(standin.main_pid("metal-core.service"), Some(core_pid));
    assert_eq!(
        standin.calls().len(),
        1,
        "dpkg started or stopped units: {:?}",
        standin.calls()
    );
    assert_eq!(standin.active_state("metal-switchd.service"), "inactive");
    assert!(!Path::new(AGENT_WANTS).exists(), "the agent was enabled");

    // The agent's site settings (an operator edits the conffile): the lab
    // switch's redis, FRR validated and installed here, not reloaded;
    // metal-core's settings come from its environment, the status file goes
    // to the unit's RuntimeDirectory.
    std::fs::write(
        dir.path().join("sonic_version.yml"),
        "build_version: 'SONiC.4.5.1-Enterprise_Base'\n",
    )
    .unwrap();
    sw.binary_config(dir.path())
        .extra(&format!(
            "reconfigure_switch_interval = \"1s\"\nmanagement_interface = \"mgmt0\"\n\
             sonic_version_file = {:?}\nbgp_neighbor_state_file = \"\"\n\
             api_retry_backoff = \"20ms\"\napi_retry_max_backoff = \"200ms\"\ntimeout = \"10s\"\n\
             systemd_bus_address = {:?}\n",
            dir.path().join("sonic_version.yml").display().to_string(),
            standin.address()
        ))
        .without(&[
            "partition_id",
            "rack_id",
            "asn",
            "loopback_ip",
            "spine_uplinks",
            "pxe_vlan_id",
            "state_directory",
        ])
        .write(Path::new(CONFFILE));

    // 2. A check fails: nothing changes.
    std::fs::set_permissions(CORE_ENV, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = installed(&["migrate"]);
    eprintln!("--- migrate (world-readable HMAC key)\n{}", both(&refused));
    assert_eq!(refused.status.code(), Some(2), "{}", both(&refused));
    assert!(
        both(&refused).contains("nothing was changed")
            && both(&refused).contains("/etc/default/metal-core holds the HMAC key"),
        "{}",
        both(&refused)
    );
    assert_eq!(standin.calls().len(), 1, "{:?}", standin.calls());
    assert_eq!(standin.active_state("metal-core.service"), "active");
    std::fs::set_permissions(CORE_ENV, std::fs::Permissions::from_mode(0o600)).unwrap();

    // 3. The migration.
    let migrated = installed(&["migrate", "--timeout", "2m"]);
    eprintln!("--- metal-switchd migrate\n{}", both(&migrated));
    assert!(
        migrated.status.success(),
        "migrate: {}\nagent's log:\n{}",
        both(&migrated),
        standin.service_log("metal-switchd.service")
    );
    let said = text(&migrated);
    assert!(said.contains("checked: the configuration"), "{said}");
    // metal-roles' variables without effect, each named (none silently
    // ignored): metal-core reads neither SYNC_ variable, and uses CIDR and
    // BIND_ADDRESS only on Cumulus.
    for var in [
        "METAL_CORE_SYNC_SCHEDULE",
        "METAL_CORE_SYNC_DELAY",
        "METAL_CORE_CIDR",
        "METAL_CORE_BIND_ADDRESS",
    ] {
        assert!(
            said.contains(&format!("not used: environment variable {var} sets ")),
            "{said}"
        );
    }
    assert!(said.contains("converged: agent pid"), "{said}");
    assert_eq!(standin.active_state("metal-core.service"), "inactive");
    assert!(!standin.is_enabled("metal-core.service"));
    assert!(!Path::new(METAL_CORE_WANTS).exists());
    assert_eq!(standin.active_state("metal-switchd.service"), "active");
    assert!(standin.is_enabled("metal-switchd.service"));
    assert_eq!(
        std::fs::canonicalize(AGENT_WANTS).unwrap(),
        std::fs::canonicalize(AGENT_UNIT).unwrap()
    );
    // The agent's work, from the reference (README's table): a tenant port
    // bound to its VRF, the VRF with its VNI.
    let dump = sw.dump(CONFIG_DB);
    assert_eq!(
        dump.get("VRF|Vrf104009").cloned(),
        Some(
            [("fallback", "false"), ("vni", "104009")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        )
    );
    // METAL_CORE_MANAGEMENT_GATEWAY reached frr.conf as metal-core's
    // template writes it (metal-core
    // `cmd/internal/switcher/templates/tpl/sonic_frr.tpl`:
    // `ip route 0.0.0.0/0 {{ .Ports.Eth0.Gateway }} nexthop-vrf mgmt`).
    let frr = std::fs::read_to_string(dir.path().join("frr.conf")).unwrap();
    let route = format!("ip route 0.0.0.0/0 {MGMT_GATEWAY} nexthop-vrf mgmt");
    assert!(
        frr.lines().any(|l| l == route),
        "no `{route}` in the installed frr.conf:\n{frr}"
    );
    assert!(
        !server.records_of(Call::V1Notify).is_empty(),
        "no report reached the API"
    );
    let status = installed(&["status"]);
    assert!(status.status.success(), "{}", both(&status));

    // 4. The rollback.
    let back = installed(&["migrate", "--rollback"]);
    eprintln!("--- metal-switchd migrate --rollback\n{}", both(&back));
    assert!(back.status.success(), "{}", both(&back));
    assert_eq!(standin.active_state("metal-switchd.service"), "inactive");
    assert!(!standin.is_enabled("metal-switchd.service"));
    assert!(!Path::new(AGENT_WANTS).exists());
    assert_eq!(standin.active_state("metal-core.service"), "active");
    assert!(standin.is_enabled("metal-core.service"));
    assert!(Path::new(METAL_CORE_WANTS).exists());
    // Every job: metal-core started (by the test), stopped, started again;
    // the agent started and stopped.
    let jobs: Vec<String> = standin
        .calls()
        .iter()
        .map(|c| format!("{} {}", c.mode, c.unit))
        .collect();
    assert_eq!(
        jobs,
        [
            "replace metal-core.service",
            "stop:replace metal-core.service",
            "replace metal-switchd.service",
            "stop:replace metal-switchd.service",
            "replace metal-core.service",
        ],
        "{jobs:?}"
    );
    drop(standin);
    sh(Command::new("dpkg").args(["--purge", PACKAGE]));
}
