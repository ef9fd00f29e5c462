//! The kernel view: one task keeps a [`KernelState`] current over
//! rtnetlink (feature `agent`).
//!
//! [`KernelView::start`] opens a route-netlink socket (in the agent's own
//! network namespace, or in another one with
//! [`KernelView::start_in_netns`]), joins the link and IPv4/IPv6 address
//! multicast groups (bridge-port VLAN changes arrive as `AF_BRIDGE` link
//! messages in the link group), dumps links, bridge VLANs and addresses, and
//! returns once that first state is complete. A task then owns the socket:
//! it applies every event, publishes a new [`Arc<KernelState>`] on a
//! `tokio::sync::watch` channel after each batch that changed something,
//! and broadcasts [`PortEvent`]s for operational-state changes.
//!
//! Consistency: events queued since the subscription are applied on top of
//! a dump, so the view converges to the kernel even when they race. A dump
//! the kernel marks `NLM_F_DUMP_INTR` (changed while it ran) is repeated; a
//! lost event (`ENOBUFS`, the socket's buffer overflowed) marks the state
//! out of sync and triggers a full redump; a socket error or a dump that
//! does not finish within [`ViewOptions::dump_timeout`] reconnects with
//! backoff. While resynchronising, the published state has `in_sync ==
//! false` and [`KernelView::wait_until`] does not pass on it.
//!
//! The task stops when the last clone of the view is dropped.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::decode;
use super::expect::{KernelExpectations, Mismatch, compare};
use super::state::{KernelState, MgmtAddressError, PortEvent};
use crate::observed::PortOperState;

/// Route-netlink multicast groups: links (and bridge ports), IPv4 and IPv6
/// addresses (`RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`).
const GROUPS: [u32; 3] = [1, 5, 9];

/// Errors of the kernel view.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open a route-netlink socket{where_}: {source}")]
    Open {
        where_: String,
        source: std::io::Error,
    },
    #[error(
        "netlink {what} did not finish within {timeout:?}; the kernel or the \
         agent is overloaded (dump_timeout)"
    )]
    Timeout {
        what: &'static str,
        timeout: Duration,
    },
    #[error("netlink {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "netlink {what} was interrupted {attempts} times in a row by concurrent \
         changes (NLM_F_DUMP_INTR or lost events); retrying later"
    )]
    Interrupted { what: &'static str, attempts: u32 },
    #[error("the netlink connection closed during {what}")]
    Closed { what: &'static str },
    #[error("the kernel view task has stopped")]
    Stopped,
    #[error(transparent)]
    MgmtAddress(#[from] MgmtAddressError),
}

impl KernelError {
    /// Whether trying again later may succeed without a change of input
    /// (a missing management address may appear with DHCP).
    pub fn is_transient(&self) -> bool {
        !matches!(self, KernelError::Netns { .. } | KernelError::Open { .. })
    }
}

/// The kernel did not show what was expected in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", describe_not_converged(self))]
pub struct NotConverged {
    pub waited: Duration,
    /// The view was resynchronising when the time ran out.
    pub in_sync: bool,
    /// What was still missing or wrong.
    pub missing: Vec<Mismatch>,
}

fn describe_not_converged(n: &NotConverged) -> String {
    let mut s = format!(
        "the kernel did not confirm the desired state within {:?}",
        n.waited
    );
    if !n.in_sync {
        s.push_str(" (the kernel view was resynchronising)");
    }
    if !n.missing.is_empty() {
        s.push_str(&format!(
            "; {} mismatch{}:",
            n.missing.len(),
            if n.missing.len() == 1 { "" } else { "es" }
        ));
        for m in &n.missing {
            s.push_str("\n  - ");
            s.push_str(&m.to_string());
        }
    }
    s
}

/// How the view talks to the kernel.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// A network namespace file (`/var/run/netns/<name>`, `/proc/<pid>/ns/net`);
    /// `None`: the agent's own.
    pub netns: Option<PathBuf>,
    /// The longest one dump may take before the connection is reset.
    pub dump_timeout: Duration,
    /// `SO_RCVBUF` requested for the socket (the kernel caps it at
    /// `net.core.rmem_max` and doubles it). Lost events are recovered by a
    /// redump, so this only makes them rarer.
    pub receive_buffer: usize,
    /// Consecutive interrupted dumps before giving up (and reconnecting).
    pub max_dump_attempts: u32,
    /// First and longest pause between reconnection attempts.
    pub reconnect_backoff: (Duration, Duration),
    /// Port events buffered per subscriber before it lags.
    pub event_capacity: usize,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            netns: None,
            dump_timeout: Duration::from_secs(10),
            receive_buffer: 4 << 20,
            max_dump_attempts: 50,
            reconnect_backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            event_capacity: 4096,
        }
    }
}

