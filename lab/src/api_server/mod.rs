//! A lab stand-in for the metal API: metal-api v1 (REST, HMAC) and
//! metal-apiserver v2 (Connect JSON, bearer tokens) for any number of
//! switches, written from the wire contracts (`metal-api.md` in the design
//! notes) and independently of the agent's own wire code.
//!
//! - Switch states come from a directory (`*.json`, v1 `SwitchResponse` or
//!   v2 `Switch`/`SwitchServiceGetResponse`; a v2 file wins over a v1 file
//!   of the same switch) and can be replaced at runtime
//!   ([`ApiServer::set_switch`], `PUT /lab/switches/{id}`).
//! - v1: `POST …/v1/switch/register`, `GET …/v1/switch/{id}`,
//!   `POST …/v1/switch/{id}/notify` under any base path; HMAC `Metal-Edit`
//!   checked like metal-stack/security (403 on any failure); error bodies
//!   `{statuscode, message}`.
//! - v2: `SwitchService/Get|Register|Heartbeat`, `EventService/Send`,
//!   `ComponentService/Ping`, `TokenService/Refresh`; bearer tokens (no
//!   header → 403 `permission_denied`, unknown, revoked or expired → 401
//!   `unauthenticated`, viewer on a write → 403); expiring JWTs issued with
//!   [`ApiServer::issue_token`] and renewed by Refresh ([`tokens`]); the
//!   protovalidate rules and the handlers' behaviour of metal-apiserver
//!   (see [`v2`]); Connect error bodies `{code, message}`.
//! - v1 events ([`grpc`]): `api.v1.EventService/Send` over gRPC with
//!   mutual TLS on a port of its own ([`ApiServerOptions::grpc`],
//!   [`ApiServer::grpc_address`]).
//! - Every call is recorded (request and response bodies, never the
//!   `Authorization` header): [`ApiServer::records`], `GET /lab/records`,
//!   and one JSON file per call in [`ApiServer::record_dir`].
//! - Faults on request ([`Fault`], `POST /lab/faults`): a status code, a
//!   delay, a truncated or invalid body, a dropped connection.
//!
//! It listens on 127.0.0.1 with an ephemeral port (optionally TLS) on its
//! own thread and runtime, and stops when dropped.

pub mod grpc;
mod model;
pub mod tokens;
mod v1;
mod v2;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use serde_json::{Value, json};

pub use grpc::GrpcTls;
pub use model::{Bgp, Filter, LabSwitch, Nic, Os, PortStatus, Status, SyncRec};

/// The calls the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    V1Register,
    V1Find,
    V1Notify,
    V1EventSend,
    V2Get,
    V2Register,
    V2Heartbeat,
    V2EventSend,
    V2Ping,
    V2TokenRefresh,
}

impl Call {
    pub const ALL: [Call; 10] = [
        Call::V1Register,
        Call::V1Find,
        Call::V1Notify,
        Call::V1EventSend,
        Call::V2Get,
        Call::V2Register,
        Call::V2Heartbeat,
        Call::V2EventSend,
        Call::V2Ping,
        Call::V2TokenRefresh,
    ];

    /// Short name, e.g. `v2.heartbeat` (also the fault and file name).
    pub fn name(self) -> &'static str {
        match self {
            Call::V1Register => "v1.register",
            Call::V1Find => "v1.find",
            Call::V1Notify => "v1.notify",
            Call::V1EventSend => "v1.event-send",
            Call::V2Get => "v2.get",
            Call::V2Register => "v2.register",
            Call::V2Heartbeat => "v2.heartbeat",
            Call::V2EventSend => "v2.event-send",
            Call::V2Ping => "v2.ping",
            Call::V2TokenRefresh => "v2.token-refresh",
        }
    }

    pub fn from_name(s: &str) -> Option<Call> {
        Call::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn is_v1(self) -> bool {
        matches!(
            self,
            Call::V1Register | Call::V1Find | Call::V1Notify | Call::V1EventSend
        )
    }
}

