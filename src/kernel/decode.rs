//! Route-netlink messages into [`KernelState`] changes (feature `agent`).
//!
//! Link messages of family `AF_UNSPEC` carry the whole link and replace it;
//! link messages of family `AF_BRIDGE` only carry a bridge port's VLANs
//! (`RTM_DELLINK` there means "left the bridge", not "deleted"); address
//! messages add or remove one address. Every function returns whether the
//! state changed.

use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    AfSpecBridge, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind, InfoVlan, InfoVrf,
    InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use super::state::{Address, BridgeVlans, KernelState, Link, LinkKind};

/// One attribute of a link's `IFLA_INFO_DATA` of the given kind:
/// `info_attr!(data, InfoData::Vlan, InfoVlan::Id)`.
macro_rules! info_attr {
    ($data:expr, $kind:path, $attr:path) => {
        match $data {
            Some($kind(v)) => v.iter().find_map(|x| match x {
                $attr(a) => Some(*a),
                _ => None,
            }),
            _ => None,
        }
    };
}

/// The full link of an `AF_UNSPEC` link message (`None` without a name).
pub fn link(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut l = Link::new(msg.header.index, String::new(), LinkKind::Device);
    l.admin_up = msg.header.flags.contains(LinkFlags::Up);
    l.running = msg.header.flags.contains(LinkFlags::Running);
    let mut kind: Option<&InfoKind> = None;
    let mut data: Option<&InfoData> = None;
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Mtu(m) => l.mtu = Some(*m),
            LinkAttribute::Controller(m) if *m != 0 => l.master = Some(*m),
            LinkAttribute::Link(p) if *p != 0 => l.parent = Some(*p),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => kind = Some(k),
                        LinkInfo::Data(d) => data = Some(d),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    l.name = name?;
    l.kind = match kind {
        None => LinkKind::Device,
        Some(InfoKind::Veth) => LinkKind::Veth,
        Some(InfoKind::Dummy) => LinkKind::Dummy,
        Some(InfoKind::Bridge) => LinkKind::Bridge {
            vlan_filtering: info_attr!(data, InfoData::Bridge, InfoBridge::VlanFiltering),
        },
        Some(InfoKind::Vrf) => LinkKind::Vrf {
            table: info_attr!(data, InfoData::Vrf, InfoVrf::TableId),
        },
        Some(InfoKind::Vlan) => LinkKind::Vlan {
            id: info_attr!(data, InfoData::Vlan, InfoVlan::Id),
        },
        Some(InfoKind::Vxlan) => LinkKind::Vxlan {
            vni: info_attr!(data, InfoData::Vxlan, InfoVxlan::Id),
        },
        Some(other) => LinkKind::Other {
            name: other.to_string(),
        },
    };
    Some(l)
}

/// The VLANs in an `AF_BRIDGE` link message (plain or range-compressed
/// `IFLA_BRIDGE_VLAN_INFO` entries); `None` when it carries none.
pub fn bridge_vlans(msg: &LinkMessage) -> Option<BridgeVlans> {
    let mut out = BridgeVlans::default();
    let mut any = false;
    let mut range_start: Option<u16> = None;
    for a in &msg.attributes {
        let LinkAttribute::AfSpecBridge(spec) = a else {
            continue;
        };
        for s in spec {
            let AfSpecBridge::VlanInfo(info) = s else {
                continue;
            };
            any = true;
            if info.flags.contains(BridgeVlanInfoFlags::RangeBegin) {
                range_start = Some(info.vid);
                continue;
            }
            let first = if info.flags.contains(BridgeVlanInfoFlags::RangeEnd) {
                range_start.take().unwrap_or(info.vid)
            } else {
                info.vid
            };
            for vid in first..=info.vid {
                out.vids.insert(vid);
                if info.flags.contains(BridgeVlanInfoFlags::Pvid) {
                    out.pvid = Some(vid);
                }
                if info.flags.contains(BridgeVlanInfoFlags::Untagged) {
                    out.untagged.insert(vid);
                }
            }
        }
    }
    any.then_some(out)
}

/// The address of an address message (`IFA_LOCAL`, the interface's own
/// address on point-to-point links, else `IFA_ADDRESS`).
pub fn address(msg: &AddressMessage) -> Option<Address> {
    let local = msg.attributes.iter().find_map(|x| match x {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = msg.attributes.iter().find_map(|x| match x {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    local.or(addr).map(|ip| Address {
        ip,
        prefix_len: msg.header.prefix_len,
    })
}

/// Apply one message (from a dump or an event); `true` when the state changed.
pub fn apply(state: &mut KernelState, msg: &RouteNetlinkMessage) -> bool {
    match msg {
        RouteNetlinkMessage::NewLink(m) if m.header.interface_family == AddressFamily::Bridge => {
            state.set_bridge_vlans(m.header.index, bridge_vlans(m))
        }
        RouteNetlinkMessage::DelLink(m) if m.header.interface_family == AddressFamily::Bridge => {
            state.set_bridge_vlans(m.header.index, None)
        }
        RouteNetlinkMessage::NewLink(m) => match link(m) {
            Some(l) => state.upsert_link(l),
            None => false,
        },
        RouteNetlinkMessage::DelLink(m) => state.remove_link(m.header.index).is_some(),
        RouteNetlinkMessage::NewAddress(m) => match address(m) {
            Some(a) => state.add_address(m.header.index, a),
            None => false,
        },
        RouteNetlinkMessage::DelAddress(m) => match address(m) {
            Some(a) => state.remove_address(m.header.index, &a),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::BridgeVlanInfo;

    fn vlan(vid: u16, flags: BridgeVlanInfoFlags) -> AfSpecBridge {
        AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid })
    }

    #[test]
    fn compressed_vlan_ranges_expand() {
        let mut m = LinkMessage::default();
        m.header.interface_family = AddressFamily::Bridge;
        m.attributes.push(LinkAttribute::AfSpecBridge(vec![
            vlan(
                10,
                BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged,
            ),
            vlan(20, BridgeVlanInfoFlags::RangeBegin),
            vlan(23, BridgeVlanInfoFlags::RangeEnd),
        ]));
        let v = bridge_vlans(&m).unwrap();
        assert_eq!(
            v.vids.iter().copied().collect::<Vec<_>>(),
            [10, 20, 21, 22, 23]
        );
        assert_eq!(v.pvid, Some(10));
        assert!(v.is_untagged_pvid(10));
        assert!(!v.untagged.contains(&21));
        m.attributes.clear();
        assert_eq!(bridge_vlans(&m), None);
    }

    #[test]
    fn link_kinds_and_attributes() {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.flags = LinkFlags::Up | LinkFlags::Running;
        m.attributes = vec![
            LinkAttribute::IfName("vtep-1001".into()),
            LinkAttribute::Mtu(9100),
            LinkAttribute::Controller(3),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![InfoVxlan::Id(104009)])),
            ]),
        ];
        let l = link(&m).unwrap();
        assert_eq!(l.kind, LinkKind::Vxlan { vni: Some(104009) });
        assert_eq!((l.index, l.mtu, l.master), (7, Some(9100), Some(3)));
        assert!(l.admin_up && l.running);
        m.attributes
            .retain(|a| !matches!(a, LinkAttribute::IfName(_)));
        assert!(link(&m).is_none());
    }
}
