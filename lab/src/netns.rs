//! Network namespaces for tests and the lab: namespaces with `ip`/`bridge`
//! helpers and link-type probes (kernel tests), a switch namespace whose
//! veth ports are named like SONiC's (`Ethernet0`, …), machine namespaces at
//! the other ends, Debian's `lldpd` as the machines' LLDP sender, and a raw
//! frame sender for hand-built frames (phone-home tests). Everything is
//! unique per process and removed on drop.
//!
//! Frames for the raw sender are built here from the IEEE 802.1AB TLV
//! layout ([`tlv`], [`ethernet`]), independently of the agent's parser.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

use crate::frr_lab::{run, unique_name};

/// Fail with a useful message unless we are root.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("phone-home tests need root (network namespaces, raw sockets); run them as root");
    }
    Ok(())
}

/// Fail with a useful message unless Debian's lldpd is installed.
pub fn require_lldpd() -> Result<()> {
    for p in ["/usr/sbin/lldpd", "/usr/sbin/lldpcli"] {
        if !Path::new(p).exists() {
            bail!("{p} is missing; install it: apt-get install -y lldpd (./dev test does)");
        }
    }
    Ok(())
}

/// Arguments of an `ip` or `bridge` command: a list, or one line split at
/// whitespace.
#[derive(Debug, Clone)]
pub struct CmdArgs<'a>(Vec<&'a str>);

impl<'a> From<&'a str> for CmdArgs<'a> {
    fn from(line: &'a str) -> Self {
        CmdArgs(line.split_whitespace().collect())
    }
}

impl<'a> From<&'a String> for CmdArgs<'a> {
    fn from(line: &'a String) -> Self {
        CmdArgs(line.split_whitespace().collect())
    }
}

impl<'a> From<&[&'a str]> for CmdArgs<'a> {
    fn from(args: &[&'a str]) -> Self {
        CmdArgs(args.to_vec())
    }
}

impl<'a, const N: usize> From<&[&'a str; N]> for CmdArgs<'a> {
    fn from(args: &[&'a str; N]) -> Self {
        CmdArgs(args.to_vec())
    }
}

