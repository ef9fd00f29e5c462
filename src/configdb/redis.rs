//! The CONFIG_DB adapter: a live view of SONiC's databases and the applier
//! (feature `agent`).
//!
//! - Every database is located through `database_config.json`
//!   ([`Databases`]); connections and their errors are
//!   [`super::connection`]'s, shared with the feed.
//! - [`ConfigDb`] owns a [`View`] of the agent's CONFIG_DB tables, their
//!   STATE_DB / APPL_DB / COUNTERS_DB / ASIC_DB confirmations and the
//!   readiness flags, kept current by the [`Feed`] from keyspace
//!   notifications: read once in full, then only what changes.
//! - Applying a plan first waits for the confirmations SONiC still owes
//!   (`plan.pending`), then writes each phase in one round trip as
//!   `MULTI/EXEC` transactions of bounded size, applies it to the view,
//!   and waits for the phase's barrier in the view — woken by
//!   notifications, never by polling (a re-read of the unmet keys every two
//!   seconds without progress is the only fallback). A timeout names what is
//!   missing; nothing after it is written.
//! - [`Stats`] counts round trips and commands.

use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::confirmed::rif_field_key;
use super::confirms::{Check, Condition, Db, PORT_NAME_MAP, RIF_NAME_MAP};
// Kept under this path too: the adapter's error is what callers handle.
pub use super::connection::ConfigDbError;
use super::connection::{check_passwords, connect_instance};
use super::dbconfig::Databases;
use super::diff::{Change, Op};
use super::feed::{Feed, FeedEvent, FeedOptions};
use super::plan::{Phase, Plan, Stage};
use super::schema::{DbState, Fields};
pub use super::view::Readiness;
use super::view::{Changed, View};

/// Round trips and commands sent to redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Round trips to redis: full reads, re-reads after notifications,
    /// sync markers and writes.
    pub round_trips: u64,
    /// Write commands sent (`HSET`, `HDEL`, `DEL`; `MULTI`/`EXEC` excluded).
    pub write_commands: u64,
    /// Keys written (created, updated or deleted).
    pub keys_written: u64,
    /// Notifications that woke a waiting barrier.
    pub barrier_polls: u64,
}

/// A hook called with a phase's number (1-based) and stage.
pub type PhaseHook = std::sync::Arc<dyn Fn(usize, Stage) + Send + Sync>;

/// How applying behaves.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Longest wait for what SONiC still owes, for a phase's precondition
    /// and for its barrier (each).
    pub barrier_timeout: Duration,
    /// Called before a phase's precondition is checked.
    pub before_phase: Option<PhaseHook>,
    /// Called right after a phase was written, before its barrier.
    pub after_write: Option<PhaseHook>,
    /// When it turns true (shutdown), no further write starts and waits end.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl std::fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("barrier_timeout", &self.barrier_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            barrier_timeout: Duration::from_secs(30),
            before_phase: None,
            after_write: None,
            stop: None,
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
    /// Wall time spent waiting for barriers and preconditions.
    #[serde(with = "duration_micros")]
    pub barrier_time: Duration,
    /// Wall time spent waiting for confirmations SONiC owed before the
    /// first write.
    #[serde(with = "duration_micros")]
    pub pending_wait: Duration,
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

/// The agent's handle on SONiC's databases: the [`View`] kept current by the
/// [`Feed`], and a connection for writes.
pub struct ConfigDb {
    dbs: Databases,
    feed: Feed,
    view: View,
    /// Whether the feed has delivered a snapshot since it last lost redis.
    connected: bool,
    /// Why the feed last lost redis.
    lost: Option<String>,
    writer: Option<MultiplexedConnection>,
    stats: Stats,
    /// The feed's round trips at the last [`ConfigDb::reset_stats`].
    feed_base: u64,
    /// Keys written since the last [`ConfigDb::settle_writes`].
    written: Vec<String>,
    /// What changed since [`ConfigDb::take_changed`] was last called.
    changed: Changed,
}

