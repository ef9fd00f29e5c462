//! The command line: sub-commands and their output (feature `agent`).
//!
//! Output for people goes to stdout (`--format text`, the default) or as one
//! JSON document (`--format json`); logs go to stderr. Exit codes: 0 done,
//! 2 invalid input (nothing written), 1 runtime error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::api;
use crate::config::ApiVersion;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::configdb::confirmed::Confirmed;
use crate::configdb::dbconfig::Databases;
use crate::configdb::redis::{ApplyOptions, ApplyReport, ConfigDb};
use crate::configdb::schema::DbState;
use crate::configdb::{snapshot, target};
use crate::error::Error;
use crate::files::{self, FileKind};
use crate::flavour::{self, Flavour, Profile};
use crate::frr;
use crate::kernel::KernelView;
use crate::reconcile;
use crate::reconcile::desired::DesiredSource;
use crate::reconcile::register::{self, RegisterOptions};
use crate::reconcile::run::{ConfigLoader, Daemon, DaemonOptions, Signals, daemon_agent};
use crate::reconcile::{Agent, AgentOptions, Mode};
use crate::report::{FrrOutcome, Outcome, ReconcileResult, Trigger};
use crate::spec::{PortRole, SwitchDesc, SwitchSpec};
use crate::writer_lock::WriterLock;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a runtime failure (redis, SONiC, the API, I/O); may have
/// written phases.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: invalid input (configuration, switch state, an input file that
/// is missing, not a regular file, too large or not UTF-8); nothing was written.
pub const EXIT_INVALID: u8 = 2;

/// The exit code of a command that failed with `e`.
pub fn exit_code(e: &Error) -> u8 {
    if e.is_invalid_input() {
        EXIT_INVALID
    } else {
        EXIT_RUNTIME
    }
}

/// metal-switchd: the metal-stack agent of a SONiC leaf switch.
///
/// It turns the switch's desired state (from the metal API, or a file) into
/// ordered, atomic CONFIG_DB writes and a validated FRR configuration.
/// Configuration: a TOML file (--config) whose keys can also be set as
/// METAL_SWITCHD_<KEY> or, for metal-core's settings, METAL_CORE_<KEY>
/// environment variables.
#[derive(Debug, Parser)]
#[command(name = "metal-switchd", version = crate::LONG_VERSION, max_term_width = 100)]
pub struct Cli {
    /// Configuration file [default: /etc/metal-switchd/config.toml, used only if it exists]
    #[arg(long, global = true, env = "METAL_SWITCHD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log filter for stderr, overriding log_level (e.g. debug, metal_switchd=trace)
    #[arg(long, global = true, env = "METAL_SWITCHD_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: register with the metal API, then keep the switch at
    /// the API's desired state
    ///
    /// Reconciles every reconfigure_switch_interval, at once when an owned
    /// CONFIG_DB entry is changed under it, when SONiC becomes ready again
    /// and on SIGHUP (which re-reads the configuration); reports every
    /// reconcile to the API (v2 heartbeat, v1 notify). With
    /// reconfigure_switch = false it computes and reports but writes
    /// nothing. SIGTERM / SIGINT stop it cleanly (exit 0).
    Run,
    /// Show the CONFIG_DB changes a switch state causes, phase by phase (read-only)
    Plan(PlanArgs),
    /// Apply a switch state to CONFIG_DB and wait until SONiC confirms each phase
    Apply(ApplyArgs),
    /// Print what the agent would write
    #[command(subcommand)]
    Render(RenderCommand),
    /// Register the switch with the metal API (v1 or v2 per api_version)
    ///
    /// Waits for SONiC (PortInitDone), registers the PORT table's ports as
    /// nics (per interface_naming_schema), the management address of
    /// management_interface and the SONiC version; retries transient
    /// failures with backoff until the API accepts the registration.
    Register(RegisterArgs),
    /// Print the SwitchSpec the metal API currently describes for this switch
    ///
    /// Fetches the switch (hostname) from the configured API and validates it
    /// against CONFIG_DB (redis, or --configdb); nothing is written.
    Fetch(FetchArgs),
    /// Load and validate the configuration and print it (secrets masked)
    ///
    /// Also reads every file `run` will read, under `run`'s rules, and prints
    /// the API version and why, the settings without effect, and the SONiC
    /// flavour of the switch; exits 2 when the switch's
    /// docker_routing_config_mode makes SONiC write FRR's configuration
    /// itself.
    CheckConfig(CheckConfigArgs),
    /// Show the running daemon's state: phase, last reconcile, stage times,
    /// errors, drift repairs, ports, BGP sessions, phone-home
    ///
    /// Reads status.json in state_directory, which the daemon rewrites after
    /// every reconcile. Exit codes: 0 the daemon runs and its status is
    /// current; 3 it is not running (no status file, or its process is
    /// gone); 4 its process exists but has not updated the file within
    /// --stale-after (the loop may be stuck), or the file cannot be read.
    Status(StatusArgs),
    /// Replace metal-core with this agent: check, stop metal-core, start the
    /// agent, wait until it converged
    ///
    /// Checks the configuration as the systemd unit sees it (the
    /// configuration file and the unit's environment files
    /// /etc/default/metal-core and /etc/default/metal-switchd, nothing of
    /// this shell's environment), those files, and the HMAC key or token
    /// and the gRPC certificates with the rules `run` reads them by;
    /// nothing is changed when a check fails (exit 2). Then, over systemd's
    /// D-Bus API, stops and disables metal-core.service, enables and starts
    /// metal-switchd.service and waits for its first converged reconcile.
    /// If the agent does not start or converge within --timeout,
    /// metal-core is started again (exit 1).
    Migrate(MigrateArgs),
}

