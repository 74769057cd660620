//! Links (`ip link`): index, name, SPEC 2.4 type and state, from one `RTM_GETLINK` dump,
//! or from lookups by name when only a few links matter.

use netlink_packet_core::{parse_string, parse_u8, DecodeError, NlasIterator, NLA_TYPE_MASK};
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkFlags, LinkHeader, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_proto::ConnectionHandle;

use super::error::NlError;
use super::route::Route;
use super::socket;
use crate::state::InterfaceType;

const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
/// `struct ifinfomsg`.
const LINK_HEADER_LEN: usize = 16;

/// SPEC 2.4's `type` of a link with this `IFLA_INFO_KIND` (a NUL-terminated string).
fn kind_type(kind: &[u8]) -> InterfaceType {
    match kind.split(|&b| b == 0).next().unwrap_or_default() {
        b"veth" => InterfaceType::Veth,
        b"dummy" => InterfaceType::Dummy,
        b"bond" => InterfaceType::Bond,
        b"vlan" => InterfaceType::Vlan,
        b"bridge" => InterfaceType::LinuxBridge,
        _ => InterfaceType::Unknown,
    }
}

/// `IFLA_OPERSTATE` (RFC 2863), as `ip link` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    fn from_netlink(state: State) -> Self {
        match state {
            State::NotPresent => OperState::NotPresent,
            State::Down => OperState::Down,
            State::LowerLayerDown => OperState::LowerLayerDown,
            State::Testing => OperState::Testing,
            State::Dormant => OperState::Dormant,
            State::Up => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// One link of the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// SPEC 2.4's `type`: ethernet, veth, loopback, dummy, bond, vlan, linux-bridge,
    /// unknown.
    pub iface_type: InterfaceType,
    /// `IFF_*` bits of the link header (`IFF_UP` 0x1, `IFF_RUNNING` 0x40, `IFF_LOWER_UP`
    /// 0x10000, ...).
    pub flags: u32,
    pub oper_state: OperState,
}

impl Link {
    /// `state: up` in SPEC 2.4: administratively up (`IFF_UP`), as nmstate reports it; a
    /// link that is up without carrier is still `up`.
    pub fn is_up(&self) -> bool {
        self.flags & LinkFlags::Up.bits() != 0
    }

    /// Carrier (`IFF_LOWER_UP`).
    pub fn has_carrier(&self) -> bool {
        self.flags & LinkFlags::LowerUp.bits() != 0
    }

