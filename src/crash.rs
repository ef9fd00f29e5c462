//! Crash points: named places of an apply where a test kills the agent
//! (feature `crash-points`; tests only, never in the shipped binary).
//!
//! The [`crash_point!`](crate::crash_point) macro marks a place. With the
//! feature, reaching it
//! - appends its name to the file named by `METAL_SWITCHD_CRASH_TRACE` (once
//!   per name and process), so a test learns which points an apply passes;
//! - kills the process with `SIGKILL` when its name equals
//!   `METAL_SWITCHD_CRASH_AT`: no destructor, no flush, no clean-up, as a
//!   power loss, the OOM killer or `systemctl kill -s KILL` would;
//! - blocks the calling thread for good when its name equals
//!   `METAL_SWITCHD_HANG_AT`: a wedged agent, alive but making no progress
//!   (the watchdog test: its pings must stop).
//!
//! Without the feature the macro expands to nothing (its arguments are only
//! borrowed), so neither the points nor their names nor these variables
//! exist in a release build; `tests/crash_points.rs` checks that the tests'
//! binary has them and `tests/debian_package.rs` that the packaged one has not.
//!
//! The points (`N`: the phase's number, from 1):
//!
//! | name | where |
//! |---|---|
//! | `configdb.pending` | waiting for confirmations SONiC owes before the first write |
//! | `configdb.phase.N.precondition` | waiting for phase N's precondition |
//! | `configdb.phase.N.before-write` | phase N's precondition holds; its `MULTI/EXEC` is next |
//! | `configdb.phase.N.after-write` | phase N is in CONFIG_DB; its barrier is next |
//! | `configdb.phase.N.barrier` | waiting for phase N's barrier (not all confirmed yet) |
//! | `frr.validated` | FRR accepted the new file; nothing installed yet |
//! | `frr.backed-up` | the previous file is in `.bak`; the rename is next |
//! | `frr.installed` | the new file is in place; the reload is next |
//! | `frr.reloaded` | FRR reloaded the new file |
//! | `reconcile.kernel-check` | CONFIG_DB and FRR are done; the kernel check is next |
//!
//! A wait reaches its point only when it has to block.

/// Kill the process when it reaches the point of this name.
#[cfg(feature = "crash-points")]
pub const CRASH_AT_VAR: &str = "METAL_SWITCHD_CRASH_AT";
/// Append the name of every point reached to this file.
#[cfg(feature = "crash-points")]
pub const CRASH_TRACE_VAR: &str = "METAL_SWITCHD_CRASH_TRACE";
/// Block the thread for good when it reaches the point of this name.
#[cfg(feature = "crash-points")]
pub const HANG_AT_VAR: &str = "METAL_SWITCHD_HANG_AT";

/// Whether `var` is one of the crash points' variables (not a configuration
/// key: the configuration loader leaves them alone). Always false without
/// the feature, where the loader rejects them as unknown keys.
pub fn is_crash_var(var: &str) -> bool {
    #[cfg(feature = "crash-points")]
    {
        var == CRASH_AT_VAR || var == CRASH_TRACE_VAR || var == HANG_AT_VAR
    }
    #[cfg(not(feature = "crash-points"))]
    {
        let _ = var;
        false
    }
}

/// Mark a crash point: `crash_point!("configdb.phase.{}.barrier", phase)`.
/// Expands to nothing without the feature `crash-points`.
#[cfg(feature = "crash-points")]
#[macro_export]
macro_rules! crash_point {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::crash::reached(&::std::format!($fmt $(, $arg)*))
    };
}

/// Mark a crash point (feature `crash-points` is off: nothing happens).
#[cfg(not(feature = "crash-points"))]
#[macro_export]
macro_rules! crash_point {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        $(let _ = &$arg;)*
    }};
}

/// The point `name` was reached: trace it, and die (or hang) if it is the one.
#[cfg(feature = "crash-points")]
pub fn reached(name: &str) {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::sync::Mutex;

    static TRACED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    if let Some(path) = std::env::var_os(CRASH_TRACE_VAR) {
        let mut traced = TRACED.lock().unwrap_or_else(|e| e.into_inner());
        if traced.insert(name.to_owned()) {
            let line = format!("{name}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                tracing::error!(point = name, error = %e, "cannot trace a crash point");
            }
        }
    }
    if std::env::var(CRASH_AT_VAR).is_ok_and(|at| at == name) {
        eprintln!("metal-switchd: crash point {name}: SIGKILL");
        // SIGKILL cannot be caught: raise returns only if it could not be sent.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
    if std::env::var(HANG_AT_VAR).is_ok_and(|at| at == name) {
        eprintln!("metal-switchd: crash point {name}: hanging");
        loop {
            std::thread::park();
        }
    }
}
