//! The netns mini-lab: a metal-stack partition on one machine.
//!
//! Network namespaces `leaf01`, `leaf02`, `exit`, `machine01`, `machine02`
//! (plus `mgmt`, the management network) wired like metal-stack's mini-lab
//! ([`topology`]). Per leaf: a redis on a unix socket seeded like SONiC's
//! boot (mini-lab base configuration, the mini-lab port map's PORT table,
//! `CONFIG_DB_INITIALIZED`, `PortInitDone`); the SONiC stand-in with random
//! per-daemon delays, applying MTU and admin state (and on a full kernel the
//! managers' VRF/VLAN/VXLAN objects) to the namespace's veth ports; FRR
//! (`zebra`, `bgpd`, `staticd`) with the leaf's host name; and `metal-switchd
//! run` with its metrics endpoint, reloading FRR through `frr-reload.py`.
//! `exit` runs FRR as the BGP unnumbered peer of both leaves; the machines
//! run FRR peering with their leaves as metal-stack machines do. One lab API
//! server (v1 or v2) on the management network serves both leaves.
//!
//! Names: every namespace is `<prefix><node>`; the default prefix is empty
//! (the names an operator expects), tests use a unique one. Files live in
//! the state directory (`/run/metal-switchd-lab/<prefix>lab` by default):
//! `lab.json` says what was created before anything is, so a later `up` or
//! `down` can remove the leftovers of a lab whose process died. Teardown
//! stops the agents (SIGTERM; they exit 0), then sweeps each namespace: every
//! process still in it (redis, FRR), then the namespace.

pub mod control;
pub mod observe;
pub mod process;
pub mod scenario;
pub mod topology;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::api_server::{ApiServer, ApiServerOptions, Call, TokenGrant};
use crate::fixtures;
use crate::frr_lab::{FrrLab, run};
use crate::redis_server::RedisServer;
use crate::seed::{SeedOptions, seed_switch};
use crate::sonic::{SonicStandIn, StandInOptions};
use crate::sonic_real::{RealSonic, SonicChoice, VsPort};
use crate::switch_redis::SwitchSize;

use observe::{LeafPaths, Report, Session};
use process::{alive, in_node, signal, sweep_netns, wait_for};
use topology::{ApiVersion, LEAVES, Leaf, MACHINES};

/// Where lab state directories go by default.
pub const STATE_ROOT: &str = "/run/metal-switchd-lab";
/// The lab's description file in its state directory.
pub const LAB_JSON: &str = "lab.json";

/// How to run a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Prepended to every namespace name (`[a-z0-9-]`, at most 8 characters).
    pub prefix: String,
    pub api: ApiVersion,
    /// The `metal-switchd` binary the leaves run.
    pub agent: PathBuf,
    /// The state directory (default `/run/metal-switchd-lab/<prefix>lab`).
    pub state_dir: Option<PathBuf>,
    /// The agents' `reconfigure_switch_interval`.
    pub interval: Duration,
    /// Seed of the SONiC stand-in's random per-daemon delays.
    pub seed: u64,
    /// Largest per-daemon delay of the stand-in.
    pub max_delay: Duration,
    /// Print progress to stdout.
    pub progress: bool,
    /// Bound of every wait (only catches hangs).
    pub timeout: Duration,
    /// Seed the leaves with only their cabled ports (`Ethernet0`,
    /// `Ethernet1`, `Ethernet120`) instead of mini-lab's 122: for an
    /// emulated CPU, where SONiC's per-port kernel steps for 122 ports take
    /// minutes.
    pub only_wired_ports: bool,
    /// The agents' `timeout` and `barrier_timeout`.
    pub agent_timeout: Duration,
    pub barrier_timeout: Duration,
    /// Routes of a switch's routing state in each leaf's redis (APPL_DB
    /// routes, three ASIC_DB keys per route, COUNTERS_DB counters:
    /// [`crate::switch_redis`]); 0: only the configuration.
    pub switch_routes: usize,
    /// What runs as SONiC on every leaf (the stand-in by default) ...
    pub sonic: SonicChoice,
    /// ... except on these leaves (by name).
    pub sonic_leaves: BTreeMap<String, SonicChoice>,
    /// The SONiC flavour the stand-in leaves stand in for
    /// (`crate::flavours`); a real leaf is its release's community flavour.
    pub flavour: crate::flavours::Profile,
}

impl LabOptions {
    pub fn new(agent: PathBuf) -> LabOptions {
        LabOptions {
            prefix: String::new(),
            api: ApiVersion::V2,
            agent,
            state_dir: None,
            interval: Duration::from_secs(1),
            seed: 0x1ab5,
            max_delay: Duration::from_millis(25),
            progress: false,
            timeout: Duration::from_secs(120),
            only_wired_ports: false,
            agent_timeout: Duration::from_secs(20),
            barrier_timeout: Duration::from_secs(15),
            sonic: SonicChoice::StandIn,
            sonic_leaves: BTreeMap::new(),
            switch_routes: 0,
            flavour: crate::flavours::Profile::Dell45,
        }
    }

    /// What runs as SONiC on `leaf`.
    pub fn sonic_of(&self, leaf: &str) -> SonicChoice {
        self.sonic_leaves.get(leaf).copied().unwrap_or(self.sonic)
    }

