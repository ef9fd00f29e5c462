//! metal-api v1 request signing ("Metal-Edit" HMAC, metal-api reference §2).
//!
//! Pure: the caller supplies the time and the salt. The signed bytes are
//! `X-Date ‖ METHOD ‖ X-Data-Salt` — neither the body nor the path — and the
//! MAC is hex-encoded HMAC-SHA256. `X-Date` must be exactly
//! `YYYY-MM-DDTHH:MM:SSZ`: the server re-formats the parsed date that way
//! before hashing, so any other spelling of the same instant never matches.
//!
//! The key never leaves this module in any printable form; [`AuthHeaders`]
//! holds only the MAC, the date and the salt.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::time::format_rfc3339_seconds;

/// The auth type metal-core uses for every call (metal-api's edit user).
pub const METAL_EDIT: &str = "Metal-Edit";
/// Length of the salt metal-go sends.
pub const SALT_LEN: usize = 24;

/// The three headers of one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeaders {
    /// `Authorization`: `<auth type> <64 hex chars>`.
    pub authorization: String,
    /// `X-Date`: `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// `X-Data-Salt`: the salt as sent (and signed).
    pub salt: String,
}

/// Hex-encoded HMAC-SHA256 over `date ‖ method ‖ salt` (lower-case hex).
pub fn mac_hex(key: &[u8], date: &str, method: &str, salt: &[u8]) -> String {
    // HMAC accepts keys of any length (long ones are hashed, short ones
    // padded), so `new_from_slice` never fails; an empty MAC would merely be
    // refused by the server.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(date.as_bytes());
    mac.update(method.as_bytes());
    mac.update(salt);
    hex(&mac.finalize().into_bytes())
}

/// Sign one request made at `unix_seconds` with `salt` (24 ASCII letters).
pub fn sign(
    auth_type: &str,
    key: &[u8],
    unix_seconds: i64,
    method: &str,
    salt: &str,
) -> AuthHeaders {
    let date = format_rfc3339_seconds(unix_seconds);
    let method = method.to_ascii_uppercase();
    let mac = mac_hex(key, &date, &method, salt.as_bytes());
    AuthHeaders {
        authorization: format!("{auth_type} {mac}"),
        date,
        salt: salt.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// metal-stack/security `mac_test.go` `TestAddAuth`: type `mytype`, key
    /// bytes {1,2,3}, `2019-01-16T14:44:45Z`, GET, salt bytes {1..6}.
    #[test]
    fn library_test_vector() {
        let mac = mac_hex(
            &[1, 2, 3],
            "2019-01-16T14:44:45Z",
            "GET",
            &[1, 2, 3, 4, 5, 6],
        );
        assert_eq!(
            format!("mytype {mac}"),
            "mytype f8d293a06bdde899a5bd1dd61b13842564650c717c742db02c4e1a888fc22501"
        );
    }

    /// The worked example of metal-api reference §2.
    #[test]
    fn worked_example() {
        // 2026-08-21T12:00:00Z
        let ts = 1_787_313_600;
        let h = sign(
            METAL_EDIT,
            b"metal-edit",
            ts,
            "post",
            "xKqLmNbVcZaSdFgHjWeRtYuI",
        );
        assert_eq!(h.date, "2026-08-21T12:00:00Z");
        assert_eq!(
            h.authorization,
            "Metal-Edit 8f727f56b84e88ee3a647832b4349634ebd1cdf1f40c2a1ae7ed24ebf75368e8"
        );
        assert_eq!(h.salt, "xKqLmNbVcZaSdFgHjWeRtYuI");
        let g = sign(METAL_EDIT, b"metal-edit", ts, "GET", &h.salt);
        assert_eq!(
            g.authorization,
            "Metal-Edit 01c0d70ad1bc71df3f0826a3c210778836264e53355474c17ff8e75d8298f44a"
        );
    }

    #[test]
    fn key_never_appears_in_headers() {
        let h = sign(METAL_EDIT, b"topsecret-key", 0, "GET", "abc");
        let all = format!("{h:?}");
        assert!(!all.contains("topsecret"), "{all}");
        assert_eq!(h.date, "1970-01-01T00:00:00Z");
    }
}
