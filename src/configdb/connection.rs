//! Connections to SONiC's redis instances and their errors (feature
//! `agent`): the part of the CONFIG_DB adapter that both the feed
//! ([`super::feed`]) and the applier ([`super::redis`]) use.
//!
//! Every database is located through `database_config.json`
//! ([`Databases`]); a `password_path` means `AUTH` with the file's content,
//! read (and checked) before connecting.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::confirms::Condition;
use super::dbconfig::{Databases, DbConfigError, DbLocation, Instance};
use super::plan::Stage;

/// Errors talking to SONiC's redis.
#[derive(Debug, thiserror::Error)]
pub enum ConfigDbError {
    #[error(transparent)]
    DbConfig(#[from] DbConfigError),
    #[error("{source} (password_path of instance {instance})")]
    Password {
        instance: String,
        source: crate::files::FileError,
    },
    #[error("cannot connect to {db} (redis instance {instance} at {addr}): {source}")]
    Connect {
        db: String,
        instance: String,
        addr: String,
        source: redis::RedisError,
    },
    #[error("redis: {what}: {source}")]
    Redis {
        what: String,
        source: redis::RedisError,
    },
    #[error("redis: {what}: unexpected reply {reply}")]
    Reply { what: String, reply: String },
    #[error(
        "SONiC is not ready after {waited:?}: CONFIG_DB_INITIALIZED={config_db_initialized:?}, \
         APPL_DB PORT_TABLE:PortInitDone {port_init}; nothing was written"
    )]
    NotReady {
        waited: Duration,
        config_db_initialized: String,
        port_init: &'static str,
    },
    #[error(
        "phase {phase}/{phases} ({stage:?}) was written, but SONiC did not confirm it within {waited:?}; \
         still waiting for:\n{}\nphases 1..{phase} are in CONFIG_DB; the next reconcile first waits \
         for these confirmations and writes nothing before them",
        list(unmet)
    )]
    Barrier {
        phase: usize,
        phases: usize,
        stage: Stage,
        waited: Duration,
        unmet: Vec<Condition>,
    },
    #[error(
        "SONiC has not confirmed what CONFIG_DB already holds after {waited:?}; nothing was \
         written; still waiting for:\n{}",
        list(unmet)
    )]
    Pending {
        waited: Duration,
        unmet: Vec<Condition>,
    },
    #[error(
        "phase {phase}/{phases} was not written: its precondition did not hold within {waited:?}:\n{}",
        list(unmet)
    )]
    Precondition {
        phase: usize,
        phases: usize,
        waited: Duration,
        unmet: Vec<Condition>,
    },
    #[error("SONiC's redis (instance {instance}) is unavailable: {reason}; nothing was written")]
    Unavailable { instance: String, reason: String },
    #[error("not converged after applying the plan; still to do:\n{remaining}")]
    NotConverged { remaining: String },
    #[error(
        "stopped before the next write (shutdown); the next start continues from what SONiC confirmed"
    )]
    Stopped,
}

/// Conditions as an indented list (the first 20, then a count).
fn list(unmet: &[Condition]) -> String {
    let mut lines: Vec<String> = unmet.iter().take(20).map(|c| format!("  - {c}")).collect();
    if unmet.len() > 20 {
        lines.push(format!("  … and {} more", unmet.len() - 20));
    }
    lines.join("\n")
}

impl ConfigDbError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ConfigDbError::DbConfig(_)
            | ConfigDbError::Password { .. }
            | ConfigDbError::Reply { .. } => false,
            ConfigDbError::Connect { .. }
            | ConfigDbError::Redis { .. }
            | ConfigDbError::NotReady { .. }
            | ConfigDbError::Barrier { .. }
            | ConfigDbError::Pending { .. }
            | ConfigDbError::Precondition { .. }
            | ConfigDbError::Unavailable { .. }
            | ConfigDbError::NotConverged { .. } => true,
            ConfigDbError::Stopped => false,
        }
    }
}

/// The content of the instance's `password_path`, if it has one.
fn password(inst: &Instance) -> Result<Option<String>, ConfigDbError> {
    use crate::files::{FileKind, SECRET_MAX_BYTES, read_text};
    let Some(path) = &inst.password_path else {
        return Ok(None);
    };
    read_text(FileKind::RedisPassword, path, SECRET_MAX_BYTES)
        .map(Some)
        .map_err(|source| ConfigDbError::Password {
            instance: inst.name.clone(),
            source,
        })
}

