//! The fleet view (`metal-switchd-lab fleet`): N agents against one lab API
//! server, as a partition's switches talk to metal-api.
//!
//! Each simulated switch is a real `metal-switchd run` (the release binary)
//! with its own redis, seeded like a small generated leaf
//! (`generate::bench_switch`), and its own SONiC stand-in. All agents run in
//! one network namespace whose `mgmt0` is a veth to this process, where the
//! lab API server (v1 with HMAC, or v2 with a token) serves every switch.
//! They start at the same moment, as after a partition's power cut or a
//! fleet-wide update. Once every switch has reported once and is past its
//! first interval tick (1.5 intervals after the start, the most the start
//! spread draws), the calls in a measuring window are counted per switch
//! and per call, bucketed per
//! second (when this process saw them, polling every 100 ms), and the CPU
//! time of the API server's thread and of the agents is read from `/proc`.
//!
//! The lab API server is a stand-in, not metal-api: its CPU per request says
//! what one request costs a small Rust HTTP server that records every call to
//! disk, not what metal-api needs. The request rates are the agents' own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::api_server::{ApiServer, ApiServerOptions, Call, TokenGrant};
use crate::bench::seeded;
use crate::generate::{bench_config, bench_switch};
use crate::redis_server::RedisServer;
use crate::sonic::{SonicStandIn, StandInOptions};

/// metal-core's schedule (the predecessor): a fetch and a notify every 10 s,
/// a phone-home batch every 60 s, per switch and minute.
pub const PREDECESSOR_PER_MINUTE: f64 = 6.0 + 6.0 + 1.0;
/// The partition the report extrapolates to.
pub const PARTITION: f64 = 1000.0;

const HMAC_KEY: &str = "metal-edit-fleet";
const TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.lab-fleet-token.c2lnbmF0dXJl";

/// What to run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub agents: usize,
    /// `v1` or `v2`.
    pub api: String,
    /// The agents' `reconfigure_switch_interval`.
    pub interval: Duration,
    /// How long to count once every switch reported.
    pub window: Duration,
    pub agent: PathBuf,
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    pub agents: usize,
    pub api: String,
    pub interval: Duration,
    pub window: Duration,
    /// From the start until every switch had reported once.
    pub all_reported_after: Duration,
    /// From the start until the measuring window began.
    pub window_start: Duration,
    /// Calls in the window, per call name.
    pub calls: Vec<(String, u64)>,
    /// Calls in the window per switch (fewest, most).
    pub per_switch: (u64, u64),
    /// Calls in the window that named no switch of the fleet.
    pub unattributed: u64,
    /// Calls per second of the window: the busiest second and the mean.
    pub busiest_second: u64,
    pub mean_per_second: f64,
    /// Calls in the first ten seconds after the start (all agents starting).
    pub first_ten_seconds: u64,
    /// CPU seconds of the API server's thread in the window.
    pub server_cpu: f64,
    /// CPU seconds of all agents in the window.
    pub agents_cpu: f64,
}

impl FleetReport {
    pub fn total(&self) -> u64 {
        self.calls.iter().map(|(_, n)| n).sum()
    }

    /// API requests per switch and minute.
    pub fn per_switch_minute(&self) -> f64 {
        self.total() as f64 / self.agents.max(1) as f64 / (self.window.as_secs_f64() / 60.0)
    }
}

/// The network namespace the agents run in; removed on drop.
struct Namespace {
    name: String,
    host_if: String,
    host_ip: std::net::Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Namespace {
    fn new() -> Result<Namespace> {
        crate::netns::require_root()?;
        let id = std::process::id() & 0xffff;
        let ns = Namespace {
            name: format!("msd-fleet-{id}"),
            host_if: format!("msdfl{id:x}"),
            host_ip: std::net::Ipv4Addr::new(
                100,
                127,
                (id >> 6) as u8,
                ((id & 0x3f) << 2) as u8 | 1,
            ),
        };
        let ns_ip = std::net::Ipv4Addr::from(u32::from(ns.host_ip) + 1);
        ip(&["netns", "add", &ns.name])?;
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "mgmt0",
            "netns",
            &ns.name,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            "mgmt0",
        ])?;
        ip(&["-n", &ns.name, "link", "set", "mgmt0", "up"])?;
        Ok(ns)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// One simulated switch.
struct Switch {
    _redis: RedisServer,
    _standin: SonicStandIn,
    agent: Child,
    log: PathBuf,
}

impl Drop for Switch {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.agent.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.agent.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.agent.kill();
        let _ = self.agent.wait();
    }
}

