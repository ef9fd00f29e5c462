//! The phone-home collector (pure): what the LLDP frames of the switch
//! ports say, and which machines are due to be reported.
//!
//! Anything on a switch port can send LLDP frames: every field of a frame
//! is untrusted. So:
//!
//! - A frame whose System Description contains `provisioned` is a
//!   phone-home of the machine named in its System Name (metal-api
//!   reference §4.3) only if that name is a UUID, as the API's machine ids
//!   are (go-lldpd sends the machine UUID); any other name is a neighbour
//!   that is shown, counted (`not_a_machine_id`) and never sent. One event
//!   per machine is kept, the last one wins, so a machine seen on two ports
//!   is reported once.
//! - Every port's last neighbour is kept (port → system name, machine id,
//!   chassis/port id, last seen) for `status`, whether it phones home or
//!   not, until its TTL runs out ([`Collector::expire`]). A TTL of 0 (the
//!   sender shuts down) forgets the port's neighbour and is not a
//!   phone-home.
//! - [`Collector::take_batch`] hands out everything pending, in one batch;
//!   the delivery's result is given back with [`Collector::delivered`]:
//!   what could not be sent is kept for the next interval, unless a newer
//!   event of the same machine arrived meanwhile.
//! - The pending set is bounded per port ([`MAX_PENDING_PER_PORT`]: a port
//!   faces one machine) and in total ([`Collector::new`]); when a port's
//!   share is full, that port's event seen longest ago is dropped and
//!   counted, so names forged on one port never push out the machines of
//!   the others.
//!
//! No clock and no I/O: times are passed in as durations since the Unix
//! epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::frame::{FrameError, Lldpdu, MalformedCounts};
use crate::api::{EventOutcome, PhoneHomeEvent};

/// The System Description substring that marks a provisioned machine.
pub const PROVISIONED_MARKER: &str = "provisioned";
/// Default bound of machines waiting to be reported.
pub const DEFAULT_MAX_PENDING: usize = 4096;
/// Bound of machines waiting to be reported from one port. A port faces
/// one machine's nic; a few more leave room for a machine replaced on the
/// port between two intervals.
pub const MAX_PENDING_PER_PORT: usize = 4;

/// Serialise a time since the Unix epoch as RFC 3339.
fn unix_time<S: Serializer>(t: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&unix_rfc3339(*t))
}

fn unix_time_opt<S: Serializer>(t: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&unix_rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// A time since the Unix epoch as RFC 3339 (UTC).
pub fn unix_rfc3339(t: Duration) -> String {
    crate::time::format_timestamp(
        i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        t.subsec_nanos(),
    )
}

/// The last LLDP neighbour seen on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbor {
    /// The machine id, when the neighbour phones home.
    pub machine_id: Option<String>,
    pub system_name: Option<String>,
    pub system_description: Option<String>,
    pub chassis_id: String,
    pub port_id: String,
    pub port_description: Option<String>,
    /// Seconds the neighbour's information is valid.
    pub ttl: u16,
    #[serde(serialize_with = "unix_time")]
    pub last_seen: Duration,
}

/// What one frame meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A provisioned machine phoned home.
    PhoneHome { machine_id: String },
    /// A neighbour that does not phone home (not provisioned, no name).
    Neighbor,
    /// TTL 0: the neighbour left.
    Shutdown,
}

/// The capture state of a port the agent was asked to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PortCapture {
    /// A packet socket is open on the port.
    Open { ifindex: u32 },
    /// The port cannot be captured now (netdev missing, error); retried.
    Unavailable { reason: String },
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// LLDP frames parsed.
    pub frames: u64,
    /// Frames dropped as malformed, by kind.
    pub malformed: MalformedCounts,
    /// Frames that were a phone-home (before de-duplication).
    pub phone_home_frames: u64,
    /// Frames marked `provisioned` whose system name is not a UUID: not
    /// a machine id, never sent.
    pub not_a_machine_id: u64,
    /// Neighbours forgotten because their TTL ran out.
    pub neighbors_expired: u64,
    /// Events dropped because their port's share or the pending set was full.
    pub dropped_overflow: u64,
    /// Batches handed to the API (one call each).
    pub batches: u64,
    /// Calls to the event service that succeeded / failed.
    pub sends_ok: u64,
    pub sends_failed: u64,
    /// Events the API accepted.
    pub events_sent: u64,
    /// Events the API refused (failed ids, or named in a refusal); not
    /// retried.
    pub events_rejected: u64,
}

