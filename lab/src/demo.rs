//! `metal-switchd-lab demo`: the agent's main job on the lab's leaf01.
//!
//! Starts a throwaway redis seeded like mini-lab leaf01 (base config + the
//! 122-port mini-lab port map), the SONiC stand-in, then runs the real
//! `metal-switchd` binary: `plan`, `apply --once`, and `apply --once` again
//! (which must write nothing), and prints what changed in CONFIG_DB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::fixtures;
use crate::redis_server::{CONFIG_DB, RedisServer};
use crate::seed::{SeedOptions, dump, seed_switch};
use crate::sonic::{SonicStandIn, StandInOptions};

/// Options of the demo.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Switch state to apply (default: the embedded `lab/switches/leaf01.v1.json`).
    pub switch: Option<PathBuf>,
    /// The `metal-switchd` binary (default: next to this binary).
    pub agent: Option<PathBuf>,
}

/// Find the agent binary next to the running lab binary.
pub fn agent_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let me = std::env::current_exe().context("locating the lab binary")?;
    let dir = me.parent().context("the lab binary has no directory")?;
    let candidate = dir.join("metal-switchd");
    if candidate.exists() {
        Ok(candidate)
    } else {
        bail!(
            "{} not found; build it first (`cargo build --release --workspace`) or pass --agent",
            candidate.display()
        )
    }
}

fn run_agent(agent: &Path, config: &Path, args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(agent)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .with_context(|| format!("running {}", agent.display()))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

type Dump = BTreeMap<String, BTreeMap<String, String>>;

/// Lines describing how CONFIG_DB changed.
pub fn diff_dumps(before: &Dump, after: &Dump) -> Vec<String> {
    let fmt = |f: &BTreeMap<String, String>| {
        f.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for (k, a) in after {
        match before.get(k) {
            None => out.push(format!("+ {k} {{{}}}", fmt(a))),
            Some(b) if b != a => {
                let mut parts = Vec::new();
                for (f, v) in a {
                    match b.get(f) {
                        None => parts.push(format!("+{f}={v}")),
                        Some(old) if old != v => parts.push(format!("{f}: {old} -> {v}")),
                        _ => {}
                    }
                }
                for f in b.keys().filter(|f| !a.contains_key(*f)) {
                    parts.push(format!("-{f}"));
                }
                out.push(format!("~ {k} {}", parts.join(", ")));
            }
            _ => {}
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        out.push(format!("- {k}"));
    }
    out
}

/// A throwaway redis seeded with mini-lab leaf01 (122 ports), the SONiC
/// stand-in answering, and an agent configuration file pointing at it.
pub struct LabLeaf {
    pub redis: RedisServer,
    pub standin: SonicStandIn,
    /// `metal-switchd.toml` in the server's directory.
    pub config: PathBuf,
}

impl LabLeaf {
    pub fn start(standin: StandInOptions) -> Result<LabLeaf> {
        let redis = RedisServer::start()?;
        seed_switch(
            &redis,
            fixtures::LEAF01_CONFIG,
            Some(fixtures::MINI_LAB_PORT_MAP),
            &SeedOptions::default(),
        )?;
        let dbconf = redis.write_database_config()?;
        let standin = SonicStandIn::start(&redis, standin)?;
        let config = redis.dir().join("metal-switchd.toml");
        std::fs::write(
            &config,
            format!(
                "{}\ndatabase_config = {:?}\nstate_directory = {:?}\n",
                fixtures::LEAF01_AGENT_CONFIG,
                dbconf.display().to_string(),
                redis.dir().join("state").display().to_string()
            ),
        )?;
        Ok(LabLeaf {
            redis,
            standin,
            config,
        })
    }
}

/// Run the demo, printing to stdout.
pub fn run(opts: &DemoOptions) -> Result<()> {
    let agent = agent_binary(opts.agent.as_deref())?;
    println!("== starting a throwaway redis-server seeded with mini-lab leaf01 (122 ports)");
    let LabLeaf {
        redis,
        standin,
        config,
    } = LabLeaf::start(StandInOptions::uniform(Duration::from_millis(2)))?;
    println!("   redis: {}", redis.socket().display());
    println!("   SONiC daemons: stand-in (lab), answering every barrier after 2 ms\n");
    let switch = match &opts.switch {
        Some(p) => p.clone(),
        None => {
            let p = redis.dir().join("leaf01.v1.json");
            std::fs::write(&p, fixtures::LEAF01_SWITCH_V1)?;
            p
        }
    };
    let cfg = config.display().to_string();
    let sw = switch.display().to_string();
    println!(
        "== agent configuration ({cfg})\n{}",
        std::fs::read_to_string(&config)?
    );

    let before = dump(&redis, CONFIG_DB)?;
    println!("== metal-switchd plan --switch {sw}");
    let (code, out, err) = run_agent(&agent, &config, &["plan", "--switch", &sw])?;
    print!("{out}");
    if code != 0 {
        bail!("plan failed (exit {code}):\n{err}");
    }
    println!("\n== metal-switchd apply --once --switch {sw}");
    let (code, out, err) = run_agent(
        &agent,
        &config,
        &[
            "--log",
            "warn",
            "apply",
            "--once",
            "--configdb-only",
            "--switch",
            &sw,
        ],
    )?;
    print!(
        "{}",
        out.lines()
            .last()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default()
    );
    if code != 0 {
        bail!("apply failed (exit {code}):\n{err}");
    }
    let after = dump(&redis, CONFIG_DB)?;
    let changes = diff_dumps(&before, &after);
    println!("\n== CONFIG_DB changes ({} keys)", changes.len());
    for c in &changes {
        println!("  {c}");
    }
    println!("\n== metal-switchd apply --once again (nothing to do)");
    let (code, out, err) = run_agent(
        &agent,
        &config,
        &[
            "--log",
            "warn",
            "apply",
            "--once",
            "--configdb-only",
            "--switch",
            &sw,
        ],
    )?;
    print!("{out}");
    if code != 0 {
        bail!("second apply failed (exit {code}):\n{err}");
    }
    standin.settle(Duration::from_secs(5))?;
    let violations = standin.violations();
    if violations.is_empty() {
        println!("\nSONiC stand-in: every write arrived in an order the real daemons accept.");
    } else {
        println!("\nSONiC stand-in reported orders that would crash or wedge SONiC:");
        for v in &violations {
            println!("  ! {v}");
        }
        bail!("{} ordering violation(s)", violations.len());
    }
    Ok(())
}