/// What a bearer token may do (the server's token store, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenGrant {
    /// `infra_role: INFRA_ROLE_EDITOR`: every switch-side call.
    Editor,
    /// `INFRA_ROLE_VIEWER`: only `SwitchService/Get`.
    Viewer,
    /// A token without an infra role: nothing.
    NoRole,
    /// Revoked (or expired): `unauthenticated`.
    Revoked,
}

/// A fault to inject into the next matching call(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `None` = any call.
    pub call: Option<Call>,
    /// How many calls it affects.
    pub times: u32,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status without processing (body: the API's error
    /// body for it, or the given text).
    Status { status: u16, body: Option<String> },
    /// Wait, then process normally.
    Delay(Duration),
    /// Process, then send only half of the body and close the connection.
    Truncate,
    /// Process, then answer 200 with a body that is not JSON.
    InvalidBody,
    /// Close the connection without an answer.
    Drop,
    /// Answer with this status and exactly these bytes as the body
    /// (`application/json`), whatever the call: hostile documents, huge
    /// or deeply nested bodies. Recorded as `{"raw_bytes": N}`.
    Body { status: u16, body: Bytes },
}

impl Fault {
    pub fn status(call: Call, status: u16, times: u32) -> Fault {
        Fault {
            call: Some(call),
            times,
            kind: FaultKind::Status { status, body: None },
        }
    }

    fn name(&self) -> String {
        match &self.kind {
            FaultKind::Status { status, .. } => format!("status {status}"),
            FaultKind::Delay(d) => format!("delay {d:?}"),
            FaultKind::Truncate => "truncate".into(),
            FaultKind::InvalidBody => "invalid body".into(),
            FaultKind::Drop => "drop".into(),
            FaultKind::Body { status, body } => {
                format!("body of {} bytes, status {status}", body.len())
            }
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub call: Call,
    pub method: String,
    pub path: String,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// The request body (JSON, or a string if it was not JSON).
    pub request: Value,
    /// The response body as produced (before a truncate/invalid fault).
    pub response: Value,
    /// The fault applied, if any.
    pub fault: Option<String>,
}

impl Record {
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "call": self.call.name(),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "request": self.request,
            "response": self.response,
            "fault": self.fault,
        })
    }
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// Directory of switch state files (`*.json`).
    pub switches_dir: Option<PathBuf>,
    /// Switch state documents (v1 or v2), after the directory.
    pub switches: Vec<String>,
    /// Partitions that exist besides those of the loaded switches.
    pub partitions: Vec<String>,
    /// The `Metal-Edit` HMAC key (metal-api's `hmac-edit-key`).
    pub hmac_edit_key: Option<String>,
    /// The `Metal-View` HMAC key (only `GET /v1/switch/{id}`).
    pub hmac_view_key: Option<String>,
    /// Lifetime of an `X-Date` (metal-api default 30 s).
    pub hmac_lifetime: Duration,
    /// Bearer tokens and what they may do.
    pub tokens: BTreeMap<String, TokenGrant>,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(String, String)>,
    /// Where recorded calls are written (default: a temp dir owned by the server).
    pub record_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:0).
    pub listen: SocketAddr,
    /// Also serve v1's gRPC event service with mutual TLS.
    pub grpc: Option<GrpcTls>,
    /// Address of the gRPC port (default 127.0.0.1:0).
    pub grpc_listen: SocketAddr,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        ApiServerOptions {
            switches_dir: None,
            switches: Vec::new(),
            partitions: Vec::new(),
            hmac_edit_key: Some("metal-edit".into()),
            hmac_view_key: None,
            hmac_lifetime: Duration::from_secs(30),
            tokens: BTreeMap::new(),
            tls: None,
            record_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc: None,
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Authentication settings shared by the handlers.
#[derive(Debug, Clone)]
pub(crate) struct Auth {
    pub hmac_edit_key: Option<String>,
    pub hmac_view_key: Option<String>,
    pub hmac_lifetime: Duration,
    pub tokens: BTreeMap<String, TokenGrant>,
    /// Expiring tokens the server issued, in order.
    pub issued: Vec<tokens::IssuedToken>,
    /// `iss` and `aud` of issued tokens: the server's URL.
    pub issuer: String,
}

/// Mutable server state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub switches: BTreeMap<String, LabSwitch>,
    pub status: BTreeMap<String, Status>,
    pub partitions: BTreeSet<String>,
    pub faults: Vec<Fault>,
    pub records: Vec<Record>,
    /// The `seq` of the last record (never reset: records taken or cleared
    /// do not make numbers repeat).
    pub last_seq: u64,
    /// `Authorization` and `X-Date` header values of every call, kept apart
    /// from the records (which never hold them).
    pub credentials: Vec<String>,
    pub components: BTreeMap<String, Value>,
    /// Machine id → the provisioning events stored for it (v2
    /// `EventService/Send`), oldest first, at most 100.
    pub machine_events: BTreeMap<String, Vec<String>>,
    /// Machine id → the Connect code its events fail with.
    pub refused_machines: BTreeMap<String, String>,
}

