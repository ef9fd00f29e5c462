//! The feed: keeps a [`View`] of SONiC's databases current from keyspace
//! notifications (feature `agent`).
//!
//! SONiC's redis publishes every change (`notify-keyspace-events AKE`,
//! sonic-configdb reference §1.3). The feed subscribes to the keys the agent
//! watches — its CONFIG_DB tables and `CONFIG_DB_INITIALIZED`, the STATE_DB
//! and APPL_DB confirmations, `PortInitDone`, the COUNTERS_DB name maps and
//! the ASIC_DB bridge ports — *before* it reads them once in full, then turns
//! each notification into an [`Update`] carrying the key's current value:
//!
//! - SONiC's confirmations are updated from the event itself (`hset` →
//!   present with its fields unread, `del` → gone); their fields are read
//!   only when a decision needs them ([`Feed::reread`]), many keys per round
//!   trip (one script per redis instance, loaded once, called by `EVALSHA`);
//! - CONFIG_DB keys changed by someone else are read at once (drift);
//! - the agent's own CONFIG_DB writes are announced before they are sent
//!   ([`Feed::expect`]) and their notifications are not re-read; the agent
//!   applies them to its view itself;
//! - `config reload` and swss restarts flush databases without notifying:
//!   every re-read also reads the readiness flags, and when
//!   `CONFIG_DB_INITIALIZED` is set again or `PortInitDone` reappears the
//!   feed reads everything anew ([`FeedEvent::Snapshot`]);
//! - a lost connection is reported ([`FeedEvent::Lost`]), retried with
//!   backoff and followed by a full read.
//!
//! [`Feed::sync`] asks for a marker after everything redis published so far:
//! once [`FeedEvent::Synced`] arrives, the view reflects every write that
//! completed before the request. The bridge ports of ASIC_DB are listed once
//! per full read with `SCAN` (never `KEYS`: ASIC_DB holds every route) and
//! then followed by notifications.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{SelectAll, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::{Msg, Script, Value};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::confirmed::{Confirmed, RIF_FIELD_SEP, Separators, Watched};
use super::confirms::{self, BRIDGE_PORT_FIELD, Db, PORT_NAME_MAP, RIF_NAME_MAP};
use super::connection::{ConfigDbError, connect_instance, pubsub_instance};
use super::dbconfig::{Databases, DbLocation, Instance};
use super::schema::{DbState, Fields, Key, PORT_FIELDS, SEP, Table};
use super::view::{CONFIG_DB_INITIALIZED, Readiness, Update, View};

/// What the feed reports.
#[derive(Debug)]
pub enum FeedEvent {
    /// A full, consistent read: at start, after a reconnect, after
    /// `config reload` or a swss restart. Replaces the view.
    Snapshot(Box<View>),
    /// Current values of keys that changed, in notification order.
    Updates(Vec<Update>),
    /// Everything redis published before [`Feed::sync`] returned this token
    /// is in the updates sent so far.
    Synced(u64),
    /// The connection to redis broke; a snapshot follows once it is back.
    Lost(String),
}

/// Where a key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    Config,
    Other(Db),
}

/// Requests from the agent.
#[derive(Debug)]
enum Ctl {
    Sync(u64),
    /// Re-read these keys (the slow fallback of a barrier wait).
    Reread(Vec<(Src, String)>),
}

/// The agent's handle; dropping it stops the feed.
pub struct Feed {
    events: mpsc::UnboundedReceiver<FeedEvent>,
    ctl: mpsc::UnboundedSender<Ctl>,
    expected: Expected,
    next_token: u64,
    round_trips: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The agent's own CONFIG_DB writes whose notifications are not re-read:
/// redis key → number of notifications still to come.
#[derive(Debug, Clone, Default)]
struct Expected(Arc<Mutex<FxHashMap<String, u32>>>);

impl Expected {
    fn lock(&self) -> MutexGuard<'_, FxHashMap<String, u32>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Consume one expected notification of `key`; false when none was expected.
    fn take(&self, key: &str) -> bool {
        let mut m = self.lock();
        match m.get_mut(key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                m.remove(key);
                true
            }
            None => false,
        }
    }
}