#[derive(Debug, Subcommand)]
pub enum RenderCommand {
    /// The agent-owned CONFIG_DB entries, in config_db.json shape
    Configdb(RenderArgs),
    /// The frr.conf the agent would install (validated against CONFIG_DB like `plan`)
    ///
    /// For the SONiC flavour of this switch (sonic_version_file, CONFIG_DB's
    /// DEVICE_METADATA|localhost — from --configdb when given — and FRR's
    /// version), or for a known flavour named with --flavour.
    Frr(RenderFrrArgs),
}

/// Wire version of a switch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    /// detect from the document
    Auto,
    /// metal-api v1 SwitchResponse
    V1,
    /// metal-apiserver v2 Switch or SwitchServiceGetResponse
    V2,
}

impl ApiArg {
    /// The version asked for (`None`: detect it).
    pub fn version(self) -> Option<ApiVersion> {
        match self {
            ApiArg::Auto => None,
            ApiArg::V1 => Some(ApiVersion::V1),
            ApiArg::V2 => Some(ApiVersion::V2),
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// for people
    Text,
    /// one JSON document (errors too: {"error": {...}})
    Json,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// Switch state as the metal API returns it (v1 or v2 JSON)
    #[arg(long, value_name = "FILE")]
    pub switch: PathBuf,
    /// Wire version of --switch
    #[arg(long, value_enum, default_value_t = ApiArg::Auto)]
    pub api: ApiArg,
}

/// What an offline command plans from: the switch file and CONFIG_DB
/// (redis, or a snapshot).
#[derive(Debug, Args)]
pub struct InputArgs {
    #[command(flatten)]
    pub switch: SwitchArgs,
    /// Read CONFIG_DB from a config_db.json snapshot instead of redis
    #[arg(long, value_name = "FILE")]
    pub configdb: Option<PathBuf>,
}

impl InputArgs {
    /// The switch file's desired state prepared against CONFIG_DB: its wire
    /// version and the spec, target and plan.
    async fn prepare(&self, cfg: &Config) -> Result<(ApiVersion, reconcile::Prepared), Error> {
        let (version, desc) = read_switch(cfg, &self.switch)?;
        let (state, confirmed) = read_state(cfg, self.configdb.as_deref()).await?;
        Ok((version, reconcile::prepare(&desc, cfg, &state, &confirmed)?))
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output: text for people, or one JSON document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output: text (frr.conf; config_db.json for configdb) or one JSON
    /// document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Output: commented TOML for people, or one JSON document on stdout (an
    /// error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RenderFrrArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    /// Render for this SONiC flavour instead of the detected one:
    /// community-202311, community-202411, community-202505, dell-4.4,
    /// dell-4.5, edgecore-202211 (docs/flavours.md)
    #[arg(long, value_name = "NAME")]
    pub flavour: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply once and exit (required; `run` is the continuous agent)
    #[arg(long, required = true)]
    pub once: bool,
    /// Write CONFIG_DB only; leave FRR's configuration alone
    #[arg(long)]
    pub configdb_only: bool,
    #[command(flatten)]
    pub switch: SwitchArgs,
    /// How long to wait for SONiC to be ready (CONFIG_DB_INITIALIZED, PortInitDone)
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::config::parse_duration)]
    pub wait_ready: Duration,
    /// Output: text for people, or one JSON document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Register once and exit (required; `run` registers by itself)
    #[arg(long, required = true)]
    pub once: bool,
    /// How long to wait for SONiC to be ready per attempt (CONFIG_DB_INITIALIZED, PortInitDone)
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::config::parse_duration)]
    pub wait_ready: Duration,
    /// Stop retrying transient failures after this long [default: retry until it succeeds]
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub give_up_after: Option<Duration>,
    /// Output: text for people, or one JSON document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Read CONFIG_DB from a config_db.json snapshot instead of redis
    #[arg(long, value_name = "FILE")]
    pub configdb: Option<PathBuf>,
    /// Output: text for people, or one JSON document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output: text for people, or one JSON document on stdout (an error too)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How old the status may be before it counts as stale [default: three
    /// reconfigure_switch_interval plus timeout, at least 2m]
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub stale_after: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Go back: stop and disable metal-switchd.service, enable and start
    /// metal-core.service
    #[arg(long)]
    pub rollback: bool,
    /// How long to wait for each systemd job and for the agent's first
    /// converged reconcile
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
    /// The unit's environment files, in the unit's order (repeat the
    /// option for more than one) [default: /etc/default/metal-core
    /// /etc/default/metal-switchd]
    #[arg(long = "environment-file", value_name = "FILE")]
    pub environment_files: Vec<PathBuf>,
}

