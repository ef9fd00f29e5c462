//! One reconcile, and the agent that owns everything it touches.
//!
//! [`Agent`] is the one owner of the agent's handles — the live view of
//! SONiC's databases ([`ConfigDb`]), the source of the desired state, the
//! metal API client, the FRR installer, the BGP state source — and of what
//! the last reconcile produced (the desired state, its [`SwitchSpec`], the
//! installed frr.conf). [`Agent::reconcile_once`] is the only sequence of the
//! steps; `apply --once`, `run` and the tests all call it:
//!
//! ```text
//! fetch ─▶ spec ─▶ plan (against what SONiC confirmed) ─▶ write (phases)
//!   ─▶ FRR (render / validate / install / reload) ─▶ verify (plan again:
//!   empty) ─▶ kernel ─▶ outcome (the daemon's reporter tells the world:
//!   `crate::report`)
//! ```
//!
//! Each step is a method of the agent with its own error (`steps`).
//! Invariants: invalid desired state writes nothing; a reconcile is
//! "converged" only when CONFIG_DB matches the desired state, SONiC
//! confirmed it and FRR runs the rendered configuration; when nothing changed
//! since the last converged reconcile (same desired state, no notification
//! from SONiC), it sends nothing to redis and renders nothing.
//!
//! [`prepare`] (pure, also without the `agent` feature) turns a desired
//! state and a CONFIG_DB snapshot into a spec and a plan; [`register`]
//! gathers what the switch registers and registers it until accepted;
//! [`run`] is the daemon around the agent, [`schedule`] its pure timing.

pub mod prepare;
agent! {
    mod agent;
    pub mod desired;
    pub mod options;
    pub mod register;
    pub mod run;
    pub mod schedule;
    mod steps;
}

pub use prepare::{Prepared, prepare};
agent! {
    pub use agent::*;
    pub use options::{AgentOptions, Mode};
    pub use steps::VerifyError;
}