/// Timing of reconnects.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl Feed {
    /// Start following the databases; the first event is a snapshot (or
    /// `Lost` while redis is unreachable).
    pub fn start(dbs: Databases, opts: FeedOptions) -> Feed {
        let (tx, events) = mpsc::unbounded_channel();
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let expected = Expected::default();
        let round_trips = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(
            dbs,
            opts,
            tx,
            ctl_rx,
            expected.clone(),
            round_trips.clone(),
        ));
        Feed {
            events,
            ctl,
            expected,
            next_token: 0,
            round_trips,
            task,
        }
    }

    /// Round trips the feed made so far (full reads, re-reads, sync pings).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The next event; `None` when the feed stopped.
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        self.events.recv().await
    }

    /// An event if one is ready.
    pub fn try_recv(&mut self) -> Option<FeedEvent> {
        self.events.try_recv().ok()
    }

    /// Ask for a [`FeedEvent::Synced`] after everything published so far.
    pub fn sync(&mut self) -> u64 {
        self.next_token += 1;
        let _ = self.ctl.send(Ctl::Sync(self.next_token));
        self.next_token
    }

    /// Re-read CONFIG_DB keys (full redis keys).
    pub fn reread_config(&self, keys: impl IntoIterator<Item = String>) {
        let keys: Vec<_> = keys.into_iter().map(|k| (Src::Config, k)).collect();
        if !keys.is_empty() {
            let _ = self.ctl.send(Ctl::Reread(keys));
        }
    }

    /// Re-read watched keys of other databases (full redis keys).
    pub fn reread(&self, keys: impl IntoIterator<Item = (Db, String)>) {
        let keys: Vec<_> = keys.into_iter().map(|(d, k)| (Src::Other(d), k)).collect();
        if !keys.is_empty() {
            let _ = self.ctl.send(Ctl::Reread(keys));
        }
    }

    /// Announce the agent's own CONFIG_DB writes (redis key, number of
    /// notifications they cause) before sending them.
    pub fn expect(&self, writes: impl IntoIterator<Item = (String, u32)>) {
        let mut m = self.expected.lock();
        for (k, n) in writes {
            *m.entry(k).or_default() += n;
        }
    }

    /// Forget announced writes that did not happen (the write failed).
    pub fn unexpect(&self, keys: impl IntoIterator<Item = String>) {
        let mut m = self.expected.lock();
        for k in keys {
            m.remove(&k);
        }
    }
}

/// Reads every entry of the watched keys of one instance, as one flat array
/// of `group, key, n, f1, v1, …`. ARGV: groups of three: db id, kind, arg.
/// Kinds: K every key of a KEYS pattern with all fields; P the same with the
/// fields named after `--` at the end (PORT); H one hash; G one string;
/// E one key's existence (n = 0).
const SNAPSHOT_SCRIPT: &str = r"
local out = {}
local n = 0
local ngroups = 0
local port_fields = {}
local last = #ARGV
for i = 1, #ARGV do
  if ARGV[i] == '--' then
    for j = i + 1, #ARGV do port_fields[#port_fields + 1] = ARGV[j] end
    last = i - 1
    break
  end
end
local function emit(g, k, h)
  out[n + 1] = g
  out[n + 2] = k
  out[n + 3] = #h / 2
  for j = 1, #h do out[n + 3 + j] = h[j] end
  n = n + 3 + #h