/// utime + stime of a `/proc/.../stat` file, in seconds.
fn cpu_of(stat: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The fields after the command name (which may hold spaces).
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// The stat file of this process' thread named `name`.
fn thread_stat(name: &str) -> Option<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|p| p.join("stat"))
}

/// The switch a recorded call was for (`leafNN`), from its path or body.
fn switch_of(path: &str, request: &Value) -> Option<String> {
    let find = |s: &str| -> Option<String> {
        let i = s.find("fleet")?;
        let digits: String = s[i + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("fleet{digits}"))
    };
    find(path).or_else(|| find(&request.to_string()))
}

/// Run the fleet.
pub fn run(opts: &FleetOptions) -> Result<FleetReport> {
    let ns = Namespace::new()?;
    let dir = tempfile::Builder::new()
        .prefix("metal-switchd-fleet-")
        .tempdir()?;
    let (ports, vrfs) = (16, 4);
    let mut docs = Vec::new();
    for i in 0..opts.agents {
        let (mut doc, _) = bench_switch(ports, vrfs);
        let id = format!("fleet{i:03}");
        doc["id"] = id.clone().into();
        doc["name"] = id.into();
        doc["partition_id"] = "fleet".into();
        docs.push(doc.to_string());
    }
    let server = ApiServer::start(ApiServerOptions {
        switches: docs,
        partitions: vec!["fleet".into()],
        hmac_edit_key: Some(HMAC_KEY.into()),
        tokens: [(TOKEN.to_owned(), TokenGrant::Editor)].into(),
        listen: (ns.host_ip, 0).into(),
        ..ApiServerOptions::default()
    })?;
    let server_stat = thread_stat("lab-api-server").context("the API server's thread")?;
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n"))?;
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let version = dir.path().join("sonic_version.yml");
    std::fs::write(&version, "build_version: 'SONiC.4.5.1-Enterprise_Base'\n")?;

    // Every switch's redis and stand-in first, then all agents at once.
    let mut prepared = Vec::new();
    for i in 0..opts.agents {
        let (_, port_map) = bench_switch(ports, vrfs);
        let redis = seeded(&port_map)?;
        let standin = SonicStandIn::start(&redis, StandInOptions::default())?;
        let d = dir.path().join(format!("fleet{i:03}"));
        std::fs::create_dir_all(&d)?;
        let api = match opts.api.as_str() {
            // The lab serves plain HTTP.
            "v2" => format!(
                "api_version = \"v2\"\nmetal_apiserver_url = \"{}/\"\nmetal_apiserver_token_file = {:?}\n\
                 api_allow_plaintext = true\n",
                server.base_url(),
                token.display().to_string()
            ),
            _ => format!(
                "api_version = \"v1\"\nmetal_api_ip = \"{}\"\nmetal_api_port = {}\n\
                 metal_api_basepath = \"/metal/\"\nhmac_key = \"{HMAC_KEY}\"\n",
                server.addr().ip(),
                server.addr().port()
            ),
        };
        let config = d.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "{}partition_id = \"fleet\"\nrack_id = \"rack01\"\ndatabase_config = {:?}\n{api}\
                 reconfigure_switch = true\nreconfigure_switch_interval = \"{}ms\"\n\
                 management_interface = \"mgmt0\"\nsonic_version_file = {:?}\n\
                 bgp_neighbor_state_file = \"\"\nkernel_checks = false\n\
                 frr_config = {:?}\nfrr_reload = \"none\"\nfrr_agentx = false\n\
                 state_directory = {:?}\nmetrics_server_port = {}\nlog_level = \"warn\"\n",
                bench_config(ports).replace(
                    "hostname = \"leaf01\"",
                    &format!("hostname = \"fleet{i:03}\"")
                ),
                redis.write_database_config()?.display().to_string(),
                opts.interval.as_millis(),
                version.display().to_string(),
                d.join("frr.conf").display().to_string(),
                d.join("state").display().to_string(),
                21120 + i,
            ),
        )?;
        prepared.push((redis, standin, config, d.join("agent.log")));
    }
    let started = Instant::now();
    let mut switches = Vec::new();
    for (redis, standin, config, log) in prepared {
        let agent = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(&opts.agent)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env_remove("METAL_SWITCHD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .spawn()
            .context("starting metal-switchd")?;
        switches.push(Switch {
            _redis: redis,
            _standin: standin,
            agent,
            log,
        });
    }
    let pids: Vec<u32> = switches.iter().map(|s| s.agent.id()).collect();
    let agents_cpu = || -> f64 {
        pids.iter()
            .filter_map(|p| cpu_of(&PathBuf::from(format!("/proc/{p}/stat"))))
            .sum()
    };

    // Poll the records: the time each was first seen.
    let mut seen: Vec<(Duration, Call, Option<String>)> = Vec::new();
    let poll = |seen: &mut Vec<(Duration, Call, Option<String>)>| {
        let now = started.elapsed();
        for r in server.take_records() {
            seen.push((now, r.call, switch_of(&r.path, &r.request)));
        }
    };
    let report_call = if opts.api == "v2" {
        Call::V2Heartbeat
    } else {
        Call::V1Notify
    };
    let warmup_limit = Duration::from_secs(600);
    let all_reported_after = loop {
        poll(&mut seen);
        let reported: std::collections::BTreeSet<&String> = seen
            .iter()
            .filter(|(_, c, _)| *c == report_call)
            .filter_map(|(_, _, s)| s.as_ref())
            .collect();
        if reported.len() >= opts.agents {
            break started.elapsed();
        }
        for s in &mut switches {
            if let Ok(Some(status)) = s.agent.try_wait() {
                bail!(
                    "an agent stopped ({status}):\n{}",
                    std::fs::read_to_string(&s.log).unwrap_or_default()
                );
            }
        }
        if started.elapsed() > warmup_limit {
            bail!(
                "only {} of {} switches reported within {warmup_limit:?}",
                reported.len(),
                opts.agents
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let first_ten_seconds = seen
        .iter()
        .filter(|(t, _, _)| *t < Duration::from_secs(10))
        .count() as u64;
    // The steady state: every switch past its first interval tick, which
    // comes up to 1.5 intervals after its start (`Schedule::spread_start`).
    let settled = opts.interval.mul_f64(1.5);
    while started.elapsed() < settled {
        std::thread::sleep(Duration::from_millis(100));
        poll(&mut seen);
    }
    let window_start = started.elapsed();
    let (server0, agents0) = (cpu_of(&server_stat).unwrap_or(0.0), agents_cpu());
    let from = seen.len();
    while started.elapsed() < window_start + opts.window {
        std::thread::sleep(Duration::from_millis(100));
        poll(&mut seen);
    }
    let (server1, agents1) = (cpu_of(&server_stat).unwrap_or(0.0), agents_cpu());
    let window: Vec<&(Duration, Call, Option<String>)> = seen[from..]
        .iter()
        .filter(|(t, _, _)| *t < window_start + opts.window)
        .collect();
    let mut calls: Vec<(String, u64)> = Call::ALL
        .iter()
        .map(|c| {
            (
                c.name().to_owned(),
                window.iter().filter(|(_, x, _)| x == c).count() as u64,
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    calls.sort();
    let mut per: std::collections::BTreeMap<String, u64> = (0..opts.agents)
        .map(|i| (format!("fleet{i:03}"), 0))
        .collect();
    let mut unattributed = 0;
    for (_, _, s) in &window {
        match s.as_ref().and_then(|s| per.get_mut(s)) {
            Some(n) => *n += 1,
            None => unattributed += 1,
        }
    }
    let mut seconds: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for (t, _, _) in &window {
        *seconds.entry((*t - window_start).as_secs()).or_default() += 1;
    }
    drop(switches);
    Ok(FleetReport {
        agents: opts.agents,
        api: opts.api.clone(),
        interval: opts.interval,
        window: opts.window,
        all_reported_after,
        window_start,
        calls,
        per_switch: (
            per.values().copied().min().unwrap_or(0),
            per.values().copied().max().unwrap_or(0),
        ),
        unattributed,
        busiest_second: seconds.values().copied().max().unwrap_or(0),
        mean_per_second: window.len() as f64 / opts.window.as_secs_f64(),
        first_ten_seconds,
        server_cpu: server1 - server0,
        agents_cpu: agents1 - agents0,
    })
}

/// The report as a Markdown section.
pub fn markdown(r: &FleetReport) -> String {
    let mut s = String::new();
    let minutes = r.window.as_secs_f64() / 60.0;
    let per_min = r.per_switch_minute();
    let _ = writeln!(
        s,
        "## The fleet view (`metal-switchd-lab fleet`)\n\n\
         {} real `metal-switchd run` processes, one redis and SONiC stand-in each (a generated leaf of 16 ports, 4 VRFs), \
         started at the same moment against one lab API server ({}), `reconfigure_switch_interval` {} s. \
         Counted over {:.0} s from {:.1} s after the start (every switch had reported once after {:.1} s; every switch is past its first interval tick \
         after 1.5 intervals). \
         The machine is shared (2 cores, other builds running): CPU figures are from `/proc` for this run only.\n",
        r.agents,
        if r.api == "v2" {
            "v2, bearer token"
        } else {
            "v1, HMAC"
        },
        r.interval.as_secs_f64(),
        r.window.as_secs_f64(),
        r.window_start.as_secs_f64(),
        r.all_reported_after.as_secs_f64()
    );
    let _ = writeln!(s, "| call | per switch and minute |\n|---|---|");
    for (name, n) in &r.calls {
        let _ = writeln!(
            s,
            "| `{name}` | {:.2} |",
            *n as f64 / r.agents.max(1) as f64 / minutes
        );
    }
    let _ = writeln!(s, "| all | {per_min:.2} |\n");
    let server_per_request_us = if r.total() > 0 {
        r.server_cpu / r.total() as f64 * 1e6
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "| figure | measured | metal-core (predecessor) |\n|---|---|---|\n\
         | API requests per switch and minute | {per_min:.2} | {PREDECESSOR_PER_MINUTE:.0} (a fetch and a notify every 10 s, a phone-home batch every 60 s) |\n\
         | … for a partition of {PARTITION:.0} switches | {:.0} per minute ({:.1} per second) | {:.0} per minute ({:.1} per second) |\n\
         | calls per switch in the window (fewest, most) | {}, {} | |\n\
         | calls per second over the window: busiest second, mean | {}, {:.2} | |\n\
         | calls in the first 10 s (every switch starting) | {} | |\n\
         | lab API server: CPU in the window (share of one core), per request | {:.2} s ({:.1} %), {:.0} µs | |\n\
         | agents: CPU per switch and minute (mean) | {:.1} ms | |\n",
        per_min * PARTITION,
        per_min * PARTITION / 60.0,
        PREDECESSOR_PER_MINUTE * PARTITION,
        PREDECESSOR_PER_MINUTE * PARTITION / 60.0,
        r.per_switch.0,
        r.per_switch.1,
        r.busiest_second,
        r.mean_per_second,
        r.first_ten_seconds,
        r.server_cpu,
        r.server_cpu / r.window.as_secs_f64() * 100.0,
        server_per_request_us,
        r.agents_cpu / r.agents.max(1) as f64 / minutes * 1e3,
    );
    let _ = writeln!(
        s,
        "A partition of {PARTITION:.0} switches at this interval sends the API about {:.0} requests per minute ({:.1} per second) \
         in steady state; metal-core's schedule is {:.0} per minute ({:.1} per second) when every switch has a phone-home batch to send. \
         The switches here see no machines over LLDP, so they send no phone-home batches; a switch that does sends at most one per \
         `phone_home_interval` (docs/api.md).\n\n\
         How the agent spreads its calls over time:\n\n\
         - Start: every switch fetches and reports at once after it starts (the calls of the first 10 s above); after that its first \
           interval tick comes after a random 0.5–1.5 of the interval, its second v2 ping after a random 0.5–1.5 of the ping period, its first \
           phone-home batch after a random 0.5–1.5 of its interval (`src/reconcile/schedule.rs`, `Schedule::spread_start`; \
           `src/lldp/phone_home.rs`). Every later tick keeps that phase, so switches started at the same moment (a partition powered up, \
           a fleet-wide update) do not call in step: the busiest second above against the mean says how even the load is.\n\
         - Retries: a failed reconcile backs off from 1 s, doubling up to the interval, each pause scaled by a random 0.8–1.2; a failed \
           API call is retried with exponential backoff, each pause drawn from 50–100 % of its step (`src/api/transport.rs`). Switches \
           that lost the API together do not come back together.\n\
         - No polling: between ticks the agent calls the API only to report a state change (at most one report per second, \
           `REPORT_MIN_GAP`) and for v2's ping.\n",
        per_min * PARTITION,
        per_min * PARTITION / 60.0,
        PREDECESSOR_PER_MINUTE * PARTITION,
        PREDECESSOR_PER_MINUTE * PARTITION / 60.0,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_attributed_to_their_switch() {
        assert_eq!(
            switch_of("/metal/v1/switch/fleet007/notify", &Value::Null).as_deref(),
            Some("fleet007")
        );
        let body: Value = serde_json::json!({"id": "fleet012"});
        assert_eq!(
            switch_of("/metalstack.api.v2.SwitchService/Get", &body).as_deref(),
            Some("fleet012")
        );
        assert_eq!(switch_of("/x", &Value::Null), None);
    }
}
