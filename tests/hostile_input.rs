//! Hostile input (issue 14, item 4): bad switch objects and configurations
//! from `tests/cases/hostile/` (one file per case, no code per case; keys
//! in `tests/cases/README.md`), each fed to the real binary twice:
//! - as a file: `metal-switchd apply --once --switch FILE`;
//! - through the API: the lab API server answers the agent's
//!   `GET /v1/switch/leaf01` with the same bytes, and `metal-switchd fetch`
//!   (the daemon's path: the API client, then the same validation) reads it.
//!
//! Every run must be refused with a clear message and exit code 2 (1 where
//! the case says the API answer is a broken answer, `api_exit`), write
//! nothing to redis, not panic, end before the hang limit and stay under
//! the memory bound (peak RSS of the child, from GNU time). The figures of
//! every run are printed (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, Call, Fault, FaultKind};
use metal_switchd_lab::fixtures;
use support::cases::{self, Case, Measured};

const HMAC_KEY: &str = "metal-edit-hostile-key";
/// Only catches a run that hangs (a FIFO waited on, a parser that never ends).
const HANG: Duration = Duration::from_secs(120);
/// The memory bound of one run: the largest accepted answer
/// (`api_max_response_bytes`, 16 MiB) several times over — text, parsed
/// tree and copies — plus the runtime. A 100 MiB body must not get near it.
const MAX_RSS_KIB: u64 = 160 * 1024;

struct Run {
    case: String,
    path: &'static str,
    m: Measured,
    writes: u64,
}

