//! Generic netlink for the MPTCP path manager (`mptcp_pm`, include/uapi/linux/mptcp_pm.h):
//! the controller request that resolves the family id, and the path manager's messages.
//!
//! The rust-netlink `mptcp-pm` crate (0.2.0) only reads, and pulls a second
//! `netlink-proto` (0.13, through `genetlink` 0.3) beside the 0.14 the route side uses;
//! the packet format is small, so it is defined here on `netlink-packet-generic`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use netlink_packet_core::{
    emit_i32, emit_u16, emit_u32, parse_i32, parse_u16, parse_u32, parse_u8, DecodeError, Emitable,
    NetlinkDeserializable, NetlinkHeader, NetlinkSerializable, Nla, NlaBuffer, NlasIterator,
    ParseableParametrized, NLA_F_NESTED, NLA_TYPE_MASK,
};
use netlink_packet_generic::constants::GENL_ID_CTRL;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_proto::ConnectionHandle;

use super::error::NlError;
use super::socket;

pub(crate) const MPTCP_PM_NAME: &str = "mptcp_pm";
const MPTCP_PM_VER: u8 = 1;

pub(crate) const CMD_ADD_ADDR: u8 = 1;
pub(crate) const CMD_DEL_ADDR: u8 = 2;
pub(crate) const CMD_GET_ADDR: u8 = 3;
pub(crate) const CMD_FLUSH_ADDRS: u8 = 4;
pub(crate) const CMD_SET_LIMITS: u8 = 5;
pub(crate) const CMD_GET_LIMITS: u8 = 6;
pub(crate) const CMD_SET_FLAGS: u8 = 7;

const ATTR_ADDR: u16 = 1;
const ATTR_RCV_ADD_ADDRS: u16 = 2;
const ATTR_SUBFLOWS: u16 = 3;

const ADDR_ATTR_FAMILY: u16 = 1;
const ADDR_ATTR_ID: u16 = 2;
const ADDR_ATTR_ADDR4: u16 = 3;
const ADDR_ATTR_ADDR6: u16 = 4;
const ADDR_ATTR_PORT: u16 = 5;
const ADDR_ATTR_FLAGS: u16 = 6;
const ADDR_ATTR_IF_IDX: u16 = 7;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The nested `MPTCP_PM_ATTR_ADDR`: one endpoint, or the selector of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PmAddr {
    pub id: Option<u8>,
    pub addr: Option<IpAddr>,
    /// Host byte order, as the kernel puts it.
    pub port: Option<u16>,
    pub flags: Option<u32>,
    pub ifindex: Option<i32>,
}

/// A path manager message: a command and the attributes the library uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PmMessage {
    pub cmd: u8,
    pub addr: Option<PmAddr>,
    pub rcv_add_addrs: Option<u32>,
    pub subflows: Option<u32>,
}

/// The attributes of an MPTCP_PM_ATTR_ADDR nest, for emitting.
enum AddrNla {
    Family(u16),
    Id(u8),
    Addr4(Ipv4Addr),
    Addr6(Ipv6Addr),
    Port(u16),
    Flags(u32),
    IfIndex(i32),
}