impl Cli {
    /// The output format the command was given (`None`: `run`, which prints
    /// no result, its logs follow `log_format`; and `migrate`, which reports
    /// its steps on stderr and its result in the exit code).
    pub fn format(&self) -> Option<Format> {
        match &self.command {
            Command::Run | Command::Migrate(_) => None,
            Command::Plan(a) => Some(a.format),
            Command::Apply(a) => Some(a.format),
            Command::Render(RenderCommand::Configdb(a)) => Some(a.format),
            Command::Render(RenderCommand::Frr(a)) => Some(a.render.format),
            Command::Register(a) => Some(a.format),
            Command::Fetch(a) => Some(a.format),
            Command::CheckConfig(a) => Some(a.format),
            Command::Status(a) => Some(a.format),
        }
    }
}

/// An error as the one JSON document a `--format json` caller reads on
/// stdout: the message, the exit code, and what it means for retrying.
pub fn error_json(e: &Error) -> serde_json::Value {
    json!({
        "error": {
            "message": e.to_string(),
            "exit_code": exit_code(e),
            "invalid_input": e.is_invalid_input(),
            "transient": e.is_transient(),
        }
    })
}

/// Load the configuration named on the command line.
pub fn load_config(cli: &Cli) -> Result<Config, Error> {
    let (path, required) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    Ok(Config::load(&path, required)?)
}

