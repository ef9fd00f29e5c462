//! The phone-home task (feature `agent`): captures LLDP on the ports it is
//! told about and reports provisioned machines to the API every interval.
//!
//! One owner task holds the port tasks and the sender; each port task owns
//! one [`PacketSocket`] and feeds the shared [`Collector`] (a mutex held
//! for one frame at a time, never across an `.await`). The owner:
//!
//! - follows the watch channel of port names: a new name gets a port task,
//!   a removed one is stopped (its socket closed, its neighbour forgotten);
//! - every `interval` takes all pending events and sends them in **one**
//!   call, in the background, so that capture goes on while the API
//!   answers; while a call is still under way the next interval is skipped
//!   (its events go out with the following one);
//! - makes **one** call per batch, never more (no retry inside an
//!   interval: the next interval is the retry), so frames on a port cost at
//!   most one API call per interval whatever they say;
//! - gives failed batches back to the collector (kept, bounded); a batch
//!   the server *refuses* (`invalid_argument`) is split by the server's
//!   answer ([`Delivery::refused`]): metal-apiserver stores every event of
//!   a batch on its own and answers with the error of a refused one, so
//!   the machines the answer names are dropped and counted, the others
//!   were taken; nothing is sent again one by one;
//! - forgets neighbours whose TTL ran out, at every interval and whenever
//!   the snapshot is read.
//!
//! A port task re-opens its socket when the netdev is gone or was replaced
//! (a new ifindex), checking every `recheck` interval; a port whose netdev
//! does not exist is retried at the same pace.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use super::capture::{PacketSocket, Received};
use super::collector::{Collector, DEFAULT_MAX_PENDING, Delivery, PhoneHomeSnapshot, PortCapture};
use super::frame::{FrameError, MAX_FRAME_LEN, parse_frame};
use crate::api::client::{ApiClient, ApiError, Code};
use crate::api::{EventOutcome, PhoneHomeEvent};

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub kind: SendFailure,
}

/// What a failed send means for its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The call failed (unreachable, timeout, a server error): keep the
    /// events for the next interval, except those the answer names.
    Failed,
    /// The server refused the content (`invalid_argument`): it took what it
    /// could; the events the answer names were refused.
    Refused,
    /// The request was never sent (it could not be built).
    NotSent,
}

impl From<ApiError> for SendError {
    fn from(e: ApiError) -> SendError {
        let kind = if matches!(e, ApiError::Invalid { .. }) {
            SendFailure::NotSent
        } else if matches!(e.code(), Some(Code::InvalidArgument))
            || matches!(e.grpc_code(), Some(tonic::Code::InvalidArgument))
        {
            SendFailure::Refused
        } else {
            SendFailure::Failed
        };
        SendError {
            message: e.to_string(),
            kind,
        }
    }
}

/// The future of one [`EventSender::send`].
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<EventOutcome, SendError>> + Send + 'a>>;

/// Something that delivers a batch of phone-home events in one call.
pub trait EventSender: Send + 'static {
    fn send<'a>(&'a mut self, events: &'a [PhoneHomeEvent]) -> SendFuture<'a>;
}

/// The metal API client: v1 `api.v1.EventService/Send` over gRPC with
/// mTLS, v2 `EventService/Send` over Connect.
impl EventSender for ApiClient {
    fn send<'a>(&'a mut self, events: &'a [PhoneHomeEvent]) -> SendFuture<'a> {
        Box::pin(async move { self.send_events(events).await.map_err(SendError::from) })
    }
}

/// How the phone-home task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneHomeOptions {
    /// How often collected machines are sent (`phone_home_interval`).
    pub interval: Duration,
    /// Most machines kept while the API is unreachable.
    pub max_pending: usize,
    /// How often a port checks that its netdev is still the one its socket
    /// is bound to, and how often a missing netdev is looked for.
    pub recheck: Duration,
}

impl Default for PhoneHomeOptions {
    fn default() -> Self {
        PhoneHomeOptions {
            interval: Duration::from_secs(60),
            max_pending: DEFAULT_MAX_PENDING,
            recheck: Duration::from_secs(5),
        }
    }
}

