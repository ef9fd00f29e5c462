//! Kernel drift over time: which mismatches have lasted past the grace
//! period, which are due for a repair, and which a repair did not fix
//! (pure; the caller passes the monotonic time).
//!
//! The loop calls [`DriftTracker::observe`] with the current mismatches
//! (from [`compare`](super::expect::compare)) whenever the kernel view or
//! the expectations change and when [`DriftStatus::next_check`] is reached;
//! re-asserts the keys of [`DriftStatus::due`] through CONFIG_DB (in a safe
//! order, never by writing kernel objects); then calls
//! [`DriftTracker::repaired`]. A mismatch is due once it has lasted
//! `grace`; after a repair it gets `grace` again to disappear, and at most
//! `max_repairs` repairs, spaced by at least `min_repair_interval`. One
//! still there after its last repair and another grace period is reported
//! in [`DriftStatus::failed`] and never repaired again until it disappears.
//! One SONiC cannot repair from CONFIG_DB
//! ([`RepairMethod::RestartOnly`](super::expect::RepairMethod::RestartOnly),
//! [`RepairMethod::None`](super::expect::RepairMethod::None)) is reported in [`DriftStatus::unrepairable`]
//! once it lasted `grace`, and never repaired.

use std::collections::BTreeMap;
use std::time::Duration;

use super::expect::{Mismatch, MismatchKind};

/// How patient drift repair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftPolicy {
    /// How long a mismatch must last before it counts as drift.
    pub grace: Duration,
    /// Repairs of one mismatch are at least this far apart.
    pub min_repair_interval: Duration,
    /// Repairs of one mismatch before it is reported as unrepairable.
    pub max_repairs: u32,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy {
            grace: Duration::from_secs(10),
            min_repair_interval: Duration::from_secs(30),
            max_repairs: 3,
        }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    mismatch: Mismatch,
    first_seen: Duration,
    repairs: u32,
    last_repair: Option<Duration>,
}

/// A mismatch the tracker gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRepair {
    pub mismatch: Mismatch,
    pub repairs: u32,
    /// How long it has lasted.
    pub lasted: Duration,
}

/// What to do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftStatus {
    /// Lasted past the grace period and may be repaired now.
    pub due: Vec<Mismatch>,
    /// Repaired `max_repairs` times and still there after the grace period.
    pub failed: Vec<FailedRepair>,
    /// Lasted past the grace period, but writing CONFIG_DB cannot repair it.
    pub unrepairable: Vec<Mismatch>,
    /// Mismatches still inside their grace period or repair spacing.
    pub waiting: usize,
    /// When to call `observe` again even without a change (the earliest
    /// moment something waiting becomes due or failed).
    pub next_check: Option<Duration>,
}

impl DriftStatus {
    /// Drift that is there now (past its grace period).
    pub fn drifting(&self) -> usize {
        self.due.len() + self.failed.len() + self.unrepairable.len()
    }
}

/// Remembers when each mismatch was first seen and how often it was repaired.
#[derive(Debug, Clone, Default)]
pub struct DriftTracker {
    policy: DriftPolicy,
    seen: BTreeMap<(MismatchKind, String), Seen>,
}

impl DriftTracker {
    pub fn new(policy: DriftPolicy) -> DriftTracker {
        DriftTracker {
            policy,
            seen: BTreeMap::new(),
        }
    }

    pub fn policy(&self) -> DriftPolicy {
        self.policy
    }

    /// Forget everything (e.g. when the desired state changed).
    pub fn reset(&mut self) {
        self.seen.clear();
    }

    /// Update with the mismatches present at `now`.
    pub fn observe(&mut self, now: Duration, current: &[Mismatch]) -> DriftStatus {
        let ids: Vec<(MismatchKind, String)> =
            current.iter().map(|m| (m.kind, m.object.clone())).collect();
        self.seen.retain(|id, _| ids.contains(id));
        for (m, id) in current.iter().zip(ids) {
            self.seen
                .entry(id)
                .and_modify(|s| s.mismatch = m.clone())
                .or_insert_with(|| Seen {
                    mismatch: m.clone(),
                    first_seen: now,
                    repairs: 0,
                    last_repair: None,
                });
        }
        let p = self.policy;
        let mut status = DriftStatus::default();
        let next = |t: Duration, status: &mut DriftStatus| {
            status.next_check = Some(status.next_check.map_or(t, |n| n.min(t)));
        };
        for s in self.seen.values() {
            // The moment it becomes due: the grace period after it appeared
            // or after the last repair, and not before the repair spacing.
            let due_at = match s.last_repair {
                None => s.first_seen + p.grace,
                Some(r) => (r + p.grace).max(r + p.min_repair_interval),
            };
            if now < due_at {
                status.waiting += 1;
                next(due_at, &mut status);
            } else if !s.mismatch.method.is_repairable() {
                status.unrepairable.push(s.mismatch.clone());
            } else if s.repairs >= p.max_repairs {
                status.failed.push(FailedRepair {
                    mismatch: s.mismatch.clone(),
                    repairs: s.repairs,
                    lasted: now.saturating_sub(s.first_seen),
                });
            } else {
                status.due.push(s.mismatch.clone());
            }
        }
        status
    }