/// Start logging at the configured level and format (`crate::telemetry`).
pub fn init_logging(cli: &Cli, cfg: Option<&Config>) {
    let filter = cli.log.clone().unwrap_or_else(|| {
        cfg.map(|c| c.log_level.as_filter())
            .unwrap_or("info")
            .to_owned()
    });
    let format = cfg.map(|c| c.log_format).unwrap_or_default();
    crate::telemetry::init(&filter, format);
}

/// Run a parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> Result<u8, Error> {
    if let Command::Migrate(args) = &cli.command {
        // The configuration as the unit sees it, not as this shell does.
        init_logging(&cli, None);
        return Ok(crate::migrate::migrate(&migrate_options(&cli, args)).await);
    }
    let cfg = load_config(&cli)?;
    init_logging(&cli, Some(&cfg));
    match &cli.command {
        Command::CheckConfig(args) => check_config(&cfg, args.format).await,
        Command::Status(args) => Ok(status(&cfg, args)),
        Command::Plan(args) => plan(&cfg, args).await,
        Command::Register(args) => register_switch(&cfg, args).await,
        Command::Fetch(args) => fetch(&cfg, args).await,
        Command::Apply(args) => apply(&cfg, args).await,
        Command::Run => run_daemon(&cli, cfg).await,
        Command::Migrate(_) => Ok(EXIT_OK),
        Command::Render(RenderCommand::Configdb(args)) => {
            let (_, prepared) = args.input.prepare(&cfg).await?;
            print_json(&snapshot::target_to_config_db_json(&target::target(
                &prepared.spec,
            )));
            Ok(EXIT_OK)
        }
        Command::Render(RenderCommand::Frr(args)) => {
            let flavour = match &args.flavour {
                Some(name) => Profile::from_name(name)
                    .map_err(|e| {
                        Error::Config(crate::config::ConfigError::Invalid(vec![format!(
                            "--flavour: {e}"
                        )]))
                    })?
                    .flavour(),
                None => {
                    let snapshot = match &args.render.input.configdb {
                        Some(f) => Some(files::read_text(
                            FileKind::ConfigDbSnapshot,
                            f,
                            cfg.max_snapshot_bytes,
                        )?),
                        None => None,
                    };
                    let f = flavour::read::detect_switch(&cfg, snapshot.as_deref()).await;
                    for w in &f.warnings {
                        tracing::warn!(flavour = %f.name(), "{w}");
                    }
                    if let Some(r) = f.refusal() {
                        tracing::warn!("{r}");
                    }
                    f
                }
            };
            let (_, prepared) = args.render.input.prepare(&cfg).await?;
            let text = frr::render(&prepared.spec, flavour.frr_lines());
            match args.render.format {
                Format::Text => print(&text),
                Format::Json => print_json(&json!({
                    "flavour": flavour.name().to_string(),
                    "frr_conf": text,
                })),
            }
            Ok(EXIT_OK)
        }
    }
}

fn migrate_options(cli: &Cli, args: &MigrateArgs) -> crate::migrate::MigrateOptions {
    let config = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    let environment_files = if args.environment_files.is_empty() {
        crate::migrate::ENVIRONMENT_FILES
            .iter()
            .map(PathBuf::from)
            .collect()
    } else {
        args.environment_files.clone()
    };
    crate::migrate::MigrateOptions {
        config,
        environment_files,
        rollback: args.rollback,
        timeout: args.timeout,
    }
}

