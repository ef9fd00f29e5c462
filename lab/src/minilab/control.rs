//! The lab's commands: `demo` (up, scenario, tables, down, in the
//! foreground), and `lab up | status | down` (a detached supervisor process
//! keeps the lab running for exploration).
//!
//! Ctrl-C (SIGINT) and SIGTERM set a flag that every wait checks, so the
//! lab is torn down in order; the pieces run in process groups of their own,
//! so a Ctrl-C at the terminal reaches only the lab process. After a crash
//! (SIGKILL, a panic that aborts), the next `up`, `demo` or `down` removes
//! the leftovers ([`super::clean_leftovers`]).

use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::observe::{self, LeafPaths};
use super::process::alive;
use super::scenario::{self, StepResult};
use super::{Lab, LabOptions, Teardown, clean_leftovers, owner_alive, read_lab_json};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turn SIGINT and SIGTERM into [`interrupted`].
pub fn catch_signals() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether SIGINT or SIGTERM arrived (after [`catch_signals`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Print what a teardown found; error if an agent did not exit cleanly or
/// the stand-in saw an ordering violation.
pub fn report_teardown(t: &Teardown) -> Result<()> {
    let mut bad = Vec::new();
    for (name, status, ok) in &t.agents {
        println!("   {name}: metal-switchd {status}");
        if !ok {
            bad.push(format!("metal-switchd on {name} ended with {status}"));
        }
    }
    for (name, v) in &t.violations {
        if v.is_empty() {
            println!("   {name}: SONiC stand-in saw no ordering violation");
        } else {
            bad.push(format!(
                "{name}: {} ordering violation(s):\n{}",
                v.len(),
                v.join("\n")
            ));
        }
    }
    if !bad.is_empty() {
        bail!("{}", bad.join("\n"));
    }
    Ok(())
}

/// `demo`: up, the scenario with its tables, down; everything removed.
pub fn demo(mut opts: LabOptions) -> Result<()> {
    catch_signals();
    opts.progress = true;
    let api = opts.api;
    println!(
        "== the netns mini-lab: two leaves running metal-switchd against the lab API ({}), FRR BGP to an exit router",
        api.as_str()
    );
    let mut lab = Lab::up(opts)?;
    let up = lab.established_after;
    let started = Instant::now();
    let result = scenario::run(&mut lab, |n: usize, s: &StepResult| {
        print!("{}", scenario::render(n, s));
        let _ = std::io::stdout().flush();
    });
    let scenario_time = started.elapsed();
    if let Ok(r) = &result {
        if r.tenant_sessions {
            for (leaf, text) in &r.tenant_summaries {
                println!("\n== {leaf}: show bgp vrf Vrf30 summary (after the allocation)\n{text}");
            }
        } else {
            println!(
                "\nThis kernel has no VRF devices: tenant VRF BGP instances stay inactive here \
                 (./dev vm-test minilab_vm runs the lab in a full-kernel VM, where they come up)."
            );
        }
    }
    println!("\n== tearing down");
    let t = lab.teardown();
    let result = result?;
    let t = t?;
    report_teardown(&t)?;
    println!(
        "\n== done: up to every leaf↔exit session Established in {:.1} s; {} steps converged in {:.1} s",
        up.map(|d| d.as_secs_f64()).unwrap_or(0.0),
        result.steps.len(),
        scenario_time.as_secs_f64()
    );
    Ok(())
}

/// The supervisor's log, beside the state directory.
fn supervisor_log(opts: &LabOptions) -> PathBuf {
    let dir = opts.dir();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lab".into());
    dir.with_file_name(format!("{name}.log"))
}

/// Arguments that make another lab command act on the same lab.
pub fn lab_args(opts: &LabOptions) -> Vec<String> {
    let mut v = vec![
        "--prefix".to_owned(),
        opts.prefix.clone(),
        "--api".into(),
        opts.api.as_str().into(),
        "--agent".into(),
        opts.agent.display().to_string(),
        "--interval-ms".into(),
        opts.interval.as_millis().to_string(),
        "--switch-routes".into(),
        opts.switch_routes.to_string(),
        "--flavour".into(),
        opts.flavour.name().into(),
    ];
    if let Some(d) = &opts.state_dir {
        v.push("--state-dir".into());
        v.push(d.display().to_string());
    }
    v
}

/// `lab up`: start a detached supervisor and wait until the lab is ready.
pub fn up(opts: LabOptions) -> Result<()> {
    if let Some(l) = read_lab_json(&opts.dir())?
        && let Some(pid) = owner_alive(&l)
    {
        bail!(
            "a lab is already running here (supervisor {pid}, {}); `lab status` shows it, `lab down` stops it",
            opts.dir().display()
        );
    }
    for r in clean_leftovers(&opts)? {
        println!("   removed leftovers: {r}");
    }
    let log_path = supervisor_log(&opts);
    if let Some(p) = log_path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let me = std::env::current_exe().context("locating metal-switchd-lab")?;
    let mut cmd = Command::new(me);
    cmd.arg("lab").arg("supervise").args(lab_args(&opts));
    // SAFETY: setsid in the child before exec: a new session, detached from
    // the terminal (no SIGINT/SIGHUP from it).
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the lab supervisor")?;
    println!(
        "== starting the mini-lab (supervisor {}, log {})",
        child.id(),
        log_path.display()
    );
    catch_signals();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait()? {
            bail!(
                "the lab supervisor exited ({st}) before the lab was ready; its log:\n{}",
                super::tail(&std::fs::read_to_string(&log_path).unwrap_or_default(), 60)
            );
        }
        if let Some(l) = read_lab_json(&opts.dir())?
            && l["owner_pid"].as_i64() == Some(i64::from(child.id()))
            && l["state"] == "ready"
        {
            println!(
                "== ready: every leaf↔exit session Established {:.1} s after start",
                l["established_after_seconds"].as_f64().unwrap_or(0.0)
            );
            break;
        }
        if interrupted() || start.elapsed() > opts.timeout + Duration::from_secs(60) {
            // SAFETY: kill(2) of our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
            bail!("interrupted or timed out while the lab came up; it was torn down");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    status(&opts)?;
    let p = if opts.prefix.is_empty() {
        String::new()
    } else {
        format!(" --prefix {}", opts.prefix)
    };
    println!(
        "\nExplore: ip netns exec {pre}leaf01 vtysh --vty_socket {dir}/leaf01/frr/run -c 'show bgp summary'\n\
         \x20        ip netns exec {pre}leaf01 curl -s localhost:2112/metrics\n\
         \x20        ip netns exec {pre}mgmt curl -s http://172.17.0.1:8080/lab/records\n\
         Status:  ./dev lab status{p}      Stop: ./dev lab down{p}",
        pre = opts.prefix,
        dir = opts.dir().display()
    );
    Ok(())
}

/// `lab supervise`: bring the lab up and keep it until SIGTERM/SIGINT.
pub fn supervise(mut opts: LabOptions) -> Result<()> {
    catch_signals();
    opts.progress = true;
    let mut lab = Lab::up(opts)?;
    println!("== ready; waiting for SIGTERM (lab down)");
    let mut noted: Vec<String> = Vec::new();
    while !interrupted() {
        for l in &mut lab.leaves {
            let st = l.agent_state();
            let violations = l.standin.violations();
            let path = l.dir.join("standin.json");
            let text = serde_json::json!({ "violations": violations }).to_string();
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                let _ = std::fs::write(&path, &text);
            }
            if !st.starts_with("running") && !noted.contains(&l.netns) {
                println!("!! metal-switchd on {} {st}", l.leaf.name);
                noted.push(l.netns.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("== stopping");
    let t = lab.teardown()?;
    report_teardown(&t)?;
    println!("== down");
    Ok(())
}

/// `lab status`: what the lab's pieces say now.
pub fn status(opts: &LabOptions) -> Result<()> {
    let dir = opts.dir();
    let Some(l) = read_lab_json(&dir)? else {
        bail!(
            "no lab in {} (start one with `./dev lab up`)",
            dir.display()
        );
    };
    let owner = owner_alive(&l);
    println!(
        "mini-lab {} — API {} at {} — supervisor {} — state {}",
        dir.display(),
        l["api"].as_str().unwrap_or("?"),
        l["api_url"].as_str().unwrap_or("?"),
        match owner {
            Some(p) => format!("running (pid {p})"),
            None => "NOT RUNNING (leftovers: `lab down` removes them)".into(),
        },
        l["state"].as_str().unwrap_or("?")
    );
    let records = observe::records_in(&dir.join("api")).unwrap_or_default();
    for leaf in l["leaves"].as_array().into_iter().flatten() {
        let s = |k: &str| PathBuf::from(leaf[k].as_str().unwrap_or_default());
        let name = leaf["name"].as_str().unwrap_or("?").to_owned();
        let paths = LeafPaths {
            name: name.clone(),
            redis_socket: s("redis_socket"),
            vty_dir: s("vty_dir"),
            frr_config: s("frr_config"),
            state_dir: s("dir"),
            agent: PathBuf::from(l["agent"].as_str().unwrap_or_default()),
            agent_config: s("agent_config"),
        };
        let pid = leaf["agent_pid"].as_i64().unwrap_or(0) as i32;
        let agent = if alive(pid) {
            format!("running, pid {pid}")
        } else {
            "NOT RUNNING".into()
        };
        let violations = std::fs::read_to_string(paths.state_dir.join("standin.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|v| {
                v["violations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let report = observe::last_report(&records, &name);
        println!();
        print!(
            "{}",
            observe::table(&observe::view(&paths, agent, report, violations))
        );
    }
    for r in l["routers"].as_array().into_iter().flatten() {
        let vty = Path::new(r["vty_dir"].as_str().unwrap_or_default());
        let name = r["name"].as_str().unwrap_or("?");
        let sessions = observe::bgp_sessions(vty).unwrap_or_default();
        let list: Vec<String> = sessions
            .iter()
            .map(|s| format!("{} {}", s.neighbor, s.state))
            .collect();
        println!(
            "\n{name:<10} BGP: {}",
            if list.is_empty() {
                "-".into()
            } else {
                list.join(", ")
            }
        );
    }
    Ok(())
}

/// `lab down`: stop the supervisor (which tears the lab down), then remove
/// whatever is left.
pub fn down(opts: &LabOptions) -> Result<()> {
    let dir = opts.dir();
    if let Some(l) = read_lab_json(&dir)?
        && let Some(pid) = owner_alive(&l)
    {
        println!("== stopping the lab supervisor {pid}");
        // SAFETY: kill(2) of the recorded, verified supervisor pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        while alive(pid) {
            if start.elapsed() > Duration::from_secs(90) {
                bail!("the lab supervisor {pid} did not stop within 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let removed = clean_leftovers(opts)?;
    for r in &removed {
        println!("   removed leftovers: {r}");
    }
    let log = supervisor_log(opts);
    if let Ok(text) = std::fs::read_to_string(&log) {
        if text.contains("Error") {
            println!(
                "== the supervisor reported an error; its log:\n{}",
                super::tail(&text, 40)
            );
        }
        let _ = std::fs::remove_file(&log);
    }
    println!("== down");
    Ok(())
}
