//! The status record as text for people (pure): the one line systemd shows
//! (`STATUS=`, [`Status::status_line`]) and the summary of
//! `metal-switchd status` ([`Status::text`]), one section per part of the
//! record. Nothing here reads the clock: `now` is given.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::status::{ReconcileRecord, Status};
use super::vocab::{DriftSource, ReconcileResult};
use crate::observed::{BgpState, PortOperState};
use crate::spec::SpecDigest;

impl Status {
    /// The one-line summary for systemd's `STATUS=` (shown by `systemctl status`).
    pub fn status_line(&self, now: SystemTime) -> String {
        let mut s = String::from(self.phase.as_str());
        if let Some(r) = &self.last_reconcile {
            let _ = write!(
                s,
                "; last reconcile #{} {} {} ago in {}",
                self.reconciles,
                r.result,
                short_duration(r.started_at.age(now)),
                short_duration(r.duration)
            );
            if r.changes > 0 {
                let _ = write!(s, ", {} changes", r.changes);
            }
            if let Some(e) = &r.error {
                let first = e.lines().next().unwrap_or_default();
                let _ = write!(s, ": {}", truncate(&shown(first), 120));
            }
        }
        if self.consecutive_failures > 1 {
            let _ = write!(s, "; {} failures in a row", self.consecutive_failures);
        }
        if let Some(d) = &self.desired {
            let _ = write!(s, "; generation {}", d.generation);
            if let Some(digest) = &d.digest {
                let _ = write!(s, " = {}", truncate(&shown(&digest.0), 16));
            }
            if let Some(g) = d.api_generation {
                let _ = write!(s, " (API {g})");
            }
        }
        let (up, total) = self.ports_up();
        if total > 0 {
            let _ = write!(s, "; ports {up}/{total} up");
        }
        if !self.bgp.is_empty() {
            let _ = write!(
                s,
                "; BGP {}/{} established",
                self.bgp_established(),
                self.bgp.len()
            );
        }
        s
    }

    fn ports_up(&self) -> (usize, usize) {
        let up = self
            .ports
            .values()
            .filter(|p| p.oper == PortOperState::Up)
            .count();
        (up, self.ports.len())
    }

    fn bgp_established(&self) -> usize {
        self.bgp
            .values()
            .filter(|b| b.state == BgpState::Established)
            .count()
    }

    /// The human summary of `metal-switchd status`.
    pub fn text(&self, now: SystemTime) -> String {
        let mut o = String::new();
        self.text_process(&mut o, now);
        self.text_flavour(&mut o);
        self.text_reconcile(&mut o, now);
        self.text_drift(&mut o);
        self.text_ports(&mut o);
        self.text_bgp(&mut o);
        self.text_phone_home(&mut o);
        o
    }

    fn text_process(&self, o: &mut String, now: SystemTime) {
        let a = &self.agent;
        let _ = writeln!(
            o,
            "metal-switchd {} ({}), pid {}, up {} (since {})",
            a.version,
            a.revision,
            a.pid,
            short_duration(a.started_at.age(now)),
            a.started_at
        );
        let _ = writeln!(
            o,
            "phase:            {} (updated {} ago)",
            self.phase.as_str(),
            short_duration(self.updated_at.age(now))
        );
        let _ = writeln!(
            o,
            "reconciles:       {} ({} failed in a row)",
            self.reconciles, self.consecutive_failures
        );
        match &self.desired {
            Some(d) => {
                let _ = writeln!(
                    o,
                    "desired state:    {} generation {}{}",
                    d.source.as_str(),
                    d.generation,
                    identity(d.digest.as_ref(), d.api_generation)
                );
            }
            None => o.push_str("desired state:    none yet\n"),
        }
    }

