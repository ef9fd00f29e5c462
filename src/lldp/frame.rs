//! LLDP frames: an Ethernet frame carrying an LLDPDU, parsed with bounds
//! checks (pure; IEEE 802.1AB TLV layout).
//!
//! ```text
//! dst(6) src(6) [0x8100|0x88a8 TCI(2)] 0x88cc  TLV TLV ... [End]
//! TLV = type(7 bits) length(9 bits) value(length)
//! ```
//!
//! The first three TLVs must be Chassis ID (1), Port ID (2) and Time To
//! Live (3), in that order and only once. Port Description (4), System Name
//! (5) and System Description (6) are read (the last one wins when one is
//! repeated, as in gopacket, which metal-core's receiver uses); every other
//! type is skipped. End of LLDPDU (0, length 0) ends the PDU and anything
//! after it (Ethernet padding) is ignored; a PDU without End ends with the
//! frame. Strings are decoded as UTF-8, invalid bytes replaced.
//!
//! Every malformed input is a [`FrameError`], never a panic: the module
//! denies `clippy::indexing_slicing`, and a property test feeds it
//! arbitrary bytes.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;

use serde::Serialize;

/// EtherType of LLDP.
pub const ETHERTYPE_LLDP: u16 = 0x88cc;
/// EtherTypes of a VLAN tag in front of the LLDP EtherType (802.1Q, 802.1ad).
const ETHERTYPE_VLAN: [u16; 2] = [0x8100, 0x88a8];
/// Largest frame accepted: a SONiC port's largest MTU (9100) plus headers,
/// rounded up to the usual 9216.
pub const MAX_FRAME_LEN: usize = 9216;
/// Length of an Ethernet header without a VLAN tag.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// The nearest-bridge LLDP group address, where go-lldpd sends.
pub const LLDP_NEAREST_BRIDGE: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];

/// TLV types this parser knows by name.
const TLV_END: u8 = 0;
const TLV_CHASSIS_ID: u8 = 1;
const TLV_PORT_ID: u8 = 2;
const TLV_TTL: u8 = 3;
const TLV_PORT_DESCRIPTION: u8 = 4;
const TLV_SYSTEM_NAME: u8 = 5;
const TLV_SYSTEM_DESCRIPTION: u8 = 6;

/// Chassis ID subtype "MAC address" and Port ID subtype "MAC address".
const CHASSIS_SUBTYPE_MAC: u8 = 4;
const PORT_SUBTYPE_MAC: u8 = 3;
/// Network address subtypes (chassis 5, port 4): IANA family + address.
const CHASSIS_SUBTYPE_NETWORK: u8 = 5;
const PORT_SUBTYPE_NETWORK: u8 = 4;

fn tlv_name(t: u8) -> &'static str {
    match t {
        TLV_END => "End of LLDPDU",
        TLV_CHASSIS_ID => "Chassis ID",
        TLV_PORT_ID => "Port ID",
        TLV_TTL => "Time To Live",
        TLV_PORT_DESCRIPTION => "Port Description",
        TLV_SYSTEM_NAME => "System Name",
        TLV_SYSTEM_DESCRIPTION => "System Description",
        7 => "System Capabilities",
        8 => "Management Address",
        127 => "Organizationally Specific",
        _ => "reserved",
    }
}

/// Why a frame is not a usable LLDPDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes is shorter than an Ethernet header")]
    TooShort { len: usize },
    #[error("frame of {len} bytes is longer than {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("EtherType {ethertype:#06x} is not LLDP (0x88cc)")]
    NotLldp { ethertype: u16 },
    #[error(
        "TLV #{index} at byte {offset} is cut off: {needed} bytes needed, {available} left in the frame"
    )]
    Truncated {
        index: usize,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("the LLDPDU has no {missing} TLV (the first three must be Chassis ID, Port ID, TTL)")]
    Missing { missing: &'static str },
    #[error("TLV #{index} is {found} (type {found_type}) where {expected} must be")]
    OutOfOrder {
        index: usize,
        expected: &'static str,
        found: &'static str,
        found_type: u8,
    },
    #[error("a second {tlv} TLV (#{index}); it may appear only once, as TLV #{first}")]
    Duplicate {
        tlv: &'static str,
        index: usize,
        first: usize,
    },
    #[error("{tlv} TLV has length {len}; it must be {allowed}")]
    BadLength {
        tlv: &'static str,
        len: usize,
        allowed: &'static str,
    },
}