fn check(run: &Run, want_exit: i32, expect: &[String], absent: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    let name = format!("{} ({})", run.case, run.path);
    let stderr = String::from_utf8_lossy(&run.m.output.stderr);
    if run.m.output.status.code() != Some(want_exit) {
        bad.push(format!(
            "{name}: exit {:?}, want {want_exit}\n{stderr}",
            run.m.output.status
        ));
    }
    if stderr.contains("panicked at") || run.m.output.status.code() == Some(101) {
        bad.push(format!("{name}: panicked\n{stderr}"));
    }
    for e in expect {
        if !stderr.contains(e.as_str()) {
            bad.push(format!("{name}: stderr lacks {e:?}:\n{stderr}"));
        }
    }
    for a in absent {
        if stderr.contains(a.as_str()) {
            bad.push(format!("{name}: stderr shows {a:?}"));
        }
    }
    if let Some(c) = stderr
        .chars()
        .find(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
    {
        bad.push(format!("{name}: stderr holds {c:?} raw:\n{stderr}"));
    }
    if stderr.len() > 8 * 1024 {
        bad.push(format!("{name}: {} bytes of error output", stderr.len()));
    }
    if run.writes != 0 {
        bad.push(format!(
            "{name}: {} write command(s) reached redis",
            run.writes
        ));
    }
    if run.m.max_rss_kib > MAX_RSS_KIB {
        bad.push(format!(
            "{name}: peak RSS {} KiB, bound {MAX_RSS_KIB} KiB",
            run.m.max_rss_kib
        ));
    }
    bad
}

fn apply_once(case: &Case) -> Result<Run, String> {
    let b = cases::build(case, "")?;
    let cmd = cases::apply_once_command(&b);
    let m = cases::run_measured(cmd, HANG)?;
    Ok(Run {
        case: case.name.clone(),
        path: "file",
        m,
        writes: b.sw.writes(),
    })
}

fn fetch(case: &Case, server: &ApiServer) -> Result<Option<Run>, String> {
    let api = format!(
        "api_version = \"v1\"\nmetal_api_protocol = \"http\"\nmetal_api_ip = \"{}\"\n\
         metal_api_port = {}\nmetal_api_basepath = \"/metal/\"\nhmac_key = \"{HMAC_KEY}\"\n\
         api_retry_attempts = 1\ntimeout = \"60s\"\n",
        server.addr().ip(),
        server.addr().port()
    );
    let b = cases::build(case, &api)?;
    let Some(doc) = &b.document else {
        return Ok(None);
    };
    let body = Bytes::from(std::fs::read(doc).map_err(|e| e.to_string())?);
    server.clear_faults();
    server.inject(Fault {
        call: Some(Call::V1Find),
        times: 1,
        kind: FaultKind::Body { status: 200, body },
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metal-switchd"));
    cmd.env_remove("METAL_SWITCHD_CONFIG").envs(b.env.clone());
    cmd.arg("--config")
        .arg(&b.config_path)
        .args(["--log", "error", "fetch"]);
    let m = cases::run_measured(cmd, HANG)?;
    server.clear_faults();
    Ok(Some(Run {
        case: case.name.clone(),
        path: "api",
        m,
        writes: b.sw.writes(),
    }))
}

#[test]
fn every_hostile_case_is_refused_clearly_without_writes_in_bounded_memory() {
    let paths = cases::corpus("tests/cases/hostile");
    assert!(
        paths.len() >= 25,
        "expected the hostile corpus, found {}",
        paths.len()
    );
    let server = ApiServer::start(ApiServerOptions {
        switches: vec![fixtures::LEAF01_SWITCH_V1.to_owned()],
        partitions: vec!["mini-lab".into()],
        hmac_edit_key: Some(HMAC_KEY.into()),
        ..ApiServerOptions::default()
    })
    .expect("lab API server");
    let mut failures = Vec::new();
    let mut runs = Vec::new();
    for path in &paths {
        let case = match Case::load(path) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let expect = case.strings("expect");
        if expect.is_empty() {
            failures.push(format!("{}: no `expect`", case.name));
        }
        let absent = case.strings("absent");
        match apply_once(&case) {
            Ok(run) => {
                failures.extend(check(&run, 2, &expect, &absent));
                runs.push(run);
            }
            Err(e) => failures.push(format!("{} (file): could not run: {e}", case.name)),
        }
        if case.table.get("api").and_then(|v| v.as_bool()) == Some(false) {
            continue;
        }
        let api_expect = if case.table.contains_key("api_expect") {
            case.strings("api_expect")
        } else {
            expect.clone()
        };
        let api_exit = case
            .table
            .get("api_exit")
            .and_then(|v| v.as_integer())
            .unwrap_or(2) as i32;
        match fetch(&case, &server) {
            Ok(Some(run)) => {
                failures.extend(check(&run, api_exit, &api_expect, &absent));
                runs.push(run);
            }
            Ok(None) => {}
            Err(e) => failures.push(format!("{} (api): could not run: {e}", case.name)),
        }
    }
    // The served bodies were fetched (cases refused by the configuration
    // end before the API is asked).
    let fetched = server
        .records_of(Call::V1Find)
        .iter()
        .filter(|r| r.fault.as_deref().is_some_and(|f| f.starts_with("body of")))
        .count();
    let api_runs = runs.iter().filter(|r| r.path == "api").count();
    eprintln!("{api_runs} API runs, {fetched} of them fetched the hostile body");
    assert!(
        fetched >= 20,
        "only {fetched} API runs read the served body"
    );

    eprintln!(
        "{:<44} {:>4} {:>5} {:>9} {:>9} {:>10}",
        "case", "path", "exit", "wall", "cpu", "max RSS"
    );
    for r in &runs {
        eprintln!(
            "{:<44} {:>4} {:>5} {:>8.2}s {:>8.2}s {:>6} KiB",
            r.case,
            r.path,
            r.m.output
                .status
                .code()
                .map_or("sig".into(), |c| c.to_string()),
            r.m.wall.as_secs_f64(),
            r.m.cpu.as_secs_f64(),
            r.m.max_rss_kib
        );
    }
    let slowest = runs.iter().max_by_key(|r| r.m.wall).unwrap();
    let largest = runs.iter().max_by_key(|r| r.m.max_rss_kib).unwrap();
    eprintln!(
        "{} cases, {} runs refused; slowest {} ({}) {:.2}s wall {:.2}s CPU; largest RSS {} ({}) {} KiB",
        paths.len(),
        runs.len(),
        slowest.case,
        slowest.path,
        slowest.m.wall.as_secs_f64(),
        slowest.m.cpu.as_secs_f64(),
        largest.case,
        largest.path,
        largest.m.max_rss_kib
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// tests/cases/README.md documents exactly the keys the harness reads.
#[test]
fn the_case_format_is_documented() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/README.md"),
    )
    .unwrap();
    let mut documented = cases::documented_keys(&readme);
    documented.sort();
    let mut known: Vec<String> = cases::KEYS.iter().map(|k| (*k).to_owned()).collect();
    known.sort();
    assert_eq!(
        documented, known,
        "tests/cases/README.md vs support/cases.rs KEYS"
    );
    for k in cases::NIC_KEYS {
        assert!(
            readme.contains(&format!("`{k}`")),
            "nic key {k} is not documented"
        );
    }
}