/// State shared by the owner, the port tasks and the handle.
struct Shared {
    collector: Mutex<Collector>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Collector> {
        self.collector.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update<R>(&self, f: impl FnOnce(&mut Collector) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
        r
    }
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// The phone-home service.
#[derive(Debug)]
pub struct PhoneHome;

impl PhoneHome {
    /// Start capturing on the ports in `ports` (and on those put there
    /// later) and sending through `sender`. Must be called within a tokio
    /// runtime; the task stops when the handle is shut down or dropped.
    pub fn spawn<S: EventSender>(
        ports: watch::Receiver<BTreeSet<String>>,
        sender: S,
        opts: PhoneHomeOptions,
    ) -> PhoneHomeHandle {
        let (changed, changed_rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            collector: Mutex::new(Collector::new(opts.max_pending)),
            changed,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut task = JoinSet::new();
        task.spawn(run(ports, sender, opts, shared.clone(), stop_rx));
        PhoneHomeHandle {
            shared,
            changed: changed_rx,
            stop: Some(stop_tx),
            task,
        }
    }
}

/// The running phone-home task; dropping the handle aborts it (the set
/// does).
pub struct PhoneHomeHandle {
    shared: Arc<Shared>,
    changed: watch::Receiver<u64>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinSet<()>,
}

impl std::fmt::Debug for PhoneHomeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneHomeHandle").finish_non_exhaustive()
    }
}

impl PhoneHomeHandle {
    /// Port → neighbour table (neighbours whose TTL ran out forgotten),
    /// capture states, pending machines, last send, counters.
    pub fn snapshot(&self) -> PhoneHomeSnapshot {
        let mut c = self.shared.lock();
        c.expire(unix_now());
        c.snapshot()
    }

    /// A receiver that changes whenever the snapshot may have changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// Wait until the snapshot satisfies `pred` (wrap it in a timeout).
    pub async fn wait_for(&self, pred: impl Fn(&PhoneHomeSnapshot) -> bool) -> PhoneHomeSnapshot {
        let mut rx = self.subscribe();
        loop {
            let snap = self.snapshot();
            if pred(&snap) {
                return snap;
            }
            if rx.changed().await.is_err() {
                return self.snapshot();
            }
        }
    }

    /// Stop capturing and sending; pending events are dropped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        while self.task.join_next().await.is_some() {}
    }
}

type InFlight<S> = Pin<Box<dyn Future<Output = (S, Delivery)> + Send>>;

async fn run<S: EventSender>(
    mut ports: watch::Receiver<BTreeSet<String>>,
    sender: S,
    opts: PhoneHomeOptions,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let interval = opts.interval.max(Duration::from_millis(10));
    let mut port_tasks = JoinSet::new();
    let mut following: BTreeMap<String, AbortHandle> = BTreeMap::new();
    let mut ports_open = true;
    let wanted = ports.borrow_and_update().clone();
    follow(
        &wanted,
        &mut following,
        &mut port_tasks,
        &shared,
        opts.recheck,
    );

    // The first batch after a random share of the interval: switches that
    // start together do not send their batches in step.
    let first = interval.mul_f64(0.5 + fastrand::f64());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut idle = Some(sender);
    let mut in_flight: Option<InFlight<S>> = None;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = ports.changed(), if ports_open => {
                if changed.is_ok() {
                    let wanted = ports.borrow_and_update().clone();
                    follow(&wanted, &mut following, &mut port_tasks, &shared, opts.recheck);
                } else {
                    // The daemon dropped the sender: keep the last set.
                    ports_open = false;
                }
            }
            Some(_) = port_tasks.join_next(), if !port_tasks.is_empty() => {}
            _ = tick.tick() => match idle.take() {
                Some(s) => {
                    let now = unix_now();
                    shared.update(|c| c.expire(now));
                    let batch = shared.update(Collector::take_batch);
                    if batch.is_empty() {
                        idle = Some(s);
                    } else {
                        tracing::debug!(events = batch.len(), "sending phone-home events");
                        in_flight = Some(Box::pin(deliver(s, batch)));
                    }
                }
                None => tracing::debug!(
                    "the previous phone-home batch is still being sent; its successor waits"
                ),
            },
            (s, delivery) = async {
                match in_flight.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if in_flight.is_some() => {
                in_flight = None;
                idle = Some(s);
                log_delivery(&delivery);
                shared.update(|c| c.delivered(delivery, unix_now()));
            }
        }
    }
    port_tasks.shutdown().await;
}

fn log_delivery(d: &Delivery) {
    match &d.error {
        None => tracing::info!(
            machines = d.sent.len(),
            failed = d.failed_ids.len(),
            "phone-home events sent"
        ),
        Some(e) if d.kept.is_empty() => tracing::warn!(
            taken = d.sent.len(),
            refused = d.rejected.len(),
            error = %e,
            "the API refused phone-home events; the ones its answer names are dropped, the \
             others were taken"
        ),
        Some(e) => tracing::warn!(
            kept = d.kept.len(),
            refused = d.rejected.len(),
            error = %e,
            "phone-home events not delivered; kept ones go out with the next interval"
        ),
    }
    if !d.failed_ids.is_empty() {
        tracing::warn!(machines = ?d.failed_ids, "the API did not take these phone-home events");
    }
}

