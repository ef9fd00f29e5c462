//! A stand-in for SONiC's swss daemons (vrfmgrd, vlanmgrd, intfmgrd,
//! vxlanmgrd, portmgrd, plus the orchagent effects the agent waits on).
//!
//! SONiC's daemons cannot run here. This stand-in consumes CONFIG_DB the way
//! they do (sonic-configdb reference §3): it subscribes to keyspace
//! notifications, reads the whole hash when it gets to a key (a key gone by
//! then is dropped as "outdated"), retries tasks whose prerequisites are
//! missing, and writes the STATE_DB / APPL_DB / COUNTERS_DB / ASIC_DB markers
//! of §4. Each daemon is its own task with its own processing delay, so —
//! as on a switch — daemons are not ordered against each other, and
//! orchagent's ASIC effects (bridge ports, router interfaces) lag behind.
//!
//! It reports loudly every order that would crash or wedge the real daemons
//! ([`SonicStandIn::violations`]): binding a VLAN member to a VRF
//! (sonic-buildimage#13772), deleting a VLAN member of a port that left the
//! bridge, an in-place VRF change, a changed VXLAN map or VLAN member, a
//! direct VNI change, deleting a VLAN before its members, interface or map,
//! a VRF-VNI before its VLAN-VNI map (#11428), a DEL followed by a SET of a
//! key before the daemon saw the DEL, a port's INTERFACE entry while its
//! ASIC bridge port still exists, PORT keys created or deleted, bad names.
//!
//! Processed operations are logged in order ([`SonicStandIn::events`]) so
//! tests can assert what SONiC saw when; orchagent's bridge ports appear as
//! `add BRIDGE_PORT <port>` / `del BRIDGE_PORT <port>` (daemon `orchagent`).
//! [`SonicStandIn::settle`] waits until the daemons' queues are empty.
//!
//! Harder modes (all off by default): a random extra delay per task, each
//! daemon's tasks reordered within a window across its tables (tasks of one
//! key keep their order), every notification processed twice
//! ([`StandInOptions::shuffled`], `duplicate`); all daemons or a single one
//! paused ([`SonicStandIn::pause`], [`SonicStandIn::pause_daemon`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::redis_server::{APPL_DB, ASIC_DB, CONFIG_DB, COUNTERS_DB, RedisServer, STATE_DB};
use crate::sonic_kernel::{Op, SonicKernel};

/// Processing delays of the stand-in's daemons.
#[derive(Debug, Clone, Default)]
pub struct StandInOptions {
    pub vrfmgrd: Duration,
    pub vlanmgrd: Duration,
    pub intfmgrd: Duration,
    pub vxlanmgrd: Duration,
    pub portmgrd: Duration,
    /// How long orchagent takes to create or remove bridge ports and router
    /// interfaces after the daemon's step.
    pub orchagent: Duration,
    /// A network namespace (`ip netns` name) in which to do what the
    /// managers do in the kernel (see [`crate::sonic_kernel`]); `None`:
    /// CONFIG_DB / STATE_DB only.
    pub kernel_netns: Option<String>,
    /// A random extra delay per task, from zero to this (from `seed`); zero:
    /// every task of a daemon takes exactly its delay.
    pub jitter: Duration,
    /// Each daemon takes the tasks that arrive within this window after the
    /// first one and processes them in a random order (from `seed`), across
    /// its tables; tasks of one key keep their order. On a switch a daemon's
    /// tables are separate consumers, and one table's pending tasks are taken
    /// in key order, not in arrival order (reference §3.1). Zero: arrival
    /// order.
    pub reorder_window: Duration,
    /// Every notification is processed twice (a replayed or duplicated event).
    pub duplicate: bool,
    /// Seed of `jitter` and `reorder_window`.
    pub seed: u64,
    /// How late each keyspace notification reaches the daemons (a busy
    /// subscriber); zero by default.
    pub notification_lag: Duration,
}

impl StandInOptions {
    /// Every daemon (and orchagent) takes `d`.
    pub fn uniform(d: Duration) -> Self {
        StandInOptions {
            vrfmgrd: d,
            vlanmgrd: d,
            intfmgrd: d,
            vxlanmgrd: d,
            portmgrd: d,
            orchagent: d,
            kernel_netns: None,
            ..StandInOptions::default()
        }
    }

    /// Random per-daemon delays between 0 and `max` (orchagent too), from
    /// `seed`: daemons finish in an order nobody chose.
    pub fn random(seed: u64, max: Duration) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut d = || max.mul_f64(rng.f64());
        StandInOptions {
            vrfmgrd: d(),
            vlanmgrd: d(),
            intfmgrd: d(),
            vxlanmgrd: d(),
            portmgrd: d(),
            orchagent: d(),
            kernel_netns: None,
            ..StandInOptions::default()
        }
    }

    /// What a switch under load looks like: random per-daemon delays up to
    /// `max` (as [`StandInOptions::random`]), a random extra delay per task
    /// up to `max / 2`, and each daemon's tasks reordered within a window of
    /// `max`.
    pub fn shuffled(seed: u64, max: Duration) -> Self {
        StandInOptions {
            jitter: max / 2,
            reorder_window: max,
            seed,
            ..StandInOptions::random(seed, max)
        }
    }

    /// Delays that expose a missing barrier: each daemon that must finish
    /// first in a safe order is slower than the one that follows it.
    pub fn adversarial() -> Self {
        StandInOptions {
            vrfmgrd: Duration::from_millis(40),
            vlanmgrd: Duration::from_millis(60),
            intfmgrd: Duration::from_millis(50),
            vxlanmgrd: Duration::from_millis(30),
            portmgrd: Duration::from_millis(5),
            orchagent: Duration::from_millis(40),
            kernel_netns: None,
            ..StandInOptions::default()
        }
    }
}

/// One operation the stand-in processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub daemon: &'static str,
    /// e.g. `del VLAN_MEMBER|Vlan3900|Ethernet1`, `set INTERFACE|Ethernet1 vrf=Vrf104009`.
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Set,
    Del,
}

#[derive(Debug)]
struct Task {
    key: String,
    kind: Kind,
    arrived: Instant,
}

#[derive(Debug, Default)]
struct Kernel {
    /// port → VLAN ids it is a bridge member of
    bridged: BTreeMap<String, BTreeSet<u16>>,
    /// interface → VRF ("" = default)
    routed: BTreeMap<String, String>,
    /// VLAN ids that exist
    vlans: BTreeSet<u16>,
    /// VRF → vni (0 = none)
    vrfs: BTreeMap<String, u32>,
    /// VTEP name → src_ip
    vteps: BTreeMap<String, String>,
    /// an EVPN NVO exists
    nvo: bool,
    /// map name → (vid, vni)
    maps: BTreeMap<String, (u16, u32)>,
    /// ports that have an ASIC bridge port (orchagent's view)
    asic_bridge_ports: BTreeSet<String>,
    /// port OID → its ASIC_DB bridge port keys (orchagent keeps its bridge
    /// ports in memory; it never searches ASIC_DB for them)
    asic_bridge_port_keys: BTreeMap<String, Vec<String>>,
    next_oid: u64,
}