    /// The SONiC flavour of `leaf`.
    pub fn flavour_of(&self, leaf: &str) -> crate::flavours::Profile {
        match self.sonic_of(leaf) {
            SonicChoice::StandIn => self.flavour,
            SonicChoice::Real(r) => r.profile(),
        }
    }

    /// Any leaf runs real SONiC.
    pub fn any_real_sonic(&self) -> bool {
        LEAVES
            .iter()
            .any(|l| self.sonic_of(l.name) != SonicChoice::StandIn)
    }

    /// The bounds a lab with a real SONiC leaf needs: SONiC's per-port
    /// steps under the VM's emulated CPU (the cabled ports only), and time
    /// for the real daemons.
    pub fn set_real_sonic_bounds(&mut self) {
        self.only_wired_ports = true;
        self.interval = self.interval.max(Duration::from_secs(2));
        self.timeout = Duration::from_secs(300);
        self.agent_timeout = Duration::from_secs(180);
        self.barrier_timeout = Duration::from_secs(150);
    }

    /// The port map the leaves are seeded with (`port_config.ini`).
    pub fn port_map(&self) -> String {
        if !self.only_wired_ports {
            return fixtures::MINI_LAB_PORT_MAP.to_owned();
        }
        let wired: Vec<&str> = topology::links()
            .iter()
            .flat_map(|l| [l.a, l.b])
            .filter(|(node, _)| node.starts_with("leaf"))
            .map(|(_, port)| port)
            .collect();
        fixtures::MINI_LAB_PORT_MAP
            .lines()
            .filter(|l| {
                l.starts_with('#')
                    || l.split_whitespace()
                        .next()
                        .is_some_and(|p| wired.contains(&p))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The state directory these options name.
    pub fn dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| Path::new(STATE_ROOT).join(format!("{}lab", self.prefix)))
    }

    /// The namespace of `node`.
    pub fn netns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    fn check(&self) -> Result<()> {
        if self.prefix.len() > 8
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            bail!(
                "lab prefix {:?}: at most 8 characters of a-z, 0-9 and '-'",
                self.prefix
            );
        }
        if !self.agent.is_file() {
            bail!(
                "{} not found; build it first (cargo build --release --workspace --bins)",
                self.agent.display()
            );
        }
        Ok(())
    }
}

/// What runs as a leaf's SONiC.
pub enum LeafSonic {
    StandIn(SonicStandIn),
    Real(RealSonic),
}

impl LeafSonic {
    /// The ordering violations the stand-in reported (none for real SONiC,
    /// whose daemons report in their logs: [`RealSonic::findings`]).
    pub fn violations(&self) -> Vec<String> {
        match self {
            LeafSonic::StandIn(s) => s.violations(),
            LeafSonic::Real(_) => Vec::new(),
        }
    }

    /// Wait until the stand-in's queues are empty (real SONiC: nothing to
    /// wait for here; the agent's barriers wait for its daemons).
    pub fn settle(&self, timeout: Duration) -> Result<()> {
        match self {
            LeafSonic::StandIn(s) => s.settle(timeout),
            LeafSonic::Real(_) => Ok(()),
        }
    }

    pub fn standin(&self) -> Option<&SonicStandIn> {
        match self {
            LeafSonic::StandIn(s) => Some(s),
            LeafSonic::Real(_) => None,
        }
    }

    pub fn real(&self) -> Option<&RealSonic> {
        match self {
            LeafSonic::StandIn(_) => None,
            LeafSonic::Real(r) => Some(r),
        }
    }

    /// `stand-in` or `SONiC <release>`.
    pub fn label(&self) -> String {
        match self {
            LeafSonic::StandIn(_) => SonicChoice::StandIn.to_string(),
            LeafSonic::Real(r) => SonicChoice::Real(r.release).to_string(),
        }
    }
}

/// One running leaf.
pub struct LeafNode {
    pub leaf: Leaf,
    pub netns: String,
    pub dir: PathBuf,
    pub redis: RedisServer,
    pub sonic: LeafSonic,
    pub frr: FrrLab,
    agent: Option<Child>,
    pub agent_log: PathBuf,
    pub config: PathBuf,
    /// The metal-switchd binary it runs.
    pub agent_bin: PathBuf,
    /// How the agent ended (after teardown or a crash).
    pub agent_exit: Option<std::process::ExitStatus>,
}

impl LeafNode {
    pub fn paths(&self) -> LeafPaths {
        LeafPaths {
            name: self.leaf.name.to_owned(),
            redis_socket: self.redis.socket().to_owned(),
            vty_dir: self.frr.vty_socket_dir(),
            frr_config: self.frr.config_file(),
            state_dir: self.dir.clone(),
            agent: self.agent_bin.clone(),
            agent_config: self.config.clone(),
        }
    }

    /// The agent's pid while it runs.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// `running`, or how the agent ended; notices an exit.
    pub fn agent_state(&mut self) -> String {
        if let Some(c) = &mut self.agent
            && let Ok(Some(st)) = c.try_wait()
        {
            self.agent_exit = Some(st);
            self.agent = None;
        }
        match (&self.agent, self.agent_exit) {
            (Some(c), _) => format!("running, pid {}", c.id()),
            (None, Some(st)) => format!("exited: {st}"),
            (None, None) => "not started".into(),
        }
    }

