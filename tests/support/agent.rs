//! Running `metal-switchd run` for real: in its own network namespace (a
//! management interface with a global address, switch ports as veth pairs)
//! against a lab switch (redis + SONiC stand-in) and the lab API server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use metal_switchd_lab::api_server::{ApiServer, ApiServerOptions, TokenGrant};
use metal_switchd_lab::fixtures;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The lab API server serving the lab leaf01 (v1 with `hmac_key`, v2 with
/// `token`), listening on the host side of `ns`.
pub fn lab_api(ns: &AgentNetns, hmac_key: &str, token: &str) -> ApiServer {
    ApiServer::start(ApiServerOptions {
        switches: vec![fixtures::LEAF01_SWITCH_V1.to_owned()],
        partitions: vec!["mini-lab".into()],
        hmac_edit_key: Some(hmac_key.into()),
        tokens: [(token.to_owned(), TokenGrant::Editor)].into(),
        listen: (ns.host_ip, 0).into(),
        ..ApiServerOptions::default()
    })
    .expect("lab API server")
}

/// A network namespace with `mgmt0` (a veth to the host, with an address),
/// and veth pairs named as switch ports; deleted on drop.
pub struct AgentNetns {
    pub name: String,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `ip` ({e}); install iproute2 (apt-get install -y iproute2)")
    });
    assert!(
        out.status.success(),
        "ip {}: {}; these tests need root (network namespaces, veth)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl AgentNetns {
    pub fn new(ports: &[&str]) -> AgentNetns {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let unique = (std::process::id() << 2 | (seq & 3)) & 0x3f_ffff;
        let name = format!("msd-{}-{seq}", std::process::id());
        let host_if = format!("msd{unique:x}");
        // A /30 in 100.64.0.0/10, unique per process and namespace.
        let base = u32::from(Ipv4Addr::new(100, 64, 0, 0)) | (unique << 2);
        let host_ip = Ipv4Addr::from(base + 1);
        let ns_ip = Ipv4Addr::from(base + 2);
        ip(&["netns", "add", &name]);
        let ns = AgentNetns {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "mgmt0",
            "netns",
            &ns.name,
        ]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.ip(&["addr", "add", &format!("{ns_ip}/30"), "dev", "mgmt0"]);
        ns.ip(&["link", "set", "mgmt0", "up"]);
        for p in ports {
            let peer = format!("{p}p");
            ns.ip(&["link", "add", p, "type", "veth", "peer", "name", &peer]);
            ns.ip(&["link", "set", p, "up"]);
            ns.ip(&["link", "set", &peer, "up"]);
        }
        ns
    }

    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        ip(&a);
    }
}

impl Drop for AgentNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `metal-switchd run` in a namespace; killed on drop if still running.
pub struct AgentProcess {
    child: Option<Child>,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Start `metal-switchd --config CONFIG run` in `ns`; stderr goes to `log`.
    pub fn start(ns: &AgentNetns, config: &Path, log: &Path) -> AgentProcess {
        AgentProcess::start_full(ns, config, log, &[], &[])
    }

    /// [`AgentProcess::start`] with extra environment variables.
    pub fn start_with_env(
        ns: &AgentNetns,
        config: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> AgentProcess {
        AgentProcess::start_full(ns, config, log, &[], env)
    }

    /// [`AgentProcess::start`] with global options before `run` (e.g. `--log debug`).
    pub fn start_with(
        ns: &AgentNetns,
        config: &Path,
        log: &Path,
        options: &[&str],
    ) -> AgentProcess {
        AgentProcess::start_full(ns, config, log, options, &[])
    }

    /// Options before `run` and extra environment variables.
    pub fn start_full(
        ns: &AgentNetns,
        config: &Path,
        log: &Path,
        options: &[&str],
        env: &[(&str, &str)],
    ) -> AgentProcess {
        let err = std::fs::File::create(log).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_metal-switchd"),
            ])
            .arg("--config")
            .arg(config)
            .args(options)
            .arg("run")
            .env_remove("METAL_SWITCHD_CONFIG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("starting metal-switchd run");
        AgentProcess {
            child: Some(child),
            log: log.to_owned(),
        }
    }

    /// The process id (of `ip netns exec`, which execs the agent).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let out = Command::new("kill")
            .args(["-s", sig, &pid])
            .output()
            .unwrap();
        assert!(out.status.success(), "kill -s {sig} {pid}");
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Wait until it ends by itself (a crash point, an error), without
    /// signalling it; panics with the log after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        super::process::exit_within(&mut child, timeout).unwrap_or_else(|| {
            panic!(
                "metal-switchd did not end within {timeout:?}; log:\n{}",
                self.log_text()
            )
        })
    }

    /// SIGTERM, then wait for the exit (panics after `timeout`).
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().expect("running");
        super::process::exit_within(&mut child, timeout).unwrap_or_else(|| {
            panic!(
                "metal-switchd did not exit within {timeout:?} after SIGTERM; log:\n{}",
                self.log_text()
            )
        })
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait until `f` returns `Some`, checking every 20 ms; panic with `what`
/// and the agent's log after `timeout` (which only catches hangs).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    agent: &AgentProcess,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}; agent log:\n{}",
                agent.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
