//! The receive path of the library's netlink sockets as a plain function of the bytes:
//! a datagram split into messages as netlink-proto's codec splits it, each decoded by
//! the message type the socket uses ([`Route`], [`Genl`], [`Diag`]) and turned into the
//! library's types as the readers do. For the fuzz targets (`rust/fuzz/`) and the replay
//! of their findings; the sockets themselves go through netlink-proto.

use std::fmt::Debug;

use netlink_packet_core::{NetlinkBuffer, NetlinkDeserializable, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;

use super::diag::{self, Diag};
use super::genl::Genl;
use super::mptcp::{Endpoint, Limits};
use super::route::Route;
use super::{Address, Link, MptcpConnection, Subflow};

/// What a datagram decoded to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Messages that decoded, and those that did not (netlink-proto logs and drops them).
    pub messages: usize,
    pub failed: usize,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub endpoints: Vec<Endpoint>,
    pub limits: Vec<Limits>,
    pub connections: Vec<MptcpConnection>,
    pub subflows: Vec<Subflow>,
}

/// netlink-proto 0.14's `NetlinkCodec::decode`, over a whole datagram: the length field
/// of each header says where the next message starts; a header that does not fit ends
/// the datagram.
fn split<T: NetlinkDeserializable + Debug>(
    mut datagram: &[u8],
    decoded: &mut Decoded,
    mut each: impl FnMut(T, &mut Decoded),
) {
    while !datagram.is_empty() {
        let len = match NetlinkBuffer::new_checked(datagram) {
            Ok(buf) => buf.length() as usize,
            Err(_) => return,
        };
        let (message, rest) = datagram.split_at(len);
        datagram = rest;
        match NetlinkMessage::<T>::deserialize(message) {
            Ok(m) => {
                decoded.messages += 1;
                if let NetlinkPayload::InnerMessage(inner) = m.payload {
                    each(inner, decoded);
                }
            }
            Err(_) => decoded.failed += 1,
        }
    }
}

/// A datagram of a route socket (`RTM_NEWLINK`, `RTM_NEWADDR` answers).
pub fn route(datagram: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    split::<Route>(datagram, &mut decoded, |m, d| match m {
        Route::Link(Some(link)) => d.links.push(link),
        Route::Address(Some(address)) => d.addresses.push(address),
        _ => {}
    });
    decoded
}

/// A datagram of the generic netlink socket: controller answers, and the path manager's
/// endpoints and limits as `dump_endpoints` and `get_limits` read them.
pub fn genl(datagram: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    split::<Genl>(datagram, &mut decoded, |m, d| {
        if let Genl::Pm(m) = m {
            let pm = m.payload;
            d.limits.push(Limits {
                subflows: pm.subflows.unwrap_or(0),
                add_addr_accepted: pm.rcv_add_addrs.unwrap_or(0),
            });
            d.endpoints.extend(pm.addr.and_then(Endpoint::from_pm));
        }
    });
    decoded
}

/// A datagram of the sock_diag socket: each answer read both as an MPTCP connection and
/// as a TCP subflow, as `read_connections` reads the two dumps.
pub fn diag(datagram: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    split::<Diag>(datagram, &mut decoded, |m, d| {
        if let Diag::Answer(SockDiagMessage::InetResponse(r)) = m {
            d.connections.push(diag::connection_of(&r));
            d.subflows.extend(diag::subflow_of(&r));
        }
    });
    decoded
}