/// The result of one delivery attempt of a batch (one call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Calls made (1).
    pub calls: u64,
    /// Calls that failed.
    pub failed_calls: u64,
    /// Events the server took.
    pub sent: Vec<PhoneHomeEvent>,
    /// Machine ids the server listed as failed in a successful answer.
    pub failed_ids: Vec<String>,
    /// Events the server refused (named in its answer); dropped.
    pub rejected: Vec<PhoneHomeEvent>,
    /// Events to keep for the next interval.
    pub kept: Vec<PhoneHomeEvent>,
    /// The last error, if any call failed.
    pub error: Option<String>,
}

impl Delivery {
    /// A batch that went through in one call.
    pub fn sent(batch: Vec<PhoneHomeEvent>, outcome: EventOutcome) -> Delivery {
        Delivery {
            calls: 1,
            failed_calls: 0,
            sent: batch,
            failed_ids: outcome.failed,
            ..Delivery::default()
        }
    }

    /// A batch whose call failed; everything is kept, except the machines
    /// the answer names (the API refused those).
    pub fn failed(batch: Vec<PhoneHomeEvent>, error: String) -> Delivery {
        let (rejected, kept) = split_named(batch, &error);
        Delivery {
            kept,
            ..Delivery::refusing(rejected, error)
        }
    }

    /// A batch the API refused in part (v2 `invalid_argument`):
    /// metal-apiserver stores every event of a batch on its own and answers
    /// with the error of a failed one, hiding the counts (metal-api
    /// reference §3.4). So the batch is split by the answer: the machines
    /// it names were refused and are dropped; the others were taken. No
    /// event is sent again: the machines phone home again by themselves.
    pub fn refused(batch: Vec<PhoneHomeEvent>, error: String) -> Delivery {
        let (rejected, sent) = split_named(batch, &error);
        Delivery {
            sent,
            ..Delivery::refusing(rejected, error)
        }
    }

    /// One failed call whose answer refused `rejected`.
    fn refusing(rejected: Vec<PhoneHomeEvent>, error: String) -> Delivery {
        Delivery {
            calls: 1,
            failed_calls: 1,
            rejected,
            error: Some(error),
            ..Delivery::default()
        }
    }

    /// A batch that was never sent (the request could not be built).
    pub fn not_sent(batch: Vec<PhoneHomeEvent>, error: String) -> Delivery {
        Delivery {
            calls: 0,
            rejected: batch,
            error: Some(error),
            ..Delivery::default()
        }
    }
}

/// The events of `batch` whose machine id the API's answer names, and the
/// others. Machine ids are UUIDs (36 characters): one cannot appear in an
/// answer by accident.
fn split_named(
    batch: Vec<PhoneHomeEvent>,
    answer: &str,
) -> (Vec<PhoneHomeEvent>, Vec<PhoneHomeEvent>) {
    batch
        .into_iter()
        .partition(|e| !e.machine_id.is_empty() && answer.contains(e.machine_id.as_str()))
}

/// The last batch handed to the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastSend {
    #[serde(serialize_with = "unix_time")]
    pub at: Duration,
    /// Events in the batch.
    pub events: usize,
    /// Whether all of it was delivered (nothing kept for later).
    pub ok: bool,
    pub error: Option<String>,
}

