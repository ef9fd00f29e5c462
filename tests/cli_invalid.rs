//! Invalid desired states are rejected as a whole by the real binary: exit
//! code 2, every problem named, and not a single write in redis. The cases
//! are data: one file per case in `tests/cases/invalid/` (see its README).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use metal_switchd_lab::fixtures;
use metal_switchd_lab::seed::{Entry, SeedOptions};
use serde_json::{Value, json};
use support::Switch;

struct Outcome {
    code: Option<i32>,
    stderr: String,
    writes: u64,
}

fn run_case(path: &Path) -> Result<Outcome, String> {
    let case: toml::Table =
        toml::from_str(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
            .map_err(|e| format!("case file: {e}"))?;
    let mut base = fixtures::LEAF01_CONFIG.to_owned();
    for r in case
        .get("base_replace")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let pair = r.as_array().ok_or("base_replace items are [from, to]")?;
        base = base.replace(
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or(""),
        );
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (key, fields) in case
        .get("entries")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
    {
        let f = fields
            .as_table()
            .ok_or("entries are tables")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        entries.push((key.clone(), f));
    }
    let sw = Switch::new(
        &base,
        Some(fixtures::MINI_LAB_PORT_MAP),
        &entries,
        SeedOptions::default(),
        None,
    );

    let mut config: toml::Table =
        toml::from_str(fixtures::LEAF01_AGENT_CONFIG).map_err(|e| e.to_string())?;
    config.insert(
        "database_config".into(),
        sw.dbconf.display().to_string().into(),
    );
    // Nothing may be written; if something is, fail fast instead of waiting
    // for barriers nobody confirms.
    config.insert("barrier_timeout".into(), "1s".into());
    if let Some(extra) = case.get("config").and_then(|v| v.as_str()) {
        config.extend(toml::from_str::<toml::Table>(extra).map_err(|e| format!("config: {e}"))?);
    }
    let config_path = sw.redis.dir().join("agent.toml");
    std::fs::write(
        &config_path,
        toml::to_string(&config).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;

    let mut switch: Value =
        serde_json::from_str(fixtures::LEAF01_SWITCH_V1).map_err(|e| e.to_string())?;
    let nics = switch["nics"].as_array_mut().ok_or("nics")?;
    for n in case
        .get("nics")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = n
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or("nic without name")?;
        let list = |k: &str| -> Vec<String> {
            n.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let nic = json!({
            "name": name, "identifier": name, "mac": null, "actual": "UP", "admin_status": null,
            "vrf": n.get("vrf").and_then(|v| v.as_str()).unwrap_or(""),
            "filter": {"cidrs": list("cidrs"), "vnis": list("vnis")},
        });
        let append = n.get("append").and_then(|v| v.as_bool()).unwrap_or(false);
        match nics.iter_mut().find(|x| x["name"] == name) {
            Some(existing) if !append => *existing = nic,
            _ => nics.push(nic),
        }
    }
    let switch_path = sw.redis.dir().join("switch.json");
    std::fs::write(&switch_path, switch.to_string()).map_err(|e| e.to_string())?;

    let out = Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "--log",
            "error",
            "apply",
            "--once",
            "--wait-ready",
            "2s",
            "--switch",
        ])
        .arg(&switch_path)
        .output()
        .map_err(|e| e.to_string())?;
    Ok(Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        writes: sw.writes(),
    })
}

#[test]
fn every_invalid_case_exits_2_names_the_problem_and_writes_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/invalid");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "expected the invalid cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expect: Vec<String> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        match run_case(path) {
            Err(e) => failures.push(format!("{name}: could not run: {e}")),
            Ok(o) => {
                if o.code != Some(2) {
                    failures.push(format!(
                        "{name}: exit code {:?}, want 2\n{}",
                        o.code, o.stderr
                    ));
                }
                for e in &expect {
                    if !o.stderr.contains(e.as_str()) {
                        failures.push(format!("{name}: stderr lacks {e:?}:\n{}", o.stderr));
                    }
                }
                if o.writes != 0 {
                    failures.push(format!(
                        "{name}: {} write command(s) reached redis",
                        o.writes
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