/// Counters of the view's work (for logs, metrics and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ViewStats {
    /// Complete synchronisations (dump + queued events).
    pub syncs: u64,
    /// Dumps the kernel marked `NLM_F_DUMP_INTR`, each repeated.
    pub interrupted_dumps: u64,
    /// Times the socket reported lost events (`ENOBUFS`).
    pub overruns: u64,
    /// New sockets after a socket error or a timeout.
    pub reconnects: u64,
    /// Event messages applied.
    pub events: u64,
    /// The last error, until the next successful synchronisation.
    pub last_error: Option<String>,
}

enum Control {
    Resync(oneshot::Sender<Result<(), String>>),
}

struct Shared {
    stats: Mutex<ViewStats>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, ViewStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Aborts the view's task when the last handle is dropped.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle on the kernel view; cheap to clone.
#[derive(Clone)]
pub struct KernelView {
    state: watch::Receiver<Arc<KernelState>>,
    events: broadcast::Sender<PortEvent>,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

impl std::fmt::Debug for KernelView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("KernelView")
            .field("links", &s.len())
            .field("in_sync", &s.in_sync)
            .field("generation", &s.generation)
            .finish()
    }
}

impl KernelView {
    /// Start the view in the agent's own network namespace.
    pub async fn start() -> Result<KernelView, KernelError> {
        KernelView::start_with(ViewOptions::default()).await
    }

    /// Start the view in the network namespace at `path`.
    pub async fn start_in_netns(path: impl AsRef<Path>) -> Result<KernelView, KernelError> {
        KernelView::start_with(ViewOptions {
            netns: Some(path.as_ref().to_owned()),
            ..ViewOptions::default()
        })
        .await
    }

    /// Start the view; returns once the first complete state is published.
    pub async fn start_with(opts: ViewOptions) -> Result<KernelView, KernelError> {
        let netns = match &opts.netns {
            Some(p) => Some(Arc::new(File::open(p).map_err(|source| {
                KernelError::Netns {
                    path: p.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        let (state_tx, state_rx) = watch::channel(Arc::new(KernelState::default()));
        let (events, _) = broadcast::channel(opts.event_capacity.max(1));
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            stats: Mutex::new(ViewStats::default()),
        });
        let mut task = Task {
            opts,
            netns,
            current: Arc::new(KernelState::default()),
            state: state_tx,
            events: events.clone(),
            control: control_rx,
            shared: shared.clone(),
            generation: 0,
            waiting_resyncs: Vec::new(),
        };
        let mut conn = task.connect().await?;
        task.sync(&mut conn).await?;
        let handle = tokio::spawn(task.run(conn));
        Ok(KernelView {
            state: state_rx,
            events,
            control: control_tx,
            shared,
            _task: Arc::new(TaskGuard(handle)),
        })
    }

    /// The current state (a cheap snapshot).
    pub fn state(&self) -> Arc<KernelState> {
        self.state.borrow().clone()
    }

    /// A receiver that changes whenever the state changes (the current
    /// state counts as seen).
    pub fn subscribe(&self) -> watch::Receiver<Arc<KernelState>> {
        let mut rx = self.state.clone();
        rx.mark_unchanged();
        rx
    }

    /// Operational-state changes of every link, in the order the view saw
    /// them; the state they lead to is published before they are sent. A
    /// receiver that falls behind by more than
    /// [`ViewOptions::event_capacity`] gets `Lagged` and should re-read
    /// [`KernelView::state`].
    pub fn port_events(&self) -> broadcast::Receiver<PortEvent> {
        self.events.subscribe()
    }

    /// A port's operational state now (`Unknown` without a netdev).
    pub fn oper_state(&self, port: &str) -> PortOperState {
        self.state.borrow().oper_state(port)
    }

    /// Operational state per link name.
    pub fn oper_states(&self) -> std::collections::BTreeMap<String, PortOperState> {
        self.state.borrow().oper_states()
    }

    /// The management interface's address (first global unicast, IPv4 first).
    pub fn management_address(&self, interface: &str) -> Result<IpAddr, KernelError> {
        Ok(self.state.borrow().management_address(interface)?)
    }

    /// The view's counters.
    pub fn stats(&self) -> ViewStats {
        self.shared.stats().clone()
    }

    /// Dump everything again (as after a lost event) and wait until the
    /// new state is published.
    pub async fn resync(&self) -> Result<(), KernelError> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Resync(tx))
            .map_err(|_| KernelError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(KernelError::Io {
                what: "resynchronisation",
                source: std::io::Error::other(e),
            }),
            Err(_) => Err(KernelError::Stopped),
        }
    }

    /// Wait until `pred` holds for a published state (woken by changes,
    /// no polling); `Err` with the last state after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&KernelState) -> bool,
    ) -> Result<Arc<KernelState>, Arc<KernelState>> {
        let mut rx = self.state.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return Ok(s);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(rx.borrow().clone()),
            }
        }
    }

    /// Wait until the kernel meets `exp` on a complete (in-sync) state; on
    /// timeout, what is still missing.
    pub async fn wait_until(
        &self,
        exp: &KernelExpectations,
        timeout: Duration,
    ) -> Result<Arc<KernelState>, NotConverged> {
        self.wait_for(timeout, |s| s.in_sync && compare(s, exp).is_empty())
            .await
            .map_err(|s| NotConverged {
                waited: timeout,
                in_sync: s.in_sync,
                missing: compare(&s, exp),
            })
    }
}

