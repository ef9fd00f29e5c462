//! Run commands (test binaries) under a full Linux kernel in a small VM.
//!
//! This machine's kernel lacks the `vrf` and `vlan` link types and bridge
//! VLAN filtering; Debian's kernel (`linux-image-amd64`) has them. The
//! recipe (`../shared/reference/full-kernel-vm.md`): `qemu-system-x86_64
//! -accel tcg` boots that kernel with a small initramfs (static busybox,
//! the modules for virtio, 9p, bridge, 8021q, vrf, dummy, vxlan, veth),
//! which mounts the host's root read-only over 9p, puts tmpfs on `/tmp`
//! and `/run`, and `chroot`s into it: host binaries — redis-server, `ip`,
//! test binaries built on the host — run unchanged against the guest
//! kernel. The command's output comes back on the serial console, its exit
//! status in a marker line.
//!
//! Everything the runner writes lives in a per-process directory under
//! the given work directory (removed on drop), so runs of several users do
//! not collide. Nothing here is shipped.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Modules the guest needs (their dependencies are added).
pub const MODULES: [&str; 9] = [
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    "bridge",
    "8021q",
    "vrf",
    "dummy",
    "vxlan",
    "veth",
];

const READY: &str = "METAL_VM_READY";
const EXIT: &str = "METAL_VM_EXIT=";

/// How to run the VM.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Kernel release (`6.1.0-57-amd64`); `None`: the newest in `/boot`
    /// with modules in `/lib/modules`.
    pub kernel: Option<String>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// The whole run (boot, command, power-off) must finish within this.
    pub timeout: Duration,
    /// Where the per-run directory goes (must not be under `/tmp`, which
    /// the guest covers with its own tmpfs).
    pub work_dir: PathBuf,
    /// Echo the guest's console to stderr while it runs.
    pub echo: bool,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            kernel: None,
            memory_mib: 1536,
            cpus: 2,
            timeout: Duration::from_secs(170),
            work_dir: PathBuf::from("target/vm"),
            echo: true,
        }
    }
}

/// What one VM run did.
#[derive(Debug, Clone)]
pub struct VmRun {
    pub kernel: String,
    /// The command's exit status in the guest.
    pub exit_code: i32,
    /// From starting qemu to the guest being ready to run the command.
    pub boot: Duration,
    /// The command in the guest.
    pub command: Duration,
    /// Start to qemu's exit.
    pub total: Duration,
    /// The guest's console output.
    pub console: String,
}

/// The newest kernel with an image in `/boot` and modules in `/lib/modules`.
pub fn find_kernel() -> Result<String> {
    let mut found: Vec<String> = std::fs::read_dir("/boot")
        .context("reading /boot")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("vmlinuz-")
                .map(str::to_owned)
        })
        .filter(|v| Path::new("/lib/modules").join(v).is_dir())
        .collect();
    found.sort_by_key(|v| version_key(v));
    found.pop().ok_or_else(|| {
        anyhow::anyhow!(
            "no kernel image in /boot with modules in /lib/modules; install Debian's kernel: \
             apt-get install -y linux-image-amd64"
        )
    })
}

fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn modinfo(kernel: &str, field: &[&str], module: &str) -> Result<String> {
    let out = Command::new("modinfo")
        .args(["-k", kernel])
        .args(field)
        .arg(module)
        .stdin(Stdio::null())
        .output()
        .context("cannot run modinfo (apt-get install -y kmod)")?;
    if !out.status.success() {
        bail!(
            "modinfo {} {module} for {kernel}: {}",
            field.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The module files to load, dependencies first (built-in ones left out).
pub fn module_order(kernel: &str, wanted: &[&str]) -> Result<Vec<(String, PathBuf)>> {
    fn visit(
        kernel: &str,
        m: &str,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<(String, PathBuf)>,
    ) -> Result<()> {
        if !seen.insert(m.to_owned()) {
            return Ok(());
        }
        let path = modinfo(kernel, &["-n"], m)?;
        if path == "(builtin)" || path.is_empty() {
            return Ok(());
        }
        let deps = modinfo(kernel, &["-F", "depends"], m)?;
        for d in deps.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            visit(kernel, d, seen, out)?;
        }
        out.push((m.to_owned(), PathBuf::from(path)));
        Ok(())
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for m in wanted {
        visit(kernel, m, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// A module file's content, decompressed (busybox `insmod` wants plain
/// `.ko` files).
fn module_bytes(path: &Path) -> Result<Vec<u8>> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
        Some(t) => {
            let out = Command::new(t)
                .arg("-dc")
                .arg(path)
                .output()
                .with_context(|| format!("cannot run {t} to decompress {}", path.display()))?;
            if !out.status.success() {
                bail!("{t} -dc {} failed", path.display());
            }
            Ok(out.stdout)
        }
    }
}

/// A `newc` cpio archive (what the kernel unpacks as initramfs).
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        // Round up to 512 bytes like cpio(1) does.
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}

/// The guest's `/init` (busybox sh): mount, load modules, mount the host
/// root, run `metal.cmd` from the kernel command line in a chroot, print
/// the exit marker, power off.
fn init_script(modules: &[(String, PathBuf)]) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s /bin\n\
         export PATH=/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sys /sys\n\
         mount -t devtmpfs dev /dev\n",
    );
    for (m, _) in modules {
        s.push_str(&format!(
            "insmod /modules/{m}.ko || echo \"METAL_VM: insmod {m} failed\"\n"
        ));
    }
    s.push_str(
        "mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /host \
           || { echo 'METAL_VM: cannot mount the host root over 9p'; poweroff -f; }\n\
         mount -t proc proc /host/proc\n\
         mount -t sysfs sys /host/sys\n\
         mount -t devtmpfs dev /host/dev\n\
         mount -t tmpfs tmp /host/tmp\n\
         mount -t tmpfs run /host/run\n\
         ip link set lo up\n\
         cmd=$(sed -n 's/.*metal\\.cmd=\\([^ ]*\\).*/\\1/p' /proc/cmdline)\n\
         echo \"METAL_VM_READY $(cut -d' ' -f1 /proc/uptime)\"\n\
         chroot /host /usr/bin/env -i \
           PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
           HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1 METAL_SWITCHD_VM=1 \
           /bin/sh \"$cmd\"\n\
         echo \"METAL_VM_EXIT=$?\"\n\
         sync\n\
         poweroff -f\n",
    );
    s
}

/// Build the initramfs for `kernel`.
pub fn initramfs(kernel: &str) -> Result<Vec<u8>> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| anyhow::anyhow!("busybox is missing: apt-get install -y busybox-static"))?;
    let bb = std::fs::read(busybox)?;
    let modules = module_order(kernel, &MODULES)?;
    let mut c = Cpio::default();
    for d in ["bin", "proc", "sys", "dev", "host", "modules"] {
        c.dir(d);
    }
    c.file("bin/busybox", 0o755, &bb);
    c.file("init", 0o755, init_script(&modules).as_bytes());
    for (m, path) in &modules {
        c.file(&format!("modules/{m}.ko"), 0o644, &module_bytes(path)?);
    }
    Ok(c.finish())
}