/// `metal-switchd check-config`: the configuration's values (checked when
/// it was loaded), then every file `run` will read and the transport
/// ([`crate::config_check`]), the settings without effect, and the SONiC
/// flavour of this switch with what the agent does about it. Exit code 2
/// for an error — also when SONiC writes FRR's configuration itself here (a
/// routing configuration mode the agent refuses); warnings are logged
/// (stderr).
async fn check_config(cfg: &Config, format: Format) -> Result<u8, Error> {
    let found = crate::config_check::check(cfg);
    // Through the log, so that `log_format = "json"` keeps stderr JSON.
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    if !found.errors.is_empty() {
        return Err(crate::config::ConfigError::Invalid(found.errors).into());
    }
    let flavour = flavour::read::detect_switch(cfg, None).await;
    let (version, why) = cfg.api_version_choice();
    let mut text = format!("# configuration is valid\n# api_version = \"{version}\" ({why})\n");
    for n in cfg.notices() {
        text.push_str(&format!("# not used: {n}\n"));
    }
    for n in &found.notes {
        text.push_str(&format!("# note: {n}\n"));
    }
    match format {
        Format::Text => {
            text.push_str(&cfg.to_toml());
            text.push_str(&flavour_text(&flavour));
            print(&text);
        }
        Format::Json => {
            let config = toml::from_str::<toml::Table>(&cfg.to_toml())
                .ok()
                .and_then(|t| serde_json::to_value(t).ok())
                .unwrap_or_default();
            print_json(&json!({
                "valid": flavour.refusal().is_none(),
                "api_version": version.to_string(),
                "api_version_reason": why,
                "not_used": cfg.notices(),
                "notes": found.notes,
                "warnings": found.warnings,
                "config": config,
                "flavour": crate::report::status::FlavourStatus::from(&flavour),
                "refusal": flavour.refusal(),
            }));
        }
    }
    match flavour.refusal() {
        Some(r) => {
            eprintln!("metal-switchd: {r}");
            Ok(EXIT_INVALID)
        }
        None => Ok(EXIT_OK),
    }
}

/// The flavour as `# `-comment lines (check-config appends them to TOML).
pub fn flavour_text(f: &Flavour) -> String {
    let mut out = format!("\n# SONiC flavour of this switch: {}\n", f.name());
    for (k, v) in f.describe() {
        out.push_str(&format!("#   {k:<27} {v}\n"));
    }
    for w in &f.warnings {
        out.push_str(&format!("# warning: {w}\n"));
    }
    if let Some(r) = f.refusal() {
        out.push_str(&format!("# REFUSED: {r}\n"));
    }
    out
}

/// `metal-switchd status`: the daemon's status file, judged and printed.
fn status(cfg: &Config, args: &StatusArgs) -> u8 {
    use crate::report::liveness::{self, Liveness};
    use crate::report::status::{Status, StatusFileError};
    use crate::report::text::short_duration;
    let max_age = args
        .stale_after
        .unwrap_or_else(|| liveness::max_age(cfg.reconfigure_switch_interval.0, cfg.timeout.0));
    let st = match Status::read(&cfg.state_directory) {
        Ok(st) => st,
        Err(e) => {
            eprintln!("metal-switchd: {e}");
            let code = match e {
                StatusFileError::Missing { .. } => liveness::EXIT_NOT_RUNNING,
                _ => liveness::EXIT_STALE,
            };
            if args.format == Format::Json {
                print_json(&json!({
                    "error": { "message": e.to_string(), "exit_code": code },
                    "liveness": if code == liveness::EXIT_NOT_RUNNING { "not-running" } else { "unreadable" },
                }));
            }
            return code;
        }
    };
    let now = std::time::SystemTime::now();
    let live = liveness::liveness(&st, now, max_age, liveness::process_is_agent(st.agent.pid));
    let verdict = match &live {
        Liveness::Running => "metal-switchd is running".to_owned(),
        Liveness::NotRunning => format!(
            "metal-switchd is NOT running: process {} is gone; its last status follows",
            st.agent.pid
        ),
        Liveness::Stale { age } => format!(
            "metal-switchd (pid {}) has not updated its status for {} (allowed {}): the loop \
             may be stuck",
            st.agent.pid,
            short_duration(*age),
            short_duration(max_age)
        ),
    };
    match args.format {
        Format::Text => print(&format!("{verdict}\n{}", st.text(now))),
        Format::Json => print_json(&json!({
            "liveness": live.as_str(),
            "age_seconds": st.updated_at.age(now).as_secs_f64(),
            "stale_after_seconds": max_age.as_secs_f64(),
            "status": st,
        })),
    }
    if live != Liveness::Running {
        eprintln!("metal-switchd: {verdict}");
    }
    live.exit_code()
}