impl Nla for AddrNla {
    fn value_len(&self) -> usize {
        match self {
            AddrNla::Id(_) => 1,
            AddrNla::Family(_) | AddrNla::Port(_) => 2,
            AddrNla::Addr4(_) | AddrNla::Flags(_) | AddrNla::IfIndex(_) => 4,
            AddrNla::Addr6(_) => 16,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            AddrNla::Family(_) => ADDR_ATTR_FAMILY,
            AddrNla::Id(_) => ADDR_ATTR_ID,
            AddrNla::Addr4(_) => ADDR_ATTR_ADDR4,
            AddrNla::Addr6(_) => ADDR_ATTR_ADDR6,
            AddrNla::Port(_) => ADDR_ATTR_PORT,
            AddrNla::Flags(_) => ADDR_ATTR_FLAGS,
            AddrNla::IfIndex(_) => ADDR_ATTR_IF_IDX,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        // The buffer has exactly value_len() bytes: the emitters cannot fail.
        match self {
            AddrNla::Family(v) | AddrNla::Port(v) => {
                let _ = emit_u16(buf, *v);
            }
            AddrNla::Id(v) => buf[0] = *v,
            // in_addr / in6_addr: network byte order, i.e. the octets.
            AddrNla::Addr4(a) => buf.copy_from_slice(&a.octets()),
            AddrNla::Addr6(a) => buf.copy_from_slice(&a.octets()),
            AddrNla::Flags(v) => {
                let _ = emit_u32(buf, *v);
            }
            AddrNla::IfIndex(v) => {
                let _ = emit_i32(buf, *v);
            }
        }
    }
}

impl PmAddr {
    fn nlas(&self) -> Vec<AddrNla> {
        let mut nlas = Vec::with_capacity(6);
        match self.addr {
            Some(IpAddr::V4(a)) => nlas.extend([AddrNla::Family(AF_INET), AddrNla::Addr4(a)]),
            Some(IpAddr::V6(a)) => nlas.extend([AddrNla::Family(AF_INET6), AddrNla::Addr6(a)]),
            None => {}
        }
        nlas.extend(self.id.map(AddrNla::Id));
        nlas.extend(self.port.map(AddrNla::Port));
        nlas.extend(self.flags.map(AddrNla::Flags));
        nlas.extend(self.ifindex.map(AddrNla::IfIndex));
        nlas
    }

    fn parse(nest: &[u8]) -> Result<Self, DecodeError> {
        let mut addr = PmAddr::default();
        for nla in NlasIterator::new(nest) {
            let nla = nla?;
            let v = nla.value();
            match nla.kind() & NLA_TYPE_MASK {
                ADDR_ATTR_ID => addr.id = Some(parse_u8(v)?),
                ADDR_ATTR_ADDR4 => {
                    let o: [u8; 4] = v.try_into().map_err(|_| bad("ADDR4", v))?;
                    addr.addr = Some(IpAddr::from(o));
                }
                ADDR_ATTR_ADDR6 => {
                    let o: [u8; 16] = v.try_into().map_err(|_| bad("ADDR6", v))?;
                    addr.addr = Some(IpAddr::from(o));
                }
                ADDR_ATTR_PORT => addr.port = Some(parse_u16(v)?),
                ADDR_ATTR_FLAGS => addr.flags = Some(parse_u32(v)?),
                ADDR_ATTR_IF_IDX => addr.ifindex = Some(parse_i32(v)?),
                _ => {}
            }
        }
        Ok(addr)
    }
}

fn bad(what: &str, v: &[u8]) -> DecodeError {
    DecodeError::from(format!("MPTCP_PM_ADDR_ATTR_{what} of {} bytes", v.len()))
}

/// The top-level attributes of a path manager message, for emitting.
enum PmNla {
    Addr(Vec<AddrNla>),
    U32(u16, u32),
}

impl Nla for PmNla {
    fn value_len(&self) -> usize {
        match self {
            PmNla::Addr(nlas) => nlas.as_slice().buffer_len(),
            PmNla::U32(..) => 4,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            // Nested attributes carry NLA_F_NESTED: the kernel's strict validation of
            // new families wants it.
            PmNla::Addr(_) => ATTR_ADDR | NLA_F_NESTED,
            PmNla::U32(kind, _) => *kind,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            PmNla::Addr(nlas) => nlas.as_slice().emit(buf),
            PmNla::U32(_, v) => {
                let _ = emit_u32(buf, *v);
            }
        }
    }
}

impl PmMessage {
    pub(crate) fn new(cmd: u8) -> Self {
        PmMessage {
            cmd,
            ..Default::default()
        }
    }

    fn nlas(&self) -> Vec<PmNla> {
        let mut nlas = Vec::with_capacity(3);
        nlas.extend(self.addr.as_ref().map(|a| PmNla::Addr(a.nlas())));
        nlas.extend(
            self.rcv_add_addrs
                .map(|v| PmNla::U32(ATTR_RCV_ADD_ADDRS, v)),
        );
        nlas.extend(self.subflows.map(|v| PmNla::U32(ATTR_SUBFLOWS, v)));
        nlas
    }
}

impl GenlFamily for PmMessage {
    fn family_name() -> &'static str {
        MPTCP_PM_NAME
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        MPTCP_PM_VER
    }
}