/// A named network namespace (`ip netns`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace `<prefix><pid>-<n>` with `lo` up.
    pub fn new(prefix: &str) -> Result<Netns> {
        require_root()?;
        let name = unique_name(prefix);
        run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> ARGS` (a list, or one whitespace-separated line),
    /// failing with its output.
    pub fn ip<'a>(&self, args: impl Into<CmdArgs<'a>>) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.into().0);
        run("ip", &all).map(|_| ())
    }

    /// `bridge -n <ns> ARGS`.
    pub fn bridge<'a>(&self, args: impl Into<CmdArgs<'a>>) -> Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.into().0);
        run("bridge", &all).map(|_| ())
    }

    /// The namespace file (`/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Move the calling thread into this namespace (sockets it opens from
    /// now on, and threads it starts, belong to it).
    pub fn enter_current_thread(&self) -> Result<()> {
        let f = std::fs::File::open(self.path())
            .with_context(|| format!("opening {}", self.path().display()))?;
        // SAFETY: setns with an open namespace fd; affects only this thread.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(anyhow!(
                "setns into {}: {}",
                self.name,
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    /// Run many `ip` commands in one process (`ip -force -batch -`): fast
    /// enough to change links while a dump runs. `-force` goes on after a
    /// failed line.
    pub fn ip_batch(&self, commands: &str) -> Result<()> {
        Netns::batch_in(&self.name, commands)
    }

    /// [`Netns::ip_batch`] in the namespace called `name`.
    pub fn batch_in(name: &str, commands: &str) -> Result<()> {
        let mut child = Command::new("ip")
            .args(["-n", name, "-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run ip -batch")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(commands.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "ip -n {} -batch failed ({}): {}",
                name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// The names of the namespace's links, as `ip` lists them (an
    /// independent reading of the kernel for tests).
    pub fn link_names(&self) -> Result<Vec<String>> {
        let out = run("ip", &["-n", &self.name, "-o", "link", "show"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let name = l.split(": ").nth(1)?;
                Some(name.split('@').next().unwrap_or(name).to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether this namespace's kernel can create a link of `kind`
    /// (`vrf`, `vlan`, `dummy`, ...), probed by creating and deleting one.
    pub fn supports(&self, kind: &str) -> bool {
        let probe = "probe0";
        let args = match kind {
            "vrf" => "link add probe0 type vrf table 4000".to_owned(),
            "vlan" => {
                if self.ip("link add probe0p type dummy").is_err()
                    && self
                        .ip("link add probe0p type veth peer name probe0q")
                        .is_err()
                {
                    return false;
                }
                "link add link probe0p name probe0 type vlan id 10".to_owned()
            }
            other => format!("link add probe0 type {other}"),
        };
        let ok = self.ip(&args).is_ok();
        let _ = self.ip(&format!("link del {probe}"));
        let _ = self.ip("link del probe0p");
        ok
    }

    /// Whether bridges here can filter VLANs (`vlan_filtering 1`).
    pub fn supports_vlan_filtering(&self) -> bool {
        let ok = self
            .ip("link add probebr0 type bridge vlan_filtering 1")
            .is_ok();
        let _ = self.ip("link del probebr0");
        ok
    }

    /// The ifindex of `dev` in this namespace.
    pub fn ifindex(&self, dev: &str) -> Result<u32> {
        let out = run("ip", &["-n", &self.name, "-o", "link", "show", "dev", dev])?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .ok_or_else(|| anyhow!("no ifindex in {text:?}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair `a_dev` (in `a`) ↔ `b_dev` (in `b`), both up, with `mtu`.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str, mtu: u32) -> Result<()> {
    let mtu = mtu.to_string();
    run(
        "ip",
        &[
            "link", "add", a_dev, "netns", &a.name, "mtu", &mtu, "type", "veth", "peer", "name",
            b_dev, "netns", &b.name, "mtu", &mtu,
        ],
    )?;
    a.ip(&["link", "set", a_dev, "up"])?;
    b.ip(&["link", "set", b_dev, "up"])?;
    Ok(())
}

/// Debian's `lldpd` in a namespace, sending every second on the given
/// interfaces with a configured system name and description; its control
/// socket and configuration live in a temp dir of its own, so several run
/// at once. Killed on drop.
pub struct Lldpd {
    child: Child,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Lldpd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lldpd")
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Lldpd {
    /// Start `lldpd -d` in `ns` on `interfaces`.
    pub fn start(
        ns: &Netns,
        interfaces: &[&str],
        system_name: &str,
        description: &str,
    ) -> Result<Lldpd> {
        require_lldpd()?;
        let dir = tempfile::Builder::new()
            .prefix("metal-switchd-lldpd-")
            .tempdir()?;
        let conf = dir.path().join("lldpd.conf");
        // lldpcli's quoting: double quotes, no escapes needed for these values.
        for v in [system_name, description] {
            if v.contains('"') {
                bail!("lldpd test values may not contain '\"': {v:?}");
            }
        }
        std::fs::write(
            &conf,
            format!(
                "configure system hostname \"{system_name}\"\n\
                 configure system description \"{description}\"\n\
                 configure lldp tx-interval 1\n"
            ),
        )?;
        let ctl = dir.path().join("lldpd.socket");
        let log = std::fs::File::create(dir.path().join("lldpd.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "/usr/sbin/lldpd", "-d", "-u"])
            .arg(&ctl)
            .arg("-O")
            .arg(&conf)
            .args(["-I", &interfaces.join(",")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting lldpd")?;
        Ok(Lldpd { child, dir })
    }

    /// lldpd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lldpd.log")).unwrap_or_default()
    }

    /// Stop it now (it sends a shutdown LLDPDU, TTL 0, on the way out).
    pub fn stop(&mut self) {
        // SAFETY: kill(2) of our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Lldpd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A raw `AF_PACKET` socket on an interface of a namespace, for sending
/// hand-built frames.
#[derive(Debug)]
pub struct RawSender {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSender {
    /// Open it on `dev` in `ns` (from a helper thread that enters `ns`).
    pub fn open(ns: &Netns, dev: &str) -> Result<RawSender> {
        let path = ns.path();
        let dev = dev.to_owned();
        std::thread::spawn(move || -> Result<RawSender> {
            let f = std::fs::File::open(&path)?;
            // SAFETY: setns on this helper thread only.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns: {}", std::io::Error::last_os_error());
            }
            let c = CString::new(dev.clone())?;
            // SAFETY: valid C string.
            let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if ifindex == 0 {
                bail!("no interface {dev}");
            }
            // SAFETY: plain socket call, checked.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            if raw < 0 {
                bail!("socket: {}", std::io::Error::last_os_error());
            }
            Ok(RawSender {
                // SAFETY: fresh descriptor owned by nobody else.
                fd: unsafe { OwnedFd::from_raw_fd(raw) },
                ifindex: ifindex as i32,
            })
        })
        .join()
        .map_err(|_| anyhow!("raw sender thread panicked"))?
    }

    /// Send one frame (destination MAC and EtherType are in `frame`).
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        for (d, s) in addr.sll_addr.iter_mut().zip(frame.iter().take(6)) {
            *d = *s;
        }
        // SAFETY: frame and addr are live for the call; sizes match.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            bail!(
                "sending a {}-byte frame: {}",
                frame.len(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }
}

/// One LLDP TLV: 7 bits type, 9 bits length, value (IEEE 802.1AB §8.4).
pub fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let header = (u16::from(kind) << 9) | (value.len() as u16 & 0x01ff);
    let mut v = header.to_be_bytes().to_vec();
    v.extend_from_slice(value);
    v
}

/// An Ethernet frame to the nearest-bridge group address.
pub fn ethernet(source: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
    f.extend_from_slice(&source);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The LLDPDU go-lldpd sends (metal-api reference §4.3): chassis id = MAC,
/// port id = interface name, TTL 4 s, port description, system name,
/// system description, End.
pub fn go_lldpd_pdu(mac: [u8; 6], nic: &str, system_name: &str, description: &str) -> Vec<u8> {
    let mut chassis = vec![4u8];
    chassis.extend_from_slice(&mac);
    let mut port = vec![5u8];
    port.extend_from_slice(nic.as_bytes());
    [
        tlv(1, &chassis),
        tlv(2, &port),
        tlv(3, &[0, 4]),
        tlv(4, nic.as_bytes()),
        tlv(5, system_name.as_bytes()),
        tlv(6, description.as_bytes()),
        tlv(0, &[]),
    ]
    .concat()
}