/// Read a switch file of the requested wire version (bounded: a regular
/// file of at most `api_max_response_bytes`, like an API answer).
pub fn read_switch(cfg: &Config, args: &SwitchArgs) -> Result<(ApiVersion, SwitchDesc), Error> {
    let text = files::read_text(
        FileKind::SwitchDocument,
        &args.switch,
        cfg.api_max_response_bytes,
    )?;

    Ok(api::parse_switch_document(
        &args.switch.display().to_string(),
        &text,
        args.api.version(),
    )?)
}

async fn connect(cfg: &Config) -> Result<ConfigDb, Error> {
    let dbs = Databases::load(&cfg.database_config)?;
    Ok(ConfigDb::connect(dbs).await?)
}

/// CONFIG_DB from a snapshot file (SONiC assumed to have confirmed all of
/// it), or read from redis with what SONiC confirmed.
async fn read_state(
    cfg: &Config,
    snapshot_file: Option<&Path>,
) -> Result<(DbState, Confirmed), Error> {
    match snapshot_file {
        Some(f) => Ok((
            snapshot::parse_config_db_json(
                &f.display().to_string(),
                &files::read_text(FileKind::ConfigDbSnapshot, f, cfg.max_snapshot_bytes)?,
            )?,
            Confirmed::assumed(),
        )),
        None => {
            let mut db = connect(cfg).await?;
            let (_, ready) = db.read().await?;
            if !ready.ready() {
                tracing::warn!(
                    config_db_initialized = %ready.config_db_initialized,
                    port_init_done = ready.port_init_done,
                    "SONiC is not initialised yet; CONFIG_DB may be incomplete"
                );
            }
            let view = db.view();
            Ok((view.config.clone(), view.confirmed.clone()))
        }
    }
}

async fn plan(cfg: &Config, args: &PlanArgs) -> Result<u8, Error> {
    let (version, prepared) = args.input.prepare(cfg).await?;
    match args.format {
        Format::Text => print(&prepared.plan.to_string()),
        Format::Json => print_json(&json!({
            "api": version,
            "plan": prepared.plan,
        })),
    }
    Ok(EXIT_OK)
}

async fn apply(cfg: &Config, args: &ApplyArgs) -> Result<u8, Error> {
    // One writer per switch: not beside a running agent.
    let _lock = WriterLock::acquire(&cfg.state_directory)?;
    let source = DesiredSource::File {
        path: args.switch.switch.clone(),
        version: args.switch.api.version(),
        max_bytes: cfg.api_max_response_bytes,
    };
    let opts = AgentOptions {
        mode: Mode::Apply,
        frr: !args.configdb_only,
        wait_ready: args.wait_ready,
        hooks: ApplyOptions {
            barrier_timeout: cfg.barrier_timeout.0,
            ..ApplyOptions::default()
        },
    };
    let manage_frr = opts.frr;
    let mut agent = Agent::new(cfg.clone(), source, None, opts)?;
    if manage_frr {
        let f = flavour::read::detect_switch(cfg, None).await;
        for w in &f.warnings {
            tracing::warn!(flavour = %f.name(), "{w}");
        }
        agent.set_flavour(f);
    }
    // Each wait is bounded by --wait-ready or barrier_timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(86_400);
    let outcome = agent.reconcile_once(Trigger::Command, true, deadline).await;
    let mut report = outcome.apply.clone().unwrap_or_default();
    report.stats = agent.db().stats();
    report.read_time = outcome.stages.fetch;
    report.plan_time = outcome.stages.plan;
    report.peak_rss_kib = peak_rss_kib();
    let plan = outcome.plan.clone().unwrap_or_default();
    match args.format {
        Format::Text => {
            if outcome.plan.is_some() {
                print(&plan.to_string());
            }
            if outcome.result != ReconcileResult::Invalid && outcome.plan.is_some() {
                print(&report_text(&report));
                print(&frr_text(&outcome));
            }
        }
        Format::Json => print_json(&json!({
            "api": outcome.api_version,
            "plan": plan,
            "report": report,
            "outcome": outcome,
        })),
    }
    match outcome.result {
        ReconcileResult::Converged => Ok(EXIT_OK),
        _ => {
            if let Some(e) = &outcome.error {
                eprintln!("metal-switchd: error: {e}");
            }
            Ok(if outcome.result == ReconcileResult::Invalid {
                EXIT_INVALID
            } else {
                EXIT_RUNTIME
            })
        }
    }
}

