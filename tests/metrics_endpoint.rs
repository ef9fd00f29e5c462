//! The metrics endpoint, scraped over real TCP and checked by Prometheus's
//! own tool (`promtool`, Debian package `prometheus`); the alert rules and
//! the Grafana dashboard under docs/monitoring checked against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use metal_switchd::configdb::confirmed::Confirmed;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metal_switchd::api::parse_switch_document;
use metal_switchd::configdb::{self, snapshot};
use metal_switchd::observed::{BgpPortState, BgpState, PortOperState};
use metal_switchd::reconcile;
use metal_switchd::report::metrics::{ApiCall, ApiErrorKind, Metrics, PhoneHomeResult};
use metal_switchd::report::{DriftSource, ReconcileResult, Stage};
use metal_switchd_lab::fixtures;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn promtool() -> Command {
    support::process::tool("promtool", "prometheus")
}

/// One HTTP/1.1 request on a fresh connection; returns (status, headers, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: switch\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut raw))
        .await
        .expect("the metrics server did not answer within 30s")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let body = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body)
}

/// A real plan: the lab's leaf01 state against its base configuration.
fn leaf01_plan() -> configdb::plan::Plan {
    let state =
        snapshot::parse_config_db_json("leaf01", &fixtures::leaf01_with_ports().unwrap()).unwrap();
    let cfg = support::config::TestConfig::leaf01().build();
    let desc = parse_switch_document("leaf01.v1.json", fixtures::LEAF01_SWITCH_V1, None).unwrap();
    reconcile::prepare(&desc.1, &cfg, &state, &Confirmed::assumed())
        .unwrap()
        .plan
}

fn busy_metrics() -> Metrics {
    let m = Metrics::new(SystemTime::now() - Duration::from_secs(60));
    let plan = leaf01_plan();
    assert!(plan.changes() > 0);
    m.record_plan(&plan);
    m.redis_round_trips(4);
    for (stage, ms) in [(Stage::Fetch, 12), (Stage::Plan, 3), (Stage::Frr, 300)] {
        m.observe_stage(stage, Duration::from_millis(ms));
    }
    m.reconcile_finished(
        ReconcileResult::Converged,
        Duration::from_millis(900),
        SystemTime::now(),
    );
    m.reconcile_finished(
        ReconcileResult::Invalid,
        Duration::from_millis(2),
        SystemTime::now(),
    );
    m.drift_repaired(DriftSource::Configdb);
    for _ in 0..3 {
        m.desired_state_changed();
    }
    m.set_desired_state(
        &metal_switchd::spec::SpecDigest("0011223344556677".into()),
        Some(5),
        true,
    );
    m.set_port_states([
        ("Ethernet0", PortOperState::Up),
        ("Ethernet4", PortOperState::Down),
    ]);
    let bgp = BgpPortState {
        neighbor: "spine01".into(),
        peer_group: "FABRIC".into(),
        vrf_name: "default".into(),
        state: BgpState::Established,
        established_since: Some(1_790_000_000),
        sent_prefixes: 10,
        accepted_prefixes: 20,
    };
    m.set_bgp_states([("Ethernet120", &bgp)]);
    m.api_call(ApiCall::GetSwitch, None);
    m.api_call(ApiCall::Report, Some(ApiErrorKind::Transient));
    m.phone_home(PhoneHomeResult::Queued, 2);
    m.phone_home(PhoneHomeResult::Sent, 1);
    m.set_phone_home_pending(1);
    m
}

fn promtool_check_metrics(body: &[u8]) -> std::process::Output {
    support::process::output_with_stdin(promtool().args(["check", "metrics"]), body)
}

