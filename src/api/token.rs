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
//! up without a restart.

use std::path::{Path, PathBuf};

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
    let kind = if what == TOKEN {
        FileKind::Token
    } else {
        FileKind::HmacKey
    };
    // One open: the mode and owner checked (by `files`, before reading)
    // are those of the file whose content is used.
    let FileText { text, .. } = files::read(kind, path, SECRET_MAX_BYTES)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SecretFileError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(trimmed))
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
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
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
            assert!(
                matches!(
                    e,
                    SecretFileError::File(FileError {
                        problem: FileProblem::TooLarge { limit: 65536 },
                        ..
                    })
                ),
                "{msg}"
            );
            assert!(
                msg.contains(&format!(
                    "{what} file {}: it is larger than the limit of 65536 bytes",
                    over.display()
                )),
                "{msg}"
            );
            assert!(!msg.contains("bbbb"), "{msg}");
        }
    }
}