/// Send a batch in one call and sort its events by the answer.
async fn deliver<S: EventSender>(mut s: S, batch: Vec<PhoneHomeEvent>) -> (S, Delivery) {
    let d = match s.send(&batch).await {
        Ok(outcome) => Delivery::sent(batch, outcome),
        Err(e) => match e.kind {
            SendFailure::Refused => Delivery::refused(batch, e.message),
            SendFailure::NotSent => Delivery::not_sent(batch, e.message),
            SendFailure::Failed => Delivery::failed(batch, e.message),
        },
    };
    (s, d)
}

/// Start port tasks for new names, stop those of removed names.
fn follow(
    wanted: &BTreeSet<String>,
    following: &mut BTreeMap<String, AbortHandle>,
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    recheck: Duration,
) {
    let gone: Vec<String> = following
        .keys()
        .filter(|p| !wanted.contains(*p))
        .cloned()
        .collect();
    for port in gone {
        if let Some(h) = following.remove(&port) {
            h.abort();
        }
        shared.update(|c| c.forget_port(&port));
        tracing::info!(port = %port, "LLDP capture stopped: the port is no longer managed");
    }
    for port in wanted {
        if !following.contains_key(port) {
            let h = tasks.spawn(follow_port(port.clone(), shared.clone(), recheck));
            following.insert(port.clone(), h);
        }
    }
}

/// Capture on one port for as long as the task lives.
async fn follow_port(port: String, shared: Arc<Shared>, recheck: Duration) {
    let recheck = recheck.max(Duration::from_millis(10));
    let mut last_problem: Option<String> = None;
    loop {
        match PacketSocket::open(&port) {
            Ok(mut sock) => {
                let ifindex = sock.ifindex();
                shared.update(|c| c.set_capture(&port, PortCapture::Open { ifindex }));
                tracing::info!(port = %port, ifindex, "LLDP capture started");
                last_problem = None;
                let why = read_until_gone(&mut sock, &shared, recheck).await;
                drop(sock);
                tracing::warn!(port = %port, reason = %why, "LLDP capture lost; re-opening");
                shared.update(|c| c.set_capture(&port, PortCapture::Unavailable { reason: why }));
                continue;
            }
            Err(e) => {
                let reason = e.to_string();
                if last_problem.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(port = %port, error = %reason,
                        "cannot capture LLDP on the port; retrying");
                    shared.update(|c| {
                        c.set_capture(
                            &port,
                            PortCapture::Unavailable {
                                reason: reason.clone(),
                            },
                        );
                    });
                    last_problem = Some(reason);
                }
            }
        }
        tokio::time::sleep(recheck).await;
    }
}

/// Read frames until the socket is no longer bound to the port's netdev.
async fn read_until_gone(sock: &mut PacketSocket, shared: &Shared, recheck: Duration) -> String {
    let port = sock.port().to_owned();
    let mut check = tokio::time::interval(recheck);
    check.set_missed_tick_behavior(MissedTickBehavior::Delay);
    check.tick().await;
    loop {
        tokio::select! {
            received = sock.recv() => match received {
                Ok(Received::Frame(bytes)) => {
                    let now = unix_now();
                    match parse_frame(bytes) {
                        Ok(frame) => {
                            let seen = shared.update(|c| c.observe(&port, &frame.lldpdu, now));
                            tracing::debug!(port = %port, frame = %frame, ?seen, "LLDP frame");
                        }
                        Err(e) => {
                            tracing::debug!(port = %port, error = %e, "malformed LLDP frame dropped");
                            shared.update(|c| c.malformed(&e));
                        }
                    }
                }
                Ok(Received::Oversized(len)) => {
                    let e = FrameError::TooLong { len, max: MAX_FRAME_LEN };
                    tracing::debug!(port = %port, error = %e, "malformed LLDP frame dropped");
                    shared.update(|c| c.malformed(&e));
                }
                Ok(Received::Down) => {
                    if !sock.is_current() {
                        return "the netdev was removed".into();
                    }
                    tracing::debug!(port = %port, "port went down; capture resumes when it is up");
                }
                Err(e) => return e.to_string(),
            },
            _ = check.tick() => {
                if !sock.is_current() {
                    return "the netdev was removed or replaced".into();
                }
            }
        }
    }
}
