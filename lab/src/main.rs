//! `metal-switchd-lab`: lab tools around metal-switchd (not shipped).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;

use anyhow::Context;
use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, TokenGrant};
use metal_switchd_lab::sonic_real::SonicChoice;
use metal_switchd_lab::switch_redis::{SwitchData, SwitchSize};
use metal_switchd_lab::{bench, demo, fleet, generate, measure, minilab, sonic_matrix, vm};

#[derive(Debug, Parser)]
#[command(
    name = "metal-switchd-lab",
    version,
    about = "Lab tools for metal-switchd (not part of the agent)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The agent's main job: bring up the netns mini-lab, run the scenario
    /// with a status table per leaf after each step, tear it down
    ///
    /// Two leaves run `metal-switchd run` against one lab API server, with
    /// real FRR peering over BGP unnumbered with an exit router and the
    /// machines. Needs root, redis-server and FRR (./dev demo installs them).
    /// Ctrl-C tears the lab down; leftovers of a crashed run are removed first.
    Demo {
        #[command(flatten)]
        lab: LabArgs,
        /// Run the lab in the full-kernel VM: auto (when this kernel has no
        /// vrf, so that tenant-VRF sessions come up), always, never
        #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
        vm: String,
    },
    /// Keep the netns mini-lab running for exploration: up | status | down
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Run metal-switchd (plan, apply, apply again) against a throwaway
    /// SONiC-like redis seeded with mini-lab leaf01 and print the CONFIG_DB
    /// changes (no root needed)
    ApplyDemo {
        /// Switch state to apply [default: the embedded lab/switches/leaf01.v1.json]
        #[arg(long, value_name = "FILE")]
        switch: Option<PathBuf>,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Measure redis round trips and keys written by `metal-switchd apply --once` on
    /// leaf01 with generated tenants: fresh apply, no-op apply, single-port move
    Measure {
        /// Number of tenant VRFs
        #[arg(long, default_value_t = 60)]
        vrfs: usize,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Apply benchmark: fresh, no-op and one-port-move applies at (48, 16),
    /// (256, 256) and (1024, 1000) against a real redis, next to the raw
    /// pipelined limit for the same commands
    BenchApply {
        /// Runs per size
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only this size, as PORTS,VRFS (repeatable) [default: the three sizes]
        #[arg(long, value_name = "PORTS,VRFS", value_parser = parse_size)]
        size: Vec<(usize, usize)>,
        /// Routes of a switch-sized redis to run on (three ASIC_DB keys per
        /// route; 0: only what the agent writes)
        #[arg(long, default_value_t = 0)]
        switch_routes: usize,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Write docs/performance.md from criterion's results (run `cargo bench
    /// --bench plan` first) and a fresh apply benchmark
    PerfReport {
        /// Runs per size of the apply benchmark
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Criterion's output directory
        #[arg(long, default_value = "target/criterion")]
        criterion: PathBuf,
        /// Where to write the report
        #[arg(long, default_value = "docs/performance.md")]
        out: PathBuf,
        /// The daemon benchmark's report (`cargo bench --bench daemon -- --out FILE`), included as a section
        #[arg(long, value_name = "FILE")]
        daemon: Option<PathBuf>,
        /// The switch-sized benchmark's report (`cargo bench --bench switch_sized -- --out FILE`)
        #[arg(long, value_name = "FILE")]
        switch_sized: Option<PathBuf>,
        /// The fleet view's report (`metal-switchd-lab fleet --out FILE`)
        #[arg(long, value_name = "FILE")]
        fleet: Option<PathBuf>,
        /// Routes of the switch-sized redis the apply benchmark runs on
        /// (three ASIC_DB keys per route; 0: only what the agent writes)
        #[arg(long, default_value_t = 100_000)]
        switch_routes: usize,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// The fleet view: N real agents (one redis and SONiC stand-in each)
    /// against one lab API server; API requests per switch and minute, the
    /// server's CPU (needs root: the agents run in a network namespace)
    Fleet {
        /// Number of agents
        #[arg(long, default_value_t = 32)]
        agents: usize,
        /// Metal API of the lab: v1 (REST, HMAC) or v2 (Connect, token)
        #[arg(long, default_value = "v1", value_parser = ["v1", "v2"])]
        api: String,
        /// The agents' reconfigure_switch_interval, in seconds
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Seconds to count, once every switch reported
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Write the Markdown section here too
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The metal-switchd binary [default: next to this binary]
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },
    /// Print a generated v1 switch state for the mini-lab leaf
    GenSwitch {
        /// Number of tenant VRFs
        #[arg(long, default_value_t = 60)]
        vrfs: usize,
    },
    /// Serve metal-api v1 (REST, HMAC) and metal-apiserver v2 (Connect, token) for lab switches
    ///
    /// Records every call under --record-dir and at GET /lab/records; switch
    /// states can be replaced with PUT /lab/switches/{id}, faults injected
    /// with POST /lab/faults (see the api_server module docs).
    ApiServer(ApiServerArgs),
    /// Build integration test binaries on the host and run them in a VM
    /// with Debian's full kernel (vrf, vlan, bridge VLAN filtering)
    ///
    /// Needs qemu-system-x86, busybox-static and linux-image-amd64; runs
    /// as root. Prints the boot and test times; exits with the tests' status.
    VmTest {
        /// Integration test target to run (repeatable)
        #[arg(long = "test", value_name = "NAME", default_values_t = ["kernel_vm".to_owned()])]
        tests: Vec<String>,
        #[command(flatten)]
        vm: VmArgs,
        /// Arguments for the test binaries (libtest: filters, --nocapture, ...)
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build and run the real-SONiC scenario for every release (or those
    /// given) and write the table into docs/flavours.md
    SonicMatrix {
        /// Releases [default: 202311 202411 202505]
        #[arg(long = "release", value_name = "RELEASE")]
        releases: Vec<String>,
        /// The file with the table's markers
        #[arg(long, default_value = "docs/flavours.md")]
        out: PathBuf,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Start a SONiC release's daemons alone on mini-lab leaf01's seeded
    /// configuration (no agent; full kernel only), wait, and print the
    /// error and warning lines they log: the baseline without the agent
    SonicBaseline {
        #[arg(long, default_value = "202411")]
        release: String,
        /// Seconds to leave them running after start-up
        #[arg(long, default_value_t = 30)]
        linger_secs: u64,
    },
    /// Run a shell command in the full-kernel VM (in the current directory)
    VmRun {
        #[command(flatten)]
        vm: VmArgs,
        /// The command (run by /bin/sh in the guest)
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Bring the lab up in the background (a supervisor process) and print its status
    Up(LabArgs),
    /// Print each leaf's status table (agent, CONFIG_DB, frr.conf, BGP, last heartbeat)
    Status(LabArgs),
    /// Stop the lab and remove everything it created (also after a crash)
    Down(LabArgs),
    /// The supervisor `lab up` starts (internal)
    #[command(hide = true)]
    Supervise(LabArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct LabArgs {
    /// Metal API of the lab: v1 (REST, HMAC) or v2 (Connect, token)
    #[arg(long, default_value = "v2")]
    api: metal_switchd_lab::minilab::topology::ApiVersion,
    /// Prefix of the lab's network namespace names (for a second lab beside
    /// the default one; at most 8 of a-z, 0-9, '-')
    #[arg(long, env = "METAL_SWITCHD_LAB_PREFIX", default_value = "")]
    prefix: String,
    /// The metal-switchd binary [default: next to this binary]
    #[arg(long, value_name = "FILE")]
    agent: Option<PathBuf>,
    /// State directory [default: /run/metal-switchd-lab/<prefix>lab]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The agents' reconcile interval, in milliseconds
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// What runs as SONiC: stand-in, or a release's own daemons (202311,
    /// 202411, 202505; built by ./dev sonic build; full kernel only); per
    /// leaf as LEAF=WHAT (repeatable)
    #[arg(long, value_name = "[LEAF=]WHAT")]
    sonic: Vec<String>,
    /// Fill each leaf's redis with a switch's routing state of this many
    /// routes too (APPL_DB routes, three ASIC_DB keys per route, port
    /// counters; 0: only the configuration)
    #[arg(long, default_value_t = 0)]
    switch_routes: usize,
    /// The SONiC flavour the stand-in leaves stand in for: community-202311,
    /// community-202411, community-202505, dell-4.4, dell-4.5,
    /// edgecore-202211 (base configuration, version file, routing config
    /// mode, zebra's fpm module; docs/flavours.md)
    #[arg(long, default_value = "dell-4.5", value_parser = parse_flavour)]
    flavour: metal_switchd_lab::flavours::Profile,
}

fn parse_flavour(s: &str) -> Result<metal_switchd_lab::flavours::Profile, String> {
    metal_switchd_lab::flavours::Profile::from_name(s)
}

impl LabArgs {
    fn options(&self) -> anyhow::Result<minilab::LabOptions> {
        let agent = demo::agent_binary(self.agent.as_deref())?;
        let mut o = minilab::LabOptions::new(agent);
        o.api = self.api;
        o.prefix = self.prefix.clone();
        o.state_dir = self.state_dir.clone();
        o.interval = std::time::Duration::from_millis(self.interval_ms.max(100));
        o.switch_routes = self.switch_routes;
        o.flavour = self.flavour;
        for s in &self.sonic {
            match s.split_once('=') {
                Some((leaf, what)) => {
                    if !minilab::topology::LEAVES.iter().any(|l| l.name == leaf) {
                        anyhow::bail!("--sonic {s}: no leaf {leaf:?} (leaf01, leaf02)");
                    }
                    o.sonic_leaves
                        .insert(leaf.to_owned(), SonicChoice::parse(what)?);
                }
                None => o.sonic = SonicChoice::parse(s)?,
            }
        }
        if o.any_real_sonic() {
            o.set_real_sonic_bounds();
        }
        Ok(o)
    }
}

#[derive(Debug, clap::Args)]
struct VmArgs {
    /// Kernel release in /boot [default: the newest with modules]
    #[arg(long)]
    kernel: Option<String>,
    /// Guest memory in MiB
    #[arg(long, default_value_t = 1536)]
    memory: u32,
    /// Guest CPUs
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Give up after this many seconds (boot, command and power-off)
    #[arg(long, default_value_t = 170)]
    timeout_secs: u64,
    /// Directory for the per-run initramfs and script (not under /tmp)
    #[arg(long, default_value = "target/vm")]
    work_dir: PathBuf,
}

impl VmArgs {
    fn options(&self) -> vm::VmOptions {
        vm::VmOptions {
            kernel: self.kernel.clone(),
            memory_mib: self.memory,
            cpus: self.cpus,
            timeout: std::time::Duration::from_secs(self.timeout_secs),
            work_dir: self.work_dir.clone(),
            echo: true,
            plain: false,
        }
    }
}

/// `demo` in the full-kernel VM: the same command with `--vm never`, its
/// output as it comes.
fn demo_in_vm() -> anyhow::Result<()> {
    println!(
        "== this kernel has no vrf devices: the lab runs in the full-kernel VM (Debian's kernel \
         under qemu, this machine's binaries), where machine01's tenant-VRF sessions come up \
         (--vm never: stay on this kernel)"
    );
    let exe = std::env::current_exe()?;
    let mut args: Vec<String> = Vec::new();
    let mut skip = false;
    for a in std::env::args().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if a == "--vm" {
            skip = true;
            continue;
        }
        if a.starts_with("--vm=") {
            continue;
        }
        args.push(a);
    }
    args.extend(["--vm".into(), "never".into()]);
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let o = vm::VmOptions {
        memory_mib: 3072,
        timeout: std::time::Duration::from_secs(3600),
        plain: true,
        ..vm::VmOptions::default()
    };
    let run = vm::run(
        &o,
        &format!("exec '{}' {}", exe.display(), quoted.join(" ")),
    )?;
    println!(
        "== VM: booted in {:.1?}, demo took {:.1?}",
        run.boot, run.command
    );
    if run.exit_code != 0 {
        anyhow::bail!("the demo in the VM failed (exit status {})", run.exit_code);
    }
    Ok(())
}

fn vm_report(run: &vm::VmRun) {
    eprintln!(
        "VM (kernel {}): booted in {:.1?}, command took {:.1?}, {:.1?} in all; exit status {}",
        run.kernel, run.boot, run.command, run.total, run.exit_code
    );
}

#[derive(Debug, clap::Args)]
struct ApiServerArgs {
    /// Directory of switch states (*.json, v1 or v2)
    #[arg(long, default_value = "lab/switches")]
    switches: PathBuf,
    /// Address to listen on (port 0 = pick a free one)
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// v1 Metal-Edit HMAC key
    #[arg(long, default_value = "metal-edit")]
    hmac_key: String,
    /// Write a new editor token for v2 into this file (mode 0600)
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Additional partitions that exist
    #[arg(long)]
    partition: Vec<String>,
    /// Where to write the recorded calls (default: a temp dir, printed)
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM) ...
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ... and this key (PEM)
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn random_token() -> anyhow::Result<String> {
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading /dev/urandom")?;
    Ok(format!(
        "lab-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

fn api_server(args: ApiServerArgs) -> anyhow::Result<()> {
    let mut tokens = BTreeMap::new();
    if let Some(path) = &args.token_file {
        let t = random_token()?;
        std::fs::write(path, format!("{t}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        tokens.insert(t, TokenGrant::Editor);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((std::fs::read_to_string(c)?, std::fs::read_to_string(k)?)),
        _ => None,
    };
    let server = ApiServer::start(ApiServerOptions {
        switches_dir: Some(args.switches.clone()),
        partitions: args.partition.clone(),
        hmac_edit_key: Some(args.hmac_key.clone()),
        tokens,
        tls,
        record_dir: args.record_dir.clone(),
        listen: args.listen,
        ..ApiServerOptions::default()
    })?;
    println!("lab API server listening on {}", server.base_url());
    println!("  v1: metal_api_protocol/ip/port = {}", server.base_url());
    println!("  v2: metal_apiserver_url = {}", server.base_url());
    if !server.base_url().starts_with("https:") {
        println!("      (plain HTTP: the agent needs api_allow_plaintext = true)");
    }
    if let Some(p) = &args.token_file {
        println!("  v2 token written to {}", p.display());
    }
    println!("  recorded calls: {}", server.record_dir().display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    // Dropping the server stops it and removes its temp record dir.
    drop(server);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { lab, vm } => {
            let mut opts = lab.options()?;
            let in_vm = match vm.as_str() {
                "always" => true,
                "never" => false,
                _ => !metal_switchd_lab::frr_lab::kernel_has_vrf(),
            };
            if in_vm {
                return demo_in_vm();
            }
            if std::env::var_os("METAL_SWITCHD_VM").is_some() {
                // Under the VM's emulated CPU (as tests/minilab_vm.rs): the
                // cabled ports only, bounds that only catch hangs.
                use std::time::Duration;
                opts.only_wired_ports = true;
                opts.interval = opts.interval.max(Duration::from_secs(2));
                opts.timeout = opts.timeout.max(Duration::from_secs(300));
                opts.agent_timeout = opts.agent_timeout.max(Duration::from_secs(120));
                opts.barrier_timeout = opts.barrier_timeout.max(Duration::from_secs(90));
            }
            minilab::control::demo(opts)
        }
        Command::SonicBaseline {
            release,
            linger_secs,
        } => {
            let release = metal_switchd_lab::sonic_real::Release::parse(&release)?;
            let ports = metal_switchd_lab::sonic_real::mini_lab_ports(&[
                "Ethernet0",
                "Ethernet1",
                "Ethernet120",
            ])?;
            let (startup, lines) = metal_switchd_lab::sonic_real::baseline(
                release,
                &ports,
                std::time::Duration::from_secs(linger_secs),
            )?;
            println!(
                "SONiC {release}: every daemon running after {startup:.1?}; {} error/warning line(s) without the agent:",
                lines.len()
            );
            for l in lines {
                println!("  {l}");
            }
            Ok(())
        }
        Command::SonicMatrix { releases, out, vm } => {
            let releases = if releases.is_empty() {
                metal_switchd_lab::sonic_real::Release::ALL.to_vec()
            } else {
                releases
                    .iter()
                    .map(|r| metal_switchd_lab::sonic_real::Release::parse(r))
                    .collect::<anyhow::Result<_>>()?
            };
            let mut o = vm.options();
            o.memory_mib = o.memory_mib.max(3072);
            o.timeout = o.timeout.max(std::time::Duration::from_secs(2400));
            sonic_matrix::run(&releases, &o, &out)
        }
        Command::Lab { command } => match command {
            LabCommand::Up(a) => minilab::control::up(a.options()?),
            LabCommand::Status(a) => minilab::control::status(&a.options()?),
            LabCommand::Down(a) => minilab::control::down(&a.options()?),
            LabCommand::Supervise(a) => minilab::control::supervise(a.options()?),
        },
        Command::ApplyDemo { switch, agent } => demo::run(&demo::DemoOptions { switch, agent }),
        Command::Measure { vrfs, agent } => {
            let rows = measure::run(agent.as_deref(), vrfs)?;
            print!("{}", measure::table(&rows));
            Ok(())
        }
        Command::Fleet {
            agents,
            api,
            interval,
            seconds,
            out,
            agent,
        } => {
            let report = fleet::run(&fleet::FleetOptions {
                agents,
                api,
                interval: std::time::Duration::from_secs(interval),
                window: std::time::Duration::from_secs(seconds),
                agent: demo::agent_binary(agent.as_deref())?,
            })?;
            let text = fleet::markdown(&report);
            print!("{text}");
            if let Some(out) = out {
                std::fs::write(&out, &text)
                    .with_context(|| format!("writing {}", out.display()))?;
            }
            Ok(())
        }
        Command::BenchApply {
            runs,
            size,
            switch_routes,
            agent,
        } => {
            let agent = demo::agent_binary(agent.as_deref())?;
            let sizes = if size.is_empty() {
                bench::SIZES.to_vec()
            } else {
                size
            };
            let switch = (switch_routes > 0)
                .then(|| SwitchData::new(SwitchSize::with_routes(switch_routes)));
            print!(
                "{}",
                bench::apply_table(&bench::run(&agent, &sizes, runs, switch.as_ref())?)
            );
            Ok(())
        }
        Command::PerfReport {
            runs,
            criterion,
            out,
            agent,
            daemon,
            switch_sized,
            fleet,
            switch_routes,
        } => {
            let agent = demo::agent_binary(agent.as_deref())?;
            let inputs = bench::ReportInputs {
                daemon,
                switch_sized,
                fleet,
                switch: (switch_routes > 0).then(|| SwitchSize::with_routes(switch_routes)),
            };
            bench::report(&agent, &criterion, runs, &inputs, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::GenSwitch { vrfs } => {
            let doc = generate::switch_v1(&generate::SwitchShape::mini_lab(vrfs));
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::ApiServer(args) => api_server(args),
        Command::VmTest { tests, vm, args } => {
            let started = std::time::Instant::now();
            let bins = vm::build_tests(&tests)?;
            eprintln!(
                "built {} test binaries in {:.1?}",
                bins.len(),
                started.elapsed()
            );
            let mut args = args;
            if !args.iter().any(|a| a.starts_with("--test-threads")) {
                args.push("--test-threads=1".into());
            }
            let run = vm::run(&vm.options(), &vm::test_script(&bins, &args))?;
            vm_report(&run);
            std::process::exit(run.exit_code.clamp(0, 255));
        }
        Command::VmRun { vm, command } => {
            let run = vm::run(&vm.options(), &command.join(" "))?;
            vm_report(&run);
            std::process::exit(run.exit_code.clamp(0, 255));
        }
    }
}

/// Parse `PORTS,VRFS`.
fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let (p, v) = s
        .split_once(',')
        .ok_or_else(|| format!("expected PORTS,VRFS, got {s:?}"))?;
    let n = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|e| format!("{x:?} in {s:?}: {e}"))
    };
    Ok((n(p)?, n(v)?))
}