/// A per-run directory under the work directory, removed on drop.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `script` (a `/bin/sh` script) in the VM; its working directory is
/// the current directory.
pub fn run(opts: &VmOptions, script: &str) -> Result<VmRun> {
    let kernel = match &opts.kernel {
        Some(k) => k.clone(),
        None => find_kernel()?,
    };
    let image = PathBuf::from(format!("/boot/vmlinuz-{kernel}"));
    if !image.exists() {
        bail!(
            "{} is missing: apt-get install -y linux-image-amd64",
            image.display()
        );
    }
    let qemu = "qemu-system-x86_64";
    let work = std::path::absolute(&opts.work_dir)?;
    if work.starts_with("/tmp") {
        bail!(
            "the VM work directory {} is under /tmp, which the guest covers with a tmpfs",
            work.display()
        );
    }
    let dir = RunDir(work.join(format!("run-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
    let initrd = dir.0.join("initramfs.cpio");
    std::fs::write(&initrd, initramfs(&kernel)?)?;
    let cwd = std::env::current_dir()?;
    let cmd_file = dir.0.join("cmd.sh");
    std::fs::write(
        &cmd_file,
        format!("cd '{}' || exit 125\n{script}\n", cwd.display()),
    )?;
    if cmd_file.to_string_lossy().contains(char::is_whitespace) {
        bail!("the VM work directory must not contain spaces");
    }

    let started = Instant::now();
    let mut child = Command::new(qemu)
        .args(["-accel", "tcg", "-nographic", "-no-reboot", "-nodefaults"])
        .args(["-serial", "stdio", "-monitor", "none"])
        .args(["-m", &opts.memory_mib.to_string()])
        .args(["-smp", &opts.cpus.to_string()])
        .arg("-kernel")
        .arg(&image)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        ])
        .arg("-append")
        .arg(format!(
            "console=ttyS0 rdinit=/init quiet panic=-1 metal.cmd={}",
            cmd_file.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {qemu} (apt-get install -y qemu-system-x86)"))?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stderr = child.stderr.take().context("qemu stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    });

    let deadline = started + opts.timeout;
    let mut console = String::new();
    let mut boot = None;
    let mut exit_code = None;
    let mut command_started = None;
    let mut command = Duration::ZERO;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(raw) => {
                let line = raw.trim_end_matches('\r').to_owned();
                // Markers may follow the firmware's terminal escapes.
                if line.contains(READY) {
                    boot = Some(started.elapsed());
                    command_started = Some(Instant::now());
                } else if let Some(i) = line.find(EXIT) {
                    exit_code = line[i + EXIT.len()..].trim().parse().ok();
                    command = command_started.map(|t| t.elapsed()).unwrap_or_default();
                }
                if opts.echo {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "vm| {line}");
                }
                console.push_str(&line);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    let _ = reader.join();
    let qemu_err = errs.join().unwrap_or_default();
    let total = started.elapsed();
    if timed_out {
        bail!(
            "the VM did not finish within {:?} (booted: {}); console tail:\n{}",
            opts.timeout,
            boot.map_or("no".into(), |b| format!("after {b:?}")),
            tail(&console, 30)
        );
    }
    let Some(boot) = boot else {
        bail!(
            "the VM never became ready (kernel {kernel}); qemu: {}\nconsole tail:\n{}",
            qemu_err.trim(),
            tail(&console, 30)
        );
    };
    let Some(exit_code) = exit_code else {
        bail!(
            "the VM ended without the command's exit status; qemu: {}\nconsole tail:\n{}",
            qemu_err.trim(),
            tail(&console, 30)
        );
    };
    Ok(VmRun {
        kernel,
        exit_code,
        boot,
        command,
        total,
        console,
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Build the test binaries of `tests` (integration test targets of the
/// workspace's root package) on the host; their paths.
pub fn build_tests(tests: &[String]) -> Result<Vec<PathBuf>> {
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--locked", "--no-run", "--message-format=json"]);
    for t in tests {
        cmd.args(["--test", t]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("building the test binaries failed ({})", out.status);
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let name = v["target"]["name"].as_str().unwrap_or("");
        if let Some(exe) = v["executable"].as_str()
            && tests.iter().any(|t| t == name)
        {
            bins.push(PathBuf::from(exe));
        }
    }
    if bins.len() != tests.len() {
        bail!(
            "expected {} test binaries, cargo built {bins:?}",
            tests.len()
        );
    }
    Ok(bins)
}

/// The guest script that runs each test binary (libtest arguments
/// `args`), reporting every failure and exiting non-zero if any failed.
pub fn test_script(bins: &[PathBuf], args: &[String]) -> String {
    let mut s = String::from("rc=0\n");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    for b in bins {
        s.push_str(&format!(
            "echo \"== {b} ==\"\n'{b}' {} || rc=1\n",
            quoted.join(" "),
            b = b.display()
        ));
    }
    s.push_str("exit $rc\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("init", 0o755, b"#!/bin/sh\n");
        let b = c.finish();
        assert!(b.starts_with(b"070701"));
        assert_eq!(b.len() % 512, 0);
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("init\0"));
        assert!(text.contains("TRAILER!!!\0"));
        // The file's mode and size in the second header.
        let second = text.match_indices("070701").nth(1).unwrap().0;
        let h = &text[second..second + 110];
        assert_eq!(&h[14..22], "000081ed");
        assert_eq!(&h[54..62], "0000000a");
    }

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = vec!["6.1.0-9-amd64", "6.1.0-57-amd64", "5.10.0-30-amd64"];
        v.sort_by_key(|x| version_key(x));
        assert_eq!(v, ["5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-57-amd64"]);
    }
}
