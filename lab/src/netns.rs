//! A throwaway network namespace for kernel tests, deleted on drop.
//!
//! Names are unique per process (`<prefix><pid>-<n>`, at most 15
//! characters for veth names derived from it), so tests of several
//! engineers can run at the same time. Commands go through `ip -n`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::frr_lab::{run, unique_name};

/// A network namespace (`/var/run/netns/<name>`) with `lo` up.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create a namespace; errors say what is missing (root, iproute2).
    pub fn new(tag: &str) -> Result<Netns> {
        let name = unique_name(&format!("msw-{tag}"));
        run("ip", &["netns", "add", &name]).with_context(|| {
            format!(
                "creating network namespace {name} (kernel tests need root and iproute2: \
                 apt-get install -y iproute2)"
            )
        })?;
        let ns = Netns { name };
        ns.ip("link set lo up")?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file (`/var/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// `ip -n <ns> <args>` (whitespace-separated), failing with its output.
    pub fn ip(&self, args: &str) -> Result<()> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend(args.split_whitespace());
        run("ip", &a).map(|_| ())
    }

    /// `bridge -n <ns> <args>`.
    pub fn bridge(&self, args: &str) -> Result<()> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend(args.split_whitespace());
        run("bridge", &a).map(|_| ())
    }

    /// Run many `ip` commands in one process (`ip -force -batch -`): fast
    /// enough to change links while a dump runs. `-force` goes on after a
    /// failed line.
    pub fn ip_batch(&self, commands: &str) -> Result<()> {
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-force", "-batch", "-"])
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
                self.name,
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
