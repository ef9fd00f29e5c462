//! BGP neighbour states per port, from FRR's
//! `show bgp vrf all neighbors json`.
//!
//! [`parse_neighbors`] is pure and reads both key variants FRR has used:
//! `ipv4Unicast`/`ipv6Unicast` (SONiC, FRR ≥ 7.5) and `IPv4 Unicast`/
//! `IPv6 Unicast` (Cumulus, older FRR). The mapping is metal-core's
//! (`GetBGPStates`): result key = the neighbour key (the port name for BGP
//! unnumbered), `neighbor` = the peer's `hostname`, prefix counters summed
//! over IPv4 and IPv6 unicast (EVPN left out).
//!
//! Incomplete entries, decided here once for both API versions:
//! - an unknown or missing `bgpState` (FRR's transient `Clearing`,
//!   `Deleted`, …) cannot be reported by either API: the entry is left out
//!   and named in [`Neighbors::skipped`];
//! - a missing `hostname` (a peer that never came up) gives `neighbor: ""`
//!   and a missing or zero `bgpTimerUpEstablishedEpoch` gives
//!   `established_since: None`; the entry is kept, because v1 reports it
//!   like metal-core. The v2 heartbeat requires a 2..128 character neighbour
//!   and a timer: its converter fills them (or drops the entry).
//! - missing counters count as 0 (the Cumulus capture has no
//!   `sentPrefixCounter`).
//!
//! The readers (feature `agent`) get the text from `vtysh`
//! ([`BgpSource::Vtysh`]) or from the file metal-stack's
//! `bgp-neighbor-stats` timer writes every two minutes
//! ([`BgpSource::File`]); like metal-core, a file older than one hour is
//! refused ([`BgpStateError::Stale`]). [`StateFileWatch`] reports when the
//! timer replaces the file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::observed::{BgpPortState, BgpState};

/// metal-core's limit: an older state file is ignored.
pub const MAX_STATE_FILE_AGE: Duration = Duration::from_secs(3600);

/// The vtysh command whose output is parsed (the state file holds the same).
pub const SHOW_NEIGHBORS: &str = "show bgp vrf all neighbors json";

/// Address families whose counters are summed (both spellings).
const UNICAST_FAMILIES: [&str; 4] = ["ipv4Unicast", "ipv6Unicast", "IPv4 Unicast", "IPv6 Unicast"];

/// Errors reading BGP states.
#[derive(Debug, thiserror::Error)]
pub enum BgpStateError {
    #[error("{origin}: not the JSON of `{SHOW_NEIGHBORS}`: {message}")]
    Parse { origin: String, message: String },
    /// Missing, not a regular file, larger than 16 MiB, not UTF-8, unreadable.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    #[error(
        "the BGP neighbour state file {path} is {age:?} old (more than one hour); is the \
         bgp-neighbor-stats timer running?"
    )]
    Stale { path: PathBuf, age: Duration },
    #[error("cannot run {program}: {source}; install FRR's vtysh or set vtysh_path")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{command} failed with {status}: {output}")]
    Vtysh {
        command: String,
        status: std::process::ExitStatus,
        output: String,
    },
    #[error("{command} did not answer within {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("cannot watch {path}: {message}")]
    Watch { path: PathBuf, message: String },
}

impl BgpStateError {
    /// Whether a later read may succeed without a change of configuration.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            BgpStateError::Spawn { .. } | BgpStateError::Watch { .. }
        )
    }
}

/// The parsed neighbours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbors {
    /// Per neighbour key (port name for BGP unnumbered).
    pub states: BTreeMap<String, BgpPortState>,
    /// Entries left out, as `"<vrf>/<neighbor>: <why>"`.
    pub skipped: Vec<String>,
}