impl Emitable for PmMessage {
    fn buffer_len(&self) -> usize {
        self.nlas().as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.nlas().as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for PmMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let mut msg = PmMessage::new(header.cmd);
        for nla in NlasIterator::new(buf) {
            let nla: NlaBuffer<&[u8]> = nla?;
            let v = nla.value();
            match nla.kind() & NLA_TYPE_MASK {
                ATTR_ADDR => msg.addr = Some(PmAddr::parse(v)?),
                ATTR_RCV_ADD_ADDRS => msg.rcv_add_addrs = Some(parse_u32(v)?),
                ATTR_SUBFLOWS => msg.subflows = Some(parse_u32(v)?),
                _ => {}
            }
        }
        Ok(msg)
    }
}

/// What travels on the library's generic netlink socket: the controller's messages
/// (family resolution) and the path manager's. Told apart by the netlink message type,
/// since their command numbers overlap.
#[derive(Debug)]
pub(crate) enum Genl {
    /// A request to the controller.
    Ctrl(GenlMessage<GenlCtrl>),
    /// An answer of the controller: only `CTRL_ATTR_FAMILY_ID` is decoded, if present.
    /// netlink-packet-generic 0.5's full decode of a controller message panics on a
    /// `CTRL_ATTR_POLICY` attribute whose inner length exceeds its value (it reads the
    /// nest with an unchecked buffer; found by the `netlink_genl` fuzz target), and the
    /// library needs nothing else from it.
    CtrlAnswer(Option<u16>),
    Pm(GenlMessage<PmMessage>),
}

const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `struct genlmsghdr`: cmd, version, reserved.
const GENL_HEADER_LEN: usize = 4;

/// The family id of a controller answer (`None` if it has none); a payload shorter than
/// the generic netlink header, or a malformed attribute, is an error.
fn parse_ctrl_answer(payload: &[u8]) -> Result<Option<u16>, DecodeError> {
    let nlas = payload
        .get(GENL_HEADER_LEN..)
        .ok_or_else(|| DecodeError::from("a controller message shorter than its header"))?;
    for nla in NlasIterator::new(nlas) {
        let nla = nla?;
        if nla.kind() & NLA_TYPE_MASK == CTRL_ATTR_FAMILY_ID {
            return Ok(Some(parse_u16(nla.value())?));
        }
    }
    Ok(None)
}

impl NetlinkSerializable for Genl {
    fn message_type(&self) -> u16 {
        match self {
            Genl::Ctrl(m) => m.message_type(),
            Genl::CtrlAnswer(_) => GENL_ID_CTRL,
            Genl::Pm(m) => m.message_type(),
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Genl::Ctrl(m) => NetlinkSerializable::buffer_len(m),
            // Only requests are sent; an answer serializes to nothing.
            Genl::CtrlAnswer(_) => 0,
            Genl::Pm(m) => NetlinkSerializable::buffer_len(m),
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        match self {
            Genl::Ctrl(m) => m.serialize(buffer),
            Genl::CtrlAnswer(_) => {}
            Genl::Pm(m) => m.serialize(buffer),
        }
    }
}

impl NetlinkDeserializable for Genl {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Self::Error> {
        if header.message_type == GENL_ID_CTRL {
            parse_ctrl_answer(payload).map(Genl::CtrlAnswer)
        } else {
            GenlMessage::<PmMessage>::deserialize(header, payload).map(Genl::Pm)
        }
    }
}

/// Why the path manager cannot be reached.
pub(crate) enum ResolveError {
    /// The kernel has no `mptcp_pm` family (no CONFIG_MPTCP).
    NoFamily,
    Netlink(NlError),
}

/// The `mptcp_pm` family id. Family ids are global (not per network namespace) and the
/// family is built in, so a resolved id is kept for the life of the process.
pub(crate) async fn family_id(handle: &ConnectionHandle<Genl>) -> Result<u16, ResolveError> {
    static FAMILY_ID: OnceLock<u16> = OnceLock::new();
    if let Some(id) = FAMILY_ID.get() {
        return Ok(*id);
    }
    let req = Genl::Ctrl(GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(MPTCP_PM_NAME.to_string())],
    }));
    let mut id = None;
    let res = socket::ack(handle, req, 0, |msg| {
        if let Genl::CtrlAnswer(answer) = msg {
            id = id.or(answer);
        }
    })
    .await;
    match res {
        Err(e) if e.errno() == Some(2) => return Err(ResolveError::NoFamily), // ENOENT
        Err(e) => return Err(ResolveError::Netlink(e)),
        Ok(()) => {}
    }
    let id = id.ok_or_else(|| {
        ResolveError::Netlink(NlError::Protocol(
            "the family answer has no CTRL_ATTR_FAMILY_ID".into(),
        ))
    })?;
    Ok(*FAMILY_ID.get_or_init(|| id))
}

