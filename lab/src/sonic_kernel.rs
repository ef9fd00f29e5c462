//! The SONiC stand-in's kernel side: what SONiC's managers do with `ip`
//! and `bridge` when they process CONFIG_DB (reference `sonic-configdb.md`
//! §3.2 and the managers' sources it cites), done in one network namespace.
//!
//! | manager | CONFIG_DB | commands (as the manager runs them) |
//! | --- | --- | --- |
//! | vlanmgrd (start) | — | `ip link add Bridge up type bridge`, `mtu 9100`, `bridge vlan del vid 1 dev Bridge self`, `dummy` into it, `vlan_filtering 1` |
//! | vrfmgrd (start) / vxlanmgrd (start) | — | delete leftover VRF / VXLAN devices |
//! | vrfmgrd | `VRF\|X` | `ip link add X type vrf table T` + `ip link set X up`; DEL: `ip link del X` |
//! | vlanmgrd | `VLAN\|VlanN` | `bridge vlan add vid N dev Bridge self`, `ip link add link Bridge up name VlanN type vlan id N`; DEL: reverse |
//! | vlanmgrd | `VLAN_MEMBER\|VlanN\|P` | `ip link set P master Bridge`, `bridge vlan del vid 1 dev P`, `bridge vlan add vid N dev P [pvid untagged]`; DEL: `bridge vlan del`, `nomaster` when it was the last VLAN |
//! | intfmgrd | `INTERFACE\|P {vrf_name}`, `VLAN_INTERFACE\|VlanN {vrf_name}` | `ip link set P master X`; DEL: `ip link set P nomaster` |
//! | vxlanmgrd | `VXLAN_TUNNEL_MAP\|vtep\|map_N_VlanV` | `ip link add vtep-V type vxlan id N local <src_ip> nolearning dstport 4789`, `master Bridge`, `bridge vlan add vid V untagged pvid`, `bridge vlan del vid 1`, `learning off`, up; DEL: down + `ip link del` |
//! | portmgrd | `PORT\|P {mtu, admin_status}` | `ip link set dev P mtu M`, `ip link set dev P up\|down` |
//!
//! On a kernel without the `vrf` or `vlan` link types or bridge VLAN
//! filtering (this machine's), only MTU and admin state are applied; every
//! skipped step is logged to stderr and kept in [`SonicKernel::skipped`].
//! A port without a netdev in the namespace is skipped the same way (tests
//! create netdevs for the ports they use). A failing command is returned as
//! an error: the real manager would throw (and swss restart) or log it, and
//! the stand-in reports it as a violation.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

/// The VLAN-aware bridge vlanmgrd creates.
pub const BRIDGE: &str = "Bridge";

/// One kernel step of a manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    VrfAdd {
        name: String,
    },
    VrfDel {
        name: String,
    },
    VlanAdd {
        vid: u16,
    },
    VlanDel {
        vid: u16,
    },
    MemberAdd {
        vid: u16,
        port: String,
        untagged: bool,
    },
    MemberDel {
        vid: u16,
        port: String,
        last: bool,
    },
    /// intfmgrd: `ip link set <ifname> master <vrf>`.
    Bind {
        ifname: String,
        vrf: String,
    },
    /// intfmgrd: `ip link set <ifname> nomaster`.
    Unbind {
        ifname: String,
    },
    VxlanAdd {
        vtep: String,
        vid: u16,
        vni: u32,
        src_ip: String,
    },
    VxlanDel {
        vtep: String,
        vid: u16,
    },
    Port {
        port: String,
        mtu: Option<String>,
        admin: Option<String>,
    },
}

/// What the namespace's kernel can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub vrf: bool,
    pub vlan: bool,
    pub vlan_filtering: bool,
    pub vxlan: bool,
}

impl Caps {
    /// Everything SONiC's managers need.
    pub fn full(&self) -> bool {
        self.vrf && self.vlan && self.vlan_filtering && self.vxlan
    }
}

/// The managers' kernel steps in one namespace.
#[derive(Debug)]
pub struct SonicKernel {
    netns: String,
    caps: Caps,
    next_table: AtomicU32,
    skipped: Mutex<Vec<String>>,
    devices: DeviceProbe,
}

