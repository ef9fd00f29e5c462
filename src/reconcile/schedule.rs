//! When the daemon does what (pure: the caller passes the time).
//!
//! The loop feeds the schedule what happened — a trigger, a finished
//! reconcile, a report sent — and asks it what to do next:
//! - triggers coalesce: one reconcile runs for a burst, a fetching trigger
//!   wins over a repair that reuses the last desired state;
//! - the interval timer fires `interval` after the last reconcile started;
//! - a transient failure backs off (1 s doubling up to the interval, ±20 %
//!   jitter, drawn by the caller); a repair that needs no fetch does not wait
//!   for the backoff of a failed fetch (the API being down must not stop the
//!   agent from keeping the switch in its last good state);
//! - CONFIG_DB changing while the agent applied restarts at once, a few
//!   times, then backs off too;
//! - reports caused by state changes (a port, a BGP session) are at least
//!   [`REPORT_MIN_GAP`] apart; the ping and the watchdog have their own
//!   periods;
//! - agents that start at the same moment (a partition powered up, a fleet
//!   updated at once) do not call the API in step: the first interval tick
//!   after the start-up reconcile, and the second ping, come after a random
//!   share (0.5–1.5, drawn by the caller) of their period
//!   ([`Schedule::spread_start`]); every tick after that keeps its phase.

use std::time::{Duration, Instant};

use crate::report::{Outcome, ReconcileResult, Trigger};

/// Shortest pause between two reports caused by state changes.
pub const REPORT_MIN_GAP: Duration = Duration::from_secs(1);
/// Reconciles in a row started at once because CONFIG_DB changed while the
/// agent applied; then the usual backoff.
pub const MAX_IMMEDIATE_RETRIES: u32 = 3;

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Tell systemd the loop is alive.
    Watchdog,
    /// Announce the agent to the API (v2 `ComponentService/Ping`).
    Ping,
    /// Reconcile; `refetch = false` reuses the last desired state.
    Reconcile { trigger: Trigger, refetch: bool },
    /// Report the current port and BGP states.
    Report,
    /// Check the kernel against the expectations (drift).
    KernelCheck,
    /// Nothing before this instant (unless an event arrives).
    Wait(Instant),
}

/// The daemon's timers and pending work.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    next_tick: Instant,
    /// A reconcile that fetches the desired state, asked for.
    fetch: Option<Trigger>,
    /// A reconcile with the last desired state (a repair), asked for.
    repair: Option<Trigger>,
    /// Refetching reconciles wait until then after a transient failure.
    retry_at: Option<Instant>,
    /// The failure being backed off came from a reconcile that fetched.
    failed_fetching: bool,
    failures: u32,
    immediate: u32,
    ping: Option<(Duration, Instant)>,
    watchdog: Option<(Duration, Instant)>,
    report_due: bool,
    last_report: Option<Instant>,
    kernel_check: Option<Instant>,
    /// The first interval after the start-up reconcile, and the first ping
    /// period ([`Schedule::spread_start`]).
    first_interval: Option<Duration>,
    first_ping: Option<Duration>,
}

impl Schedule {
    /// A schedule whose first reconcile (trigger `Startup`) is due at once.
    /// `ping`: the ping period (`None`: no pings); `watchdog`: how often an
    /// idle loop comes round to prove progress to the watchdog's pinger
    /// (`None`: no watchdog).
    pub fn new(
        now: Instant,
        interval: Duration,
        ping: Option<Duration>,
        watchdog: Option<Duration>,
    ) -> Schedule {
        Schedule {
            interval,
            next_tick: now + interval,
            fetch: Some(Trigger::Startup),
            repair: None,
            retry_at: None,
            failed_fetching: false,
            failures: 0,
            immediate: 0,
            ping: ping.map(|p| (p, now)),
            watchdog: watchdog.map(|w| (w, now)),
            report_due: false,
            last_report: None,
            kernel_check: None,
            first_interval: None,
            first_ping: None,
        }
    }

