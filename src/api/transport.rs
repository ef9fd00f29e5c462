//! HTTP(S) for the metal API clients (feature `agent`).
//!
//! - TLS with rustls (ring): the system's roots plus an optional CA file
//!   (`api_ca_file`); plain `http://` works too (the mini-lab uses it).
//! - One attempt = one request with an overall time limit (`timeout`) and a
//!   response size limit (`api_max_response_bytes`), checked while reading.
//! - [`RetryPolicy`]: exponential backoff with jitter; *whether* to retry is
//!   decided by the error's kind ([`ApiError::is_transient`]), never by text.
//!
//! Nothing here sees a secret except as an opaque header value; errors carry
//! the call, the URL and the cause, never headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::ApiError;

/// When and how often to try a call again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts; `None` = until it succeeds (registration).
    pub attempts: Option<u32>,
    /// Pause after the first failure; doubled per attempt.
    pub initial: Duration,
    /// Longest pause.
    pub max: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub give_up_after: Option<Duration>,
}

impl RetryPolicy {
    /// No retry at all.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: Some(1),
        initial: Duration::ZERO,
        max: Duration::ZERO,
        give_up_after: None,
    };

    /// The same backoff, retrying until it succeeds (or `give_up_after`).
    pub fn until_success(self, give_up_after: Option<Duration>) -> RetryPolicy {
        RetryPolicy {
            attempts: None,
            give_up_after,
            ..self
        }
    }

    /// After one more failed attempt (`failed` counts it): the pause before
    /// the next one, or `None` when the failure is permanent or the policy
    /// allows no other attempt.
    pub fn retry_after(
        &self,
        failed: &mut u32,
        start: Instant,
        transient: bool,
    ) -> Option<Duration> {
        *failed += 1;
        let delay = self.delay(*failed);
        (transient && self.allows_another(*failed, start, delay)).then_some(delay)
    }

    /// Whether attempt `done + 1` may follow `done` failed ones started at `start`.
    pub fn allows_another(&self, done: u32, start: Instant, next_delay: Duration) -> bool {
        if self.attempts.is_some_and(|a| done >= a) {
            return false;
        }
        match self.give_up_after {
            Some(limit) => start.elapsed() + next_delay <= limit,
            None => true,
        }
    }

    /// The pause after `failed` failed attempts (1-based): the exponential
    /// step `initial · 2^(failed-1)`, capped at `max`, then jittered into
    /// `[step/2, step]` so that a rack of switches does not retry in lockstep.
    pub fn delay(&self, failed: u32) -> Duration {
        let exp = failed.saturating_sub(1).min(20);
        let step = self
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.max.max(self.initial));
        let half = step / 2;
        let jitter_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=jitter_ns))
    }

    /// The longest a call under this policy can take when every attempt
    /// runs into `timeout` (the watchdog's bound of an API step); `None`
    /// when it retries until success.
    pub fn worst_case(&self, timeout: Duration) -> Option<Duration> {
        let attempts = self.attempts?.max(1);
        let pauses = self.max.max(self.initial).saturating_mul(attempts - 1);
        Some(timeout.saturating_mul(attempts).saturating_add(pauses))
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Whether any endpoint uses `https://` (then the root store is loaded).
    pub tls: bool,
    /// Extra CA certificates (PEM).
    pub ca_file: Option<std::path::PathBuf>,
    /// Time limit of one attempt (connect, send, read the whole answer).
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
}

/// A response that arrived completely.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The HTTP client (cheap to clone: the connection pool is shared).
#[derive(Clone)]
pub struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: u64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// The causes of an error, outermost first, joined with ": ".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn root_store(opts: &TransportOptions) -> Result<RootCertStore, ApiError> {
    let mut roots = RootCertStore::empty();
    if opts.tls {
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "cannot load some of the system's CA certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates loaded");
    }
    if let Some(path) = &opts.ca_file {
        let tls_err = |m: String| ApiError::Tls(format!("api_ca_file {}: {m}", path.display()));
        let pem = crate::files::read_bytes(
            crate::files::FileKind::CaCertificates,
            path,
            crate::files::CA_FILE_MAX_BYTES,
        )
        .map_err(|e| ApiError::Tls(e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| tls_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(tls_err("holds no PEM certificate".into()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| tls_err(format!("not a usable CA certificate: {e}")))?;
        }
    }
    Ok(roots)
}

impl Transport {
    pub fn new(opts: &TransportOptions) -> Result<Transport, ApiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ApiError::Tls(e.to_string()))?
            .with_root_certificates(root_store(opts)?)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(opts.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            // metal-apiserver closes idle connections after 10 s
            .pool_idle_timeout(Duration::from_secs(5))
            .build(https);
        Ok(Transport {
            client,
            timeout: opts.timeout,
            max_response_bytes: opts.max_response_bytes,
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One attempt: send `req` and read the whole answer, within the time
    /// and size limits. Any status is a success here; the caller maps it.
    pub async fn send(
        &self,
        call: &'static str,
        url: &str,
        req: http::Request<Full<Bytes>>,
    ) -> Result<HttpResponse, ApiError> {
        let limit = self.max_response_bytes;
        let attempt = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let message = error_chain(&e);
                ApiError::Connect {
                    call,
                    url: url.to_owned(),
                    message,
                }
            })?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let declared = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::TooLarge {
                    call,
                    url: url.to_owned(),
                    limit,
                });
            }
            let body = Limited::new(
                resp.into_body(),
                usize::try_from(limit).unwrap_or(usize::MAX),
            )
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    ApiError::TooLarge {
                        call,
                        url: url.to_owned(),
                        limit,
                    }
                } else {
                    ApiError::Body {
                        call,
                        url: url.to_owned(),
                        message: error_chain(e.as_ref()),
                    }
                }
            })?
            .to_bytes();
            Ok(HttpResponse {
                status,
                content_type,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout {
                call,
                url: url.to_owned(),
                timeout: self.timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            attempts: Some(5),
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            give_up_after: None,
        };
        for _ in 0..50 {
            let d1 = p.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d9 = p.delay(9);
            assert!(d9 >= Duration::from_millis(500) && d9 <= Duration::from_secs(1));
        }
        // jitter: not all the same
        let set: std::collections::BTreeSet<Duration> = (0..20).map(|_| p.delay(4)).collect();
        assert!(set.len() > 1);
        let start = Instant::now();
        assert!(p.allows_another(4, start, Duration::ZERO));
        assert!(!p.allows_another(5, start, Duration::ZERO));
        let forever = p.until_success(Some(Duration::from_secs(2)));
        assert!(forever.allows_another(1000, start, Duration::from_secs(1)));
        assert!(!forever.allows_another(1, start, Duration::from_secs(3)));
        assert_eq!(RetryPolicy::NONE.attempts, Some(1));
        assert!(!RetryPolicy::NONE.allows_another(1, start, Duration::ZERO));
    }
}
