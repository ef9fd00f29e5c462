//! Input cases as data: one TOML file per case (`tests/cases/invalid/`,
//! `tests/cases/hostile/`), turned into a lab switch (redis seeded with the
//! lab's leaf01), an agent configuration and a switch document on disk.
//! The keys are documented in each corpus' README.md; [`KEYS`] is the
//! list both READMEs are checked against.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use metal_switchd_lab::fixtures;
use metal_switchd_lab::seed::{Entry, SeedOptions};
use serde_json::{Value, json};

use super::Switch;

/// Every key a case file may hold.
pub const KEYS: &[&str] = &[
    "config",
    "config_text",
    "env",
    "nics",
    "drop_nics",
    "unknown_nics",
    "switch",
    "switch_replace",
    "switch_generate",
    "switch_file",
    "config_file",
    "database_config_file",
    "base_replace",
    "entries",
    "expect",
    "absent",
    "api",
    "api_expect",
    "api_exit",
];

/// Every key of a `nics` entry.
pub const NIC_KEYS: &[&str] = &[
    "name",
    "vrf",
    "cidrs",
    "cidr_count",
    "vnis",
    "admin_status",
    "append",
];

/// One case file.
pub struct Case {
    pub name: String,
    pub table: toml::Table,
}

impl Case {
    /// Read a case; a key that is not in [`KEYS`] / [`NIC_KEYS`] is an error.
    pub fn load(path: &Path) -> Result<Case, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| format!("case file: {e}"))?;
        for k in table.keys() {
            if !KEYS.contains(&k.as_str()) {
                return Err(format!("unknown key {k:?} (known: {})", KEYS.join(", ")));
            }
        }
        for n in table
            .get("nics")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            for k in n.as_table().ok_or("nics are tables")?.keys() {
                if !NIC_KEYS.contains(&k.as_str()) {
                    return Err(format!(
                        "unknown nic key {k:?} (known: {})",
                        NIC_KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(Case {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            table,
        })
    }

    /// The strings of an array key (empty when absent).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.table
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// The case files of one corpus, sorted.
pub fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

/// A case made real: the lab switch, the files, the environment.
pub struct Built {
    pub sw: Switch,
    pub config_path: PathBuf,
    pub switch_path: PathBuf,
    /// The switch document's bytes (what an API would send), unless
    /// `switch_file` replaced the document by a special file.
    pub document: Option<PathBuf>,
    pub env: Vec<(String, String)>,
}

/// Build `case`; `extra_config` (TOML) is added to the agent
/// configuration last (e.g. the API settings of the API path).
pub fn build(case: &Case, extra_config: &str) -> Result<Built, String> {
    let t = &case.table;
    let mut base = fixtures::LEAF01_CONFIG.to_owned();
    for (from, to) in replacements(t, "base_replace")? {
        base = base.replace(from, to);
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (key, fields) in t
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

    let config = sw
        .test_config()
        // Nothing may be written; if something is, fail fast instead of
        // waiting for barriers nobody confirms.
        .set("barrier_timeout", "1s")
        // The writer lock and the status file beside the case's redis.
        .path("state_directory", &sw.redis.dir().join("state"))
        .extra(t.get("config").and_then(|v| v.as_str()).unwrap_or_default())
        .extra(extra_config);
    let dir = sw.redis.dir().to_owned();
    let config_path = dir.join("agent.toml");
    let mut config_text = config.text();
    if let Some(raw) = t.get("config_text").and_then(|v| v.as_str()) {
        // Appended as is: for syntax errors the TOML library would not write.
        config_text.push_str(raw);
    }
    std::fs::write(&config_path, config_text).map_err(|e| e.to_string())?;

    let switch_path = dir.join("switch.json");
    match t.get("switch_generate").and_then(|v| v.as_str()) {
        Some(g) => generate(g, &switch_path)?,
        None => {
            let text = document(case)?;
            std::fs::write(&switch_path, text).map_err(|e| e.to_string())?;
        }
    }
    let document = (!t.contains_key("switch_file")).then(|| switch_path.clone());
    let switch_path = special_file(&dir, "switch", t, switch_path)?;
    let config_path = special_file(&dir, "config", t, config_path)?;
    if t.contains_key("database_config_file") {
        // database_config names a special file: rewrite the configuration.
        let special = special_file(&dir, "database_config", t, sw.dbconf.clone())?;
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
    let env: Vec<(String, String)> = t
        .get("env")
        .and_then(|v| v.as_table())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Ok(Built {
        sw,
        config_path,
        switch_path,
        document,
        env,
    })
}

/// The lab's leaf01 v1 document with the case's changes, serialised.
fn document(case: &Case) -> Result<String, String> {
    let t = &case.table;
    let mut switch: Value =
        serde_json::from_str(fixtures::LEAF01_SWITCH_V1).map_err(|e| e.to_string())?;
    let nics = switch["nics"].as_array_mut().ok_or("nics")?;
    for n in t
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
        let mut cidrs = list("cidrs");
        if let Some(count) = n.get("cidr_count").and_then(|v| v.as_integer()) {
            // Distinct host routes 10.x.y.z/32.
            cidrs.extend((0..count).map(|i| {
                format!(
                    "10.{}.{}.{}/32",
                    (i >> 16) & 0xff,
                    (i >> 8) & 0xff,
                    i & 0xff
                )
            }));
        }
        let nic = json!({
            "name": name, "identifier": name, "mac": null, "actual": "UP",
            "admin_status": n.get("admin_status").and_then(|v| v.as_str()),
            "vrf": n.get("vrf").and_then(|v| v.as_str()).unwrap_or(""),
            "filter": {"cidrs": cidrs, "vnis": list("vnis")},
        });
        let append = n.get("append").and_then(|v| v.as_bool()).unwrap_or(false);
        match nics.iter_mut().find(|x| x["name"] == name) {
            Some(existing) if !append => *existing = nic,
            _ => nics.push(nic),
        }
    }
    let drop = case.strings("drop_nics");
    nics.retain(|n| !drop.iter().any(|d| n["name"] == *d));
    if let Some(count) = t.get("unknown_nics").and_then(|v| v.as_integer()) {
        for i in 0..count {
            let name = format!("Ethernet{}", 1000 + i);
            nics.push(json!({"name": name, "identifier": name, "vrf": "", "filter": null}));
        }
    }
    // Top-level fields of the document: set to a TOML value, to null
    // ("<null>"), or removed ("<remove>").
    if let Some(fields) = t.get("switch").and_then(|v| v.as_table()) {
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
    for (from, to) in replacements(t, "switch_replace")? {
        if !text.contains(from) {
            return Err(format!("switch_replace: {from:?} is not in the document"));
        }
        text = text.replacen(from, to, 1);
    }
    Ok(text)
}

/// The `[from, to]` pairs of the case's list `key`.
fn replacements<'a>(t: &'a toml::Table, key: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    let items = t.get(key).and_then(|v| v.as_array()).into_iter().flatten();
    items
        .map(|r| match r.as_array().map(Vec::as_slice) {
            Some([from, to]) => Ok((from.as_str().unwrap_or(""), to.as_str().unwrap_or(""))),
            _ => Err(format!("{key} items are [from, to]")),
        })
        .collect()
}

/// `switch_generate`: a document made at test time (too large to commit).
/// - `nested:N`: `{"id": "leaf01", "nics": [[[…]]]}`, N arrays deep;
/// - `nic-name-bytes:N`: leaf01 with Ethernet0's nic named by N letters.
fn generate(spec: &str, path: &Path) -> Result<(), String> {
    use std::io::Write;
    let (kind, n) = spec
        .split_once(':')
        .ok_or_else(|| format!("switch_generate {spec:?} is not KIND:N"))?;
    let n: usize = n
        .parse()
        .map_err(|_| format!("switch_generate {spec:?}: N is not a number"))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let w = |out: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| -> Result<(), String> {
        out.write_all(b).map_err(|e| e.to_string())
    };
    match kind {
        "nested" => {
            w(&mut out, br#"{"id": "leaf01", "nics": "#)?;
            w(&mut out, &vec![b'['; n])?;
            w(&mut out, &vec![b']'; n])?;
            w(&mut out, b"}")?;
        }
        "nic-name-bytes" => {
            let text = fixtures::LEAF01_SWITCH_V1;
            let marker = "\"name\": \"Ethernet0\"";
            let at = text
                .find(marker)
                .ok_or("leaf01.v1.json has no nic Ethernet0")?;
            w(&mut out, &text.as_bytes()[..at])?;
            w(&mut out, b"\"name\": \"")?;
            let chunk = vec![b'A'; 1 << 20];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len());
                w(&mut out, &chunk[..k])?;
                left -= k;
            }
            w(&mut out, b"\"")?;
            w(&mut out, &text.as_bytes()[at + marker.len()..])?;
        }
        other => return Err(format!("switch_generate: unknown kind {other:?}")),
    }
    out.flush().map_err(|e| e.to_string())
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

/// A finished child and what it cost.
pub struct Measured {
    pub output: Output,
    pub wall: Duration,
    /// Peak resident set size of the child, KiB.
    pub max_rss_kib: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

/// GNU time, which reports the peak RSS of the command it runs.
const TIME: &str = "/usr/bin/time";

/// `metal-switchd --config CONFIG --log error apply --once --wait-ready 2s
/// --switch FILE` for a built case, with the case's environment.
pub fn apply_once_command(b: &Built) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metal-switchd"));
    cmd.env_remove("METAL_SWITCHD_CONFIG").envs(b.env.clone());
    cmd.arg("--config").arg(&b.config_path).args([
        "--log",
        "error",
        "apply",
        "--once",
        "--wait-ready",
        "2s",
        "--switch",
    ]);
    cmd.arg(&b.switch_path);
    cmd
}

/// Run `cmd` under GNU time, failing (and killing it) if it has not ended
/// after `limit` (which only catches hangs: a FIFO must be refused, never
/// waited on).
///
/// Why GNU time and not `wait4` here: a child spawned from this (large)
/// test process inherits its high-water mark across `exec`, so its
/// `ru_maxrss` would be ours. GNU time is small and forks the command
/// from itself, so what it reports is the command's own peak.
pub fn run_measured(cmd: Command, limit: Duration) -> Result<Measured, String> {
    if !Path::new(TIME).exists() {
        return Err(format!(
            "{TIME} is missing: install GNU time (apt-get install -y time; ./dev test does)"
        ));
    }
    let report = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut timed = Command::new(TIME);
    timed
        .arg("-o")
        .arg(report.path())
        .args(["-f", "%M %U %S"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    let started = Instant::now();
    use std::os::unix::process::CommandExt;
    let mut child = timed
        .process_group(0)
        .stdin(Stdio::null())
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
    let (stdout, stderr) = match rx.recv_timeout(limit) {
        Ok(x) => x,
        Err(_) => {
            // GNU time and its command are one process group of their own.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "metal-switchd (under time, pid {pid}) did not end within {limit:?}"
            ));
        }
    };
    let status = child.wait().map_err(|e| e.to_string())?;
    let wall = started.elapsed();
    let text = std::fs::read_to_string(report.path()).map_err(|e| e.to_string())?;
    // "Command exited with non-zero status N" may come first.
    let last = text.lines().last().unwrap_or("");
    let f: Vec<&str> = last.split_whitespace().collect();
    let [rss, user, sys] = f.as_slice() else {
        return Err(format!("cannot read GNU time's report {text:?}"));
    };
    let secs = |s: &str| Duration::from_secs_f64(s.parse::<f64>().unwrap_or(0.0));
    Ok(Measured {
        output: Output {
            status,
            stdout,
            stderr,
        },
        wall,
        max_rss_kib: rss.parse().map_err(|_| format!("GNU time: {text:?}"))?,
        cpu: secs(user) + secs(sys),
    })
}

/// The keys a corpus README documents: the `` - `key` `` bullets (and the
/// `` `a`, `b` `` lists on them) of its "Keys of a case file" section.
pub fn documented_keys(readme: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let Some(section) = readme.split("Keys of a case file").nth(1) else {
        return keys;
    };
    for line in section.lines() {
        let Some(rest) = line.strip_prefix("- ") else {
            continue;
        };
        let head = rest.split(':').next().unwrap_or("");
        for part in head.split('`').skip(1).step_by(2) {
            keys.push(part.to_owned());
        }
    }
    keys
}