    /// Spread the periodic calls of agents that start together: the first
    /// interval tick after the start-up reconcile comes `draw · interval`
    /// after it, the second ping `draw · period` after the first (`draw`
    /// in 0.5–1.5, drawn by the caller; the start-up reconcile and the
    /// first ping stay at once). Ticks after that keep the phase.
    pub fn spread_start(&mut self, draw: f64) {
        let draw = draw.clamp(0.5, 1.5);
        self.first_interval = Some(self.interval.mul_f64(draw));
        self.first_ping = self.ping.map(|(p, _)| p.mul_f64(draw));
    }

    /// A new interval (SIGHUP); the next tick moves accordingly.
    pub fn set_interval(&mut self, now: Instant, interval: Duration) {
        self.interval = interval;
        self.next_tick = self.next_tick.min(now + interval);
    }

    /// Ask for a reconcile (coalesced with one already asked for).
    pub fn trigger(&mut self, trigger: Trigger, refetch: bool) {
        let slot = if refetch {
            &mut self.fetch
        } else {
            &mut self.repair
        };
        slot.get_or_insert(trigger);
    }

    /// Whether a reconcile is asked for.
    pub fn is_pending(&self) -> bool {
        self.fetch.is_some() || self.repair.is_some()
    }

    /// Ask for a report of the current states.
    pub fn report_soon(&mut self) {
        self.report_due = true;
    }

    /// Check the kernel at `at` (the drift tracker's next check).
    pub fn kernel_check_at(&mut self, at: Instant) {
        self.kernel_check = Some(self.kernel_check.map_or(at, |k| k.min(at)));
    }

    /// A reconcile that started at `started` ended with `outcome`;
    /// `backoff` is the pause to use if it failed transiently (the caller
    /// draws the jitter).
    pub fn reconciled(&mut self, started: Instant, outcome: &Outcome, backoff: Duration) {
        let fetched = outcome.refetched;
        if fetched {
            let interval = self.first_interval.take().unwrap_or(self.interval);
            self.next_tick = started + interval;
        }
        if outcome.retry_now && self.immediate < MAX_IMMEDIATE_RETRIES {
            self.immediate += 1;
            self.trigger(Trigger::Configdb, false);
            return;
        }
        self.immediate = 0;
        let failed = outcome.result.is_failure_or_pending() && outcome.transient;
        if failed {
            self.failures += 1;
            self.retry_at = Some(started + outcome.duration + backoff);
            self.failed_fetching = fetched;
            self.trigger(Trigger::Retry, fetched);
        } else {
            self.failures = 0;
            self.retry_at = None;
        }
    }

    /// Consecutive transient failures (for the backoff's length).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A report was sent at `now`.
    pub fn reported(&mut self, now: Instant) {
        self.report_due = false;
        self.last_report = Some(now);
    }

    /// The ping was sent at `now`.
    pub fn pinged(&mut self, now: Instant) {
        if let Some((p, next)) = &mut self.ping {
            *next = now + self.first_ping.take().unwrap_or(*p);
        }
    }

    /// systemd was told the loop is alive at `now`.
    pub fn watchdog_sent(&mut self, now: Instant) {
        if let Some((p, next)) = &mut self.watchdog {
            *next = now + *p;
        }
    }

    /// The kernel was checked at `now`.
    pub fn kernel_checked(&mut self) {
        self.kernel_check = None;
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        if let Some((_, at)) = self.watchdog
            && now >= at
        {
            return Next::Watchdog;
        }
        if let Some((_, at)) = self.ping
            && now >= at
        {
            return Next::Ping;
        }
        if now >= self.next_tick {
            self.trigger(Trigger::Timer, true);
        }
        let backing_off = self.retry_at.is_some_and(|r| now < r);
        if let Some(trigger) = self.fetch
            && !backing_off
        {
            // A fetching reconcile also repairs.
            self.fetch = None;
            self.repair = None;
            return Next::Reconcile {
                trigger,
                refetch: true,
            };
        }
        // A repair needs no fetch: it does not wait for the backoff of a
        // failed fetch.
        if let Some(trigger) = self.repair
            && (!backing_off || self.failed_fetching)
        {
            self.repair = None;
            return Next::Reconcile {
                trigger,
                refetch: false,
            };
        }
        let report_at = self
            .report_due
            .then(|| self.last_report.map_or(now, |t| t + REPORT_MIN_GAP));
        if let Some(at) = report_at
            && now >= at
        {
            return Next::Report;
        }
        if let Some(at) = self.kernel_check
            && now >= at
        {
            return Next::KernelCheck;
        }
        let wake = [
            Some(self.next_tick),
            self.retry_at.filter(|_| self.is_pending()),
            self.ping.map(|(_, at)| at),
            self.watchdog.map(|(_, at)| at),
            report_at,
            self.kernel_check,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_tick);
        Next::Wait(wake)
    }
}