/// What `status` shows about phone-home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneHomeSnapshot {
    /// Port → last LLDP neighbour.
    pub neighbors: BTreeMap<String, Neighbor>,
    /// Ports followed and whether they are captured.
    pub ports: BTreeMap<String, PortCapture>,
    /// Machines waiting for the next interval.
    pub pending: Vec<String>,
    pub last_send: Option<LastSend>,
    #[serde(serialize_with = "unix_time_opt")]
    pub last_success: Option<Duration>,
    pub stats: Stats,
}

/// A machine waiting to be reported, and the port it was seen on.
#[derive(Debug, Clone)]
struct Pending {
    ev: PhoneHomeEvent,
    port: String,
}

/// The collector's state.
#[derive(Debug, Clone)]
pub struct Collector {
    max_pending: usize,
    pending: BTreeMap<String, Pending>,
    /// Port → the machines pending from it.
    by_port: BTreeMap<String, BTreeSet<String>>,
    /// Machine → port, of the batch being delivered (to keep what fails).
    in_flight: BTreeMap<String, String>,
    neighbors: BTreeMap<String, Neighbor>,
    ports: BTreeMap<String, PortCapture>,
    last_send: Option<LastSend>,
    last_success: Option<Duration>,
    stats: Stats,
}

impl Default for Collector {
    fn default() -> Self {
        Collector::new(DEFAULT_MAX_PENDING)
    }
}

/// Whether `s` is a UUID in its text form (`8-4-4-4-12` hex digits), as the
/// API's machine ids are.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The machine id in a System Name: a UUID (surrounding blanks aside).
fn machine_id(system_name: Option<&str>) -> Option<&str> {
    system_name.map(str::trim).filter(|s| is_uuid(s))
}

impl Collector {
    /// A collector keeping at most `max_pending` machines (at least 1).
    pub fn new(max_pending: usize) -> Collector {
        Collector {
            max_pending: max_pending.max(1),
            pending: BTreeMap::new(),
            by_port: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            neighbors: BTreeMap::new(),
            ports: BTreeMap::new(),
            last_send: None,
            last_success: None,
            stats: Stats::default(),
        }
    }

    /// A frame `du` arrived on `port` at `now`.
    pub fn observe(&mut self, port: &str, du: &Lldpdu, now: Duration) -> Seen {
        self.stats.frames = self.stats.frames.saturating_add(1);
        if du.ttl == 0 {
            self.neighbors.remove(port);
            return Seen::Shutdown;
        }
        let provisioned = du
            .system_description
            .as_deref()
            .is_some_and(|d| d.contains(PROVISIONED_MARKER));
        let id = machine_id(du.system_name.as_deref())
            .filter(|_| provisioned)
            .map(str::to_owned);
        if provisioned && id.is_none() {
            self.stats.not_a_machine_id = self.stats.not_a_machine_id.saturating_add(1);
        }
        self.neighbors.insert(
            port.to_owned(),
            Neighbor {
                machine_id: id.clone(),
                system_name: du.system_name.clone(),
                system_description: du.system_description.clone(),
                chassis_id: du.chassis_id_string(),
                port_id: du.port_id_string(),
                port_description: du.port_description.clone(),
                ttl: du.ttl,
                last_seen: now,
            },
        );
        let Some(id) = id else {
            return Seen::Neighbor;
        };
        self.stats.phone_home_frames = self.stats.phone_home_frames.saturating_add(1);
        self.add_pending(
            port,
            PhoneHomeEvent {
                machine_id: id.clone(),
                time: now,
                // Sent to the API: escaped like everything from outside.
                message: crate::names::escaped(
                    du.system_description.as_deref().unwrap_or_default(),
                    crate::names::MESSAGE_CHARS,
                ),
            },
        );
        Seen::PhoneHome { machine_id: id }
    }

