//! One client for the metal API, v1 or v2 by configuration (feature `agent`).
//!
//! - v1 (metal-api): `POST /v1/switch/register`, `GET /v1/switch/{id}`,
//!   `POST /v1/switch/{id}/notify` under
//!   `<metal_api_protocol>://<metal_api_ip>:<metal_api_port><metal_api_basepath>`,
//!   every request signed with the `Metal-Edit` HMAC (fresh `X-Date` and
//!   salt per attempt). Error bodies `{statuscode, message}`.
//! - v2 (metal-apiserver): Connect unary calls with the JSON codec under
//!   `metal_apiserver_url`: `SwitchService/Get|Register|Heartbeat`,
//!   `EventService/Send`, `ComponentService/Ping`; `Authorization: Bearer`
//!   with the token file's content, re-read per attempt. Error bodies
//!   `{code, message}`; a body-less error is mapped from the HTTP status as
//!   the Connect protocol says.
//!
//! - v1 phone-home events: `api.v1.EventService/Send` over gRPC with mutual
//!   TLS at `grpc_address` ([`super::grpc`]), the channel built on first use.
//!
//! The client remembers the nic names of the last register/get, so that a
//! report covers exactly those nics (v2 refuses a partial `portStates`).
//! Transient failures are retried per [`RetryPolicy`]; everything else is
//! returned at once.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use super::error::{ApiError, Code};
use super::grpc::{GrpcEvents, GrpcSettings};
use super::hmac::{METAL_EDIT, SALT_LEN, sign};
use super::token;
use super::transport::{HttpResponse, RetryPolicy, Transport, TransportOptions};
use super::{
    ComponentPing, EventOutcome, FetchedSwitch, PhoneHomeEvent, Registration, SwitchDocError,
    SwitchObject, SyncStatus, v1, v2,
};
use crate::config::{ApiVersion, Secret};
use crate::names::{MESSAGE_CHARS, escaped, quoted};
use crate::observed::SwitchReport;

/// A renewed v2 token, from `TokenService/Refresh`.
#[derive(Debug, Clone)]
pub struct RefreshedToken {
    pub secret: Secret,
    /// Its validity as the API answered it (Unix seconds), if it did.
    pub expires: Option<i64>,
    pub issued_at: Option<i64>,
}

/// Where the client goes and how it authenticates.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// metal-api: its base URL and the Metal-Edit HMAC key.
    V1 { base: String, key: Secret },
    /// metal-apiserver: its base URL and the bearer token file (read for
    /// every request).
    V2 { base: String, token_file: PathBuf },
}

/// How a client is put together (built from the configuration in
/// `crate::reconcile::options`).
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub endpoint: Endpoint,
    /// v1 phone-home: the gRPC event service (`None`: not configured).
    pub grpc: Option<GrpcSettings>,
    /// Extra CA certificates (PEM) trusted on top of the system's.
    pub ca_file: Option<PathBuf>,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    pub retry: RetryPolicy,
}

/// A metal API client for one switch agent.
pub struct ApiClient {
    transport: Transport,
    endpoint: Endpoint,
    retry: RetryPolicy,
    known_nics: Option<Vec<String>>,
    /// v1 phone-home: the gRPC settings, and the client once built.
    grpc_settings: Option<GrpcSettings>,
    grpc: Option<GrpcEvents>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("version", &self.version())
            .field("base", &self.base_url())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// `http` / `https` base URL without a trailing slash.
pub fn check_base(setting: &str, url: &str) -> Result<String, ApiError> {
    let trimmed = url.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| ApiError::Config(format!("{setting} {url:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(ApiError::Config(format!(
                "{setting} {url:?} must start with http:// or https://"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ApiError::Config(format!("{setting} {url:?} has no host")));
    }
    Ok(trimmed.to_owned())
}

/// metal-core's v1 base URL: `<protocol>://<ip>:<port><basepath>`.
pub fn v1_base_url(
    protocol: &str,
    ip: &str,
    port: u16,
    basepath: &str,
) -> Result<String, ApiError> {
    let host = ip.trim();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let path = basepath.trim().trim_matches('/');
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    let url = format!("{}://{host}:{port}{path}", protocol.trim());
    check_base("metal_api_protocol/_ip/_port/_basepath", &url)
}

/// Percent-encode a path segment (switch ids are host names; be safe anyway).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

fn salt() -> String {
    (0..SALT_LEN).map(|_| fastrand::alphabetic()).collect()
}

fn to_json(call: &'static str, v: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::Invalid {
        call,
        problems: vec![format!("cannot encode the request: {e}")],
    })
}