#[derive(Default)]
struct Shared {
    events: Mutex<Vec<Event>>,
    violations: Mutex<Vec<String>>,
    kernel: Mutex<Kernel>,
    /// kinds of the events received but not yet processed, per key
    queued: Mutex<HashMap<String, VecDeque<Kind>>>,
    /// notifications received and not yet processed, plus orchagent effects under way
    inflight: AtomicUsize,
    /// the highest settle mark that came through the pubsub connection
    /// (see [`SonicStandIn::settle`]); `settled` is notified when it grows
    /// and when `inflight` drops to zero
    marks: Mutex<u64>,
    settled: std::sync::Condvar,
    /// tasks waiting for a prerequisite (retried, as the daemons do)
    pending: AtomicUsize,
    /// The daemons (and orchagent) are stopped: notifications queue up.
    paused: std::sync::atomic::AtomicBool,
    /// Single daemons (or `orchagent`) that are stopped.
    paused_daemons: Mutex<BTreeSet<String>>,
    /// Every notification is dispatched twice.
    duplicate: bool,
    resumed: tokio::sync::Notify,
    /// the managers' kernel steps, when a namespace was given
    netdevs: Option<SonicKernel>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn event(&self, daemon: &'static str, what: String) {
        lock(&self.events).push(Event { daemon, what });
    }
    fn violation(&self, daemon: &'static str, what: String) {
        lock(&self.violations).push(format!("{daemon}: {what}"));
    }

    /// One notification or orchagent effect is done.
    fn finished(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Under the lock: a waiter checks `inflight` while holding it.
            let _marks = lock(&self.marks);
            self.settled.notify_all();
        }
    }

    /// A settle mark arrived: every notification published before it has
    /// been dispatched.
    fn marked(&self, mark: u64) {
        let mut m = lock(&self.marks);
        *m = (*m).max(mark);
        self.settled.notify_all();
    }

    /// Return once neither all daemons nor `daemon` are paused.
    async fn unpaused(&self, daemon: &str) {
        loop {
            let resumed = self.resumed.notified();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            if !self.paused.load(Ordering::SeqCst) && !lock(&self.paused_daemons).contains(daemon) {
                return;
            }
            resumed.await;
        }
    }
}

/// The running stand-in; stops on drop.
pub struct SonicStandIn {
    shared: Arc<Shared>,
    /// CONFIG_DB's URL, for publishing settle marks.
    url: String,
    /// The channel the pubsub connection listens on for settle marks.
    mark_channel: String,
    next_mark: AtomicU64,
    /// What the start-up replay of the existing CONFIG_DB reported.
    base_findings: Vec<String>,
    writes: Arc<AtomicU64>,
    last_write: Arc<Mutex<Option<Instant>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The bgp container of the flavour this switch stands in for
    /// ([`SonicStandIn::set_bgp`]): its FRR side is checked with the rest.
    bgp: Mutex<Option<crate::flavours::BgpContainer>>,
}

#[derive(Clone)]
struct Dbs {
    config: MultiplexedConnection,
    appl: MultiplexedConnection,
    asic: MultiplexedConnection,
    counters: MultiplexedConnection,
    state: MultiplexedConnection,
    /// write commands the stand-in sent (so measurements can tell them apart)
    writes: Arc<AtomicU64>,
    /// when the last of them completed
    last_write: Arc<Mutex<Option<Instant>>>,
}

#[derive(Clone, Copy)]
enum Db {
    Appl,
    Asic,
    Counters,
    State,
}

impl Dbs {
    fn conn(&mut self, db: Db) -> &mut MultiplexedConnection {
        match db {
            Db::Appl => &mut self.appl,
            Db::Asic => &mut self.asic,
            Db::Counters => &mut self.counters,
            Db::State => &mut self.state,
        }
    }

    /// `HSET key fields` (`NULL: NULL` when empty).
    async fn hset(&mut self, db: Db, key: &str, fields: &[(&str, &str)]) -> redis::RedisResult<()> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        if fields.is_empty() {
            cmd.arg("NULL").arg("NULL");
        }
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        let r = cmd.query_async(self.conn(db)).await;
        self.wrote();
        r
    }

    async fn del(&mut self, db: Db, key: &str) -> redis::RedisResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let r = redis::cmd("DEL").arg(key).query_async(self.conn(db)).await;
        self.wrote();
        r
    }

    async fn hdel(&mut self, db: Db, key: &str, field: &str) -> redis::RedisResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let r = redis::cmd("HDEL")
            .arg(key)
            .arg(field)
            .query_async(self.conn(db))
            .await;
        self.wrote();
        r
    }

    fn wrote(&self) {
        *lock(&self.last_write) = Some(Instant::now());
    }
}

/// ASIC_DB's bridge ports by the port OID they bridge (`SCAN`, never `KEYS`:
/// on a switch-sized redis ASIC_DB holds every route).
async fn bridge_ports(
    mut asic: MultiplexedConnection,
) -> redis::RedisResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut asic)
            .await?;
        for k in keys {
            let oid: Option<String> = redis::cmd("HGET")
                .arg(&k)
                .arg("SAI_BRIDGE_PORT_ATTR_PORT_ID")
                .query_async(&mut asic)
                .await?;
            if let Some(oid) = oid {
                out.entry(oid).or_default().push(k);
            }
        }
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

/// Which daemon consumes a CONFIG_DB table.
fn daemon_of(table: &str) -> Option<usize> {
    Some(match table {
        "VRF" => 0,
        "VLAN" | "VLAN_MEMBER" => 1,
        "INTERFACE" | "VLAN_INTERFACE" | "LOOPBACK_INTERFACE" => 2,
        "VXLAN_TUNNEL" | "VXLAN_TUNNEL_MAP" | "VXLAN_EVPN_NVO" => 3,
        "PORT" => 4,
        _ => return None,
    })
}

const DAEMONS: [&str; 5] = ["vrfmgrd", "vlanmgrd", "intfmgrd", "vxlanmgrd", "portmgrd"];

impl SonicStandIn {
    /// Start the stand-in against `server`; it first replays the existing
    /// CONFIG_DB (as daemons do at start) and returns once that has settled.
    pub fn start(server: &RedisServer, opts: StandInOptions) -> Result<SonicStandIn> {
        SonicStandIn::start_urls(|db| server.url(db), opts)
    }

    /// Like [`SonicStandIn::start`], against a redis server on the unix
    /// socket `socket` that this process does not own (the lab's
    /// `sonic-standin` process).
    pub fn start_at(socket: &std::path::Path, opts: StandInOptions) -> Result<SonicStandIn> {
        let socket = socket.display().to_string();
        SonicStandIn::start_urls(|db| format!("redis+unix://{socket}?db={db}"), opts)
    }

