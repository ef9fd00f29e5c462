//! `metal-switchd migrate`: replace metal-core with the agent on a switch,
//! and `--rollback` back (feature `agent`).
//!
//! The migration checks first and changes nothing when a check fails (exit
//! 2): the configuration as the systemd unit will see it (the configuration
//! file plus only the unit's environment files, `/etc/default/metal-core`
//! and `/etc/default/metal-switchd`), those files themselves (syntax; not
//! readable by everyone when they hold the HMAC key), and the files
//! metal-roles wrote that `run` will read — the HMAC key or token and the
//! gRPC certificates — with the rules `run` reads them by. Then it stops and
//! disables `metal-core.service`, enables and starts `metal-switchd.service`
//! (over systemd's D-Bus API, `systemd_bus_address`) and waits for the
//! agent's first converged reconcile (its `status.json`). When the agent
//! does not start or converge in time, metal-core is started again: the
//! switch is never left without an agent.
//!
//! `--rollback` stops and disables the agent and enables and starts
//! metal-core (its container image is still on the switch).
//!
//! [`parse_environment_file`] is pure: systemd's `EnvironmentFile=` syntax.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{ApiVersion, Config};
use crate::systemd::{Systemd, SystemdError, UnitState};

/// The predecessor's unit (metal-roles, `systemd-docker-service`).
pub const METAL_CORE_UNIT: &str = "metal-core.service";
/// This agent's unit.
pub const AGENT_UNIT: &str = "metal-switchd.service";
/// The environment files of the agent's unit, in its order.
pub const ENVIRONMENT_FILES: [&str; 2] = ["/etc/default/metal-core", "/etc/default/metal-switchd"];

/// Exit code: done.
const EXIT_OK: u8 = 0;
/// Exit code: a step failed (systemd, the agent did not converge); what ran
/// before it was undone where possible.
const EXIT_FAILED: u8 = 1;
/// Exit code: a check failed; nothing was changed.
const EXIT_INVALID: u8 = 2;

/// What `migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The configuration file and whether it must exist.
    pub config: (PathBuf, bool),
    /// The unit's environment files, in order (missing ones are skipped, as
    /// the unit's `EnvironmentFile=-…` does).
    pub environment_files: Vec<PathBuf>,
    /// Back from the agent to metal-core.
    pub rollback: bool,
    /// How long to wait for the agent's first converged reconcile (and for
    /// each systemd job).
    pub timeout: Duration,
}

/// One problem of an environment file (line number and what is wrong).
pub type EnvProblem = String;

/// Parse a file in systemd's `EnvironmentFile=` syntax: `KEY=VALUE` lines;
/// empty lines and lines starting with `#` or `;` are comments; a value in
/// double or single quotes loses them. Lines systemd would ignore (no `=`,
/// an invalid name) are returned as problems, never silently dropped.
pub fn parse_environment_file(text: &str) -> Result<Vec<(String, String)>, Vec<EnvProblem>> {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            problems.push(format!("line {}: not KEY=VALUE", i + 1));
            continue;
        };
        let key = key.trim();
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(format!(
                "line {}: {} is not a variable name",
                i + 1,
                crate::names::quoted(&key.chars().take(64).collect::<String>())
            ));
            continue;
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        vars.push((key.to_owned(), unquoted.to_owned()));
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

/// Prints each step as it happens (stdout, flushed).
struct Steps {
    total: usize,
    done: usize,
}

