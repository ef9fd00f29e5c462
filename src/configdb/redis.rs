//! The CONFIG_DB adapter: read the agent's tables, apply a plan (feature `agent`).
//!
//! - Every database is located through `database_config.json`
//!   ([`Databases`]); a `password_path` means `AUTH` with the file's content.
//! - Reading is one round trip: a Lua script collects every entry of the
//!   agent's tables plus the readiness flags (`CONFIG_DB_INITIALIZED` and,
//!   when APPL_DB lives on the same instance, `PortInitDone`).
//! - Applying writes each phase as one `MULTI/EXEC` (one round trip), then
//!   polls the phase's barrier — one scripted round trip per instance and
//!   poll — until it holds or the timeout names what is missing.
//! - [`Stats`] counts round trips and commands, separately for barrier polls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use serde::Serialize;

use super::dbconfig::{Databases, DbConfigError, DbLocation, Instance};
use super::diff::Op;
use super::plan::{Check, Condition, Db, Plan, Stage};
use super::schema::{DbState, Fields, Key, PORT_FIELDS, SEP, Table};

/// Errors talking to SONiC's redis.
#[derive(Debug, thiserror::Error)]
pub enum ConfigDbError {
    #[error(transparent)]
    DbConfig(#[from] DbConfigError),
    #[error("{source} (password_path of instance {instance})")]
    Password {
        instance: String,
        source: crate::files::FileError,
    },
    #[error("cannot connect to {db} (redis instance {instance} at {addr}): {source}")]
    Connect {
        db: String,
        instance: String,
        addr: String,
        source: redis::RedisError,
    },
    #[error("redis: {what}: {source}")]
    Redis {
        what: String,
        source: redis::RedisError,
    },
    #[error("redis: {what}: unexpected reply {reply}")]
    Reply { what: String, reply: String },
    #[error(
        "SONiC is not ready after {waited:?}: CONFIG_DB_INITIALIZED={config_db_initialized:?}, \
         APPL_DB PORT_TABLE:PortInitDone {port_init}; nothing was written"
    )]
    NotReady {
        waited: Duration,
        config_db_initialized: String,
        port_init: &'static str,
    },
    #[error(
        "phase {phase}/{phases} ({stage:?}) was written, but SONiC did not confirm it within {waited:?}; \
         still waiting for:\n{}\nphases 1..{phase} are in CONFIG_DB; the next reconcile continues from there",
        unmet.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    Barrier {
        phase: usize,
        phases: usize,
        stage: Stage,
        waited: Duration,
        unmet: Vec<Condition>,
    },
}

impl ConfigDbError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ConfigDbError::DbConfig(_)
            | ConfigDbError::Password { .. }
            | ConfigDbError::Reply { .. } => false,
            ConfigDbError::Connect { .. }
            | ConfigDbError::Redis { .. }
            | ConfigDbError::NotReady { .. }
            | ConfigDbError::Barrier { .. } => true,
        }
    }
}

fn redis_err(what: impl Into<String>) -> impl FnOnce(redis::RedisError) -> ConfigDbError {
    let what = what.into();
    move |source| ConfigDbError::Redis { what, source }
}

/// Round trips and commands sent to redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Round trips for reads and writes (barrier polls excluded).
    pub round_trips: u64,
    /// Write commands sent (`HSET`, `HDEL`, `DEL`; `MULTI`/`EXEC` excluded).
    pub write_commands: u64,
    /// Keys written (created, updated or deleted).
    pub keys_written: u64,
    /// Round trips spent polling barriers.
    pub barrier_polls: u64,
}

/// What CONFIG_DB / APPL_DB say about readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Value of `CONFIG_DB_INITIALIZED` (empty when absent).
    pub config_db_initialized: String,
    /// Whether `PORT_TABLE:PortInitDone` exists in APPL_DB.
    pub port_init_done: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.config_db_initialized == "1" && self.port_init_done
    }
}

/// How applying behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Longest wait for one phase's barrier.
    pub barrier_timeout: Duration,
    /// First poll interval; doubles up to `max_poll_interval`.
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            barrier_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(2),
            max_poll_interval: Duration::from_millis(100),
        }
    }
}

/// What one applied phase did.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub stage: Stage,
    pub keys: usize,
    pub commands: usize,
    pub conditions: usize,
    /// Time spent waiting for the barrier.
    #[serde(with = "duration_micros")]
    pub barrier_wait: Duration,
    pub barrier_polls: u64,
}

