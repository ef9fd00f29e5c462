//! `metal-switchd-lab measure`: redis round trips and keys written by the
//! real `metal-switchd apply --once` on mini-lab leaf01 with generated
//! tenants, for a fresh apply, a repeated (no-op) apply and a single-port
//! move between two VRFs. Figures come from the agent's report and,
//! independently, from redis' own `INFO commandstats`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::demo::{LabLeaf, agent_binary};
use crate::generate::{SwitchShape, switch_v1, vni, with_port_vrf};
use crate::redis_server::RedisServer;
use crate::sonic::StandInOptions;

/// One measured apply.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub phases: u64,
    pub round_trips: u64,
    pub keys_written: u64,
    pub commands: u64,
    /// HSET + HDEL + DEL commands redis executed (INFO commandstats), minus
    /// those the SONiC stand-in sent itself.
    pub redis_writes: u64,
    /// MULTI/EXEC transactions redis executed.
    pub redis_exec: u64,
    pub barrier_polls: u64,
}

fn apply(agent: &Path, config: &Path, switch: &Path) -> Result<Value> {
    let out = Command::new(agent)
        .arg("--config")
        .arg(config)
        .args([
            "--log", "error", "apply", "--once", "--format", "json", "--switch",
        ])
        .arg(switch)
        .output()
        .with_context(|| format!("running {}", agent.display()))?;
    if !out.status.success() {
        bail!("apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn writes(redis: &RedisServer) -> Result<(u64, u64)> {
    let w = ["hset", "hdel", "del"]
        .iter()
        .map(|c| redis.command_calls(c))
        .sum::<Result<u64>>()?;
    Ok((w, redis.command_calls("exec")?))
}

/// Run the three scenarios with `vrfs` tenant VRFs.
pub fn run(agent: Option<&Path>, vrfs: usize) -> Result<Vec<Row>> {
    let agent = agent_binary(agent)?;
    let LabLeaf {
        redis,
        standin,
        config,
    } = LabLeaf::start(StandInOptions::default())?;
    let shape = SwitchShape::mini_lab(vrfs);
    let state = switch_v1(&shape);
    let a = redis.dir().join("a.json");
    std::fs::write(&a, state.to_string())?;
    // Move the second port (first tenant port of VRF 0) to VRF 1.
    let b = redis.dir().join("b.json");
    let target_vrf = if vrfs > 1 {
        format!("vrf{}", vni(1))
    } else {
        String::new()
    };
    std::fs::write(&b, with_port_vrf(state, 1, &target_vrf).to_string())?;

    let mut rows = Vec::new();
    for (scenario, file) in [
        (format!("fresh apply ({vrfs} VRFs)"), &a),
        ("no-op apply (same state again)".to_string(), &a),
        ("single-port move Ethernet1 VRF to VRF".to_string(), &b),
    ] {
        standin.settle(Duration::from_secs(10))?;
        redis.reset_stats()?;
        let own_before = standin.writes();
        let report = apply(&agent, &config, file)?;
        standin.settle(Duration::from_secs(10))?;
        let (all_writes, redis_exec) = writes(&redis)?;
        // What redis executed, minus what the stand-in itself wrote as SONiC.
        let redis_writes = all_writes.saturating_sub(standin.writes() - own_before);
        let stats = &report["report"]["stats"];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        rows.push(Row {
            scenario,
            phases: report["plan"]["phases"]
                .as_array()
                .map_or(0, |p| p.len() as u64),
            round_trips: n(&stats["round_trips"]),
            keys_written: n(&stats["keys_written"]),
            commands: n(&stats["write_commands"]),
            redis_writes,
            redis_exec,
            barrier_polls: n(&stats["barrier_polls"]),
        });
    }
    let v = standin.violations();
    if !v.is_empty() {
        bail!(
            "the SONiC stand-in reported ordering violations:\n{}",
            v.join("\n")
        );
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | phases | round trips (agent) | keys written (agent) | write commands (agent) | HSET+HDEL+DEL (redis) | MULTI/EXEC (redis) | barrier polls |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.phases,
            r.round_trips,
            r.keys_written,
            r.commands,
            r.redis_writes,
            r.redis_exec,
            r.barrier_polls
        ));
    }
    s
}