/// A path manager request for the resolved family.
pub(crate) fn pm_request(family: u16, msg: PmMessage) -> Genl {
    let mut msg = GenlMessage::from_payload(msg);
    msg.set_resolved_family_id(family);
    Genl::Pm(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msg: PmMessage) -> PmMessage {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let header = GenlHeader {
            cmd: msg.cmd,
            version: MPTCP_PM_VER,
        };
        PmMessage::parse_with_param(&buf, header).unwrap()
    }

    #[test]
    fn controller_answer_gives_the_family_id_and_survives_a_lying_policy_nest() {
        // genlmsghdr, then CTRL_ATTR_FAMILY_ID (u16 0x1b), as the kernel answers.
        let mut ok = vec![1u8, 2, 0, 0];
        ok.extend_from_slice(&[6, 0, 1, 0, 0x1b, 0, 0, 0]);
        assert_eq!(parse_ctrl_answer(&ok).unwrap(), Some(0x1b));
        // CTRL_ATTR_POLICY (8) whose inner attribute claims 2048 bytes in a 9-byte value:
        // netlink-packet-generic 0.5 panicked on this (rust/fuzz/regressions/netlink_genl).
        let mut lying = vec![1u8, 2, 0, 0];
        lying.extend_from_slice(&[13, 0, 8, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_ctrl_answer(&lying).unwrap(), None);
        assert!(parse_ctrl_answer(&[1, 2]).is_err());
    }

    #[test]
    fn add_addr_round_trips() {
        let msg = PmMessage {
            cmd: CMD_ADD_ADDR,
            addr: Some(PmAddr {
                id: Some(3),
                addr: Some("2001:db8::2".parse().unwrap()),
                port: Some(8080),
                flags: Some(0b11),
                ifindex: Some(4),
            }),
            ..Default::default()
        };
        assert_eq!(round_trip(msg.clone()), msg);
    }

    #[test]
    fn limits_round_trip_and_wire_format() {
        let msg = PmMessage {
            cmd: CMD_SET_LIMITS,
            rcv_add_addrs: Some(4),
            subflows: Some(3),
            ..Default::default()
        };
        assert_eq!(round_trip(msg.clone()), msg);
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        // len 8, type 2 (RCV_ADD_ADDRS), value 4; len 8, type 3 (SUBFLOWS), value 3.
        let mut expected = Vec::new();
        for (kind, value) in [(2u16, 4u32), (3, 3)] {
            expected.extend_from_slice(&8u16.to_ne_bytes());
            expected.extend_from_slice(&kind.to_ne_bytes());
            expected.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(buf, expected);
    }

    #[test]
    fn address_nest_is_flagged_nested_and_ipv4_is_network_order() {
        let msg = PmMessage {
            cmd: CMD_DEL_ADDR,
            addr: Some(PmAddr {
                addr: Some("192.0.2.2".parse().unwrap()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let kind = u16::from_ne_bytes([buf[2], buf[3]]);
        assert_eq!(kind, ATTR_ADDR | NLA_F_NESTED);
        // Family (len 6, padded to 8), then ADDR4 whose value starts at 4 + 8 + 4.
        assert_eq!(&buf[16..20], &[192, 0, 2, 2]);
    }
}