impl FrameError {
    /// A short, fixed label per kind (for counters and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::TooShort { .. } => "too_short",
            FrameError::TooLong { .. } => "too_long",
            FrameError::NotLldp { .. } => "not_lldp",
            FrameError::Truncated { .. } => "truncated",
            FrameError::Missing { .. } => "missing_tlv",
            FrameError::OutOfOrder { .. } => "out_of_order",
            FrameError::Duplicate { .. } => "duplicate_tlv",
            FrameError::BadLength { .. } => "bad_length",
        }
    }
}

/// A Chassis ID or Port ID: its subtype and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id {
    pub subtype: u8,
    pub value: Vec<u8>,
}

impl Id {
    fn render(&self, mac_subtype: u8, network_subtype: u8) -> String {
        if self.subtype == mac_subtype
            && let Ok(mac) = <[u8; 6]>::try_from(self.value.as_slice())
        {
            return format_mac(&mac);
        }
        if self.subtype == network_subtype
            && let Some((family, addr)) = self.value.split_first()
        {
            // IANA address family numbers: 1 = IPv4, 2 = IPv6.
            if *family == 1
                && let Ok(a) = <[u8; 4]>::try_from(addr)
            {
                return std::net::Ipv4Addr::from(a).to_string();
            }
            if *family == 2
                && let Ok(a) = <[u8; 16]>::try_from(addr)
            {
                return std::net::Ipv6Addr::from(a).to_string();
            }
        }
        // A machine chooses it: shown escaped (control and format
        // characters such as U+202E), at most 255 bytes by the TLV's length.
        crate::names::escaped(
            &String::from_utf8_lossy(&self.value),
            crate::names::MESSAGE_CHARS,
        )
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The TLVs of an LLDPDU this agent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lldpdu {
    pub chassis_id: Id,
    pub port_id: Id,
    /// Seconds the information is valid; 0 = the sender shuts down.
    pub ttl: u16,
    pub port_description: Option<String>,
    pub system_name: Option<String>,
    pub system_description: Option<String>,
}

impl Lldpdu {
    /// The chassis id for people: a MAC or IP address, else the text.
    pub fn chassis_id_string(&self) -> String {
        self.chassis_id
            .render(CHASSIS_SUBTYPE_MAC, CHASSIS_SUBTYPE_NETWORK)
    }

    /// The port id for people: a MAC or IP address, else the text.
    pub fn port_id_string(&self) -> String {
        self.port_id.render(PORT_SUBTYPE_MAC, PORT_SUBTYPE_NETWORK)
    }
}

/// An Ethernet frame with an LLDPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LldpFrame {
    pub destination: [u8; 6],
    pub source: [u8; 6],
    /// The VLAN id of a tag in front of the LLDP EtherType, if any.
    pub vlan: Option<u16>,
    pub lldpdu: Lldpdu,
}

impl fmt::Display for LldpFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LLDP from {} chassis {} port {} ttl {}s",
            format_mac(&self.source),
            self.lldpdu.chassis_id_string(),
            self.lldpdu.port_id_string(),
            self.lldpdu.ttl
        )
    }
}

/// Counts of frames that were not usable, by [`FrameError::kind`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MalformedCounts(pub std::collections::BTreeMap<&'static str, u64>);

impl MalformedCounts {
    pub fn add(&mut self, e: &FrameError) {
        let n = self.0.entry(e.kind()).or_insert(0);
        *n = n.saturating_add(1);
    }
    pub fn total(&self) -> u64 {
        self.0.values().fold(0u64, |a, b| a.saturating_add(*b))
    }
}

fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Parse an Ethernet frame (without FCS) carrying an LLDPDU.
pub fn parse_frame(frame: &[u8]) -> Result<LldpFrame, FrameError> {
    if frame.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLong {
            len: frame.len(),
            max: MAX_FRAME_LEN,
        });
    }
    let too_short = FrameError::TooShort { len: frame.len() };
    let (destination, rest) = frame.split_first_chunk::<6>().ok_or(too_short.clone())?;
    let (source, rest) = rest.split_first_chunk::<6>().ok_or(too_short.clone())?;
    let (ethertype, mut rest) = rest.split_first_chunk::<2>().ok_or(too_short.clone())?;
    let mut ethertype = be16(*ethertype);
    let mut vlan = None;
    if ETHERTYPE_VLAN.contains(&ethertype) {
        let (tci, after) = rest.split_first_chunk::<2>().ok_or(too_short.clone())?;
        let (inner, after) = after.split_first_chunk::<2>().ok_or(too_short)?;
        vlan = Some(be16(*tci) & 0x0fff);
        ethertype = be16(*inner);
        rest = after;
    }
    if ethertype != ETHERTYPE_LLDP {
        return Err(FrameError::NotLldp { ethertype });
    }
    let header_len = frame.len().saturating_sub(rest.len());
    Ok(LldpFrame {
        destination: *destination,
        source: *source,
        vlan,
        lldpdu: parse_lldpdu_at(rest, header_len)?,
    })
}

