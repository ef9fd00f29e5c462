//! systemd over D-Bus: start a unit and wait for its job (feature `agent`).
//!
//! The daemon's systemd calls are those of metal-core's SONiC backend:
//! `org.freedesktop.systemd1.Manager.Subscribe`, `StartUnit(name,
//! "replace")` and the `JobRemoved` signal that reports how the job ended.
//! `metal-switchd migrate` also stops units, reads their state (`LoadUnit`,
//! the unit's `LoadState`/`ActiveState`/`UnitFileState`) and enables or
//! disables them (`EnableUnitFiles`, `DisableUnitFiles`, `Reload`), as
//! `systemctl` does. [`Systemd`] wraps them in typed calls; the zbus
//! proxies stay private to this module.
//!
//! The bus is the system bus unless an address is configured
//! (`systemd_bus_address`); zbus reads `DBUS_SYSTEM_BUS_ADDRESS` for the
//! system bus, so a container can point the agent at a mounted socket.
//!
//! Invariant: the `JobRemoved` subscription exists before `StartUnit` is
//! sent, so a job that ends before the call returns is never missed.
//!
//! [`notify`] speaks the `sd_notify` protocol to the service manager that
//! started the daemon (readiness, watchdog, status line); [`watchdog`]
//! decides when the loop has earned a `WATCHDOG=1`.
//!
//! [`escape_path`] and [`template_instance`] are pure (systemd's
//! `systemd-escape --path --template` rules) and compile without the feature.

agent! {
    mod client;
    pub mod notify;
    pub mod watchdog;
}

agent! {
    pub use client::{JobResult, Systemd, SystemdError, UnitState};
}

use std::path::Path;

/// `systemd-escape --path PATH`: the path as a unit name instance.
///
/// Slashes at both ends are dropped, runs of slashes become one `-`, every
/// byte outside `[A-Za-z0-9:_.]` (and a leading `.`) becomes `\xNN`; the root
/// directory is `-`.
///
/// ```
/// use metal_switchd::systemd::escape_path;
/// use std::path::Path;
/// assert_eq!(escape_path(Path::new("/etc/sonic/frr/frr.conf")), "etc-sonic-frr-frr.conf");
/// assert_eq!(escape_path(Path::new("/a-b//c d/")), r"a\x2db-c\x20d");
/// ```
pub fn escape_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let parts: Vec<&[u8]> = bytes
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for (j, b) in part.iter().enumerate() {
            let keep = b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.');
            if keep && !(i == 0 && j == 0 && *b == b'.') {
                out.push(char::from(*b));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out
}

/// `NAME@.service` + instance → `NAME@instance.service`, or `None` when
/// `template` is not a template unit name.
///
/// ```
/// use metal_switchd::systemd::template_instance;
/// assert_eq!(
///     template_instance("bgp-validation@.service", "etc-sonic-frr-frr.conf").as_deref(),
///     Some("bgp-validation@etc-sonic-frr-frr.conf.service")
/// );
/// assert_eq!(template_instance("frr-reload.service", "x"), None);
/// ```
pub fn template_instance(template: &str, instance: &str) -> Option<String> {
    let (name, suffix) = template.split_once("@.")?;
    if name.is_empty() || suffix.is_empty() || suffix.contains('@') {
        return None;
    }
    Some(format!("{name}@{instance}.{suffix}"))
}

/// systemd's longest unit name.
pub const UNIT_NAME_MAX: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_systemd_escape() {
        // Outputs of `systemd-escape --path` (systemd 252).
        for (path, want) in [
            ("/etc/sonic/frr/frr.conf", "etc-sonic-frr-frr.conf"),
            (
                "/etc/sonic/frr/frr.conf.tmp-Ab3x",
                r"etc-sonic-frr-frr.conf.tmp\x2dAb3x",
            ),
            ("/tmp/.hidden/x", "tmp-.hidden-x"),
            ("/a//b/", "a-b"),
            ("/", "-"),
            ("/with space/ü.conf", r"with\x20space-\xc3\xbc.conf"),
            ("/a-b/c_d:e", r"a\x2db-c_d:e"),
            ("/foo/.bar", "foo-.bar"),
            ("/.x", r"\x2ex"),
            (r"/a/b c\d", r"a-b\x20c\x5cd"),
            ("/x/~y*z", r"x-\x7ey\x2az"),
            ("/ab/c@d.conf", r"ab-c\x40d.conf"),
            ("/x/a%b", r"x-a\x25b"),
        ] {
            assert_eq!(escape_path(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn template_units() {
        assert_eq!(
            template_instance("bgp-validation@.service", "a").as_deref(),
            Some("bgp-validation@a.service")
        );
        assert_eq!(template_instance("@.service", "a"), None);
        assert_eq!(template_instance("x@.", "a"), None);
        assert_eq!(template_instance("x.service", "a"), None);
    }
}