fn frr_text(o: &Outcome) -> String {
    match o.frr {
        FrrOutcome::Skipped => String::new(),
        FrrOutcome::Unchanged => {
            "FRR: the installed configuration is already the rendered one\n".into()
        }
        FrrOutcome::Reloaded { reload } => format!(
            "FRR: the installed configuration is already the rendered one; reloaded it in {:.0} ms \
             (the first install of a run cannot know whether FRR runs it)\n",
            reload.as_secs_f64() * 1e3
        ),
        FrrOutcome::Replaced { validation, reload } => format!(
            "FRR: installed a new configuration (validated in {:.0} ms{})\n",
            validation.as_secs_f64() * 1e3,
            match reload {
                Some(r) => format!(", reloaded in {:.0} ms", r.as_secs_f64() * 1e3),
                None => ", not reloaded: frr_reload = none".into(),
            }
        ),
    }
}

/// `run`: the daemon until SIGTERM / SIGINT.
async fn run_daemon(cli: &Cli, cfg: Config) -> Result<u8, Error> {
    // One writer per switch, for as long as this process lives.
    let _lock = WriterLock::acquire(&cfg.state_directory)?;
    let agent = daemon_agent(&cfg)?;
    let signals = Signals::install()?;
    let (path, required) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    let loader: ConfigLoader = Box::new(move || Ok(Config::load(&path, required)?));
    Daemon::new(
        agent,
        loader,
        signals,
        Box::new(|_| {}),
        DaemonOptions::full(),
    )
    .run()
    .await?;
    Ok(EXIT_OK)
}

async fn register_switch(cfg: &Config, args: &RegisterArgs) -> Result<u8, Error> {
    let mut client = reconcile::options::api_client(cfg)?;
    let mut db = connect(cfg).await?;
    let kernel = KernelView::start().await?;
    let opts = RegisterOptions {
        wait_ready: args.wait_ready,
        retry: reconcile::options::retry(cfg),
        give_up_after: args.give_up_after,
        progress: None,
    };
    let (reg, fetched) = register::register(cfg, &mut db, &kernel, &mut client, &opts).await?;
    match args.format {
        Format::Text => print(&format!(
            "registered switch {} with {} ({}): {} nics, management IP {}, OS {}, agent {}\n\
             the API now describes {} nics\n",
            reg.id,
            client.base_url(),
            client.version().server(),
            reg.nics.len(),
            reg.management_ip,
            reg.os_version,
            reg.agent_version,
            fetched.nic_names.len(),
        )),
        Format::Json => print_json(&json!({
            "api": client.version(),
            "endpoint": client.base_url(),
            "registration": reg,
            "switch": fetched,
        })),
    }
    Ok(EXIT_OK)
}

async fn fetch(cfg: &Config, args: &FetchArgs) -> Result<u8, Error> {
    let id = cfg.hostname()?.to_owned();
    let mut client = reconcile::options::api_client(cfg)?;
    let fetched = client.get(&id).await?;
    let (state, confirmed) = read_state(cfg, args.configdb.as_deref()).await?;
    let prepared = reconcile::prepare(&fetched.desc, cfg, &state, &confirmed)?;
    match args.format {
        Format::Text => print(&spec_text(&prepared.spec)),
        Format::Json => print_json(&json!({
            "api": client.version(),
            "endpoint": client.base_url(),
            "sync": fetched.sync,
            "spec": prepared.spec,
        })),
    }
    Ok(EXIT_OK)
}