/// Parse an LLDPDU (the payload after the LLDP EtherType).
pub fn parse_lldpdu(pdu: &[u8]) -> Result<Lldpdu, FrameError> {
    parse_lldpdu_at(pdu, 0)
}

/// One TLV as it appears in the PDU.
struct Tlv<'a> {
    kind: u8,
    value: &'a [u8],
}

fn parse_lldpdu_at(pdu: &[u8], base: usize) -> Result<Lldpdu, FrameError> {
    const MANDATORY: [u8; 3] = [TLV_CHASSIS_ID, TLV_PORT_ID, TLV_TTL];
    let mut rest = pdu;
    let mut index = 0usize;
    let mut chassis_id = None;
    let mut port_id = None;
    let mut ttl = None;
    let mut port_description = None;
    let mut system_name = None;
    let mut system_description = None;
    loop {
        let offset = base.saturating_add(pdu.len().saturating_sub(rest.len()));
        let Some(tlv) = next_tlv(&mut rest, index, offset)? else {
            break;
        };
        if tlv.kind == TLV_END {
            if !tlv.value.is_empty() {
                return Err(bad_length(TLV_END, tlv.value.len(), "0"));
            }
            break;
        }
        if let Some(expected) = MANDATORY.get(index) {
            if tlv.kind != *expected {
                return Err(FrameError::OutOfOrder {
                    index,
                    expected: tlv_name(*expected),
                    found: tlv_name(tlv.kind),
                    found_type: tlv.kind,
                });
            }
        } else if let Some(first) = MANDATORY.iter().position(|t| *t == tlv.kind) {
            return Err(FrameError::Duplicate {
                tlv: tlv_name(tlv.kind),
                index,
                first,
            });
        }
        match tlv.kind {
            TLV_CHASSIS_ID => chassis_id = Some(id(TLV_CHASSIS_ID, tlv.value)?),
            TLV_PORT_ID => port_id = Some(id(TLV_PORT_ID, tlv.value)?),
            TLV_TTL => {
                let b = <[u8; 2]>::try_from(tlv.value)
                    .map_err(|_| bad_length(TLV_TTL, tlv.value.len(), "2"))?;
                ttl = Some(be16(b));
            }
            TLV_PORT_DESCRIPTION => port_description = Some(text(tlv.kind, tlv.value)?),
            TLV_SYSTEM_NAME => system_name = Some(text(tlv.kind, tlv.value)?),
            TLV_SYSTEM_DESCRIPTION => system_description = Some(text(tlv.kind, tlv.value)?),
            _ => {}
        }
        index = index.saturating_add(1);
    }
    let missing = |t: u8| FrameError::Missing {
        missing: tlv_name(t),
    };
    Ok(Lldpdu {
        chassis_id: chassis_id.ok_or_else(|| missing(TLV_CHASSIS_ID))?,
        port_id: port_id.ok_or_else(|| missing(TLV_PORT_ID))?,
        ttl: ttl.ok_or_else(|| missing(TLV_TTL))?,
        port_description,
        system_name,
        system_description,
    })
}

/// The next TLV of `rest` (advancing it), or `None` at the end of the data.
fn next_tlv<'a>(
    rest: &mut &'a [u8],
    index: usize,
    offset: usize,
) -> Result<Option<Tlv<'a>>, FrameError> {
    if rest.is_empty() {
        return Ok(None);
    }
    let data: &'a [u8] = rest;
    let Some((header, after)) = data.split_first_chunk::<2>() else {
        return Err(FrameError::Truncated {
            index,
            offset,
            needed: 2,
            available: data.len(),
        });
    };
    let header = be16(*header);
    let kind = u8::try_from(header >> 9).unwrap_or(u8::MAX);
    let len = usize::from(header & 0x01ff);
    let Some((value, next)) = after.split_at_checked(len) else {
        return Err(FrameError::Truncated {
            index,
            offset,
            needed: len.saturating_add(2),
            available: data.len(),
        });
    };
    *rest = next;
    Ok(Some(Tlv { kind, value }))
}

