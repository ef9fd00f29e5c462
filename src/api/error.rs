//! Errors of the metal API clients and the Connect error codes (feature
//! `agent`).

use std::time::Duration;

use super::SwitchDocError;
use super::token::SecretFileError;

/// A Connect error code (metal-api reference §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    const ALL: [(Code, &'static str); 16] = [
        (Code::Canceled, "canceled"),
        (Code::Unknown, "unknown"),
        (Code::InvalidArgument, "invalid_argument"),
        (Code::DeadlineExceeded, "deadline_exceeded"),
        (Code::NotFound, "not_found"),
        (Code::AlreadyExists, "already_exists"),
        (Code::PermissionDenied, "permission_denied"),
        (Code::ResourceExhausted, "resource_exhausted"),
        (Code::FailedPrecondition, "failed_precondition"),
        (Code::Aborted, "aborted"),
        (Code::OutOfRange, "out_of_range"),
        (Code::Unimplemented, "unimplemented"),
        (Code::Internal, "internal"),
        (Code::Unavailable, "unavailable"),
        (Code::DataLoss, "data_loss"),
        (Code::Unauthenticated, "unauthenticated"),
    ];

    /// The code's wire name, e.g. `invalid_argument`.
    pub fn as_str(self) -> &'static str {
        Code::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, s)| *s)
            .unwrap_or("unknown")
    }

    /// Parse a wire name; unknown names are `unknown`, like connect-go.
    pub fn from_wire(s: &str) -> Code {
        Code::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(c, _)| *c)
            .unwrap_or(Code::Unknown)
    }

    /// The code of a non-200 answer without a Connect error body.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn v1_hint(status: u16) -> &'static str {
    match status {
        403 => {
            "; metal-api answers 403 for a wrong or missing HMAC and for an X-Date older than \
             30 s: check hmac_key/hmac_key_file and the switch's clock"
        }
        404 => "; the switch (or its partition) is unknown to metal-api",
        400 | 422 => "; metal-api refused the request body",
        _ => "",
    }
}

fn v2_hint(code: Code) -> &'static str {
    match code {
        Code::Unauthenticated => {
            "; the token in metal_apiserver_token_file is invalid, expired or revoked, or was \
             issued for another server URL (its audience)"
        }
        Code::PermissionDenied => {
            "; no token was sent, or the token lacks infra_role INFRA_ROLE_EDITOR"
        }
        Code::InvalidArgument => "; metal-apiserver's validation refused the request",
        Code::NotFound => "; the switch is not registered (yet)",
        _ => "",
    }
}

fn grpc_hint(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unavailable => {
            "; check grpc_address, that metal-api's gRPC port is reachable, and the mutual TLS \
             files (grpc_ca_cert_file, grpc_client_cert_file, grpc_client_key_file)"
        }
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            "; metal-api did not accept the client certificate (grpc_client_cert_file)"
        }
        _ => "",
    }
}

/// Errors of the metal API clients.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{call}: the request to {url} failed before an answer arrived: {message}; check the API \
         address settings and that the server is up"
    )]
    Connect {
        call: &'static str,
        url: String,
        message: String,
    },
    #[error("{call}: {url} did not answer within {timeout:?} (setting `timeout`)")]
    Timeout {
        call: &'static str,
        url: String,
        timeout: Duration,
    },
    #[error("{call}: the answer of {url} was cut off: {message}")]
    Body {
        call: &'static str,
        url: String,
        message: String,
    },
    #[error("{call}: the answer of {url} is larger than {limit} bytes (api_max_response_bytes)")]
    TooLarge {
        call: &'static str,
        url: String,
        limit: u64,
    },
    #[error("{call}: {url} answered HTTP {status}: {message}{}", v1_hint(*status))]
    Http {
        call: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{call}: {url} answered {code} (HTTP {status}): {message}{}", v2_hint(*code))]
    Rpc {
        call: &'static str,
        url: String,
        status: u16,
        code: Code,
        message: String,
    },
    #[error("{call}: the gRPC event service at {address} answered {code:?}: {message}{}", grpc_hint(*code))]
    Grpc {
        call: &'static str,
        address: String,
        code: tonic::Code,
        message: String,
    },
    #[error("{call}: cannot read the answer of {url} (HTTP {status}): {message}")]
    Decode {
        call: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "{call}: not sent, the server would refuse it:\n  - {}",
        problems.join("\n  - ")
    )]
    Invalid {
        call: &'static str,
        problems: Vec<String>,
    },
    #[error("{call} is not available with api_version = {version}: {why}")]
    Unsupported {
        call: &'static str,
        version: &'static str,
        why: &'static str,
    },
    /// The API described the switch in a way the agent refuses.
    #[error(transparent)]
    Document(SwitchDocError),
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    #[error("metal API client configuration: {0}")]
    Config(String),
    #[error("cannot set up TLS for the metal API: {0}")]
    Tls(String),
}

impl ApiError {
    /// Whether the same call may succeed later: connection problems,
    /// timeouts, cut-off answers, v1 5xx, v2 `unavailable` /
    /// `deadline_exceeded`. Never 4xx, `invalid_argument` or a refused token.
    ///
    /// v2 `internal` (500) is not retried: metal-apiserver returns it for a
    /// heartbeat whose `portStates` misses a nic, which fails again the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Connect { .. } | ApiError::Timeout { .. } | ApiError::Body { .. } => true,
            ApiError::Http { status, .. } => *status >= 500,
            ApiError::Rpc { code, .. } => {
                matches!(code, Code::Unavailable | Code::DeadlineExceeded)
            }
            ApiError::Grpc { code, .. } => {
                matches!(
                    code,
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                )
            }
            _ => false,
        }
    }

    /// Whether the agent's own configuration or input is wrong (nothing was
    /// sent, or the answer is refused), as opposed to a failure at run time.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            ApiError::Invalid { .. }
                | ApiError::Document(_)
                | ApiError::Unsupported { .. }
                | ApiError::Secret(_)
                | ApiError::Config(_)
                | ApiError::Tls(_)
        )
    }

    /// The HTTP status of an answered call.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. }
            | ApiError::Rpc { status, .. }
            | ApiError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The gRPC status code of a v1 event service error.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        match self {
            ApiError::Grpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The Connect code of a v2 error.
    pub fn code(&self) -> Option<Code> {
        match self {
            ApiError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_transience() {
        assert_eq!(Code::from_wire("invalid_argument"), Code::InvalidArgument);
        assert_eq!(Code::from_wire("bogus"), Code::Unknown);
        assert_eq!(Code::from_http_status(503), Code::Unavailable);
        assert_eq!(Code::from_http_status(400), Code::Internal);
        assert_eq!(Code::from_http_status(404), Code::Unimplemented);
        for (c, _) in Code::ALL {
            assert_eq!(Code::from_wire(c.as_str()), c);
        }
        let rpc = |code| ApiError::Rpc {
            call: "x",
            url: "u".into(),
            status: 0,
            code,
            message: String::new(),
        };
        assert!(rpc(Code::Unavailable).is_transient());
        assert!(rpc(Code::DeadlineExceeded).is_transient());
        assert!(!rpc(Code::InvalidArgument).is_transient());
        assert!(!rpc(Code::Internal).is_transient());
        assert!(!rpc(Code::Unauthenticated).is_transient());
        let http = |status| ApiError::Http {
            call: "x",
            url: "u".into(),
            status,
            message: String::new(),
        };
        assert!(http(503).is_transient() && http(500).is_transient());
        assert!(!http(400).is_transient() && !http(403).is_transient());
        assert!(http(403).to_string().contains("hmac_key"));
    }
}
