//! IP addresses (`ip addr`), IPv4 and IPv6, from one `RTM_GETADDR` dump.

use std::net::IpAddr;

use netlink_packet_core::{parse_ip, parse_u32, DecodeError, NlasIterator, NLA_TYPE_MASK};
use netlink_packet_route::address::{AddressHeader, AddressMessage, AddressScope as Scope};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_proto::ConnectionHandle;

use super::error::NlError;
use super::route::Route;
use super::socket;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;
/// `struct ifaddrmsg`.
const ADDRESS_HEADER_LEN: usize = 8;

/// `IFA_F_*` bits of an address, as the kernel gives them (`IFA_FLAGS`, which supersedes
/// the 8-bit header field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddressFlags(pub u32);

impl AddressFlags {
    /// `IFA_F_SECONDARY` for IPv4, `IFA_F_TEMPORARY` (a privacy address) for IPv6: one bit.
    pub const SECONDARY_OR_TEMPORARY: u32 = 0x01;
    pub const NODAD: u32 = 0x02;
    pub const OPTIMISTIC: u32 = 0x04;
    pub const DADFAILED: u32 = 0x08;
    pub const HOMEADDRESS: u32 = 0x10;
    pub const DEPRECATED: u32 = 0x20;
    pub const TENTATIVE: u32 = 0x40;
    pub const PERMANENT: u32 = 0x80;
    pub const MANAGETEMPADDR: u32 = 0x100;
    pub const NOPREFIXROUTE: u32 = 0x200;
    pub const MCAUTOJOIN: u32 = 0x400;
    pub const STABLE_PRIVACY: u32 = 0x800;

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

/// `RT_SCOPE_*` of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressScope {
    /// `global`
    Universe,
    Site,
    /// `link`: e.g. IPv6 fe80::/10.
    Link,
    /// `host`: e.g. 127.0.0.1, ::1.
    Host,
    Nowhere,
    Other(u8),
}

impl AddressScope {
    fn from_netlink(scope: Scope) -> Self {
        match scope {
            Scope::Universe => AddressScope::Universe,
            Scope::Site => AddressScope::Site,
            Scope::Link => AddressScope::Link,
            Scope::Host => AddressScope::Host,
            Scope::Nowhere => AddressScope::Nowhere,
            other => AddressScope::Other(u8::from(other)),
        }
    }
}

/// One address of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The link's ifindex.
    pub ifindex: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
    pub flags: AddressFlags,
    pub scope: AddressScope,
    /// Seconds the address stays valid; `None` means forever (a static address).
    pub valid_lft: Option<u32>,
    /// Seconds it stays preferred; `None` means forever.
    pub preferred_lft: Option<u32>,
}

/// `INFINITY_LIFE_TIME`.
const FOREVER: u32 = u32::MAX;

impl Address {
    /// `IFA_F_PERMANENT`: configured, not learned (DHCP and SLAAC addresses lack it).
    pub fn is_permanent(&self) -> bool {
        self.flags.contains(AddressFlags::PERMANENT)
    }

    /// An IPv6 privacy address (`IFA_F_TEMPORARY`); never true for IPv4, where the same
    /// bit means "secondary".
    pub fn is_temporary(&self) -> bool {
        self.address.is_ipv6() && self.flags.contains(AddressFlags::SECONDARY_OR_TEMPORARY)
    }

    pub fn is_deprecated(&self) -> bool {
        self.flags.contains(AddressFlags::DEPRECATED)
    }

    /// Duplicate address detection found the address in use elsewhere on the link: the
    /// kernel keeps it listed but never uses it.
    pub fn is_dad_failed(&self) -> bool {
        self.flags.contains(AddressFlags::DADFAILED)
    }

    /// Duplicate address detection has not finished.
    pub fn is_tentative(&self) -> bool {
        self.flags.contains(AddressFlags::TENTATIVE)
    }