fn bad_length(tlv: u8, len: usize, allowed: &'static str) -> FrameError {
    FrameError::BadLength {
        tlv: tlv_name(tlv),
        len,
        allowed,
    }
}

/// Chassis ID / Port ID: a subtype byte and 1..255 bytes of id.
fn id(kind: u8, value: &[u8]) -> Result<Id, FrameError> {
    match value.split_first() {
        Some((subtype, id)) if (1..=255).contains(&id.len()) => Ok(Id {
            subtype: *subtype,
            value: id.to_vec(),
        }),
        _ => Err(bad_length(kind, value.len(), "2..256")),
    }
}

/// A string TLV of 0..255 bytes.
fn text(kind: u8, value: &[u8]) -> Result<String, FrameError> {
    if value.len() > 255 {
        return Err(bad_length(kind, value.len(), "0..255"));
    }
    Ok(String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A TLV written from the 802.1AB layout: 7 bits type, 9 bits length.
    fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
        let header = (u16::from(kind) << 9) | u16::try_from(value.len()).unwrap();
        let mut v = header.to_be_bytes().to_vec();
        v.extend_from_slice(value);
        v
    }

    fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = LLDP_NEAREST_BRIDGE.to_vec();
        f.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const MACHINE: &str = "00000000-0000-0000-0000-0000000000a1";
    const SINCE: &str = "provisioned since 2026-08-01T09:58:12Z";

    /// What go-lldpd sends (metal-api reference §4.3): chassis id = NIC MAC
    /// (subtype 4), port id = NIC name (subtype 5), TTL 4 s, port
    /// description = NIC name, system name = machine UUID, system
    /// description = "provisioned since …", End.
    fn go_lldpd_pdu() -> Vec<u8> {
        let mut chassis = vec![4];
        chassis.extend_from_slice(&MAC);
        [
            tlv(1, &chassis),
            tlv(2, b"\x05eth0"),
            tlv(3, &[0, 4]),
            tlv(4, b"eth0"),
            tlv(5, MACHINE.as_bytes()),
            tlv(6, SINCE.as_bytes()),
            tlv(0, b""),
        ]
        .concat()
    }

    /// Issue 22 item 5: a chassis or port id a machine sends is logged
    /// escaped — `is_control()` misses format characters like U+202E.
    #[test]
    fn ids_are_shown_escaped() {
        let pdu = [
            tlv(1, "\u{7}chassis\u{202e}\u{1b}[2J".as_bytes()),
            tlv(2, "\u{5}eth\n0\u{2066}".as_bytes()),
            tlv(3, &[0, 4]),
            tlv(0, b""),
        ]
        .concat();
        let f = parse_frame(&ethernet(0x88cc, &pdu)).unwrap();
        let shown = f.to_string();
        assert!(
            shown.contains(r"chassis chassis\u{202e}\u{1b}[2J port eth\n0\u{2066}"),
            "{shown}"
        );
        assert!(
            !shown.contains(['\u{202e}', '\u{1b}', '\n', '\u{2066}']),
            "{shown}"
        );
    }

    #[test]
    fn go_lldpd_frame() {
        let f = parse_frame(&ethernet(0x88cc, &go_lldpd_pdu())).unwrap();
        assert_eq!(f.destination, LLDP_NEAREST_BRIDGE);
        assert_eq!(f.source, MAC);
        assert_eq!(f.vlan, None);
        let du = f.lldpdu.clone();
        assert_eq!(du.chassis_id.subtype, 4);
        assert_eq!(du.chassis_id_string(), "52:54:00:12:34:56");
        assert_eq!(du.port_id.subtype, 5);
        assert_eq!(du.port_id_string(), "eth0");
        assert_eq!(du.ttl, 4);
        assert_eq!(du.port_description.as_deref(), Some("eth0"));
        assert_eq!(du.system_name.as_deref(), Some(MACHINE));
        assert_eq!(du.system_description.as_deref(), Some(SINCE));
        assert!(
            f.to_string()
                .contains("chassis 52:54:00:12:34:56 port eth0")
        );
    }

    /// A frame Debian's lldpd 1.0.16 sent over veth (captured in a network
    /// namespace with an AF_PACKET socket), configured with
    /// `configure system hostname 00000000-…-0000000000a1` and
    /// `configure system description "provisioned since …"`: besides the
    /// TLVs above it carries capabilities, a management address, the
    /// interface name as port id (subtype 3 = MAC), and 802.3 / 802.1
    /// organisational TLVs, which are skipped.
    #[test]
    fn lldpd_capture() {
        let hex = "0180c200000ebab93da6cbcf88cc020704bab93da6cbcf040703bab93da6cbcf06020004\
                   0a2430303030303030302d303030302d303030302d303030302d3030303030303030303061\
                   310c2670726f766973696f6e65642073696e636520323032362d30382d30315430393a3538\
                   3a31325a0e04009c008010181102fe80000000000000b8b93dfffea6cbcf0200000002000806\
                   766138373333fe0900120f030100000000fe0900120f0100800000360000";
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let f = parse_frame(&bytes).unwrap();
        let du = &f.lldpdu;
        assert_eq!(du.chassis_id_string(), "ba:b9:3d:a6:cb:cf");
        assert_eq!(du.port_id.subtype, 3);
        assert_eq!(du.port_id_string(), "ba:b9:3d:a6:cb:cf");
        assert_eq!(du.ttl, 4);
        assert_eq!(du.system_name.as_deref(), Some(MACHINE));
        assert_eq!(du.system_description.as_deref(), Some(SINCE));
        assert_eq!(du.port_description.as_deref(), Some("va8733"));
    }

    #[test]
    fn vlan_tag_and_padding() {
        let mut payload = vec![0x20, 0x07, 0x88, 0xcc];
        payload.extend(go_lldpd_pdu());
        payload.extend([0u8; 20]);
        let f = parse_frame(&ethernet(0x8100, &payload)).unwrap();
        assert_eq!(f.vlan, Some(7));
        assert_eq!(f.lldpdu.ttl, 4);
        // No End TLV at all: the PDU ends with the frame.
        let mut pdu = go_lldpd_pdu();
        pdu.truncate(pdu.len() - 2);
        assert!(parse_lldpdu(&pdu).is_ok());
        // Data after End is ignored.
        let mut pdu = go_lldpd_pdu();
        pdu.extend([0xff, 0xff, 0x01]);
        assert!(parse_lldpdu(&pdu).is_ok());
    }

    #[test]
    fn last_string_tlv_wins_and_unknown_are_skipped() {
        let pdu = [
            tlv(1, b"\x07box"),
            tlv(2, b"\x05p1"),
            tlv(3, &[0, 120]),
            tlv(5, b"first"),
            tlv(127, &[0x00, 0x12, 0x0f, 1, 2, 3]),
            tlv(9, &[]),
            tlv(5, b"second"),
            tlv(6, &[b'a', 0xff, b'b']),
        ]
        .concat();
        let du = parse_lldpdu(&pdu).unwrap();
        assert_eq!(du.system_name.as_deref(), Some("second"));
        assert_eq!(du.system_description.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(du.port_description, None);
        assert_eq!(du.chassis_id_string(), "box");
        assert_eq!(du.ttl, 120);
    }

    #[test]
    fn network_address_ids() {
        let pdu = [
            tlv(1, &[5, 1, 10, 0, 0, 1]),
            tlv(
                2,
                &[4, 2, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ),
            tlv(3, &[0, 1]),
        ]
        .concat();
        let du = parse_lldpdu(&pdu).unwrap();
        assert_eq!(du.chassis_id_string(), "10.0.0.1");
        assert_eq!(du.port_id_string(), "fe80::1");
    }

    #[test]
    fn malformed_frames_are_errors() {
        let good = go_lldpd_pdu();
        let kind = |bytes: &[u8]| parse_frame(bytes).unwrap_err().kind();
        assert_eq!(kind(&[]), "too_short");
        assert_eq!(kind(&ethernet(0x88cc, &[])[..13]), "too_short");
        assert_eq!(kind(&ethernet(0x0800, &good)), "not_lldp");
        assert_eq!(kind(&ethernet(0x8100, &[0, 1])), "too_short");
        assert_eq!(kind(&ethernet(0x8100, &[0, 1, 8, 0])), "not_lldp");
        assert_eq!(
            kind(&ethernet(0x88cc, &vec![0u8; MAX_FRAME_LEN])),
            "too_long"
        );
        // Cut anywhere before the TTL is complete, or inside a later TLV.
        for cut in [1, 3, 8, 9, 12, 16, 19, 24] {
            let e = parse_frame(&ethernet(0x88cc, &good[..cut])).unwrap_err();
            assert!(
                matches!(e, FrameError::Truncated { .. } | FrameError::Missing { .. }),
                "cut at {cut}: {e}"
            );
        }
        assert!(matches!(
            parse_lldpdu(&good[..good.len() - 10]).unwrap_err(),
            FrameError::Truncated { index: 5, .. }
        ));
        // A length beyond the frame.
        let mut long = tlv(1, b"\x07x");
        long[1] = 0xff;
        assert_eq!(kind(&ethernet(0x88cc, &long)), "truncated");
    }

    #[test]
    fn mandatory_tlvs() {
        let c = tlv(1, b"\x07box");
        let p = tlv(2, b"\x05p1");
        let t = tlv(3, &[0, 120]);
        let name = tlv(5, MACHINE.as_bytes());
        let err = |parts: &[&Vec<u8>]| {
            parse_lldpdu(
                &parts
                    .iter()
                    .flat_map(|v| v.iter().copied())
                    .collect::<Vec<_>>(),
            )
            .unwrap_err()
        };
        assert_eq!(
            err(&[]),
            FrameError::Missing {
                missing: "Chassis ID"
            }
        );
        assert_eq!(
            err(&[&c, &p]),
            FrameError::Missing {
                missing: "Time To Live"
            }
        );
        assert_eq!(err(&[&c, &p, &tlv(0, b"")]).kind(), "missing_tlv");
        assert!(matches!(
            err(&[&p, &c, &t]),
            FrameError::OutOfOrder {
                index: 0,
                expected: "Chassis ID",
                found_type: 2,
                ..
            }
        ));
        assert_eq!(err(&[&c, &name, &p, &t]).kind(), "out_of_order");
        assert_eq!(
            err(&[&c, &p, &t, &name, &p]),
            FrameError::Duplicate {
                tlv: "Port ID",
                index: 4,
                first: 1
            }
        );
        // Lengths.
        assert_eq!(err(&[&tlv(1, b"\x07")]).kind(), "bad_length");
        assert_eq!(err(&[&tlv(1, &[7u8; 257])]).kind(), "bad_length");
        assert_eq!(err(&[&c, &tlv(2, b"")]).kind(), "bad_length");
        assert_eq!(err(&[&c, &p, &tlv(3, &[0, 0, 1])]).kind(), "bad_length");
        assert_eq!(err(&[&c, &p, &tlv(3, &[1])]).kind(), "bad_length");
        assert_eq!(
            err(&[&c, &p, &t, &tlv(5, &[b'x'; 256])]).kind(),
            "bad_length"
        );
        assert_eq!(err(&[&c, &p, &t, &tlv(0, b"x")]).kind(), "bad_length");
        // The longest legal ids and strings pass.
        let mut id = vec![7u8];
        id.extend([b'i'; 255]);
        let ok = [tlv(1, &id), tlv(2, &id), t.clone(), tlv(6, &[b'd'; 255])].concat();
        let du = parse_lldpdu(&ok).unwrap();
        assert_eq!(du.system_description.unwrap().len(), 255);
    }

    #[test]
    fn malformed_counts() {
        let mut m = MalformedCounts::default();
        m.add(&FrameError::TooShort { len: 1 });
        m.add(&FrameError::TooShort { len: 2 });
        m.add(&FrameError::NotLldp { ethertype: 1 });
        assert_eq!(m.total(), 3);
        assert_eq!(m.0["too_short"], 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_frame(&bytes);
            let _ = parse_lldpdu(&bytes);
        }

        /// A valid frame with arbitrary bytes appended or a random cut
        /// never panics either, and the untouched prefix still parses.
        #[test]
        fn mutated_valid_frames_never_panic(
            cut in 0usize..200,
            flip in 0usize..200,
            value in any::<u8>(),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut f = ethernet(0x88cc, &go_lldpd_pdu());
            f.extend(&tail);
            prop_assert!(parse_frame(&f).is_ok());
            if let Some(b) = f.get_mut(flip) {
                *b = value;
            }
            let _ = parse_frame(&f);
            f.truncate(cut);
            let _ = parse_frame(&f);
        }
    }
}