    /// The agent's log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    /// BGP sessions as FRR shows them.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        observe::bgp_sessions(&self.frr.vty_socket_dir())
    }

    /// Stop the agent with SIGTERM and wait for it (SIGKILL after `grace`).
    fn stop_agent(&mut self, grace: Duration) {
        let Some(mut c) = self.agent.take() else {
            return;
        };
        signal(c.id() as i32, libc::SIGTERM);
        let start = Instant::now();
        loop {
            match c.try_wait() {
                Ok(Some(st)) => {
                    self.agent_exit = Some(st);
                    return;
                }
                Ok(None) if start.elapsed() < grace => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = c.kill();
                    self.agent_exit = c.wait().ok();
                    return;
                }
            }
        }
    }
}

/// A running lab; torn down on drop.
pub struct Lab {
    pub opts: LabOptions,
    pub dir: PathBuf,
    pub api: Option<ApiServer>,
    pub leaves: Vec<LeafNode>,
    routers: Vec<FrrLab>,
    pub started: Instant,
    /// From the start of `up` to every leaf↔exit session Established.
    pub established_after: Option<Duration>,
    /// The kernel can create VRF devices: the agents confirm convergence in
    /// the kernel (`kernel_checks`), tenant sessions can come up.
    pub full_kernel: bool,
    down: bool,
}

/// What a teardown found.
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    /// Each agent's exit (name, status text, success).
    pub agents: Vec<(String, String, bool)>,
    /// Ordering violations the stand-ins reported, per leaf.
    pub violations: Vec<(String, Vec<String>)>,
    /// Processes the namespace sweep still had to end.
    pub swept: usize,
    /// Real SONiC leaves: (leaf, release, the daemons' error and warning
    /// lines).
    pub sonic_logs: Vec<(String, String, Vec<String>)>,
}