    /// Decodes the attributes the library uses from the payload of one `RTM_NEWADDR`;
    /// `Ok(None)` for a message without an address.
    pub(crate) fn parse(payload: &[u8]) -> Result<Option<Self>, DecodeError> {
        let header = AddressHeader::parse(payload)?;
        let mut local = None;
        let mut address = None;
        let mut flags = AddressFlags(u32::from(header.flags.bits()));
        let mut lifetimes = (None, None);
        for nla in NlasIterator::new(payload.get(ADDRESS_HEADER_LEN..).unwrap_or_default()) {
            let nla = nla?;
            let v = nla.value();
            match nla.kind() & NLA_TYPE_MASK {
                IFA_LOCAL => local = Some(parse_ip(v)?),
                IFA_ADDRESS => address = Some(parse_ip(v)?),
                IFA_FLAGS => flags = AddressFlags(parse_u32(v)?),
                IFA_CACHEINFO if v.len() >= 8 => {
                    // struct ifa_cacheinfo { ifa_prefered, ifa_valid, cstamp, tstamp }
                    let lft = |v: u32| (v != FOREVER).then_some(v);
                    lifetimes = (lft(parse_u32(&v[4..8])?), lft(parse_u32(&v[..4])?));
                }
                _ => {}
            }
        }
        // IFA_LOCAL is the address of the link; IFA_ADDRESS is the peer on a
        // point-to-point link and equal to it otherwise (IPv6 sends only IFA_ADDRESS), as
        // `ip addr` reads them.
        let Some(address) = local.or(address) else {
            return Ok(None);
        };
        Ok(Some(Address {
            ifindex: header.index,
            address,
            prefix_len: header.prefix_len,
            flags,
            scope: AddressScope::from_netlink(header.scope),
            valid_lft: lifetimes.0,
            preferred_lft: lifetimes.1,
        }))
    }
}

/// Dumps every IPv4 and IPv6 address of the namespace. Retries an interrupted dump; the
/// returned flag says whether the last attempt was still interrupted.
pub(crate) async fn dump(
    handle: &ConnectionHandle<Route>,
) -> Result<(Vec<Address>, bool), NlError> {
    dump_of(handle, 0).await
}

/// Dumps the IPv4 and IPv6 addresses of the link with this ifindex (every link: 0).
///
/// The filter is the request header's `ifa_index`, which the kernel honours on a socket
/// with `NETLINK_GET_STRICT_CHK` ([`socket::open_strict`]; Linux 4.20 for IPv4, 5.0 for
/// IPv6) and ignores otherwise, so the answer is filtered here too. A link that does not
/// exist (any more) gives ENODEV.
pub(crate) async fn dump_of(
    handle: &ConnectionHandle<Route>,
    ifindex: u32,
) -> Result<(Vec<Address>, bool), NlError> {
    let mut addresses = Vec::new();
    let mut interrupted = false;
    for _ in 0..socket::DUMP_ATTEMPTS {
        addresses.clear();
        let mut msg = AddressMessage::default();
        msg.header.index = ifindex;
        let req = Route::Request(RouteNetlinkMessage::GetAddress(msg));
        let answer = socket::dump(handle, req, |msg| {
            if let Route::Address(Some(addr)) = msg {
                if ifindex == 0 || addr.ifindex == ifindex {
                    addresses.push(addr);
                }
            }
        })
        .await?;
        interrupted = answer.interrupted;
        if !interrupted {
            break;
        }
    }
    Ok((addresses, interrupted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::address::{AddressAttribute, AddressFlags as NlFlags, CacheInfo};
    use netlink_packet_route::AddressFamily;

    /// Parses what netlink-packet-route emits, as the kernel would send it.
    fn from_message(msg: AddressMessage) -> Option<Address> {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        Address::parse(&buf).unwrap()
    }

    fn message(ip: IpAddr, flags: NlFlags, valid: u32, preferred: u32) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        msg.header.index = 3;
        msg.header.prefix_len = 64;
        msg.attributes.push(AddressAttribute::Address(ip));
        msg.attributes.push(AddressAttribute::Flags(flags));
        let mut info = CacheInfo::default();
        info.ifa_preferred = preferred;
        info.ifa_valid = valid;
        msg.attributes.push(AddressAttribute::CacheInfo(info));
        msg
    }

    #[test]
    fn ipv6_temporary_and_lifetimes() {
        let ip: IpAddr = "2001:db8::5".parse().unwrap();
        let a = from_message(message(ip, NlFlags::Secondary, 3600, 1800)).unwrap();
        assert!(a.is_temporary() && !a.is_permanent());
        assert_eq!((a.valid_lft, a.preferred_lft), (Some(3600), Some(1800)));
        let a = from_message(message(ip, NlFlags::Permanent, u32::MAX, u32::MAX)).unwrap();
        assert!(a.is_permanent() && !a.is_temporary());
        assert_eq!((a.valid_lft, a.preferred_lft), (None, None));
        // No address at all: not an address.
        assert_eq!(from_message(AddressMessage::default()), None);
    }

    #[test]
    fn ipv4_secondary_is_not_temporary_and_local_wins() {
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let mut msg = message(
            peer,
            NlFlags::Secondary | NlFlags::Permanent,
            u32::MAX,
            u32::MAX,
        );
        msg.attributes
            .push(AddressAttribute::Local("192.0.2.2".parse().unwrap()));
        let a = from_message(msg).unwrap();
        assert_eq!(a.address, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert!(!a.is_temporary() && a.is_permanent());
        assert_eq!(a.ifindex, 3);
    }
}
