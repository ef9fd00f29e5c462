//! Shared helpers of the integration tests: a lab switch is a real
//! redis-server seeded with a SONiC base configuration and port map, the
//! SONiC stand-in answering barriers, and an agent configuration for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod agent;
pub mod cases;
pub mod config;
pub mod kernel;
pub mod lab;
pub mod model;
pub mod package;
pub mod process;
pub mod soak;
pub mod sonic_logs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::TestConfig;
use metal_switchd::api::parse_switch_document;
use metal_switchd::config::Config;
use metal_switchd::configdb::dbconfig::Databases;
use metal_switchd::configdb::plan::Plan;
use metal_switchd::configdb::redis::{ApplyOptions, ApplyReport, ConfigDb};
use metal_switchd::configdb::schema::Key;
use metal_switchd::reconcile::desired::DesiredSource;
use metal_switchd::reconcile::{self, Agent, AgentOptions, Mode, Prepared};
use metal_switchd::report::{Outcome, ReconcileResult, Trigger};
use metal_switchd::spec::{SwitchDesc, SwitchSpec};
use metal_switchd_lab::fixtures;
use metal_switchd_lab::redis_server::{CONFIG_DB, RedisServer};
use metal_switchd_lab::seed::{Entry, SeedOptions, dump, seed_switch, write_entries};
use metal_switchd_lab::sonic::{SonicStandIn, StandInOptions};

