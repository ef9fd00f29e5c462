//! Real FRR daemons (`zebra`, `bgpd`, `staticd`) in a network namespace of
//! their own, with their own vty socket and configuration directories and
//! their own host name; everything is stopped and removed on drop.
//!
//! What this kernel cannot give FRR: VRF devices (no `vrf` link type), so
//! tenant VRFs stay *inactive* in zebra (`vrfId -1`): their configuration
//! blocks load and show in `show running-config`, BGP instances exist, but
//! no tenant session can come up. [`kernel_has_vrf`] probes for it so tests
//! can say so loudly.
//!
//! The daemons run as user `frr` (FRR refuses vty sockets for users outside
//! `frrvty`); each runs in a fresh UTS namespace with the given host name,
//! because FRR takes its host name (and BGP's hostname capability) from
//! `uname`, not from the `hostname` line of an integrated configuration
//! loaded through vtysh. [`FrrLab::vtysh`] and [`FrrLab::reload_test`] run in
//! the same UTS namespace, so `show running-config` and `frr-reload.py
//! --test` see the same host name as the daemons.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where Debian installs the FRR daemons.
pub const FRR_SBIN: &str = "/usr/lib/frr";
/// Debian's frr-reload.py (package frr-pythontools).
pub const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";
/// The daemons every lab runs.
pub const DAEMONS: [&str; 3] = ["zebra", "bgpd", "staticd"];

/// Which FRR a lab runs: Debian's package (the default) or a SONiC
/// release's FRR built by `lab/sonic/build.sh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrInstall {
    /// Directory of the daemons.
    pub sbin: PathBuf,
    pub vtysh: PathBuf,
    /// frr-reload.py
    pub reload: PathBuf,
    /// Started in this order.
    pub daemons: Vec<&'static str>,
    /// Extra arguments of zebra (FPM module, netlink buffer).
    pub zebra_args: Vec<String>,
    /// Daemons without a configuration file option (FRR 10's mgmtd and
    /// staticd get theirs through mgmtd).
    pub no_config_file: Vec<&'static str>,
}

impl FrrInstall {
    /// Debian's `frr` and `frr-pythontools`.
    pub fn debian() -> FrrInstall {
        FrrInstall {
            sbin: PathBuf::from(FRR_SBIN),
            vtysh: PathBuf::from("/usr/bin/vtysh"),
            reload: PathBuf::from(FRR_RELOAD),
            daemons: DAEMONS.to_vec(),
            zebra_args: Vec::new(),
            no_config_file: Vec::new(),
        }
    }

    /// The same FRR, zebra loading `modules` (`-M`) too.
    pub fn with_zebra_modules(mut self, modules: &[&str]) -> FrrInstall {
        for m in modules {
            self.zebra_args.extend(["-M".to_owned(), (*m).to_owned()]);
        }
        self
    }

    fn is_debian(&self) -> bool {
        self.sbin == Path::new(FRR_SBIN) && self.reload == Path::new(FRR_RELOAD)
    }

    /// Fail with a useful message unless every file is there.
    pub fn require(&self) -> Result<()> {
        if self.is_debian() {
            return require_frr();
        }
        if !is_root() {
            bail!("FRR lab tests need root (network namespaces, FRR daemons); run them as root");
        }
        let files = self
            .daemons
            .iter()
            .map(|d| self.sbin.join(d))
            .chain([self.vtysh.clone(), self.reload.clone()]);
        for f in files {
            if !f.exists() {
                bail!(
                    "{} is missing; rebuild it: ./dev sonic build RELEASE",
                    f.display()
                );
            }
        }
        Ok(())
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, unique name with `prefix` (pid + counter), at most 15 characters
/// when `prefix` has at most 4.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id() % 100_000)
}

/// Fail with a useful message unless we are root and FRR is installed.
pub fn require_frr() -> Result<()> {
    if !is_root() {
        bail!("FRR lab tests need root (network namespaces, FRR daemons); run them as root");
    }
    for d in DAEMONS {
        let p = Path::new(FRR_SBIN).join(d);
        if !p.exists() {
            bail!(
                "{} is missing; install FRR: apt-get install -y frr frr-pythontools iproute2",
                p.display()
            );
        }
    }
    for tool in ["/usr/bin/vtysh", FRR_RELOAD] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing; install it: apt-get install -y frr frr-pythontools");
        }
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether this kernel can create VRF devices (it cannot here).
pub fn kernel_has_vrf() -> bool {
    let ns = unique_name("vrfp");
    if run("ip", &["netns", "add", &ns]).is_err() {
        return false;
    }
    let ok = run(
        "ip",
        &[
            "-n", &ns, "link", "add", "probe0", "type", "vrf", "table", "10",
        ],
    )
    .is_ok();
    let _ = run("ip", &["netns", "del", &ns]);
    ok
}

/// Fail with how to run it unless this kernel can create VRF devices (a
/// test that needs the full-kernel VM: `./dev vm-test <test>`).
pub fn require_full_kernel(test: &str) -> Result<()> {
    if !kernel_has_vrf() {
        bail!(
            "this kernel ({}) has no vrf link type: this test runs in the full-kernel VM; \
             run it with `./dev vm-test {test}` (`./dev test` does too)",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        );
    }
    Ok(())
}

/// Run a command; error with its output unless it succeeds.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// The deltas `frr-reload.py --test` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadTest {
    pub to_delete: Vec<String>,
    pub to_add: Vec<String>,
    /// The whole output, for messages.
    pub output: String,
}