    fn text_flavour(&self, o: &mut String) {
        let Some(f) = &self.flavour else {
            return;
        };
        let fact = |k: &str| {
            shown(
                f.facts
                    .iter()
                    .find(|(n, _)| n == k)
                    .map_or("unknown", |(_, v)| v.as_str()),
            )
        };
        let _ = writeln!(
            o,
            "SONiC flavour:    {} (Debian {}, {}, FRR {}, fpm module {})",
            shown(&f.name),
            fact("debian"),
            fact("docker_routing_config_mode"),
            fact("frr_version"),
            fact("fpm_module")
        );
        let _ = writeln!(o, "  frr.conf adds:  {}", fact("frr_lines"));
        for w in &f.warnings {
            let _ = writeln!(o, "  warning:        {}", shown(w));
        }
        if let Some(r) = &f.refused {
            let _ = writeln!(o, "  REFUSED:        {}", shown(r));
        }
    }

    fn text_reconcile(&self, o: &mut String, now: SystemTime) {
        match &self.last_reconcile {
            Some(r) => text_record(o, r, now),
            None => o.push_str("last reconcile:   none yet\n"),
        }
        match &self.last_success {
            Some(t) => {
                let _ = writeln!(
                    o,
                    "last success:     {t} ({} ago)",
                    short_duration(t.age(now))
                );
            }
            None => o.push_str("last success:     never\n"),
        }
    }

    fn text_drift(&self, o: &mut String) {
        let repairs: Vec<String> = DriftSource::ALL
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s.as_str(),
                    self.drift.repairs.get(s).copied().unwrap_or(0)
                )
            })
            .collect();
        let _ = write!(o, "drift repairs:    {}", repairs.join(", "));
        if let Some(l) = &self.drift.last {
            let _ = write!(
                o,
                " (last: {} {} at {})",
                l.source.as_str(),
                shown(&l.what),
                l.at
            );
        }
        o.push('\n');
        if !self.drift.contested.is_empty() {
            let _ = writeln!(
                o,
                "contested:        {} (by another writer; not repaired)",
                self.drift.contested.join(", ")
            );
        }
    }

    fn text_ports(&self, o: &mut String) {
        let (up, total) = self.ports_up();
        let lldp = self.ports.values().filter(|p| p.lldp.is_some()).count();
        let _ = writeln!(
            o,
            "ports:            {total} ({up} up, {} not up); {lldp} with a machine seen over LLDP",
            total - up
        );
        for (name, p) in self
            .ports
            .iter()
            .filter(|(_, p)| p.oper != PortOperState::Up)
        {
            let admin = p
                .admin
                .map(|a| format!(", admin {}", a.as_str()))
                .unwrap_or_default();
            let _ = writeln!(o, "  {:<14}{:?}{admin}", shown(name), p.oper);
        }
    }

    fn text_bgp(&self, o: &mut String) {
        let mut by_state: BTreeMap<BgpState, usize> = BTreeMap::new();
        for b in self.bgp.values() {
            *by_state.entry(b.state).or_insert(0) += 1;
        }
        let states: Vec<String> = by_state
            .iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        let _ = writeln!(
            o,
            "BGP sessions:     {}{}",
            self.bgp.len(),
            if states.is_empty() {
                String::new()
            } else {
                format!(" ({})", states.join(", "))
            }
        );
        for (port, b) in self
            .bgp
            .iter()
            .filter(|(_, b)| b.state != BgpState::Established)
        {
            let neighbor = if b.neighbor.is_empty() {
                "-".to_owned()
            } else {
                shown(&b.neighbor)
            };
            let _ = writeln!(
                o,
                "  {:<14}{:<12}vrf {} peer-group {} neighbor {neighbor}",
                shown(port),
                b.state.as_str(),
                shown(&b.vrf),
                shown(&b.peer_group),
            );
        }
    }

    fn text_phone_home(&self, o: &mut String) {
        let ph = &self.phone_home;
        let _ = writeln!(
            o,
            "phone-home:       {} pending, {} sent, {} failed{}",
            ph.pending,
            ph.sent,
            ph.failures,
            ph.last_sent
                .map(|t| format!(", last sent {t}"))
                .unwrap_or_default()
        );
    }
}

