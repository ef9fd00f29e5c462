//! Secret files: the v2 API token (`metal_apiserver_token_file`) and the
//! v1 HMAC key (`hmac_key_file`) (feature `agent`).
//!
//! Rules, the same for both:
//! - the content is trimmed (a trailing newline would otherwise end up in
//!   the `Authorization` header);
//! - an empty file is refused;
//! - a file that group or others may read or write, or that belongs to
//!   another user than root or the agent's, is refused with the `chmod` /
//!   `chown` that fixes it, before it is read (`crate::files`; metal-stack's
//!   Go client writes its token 0600);
//! - the content never appears in an error, a log line or `Debug` output:
//!   it is returned as a [`Secret`].
//!
//! The token file is re-read for every request, so a renewed token is picked
//! up without a restart. [`super::renew`] renews it before it expires: it
//! reads the token's claims ([`claims`], [`renew_at`]: when a quarter of
//! its lifetime is left, as metal-stack's Go client does) and writes the
//! new token back in place ([`write_token_file`]: atomically, same owner
//! and mode).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Secret;
use crate::files::{self, FileError, FileKind, FileText, SECRET_MAX_BYTES};

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Missing, not a regular file, larger than 64 KiB, not UTF-8,
    /// unreadable, readable or writable by others, of another user.
    #[error(transparent)]
    File(#[from] FileError),
    #[error("the {what} file {path} is empty; write the {what} into it")]
    Empty { what: &'static str, path: PathBuf },
}

/// What a secret file holds, for messages.
pub const TOKEN: &str = "metal-apiserver token";
/// What a secret file holds, for messages.
pub const HMAC_KEY: &str = "HMAC key";

/// Read a secret file under the rules of this module.
pub fn read_secret_file(what: &'static str, path: &Path) -> Result<Secret, SecretFileError> {
    read_token_file(what, path).map(|t| t.secret)
}

/// A secret file's content and who owns it (to write a renewed token back
/// the same way).
#[derive(Debug, Clone)]
pub struct TokenFile {
    pub secret: Secret,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// [`read_secret_file`] with the owner and mode of the file that was read.
pub fn read_token_file(what: &'static str, path: &Path) -> Result<TokenFile, SecretFileError> {
    use std::os::unix::fs::MetadataExt;
    let kind = if what == TOKEN {
        FileKind::Token
    } else {
        FileKind::HmacKey
    };
    // One open: the mode and owner checked (by `files`, before reading)
    // are those of the file whose content is used.
    let FileText { text, meta } = files::read(kind, path, SECRET_MAX_BYTES)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SecretFileError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(TokenFile {
        secret: Secret::new(trimmed),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o777,
    })
}

/// Write a renewed token to `path`: atomically (a temporary file next to
/// it, renamed over it), with the owner and mode of the token it replaces,
/// never through a link another user put in its place ([`files::replace_file`]).
pub fn write_token_file(path: &Path, token: &Secret, like: &TokenFile) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(std::io::Error::other(format!(
            "{} is not a file path",
            path.display()
        )));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut bytes = token.expose().as_bytes().to_vec();
    bytes.push(b'\n');
    files::replace_file(dir, name, &bytes, Some((like.uid, like.gid)), like.mode)
}

/// The time claims of a JWT (Unix seconds), read without checking its
/// signature: the agent holds the token, it does not verify it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims {
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
}

/// The claims of `token` if it is a JWT with a JSON payload; `None` for any
/// other token (then it is never renewed by its claims).
pub fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let time = |k: &str| -> Option<i64> {
        let x = v.get(k)?;
        x.as_i64().or_else(|| x.as_f64().map(|f| f as i64))
    };
    Some(Claims {
        exp: time("exp"),
        iat: time("iat"),
        nbf: time("nbf"),
    })
}