/// How often a barrier that sees no progress re-reads its keys (the
/// fallback when a notification was lost).
const REREAD_EVERY: Duration = Duration::from_secs(2);

/// Why a wait ended without its conditions.
enum WaitEnd<'c> {
    Timeout(Vec<&'c Condition>),
    Stopped,
}

/// What a wait is for, for its error.
#[derive(Debug, Clone, Copy)]
enum Waiting {
    Pending,
    Precondition { phase: usize },
    Barrier { phase: usize },
}

/// The wait's crash point (`configdb.<this>`, see `crate::crash`).
impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Waiting::Pending => f.write_str("pending"),
            Waiting::Precondition { phase } => write!(f, "phase.{phase}.precondition"),
            Waiting::Barrier { phase } => write!(f, "phase.{phase}.barrier"),
        }
    }
}

impl ConfigDb {
    /// Start following SONiC's databases and wait (at most `timeout`) for
    /// the first full read. A `password_path` that cannot be used is
    /// refused first ([`ConfigDbError::Password`], invalid input).
    pub async fn connect_within(
        dbs: Databases,
        timeout: Duration,
    ) -> Result<ConfigDb, ConfigDbError> {
        check_passwords(&dbs)?;
        let mut db = ConfigDb::start(dbs);
        let deadline = Instant::now() + timeout;
        while !db.connected {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, db.feed.recv()).await {
                Ok(Some(ev)) => db.on_event(ev),
                Ok(None) => return Err(db.unavailable()),
                Err(_) => return Err(db.unavailable()),
            }
            if !db.connected && db.lost.is_some() {
                return Err(db.unavailable());
            }
        }
        Ok(db)
    }

    /// [`ConfigDb::connect_within`] ten seconds.
    pub async fn connect(dbs: Databases) -> Result<ConfigDb, ConfigDbError> {
        ConfigDb::connect_within(dbs, Duration::from_secs(10)).await
    }

    /// Start following SONiC's databases without waiting: the daemon keeps
    /// running while redis is away, and the view fills once it is back.
    pub fn start(dbs: Databases) -> ConfigDb {
        let feed = Feed::start(dbs.clone(), FeedOptions::default());
        ConfigDb {
            dbs,
            feed,
            view: View::default(),
            connected: false,
            lost: None,
            writer: None,
            stats: Stats::default(),
            feed_base: 0,
            written: Vec::new(),
            changed: Changed::default(),
        }
    }

    fn unavailable(&self) -> ConfigDbError {
        ConfigDbError::Unavailable {
            instance: self.dbs.config.instance.name.clone(),
            reason: self
                .lost
                .clone()
                .unwrap_or_else(|| "no answer from redis".into()),
        }
    }

    pub fn databases(&self) -> &Databases {
        &self.dbs
    }

    /// The current view (as current as the events processed so far).
    pub fn view(&self) -> &View {
        &self.view
    }

    /// Whether redis is reachable and the view is filled.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Round trips and commands so far (the feed's reads included).
    pub fn stats(&self) -> Stats {
        Stats {
            round_trips: self.stats.round_trips + self.feed.round_trips() - self.feed_base,
            ..self.stats
        }
    }

    /// Entries with bytes that are not UTF-8 read so far ([`super::reply`]).
    pub fn undecodable(&self) -> super::reply::Undecodable {
        self.feed.undecodable()
    }

    pub fn reset_stats(&mut self) {
        self.stats = Stats::default();
        self.feed_base = self.feed.round_trips();
    }

    /// What changed in the view since the last call.
    pub fn take_changed(&mut self) -> Changed {
        std::mem::take(&mut self.changed)
    }

    fn on_event(&mut self, ev: FeedEvent) {
        match ev {
            FeedEvent::Snapshot(view) => {
                let version = self.view.version.max(view.version) + 1;
                let config_version = self.view.config_version.max(view.config_version) + 1;
                self.view = *view;
                self.view.version = version;
                self.view.config_version = config_version;
                self.view.journal.reset(version);
                self.connected = true;
                self.lost = None;
                self.changed.merge(Changed {
                    config: true,
                    confirmed: true,
                    readiness: true,
                });
            }
            FeedEvent::Updates(updates) => {
                for u in updates {
                    let c = self.view.apply(u);
                    self.changed.merge(c);
                }
            }
            FeedEvent::Synced(_) => {}
            FeedEvent::Lost(reason) => {
                if self.connected {
                    tracing::warn!(%reason, "lost SONiC's redis; keeping the last known state");
                }
                self.connected = false;
                self.lost = Some(reason);
                self.writer = None;
                self.changed.readiness = true;
            }
        }
    }

    /// Apply every event that is already here; returns whether any was.
    pub fn pump(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.feed.try_recv() {
            self.on_event(ev);
            any = true;
        }
        any
    }

    /// Wait for the next event and apply it (for the daemon's `select!`).
    /// `None` when the feed stopped.
    pub async fn next_event(&mut self) -> Option<()> {
        let ev = self.feed.recv().await?;
        self.on_event(ev);
        self.pump();
        Some(())
    }

    /// Wait until the view holds every change redis made before this call
    /// (at most `timeout`).
    pub async fn sync(&mut self, timeout: Duration) -> Result<(), ConfigDbError> {
        let token = self.feed.sync();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.feed.recv()).await {
                Ok(Some(FeedEvent::Synced(t))) if t >= token => {
                    return if self.connected {
                        Ok(())
                    } else {
                        Err(self.unavailable())
                    };
                }
                Ok(Some(ev)) => self.on_event(ev),
                Ok(None) | Err(_) => return Err(self.unavailable()),
            }
        }
    }

    /// The current CONFIG_DB tables and readiness flags, synced first.
    pub async fn read(&mut self) -> Result<(DbState, Readiness), ConfigDbError> {
        self.sync(Duration::from_secs(10)).await?;
        Ok((self.view.config.clone(), self.view.readiness.clone()))
    }

    /// Read every watched value that changed since it was last read (one
    /// round trip when there are any), and wait until the view has them.
    pub async fn refresh(&mut self, timeout: Duration) -> Result<(), ConfigDbError> {
        self.refresh_for(None, timeout).await
    }

    /// [`ConfigDb::refresh`], but of the router-interface map, when it
    /// changed since it was read, only the fields of `ifnames` not read
    /// since (`None`: the whole map). A plan narrowed to a few interfaces
    /// asks about no other, and the map holds every router interface of
    /// the switch.
    pub async fn refresh_for(
        &mut self,
        ifnames: Option<&[String]>,
        timeout: Duration,
    ) -> Result<(), ConfigDbError> {
        self.pump();
        let mut keys = self.view.confirmed.unread();
        if let Some(ifnames) = ifnames {
            let whole = (Db::Counters, RIF_NAME_MAP.to_owned());
            if let Some(i) = keys.iter().position(|k| *k == whole) {
                keys.swap_remove(i);
                let confirmed = &self.view.confirmed;
                keys.extend(
                    ifnames
                        .iter()
                        .filter(|n| confirmed.has_rif(n).is_none())
                        .map(|n| (Db::Counters, rif_field_key(n))),
                );
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.feed.reread(keys);
        self.sync(timeout).await
    }

    /// Wait until SONiC is ready (`CONFIG_DB_INITIALIZED=1`, `PortInitDone`),
    /// at most `timeout`; woken by notifications, not by polling.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), ConfigDbError> {
        let start = Instant::now();
        let deadline = start + timeout;
        if !(self.connected && self.view.readiness.ready()) {
            self.sync(timeout).await?;
        }
        let mut logged = false;
        loop {
            if self.connected && self.view.readiness.ready() {
                return Ok(());
            }
            if !logged {
                tracing::info!(
                    config_db_initialized = %self.view.readiness.config_db_initialized,
                    port_init_done = self.view.readiness.port_init_done,
                    "waiting for SONiC to finish initialising before writing"
                );
                logged = true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.feed.recv()).await {
                Ok(Some(ev)) => self.on_event(ev),
                Ok(None) => return Err(self.unavailable()),
                Err(_) => {
                    let r = &self.view.readiness;
                    return Err(ConfigDbError::NotReady {
                        waited: start.elapsed(),
                        config_db_initialized: r.config_db_initialized.clone(),
                        port_init: if r.port_init_done {
                            "present"
                        } else {
                            "missing"
                        },
                    });
                }
            }
        }
    }

    /// Wait until SONiC is ready, then return CONFIG_DB (compatibility with
    /// the one-shot commands; `_interval` is unused: waiting is event-driven).
    pub async fn read_when_ready(
        &mut self,
        timeout: Duration,
        _interval: Duration,
    ) -> Result<DbState, ConfigDbError> {
        self.wait_ready(timeout).await?;
        Ok(self.view.config.clone())
    }

    /// Wait until every condition holds in the view. Woken by notifications;
    /// re-reads the keys of unmet conditions every [`REREAD_EVERY`] without
    /// progress, as a fallback. Returns the unmet conditions on timeout.
    async fn wait_for<'c>(
        &mut self,
        conditions: &'c [Condition],
        timeout: Duration,
        mut stop: Option<tokio::sync::watch::Receiver<bool>>,
        what: Waiting,
    ) -> Result<u64, WaitEnd<'c>> {
        let deadline = Instant::now() + timeout;
        let mut reread_at = Instant::now() + REREAD_EVERY;
        let mut wakeups = 0u64;
        let mut asked_at: Option<u64> = None;
        // The keys once; then only the conditions that do not hold yet are
        // checked again (barriers are met one key at a time).
        let keys: Vec<String> = conditions
            .iter()
            .map(|c| self.view.confirmed.key_of(c))
            .collect();
        let mut open: Vec<usize> = (0..conditions.len()).collect();
        let unmet = |open: &[usize]| -> Vec<&'c Condition> {
            open.iter().map(|&i| &conditions[i]).collect()
        };
        loop {
            self.pump();
            if self.connected {
                let confirmed = &self.view.confirmed;
                open.retain(|&i| confirmed.check_at(&conditions[i], &keys[i]) != Some(true));
                // Conditions are not all monotonic (a key can come and go):
                // confirm the whole barrier once before leaving.
                if open.is_empty() {
                    open = (0..conditions.len())
                        .filter(|&i| confirmed.check_at(&conditions[i], &keys[i]) != Some(true))
                        .collect();
                    if open.is_empty() {
                        return Ok(wakeups);
                    }
                }
            }
            // Conditions that depend on fields not read since they changed:
            // read them (once per change of the view).
            if asked_at != Some(self.view.version) {
                asked_at = Some(self.view.version);
                let keys = self.view.to_read(open.iter().map(|&i| &conditions[i]));
                if !keys.is_empty() {
                    self.feed.reread(keys);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitEnd::Timeout(unmet(&open)));
            }
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                return Err(WaitEnd::Stopped);
            }
            if now >= reread_at {
                self.reread(&unmet(&open));
                reread_at = now + REREAD_EVERY;
            }
            crate::crash_point!("configdb.{}", what);
            let until = deadline.min(reread_at);
            let stopped = async {
                match stop.as_mut() {
                    Some(s) => {
                        let _ = s.wait_for(|v| *v).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                ev = tokio::time::timeout_at(until.into(), self.feed.recv()) => match ev {
                    Ok(Some(ev)) => {
                        wakeups += 1;
                        self.on_event(ev);
                    }
                    Ok(None) => return Err(WaitEnd::Timeout(unmet(&open))),
                    Err(_) => {}
                },
                () = stopped => return Err(WaitEnd::Stopped),
            }
        }
    }

    /// Ask the feed to re-read the keys behind these conditions.
    fn reread(&self, conditions: &[&Condition]) {
        let seps = self.view.confirmed.separators();
        let keys: Vec<(Db, String)> = conditions
            .iter()
            .map(|c| match (&c.check, c.db) {
                (Check::NoBridgePort, _) => (Db::Counters, PORT_NAME_MAP.to_owned()),
                (_, db) => (db, c.redis_key(seps.of(db))),
            })
            .collect();
        self.feed.reread(keys);
    }

    /// Write one phase in one round trip and apply it to the view.
    ///
    /// Each entry is written atomically, as SONiC's consumers need (they
    /// read the whole hash when they get to a key, sonic-configdb reference
    /// §2.2): one `HSET` or `DEL`, or `MULTI; HSET; HDEL; EXEC` when fields
    /// go too. A phase is not
    /// one transaction: redis runs a transaction as one step (nothing else runs
    /// until `EXEC` is done, and `SLOWLOG` lists its commands, not the `EXEC`),
    /// so a phase of thousands of entries would stop SONiC's daemons for
    /// milliseconds. Entries of one phase never depend on each other (that is
    /// what phases and barriers are for; an `INTERFACE` waits for its port's
    /// bridge port in every plan, [`Phase::preconditions`]), so SONiC seeing
    /// them one after the other is one of the orders it processes them in
    /// anyway, and a phase cut short by a crash is finished by the next plan.
    /// All of a phase's commands go in one round trip.
    async fn write_phase(&mut self, phase: &Phase, label: &str) -> Result<(), ConfigDbError> {
        let started = Instant::now();
        let mut pipe = redis::pipe();
        let mut expected: Vec<(String, u32)> = Vec::with_capacity(phase.changes.len());
        let mut transactions = 0usize;
        for c in &phase.changes {
            let key = c.key.redis_key();
            let exists = self.view.config.contains(&c.key);
            let events = match &c.op {
                Op::Create { fields } => {
                    pipe.cmd("HSET").arg(&key).arg(fields_args(fields)).ignore();
                    1
                }
                Op::Update { set, remove } if !set.is_empty() && !remove.is_empty() => {
                    pipe.cmd("MULTI").ignore();
                    pipe.cmd("HSET").arg(&key).arg(fields_args(set)).ignore();
                    pipe.cmd("HDEL").arg(&key).arg(remove).ignore();
                    // The one reply read: the transaction's results.
                    pipe.cmd("EXEC");
                    transactions += 1;
                    2
                }
                Op::Update { set, remove } => {
                    if !set.is_empty() {
                        pipe.cmd("HSET").arg(&key).arg(fields_args(set)).ignore();
                    }
                    if !remove.is_empty() {
                        pipe.cmd("HDEL").arg(&key).arg(remove).ignore();
                    }
                    u32::from(!set.is_empty()) + u32::from(!remove.is_empty())
                }
                Op::Delete { .. } => {
                    pipe.cmd("DEL").arg(&key).ignore();
                    u32::from(exists)
                }
            };
            if events > 0 {
                expected.push((key, events));
            }
            tracing::debug!(phase = label, change = %c, "CONFIG_DB write");
        }
        let keys: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
        self.feed.expect(expected);
        let result = match self.writer_conn().await {
            Ok(conn) => pipe
                .query_async::<Vec<Value>>(conn)
                .await
                .map_err(|source| ConfigDbError::Redis {
                    what: format!("writing phase {label}"),
                    source,
                })
                .and_then(|execs| check_transactions(&execs, transactions, label)),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // Unknown whether it was applied: read the keys back.
            self.writer = None;
            self.feed.unexpect(keys.iter().cloned());
            self.feed.reread_config(keys);
            return Err(e);
        }
        self.stats.round_trips += 1;
        self.stats.write_commands += phase.commands() as u64;
        self.stats.keys_written += phase.changes.len() as u64;
        for c in &phase.changes {
            apply_to_state(&mut self.view.config, c);
        }
        self.view.version += 1;
        self.view.config_version += 1;
        for c in &phase.changes {
            self.view.wrote(c.key.clone());
        }
        self.changed.config = true;
        self.written.extend(keys);
        tracing::info!(
            phase = label,
            stage = ?phase.stage,
            keys = phase.changes.len(),
            commands = phase.commands(),
            transactions,
            took = ?started.elapsed(),
            "CONFIG_DB phase written"
        );
        Ok(())
    }

    /// After the last write of an apply: once synced, every notification of
    /// the writes has reached the feed; forget the expectations none
    /// consumed (a DEL of a key already gone causes no notification).
    async fn settle_writes(&mut self) -> Result<(), ConfigDbError> {
        if self.written.is_empty() {
            return Ok(());
        }
        let synced = self.sync(Duration::from_secs(10)).await;
        let keys = std::mem::take(&mut self.written);
        self.feed.unexpect(keys);
        synced
    }

    async fn writer_conn(&mut self) -> Result<&mut MultiplexedConnection, ConfigDbError> {
        if self.writer.is_none() {
            self.writer = Some(connect_instance(&self.dbs.config).await?);
        }
        self.writer.as_mut().ok_or_else(|| ConfigDbError::Reply {
            what: "connection".into(),
            reply: "missing".into(),
        })
    }

    /// Apply a plan: wait for what SONiC still owes (`plan.pending`), then per
    /// phase check its preconditions, write it (bounded `MULTI/EXEC`
    /// transactions, one round trip) and wait for its barrier. Every wait is woken by notifications and limited by
    /// `opts.barrier_timeout`; a timeout names what is missing, and nothing
    /// after it is written.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport, ConfigDbError> {
        let result = self.apply_phases(plan, opts).await;
        let settled = self.settle_writes().await;
        let mut report = result?;
        settled?;
        report.stats = self.stats_since(&report.stats);
        Ok(report)
    }

    /// Counters since `before` (a snapshot of [`ConfigDb::stats`]).
    fn stats_since(&self, before: &Stats) -> Stats {
        let after = self.stats();
        Stats {
            round_trips: after.round_trips - before.round_trips,
            write_commands: after.write_commands - before.write_commands,
            keys_written: after.keys_written - before.keys_written,
            barrier_polls: after.barrier_polls - before.barrier_polls,
        }
    }

    async fn apply_phases(
        &mut self,
        plan: &Plan,
        opts: &ApplyOptions,
    ) -> Result<ApplyReport, ConfigDbError> {
        let mut report = ApplyReport::default();
        let before = self.stats();
        if !self.connected {
            return Err(self.unavailable());
        }
        if !plan.pending.is_empty() {
            let waited = Instant::now();
            self.wait(&plan.pending, opts, plan, Waiting::Pending)
                .await?;
            report.pending_wait = waited.elapsed();
            tracing::info!(
                conditions = plan.pending.len(),
                waited = ?report.pending_wait,
                "SONiC confirmed what CONFIG_DB already held"
            );
        }
        let n = plan.phases.len();
        for (i, phase) in plan.phases.iter().enumerate() {
            if let Some(hook) = &opts.before_phase {
                hook(i + 1, phase.stage);
            }
            let waited = Instant::now();
            self.wait(
                &phase.preconditions,
                opts,
                plan,
                Waiting::Precondition { phase: i + 1 },
            )
            .await?;
            report.barrier_time += waited.elapsed();
            if opts.stop.as_ref().is_some_and(|s| *s.borrow()) {
                return Err(ConfigDbError::Stopped);
            }
            crate::crash_point!("configdb.phase.{}.before-write", i + 1);
            let started = Instant::now();
            self.write_phase(phase, &format!("{}/{n}", i + 1)).await?;
            report.write_time += started.elapsed();
            crate::crash_point!("configdb.phase.{}.after-write", i + 1);
            if let Some(hook) = &opts.after_write {
                hook(i + 1, phase.stage);
            }
            let waited = Instant::now();
            let wakeups = self
                .wait(
                    &phase.barrier,
                    opts,
                    plan,
                    Waiting::Barrier { phase: i + 1 },
                )
                .await?;
            let barrier_wait = waited.elapsed();
            tracing::debug!(phase = i + 1, waited = ?barrier_wait, "barrier confirmed");
            report.barrier_time += barrier_wait;
            report.phases.push(PhaseReport {
                stage: phase.stage,
                keys: phase.changes.len(),
                commands: phase.commands(),
                conditions: phase.barrier.len(),
                barrier_wait,
                barrier_polls: wakeups,
            });
        }
        // `apply` turns this into the counters of the apply.
        report.stats = before;
        Ok(report)
    }

    async fn wait(
        &mut self,
        conditions: &[Condition],
        opts: &ApplyOptions,
        plan: &Plan,
        what: Waiting,
    ) -> Result<u64, ConfigDbError> {
        if conditions.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        match self
            .wait_for(conditions, opts.barrier_timeout, opts.stop.clone(), what)
            .await
        {
            Ok(w) => {
                self.stats.barrier_polls += w;
                Ok(w)
            }
            Err(WaitEnd::Stopped) => Err(ConfigDbError::Stopped),
            Err(WaitEnd::Timeout(unmet)) => {
                let unmet: Vec<Condition> = unmet.into_iter().cloned().collect();
                let waited = started.elapsed();
                let phases = plan.phases.len();
                Err(match what {
                    Waiting::Pending => ConfigDbError::Pending { waited, unmet },
                    Waiting::Precondition { phase } => ConfigDbError::Precondition {
                        phase,
                        phases,
                        waited,
                        unmet,
                    },
                    Waiting::Barrier { phase } => ConfigDbError::Barrier {
                        phase,
                        phases,
                        stage: plan.phases[phase - 1].stage,
                        waited,
                        unmet,
                    },
                })
            }
        }
    }
}