/// What one [`Switch::apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// The validated desired state.
    pub spec: SwitchSpec,
    /// The plan it applied.
    pub plan: Plan,
    /// The apply's phases and counters (of the agent's whole connection).
    pub report: ApplyReport,
    pub outcome: Outcome,
}

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

    /// leaf01 with the foreign objects of the model (`model::foreign_entries`)
    /// and the stand-in.
    pub fn leaf01_with_foreign(standin: StandInOptions) -> Switch {
        Switch::new(
            fixtures::LEAF01_CONFIG,
            Some(fixtures::MINI_LAB_PORT_MAP),
            &model::foreign_entries(),
            SeedOptions::default(),
            Some(standin),
        )
    }

    /// leaf01 without the stand-in: nobody confirms anything.
    pub fn leaf01_unconfirmed() -> Switch {
        Switch::new(
            fixtures::LEAF01_CONFIG,
            Some(fixtures::MINI_LAB_PORT_MAP),
            &[],
            SeedOptions::default(),
            None,
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
        let redis = start_redis();
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

    /// The lab's leaf01 agent configuration for this switch.
    pub fn test_config(&self) -> TestConfig {
        TestConfig::leaf01()
            .path("database_config", &self.dbconf)
            .set("barrier_timeout", "10s")
    }

    /// [`Switch::test_config`], overridden by the keys in `extra` (TOML).
    pub fn config(&self, extra: &str) -> Config {
        self.test_config().extra(extra).build()
    }

    /// [`Switch::test_config`] for the `metal-switchd` binary run against
    /// this switch with its files in `dir`.
    pub fn binary_config(&self, dir: &std::path::Path) -> TestConfig {
        self.test_config()
            // FRR: validated with vtysh --dryrun and installed in `dir`, not reloaded.
            .path("frr_config", &dir.join("frr.conf"))
            .set("frr_reload", "none")
            .set("frr_agentx", false)
            // This kernel cannot create VRF devices: no kernel confirmation.
            .set("kernel_checks", false)
            // The status file next to the configuration; no fixed metrics port.
            .path("state_directory", &dir.join("state"))
    }

    /// [`Switch::binary_config`] with the keys in `extra` (TOML), as a TOML
    /// file in `dir`.
    pub fn config_file(&self, dir: &std::path::Path, extra: &str) -> PathBuf {
        self.binary_config(dir)
            .extra(extra)
            .write(&dir.join("agent.toml"))
    }

    pub async fn connect(&self) -> ConfigDb {
        ConfigDb::connect(Databases::load(&self.dbconf).expect("database_config"))
            .await
            .expect("connect")
    }

    /// Apply `desc` as `apply --once --configdb-only` does: one
    /// [`Agent::reconcile_once`] of a new agent (the one apply path: fetch,
    /// spec, plan, write, verify). `Err` is the outcome of a reconcile that
    /// did not converge, with its result and error.
    pub async fn apply(&self, cfg: &Config, desc: &SwitchDesc) -> Result<Applied, Box<Outcome>> {
        self.apply_reasserting(cfg, desc, &[]).await
    }

    /// [`Self::apply`], re-asserting `keys` as the daemon does after kernel
    /// drift (`Agent::reassert`).
    pub async fn apply_reasserting(
        &self,
        cfg: &Config,
        desc: &SwitchDesc,
        keys: &[Key],
    ) -> Result<Applied, Box<Outcome>> {
        let opts = AgentOptions {
            mode: Mode::Apply,
            frr: false,
            wait_ready: Duration::from_secs(5),
            hooks: ApplyOptions {
                barrier_timeout: cfg.barrier_timeout.0,
                ..ApplyOptions::default()
            },
        };
        let source = DesiredSource::Memory(Arc::new(desc.clone()));
        let mut agent = Agent::new(cfg.clone(), source, None, opts).expect("agent");
        agent.reassert(keys.iter().cloned());
        // Each wait is bounded by wait_ready or barrier_timeout, as for `apply --once`.
        let deadline = Instant::now() + Duration::from_secs(86_400);
        let outcome = agent.reconcile_once(Trigger::Command, true, deadline).await;
        if outcome.result != ReconcileResult::Converged {
            return Err(Box::new(outcome));
        }
        let mut report = outcome.apply.clone().unwrap_or_default();
        report.stats = agent.db().stats();
        Ok(Applied {
            spec: agent
                .spec()
                .cloned()
                .expect("a converged reconcile has a spec"),
            plan: outcome.plan.clone().unwrap_or_default(),
            report,
            outcome,
        })
    }

    pub async fn plan(&self, cfg: &Config, desc: &SwitchDesc) -> Plan {
        self.prepare(cfg, desc).await.plan
    }

    /// The spec of `desc` against this switch's CONFIG_DB.
    pub async fn plan_spec(&self, cfg: &Config, desc: &SwitchDesc) -> SwitchSpec {
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

/// A throwaway redis-server of its own (the one way the tests start one).
pub fn start_redis() -> RedisServer {
    RedisServer::start().expect("redis-server (apt-get install -y redis-server)")
}

/// `metal-switchd --config CONFIG apply --once --wait-ready WAIT --switch
/// SWITCH` (the real binary).
pub fn apply_once(config: &Path, switch: &Path, wait_ready: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metal-switchd"))
        .env_remove("METAL_SWITCHD_CONFIG")
        .arg("--config")
        .arg(config)
        .args(["apply", "--once", "--wait-ready", wait_ready, "--switch"])
        .arg(switch)
        .output()
        .unwrap()
}

/// A run's exit code, stdout and stderr, for a message.
pub fn output_text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// (database, key, field, value) as bytes.
pub type RawEntry = (i64, &'static [u8], &'static [u8], &'static [u8]);

/// Bytes that are not UTF-8 in entries the agent does not own, in every
/// database and every part of an entry the agent reads before it writes
/// (APPL_DB's entries exist only for its own VRFs: see `sonic_bytes.rs`).
pub const NOT_UTF8: &[RawEntry] = {
    use metal_switchd_lab::redis_server::{ASIC_DB, CONFIG_DB, COUNTERS_DB, STATE_DB};
    &[
        // The case: a foreign VLAN's value.
        (CONFIG_DB, b"VLAN|Vlan3900", b"description", b"caf\xe9"),
        // A field name of a foreign entry.
        (CONFIG_DB, b"VLAN_INTERFACE|Vlan3900", b"note\xff", b"1"),
        // A key name in a table the agent owns entries of.
        (CONFIG_DB, b"VLAN|Vlan39\xff01", b"vlanid", b"3901"),
        // STATE_DB: a key name and a field of a confirmation table.
        (STATE_DB, b"VLAN_TABLE|Vlan39\xff02", b"state", b"ok"),
        (STATE_DB, b"VLAN_TABLE|Vlan3900", b"x", b"\xfe\xfe"),
        // COUNTERS_DB: a name map's field and value.
        (
            COUNTERS_DB,
            b"COUNTERS_PORT_NAME_MAP",
            b"Ethernet\xff",
            b"oid:0x\xfe",
        ),
        // ASIC_DB: a bridge port's name and one's port id.
        (
            ASIC_DB,
            b"ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:oid:0x\xff",
            b"SAI_BRIDGE_PORT_ATTR_PORT_ID",
            b"oid:0x1",
        ),
        (
            ASIC_DB,
            b"ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:oid:0x3a0000000000bad",
            b"SAI_BRIDGE_PORT_ATTR_PORT_ID",
            b"oid:\xff",
        ),
    ]
};

impl Switch {
    /// `HSET key field value` in database `db`, as bytes (SONiC stores
    /// whatever it is given, UTF-8 or not).
    pub fn hset_raw(&self, db: i64, key: &[u8], field: &[u8], value: &[u8]) {
        let mut c = self.redis.connection(db).unwrap();
        redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query::<()>(&mut c)
            .unwrap();
    }

    /// `HGET key field` in database `db`, as bytes.
    pub fn hget_raw(&self, db: i64, key: &[u8], field: &[u8]) -> Option<Vec<u8>> {
        let mut c = self.redis.connection(db).unwrap();
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query(&mut c)
            .unwrap()
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
    assert_no_violations_when(sw, "at the end");
}

/// [`assert_no_violations`], saying `when`.
pub fn assert_no_violations_when(sw: &Switch, when: &str) {
    sw.settle();
    let v = sw.violations();
    assert!(
        v.is_empty(),
        "{when}: orders that would crash or wedge SONiC:\n{}",
        v.join("\n")
    );
}

/// Tear the mini-lab down: every agent ended cleanly on SIGTERM and no
/// stand-in saw an order that would crash or wedge SONiC (`what` names the
/// run); the teardown.
pub fn clean_teardown(
    lab: &mut metal_switchd_lab::minilab::Lab,
    what: &str,
) -> metal_switchd_lab::minilab::Teardown {
    let t = lab.teardown().expect("mini-lab teardown");
    for (name, status, ok) in &t.agents {
        assert!(
            ok,
            "{what}: metal-switchd on {name} ended with {status} after SIGTERM"
        );
    }
    for (name, v) in &t.violations {
        assert!(v.is_empty(), "{what}: {name}: {v:?}");
    }
    t
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