    fn start_urls(url: impl Fn(i64) -> String, opts: StandInOptions) -> Result<SonicStandIn> {
        let kernel = opts.kernel_netns.is_some();
        let netdevs = match &opts.kernel_netns {
            Some(ns) => Some(SonicKernel::start(ns)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            netdevs,
            duplicate: opts.duplicate,
            ..Shared::default()
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let urls: Vec<String> = [CONFIG_DB, APPL_DB, ASIC_DB, COUNTERS_DB, STATE_DB]
            .iter()
            .map(|db| url(*db))
            .collect();
        let pubsub_url = url(CONFIG_DB);
        let mark_channel = format!(
            "metal-switchd-lab:settle:{}:{:016x}",
            std::process::id(),
            fastrand::u64(..)
        );
        let channel = mark_channel.clone();
        let sh = shared.clone();
        let writes = Arc::new(AtomicU64::new(0));
        let standin_writes = writes.clone();
        let last_write: Arc<Mutex<Option<Instant>>> = Arc::default();
        let standin_last_write = last_write.clone();
        let thread = std::thread::Builder::new()
            .name("sonic-standin".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(run(
                    sh, writes, last_write, opts, urls, pubsub_url, channel, stop_rx, ready_tx,
                ));
            })
            .context("starting the SONiC stand-in thread")?;
        let mut standin = SonicStandIn {
            shared,
            url: url(CONFIG_DB),
            mark_channel,
            next_mark: AtomicU64::new(0),
            writes: standin_writes,
            last_write: standin_last_write,
            base_findings: Vec::new(),
            stop: Some(stop_tx),
            thread: Some(thread),
            bgp: Mutex::new(None),
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .context("the SONiC stand-in did not start")??;
        // Replaying into a kernel namespace runs `ip` for every object.
        standin.settle(Duration::from_secs(if kernel { 60 } else { 10 }))?;
        // Findings of the replay are about the base configuration, not about
        // what is written afterwards.
        standin.base_findings = std::mem::take(&mut *lock(&standin.shared.violations));
        Ok(standin)
    }

    /// Everything processed so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.shared.events).clone()
    }

    /// Position of the first event whose text contains `needle`.
    pub fn position(&self, needle: &str) -> Option<usize> {
        lock(&self.shared.events)
            .iter()
            .position(|e| e.what.contains(needle))
    }

    /// Every order that would crash or wedge SONiC, so far, and what the
    /// flavour's FRR cannot run in the installed frr.conf now (with
    /// [`SonicStandIn::set_bgp`]).
    pub fn violations(&self) -> Vec<String> {
        let mut v = lock(&self.shared.violations).clone();
        if let Some(bgp) = &*lock(&self.bgp) {
            v.extend(bgp.findings().into_iter().map(|f| format!("bgp: {f}")));
        }
        v
    }

    /// Stand in for the bgp container of a flavour too: its FRR side checks
    /// the installed frr.conf ([`crate::flavours::frr_findings`]) and
    /// [`SonicStandIn::restart_bgp`] does what its start script does.
    pub fn set_bgp(&self, bgp: crate::flavours::BgpContainer) {
        *lock(&self.bgp) = Some(bgp);
    }

    /// Restart the bgp container: what its start script does to frr.conf
    /// (`split` deletes it, `split-unified` appends its zebra lines).
    pub fn restart_bgp(&self) -> Result<String> {
        match &*lock(&self.bgp) {
            Some(bgp) => bgp.restart(),
            None => anyhow::bail!("the stand-in has no bgp container (set_bgp)"),
        }
    }

    /// What replaying the base configuration at start reported (e.g. a
    /// static VRF whose VNI has no VLAN-VNI map).
    pub fn base_findings(&self) -> &[String] {
        &self.base_findings
    }

    /// When the stand-in's last write to redis completed (a daemon's or
    /// orchagent's confirmation).
    pub fn last_write(&self) -> Option<Instant> {
        *lock(&self.last_write)
    }

    /// Write commands (HSET, HDEL, DEL) the stand-in itself has sent so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The kernel side, when the stand-in runs with `kernel_netns`.
    pub fn netdevs(&self) -> Option<&SonicKernel> {
        self.shared.netdevs.as_ref()
    }

    /// Forget events and violations seen so far.
    pub fn clear(&self) {
        lock(&self.shared.events).clear();
        lock(&self.shared.violations).clear();
    }

    /// Wait until the daemons' queues are empty: every CONFIG_DB
    /// notification redis published before this call has been received and
    /// processed, and every orchagent effect it started is done. Error
    /// (naming what is left) after `timeout`, which only catches a hang.
    ///
    /// "Received" is proven, not guessed: a mark is published on a channel
    /// the stand-in's pubsub connection subscribes to; redis delivers a
    /// connection's messages in the order it produced them, so once the
    /// mark is there, every earlier keyspace notification has been
    /// dispatched. Tasks waiting for a prerequisite that never comes (as on
    /// a switch) do not count; see [`SonicStandIn::waiting`].
    pub fn settle(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mark = self.next_mark.fetch_add(1, Ordering::SeqCst) + 1;
        let mut conn = redis::Client::open(self.url.as_str())?
            .get_connection_with_timeout(timeout)
            .context("connecting to publish a settle mark")?;
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(&self.mark_channel)
            .arg(mark)
            .query(&mut conn)
            .context("publishing a settle mark")?;
        if receivers == 0 {
            anyhow::bail!("the SONiC stand-in is not listening (its pubsub connection is gone)");
        }
        let mut marks = lock(&self.shared.marks);
        loop {
            let inflight = self.shared.inflight.load(Ordering::SeqCst);
            if *marks >= mark && inflight == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                anyhow::bail!(
                    "SONiC stand-in did not settle within {timeout:?}: {}{inflight} notification(s) \
                     or orchagent effect(s) unprocessed{}",
                    if *marks >= mark {
                        ""
                    } else {
                        "the settle mark has not arrived, "
                    },
                    if self.shared.paused.load(Ordering::SeqCst) {
                        " (the daemons are paused)"
                    } else {
                        ""
                    },
                );
            }
            marks = self
                .shared
                .settled
                .wait_timeout(marks, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// How many tasks wait for a prerequisite (retried like the daemons do).
    pub fn waiting(&self) -> usize {
        self.shared.pending.load(Ordering::SeqCst)
    }

    /// Stop every daemon (and orchagent), as if swss were frozen: CONFIG_DB
    /// notifications queue up and nothing is confirmed until [`Self::resume`].
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Let the daemons process what queued up while they were paused.
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
        self.shared.resumed.notify_waiters();
    }

    /// Stop one daemon (`vrfmgrd`, `vlanmgrd`, `intfmgrd`, `vxlanmgrd`,
    /// `portmgrd`) or `orchagent`: its tasks queue up, the others go on (a
    /// hung daemon: the confirmations it owes never appear).
    pub fn pause_daemon(&self, daemon: &str) {
        lock(&self.shared.paused_daemons).insert(daemon.to_owned());
    }

    /// Let one daemon paused by [`Self::pause_daemon`] go on.
    pub fn resume_daemon(&self, daemon: &str) {
        lock(&self.shared.paused_daemons).remove(daemon);
        self.shared.resumed.notify_waiters();
    }
}

impl Drop for SonicStandIn {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn open(url: &str) -> Result<MultiplexedConnection> {
    // SONiC's daemons wait for redis as long as it takes (hiredis without a
    // timeout); the client's defaults (1 s to connect, 500 ms to answer)
    // turned a slow (emulated, loaded) machine into spurious daemon errors
    // ("SONiC stand-in: timed out" at load average 11).
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(30)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    writes: Arc<AtomicU64>,
    last_write: Arc<Mutex<Option<Instant>>>,
    opts: StandInOptions,
    urls: Vec<String>,
    pubsub_url: String,
    mark_channel: String,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) {
    let setup = async {
        let dbs = Dbs {
            config: open(&urls[0]).await?,
            appl: open(&urls[1]).await?,
            asic: open(&urls[2]).await?,
            counters: open(&urls[3]).await?,
            state: open(&urls[4]).await?,
            writes: writes.clone(),
            last_write: last_write.clone(),
        };
        let mut pubsub = redis::Client::open(pubsub_url.as_str())?
            .get_async_pubsub()
            .await?;
        pubsub
            .psubscribe(format!("__keyspace@{CONFIG_DB}__:*"))
            .await?;
        // Settle marks come through the same connection, after every
        // notification published before them.
        pubsub.subscribe(&mark_channel).await?;
        anyhow::Ok((dbs, pubsub))
    };
    let (dbs, pubsub) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // The bridge ports a previous orchagent left, as orchagent knows them
    // after a warm start (listed once, in steps).
    match bridge_ports(dbs.asic.clone()).await {
        Ok(found) => lock(&shared.kernel).asic_bridge_port_keys = found,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    }
    let lag = opts.notification_lag;
    let delays = [
        opts.vrfmgrd,
        opts.vlanmgrd,
        opts.intfmgrd,
        opts.vxlanmgrd,
        opts.portmgrd,
    ];
    let mut senders = Vec::new();
    for (i, name) in DAEMONS.iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel::<Task>();
        senders.push(tx);
        let d = Daemon {
            name,
            delay: delays[i],
            orchagent: opts.orchagent,
            jitter: opts.jitter,
            reorder_window: opts.reorder_window,
            rng: fastrand::Rng::with_seed(opts.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9)),
            shared: shared.clone(),
            dbs: dbs.clone(),
        };
        tokio::spawn(d.run(rx));
    }
    // Replay what exists, as daemons do when they start.
    let mut config = dbs.config.clone();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut config)
        .await
        .unwrap_or_default();
    // Names that are not UTF-8 are in no table the stand-in models.
    let mut keys: Vec<String> = keys
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .filter(|k| k.contains('|'))
        .collect();
    let order = ["PORT", "VXLAN_TUNNEL", "VXLAN_EVPN_NVO", "VRF", "VLAN"];
    keys.sort_by_key(|k| {
        let t = k.split('|').next().unwrap_or("");
        (
            order.iter().position(|o| *o == t).unwrap_or(order.len()),
            k.clone(),
        )
    });
    let replay_at = Instant::now()
        .checked_sub(Duration::from_secs(3600))
        .unwrap_or_else(Instant::now);
    for key in keys {
        dispatch(&shared, &senders, key, Kind::Set, replay_at);
    }
    let _ = ready.send(Ok(()));

