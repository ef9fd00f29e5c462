//! Expiring API tokens and `TokenService/Refresh`, as metal-apiserver has
//! them (metal-api reference §3.6; MAS `pkg/token/jwt.go`,
//! `pkg/repository/token.go` `Refresh`):
//!
//! - a token is a JWT with the claims `exp`, `iat`, `nbf`, `jti`, `sub`,
//!   `iss`, `aud` and `type`; an expired one is `unauthenticated`;
//! - an API token may call `TokenService/Refresh` only with an explicit
//!   self permission for it (never granted to API tokens by default):
//!   without it `permission_denied`;
//! - Refresh makes a new token with the lifetime of the old one
//!   (`exp - iat`), the same roles and permissions, and answers
//!   `{token: {uuid, user, description, tokenType, expires, issuedAt},
//!   secret}`; the old token stays valid until it expires.
//!
//! The signature is an HMAC-SHA256 with a key of the lab, not the server's
//! ES512: the agent holds its token and never checks its signature.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::wire;
use super::{Reply, Shared, TokenGrant};

/// One token the lab issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// 0 for the first token, then in order of issue (refreshes included).
    pub index: usize,
    /// The JWT.
    pub secret: String,
    pub grant: TokenGrant,
    /// `iat` and `exp`, Unix seconds.
    pub issued_at: i64,
    pub expires: i64,
    /// Whether it carries the self permission for `TokenService/Refresh`.
    pub may_refresh: bool,
    /// The token it was refreshed from.
    pub refreshed_from: Option<usize>,
    pub jti: String,
}

impl IssuedToken {
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires
    }
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A JWT for `subject`, valid from `iat` for `lifetime`.
fn jwt(issuer: &str, subject: &str, jti: &str, iat: i64, exp: i64) -> String {
    let header = json!({"alg": "ES512", "typ": "JWT"});
    let claims = json!({
        "iss": issuer,
        "aud": [issuer],
        "sub": subject,
        "jti": jti,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "type": "api",
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match Hmac::<Sha256>::new_from_slice(b"metal-switchd lab token key") {
        Ok(mut m) => {
            m.update(signing_input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    format!("{signing_input}.{}", b64(&signature))
}

fn uuid_like(n: u64) -> String {
    let r = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        (r >> 32) as u32,
        (r >> 16) as u16,
        n & 0xfff,
        r & 0xfff,
        n
    )
}

/// Issue a token and store it (caller holds nothing; takes the lock).
pub(crate) fn issue(
    shared: &Shared,
    issuer: &str,
    grant: TokenGrant,
    lifetime: Duration,
    may_refresh: bool,
    refreshed_from: Option<usize>,
) -> IssuedToken {
    let mut auth = shared.auth.lock().unwrap_or_else(|p| p.into_inner());
    let index = auth.issued.len();
    let iat = wire::now().secs;
    let exp = iat.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    let jti = uuid_like(index as u64);
    let token = IssuedToken {
        index,
        secret: jwt(issuer, "metal-core", &jti, iat, exp),
        grant,
        issued_at: iat,
        expires: exp,
        may_refresh,
        refreshed_from,
        jti,
    };
    auth.issued.push(token.clone());
    token
}

/// `TokenService/Refresh` for an authenticated, unexpired issued token.
pub(crate) fn refresh(shared: &Shared, issuer: &str, old: &IssuedToken) -> Reply {
    if !old.may_refresh {
        return super::v2::rpc_error(
            "permission_denied",
            "not allowed to call: /metalstack.api.v2.TokenService/Refresh",
        );
    }
    let lifetime = Duration::from_secs(u64::try_from(old.expires - old.issued_at).unwrap_or(0));
    let new = issue(shared, issuer, old.grant, lifetime, true, Some(old.index));
    Reply::ok(json!({
        "token": {
            "uuid": new.jti,
            "user": "metal-core",
            "description": "metal-core token",
            "tokenType": "TOKEN_TYPE_API",
            "expires": wire::rfc3339(new.expires),
            "issuedAt": wire::rfc3339(new.issued_at),
        },
        "secret": new.secret,
    }))
}

/// The issued token `secret` is, if the lab issued it.
pub(crate) fn find(shared: &Shared, secret: &str) -> Option<IssuedToken> {
    shared
        .auth
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .issued
        .iter()
        .find(|t| t.secret == secret)
        .cloned()
}

/// The claims of a JWT (for tests).
pub fn claims(secret: &str) -> Option<Value> {
    let payload = secret.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}