/// Parse `show bgp vrf all neighbors json`. `origin` names the source in errors.
pub fn parse_neighbors(origin: &str, text: &str) -> Result<Neighbors, BgpStateError> {
    let parse_err = |message: String| BgpStateError::Parse {
        origin: origin.to_owned(),
        message,
    };
    let root: Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let Value::Object(vrfs) = root else {
        return Err(parse_err("the top level is not an object of VRFs".into()));
    };
    let mut out = Neighbors::default();
    for (vrf_key, vrf) in &vrfs {
        // Non-object members (none known) are not VRFs.
        let Value::Object(vrf) = vrf else { continue };
        let vrf_name = vrf
            .get("vrfName")
            .and_then(Value::as_str)
            .unwrap_or(vrf_key)
            .to_owned();
        for (key, neighbor) in vrf {
            // vrfId, vrfName and any other scalar are not neighbours.
            let Value::Object(n) = neighbor else { continue };
            match neighbor_state(n, &vrf_name) {
                Ok(state) => {
                    out.states.insert(key.clone(), state);
                }
                Err(why) => out.skipped.push(format!("{vrf_name}/{key}: {why}")),
            }
        }
    }
    Ok(out)
}

/// The longest neighbor name reported: the API's limit for
/// `SwitchBGPPortState.neighbor`.
pub const NEIGHBOR_MAX_CHARS: usize = 128;

/// A peer's host name as it is reported and shown: the peer (a tenant's
/// machine) chooses it freely (BGP hostname capability, up to 255 bytes),
/// so control and format characters are escaped
/// ([`crate::names::escaped`]) and the result is cut at
/// [`NEIGHBOR_MAX_CHARS`].
fn shown_hostname(h: &str) -> String {
    crate::names::escaped(h, NEIGHBOR_MAX_CHARS)
        .chars()
        .filter(|c| *c != '…')
        .take(NEIGHBOR_MAX_CHARS)
        .collect()
}

fn neighbor_state(n: &Map<String, Value>, vrf_name: &str) -> Result<BgpPortState, String> {
    let text = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let state_name = n.get("bgpState").and_then(Value::as_str);
    let state = match state_name.map(BgpState::from_frr) {
        Some(Some(s)) => s,
        Some(None) => {
            return Err(format!(
                "unknown bgpState {:?}",
                state_name.unwrap_or_default()
            ));
        }
        None => return Err("no bgpState".into()),
    };
    let established_since = n
        .get("bgpTimerUpEstablishedEpoch")
        .and_then(Value::as_u64)
        .filter(|t| *t > 0);
    let (mut sent, mut accepted) = (0u64, 0u64);
    if let Some(Value::Object(families)) = n.get("addressFamilyInfo") {
        for af in UNICAST_FAMILIES {
            if let Some(Value::Object(c)) = families.get(af) {
                let count = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
                sent = sent.saturating_add(count("sentPrefixCounter"));
                accepted = accepted.saturating_add(count("acceptedPrefixCounter"));
            }
        }
    }
    Ok(BgpPortState {
        neighbor: shown_hostname(&text("hostname")),
        peer_group: text("peerGroup"),
        vrf_name: vrf_name.to_owned(),
        state,
        established_since,
        sent_prefixes: sent,
        accepted_prefixes: accepted,
    })
}

#[cfg(feature = "agent")]
pub use reader::{BgpSource, StateFileWatch};

#[cfg(feature = "agent")]
mod reader {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use notify::{RecursiveMode, Watcher};

    use super::{BgpStateError, Neighbors, SHOW_NEIGHBORS, parse_neighbors};

    use crate::frr::command::{self, RunError};