/// The last reconcile's lines of the summary.
fn text_record(o: &mut String, r: &ReconcileRecord, now: SystemTime) {
    let _ = writeln!(
        o,
        "last reconcile:   {} at {} ({} ago), took {}, trigger {}",
        r.result,
        r.started_at,
        short_duration(r.started_at.age(now)),
        short_duration(r.duration),
        r.trigger.as_str()
    );
    if r.digest.is_some() {
        let to = if r.result == ReconcileResult::Converged {
            "converged to"
        } else {
            "towards"
        };
        let _ = writeln!(
            o,
            "  {to:<16}{}",
            identity(r.digest.as_ref(), r.api_generation).trim_start_matches(", ")
        );
    }
    if let Some(e) = &r.error {
        for (i, line) in e.lines().enumerate() {
            let label = if i == 0 { "  error:" } else { "" };
            let _ = writeln!(o, "{label:<18}{}", shown(line));
        }
    }
    if !r.stages.is_empty() {
        let stages: Vec<String> = r
            .stages
            .iter()
            .map(|(k, v)| format!("{} {}", k.as_str(), short_duration(*v)))
            .collect();
        let _ = writeln!(o, "  stages:         {}", stages.join(", "));
    }
    let _ = writeln!(
        o,
        "  changes:        {} CONFIG_DB keys in {} phases; FRR {}",
        r.changes,
        r.phases,
        if r.frr_changed {
            "reloaded"
        } else {
            "unchanged"
        }
    );
}

/// `1.2s`, `340ms`, `2h3m`: short and rounded, for people.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{:.0}µs", d.as_secs_f64() * 1e6)
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if d.as_secs() < 3600 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else if d.as_secs() < 86400 {
        format!("{}h{}m", d.as_secs() / 3600, d.as_secs() % 3600 / 60)
    } else {
        format!("{}d{}h", d.as_secs() / 86400, d.as_secs() % 86400 / 3600)
    }
}

/// `, digest D (API generation G)` of a desired state, or nothing.
fn identity(digest: Option<&SpecDigest>, api_generation: Option<u64>) -> String {
    let mut s = String::new();
    if let Some(d) = digest {
        let _ = write!(s, ", digest {}", shown(&d.0));
    }
    if let Some(g) = api_generation {
        let _ = write!(s, " (API generation {g})");
    }
    s
}

