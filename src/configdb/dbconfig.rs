//! SONiC's `database_config.json`: where each database lives (pure parsing).
//!
//! Every database is resolved through the file — instance, unix socket or
//! host/port, database id, separator and the optional `password_path` of
//! Broadcom builds — never hard-coded (sonic-configdb reference §1).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Errors in `database_config.json`.
#[derive(Debug, thiserror::Error)]
pub enum DbConfigError {
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error("{path}: not a SONiC database_config.json: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: database {db} is not defined (DATABASES.{db})")]
    MissingDb { path: String, db: String },
    #[error("{path}: database {db} uses instance {instance:?}, which INSTANCES does not define")]
    MissingInstance {
        path: String,
        db: String,
        instance: String,
    },
    #[error("{path}: database {db} has separator {sep:?}; CONFIG_DB must use \"|\"")]
    Separator {
        path: String,
        db: String,
        sep: String,
    },
}

impl DbConfigError {
    /// Whether reading again later may succeed: the file is missing (SONiC
    /// writes it while it boots) or could not be read.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbConfigError::File(e) if e.is_transient())
    }
}

#[derive(Debug, Clone, Deserialize)]
struct RawInstance {
    hostname: String,
    port: u16,
    #[serde(default)]
    unix_socket_path: Option<String>,
    #[serde(default)]
    password_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawDb {
    id: i64,
    separator: String,
    instance: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    #[serde(rename = "INSTANCES")]
    instances: BTreeMap<String, RawInstance>,
    #[serde(rename = "DATABASES")]
    databases: BTreeMap<String, RawDb>,
}

/// Where to reach one redis instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    pub name: String,
    pub hostname: String,
    pub port: u16,
    pub unix_socket_path: Option<PathBuf>,
    pub password_path: Option<PathBuf>,
}

/// One resolved database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbLocation {
    pub name: String,
    pub instance: Instance,
    pub id: i64,
    pub separator: char,
}

/// The databases the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Databases {
    pub config: DbLocation,
    pub appl: DbLocation,
    pub state: DbLocation,
    /// COUNTERS_DB and ASIC_DB (optional: virtual labs have no ASIC).
    pub counters: Option<DbLocation>,
    pub asic: Option<DbLocation>,
}

