//! The kernel's view of the switch.
//!
//! - [`state`] (pure): [`KernelState`](state::KernelState), the interfaces
//!   of one network namespace as plain data — links with kind, flags, MTU,
//!   master and lower device, addresses, bridge-port VLANs — and what the
//!   agent asks of it (port oper state, the VLAN↔VNI map, the management
//!   address).
//! - [`expect`] (pure): what the kernel must show once SONiC processed the
//!   agent's CONFIG_DB state, and [`compare`](expect::compare), which names
//!   every mismatch and the owned CONFIG_DB keys that repair it.
//! - [`drift`] (pure): mismatches over time — grace period, repair spacing,
//!   repairs that do not help.
//! - [`view`] (feature `agent`): the async view that keeps a
//!   `KernelState` current over rtnetlink, with port events and
//!   event-driven waits.
//!
//! The agent only reads the kernel; SONiC's managers own its objects and
//! are repaired through CONFIG_DB.

pub mod drift;
pub mod expect;
pub mod state;
agent! {
    mod decode;
    pub mod view;
}

agent! {
    pub use view::{KernelError, KernelView, NotConverged, ViewOptions, ViewStats};
}
