//! LLDP capture on one port: a raw `AF_PACKET` socket bound to the port's
//! netdev and to EtherType 0x88cc, async on tokio (feature `agent`).
//!
//! - The kernel delivers only LLDP frames (the socket's protocol); frames
//!   the switch itself sends are skipped (`PACKET_IGNORE_OUTGOING`, and the
//!   packet type is checked too).
//! - The socket joins the three LLDP group addresses, so a NIC that filters
//!   multicast still passes the frames (libpcap's promiscuous mode, which
//!   metal-core uses, is not needed).
//! - A frame larger than [`MAX_FRAME_LEN`] is reported as
//!   [`Received::Oversized`] (its real length is learnt with `MSG_TRUNC`).
//! - A socket belongs to the network namespace it was opened in, and to the
//!   netdev's ifindex: when the netdev is deleted and created again, the
//!   socket must be opened anew ([`PacketSocket::is_current`]).
//!
//! This is the only `unsafe` code of the agent: four libc calls with sizes
//! and pointers taken from local values.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::frame::{ETHERTYPE_LLDP, MAX_FRAME_LEN};

/// LLDP group addresses: nearest bridge, nearest non-TPMR bridge, nearest
/// customer bridge (IEEE 802.1AB §7.1).
pub const LLDP_GROUPS: [[u8; 6]; 3] = [
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e],
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x03],
    [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00],
];

/// Errors of a port's capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("port {port}: no such network device")]
    NoDevice { port: String },
    #[error("port {port}: {what}: {source}")]
    Io {
        port: String,
        what: &'static str,
        source: io::Error,
    },
}

/// One thing read from the socket.
#[derive(Debug)]
pub enum Received<'a> {
    /// A frame of the port.
    Frame(&'a [u8]),
    /// A frame longer than [`MAX_FRAME_LEN`] (its length).
    Oversized(usize),
    /// The netdev went down (the socket stays bound and resumes on up).
    Down,
}

/// The ifindex of a netdev in this thread's network namespace.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// A packet socket receiving the LLDP frames of one netdev.
pub struct PacketSocket {
    port: String,
    ifindex: u32,
    fd: AsyncFd<OwnedFd>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for PacketSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketSocket")
            .field("port", &self.port)
            .field("ifindex", &self.ifindex)
            .finish()
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` points to a live `T` of `len` bytes; the fd is open.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl PacketSocket {
    /// Open a socket on `port` (a netdev of this thread's namespace).
    pub fn open(port: &str) -> Result<PacketSocket, CaptureError> {
        let io_err = |what: &'static str| {
            let source = io::Error::last_os_error();
            CaptureError::Io {
                port: port.to_owned(),
                what,
                source,
            }
        };
        let ifindex = ifindex(port).ok_or_else(|| CaptureError::NoDevice {
            port: port.to_owned(),
        })?;
        let proto = ETHERTYPE_LLDP.to_be();
        // SAFETY: plain socket(2) call; the result is checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(io_err("socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh, open descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let ifindex_c = i32::try_from(ifindex).map_err(|_| CaptureError::NoDevice {
            port: port.to_owned(),
        })?;
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex_c;
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
            .map_err(|_| io_err("bind"))?;
        // SAFETY: `addr` is a live sockaddr_ll of `len` bytes.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if r != 0 {
            let source = io::Error::last_os_error();
            // The netdev vanished between the lookup and the bind.
            if source.raw_os_error() == Some(libc::ENODEV) {
                return Err(CaptureError::NoDevice {
                    port: port.to_owned(),
                });
            }
            return Err(CaptureError::Io {
                port: port.to_owned(),
                what: "bind",
                source,
            });
        }
        for group in LLDP_GROUPS {
            let mut address = [0u8; 8];
            for (d, s) in address.iter_mut().zip(group) {
                *d = s;
            }
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex_c,
                mr_type: libc::PACKET_MR_MULTICAST as u16,
                mr_alen: 6,
                mr_address: address,
            };
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq).map_err(
                |source| CaptureError::Io {
                    port: port.to_owned(),
                    what: "PACKET_ADD_MEMBERSHIP",
                    source,
                },
            )?;
        }
        // Kernels before 4.20 lack it; the packet type check below covers them.
        let _ = setsockopt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        );
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open
        // (and is not reused) for as long as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(
            |source| CaptureError::Io {
                port: port.to_owned(),
                what: "registering with tokio",
                source: source.into(),
            },
        )?;
        Ok(PacketSocket {
            port: port.to_owned(),
            ifindex,
            fd,
            buf: vec![0; MAX_FRAME_LEN.saturating_add(1)],
        })
    }

    pub fn port(&self) -> &str {
        &self.port
    }

    /// The ifindex the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the port's name still names the netdev the socket is bound to.
    pub fn is_current(&self) -> bool {
        ifindex(&self.port) == Some(self.ifindex)
    }

    /// The next frame (or event) of the port.
    pub async fn recv(&mut self) -> Result<Received<'_>, CaptureError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| CaptureError::Io {
                    port: self.port.clone(),
                    what: "waiting for frames",
                    source,
                })?;
            let buf = &mut self.buf;
            match guard.try_io(|fd| recv_from(fd.get_ref(), buf)) {
                Err(_would_block) => continue,
                Ok(Ok((_, true))) => continue,
                Ok(Ok((len, false))) => {
                    if len > MAX_FRAME_LEN {
                        return Ok(Received::Oversized(len));
                    }
                    let frame = self.buf.get(..len).unwrap_or_default();
                    return Ok(Received::Frame(frame));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    return Ok(Received::Down);
                }
                Ok(Err(source)) => {
                    return Err(CaptureError::Io {
                        port: self.port.clone(),
                        what: "recvfrom",
                        source,
                    });
                }
            }
        }
    }
}

/// One `recvfrom`: the frame's real length and whether it was outgoing.
fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut from_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `buf` is writable for its length; `from` is a live sockaddr_ll
    // and `from_len` its size.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            std::ptr::from_mut(&mut from).cast::<libc::sockaddr>(),
            &mut from_len,
        )
    };
    let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    Ok((len, from.sll_pkttype == libc::PACKET_OUTGOING))
}