    /// Insert (newer wins), within the port's share and the total bound:
    /// when either is full, the event seen longest ago of that port (for the
    /// total: of the port holding the most) is dropped and counted.
    fn add_pending(&mut self, port: &str, ev: PhoneHomeEvent) {
        let id = ev.machine_id.clone();
        if let Some(old) = self.pending.get(&id) {
            if old.ev.time > ev.time {
                return;
            }
            let old_port = old.port.clone();
            self.unlink(&old_port, &id);
        }
        if self.by_port.get(port).map_or(0, BTreeSet::len) >= MAX_PENDING_PER_PORT {
            self.drop_oldest_of(port.to_owned());
        }
        if self.pending.len() >= self.max_pending {
            // The port holding the most; of those, the one with the event
            // seen longest ago.
            let oldest = |ids: &BTreeSet<String>| {
                ids.iter()
                    .filter_map(|id| self.pending.get(id).map(|p| p.ev.time))
                    .min()
            };
            let fullest = self
                .by_port
                .iter()
                .max_by_key(|(_, ids)| (ids.len(), std::cmp::Reverse(oldest(ids))))
                .map(|(p, _)| p.clone());
            if let Some(p) = fullest {
                self.drop_oldest_of(p);
            }
        }
        self.by_port
            .entry(port.to_owned())
            .or_default()
            .insert(id.clone());
        self.pending.insert(
            id,
            Pending {
                ev,
                port: port.to_owned(),
            },
        );
    }

