//! Shared helpers of the integration tests: a lab switch is a real
//! redis-server seeded with a SONiC base configuration and port map, the
//! SONiC stand-in answering barriers, and an agent configuration for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod agent;
pub mod cases;
pub mod kernel;
pub mod lab;
pub mod model;

use std::path::PathBuf;
use std::time::Duration;

use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::dbconfig::Databases;
use metal_switchd::configdb::plan::Plan;
use metal_switchd::configdb::redis::{ApplyOptions, ApplyReport, ConfigDb};
use metal_switchd::reconcile::{self, Prepared};
use metal_switchd::spec::SwitchDesc;
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::{CONFIG_DB, RedisServer};
use metal_switchd_lab::seed::{Entry, SeedOptions, dump, seed_switch, write_entries};
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};

pub type Dump = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

pub struct Switch {
    pub redis: RedisServer,
    pub standin: Option<SonicStandIn>,
    pub dbconf: PathBuf,
    /// The stand-in's writes at the last [`Switch::reset_writes`].
    standin_mark: std::sync::atomic::AtomicU64,
}

impl Switch {
    /// mini-lab leaf01 (122 ports) with the stand-in.
    pub fn leaf01(standin: StandInOptions) -> Switch {
        Switch::new(
            fixtures::LEAF01_CONFIG,
            Some(fixtures::MINI_LAB_PORT_MAP),
            &[],
            SeedOptions::default(),
            Some(standin),
        )
    }

    /// leaf01 with the lab sample state applied and settled, the stand-in's
    /// events cleared: the starting point of a move test.
    pub async fn leaf01_applied(standin: StandInOptions) -> (Switch, Config) {
        let sw = Switch::leaf01(standin);
        let cfg = sw.config("");
        sw.apply(&cfg, &leaf01_desc()).await.expect("first apply");
        sw.settle();
        sw.standin().clear();
        (sw, cfg)
    }