/// Answers "does this netdev exist in the namespace" without running a
/// process (which costs a lot under an emulated CPU): a thread that entered
/// the namespace asks the kernel (`if_nametoindex`).
struct DeviceProbe {
    requests: Mutex<std::sync::mpsc::Sender<(String, std::sync::mpsc::Sender<bool>)>>,
}

impl std::fmt::Debug for DeviceProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceProbe")
    }
}

impl DeviceProbe {
    fn start(netns: &str) -> Result<DeviceProbe> {
        use std::os::fd::AsRawFd;
        let path = format!("/var/run/netns/{netns}");
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<(String, std::sync::mpsc::Sender<bool>)>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        std::thread::Builder::new()
            .name("sonic-netns-probe".into())
            .spawn(move || {
                // SAFETY: setns on an open namespace fd; it affects only this
                // thread, which does nothing else.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                let entered = if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                };
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                for (name, reply) in rx {
                    let exists = std::ffi::CString::new(name)
                        // SAFETY: a valid NUL-terminated string.
                        .map(|c| unsafe { libc::if_nametoindex(c.as_ptr()) } != 0)
                        .unwrap_or(false);
                    let _ = reply.send(exists);
                }
            })
            .context("starting the namespace probe thread")?;
        ready_rx
            .recv()
            .context("the namespace probe thread ended")?
            .with_context(|| format!("entering network namespace {netns}"))?;
        Ok(DeviceProbe {
            requests: Mutex::new(tx),
        })
    }

    fn exists(&self, name: &str) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((name.to_owned(), tx));
        sent.is_ok() && rx.recv().unwrap_or(false)
    }
}

fn ip_sync(netns: &str, args: &str) -> Result<()> {
    let mut a = vec!["-n", netns];
    a.extend(args.split_whitespace());
    crate::frr_lab::run("ip", &a).map(|_| ())
}

