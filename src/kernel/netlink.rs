//! A blocking route-netlink socket with typed dumps (links, addresses).
//!
//! Dumps are short (one request, a few datagrams) and only happen at
//! registration and once per reconcile, so the socket is blocking; callers
//! on an async runtime accept the sub-millisecond block.
//!
//! Invariant: one request in flight at a time; replies are matched by
//! sequence number and read until `NLMSG_DONE`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::observed::PortOperState;

/// Errors talking to the kernel over netlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a route-netlink socket: {0}")]
    Open(std::io::Error),
    #[error("netlink {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("netlink {what}: cannot decode the kernel's reply: {message}")]
    Decode { what: &'static str, message: String },
    #[error(
        "management interface {interface} does not exist in this network namespace \
         (links: {known}); set management_interface to the interface that carries the \
         switch's management address"
    )]
    NoInterface { interface: String, known: String },
    #[error(
        "management interface {interface} has no global unicast address (found: {found}); \
         the switch registers with its management address, so give {interface} one \
         (DHCP or static) or set management_interface"
    )]
    NoAddress { interface: String, found: String },
}

impl NetlinkError {
    /// A missing interface or address may appear later (DHCP, boot order).
    pub fn is_transient(&self) -> bool {
        !matches!(self, NetlinkError::Open(_) | NetlinkError::Decode { .. })
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFF_UP`.
    pub admin_up: bool,
    /// `IFF_RUNNING`: the operational state metal-core reports.
    pub running: bool,
}

impl Link {
    /// The state reported to the API (`IFF_RUNNING`, like metal-core).
    pub fn oper_state(&self) -> PortOperState {
        if self.running {
            PortOperState::Up
        } else {
            PortOperState::Down
        }
    }
}

/// One interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Link index.
    pub index: u32,
    pub ip: IpAddr,
    pub prefix_len: u8,
}

/// A route-netlink socket in the namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

/// Go's `net.IP.IsGlobalUnicast`: not unspecified, loopback, multicast,
/// link-local or the IPv4 broadcast address. Private ranges count.
pub fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

impl Netlink {
    /// Open a socket in the current thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Open)?;
        socket.bind_auto().map_err(NetlinkError::Open)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Open)?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Send one dump request and collect every reply message.
    fn dump(
        &mut self,
        what: &'static str,
        request: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(request));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|source| NetlinkError::Io { what, source })?;

        let mut out = Vec::new();
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .map_err(|source| NetlinkError::Io { what, source })?;
            let mut offset = 0;
            while offset < data.len() {
                let bytes = &data[offset..];
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| {
                        NetlinkError::Decode {
                            what,
                            message: e.to_string(),
                        }
                    })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetlinkError::Decode {
                        what,
                        message: "zero-length message".into(),
                    });
                }
                offset += len;
                if reply.header.sequence_number != seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(NetlinkError::Io {
                            what,
                            source: e.to_io(),
                        });
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let replies = self.dump(
            "link dump",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some(Link {
                        index: l.header.index,
                        name,
                        admin_up: l.header.flags.contains(LinkFlags::Up),
                        running: l.header.flags.contains(LinkFlags::Running),
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Every address of the namespace, in the kernel's order (IPv4 first).
    pub fn addresses(&mut self) -> Result<Vec<Address>, NetlinkError> {
        let replies = self.dump(
            "address dump",
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            // IFA_LOCAL is the interface's own address on point-to-point
            // links; IFA_ADDRESS otherwise (the same value on broadcast links).
            let local = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = local.or(addr) {
                out.push(Address {
                    index: a.header.index,
                    ip,
                    prefix_len: a.header.prefix_len,
                });
            }
        }
        Ok(out)
    }

    /// Operational state per link name (`IFF_RUNNING`).
    pub fn oper_states(&mut self) -> Result<BTreeMap<String, PortOperState>, NetlinkError> {
        Ok(self
            .links()?
            .into_iter()
            .map(|l| {
                let s = l.oper_state();
                (l.name, s)
            })
            .collect())
    }

    /// The first global unicast address of `interface` (metal-core's
    /// management address: IPv4 before IPv6, in the kernel's order).
    pub fn management_address(&mut self, interface: &str) -> Result<IpAddr, NetlinkError> {
        let links = self.links()?;
        let Some(link) = links.iter().find(|l| l.name == interface) else {
            let mut known: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
            known.truncate(12);
            return Err(NetlinkError::NoInterface {
                interface: interface.to_owned(),
                known: known.join(", "),
            });
        };
        let addrs: Vec<Address> = self
            .addresses()?
            .into_iter()
            .filter(|a| a.index == link.index)
            .collect();
        let mut v4: Vec<IpAddr> = addrs.iter().map(|a| a.ip).filter(IpAddr::is_ipv4).collect();
        v4.extend(addrs.iter().map(|a| a.ip).filter(IpAddr::is_ipv6));
        v4.iter()
            .copied()
            .find(is_global_unicast)
            .ok_or_else(|| NetlinkError::NoAddress {
                interface: interface.to_owned(),
                found: if v4.is_empty() {
                    "none".into()
                } else {
                    v4.iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_unicast_like_go() {
        for (ip, want) in [
            ("10.1.0.11", true),
            ("172.17.0.10", true),
            ("2001:db8::1", true),
            ("fd00::1", true),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("fe80::1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_global_unicast(&ip), want, "{ip}");
        }
    }

    #[test]
    fn loopback_is_listed_in_this_namespace() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        let lo = links
            .iter()
            .find(|l| l.name == "lo")
            .expect("every namespace has lo");
        assert!(lo.admin_up);
        let addrs = nl.addresses().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| a.index == lo.index && a.ip == IpAddr::from([127, 0, 0, 1])),
            "{addrs:?}"
        );
        let e = nl.management_address("lo").unwrap_err();
        assert!(e.to_string().contains("no global unicast address"), "{e}");
        assert!(e.is_transient());
        let e = nl.management_address("no-such-if0").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
