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
//!   trip (a pipeline of plain commands per redis instance, never a script);
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
//!
//! Every reply and notification is decoded by [`reply`]: bytes that are not
//! UTF-8 in a key, field or value never stop the feed; such entries are
//! skipped or kept, counted ([`Feed::undecodable`]) and logged escaped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{SelectAll, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink};
use redis::{Msg, Value};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::confirmed::{Confirmed, RIF_FIELD_SEP, Separators, Watched};
use super::confirms::{self, BRIDGE_PORT_FIELD, Db, PORT_NAME_MAP, RIF_NAME_MAP};
use super::connection::{ConfigDbError, connect_instance, pubsub_instance};
use super::dbconfig::{Databases, DbLocation, Instance};
use super::reply::{self, Database, Undecodable};
use super::schema::{Fields, Key, SEP, Table};
use super::startup::{self, BridgePortListing, Place, Places, ReadLimits};
use super::view::{CONFIG_DB_INITIALIZED, Update, View};

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
    undecodable: Shared<Undecodable>,
    task: tokio::task::JoinHandle<()>,
}

/// A value the feed's task and the agent share.
#[derive(Debug, Default)]
struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
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
        let undecodable = Shared::default();
        let task = tokio::spawn(run(
            dbs,
            opts,
            tx,
            ctl_rx,
            expected.clone(),
            Counters {
                round_trips: round_trips.clone(),
                undecodable: undecodable.clone(),
            },
        ));
        Feed {
            events,
            ctl,
            expected,
            next_token: 0,
            round_trips,
            undecodable,
            task,
        }
    }

    /// Entries with bytes that are not UTF-8 the feed met so far (each time
    /// it read them).
    pub fn undecodable(&self) -> Undecodable {
        *self.undecodable.lock()
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

/// The databases and their roles, as the feed needs them.
#[derive(Debug, Clone)]
struct Layout {
    dbs: Databases,
    seps: Separators,
    /// Distinct instances, in a fixed order.
    instances: Vec<Instance>,
    port_init_key: String,
    /// Where the start-up read finds each database.
    places: Places,
    /// ASIC_DB, where the bridge ports are listed.
    asic_place: Option<Place>,
    limits: ReadLimits,
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
        let place = |loc: &DbLocation| Place {
            conn: instances
                .iter()
                .position(|i| *i == loc.instance)
                .unwrap_or_default(),
            id: loc.id,
        };
        let places = Places {
            config: place(&dbs.config),
            state: place(&dbs.state),
            appl: place(&dbs.appl),
            counters: dbs.counters.as_ref().map(place),
            asic: dbs.asic.is_some(),
            seps,
            port_init_key: port_init_key.clone(),
        };
        let asic_place = dbs.asic.as_ref().map(place);
        Layout {
            dbs,
            seps,
            instances,
            port_init_key,
            places,
            asic_place,
            limits: ReadLimits::default(),
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

/// What the feed counts for the agent.
#[derive(Debug, Clone)]
struct Counters {
    round_trips: Arc<AtomicU64>,
    undecodable: Shared<Undecodable>,
}

/// One connected session: pubsub streams and read connections per instance.
struct Session {
    sinks: Vec<PubSubSink>,
    streams: SelectAll<futures_util::stream::BoxStream<'static, (usize, Option<Msg>)>>,
    conns: Vec<MultiplexedConnection>,
    /// ASIC_DB's bridge ports being listed after a full read.
    listing: Option<BridgePortListing>,
    counters: Counters,
}

impl Session {
    fn count(&self, n: u64) {
        self.counters.round_trips.fetch_add(n, Ordering::Relaxed);
    }

    fn undecodable(&self) -> MutexGuard<'_, Undecodable> {
        self.counters.undecodable.lock()
    }
}

async fn run(
    dbs: Databases,
    opts: FeedOptions,
    tx: mpsc::UnboundedSender<FeedEvent>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    expected: Expected,
    counters: Counters,
) {
    let layout = Layout::new(dbs);
    let mut backoff = opts.reconnect_min;
    loop {
        match session(&layout, &tx, &mut ctl, &expected, &counters).await {
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

async fn connect(layout: &Layout, counters: &Counters) -> Result<Session, ConfigDbError> {
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
        listing: None,
        counters: counters.clone(),
    })
}

fn bad_reply(what: &str, reply: impl std::fmt::Debug) -> ConfigDbError {
    ConfigDbError::Reply {
        what: what.to_owned(),
        reply: format!("{reply:?}"),
    }
}

/// Read everything the view holds (subscriptions are already in place):
/// the start-up read ([`startup::read`]); ASIC bridge ports follow in the
/// session's listing.
async fn snapshot(layout: &Layout, s: &mut Session) -> Result<View, ConfigDbError> {
    let started = std::time::Instant::now();
    let (view, stats) = startup::read(&mut s.conns, &layout.places, layout.limits).await?;
    s.count(stats.round_trips);
    tracing::info!(
        round_trips = stats.round_trips,
        scan_steps = stats.scan_steps,
        keys = stats.keys_read,
        took = ?started.elapsed(),
        "read SONiC's databases"
    );
    if stats.undecodable.total() > 0 {
        tracing::warn!(
            skipped = stats.undecodable.handled(reply::Handling::Skipped),
            kept = stats.undecodable.handled(reply::Handling::Kept),
            "entries of SONiC's databases hold bytes that are not UTF-8 (see the lines above)"
        );
    }
    s.undecodable().add(&stats.undecodable);
    s.listing = layout
        .asic_place
        .map(|p| BridgePortListing::new(p, layout.seps, layout.limits));
    Ok(view)
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

/// Decode a keyspace notification: (database role, key, event). A key that
/// is not UTF-8 (in a watched table: the feed subscribes to nothing else)
/// is counted as skipped.
fn decode(
    layout: &Layout,
    instance: usize,
    msg: &Msg,
    undecodable: &mut Undecodable,
) -> Option<(Src, String, String)> {
    let channel: Vec<u8> = msg.get_channel().ok()?;
    let rest = channel.strip_prefix(b"__keyspace@")?;
    let end = rest.windows(3).position(|w| w == b"__:")?;
    let id: i64 = std::str::from_utf8(rest.get(..end)?).ok()?.parse().ok()?;
    let key = rest.get(end + 3..)?;
    let src = layout
        .srcs_of(instance)
        .into_iter()
        .find(|(_, i)| *i == id)
        .map(|(s, _)| s)?;
    let key = match std::str::from_utf8(key) {
        Ok(k) => k.to_owned(),
        Err(_) => {
            undecodable.skipped(database(src), key, None);
            return None;
        }
    };
    let event: String = msg.get_payload().ok()?;
    Some((src, key, event))
}

fn database(src: Src) -> Database {
    match src {
        Src::Config => Database::Config,
        Src::Other(db) => db.into(),
    }
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
        // One pipeline per instance: cheap commands, never a script (a
        // script runs as one command, as long as all of its reads).
        let mut pipe = redis::pipe();
        let mut selected: Option<i64> = None;
        for (src, key, read) in &groups {
            let id = layout.location(*src).map_or(0, |l| l.id);
            if selected != Some(id) {
                pipe.cmd("SELECT").arg(id).ignore();
                selected = Some(id);
            }
            match read {
                Read::Hash => pipe.cmd("HGETALL").arg(key),
                Read::String => pipe.cmd("GET").arg(key),
                Read::Exists => pipe.cmd("EXISTS").arg(key),
                Read::Field(f) => pipe.cmd("HGET").arg(key).arg(*f),
                Read::RifField => {
                    let (hash, field) = key.split_once(RIF_FIELD_SEP).unwrap_or((key.as_str(), ""));
                    pipe.cmd("HGET").arg(hash).arg(field)
                }
            };
        }
        let conn = s
            .conns
            .get_mut(i)
            .ok_or_else(|| bad_reply("connections", i))?;
        let items: Vec<Value> =
            pipe.query_async(conn)
                .await
                .map_err(|source| ConfigDbError::Redis {
                    what: "re-reading changed keys".into(),
                    source,
                })?;
        s.count(1);
        let mut tally = s.undecodable();
        for ((src, key, read), v) in groups.into_iter().zip(items) {
            let db = database(src);
            let one = |name: &str, val: String| {
                let mut f = Fields::new();
                f.insert(name.to_owned(), val);
                f
            };
            let u = match read {
                Read::Exists if key == layout.port_init_key => {
                    Update::PortInitDone(matches!(v, Value::Int(1)))
                }
                Read::String if src == Src::Config && key == CONFIG_DB_INITIALIZED => {
                    Update::ConfigDbInitialized(reply::string(v, db, &key, &mut tally))
                }
                Read::Hash => {
                    let value = reply::hash(v, db, &key, &mut tally);
                    update(src, key, value)
                }
                // Only presence matters (`Confirmed::has_rif`).
                Read::RifField => update(src, key, reply::bytes(v).map(|_| Fields::new())),
                // The one field the agent reads (a bridge port's port id):
                // not UTF-8, the entry is skipped.
                Read::Field(name) => {
                    let value = match reply::bytes(v).map(String::from_utf8) {
                        None => None,
                        Some(Ok(val)) => Some(one(name, val)),
                        Some(Err(e)) => {
                            tally.skipped(db, key.as_bytes(), Some(e.as_bytes()));
                            None
                        }
                    };
                    update(src, key, value)
                }
                Read::Exists => update(src, key, matches!(v, Value::Int(1)).then(Fields::new)),
                Read::String => {
                    let value = reply::string(v, db, &key, &mut tally);
                    update(src, key, value.map(|val| one("value", val)))
                }
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
                let decoded = decode(layout, i, &msg, &mut s.undecodable());
                if let Some((src, key, event)) = decoded {
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
    counters: &Counters,
) -> Result<(), ConfigDbError> {
    let mut s = connect(layout, counters).await?;
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
                        s.counters.round_trips.fetch_add(1, Ordering::Relaxed);
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
                    let decoded = decode(layout, i, &msg, &mut s.undecodable());
                    if let Some((src, key, event)) = decoded {
                        classify_event(layout, expected, &mut batch, i, src, key, &event);
                    }
                }
                Some((i, None)) => return Err(lost(layout, i)),
                None => return Err(lost(layout, 0)),
            },
            // Nothing else to do: the next step of the bridge-port listing.
            () = std::future::ready(()), if s.listing.is_some() => {}
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
        if !list_bridge_ports(&mut s, tx).await? {
            return Ok(());
        }
    }
}

/// One step of listing ASIC_DB's bridge ports, if they are being listed;
/// `Ok(false)` when the agent is gone.
async fn list_bridge_ports(
    s: &mut Session,
    tx: &mpsc::UnboundedSender<FeedEvent>,
) -> Result<bool, ConfigDbError> {
    let Session {
        listing,
        conns,
        counters,
        ..
    } = s;
    let Some(l) = listing.as_mut() else {
        return Ok(true);
    };
    let trips = l.stats.round_trips;
    let found = l.step(conns).await?;
    let trips = l.stats.round_trips - trips;
    counters
        .undecodable
        .lock()
        .add(&std::mem::take(&mut l.stats.undecodable));
    let mut updates: Vec<Update> = found
        .into_iter()
        .map(|(key, oid)| {
            let mut f = Fields::new();
            f.insert(BRIDGE_PORT_FIELD.to_owned(), oid);
            Update::Other {
                db: Db::Asic,
                key,
                value: Some(f),
            }
        })
        .collect();
    if l.is_done() {
        tracing::info!(
            steps = l.stats.scan_steps,
            bridge_ports = l.stats.keys_read,
            "listed ASIC_DB's bridge ports"
        );
        updates.push(Update::BridgePortsListed);
        *listing = None;
    }
    s.count(trips);
    Ok(updates.is_empty() || tx.send(FeedEvent::Updates(updates)).is_ok())
}