/// Apply one written change to an in-memory CONFIG_DB.
pub fn apply_to_state(state: &mut DbState, c: &Change) {
    match &c.op {
        Op::Create { fields } => state.insert(c.key.clone(), fields.clone()),
        Op::Update { set, remove } => {
            let entry = match state.get_mut(&c.key) {
                Some(e) => e,
                None => {
                    state.insert(c.key.clone(), Fields::new());
                    match state.get_mut(&c.key) {
                        Some(e) => e,
                        None => return,
                    }
                }
            };
            for (k, v) in set.iter() {
                entry.insert(k.clone(), v.clone());
            }
            for k in remove {
                entry.remove(k);
            }
            if entry.is_empty() {
                state.remove(&c.key);
            }
        }
        Op::Delete { .. } => {
            state.remove(&c.key);
        }
    }
}

/// Every `EXEC` of a phase ran: `n` arrays without an error in them (a
/// queued command that failed, e.g. on a key of another type, is an error
/// inside its transaction's array; the other commands still ran). An error
/// of a command outside a transaction fails the whole reply.
fn check_transactions(execs: &[Value], n: usize, label: &str) -> Result<(), ConfigDbError> {
    let reply = |r: String| ConfigDbError::Reply {
        what: format!("writing phase {label}"),
        reply: r,
    };
    if execs.len() != n {
        return Err(reply(format!(
            "{} transaction results for {n}",
            execs.len()
        )));
    }
    for v in execs {
        match v {
            Value::Array(items) => {
                if let Some(e) = items.iter().find(|i| matches!(i, Value::ServerError(_))) {
                    return Err(reply(format!("{e:?}")));
                }
            }
            other => return Err(reply(format!("{other:?}"))),
        }
    }
    Ok(())
}

fn fields_args(fields: &Fields) -> Vec<&str> {
    fields
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()])
        .collect()
}