impl ReloadTest {
    /// No line to delete and none to add.
    pub fn is_empty(&self) -> bool {
        self.to_delete.is_empty() && self.to_add.is_empty()
    }

    fn parse(output: &str) -> ReloadTest {
        let mut t = ReloadTest {
            output: output.to_owned(),
            ..ReloadTest::default()
        };
        let mut section = 0;
        for line in output.lines() {
            match line.trim() {
                "Lines To Delete" => section = 1,
                "Lines To Add" => section = 2,
                "" => {}
                l if l.chars().all(|c| c == '=') => {}
                // Log lines of --stdout: "2024-01-01 12:00:00,000  INFO: ..."
                l if l.len() > 4 && l[..4].chars().all(|c| c.is_ascii_digit()) => {}
                _ if section == 1 => t.to_delete.push(line.to_owned()),
                _ if section == 2 => t.to_add.push(line.to_owned()),
                _ => {}
            }
        }
        t
    }
}

/// The lab's files: a temp dir (removed with the lab) or a directory the
/// caller owns.
enum LabDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl LabDir {
    fn path(&self) -> &Path {
        match self {
            LabDir::Temp(t) => t.path(),
            LabDir::Kept(p) => p,
        }
    }
}

/// zebra + bgpd + staticd in their own network namespace.
pub struct FrrLab {
    netns: String,
    hostname: String,
    dir: LabDir,
    children: Vec<(&'static str, Child)>,
    /// The namespace was created here (and is deleted on drop).
    owns_netns: bool,
    install: FrrInstall,
    /// The configuration the daemons start with.
    boot_config: String,
}

impl FrrLab {
    /// Start the daemons in a new namespace with host name `hostname`; they
    /// begin with an empty configuration.
    pub fn start(hostname: &str) -> Result<FrrLab> {
        FrrLab::start_with(hostname, &[])
    }

    /// [`FrrLab::start`] with zebra loading `zebra_modules` (see
    /// [`FrrLab::start_in_with`]).
    pub fn start_with(hostname: &str, zebra_modules: &[&str]) -> Result<FrrLab> {
        require_frr()?;
        let netns = unique_name("frr");
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-frr-")
            .tempdir()
            .context("creating the lab directory")?;
        run("ip", &["netns", "add", &netns])?;
        let lab = FrrLab {
            netns,
            hostname: hostname.to_owned(),
            dir: LabDir::Temp(dir),
            children: Vec::new(),
            owns_netns: true,
            install: FrrInstall::debian().with_zebra_modules(zebra_modules),
            boot_config: String::new(),
        };
        lab.launch()
    }

    /// Start the daemons in the existing namespace `netns` with host name
    /// `hostname`, their files in `dir` (created; kept on drop, as is the
    /// namespace). They begin with an empty configuration.
    pub fn start_in(netns: &str, hostname: &str, dir: &Path) -> Result<FrrLab> {
        FrrLab::start_in_with(netns, hostname, dir, &[])
    }

    /// Like [`FrrLab::start_in`], zebra loading `zebra_modules` (`-M`):
    /// `fpm` (the old module of SONiC 202311 and the Enterprise builds) or
    /// `dplane_fpm_nl` (Debian's FRR; SONiC ≥ 202411 loads its fork
    /// `dplane_fpm_sonic`, which takes the same commands) — see
    /// [`crate::flavours::zebra_modules`].
    pub fn start_in_with(
        netns: &str,
        hostname: &str,
        dir: &Path,
        zebra_modules: &[&str],
    ) -> Result<FrrLab> {
        FrrLab::start_in_install(
            netns,
            hostname,
            dir,
            FrrInstall::debian().with_zebra_modules(zebra_modules),
            "",
        )
    }

