//! FRR: render `frr.conf`, validate it with FRR, install it, reload FRR,
//! roll back, and read BGP neighbour states.
//!
//! [`render`] is pure: a [`SwitchSpec`](crate::spec::SwitchSpec) in, the
//! configuration text out, the same bytes for the same spec. The adapters
//! (feature `agent`) touch only what the configuration names: the installed
//! file and its `.bak` next to it ([`install`]), `vtysh` or the validation
//! unit ([`validate`]), `frr-reload.py` or the reload unit ([`reload`]), and
//! FRR's BGP state through `vtysh` or the state file ([`bgp`]).
//!
//! Invariants: a configuration FRR rejects is never installed; a rendered
//! configuration byte-identical to the installed one causes no validation and
//! no reload; when a reload fails, the previous file is put back and
//! reloaded, and the error reports both outcomes. Behaviour of FRR 8.4 and
//! every deliberate difference from metal-core are in `docs/frr.md`.

pub mod bgp;
pub mod render;
agent! {
    pub(crate) mod command;
    pub mod install;
    pub mod reload;
    pub mod validate;
}

pub use render::render;