/// Refuse a password file that cannot be used (missing, not a regular
/// file, too large, exposed) before connecting: it is invalid input, not
/// redis being away (the feed would only retry it).
pub(crate) fn check_passwords(dbs: &Databases) -> Result<(), ConfigDbError> {
    let required = [Some(&dbs.config), Some(&dbs.appl), Some(&dbs.state)];
    let optional = [dbs.counters.as_ref(), dbs.asic.as_ref()];
    for db in required.into_iter().chain(optional).flatten() {
        password(&db.instance)?;
    }
    Ok(())
}

/// A client for the instance of `db` (password from `password_path`).
fn client_for(db: &DbLocation) -> Result<(redis::Client, String), ConfigDbError> {
    let inst: &Instance = &db.instance;
    let addr = match &inst.unix_socket_path {
        Some(p) => ConnectionAddr::Unix(p.clone()),
        None => ConnectionAddr::Tcp(inst.hostname.clone(), inst.port),
    };
    let addr_text = addr.to_string();
    let mut settings = RedisConnectionInfo::default().set_db(db.id);
    if let Some(pw) = password(inst)? {
        settings = settings.set_password(pw.trim());
    }
    let info = addr
        .into_connection_info()
        .map_err(connect_error(db, addr_text.clone()))?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(connect_error(db, addr_text.clone()))?;
    Ok((client, addr_text))
}

fn connect_error(db: &DbLocation, addr: String) -> impl FnOnce(redis::RedisError) -> ConfigDbError {
    let (name, instance) = (db.name.clone(), db.instance.name.clone());
    move |source| ConfigDbError::Connect {
        db: name,
        instance,
        addr,
        source,
    }
}

/// How long one round trip (a phase's transactions, a pipelined read) may
/// take before the connection counts as broken. The redis client's default
/// (500 ms) is too short for a large phase on a switch CPU that SONiC's
/// daemons keep busy; this only catches a redis that no longer answers
/// (barrier waits follow notifications and have their own timeout).
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to redis (with the client's handshake) may take. The
/// client's default (1 s) turned a loaded machine into connection errors
/// (seen with the lab's SONiC stand-in at load average 11); a redis that
/// does not answer within this is down.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The name the agent's redis connections carry (`CLIENT SETNAME`): an
/// operator sees them in `CLIENT LIST`, and `SLOWLOG` entries name them.
pub const CLIENT_NAME: &str = "metal-switchd";

/// A multiplexed connection to the instance of `db` (selecting `db`),
/// named [`CLIENT_NAME`].
pub(crate) async fn connect_instance(
    db: &DbLocation,
) -> Result<MultiplexedConnection, ConfigDbError> {
    let (client, addr) = client_for(db)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(connect_error(db, addr.clone()))?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(CLIENT_NAME)
        .query_async::<()>(&mut conn)
        .await
        .map_err(connect_error(db, addr))?;
    Ok(conn)
}

/// A pub/sub connection to the instance of `db`.
pub(crate) async fn pubsub_instance(db: &DbLocation) -> Result<redis::aio::PubSub, ConfigDbError> {
    let (client, addr) = client_for(db)?;
    client
        .get_async_pubsub()
        .await
        .map_err(connect_error(db, addr))
}

/// The fields of one CONFIG_DB hash (`HGETALL <key>`, e.g.
/// `DEVICE_METADATA|localhost`), on a connection of its own, within
/// `timeout`; empty when the key does not exist. For facts read once (the
/// flavour), not for the owned tables (those come from the view). Bytes
/// that are not UTF-8 are read as U+FFFD and logged ([`super::reply`]).
pub async fn config_hash(
    dbs: &Databases,
    key: &str,
    timeout: Duration,
) -> Result<std::collections::BTreeMap<String, String>, ConfigDbError> {
    let what = format!("HGETALL {key} in CONFIG_DB");
    let read = async {
        let mut c = connect_instance(&dbs.config).await?;
        let reply = redis::cmd("HGETALL")
            .arg(key)
            .query_async::<redis::Value>(&mut c)
            .await
            .map_err(|source| ConfigDbError::Redis {
                what: what.clone(),
                source,
            })?;
        let mut tally = super::reply::Undecodable::default();
        let pairs = super::reply::pairs(reply);
        let fields = super::reply::fields(pairs, super::reply::Database::Config, key, &mut tally);
        Ok(fields.into_iter().collect())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(ConfigDbError::Unavailable {
            instance: dbs.config.instance.name.clone(),
            reason: format!("{what}: no answer within {timeout:?}"),
        }),
    }
}
