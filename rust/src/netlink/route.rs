//! The message type of the library's route sockets: requests are built with
//! netlink-packet-route; answers are decoded straight into the library's types.
//!
//! netlink-packet-route's full decode of a link (every attribute into an enum, statistics,
//! per-family configuration arrays) costs about 10 µs and a dozen allocations per link;
//! with 1000 links that was half of a kernel read. Only the attributes the library uses
//! are decoded here, with the same crates' header parsers and NLA iterators.

use netlink_packet_core::{DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};
use netlink_packet_route::RouteNetlinkMessage;

use super::addresses::Address;
use super::links::Link;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;

#[derive(Debug)]
pub(crate) enum Route {
    /// What the library sends.
    Request(RouteNetlinkMessage),
    /// An `RTM_NEWLINK`; `None` when it had no name.
    Link(Option<Link>),
    /// An `RTM_NEWADDR`; `None` when it had no address.
    Address(Option<Address>),
    /// Any other message type, not decoded.
    Other,
}

impl NetlinkSerializable for Route {
    fn message_type(&self) -> u16 {
        match self {
            Route::Request(m) => m.message_type(),
            Route::Link(_) => RTM_NEWLINK,
            Route::Address(_) => RTM_NEWADDR,
            Route::Other => 0,
        }
    }

    /// Only requests are ever sent; a decoded answer serializes to nothing.
    fn buffer_len(&self) -> usize {
        match self {
            Route::Request(m) => m.buffer_len(),
            _ => 0,
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        if let Route::Request(m) = self {
            m.serialize(buffer)
        }
    }
}

impl NetlinkDeserializable for Route {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        Ok(match header.message_type {
            RTM_NEWLINK => Route::Link(Link::parse(payload)?),
            RTM_NEWADDR => Route::Address(Address::parse(payload)?),
            _ => Route::Other,
        })
    }
}