/// Text of the status file as `status` shows it: the file may hold what
/// came from outside (API errors, CONFIG_DB names, a BGP peer's host name),
/// and anyone who can write it could put anything there. Control and
/// format characters escaped, cut at `MESSAGE_CHARS` per value
/// ([`crate::names::escaped`]).
fn shown(s: &str) -> String {
    crate::names::escaped(s, crate::names::MESSAGE_CHARS)
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::status::sample::{record, sample, t};
    use super::super::vocab::{LoopPhase, ReconcileResult};
    use super::*;

    /// Issue 20: the detected flavour is in the status record and its text.
    #[test]
    fn the_flavour_is_shown() {
        use crate::flavour::Profile;
        let mut s = Status::new(4242, t(0));
        s.flavour = Some((&Profile::Community202411.flavour()).into());
        let text = s.text(t(1));
        assert!(
            text.contains(
                "SONiC flavour:    community 202411 (Debian 12 (bookworm), glibc 2.36, \
                 split-unified, FRR 10.0.1, fpm module dplane_fpm_sonic)\n  frr.conf adds:  \
                 no zebra nexthop kernel enable; fpm address 127.0.0.1; no fpm use-next-hop-groups\n"
            ),
            "{text}"
        );
        let json = serde_json::to_string(&s).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let mut refused = Profile::Community202411.flavour();
        refused.routing_config_mode = crate::flavour::RoutingConfigMode::Unified;
        s.flavour = Some((&refused).into());
        assert!(
            s.text(t(1))
                .contains("  REFUSED:        FRR is not managed"),
            "{}",
            s.text(t(1))
        );
    }

    #[test]
    fn status_line_is_one_short_line() {
        let mut s = sample();
        let line = s.status_line(t(40));
        assert_eq!(
            line,
            "idle; last reconcile #1 converged 30.0s ago in 1.5s, 3 changes; generation 7 = \
             0123456789abcdef (API 12); ports 1/2 up; BGP 1/2 established"
        );
        s.record_reconcile(record(ReconcileResult::Error, 41));
        s.record_reconcile(record(ReconcileResult::Error, 50));
        s.set_phase(LoopPhase::Reconciling);
        let line = s.status_line(t(52));
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(
                "reconciling; last reconcile #3 error 2.0s ago in 1.5s, 3 changes: \
                 redis: connection refused; 2 failures in a row"
            ),
            "{line}"
        );
        let mut long = record(ReconcileResult::Error, 60);
        long.error = Some("x".repeat(500));
        s.record_reconcile(long);
        assert!(s.status_line(t(61)).chars().count() < 300);
    }

    #[test]
    fn text_summary_shows_what_needs_attention() {
        let s = sample();
        let text = s.text(t(40));
        for want in [
            "metal-switchd 0.1.0",
            "pid 4242, up 40.0s",
            "phase:            idle",
            "desired state:    api-v1 generation 7, digest 0123456789abcdef (API generation 12)\n",
            "  converged to    digest 0123456789abcdef (API generation 12)\n",
            "last reconcile:   converged at 2026-09-21T14:13:30.000Z (30.0s ago), took 1.5s, trigger timer",
            "stages:         fetch 12ms, barrier_wait 800ms",
            "changes:        3 CONFIG_DB keys in 2 phases; FRR reloaded",
            "drift repairs:    configdb 1, kernel 0, frr 0 (last: configdb PORT|Ethernet4 mtu",
            "ports:            2 (1 up, 1 not up); 1 with a machine seen over LLDP",
            "  Ethernet4     Down",
            "BGP sessions:     2 (1 Active, 1 Established)",
            "  Ethernet120   Active      vrf default peer-group FABRIC neighbor -",
            "phone-home:       1 pending, 5 sent, 0 failed, last sent",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("Ethernet0     Up"), "{text}");
    }

    /// Issue 22 item 5: what came from outside is shown escaped and cut —
    /// an API error with `ESC[2J` and a forged line, a BGP peer's host name
    /// with U+202E, a CONFIG_DB name with a newline.
    #[test]
    fn the_text_escapes_what_came_from_outside() {
        use super::super::vocab::DriftSource;
        use crate::observed::BgpState;
        let mut s = sample();
        let mut r = record(ReconcileResult::Error, 30);
        r.error = Some(format!(
            "get switch: answered HTTP 400: \u{1b}[2J{}\nfirst\u{202e}line",
            "x".repeat(10_000)
        ));
        s.record_reconcile(r);
        s.record_drift(DriftSource::Configdb, "PORT|Eth\u{1b}]0;x\u{7}", t(31));
        if let Some(b) = s.bgp.values_mut().next() {
            b.neighbor = "evil\u{202e}txt.exe\u{1b}[31m".into();
            b.state = BgpState::Active;
        }
        let text = s.text(t(40));
        let line = s.status_line(t(40));
        for shown in [&text, &line] {
            assert!(!shown.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{shown}");
        }
        assert!(text.contains("evil\\u{202e}txt.exe\\u{1b}[31m"), "{text}");
        assert!(text.contains("\\u{1b}[2Jxxx"), "{text}");
        assert!(text.len() < 4_000, "{} bytes", text.len());
    }

    #[test]
    fn short_durations() {
        assert_eq!(short_duration(Duration::from_micros(300)), "300µs");
        assert_eq!(short_duration(Duration::from_millis(41)), "41ms");
        assert_eq!(short_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(short_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(short_duration(Duration::from_secs(7380)), "2h3m");
        assert_eq!(short_duration(Duration::from_secs(90000)), "1d1h");
    }
}