/// Several `ip` lines in one process (`-force`: go on after a failure,
/// still failing at the end).
fn ip_batch_sync(netns: &str, lines: &[String], force: bool) -> Result<()> {
    use std::io::Write;
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["-n", netns]);
    if force {
        cmd.arg("-force");
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run ip")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all((lines.join("\n") + "\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "ip -n {netns} -batch ({}) failed: {}",
            lines.join("; "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn probe(netns: &str) -> Caps {
    let ok = |create: &str, del: &str| {
        let ok = ip_sync(netns, create).is_ok();
        let _ = ip_sync(netns, del);
        ok
    };
    let vrf = ok(
        "link add msw-probe-vrf type vrf table 4999",
        "link del msw-probe-vrf",
    );
    let vlan_filtering = ok(
        "link add msw-probe-br type bridge vlan_filtering 1",
        "link del msw-probe-br",
    );
    let vlan = ip_sync(
        netns,
        "link add msw-probe-l type veth peer name msw-probe-p",
    )
    .is_ok()
        && {
            let ok = ok(
                "link add link msw-probe-l name msw-probe-v type vlan id 10",
                "link del msw-probe-v",
            );
            let _ = ip_sync(netns, "link del msw-probe-l");
            ok
        };
    let vxlan = ok(
        "link add msw-probe-x type vxlan id 10 dstport 4789",
        "link del msw-probe-x",
    );
    Caps {
        vrf,
        vlan,
        vlan_filtering,
        vxlan,
    }
}

static QUIET_SKIPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Keep skipped steps off stderr (the demo prints one summary line per
/// leaf instead of one line per skipped step).
pub fn quiet_skips(on: bool) {
    QUIET_SKIPS.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl SonicKernel {
    /// Probe the namespace's kernel and do what the managers do when they
    /// start: vlanmgrd's `Bridge` (VLAN filtering, `dummy` in it),
    /// vrfmgrd's and vxlanmgrd's removal of leftover devices.
    pub fn start(netns: &str) -> Result<SonicKernel> {
        ip_sync(netns, "link show lo")
            .with_context(|| format!("network namespace {netns} for the SONiC stand-in"))?;
        let caps = probe(netns);
        let k = SonicKernel {
            netns: netns.to_owned(),
            caps,
            next_table: AtomicU32::new(1001),
            skipped: Mutex::new(Vec::new()),
            devices: DeviceProbe::start(netns)?,
        };
        if caps.full() {
            for kind in ["vrf", "vxlan"] {
                for dev in k.links_of_type(kind)? {
                    if dev != "mgmt" {
                        ip_sync(netns, &format!("link del {dev}"))?;
                    }
                }
            }
            let _ = ip_batch_sync(
                netns,
                &[
                    format!("link del {BRIDGE}"),
                    "link del dev dummy".to_owned(),
                ],
                true,
            );
            ip_batch_sync(
                netns,
                &[
                    format!("link add {BRIDGE} up type bridge"),
                    format!("link set {BRIDGE} mtu 9100"),
                    "link add dummy type dummy".to_owned(),
                    format!("link set dummy master {BRIDGE}"),
                    format!("link set {BRIDGE} type bridge vlan_filtering 1"),
                ],
                false,
            )
            .context("vlanmgrd's bridge set-up")?;
            crate::frr_lab::run(
                "bridge",
                &[
                    "-n", netns, "vlan", "del", "vid", "1", "dev", BRIDGE, "self",
                ],
            )?;
        } else {
            k.skip(format!(
                "this kernel lacks what SONiC's managers need ({caps:?}): VRF, VLAN, bridge and \
                 VXLAN devices are NOT created; only MTU and admin state are applied to existing \
                 netdevs (run the full-kernel tests with ./dev vm-test)"
            ));
        }
        Ok(k)
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Every step skipped so far, with the reason.
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record a skipped step (each once) and say so on stderr (unless
    /// [`quiet_skips`] is on: then only [`SonicKernel::skipped`] has it).
    fn skip(&self, what: String) {
        let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if !skipped.contains(&what) {
            if !QUIET_SKIPS.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!("SONiC stand-in (netns {}): SKIPPED {what}", self.netns);
            }
            skipped.push(what);
        }
    }

    fn links_of_type(&self, kind: &str) -> Result<Vec<String>> {
        let out = crate::frr_lab::run(
            "ip",
            &["-n", &self.netns, "-o", "link", "show", "type", kind],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let n = l.split(": ").nth(1)?;
                Some(n.split('@').next().unwrap_or(n).to_owned())
            })
            .collect())
    }

    /// Run `program -n <netns>` with one command line, or several in one
    /// process (`-batch -`, stopping at the first failure): every process
    /// is expensive under an emulated CPU.
    async fn run(&self, program: &str, lines: &[String]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(["-n", self.netns.as_str()]);
        let batch = lines.len() > 1;
        if batch {
            cmd.args(["-batch", "-"])
                .stdin(std::process::Stdio::piped());
        } else {
            cmd.args(lines.join(" ").split_whitespace())
                .stdin(std::process::Stdio::null());
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if batch && let Some(mut stdin) = child.stdin.take() {
            let text = lines.join("\n") + "\n";
            stdin
                .write_all(text.as_bytes())
                .await
                .map_err(|e| format!("{program} -batch: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{program} -n {} {}` failed: {}",
                self.netns,
                lines.join("; "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    async fn ip(&self, lines: &[String]) -> Result<(), String> {
        self.run("ip", lines).await
    }

    async fn bridge(&self, lines: &[String]) -> Result<(), String> {
        self.run("bridge", lines).await
    }

    /// Whether `port` has a netdev here; notes the skip when not (tests
    /// create netdevs only for the ports they use).
    fn has(&self, who: &str, port: &str) -> bool {
        let present = self.devices.exists(port);
        if !present {
            self.skip(format!("{who}: {port} has no netdev here"));
        }
        present
    }

    /// Do `op` as the manager does; `Err` names the failed command.
    pub async fn apply(&self, op: &Op) -> Result<(), String> {
        let full = self.caps.full();
        match op {
            Op::Port { port, mtu, admin } => {
                // portmgrd's `mtu` and `up|down` commands, in one.
                let mut line = format!("link set dev {port}");
                if let Some(m) = mtu {
                    line.push_str(&format!(" mtu {m}"));
                }
                let admin = admin.as_deref().filter(|a| *a == "up" || *a == "down");
                if let Some(a) = admin {
                    line.push(' ');
                    line.push_str(a);
                }
                if (mtu.is_some() || admin.is_some()) && self.has("portmgrd", port) {
                    self.ip(&[line]).await?;
                }
                Ok(())
            }
            _ if !full => {
                self.skip(format!("{op:?}: needs vrf/vlan/vlan_filtering/vxlan"));
                Ok(())
            }
            Op::VrfAdd { name } => {
                let table = self.next_table.fetch_add(1, Ordering::SeqCst);
                self.ip(&[
                    format!("link add {name} type vrf table {table}"),
                    format!("link set {name} up"),
                ])
                .await
            }
            Op::VrfDel { name } => self.ip(&[format!("link del {name}")]).await,
            Op::VlanAdd { vid } => {
                self.bridge(&[format!("vlan add vid {vid} dev {BRIDGE} self")])
                    .await?;
                self.ip(&[format!(
                    "link add link {BRIDGE} up name Vlan{vid} type vlan id {vid}"
                )])
                .await
            }
            Op::VlanDel { vid } => {
                self.ip(&[format!("link del Vlan{vid}")]).await?;
                self.bridge(&[format!("vlan del vid {vid} dev {BRIDGE} self")])
                    .await
            }
            Op::MemberAdd {
                vid,
                port,
                untagged,
            } => {
                if !self.has("vlanmgrd", port) {
                    return Ok(());
                }
                self.ip(&[format!("link set {port} master {BRIDGE}")])
                    .await?;
                let mode = if *untagged { " pvid untagged" } else { "" };
                self.bridge(&[
                    format!("vlan del vid 1 dev {port}"),
                    format!("vlan add vid {vid} dev {port}{mode}"),
                ])
                .await
            }
            Op::MemberDel { vid, port, last } => {
                if !self.has("vlanmgrd", port) {
                    return Ok(());
                }
                self.bridge(&[format!("vlan del vid {vid} dev {port}")])
                    .await?;
                if *last {
                    self.ip(&[format!("link set {port} nomaster")]).await?;
                }
                Ok(())
            }
            Op::Bind { ifname, vrf } => {
                if !self.has("intfmgrd", ifname) {
                    return Ok(());
                }
                self.ip(&[format!("link set {ifname} master {vrf}")]).await
            }
            Op::Unbind { ifname } => {
                if !self.has("intfmgrd", ifname) {
                    return Ok(());
                }
                self.ip(&[format!("link set {ifname} nomaster")]).await
            }
            Op::VxlanAdd {
                vtep,
                vid,
                vni,
                src_ip,
            } => {
                let dev = format!("{vtep}-{vid}");
                self.ip(&[
                    format!(
                        "link add {dev} type vxlan id {vni} local {src_ip} nolearning dstport 4789"
                    ),
                    format!("link set {dev} master {BRIDGE}"),
                ])
                .await?;
                let mut lines = vec![
                    format!("vlan add vid {vid} dev {dev}"),
                    format!("vlan add vid {vid} untagged pvid dev {dev}"),
                ];
                if *vid != 1 {
                    lines.push(format!("vlan del vid 1 dev {dev}"));
                }
                lines.push(format!("link set dev {dev} learning off"));
                self.bridge(&lines).await?;
                self.ip(&[format!("link set {dev} up")]).await
            }
            Op::VxlanDel { vtep, vid } => {
                // vxlanmgrd ignores failures here (`swss::exec`, no throw).
                let dev = format!("{vtep}-{vid}");
                let _ = self.ip(&[format!("link set dev {dev} down")]).await;
                if let Err(e) = self.ip(&[format!("link del dev {dev}")]).await {
                    self.skip(format!("vxlanmgrd: {e} (ignored, as vxlanmgrd does)"));
                }
                Ok(())
            }
        }
    }
}
