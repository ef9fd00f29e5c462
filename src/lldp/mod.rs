//! Phone-home: LLDP on the switch ports, provisioned machines reported to
//! the metal API.
//!
//! ```text
//! ports (watch: BTreeSet<port name>) ──▶ capture: one AF_PACKET socket per
//!     port (ethertype 0x88cc), async on tokio, re-opened when the netdev
//!     comes back
//!          │ frame bytes
//!          ▼
//!     frame::parse_frame (pure; malformed → counted, dropped)
//!          │ Lldpdu
//!          ▼
//!     collector::Collector (pure): port → neighbour table (TTL), one
//!     pending event per machine (last wins) whose system name is a UUID,
//!     bounded per port and in total
//!          │ every phone_home_interval: one batch, one call
//!          ▼
//!     EventSender (ApiClient::send_events: v1 gRPC with mTLS, v2 Connect)
//!          failures → kept for the next interval; refusals → split by the
//!          API's answer
//! ```
//!
//! - [`frame`], [`collector`]: pure, compiled without the `agent` feature.
//! - [`capture`] (feature `agent`): the packet sockets.
//! - [`phone_home`] (feature `agent`): the task the daemon spawns
//!   ([`PhoneHome::spawn`]) and its handle ([`PhoneHomeHandle::snapshot`]
//!   for `status`).
//!
//! Ports are whatever the caller puts into the watch channel (the daemon:
//! the managed ports that exist in the kernel); this module neither reads
//! CONFIG_DB nor listens to netlink.

pub mod collector;
pub mod frame;
agent! {
    pub mod capture;
    pub mod phone_home;
}

pub use collector::{Collector, Neighbor, PhoneHomeSnapshot, PortCapture};
agent! {
    pub use phone_home::{
        EventSender, PhoneHome, PhoneHomeHandle, PhoneHomeOptions, SendError, SendFailure,
    };
}