    /// Like [`FrrLab::start_in`] with the FRR of `install` (a SONiC
    /// release's, [`crate::sonic_real::Release::frr`]), the daemons
    /// starting with `boot_config` (as `frr.conf` before the agent's).
    pub fn start_in_install(
        netns: &str,
        hostname: &str,
        dir: &Path,
        install: FrrInstall,
        boot_config: &str,
    ) -> Result<FrrLab> {
        install.require()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lab = FrrLab {
            netns: netns.to_owned(),
            hostname: hostname.to_owned(),
            dir: LabDir::Kept(dir.to_owned()),
            children: Vec::new(),
            owns_netns: false,
            install,
            boot_config: boot_config.to_owned(),
        };
        lab.launch()
    }

    /// The FRR this lab runs.
    pub fn install(&self) -> &FrrInstall {
        &self.install
    }

    fn launch(self) -> Result<FrrLab> {
        let mut lab = self;
        lab.prepare()?;
        for daemon in lab.install.daemons.clone() {
            let child = lab.spawn(daemon)?;
            lab.children.push((daemon, child));
        }
        // A failure detector, not a bound: FRR 10 under the VM's emulated
        // CPU on a busy host takes more than 15 s to open its vty sockets.
        lab.wait_ready(Duration::from_secs(120))?;
        Ok(lab)
    }

    fn prepare(&self) -> Result<()> {
        run("ip", &["-n", &self.netns, "link", "set", "lo", "up"])?;
        let root = self.dir.path();
        std::fs::create_dir_all(self.config_dir())?;
        std::fs::create_dir_all(self.vty_socket_dir())?;
        std::fs::write(
            self.config_dir().join("vtysh.conf"),
            "service integrated-vtysh-config\n",
        )?;
        std::fs::write(self.config_dir().join("boot.conf"), &self.boot_config)?;
        // The daemons run as frr: they need to reach and write run/.
        run("chmod", &["0755", &root.display().to_string()])?;
        run(
            "chown",
            &[
                "-R",
                "frr:frr",
                &self.vty_socket_dir().display().to_string(),
                &self.config_dir().join("boot.conf").display().to_string(),
            ],
        )?;
        Ok(())
    }

    fn spawn(&self, daemon: &str) -> Result<Child> {
        let run_dir = self.vty_socket_dir();
        let run_dir = run_dir.display().to_string();
        let zserv = format!("{run_dir}/zserv.api");
        let pid = format!("{run_dir}/{daemon}.pid");
        let log = format!("file:{run_dir}/{daemon}.log");
        let boot = self.config_dir().join("boot.conf").display().to_string();
        let binary = self.install.sbin.join(daemon).display().to_string();
        let log_file = std::fs::File::create(self.dir.path().join(format!("{daemon}.out")))?;
        let log_err = log_file.try_clone()?;
        Command::new("ip")
            .args(["netns", "exec", &self.netns, "unshare", "--uts", "--"])
            .args(["sh", "-c", "hostname \"$1\" && shift && exec \"$@\"", "sh"])
            .arg(&self.hostname)
            .arg(&binary)
            .args(["-u", "frr", "-g", "frr", "--vty_socket", &run_dir])
            .args(["-z", &zserv, "-i", &pid, "-P", "0", "--log", &log])
            .args(if self.install.no_config_file.contains(&daemon) {
                Vec::new()
            } else {
                vec!["-f", boot.as_str()]
            })
            .args(if daemon == "zebra" {
                self.install.zebra_args.as_slice()
            } else {
                &[]
            })
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("starting {binary} in netns {}", self.netns))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let mut missing = Vec::new();
            let mut exited = None;
            for (daemon, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    exited = Some((*daemon, status));
                    break;
                }
                if !self.dir.path().join(format!("run/{daemon}.vty")).exists() {
                    missing.push(*daemon);
                }
            }
            if let Some((daemon, status)) = exited {
                bail!(
                    "{daemon} in netns {} exited ({status}):\n{}",
                    self.netns,
                    self.daemon_output(daemon)
                );
            }
            if missing.is_empty() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not open a vty socket within {timeout:?} in {}",
                    missing.join(", "),
                    self.vty_socket_dir().display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn daemon_output(&self, daemon: &str) -> String {
        let out = std::fs::read_to_string(self.dir.path().join(format!("{daemon}.out")))
            .unwrap_or_default();
        let log = std::fs::read_to_string(self.dir.path().join(format!("run/{daemon}.log")))
            .unwrap_or_default();
        format!("{out}{log}")
    }