impl State {
    /// Add or replace a switch; returns its generation. As the API's
    /// `meta.generation`: at least 1, and a replacement counts one up from
    /// the stored switch whatever the document says (tests wait for the
    /// agent to converge to this generation).
    pub(crate) fn store_switch(&mut self, mut sw: LabSwitch) -> u64 {
        let floor = self
            .switches
            .get(&sw.id)
            .map_or(1, |old| old.generation + 1);
        sw.generation = sw.generation.max(floor);
        let generation = sw.generation;
        self.partitions.insert(sw.partition.clone());
        self.switches.insert(sw.id.clone(), sw);
        generation
    }
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub auth: Mutex<Auth>,
    pub record_dir: PathBuf,
}

impl State {
    /// The `seq` of a new record.
    pub fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn auth(&self) -> Auth {
        self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Json {
        status: u16,
        body: Value,
    },
    /// Close the connection without an answer (how Go's net/http ends a
    /// request whose handler panicked).
    Drop {
        why: String,
    },
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::Json { status: 200, body }
    }
}

/// A running lab API server; stops on drop.
pub struct ApiServer {
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _record_tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Load switch documents from a directory: v2 files win over v1 files of the
/// same id.
fn load_dir(dir: &Path) -> Result<Vec<(LabSwitch, Status, bool)>> {
    let mut out: BTreeMap<String, (LabSwitch, Status, bool)> = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading switch states from {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let doc: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", f.display()))?;
        let v2 = model::is_v2_document(&doc);
        let (sw, st) =
            LabSwitch::from_document(&doc).with_context(|| format!("{}", f.display()))?;
        match out.get(&sw.id) {
            Some((_, _, true)) if !v2 => continue,
            _ => {
                out.insert(sw.id.clone(), (sw, st, v2));
            }
        }
    }
    Ok(out.into_values().collect())
}

impl ApiServer {
    /// Start a server on its own thread.
    pub fn start(opts: ApiServerOptions) -> Result<ApiServer> {
        let mut state = State::default();
        let mut loaded = Vec::new();
        if let Some(dir) = &opts.switches_dir {
            loaded.extend(load_dir(dir)?);
        }
        for doc in &opts.switches {
            let v: Value = serde_json::from_str(doc).context("switch document is not JSON")?;
            let (sw, st) = LabSwitch::from_document(&v)?;
            loaded.push((sw, st, true));
        }
        for (sw, st, _) in loaded {
            if st != Status::default() {
                state.status.insert(sw.id.clone(), st);
            }
            state.store_switch(sw);
        }
        state.partitions.extend(opts.partitions.iter().cloned());

        let (record_dir, record_tmp) = match &opts.record_dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("creating record dir {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("metal-switchd-lab-api-")
                    .tempdir()
                    .context("creating a temp dir for recorded calls")?;
                (t.path().to_owned(), Some(t))
            }
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            auth: Mutex::new(Auth {
                hmac_edit_key: opts.hmac_edit_key.clone(),
                hmac_view_key: opts.hmac_view_key.clone(),
                hmac_lifetime: opts.hmac_lifetime,
                tokens: opts.tokens.clone(),
                issued: Vec::new(),
                issuer: String::new(),
            }),
            record_dir,
        });

