//! `check-config` checks every file `run` will read under the rules `run`
//! applies (issue 21, item 3), shows the API version and why (issue 21,
//! item 4), and says loudly what plain HTTP risks; a v2 token is never
//! sent over plain HTTP unless `api_allow_plaintext` names the risk
//! (issue 22, item 4).
//!
//! Prerequisite: root (files are given to root's group, as metal-roles
//! deploys them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use metal_switchd::api::grpc::GrpcEvents;
use metal_switchd::config::Config;
use metal_switchd::reconcile::options;
use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, TokenGrant};
use metal_switchd_lab::pki::TestPki;

const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-check-config-token.c2lnbmF0dXJl";

/// `metal-switchd --config <dir>/agent.toml <args>` with a clean environment.
fn run(dir: &Path, settings: &str, args: &[&str]) -> Output {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"r01leaf01\"\ndatabase_config = {:?}\nsonic_version_file = {:?}\n\
             frr_config = {:?}\nbgp_neighbor_state_file = \"\"\n{settings}",
            dir.join("database_config.json"),
            dir.join("sonic_version.yml"),
            dir.join("frr").join("frr.conf"),
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_clear()
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn require_root() {
    assert_eq!(
        std::fs::metadata("/proc/self").unwrap().uid(),
        0,
        "these tests give files to root's group: run them as root (./dev test does)"
    );
}

/// The v1 gRPC files as metal-roles' metal-core role writes them: `mode:
/// 0640`, owned by root:root (it runs as root).
fn grpc_files(dir: &Path) -> (PathBuf, String) {
    let pki = TestPki::generate("r01leaf01").unwrap();
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    let files = pki.write(&certs).unwrap();
    for p in [&files.ca, &files.client_cert, &files.client_key] {
        std::os::unix::fs::chown(p, Some(0), Some(0)).unwrap();
        chmod(p, 0o640);
    }
    let settings = format!(
        "hmac_key = \"k\"\nmetal_api_protocol = \"https\"\ngrpc_address = \"localhost:50051\"\n\
         grpc_ca_cert_file = {:?}\ngrpc_client_cert_file = {:?}\ngrpc_client_key_file = {:?}\n",
        files.ca, files.client_cert, files.client_key
    );
    (files.client_key, settings)
}

/// Issue 21, item 3: the gRPC key metal-roles deploys (0640, root:root) is
/// accepted by `run`'s reader and by `check-config`; a world-readable key,
/// which `run` refuses, is refused by `check-config` too (it was accepted).
#[tokio::test]
async fn check_config_applies_runs_rules_to_the_grpc_key() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let (key, settings) = grpc_files(dir.path());
    // What `run` does with the files (phone-home's gRPC client).
    let cfg = Config::from_sources(
        Some(("agent.toml", &settings)),
        std::iter::empty::<(String, String)>(),
    )
    .unwrap();
    let grpc = options::grpc(&cfg).unwrap().unwrap();
    GrpcEvents::new(&grpc).expect("run accepts metal-roles' 0640 root:root key");
    let o = run(dir.path(), &settings, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.starts_with("# configuration is valid\n"), "{out}");

    chmod(&key, 0o644);
    let run_refuses = GrpcEvents::new(&grpc).unwrap_err().to_string();
    assert!(run_refuses.contains("readable by others"), "{run_refuses}");
    let o = run(dir.path(), &settings, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains(&key.display().to_string()), "{err}");
    assert!(err.contains("readable by others"), "{err}");
    assert!(!out.contains("configuration is valid"), "{out}");
}

/// Issue 21, items 3 and 4: the v2 token file is checked like `run`
/// reads it, and `check-config` shows the API version it chose (a token and
/// no HMAC key: v2) and why.
#[test]
fn check_config_checks_the_token_and_shows_the_api_version() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    chmod(&token, 0o600);
    let settings = format!(
        "metal_apiserver_url = \"https://api.example.com\"\nmetal_apiserver_token_file = {token:?}\n"
    );
    let o = run(dir.path(), &settings, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("# api_version = \"v2\" (chosen automatically: a metal-apiserver URL or token file and no HMAC key)"),
        "{out}"
    );
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN));
    chmod(&token, 0o604);
    let o = run(dir.path(), &settings, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains("metal-apiserver token file"), "{err}");
    assert!(err.contains("readable by others"), "{err}");
    assert!(!err.contains("lab-check-config-token"), "{err}");
}

