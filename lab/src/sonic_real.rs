//! Real SONiC on a lab leaf: SONiC's own daemons of one community release,
//! built from the vendored sources by `lab/sonic/build.sh` (`./dev sonic
//! build RELEASE`), next to the stand-in ([`crate::sonic`]).
//!
//! Per leaf, in the leaf's network namespace and a mount namespace of its
//! own (SONiC's daemons read `/var/run/redis/sonic-db/database_config.json`,
//! 202311's orchagent also opens `/var/run/redis/redis.sock`, and they talk
//! over `ipc:///tmp/saiServer`: fixed paths): `syncd` on the
//! virtual SAI (`libsaivs`, switch type BCM56850, host interfaces as TAP
//! devices, a lane map of the leaf's ports), then `orchagent`, `portsyncd`,
//! `neighsyncd` for the kernel's neighbours, the config managers
//! `vlanmgrd`, `intfmgrd`, `portmgrd`, `vrfmgrd`, `vxlanmgrd`, plus
//! `fpmsyncd` for zebra's routes — SONiC's swss order, each started when
//! SONiC's readiness marker of the step before is there (syncd listening on
//! `ASIC_STATE`, `PortInitDone`, every port's STATE_DB `PORT_TABLE` entry).
//! Every daemon logs to its own file (`<daemon>.log`, via CONFIG_DB
//! `LOGGER|<daemon>` `LOGOUTPUT=STDERR`).
//!
//! The cabled veths of the leaf (`Ethernet0`, …) become the virtual
//! switch's front-panel netdevs `eth1`, `eth2`, …: syncd creates the TAP
//! devices `Ethernet0`, … for orchagent's host interfaces and moves every
//! packet between each TAP and its `ethN`, so BGP runs over SONiC's own
//! data path as on a virtual SONiC switch. The leaf's FRR is the release's
//! FRR ([`Release::frr`]).
//!
//! Only on a full kernel (the VM): the managers create `vrf`, VLAN and
//! VLAN-filtering bridge devices and exit when they cannot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::frr_lab::FrrInstall;
use crate::redis_server::RedisServer;

/// A SONiC community release the lab can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Release {
    R202311,
    R202411,
    R202505,
}

impl Release {
    pub const ALL: [Release; 3] = [Release::R202311, Release::R202411, Release::R202505];

    pub fn as_str(self) -> &'static str {
        match self {
            Release::R202311 => "202311",
            Release::R202411 => "202411",
            Release::R202505 => "202505",
        }
    }

    pub fn parse(s: &str) -> Result<Release> {
        Release::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .with_context(|| format!("unknown SONiC release {s:?} (known: 202311, 202411, 202505)"))
    }

    /// The agent's flavour profile of the release (community SONiC).
    pub fn profile(self) -> crate::flavours::Profile {
        use crate::flavours::Profile;
        match self {
            Release::R202311 => Profile::Community202311,
            Release::R202411 => Profile::Community202411,
            Release::R202505 => Profile::Community202505,
        }
    }

    /// The FRR version the release's image ships.
    pub fn frr_version(self) -> &'static str {
        self.profile().frr_version().unwrap_or("unknown")
    }

    /// The Debian release of the release's image.
    pub fn debian(self) -> &'static str {
        match self {
            Release::R202311 => "11 (bullseye)",
            _ => "12 (bookworm)",
        }
    }

    /// The release's FRR as built into `build` (SONiC's bgp container
    /// order: mgmtd from FRR 10 on, zebra with its FPM module, staticd,
    /// bgpd). 202311 loads `fpm` (zebra_fpm); 202411/202505 load SONiC's
    /// `dplane_fpm_sonic`, a fork of FRR's `dplane_fpm_nl`, which is what
    /// the upstream sources have.
    pub fn frr(self, build: &Path) -> FrrInstall {
        let frr = build.join("frr");
        let (daemons, fpm): (&[&'static str], &str) = match self {
            Release::R202311 => (&["zebra", "staticd", "bgpd"], "fpm"),
            _ => (&["mgmtd", "zebra", "staticd", "bgpd"], "dplane_fpm_nl"),
        };
        FrrInstall {
            sbin: frr.join("sbin"),
            vtysh: frr.join("bin/vtysh"),
            reload: frr.join("sbin/frr-reload.py"),
            daemons: daemons.to_vec(),
            zebra_args: vec!["-s".into(), "90000000".into(), "-M".into(), fpm.into()],
            no_config_file: match self {
                Release::R202311 => Vec::new(),
                _ => vec!["mgmtd", "staticd"],
            },
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What runs as a leaf's SONiC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SonicChoice {
    /// The stand-in ([`crate::sonic`]).
    #[default]
    StandIn,
    /// SONiC's own daemons of a release (in the full-kernel VM).
    Real(Release),
}

impl SonicChoice {
    /// `stand-in`, `202311`, `202411` or `202505`.
    pub fn parse(s: &str) -> Result<SonicChoice> {
        if s == "stand-in" {
            return Ok(SonicChoice::StandIn);
        }
        Release::parse(s).map(SonicChoice::Real)
    }

    /// As `--sonic` takes it ([`SonicChoice::parse`]).
    pub fn arg(self) -> String {
        match self {
            SonicChoice::StandIn => "stand-in".to_owned(),
            SonicChoice::Real(r) => r.to_string(),
        }
    }

    pub fn release(self) -> Option<Release> {
        match self {
            SonicChoice::StandIn => None,
            SonicChoice::Real(r) => Some(r),
        }
    }
}

impl std::fmt::Display for SonicChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SonicChoice::StandIn => f.write_str("stand-in"),
            SonicChoice::Real(r) => write!(f, "SONiC {r}"),
        }
    }
}