        let tls = match &opts.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let std_listener = std::net::TcpListener::bind(opts.listen)
            .with_context(|| format!("binding {}", opts.listen))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let grpc = match &opts.grpc {
            Some(tls) => {
                let l = std::net::TcpListener::bind(opts.grpc_listen)
                    .with_context(|| format!("binding {}", opts.grpc_listen))?;
                l.set_nonblocking(true)?;
                Some((l, tls.clone()))
            }
            None => None,
        };
        let grpc_addr = match &grpc {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let serve_shared = shared.clone();
        let is_tls = tls.is_some();
        let thread = std::thread::Builder::new()
            .name("lab-api-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!("starting the server runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!("listening: {e}")));
                            return;
                        }
                    };
                    if let Some((l, grpc_tls)) = grpc {
                        let l = match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = ready_tx.send(Err(anyhow!("listening (gRPC): {e}")));
                                return;
                            }
                        };
                        let shared = serve_shared.clone();
                        // Ends with the runtime, when `serve` returns.
                        tokio::spawn(async move {
                            if let Err(e) = grpc::serve(l, grpc_tls, shared).await {
                                eprintln!("lab gRPC event service stopped: {e:#}");
                            }
                        });
                    }
                    let _ = ready_tx.send(Ok(()));
                    serve(listener, tls, serve_shared, rx).await;
                });
            })
            .context("spawning the server thread")?;
        ready_rx
            .recv()
            .map_err(|_| anyhow!("the server thread ended before listening"))??;
        shared.auth.lock().unwrap_or_else(|p| p.into_inner()).issuer = if is_tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        Ok(ApiServer {
            addr,
            grpc_addr,
            tls: is_tls,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
            _record_tmp: record_tmp,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (or `https://localhost:<port>` with TLS, so
    /// the name matches the lab certificate).
    pub fn base_url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// `localhost:<port>` of the gRPC event service (matches the lab
    /// certificate), if it was started.
    pub fn grpc_address(&self) -> Option<String> {
        self.grpc_addr.map(|a| format!("localhost:{}", a.port()))
    }

    /// Where the recorded calls are written.
    pub fn record_dir(&self) -> &Path {
        &self.shared.record_dir
    }

    /// Every recorded call, oldest first.
    pub fn records(&self) -> Vec<Record> {
        self.shared.lock().records.clone()
    }

    /// Every `Authorization` and `X-Date` header value the server received,
    /// in order, kept apart from the records (for tests that check the
    /// agent never logs them).
    pub fn credentials(&self) -> Vec<String> {
        self.shared.lock().credentials.clone()
    }

    /// The recorded calls of one kind.
    pub fn records_of(&self, call: Call) -> Vec<Record> {
        self.records()
            .into_iter()
            .filter(|r| r.call == call)
            .collect()
    }

    /// The recorded calls, forgotten here at the same moment (none is lost
    /// between reading and forgetting).
    pub fn take_records(&self) -> Vec<Record> {
        std::mem::take(&mut self.shared.lock().records)
    }

    /// Forget the recorded calls (files stay).
    pub fn clear_records(&self) {
        self.shared.lock().records.clear();
    }

    /// Inject a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Add or replace a switch's desired state (a v1 or v2 document).
    /// Returns the switch's generation: an update of a stored switch counts
    /// one up from the stored one (as the API's `meta.generation` does),
    /// whatever the document says.
    pub fn set_switch(&self, doc: &str) -> Result<u64> {
        let v: Value = serde_json::from_str(doc).context("switch document is not JSON")?;
        let (sw, _) = LabSwitch::from_document(&v)?;
        Ok(self.shared.lock().store_switch(sw))
    }

    /// Change a stored switch in place.
    pub fn update_switch(&self, id: &str, f: impl FnOnce(&mut LabSwitch)) -> Result<()> {
        let mut st = self.shared.lock();
        let sw = st
            .switches
            .get_mut(id)
            .ok_or_else(|| anyhow!("no switch {id} in the lab server"))?;
        f(sw);
        sw.generation += 1;
        sw.changed = wire::now();
        Ok(())
    }

    pub fn remove_switch(&self, id: &str) -> Option<LabSwitch> {
        self.shared.lock().switches.remove(id)
    }

    /// The stored switch.
    pub fn switch(&self, id: &str) -> Option<LabSwitch> {
        self.shared.lock().switches.get(id).cloned()
    }

    /// The status record (last reports) of a switch.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.shared.lock().status.get(id).cloned()
    }

    pub fn add_partition(&self, p: &str) {
        self.shared.lock().partitions.insert(p.to_owned());
    }

    /// The provisioning events v2 `EventService/Send` stored for a machine
    /// (event type names, oldest first).
    pub fn machine_events(&self, machine_id: &str) -> Vec<String> {
        self.shared
            .lock()
            .machine_events
            .get(machine_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every machine v2 `EventService/Send` stored events for.
    pub fn machines_with_events(&self) -> BTreeSet<String> {
        self.shared.lock().machine_events.keys().cloned().collect()
    }

    /// Make the events of `machine_id` fail with the Connect `code` (as a
    /// storage or state-machine failure of metal-apiserver would); the
    /// other events of a batch are stored as before.
    pub fn refuse_events_of(&self, machine_id: &str, code: &str) {
        self.shared
            .lock()
            .refused_machines
            .insert(machine_id.to_owned(), code.to_owned());
    }

    /// Issue an expiring API token (a JWT with `exp = now + lifetime`)
    /// with `grant`; `may_refresh`: it carries the self permission for
    /// `TokenService/Refresh`.
    pub fn issue_token(&self, grant: TokenGrant, lifetime: Duration, may_refresh: bool) -> String {
        let issuer = self.base_url();
        tokens::issue(&self.shared, &issuer, grant, lifetime, may_refresh, None).secret
    }

    /// Every token the server issued (refreshes included), in order.
    pub fn issued_tokens(&self) -> Vec<tokens::IssuedToken> {
        self.shared
            .auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .issued
            .clone()
    }

    /// Grant or change a bearer token at runtime.
    pub fn set_token(&self, token: &str, grant: TokenGrant) {
        self.shared
            .auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tokens
            .insert(token.to_owned(), grant);
    }

    /// The switch rendered as the given API version returns it.
    pub fn switch_json(&self, id: &str, v1: bool) -> Option<Value> {
        let st = self.shared.lock();
        let sw = st.switches.get(id)?;
        let status = st.status.get(id);
        if v1 {
            Some(model::render_v1(sw, &status.cloned().unwrap_or_default()))
        } else {
            model::render_v2(sw, status).ok()
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow!("lab TLS certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow!("lab TLS key: {e}"))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let cfg = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { handle(shared, req).await }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(s);
                                let _ = builder.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = builder.serve_connection(io, service).await;
                        }
                    }
                });
            }
        }
    }
    conns.abort_all();
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: whole, or cut off after `keep` bytes of a declared
/// `total` (the connection then breaks, as with a crashed proxy).
pub(crate) struct LabBody {
    data: Option<Bytes>,
    total: u64,
    cut: bool,
}