    /// Where BGP states are read from.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum BgpSource {
        /// The file written by the bgp-neighbor-stats timer.
        File { path: PathBuf, max_age: Duration },
        /// vtysh, asked on every read.
        Vtysh {
            vtysh: PathBuf,
            vty_socket_dir: Option<PathBuf>,
            timeout: Duration,
        },
    }

    impl BgpSource {
        /// Read and parse the current states.
        pub async fn read(&self) -> Result<Neighbors, BgpStateError> {
            match self {
                BgpSource::File { path, max_age } => read_file(path, *max_age, SystemTime::now()),
                BgpSource::Vtysh {
                    vtysh,
                    vty_socket_dir,
                    timeout,
                } => read_vtysh(vtysh, vty_socket_dir.as_deref(), *timeout).await,
            }
        }
    }

    /// Read the state file as of `now`; refuse it when older than `max_age`.
    pub(super) fn read_file(
        path: &Path,
        max_age: Duration,
        now: SystemTime,
    ) -> Result<Neighbors, BgpStateError> {
        use crate::files::{BGP_STATE_MAX_BYTES, FileKind, read};
        // The age is that of the file whose content is parsed (one open).
        let file = read(FileKind::BgpState, path, BGP_STATE_MAX_BYTES)?;
        let modified = file.meta.modified().map_err(|source| {
            BgpStateError::File(crate::files::FileError {
                kind: FileKind::BgpState,
                path: path.to_owned(),
                problem: crate::files::FileProblem::Io(source),
            })
        })?;
        // A modification time in the future counts as fresh.
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age > max_age {
            return Err(BgpStateError::Stale {
                path: path.to_owned(),
                age: Duration::from_secs(age.as_secs()),
            });
        }
        let text = file.text;
        parse_neighbors(&path.display().to_string(), &text)
    }

    async fn read_vtysh(
        vtysh: &Path,
        vty_socket_dir: Option<&Path>,
        timeout: Duration,
    ) -> Result<Neighbors, BgpStateError> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(dir) = vty_socket_dir {
            args.push("--vty_socket".into());
            args.push(dir.into());
        }
        args.push("-c".into());
        args.push(SHOW_NEIGHBORS.into());
        let shown = command::shown(vtysh, &args);
        let ran = command::run(vtysh, &args, timeout)
            .await
            .map_err(|e| match e {
                RunError::Spawn(source) => BgpStateError::Spawn {
                    program: vtysh.to_owned(),
                    source,
                },
                RunError::Timeout => BgpStateError::Timeout {
                    command: shown.clone(),
                    after: timeout,
                },
            })?;
        if !ran.status.success() {
            return Err(BgpStateError::Vtysh {
                command: shown,
                status: ran.status,
                output: ran.output_tail(),
            });
        }
        parse_neighbors(&shown, &ran.stdout)
    }

    /// How long the events of one replacement may trickle in.
    const SETTLE: Duration = Duration::from_millis(50);

    /// Notices when the state file is written or replaced.
    ///
    /// The timer writes a temporary file and renames it over the state file,
    /// so the directory is watched (a watch on the file itself would follow
    /// the replaced inode). Bursts of events collapse into one notice.
    pub struct StateFileWatch {
        // Dropping the watcher ends the watch.
        _watcher: notify::RecommendedWatcher,
        rx: tokio::sync::mpsc::Receiver<()>,
    }

    impl StateFileWatch {
        /// Start watching `path` (its directory must exist).
        pub fn new(path: &Path) -> Result<StateFileWatch, BgpStateError> {
            StateFileWatch::observed(path, |_, _| {})
        }

        /// [`StateFileWatch::new`], and `observer` sees every event in the
        /// directory, in order: each path it names and whether the event
        /// counted as a change of the state file. Events are handled one
        /// after the other, so seeing a later event (of any file) proves that
        /// the earlier ones were handled and their notices sent: tests use it
        /// to check what did *not* wake the watch without waiting for time
        /// to pass.
        pub fn observed(
            path: &Path,
            observer: impl Fn(&Path, bool) + Send + 'static,
        ) -> Result<StateFileWatch, BgpStateError> {
            let watch_err = |message: String| BgpStateError::Watch {
                path: path.to_owned(),
                message,
            };
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .ok_or_else(|| watch_err("the path has no directory".into()))?
                .to_owned();
            let name = path
                .file_name()
                .ok_or_else(|| watch_err("the path has no file name".into()))?
                .to_owned();
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let mut watcher =
                notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                    let Ok(event) = res else { return };
                    let ours = event
                        .paths
                        .iter()
                        .any(|p| p.file_name() == Some(name.as_os_str()));
                    let relevant = matches!(
                        event.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Remove(_)
                    );
                    let counted = ours && relevant;
                    if counted {
                        // Full: a notice is already pending.
                        let _ = tx.try_send(());
                    }
                    for p in &event.paths {
                        observer(p, counted);
                    }
                })
                .map_err(|e| watch_err(e.to_string()))?;
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| watch_err(format!("watching {}: {e}", dir.display())))?;
            Ok(StateFileWatch {
                _watcher: watcher,
                rx,
            })
        }

        /// Whether a change is pending, without waiting (it is consumed).
        pub fn try_changed(&mut self) -> bool {
            self.rx.try_recv().is_ok()
        }

        /// Wait for the next change; `None` when the watch ended. The
        /// several events of one replacement (a rename is reported as
        /// moved-from, moved-to and both) become one change.
        pub async fn changed(&mut self) -> Option<()> {
            self.rx.recv().await?;
            tokio::time::sleep(SETTLE).await;
            while self.rx.try_recv().is_ok() {}
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "agent")]
    use std::path::Path;

    fn fixture(name: &str) -> String {
        let path = format!("{}/testdata/frr/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn sonic_capture() {
        let n = parse_neighbors("sonic", &fixture("bgp-neighbors-sonic.json")).unwrap();
        assert!(n.skipped.is_empty(), "{:?}", n.skipped);
        assert_eq!(n.states.len(), 19);
        // The values metal-core's tests pin.
        let e120 = &n.states["Ethernet120"];
        assert_eq!(e120.peer_group, "FABRIC");
        assert_eq!(e120.state, BgpState::Established);
        assert_eq!(e120.established_since, Some(1773056572));
        assert_eq!((e120.sent_prefixes, e120.accepted_prefixes), (59, 95));
        assert_eq!(e120.neighbor, "fra-equ01-spine02");
        assert_eq!(e120.vrf_name, "default");
        assert_eq!(n.states["Ethernet20"].sent_prefixes, 60);
        let idle = &n.states["Ethernet23"];
        assert_eq!(idle.state, BgpState::Idle);
        assert_eq!(idle.neighbor, "");
        assert_eq!(idle.established_since, None);
        assert_eq!(idle.peer_group, "FIREWALL");
        let tenant = &n.states["Ethernet0"];
        assert_eq!(tenant.vrf_name, "Vrf102");
        assert_eq!(tenant.peer_group, "MACHINE");
        assert_eq!((tenant.sent_prefixes, tenant.accepted_prefixes), (68, 39));
    }

    #[test]
    fn cumulus_capture() {
        let n = parse_neighbors("cumulus", &fixture("bgp-neighbors-cumulus.json")).unwrap();
        assert!(n.skipped.is_empty(), "{:?}", n.skipped);
        assert_eq!(n.states.len(), 19);
        let swp31 = &n.states["swp31"];
        assert_eq!(swp31.state, BgpState::Established);
        // No sentPrefixCounter in this capture; EVPN (781) is not counted.
        assert_eq!((swp31.sent_prefixes, swp31.accepted_prefixes), (0, 50));
        assert_eq!(n.states["swp2s2"].vrf_name, "vrf81");
        assert_eq!(n.states["swp6s0"].accepted_prefixes, 1);
    }

    #[test]
    fn frr84_capture() {
        let n =
            parse_neighbors("frr84", &fixture("bgp-vrf-all-neighbors-frr84-netns.json")).unwrap();
        let swp1 = &n.states["swp1"];
        assert_eq!(swp1.neighbor, "spine1");
        assert_eq!(swp1.state, BgpState::Established);
        assert_eq!((swp1.sent_prefixes, swp1.accepted_prefixes), (2, 1));
    }

    #[test]
    fn incomplete_entries() {
        let text = r#"{
          "default": {"vrfId": 0, "vrfName": "default",
            "Ethernet1": {"bgpState": "Clearing", "peerGroup": "FABRIC"},
            "Ethernet2": {"peerGroup": "FABRIC"},
            "Ethernet3": {"bgpState": "Active", "bgpTimerUpEstablishedEpoch": 0,
                          "addressFamilyInfo": {"ipv4Unicast": {"sentPrefixCounter": "x"}}}
          },
          "note": "not a VRF"
        }"#;
        let n = parse_neighbors("t", text).unwrap();
        assert_eq!(n.states.len(), 1);
        let e3 = &n.states["Ethernet3"];
        assert_eq!(e3.state, BgpState::Active);
        assert_eq!(e3.established_since, None);
        assert_eq!(e3.peer_group, "");
        assert_eq!(e3.sent_prefixes, 0);
        assert_eq!(
            n.skipped,
            [
                "default/Ethernet1: unknown bgpState \"Clearing\"",
                "default/Ethernet2: no bgpState"
            ]
        );
    }

    /// Issue 22 item 5: a tenant's machine chooses its BGP host name; it
    /// is reported (heartbeat, status) escaped and cut.
    #[test]
    fn a_peer_host_name_is_escaped_and_cut() {
        let hostile = format!("evil\u{202e}gpj.exe\u{1b}[2J\n{}", "h".repeat(300));
        let text = serde_json::json!({
            "Vrf104009": {"vrfId": 5, "vrfName": "Vrf104009",
                "Ethernet1": {"bgpState": "Established", "peerGroup": "MACHINE",
                              "hostname": hostile}}
        })
        .to_string();
        let n = parse_neighbors("t", &text).unwrap();
        let shown = &n.states["Ethernet1"].neighbor;
        assert!(
            shown.starts_with("evil\\u{202e}gpj.exe\\u{1b}[2J\\nhhh"),
            "{shown}"
        );
        assert!(!shown.contains(['\u{202e}', '\u{1b}', '\n']), "{shown}");
        assert_eq!(shown.chars().count(), NEIGHBOR_MAX_CHARS);
    }

    #[test]
    fn bad_documents() {
        assert!(parse_neighbors("t", "% BGP instance not found").is_err());
        assert!(parse_neighbors("t", "[]").is_err());
        assert_eq!(parse_neighbors("t", "{}").unwrap(), Neighbors::default());
    }

    #[cfg(feature = "agent")]
    #[test]
    fn stale_files_are_refused() {
        use std::time::SystemTime;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgp-neighbors.json");
        std::fs::write(&path, fixture("bgp-neighbors-sonic.json")).unwrap();
        let now = SystemTime::now();
        let n = reader::read_file(&path, MAX_STATE_FILE_AGE, now).unwrap();
        assert_eq!(n.states.len(), 19);
        let later = now + Duration::from_secs(3601);
        let e = reader::read_file(&path, MAX_STATE_FILE_AGE, later).unwrap_err();
        assert!(matches!(e, BgpStateError::Stale { .. }), "{e}");
        assert!(e.to_string().contains("bgp-neighbor-stats"), "{e}");
        let e = reader::read_file(&dir.path().join("nope"), MAX_STATE_FILE_AGE, now).unwrap_err();
        assert!(matches!(e, BgpStateError::File(_)), "{e}");
        // A FIFO is refused at once instead of blocking the reconcile.
        let fifo = crate::files::test_fifo(dir.path());
        let e = reader::read_file(&fifo, MAX_STATE_FILE_AGE, now).unwrap_err();
        assert!(e.to_string().contains("BGP neighbour state file"), "{e}");
    }

    /// Issue 9, finding 2 and docs/configuration.md "Input files": the BGP
    /// neighbour state file is a regular file of at most 16 MiB; /dev/zero
    /// is refused by its type, without reading it, and a file one byte over
    /// the limit by its size.
    #[cfg(feature = "agent")]
    #[test]
    fn endless_and_oversized_state_files_are_refused() {
        use crate::files::{FileError, FileKind, FileProblem};
        use std::time::SystemTime;
        let now = SystemTime::now();
        let e = reader::read_file(Path::new("/dev/zero"), MAX_STATE_FILE_AGE, now).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(
                &e,
                BgpStateError::File(FileError {
                    kind: FileKind::BgpState,
                    problem: FileProblem::NotAFile("a character device"),
                    ..
                })
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "BGP neighbour state file /dev/zero: it is a character device, not a regular file"
            ),
            "{msg}"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("bgp-neighbors.json");
        // A sparse file: its size is over the limit without 16 MiB on disk.
        std::fs::File::create(&big)
            .unwrap()
            .set_len(16 * 1024 * 1024 + 1)
            .unwrap();
        let e = reader::read_file(&big, MAX_STATE_FILE_AGE, now).unwrap_err();
        let msg = e.to_string();
        let file = match &e {
            BgpStateError::File(f) => Some(f),
            _ => None,
        };
        let what = ("BGP neighbour state", big.as_path());
        crate::files::assert_too_large(file, &msg, what, 16 * 1024 * 1024);
    }

    /// The events an observed watch has handled: (file name, counted).
    #[cfg(feature = "agent")]
    struct Seen(std::sync::mpsc::Receiver<(String, bool)>);

    #[cfg(feature = "agent")]
    impl Seen {
        fn watch(path: &Path) -> (StateFileWatch, Seen) {
            let (tx, rx) = std::sync::mpsc::channel();
            let w = StateFileWatch::observed(path, move |p, counted| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                let _ = tx.send((name.unwrap_or_default(), counted));
            })
            .unwrap();
            (w, Seen(rx))
        }

        /// Every event up to and including the first one of `barrier`
        /// (events are handled in order, so all earlier ones are in).
        fn until(&self, barrier: &str) -> Vec<(String, bool)> {
            let mut out = Vec::new();
            loop {
                let e = self
                    .0
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|_| panic!("no event of {barrier}; seen {out:?}"));
                let done = e.0 == barrier;
                out.push(e);
                if done {
                    return out;
                }
            }
        }
    }

    #[cfg(feature = "agent")]
    #[tokio::test]
    async fn the_watch_reports_each_replacement_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgp-neighbors.json");
        let (mut watch, seen) = Seen::watch(&path);
        for round in 0..2 {
            let tmp = dir.path().join(format!("tmp.{round}"));
            std::fs::write(&tmp, "{}").unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            // A later event of another file: every event of the
            // replacement has been handled once it is seen.
            let barrier = format!("barrier.{round}");
            std::fs::write(dir.path().join(&barrier), "").unwrap();
            let events = seen.until(&barrier);
            assert!(
                events.iter().any(|(n, c)| n == "bgp-neighbors.json" && *c),
                "round {round}: the replacement did not count: {events:?}"
            );
            tokio::time::timeout(Duration::from_secs(60), watch.changed())
                .await
                .unwrap_or_else(|_| panic!("round {round}: no change reported"))
                .unwrap();
            assert!(
                !watch.try_changed(),
                "round {round}: one replacement reported twice ({events:?})"
            );
        }
        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        std::fs::write(dir.path().join("barrier.other"), "").unwrap();
        let events = seen.until("barrier.other");
        assert!(
            events.iter().any(|(n, _)| n == "other.json"),
            "the watch did not see other.json at all: {events:?}"
        );
        assert!(
            events.iter().all(|(_, counted)| !counted),
            "another file's change counted: {events:?}"
        );
        assert!(!watch.try_changed(), "another file's change was reported");
        assert!(StateFileWatch::new(Path::new("relative-without-dir")).is_err());
    }
}