end
for i = 1, last, 3 do
  local g = (i + 2) / 3
  redis.call('SELECT', tonumber(ARGV[i]))
  local kind, arg = ARGV[i + 1], ARGV[i + 2]
  if kind == 'K' or kind == 'P' then
    for _, k in ipairs(redis.call('KEYS', arg)) do
      if kind == 'K' then
        local h = redis.pcall('HGETALL', k)
        if type(h) == 'table' and h.err == nil then emit(g, k, h) end
      else
        local h = redis.pcall('HMGET', k, unpack(port_fields))
        if type(h) == 'table' and h.err == nil then
          local pairs_ = {}
          for j, f in ipairs(port_fields) do
            if h[j] then
              pairs_[#pairs_ + 1] = f
              pairs_[#pairs_ + 1] = h[j]
            end
          end
          emit(g, k, pairs_)
        end
      end
    end
  elseif kind == 'H' then
    local h = redis.pcall('HGETALL', arg)
    if type(h) == 'table' and h.err == nil and #h > 0 then emit(g, arg, h) end
  elseif kind == 'G' then
    local v = redis.pcall('GET', arg)
    if type(v) == 'string' then emit(g, arg, {'value', v}) end
  elseif kind == 'E' then
    if redis.call('EXISTS', arg) == 1 then emit(g, arg, {}) end
  end
end
return out
";

/// Re-reads keys of one instance. ARGV: groups of four: db id, kind, key,
/// field. Returns one element per group: 0 when the key (or field) does not
/// exist, else H: the hash as a flat array; G: the string; E: 1; F: the
/// field's value.
const REREAD_SCRIPT: &str = r"
local out = {}
for i = 1, #ARGV, 4 do
  redis.call('SELECT', tonumber(ARGV[i]))
  local kind, key, field = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local r = 0
  if kind == 'H' then
    local h = redis.pcall('HGETALL', key)
    if type(h) == 'table' and h.err == nil and #h > 0 then r = h end
  elseif kind == 'G' then
    local v = redis.pcall('GET', key)
    if type(v) == 'string' then r = v end
  elseif kind == 'E' then
    r = redis.call('EXISTS', key)
  elseif kind == 'F' then
    local v = redis.pcall('HGET', key, field)
    if type(v) == 'string' then r = v end
  end
  out[#out + 1] = r
end
return out
";

/// How a watched key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Hash,
    String,
    Exists,
    Field(&'static str),
    /// One field of `COUNTERS_RIF_NAME_MAP` (the key of
    /// [`rif_field_key`](super::confirmed::rif_field_key)).
    RifField,
}

impl Read {
    fn kind(self) -> &'static str {
        match self {
            Read::Hash => "H",
            Read::String => "G",
            Read::Exists => "E",
            Read::Field(_) | Read::RifField => "F",
        }
    }
}

/// The databases and their roles, as the feed needs them.
#[derive(Debug, Clone)]
struct Layout {
    dbs: Databases,
    seps: Separators,
    /// Distinct instances, in a fixed order.
    instances: Vec<Instance>,
    port_init_key: String,
}

impl Layout {
    fn new(dbs: Databases) -> Layout {
        let seps = Separators {
            appl: dbs.appl.separator,
            state: dbs.state.separator,
            counters: dbs
                .counters
                .as_ref()
                .map_or(Db::Counters.default_separator(), |d| d.separator),
            asic: dbs
                .asic
                .as_ref()
                .map_or(Db::Asic.default_separator(), |d| d.separator),
        };
        let mut instances: Vec<Instance> = Vec::new();
        for loc in [Some(&dbs.config), Some(&dbs.appl), Some(&dbs.state)]
            .into_iter()
            .chain([dbs.counters.as_ref(), dbs.asic.as_ref()])
            .flatten()
        {
            if !instances.contains(&loc.instance) {
                instances.push(loc.instance.clone());
            }
        }
        let port_init_key = format!("PORT_TABLE{}PortInitDone", dbs.appl.separator);
        Layout {
            dbs,
            seps,
            instances,
            port_init_key,
        }
    }

    fn location(&self, src: Src) -> Option<&DbLocation> {
        match src {
            Src::Config => Some(&self.dbs.config),
            Src::Other(Db::Appl) => Some(&self.dbs.appl),
            Src::Other(Db::State) => Some(&self.dbs.state),
            Src::Other(Db::Counters) => self.dbs.counters.as_ref(),
            Src::Other(Db::Asic) => self.dbs.asic.as_ref(),
        }
    }

    fn instance_index(&self, src: Src) -> Option<usize> {
        let loc = self.location(src)?;
        self.instances.iter().position(|i| *i == loc.instance)
    }

    /// The databases (and their roles) of one instance.
    fn srcs_of(&self, instance: usize) -> Vec<(Src, i64)> {
        let all = [
            Src::Config,
            Src::Other(Db::Appl),
            Src::Other(Db::State),
            Src::Other(Db::Counters),
            Src::Other(Db::Asic),
        ];
        all.into_iter()
            .filter_map(|s| {
                let loc = self.location(s)?;
                (self.instances.get(instance) == Some(&loc.instance)).then_some((s, loc.id))
            })
            .collect()
    }

    /// The keyspace patterns of one instance.
    fn patterns(&self, instance: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (src, id) in self.srcs_of(instance) {
            let p = |k: &str| format!("__keyspace@{id}__:{k}");
            match src {
                Src::Config => {
                    for t in Table::ALL {
                        out.push(p(&format!("{}{SEP}*", t.name())));
                    }
                    out.push(p(CONFIG_DB_INITIALIZED));
                }
                Src::Other(Db::State) => {
                    for t in confirms::watched(Db::State) {
                        out.push(p(&format!("{t}{}*", self.seps.state)));
                    }
                }
                Src::Other(Db::Appl) => {
                    for t in confirms::watched(Db::Appl) {
                        out.push(p(&format!("{t}{}*", self.seps.appl)));
                    }
                    out.push(p(&self.port_init_key));
                }
                Src::Other(Db::Counters) => {
                    out.push(p(RIF_NAME_MAP));
                    out.push(p(PORT_NAME_MAP));
                }
                Src::Other(Db::Asic) => {
                    out.push(p(&format!("{}*", self.seps.bridge_port_prefix())));
                }
            }
        }
        out
    }

    /// How a watched key is read.
    fn read_of(&self, src: Src, key: &str) -> Option<Read> {
        match src {
            Src::Config if key == CONFIG_DB_INITIALIZED => Some(Read::String),
            Src::Config => Key::parse(key).map(|_| Read::Hash),
            Src::Other(Db::Appl) if key == self.port_init_key => Some(Read::Exists),
            Src::Other(db) => {
                let probe = Confirmed::new(self.seps);
                match probe.classify(db, key)? {
                    Watched::State | Watched::Appl => Some(Read::Hash),
                    Watched::RifNameMap | Watched::PortNameMap => Some(Read::Hash),
                    Watched::RifField => Some(Read::RifField),
                    Watched::BridgePort => Some(Read::Field(BRIDGE_PORT_FIELD)),
                }
            }
        }
    }
}

/// One connected session: pubsub streams and read connections per instance.
struct Session {
    sinks: Vec<PubSubSink>,
    streams: SelectAll<futures_util::stream::BoxStream<'static, (usize, Option<Msg>)>>,
    conns: Vec<MultiplexedConnection>,
    reread: Script,
    round_trips: Arc<AtomicU64>,
}

impl Session {
    fn count(&self, n: u64) {
        self.round_trips.fetch_add(n, Ordering::Relaxed);
    }
}

async fn run(
    dbs: Databases,
    opts: FeedOptions,
    tx: mpsc::UnboundedSender<FeedEvent>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    expected: Expected,
    round_trips: Arc<AtomicU64>,
) {
    let layout = Layout::new(dbs);
    let mut backoff = opts.reconnect_min;
    loop {
        match session(&layout, &tx, &mut ctl, &expected, &round_trips).await {
            Ok(()) => return,
            Err(e) => {
                if tx.send(FeedEvent::Lost(e.to_string())).is_err() {
                    return;
                }
                tracing::warn!(error = %e, retry_in = ?backoff, "lost the connection to SONiC's redis");
            }
        }
        // Answer sync requests while redis is away: nothing can be newer.
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                c = ctl.recv() => match c {
                    None => return,
                    Some(Ctl::Sync(t)) => {
                        if tx.send(FeedEvent::Synced(t)).is_err() {
                            return;
                        }
                    }
                    Some(Ctl::Reread(_)) => {}
                },
            }
        }
        backoff = (backoff * 2).min(opts.reconnect_max);
    }
}

