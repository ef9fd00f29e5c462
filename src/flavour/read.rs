//! Reading a flavour's facts (feature `agent`): the thin I/O around
//! [`detect`](super::detect).
//!
//! Each fact is read on its own and bounded: `sonic_version.yml` through
//! [`crate::files`] (a regular file, at most 64 KiB), `DEVICE_METADATA|localhost`
//! with one `HGETALL` on a connection of its own (or from a `config_db.json`
//! snapshot), FRR's version with `vtysh -c "show version"` under a time
//! limit. A fact that cannot be read becomes a warning of the flavour; none
//! of this fails the caller.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::{DEVICE_METADATA_KEY, Fact, Flavour, Inputs, detect};
use crate::config::Config;
use crate::configdb::dbconfig::Databases;
use crate::files::{FileKind, SONIC_VERSION_MAX_BYTES, read_text};

/// How long one fact may take to read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The text of `sonic_version.yml`; `Ok(None)` when it does not exist.
pub fn sonic_version(path: &Path) -> Fact<String> {
    match read_text(FileKind::SonicVersion, path, SONIC_VERSION_MAX_BYTES) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `DEVICE_METADATA|localhost` from SONiC's redis (the CONFIG_DB that
/// `database_config` locates); `Ok(None)` when the key does not exist.
pub async fn device_metadata(
    database_config: &Path,
    timeout: Duration,
) -> Fact<BTreeMap<String, String>> {
    let dbs = Databases::load(database_config).map_err(|e| e.to_string())?;
    let fields = crate::configdb::connection::config_hash(&dbs, DEVICE_METADATA_KEY, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok((!fields.is_empty()).then_some(fields))
}

/// `DEVICE_METADATA|localhost` of a `config_db.json` snapshot (nested
/// `{"DEVICE_METADATA": {"localhost": {…}}}` or flat
/// `{"DEVICE_METADATA|localhost": {…}}`); scalar fields only.
pub fn device_metadata_in_snapshot(text: &str) -> Fact<BTreeMap<String, String>> {
    let root: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the snapshot is not JSON: {e}"))?;
    let entry = root
        .get("DEVICE_METADATA")
        .and_then(|t| t.get("localhost"))
        .or_else(|| root.get(DEVICE_METADATA_KEY));
    let Some(obj) = entry.and_then(|e| e.as_object()) else {
        return Ok(None);
    };
    Ok(Some(
        obj.iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect(),
    ))
}

/// FRR's `show version` through `vtysh_path` (and `frr_vty_socket_dir`).
pub async fn frr_show_version(cfg: &Config, timeout: Duration) -> Fact<String> {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(dir) = &cfg.frr_vty_socket_dir {
        args.push("--vty_socket".into());
        args.push(dir.into());
    }
    args.push("-c".into());
    args.push("show version".into());
    match crate::frr::command::run(&cfg.vtysh_path, &args, timeout).await {
        Ok(r) if r.status.success() => Ok(Some(r.stdout)),
        Ok(r) => Err(format!(
            "{} failed ({}): {}",
            crate::frr::command::shown(&cfg.vtysh_path, &args),
            r.status,
            crate::names::escaped(&r.output_tail(), 300)
        )),
        Err(crate::frr::command::RunError::Spawn(e)) => {
            Err(format!("cannot run {}: {e}", cfg.vtysh_path.display()))
        }
        Err(crate::frr::command::RunError::Timeout) => Err(format!(
            "{} gave no answer within {timeout:?}",
            crate::frr::command::shown(&cfg.vtysh_path, &args)
        )),
    }
}

/// Every fact, from where the configuration says: `sonic_version_file`,
/// CONFIG_DB through `database_config` (or the `config_db.json` text of
/// `snapshot`), FRR through `vtysh_path`.
pub async fn inputs(cfg: &Config, snapshot: Option<&str>) -> Inputs {
    let device_metadata = match snapshot {
        Some(text) => device_metadata_in_snapshot(text),
        None => device_metadata(&cfg.database_config, READ_TIMEOUT).await,
    };
    Inputs {
        sonic_version: sonic_version(&cfg.sonic_version_file),
        device_metadata,
        frr_show_version: frr_show_version(cfg, READ_TIMEOUT).await,
    }
}

/// Read the facts and decide the flavour.
pub async fn detect_switch(cfg: &Config, snapshot: Option<&str>) -> Flavour {
    detect(&inputs(cfg, snapshot).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_metadata_both_shapes() {
        let nested = r#"{"DEVICE_METADATA": {"localhost": {"docker_routing_config_mode": "split", "hostname": "leaf01"}}}"#;
        let m = device_metadata_in_snapshot(nested).unwrap().unwrap();
        assert_eq!(m["docker_routing_config_mode"], "split");
        let flat =
            r#"{"DEVICE_METADATA|localhost": {"docker_routing_config_mode": "split-unified"}}"#;
        assert_eq!(
            device_metadata_in_snapshot(flat).unwrap().unwrap()["docker_routing_config_mode"],
            "split-unified"
        );
        assert_eq!(device_metadata_in_snapshot(r#"{"PORT": {}}"#), Ok(None));
        assert!(device_metadata_in_snapshot("not json").is_err());
    }

    #[test]
    fn a_missing_version_file_is_absent_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(sonic_version(&dir.path().join("nope.yml")), Ok(None));
        // A directory is refused with a message.
        assert!(sonic_version(dir.path()).is_err());
    }

    #[tokio::test]
    async fn frr_failures_become_messages() {
        let cfg = Config {
            vtysh_path: "/nonexistent/vtysh".into(),
            ..Config::default()
        };
        let e = frr_show_version(&cfg, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.contains("/nonexistent/vtysh"), "{e}");
    }
}