/// When to renew a token valid from `start` until `exp` (Unix seconds):
/// when a quarter of its lifetime is left, as metal-stack's Go client does
/// (`go/client/client-interceptors.go`). `None` without both times.
pub fn renew_at(start: Option<i64>, exp: Option<i64>) -> Option<i64> {
    let (start, exp) = (start?, exp?);
    let lifetime = exp.saturating_sub(start).max(0);
    Some(exp.saturating_sub(lifetime / 4))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::files::FileProblem;

    fn write(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn token_is_trimmed_and_mode_0600_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t", "  eyJhbGciOi.secret-part \n", 0o600);
        let s = read_secret_file(TOKEN, &p).unwrap();
        assert_eq!(s.expose(), "eyJhbGciOi.secret-part");
        let p = write(dir.path(), "t4", "tok", 0o400);
        assert!(read_secret_file(TOKEN, &p).is_ok());
    }

    #[test]
    fn token_readable_by_others_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t", "eyJ-very-secret\n", 0o644);
        let e = read_secret_file(TOKEN, &p).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("mode 0644"), "{msg}");
        assert!(msg.contains("readable by others"), "{msg}");
        assert!(msg.contains("metal-apiserver token file"), "{msg}");
        assert!(msg.contains(&format!("chmod 600 {}", p.display())), "{msg}");
        assert!(!msg.contains("very-secret") && !format!("{e:?}").contains("very-secret"));
        let p = write(dir.path(), "g", "x", 0o620);
        let msg = read_secret_file(HMAC_KEY, &p).unwrap_err().to_string();
        assert!(msg.contains("writable by group or others"), "{msg}");
    }

    #[test]
    fn missing_empty_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_secret_file(TOKEN, &dir.path().join("nope")).unwrap_err();
        assert!(e.to_string().contains("metal_apiserver_token_file"), "{e}");
        let p = write(dir.path(), "empty", " \n", 0o600);
        assert!(matches!(
            read_secret_file(TOKEN, &p),
            Err(SecretFileError::Empty { .. })
        ));
        assert!(matches!(
            read_secret_file(TOKEN, dir.path()),
            Err(SecretFileError::File(FileError {
                problem: FileProblem::NotAFile("a directory"),
                ..
            }))
        ));
        // A FIFO is refused without waiting for a writer; /dev/zero without reading it.
        let fifo = crate::files::test_fifo(dir.path());
        let e = read_secret_file(HMAC_KEY, &fifo).unwrap_err().to_string();
        assert!(e.contains("HMAC key file") && e.contains("a FIFO"), "{e}");
        let e = read_secret_file(TOKEN, Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device"), "{e}");
    }

    /// Issue 9, finding 2 and docs/configuration.md "Input files": token and
    /// HMAC key files are read up to 64 KiB (65536 bytes); one byte more is
    /// refused before it is used, without showing the content.
    #[test]
    fn secret_files_over_64_kib_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at_limit = write(dir.path(), "t64k", &"a".repeat(64 * 1024), 0o600);
        assert_eq!(
            read_secret_file(TOKEN, &at_limit).unwrap().expose().len(),
            64 * 1024
        );
        let over = write(dir.path(), "t64k1", &"b".repeat(64 * 1024 + 1), 0o600);
        for what in [TOKEN, HMAC_KEY] {
            let e = read_secret_file(what, &over).unwrap_err();
            let msg = e.to_string();
            let file = match &e {
                SecretFileError::File(f) => Some(f),
                _ => None,
            };
            files::assert_too_large(file, &msg, (what, &over), 65536);
            assert!(!msg.contains("bbbb"), "{msg}");
        }
    }

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJFUzUxMiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.as_bytes())
        )
    }

    #[test]
    fn claims_and_when_to_renew() {
        let c = claims(&jwt(r#"{"exp": 1000, "iat": 600, "nbf": 600, "sub": "x"}"#)).unwrap();
        assert_eq!(
            c,
            Claims {
                exp: Some(1000),
                iat: Some(600),
                nbf: Some(600)
            }
        );
        // A quarter of 400 s left: at 900.
        assert_eq!(renew_at(c.iat, c.exp), Some(900));
        assert_eq!(renew_at(None, c.exp), None);
        // Not a JWT, or no JSON in it: no claims.
        for t in [
            "opaque-token",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJFUzUxMiJ9.lab-token.c2ln",
        ] {
            assert_eq!(claims(t), None, "{t}");
        }
        let c = claims(&jwt(r#"{"exp": 1.7e9}"#)).unwrap();
        assert_eq!(c.exp, Some(1_700_000_000));
    }

    #[test]
    fn a_renewed_token_keeps_owner_and_mode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "token", "old\n", 0o640);
        let old = read_token_file(TOKEN, &p).unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        write_token_file(&p, &Secret::new("new-token"), &old).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!((m.uid(), m.gid()), (old.uid, old.gid));
        assert_ne!(m.ino(), ino, "replaced by a rename, not rewritten in place");
        assert_eq!(read_secret_file(TOKEN, &p).unwrap().expose(), "new-token");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left");
    }
}