    /// The network namespace's name.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The host name the daemons run with.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// FRR's configuration directory (`vtysh.conf`; install `frr.conf` here).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Where the agent installs the configuration in tests.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("frr.conf")
    }

    /// The daemons' vty sockets (`vtysh --vty_socket`).
    pub fn vty_socket_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A directory for the test's own files, removed with the lab.
    pub fn scratch_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// PID of zebra (whose UTS namespace carries the host name).
    fn zebra_pid(&self) -> Result<u32> {
        self.children
            .iter()
            .find(|(d, _)| *d == "zebra")
            .map(|(_, c)| c.id())
            .context("zebra is not running")
    }

    /// Arguments for the agent's `frr_reload = "exec"` with
    /// `frr_reload_path = FRR_RELOAD` against this lab.
    pub fn frr_reload_args(&self) -> Vec<String> {
        let etc = self.config_dir().display().to_string();
        let run = self.vty_socket_dir().display().to_string();
        let mut args: Vec<String> = [
            "--reload",
            "--stdout",
            "--confdir",
            &etc,
            "--vty_socket",
            &run,
            "--rundir",
            &run,
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.bindir_args());
        args.push("{file}".into());
        args
    }

    /// frr-reload.py's `--bindir` (where its vtysh is) for a non-Debian FRR.
    fn bindir_args(&self) -> Vec<String> {
        match self.install.vtysh.parent() {
            Some(bin) if !self.install.is_debian() => {
                vec!["--bindir".to_owned(), bin.display().to_string()]
            }
            _ => Vec::new(),
        }
    }

    /// Run vtysh with `-c` commands against this lab's daemons.
    pub fn vtysh(&self, commands: &[&str]) -> Result<String> {
        let mut cmd = self.in_uts(&self.install.vtysh)?;
        cmd.arg("--vty_socket")
            .arg(self.vty_socket_dir())
            .arg("--config_dir")
            .arg(self.config_dir());
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            bail!(
                "vtysh {commands:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `show running-config`.
    pub fn running_config(&self) -> Result<String> {
        self.vtysh(&["show running-config"])
    }

    /// `frr-reload.py --test FILE`: what a reload of `file` would change.
    pub fn reload_test(&self, file: &Path) -> Result<ReloadTest> {
        let mut cmd = self.in_uts("python3")?;
        let out = cmd
            .arg(&self.install.reload)
            .args(["--test", "--stdout", "--confdir"])
            .arg(self.config_dir())
            .arg("--vty_socket")
            .arg(self.vty_socket_dir())
            .arg("--rundir")
            .arg(self.vty_socket_dir())
            .args(self.bindir_args())
            .arg(file)
            .stdin(Stdio::null())
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("frr-reload.py --test {} failed: {text}", file.display());
        }
        Ok(ReloadTest::parse(&text))
    }

    /// A command that runs in the daemons' UTS namespace (their host name).
    fn in_uts(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--uts=/proc/{}/ns/uts", self.zebra_pid()?))
            .arg("--")
            .arg(program);
        Ok(cmd)
    }

    /// Join `self` and `other` with a veth pair: `name` here, `peer_name`
    /// there, both up.
    pub fn link(&self, name: &str, other: &FrrLab, peer_name: &str) -> Result<()> {
        run(
            "ip",
            &[
                "-n",
                &self.netns,
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                peer_name,
                "netns",
                &other.netns,
            ],
        )?;
        run("ip", &["-n", &self.netns, "link", "set", name, "up"])?;
        run("ip", &["-n", &other.netns, "link", "set", peer_name, "up"])?;
        Ok(())
    }

    /// Load an integrated configuration the way FRR's start script does:
    /// write it to `frr.conf` in [`FrrLab::config_dir`] and run `vtysh -b`.
    pub fn boot(&self, config: &str) -> Result<()> {
        let file = self.config_file();
        std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
        let mut cmd = self.in_uts(&self.install.vtysh)?;
        let out = cmd
            .arg("--vty_socket")
            .arg(self.vty_socket_dir())
            .arg("--config_dir")
            .arg(self.config_dir())
            .arg("-b")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "vtysh -b of {} in {} failed ({}): {}{}",
                file.display(),
                self.netns,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Process ids of the daemons (as started: `ip netns exec` execs into them).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.children.iter().map(|(d, c)| (*d, c.id())).collect()
    }

    /// Log files of the daemons (for failure messages).
    pub fn logs(&self) -> String {
        self.install
            .daemons
            .iter()
            .map(|d| format!("--- {d}\n{}", self.daemon_output(d)))
            .collect()
    }
}

impl Drop for FrrLab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_netns {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_test_output() {
        let out = "2024-01-01 10:00:00,123  INFO: Called via\n\nLines To Delete\n===============\nno hostname vm\n\nLines To Add\n============\nhostname leaf01\ninterface x\n ipv6 nd ra-interval 6\n";
        let t = ReloadTest::parse(out);
        assert_eq!(t.to_delete, ["no hostname vm"]);
        assert_eq!(
            t.to_add,
            ["hostname leaf01", "interface x", " ipv6 nd ra-interval 6"]
        );
        assert!(ReloadTest::parse("2024-01-01 10:00:00,123  INFO: x\n").is_empty());
    }
}