    let mut stream = pubsub.into_on_message();
    let prefix = format!("__keyspace@{CONFIG_DB}__:");
    loop {
        tokio::select! {
            _ = &mut stop => break,
            msg = stream.next() => {
                let Some(msg) = msg else { break };
                let channel = msg.get_channel_name().to_owned();
                if channel == mark_channel {
                    if let Ok(mark) = msg.get_payload::<u64>() {
                        shared.marked(mark);
                    }
                    continue;
                }
                let Some(key) = channel.strip_prefix(&prefix) else { continue };
                if !lag.is_zero() {
                    tokio::time::sleep(lag).await;
                }
                let op: String = msg.get_payload().unwrap_or_default();
                let kind = match op.as_str() {
                    "del" | "expired" | "evicted" => Kind::Del,
                    "hset" | "hdel" | "hmset" | "hsetnx" | "hincrby" | "hincrbyfloat" => Kind::Set,
                    _ => continue,
                };
                dispatch(&shared, &senders, key.to_owned(), kind, Instant::now());
            }
        }
    }
}

fn dispatch(
    shared: &Shared,
    senders: &[mpsc::UnboundedSender<Task>],
    key: String,
    kind: Kind,
    arrived: Instant,
) {
    let Some(d) = key.split('|').next().and_then(daemon_of) else {
        return;
    };
    let times = if shared.duplicate { 2 } else { 1 };
    for _ in 0..times {
        lock(&shared.queued)
            .entry(key.clone())
            .or_default()
            .push_back(kind);
        shared.inflight.fetch_add(1, Ordering::SeqCst);
        let task = Task {
            key: key.clone(),
            kind,
            arrived,
        };
        if senders[d].send(task).is_err() {
            shared.finished();
        }
    }
}

enum Outcome {
    Done,
    /// A prerequisite is missing; retry later.
    Wait,
}

struct Daemon {
    name: &'static str,
    delay: Duration,
    orchagent: Duration,
    jitter: Duration,
    reorder_window: Duration,
    rng: fastrand::Rng,
    shared: Arc<Shared>,
    dbs: Dbs,
}

fn vid(name: &str) -> Option<u16> {
    let d = name.strip_prefix("Vlan")?;
    let v: u16 = d.parse().ok()?;
    (d == v.to_string() && (1..=4094).contains(&v)).then_some(v)
}

