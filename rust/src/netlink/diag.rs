//! The MPTCP connections of the namespace and their TCP subflows, over sock_diag (what
//! `ss -M` and `ss -tni` read), for `check`'s live evidence.
//!
//! First the MPTCP sockets of both address families (protocol 262, which does not fit the
//! request's 8-bit protocol field, so it travels in an `INET_DIAG_REQ_PROTOCOL` attribute
//! after the request), each with its `struct mptcp_info`; then, only if there are any, the
//! TCP sockets, of which those with the `mptcp` upper-layer protocol are subflows, each
//! with the tokens and endpoint ids the kernel gives them (`INET_DIAG_ULP_INFO`,
//! CAP_NET_ADMIN only) and the retransmission count of their `tcp_info`. A subflow
//! belongs to the connection whose token is its local token.
//!
//! Why the TCP dumps wait for a connection: the kernel's TCP hash table is shared by every
//! namespace and sized by the host's memory (262144 buckets on a 24 GB machine), and each
//! dump (one per family) walks all of it, whatever the namespace holds: about 0.2 ms a
//! walk there, nearly half of what an idle `check` added to `show`. Without an MPTCP
//! connection there is no subflow to find. The IPv6 walk is made only for an IPv6
//! connection: an IPv4 MPTCP socket has IPv4 subflows only (an IPv6 one may have both).
//! The TCP dumps skip time-wait sockets (they carry no ULP info).

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    parse_u32, parse_u8, DecodeError, Emitable, NetlinkDeserializable, NetlinkHeader,
    NetlinkSerializable, Nla as _, NlasIterator, NLA_TYPE_MASK,
};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::{SockDiagMessage, AF_INET, AF_INET6, SOCK_DIAG_BY_FAMILY};
use netlink_proto::sys::protocols::NETLINK_SOCK_DIAG;

use super::socket;
use crate::Result;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_MPTCP: u32 = 262;
/// `INET_DIAG_REQ_PROTOCOL`: the protocol of a request, for protocols above 255.
const INET_DIAG_REQ_PROTOCOL: u16 = 3;
const INET_DIAG_ULP_INFO: u16 = 19;
const INET_ULP_INFO_NAME: u16 = 1;
const INET_ULP_INFO_MPTCP: u16 = 3;
const MPTCP_SUBFLOW_ATTR_TOKEN_REM: u16 = 1;
const MPTCP_SUBFLOW_ATTR_TOKEN_LOC: u16 = 2;
const MPTCP_SUBFLOW_ATTR_FLAGS: u16 = 8;
const MPTCP_SUBFLOW_ATTR_ID_REM: u16 = 9;
const MPTCP_SUBFLOW_ATTR_ID_LOC: u16 = 10;

/// `MPTCP_INFO_FLAG_FALLBACK`: the connection fell back to plain TCP.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1 << 0;

/// `struct mptcp_info`, the fields `check` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MptcpInfo {
    /// Additional subflows (the first one is not counted).
    pub subflows: u8,
    pub add_addr_signal: u8,
    pub add_addr_accepted: u8,
    pub subflows_max: u8,
    pub add_addr_accepted_max: u8,
    pub flags: u32,
    pub token: u32,
    pub local_addr_used: u8,
    pub local_addr_max: u8,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl MptcpInfo {
    fn parse(b: &[u8]) -> Option<Self> {
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        Some(MptcpInfo {
            subflows: *b.first()?,
            add_addr_signal: *b.get(1)?,
            add_addr_accepted: *b.get(2)?,
            subflows_max: *b.get(3)?,
            add_addr_accepted_max: *b.get(5)?,
            flags: u32_at(8)?,
            token: u32_at(12)?,
            local_addr_used: *b.get(40)?,
            local_addr_max: *b.get(41)?,
            bytes_sent: u64_at(56).unwrap_or(0),
            bytes_received: u64_at(64).unwrap_or(0),
        })
    }

    pub fn fell_back(&self) -> bool {
        self.flags & MPTCP_INFO_FLAG_FALLBACK != 0
    }
}

/// An MPTCP socket (the connection level), not a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MptcpConnection {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// TCP state number (1 established ...).
    pub state: u8,
    pub info: Option<MptcpInfo>,
}

/// A TCP socket that is an MPTCP subflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subflow {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    /// The interface the subflow is bound to, 0 for none.
    pub ifindex: u32,
    /// The token of its connection (the kernel's, on this host).
    pub token: Option<u32>,
    pub remote_token: Option<u32>,
    pub local_id: Option<u8>,
    pub remote_id: Option<u8>,
    pub flags: u32,
    /// `tcpi_retransmits` of its `tcp_info`: how many times in a row its retransmission
    /// timer fired without an answer (for a SYN-SENT subflow: the SYN timed out, at 1 s
    /// first). 0 when the kernel gave no `tcp_info`.
    pub retransmits: u8,
}

