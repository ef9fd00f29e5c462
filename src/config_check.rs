//! What `check-config` checks beyond the configuration's own values
//! (feature `agent`): every file `run` will read, read now under the rules
//! `run` applies to it ([`crate::files`]: a regular file, within its size
//! limit, UTF-8 where text, and for secrets the modes and owners of
//! `files::SecretAccess`), the API version and why it was chosen, and the
//! risks of the transport (plain HTTP).
//!
//! A file `run` cannot do without (a configured HMAC key, the v2 token, the
//! gRPC certificates and key, `api_ca_file`) is an error when it cannot be
//! used, missing included. A file SONiC or a timer writes later
//! (`database_config.json`, `sonic_version.yml`, the BGP state file) is a
//! note when it does not exist yet and an error when it exists but cannot
//! be used. The installed `frr.conf` must be a regular file (not a link)
//! or missing.

use std::ffi::OsStr;
use std::path::Path;

use crate::api::grpc::GrpcEvents;
use crate::api::token;
use crate::config::{ApiVersion, BgpStateSource, Config};
use crate::configdb::dbconfig::Databases;
use crate::files::{self, FileKind};
use crate::reconcile::options;

/// What `check-config` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// `run` would refuse these (or fail on them): exit code 2.
    pub errors: Vec<String>,
    /// Risks `run` accepts, said loudly.
    pub warnings: Vec<String>,
    /// Worth knowing, not wrong.
    pub notes: Vec<String>,
    /// The credentials `run` needs that were read and can be used (the
    /// secrets, the gRPC certificates), named for a report.
    pub checked: Vec<String>,
}

impl Findings {
    fn secret(&mut self, what: &'static str, path: &Path) {
        match token::read_secret_file(what, path) {
            Ok(_) => self.checked.push(format!("{what} {}", path.display())),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    /// A file that may appear later: missing is a note.
    fn later(&mut self, kind: FileKind, path: &Path, limit: u64, who: &str) {
        match files::read_bytes(kind, path, limit) {
            Ok(_) => {}
            Err(e) if e.is_missing() => self.notes.push(format!(
                "the {kind} {} does not exist yet ({who} writes it)",
                path.display()
            )),
            Err(e) => self.errors.push(e.to_string()),
        }
    }
}

/// Check what `run` will read and how it will talk to the API.
pub fn check(cfg: &Config) -> Findings {
    let mut f = Findings::default();
    f.warnings.extend(cfg.plaintext_warnings());
    f.notes.extend(cfg.limit_notes());
    match cfg.api_version() {
        ApiVersion::V1 => {
            if let Some(path) = &cfg.hmac_key_file {
                f.secret(token::HMAC_KEY, path);
            } else if cfg.hmac_key.is_some() {
                f.checked.push(format!("{} (hmac_key)", token::HMAC_KEY));
            } else {
                f.warnings.push(
                    "run cannot start yet: api_version v1 needs the Metal-Edit HMAC key \
                     (hmac_key_file)"
                        .into(),
                );
            }
            match options::grpc(cfg) {
                Ok(Some(settings)) => match GrpcEvents::new(&settings) {
                    Ok(_) => f.checked.push(format!(
                        "gRPC certificates {}, {}, {}",
                        settings.ca_cert_file.display(),
                        settings.client_cert_file.display(),
                        settings.client_key_file.display()
                    )),
                    Err(e) => f.errors.push(e.to_string()),
                },
                Ok(None) => f.notes.push(
                    "grpc_address is not set: phone-home events (v1 gRPC) cannot be sent".into(),
                ),
                Err(e) => f.errors.push(e.to_string()),
            }
        }
        ApiVersion::V2 => {
            f.secret(token::TOKEN, &cfg.metal_apiserver_token_file);
            // The token's own checks (plain HTTP, the URL) are the client's.
            if let Err(e) = options::api_client(cfg) {
                let text = e.to_string();
                if !f.errors.contains(&text) {
                    f.errors.push(text);
                }
            }
        }
    }
    if let Some(path) = &cfg.api_ca_file
        && let Err(e) = files::read_bytes(FileKind::CaCertificates, path, files::CA_FILE_MAX_BYTES)
    {
        f.errors.push(e.to_string());
    }
    match Databases::load(&cfg.database_config) {
        Ok(dbs) => {
            if let Some(p) = &dbs.config.instance.password_path
                && let Err(e) =
                    files::read_bytes(FileKind::RedisPassword, p, files::SECRET_MAX_BYTES)
            {
                f.errors.push(e.to_string());
            }
        }
        Err(e) if e.is_transient() => f
            .notes
            .push(format!("{e} (SONiC writes it; run waits for it)")),
        Err(e) => f.errors.push(e.to_string()),
    }
    f.later(
        FileKind::SonicVersion,
        &cfg.sonic_version_file,
        files::SONIC_VERSION_MAX_BYTES,
        "SONiC",
    );
    if cfg.bgp_state_source == BgpStateSource::File
        && let Some(path) = &cfg.bgp_neighbor_state_file
    {
        f.later(
            FileKind::BgpState,
            path,
            files::BGP_STATE_MAX_BYTES,
            "the bgp-neighbor-stats timer",
        );
    }
    frr_config(cfg, &mut f);
    f
}

/// The installed `frr.conf`, read as the installer reads it.
fn frr_config(cfg: &Config, f: &mut Findings) {
    let dest = &cfg.frr_config;
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        f.errors.push(format!(
            "frr_config {} has no parent directory; set frr_config to a file path",
            dest.display()
        ));
        return;
    };
    let dir = match files::Dir::open(dir) {
        Ok(d) => d,
        Err(e) => {
            f.notes.push(format!(
                "the directory of frr_config {} cannot be opened ({e}); FRR's package creates it",
                dest.display()
            ));
            return;
        }
    };
    if let Err(e) = dir.read_regular(
        FileKind::FrrConfig,
        OsStr::new(name),
        files::FRR_CONFIG_MAX_BYTES,
    ) {
        f.errors.push(e.to_string());
    }
}