    /// Decodes the attributes the library uses from the payload of one `RTM_NEWLINK`;
    /// `Ok(None)` for a message without a name (never sent for a live link).
    pub(crate) fn parse(payload: &[u8]) -> Result<Option<Self>, DecodeError> {
        let header = LinkHeader::parse(payload)?;
        let mut name = None;
        let mut kind = None;
        let mut oper_state = OperState::Unknown;
        for nla in NlasIterator::new(payload.get(LINK_HEADER_LEN..).unwrap_or_default()) {
            let nla = nla?;
            match nla.kind() & NLA_TYPE_MASK {
                IFLA_IFNAME => name = Some(parse_string(nla.value())?),
                IFLA_OPERSTATE => {
                    oper_state = OperState::from_netlink(State::from(parse_u8(nla.value())?))
                }
                IFLA_LINKINFO => {
                    for info in NlasIterator::new(nla.value()) {
                        let info = info?;
                        if info.kind() & NLA_TYPE_MASK == IFLA_INFO_KIND {
                            kind = Some(kind_type(info.value()));
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(name) = name else { return Ok(None) };
        let link_type = kind.unwrap_or(match header.link_layer_type {
            // No kind: a real NIC (or a virtual machine's), or the loopback.
            LinkLayerType::Loopback => InterfaceType::Loopback,
            LinkLayerType::Ether => InterfaceType::Ethernet,
            _ => InterfaceType::Unknown,
        });
        Ok(Some(Link {
            index: header.index,
            name,
            iface_type: link_type,
            flags: header.flags.bits(),
            oper_state,
        }))
    }
}

/// Dumps every link of the namespace, in ifindex order. Retries an interrupted dump; the
/// returned flag says whether the last attempt was still interrupted.
pub(crate) async fn dump(handle: &ConnectionHandle<Route>) -> Result<(Vec<Link>, bool), NlError> {
    let mut links = Vec::new();
    let mut interrupted = false;
    for _ in 0..socket::DUMP_ATTEMPTS {
        links.clear();
        let mut req = LinkMessage::default();
        // RTEXT_FILTER_SKIP_STATS: a quarter fewer bytes per veth for the kernel to fill
        // and for us to read (1.14 MB instead of 1.5 MB for 1000 veths).
        req.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let req = Route::Request(RouteNetlinkMessage::GetLink(req));
        let answer = socket::dump(handle, req, |msg| {
            if let Route::Link(link) = msg {
                links.extend(link);
            }
        })
        .await?;
        interrupted = answer.interrupted;
        if !interrupted {
            break;
        }
    }
    Ok((links, interrupted))
}

/// How many lookups by name go in one datagram. The kernel answers them all inside our
/// `sendmsg`, before we read anything, so their replies (a veth's is 1.2 kB in a 4 kB
/// buffer) must fit the socket's receive buffer (208 kB by default).
const LOOKUPS_PER_BATCH: usize = 16;

/// ENODEV: no link has the name.
const ENODEV: i32 = 19;

/// Whether a link can have this name (the kernel's `dev_valid_name`): 1 to 15 bytes, no
/// `/`, `:`, whitespace or NUL, not `.` or `..`. No link has another name, and asking
/// for one is an error (EINVAL for a long one), so such names are not asked for.
pub(crate) fn can_be_link_name(name: &str) -> bool {
    (1..IFNAMSIZ).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

/// `IFNAMSIZ`, with its NUL.
const IFNAMSIZ: usize = 16;

/// `RTM_GETLINK` of one link by name (`IFLA_IFNAME`), without statistics.
fn lookup(name: &str) -> Route {
    let mut req = LinkMessage::default();
    req.attributes.push(LinkAttribute::IfName(name.to_string()));
    req.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Route::Request(RouteNetlinkMessage::GetLink(req))
}

/// The links that have these names (`ip link show dev NAME` each), in no particular
/// order; a name no link has is simply absent. The lookups go `LOOKUPS_PER_BATCH` to a
/// datagram, so 8 names cost one round trip, not 8, and never a dump of every link.
///
/// The kernel also finds a link by one of its alternative names (`ip link property add
/// altname`); such a link is left out: what is asked for is the link *named* so, as a
/// full dump filtered by name would give.
pub(crate) async fn get_by_names(
    handle: &ConnectionHandle<Route>,
    names: &[String],
) -> crate::Result<Vec<Link>> {
    let mut wanted: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| can_be_link_name(n))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut links = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(LOOKUPS_PER_BATCH) {
        let mut failure = None;
        socket::batch(handle, chunk.iter().map(|n| lookup(n)), |i, answer| {
            match answer {
                Ok(Route::Link(Some(link))) if chunk.get(i) == Some(&link.name.as_str()) => {
                    links.push(link)
                }
                // Found by an alternative name, or not a link at all.
                Ok(_) => {}
                Err(e) if e.errno() == Some(ENODEV) => {}
                Err(e) => {
                    failure.get_or_insert((chunk.get(i).copied().unwrap_or("?"), e));
                }
            }
        })
        .await
        .map_err(|e| e.context("reading links by name"))?;
        if let Some((name, e)) = failure {
            return Err(e.context(&format!("reading link {name}")));
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::link::{InfoKind, LinkInfo};

    /// The payload the kernel would send, emitted by netlink-packet-route.
    fn wire(msg: &LinkMessage) -> Vec<u8> {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    fn link(kind: Option<InfoKind>, layer: LinkLayerType) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.link_layer_type = layer;
        msg.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        msg.attributes.push(LinkAttribute::Mtu(1500));
        msg.attributes.push(LinkAttribute::IfName("eth1".into()));
        msg.attributes.push(LinkAttribute::OperState(State::Up));
        if let Some(kind) = kind {
            msg.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]));
        }
        msg
    }

    #[test]
    fn kinds_map_to_the_schema_types() {
        let t = |k: Option<InfoKind>, l| {
            Link::parse(&wire(&link(k, l)))
                .unwrap()
                .unwrap()
                .iface_type
                .name()
        };
        assert_eq!(t(None, LinkLayerType::Ether), "ethernet");
        assert_eq!(t(None, LinkLayerType::Loopback), "loopback");
        assert_eq!(t(None, LinkLayerType::None), "unknown");
        assert_eq!(t(Some(InfoKind::Veth), LinkLayerType::Ether), "veth");
        assert_eq!(
            t(Some(InfoKind::Bridge), LinkLayerType::Ether),
            "linux-bridge"
        );
        assert_eq!(t(Some(InfoKind::Bond), LinkLayerType::Ether), "bond");
        assert_eq!(t(Some(InfoKind::Vlan), LinkLayerType::Ether), "vlan");
        assert_eq!(t(Some(InfoKind::Dummy), LinkLayerType::Ether), "dummy");
        assert_eq!(t(Some(InfoKind::MacVlan), LinkLayerType::Ether), "unknown");
        assert_eq!(t(Some(InfoKind::Tun), LinkLayerType::None), "unknown");
    }

    #[test]
    fn fields_and_a_message_without_name() {
        let l = Link::parse(&wire(&link(Some(InfoKind::Veth), LinkLayerType::Ether)))
            .unwrap()
            .unwrap();
        assert_eq!((l.index, l.name.as_str()), (7, "eth1"));
        assert!(l.is_up() && l.has_carrier());
        assert_eq!(l.oper_state, OperState::Up);
        assert_eq!(Link::parse(&wire(&LinkMessage::default())).unwrap(), None);
        assert!(Link::parse(&[0u8; 3]).is_err());
    }

    #[test]
    fn names_a_link_can_have() {
        for ok in ["eth0", "a", "veth1000", "abcdefghijklmno", "br-lan.10"] {
            assert!(can_be_link_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "abcdefghijklmnop",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a\0",
        ] {
            assert!(!can_be_link_name(bad), "{bad:?}");
        }
    }
}