/// Backoff after `failures` consecutive transient failures: 1 s doubling,
/// at most `max` (the reconcile interval), scaled by `jitter` (0.8–1.2).
pub fn backoff(failures: u32, max: Duration, jitter: f64) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(10))
        .min(max.max(Duration::from_secs(1)));
    base.mul_f64(jitter.clamp(0.8, 1.2))
}

/// Whether an outcome counts as done for the schedule (converged or dry-run).
pub fn settled(o: &Outcome) -> bool {
    matches!(
        o.result,
        ReconcileResult::Converged | ReconcileResult::DryRun
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn outcome(result: ReconcileResult, transient: bool, refetched: bool) -> Outcome {
        let mut o = Outcome::new(1, Trigger::Timer);
        o.result = result;
        o.transient = transient;
        o.refetched = refetched;
        o
    }

    fn converged() -> Outcome {
        outcome(ReconcileResult::Converged, false, true)
    }

    #[test]
    fn starts_with_a_reconcile_then_ticks_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        assert_eq!(
            s.next(t0),
            Next::Reconcile {
                trigger: Trigger::Startup,
                refetch: true
            }
        );
        s.reconciled(t0, &converged(), S);
        assert_eq!(s.next(t0 + S), Next::Wait(t0 + 10 * S));
        assert_eq!(
            s.next(t0 + 10 * S),
            Next::Reconcile {
                trigger: Trigger::Timer,
                refetch: true
            }
        );
    }

    #[test]
    fn agents_that_start_together_call_the_api_apart() {
        let t0 = Instant::now();
        let (mut a, mut b) = (
            Schedule::new(t0, 10 * S, Some(300 * S), None),
            Schedule::new(t0, 10 * S, Some(300 * S), None),
        );
        a.spread_start(0.5);
        b.spread_start(1.25);
        for s in [&mut a, &mut b] {
            // The start-up reconcile and the first ping at once.
            assert_eq!(s.next(t0), Next::Ping);
            s.pinged(t0);
            assert!(matches!(s.next(t0), Next::Reconcile { .. }));
            s.reconciled(t0, &converged(), S);
        }
        // The first interval tick and the second ping: their own phase.
        assert_eq!(a.next(t0 + S), Next::Wait(t0 + 5 * S));
        assert_eq!(b.next(t0 + S), Next::Wait(t0 + 12_500 * MS));
        let tick = |s: &mut Schedule, at: Instant| {
            assert!(
                matches!(s.next(at), Next::Reconcile { .. }),
                "tick at {at:?}"
            );
            s.reconciled(at, &converged(), S);
        };
        tick(&mut a, t0 + 5 * S);
        tick(&mut b, t0 + 12_500 * MS);
        // Then every interval, keeping the phase.
        assert_eq!(a.next(t0 + 6 * S), Next::Wait(t0 + 15 * S));
        assert_eq!(b.next(t0 + 13 * S), Next::Wait(t0 + 22_500 * MS));
        // The second ping after its share of the period, then every period.
        assert_eq!(a.next(t0 + 150 * S), Next::Ping);
        a.pinged(t0 + 150 * S);
        assert!(a.next(t0 + 449 * S) != Next::Ping);
        assert_eq!(a.next(t0 + 450 * S), Next::Ping);
    }

    #[test]
    fn a_burst_of_triggers_is_one_reconcile_and_a_fetch_wins() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        s.reconciled(t0, &converged(), S);
        s.trigger(Trigger::Configdb, false);
        s.trigger(Trigger::Configdb, false);
        s.trigger(Trigger::Reload, true);
        assert_eq!(
            s.next(t0 + S),
            Next::Reconcile {
                trigger: Trigger::Reload,
                refetch: true
            },
            "one reconcile that fetches (and so also repairs)"
        );
        assert_eq!(s.next(t0 + S), Next::Wait(t0 + 10 * S));
    }

    #[test]
    fn a_transient_failure_backs_off_but_a_repair_does_not_wait_for_a_failed_fetch() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        s.reconciled(t0, &outcome(ReconcileResult::Error, true, true), 2 * S);
        assert_eq!(s.failures(), 1);
        // The retry waits for the backoff ...
        assert!(matches!(s.next(t0 + S), Next::Wait(w) if w >= t0 + 2 * S));
        // ... but drift is repaired from the last desired state at once.
        s.trigger(Trigger::Configdb, false);
        assert_eq!(
            s.next(t0 + S),
            Next::Reconcile {
                trigger: Trigger::Configdb,
                refetch: false
            }
        );
        // The retry of the fetch comes after the backoff.
        assert!(matches!(s.next(t0 + S), Next::Wait(w) if w >= t0 + 2 * S));
        assert_eq!(
            s.next(t0 + 3 * S),
            Next::Reconcile {
                trigger: Trigger::Retry,
                refetch: true
            }
        );
    }

    #[test]
    fn a_failed_repair_backs_off_too() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        s.reconciled(t0, &converged(), S);
        s.trigger(Trigger::Configdb, false);
        let _ = s.next(t0 + S);
        s.reconciled(
            t0 + S,
            &outcome(ReconcileResult::Pending, true, false),
            2 * S,
        );
        s.trigger(Trigger::Configdb, false);
        assert!(matches!(s.next(t0 + S), Next::Wait(_)));
    }

    #[test]
    fn an_invalid_desired_state_is_not_retried_before_the_next_tick() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        s.reconciled(t0, &outcome(ReconcileResult::Invalid, false, true), S);
        assert_eq!(s.next(t0 + S), Next::Wait(t0 + 10 * S));
    }

    #[test]
    fn changes_under_an_apply_restart_at_once_a_few_times() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        let mut o = outcome(ReconcileResult::Error, true, false);
        o.retry_now = true;
        for _ in 0..MAX_IMMEDIATE_RETRIES {
            s.reconciled(t0, &o, 5 * S);
            assert_eq!(
                s.next(t0),
                Next::Reconcile {
                    trigger: Trigger::Configdb,
                    refetch: false
                }
            );
        }
        s.reconciled(t0, &o, 5 * S);
        assert!(matches!(s.next(t0), Next::Wait(_)), "then it backs off");
    }

    #[test]
    fn state_change_reports_are_spaced() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, None, None);
        let _ = s.next(t0);
        s.reconciled(t0, &converged(), S);
        s.reported(t0);
        s.report_soon();
        assert_eq!(s.next(t0), Next::Wait(t0 + REPORT_MIN_GAP));
        assert_eq!(s.next(t0 + REPORT_MIN_GAP), Next::Report);
        s.reported(t0 + REPORT_MIN_GAP);
        assert_eq!(s.next(t0 + 2 * S), Next::Wait(t0 + 10 * S));
    }

    #[test]
    fn ping_and_watchdog_have_their_own_periods() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 10 * S, Some(300 * S), Some(30 * S));
        assert_eq!(s.next(t0), Next::Watchdog);
        s.watchdog_sent(t0);
        assert_eq!(s.next(t0), Next::Ping);
        s.pinged(t0);
        let _ = s.next(t0);
        s.reconciled(t0, &converged(), S);
        assert_eq!(s.next(t0 + S), Next::Wait(t0 + 10 * S));
        let _ = s.next(t0 + 10 * S);
        s.reconciled(t0 + 10 * S, &converged(), S);
        let _ = s.next(t0 + 20 * S);
        s.reconciled(t0 + 20 * S, &converged(), S);
        assert_eq!(s.next(t0 + 30 * S), Next::Watchdog);
    }

    #[test]
    fn backoff_doubles_up_to_the_interval() {
        let i = 10 * S;
        assert_eq!(backoff(1, i, 1.0), S);
        assert_eq!(backoff(2, i, 1.0), 2 * S);
        assert_eq!(backoff(4, i, 1.0), 8 * S);
        assert_eq!(backoff(5, i, 1.0), 10 * S);
        assert_eq!(backoff(60, i, 1.0), 10 * S);
        assert_eq!(backoff(1, i, 5.0), S.mul_f64(1.2));
    }
}