impl Steps {
    fn say(&mut self, text: &str) {
        self.done += 1;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{}/{}] {text}", self.done, self.total);
        let _ = out.flush();
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Run the migration (or its rollback); returns the exit code. Errors are
/// printed to stderr.
pub async fn migrate(opts: &MigrateOptions) -> u8 {
    // Checks: nothing changes when one fails.
    let cfg = match check(opts) {
        Ok((cfg, report)) => {
            if !opts.rollback {
                say(&report);
            }
            cfg
        }
        Err(problems) => {
            eprintln!(
                "metal-switchd migrate: nothing was changed; fix these first:\n  - {}",
                problems.join("\n  - ")
            );
            return EXIT_INVALID;
        }
    };
    let systemd = match Systemd::connect(cfg.systemd_bus_address.as_deref(), opts.timeout).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("metal-switchd migrate: nothing was changed: {e}");
            return EXIT_FAILED;
        }
    };
    let result = if opts.rollback {
        rollback(&systemd, opts).await
    } else {
        forward(&systemd, &cfg, opts).await
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("metal-switchd migrate: {e}");
            EXIT_FAILED
        }
    }
}

/// The configuration as the unit sees it and the files `run` reads; a
/// report of what was checked, or every problem.
fn check(opts: &MigrateOptions) -> Result<(Config, String), Vec<String>> {
    let mut problems = Vec::new();
    let mut env = Vec::new();
    let mut read_files = Vec::new();
    for path in &opts.environment_files {
        match read_environment_file(path) {
            Ok(Some(vars)) => {
                read_files.push(path.display().to_string());
                env.extend(vars);
            }
            Ok(None) => {}
            Err(mut p) => problems.append(&mut p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let cfg = match Config::load_with_env(&opts.config.0, opts.config.1, env) {
        Ok(c) => c,
        Err(e) => return Err(vec![e.to_string()]),
    };
    // What `check-config` checks: every file `run` reads, as `run` reads it.
    let found = crate::config_check::check(&cfg);
    problems.extend(found.errors);
    let (version, why) = cfg.api_version_choice();
    // `run` would start and wait for a key that never comes: refused here.
    if version == ApiVersion::V1 && !cfg.has_hmac_key() {
        problems.push(
            "api_version v1 needs the Metal-Edit HMAC key: METAL_CORE_HMAC_KEY in \
             /etc/default/metal-core, or hmac_key_file"
                .into(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let hostname = cfg.hostname().unwrap_or("-").to_owned();
    let files = if read_files.is_empty() {
        "no environment file".to_owned()
    } else {
        read_files.join(", ")
    };
    let mut report = format!(
        "checked: the configuration ({}, {files}) is valid for switch {hostname}, metal API \
         {version} ({why}); readable as `run` reads them: {}",
        opts.config.0.display(),
        if found.checked.is_empty() {
            "-".to_owned()
        } else {
            found.checked.join(", ")
        }
    );
    for (label, lines) in [
        ("warning", found.warnings.as_slice()),
        ("note", found.notes.as_slice()),
        ("not used", cfg.notices()),
    ] {
        for l in lines {
            report.push_str(&format!("\n{label}: {l}"));
        }
    }
    Ok((cfg, report))
}

/// One environment file: `None` when it does not exist; its problems
/// (syntax, a world-readable file with the HMAC key) named with its path.
fn read_environment_file(path: &Path) -> Result<Option<Vec<(String, String)>>, Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let text = match crate::files::read_text(
        crate::files::FileKind::Configuration,
        path,
        crate::files::CONFIGURATION_MAX_BYTES,
    ) {
        Ok(t) => t,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(vec![e.to_string()]),
    };
    let vars = parse_environment_file(&text).map_err(|p| {
        p.into_iter()
            .map(|p| format!("{shown}: {p}"))
            .collect::<Vec<_>>()
    })?;
    let secret = vars
        .iter()
        .any(|(k, _)| k.ends_with("_HMAC_KEY") && k.starts_with("METAL_"));
    if secret {
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .map_err(|e| vec![format!("{shown}: {e}")])?;
        if mode & 0o004 != 0 {
            return Err(vec![format!(
                "{shown} holds the HMAC key and everyone can read it (mode {:04o}): chmod 600 {shown}",
                mode & 0o7777
            )]);
        }
    }
    Ok(Some(vars))
}

async fn state(systemd: &Systemd, unit: &str) -> Result<UnitState, SystemdError> {
    systemd.unit_state(unit).await
}

/// Stop and disable `from`, enable and start `to`; returns `to`'s start result.
async fn switch_over(
    systemd: &Systemd,
    from: &str,
    from_exists: bool,
    to: &str,
    timeout: Duration,
) -> Result<(), String> {
    if from_exists {
        let r = systemd
            .stop_unit(from, timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !r.is_done() {
            return Err(format!("stopping {from} ended {r}"));
        }
        systemd
            .disable_unit(from)
            .await
            .map_err(|e| e.to_string())?;
    }
    systemd.enable_unit(to).await.map_err(|e| e.to_string())?;
    let r = systemd
        .start_unit(to, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if !r.is_done() {
        return Err(format!(
            "starting {to} ended {r} (`systemctl status {to}`, `journalctl -u {to}`)"
        ));
    }
    Ok(())
}

async fn forward(systemd: &Systemd, cfg: &Config, opts: &MigrateOptions) -> Result<(), String> {
    let mut steps = Steps { total: 4, done: 0 };
    let agent = state(systemd, AGENT_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    if !agent.exists() {
        return Err(format!(
            "nothing was changed: systemd does not know {AGENT_UNIT}; install the package first"
        ));
    }
    let core = state(systemd, METAL_CORE_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    steps.say(&format!("{METAL_CORE_UNIT}: {core}; {AGENT_UNIT}: {agent}"));
    let started = SystemTime::now();
    if let Err(e) = switch_over(
        systemd,
        METAL_CORE_UNIT,
        core.exists(),
        AGENT_UNIT,
        opts.timeout,
    )
    .await
    {
        return Err(undo(systemd, core.exists(), &e, opts.timeout).await);
    }
    steps.say(&format!(
        "{}enabled and started {AGENT_UNIT}",
        if core.exists() {
            format!("stopped and disabled {METAL_CORE_UNIT}; ")
        } else {
            String::new()
        }
    ));
    steps.say("waiting for the agent's first converged reconcile");
    match wait_converged(&cfg.state_directory, started, opts.timeout).await {
        Ok(summary) => {
            steps.say(&summary);
            say(
                "done: metal-switchd runs in place of metal-core; back with `metal-switchd \
                 migrate --rollback`",
            );
            Ok(())
        }
        Err(e) => Err(undo(systemd, core.exists(), &e, opts.timeout).await),
    }
}

/// After a failed switch-over: the agent stopped and disabled, metal-core
/// (if the switch had it) enabled and started again. The message says
/// what failed and what runs now.
async fn undo(systemd: &Systemd, had_core: bool, failure: &str, timeout: Duration) -> String {
    let stopped = systemd.stop_unit(AGENT_UNIT, timeout).await;
    let _ = systemd.disable_unit(AGENT_UNIT).await;
    if !had_core {
        return format!(
            "migration failed: {failure}; {AGENT_UNIT} stopped{} (the switch had no \
             {METAL_CORE_UNIT})",
            if stopped.is_ok() {
                ""
            } else {
                " (the stop failed too)"
            }
        );
    }
    match switch_back_to_core(systemd, timeout).await {
        Ok(()) => format!("migration failed: {failure}; {METAL_CORE_UNIT} runs again"),
        Err(e) => {
            format!("migration failed: {failure}; starting {METAL_CORE_UNIT} again failed too: {e}")
        }
    }
}

async fn switch_back_to_core(systemd: &Systemd, timeout: Duration) -> Result<(), String> {
    systemd
        .enable_unit(METAL_CORE_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    let r = systemd
        .start_unit(METAL_CORE_UNIT, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if r.is_done() {
        Ok(())
    } else {
        Err(format!("starting {METAL_CORE_UNIT} ended {r}"))
    }
}

async fn rollback(systemd: &Systemd, opts: &MigrateOptions) -> Result<(), String> {
    let mut steps = Steps { total: 3, done: 0 };
    let core = state(systemd, METAL_CORE_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    let agent = state(systemd, AGENT_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    if !core.exists() {
        return Err(format!(
            "nothing was changed: systemd does not know {METAL_CORE_UNIT}; re-deploy it \
             (metal-roles) before rolling back"
        ));
    }
    steps.say(&format!("{AGENT_UNIT}: {agent}; {METAL_CORE_UNIT}: {core}"));
    switch_over(
        systemd,
        AGENT_UNIT,
        agent.exists(),
        METAL_CORE_UNIT,
        opts.timeout,
    )
    .await?;
    steps.say(&format!(
        "stopped and disabled {AGENT_UNIT}; enabled and started {METAL_CORE_UNIT}"
    ));
    let now = state(systemd, METAL_CORE_UNIT)
        .await
        .map_err(|e| e.to_string())?;
    if !now.is_active() {
        return Err(format!(
            "{METAL_CORE_UNIT} is {now} after its start (`journalctl -u {METAL_CORE_UNIT}`)"
        ));
    }
    steps.say(&format!("{METAL_CORE_UNIT}: {now}"));
    say("done: metal-core runs again; the agent's configuration is kept");
    Ok(())
}

/// Wait until the agent started after `since` wrote a status with a
/// successful reconcile; a summary line, or why not within `timeout`.
async fn wait_converged(
    dir: &Path,
    since: SystemTime,
    timeout: Duration,
) -> Result<String, String> {
    use crate::report::liveness::process_is_agent;
    use crate::report::status::Status;
    let start = Instant::now();
    // Timestamps are whole microseconds or coarser: allow one second.
    let since = since.checked_sub(Duration::from_secs(1)).unwrap_or(since);
    let mut last: Option<Status> = None;
    loop {
        if let Ok(st) = Status::read(dir)
            && st.agent.started_at.0 >= since
        {
            if let Some(success) = st.last_success {
                return Ok(format!(
                    "converged: agent pid {} reached its desired state{} at {} after {:.1} s",
                    st.agent.pid,
                    st.desired
                        .as_ref()
                        .map(|d| format!(" (generation {})", d.generation))
                        .unwrap_or_default(),
                    success,
                    start.elapsed().as_secs_f64()
                ));
            }
            if !process_is_agent(st.agent.pid) {
                return Err(format!(
                    "the agent (pid {}) ended before its first converged reconcile{}",
                    st.agent.pid,
                    error_of(&st)
                ));
            }
            last = Some(st);
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "no converged reconcile within {}{}",
                humantime::format_duration(timeout),
                last.as_ref().map(error_of).unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn error_of(st: &crate::report::status::Status) -> String {
    match st.last_reconcile.as_ref().and_then(|r| r.error.as_deref()) {
        Some(e) => format!("; its last error: {e}"),
        None => format!("; its phase: {:?}", st.phase),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_files_as_systemd_reads_them() {
        // systemd.exec(5), EnvironmentFile=: comments, quotes, blanks.
        let text = "# metal-core\n; also a comment\n\nMETAL_CORE_ASN=420000011\n\
                    METAL_CORE_HMAC_KEY=\"a b\"\nMETAL_CORE_RACK_ID='rack01'\n  TZ = UTC \n\
                    METAL_CORE_CIDR=\n";
        assert_eq!(
            parse_environment_file(text).unwrap(),
            pairs(&[
                ("METAL_CORE_ASN", "420000011"),
                ("METAL_CORE_HMAC_KEY", "a b"),
                ("METAL_CORE_RACK_ID", "rack01"),
                ("TZ", "UTC"),
                ("METAL_CORE_CIDR", ""),
            ])
        );
    }

    #[test]
    fn lines_systemd_would_ignore_are_named() {
        let e = parse_environment_file("A=1\nexport B=2\nno equals sign\n9X=3\n").unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("line 2:"), "{e:?}");
        assert!(e[1].starts_with("line 3: not KEY=VALUE"), "{e:?}");
        assert!(e[2].starts_with("line 4:"), "{e:?}");
    }
}