async fn connect(layout: &Layout, round_trips: &Arc<AtomicU64>) -> Result<Session, ConfigDbError> {
    let mut sinks = Vec::new();
    let mut streams = SelectAll::new();
    let mut conns = Vec::new();
    for (i, inst) in layout.instances.iter().enumerate() {
        let loc = layout
            .srcs_of(i)
            .first()
            .and_then(|(s, _)| layout.location(*s))
            .cloned()
            .ok_or_else(|| ConfigDbError::Reply {
                what: "database layout".into(),
                reply: format!("instance {} has no database", inst.name),
            })?;
        let pubsub = pubsub_instance(&loc).await?;
        let (mut sink, stream) = pubsub.split();
        for p in layout.patterns(i) {
            sink.psubscribe(&p)
                .await
                .map_err(|source| ConfigDbError::Redis {
                    what: format!("subscribing to {p}"),
                    source,
                })?;
        }
        sinks.push(sink);
        let tagged = stream
            .map(move |m| (i, Some(m)))
            .chain(futures_util::stream::once(async move { (i, None) }))
            .boxed();
        streams.push(tagged);
        conns.push(connect_instance(&loc).await?);
    }
    Ok(Session {
        sinks,
        streams,
        conns,
        reread: Script::new(REREAD_SCRIPT),
        round_trips: round_trips.clone(),
    })
}