impl Databases {
    /// Parse the text of a `database_config.json` (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Databases, DbConfigError> {
        let parse_err = |e: serde_json::Error| DbConfigError::Parse {
            path: path.to_owned(),
            message: crate::names::escaped(&e.to_string(), 300),
        };
        let raw: RawConfig = crate::json::from_str(text)
            .and_then(serde_json::from_value)
            .map_err(parse_err)?;
        let resolve = |db: &str, required: bool| -> Result<Option<DbLocation>, DbConfigError> {
            let Some(d) = raw.databases.get(db) else {
                return if required {
                    Err(DbConfigError::MissingDb {
                        path: path.to_owned(),
                        db: db.to_owned(),
                    })
                } else {
                    Ok(None)
                };
            };
            let inst =
                raw.instances
                    .get(&d.instance)
                    .ok_or_else(|| DbConfigError::MissingInstance {
                        path: path.to_owned(),
                        db: db.to_owned(),
                        instance: d.instance.clone(),
                    })?;
            let mut sep = d.separator.chars();
            let separator = match (sep.next(), sep.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(DbConfigError::Separator {
                        path: path.to_owned(),
                        db: db.to_owned(),
                        sep: d.separator.clone(),
                    });
                }
            };
            Ok(Some(DbLocation {
                name: db.to_owned(),
                instance: Instance {
                    name: d.instance.clone(),
                    hostname: inst.hostname.clone(),
                    port: inst.port,
                    unix_socket_path: inst
                        .unix_socket_path
                        .clone()
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from),
                    password_path: inst
                        .password_path
                        .clone()
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from),
                },
                id: d.id,
                separator,
            }))
        };
        let missing = |db: &str| DbConfigError::MissingDb {
            path: path.to_owned(),
            db: db.to_owned(),
        };
        let config = resolve("CONFIG_DB", true)?.ok_or_else(|| missing("CONFIG_DB"))?;
        if config.separator != super::schema::SEP {
            return Err(DbConfigError::Separator {
                path: path.to_owned(),
                db: "CONFIG_DB".into(),
                sep: config.separator.to_string(),
            });
        }
        Ok(Databases {
            appl: resolve("APPL_DB", true)?.ok_or_else(|| missing("APPL_DB"))?,
            state: resolve("STATE_DB", true)?.ok_or_else(|| missing("STATE_DB"))?,
            counters: resolve("COUNTERS_DB", false)?,
            asic: resolve("ASIC_DB", false)?,
            config,
        })
    }

    /// Read (a regular file of at most 1 MiB) and parse the file.
    pub fn load(path: &std::path::Path) -> Result<Databases, DbConfigError> {
        use crate::files::{DATABASE_CONFIG_MAX_BYTES, FileKind, read_text};
        let text = read_text(FileKind::DatabaseConfig, path, DATABASE_CONFIG_MAX_BYTES)?;
        Databases::parse(&path.display().to_string(), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMUNITY: &str = r#"{
      "INSTANCES": {
        "redis": {"hostname": "127.0.0.1", "port": 6379, "unix_socket_path": "/var/run/redis/redis.sock", "persistence_for_warm_boot": "yes"},
        "redis_bmp": {"hostname": "127.0.0.1", "port": 6400, "unix_socket_path": "/var/run/redis/redis_bmp.sock"}
      },
      "DATABASES": {
        "APPL_DB": {"id": 0, "separator": ":", "instance": "redis"},
        "ASIC_DB": {"id": 1, "separator": ":", "instance": "redis"},
        "COUNTERS_DB": {"id": 2, "separator": ":", "instance": "redis"},
        "CONFIG_DB": {"id": 4, "separator": "|", "instance": "redis"},
        "STATE_DB": {"id": 6, "separator": "|", "instance": "redis"}
      },
      "VERSION": "1.0"
    }"#;

    #[test]
    fn community_layout() {
        let d = Databases::parse("x", COMMUNITY).unwrap();
        assert_eq!(d.config.id, 4);
        assert_eq!(d.state.id, 6);
        assert_eq!(d.appl.separator, ':');
        assert_eq!(
            d.config.instance.unix_socket_path.as_deref(),
            Some(std::path::Path::new("/var/run/redis/redis.sock"))
        );
        assert_eq!(d.asic.unwrap().id, 1);
    }

    #[test]
    fn broadcom_password_and_instance_names() {
        let text = COMMUNITY
            .replace("\"redis\":", "\"redis2\":")
            .replace("\"instance\": \"redis\"", "\"instance\": \"redis2\"")
            .replace(
                "\"persistence_for_warm_boot\": \"yes\"",
                "\"password_path\": \"/run/redis/auth/passwd\"",
            );
        let d = Databases::parse("x", &text).unwrap();
        assert_eq!(d.config.instance.name, "redis2");
        assert_eq!(
            d.config.instance.password_path.as_deref(),
            Some(std::path::Path::new("/run/redis/auth/passwd"))
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        let e =
            Databases::parse("db.json", &COMMUNITY.replace("CONFIG_DB", "CONFIGX")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "db.json: database CONFIG_DB is not defined (DATABASES.CONFIG_DB)"
        );
        let e = Databases::parse(
            "db.json",
            &COMMUNITY.replace("\"instance\": \"redis\"}", "\"instance\": \"nope\"}"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("instance \"nope\""), "{e}");
    }

    /// Issue 9, finding 3 and docs/configuration.md "Input files":
    /// `database_config.json` is strict JSON. With CONFIG_DB given twice
    /// (ids 4 and 8), which database the agent writes would be a guess.
    #[test]
    fn a_repeated_key_is_refused() {
        let text = COMMUNITY.replace(
            "\"STATE_DB\": {",
            "\"CONFIG_DB\": {\"id\": 8, \"separator\": \"|\", \"instance\": \"redis\"},\n        \"STATE_DB\": {",
        );
        assert_ne!(text, COMMUNITY);
        let e = Databases::parse("db.json", &text).unwrap_err();
        assert!(matches!(e, DbConfigError::Parse { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("db.json: not a SONiC database_config.json: "),
            "{msg}"
        );
        assert!(
            msg.contains("key \"CONFIG_DB\" appears twice in one object"),
            "{msg}"
        );
        // A repeated field inside an instance, too.
        let text = COMMUNITY.replace("\"port\": 6379,", "\"port\": 6379, \"port\": 6380,");
        assert_ne!(text, COMMUNITY);
        let msg = Databases::parse("db.json", &text).unwrap_err().to_string();
        assert!(msg.contains("key \"port\" appears twice"), "{msg}");
    }

    /// Issue 9, finding 2 and docs/configuration.md "Input files":
    /// `database_config.json` is read up to 1 MiB (fixed).
    #[test]
    fn a_database_config_over_1_mib_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("database_config.json");
        // Valid JSON, padded with blanks past the limit.
        let text = format!("{COMMUNITY}{}", " ".repeat(1024 * 1024));
        std::fs::write(&p, &text).unwrap();
        let e = Databases::load(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                &e,
                DbConfigError::File(crate::files::FileError {
                    problem: crate::files::FileProblem::TooLarge { limit: 1048576 },
                    ..
                })
            ),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "database_config.json {}: it is larger than the limit of 1048576 bytes",
                p.display()
            )),
            "{msg}"
        );
        assert!(!e.is_transient());
        // Within the limit, the same content is read.
        std::fs::write(&p, &text[..1024 * 1024]).unwrap();
        assert_eq!(Databases::load(&p).unwrap().config.id, 4);
    }
}
