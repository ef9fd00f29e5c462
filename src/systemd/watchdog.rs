//! The watchdog's honesty: `WATCHDOG=1` only while the loop proves progress
//! (feature `agent`).
//!
//! systemd restarts a service whose pings stop (`WatchdogSec=`). Pinging
//! from a timer of its own would keep a wedged agent alive; pinging only
//! between reconciles kills an agent that waits, rightly, for longer than
//! the watchdog interval (registration while the API is down or SONiC not
//! initialised, a barrier, an FRR reload, API retries). So the loop and the
//! pinger share a [`Liveness`]:
//! - the loop stamps it ([`Liveness::beat`]) every time it comes round, and
//!   at least every quarter of the interval while idle;
//! - a step allowed to take long opens a [`Step`] with the longest time it
//!   may take without progress ([`Liveness::step`]); it counts as progress
//!   while within that bound, and reports progress of its own
//!   ([`Liveness::progress`], e.g. registration at every attempt), which
//!   starts the bound anew;
//! - the pinger ([`Pinger`], a thread of its own, so that even a loop that
//!   blocks its runtime's thread is judged) sends `WATCHDOG=1` every
//!   quarter of the interval while the stamp is younger than half the
//!   interval or the innermost open step is within its bound — and nothing
//!   otherwise, with one error in the log naming what stalled.
//!
//! The verdict ([`Liveness::verdict`]) is a plain function of the stamps and
//! a time, tested without a clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::notify::Notifier;

/// The loop's proof of progress, shared with the [`Pinger`].
#[derive(Clone)]
pub struct Liveness {
    inner: Arc<Inner>,
}

struct Inner {
    origin: Instant,
    /// The last beat, in ms since `origin`.
    beat_ms: AtomicU64,
    /// Open steps, innermost last.
    steps: Mutex<Vec<OpenStep>>,
    next_id: AtomicU64,
}

#[derive(Debug, Clone)]
struct OpenStep {
    id: u64,
    what: &'static str,
    bound: Duration,
    /// Last progress (or the start).
    progress: Instant,
}

impl std::fmt::Debug for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Liveness")
            .field("steps", &self.steps())
            .finish_non_exhaustive()
    }
}

/// What the pinger concludes at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The loop beat recently.
    Beating,
    /// A long step is within its bound.
    InStep(&'static str),
    /// No progress: the last beat is `since` old; `step` names the open
    /// step that overran its bound, if any.
    Stalled {
        since: Duration,
        step: Option<&'static str>,
    },
}

impl Verdict {
    pub fn is_alive(&self) -> bool {
        !matches!(self, Verdict::Stalled { .. })
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new()
    }
}

impl Liveness {
    /// A liveness that just beat.
    pub fn new() -> Liveness {
        Liveness {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                beat_ms: AtomicU64::new(0),
                steps: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OpenStep>> {
        self.inner.steps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn steps(&self) -> Vec<&'static str> {
        self.lock().iter().map(|s| s.what).collect()
    }

    /// The loop came round.
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.inner.origin).as_millis();
        self.inner
            .beat_ms
            .fetch_max(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Open a step that may take up to `bound` without progress; it ends
    /// (and the loop beats) when the returned guard is dropped.
    pub fn step(&self, what: &'static str, bound: Duration) -> Step {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(OpenStep {
            id,
            what,
            bound,
            progress: Instant::now(),
        });
        Step {
            liveness: self.clone(),
            id,
        }
    }

    /// The innermost open step made progress: its bound starts anew.
    pub fn progress(&self) {
        if let Some(s) = self.lock().last_mut() {
            s.progress = Instant::now();
        }
    }

    /// Whether the loop counts as alive at `now`: it beat within `fresh`,
    /// or its innermost open step is within its bound.
    pub fn verdict(&self, now: Instant, fresh: Duration) -> Verdict {
        let beat =
            self.inner.origin + Duration::from_millis(self.inner.beat_ms.load(Ordering::Relaxed));
        let since = now.saturating_duration_since(beat);
        if since <= fresh {
            return Verdict::Beating;
        }
        match self.lock().last() {
            Some(s) if now.saturating_duration_since(s.progress) <= s.bound => {
                Verdict::InStep(s.what)
            }
            Some(s) => Verdict::Stalled {
                since,
                step: Some(s.what),
            },
            None => Verdict::Stalled { since, step: None },
        }
    }
}

/// An open long step (see [`Liveness::step`]); closed on drop.
#[must_use = "the step ends when this is dropped"]
pub struct Step {
    liveness: Liveness,
    id: u64,
}