/// Decode an answer as `T`. The JSON is read strictly (a repeated key is
/// refused), like a switch document from a file.
fn decode<T: DeserializeOwned>(
    call: &'static str,
    url: &str,
    resp: &HttpResponse,
) -> Result<T, ApiError> {
    crate::json::from_slice(&resp.body)
        .and_then(serde_json::from_value)
        .map_err(|e| decode_error(call, url, resp, &e))
}

/// The body of `resp` is not the answer `call` expects.
fn decode_error(
    call: &'static str,
    url: &str,
    resp: &HttpResponse,
    e: &impl std::fmt::Display,
) -> ApiError {
    ApiError::Decode {
        call,
        url: url.to_owned(),
        status: resp.status,
        message: format!(
            "{} (body starts with {})",
            escaped(&e.to_string(), MESSAGE_CHARS),
            quoted(&preview(&resp.body))
        ),
    }
}

/// Decode without the repeated-key check.
fn decode_lenient<T: DeserializeOwned>(
    call: &'static str,
    url: &str,
    resp: &HttpResponse,
) -> Result<T, ApiError> {
    serde_json::from_slice(&resp.body).map_err(|e| decode_error(call, url, resp, &e))
}

/// A switch answer: strict JSON, then the same checks as a switch document
/// from a file (`--switch`); a document the agent refuses is
/// [`ApiError::Document`] (invalid input, exit code 2).
fn switch_answer(
    call: &'static str,
    url: String,
    resp: &HttpResponse,
    version: ApiVersion,
) -> Result<FetchedSwitch, ApiError> {
    // An answer that is not JSON at all is a broken answer (runtime error);
    // JSON with a repeated key is a document the agent refuses.
    let _: serde::de::IgnoredAny = decode_lenient(call, &url, resp)?;
    let origin = format!("{call}: the answer of {url}");
    let doc = crate::json::from_slice(&resp.body).map_err(|e| {
        ApiError::Document(SwitchDocError::Json {
            origin: origin.clone(),
            message: escaped(&e.to_string(), MESSAGE_CHARS),
        })
    })?;
    let (_, obj) = SwitchObject::decode(&origin, doc, Some(version)).map_err(ApiError::Document)?;
    obj.fetched(&origin).map_err(ApiError::Document)
}

/// Decode an answer as `T` and turn it into what the caller wants; a
/// conversion that fails is a decode error of that answer too.
fn decode_into<T: DeserializeOwned, U>(
    call: &'static str,
    url: String,
    resp: &HttpResponse,
    convert: impl FnOnce(T) -> Result<U, String>,
) -> Result<U, ApiError> {
    let answer: T = decode(call, &url, resp)?;
    convert(answer).map_err(|message| ApiError::Decode {
        call,
        url,
        status: resp.status,
        message,
    })
}

fn preview(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned()
}

impl ApiClient {
    /// A client for `opts.endpoint` (the v2 token file is read for every
    /// request).
    pub fn new(opts: ApiOptions) -> Result<ApiClient, ApiError> {
        let tls = match &opts.endpoint {
            Endpoint::V1 { base, .. } | Endpoint::V2 { base, .. } => base.starts_with("https:"),
        };
        let transport = Transport::new(&TransportOptions {
            tls,
            ca_file: opts.ca_file,
            timeout: opts.timeout,
            max_response_bytes: opts.max_response_bytes,
        })?;
        Ok(ApiClient {
            transport,
            endpoint: opts.endpoint,
            retry: opts.retry,
            known_nics: None,
            grpc_settings: opts.grpc,
            grpc: None,
        })
    }