/// TCP states of a socket that exists for a connection (everything but LISTEN).
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_SENT: u8 = 2;

/// What travels on the sock_diag socket: requests (with the protocol attribute when it
/// does not fit the header) and the answers, decoded by netlink-packet-sock-diag.
#[derive(Debug)]
pub(crate) enum Diag {
    Request(InetRequest, Option<u32>),
    Answer(SockDiagMessage),
}

impl NetlinkSerializable for Diag {
    fn message_type(&self) -> u16 {
        SOCK_DIAG_BY_FAMILY
    }

    fn buffer_len(&self) -> usize {
        match self {
            Diag::Request(req, proto) => req.buffer_len() + if proto.is_some() { 8 } else { 0 },
            Diag::Answer(_) => 0,
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        if let Diag::Request(req, proto) = self {
            let n = req.buffer_len();
            req.emit(&mut buffer[..n]);
            if let Some(p) = proto {
                buffer[n..n + 2].copy_from_slice(&8u16.to_ne_bytes());
                buffer[n + 2..n + 4].copy_from_slice(&INET_DIAG_REQ_PROTOCOL.to_ne_bytes());
                buffer[n + 4..n + 8].copy_from_slice(&p.to_ne_bytes());
            }
        }
    }
}

impl NetlinkDeserializable for Diag {
    type Error = DecodeError;