/// What applying a plan did. Durations are serialised in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub phases: Vec<PhaseReport>,
    /// Counters of the whole apply (including the read that preceded it when
    /// the same client did it).
    pub stats: Stats,
    /// Wall time of reading CONFIG_DB (filled in by the caller that read).
    #[serde(with = "duration_micros")]
    pub read_time: Duration,
    /// Wall time of validating and planning (filled in by the caller).
    #[serde(with = "duration_micros")]
    pub plan_time: Duration,
    /// Wall time spent writing (barrier waits excluded).
    #[serde(with = "duration_micros")]
    pub write_time: Duration,
    /// Wall time spent waiting for barriers.
    #[serde(with = "duration_micros")]
    pub barrier_time: Duration,
    /// Peak resident memory of the process so far, in KiB (filled in by the
    /// caller; `None` where the kernel does not tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
}

mod duration_micros {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros().try_into().unwrap_or(u64::MAX))
    }
}

/// Reads every entry of the agent's tables and the readiness flags, as one
/// flat array: `init, portinit, key1, n1, f, v, … (n1 pairs), key2, n2, …`.
/// PORT entries carry only the fields the agent uses ([`PORT_FIELDS`]).
/// ARGV[1]: APPL_DB id on this instance (or ""), ARGV[2]: PortInitDone key,
/// ARGV[3]: the KEYS pattern of PORT, ARGV[4..]: PORT fields, then "--",
/// then the KEYS patterns of the other tables.
const READ_SCRIPT: &str = r"
local init = redis.call('GET', 'CONFIG_DB_INITIALIZED')
if not init then init = '' end
local out = {init, -1}
local n = 2
local fields = {}
local i = 4
while ARGV[i] ~= '--' do
  fields[#fields + 1] = ARGV[i]
  i = i + 1
end
for _, k in ipairs(redis.call('KEYS', ARGV[3])) do
  local h = redis.pcall('HMGET', k, unpack(fields))
  if type(h) == 'table' and h.err == nil then
    local at = n + 2
    local c = 0
    for j, v in ipairs(fields) do
      if h[j] then
        out[at + 2 * c + 1] = v
        out[at + 2 * c + 2] = h[j]
        c = c + 1
      end
    end
    out[n + 1] = k
    out[n + 2] = c
    n = n + 2 + 2 * c
  end
end
for p = i + 1, #ARGV do
  for _, k in ipairs(redis.call('KEYS', ARGV[p])) do
    local h = redis.pcall('HGETALL', k)
    if type(h) == 'table' and h.err == nil then
      out[n + 1] = k
      out[n + 2] = #h / 2
      for j = 1, #h do
        out[n + 2 + j] = h[j]
      end
      n = n + 2 + #h
    end
  end
end
if ARGV[1] ~= '' then
  redis.call('SELECT', tonumber(ARGV[1]))
  out[2] = redis.call('EXISTS', ARGV[2])
end
return out
";

/// Checks barrier conditions; returns the 1-based indices of unmet ones.
/// ARGV: groups of five: kind, db id, key, field, value.
/// Kinds: P present, G gone, F field equals, FG field gone,
/// NB no bridge port (db = COUNTERS_DB id, key = port, field = ASIC_DB id,
/// value = bridge port key pattern).
const BARRIER_SCRIPT: &str = r"
local unmet = {}
local idx = 0
for i = 1, #ARGV, 5 do
  idx = idx + 1
  local kind, db, key, field, value = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  redis.call('SELECT', tonumber(db))
  local ok = false
  if kind == 'P' then
    ok = redis.call('EXISTS', key) == 1
  elseif kind == 'G' then
    ok = redis.call('EXISTS', key) == 0
  elseif kind == 'F' then
    ok = redis.call('HGET', key, field) == value
  elseif kind == 'FG' then
    ok = redis.call('HEXISTS', key, field) == 0
  elseif kind == 'NB' then
    local oid = redis.call('HGET', 'COUNTERS_PORT_NAME_MAP', key)
    ok = true
    if oid then
      redis.call('SELECT', tonumber(field))
      for _, k in ipairs(redis.call('KEYS', value)) do
        if redis.call('HGET', k, 'SAI_BRIDGE_PORT_ATTR_PORT_ID') == oid then
          ok = false
          break
        end
      end
    end
  end
  if not ok then unmet[#unmet + 1] = idx end
end
return unmet
";

/// Barrier script arguments of one instance: (condition index, ARGV group).
type InstanceChecks = (DbLocation, Vec<(usize, Vec<String>)>);

/// A connection per instance; scripts `SELECT` the database they need.
pub struct ConfigDb {
    dbs: Databases,
    conns: BTreeMap<String, MultiplexedConnection>,
    stats: Stats,
}

async fn connect(db: &DbLocation) -> Result<MultiplexedConnection, ConfigDbError> {
    let inst: &Instance = &db.instance;
    let addr = match &inst.unix_socket_path {
        Some(p) => ConnectionAddr::Unix(p.clone()),
        None => ConnectionAddr::Tcp(inst.hostname.clone(), inst.port),
    };
    let addr_text = addr.to_string();
    let mut settings = RedisConnectionInfo::default().set_db(db.id);
    if let Some(path) = &inst.password_path {
        use crate::files::{FileKind, SECRET_MAX_BYTES, read_text};
        let pw = read_text(FileKind::RedisPassword, path, SECRET_MAX_BYTES).map_err(|source| {
            ConfigDbError::Password {
                instance: inst.name.clone(),
                source,
            }
        })?;
        settings = settings.set_password(pw.trim());
    }
    let connect_err = |source| ConfigDbError::Connect {
        db: db.name.clone(),
        instance: inst.name.clone(),
        addr: addr_text.clone(),
        source,
    };
    let info = addr
        .into_connection_info()
        .map_err(connect_err)?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(connect_err)?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(connect_err)
}

impl ConfigDb {
    /// Connect to CONFIG_DB's instance (and the others on demand).
    pub async fn connect(dbs: Databases) -> Result<ConfigDb, ConfigDbError> {
        let mut conns = BTreeMap::new();
        conns.insert(
            dbs.config.instance.name.clone(),
            connect(&dbs.config).await?,
        );
        Ok(ConfigDb {
            dbs,
            conns,
            stats: Stats::default(),
        })
    }

    pub fn databases(&self) -> &Databases {
        &self.dbs
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
    }

    async fn conn(&mut self, db: &DbLocation) -> Result<&mut MultiplexedConnection, ConfigDbError> {
        if !self.conns.contains_key(&db.instance.name) {
            let c = connect(db).await?;
            self.conns.insert(db.instance.name.clone(), c);
        }
        self.conns
            .get_mut(&db.instance.name)
            .ok_or_else(|| ConfigDbError::Reply {
                what: "connection cache".into(),
                reply: "missing".into(),
            })
    }

    /// Read the agent's tables and the readiness flags (one round trip when
    /// APPL_DB shares CONFIG_DB's instance, as on every SONiC build).
    pub async fn read(&mut self) -> Result<(DbState, Readiness), ConfigDbError> {
        let config = self.dbs.config.clone();
        let appl = self.dbs.appl.clone();
        let same_instance = appl.instance == config.instance;
        let port_init_key = format!("PORT_TABLE{}PortInitDone", appl.separator);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(READ_SCRIPT).arg(0);
        cmd.arg(if same_instance {
            appl.id.to_string()
        } else {
            String::new()
        });
        cmd.arg(&port_init_key);
        cmd.arg(format!("{}{SEP}*", Table::Port.name()));
        cmd.arg(&PORT_FIELDS[..]).arg("--");
        for t in Table::ALL.into_iter().filter(|t| *t != Table::Port) {
            cmd.arg(format!("{}{SEP}*", t.name()));
        }
        let conn = self.conn(&config).await?;
        let reply: Value = cmd
            .query_async(conn)
            .await
            .map_err(redis_err("reading CONFIG_DB"))?;
        self.stats.round_trips += 1;
        let (state, init, port_init) = parse_read_reply(reply)?;
        let port_init_done = match port_init {
            Some(v) => v,
            None => {
                let conn = self.conn(&appl).await?;
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&port_init_key)
                    .query_async(conn)
                    .await
                    .map_err(redis_err("reading APPL_DB PortInitDone"))?;
                self.stats.round_trips += 1;
                n == 1
            }
        };
        Ok((
            state,
            Readiness {
                config_db_initialized: init,
                port_init_done,
            },
        ))
    }

    /// Read until SONiC is ready (`CONFIG_DB_INITIALIZED=1`, `PortInitDone`),
    /// polling every `interval`, at most `timeout`.
    pub async fn read_when_ready(
        &mut self,
        timeout: Duration,
        interval: Duration,
    ) -> Result<DbState, ConfigDbError> {
        let start = Instant::now();
        let mut logged = false;
        loop {
            let (state, ready) = self.read().await?;
            if ready.ready() {
                return Ok(state);
            }
            if start.elapsed() >= timeout {
                return Err(ConfigDbError::NotReady {
                    waited: start.elapsed(),
                    config_db_initialized: ready.config_db_initialized,
                    port_init: if ready.port_init_done {
                        "present"
                    } else {
                        "missing"
                    },
                });
            }
            if !logged {
                tracing::info!(
                    config_db_initialized = %ready.config_db_initialized,
                    port_init_done = ready.port_init_done,
                    "waiting for SONiC to finish initialising before writing"
                );
                logged = true;
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Apply a plan phase by phase: one `MULTI/EXEC`, then the barrier.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport, ConfigDbError> {
        let mut report = ApplyReport::default();
        let config = self.dbs.config.clone();
        let before = self.stats;
        for (i, phase) in plan.phases.iter().enumerate() {
            let started = Instant::now();
            let mut pipe = redis::pipe();
            pipe.atomic();
            for c in &phase.changes {
                let key = c.key.redis_key();
                match &c.op {
                    Op::Create { fields } => {
                        pipe.cmd("HSET").arg(&key).arg(fields_args(fields)).ignore();
                    }
                    Op::Update { set, remove } => {
                        if !set.is_empty() {
                            pipe.cmd("HSET").arg(&key).arg(fields_args(set)).ignore();
                        }
                        if !remove.is_empty() {
                            pipe.cmd("HDEL").arg(&key).arg(remove).ignore();
                        }
                    }
                    Op::Delete { .. } => {
                        pipe.cmd("DEL").arg(&key).ignore();
                    }
                }
                tracing::info!(phase = i + 1, stage = ?phase.stage, change = %c, "CONFIG_DB write");
            }
            let conn = self.conn(&config).await?;
            pipe.query_async::<()>(conn)
                .await
                .map_err(redis_err(format!(
                    "writing phase {}/{}",
                    i + 1,
                    plan.phases.len()
                )))?;
            self.stats.round_trips += 1;
            self.stats.write_commands += phase.commands() as u64;
            self.stats.keys_written += phase.changes.len() as u64;
            report.write_time += started.elapsed();

            let waited = Instant::now();
            let polls_before = self.stats.barrier_polls;
            self.wait_barrier(i, plan, opts).await?;
            let barrier_wait = waited.elapsed();
            report.barrier_time += barrier_wait;
            report.phases.push(PhaseReport {
                stage: phase.stage,
                keys: phase.changes.len(),
                commands: phase.commands(),
                conditions: phase.barrier.len(),
                barrier_wait,
                barrier_polls: self.stats.barrier_polls - polls_before,
            });
        }
        report.stats = Stats {
            round_trips: self.stats.round_trips - before.round_trips,
            write_commands: self.stats.write_commands - before.write_commands,
            keys_written: self.stats.keys_written - before.keys_written,
            barrier_polls: self.stats.barrier_polls - before.barrier_polls,
        };
        Ok(report)
    }

    fn location(&self, db: Db) -> Option<&DbLocation> {
        match db {
            Db::Appl => Some(&self.dbs.appl),
            Db::State => Some(&self.dbs.state),
            Db::Counters => self.dbs.counters.as_ref(),
            Db::Asic => self.dbs.asic.as_ref(),
        }
    }

    /// Encode the conditions per instance for [`BARRIER_SCRIPT`]; conditions
    /// on databases this switch does not have (no ASIC) hold trivially.
    fn barrier_args(&self, conditions: &[Condition]) -> Vec<InstanceChecks> {
        let mut by_instance: BTreeMap<&str, InstanceChecks> = BTreeMap::new();
        for (idx, c) in conditions.iter().enumerate() {
            let args = match &c.check {
                Check::NoBridgePort => {
                    let (Some(counters), Some(asic)) =
                        (self.dbs.counters.as_ref(), self.dbs.asic.as_ref())
                    else {
                        continue;
                    };
                    if counters.instance != asic.instance {
                        continue;
                    }
                    let pattern = format!(
                        "ASIC_STATE{0}SAI_OBJECT_TYPE_BRIDGE_PORT{0}*",
                        asic.separator
                    );
                    let port = c.name.clone();
                    (
                        counters,
                        vec![
                            "NB".into(),
                            counters.id.to_string(),
                            port,
                            asic.id.to_string(),
                            pattern,
                        ],
                    )
                }
                check => {
                    let Some(loc) = self.location(c.db) else {
                        continue;
                    };
                    let key = c.redis_key(loc.separator);
                    let (kind, field, value) = match check {
                        Check::Present => ("P", String::new(), String::new()),
                        Check::Gone => ("G", String::new(), String::new()),
                        Check::FieldIs { field, value } => ("F", field.clone(), value.clone()),
                        Check::FieldGone { field } => ("FG", field.clone(), String::new()),
                        Check::NoBridgePort => continue,
                    };
                    (
                        loc,
                        vec![kind.into(), loc.id.to_string(), key, field, value],
                    )
                }
            };
            let (loc, a) = args;
            by_instance
                .entry(loc.instance.name.as_str())
                .or_insert_with(|| (loc.clone(), Vec::new()))
                .1
                .push((idx, a));
        }
        by_instance.into_values().collect()
    }

    /// Indices of the conditions that do not hold yet (one round trip per
    /// instance); `checks` comes from [`Self::barrier_args`].
    async fn unmet(&mut self, checks: &[InstanceChecks]) -> Result<Vec<usize>, ConfigDbError> {
        let mut unmet = Vec::new();
        for (loc, items) in checks {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(BARRIER_SCRIPT).arg(0);
            for (_, a) in items {
                cmd.arg(a);
            }
            let conn = self.conn(loc).await?;
            let idx: Vec<usize> = cmd
                .query_async(conn)
                .await
                .map_err(redis_err("checking a barrier"))?;
            self.stats.barrier_polls += 1;
            for i in idx {
                if let Some((orig, _)) = items.get(i.saturating_sub(1)) {
                    unmet.push(*orig);
                }
            }
        }
        unmet.sort_unstable();
        Ok(unmet)
    }

    async fn wait_barrier(
        &mut self,
        i: usize,
        plan: &Plan,
        opts: &ApplyOptions,
    ) -> Result<(), ConfigDbError> {
        let phase = &plan.phases[i];
        if phase.barrier.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut interval = opts.poll_interval;
        let checks = self.barrier_args(&phase.barrier);
        loop {
            let unmet = self.unmet(&checks).await?;
            if unmet.is_empty() {
                tracing::debug!(phase = i + 1, waited = ?start.elapsed(), "barrier confirmed");
                return Ok(());
            }
            if start.elapsed() >= opts.barrier_timeout {
                return Err(ConfigDbError::Barrier {
                    phase: i + 1,
                    phases: plan.phases.len(),
                    stage: phase.stage,
                    waited: start.elapsed(),
                    unmet: unmet
                        .into_iter()
                        .map(|u| phase.barrier[u].clone())
                        .collect(),
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(opts.max_poll_interval);
        }
    }
}

fn fields_args(fields: &Fields) -> Vec<&str> {
    fields
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()])
        .collect()
}

fn parse_read_reply(reply: Value) -> Result<(DbState, String, Option<bool>), ConfigDbError> {
    let bad = |what: &str| ConfigDbError::Reply {
        what: "reading CONFIG_DB".into(),
        reply: what.to_owned(),
    };
    let Value::Array(top) = reply else {
        return Err(bad("not an array"));
    };
    // Consume the reply: bulk strings become Strings without a copy.
    let owned = |v: Value| -> Option<String> {
        match v {
            Value::BulkString(b) => String::from_utf8(b).ok(),
            Value::SimpleString(s) => Some(s),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    };
    let mut it = top.into_iter();
    let init = it.next().and_then(owned).unwrap_or_default();
    let port_init = match it.next() {
        Some(Value::Int(-1)) => None,
        Some(Value::Int(n)) => Some(n == 1),
        _ => return Err(bad("no PortInitDone flag")),
    };
    let mut state = DbState::new();
    while let Some(k) = it.next() {
        let key = owned(k).ok_or_else(|| bad("a key is not a string"))?;
        let n = match it.next() {
            Some(Value::Int(n)) => usize::try_from(n).map_err(|_| bad("negative field count"))?,
            _ => return Err(bad("no field count")),
        };
        let mut fields = Fields::new();
        for _ in 0..n {
            let (Some(f), Some(v)) = (it.next().and_then(owned), it.next().and_then(owned)) else {
                return Err(bad("truncated entry"));
            };
            fields.insert(f, v);
        }
        if let Some(key) = Key::parse(&key) {
            state.insert(key, fields);
        }
    }
    Ok((state, init, port_init))
}
