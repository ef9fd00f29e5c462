//! The report wing: everything the agent tells the world about what it
//! did, fed by one [`Outcome`] per reconcile.
//!
//! ```text
//!  reconcile_once ─▶ Outcome ─┐
//!  kernel / BGP / phone-home ─┼─▶ Reporter ─▶ status.json, STATUS= (systemd)
//!  kernel drift, API calls ───┘      │        metrics (/metrics), log lines
//!                                    └──────▶ the API report (heartbeat / notify)
//! ```
//!
//! - [`vocab`]: how a reconcile ended, what woke it, its stages, where
//!   drift came from, where the desired state came from (pure);
//! - [`outcome`]: what one reconcile did (feature `agent`);
//! - [`status`]: the status record and its file; [`text`]: the record as
//!   text; [`liveness`]: whether the daemon behind a file runs (pure apart
//!   from the file and `/proc`);
//! - [`metrics`]: every metric, in one registry (feature `agent`);
//! - [`api`]: the report of an outcome to the metal API (feature `agent`);
//! - [`Reporter`] (feature `agent`): the value that owns the status record,
//!   the metrics and the channel to systemd and turns outcomes and
//!   observations into all of the above. The daemon's loop decides what
//!   happens; the reporter only tells.

pub mod liveness;
pub mod status;
pub mod text;
pub mod vocab;
agent! {
    pub mod api;
    pub mod metrics;
    pub mod outcome;
    mod reporter;
}

pub use vocab::{DriftSource, LoopPhase, Origin, ReconcileResult, Stage, Trigger};
agent! {
    pub use outcome::{FrrOutcome, Outcome, Stages};
    pub use reporter::{Observed, Reporter, ReporterOptions};
}
