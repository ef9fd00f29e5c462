//! A throwaway `redis-server` for tests and the lab, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

fn spawn(dir: &Path, socket: &Path, netns: Option<&str>) -> Result<Child> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "redis-server"]);
            c
        }
        None => Command::new("redis-server"),
    };
    cmd.args(["--port", "0", "--unixsocket"])
        .arg(socket)
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--notify-keyspace-events",
            "AKE",
            "--databases",
            "100",
            "--dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context(
            "cannot start redis-server; install it with `apt-get install -y redis-server` \
             (the test command in README.md does this)",
        )
}

/// How long an empty server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server loading a redis file may take to answer (millions of
/// keys on a loaded machine).
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// `rdb` as `dump.rdb` in `dir`: a hard link where possible (the file can
/// be hundreds of megabytes; redis only reads it at start and never writes
/// it in place), a copy otherwise.
fn place_data(rdb: &Path, dir: &Path) -> Result<()> {
    let to = dir.join("dump.rdb");
    let _ = std::fs::remove_file(&to);
    std::fs::hard_link(rdb, &to)
        .or_else(|_| std::fs::copy(rdb, &to).map(|_| ()))
        .with_context(|| format!("placing {} in {}", rdb.display(), dir.display()))
}

/// SONiC's database ids (community `database_config.json.j2`).
pub const APPL_DB: i64 = 0;
pub const ASIC_DB: i64 = 1;
pub const COUNTERS_DB: i64 = 2;
pub const CONFIG_DB: i64 = 4;
pub const STATE_DB: i64 = 6;

/// A running `redis-server` on a unix socket in its own temp dir.
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
}

impl RedisServer {
    /// Start one, configured like SONiC's database container
    /// (`notify-keyspace-events AKE`, `save ""`, 100 databases).
    pub fn start() -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-redis-")
            .tempdir()
            .context("creating a temp dir for redis-server")?;
        RedisServer::start_at(dir, None, START_TIMEOUT)
    }

    /// Start one with the data of a redis file (`SAVE`'s `dump.rdb`): redis
    /// loads it at start, much faster than writing the keys again.
    pub fn start_with_data(rdb: &Path) -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-redis-")
            .tempdir()
            .context("creating a temp dir for redis-server")?;
        place_data(rdb, dir.path())?;
        RedisServer::start_at(dir, None, LOAD_TIMEOUT)
    }

    /// Start one with its directory under `parent`, running in network
    /// namespace `netns` (so that removing the namespace's processes stops
    /// it too; the unix socket is reachable from everywhere).
    pub fn start_in(parent: &Path, netns: Option<&str>) -> Result<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("redis-")
            .tempdir_in(parent)
            .with_context(|| format!("creating a redis directory in {}", parent.display()))?;
        RedisServer::start_at(dir, netns, START_TIMEOUT)
    }

    fn start_at(
        dir: tempfile::TempDir,
        netns: Option<&str>,
        timeout: Duration,
    ) -> Result<RedisServer> {
        let socket = dir.path().join("redis.sock");
        let child = spawn(dir.path(), &socket, netns)?;
        let server = RedisServer {
            dir,
            child,
            socket,
            netns: netns.map(str::to_owned),
        };
        server.wait_ready(timeout)?;
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the server and start a new, empty one on the same socket (as a
    /// restart of SONiC's database container does: no persistence).
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        self.child = spawn(self.dir.path(), &self.socket, self.netns.as_deref())?;
        self.wait_ready(START_TIMEOUT)
    }

    /// Write the data to `dump.rdb` in the server's directory (`SAVE`) and
    /// return its path.
    pub fn save(&self) -> Result<PathBuf> {
        let mut c = self.connection(0)?;
        redis::cmd("SAVE").query::<()>(&mut c).context("SAVE")?;
        Ok(self.dir.path().join("dump.rdb"))
    }

    /// [`RedisServer::restart`], the new server loading the data of a
    /// redis file (as SONiC fills its databases again after a restart).
    pub fn restart_with_data(&mut self, rdb: &Path) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        place_data(rdb, self.dir.path())?;
        self.child = spawn(self.dir.path(), &self.socket, self.netns.as_deref())?;
        self.wait_ready(LOAD_TIMEOUT)
    }

    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(mut c) = self.connection(0)
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "redis-server did not answer on {} within {timeout:?}",
                    self.socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Run the server under `SCHED_FIFO` (`chrt -f -p 1`): a machine busy
    /// with other work then never preempts it in the middle of a command,
    /// so the times in its `SLOWLOG` are what the commands cost. Needs root
    /// (`CAP_SYS_NICE`); call it again after [`RedisServer::restart`].
    pub fn realtime(&self) -> Result<()> {
        let out = Command::new("chrt")
            .args(["-f", "-p", "1"])
            .arg(self.child.id().to_string())
            .output()
            .context("running chrt (util-linux)")?;
        if !out.status.success() {
            bail!(
                "chrt -f -p 1 {}: {} (run as root: SCHED_FIFO needs CAP_SYS_NICE)",
                self.child.id(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// The unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temp dir (for files that belong with this server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// URL of database `db` (`redis+unix:///...?db=N`).
    pub fn url(&self, db: i64) -> String {
        format!("redis+unix://{}?db={db}", self.socket.display())
    }

    /// A blocking connection to database `db`.
    pub fn connection(&self, db: i64) -> Result<redis::Connection> {
        let client = redis::Client::open(self.url(db))?;
        Ok(client.get_connection()?)
    }

    /// An async client for database `db`.
    pub fn client(&self, db: i64) -> Result<redis::Client> {
        Ok(redis::Client::open(self.url(db))?)
    }

    /// Write a SONiC `database_config.json` pointing at this server and return its path.
    pub fn write_database_config(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("database_config.json");
        std::fs::write(&path, database_config_json(&self.socket))?;
        Ok(path)
    }

    /// Total calls of one redis command (`INFO commandstats`), e.g. `hset`.
    pub fn command_calls(&self, command: &str) -> Result<u64> {
        let mut c = self.connection(0)?;
        let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c)?;
        let prefix = format!("cmdstat_{}:calls=", command.to_ascii_lowercase());
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Reset `INFO commandstats`.
    pub fn reset_stats(&self) -> Result<()> {
        let mut c = self.connection(0)?;
        redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(&mut c)?;
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A community-SONiC `database_config.json` whose one instance is `socket`.
pub fn database_config_json(socket: &Path) -> String {
    let s = socket.display();
    format!(
        r#"{{
  "INSTANCES": {{
    "redis": {{"hostname": "127.0.0.1", "port": 6379, "unix_socket_path": "{s}", "persistence_for_warm_boot": "yes"}}
  }},
  "DATABASES": {{
    "APPL_DB": {{"id": 0, "separator": ":", "instance": "redis"}},
    "ASIC_DB": {{"id": 1, "separator": ":", "instance": "redis"}},
    "COUNTERS_DB": {{"id": 2, "separator": ":", "instance": "redis"}},
    "LOGLEVEL_DB": {{"id": 3, "separator": ":", "instance": "redis"}},
    "CONFIG_DB": {{"id": 4, "separator": "|", "instance": "redis"}},
    "PFC_WD_DB": {{"id": 5, "separator": ":", "instance": "redis"}},
    "FLEX_COUNTER_DB": {{"id": 5, "separator": ":", "instance": "redis"}},
    "STATE_DB": {{"id": 6, "separator": "|", "instance": "redis"}}
  }},
  "VERSION": "1.0"
}}
"#
    )
}