impl LabBody {
    fn full(b: Bytes) -> LabBody {
        LabBody {
            total: b.len() as u64,
            data: Some(b),
            cut: false,
        }
    }
    fn truncated(b: Bytes) -> LabBody {
        let total = b.len() as u64;
        LabBody {
            data: Some(b.slice(..b.len() / 2)),
            total,
            cut: true,
        }
    }
}

impl Body for LabBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        if self.cut {
            self.cut = false;
            return Poll::Ready(Some(Err("lab fault: body truncated".into())));
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total)
    }
}

fn json_response(status: u16, body: &Value, truncate: bool) -> Response<LabBody> {
    let bytes = Bytes::from(body.to_string());
    let body = if truncate {
        LabBody::truncated(bytes)
    } else {
        LabBody::full(bytes)
    };
    let mut r = Response::new(body);
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Which API call a request is, from method and path.
fn route(path: &str) -> Option<(Call, String)> {
    if let Some(i) = path.find("/v1/switch") {
        let rest = &path[i + "/v1/switch".len()..];
        return match rest {
            "/register" => Some((Call::V1Register, String::new())),
            r => {
                let r = r.strip_prefix('/')?;
                match r.strip_suffix("/notify") {
                    Some(id) if !id.is_empty() && !id.contains('/') => {
                        Some((Call::V1Notify, id.to_owned()))
                    }
                    _ if !r.is_empty() && !r.contains('/') => Some((Call::V1Find, r.to_owned())),
                    _ => None,
                }
            }
        };
    }
    let call = match path {
        "/metalstack.infra.v2.SwitchService/Get" => Call::V2Get,
        "/metalstack.infra.v2.SwitchService/Register" => Call::V2Register,
        "/metalstack.infra.v2.SwitchService/Heartbeat" => Call::V2Heartbeat,
        "/metalstack.infra.v2.EventService/Send" => Call::V2EventSend,
        "/metalstack.infra.v2.ComponentService/Ping" => Call::V2Ping,
        "/metalstack.api.v2.TokenService/Refresh" => Call::V2TokenRefresh,
        _ => return None,
    };
    Some((call, String::new()))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The error body of a status-code fault, in the API's shape.
fn fault_body(call: Call, status: u16) -> Value {
    if call.is_v1() {
        json!({"statuscode": status, "message": format!("lab fault: HTTP {status}")})
    } else {
        let code = match status {
            400 => "invalid_argument",
            401 => "unauthenticated",
            403 => "permission_denied",
            404 => "not_found",
            409 => "already_exists",
            429 => "resource_exhausted",
            501 => "unimplemented",
            503 => "unavailable",
            504 => "deadline_exceeded",
            500 => "internal",
            _ => "unknown",
        };
        json!({"code": code, "message": format!("lab fault: HTTP {status}")})
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> std::result::Result<Response<LabBody>, std::io::Error> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers = req.headers().clone();
    let body = http_body_util::Limited::new(req.into_body(), 8 << 20)
        .collect()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_bytes();

    if let Some(rest) = path.strip_prefix("/lab/") {
        let (status, v) = admin(&shared, &method, rest, &query, &body);
        return Ok(json_response(status, &v, false));
    }
    let Some((call, id)) = route(&path) else {
        // connect-go answers unknown procedures with a bare 404; go-restful too.
        let mut r = json_response(
            404,
            &json!({"statuscode": 404, "message": "not found"}),
            false,
        );
        if !path.contains("/v1/") {
            *r.body_mut() = LabBody::full(Bytes::new());
            r.headers_mut().remove(hyper::header::CONTENT_TYPE);
        }
        return Ok(r);
    };
    let id = percent_decode(&id);
    {
        let mut st = shared.lock();
        for name in ["authorization", "x-date"] {
            for v in headers.get_all(name) {
                st.credentials
                    .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
            }
        }
    }

    let fault = {
        let mut st = shared.lock();
        let idx = st
            .faults
            .iter()
            .position(|f| f.times > 0 && f.call.is_none_or(|c| c == call));
        idx.map(|i| {
            let f = st.faults[i].clone();
            st.faults[i].times -= 1;
            if st.faults[i].times == 0 {
                st.faults.remove(i);
            }
            f
        })
    };
    let request_json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));

    let mut reply = None;
    if let Some(f) = &fault {
        match &f.kind {
            FaultKind::Delay(d) => tokio::time::sleep(*d).await,
            FaultKind::Status { status, body } => {
                let b = match body {
                    Some(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
                    None => fault_body(call, *status),
                };
                reply = Some(Reply::Json {
                    status: *status,
                    body: b,
                });
            }
            FaultKind::Drop => {
                reply = Some(Reply::Drop {
                    why: "lab fault".into(),
                })
            }
            FaultKind::Body { status, .. } => {
                reply = Some(Reply::Json {
                    status: *status,
                    body: Value::Null,
                })
            }
            FaultKind::Truncate | FaultKind::InvalidBody => {}
        }
    }
    let reply = match reply {
        Some(r) => r,
        None => {
            let expected = if call == Call::V1Find { "GET" } else { "POST" };
            if method != expected {
                let body = if call.is_v1() {
                    json!({"statuscode": 405, "message": "method not allowed"})
                } else {
                    json!({"code": "unknown", "message": "HTTP method not allowed"})
                };
                Reply::Json { status: 405, body }
            } else if call.is_v1() {
                v1::handle(&shared, call, &id, &method, &headers, &body)
            } else {
                v2::handle(&shared, call, &headers, &body)
            }
        }
    };

    let (status, response) = match (&reply, fault.as_ref().map(|f| &f.kind)) {
        (Reply::Json { status, .. }, Some(FaultKind::Body { body, .. })) => {
            (*status, json!({"raw_bytes": body.len()}))
        }
        (Reply::Json { status, body }, _) => (*status, body.clone()),
        (Reply::Drop { why }, _) => (0, json!({"dropped": why})),
    };
    let record = {
        let mut st = shared.lock();
        let seq = st.next_seq();
        let r = Record {
            seq,
            call,
            method: method.clone(),
            path: path.clone(),
            status,
            request: request_json,
            response: response.clone(),
            fault: fault.as_ref().map(Fault::name),
        };
        st.records.push(r.clone());
        r
    };
    let file = shared
        .record_dir
        .join(format!("{:04}-{}.json", record.seq, record.call.name()));
    if let Ok(text) = serde_json::to_string_pretty(&record.to_json()) {
        let _ = std::fs::write(file, text);
    }

    match (reply, fault.map(|f| f.kind)) {
        (Reply::Drop { why }, _) => Err(std::io::Error::other(why)),
        (Reply::Json { status, body }, Some(FaultKind::Truncate)) => {
            Ok(json_response(status, &body, true))
        }
        (Reply::Json { status, .. }, Some(FaultKind::Body { body, .. })) => {
            let mut r = json_response(status, &Value::Null, false);
            *r.body_mut() = LabBody::full(body);
            Ok(r)
        }
        (Reply::Json { status, .. }, Some(FaultKind::InvalidBody)) => {
            let mut r = json_response(status, &Value::Null, false);
            *r.body_mut() = LabBody::full(Bytes::from_static(b"{\"switch\": {\"id\": <html>"));
            Ok(r)
        }
        (Reply::Json { status, body }, _) => Ok(json_response(status, &body, false)),
    }
}

/// `/lab/...`: records, switch states and faults over HTTP.
fn admin(shared: &Shared, method: &str, rest: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["records"]) => {
            let st = shared.lock();
            (
                200,
                Value::Array(st.records.iter().map(Record::to_json).collect()),
            )
        }
        ("GET", ["switches"]) => {
            let st = shared.lock();
            (200, json!(st.switches.keys().collect::<Vec<_>>()))
        }
        ("GET", ["switches", id]) => {
            let st = shared.lock();
            let Some(sw) = st.switches.get(*id) else {
                return (404, json!({"message": format!("no switch {id}")}));
            };
            let status = st.status.get(*id);
            if query.contains("api=v1") {
                (
                    200,
                    model::render_v1(sw, &status.cloned().unwrap_or_default()),
                )
            } else {
                match model::render_v2(sw, status) {
                    Ok(v) => (200, json!({"switch": v})),
                    Err(e) => (500, json!({"message": format!("{e:?}")})),
                }
            }
        }
        ("PUT", ["switches", id]) => {
            let parsed = serde_json::from_slice::<Value>(body)
                .map_err(|e| anyhow!("not JSON: {e}"))
                .and_then(|v| LabSwitch::from_document(&v));
            match parsed {
                Ok((sw, _)) if sw.id == *id => {
                    let generation = shared.lock().store_switch(sw);
                    (200, json!({"ok": true, "generation": generation}))
                }
                Ok((sw, _)) => (
                    400,
                    json!({"message": format!("document is switch {}, not {id}", sw.id)}),
                ),
                Err(e) => (400, json!({"message": format!("{e:#}")})),
            }
        }
        ("POST", ["faults"]) => match parse_fault(body) {
            Ok(f) => {
                shared.lock().faults.push(f);
                (200, json!({"ok": true}))
            }
            Err(e) => (400, json!({"message": format!("{e:#}")})),
        },
        ("DELETE", ["faults"]) => {
            shared.lock().faults.clear();
            (200, json!({"ok": true}))
        }
        _ => (404, json!({"message": "unknown lab endpoint"})),
    }
}

