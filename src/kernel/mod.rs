//! The kernel's view of the switch, read over rtnetlink (feature `agent`).
//!
//! - [`netlink`]: a route-netlink socket wrapped in a struct with typed
//!   methods (link dump with operational flags, address dump, the
//!   management address).
//!
//! The socket belongs to the network namespace it was opened in; the agent
//! opens it in its own (SONiC's host namespace, where `eth0` lives).

pub mod netlink;