fn bad_reply(what: &str, reply: impl std::fmt::Debug) -> ConfigDbError {
    ConfigDbError::Reply {
        what: what.to_owned(),
        reply: format!("{reply:?}"),
    }
}

/// Run a script on instance `i` (one round trip); its reply is an array.
async fn invoke(
    conns: &mut [MultiplexedConnection],
    i: usize,
    inv: &redis::ScriptInvocation<'_>,
    what: &str,
) -> Result<Vec<Value>, ConfigDbError> {
    let conn = conns
        .get_mut(i)
        .ok_or_else(|| bad_reply("connections", i))?;
    let reply: Value = inv
        .invoke_async(conn)
        .await
        .map_err(|source| ConfigDbError::Redis {
            what: what.to_owned(),
            source,
        })?;
    match reply {
        Value::Array(items) => Ok(items),
        _ => Err(bad_reply(what, "not an array")),
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Read everything the view holds (subscriptions are already in place).
async fn snapshot(layout: &Layout, s: &mut Session) -> Result<View, ConfigDbError> {
    let seps = layout.seps;
    let mut config = DbState::new();
    let mut confirmed = Confirmed::new(seps);
    let mut readiness = Readiness::default();
    let script = Script::new(SNAPSHOT_SCRIPT);
    for i in 0..layout.instances.len() {
        let mut groups: Vec<Src> = Vec::new();
        let mut inv = script.prepare_invoke();
        for (src, id) in layout.srcs_of(i) {
            let mut group = |kind: &str, arg: String| {
                groups.push(src);
                inv.arg(id).arg(kind).arg(arg);
            };
            match src {
                Src::Config => {
                    group("P", format!("{}{SEP}*", Table::Port.name()));
                    for t in Table::ALL.into_iter().filter(|t| *t != Table::Port) {
                        group("K", format!("{}{SEP}*", t.name()));
                    }
                    group("G", CONFIG_DB_INITIALIZED.to_owned());
                }
                Src::Other(Db::State) => {
                    for t in confirms::watched(Db::State) {
                        group("K", format!("{t}{}*", seps.state));
                    }
                }
                Src::Other(Db::Appl) => {
                    for t in confirms::watched(Db::Appl) {
                        group("K", format!("{t}{}*", seps.appl));
                    }
                    group("E", layout.port_init_key.clone());
                }
                Src::Other(Db::Counters) => {
                    group("H", RIF_NAME_MAP.to_owned());
                    group("H", PORT_NAME_MAP.to_owned());
                }
                // Bridge ports are listed with SCAN below.
                Src::Other(Db::Asic) => {}
            }
        }
        inv.arg("--").arg(&PORT_FIELDS[..]);
        let items = invoke(&mut s.conns, i, &inv, "reading SONiC's databases").await?;
        s.count(1);
        let mut it = items.into_iter();
        while let Some(g) = it.next() {
            let (Some(Value::Int(g)), Some(key), Some(Value::Int(n))) =
                (Some(g), it.next().and_then(text), it.next())
            else {
                return Err(bad_reply("reading SONiC's databases", "malformed entry"));
            };
            let mut fields = Fields::new();
            for _ in 0..n {
                let (Some(f), Some(v)) = (it.next().and_then(text), it.next().and_then(text))
                else {
                    return Err(bad_reply("reading SONiC's databases", "truncated entry"));
                };
                fields.insert(f, v);
            }
            let src = usize::try_from(g - 1)
                .ok()
                .and_then(|g| groups.get(g))
                .copied()
                .ok_or_else(|| bad_reply("reading SONiC's databases", "unknown group"))?;
            match src {
                Src::Config if key == CONFIG_DB_INITIALIZED => {
                    readiness.config_db_initialized =
                        fields.get("value").cloned().unwrap_or_default();
                }
                Src::Config => {
                    if let Some(k) = Key::parse(&key) {
                        config.insert(k, fields);
                    }
                }
                Src::Other(Db::Appl) if key == layout.port_init_key => {
                    readiness.port_init_done = true;
                }
                Src::Other(db) => {
                    confirmed.set(db, &key, Some(fields));
                }
            }
        }
    }
    if let Some(asic) = layout.dbs.asic.clone() {
        let i = layout
            .instance_index(Src::Other(Db::Asic))
            .ok_or_else(|| bad_reply("connections", "ASIC_DB"))?;
        let conn = s
            .conns
            .get_mut(i)
            .ok_or_else(|| bad_reply("connections", i))?;
        let (ports, trips) = bridge_ports(conn, &asic, &seps).await?;
        s.count(trips);
        for (key, oid) in ports {
            let mut f = Fields::new();
            f.insert(BRIDGE_PORT_FIELD.to_owned(), oid);
            confirmed.set(Db::Asic, &key, Some(f));
        }
    }
    Ok(View::new(config, confirmed, readiness))
}

/// Every ASIC bridge port and the port OID it bridges: `SCAN` in steps,
/// so redis never blocks on ASIC_DB's size.
async fn bridge_ports(
    conn: &mut MultiplexedConnection,
    asic: &DbLocation,
    seps: &Separators,
) -> Result<(Vec<(String, String)>, u64), ConfigDbError> {
    let err = |source| ConfigDbError::Redis {
        what: "listing ASIC_DB bridge ports".into(),
        source,
    };
    let pattern = format!("{}*", seps.bridge_port_prefix());
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    let mut trips = 0;
    // SELECT is per connection; read through a pipeline that selects first.
    loop {
        let (next, batch): (u64, Vec<String>) = redis::pipe()
            .cmd("SELECT")
            .arg(asic.id)
            .ignore()
            .cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async::<((u64, Vec<String>),)>(conn)
            .await
            .map(|(r,)| r)
            .map_err(err)?;
        keys.extend(batch);
        trips += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    if keys.is_empty() {
        return Ok((Vec::new(), trips));
    }
    let mut pipe = redis::pipe();
    pipe.cmd("SELECT").arg(asic.id).ignore();
    for k in &keys {
        pipe.cmd("HGET").arg(k).arg(BRIDGE_PORT_FIELD);
    }
    let oids: Vec<Option<String>> = pipe.query_async(conn).await.map_err(err)?;
    let ports = keys
        .into_iter()
        .zip(oids)
        .filter_map(|(k, o)| Some((k, o?)))
        .collect();
    Ok((ports, trips + 1))
}

/// Pending work of one batch of notifications.
#[derive(Default)]
struct Batch {
    /// Keys to re-read, in first-seen order.
    reread: Vec<(Src, String, Read)>,
    seen: FxHashMap<(Src, String), usize>,
    /// Updates known from the event alone (existence keys).
    direct: Vec<Update>,
    /// A full read is needed (readiness flag set again).
    resnapshot: bool,
    /// Instances whose readiness flags to check with the re-read.
    touched: Vec<usize>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.reread.is_empty() && self.direct.is_empty() && !self.resnapshot
    }

    fn reread(&mut self, src: Src, key: String, read: Read) {
        let k = (src, key.clone());
        if !self.seen.contains_key(&k) {
            self.seen.insert(k, self.reread.len());
            self.reread.push((src, key, read));
        }
    }
}

/// Decode a keyspace notification: (database role, key, event).
fn decode(layout: &Layout, instance: usize, msg: &Msg) -> Option<(Src, String, String)> {
    let channel = msg.get_channel_name();
    let rest = channel.strip_prefix("__keyspace@")?;
    let (id, key) = rest.split_once("__:")?;
    let id: i64 = id.parse().ok()?;
    let src = layout
        .srcs_of(instance)
        .into_iter()
        .find(|(_, i)| *i == id)
        .map(|(s, _)| s)?;
    let event: String = msg.get_payload().ok()?;
    Some((src, key.to_owned(), event))
}

fn classify_event(
    layout: &Layout,
    expected: &Expected,
    batch: &mut Batch,
    instance: usize,
    src: Src,
    key: String,
    event: &str,
) {
    if !batch.touched.contains(&instance) {
        batch.touched.push(instance);
    }
    let Some(read) = layout.read_of(src, &key) else {
        return;
    };
    if src == Src::Config && key == CONFIG_DB_INITIALIZED {
        batch.resnapshot |= event == "set";
        batch.reread(src, key, read);
        return;
    }
    if src == Src::Other(Db::Appl) && key == layout.port_init_key {
        batch.resnapshot |= event != "del";
        return;
    }
    match src {
        // CONFIG_DB: the agent's own writes are announced; anything else is
        // read at once (it may be drift to repair).
        Src::Config => {
            if !expected.take(&key) {
                batch.reread(src, key, read);
            }
        }
        // SONiC's confirmations: existence from the event; values are read
        // when a decision needs them (`Update::Touched`).
        Src::Other(db) => {
            let gone = matches!(event, "del" | "expired" | "evicted" | "rename_from");
            if batch.seen.contains_key(&(src, key.clone())) {
                batch.reread(src, key, read);
            } else if gone {
                batch.direct.push(update(src, key, None));
            } else {
                batch.direct.push(Update::Touched { db, key });
            }
        }
    }
}

fn update(src: Src, key: String, value: Option<Fields>) -> Update {
    match src {
        Src::Config => Update::Config { key, value },
        Src::Other(db) => Update::Other { db, key, value },
    }
}

/// Perform a batch: re-read what must be read, then send the updates.
async fn flush(
    layout: &Layout,
    s: &mut Session,
    batch: Batch,
    tx: &mpsc::UnboundedSender<FeedEvent>,
) -> Result<bool, ConfigDbError> {
    let mut updates = batch.direct;
    // Group the reads per instance; readiness flags ride along.
    for i in 0..layout.instances.len() {
        let mut groups: Vec<(Src, String, Read)> = batch
            .reread
            .iter()
            .filter(|(src, _, _)| layout.instance_index(*src) == Some(i))
            .cloned()
            .collect();
        // The readiness flags ride along with reads that happen anyway
        // (`config reload` flushes CONFIG_DB without notifications, then
        // writes it anew: the reads of its new keys find the flag).
        if batch.touched.contains(&i) && !groups.is_empty() {
            if layout.instance_index(Src::Config) == Some(i) {
                groups.push((Src::Config, CONFIG_DB_INITIALIZED.to_owned(), Read::String));
            }
            if layout.instance_index(Src::Other(Db::Appl)) == Some(i) {
                groups.push((
                    Src::Other(Db::Appl),
                    layout.port_init_key.clone(),
                    Read::Exists,
                ));
            }
        }
        if groups.is_empty() {
            continue;
        }
        tracing::trace!(
            keys = groups.len(),
            first = %groups.first().map(|g| g.1.as_str()).unwrap_or(""),
            "re-reading"
        );
        let mut inv = s.reread.prepare_invoke();
        for (src, key, read) in &groups {
            let id = layout.location(*src).map_or(0, |l| l.id);
            let (key, field) = match read {
                Read::Field(f) => (key.as_str(), *f),
                Read::RifField => key.split_once(RIF_FIELD_SEP).unwrap_or((key.as_str(), "")),
                _ => (key.as_str(), ""),
            };
            inv.arg(id).arg(read.kind()).arg(key).arg(field);
        }
        let items = invoke(&mut s.conns, i, &inv, "re-reading changed keys").await?;
        s.count(1);
        for ((src, key, read), v) in groups.into_iter().zip(items) {
            let u = match (read, v) {
                (Read::Exists, Value::Int(n)) if key == layout.port_init_key => {
                    Update::PortInitDone(n == 1)
                }
                (Read::String, v) if src == Src::Config && key == CONFIG_DB_INITIALIZED => {
                    Update::ConfigDbInitialized(match v {
                        Value::Int(0) => None,
                        v => text(v),
                    })
                }
                (_, Value::Int(0)) => update(src, key, None),
                (Read::Hash, Value::Array(h)) => {
                    let mut f = Fields::new();
                    let mut it = h.into_iter();
                    while let (Some(k), Some(v)) =
                        (it.next().and_then(text), it.next().and_then(text))
                    {
                        f.insert(k, v);
                    }
                    update(src, key, Some(f))
                }
                (Read::RifField, v) => {
                    // Only presence matters (`Confirmed::has_rif`).
                    update(src, key, text(v).map(|_| Fields::new()))
                }
                (Read::Field(name), v) => {
                    let value = text(v).map(|val| {
                        let mut f = Fields::new();
                        f.insert(name.to_owned(), val);
                        f
                    });
                    update(src, key, value)
                }
                (Read::Exists, Value::Int(_)) => update(src, key, Some(Fields::new())),
                (_, other) => return Err(bad_reply("re-reading changed keys", other)),
            };
            updates.push(u);
        }
    }
    if !updates.is_empty() && tx.send(FeedEvent::Updates(updates)).is_err() {
        return Ok(false);
    }
    Ok(true)
}

/// Move every notification that is already here into the batch.
fn drain_ready(
    layout: &Layout,
    s: &mut Session,
    expected: &Expected,
    batch: &mut Batch,
) -> Result<(), ConfigDbError> {
    // Bounded so that a flood cannot starve the agent.
    for _ in 0..100_000 {
        match s.streams.next().now_or_never() {
            Some(Some((i, Some(msg)))) => {
                if let Some((src, key, event)) = decode(layout, i, &msg) {
                    classify_event(layout, expected, batch, i, src, key, &event);
                }
            }
            Some(Some((i, None))) => return Err(lost(layout, i)),
            Some(None) => return Err(lost(layout, 0)),
            None => return Ok(()),
        }
    }
    Ok(())
}

fn lost(layout: &Layout, i: usize) -> ConfigDbError {
    ConfigDbError::Reply {
        what: "following SONiC's keyspace notifications".into(),
        reply: format!(
            "the subscription to redis instance {} ended",
            layout.instances.get(i).map_or("?", |x| x.name.as_str())
        ),
    }
}

/// One connected session; `Ok` when the agent is gone, `Err` when redis is.
async fn session(
    layout: &Layout,
    tx: &mpsc::UnboundedSender<FeedEvent>,
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    expected: &Expected,
    round_trips: &Arc<AtomicU64>,
) -> Result<(), ConfigDbError> {
    let mut s = connect(layout, round_trips).await?;
    let view = snapshot(layout, &mut s).await?;
    if tx.send(FeedEvent::Snapshot(Box::new(view))).is_err() {
        return Ok(());
    }
    loop {
        let mut batch = Batch::default();
        let mut synced: Option<u64> = None;
        tokio::select! {
            biased;
            c = ctl.recv() => match c {
                None => return Ok(()),
                Some(Ctl::Sync(token)) => {
                    for sink in &mut s.sinks {
                        sink.ping_message::<Value>("metal-switchd-sync")
                            .await
                            .map_err(|source| ConfigDbError::Redis {
                                what: "syncing with redis".into(),
                                source,
                            })?;
                        s.round_trips.fetch_add(1, Ordering::Relaxed);
                    }
                    synced = Some(token);
                }
                Some(Ctl::Reread(keys)) => {
                    for (src, key) in keys {
                        if let Some(read) = layout.read_of(src, &key) {
                            batch.reread(src, key, read);
                        }
                    }
                }
            },
            m = s.streams.next() => match m {
                Some((i, Some(msg))) => {
                    if let Some((src, key, event)) = decode(layout, i, &msg) {
                        classify_event(layout, expected, &mut batch, i, src, key, &event);
                    }
                }
                Some((i, None)) => return Err(lost(layout, i)),
                None => return Err(lost(layout, 0)),
            },
        }
        drain_ready(layout, &mut s, expected, &mut batch)?;
        let resnapshot = batch.resnapshot;
        if !batch.is_empty() && !flush(layout, &mut s, batch, tx).await? {
            return Ok(());
        }
        if resnapshot {
            tracing::info!("SONiC re-initialised its databases; reading them anew");
            expected.lock().clear();
            let view = snapshot(layout, &mut s).await?;
            if tx.send(FeedEvent::Snapshot(Box::new(view))).is_err() {
                return Ok(());
            }
        }
        if let Some(token) = synced
            && tx.send(FeedEvent::Synced(token)).is_err()
        {
            return Ok(());
        }
    }
}