/// Issue 22, item 4: plain HTTP is warned about loudly by `check-config`
/// (and at start-up); the warning says what v1's HMAC does not cover.
#[test]
fn check_config_warns_about_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        "hmac_key = \"k\"\nmetal_api_protocol = \"http\"\nmetal_api_ip = \"10.1.2.3\"\n",
        &["check-config"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("WARN"), "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
    assert!(
        err.contains(
            "the v1 HMAC signs only the date, the method and the salt, not the path or the body"
        ),
        "{err}"
    );
    assert!(out.contains("# api_version = \"v1\""), "{out}");
    let o = run(
        dir.path(),
        "hmac_key = \"k\"\nmetal_api_protocol = \"https\"\n",
        &["check-config"],
    );
    let (_, err) = text(&o);
    assert!(!err.contains("plain HTTP"), "{err}");
}

/// Issue 22, item 4: with a plain-HTTP metal_apiserver_url the v2 token is
/// not sent (the lab server sees no call), unless api_allow_plaintext =
/// true names the risk; `check-config` refuses the first and warns about
/// the second.
#[test]
fn a_v2_token_is_never_sent_over_plain_http_unless_allowed() {
    let server = ApiServer::start(ApiServerOptions {
        tokens: [(TOKEN.to_owned(), TokenGrant::Editor)].into(),
        ..ApiServerOptions::default()
    })
    .unwrap();
    assert!(server.base_url().starts_with("http://"));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    chmod(&token, 0o600);
    let settings = format!(
        "api_version = \"v2\"\nmetal_apiserver_url = \"{}\"\nmetal_apiserver_token_file = {token:?}\n\
         api_retry_attempts = 1\n",
        server.base_url()
    );
    let o = run(dir.path(), &settings, &["fetch"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains("api_allow_plaintext = true"), "{err}");
    assert!(
        server.credentials().is_empty(),
        "the token went over plain HTTP: {} calls",
        server.records().len()
    );
    let o = run(dir.path(), &settings, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(err.contains("api_allow_plaintext = true"), "{err}");

    let allowed = format!("{settings}api_allow_plaintext = true\n");
    let o = run(dir.path(), &allowed, &["check-config"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("WARN") && err.contains("clear text"), "{err}");
    // With the risk named, the call is made (the switch is unknown here).
    let o = run(dir.path(), &allowed, &["fetch"]);
    let (_, err) = text(&o);
    assert!(!err.contains("api_allow_plaintext"), "{err}");
    assert!(!server.credentials().is_empty());
}

/// Issue 22, item 8: every duration is bounded. A duration the clock cannot
/// hold is refused by `check-config` and by `run` with the setting's name,
/// never a panic (`run` used to panic adding it to `Instant::now()`). A
/// `barrier_timeout` longer than `timeout` is not cut silently: both say so.
#[test]
fn durations_are_bounded_and_limits_that_cut_others_are_said() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["check-config"][..], &["run"][..]] {
        let o = run(
            dir.path(),
            "hmac_key = \"k\"\ntimeout = \"300000000000years\"\n",
            args,
        );
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {out}\n{err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("timeout"), "{args:?}: {err}");
        assert!(err.contains("is longer than 30days"), "{args:?}: {err}");
    }
    let o = run(
        dir.path(),
        "hmac_key = \"k\"\ntimeout = \"15s\"\nbarrier_timeout = \"1m\"\n",
        &["check-config"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains(
            "# note: barrier_timeout (1m) is longer than timeout (15s), which bounds everything \
             one reconcile waits for"
        ),
        "{out}"
    );
    let o = run(
        dir.path(),
        "hmac_key = \"k\"\ntimeout = \"1m\"\nbarrier_timeout = \"1m\"\n",
        &["check-config"],
    );
    let (out, _) = text(&o);
    assert!(!out.contains("barrier_timeout ("), "{out}");
}