impl Step {
    /// The step made progress: its bound starts anew.
    pub fn progress(&self) {
        if let Some(s) = self.liveness.lock().iter_mut().find(|s| s.id == self.id) {
            s.progress = Instant::now();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.liveness.lock().retain(|s| s.id != self.id);
        self.liveness.beat();
    }
}

/// Sends `WATCHDOG=1` while the [`Liveness`] says the loop is alive; stops
/// when dropped.
pub struct Pinger {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pinger {
    /// How often the loop must beat while idle for `interval`
    /// (`WatchdogSec=`): a quarter of it, so that a beat is never older
    /// than half the interval when the pinger looks.
    pub fn beat_period(interval: Duration) -> Duration {
        interval / 4
    }

    /// Start pinging `notifier` for a watchdog of `interval`; `None` when
    /// the thread cannot be started (the error says so).
    pub fn spawn(
        notifier: Arc<Notifier>,
        liveness: Liveness,
        interval: Duration,
    ) -> std::io::Result<Pinger> {
        let (stop, stopped) = mpsc::channel::<()>();
        let tick = Pinger::beat_period(interval).max(Duration::from_millis(1));
        let fresh = interval / 2;
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut stalled = false;
                loop {
                    let verdict = liveness.verdict(Instant::now(), fresh);
                    match &verdict {
                        Verdict::Stalled { since, step } => {
                            if !stalled {
                                match step {
                                    Some(what) => tracing::error!(
                                        step = what,
                                        since_last_beat = ?since,
                                        "the loop overran the bound of its step; WATCHDOG=1 \
                                         withheld, systemd restarts the agent after WatchdogSec"
                                    ),
                                    None => tracing::error!(
                                        since_last_beat = ?since,
                                        "the loop made no progress; WATCHDOG=1 withheld, \
                                         systemd restarts the agent after WatchdogSec"
                                    ),
                                }
                            }
                            stalled = true;
                        }
                        _ => {
                            if stalled {
                                tracing::warn!("the loop makes progress again; WATCHDOG=1 resumed");
                            }
                            stalled = false;
                            if let Err(e) = notifier.watchdog() {
                                tracing::warn!(error = %e, "WATCHDOG=1 not sent");
                            }
                        }
                    }
                    match stopped.recv_timeout(tick) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(Pinger {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Duration = Duration::from_secs(30);

    #[test]
    fn a_recent_beat_is_alive_an_old_one_is_not() {
        let l = Liveness::new();
        let t0 = l.inner.origin;
        assert_eq!(l.verdict(t0 + FRESH, FRESH), Verdict::Beating);
        assert_eq!(
            l.verdict(t0 + FRESH * 2, FRESH),
            Verdict::Stalled {
                since: FRESH * 2,
                step: None
            }
        );
        l.beat_at(t0 + FRESH);
        assert_eq!(l.verdict(t0 + FRESH * 2, FRESH), Verdict::Beating);
        // A beat never moves back.
        l.beat_at(t0);
        assert_eq!(l.verdict(t0 + FRESH * 2, FRESH), Verdict::Beating);
    }

    #[test]
    fn a_step_is_alive_within_its_bound_and_progress_renews_it() {
        let l = Liveness::new();
        let step = l.step("registering", Duration::from_secs(100));
        let started = l.lock()[0].progress;
        let v = |after: u64| l.verdict(started + Duration::from_secs(after), FRESH);
        assert_eq!(v(90), Verdict::InStep("registering"));
        assert_eq!(
            v(101),
            Verdict::Stalled {
                since: v(101).since().unwrap(),
                step: Some("registering")
            }
        );
        step.progress();
        let renewed = l.lock()[0].progress;
        assert!(renewed >= started);
        assert_eq!(
            l.verdict(renewed + Duration::from_secs(99), FRESH),
            Verdict::InStep("registering")
        );
        // The innermost step decides: an inner step that overran is not
        // covered by a generous outer one.
        let _inner = l.step("reloading FRR", Duration::from_secs(1));
        let inner_start = l.lock()[1].progress;
        assert!(
            !l.verdict(inner_start + FRESH + Duration::from_secs(2), FRESH)
                .is_alive()
        );
        drop(_inner);
        // Closing a step is a beat.
        assert_eq!(l.verdict(Instant::now(), FRESH), Verdict::Beating);
        drop(step);
        assert!(l.steps().is_empty());
    }

    impl Verdict {
        fn since(&self) -> Option<Duration> {
            match self {
                Verdict::Stalled { since, .. } => Some(*since),
                _ => None,
            }
        }
    }
}