    pub fn new(
        config_db: &str,
        port_map: Option<&str>,
        extra: &[Entry],
        seed: SeedOptions,
        standin: Option<StandInOptions>,
    ) -> Switch {
        let redis = RedisServer::start().expect("redis-server (apt-get install -y redis-server)");
        seed_switch(&redis, config_db, port_map, &seed).expect("seeding");
        write_entries(&redis, CONFIG_DB, extra).expect("extra entries");
        let dbconf = redis.write_database_config().expect("database_config.json");
        let standin = standin.map(|o| SonicStandIn::start(&redis, o).expect("SONiC stand-in"));
        redis.reset_stats().expect("CONFIG RESETSTAT");
        Switch {
            redis,
            standin,
            dbconf,
            standin_mark: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The lab's leaf01 agent configuration, overridden by the keys in `extra` (TOML).
    pub fn config(&self, extra: &str) -> Config {
        let mut table: toml::Table =
            toml::from_str(fixtures::LEAF01_AGENT_CONFIG).expect("lab config");
        table.insert(
            "database_config".into(),
            self.dbconf.display().to_string().into(),
        );
        table.insert("barrier_timeout".into(), "10s".into());
        table.extend(toml::from_str::<toml::Table>(extra).expect("extra TOML"));
        let text = toml::to_string(&table).expect("TOML");
        Config::from_sources(Some(("test.toml", &text)), Vec::new()).expect("test configuration")
    }

    /// The agent configuration of [`Switch::config`] as a TOML file in `dir`
    /// (for running the `metal-switchd` binary against this switch).
    pub fn config_file(&self, dir: &std::path::Path, extra: &str) -> PathBuf {
        let mut table: toml::Table =
            toml::from_str(fixtures::LEAF01_AGENT_CONFIG).expect("lab config");
        table.insert(
            "database_config".into(),
            self.dbconf.display().to_string().into(),
        );
        table.insert("barrier_timeout".into(), "10s".into());
        // FRR: validated with vtysh --dryrun and installed in `dir`, not reloaded.
        table.insert(
            "frr_config".into(),
            dir.join("frr.conf").display().to_string().into(),
        );
        table.insert("frr_reload".into(), "none".into());
        table.insert("frr_agentx".into(), false.into());
        // This kernel cannot create VRF devices: no kernel confirmation.
        table.insert("kernel_checks".into(), false.into());
        // The status file next to the configuration; no fixed metrics port.
        table.insert(
            "state_directory".into(),
            dir.join("state").display().to_string().into(),
        );
        table.extend(toml::from_str::<toml::Table>(extra).expect("extra TOML"));
        let path = dir.join("agent.toml");
        std::fs::write(&path, toml::to_string(&table).expect("TOML")).expect("write config");
        path
    }

    pub async fn connect(&self) -> ConfigDb {
        ConfigDb::connect(Databases::load(&self.dbconf).expect("database_config"))
            .await
            .expect("connect")
    }

    /// Read, plan and apply like `apply --once`.
    pub async fn apply(
        &self,
        cfg: &Config,
        desc: &SwitchDesc,
    ) -> Result<(Prepared, ApplyReport), metal_switchd::Error> {
        let mut db = self.connect().await;
        db.wait_ready(Duration::from_secs(5)).await?;
        let view = db.view();
        let prepared = reconcile::prepare(desc, cfg, &view.config, &view.confirmed)?;
        let opts = ApplyOptions {
            barrier_timeout: cfg.barrier_timeout.0,
            ..ApplyOptions::default()
        };
        let mut report = db.apply(&prepared.plan, &opts).await?;
        report.stats = db.stats();
        Ok((prepared, report))
    }

    pub async fn plan(&self, cfg: &Config, desc: &SwitchDesc) -> Plan {
        self.prepare(cfg, desc).await.plan
    }

    /// The spec of `desc` against this switch's CONFIG_DB.
    pub async fn plan_spec(
        &self,
        cfg: &Config,
        desc: &SwitchDesc,
    ) -> metal_switchd::spec::SwitchSpec {
        self.prepare(cfg, desc).await.spec
    }

    /// Spec and plan of `desc` against this switch's CONFIG_DB.
    async fn prepare(&self, cfg: &Config, desc: &SwitchDesc) -> Prepared {
        let mut db = self.connect().await;
        db.read().await.expect("read");
        let view = db.view();
        reconcile::prepare(desc, cfg, &view.config, &view.confirmed).expect("valid desired state")
    }

    /// Write commands redis executed since the last reset (all clients).
    pub fn writes(&self) -> u64 {
        ["hset", "hmset", "hdel", "del", "set", "exec"]
            .iter()
            .map(|c| self.redis.command_calls(c).expect("INFO commandstats"))
            .sum()
    }

    /// Reset redis' command counters for [`Switch::agent_writes`].
    pub fn reset_writes(&self) {
        self.redis.reset_stats().expect("CONFIG RESETSTAT");
        self.standin_mark.store(
            self.standin.as_ref().map_or(0, SonicStandIn::writes),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Write commands since [`Switch::reset_writes`] of every client but
    /// the SONiC stand-in (which counts its own): the agent's, when the
    /// test itself wrote nothing. The stand-in must be the same one.
    pub fn agent_writes(&self) -> u64 {
        let standin = self.standin.as_ref().map_or(0, |s| {
            s.writes() - self.standin_mark.load(std::sync::atomic::Ordering::Relaxed)
        });
        self.writes() - standin
    }

    pub fn dump(&self, db: i64) -> Dump {
        dump(&self.redis, db).expect("dump")
    }

    pub fn settle(&self) {
        if let Some(s) = &self.standin {
            s.settle(Duration::from_secs(10)).expect("stand-in settles");
        }
    }

    pub fn violations(&self) -> Vec<String> {
        self.standin
            .as_ref()
            .map(|s| s.violations())
            .unwrap_or_default()
    }

    pub fn standin(&self) -> &SonicStandIn {
        self.standin
            .as_ref()
            .expect("this switch runs the stand-in")
    }
}

/// The lab's leaf01 desired state.
pub fn leaf01_desc() -> SwitchDesc {
    parse_switch_document("leaf01.v1.json", fixtures::LEAF01_SWITCH_V1, None)
        .expect("lab switch")
        .1
}

/// `desc` with `port`'s VRF set (`""` = unprovisioned).
pub fn with_vrf(mut desc: SwitchDesc, port: &str, vrf: &str) -> SwitchDesc {
    let nic = desc
        .nics
        .iter_mut()
        .find(|n| n.name == port)
        .expect("nic exists");
    nic.vrf = (!vrf.is_empty()).then(|| vrf.to_owned());
    desc
}

/// Panic with the stand-in's report if SONiC would have crashed or wedged.
pub fn assert_no_violations(sw: &Switch) {
    sw.settle();
    let v = sw.violations();
    assert!(
        v.is_empty(),
        "orders that would crash or wedge SONiC:\n{}",
        v.join("\n")
    );
}

/// Index of the first stand-in event containing `needle`, or panic (after
/// the stand-in processed everything it received).
pub fn event(sw: &Switch, needle: &str) -> usize {
    sw.settle();
    sw.standin().position(needle).unwrap_or_else(|| {
        panic!(
            "SONiC never processed {needle:?}; events: {:#?}",
            sw.standin().events()
        )
    })
}