/// `{"call": "v2.heartbeat"|null, "times": 1, "status": 503 | "delay_ms": 100 |
/// "kind": "truncate"|"invalid"|"drop", "body": "..."}`.
fn parse_fault(body: &[u8]) -> Result<Fault> {
    let v: Value = serde_json::from_slice(body).context("fault is not JSON")?;
    let call = match v.get("call").and_then(Value::as_str) {
        None | Some("any") => None,
        Some(c) => Some(Call::from_name(c).ok_or_else(|| {
            anyhow!(
                "unknown call {c:?} (known: {})",
                Call::ALL.map(Call::name).join(", ")
            )
        })?),
    };
    let times = v.get("times").and_then(Value::as_u64).unwrap_or(1) as u32;
    let kind = if let Some(s) = v.get("status").and_then(Value::as_u64) {
        FaultKind::Status {
            status: u16::try_from(s).context("status out of range")?,
            body: v.get("body").and_then(Value::as_str).map(str::to_owned),
        }
    } else if let Some(ms) = v.get("delay_ms").and_then(Value::as_u64) {
        FaultKind::Delay(Duration::from_millis(ms))
    } else {
        match v.get("kind").and_then(Value::as_str) {
            Some("truncate") => FaultKind::Truncate,
            Some("invalid") => FaultKind::InvalidBody,
            Some("drop") => FaultKind::Drop,
            other => {
                bail!("fault needs status, delay_ms or kind truncate|invalid|drop, got {other:?}")
            }
        }
    };
    Ok(Fault { call, times, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/v1/switch/register"),
            Some((Call::V1Register, String::new()))
        );
        assert_eq!(
            route("/metal/v1/switch/leaf01"),
            Some((Call::V1Find, "leaf01".into()))
        );
        assert_eq!(
            route("/v1/switch/leaf01/notify"),
            Some((Call::V1Notify, "leaf01".into()))
        );
        assert_eq!(route("/v1/switch/a/b"), None);
        assert_eq!(
            route("/metalstack.infra.v2.SwitchService/Heartbeat").map(|r| r.0),
            Some(Call::V2Heartbeat)
        );
        assert_eq!(route("/metalstack.infra.v2.SwitchService/List"), None);
        assert_eq!(percent_decode("a%2Fb"), "a/b");
    }

    #[test]
    fn faults_parse() {
        let f = parse_fault(br#"{"call": "v2.heartbeat", "status": 503, "times": 2}"#).unwrap();
        assert_eq!(f, Fault::status(Call::V2Heartbeat, 503, 2));
        let f = parse_fault(br#"{"kind": "truncate"}"#).unwrap();
        assert_eq!((f.call, f.kind), (None, FaultKind::Truncate));
        assert!(parse_fault(br#"{"call": "v3.x", "kind": "drop"}"#).is_err());
    }
}