    /// Record that the keys of `mismatches` were re-asserted at `now`.
    pub fn repaired<'a>(
        &mut self,
        now: Duration,
        mismatches: impl IntoIterator<Item = &'a Mismatch>,
    ) {
        for m in mismatches {
            if let Some(s) = self.seen.get_mut(&(m.kind, m.object.clone())) {
                s.repairs += 1;
                s.last_repair = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configdb::schema::Key;
    use crate::kernel::expect::RepairMethod;

    fn m(kind: MismatchKind, object: &str) -> Mismatch {
        Mismatch {
            kind,
            object: object.into(),
            expected: "x".into(),
            found: "y".into(),
            repair: vec![Key::interface("Ethernet1")],
            method: RepairMethod::Recreate,
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn grace_then_due_then_failed_after_max_repairs() {
        let mut t = DriftTracker::new(DriftPolicy {
            grace: s(10),
            min_repair_interval: s(30),
            max_repairs: 2,
        });
        let a = m(MismatchKind::PortMaster, "port Ethernet1");
        let st = t.observe(s(100), std::slice::from_ref(&a));
        assert_eq!(
            (st.due.len(), st.waiting, st.next_check),
            (0, 1, Some(s(110)))
        );
        let st = t.observe(s(109), std::slice::from_ref(&a));
        assert!(st.due.is_empty());
        let st = t.observe(s(110), std::slice::from_ref(&a));
        assert_eq!(st.due, std::slice::from_ref(&a));
        t.repaired(s(110), &st.due);
        // Spacing: due again only 30 s after the repair.
        let st = t.observe(s(125), std::slice::from_ref(&a));
        assert_eq!((st.due.len(), st.next_check), (0, Some(s(140))));
        let st = t.observe(s(140), std::slice::from_ref(&a));
        assert_eq!(st.due.len(), 1);
        t.repaired(s(140), &st.due);
        let st = t.observe(s(170), std::slice::from_ref(&a));
        assert!(st.due.is_empty());
        assert_eq!(st.failed.len(), 1);
        assert_eq!(st.failed[0].repairs, 2);
        assert_eq!(st.failed[0].lasted, s(70));
        assert_eq!(st.drifting(), 1);
    }

    #[test]
    fn a_mismatch_that_goes_away_starts_over() {
        let mut t = DriftTracker::new(DriftPolicy::default());
        let a = m(MismatchKind::VrfMissing, "VRF device Vrf1");
        t.observe(s(0), std::slice::from_ref(&a));
        let st = t.observe(s(5), &[]);
        assert_eq!(st, DriftStatus::default());
        let st = t.observe(s(12), std::slice::from_ref(&a));
        assert!(st.due.is_empty(), "grace restarts when it reappears");
        assert_eq!(st.next_check, Some(s(22)));
    }

    #[test]
    fn what_sonic_cannot_repair_is_only_reported() {
        let mut t = DriftTracker::new(DriftPolicy::default());
        let mut a = m(MismatchKind::VrfMissing, "VRF device Vrf1");
        a.method = RepairMethod::RestartOnly;
        assert_eq!(t.observe(s(0), std::slice::from_ref(&a)).waiting, 1);
        let st = t.observe(s(10), std::slice::from_ref(&a));
        assert!(st.due.is_empty());
        assert_eq!(st.unrepairable, [a]);
        assert_eq!(st.drifting(), 1);
    }

    #[test]
    fn mismatches_are_tracked_separately() {
        let mut t = DriftTracker::new(DriftPolicy::default());
        let a = m(MismatchKind::PortMtu, "port Ethernet1");
        let b = m(MismatchKind::PortAdmin, "port Ethernet1");
        t.observe(s(0), std::slice::from_ref(&a));
        let st = t.observe(s(10), &[a.clone(), b.clone()]);
        assert_eq!(st.due, [a]);
        assert_eq!(st.waiting, 1);
        assert_eq!(st.next_check, Some(s(20)));
    }
}