fn progress(opts: &LabOptions, msg: &str) {
    if opts.progress {
        println!("{msg}");
    }
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, format!("{text}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Write `lab.json` atomically.
fn write_lab_json(dir: &Path, v: &Value) -> Result<()> {
    let tmp = dir.join(format!("{LAB_JSON}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(v)?)?;
    std::fs::rename(&tmp, dir.join(LAB_JSON))?;
    Ok(())
}

/// Read a lab's `lab.json`.
pub fn read_lab_json(dir: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(dir.join(LAB_JSON)) {
        Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| {
            format!("{} is not JSON", dir.join(LAB_JSON).display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.join(LAB_JSON).display())),
    }
}

/// The process that owns the lab described by `lab`, if it still runs.
pub fn owner_alive(lab: &Value) -> Option<i32> {
    let pid = lab["owner_pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())?;
    if pid == std::process::id() as i32 || !alive(pid) {
        return None;
    }
    // A reused pid is not the owner: the owner's start time is recorded.
    let started = lab["owner_start"].as_u64();
    (started.is_none() || started == process_start(pid)).then_some(pid)
}

/// The start time of `pid` (field 22 of /proc/PID/stat, clock ticks).
pub fn process_start(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Remove what a lab with these options left behind (its process died or
/// was killed): every process in its namespaces, the namespaces, the state
/// directory. Refuses when the lab's owner still runs, and when a namespace
/// of a lab name exists that no `lab.json` claims. Returns what it removed.
pub fn clean_leftovers(opts: &LabOptions) -> Result<Vec<String>> {
    let dir = opts.dir();
    let lab = read_lab_json(&dir)?;
    let mut removed = Vec::new();
    let claimed: Vec<String> = match &lab {
        Some(l) => {
            if let Some(pid) = owner_alive(l) {
                bail!(
                    "the lab in {} is running (process {pid}); stop it first: metal-switchd-lab lab down{}",
                    dir.display(),
                    if opts.prefix.is_empty() {
                        String::new()
                    } else {
                        format!(" --prefix {}", opts.prefix)
                    }
                );
            }
            l["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        }
        None => Vec::new(),
    };
    for node in topology::nodes() {
        let ns = opts.netns(node);
        if process::netns_exists(&ns) && !claimed.contains(&ns) {
            bail!(
                "network namespace {ns} exists but is not this lab's (no {} claims it); \
                 remove it (ip netns del {ns}) or choose another --prefix",
                dir.join(LAB_JSON).display()
            );
        }
    }
    for ns in &claimed {
        if process::netns_exists(ns) {
            let n = sweep_netns(ns, Duration::from_secs(3))?;
            removed.push(format!("network namespace {ns} ({n} processes)"));
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        removed.push(format!("state directory {}", dir.display()));
    }
    Ok(removed)
}

/// Remove the leftovers of every lab under [`STATE_ROOT`] whose owning
/// process is gone (tests use a unique prefix per run; a run killed by a
/// timeout leaves its lab behind). Labs whose owner runs are not touched.
/// Returns what it removed.
pub fn clean_dead_labs(agent: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(STATE_ROOT) else {
        return Ok(removed);
    };
    for e in entries.flatten() {
        let dir = e.path();
        let Ok(Some(l)) = read_lab_json(&dir) else {
            continue;
        };
        if owner_alive(&l).is_some()
            || l["owner_pid"].as_i64() == Some(i64::from(std::process::id()))
        {
            continue;
        }
        let mut o = LabOptions::new(agent.to_owned());
        o.prefix = l["prefix"].as_str().unwrap_or_default().to_owned();
        o.state_dir = Some(dir.clone());
        removed.extend(clean_leftovers(&o)?);
    }
    Ok(removed)
}

impl Lab {
    /// Bring the lab up: clean leftovers, create everything, start every
    /// piece, wait until both leaves registered and converged and both
    /// leaf↔exit sessions are Established.
    pub fn up(opts: LabOptions) -> Result<Lab> {
        opts.check()?;
        crate::frr_lab::require_frr()?;
        let started = Instant::now();
        for r in clean_leftovers(&opts)? {
            progress(&opts, &format!("   removed leftovers: {r}"));
        }
        let dir = opts.dir();
        // FRR runs as user frr: every directory on the way must be searchable.
        if let Some(parent) = dir.parent()
            && !parent.exists()
        {
            mkdir(parent)?;
        }
        mkdir(&dir)?;
        let namespaces: Vec<String> = topology::nodes().iter().map(|n| opts.netns(n)).collect();
        let me = std::process::id() as i32;
        let mut info = json!({
            "prefix": opts.prefix,
            "api": opts.api.as_str(),
            "flavour": opts.flavour.name(),
            "owner_pid": me,
            "owner_start": process_start(me),
            "agent": opts.agent,
            "namespaces": namespaces,
            "state": "starting",
        });
        write_lab_json(&dir, &info)?;
        let mut lab = Lab {
            opts,
            dir,
            api: None,
            leaves: Vec::new(),
            routers: Vec::new(),
            started,
            established_after: None,
            full_kernel: crate::frr_lab::kernel_has_vrf(),
            down: false,
        };
        if lab.opts.any_real_sonic() && !lab.full_kernel {
            bail!(
                "real SONiC needs a kernel with vrf, VLAN and bridge VLAN filtering; \
                 run the lab in the full-kernel VM (./dev demo does on this kernel; \
                 tests: ./dev vm-test minilab_sonic)"
            );
        }
        if lab.opts.any_real_sonic() && lab.opts.switch_routes > 0 {
            // The generated routing state includes ASIC_DB keys: under a
            // real syncd they would be objects no SAI created.
            bail!(
                "switch_routes (--switch-routes) fills the stand-in's redis only; \
                 a real SONiC leaf's routes come from its own daemons"
            );
        }
        lab.build(&mut info)?;
        Ok(lab)
    }

    fn say(&self, msg: &str) {
        progress(&self.opts, msg);
    }

    fn build(&mut self, info: &mut Value) -> Result<()> {
        let o = self.opts.clone();
        // Namespaces and links.
        for node in topology::nodes() {
            let ns = o.netns(node);
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        for l in topology::links() {
            let mtu = l.mtu.to_string();
            let (an, bn) = (o.netns(l.a.0), o.netns(l.b.0));
            run(
                "ip",
                &[
                    "link", "add", l.a.1, "netns", &an, "mtu", &mtu, "type", "veth", "peer",
                    "name", l.b.1, "netns", &bn, "mtu", &mtu,
                ],
            )?;
            run("ip", &["-n", &an, "link", "set", l.a.1, "up"])?;
            run("ip", &["-n", &bn, "link", "set", l.b.1, "up"])?;
        }
        let mgmt = o.netns(topology::MGMT);
        let br = topology::MGMT_BRIDGE;
        run("ip", &["-n", &mgmt, "link", "add", br, "type", "bridge"])?;
        run(
            "ip",
            &[
                "-n",
                &mgmt,
                "addr",
                "add",
                &format!("{}/{}", topology::API_IP, topology::MGMT_PREFIX_LEN),
                "dev",
                br,
            ],
        )?;
        run("ip", &["-n", &mgmt, "link", "set", br, "up"])?;
        for leaf in LEAVES {
            let ns = o.netns(leaf.name);
            run(
                "ip",
                &[
                    "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", leaf.name,
                    "netns", &mgmt,
                ],
            )?;
            run(
                "ip",
                &["-n", &mgmt, "link", "set", leaf.name, "master", br, "up"],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{}/{}", leaf.mgmt_ip, topology::MGMT_PREFIX_LEN),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        if self.full_kernel && !o.only_wired_ports {
            self.add_unwired_ports()?;
        }
        self.say(&format!(
            "== network namespaces {} (links as in mini-lab; management bridge in {mgmt})",
            topology::nodes()
                .iter()
                .map(|n| o.netns(n))
                .collect::<Vec<_>>()
                .join(", ")
        ));

        // The lab API server, on the management network.
        let api_dir = self.dir.join("api");
        mkdir(&api_dir)?;
        let api_opts = ApiServerOptions {
            partitions: vec![topology::PARTITION.into()],
            hmac_edit_key: Some(topology::HMAC_KEY.into()),
            tokens: BTreeMap::from([(topology::TOKEN.to_owned(), TokenGrant::Editor)]),
            record_dir: Some(api_dir.clone()),
            listen: (topology::API_IP, topology::API_PORT).into(),
            ..ApiServerOptions::default()
        };
        let api = process::in_netns(&mgmt, move || ApiServer::start(api_opts))?;
        self.say(&format!(
            "== lab API server ({}) at {} in {mgmt}; calls recorded in {}",
            o.api.as_str(),
            api.base_url(),
            api_dir.display()
        ));
        self.api = Some(api);

        // Routers: exit and the machines, in parallel with the leaves' FRR.
        let exit_ns = o.netns(topology::EXIT);
        let exit_dir = self.dir.join(topology::EXIT);
        let exit = FrrLab::start_in(&exit_ns, topology::EXIT, &exit_dir)?;
        exit.boot(&topology::exit_frr_conf())?;
        self.routers.push(exit);
        for m in MACHINES {
            let frr = FrrLab::start_in(&o.netns(m.name), m.name, &self.dir.join(m.name))?;
            frr.boot(&topology::machine_frr_conf(&m))?;
            self.routers.push(frr);
        }
        self.say("== FRR: exit (mini-lab's exit configuration), machine01, machine02 (BGP unnumbered to their leaves)");

        // The leaves.
        for (i, leaf) in LEAVES.iter().enumerate() {
            let node = self.start_leaf(leaf, i as u64)?;
            self.say(&format!(
                "== {}: SONiC flavour {}: redis {}, {}, FRR {}, metal-switchd run (pid {}, log {})",
                leaf.name,
                o.flavour_of(leaf.name),
                node.redis.socket().display(),
                node.sonic.label(),
                o.sonic_of(leaf.name)
                    .release()
                    .map_or("(Debian)", |r| r.frr_version()),
                node.agent_pid().unwrap_or(0),
                node.agent_log.display()
            ));
            self.leaves.push(node);
        }
        info["state"] = json!("started");
        info["api_url"] = json!(format!(
            "http://{}:{}/",
            topology::API_IP,
            topology::API_PORT
        ));
        info["leaves"] = Value::Array(
            self.leaves
                .iter()
                .map(|l| {
                    json!({
                        "name": l.leaf.name,
                        "netns": l.netns,
                        "dir": l.dir,
                        "redis_socket": l.redis.socket(),
                        "vty_dir": l.frr.vty_socket_dir(),
                        "frr_config": l.frr.config_file(),
                        "agent_pid": l.agent_pid(),
                        "agent_config": l.config,
                        "agent_log": l.agent_log,
                        "sonic": l.sonic.label(),
                    })
                })
                .collect(),
        );
        info["routers"] = Value::Array(
            self.routers
                .iter()
                .map(|r| json!({"name": r.hostname(), "netns": r.netns(), "vty_dir": r.vty_socket_dir()}))
                .collect(),
        );
        write_lab_json(&self.dir, info)?;

        self.wait_ready()?;
        info["state"] = json!("ready");
        info["established_after_seconds"] = json!(self.established_after.map(|d| d.as_secs_f64()));
        write_lab_json(&self.dir, info)?;
        Ok(())
    }

    /// On a full kernel the agents confirm every managed port in the kernel
    /// (`kernel_checks`), and a SONiC switch has a netdev for every port of
    /// its port map: the ports no cable is plugged into become `dummy`
    /// devices (one `ip -batch` per leaf).
    fn add_unwired_ports(&self) -> Result<()> {
        let wired: Vec<(&str, &str)> = topology::links().iter().flat_map(|l| [l.a, l.b]).collect();
        let ports = crate::seed::port_entries(&self.opts.port_map())?;
        for leaf in LEAVES {
            let mut batch = String::new();
            for (key, _) in &ports {
                let name = key.strip_prefix("PORT|").unwrap_or(key);
                if !wired.contains(&(leaf.name, name)) {
                    batch.push_str(&format!("link add {name} type dummy\n"));
                }
            }
            crate::netns::Netns::batch_in(&self.opts.netns(leaf.name), &batch)?;
        }
        Ok(())
    }

    /// The leaf's cabled ports with their lanes: real SONiC's front panel.
    fn vs_ports(&self, leaf: &Leaf) -> Result<Vec<VsPort>> {
        if !self.opts.only_wired_ports {
            bail!("real SONiC runs the leaves with only their cabled ports (only_wired_ports)");
        }
        let wired: Vec<&str> = topology::links()
            .iter()
            .flat_map(|l| [l.a, l.b])
            .filter(|(node, _)| *node == leaf.name)
            .map(|(_, port)| port)
            .collect();
        crate::sonic_real::ports_with_lanes(&self.opts.port_map(), &wired)
    }

    fn start_leaf(&self, leaf: &Leaf, index: u64) -> Result<LeafNode> {
        let o = &self.opts;
        let ns = o.netns(leaf.name);
        let dir = self.dir.join(leaf.name);
        mkdir(&dir)?;
        let redis = RedisServer::start_in(&dir, Some(&ns))?;
        let choice = o.sonic_of(leaf.name);
        let flavour = o.flavour_of(leaf.name);
        // Real SONiC's orchagent and portsyncd write the port markers.
        let seed = match choice {
            SonicChoice::StandIn => SeedOptions::default(),
            SonicChoice::Real(_) => SeedOptions {
                port_init_done: false,
                asic: false,
                ..SeedOptions::default()
            },
        };
        let mut base = crate::flavours::base_config(flavour, leaf.name)?;
        if choice != SonicChoice::StandIn {
            base = crate::sonic_real::first_boot_config(&base)?;
        }
        seed_switch(&redis, &base, Some(&o.port_map()), &seed)
            .with_context(|| format!("seeding {}'s CONFIG_DB", leaf.name))?;
        if o.switch_routes > 0 {
            crate::switch_redis::fill(
                &redis,
                &SwitchSize::with_routes(o.switch_routes),
                &crate::seed::port_names(&o.port_map())?,
            )
            .with_context(|| format!("filling {}'s redis with routing state", leaf.name))?;
        }
        let dbconf = redis.write_database_config()?;
        let (sonic, frr) = match choice {
            SonicChoice::StandIn => {
                let standin = SonicStandIn::start(
                    &redis,
                    StandInOptions {
                        kernel_netns: Some(ns.clone()),
                        ..StandInOptions::random(o.seed.wrapping_add(index), o.max_delay)
                    },
                )
                .with_context(|| format!("the SONiC stand-in of {}", leaf.name))?;
                // zebra loads the flavour's fpm module; the stand-in checks
                // the installed frr.conf against it and can restart the bgp
                // container.
                let frr = FrrLab::start_in_with(
                    &ns,
                    leaf.name,
                    &dir.join("frr"),
                    crate::flavours::zebra_modules(flavour),
                )?;
                standin.set_bgp(crate::flavours::BgpContainer {
                    profile: flavour,
                    frr_conf: frr.config_file(),
                });
                (LeafSonic::StandIn(standin), frr)
            }
            SonicChoice::Real(release) => {
                let build = crate::sonic_real::build_dir(release)?;
                for l in topology::links() {
                    for (end, far) in [(l.a, l.b), (l.b, l.a)] {
                        if end.0 == leaf.name {
                            crate::sonic_real::checksum_offload_off(&o.netns(far.0), far.1)?;
                        }
                    }
                }
                let real = RealSonic::start(
                    release,
                    &build,
                    &crate::sonic_real::SonicLeaf {
                        netns: &ns,
                        dir: &dir,
                        redis: &redis,
                        loopback: leaf.loopback,
                        ports: &self.vs_ports(leaf)?,
                    },
                    o.timeout * 4,
                )
                .with_context(|| format!("SONiC {release} on {}", leaf.name))?;
                self.say(&format!(
                    "   {}: SONiC {release} daemons ready in {:.1?} (logs in {})",
                    leaf.name,
                    real.startup,
                    real.dir.display()
                ));
                // The release's FRR, started as SONiC's bgp container does:
                // its start script's lines in frr.conf before the agent's.
                let boot: String = crate::flavours::start_script_lines(flavour)
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect();
                let frr = FrrLab::start_in_install(
                    &ns,
                    leaf.name,
                    &dir.join("frr"),
                    release.frr(&build),
                    &boot,
                )?;
                (LeafSonic::Real(real), frr)
            }
        };
        let version = dir.join("sonic_version.yml");
        std::fs::write(&version, flavour.sonic_version_yml())?;
        let secret = match o.api {
            ApiVersion::V1 => {
                let p = dir.join("hmac_key");
                write_secret(&p, topology::HMAC_KEY)?;
                p
            }
            ApiVersion::V2 => {
                let p = dir.join("token");
                write_secret(&p, topology::TOKEN)?;
                p
            }
        };
        let s = |p: &Path| p.display().to_string();
        let files = topology::AgentFiles {
            database_config: s(&dbconf),
            sonic_version_file: s(&version),
            frr_config: s(&frr.config_file()),
            vty_socket_dir: s(&frr.vty_socket_dir()),
            frr_reload_args: frr.frr_reload_args(),
            frr_reload_path: s(&frr.install().reload),
            vtysh_path: s(&frr.install().vtysh),
            state_directory: s(&dir),
            secret_file: s(&secret),
            interval: format!("{}ms", o.interval.as_millis()),
            kernel_checks: self.full_kernel,
            timeout: format!("{}ms", o.agent_timeout.as_millis()),
            barrier_timeout: format!("{}ms", o.barrier_timeout.as_millis()),
            // The agent's default (60 s) unless the lab allows its agents
            // longer: the VM's emulated CPU on a busy host runs
            // frr-reload.py for longer than that.
            frr_reload_timeout: format!(
                "{}ms",
                o.agent_timeout.max(Duration::from_secs(60)).as_millis()
            ),
        };
        let config = dir.join("metal-switchd.toml");
        std::fs::write(&config, topology::agent_config(leaf, o.api, &files))?;
        let agent_log = dir.join("agent.log");
        let log = std::fs::File::create(&agent_log)?;
        let mut cmd = in_node(&ns, Some(leaf.name), &o.agent);
        cmd.arg("--config").arg(&config).arg("run");
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("METAL_SWITCHD_") || k.starts_with("METAL_CORE_") {
                cmd.env_remove(k.as_ref());
            }
        }
        // A process group of its own: a Ctrl-C at the terminal reaches the
        // lab, which stops the agents in order.
        let child = std::os::unix::process::CommandExt::process_group(&mut cmd, 0)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} in {ns}", o.agent.display()))?;
        Ok(LeafNode {
            leaf: *leaf,
            netns: ns,
            dir,
            redis,
            sonic,
            frr,
            agent: Some(child),
            agent_log,
            config,
            agent_bin: o.agent.clone(),
            agent_exit: None,
        })
    }

    /// Fail with the agent's log if an agent exited.
    pub fn check_agents(&mut self) -> Result<()> {
        for l in &mut self.leaves {
            let st = l.agent_state();
            if !st.starts_with("running") {
                bail!(
                    "metal-switchd on {} {st}; its log ({}):\n{}",
                    l.leaf.name,
                    l.agent_log.display(),
                    tail(&l.log(), 40)
                );
            }
        }
        Ok(())
    }

    /// The lab API server.
    pub fn api(&self) -> Result<&ApiServer> {
        self.api
            .as_ref()
            .context("the lab API server is not running")
    }

    /// The newest report of `id` after record `after` that satisfies `pred`.
    pub fn report_after(
        &self,
        id: &str,
        after: u64,
        pred: impl Fn(&Report) -> bool,
    ) -> Result<Option<Report>> {
        Ok(self.api()?.records().iter().find_map(|r| {
            if r.seq <= after
                || observe::switch_id(r.call, &r.path, &r.request).as_deref() != Some(id)
            {
                return None;
            }
            observe::report_of(r, None).filter(|rep| pred(rep))
        }))
    }

    /// The last record's sequence number.
    pub fn last_seq(&self) -> Result<u64> {
        Ok(self
            .api()?
            .records()
            .iter()
            .map(|r| r.seq)
            .max()
            .unwrap_or(0))
    }

    /// Wait until the agent of `id` fetched its desired state after record
    /// `after` and reported that reconcile without error: it converged on
    /// what the API held at `after`. Returns the report.
    pub fn wait_converged(&mut self, id: &str, after: u64) -> Result<Report> {
        let timeout = self.opts.timeout;
        let fetch = match self.opts.api {
            ApiVersion::V1 => Call::V1Find,
            ApiVersion::V2 => Call::V2Get,
        };
        // v2: the API's generation of the switch now, which the agent's
        // status file names once it converged to it (v1's switch has none:
        // there the fetch after `after` says it).
        let generation = match self.opts.api {
            ApiVersion::V1 => None,
            ApiVersion::V2 => self.api()?.switch(id).map(|s| s.generation),
        };
        let status_file = self
            .leaves
            .iter()
            .find(|l| l.leaf.name == id)
            .map(|l| l.dir.join("status.json"));
        let what = format!(
            "{id} to fetch and converge (a report without error after a fetch after record \
             #{after}{})",
            generation
                .map(|g| format!("; its status: converged to API generation {g}"))
                .unwrap_or_default()
        );
        let r = wait_for(&what, timeout, Duration::from_millis(50), || {
            self.check_agents()?;
            if let (Some(g), Some(file)) = (generation, &status_file)
                && !converged_to(file, g)
            {
                return Ok(None);
            }
            let recs = self.api()?.records();
            let Some(get) = recs.iter().find(|r| {
                r.seq > after
                    && r.call == fetch
                    && r.status == 200
                    && observe::switch_id(r.call, &r.path, &r.request).as_deref() == Some(id)
            }) else {
                return Ok(None);
            };
            let first = recs.iter().find_map(|r| {
                (r.seq > get.seq
                    && observe::switch_id(r.call, &r.path, &r.request).as_deref() == Some(id))
                .then(|| observe::report_of(r, None))
                .flatten()
            });
            // The first report after that fetch is that reconcile's; if it
            // failed, a later fetch must converge.
            Ok(match first {
                Some(rep) if rep.ok() => Some(rep),
                Some(rep) => {
                    return Ok(self
                        .report_after(id, rep.seq, Report::ok)?
                        .filter(|later| later.seq > rep.seq));
                }
                None => None,
            })
        });
        r.map_err(|e| self.with_logs(e, id))
    }

    /// Wait until `neighbor` in `vrf` on leaf `id` is Established.
    pub fn wait_established(&mut self, id: &str, vrf: &str, neighbor: &str) -> Result<()> {
        let timeout = self.opts.timeout;
        let what = format!("BGP session {neighbor} (vrf {vrf}) of {id} to reach Established");
        let r = wait_for(&what, timeout, Duration::from_millis(100), || {
            self.check_agents()?;
            let leaf = self.leaf(id)?;
            let s = leaf.sessions().unwrap_or_default();
            Ok(observe::established(&s, vrf, neighbor).then_some(()))
        });
        r.map_err(|e| self.with_logs(e, id))
    }

    fn with_logs(&self, e: anyhow::Error, id: &str) -> anyhow::Error {
        match self.leaves.iter().find(|l| l.leaf.name == id) {
            Some(l) => {
                let bgp = observe::vtysh(&l.frr.vty_socket_dir(), &["show bgp vrf all summary"])
                    .unwrap_or_else(|e| format!("{e:#}"));
                let sonic = l
                    .sonic
                    .real()
                    .map(|r| {
                        let exit = self.routers.first().map_or_else(String::new, |x| {
                            observe::vtysh(&x.vty_socket_dir(), &["show bgp summary"])
                                .unwrap_or_else(|e| format!("{e:#}"))
                        });
                        format!(
                            "\n{id}: {}\nexit: show bgp summary:\n{exit}",
                            r.diagnostics(&l.netns, &l.redis)
                        )
                    })
                    .unwrap_or_default();
                e.context(format!(
                    "{id}: agent log ({}), last lines:\n{}\n{id}: show bgp vrf all summary:\n{bgp}{sonic}",
                    l.agent_log.display(),
                    tail(&l.log(), 30)
                ))
            }
            None => e,
        }
    }

    /// The leaf named `id`.
    pub fn leaf(&self, id: &str) -> Result<&LeafNode> {
        self.leaves
            .iter()
            .find(|l| l.leaf.name == id)
            .with_context(|| format!("no leaf {id}"))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let names: Vec<&str> = LEAVES.iter().map(|l| l.name).collect();
        for id in &names {
            let timeout = self.opts.timeout;
            let reg = wait_for(
                &format!("{id} to register"),
                timeout,
                Duration::from_millis(50),
                || {
                    self.check_agents()?;
                    Ok(self.api()?.records().into_iter().find(|r| {
                        matches!(r.call, Call::V1Register | Call::V2Register)
                            && (r.status == 200 || r.status == 201)
                            && observe::switch_id(r.call, &r.path, &r.request).as_deref()
                                == Some(*id)
                    }))
                },
            )
            .map_err(|e| self.with_logs(e, id))?;
            self.wait_converged(id, reg.seq)?;
        }
        self.say(&format!(
            "== both leaves registered and converged ({:.1} s after start)",
            self.started.elapsed().as_secs_f64()
        ));
        for id in &names {
            self.wait_established(id, "default", topology::UPLINK)?;
        }
        let t = self.started.elapsed();
        self.established_after = Some(t);
        self.say(&format!(
            "== leaf01 and leaf02 ↔ exit: BGP sessions Established ({:.1} s after start)",
            t.as_secs_f64()
        ));
        Ok(())
    }

    /// Stop everything and remove it. Idempotent.
    pub fn teardown(&mut self) -> Result<Teardown> {
        let mut t = Teardown::default();
        if self.down {
            return Ok(t);
        }
        self.down = true;
        for l in &mut self.leaves {
            l.stop_agent(Duration::from_secs(30));
            let (text, ok) = match l.agent_exit {
                Some(st) => (st.to_string(), st.success()),
                None => ("not started".into(), false),
            };
            t.agents.push((l.leaf.name.to_owned(), text, ok));
        }
        for l in self.leaves.drain(..) {
            match &l.sonic {
                LeafSonic::StandIn(s) => {
                    let _ = s.settle(Duration::from_secs(5));
                    t.violations.push((l.leaf.name.to_owned(), s.violations()));
                }
                LeafSonic::Real(r) => {
                    t.sonic_logs
                        .push((l.leaf.name.to_owned(), r.release.to_string(), r.findings()))
                }
            }
            drop(l);
        }
        self.routers.clear();
        self.api = None;
        let mut errors = Vec::new();
        for node in topology::nodes() {
            match sweep_netns(&self.opts.netns(node), Duration::from_secs(3)) {
                Ok(n) => t.swept += n,
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(format!("removing {}: {e}", self.dir.display()));
        }
        if !errors.is_empty() {
            bail!("teardown incomplete: {}", errors.join("; "));
        }
        Ok(t)
    }

    /// The status tables of every leaf (no per-step fields).
    pub fn views(&mut self) -> Vec<observe::LeafView> {
        let records = observe::records_in(&self.dir.join("api")).unwrap_or_default();
        self.leaves
            .iter_mut()
            .map(|l| {
                let agent = l.agent_state();
                let report = observe::last_report(&records, l.leaf.name);
                observe::view(
                    &l.paths(),
                    l.sonic.label(),
                    agent,
                    report,
                    l.sonic.violations(),
                )
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("mini-lab teardown: {e:#}");
        }
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether the agent's status file says its last reconcile converged to API
/// generation `generation` or a later one.
fn converged_to(status_file: &Path, generation: u64) -> bool {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|s| {
            let r = &s["last_reconcile"];
            r["result"] == "converged"
                && r["api_generation"]
                    .as_u64()
                    .is_some_and(|g| g >= generation)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wired_port_map_keeps_the_cabled_ports() {
        let mut o = LabOptions::new(PathBuf::from("/nonexistent"));
        assert_eq!(crate::seed::port_entries(&o.port_map()).unwrap().len(), 122);
        o.only_wired_ports = true;
        let ports: Vec<String> = crate::seed::port_entries(&o.port_map())
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            ports,
            ["PORT|Ethernet0", "PORT|Ethernet1", "PORT|Ethernet120"]
        );
        assert_eq!(o.netns("leaf01"), "leaf01");
        o.prefix = "t1-".into();
        assert_eq!(o.netns("leaf01"), "t1-leaf01");
        assert_eq!(o.dir(), Path::new("/run/metal-switchd-lab/t1-lab"));
    }
}