    /// Remove machine `id` from the pending set and from `port`'s share.
    fn unlink(&mut self, port: &str, id: &str) {
        self.pending.remove(id);
        if let Some(ids) = self.by_port.get_mut(port) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_port.remove(port);
            }
        }
    }

    /// Drop the event of `port` seen longest ago.
    fn drop_oldest_of(&mut self, port: String) {
        let oldest = self.by_port.get(&port).and_then(|ids| {
            ids.iter()
                .filter_map(|id| self.pending.get(id).map(|p| (p.ev.time, id)))
                .min()
                .map(|(_, id)| id.clone())
        });
        if let Some(id) = oldest {
            self.unlink(&port, &id);
            self.stats.dropped_overflow = self.stats.dropped_overflow.saturating_add(1);
        }
    }

    /// Forget the neighbours whose TTL ran out by `now` (seen at `t` with
    /// TTL `ttl`: valid until `t + ttl`); returns how many. Pending events
    /// stay: the machine did phone home.
    pub fn expire(&mut self, now: Duration) -> usize {
        let before = self.neighbors.len();
        self.neighbors.retain(|_, n| {
            n.last_seen
                .saturating_add(Duration::from_secs(u64::from(n.ttl)))
                >= now
        });
        let expired = before.saturating_sub(self.neighbors.len());
        self.stats.neighbors_expired = self.stats.neighbors_expired.saturating_add(expired as u64);
        expired
    }

    /// A frame on a port could not be used.
    pub fn malformed(&mut self, e: &FrameError) {
        self.stats.malformed.add(e);
    }

    /// The port is captured / cannot be captured now.
    pub fn set_capture(&mut self, port: &str, state: PortCapture) {
        self.ports.insert(port.to_owned(), state);
    }

    /// The port is no longer followed: forget its capture state and neighbour.
    pub fn forget_port(&mut self, port: &str) {
        self.ports.remove(port);
        self.neighbors.remove(port);
    }

    /// How many machines wait to be reported.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Everything pending, as one batch (ordered by machine id); the
    /// pending set is empty afterwards.
    pub fn take_batch(&mut self) -> Vec<PhoneHomeEvent> {
        self.by_port.clear();
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            self.stats.batches = self.stats.batches.saturating_add(1);
        }
        self.in_flight = pending
            .iter()
            .map(|(id, p)| (id.clone(), p.port.clone()))
            .collect();
        pending.into_values().map(|p| p.ev).collect()
    }

    /// Record the result of delivering a batch taken at some point before.
    pub fn delivered(&mut self, d: Delivery, now: Duration) {
        let s = &mut self.stats;
        let ok_calls = d.calls.saturating_sub(d.failed_calls);
        s.sends_ok = s.sends_ok.saturating_add(ok_calls);
        s.sends_failed = s.sends_failed.saturating_add(d.failed_calls);
        let failed: BTreeSet<&str> = d.failed_ids.iter().map(String::as_str).collect();
        let accepted = d
            .sent
            .iter()
            .filter(|e| !failed.contains(e.machine_id.as_str()))
            .count();
        s.events_sent = s.events_sent.saturating_add(accepted as u64);
        s.events_rejected = s
            .events_rejected
            .saturating_add(d.rejected.len() as u64)
            .saturating_add((d.sent.len().saturating_sub(accepted)) as u64);
        let events = d
            .sent
            .len()
            .saturating_add(d.rejected.len())
            .saturating_add(d.kept.len());
        if ok_calls > 0 {
            self.last_success = Some(now);
        }
        self.last_send = Some(LastSend {
            at: now,
            events,
            ok: d.kept.is_empty() && d.error.is_none(),
            error: d.error,
        });
        let in_flight = std::mem::take(&mut self.in_flight);
        for ev in d.kept {
            let port = in_flight.get(&ev.machine_id).cloned().unwrap_or_default();
            self.add_pending(&port, ev);
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The neighbour table, capture states, pending machines and counters.
    pub fn snapshot(&self) -> PhoneHomeSnapshot {
        PhoneHomeSnapshot {
            neighbors: self.neighbors.clone(),
            ports: self.ports.clone(),
            pending: self.pending.keys().cloned().collect(),
            last_send: self.last_send.clone(),
            last_success: self.last_success,
            stats: self.stats.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lldp::frame::Id;

    fn du(name: Option<&str>, desc: Option<&str>, ttl: u16) -> Lldpdu {
        Lldpdu {
            chassis_id: Id {
                subtype: 4,
                value: vec![0x52, 0x54, 0, 0, 0, 1],
            },
            port_id: Id {
                subtype: 5,
                value: b"eth0".to_vec(),
            },
            ttl,
            port_description: Some("eth0".into()),
            system_name: name.map(str::to_owned),
            system_description: desc.map(str::to_owned),
        }
    }

    const A: &str = "00000000-0000-0000-0000-0000000000a1";
    const B: &str = "00000000-0000-0000-0000-0000000000b2";
    const SINCE: &str = "provisioned since 2026-08-01T09:58:12Z";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn provisioned_frames_phone_home_once_per_machine() {
        let mut c = Collector::default();
        assert_eq!(
            c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(10)),
            Seen::PhoneHome {
                machine_id: A.into()
            }
        );
        // The same machine on a second port, later: one event, the last one.
        let later = "provisioned since 2026-08-02T00:00:00Z";
        c.observe("Ethernet4", &du(Some(A), Some(later), 4), secs(12));
        c.observe("Ethernet8", &du(Some(B), Some(SINCE), 4), secs(11));
        assert_eq!(c.pending(), 2);
        let batch = c.take_batch();
        assert_eq!(
            batch,
            vec![
                PhoneHomeEvent {
                    machine_id: A.into(),
                    time: secs(12),
                    message: later.into()
                },
                PhoneHomeEvent {
                    machine_id: B.into(),
                    time: secs(11),
                    message: SINCE.into()
                },
            ]
        );
        assert_eq!(c.pending(), 0);
        let snap = c.snapshot();
        assert_eq!(snap.neighbors["Ethernet0"].machine_id.as_deref(), Some(A));
        assert_eq!(snap.neighbors["Ethernet4"].machine_id.as_deref(), Some(A));
        assert_eq!(snap.neighbors["Ethernet8"].last_seen, secs(11));
        assert_eq!(snap.stats.phone_home_frames, 3);
        assert_eq!(snap.stats.frames, 3);
    }

    #[test]
    fn other_neighbors_are_shown_but_not_reported() {
        let mut c = Collector::default();
        let cases = [
            (Some(A), Some("metal-hammer waiting"), "not provisioned"),
            (Some(A), None, "no description"),
            (None, Some(SINCE), "no name"),
            (Some("  "), Some(SINCE), "blank name"),
            (Some("a\u{7}b"), Some(SINCE), "control character"),
        ];
        for (name, desc, why) in cases {
            assert_eq!(
                c.observe("Ethernet0", &du(name, desc, 120), secs(1)),
                Seen::Neighbor,
                "{why}"
            );
        }
        assert_eq!(c.pending(), 0);
        let n = &c.snapshot().neighbors["Ethernet0"];
        assert_eq!(n.machine_id, None);
        assert_eq!(n.chassis_id, "52:54:00:00:00:01");
        assert_eq!(n.port_id, "eth0");
        // The marker is a substring, as in metal-core.
        assert!(matches!(
            c.observe("Ethernet0", &du(Some(A), Some("unprovisioned"), 4), secs(2)),
            Seen::PhoneHome { .. }
        ));
    }

    #[test]
    fn ttl_zero_forgets_the_neighbor() {
        let mut c = Collector::default();
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(1));
        c.take_batch();
        assert_eq!(
            c.observe("Ethernet0", &du(Some(A), Some(SINCE), 0), secs(2)),
            Seen::Shutdown
        );
        assert!(c.snapshot().neighbors.is_empty());
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn failed_batches_are_kept_and_newer_events_win() {
        let mut c = Collector::default();
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(1));
        c.observe("Ethernet4", &du(Some(B), Some(SINCE), 4), secs(1));
        let batch = c.take_batch();
        // While the call is under way, A is seen again.
        c.observe(
            "Ethernet0",
            &du(Some(A), Some("provisioned again"), 4),
            secs(5),
        );
        c.delivered(Delivery::failed(batch, "unavailable".into()), secs(6));
        let snap = c.snapshot();
        assert_eq!(snap.pending, vec![A.to_owned(), B.to_owned()]);
        assert_eq!(snap.stats.sends_failed, 1);
        assert_eq!(
            snap.last_send,
            Some(LastSend {
                at: secs(6),
                events: 2,
                ok: false,
                error: Some("unavailable".into())
            })
        );
        assert_eq!(snap.last_success, None);
        let batch = c.take_batch();
        assert_eq!(batch[0].message, "provisioned again");
        assert_eq!(batch[1].time, secs(1));
        let outcome = EventOutcome {
            sent: 1,
            failed: vec![B.into()],
        };
        c.delivered(Delivery::sent(batch, outcome), secs(7));
        let snap = c.snapshot();
        assert!(snap.pending.is_empty());
        assert_eq!(snap.stats.sends_ok, 1);
        assert_eq!(snap.stats.events_sent, 1);
        assert_eq!(snap.stats.events_rejected, 1);
        assert_eq!(snap.last_success, Some(secs(7)));
        assert!(snap.last_send.unwrap().ok);
    }

    /// A UUID-shaped machine id `n` (distinct for distinct `n`).
    fn uuid(n: u64) -> String {
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    #[test]
    fn pending_is_bounded_and_drops_the_oldest() {
        let mut c = Collector::new(2);
        let (m1, m2, m3, m9) = (uuid(1), uuid(2), uuid(3), uuid(9));
        for (i, id) in [&m1, &m2, &m3].iter().enumerate() {
            c.observe(
                &format!("Ethernet{i}"),
                &du(Some(id), Some(SINCE), 4),
                secs(10 + i as u64),
            );
        }
        let snap = c.snapshot();
        assert_eq!(snap.pending, vec![m2.clone(), m3.clone()]);
        assert_eq!(snap.stats.dropped_overflow, 1);
        // A known machine does not count against the bound.
        c.observe("Ethernet9", &du(Some(&m3), Some(SINCE), 4), secs(20));
        assert_eq!(c.snapshot().stats.dropped_overflow, 1);
        // Kept events go back under the same bound.
        let batch = c.take_batch();
        c.observe("Ethernet0", &du(Some(&m9), Some(SINCE), 4), secs(30));
        c.delivered(Delivery::failed(batch, "down".into()), secs(31));
        assert_eq!(c.pending(), 2);
        assert_eq!(c.snapshot().pending, vec![m3, m9]);
    }

    /// Issue 22, item 1: only system names that are UUIDs, as the API's
    /// machine ids are, become machine ids; any other name (however
    /// printable) is a neighbour that is shown and never sent.
    #[test]
    fn only_uuid_system_names_become_machine_ids() {
        let mut c = Collector::default();
        for (i, name) in [
            "machine-1",
            "r01leaf01",
            "00000000-0000-0000-0000-0000000000a",
            "00000000-0000-0000-0000-0000000000a1x",
            "00000000_0000-0000-0000-0000000000a1",
            "0000000g-0000-0000-0000-0000000000a1",
            "{00000000-0000-0000-0000-0000000000a1}",
            "\u{202e}00000000-0000-0000-0000-0000000000a1",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(
                c.observe(
                    "Ethernet0",
                    &du(Some(name), Some(SINCE), 120),
                    secs(i as u64)
                ),
                Seen::Neighbor,
                "{name:?}"
            );
            assert_eq!(c.snapshot().neighbors["Ethernet0"].machine_id, None);
        }
        assert_eq!(c.pending(), 0);
        assert_eq!(c.stats().not_a_machine_id, 8);
        assert_eq!(c.stats().phone_home_frames, 0);
        // Upper-case hex and surrounding blanks are still the machine's UUID.
        let upper = "9A0C3B2E-5F1D-4C8B-A7E6-0123456789AB";
        assert!(matches!(
            c.observe("Ethernet4", &du(Some(&format!(" {upper} ")), Some(SINCE), 4), secs(20)),
            Seen::PhoneHome { machine_id } if machine_id == upper
        ));
        assert!(is_uuid(A) && is_uuid(upper) && !is_uuid("m1"));
    }

    /// Issue 22, item 1: 10,000 forged machine ids on one port cannot push
    /// the machines of the other ports out of the queue, and cost one
    /// batch, whose share of that port is bounded.
    #[test]
    fn forged_names_on_one_port_never_push_out_other_ports() {
        let mut c = Collector::default();
        c.observe("Ethernet4", &du(Some(A), Some(SINCE), 4), secs(1));
        c.observe("Ethernet8", &du(Some(B), Some(SINCE), 4), secs(1));
        for n in 0..10_000u64 {
            c.observe(
                "Ethernet0",
                &du(Some(&uuid(0x1000 + n)), Some(SINCE), 4),
                secs(2 + n),
            );
        }
        let snap = c.snapshot();
        assert!(snap.pending.contains(&A.to_owned()), "{:?}", snap.pending);
        assert!(snap.pending.contains(&B.to_owned()), "{:?}", snap.pending);
        assert_eq!(snap.pending.len(), 2 + MAX_PENDING_PER_PORT);
        assert_eq!(
            snap.stats.dropped_overflow,
            10_000 - MAX_PENDING_PER_PORT as u64
        );
        // The newest forged ones of that port are what is left of it.
        assert!(snap.pending.contains(&uuid(0x1000 + 9_999)));
        let batch = c.take_batch();
        assert_eq!(batch.len(), 2 + MAX_PENDING_PER_PORT);
        assert_eq!(c.stats().batches, 1);
        // The total bound holds too, and takes from the fullest port.
        let mut c = Collector::new(6);
        c.observe("Ethernet4", &du(Some(A), Some(SINCE), 4), secs(1));
        for n in 0..20u64 {
            c.observe(
                &format!("Ethernet{}", 100 + n % 2),
                &du(Some(&uuid(n + 1)), Some(SINCE), 4),
                secs(2 + n),
            );
        }
        let snap = c.snapshot();
        assert_eq!(snap.pending.len(), 6);
        assert!(snap.pending.contains(&A.to_owned()), "{:?}", snap.pending);
    }

    /// Issue 22, item 8: a neighbour is forgotten when its TTL runs out
    /// (last seen + TTL), not only by a TTL-0 frame.
    #[test]
    fn neighbours_expire_by_ttl() {
        let mut c = Collector::default();
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(100));
        c.observe("Ethernet4", &du(Some(B), Some("waiting"), 120), secs(100));
        assert_eq!(c.expire(secs(104)), 0);
        assert_eq!(c.snapshot().neighbors.len(), 2);
        assert_eq!(c.expire(secs(105)), 1);
        let snap = c.snapshot();
        assert!(!snap.neighbors.contains_key("Ethernet0"));
        assert!(snap.neighbors.contains_key("Ethernet4"));
        assert_eq!(snap.stats.neighbors_expired, 1);
        // The phone-home it sent is still reported.
        assert_eq!(snap.pending, vec![A.to_owned()]);
        // Seen again: back, and valid for its new TTL.
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(218));
        assert_eq!(c.expire(secs(221)), 1, "Ethernet4's 120 s ran out");
        let snap = c.snapshot();
        assert!(snap.neighbors.contains_key("Ethernet0"));
        assert!(!snap.neighbors.contains_key("Ethernet4"));
    }

    /// Issue 22, item 1: a batch the API refuses in part is split by the
    /// API's answer: the machines it names are dropped and counted, the
    /// others were taken; nothing is kept to be sent again.
    #[test]
    fn a_refused_batch_is_split_by_the_answer() {
        let mut c = Collector::default();
        let c3 = uuid(0xc3);
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(1));
        c.observe("Ethernet4", &du(Some(B), Some(SINCE), 4), secs(1));
        c.observe("Ethernet8", &du(Some(&c3), Some(SINCE), 4), secs(1));
        let batch = c.take_batch();
        let answer = format!("send events: invalid_argument: machine {B}: storing failed");
        c.delivered(Delivery::refused(batch, answer), secs(2));
        let snap = c.snapshot();
        assert!(snap.pending.is_empty(), "{:?}", snap.pending);
        assert_eq!(snap.stats.events_sent, 2);
        assert_eq!(snap.stats.events_rejected, 1);
        assert_eq!(snap.stats.sends_failed, 1);
        // A failed call keeps everything but the machines its answer names.
        c.observe("Ethernet0", &du(Some(A), Some(SINCE), 4), secs(3));
        c.observe("Ethernet4", &du(Some(B), Some(SINCE), 4), secs(3));
        let batch = c.take_batch();
        c.delivered(
            Delivery::failed(batch, format!("internal: machine {A} is locked")),
            secs(4),
        );
        assert_eq!(c.snapshot().pending, vec![B.to_owned()]);
        assert_eq!(c.snapshot().stats.events_rejected, 2);
    }

    #[test]
    fn ports_and_snapshot_json() {
        let mut c = Collector::default();
        c.set_capture("Ethernet0", PortCapture::Open { ifindex: 7 });
        c.set_capture(
            "Ethernet4",
            PortCapture::Unavailable {
                reason: "no such device".into(),
            },
        );
        c.observe(
            "Ethernet0",
            &du(Some(A), Some(SINCE), 4),
            secs(1_775_000_000),
        );
        c.malformed(&FrameError::TooShort { len: 3 });
        let v = serde_json::to_value(c.snapshot()).unwrap();
        assert_eq!(
            v["ports"]["Ethernet0"],
            serde_json::json!({"state": "open", "ifindex": 7})
        );
        assert_eq!(v["ports"]["Ethernet4"]["state"], "unavailable");
        assert_eq!(
            v["neighbors"]["Ethernet0"]["last_seen"],
            "2026-03-31T23:33:20Z"
        );
        assert_eq!(v["stats"]["malformed"]["too_short"], 1);
        c.forget_port("Ethernet0");
        let snap = c.snapshot();
        assert!(!snap.ports.contains_key("Ethernet0"));
        assert!(snap.neighbors.is_empty());
        // Pending events stay: the machine phoned home.
        assert_eq!(snap.pending, vec![A.to_owned()]);
    }
}
