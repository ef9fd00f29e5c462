//! Renewal of the v2 token (feature `agent`).
//!
//! metal-apiserver's tokens expire (metal-roles issues switch tokens for
//! an hour); once expired, every call fails `unauthenticated`. The daemon
//! runs [`TokenRenewal`] beside its loop, which
//!
//! - reads the token file and the token's claims ([`token::claims`]): when
//!   a quarter of its lifetime (`exp - iat`) is left ([`token::renew_at`],
//!   as metal-stack's Go client does), it calls
//!   `metalstack.api.v2.TokenService/Refresh` with it. A token without
//!   claims is renewed by the validity the API gave with it, when the agent
//!   got it from a renewal; otherwise it is not renewed (and said so);
//! - writes the new token atomically over the old file, with the old
//!   file's owner and mode ([`token::write_token_file`]); every client of
//!   the agent re-reads the file per request, so the new token is used at
//!   once;
//! - on failure (the call, or writing the file) keeps the old token, which
//!   stays valid until its `exp`, reports the failure (a log line, louder
//!   once the token expired, and the observer: the daemon's
//!   `metal_switchd_api_errors_total{call="refresh_token"}`) and tries
//!   again after the client's backoff (`api_retry_backoff` …
//!   `api_retry_max_backoff`);
//! - re-reads the file at least every [`RenewalOptions::recheck`], so a
//!   token an operator writes there is picked up.
//!
//! The API creates a token only for a token that carries the self
//! permission for `TokenService/Refresh` (metal-api reference §3.6); a
//! token without it gets `permission_denied`, which is reported like any
//! failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::ApiClient;
use super::token::{self, TokenFile};
use crate::config::Secret;

/// What one renewal attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// A new token was saved; `expires` as its claims (or the API) say.
    Renewed { expires: Option<i64> },
    /// The call failed; the old token is kept.
    CallFailed { transient: bool, message: String },
    /// The call succeeded but the new token could not be saved; the old
    /// token is kept.
    NotSaved { message: String },
}

/// Told about every attempt (the daemon records metrics).
pub type Observer = Arc<dyn Fn(&Renewal) + Send + Sync>;

/// How often the file is read again without a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalOptions {
    /// Longest sleep between two reads of the token file.
    pub recheck: Duration,
    /// Shortest pause between two renewals.
    pub min_pause: Duration,
}

impl Default for RenewalOptions {
    fn default() -> Self {
        RenewalOptions {
            recheck: Duration::from_secs(60),
            min_pause: Duration::from_secs(1),
        }
    }
}

/// The renewal service.
#[derive(Debug)]
pub struct TokenRenewal;

impl TokenRenewal {
    /// Start renewing the token of `client` (a v2 client; for v1 nothing
    /// runs). Must be called within a tokio runtime.
    pub fn spawn(client: ApiClient, opts: RenewalOptions, observe: Observer) -> RenewalHandle {
        let (stop, stopped) = watch::channel(false);
        let mut task = JoinSet::new();
        if let Some(path) = client.token_file().map(std::path::Path::to_path_buf) {
            task.spawn(run(client, path, opts, observe, stopped));
        }
        RenewalHandle { stop, task }
    }
}

/// The running renewal; stops on [`RenewalHandle::shutdown`] or drop
/// (the set aborts its task).
#[derive(Debug)]
pub struct RenewalHandle {
    stop: watch::Sender<bool>,
    task: JoinSet<()>,
}

impl RenewalHandle {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.task.join_next().await.is_some() {}
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0))
}

/// The validity the API gave with the token it last returned.
struct Answered {
    secret: Secret,
    issued_at: Option<i64>,
    expires: Option<i64>,
}

async fn run(
    mut client: ApiClient,
    path: PathBuf,
    opts: RenewalOptions,
    observe: Observer,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    let mut answered: Option<Answered> = None;
    let mut said: Option<String> = None;
    let say_once = |said: &mut Option<String>, what: String| {
        if said.as_deref() != Some(what.as_str()) {
            tracing::warn!(file = %path.display(), "{what}");
            *said = Some(what);
        }
    };
    loop {
        let wait = match token::read_token_file(token::TOKEN, &path) {
            Err(e) => {
                say_once(
                    &mut said,
                    format!("the v2 token cannot be read for its renewal: {e}"),
                );
                opts.recheck
            }
            Ok(file) => {
                let c = token::claims(file.secret.expose()).unwrap_or_default();
                let (start, exp) = match (c.iat.or(c.nbf), c.exp) {
                    (Some(s), Some(e)) => (Some(s), Some(e)),
                    _ => answered
                        .as_ref()
                        .filter(|a| a.secret == file.secret)
                        .map_or((None, None), |a| (a.issued_at, a.expires)),
                };
                match token::renew_at(start, exp) {
                    None => {
                        say_once(
                            &mut said,
                            "the v2 token names no expiry (not a JWT with exp and iat): it is \
                             not renewed"
                                .into(),
                        );
                        opts.recheck
                    }
                    Some(at) if unix_now() < at => secs(at - unix_now()).min(opts.recheck),
                    Some(_) => {
                        said = None;
                        let (r, answer) = renew(&mut client, &path, &file, exp).await;
                        if answer.is_some() {
                            answered = answer;
                        }
                        observe(&r);
                        match r {
                            Renewal::Renewed { .. } => {
                                failures = 0;
                                opts.min_pause
                            }
                            _ => {
                                failures = failures.saturating_add(1);
                                client.retry().delay(failures).max(opts.min_pause)
                            }
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One renewal: the call, then the file; with what the API answered about
/// the new token's validity.
async fn renew(
    client: &mut ApiClient,
    path: &std::path::Path,
    old: &TokenFile,
    exp: Option<i64>,
) -> (Renewal, Option<Answered>) {
    let expired = exp.is_some_and(|e| unix_now() >= e);
    match client.refresh_token().await {
        Ok(new) => match token::write_token_file(path, &new.secret, old) {
            Ok(()) => {
                let expires = token::claims(new.secret.expose())
                    .and_then(|c| c.exp)
                    .or(new.expires);
                tracing::info!(
                    file = %path.display(),
                    expires = expires.map(crate::time::format_rfc3339_seconds),
                    "the v2 token was renewed"
                );
                let answer = Answered {
                    secret: new.secret,
                    issued_at: new.issued_at,
                    expires: new.expires,
                };
                (Renewal::Renewed { expires }, Some(answer))
            }
            Err(e) => {
                let message = format!(
                    "the v2 token was renewed but cannot be written to {}: {e}; the old token is \
                     used while it is valid, renewal is tried again",
                    path.display()
                );
                tracing::error!("{message}");
                (Renewal::NotSaved { message }, None)
            }
        },
        Err(e) => {
            let message = e.to_string();
            if expired {
                tracing::error!(
                    error = %e,
                    file = %path.display(),
                    "the v2 token expired and cannot be renewed; every API call fails until a \
                     valid token is written to the file"
                );
            } else {
                tracing::warn!(
                    error = %e,
                    "renewing the v2 token failed; the old token is used while it is valid, \
                     renewal is tried again"
                );
            }
            (
                Renewal::CallFailed {
                    transient: e.is_transient(),
                    message,
                },
                None,
            )
        }
    }
}
