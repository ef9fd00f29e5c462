//! Contested keys: an owned CONFIG_DB entry that another writer keeps
//! changing back (a second agent, metal-core still running in its container
//! during a migration). Pure: times come in as arguments.
//!
//! Every repair of an owned key (a write the desired state did not ask for:
//! CONFIG_DB had been changed under the agent) is recorded. A key repaired
//! more than [`ContestPolicy::repairs`] times within
//! [`ContestPolicy::window`] is *contested*: the agent stops repairing it
//! (it leaves it out of its plans, [`without`]), reports it as "contested by
//! another writer" and goes on with the rest. After [`ContestPolicy::hold`]
//! it tries again, once; a writer still at work makes it contested again
//! within the same limit. So no repair loop runs faster than `repairs` per
//! `window`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::diff::ChangeSet;
use super::plan::{self, Plan};
use super::schema::Key;

/// When a key counts as contested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContestPolicy {
    /// More repairs than this within `window` make a key contested.
    pub repairs: usize,
    pub window: Duration,
    /// How long a contested key is left alone before one more repair.
    pub hold: Duration,
}

impl Default for ContestPolicy {
    /// 5 repairs a minute: a drift repair is rare (an operator's edit);
    /// five within a minute is a writer at work. Held for ten minutes.
    fn default() -> Self {
        ContestPolicy {
            repairs: 5,
            window: Duration::from_secs(60),
            hold: Duration::from_secs(600),
        }
    }
}

/// The repairs per key and the keys found contested.
#[derive(Debug, Clone, Default)]
pub struct Contest {
    policy: ContestPolicy,
    repairs: BTreeMap<Key, VecDeque<Instant>>,
    /// Contested keys and since when.
    contested: BTreeMap<Key, Instant>,
}

impl Contest {
    pub fn new(policy: ContestPolicy) -> Contest {
        Contest {
            policy,
            ..Contest::default()
        }
    }

    /// `keys` were repaired at `now`; returns the keys that became
    /// contested by it.
    pub fn repaired<'a>(
        &mut self,
        now: Instant,
        keys: impl IntoIterator<Item = &'a Key>,
    ) -> Vec<Key> {
        let mut newly = Vec::new();
        for key in keys {
            if self.contested.contains_key(key) {
                continue;
            }
            let times = self.repairs.entry(key.clone()).or_default();
            times.push_back(now);
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > self.policy.window)
            {
                times.pop_front();
            }
            if times.len() > self.policy.repairs {
                self.repairs.remove(key);
                self.contested.insert(key.clone(), now);
                newly.push(key.clone());
            }
        }
        // Keys not repaired for a window are forgotten (bounded memory).
        let window = self.policy.window;
        self.repairs.retain(|_, t| {
            t.back()
                .is_some_and(|last| now.saturating_duration_since(*last) <= window)
        });
        newly
    }

    /// Release the keys held for longer than the hold time (each gets one
    /// more repair); returns them.
    pub fn release_due(&mut self, now: Instant) -> Vec<Key> {
        let hold = self.policy.hold;
        let due: Vec<Key> = self
            .contested
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= hold)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            self.contested.remove(k);
            // One more repair makes it contested again at once.
            self.repairs.insert(
                k.clone(),
                std::iter::repeat_n(now, self.policy.repairs).collect(),
            );
        }
        due
    }

    /// Forget everything (SIGHUP: the operator may have stopped the other
    /// writer).
    pub fn clear(&mut self) {
        self.repairs.clear();
        self.contested.clear();
    }

    /// The contested keys, in key order.
    pub fn contested(&self) -> impl Iterator<Item = &Key> {
        self.contested.keys()
    }

    pub fn is_contested(&self, key: &Key) -> bool {
        self.contested.contains_key(key)
    }

    /// When the next contested key is released.
    pub fn next_release(&self) -> Option<Instant> {
        self.contested.values().min().map(|t| *t + self.policy.hold)
    }

    /// The report line: `None` without contested keys.
    pub fn problem(&self) -> Option<String> {
        if self.contested.is_empty() {
            return None;
        }
        let keys: Vec<String> = self.contested.keys().map(Key::to_string).collect();
        Some(format!(
            "CONFIG_DB {} contested by another writer (repaired more than {} times within \
             {:?}); not repaired for {:?}: {}",
            if keys.len() == 1 { "key" } else { "keys" },
            self.policy.repairs,
            self.policy.window,
            self.policy.hold,
            keys.join(", ")
        ))
    }
}

/// `plan` without the changes of `skip` (planned again from the rest, so
/// that phases and barriers fit what is written); `pending` stays.
pub fn without(plan: Plan, skip: &dyn Fn(&Key) -> bool) -> Plan {
    if !plan.iter_changes().any(|c| skip(&c.key)) {
        return plan;
    }
    let changes = plan
        .iter_changes()
        .filter(|c| !skip(&c.key))
        .cloned()
        .collect();
    let mut again = plan::plan(ChangeSet { changes });
    again.pending = plan.pending;
    again
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configdb::schema::Table;

    fn policy() -> ContestPolicy {
        ContestPolicy {
            repairs: 3,
            window: Duration::from_secs(60),
            hold: Duration::from_secs(600),
        }
    }

    #[test]
    fn more_than_n_repairs_in_the_window_contest_a_key() {
        let t0 = Instant::now();
        let s = |x: u64| t0 + Duration::from_secs(x);
        let port = Key::new(Table::Port, "Ethernet1");
        let vlan = Key::new(Table::Vlan, "Vlan1001");
        let mut c = Contest::new(policy());
        // Three repairs a minute apart and one more: never more than three
        // within a window.
        for x in [0, 61, 122, 183] {
            assert!(c.repaired(s(x), [&port]).is_empty());
        }
        assert_eq!(c.problem(), None);
        // Four within a minute.
        for x in [250, 260, 270] {
            assert!(c.repaired(s(x), [&port, &vlan]).is_empty());
        }
        assert_eq!(c.repaired(s(280), [&port]), std::slice::from_ref(&port));
        assert!(c.is_contested(&port));
        assert!(!c.is_contested(&vlan));
        // A contested key is not counted again.
        assert!(c.repaired(s(281), [&port]).is_empty());
        let p = c.problem().unwrap();
        assert!(p.contains("contested by another writer"), "{p}");
        assert!(p.contains("PORT|Ethernet1"), "{p}");
        // Held, then one more repair, then contested again at once.
        assert!(c.release_due(s(879)).is_empty());
        assert_eq!(c.next_release(), Some(s(880)));
        assert_eq!(c.release_due(s(880)), std::slice::from_ref(&port));
        assert!(!c.is_contested(&port));
        assert_eq!(c.repaired(s(881), [&port]), std::slice::from_ref(&port));
        c.clear();
        assert_eq!(c.contested().count(), 0);
    }
}