/// One socket: the request handle, the multicast messages, the connection
/// future's task.
struct Conn {
    handle: rtnetlink::Handle,
    events: futures_lite::stream::Boxed<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

struct Task {
    opts: ViewOptions,
    netns: Option<Arc<File>>,
    current: Arc<KernelState>,
    state: watch::Sender<Arc<KernelState>>,
    events: broadcast::Sender<PortEvent>,
    control: mpsc::UnboundedReceiver<Control>,
    shared: Arc<Shared>,
    generation: u64,
    /// Resync requests that arrived while disconnected.
    waiting_resyncs: Vec<oneshot::Sender<Result<(), String>>>,
}

enum Dump {
    Links,
    BridgeVlans,
    Addresses,
}

impl Dump {
    fn what(&self) -> &'static str {
        match self {
            Dump::Links => "link dump",
            Dump::BridgeVlans => "bridge VLAN dump",
            Dump::Addresses => "address dump",
        }
    }

    fn request(&self) -> RouteNetlinkMessage {
        match self {
            Dump::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
            Dump::BridgeVlans => {
                let mut m = LinkMessage::default();
                m.header.interface_family = AddressFamily::Bridge;
                m.attributes
                    .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
                RouteNetlinkMessage::GetLink(m)
            }
            Dump::Addresses => RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        }
    }
}

enum DumpOutcome {
    Complete(Vec<RouteNetlinkMessage>),
    /// Marked `NLM_F_DUMP_INTR`, or ended without `NLMSG_DONE`.
    Interrupted,
}

impl Task {
    fn describe_netns(&self) -> String {
        match &self.opts.netns {
            Some(p) => format!(" in network namespace {}", p.display()),
            None => String::new(),
        }
    }