#[tokio::test]
async fn a_real_scrape_passes_promtool() {
    let m = Arc::new(busy_metrics());
    let server = m
        .clone()
        .serve("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let (status, head, body) = http(addr, "GET", "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let text = String::from_utf8(body.clone()).unwrap();
    eprintln!("{text}");
    let out = promtool_check_metrics(&body);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool does find problems in a bad exposition (the check can fail)
    let bad = promtool_check_metrics(b"# TYPE x counter\nx 1\n");
    assert!(!bad.status.success());

    for want in [
        "metal_switchd_plan_operations_total{table=\"VRF\",action=\"create\"}",
        "metal_switchd_plan_operations_total{table=\"INTERFACE\",action=\"create\"}",
        "metal_switchd_reconcile_stage_duration_seconds_bucket{stage=\"frr\",le=\"0.256\"} 0",
        "metal_switchd_reconcile_stage_duration_seconds_bucket{stage=\"frr\",le=\"0.512\"} 1",
        "metal_switchd_reconciles_total{result=\"invalid\"} 1",
        "metal_switchd_redis_round_trips_total 4",
        // Values that only grow are counters.
        "# TYPE metal_switchd_desired_state_changes_total counter",
        "metal_switchd_desired_state_changes_total 3",
        // The process_* family of Prometheus' client libraries.
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_threads gauge",
        "# TYPE process_start_time_seconds gauge",
        "metal_switchd_converged_state_info{digest=\"0011223344556677\",api_generation=\"5\"} 1",
        "metal_switchd_ports{oper_state=\"down\"} 1",
        "metal_switchd_bgp_sessions{state=\"Established\"} 1",
        "metal_switchd_api_errors_total{call=\"report\",kind=\"transient\"} 1",
        "metal_switchd_phone_home_events_total{result=\"queued\"} 2",
        "metal_switchd_phone_home_pending 1",
        "# TYPE metal_core_total_errors untyped",
        "metal_core_total_errors{operation=\"switch-reconfiguration\"} 1",
        "metal_core_total_errors{operation=\"reconfiguration-notification\"} 1",
        "metal_core_total_errors{operation=\"send-provisioning\"} 0",
        "metal_switchd_build_info{version=",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // every family has a help text
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }

    let (status, head, body) = http(addr, "HEAD", "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty());
    let (status, _, _) = http(addr, "GET", "/").await;
    assert_eq!(status, 404);
    let (status, _, _) = http(addr, "GET", "/metrics/x").await;
    assert_eq!(status, 404);
    let (status, _, _) = http(addr, "GET", "/debug/pprof/heap").await;
    assert_eq!(status, 404);
    let (status, head, _) = http(addr, "POST", "/metrics").await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");

    // a keep-alive connection left open does not hold up the shutdown
    let idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown hangs");
    drop(idle);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_taken_port_is_an_error_naming_the_settings() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let e = Arc::new(Metrics::default())
        .serve(addr)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&addr.to_string()) && e.contains("metrics_server_port"),
        "{e}"
    );
}

fn monitoring(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/monitoring")
        .join(file)
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = promtool()
            .args(&args)
            .current_dir(monitoring(""))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The metric names a PromQL text refers to.
fn referenced_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("metal_") {
        let rest = &text[i..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if name.starts_with("metal_switchd_") || name.starts_with("metal_core_") {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let exposition = busy_metrics().encode();
    // sample names, and family names (a histogram's name without _bucket)
    let exported: BTreeSet<&str> = exposition
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(t) => t.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();
    let rules = std::fs::read_to_string(monitoring("alerts.yml")).unwrap();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = String::new();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push_str(t["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    assert!(dashboard["panels"].as_array().unwrap().len() > 10);
    for (what, text) in [("alerts.yml", rules), ("grafana-dashboard.json", exprs)] {
        let used = referenced_metrics(&text);
        assert!(used.len() >= 8, "{what}: {used:?}");
        let unknown: Vec<&String> = used
            .iter()
            .filter(|n| !exported.contains(n.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{what} uses metrics the agent does not export: {unknown:?}"
        );
    }
}

/// Every alert links its runbook: a page in docs/monitoring/runbooks/ named
/// after the alert, at the repository's address (Cargo.toml `repository`),
/// listed in the runbooks' index, and saying what to do.
#[test]
fn every_alert_has_a_runbook_page() {
    let rules = std::fs::read_to_string(monitoring("alerts.yml")).unwrap();
    let base = format!(
        "{}/blob/main/docs/monitoring/runbooks/",
        env!("CARGO_PKG_REPOSITORY")
    );
    let index = std::fs::read_to_string(monitoring("runbooks/README.md")).unwrap();
    let mut alerts: Vec<(String, Option<String>)> = Vec::new();
    for line in rules.lines() {
        let l = line.trim();
        if let Some(name) = l.strip_prefix("- alert: ") {
            alerts.push((name.to_owned(), None));
        } else if let Some(url) = l.strip_prefix("runbook_url: ") {
            let (_, slot) = alerts.last_mut().expect("runbook_url before any alert");
            assert!(slot.is_none(), "two runbook_url in one alert");
            *slot = Some(url.trim_matches('"').to_owned());
        }
    }
    assert!(alerts.len() >= 10, "{alerts:?}");
    for (name, url) in &alerts {
        let url = url
            .as_deref()
            .unwrap_or_else(|| panic!("alert {name} has no runbook_url"));
        assert_eq!(url, format!("{base}{name}.md"), "alert {name}");
        let page = std::fs::read_to_string(monitoring(&format!("runbooks/{name}.md")))
            .unwrap_or_else(|e| panic!("alert {name}: runbook page missing: {e}"));
        assert!(page.starts_with(&format!("# {name}\n")), "{name}.md");
        for part in ["**Means**", "**Find the cause**", "**Fix**"] {
            assert!(page.contains(part), "{name}.md lacks {part}");
        }
        assert!(
            index.contains(&format!("[{name}.md]({name}.md)")),
            "runbooks/README.md does not list {name}"
        );
    }
    // no page without its alert
    for entry in std::fs::read_dir(monitoring("runbooks")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if file == "README.md" {
            continue;
        }
        let stem = file.trim_end_matches(".md");
        assert!(
            alerts.iter().any(|(n, _)| n == stem),
            "runbooks/{file} belongs to no alert"
        );
    }
}