impl Daemon {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Task>) {
        let mut pending: BTreeMap<String, Kind> = BTreeMap::new();
        loop {
            let task = if pending.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout(Duration::from_millis(10), rx.recv()).await {
                    Ok(t) => t,
                    Err(_) => {
                        self.retry(&mut pending).await;
                        continue;
                    }
                }
            };
            let Some(task) = task else { break };
            let mut batch = vec![task];
            if !self.reorder_window.is_zero() {
                let until = tokio::time::Instant::now() + self.reorder_window;
                while let Ok(Some(t)) = tokio::time::timeout_at(until, rx.recv()).await {
                    batch.push(t);
                }
                batch = self.shuffle(batch);
            }
            for task in batch {
                self.process(task, &mut pending).await;
            }
        }
    }

    /// A random order of `tasks` in which the tasks of each key keep their
    /// order.
    fn shuffle(&mut self, tasks: Vec<Task>) -> Vec<Task> {
        let mut slots: Vec<String> = tasks.iter().map(|t| t.key.clone()).collect();
        self.rng.shuffle(&mut slots);
        let mut by_key: HashMap<String, VecDeque<Task>> = HashMap::new();
        for t in tasks {
            by_key.entry(t.key.clone()).or_default().push_back(t);
        }
        slots
            .into_iter()
            .filter_map(|k| by_key.get_mut(&k).and_then(VecDeque::pop_front))
            .collect()
    }

    async fn process(&mut self, task: Task, pending: &mut BTreeMap<String, Kind>) {
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.f64())
        };
        let due = task.arrived + self.delay + jitter;
        tokio::time::sleep_until(due.into()).await;
        self.shared.unpaused(self.name).await;
        let remaining: Vec<Kind> = {
            let mut q = lock(&self.shared.queued);
            let entry = q.entry(task.key.clone()).or_default();
            entry.pop_front();
            let rest = entry.iter().copied().collect();
            if entry.is_empty() {
                q.remove(&task.key);
            }
            rest
        };
        if task.kind == Kind::Del && remaining.contains(&Kind::Set) && !self.delay.is_zero() {
            self.shared.violation(
                self.name,
                format!(
                    "{} was deleted and written again before the daemon processed the delete \
                     (DEL then SET of one key: the daemon tears the object down and rebuilds it)",
                    task.key
                ),
            );
        }
        // A newer task for the same key replaces a waiting one.
        if pending.remove(&task.key).is_some() {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
        }
        if let Outcome::Wait = self.handle(&task.key, task.kind).await {
            pending.insert(task.key, task.kind);
            self.shared.pending.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.finished();
        if !pending.is_empty() {
            self.retry(pending).await;
        }
    }

    async fn retry(&mut self, pending: &mut BTreeMap<String, Kind>) {
        self.shared.unpaused(self.name).await;
        let tasks: Vec<(String, Kind)> = pending.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (key, kind) in tasks {
            if let Outcome::Done = self.handle(&key, kind).await {
                pending.remove(&key);
                self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn event(&self, what: String) {
        self.shared.event(self.name, what);
    }

    fn violation(&self, what: String) {
        self.shared.violation(self.name, what);
    }

    /// A deleted object is gone: remove the daemon's own APPL_DB / STATE_DB
    /// entries for it and record the event.
    async fn retract(
        &mut self,
        keys: &[(Db, String)],
        event: String,
    ) -> redis::RedisResult<Outcome> {
        for (db, key) in keys {
            self.dbs.del(*db, key).await?;
        }
        self.event(event);
        Ok(Outcome::Done)
    }

    fn kernel(&self) -> MutexGuard<'_, Kernel> {
        lock(&self.shared.kernel)
    }

    /// Do the manager's kernel step (with `kernel_netns`); a failure is a
    /// violation (the real managers throw or log).
    async fn netdev(&self, op: Op) {
        if let Some(k) = &self.shared.netdevs
            && let Err(e) = k.apply(&op).await
        {
            self.violation(format!("kernel: {e}"));
        }
    }

    async fn handle(&mut self, key: &str, kind: Kind) -> Outcome {
        let (table, rest) = key.split_once('|').unwrap_or((key, ""));
        let fields: BTreeMap<String, String> = match kind {
            Kind::Set => {
                let f: BTreeMap<String, String> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut self.dbs.config)
                    .await
                    .unwrap_or_default();
                if f.is_empty() {
                    self.event(format!("drop {key} (gone when processed)"));
                    return Outcome::Done;
                }
                f.into_iter().filter(|(k, _)| k != "NULL").collect()
            }
            Kind::Del => BTreeMap::new(),
        };
        let result = match (table, kind) {
            ("VRF", Kind::Set) => self.vrf_set(rest, &fields).await,
            ("VRF", Kind::Del) => self.vrf_del(rest).await,
            ("VLAN", Kind::Set) => self.vlan_set(rest, &fields).await,
            ("VLAN", Kind::Del) => self.vlan_del(rest).await,
            ("VLAN_MEMBER", Kind::Set) => self.member_set(rest, &fields).await,
            ("VLAN_MEMBER", Kind::Del) => self.member_del(rest).await,
            ("INTERFACE" | "VLAN_INTERFACE" | "LOOPBACK_INTERFACE", Kind::Set) => {
                self.intf_set(table, rest, &fields).await
            }
            ("INTERFACE" | "VLAN_INTERFACE" | "LOOPBACK_INTERFACE", Kind::Del) => {
                self.intf_del(table, rest).await
            }
            ("VXLAN_TUNNEL", Kind::Set) => {
                self.kernel().vteps.insert(
                    rest.to_owned(),
                    fields.get("src_ip").cloned().unwrap_or_default(),
                );
                Ok(Outcome::Done)
            }
            ("VXLAN_EVPN_NVO", Kind::Set) => {
                self.kernel().nvo = true;
                Ok(Outcome::Done)
            }
            ("VXLAN_TUNNEL_MAP", Kind::Set) => self.map_set(rest, &fields).await,
            ("VXLAN_TUNNEL_MAP", Kind::Del) => self.map_del(rest).await,
            ("PORT", Kind::Set) => self.port_set(rest, &fields).await,
            ("PORT", Kind::Del) => {
                self.violation(format!(
                    "PORT|{rest} was deleted: portmgrd removes the port from the ASIC"
                ));
                Ok(Outcome::Done)
            }
            _ => Ok(Outcome::Done),
        };
        match result {
            Ok(o) => o,
            Err(e) => {
                self.violation(format!("redis error while processing {key}: {e}"));
                Outcome::Done
            }
        }
    }

    async fn exists(&mut self, db: &str, key: &str) -> redis::RedisResult<bool> {
        let conn = match db {
            "state" => &mut self.dbs.state,
            "appl" => &mut self.dbs.appl,
            _ => &mut self.dbs.config,
        };
        let n: i64 = redis::cmd("EXISTS").arg(key).query_async(conn).await?;
        Ok(n == 1)
    }

    fn oid(&self, kind: u64) -> String {
        let mut k = self.kernel();
        k.next_oid += 1;
        format!("oid:0x{kind:x}{:011x}", k.next_oid)
    }

    /// Run an orchagent effect after its delay, without blocking the daemon.
    fn orchagent<F>(&self, f: F)
    where
        F: FnOnce(
                Dbs,
                Arc<Shared>,
            ) -> futures_util::future::BoxFuture<'static, redis::RedisResult<()>>
            + Send
            + 'static,
    {
        let dbs = self.dbs.clone();
        let delay = self.orchagent;
        let shared = self.shared.clone();
        shared.inflight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            shared.unpaused("orchagent").await;
            if let Err(e) = f(dbs, shared.clone()).await {
                shared.violation("orchagent", format!("redis error: {e}"));
            }
            shared.finished();
        });
    }

    // ---- vrfmgrd ----

    async fn vrf_set(
        &mut self,
        name: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        let valid = name.len() <= 15
            && name.strip_prefix("Vrf").is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !valid {
            self.violation(format!(
                "VRF {name:?}: `ip link add {name} type vrf` fails; vrfmgrd throws and swss restarts"
            ));
            return Ok(Outcome::Done);
        }
        let vni = match f.get("vni").map(|v| v.parse::<u32>()) {
            None => 0,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                self.violation(format!(
                    "VRF {name}: vni {:?} is not a number: stoul throws, vrfmgrd crashes",
                    f.get("vni")
                ));
                return Ok(Outcome::Done);
            }
        };
        let (old, taken, mapped) = {
            let k = self.kernel();
            let old = k.vrfs.get(name).copied();
            let taken = k
                .vrfs
                .iter()
                .any(|(n, v)| n != name && *v == vni && vni != 0);
            let mapped = k.maps.values().any(|(_, v)| *v == vni);
            (old, taken, mapped)
        };
        if let Some(o) = old
            && o != 0
            && vni != 0
            && o != vni
        {
            self.violation(format!("VRF {name}: vni {o} -> {vni} directly is rejected (already mapped); go through vni 0"));
            return Ok(Outcome::Done);
        }
        if taken {
            self.violation(format!(
                "VRF {name}: vni {vni} is already used by another VRF"
            ));
            return Ok(Outcome::Done);
        }
        if vni != 0 && !mapped && old.unwrap_or(0) != vni {
            self.violation(format!(
                "VRF {name} takes vni {vni} before a VLAN-VNI map for it exists \
                 (breaks the tunnel on older builds, sonic-buildimage#11428)"
            ));
        }
        let nvo = self.kernel().nvo;
        let vtep = self
            .kernel()
            .vteps
            .keys()
            .next()
            .cloned()
            .unwrap_or_default();
        if old.is_none() {
            self.netdev(Op::VrfAdd { name: name.into() }).await;
        }
        self.kernel().vrfs.insert(name.to_owned(), vni);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.dbs
            .hset(Db::State, &format!("VRF_TABLE|{name}"), &[("state", "ok")])
            .await?;
        self.dbs
            .hset(Db::Appl, &format!("VRF_TABLE:{name}"), &pairs)
            .await?;
        if let Some(o) = old.filter(|o| *o != 0 && *o != vni) {
            self.dbs
                .del(
                    Db::Appl,
                    &format!("VXLAN_VRF_TABLE:{vtep}:evpn_map_{o}_{name}"),
                )
                .await?;
        }
        if nvo && vni != 0 {
            let v = vni.to_string();
            self.dbs
                .hset(
                    Db::Appl,
                    &format!("VXLAN_VRF_TABLE:{vtep}:evpn_map_{vni}_{name}"),
                    &[("vni", v.as_str()), ("vrf", name)],
                )
                .await?;
        }
        self.dbs
            .hset(
                Db::State,
                &format!("VRF_OBJECT_TABLE|{name}"),
                &[("state", "ok")],
            )
            .await?;
        self.event(format!("set VRF|{name} vni={vni}"));
        Ok(Outcome::Done)
    }

    async fn vrf_del(&mut self, name: &str) -> redis::RedisResult<Outcome> {
        let bound: Vec<String> = self
            .kernel()
            .routed
            .iter()
            .filter(|(_, v)| v.as_str() == name)
            .map(|(k, _)| k.clone())
            .collect();
        if !bound.is_empty() {
            self.violation(format!(
                "VRF {name} deleted while {} still bound: vrfmgrd stalls until they are unbound",
                bound.join(", ")
            ));
            return Ok(Outcome::Wait);
        }
        self.netdev(Op::VrfDel { name: name.into() }).await;
        let old = self.kernel().vrfs.remove(name).unwrap_or(0);
        let vtep = self
            .kernel()
            .vteps
            .keys()
            .next()
            .cloned()
            .unwrap_or_default();
        self.retract(
            &[
                (Db::State, format!("VRF_TABLE|{name}")),
                (Db::State, format!("VRF_OBJECT_TABLE|{name}")),
                (Db::Appl, format!("VRF_TABLE:{name}")),
                (
                    Db::Appl,
                    format!("VXLAN_VRF_TABLE:{vtep}:evpn_map_{old}_{name}"),
                ),
            ],
            format!("del VRF|{name}"),
        )
        .await
    }

    // ---- vlanmgrd ----

    async fn vlan_set(
        &mut self,
        name: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        let Some(v) = vid(name) else {
            self.violation(format!(
                "VLAN key {name:?} has no valid VLAN id (logged and dropped)"
            ));
            return Ok(Outcome::Done);
        };
        if f.get("vlanid").is_some_and(|id| *id != v.to_string()) {
            self.violation(format!(
                "VLAN {name}: vlanid {:?} differs from the key",
                f.get("vlanid")
            ));
        }
        if !self.kernel().vlans.contains(&v) {
            self.netdev(Op::VlanAdd { vid: v }).await;
        }
        let new = self.kernel().vlans.insert(v);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.dbs
            .hset(Db::Appl, &format!("VLAN_TABLE:{name}"), &pairs)
            .await?;
        self.dbs
            .hset(Db::State, &format!("VLAN_TABLE|{name}"), &[("state", "ok")])
            .await?;
        if new {
            let oid = self.oid(0x26);
            self.dbs
                .hset(
                    Db::Asic,
                    &format!("ASIC_STATE:SAI_OBJECT_TYPE_VLAN:{oid}"),
                    &[("SAI_VLAN_ATTR_VLAN_ID", &v.to_string())],
                )
                .await?;
        }
        self.event(format!("set VLAN|{name}"));
        Ok(Outcome::Done)
    }

    async fn vlan_del(&mut self, name: &str) -> redis::RedisResult<Outcome> {
        let Some(v) = vid(name) else {
            return Ok(Outcome::Done);
        };
        let (members, mapped) = {
            let k = self.kernel();
            let members: Vec<String> = k
                .bridged
                .iter()
                .filter(|(_, vs)| vs.contains(&v))
                .map(|(p, _)| p.clone())
                .collect();
            let mapped = k.maps.values().any(|(mv, _)| *mv == v);
            (members, mapped)
        };
        let has_intf = self
            .exists("state", &format!("INTERFACE_TABLE|{name}"))
            .await?;
        if !members.is_empty() || mapped || has_intf {
            self.violation(format!(
                "VLAN {name} deleted while it still has {}{}{}: vlanmgrd deletes it without checks \
                 (orchagent leaves hardware state behind)",
                if members.is_empty() {
                    String::new()
                } else {
                    format!("members {} ", members.join(","))
                },
                if mapped { "a VXLAN map " } else { "" },
                if has_intf { "a VLAN interface" } else { "" },
            ));
        }
        self.netdev(Op::VlanDel { vid: v }).await;
        self.kernel().vlans.remove(&v);
        self.retract(
            &[
                (Db::Appl, format!("VLAN_TABLE:{name}")),
                (Db::State, format!("VLAN_TABLE|{name}")),
            ],
            format!("del VLAN|{name}"),
        )
        .await?;
        // orchagent removes the VLAN's SAI object.
        let vlanid = v.to_string();
        self.orchagent(move |mut dbs, _shared| {
            Box::pin(async move {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("ASIC_STATE:SAI_OBJECT_TYPE_VLAN:*")
                    .query_async(&mut dbs.asic)
                    .await?;
                for k in keys {
                    let id: Option<String> = redis::cmd("HGET")
                        .arg(&k)
                        .arg("SAI_VLAN_ATTR_VLAN_ID")
                        .query_async(&mut dbs.asic)
                        .await?;
                    if id.as_deref() == Some(vlanid.as_str()) {
                        dbs.del(Db::Asic, &k).await?;
                    }
                }
                Ok(())
            })
        });
        Ok(Outcome::Done)
    }

    async fn member_set(
        &mut self,
        rest: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        let Some((vlan, port)) = rest.split_once('|') else {
            self.violation(format!(
                "VLAN_MEMBER|{rest}: malformed key: stoi throws, vlanmgrd crashes"
            ));
            return Ok(Outcome::Done);
        };
        let Some(v) = vid(vlan) else {
            self.violation(format!(
                "VLAN_MEMBER|{rest}: malformed VLAN: stoi throws, vlanmgrd crashes"
            ));
            return Ok(Outcome::Done);
        };
        let state_key = format!("VLAN_MEMBER_TABLE|{vlan}|{port}");
        if self.exists("state", &state_key).await? {
            let appl: BTreeMap<String, String> = redis::cmd("HGETALL")
                .arg(format!("VLAN_MEMBER_TABLE:{vlan}:{port}"))
                .query_async(&mut self.dbs.appl)
                .await?;
            if appl.get("tagging_mode") != f.get("tagging_mode") {
                self.violation(format!(
                    "VLAN_MEMBER|{rest} changed in place ({:?} -> {:?}): vlanmgrd skips a SET of an existing member",
                    appl.get("tagging_mode"),
                    f.get("tagging_mode")
                ));
            }
            return Ok(Outcome::Done);
        }
        if !self.kernel().vlans.contains(&v)
            || !self.exists("state", &format!("PORT_TABLE|{port}")).await?
        {
            return Ok(Outcome::Wait);
        }
        if let Some(vrf) = self.kernel().routed.get(port).cloned() {
            self.violation(format!(
                "VLAN_MEMBER|{rest}: {port} is still a router interface (vrf {vrf:?}): orchagent cannot create a \
                 bridge port, and intfmgrd's pending `nomaster` will pull the port out of the bridge"
            ));
        }
        let first = {
            let mut k = self.kernel();
            let e = k.bridged.entry(port.to_owned()).or_default();
            let first = e.is_empty();
            e.insert(v);
            first
        };
        let mode = f.get("tagging_mode").cloned().unwrap_or_default();
        let (vid, port_name) = (v, port.to_owned());
        let untagged = mode == "untagged" || mode == "priority_tagged";
        self.netdev(Op::MemberAdd {
            vid,
            port: port_name,
            untagged,
        })
        .await;
        self.dbs
            .hset(
                Db::Appl,
                &format!("VLAN_MEMBER_TABLE:{vlan}:{port}"),
                &[("tagging_mode", &mode)],
            )
            .await?;
        self.dbs
            .hset(Db::State, &state_key, &[("state", "ok")])
            .await?;
        self.event(format!("set VLAN_MEMBER|{rest}"));
        if first {
            let port = port.to_owned();
            let bp = self.oid(0x3a);
            self.orchagent(move |mut dbs, shared| {
                Box::pin(async move {
                    let oid: Option<String> = redis::cmd("HGET")
                        .arg("COUNTERS_PORT_NAME_MAP")
                        .arg(&port)
                        .query_async(&mut dbs.counters)
                        .await?;
                    if let Some(oid) = oid {
                        let key = format!("ASIC_STATE:SAI_OBJECT_TYPE_BRIDGE_PORT:{bp}");
                        {
                            let mut k = lock(&shared.kernel);
                            k.asic_bridge_ports.insert(port.clone());
                            k.asic_bridge_port_keys
                                .entry(oid.clone())
                                .or_default()
                                .push(key.clone());
                        }
                        shared.event("orchagent", format!("add BRIDGE_PORT {port}"));
                        dbs.hset(
                            Db::Asic,
                            &key,
                            &[
                                ("SAI_BRIDGE_PORT_ATTR_PORT_ID", &oid),
                                ("SAI_BRIDGE_PORT_ATTR_TYPE", "SAI_BRIDGE_PORT_TYPE_PORT"),
                            ],
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        }
        Ok(Outcome::Done)
    }

    async fn member_del(&mut self, rest: &str) -> redis::RedisResult<Outcome> {
        let Some((vlan, port)) = rest.split_once('|') else {
            return Ok(Outcome::Done);
        };
        let Some(v) = vid(vlan) else {
            return Ok(Outcome::Done);
        };
        let state_key = format!("VLAN_MEMBER_TABLE|{vlan}|{port}");
        if !self.exists("state", &state_key).await? {
            self.event(format!("del VLAN_MEMBER|{rest} (never applied)"));
            return Ok(Outcome::Done);
        }
        let (bridged, routed) = {
            let k = self.kernel();
            (
                k.bridged.get(port).is_some_and(|s| s.contains(&v)),
                k.routed.contains_key(port),
            )
        };
        if !bridged || routed {
            self.violation(format!(
                "VLAN_MEMBER|{rest} deleted after {port} left the bridge (it is bound to a VRF): \
                 `bridge vlan del` fails, vlanmgrd exits and swss restarts (sonic-buildimage#13772)"
            ));
        }
        let last = {
            let mut k = self.kernel();
            let last = match k.bridged.get_mut(port) {
                Some(s) => {
                    s.remove(&v);
                    s.is_empty()
                }
                None => true,
            };
            if last {
                k.bridged.remove(port);
            }
            last
        };
        let (vid, port_name) = (v, port.to_owned());
        self.netdev(Op::MemberDel {
            vid,
            port: port_name,
            last,
        })
        .await;
        self.retract(
            &[
                (Db::Appl, format!("VLAN_MEMBER_TABLE:{vlan}:{port}")),
                (Db::State, state_key),
            ],
            format!("del VLAN_MEMBER|{rest}"),
        )
        .await?;
        if last {
            let port = port.to_owned();
            self.orchagent(move |mut dbs, shared| {
                Box::pin(async move {
                    let oid: Option<String> = redis::cmd("HGET")
                        .arg("COUNTERS_PORT_NAME_MAP")
                        .arg(&port)
                        .query_async(&mut dbs.counters)
                        .await?;
                    let Some(oid) = oid else { return Ok(()) };
                    // Recorded before the ASIC_DB delete the agent waits for.
                    let keys = {
                        let mut k = lock(&shared.kernel);
                        if k.asic_bridge_ports.remove(&port) {
                            shared.event("orchagent", format!("del BRIDGE_PORT {port}"));
                        }
                        k.asic_bridge_port_keys.remove(&oid).unwrap_or_default()
                    };
                    for k in keys {
                        dbs.del(Db::Asic, &k).await?;
                    }
                    Ok(())
                })
            });
        }
        Ok(Outcome::Done)
    }

    // ---- intfmgrd ----

    async fn intf_set(
        &mut self,
        table: &str,
        rest: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        if let Some((ifname, prefix)) = rest.split_once('|') {
            if !self.kernel().routed.contains_key(ifname) {
                return Ok(Outcome::Wait);
            }
            // intfmgrd: the address for orchagent, then its STATE entry
            // (cfgmgr/intfmgr.cpp doIntfAddrTask).
            let family = if prefix.contains(':') { "IPv6" } else { "IPv4" };
            self.dbs
                .hset(
                    Db::Appl,
                    &format!("INTF_TABLE:{ifname}:{prefix}"),
                    &[("scope", "global"), ("family", family)],
                )
                .await?;
            self.dbs
                .hset(
                    Db::State,
                    &format!("INTERFACE_TABLE|{ifname}|{prefix}"),
                    &[("state", "ok")],
                )
                .await?;
            self.event(format!("set {table}|{rest}"));
            return Ok(Outcome::Done);
        }
        let ifname = rest;
        let ready = match table {
            "INTERFACE" => {
                self.exists("state", &format!("PORT_TABLE|{ifname}"))
                    .await?
            }
            "VLAN_INTERFACE" => vid(ifname).is_some_and(|v| self.kernel().vlans.contains(&v)),
            _ => true,
        };
        if !ready {
            return Ok(Outcome::Wait);
        }
        let vrf = f.get("vrf_name").cloned().unwrap_or_default();
        if !vrf.is_empty() && !self.exists("state", &format!("VRF_TABLE|{vrf}")).await? {
            return Ok(Outcome::Wait);
        }
        let current = self.kernel().routed.get(ifname).cloned();
        if let Some(old) = &current
            && *old != vrf
        {
            self.violation(format!(
                "{table}|{ifname}: VRF changed in place ({old:?} -> {vrf:?}): intfmgrd logs \
                 \"can not change to {vrf} directly, skipping\" and drops it"
            ));
            return Ok(Outcome::Done);
        }
        if table == "INTERFACE" && self.kernel().bridged.contains_key(ifname) {
            self.violation(format!(
                "INTERFACE|{ifname} (vrf {vrf:?}) while {ifname} is still a VLAN member: `ip link set master` pulls it \
                 out of the bridge and vlanmgrd crashes on the member delete (sonic-buildimage#13772)"
            ));
        } else if table == "INTERFACE" && self.kernel().asic_bridge_ports.contains(ifname) {
            self.violation(format!(
                "INTERFACE|{ifname} (vrf {vrf:?}) while orchagent still has {ifname}'s ASIC bridge \
                 port: a router interface on a port the ASIC still bridges (wait for the bridge port \
                 to go, sonic-configdb reference §3.3 rule 2)"
            ));
        }
        if current.is_none() && !vrf.is_empty() {
            let (ifname, vrf) = (ifname.to_owned(), vrf.clone());
            self.netdev(Op::Bind { ifname, vrf }).await;
        }
        self.kernel().routed.insert(ifname.to_owned(), vrf.clone());
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.dbs
            .hset(Db::Appl, &format!("INTF_TABLE:{ifname}"), &pairs)
            .await?;
        self.dbs
            .hset(
                Db::State,
                &format!("INTERFACE_TABLE|{ifname}"),
                &[("vrf", vrf.as_str())],
            )
            .await?;
        self.event(format!("set {table}|{ifname} vrf={vrf}"));
        if current.is_none() && table != "LOOPBACK_INTERFACE" {
            let name = ifname.to_owned();
            let rif = self.oid(0x6);
            self.orchagent(move |mut dbs, _shared| {
                Box::pin(async move {
                    dbs.hset(
                        Db::Asic,
                        &format!("ASIC_STATE:SAI_OBJECT_TYPE_ROUTER_INTERFACE:{rif}"),
                        &[],
                    )
                    .await?;
                    dbs.hset(
                        Db::Counters,
                        "COUNTERS_RIF_NAME_MAP",
                        &[(name.as_str(), rif.as_str())],
                    )
                    .await
                })
            });
        }
        Ok(Outcome::Done)
    }

    async fn intf_del(&mut self, table: &str, rest: &str) -> redis::RedisResult<Outcome> {
        if let Some((ifname, prefix)) = rest.split_once('|') {
            return self
                .retract(
                    &[
                        (Db::Appl, format!("INTF_TABLE:{ifname}:{prefix}")),
                        (Db::State, format!("INTERFACE_TABLE|{ifname}|{prefix}")),
                    ],
                    format!("del {table}|{rest}"),
                )
                .await;
        }
        let ifname = rest;
        let ips: Vec<String> = redis::cmd("KEYS")
            .arg(format!("INTERFACE_TABLE|{ifname}|*"))
            .query_async(&mut self.dbs.state)
            .await?;
        if !ips.is_empty() {
            return Ok(Outcome::Wait);
        }
        let was = self.kernel().routed.remove(ifname);
        if was.is_some() {
            self.netdev(Op::Unbind {
                ifname: ifname.into(),
            })
            .await;
        }
        self.retract(
            &[
                (Db::Appl, format!("INTF_TABLE:{ifname}")),
                (Db::State, format!("INTERFACE_TABLE|{ifname}")),
            ],
            format!("del {table}|{ifname}"),
        )
        .await?;
        if was.is_some() {
            let name = ifname.to_owned();
            self.orchagent(move |mut dbs, _shared| {
                Box::pin(async move {
                    let rif: Option<String> = redis::cmd("HGET")
                        .arg("COUNTERS_RIF_NAME_MAP")
                        .arg(&name)
                        .query_async(&mut dbs.counters)
                        .await?;
                    if let Some(rif) = rif {
                        dbs.del(
                            Db::Asic,
                            &format!("ASIC_STATE:SAI_OBJECT_TYPE_ROUTER_INTERFACE:{rif}"),
                        )
                        .await?;
                    }
                    dbs.hdel(Db::Counters, "COUNTERS_RIF_NAME_MAP", &name).await
                })
            });
        }
        Ok(Outcome::Done)
    }

    // ---- vxlanmgrd ----

    async fn map_set(
        &mut self,
        rest: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        let Some((vtep, map)) = rest.split_once('|') else {
            return Ok(Outcome::Done);
        };
        let (Some(vlan), Some(vni)) = (f.get("vlan"), f.get("vni")) else {
            self.violation(format!("VXLAN_TUNNEL_MAP|{rest} is incomplete ({f:?}); vxlanmgrd caches the half-written map"));
            return Ok(Outcome::Done);
        };
        let (Some(v), Ok(n)) = (vid(vlan), vni.parse::<u32>()) else {
            self.violation(format!(
                "VXLAN_TUNNEL_MAP|{rest}: bad vlan {vlan:?} or vni {vni:?}"
            ));
            return Ok(Outcome::Done);
        };
        let active = self
            .kernel()
            .vteps
            .get(vtep)
            .is_some_and(|ip| !ip.is_empty());
        if !active || !self.kernel().vlans.contains(&v) {
            return Ok(Outcome::Wait);
        }
        let existing = self.kernel().maps.get(map).copied();
        if let Some(e) = existing {
            if e != (v, n) {
                self.violation(format!("VXLAN_TUNNEL_MAP|{rest} changed in place: vxlanmgrd ignores it (\"Map already present\")"));
            }
            return Ok(Outcome::Done);
        }
        let clash = self
            .kernel()
            .maps
            .iter()
            .find(|(_, (mv, mn))| *mv == v || *mn == n)
            .map(|(k, _)| k.clone());
        if let Some(other) = clash {
            self.violation(format!(
                "VXLAN_TUNNEL_MAP|{rest}: VLAN or VNI already mapped by {other}"
            ));
            return Ok(Outcome::Done);
        }
        let netdev = format!("{vtep}-{v}");
        if netdev.len() > 15 {
            self.violation(format!("VXLAN_TUNNEL_MAP|{rest}: netdev {netdev:?} is longer than 15 characters; `ip link add` fails"));
            return Ok(Outcome::Done);
        }
        let src_ip = self.kernel().vteps.get(vtep).cloned().unwrap_or_default();
        let op = Op::VxlanAdd {
            vtep: vtep.into(),
            vid: v,
            vni: n,
            src_ip,
        };
        self.netdev(op).await;
        self.kernel().maps.insert(map.to_owned(), (v, n));
        self.dbs
            .hset(
                Db::Appl,
                &format!("VXLAN_TUNNEL_MAP_TABLE:{vtep}:{map}"),
                &[("vlan", vlan), ("vni", vni)],
            )
            .await?;
        self.dbs
            .hset(
                Db::State,
                &format!("SUPPRESS_VLAN_NEIGH_TABLE|{vlan}"),
                &[("netdev", &netdev)],
            )
            .await?;
        self.event(format!("set VXLAN_TUNNEL_MAP|{rest}"));
        Ok(Outcome::Done)
    }

    async fn map_del(&mut self, rest: &str) -> redis::RedisResult<Outcome> {
        let Some((vtep, map)) = rest.split_once('|') else {
            return Ok(Outcome::Done);
        };
        let Some((v, n)) = self.kernel().maps.remove(map) else {
            return Ok(Outcome::Done);
        };
        self.netdev(Op::VxlanDel {
            vtep: vtep.into(),
            vid: v,
        })
        .await;
        let holder = self
            .kernel()
            .vrfs
            .iter()
            .find(|(_, vni)| **vni == n && n != 0)
            .map(|(name, _)| name.clone());
        if let Some(vrf) = holder {
            self.violation(format!(
                "VXLAN_TUNNEL_MAP|{rest} deleted while {vrf} still holds VNI {n}: orchagent took \
                 the map's entry out of the hardware when the VRF got the VNI and cannot remove it \
                 again (vxlanorch.cpp VxlanTunnelMapOrch::delOperation retries; `config vxlan map \
                 del` refuses: \"VNI mapped to vrf\"); the VRF (or its VNI) goes first"
            ));
        }
        if !self.kernel().vlans.contains(&v) {
            self.violation(format!(
                "VXLAN_TUNNEL_MAP|{rest} deleted after Vlan{v}: orchagent fails with \"vlan id doesn't exist\" and leaves hardware state"
            ));
        }
        self.retract(
            &[
                (Db::Appl, format!("VXLAN_TUNNEL_MAP_TABLE:{vtep}:{map}")),
                (Db::State, format!("SUPPRESS_VLAN_NEIGH_TABLE|Vlan{v}")),
            ],
            format!("del VXLAN_TUNNEL_MAP|{rest}"),
        )
        .await
    }

    // ---- portmgrd ----

    async fn port_set(
        &mut self,
        port: &str,
        f: &BTreeMap<String, String>,
    ) -> redis::RedisResult<Outcome> {
        if !f.contains_key("lanes") {
            self.violation(format!(
                "PORT|{port} has no lanes: an HSET on a missing PORT created a lane-less port"
            ));
            return Ok(Outcome::Done);
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for k in ["mtu", "admin_status"] {
            if let Some(v) = f.get(k) {
                pairs.push((k, v.as_str()));
            }
        }
        let (mtu, admin) = (f.get("mtu").cloned(), f.get("admin_status").cloned());
        self.netdev(Op::Port {
            port: port.into(),
            mtu,
            admin,
        })
        .await;
        if !pairs.is_empty() {
            self.dbs
                .hset(Db::State, &format!("PORT_TABLE|{port}"), &pairs)
                .await?;
            self.dbs
                .hset(Db::Appl, &format!("PORT_TABLE:{port}"), &pairs)
                .await?;
        }
        self.event(format!("set PORT|{port}"));
        Ok(Outcome::Done)
    }
}