/// A SwitchSpec for people: one line per port that is not plainly
/// unprovisioned, the unprovisioned ones together, one line per VRF.
pub fn spec_text(spec: &SwitchSpec) -> String {
    let mut out = format!(
        "switch {}: VTEP {}, PXE VLAN {}, tenant VLANs {}, ASN {}, loopback {}\n",
        spec.hostname,
        spec.vtep,
        spec.pxe_vlan,
        spec.vlan_range,
        spec.routing.asn,
        spec.routing.loopback
    );
    let mut pxe = Vec::new();
    out.push_str(&format!("ports ({} managed):\n", spec.ports.len()));
    let mut ports: Vec<_> = spec.ports.values().collect();
    ports.sort_by(|a, b| crate::spec::natural_cmp(&a.name, &b.name));
    for p in ports {
        let admin = p
            .admin
            .map(|a| format!(", admin {}", a.as_str()))
            .unwrap_or_default();
        match &p.role {
            PortRole::Unprovisioned if p.admin.is_none() => pxe.push(p.name.as_str()),
            PortRole::Firewall { filter } => {
                let prefixes = filter.prefixes.shown();
                let vnis: Vec<String> = filter.vnis.iter().map(ToString::to_string).collect();
                out.push_str(&format!(
                    "  {:<12} firewall, mtu {}{admin}; prefixes {}; VNIs {}\n",
                    p.name,
                    p.role.mtu(),
                    if prefixes.is_empty() {
                        "-".into()
                    } else {
                        prefixes.join(", ")
                    },
                    if vnis.is_empty() {
                        "-".into()
                    } else {
                        vnis.join(", ")
                    },
                ));
            }
            role => out.push_str(&format!(
                "  {:<12} {}, mtu {}{admin}\n",
                p.name,
                role.describe(),
                role.mtu()
            )),
        }
    }
    if !pxe.is_empty() {
        out.push_str(&format!(
            "  unprovisioned (PXE VLAN {}), {} ports: {}\n",
            spec.pxe_vlan,
            pxe.len(),
            pxe.join(" ")
        ));
    }
    out.push_str(&format!("VRFs ({}):\n", spec.vrfs.len()));
    for v in spec.vrfs.values() {
        let prefixes = v.prefixes.shown();
        out.push_str(&format!(
            "  {} VNI {} VLAN {}: ports {}; prefixes {}\n",
            v.name(),
            v.vni,
            v.vlan,
            v.ports.join(", "),
            if prefixes.is_empty() {
                "-".into()
            } else {
                prefixes.join(", ")
            }
        ));
    }
    out
}

/// This process' peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    files::read_text(
        FileKind::ProcessStatus,
        Path::new("/proc/self/status"),
        files::PROC_MAX_BYTES,
    )
    .ok()?
    .lines()
    .find_map(|l| l.strip_prefix("VmHWM:"))?
    .trim()
    .trim_end_matches("kB")
    .trim()
    .parse()
    .ok()
}

/// One paragraph about an apply, for people.
pub fn report_text(r: &ApplyReport) -> String {
    let s = &r.stats;
    if r.phases.is_empty() {
        return format!(
            "nothing written ({} round trip(s): the read)\n",
            s.round_trips
        );
    }
    format!(
        "applied {} phase(s): {} key(s) written with {} command(s) in {} round trip(s) \
         (reads included); read {:.1} ms, planned {:.1} ms, wrote {:.1} ms; SONiC confirmed \
         in {:.1} ms ({} barrier poll(s))\n",
        r.phases.len(),
        s.keys_written,
        s.write_commands,
        s.round_trips,
        r.read_time.as_secs_f64() * 1e3,
        r.plan_time.as_secs_f64() * 1e3,
        r.write_time.as_secs_f64() * 1e3,
        r.barrier_time.as_secs_f64() * 1e3,
        s.barrier_polls,
    )
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => print(&format!("{s}\n")),
        Err(e) => tracing::error!("cannot serialise output: {e}"),
    }
}
