//! Invalid desired states are rejected as a whole by the real binary: exit
//! code 2, every problem named, and not a single write in redis. The cases
//! are data: one file per case in `tests/cases/invalid/` (see its README).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    let mut config_text = toml::to_string(&config).map_err(|e| e.to_string())?;
    if let Some(raw) = case.get("config_text").and_then(|v| v.as_str()) {
        // Appended as is: for syntax errors the TOML library would not write.
        config_text.push_str(raw);
    }
    std::fs::write(&config_path, config_text).map_err(|e| e.to_string())?;

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
            "name": name, "identifier": name, "mac": null, "actual": "UP",
            "admin_status": n.get("admin_status").and_then(|v| v.as_str()),
            "vrf": n.get("vrf").and_then(|v| v.as_str()).unwrap_or(""),
            "filter": {"cidrs": list("cidrs"), "vnis": list("vnis")},
        });
        let append = n.get("append").and_then(|v| v.as_bool()).unwrap_or(false);
        match nics.iter_mut().find(|x| x["name"] == name) {
            Some(existing) if !append => *existing = nic,
            _ => nics.push(nic),
        }
    }
    let drop: Vec<&str> = case
        .get("drop_nics")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    nics.retain(|n| !drop.iter().any(|d| n["name"] == *d));
    if let Some(count) = case.get("unknown_nics").and_then(|v| v.as_integer()) {
        for i in 0..count {
            let name = format!("Ethernet{}", 1000 + i);
            nics.push(json!({"name": name, "identifier": name, "vrf": "", "filter": null}));
        }
    }
    // Top-level fields of the document: set to a TOML value, to null
    // ("<null>"), or removed ("<remove>").
    if let Some(fields) = case.get("switch").and_then(|v| v.as_table()) {
        let obj = switch.as_object_mut().ok_or("switch document")?;
        for (k, v) in fields {
            if v.as_str() == Some("<remove>") {
                obj.remove(k);
            } else if v.as_str() == Some("<null>") {
                obj.insert(k.clone(), Value::Null);
            } else {
                obj.insert(
                    k.clone(),
                    serde_json::to_value(v).map_err(|e| e.to_string())?,
                );
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&switch).map_err(|e| e.to_string())?;
    for r in case
        .get("switch_replace")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let pair = r.as_array().ok_or("switch_replace items are [from, to]")?;
        let (from, to) = (
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or(""),
        );
        if !text.contains(from) {
            return Err(format!("switch_replace: {from:?} is not in the document"));
        }
        text = text.replacen(from, to, 1);
    }
    let dir = sw.redis.dir();
    let switch_path = dir.join("switch.json");
    std::fs::write(&switch_path, text).map_err(|e| e.to_string())?;
    let switch_path = special_file(dir, "switch", &case, switch_path)?;
    let config_path = special_file(dir, "config", &case, config_path)?;
    if case.contains_key("database_config_file") {
        // database_config names a special file: rewrite the configuration.
        let special = special_file(dir, "database_config", &case, sw.dbconf.clone())?;
        let text = std::fs::read_to_string(&config_path).map_err(|e| e.to_string())?;
        let mut cfg: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
        cfg.insert(
            "database_config".into(),
            special.display().to_string().into(),
        );
        std::fs::write(
            &config_path,
            toml::to_string(&cfg).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
    }

    let env: Vec<(String, String)> = case
        .get("env")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metal-switchd"));
    cmd.env_remove("METAL_SWITCHD_CONFIG").envs(env);
    cmd.arg("--config").arg(&config_path).args([
        "--log",
        "error",
        "apply",
        "--once",
        "--wait-ready",
        "2s",
        "--switch",
    ]);
    cmd.arg(&switch_path);
    // A FIFO must be refused, never waited on: a hang fails the case.
    let out = output_within(cmd, Duration::from_secs(60))?;
    Ok(Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        writes: sw.writes(),
    })
}

/// `<what>_file` of a case: replace the file at `normal` by a directory, a
/// FIFO, `/dev/zero`, a missing path, its own content with a byte that is
/// not UTF-8, or leave it (no key).
fn special_file(
    dir: &Path,
    what: &str,
    case: &toml::Table,
    normal: PathBuf,
) -> Result<PathBuf, String> {
    let Some(kind) = case.get(&format!("{what}_file")).and_then(|v| v.as_str()) else {
        return Ok(normal);
    };
    let special = dir.join(format!("{what}.special"));
    match kind {
        "directory" => std::fs::create_dir(&special).map_err(|e| e.to_string())?,
        "fifo" => {
            let ok = Command::new("mkfifo")
                .arg(&special)
                .status()
                .map_err(|e| e.to_string())?;
            if !ok.success() {
                return Err("mkfifo failed".into());
            }
        }
        "dev-zero" => return Ok(PathBuf::from("/dev/zero")),
        "missing" => {}
        "not-utf8" => {
            let mut bytes = std::fs::read(&normal).map_err(|e| e.to_string())?;
            bytes.insert(bytes.len() / 2, 0xff);
            std::fs::write(&special, bytes).map_err(|e| e.to_string())?;
        }
        other => return Err(format!("{what}_file = {other:?} is not a known kind")),
    }
    Ok(special)
}

/// Run `cmd`, failing (and killing it) if it has not ended after `limit`.
fn output_within(mut cmd: Command, limit: Duration) -> Result<std::process::Output, String> {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut s) = stdout {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(mut s) = stderr {
            let _ = s.read_to_end(&mut err);
        }
        let _ = tx.send((out, err));
    });
    match rx.recv_timeout(limit) {
        Ok((stdout, stderr)) => {
            let status = child.wait().map_err(|e| e.to_string())?;
            Ok(std::process::Output {
                status,
                stdout,
                stderr,
            })
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "metal-switchd (pid {pid}) did not end within {limit:?}"
            ))
        }
    }
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
                for a in case
                    .get("absent")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                {
                    if o.stderr.contains(a) {
                        failures.push(format!("{name}: stderr shows {a:?}:\n{}", o.stderr));
                    }
                }
                // Control characters of the input never reach the terminal
                // raw (a newline only ends a line of the report).
                if let Some(c) = o
                    .stderr
                    .chars()
                    .find(|c| (c.is_control() && *c != '\n') || *c == '\u{202e}')
                {
                    failures.push(format!("{name}: stderr holds {c:?} raw:\n{}", o.stderr));
                }
                if o.stderr.len() > 8 * 1024 {
                    failures.push(format!(
                        "{name}: {} bytes of error output; the list of problems is not capped",
                        o.stderr.len()
                    ));
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