    pub fn version(&self) -> ApiVersion {
        match self.endpoint {
            Endpoint::V1 { .. } => ApiVersion::V1,
            Endpoint::V2 { .. } => ApiVersion::V2,
        }
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &str {
        match &self.endpoint {
            Endpoint::V1 { base, .. } | Endpoint::V2 { base, .. } => base,
        }
    }

    /// Replace the retry policy; returns the previous one.
    pub fn set_retry(&mut self, retry: RetryPolicy) -> RetryPolicy {
        std::mem::replace(&mut self.retry, retry)
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The nic names of the last register/get answer.
    pub fn known_nics(&self) -> Option<&[String]> {
        self.known_nics.as_deref()
    }

    /// Run `attempt` until it succeeds, fails permanently, or the policy
    /// says stop.
    ///
    /// `attempt` is a closure returning a future rather than an async
    /// closure: the compiler cannot yet prove an async closure's future
    /// `Send`, and the daemon runs API calls in spawned tasks.
    async fn with_retry<T, F, Fut>(&self, call: &'static str, attempt: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        self.with_policy(self.retry, call, attempt).await
    }

    /// [`Self::with_retry`] under `policy` instead of the client's.
    async fn with_policy<T, F, Fut>(
        &self,
        policy: RetryPolicy,
        call: &'static str,
        mut attempt: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let start = Instant::now();
        let mut failed = 0u32;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Some(delay) = policy.retry_after(&mut failed, start, e.is_transient())
                    else {
                        return Err(e);
                    };
                    tracing::warn!(
                        call,
                        attempt = failed,
                        retry_in = ?delay,
                        error = %e,
                        "transient metal API failure, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One signed v1 request; 200/201 → body, anything else → error.
    async fn v1_call(
        &self,
        call: &'static str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, ApiError> {
        let Endpoint::V1 { base, key } = &self.endpoint else {
            return Err(ApiError::Config(format!("{call} is a v1 call")));
        };
        let url = format!("{base}{path}");
        let body = body.map(Bytes::from);
        let (url, body, method) = (&url, &body, &method);
        self.with_retry(call, move || async move {
            let now = i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX);
            let auth = sign(
                METAL_EDIT,
                key.expose().as_bytes(),
                now,
                method.as_str(),
                &salt(),
            );
            let mut b = http::Request::builder()
                .method(method.clone())
                .uri(url)
                .header(http::header::ACCEPT, "application/json")
                .header(http::header::AUTHORIZATION, &auth.authorization)
                .header("X-Date", &auth.date)
                .header("X-Data-Salt", &auth.salt);
            if body.is_some() {
                b = b.header(http::header::CONTENT_TYPE, "application/json");
            }
            let req = b
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| {
                    ApiError::Config(format!("{call}: cannot build a request for {url}: {e}"))
                })?;
            let resp = self.transport.send(call, url, req).await?;
            tracing::debug!(call, url = %url, status = resp.status, "metal-api answered");
            if matches!(resp.status, 200 | 201) {
                return Ok(resp);
            }
            let message = match serde_json::from_slice::<v1::HttpErrorResponse>(&resp.body) {
                Ok(e) if !e.message.is_empty() => escaped(&e.message, MESSAGE_CHARS),
                _ => format!("(no error body) {}", quoted(&preview(&resp.body))),
            };
            Err(ApiError::Http {
                call,
                url: url.clone(),
                status: resp.status,
                message,
            })
        })
        .await
    }

    /// One Connect unary call with the JSON codec; 200 → body, else error.
    async fn v2_call(
        &self,
        call: &'static str,
        procedure: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, ApiError> {
        self.v2_call_with(self.retry, call, procedure, body).await
    }

    /// [`Self::v2_call`] under `policy`.
    async fn v2_call_with(
        &self,
        policy: RetryPolicy,
        call: &'static str,
        procedure: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, ApiError> {
        let Endpoint::V2 { base, token_file } = &self.endpoint else {
            return Err(ApiError::Config(format!("{call} is a v2 call")));
        };
        let url = format!("{base}/{procedure}");
        let body = Bytes::from(body);
        let timeout_ms = self.transport.timeout().as_millis().clamp(1, 9_999_999_999);
        let (url, body) = (&url, &body);
        self.with_policy(policy, call, move || async move {
            let token = token::read_secret_file(token::TOKEN, token_file)?;
            let req = http::Request::builder()
                .method(http::Method::POST)
                .uri(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, "application/json")
                .header("Connect-Protocol-Version", "1")
                .header("Connect-Timeout-Ms", timeout_ms.to_string())
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", token.expose()),
                )
                .body(Full::new(body.clone()))
                .map_err(|_| {
                    ApiError::Config(format!(
                        "{call}: cannot build a request for {url} (is the token a single line \
                         of printable characters?)"
                    ))
                })?;
            let resp = self.transport.send(call, url, req).await?;
            tracing::debug!(call, url = %url, status = resp.status, "metal-apiserver answered");
            if resp.status == 200 {
                return Ok(resp);
            }
            let is_json = resp
                .content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/json"));
            let (code, message) = match serde_json::from_slice::<v2::ConnectError>(&resp.body) {
                Ok(e) if is_json || !e.code.is_empty() => {
                    (Code::from_wire(&e.code), escaped(&e.message, MESSAGE_CHARS))
                }
                _ => (
                    Code::from_http_status(resp.status),
                    format!("(no Connect error body) {}", quoted(&preview(&resp.body))),
                ),
            };
            Err(ApiError::Rpc {
                call,
                url: url.clone(),
                status: resp.status,
                code,
                message,
            })
        })
        .await
    }

    /// Register the switch; returns the switch as the API now stores it.
    pub async fn register(&mut self, reg: &Registration) -> Result<FetchedSwitch, ApiError> {
        const CALL: &str = "register switch";
        let problems = reg.problems();
        if !problems.is_empty() {
            return Err(ApiError::Invalid {
                call: CALL,
                problems,
            });
        }
        let fetched = match &self.endpoint {
            Endpoint::V1 { .. } => {
                let body = to_json(CALL, &v1::register_request(reg))?;
                self.v1_switch_call(CALL, http::Method::POST, "/v1/switch/register", Some(body))
                    .await?
            }
            Endpoint::V2 { .. } => {
                let req = v2::register_request(reg).map_err(|problems| ApiError::Invalid {
                    call: CALL,
                    problems,
                })?;
                let body = to_json(CALL, &req)?;
                self.v2_switch_call(CALL, "metalstack.infra.v2.SwitchService/Register", body)
                    .await?
            }
        };
        self.known_nics = Some(fetched.nic_names.clone());
        Ok(fetched)
    }

    /// A v1 call answered with a `v1.SwitchResponse`.
    async fn v1_switch_call(
        &self,
        call: &'static str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<FetchedSwitch, ApiError> {
        let resp = self.v1_call(call, method, path, body).await?;
        let url = format!("{}{path}", self.base_url());
        switch_answer(call, url, &resp, ApiVersion::V1)
    }

    /// A v2 call answered with a `SwitchService*Response` holding a switch.
    async fn v2_switch_call(
        &self,
        call: &'static str,
        procedure: &str,
        body: Vec<u8>,
    ) -> Result<FetchedSwitch, ApiError> {
        let resp = self.v2_call(call, procedure, body).await?;
        let url = format!("{}/{procedure}", self.base_url());
        switch_answer(call, url, &resp, ApiVersion::V2)
    }

    /// The switch's desired state as the API describes it now.
    pub async fn get(&mut self, id: &str) -> Result<FetchedSwitch, ApiError> {
        const CALL: &str = "get switch";
        let fetched = match &self.endpoint {
            Endpoint::V1 { .. } => {
                let path = format!("/v1/switch/{}", path_segment(id));
                self.v1_switch_call(CALL, http::Method::GET, &path, None)
                    .await?
            }
            Endpoint::V2 { .. } => {
                let body = to_json(CALL, &v2::GetRequest { id: id.to_owned() })?;
                self.v2_switch_call(CALL, "metalstack.infra.v2.SwitchService/Get", body)
                    .await?
            }
        };
        self.known_nics = Some(fetched.nic_names.clone());
        Ok(fetched)
    }

    /// Report one reconcile: v1 notify, v2 heartbeat.
    pub async fn report(
        &mut self,
        id: &str,
        report: &SwitchReport,
    ) -> Result<SyncStatus, ApiError> {
        match &self.endpoint {
            Endpoint::V1 { .. } => {
                const CALL: &str = "notify switch";
                let body = to_json(CALL, &v1::notify_request(report, self.known_nics()))?;
                let path = format!("/v1/switch/{}/notify", path_segment(id));
                let resp = self
                    .v1_call(CALL, http::Method::POST, &path, Some(body))
                    .await?;
                let url = format!("{}{path}", self.base_url());
                decode_into(CALL, url, &resp, |r: v1::SwitchNotifyResponse| {
                    r.to_status()
                })
            }
            Endpoint::V2 { .. } => {
                const CALL: &str = "heartbeat";
                const PROC: &str = "metalstack.infra.v2.SwitchService/Heartbeat";
                let hb =
                    v2::heartbeat_request(id, report, self.known_nics()).map_err(|problems| {
                        ApiError::Invalid {
                            call: CALL,
                            problems,
                        }
                    })?;
                for (port, why) in &hb.dropped_bgp {
                    tracing::debug!(
                        port = %port,
                        reason = %why,
                        "BGP state not reported: metal-apiserver would refuse the whole heartbeat"
                    );
                }
                if hb.request.port_states.is_none() && !report.port_states.is_empty() {
                    // A partial map would fail the whole heartbeat (trap 5).
                    tracing::debug!(
                        "port states not reported: the nics of the switch are not known yet \
                         (no register or get answer so far)"
                    );
                }
                let body = to_json(CALL, &hb.request)?;
                let resp = self.v2_call(CALL, PROC, body).await?;
                let url = format!("{}/{PROC}", self.base_url());
                decode_into(CALL, url, &resp, |r: v2::HeartbeatResponse| r.to_status())
            }
        }
    }

    /// The v1 gRPC event client, built on first use.
    fn grpc_events(&mut self) -> Result<GrpcEvents, ApiError> {
        if let Some(g) = &self.grpc {
            return Ok(g.clone());
        }
        let settings = self.grpc_settings.as_ref().ok_or_else(|| {
            ApiError::Config(
                "api_version = v1 sends phone-home events to metal-api's gRPC event service: \
                 set grpc_address, grpc_ca_cert_file, grpc_client_cert_file and \
                 grpc_client_key_file (METAL_CORE_GRPC_*)"
                    .into(),
            )
        })?;
        let g = GrpcEvents::new(settings)?;
        self.grpc = Some(g.clone());
        Ok(g)
    }

    /// Send phone-home events in one call: v1 `api.v1.EventService/Send`
    /// (gRPC, mutual TLS, event `Phoned Home`), v2 `EventService/Send`
    /// (`MACHINE_PROVISIONING_EVENT_TYPE_PHONED_HOME`). Nothing is sent for
    /// an empty batch. One attempt, never retried here: phone-home runs
    /// every interval, and the next interval is the retry (so a batch costs
    /// at most one call per interval).
    pub async fn send_events(
        &mut self,
        events: &[PhoneHomeEvent],
    ) -> Result<EventOutcome, ApiError> {
        const CALL: &str = "send events";
        const PROC: &str = "metalstack.infra.v2.EventService/Send";
        if events.is_empty() {
            return Ok(EventOutcome::default());
        }
        match &self.endpoint {
            Endpoint::V1 { .. } => {
                let grpc = self.grpc_events()?;
                let grpc = &grpc;
                self.with_policy(RetryPolicy::NONE, CALL, move || grpc.send(CALL, events))
                    .await
            }
            Endpoint::V2 { .. } => {
                let body = to_json(CALL, &v2::event_request(events))?;
                let resp = self
                    .v2_call_with(RetryPolicy::NONE, CALL, PROC, body)
                    .await?;
                let url = format!("{}/{PROC}", self.base_url());
                let r: v2::EventSendResponse = decode(CALL, &url, &resp)?;
                Ok(EventOutcome {
                    sent: r.events,
                    failed: r.failed,
                })
            }
        }
    }

    /// Renew the v2 token (`metalstack.api.v2.TokenService/Refresh`, with
    /// the token of the token file). One attempt: the caller decides when
    /// to try again. The answer holds the new token and, from the API, its
    /// validity (Unix seconds).
    pub async fn refresh_token(&mut self) -> Result<RefreshedToken, ApiError> {
        const CALL: &str = "refresh token";
        const PROC: &str = "metalstack.api.v2.TokenService/Refresh";
        if matches!(self.endpoint, Endpoint::V1 { .. }) {
            return Err(ApiError::Unsupported {
                call: CALL,
                version: "v1",
                why: "metal-api v1 authenticates with the HMAC key, which does not expire",
            });
        }
        let resp = self
            .v2_call_with(RetryPolicy::NONE, CALL, PROC, b"{}".to_vec())
            .await?;
        let url = format!("{}/{PROC}", self.base_url());
        let r: v2::RefreshResponse = decode(CALL, &url, &resp)?;
        let secret = r.secret.trim();
        if secret.is_empty() || secret.lines().count() != 1 {
            return Err(ApiError::Decode {
                call: CALL,
                url,
                status: resp.status,
                message: "the answer holds no usable token (secret empty or not one line)".into(),
            });
        }
        let time =
            |t: Option<&String>| t.and_then(|s| crate::time::parse_sync_time(s).ok().flatten());
        let meta = r.token.unwrap_or_default();
        Ok(RefreshedToken {
            secret: Secret::new(secret),
            expires: time(meta.expires.as_ref()),
            issued_at: time(meta.issued_at.as_ref()),
        })
    }

    /// The token file of a v2 client.
    pub fn token_file(&self) -> Option<&std::path::Path> {
        match &self.endpoint {
            Endpoint::V2 { token_file, .. } => Some(token_file),
            Endpoint::V1 { .. } => None,
        }
    }

    /// Announce the agent (v2 `ComponentService/Ping`); v1 has no such call
    /// and does nothing.
    pub async fn ping(&mut self, ping: &ComponentPing) -> Result<(), ApiError> {
        const CALL: &str = "ping";
        const PROC: &str = "metalstack.infra.v2.ComponentService/Ping";
        if matches!(self.endpoint, Endpoint::V1 { .. }) {
            return Ok(());
        }
        let req = v2::ping_request(ping).map_err(|problems| ApiError::Invalid {
            call: CALL,
            problems,
        })?;
        let body = to_json(CALL, &req)?;
        self.v2_call(CALL, PROC, body).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_base_url_like_metal_core() {
        assert_eq!(
            v1_base_url("http", "localhost", 8080, "").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            v1_base_url("https", "api.example.com", 443, "/metal/").unwrap(),
            "https://api.example.com:443/metal"
        );
        assert_eq!(
            v1_base_url("https", "fd00::1", 443, "/").unwrap(),
            "https://[fd00::1]:443"
        );
        assert!(
            v1_base_url("ftp", "fd00::1", 443, "/")
                .unwrap_err()
                .to_string()
                .contains("http://")
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(
            path_segment("r01leaf01.example.com"),
            "r01leaf01.example.com"
        );
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