    /// Open a socket (in the namespace), join the groups, start its driver.
    async fn connect(&self) -> Result<Conn, KernelError> {
        let where_ = self.describe_netns();
        let rt = tokio::runtime::Handle::current();
        let netns = self.netns.clone();
        let rcvbuf = i32::try_from(self.opts.receive_buffer).unwrap_or(i32::MAX);
        let open = move || -> std::io::Result<_> {
            if let Some(ns) = &netns {
                nix::sched::setns(ns.as_ref(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
            }
            // The socket registers with the runtime's reactor; it stays in
            // the namespace it was created in.
            let _rt = rt.enter();
            let (mut connection, handle, events) = rtnetlink::new_connection()?;
            // NLMSG_DONE tells a complete dump from a cut one, and carries
            // NLM_F_DUMP_INTR too.
            connection.set_forward_done(true);
            let socket = connection.socket_mut().socket_mut();
            socket.set_rx_buf_sz(rcvbuf)?;
            for g in GROUPS {
                socket.add_membership(g)?;
            }
            Ok((connection, handle, events))
        };
        let opened = if self.netns.is_some() {
            // setns affects the calling thread only: a thread of its own,
            // never one of the runtime's (pooled) threads.
            let (tx, rx) = oneshot::channel();
            std::thread::Builder::new()
                .name("netlink-netns".into())
                .spawn(move || {
                    let _ = tx.send(open());
                })
                .map_err(|source| KernelError::Open {
                    where_: where_.clone(),
                    source,
                })?;
            rx.await
                .unwrap_or_else(|_| Err(std::io::Error::other("the socket thread ended early")))
        } else {
            open()
        };
        let (connection, handle, events) =
            opened.map_err(|source| KernelError::Open { where_, source })?;
        let driver = tokio::spawn(connection);
        Ok(Conn {
            handle,
            events: events.boxed(),
            driver,
        })
    }

    /// One dump, bounded by the dump timeout.
    async fn dump(&self, conn: &mut Conn, dump: &Dump) -> Result<DumpOutcome, KernelError> {
        let what = dump.what();
        let mut req = NetlinkMessage::from(dump.request());
        req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut replies = conn
            .handle
            .request(req)
            .map_err(|_| KernelError::Closed { what })?;
        let collect = async {
            let mut out = Vec::new();
            let mut interrupted = false;
            while let Some(m) = replies.next().await {
                interrupted |= m.header.flags & NLM_F_DUMP_INTR != 0;
                match m.payload {
                    NetlinkPayload::Done(_) => {
                        return Ok(if interrupted {
                            DumpOutcome::Interrupted
                        } else {
                            DumpOutcome::Complete(out)
                        });
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(KernelError::Io {
                            what,
                            source: e.to_io(),
                        });
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
            // The stream ended without NLMSG_DONE: the connection closed,
            // or a foreign notification with our sequence number ended the
            // request early. Either way the dump is incomplete.
            if conn.driver.is_finished() {
                Err(KernelError::Closed { what })
            } else {
                Ok(DumpOutcome::Interrupted)
            }
        };
        tokio::time::timeout(self.opts.dump_timeout, collect)
            .await
            .map_err(|_| KernelError::Timeout {
                what,
                timeout: self.opts.dump_timeout,
            })?
    }

    /// A complete, uninterrupted dump of one kind.
    async fn dump_clean(
        &self,
        conn: &mut Conn,
        dump: Dump,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        for _ in 0..self.opts.max_dump_attempts {
            match self.dump(conn, &dump).await? {
                DumpOutcome::Complete(m) => return Ok(m),
                DumpOutcome::Interrupted => {
                    self.shared.stats().interrupted_dumps += 1;
                    tracing::debug!(
                        dump = dump.what(),
                        "dump interrupted by concurrent changes, repeating it"
                    );
                }
            }
        }
        Err(KernelError::Interrupted {
            what: dump.what(),
            attempts: self.opts.max_dump_attempts,
        })
    }

    /// Dump everything, apply the events queued meanwhile, publish.
    async fn sync(&mut self, conn: &mut Conn) -> Result<(), KernelError> {
        let started = Instant::now();
        for _ in 0..self.opts.max_dump_attempts {
            let mut fresh = KernelState::new();
            for dump in [Dump::Links, Dump::BridgeVlans, Dump::Addresses] {
                for m in self.dump_clean(conn, dump).await? {
                    decode::apply(&mut fresh, &m);
                }
            }
            // Events queued since the subscription are newer than or as new
            // as what the dumps saw of an object: apply them on top.
            let mut lost = false;
            let mut closed = false;
            while let Some(next) = futures_lite::future::poll_once(conn.events.next()).await {
                match next {
                    Some((m, _)) => match m.payload {
                        NetlinkPayload::Overrun(_) => lost = true,
                        NetlinkPayload::InnerMessage(m) => {
                            decode::apply(&mut fresh, &m);
                        }
                        _ => {}
                    },
                    None => {
                        closed = true;
                        break;
                    }
                }
            }
            if closed {
                return Err(KernelError::Closed {
                    what: "synchronisation",
                });
            }
            if lost {
                self.shared.stats().overruns += 1;
                tracing::warn!("kernel events were lost while dumping (ENOBUFS); dumping again");
                continue;
            }
            let events = super::state::port_events(&self.current, &fresh);
            let links = fresh.len();
            // Counted before it is published: whoever sees the new state
            // sees the sync that made it in the counters too.
            {
                let mut st = self.shared.stats();
                st.syncs += 1;
                st.last_error = None;
            }
            self.publish(fresh, events);
            tracing::debug!(
                links,
                took = ?started.elapsed(),
                netns = %self.describe_netns(),
                "kernel view synchronised"
            );
            return Ok(());
        }
        Err(KernelError::Interrupted {
            what: "synchronisation",
            attempts: self.opts.max_dump_attempts,
        })
    }

    fn publish(&mut self, mut new: KernelState, events: Vec<PortEvent>) {
        self.generation += 1;
        new.generation = self.generation;
        new.in_sync = true;
        self.current = Arc::new(new);
        self.state.send_replace(self.current.clone());
        for e in events {
            let _ = self.events.send(e);
        }
    }

    /// Publish the current content as incomplete (before resynchronising).
    fn mark_out_of_sync(&mut self) {
        if self.current.in_sync {
            self.generation += 1;
            let s = Arc::make_mut(&mut self.current);
            s.in_sync = false;
            s.generation = self.generation;
            self.state.send_replace(self.current.clone());
        }
    }

    /// Apply one event message; collect the port events it causes.
    fn apply_event(&mut self, msg: &RouteNetlinkMessage, out: &mut Vec<PortEvent>) -> bool {
        let names: Vec<String> = match msg {
            RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m)
                if m.header.interface_family != AddressFamily::Bridge =>
            {
                let mut n = Vec::with_capacity(2);
                if let Some(l) = self.current.link_by_index(m.header.index) {
                    n.push(l.name.clone());
                }
                for a in &m.attributes {
                    if let LinkAttribute::IfName(name) = a
                        && !n.contains(name)
                    {
                        n.push(name.clone());
                    }
                }
                n
            }
            _ => Vec::new(),
        };
        let before: Vec<PortOperState> = names.iter().map(|n| self.current.oper_state(n)).collect();
        let changed = decode::apply(Arc::make_mut(&mut self.current), msg);
        for (name, old) in names.into_iter().zip(before) {
            let new = self.current.oper_state(&name);
            if new != old {
                out.push(PortEvent {
                    port: name,
                    old,
                    new,
                });
            }
        }
        changed
    }

    /// Handle events until the connection fails; `Ok` when the view was
    /// dropped.
    async fn serve(&mut self, conn: &mut Conn) -> Result<(), KernelError> {
        for ack in std::mem::take(&mut self.waiting_resyncs) {
            let _ = ack.send(Ok(()));
        }
        loop {
            tokio::select! {
                first = conn.events.next() => {
                    let Some(first) = first else {
                        return Err(KernelError::Closed { what: "event stream" });
                    };
                    let mut batch = vec![first];
                    while batch.len() < 4096 {
                        match futures_lite::future::poll_once(conn.events.next()).await {
                            Some(Some(m)) => batch.push(m),
                            Some(None) | None => break,
                        }
                    }
                    let mut changed = false;
                    let mut lost = false;
                    let mut port_events = Vec::new();
                    let mut applied = 0u64;
                    for (m, _) in batch {
                        match m.payload {
                            NetlinkPayload::Overrun(_) => lost = true,
                            NetlinkPayload::InnerMessage(m) => {
                                applied += 1;
                                changed |= self.apply_event(&m, &mut port_events);
                            }
                            _ => {}
                        }
                    }
                    self.shared.stats().events += applied;
                    if changed {
                        self.generation += 1;
                        Arc::make_mut(&mut self.current).generation = self.generation;
                        self.state.send_replace(self.current.clone());
                    }
                    for e in port_events {
                        tracing::debug!(port = %e.port, old = ?e.old, new = ?e.new, "port oper state");
                        let _ = self.events.send(e);
                    }
                    if lost {
                        self.shared.stats().overruns += 1;
                        tracing::warn!(
                            netns = %self.describe_netns(),
                            "kernel events were lost (ENOBUFS); dumping everything again"
                        );
                        self.mark_out_of_sync();
                        self.sync(conn).await?;
                    }
                }
                ctl = self.control.recv() => {
                    match ctl {
                        None => return Ok(()),
                        Some(Control::Resync(ack)) => {
                            let r = self.sync(conn).await;
                            let _ = ack.send(r.as_ref().map(|_| ()).map_err(ToString::to_string));
                            r?;
                        }
                    }
                }
            }
        }
    }

    async fn run(mut self, mut conn: Conn) {
        let (first, longest) = self.opts.reconnect_backoff;
        loop {
            match self.serve(&mut conn).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        netns = %self.describe_netns(),
                        "kernel view lost its netlink connection; reconnecting"
                    );
                    self.shared.stats().last_error = Some(e.to_string());
                    self.mark_out_of_sync();
                }
            }
            let mut delay = first;
            conn = loop {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    ctl = self.control.recv() => match ctl {
                        None => return,
                        Some(Control::Resync(ack)) => {
                            self.waiting_resyncs.push(ack);
                            continue;
                        }
                    }
                }
                self.shared.stats().reconnects += 1;
                let attempt = async {
                    let mut c = self.connect().await?;
                    self.sync(&mut c).await?;
                    Ok::<_, KernelError>(c)
                };
                match attempt.await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?delay, "kernel view reconnection failed");
                        self.shared.stats().last_error = Some(e.to_string());
                        delay = (delay * 2).min(longest);
                    }
                }
            };
        }
    }
}