    fn deserialize(
        header: &NetlinkHeader,
        payload: &[u8],
    ) -> std::result::Result<Self, Self::Error> {
        SockDiagMessage::deserialize(header, payload).map(Diag::Answer)
    }
}

/// The MPTCP sockets of `family` but listeners, with their `struct mptcp_info`.
fn mptcp_request(family: u8) -> Diag {
    let mut states = StateFlags::all();
    states.remove(StateFlags::LISTEN);
    // IPPROTO_MPTCP's low byte in the header, the whole value in the attribute.
    request(
        family,
        (IPPROTO_MPTCP & 0xff) as u8,
        ExtensionFlags::INFO,
        states,
        Some(IPPROTO_MPTCP),
    )
}

/// The TCP sockets of `family` that can be subflows: no listener, no time-wait socket
/// (those carry no ULP info). SYN_RECV stays: a Fast Open child is a full socket in that
/// state (the kernel adds the request sockets to it, which carry no ULP info either).
/// `INET_DIAG_INFO` is asked for although `tcp_info` is not used: the kernel adds the ULP
/// info only to answers that carry it.
fn tcp_request(family: u8) -> Diag {
    let mut states = StateFlags::all();
    states.remove(StateFlags::LISTEN | StateFlags::TIME_WAIT);
    request(family, IPPROTO_TCP, ExtensionFlags::INFO, states, None)
}

fn request(
    family: u8,
    protocol: u8,
    extensions: ExtensionFlags,
    states: StateFlags,
    extra: Option<u32>,
) -> Diag {
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    Diag::Request(
        InetRequest {
            family,
            protocol,
            extensions,
            states,
            socket_id,
        },
        extra,
    )
}

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// The MPTCP connections and the subflows of the calling thread's namespace.
pub async fn read_connections() -> Result<(Vec<MptcpConnection>, Vec<Subflow>)> {
    let what = "reading MPTCP sockets (sock_diag)";
    let (conn, handle) = socket::open::<Diag>(NETLINK_SOCK_DIAG).map_err(|e| e.context(what))?;
    socket::drive(conn, async {
        let mut conns = Vec::new();
        let mut subflows = Vec::new();
        let mut families = Vec::new();
        for family in [AF_INET, AF_INET6] {
            socket::dump(&handle, mptcp_request(family), |msg| {
                if let Diag::Answer(SockDiagMessage::InetResponse(r)) = msg {
                    conns.push(connection_of(r.as_ref()));
                    if !families.contains(&r.header.family) {
                        families.push(r.header.family);
                    }
                }
            })
            .await
            .map_err(|e| e.context(what))?;
        }
        // Subflows of IPv4 sockets are IPv4; those of IPv6 sockets either (see above).
        let mut tcp_families = Vec::new();
        if !conns.is_empty() {
            tcp_families.push(AF_INET);
        }
        if families.contains(&AF_INET6) {
            tcp_families.push(AF_INET6);
        }
        for family in tcp_families {
            socket::dump(&handle, tcp_request(family), |msg| {
                if let Diag::Answer(SockDiagMessage::InetResponse(r)) = msg {
                    subflows.extend(subflow_of(r.as_ref()));
                }
            })
            .await
            .map_err(|e| e.context(what))?;
        }
        Ok((conns, subflows))
    })
    .await
}

/// An MPTCP socket of a sock_diag answer, with its `struct mptcp_info` if the answer
/// carries one.
pub(crate) fn connection_of(r: &InetResponse) -> MptcpConnection {
    let id = &r.header.socket_id;
    let info = r.nlas.iter().find_map(|n| match n {
        Nla::TcpInfo(bytes) => MptcpInfo::parse(bytes),
        _ => None,
    });
    MptcpConnection {
        local: addr(id.source_address, id.source_port),
        remote: addr(id.destination_address, id.destination_port),
        state: r.header.state,
        info,
    }
}

/// The subflow a TCP socket of a sock_diag answer is, if its upper-layer protocol is
/// `mptcp`.
pub(crate) fn subflow_of(r: &InetResponse) -> Option<Subflow> {
    let ulp = r.nlas.iter().find_map(|n| match n {
        Nla::Other(o) if o.kind() & NLA_TYPE_MASK == INET_DIAG_ULP_INFO => {
            let mut v = vec![0u8; o.value_len()];
            o.emit_value(&mut v);
            Some(v)
        }
        _ => None,
    })?;
    let id = &r.header.socket_id;
    let mut s = parse_ulp(&ulp)?;
    s.local = addr(id.source_address, id.source_port);
    s.remote = addr(id.destination_address, id.destination_port);
    s.state = r.header.state;
    s.ifindex = id.interface_id;
    // struct tcp_info: state, ca_state, retransmits, ...
    s.retransmits = r
        .nlas
        .iter()
        .find_map(|n| match n {
            Nla::TcpInfo(bytes) => bytes.get(2).copied(),
            _ => None,
        })
        .unwrap_or(0);
    Some(s)
}

/// The `mptcp` ULP info of a TCP socket; `None` for another ULP.
fn parse_ulp(value: &[u8]) -> Option<Subflow> {
    let mut is_mptcp = false;
    let mut s = Subflow {
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        remote: SocketAddr::from(([0, 0, 0, 0], 0)),
        state: 0,
        ifindex: 0,
        token: None,
        remote_token: None,
        local_id: None,
        remote_id: None,
        flags: 0,
        retransmits: 0,
    };
    for nla in NlasIterator::new(value).flatten() {
        match nla.kind() & NLA_TYPE_MASK {
            INET_ULP_INFO_NAME => is_mptcp = nla.value().starts_with(b"mptcp"),
            INET_ULP_INFO_MPTCP => {
                for a in NlasIterator::new(nla.value()).flatten() {
                    let v = a.value();
                    match a.kind() & NLA_TYPE_MASK {
                        MPTCP_SUBFLOW_ATTR_TOKEN_LOC => s.token = parse_u32(v).ok(),
                        MPTCP_SUBFLOW_ATTR_TOKEN_REM => s.remote_token = parse_u32(v).ok(),
                        MPTCP_SUBFLOW_ATTR_FLAGS => s.flags = parse_u32(v).unwrap_or(0),
                        MPTCP_SUBFLOW_ATTR_ID_LOC => s.local_id = parse_u8(v).ok(),
                        MPTCP_SUBFLOW_ATTR_ID_REM => s.remote_id = parse_u8(v).ok(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    is_mptcp.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mptcp_info_layout() {
        let mut b = [0u8; 96];
        b[0] = 2; // subflows
        b[2] = 1; // add_addr_accepted
        b[8..12].copy_from_slice(&MPTCP_INFO_FLAG_FALLBACK.to_ne_bytes());
        b[12..16].copy_from_slice(&0xdead_beefu32.to_ne_bytes());
        b[56..64].copy_from_slice(&1234u64.to_ne_bytes());
        let i = MptcpInfo::parse(&b).unwrap();
        assert_eq!(
            (i.subflows, i.add_addr_accepted, i.token),
            (2, 1, 0xdead_beef)
        );
        assert!(i.fell_back());
        assert_eq!(i.bytes_sent, 1234);
        assert_eq!(MptcpInfo::parse(&b[..20]), None);
    }

    #[test]
    fn the_protocol_attribute_follows_the_request() {
        let req = mptcp_request(AF_INET);
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        let n = buf.len() - 8;
        assert_eq!(
            u16::from_ne_bytes([buf[n + 2], buf[n + 3]]),
            INET_DIAG_REQ_PROTOCOL
        );
        assert_eq!(
            u32::from_ne_bytes(buf[n + 4..].try_into().unwrap()),
            IPPROTO_MPTCP
        );
    }
}