/// The build script (`lab/sonic/build.sh`).
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sonic/build.sh")
}

/// The environment variable that names a release's build directory
/// (`./dev` sets it after building; the VM's tests read it).
pub fn build_env(release: Release) -> String {
    format!("DEV_SONIC_{release}")
}

/// The directory of a finished build of `release`: `$DEV_SONIC_<R>`
/// when set, else what `build.sh --check` names (the cache entry of the
/// current sources). Fails with how to build it.
pub fn build_dir(release: Release) -> Result<PathBuf> {
    let dir = match std::env::var_os(build_env(release)) {
        Some(d) => PathBuf::from(d),
        None => {
            let out = Command::new("bash")
                .arg(build_script())
                .arg("--check")
                .arg(release.as_str())
                .stdin(Stdio::null())
                .output()
                .context("cannot run lab/sonic/build.sh")?;
            if !out.status.success() {
                bail!(
                    "SONiC {release} is not built for the current sources: run `./dev sonic build {release}` ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    if !dir.join("BUILD-INFO").is_file() {
        bail!(
            "{} holds no finished SONiC {release} build (no BUILD-INFO): run `./dev sonic build {release}`",
            dir.display()
        );
    }
    Ok(dir)
}

/// `key=value` lines of a build's `BUILD-INFO`.
pub fn build_info(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("BUILD-INFO"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A leaf's base `config_db.json` with what SONiC's first boot adds and
/// the lab's base configurations lack: the flex counter groups orchagent
/// needs for the maps the agent reads (`init_cfg.json.j2` in
/// sonic-buildimage enables them; orchagent writes COUNTERS_RIF_NAME_MAP
/// only for an enabled RIF group). The other groups of `init_cfg.json`
/// (queues, watermarks, ...) are left out: nothing the agent reads depends
/// on them, and their polling costs the emulated CPU.
pub fn first_boot_config(config_db_json: &str) -> Result<String> {
    let mut v: serde_json::Value =
        serde_json::from_str(config_db_json).context("config_db.json is not JSON")?;
    if let Some(root) = v.as_object_mut() {
        let flex = root
            .entry("FLEX_COUNTER_TABLE")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(flex) = flex.as_object_mut() {
            for group in ["PORT", "RIF"] {
                flex.entry(group)
                    .or_insert_with(|| serde_json::json!({"FLEX_COUNTER_STATUS": "enable"}));
            }
        }
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

/// The leaf's system MAC: locally administered, `02:00:` and the
/// loopback's octets.
pub fn system_mac(loopback: std::net::Ipv4Addr) -> String {
    let [a, b, c, d] = loopback.octets();
    format!("02:00:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The daemons in SONiC's start order, each with its arguments.
pub const DAEMONS: [&str; 10] = [
    "syncd",
    "orchagent",
    "portsyncd",
    // The kernel's neighbours (FRR's 169.254.0.1 of BGP unnumbered among
    // them) into APPL_DB: without it orchagent never resolves a next hop.
    "neighsyncd",
    "vlanmgrd",
    "intfmgrd",
    "portmgrd",
    "vrfmgrd",
    "vxlanmgrd",
    "fpmsyncd",
];

/// One front-panel port of the virtual switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsPort {
    /// SONiC's port name (`Ethernet0`): the TAP device syncd creates.
    pub name: String,
    /// The lanes of its PORT entry (`121,122,123,124`).
    pub lanes: String,
}

/// The vs lane map: front-panel netdev `ethN` (N from 1) → lanes.
pub fn lanemap(ports: &[VsPort]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("eth{}:{}\n", i + 1, p.lanes))
        .collect()
}

/// libsaivs' switch profile.
pub fn sai_profile(lanemap_file: &Path) -> String {
    format!(
        "SAI_VS_SWITCH_TYPE=SAI_VS_SWITCH_TYPE_BCM56850\n\
         SAI_VS_HOSTIF_USE_TAP_DEVICE=true\n\
         SAI_VS_INTERFACE_LANE_MAP_FILE={}\n",
        lanemap_file.display()
    )
}

/// The release's `database_config.json` with every database on the leaf's
/// one redis instance (its unix socket).
pub fn database_config(template: &str, socket: &Path) -> Result<String> {
    let mut v: serde_json::Value =
        serde_json::from_str(template).context("the release's database_config.json")?;
    v["INSTANCES"] = serde_json::json!({
        "redis": {
            "hostname": "127.0.0.1",
            "port": 6379,
            "unix_socket_path": socket.display().to_string(),
            "persistence_for_warm_boot": "yes",
        }
    });
    if let Some(dbs) = v["DATABASES"].as_object_mut() {
        for db in dbs.values_mut() {
            db["instance"] = serde_json::json!("redis");
        }
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The supervisor script of one leaf's SONiC (bash; runs as `ip netns exec
/// NS unshare -m --propagation private bash run.sh`).
pub fn supervisor_script(
    build: &Path,
    dir: &Path,
    socket: &Path,
    mac: &str,
    ports: &[VsPort],
) -> String {
    let q = |p: &Path| sh_quote(&p.display().to_string());
    let mut s = format!(
        "#!/bin/bash\n\
         # SONiC's daemons of one lab leaf, in SONiC's order (written by metal-switchd-lab).\n\
         set -u\n\
         B={b}; D={d}; R={r}; MAC={mac}\n\
         export LD_LIBRARY_PATH=\"$B/lib\"\n\
         say() {{ echo \"$(cut -d' ' -f1 /proc/uptime) $*\" >> \"$D/events\"; }}\n\
         fail() {{ say \"FAILED: $*\"; echo \"$*\" > \"$D/failed\"; kill $(cut -d' ' -f2 \"$D/pids\" 2>/dev/null) 2>/dev/null; exit 1; }}\n\
         db() {{ redis-cli -s \"$R\" -n \"$@\"; }}\n\
         # the fixed paths SONiC's daemons use, private to this leaf\n\
         # (/var/run/redis/redis.sock too: 202311's SwitchOrch opens STATE_DB there)\n\
         mkdir -p /var/run/redis \"$D/run-redis/sonic-db\" \"$D/tmp\" \"$D/swsslog\" || fail mkdir\n\
         cp \"$D/database_config.json\" \"$D/run-redis/sonic-db/database_config.json\" || fail copy\n\
         ln -sfn \"$R\" \"$D/run-redis/redis.sock\" || fail 'link redis.sock'\n\
         mount --bind \"$D/run-redis\" /var/run/redis || fail 'bind-mount /var/run/redis'\n\
         mount --bind \"$D/tmp\" /tmp || fail 'bind-mount /tmp'\n\
         : > \"$D/pids\"\n\
         # the cabled ports become the virtual switch's front-panel netdevs\n",
        b = q(build),
        d = q(dir),
        r = q(socket),
        mac = sh_quote(mac),
    );
    // As SONiC's virtual-switch tests set up their ports
    // (sonic-swss tests/conftest.py): the kernel itself neither answers
    // ARP nor runs IPv6 on `ethN` (the TAP device `EthernetN` is the
    // port's netdev); syncd brings `ethN` up with the port's admin state.
    for (i, p) in ports.iter().enumerate() {
        let eth = format!("eth{}", i + 1);
        s.push_str(&format!(
            "ip link set {n} down && ip link set {n} name {eth} \
             && sysctl -qw net.ipv6.conf.{eth}.disable_ipv6=1 \
             && ip link set {eth} arp off up || fail 'rename {n} to {eth}'\n",
            n = sh_quote(&p.name),
        ));
    }
    s.push_str(&format!(
        "for d in {daemons}; do db 4 hset \"LOGGER|$d\" LOGLEVEL NOTICE LOGOUTPUT STDERR >/dev/null || fail \"LOGGER|$d\"; done\n\
         start() {{ local n=$1; shift; say \"start $n\"; \"$@\" > \"$D/$n.log\" 2>&1 & echo \"$n $!\" >> \"$D/pids\"; }}\n\
         # wait_for WHAT SECONDS COMMAND...: poll SONiC's readiness marker\n\
         wait_for() {{ local what=$1 n=$(( $2 * 10 )); shift 2\n\
           while ! \"$@\" >/dev/null 2>&1; do\n\
             n=$((n-1)); [ $n -gt 0 ] || fail \"no $what\"\n\
             while read -r name pid; do kill -0 \"$pid\" 2>/dev/null || fail \"$name exited while waiting for $what\"; done < \"$D/pids\"\n\
             sleep 0.1; done; say \"$what\"; }}\n\
         has() {{ test \"$(db \"$@\")\" != \"\"; }}\n\
         trap 'say stop; kill $(cut -d\" \" -f2 \"$D/pids\") 2>/dev/null; wait; exit 0' TERM INT\n\
         start syncd \"$B/bin/syncd\" -u -z redis_sync -p \"$D/sai.profile\"\n\
         wait_for 'syncd subscribed (ASIC_STATE)' 600 has 1 pubsub channels '*'\n\
         start orchagent env platform=vs \"$B/bin/orchagent\" -d \"$D/swsslog\" -b 8192 -z redis_sync -m \"$MAC\"\n\
         start portsyncd \"$B/bin/portsyncd\"\n\
         wait_for PortInitDone 900 has 0 exists PORT_TABLE:PortInitDone\n",
        daemons = DAEMONS.join(" "),
    ));
    // `exists` prints 0 when absent: test the value instead.
    s = s.replace(
        "has 0 exists PORT_TABLE:PortInitDone",
        "test_one 0 exists PORT_TABLE:PortInitDone",
    );
    s = s.replace(
        "has() {",
        "test_one() { test \"$(db \"$@\")\" = 1; }\nhas() {",
    );
    for p in ports {
        s.push_str(&format!(
            "wait_for 'STATE_DB PORT_TABLE|{n}' 600 has 6 hget {k} state\n",
            n = p.name,
            k = sh_quote(&format!("PORT_TABLE|{}", p.name)),
        ));
    }
    for d in &DAEMONS[3..] {
        s.push_str(&format!("start {d} \"$B/bin/{d}\"\n"));
    }
    s.push_str(
        "say ready\n\
         touch \"$D/ready\"\n\
         while :; do\n\
           while read -r name pid; do kill -0 \"$pid\" 2>/dev/null || fail \"$name exited\"; done < \"$D/pids\"\n\
           sleep 1 & wait $!\n\
         done\n",
    );
    s
}

/// Turn off transmit checksum offload on `port` in `netns`, the far end of
/// a cable to a real leaf's port. A veth hands its peer packets whose
/// checksum is still to be filled in; syncd copies them from `ethN` into
/// the port's TAP device as they are, where the kernel drops them for
/// their bad checksum (TCP, so BGP, never connects). SONiC's own
/// virtual-switch tests do the same for their servers (sonic-swss
/// tests/conftest.py: `ethtool -K eth0 tx off`).
pub fn checksum_offload_off(netns: &str, port: &str) -> Result<()> {
    crate::frr_lab::run(
        "ip",
        &["netns", "exec", netns, "ethtool", "-K", port, "tx", "off"],
    )
    .with_context(|| {
        format!("turning off checksum offload on {port} in {netns} (apt-get install -y ethtool)")
    })?;
    Ok(())
}

/// One leaf's running SONiC.
pub struct RealSonic {
    pub release: Release,
    pub build: PathBuf,
    /// `<leaf dir>/sonic`: the script, the daemons' logs, `events`, `pids`.
    pub dir: PathBuf,
    child: Option<Child>,
    /// From start to `ready`.
    pub startup: Duration,
}

/// The leaf a [`RealSonic`] runs.
pub struct SonicLeaf<'a> {
    /// Its network namespace.
    pub netns: &'a str,
    /// Its directory (SONiC's files go into `sonic/` there).
    pub dir: &'a Path,
    /// Its redis: CONFIG_DB already seeded, `PortInitDone` not (portsyncd
    /// writes it).
    pub redis: &'a RedisServer,
    /// Its loopback address (the system MAC is derived from it).
    pub loopback: std::net::Ipv4Addr,
    /// Its front-panel ports: cabled veths of those names in `netns`.
    pub ports: &'a [VsPort],
}

impl RealSonic {
    /// Start SONiC's daemons of `release` (built into `build`) for `leaf`;
    /// return when every daemon runs.
    pub fn start(
        release: Release,
        build: &Path,
        leaf: &SonicLeaf<'_>,
        timeout: Duration,
    ) -> Result<RealSonic> {
        let SonicLeaf {
            netns,
            dir: leaf_dir,
            redis,
            loopback,
            ports,
        } = *leaf;
        let dir = leaf_dir.join("sonic");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let template = std::fs::read_to_string(build.join("database_config.json"))
            .with_context(|| format!("{}/database_config.json", build.display()))?;
        std::fs::write(
            dir.join("database_config.json"),
            database_config(&template, redis.socket())?,
        )?;
        let lanes = dir.join("lanemap.ini");
        std::fs::write(&lanes, lanemap(ports))?;
        std::fs::write(dir.join("sai.profile"), sai_profile(&lanes))?;
        // SONiC's first boot writes the system MAC (from the platform's
        // EEPROM) into DEVICE_METADATA; orchagent, vlanmgrd and fpmsyncd
        // read it. The lab's base configurations (Dell's) have none.
        let mac = system_mac(loopback);
        {
            let mut c = redis.connection(crate::redis_server::CONFIG_DB)?;
            redis::cmd("HSET")
                .arg("DEVICE_METADATA|localhost")
                .arg("mac")
                .arg(&mac)
                .query::<()>(&mut c)?;
        }
        let script = dir.join("run.sh");
        std::fs::write(
            &script,
            supervisor_script(build, &dir, redis.socket(), &mac, ports),
        )?;
        let out = std::fs::File::create(dir.join("supervisor.log"))?;
        let err = out.try_clone()?;
        let started = Instant::now();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                netns,
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .arg("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting SONiC's supervisor")?;
        let mut sonic = RealSonic {
            release,
            build: build.to_owned(),
            dir,
            child: Some(child),
            startup: Duration::ZERO,
        };
        loop {
            if sonic.dir.join("ready").exists() {
                break;
            }
            if let Some(c) = &mut sonic.child
                && let Some(st) = c.try_wait()?
            {
                bail!(
                    "SONiC {release} in {netns} did not start ({st}): {}\n{}",
                    std::fs::read_to_string(sonic.dir.join("failed"))
                        .unwrap_or_default()
                        .trim(),
                    sonic.log_tails(15)
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "SONiC {release} in {netns} not ready within {timeout:?}; events:\n{}\n{}",
                    std::fs::read_to_string(sonic.dir.join("events")).unwrap_or_default(),
                    sonic.log_tails(15)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        sonic.startup = started.elapsed();
        Ok(sonic)
    }

    /// Fail unless every daemon still runs.
    pub fn check(&mut self) -> Result<()> {
        if let Some(c) = &mut self.child
            && let Some(st) = c.try_wait()?
        {
            bail!(
                "SONiC {} stopped ({st}): {}\n{}",
                self.release,
                std::fs::read_to_string(self.dir.join("failed"))
                    .unwrap_or_default()
                    .trim(),
                self.log_tails(20)
            );
        }
        Ok(())
    }

    /// A daemon's log.
    pub fn log(&self, daemon: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{daemon}.log"))).unwrap_or_default()
    }

    /// The last `n` lines of every daemon's log.
    pub fn log_tails(&self, n: usize) -> String {
        DAEMONS
            .iter()
            .map(|d| format!("--- {d}.log\n{}", crate::minilab::tail(&self.log(d), n)))
            .collect()
    }

    /// Every error and warning line of the daemons' logs, as `daemon: line`.
    pub fn findings(&self) -> Vec<String> {
        DAEMONS
            .iter()
            .flat_map(|d| {
                self.log(d)
                    .lines()
                    .filter(|l| is_finding(l))
                    .map(|l| format!("{d}: {}", l.trim()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What to look at when something on this leaf did not happen: the
    /// supervisor's events, every error and warning line of the daemons,
    /// the last of what orchagent consumed (SONiC's recorder, `swss.rec`),
    /// the kernel's links and addresses in `netns`, APPL_DB (up to 400
    /// keys) and the ports' entries in STATE_DB.
    pub fn diagnostics(&self, netns: &str, redis: &RedisServer) -> String {
        let cmd = |program: &str, args: &[&str]| {
            crate::frr_lab::run(program, args)
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("{e:#}"))
        };
        let sock = redis.socket().display().to_string();
        let mut s = format!(
            "SONiC {} events:\n{}\nerror and warning lines:\n{}\n",
            self.release,
            std::fs::read_to_string(self.dir.join("events")).unwrap_or_default(),
            self.findings().join("\n")
        );
        s.push_str(&format!(
            "orchagent's recorder (swss.rec), last lines:\n{}\n",
            crate::minilab::tail(
                &std::fs::read_to_string(self.dir.join("swsslog/swss.rec")).unwrap_or_default(),
                60
            )
        ));
        s.push_str(&format!(
            "ip -d link:\n{}\nip addr:\n{}",
            cmd("ip", &["-n", netns, "-d", "-br", "link"]),
            cmd("ip", &["-n", netns, "addr"])
        ));
        // APPL_DB whole (what orchagent has still to do or holds; the lab's
        // is small), STATE_DB's ports.
        for (db, pattern) in [("0", "*"), ("6", "PORT_TABLE|*")] {
            let keys = cmd(
                "redis-cli",
                &["-s", &sock, "-n", db, "--scan", "--pattern", pattern],
            );
            let mut keys: Vec<&str> = keys.lines().collect();
            keys.sort_unstable();
            for k in keys.into_iter().take(400) {
                s.push_str(&format!(
                    "db {db} {k}: {}\n",
                    cmd("redis-cli", &["-s", &sock, "-n", db, "hgetall", k])
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        }
        s
    }

    /// Stop the daemons (SIGTERM to the supervisor, which stops each).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::minilab::process::signal(c.id() as i32, libc::SIGTERM);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RealSonic {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One real SONiC leaf on its own, without the lab around it: mini-lab
/// leaf01's community base configuration of the release with `ports`
/// (veths whose peers stay in the same network namespace, up: the ports'
/// links are up), plus `extra` CONFIG_DB entries, in a fresh network
/// namespace, with SONiC's daemons running. For the baseline (SONiC
/// without the agent) and the soak on real SONiC (`tests/soak_sonic.rs`).
/// Dropping it stops SONiC and removes the namespace.
pub struct SoloLeaf {
    pub netns: String,
    pub sonic: RealSonic,
    pub redis: RedisServer,
    _dir: tempfile::TempDir,
}

impl SoloLeaf {
    /// Seed and start it; return when every daemon runs and every port's
    /// STATE_DB entry is there.
    pub fn start(
        release: Release,
        ports: &[VsPort],
        extra: &[crate::seed::Entry],
    ) -> Result<SoloLeaf> {
        let build = build_dir(release)?;
        let ns = crate::frr_lab::unique_name("sonb");
        crate::frr_lab::run("ip", &["netns", "add", &ns])?;
        match Self::start_in(release, &build, &ns, ports, extra) {
            Ok((sonic, redis, dir)) => Ok(SoloLeaf {
                netns: ns,
                sonic,
                redis,
                _dir: dir,
            }),
            Err(e) => {
                let _ = crate::minilab::process::sweep_netns(&ns, Duration::from_secs(3));
                Err(e)
            }
        }
    }

    fn start_in(
        release: Release,
        build: &Path,
        ns: &str,
        ports: &[VsPort],
        extra: &[crate::seed::Entry],
    ) -> Result<(RealSonic, RedisServer, tempfile::TempDir)> {
        crate::frr_lab::run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        for p in ports {
            // A veth pair as in the lab (its peer up: the port's link is up).
            let peer = format!("{}p", p.name);
            crate::frr_lab::run(
                "ip",
                &[
                    "-n", ns, "link", "add", &p.name, "type", "veth", "peer", "name", &peer,
                ],
            )?;
            crate::frr_lab::run("ip", &["-n", ns, "link", "set", &p.name, "up"])?;
            crate::frr_lab::run("ip", &["-n", ns, "link", "set", &peer, "up"])?;
            checksum_offload_off(ns, &peer)?;
        }
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-sonic-")
            .tempdir_in("/run")?;
        let redis = RedisServer::start_in(dir.path(), Some(ns))?;
        let port_map: String = crate::fixtures::MINI_LAB_PORT_MAP
            .lines()
            .filter(|l| {
                l.starts_with('#')
                    || l.split_whitespace()
                        .next()
                        .is_some_and(|n| ports.iter().any(|p| p.name == n))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        crate::seed::seed_switch(
            &redis,
            &first_boot_config(&crate::flavours::base_config(release.profile(), "leaf01")?)?,
            Some(&port_map),
            &crate::seed::SeedOptions {
                port_init_done: false,
                asic: false,
                ..crate::seed::SeedOptions::default()
            },
        )?;
        crate::seed::write_entries(&redis, crate::redis_server::CONFIG_DB, extra)?;
        let sonic = RealSonic::start(
            release,
            build,
            &SonicLeaf {
                netns: ns,
                dir: dir.path(),
                redis: &redis,
                loopback: crate::minilab::topology::LEAVES[0].loopback,
                ports,
            },
            Duration::from_secs(1200),
        )?;
        Ok((sonic, redis, dir))
    }

    /// The network namespace's path (for a kernel view inside it).
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }
}

impl Drop for SoloLeaf {
    fn drop(&mut self) {
        self.sonic.stop();
        let _ = crate::minilab::process::sweep_netns(&self.netns, Duration::from_secs(3));
    }
}

/// The front-panel ports named `names` with their lanes in the mini-lab
/// port map.
pub fn mini_lab_ports(names: &[&str]) -> Result<Vec<VsPort>> {
    ports_with_lanes(crate::fixtures::MINI_LAB_PORT_MAP, names)
}

/// The ports of `port_map` (a `port_config.ini`) named in `names`, in the
/// map's order, with their lanes; every name must be in the map.
pub fn ports_with_lanes(port_map: &str, names: &[&str]) -> Result<Vec<VsPort>> {
    let mut out = Vec::new();
    for (key, fields) in crate::seed::port_entries(port_map)? {
        let name = key.strip_prefix("PORT|").unwrap_or(&key);
        if !names.contains(&name) {
            continue;
        }
        let lanes = fields
            .iter()
            .find(|(f, _)| f == "lanes")
            .map(|(_, v)| v.clone())
            .with_context(|| format!("{key} has no lanes"))?;
        out.push(VsPort {
            name: name.to_owned(),
            lanes,
        });
    }
    if let Some(missing) = names.iter().find(|n| !out.iter().any(|p| p.name == **n)) {
        bail!("{missing} is not in the port map");
    }
    Ok(out)
}

/// SONiC alone on mini-lab leaf01's seeded configuration (no agent), with
/// `ports` ([`SoloLeaf`]): started, left running for `linger`, stopped.
/// Returns the start-up time and the error and warning lines the daemons
/// logged — the baseline that appears without the agent.
pub fn baseline(
    release: Release,
    ports: &[VsPort],
    linger: Duration,
) -> Result<(Duration, Vec<String>)> {
    let mut leaf = SoloLeaf::start(release, ports, &[])?;
    std::thread::sleep(linger);
    leaf.sonic.check()?;
    let findings = leaf.sonic.findings();
    leaf.sonic.stop();
    Ok((leaf.sonic.startup, findings))
}

/// A log line at SONiC's ERROR or WARN level or above: swss' logger writes
/// the level right-aligned first when logging to stderr (` ERROR:- doTask:
/// ...`, `  WARN:- ...`).
pub fn is_finding(line: &str) -> bool {
    let l = line.trim_start();
    ["EMERG", "ALERT", "CRIT", "ERROR", "WARN"].iter().any(|p| {
        l.strip_prefix(p)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_and_name_their_frr() {
        assert_eq!(
            SonicChoice::parse("stand-in").unwrap(),
            SonicChoice::StandIn
        );
        assert_eq!(
            SonicChoice::parse("202411").unwrap(),
            SonicChoice::Real(Release::R202411)
        );
        assert!(SonicChoice::parse("202211").is_err());
        for c in [SonicChoice::StandIn, SonicChoice::Real(Release::R202505)] {
            assert_eq!(SonicChoice::parse(&c.arg()).unwrap(), c);
        }
        assert_eq!(Release::R202311.frr_version(), "8.5.1");
        let f = Release::R202505.frr(Path::new("/c"));
        assert_eq!(f.daemons, ["mgmtd", "zebra", "staticd", "bgpd"]);
        assert!(f.zebra_args.contains(&"dplane_fpm_nl".to_owned()));
    }

    #[test]
    fn lanemap_numbers_front_panel_netdevs_from_one() {
        let p = |n: &str, l: &str| VsPort {
            name: n.into(),
            lanes: l.into(),
        };
        assert_eq!(
            lanemap(&[p("Ethernet0", "1"), p("Ethernet120", "121,122,123,124")]),
            "eth1:1\neth2:121,122,123,124\n"
        );
    }

    #[test]
    fn database_config_puts_every_database_on_the_leaf_socket() {
        let t = r#"{"INSTANCES":{"redis":{"hostname":"127.0.0.1","port":6379,"unix_socket_path":"/var/run/redis/redis.sock"},
            "redis_chassis":{"hostname":"redis_chassis.server","port":6380}},
            "DATABASES":{"APPL_DB":{"id":0,"separator":":","instance":"redis"},
            "CHASSIS_APP_DB":{"id":12,"separator":"|","instance":"redis_chassis"}},"VERSION":"1.0"}"#;
        let v: serde_json::Value =
            serde_json::from_str(&database_config(t, Path::new("/x/redis.sock")).unwrap()).unwrap();
        assert_eq!(v["INSTANCES"].as_object().unwrap().len(), 1);
        assert_eq!(v["INSTANCES"]["redis"]["unix_socket_path"], "/x/redis.sock");
        assert_eq!(v["DATABASES"]["CHASSIS_APP_DB"]["instance"], "redis");
        assert_eq!(v["DATABASES"]["APPL_DB"]["id"], 0);
    }

    #[test]
    fn first_boot_config_enables_the_counter_maps_the_agent_reads() {
        let base = crate::flavours::base_config(Release::R202411.profile(), "leaf01").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&first_boot_config(&base).unwrap()).unwrap();
        for group in ["PORT", "RIF"] {
            assert_eq!(
                v["FLEX_COUNTER_TABLE"][group]["FLEX_COUNTER_STATUS"],
                "enable"
            );
        }
        // The community flavour's base configuration stays as it was.
        assert_eq!(
            v["VXLAN_TUNNEL"]["vtep0"],
            serde_json::json!({"src_ip": "10.0.0.11"})
        );
        assert_eq!(
            v["DEVICE_METADATA"]["localhost"]["docker_routing_config_mode"],
            "split-unified"
        );
        assert_eq!(v["VLAN"]["Vlan3900"]["vlanid"], "3900");
    }

    #[test]
    fn system_mac_is_locally_administered_from_the_loopback() {
        assert_eq!(
            system_mac(std::net::Ipv4Addr::new(10, 0, 0, 11)),
            "02:00:0a:00:00:0b"
        );
    }

    /// What the supervisor gives SONiC's daemons at their fixed paths, in
    /// the leaf's own mount namespace: the database configuration and
    /// 202311's default socket both lead to the leaf's redis.
    #[test]
    fn the_daemons_fixed_paths_lead_to_the_leaf() {
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-paths-")
            .tempdir_in("/run")
            .unwrap();
        let redis = RedisServer::start_in(dir.path(), None).unwrap();
        let t = r#"{"INSTANCES":{"redis":{"hostname":"127.0.0.1","port":6379,"unix_socket_path":"/var/run/redis/redis.sock"}},
            "DATABASES":{"STATE_DB":{"id":6,"separator":"|","instance":"redis"}},"VERSION":"1.0"}"#;
        let conf = database_config(t, redis.socket()).unwrap();
        std::fs::write(dir.path().join("database_config.json"), &conf).unwrap();
        let script = supervisor_script(
            Path::new("/nonexistent"),
            dir.path(),
            redis.socket(),
            "02:00:0a:00:00:0b",
            &[],
        );
        let preamble = &script[..script.find("# the cabled ports").unwrap()];
        let check = "redis-cli -s /var/run/redis/redis.sock -n 6 set marker leaf >/dev/null && \
                     cat /var/run/redis/sonic-db/database_config.json";
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash", "-c"])
            .arg(format!("{preamble}{check}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), conf);
        let mut c = redis.connection(6).unwrap();
        let v: String = redis::cmd("GET").arg("marker").query(&mut c).unwrap();
        assert_eq!(v, "leaf");
        // The host's own /var/run/redis is left as it was.
        assert!(
            !Path::new("/var/run/redis/redis.sock").exists()
                || std::fs::read_link("/var/run/redis/redis.sock")
                    .ok()
                    .as_deref()
                    != Some(redis.socket())
        );
    }

    #[test]
    fn ports_take_their_lanes_from_the_port_map_in_its_order() {
        let p = mini_lab_ports(&["Ethernet120", "Ethernet0"]).unwrap();
        assert_eq!(
            p,
            [
                VsPort {
                    name: "Ethernet0".into(),
                    lanes: "1".into()
                },
                VsPort {
                    name: "Ethernet120".into(),
                    lanes: "121,122,123,124".into()
                },
            ]
        );
        let e = mini_lab_ports(&["Ethernet0", "Ethernet999"]).unwrap_err();
        assert!(e.to_string().contains("Ethernet999"), "{e}");
    }

    #[test]
    fn findings_are_error_and_warning_lines() {
        // As orchagent and syncd write them (202411, LOGOUTPUT=STDERR).
        assert!(is_finding(
            " ERROR:- removeBridgePort: Failed to remove bridge port"
        ));
        assert!(is_finding(
            "  WARN:- addOperation: Vrf 'Vrf31' hasn't been created yet"
        ));
        assert!(is_finding("  CRIT:- x"));
        assert!(!is_finding("NOTICE :- main: Created switch"));
        assert!(!is_finding("ERRATA"));
        assert!(!is_finding("ERRORS"));
        assert!(!is_finding("  INFO x"));
    }
}
