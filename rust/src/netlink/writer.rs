//! The kernel's write primitives for an apply without NetworkManager: addresses, link
//! state, MPTCP endpoints and limits, on one route and one generic netlink socket kept
//! for the whole apply.
//!
//! `ip -batch` keeps one socket for all its commands; a socket per write would cost a
//! `socket`/`bind`/`setsockopt` round and a reactor registration each time, which is most
//! of what a write costs. The [`Writer`] owns both sockets and their connections, and
//! drives a connection only while one of its requests is in flight
//! ([`socket::drive_mut`]): requests go one at a time, each waiting for the kernel's ack,
//! so an error names the write that failed and the ones after it are not sent.
//!
//! A request whose future is dropped before its ack (the caller gave up, or
//! [`WRITE_TIMEOUT`] ran out) leaves the writer unsettled: its request may still be queued
//! and would go out with the next one, or its answer may still come. Such a writer refuses
//! further requests ([`ErrorKind::Bug`]); open another one (a rollback should).

use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{NetlinkDeserializable, NetlinkSerializable, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags as NlAddressFlags, AddressHeaderFlags, AddressMessage,
    AddressScope as NlScope,
};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_proto::sys::protocols::{NETLINK_GENERIC, NETLINK_ROUTE};
use netlink_proto::{Connection, ConnectionHandle};

use super::addresses::{Address, AddressFlags};
use super::genl::Genl;
use super::mptcp::{self, Command, Endpoint, Limits};
use super::route::Route;
use super::socket;
use crate::{Error, ErrorKind, Result, Runtime};

/// How long a write waits for the kernel's ack. The kernel acks inside our `sendmsg`;
/// this only bounds a socket that never answers.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `IFA_F_*` bits a caller may set on a new address; the others are the kernel's to
/// set (`PERMANENT`, `TENTATIVE`, `DADFAILED`, ...) or not ours to ask for.
const SETTABLE_ADDRESS_FLAGS: u32 = AddressFlags::NODAD
    | AddressFlags::NOPREFIXROUTE
    | AddressFlags::MANAGETEMPADDR
    | AddressFlags::HOMEADDRESS;

/// A connection and its handle.
struct Socket<T: Debug + NetlinkSerializable + NetlinkDeserializable> {
    conn: Connection<T>,
    handle: ConnectionHandle<T>,
}

/// Writes to the kernel of one network namespace, one acknowledged request at a time, on
/// two sockets opened once (see the module docs).
///
/// ```no_run
/// use mptcpstate::netlink::{Address, AddressFlags, AddressScope, Writer};
/// use mptcpstate::Runtime;
/// let mut writer = Writer::open()?;
/// let addr = Address {
///     ifindex: 3,
///     address: "192.0.2.2".parse().unwrap(),
///     prefix_len: 24,
///     flags: AddressFlags(0),
///     scope: AddressScope::Universe,
///     valid_lft: None,
///     preferred_lft: None,
/// };
/// Runtime::global()?.block_on(async {
///     writer.add_address(&addr).await?;
///     writer.set_link_up(3, true).await
/// })??;
/// # Ok::<(), mptcpstate::Error>(())
/// ```
pub struct Writer {
    route: Socket<Route>,
    genl: Socket<Genl>,
    /// The write in flight, or the one that never settled (see the module docs).
    unsettled: Option<String>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("unsettled", &self.unsettled)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Opens the sockets on the calling thread, so in its network namespace; they are
    /// registered with the runtime the caller runs in, else with the library's
    /// [`Runtime`], so the writes can be awaited inside [`Runtime::block_on`] on any
    /// thread. (A runtime of the caller's own, as the rollback timer's, drives them
    /// itself; the library's may have no I/O thread, see [`Runtime::drive_on_caller`].)
    /// The `mptcp_pm` family is resolved by the first MPTCP write.
    pub fn open() -> Result<Writer> {
        const WHAT: &str = "opening netlink sockets for writing";
        let _reactor = match tokio::runtime::Handle::try_current() {
            Ok(_) => None,
            Err(_) => Some(Runtime::global()?.handle().enter()),
        };
        let (conn, handle) = socket::open::<Route>(NETLINK_ROUTE).map_err(|e| e.context(WHAT))?;
        let route = Socket { conn, handle };
        let (conn, handle) = socket::open::<Genl>(NETLINK_GENERIC).map_err(|e| e.context(WHAT))?;
        let genl = Socket { conn, handle };
        Ok(Writer {
            route,
            genl,
            unsettled: None,
        })
    }

    /// `ip addr add ADDR/PREFIX dev IFINDEX` (`RTM_NEWADDR`, `NLM_F_CREATE|NLM_F_EXCL`):
    /// uses `addr.ifindex`, `addr.address`, `addr.prefix_len` and, of `addr.flags`, only
    /// NODAD, NOPREFIXROUTE, MANAGETEMPADDR and HOMEADDRESS. The lifetime is permanent
    /// (no `IFA_CACHEINFO`); the scope is the kernel's, host for 127.0.0.0/8 as `ip`
    /// asks. IPv4 gets `IFA_LOCAL` and `IFA_ADDRESS` (no broadcast), like `ip addr add`.
    /// An address the link already has (same address and prefix for IPv4, same address
    /// for IPv6) is refused with EEXIST ([`ErrorKind::Kernel`]).
    pub async fn add_address(&mut self, addr: &Address) -> Result<()> {
        let what = format!(
            "adding address {}/{} to ifindex {}",
            addr.address, addr.prefix_len, addr.ifindex
        );
        let flags = addr.flags.bits() & SETTABLE_ADDRESS_FLAGS;
        let msg = address_message(addr.ifindex, addr.address, addr.prefix_len, Some(flags));
        let req = RouteNetlinkMessage::NewAddress(msg);
        self.route(req, NLM_F_CREATE | NLM_F_EXCL, what).await
    }

    /// `ip addr del ADDR/PREFIX dev IFINDEX` (`RTM_DELADDR`). Like `ip`, the request
    /// carries the address as both `IFA_LOCAL` and `IFA_ADDRESS`, so the prefix must
    /// match (else EADDRNOTAVAIL "Address not found"), and an IPv4 point-to-point
    /// address, whose `IFA_ADDRESS` is its peer, is not found this way.
    pub async fn delete_address(
        &mut self,
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<()> {
        let what = format!("deleting address {address}/{prefix_len} from ifindex {ifindex}");
        let req =
            RouteNetlinkMessage::DelAddress(address_message(ifindex, address, prefix_len, None));
        self.route(req, 0, what).await
    }

    /// `ip link set dev IFINDEX up|down`: `RTM_SETLINK` with `ifi_change = IFF_UP`, so
    /// no other flag changes (and no link is ever created). No such link: ENODEV.
    pub async fn set_link_up(&mut self, ifindex: u32, up: bool) -> Result<()> {
        let what = format!(
            "setting ifindex {ifindex} {}",
            if up { "up" } else { "down" }
        );
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        msg.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        msg.header.change_mask = LinkFlags::Up;
        self.route(RouteNetlinkMessage::SetLink(msg), 0, what).await
    }

    /// As [`super::add_endpoint`], on this writer's socket (id 0: the kernel chooses).
    pub async fn add_endpoint(&mut self, endpoint: &Endpoint) -> Result<()> {
        self.pm(Command::add(endpoint)).await
    }

    /// As [`super::delete_endpoint`].
    pub async fn delete_endpoint(&mut self, id: u8) -> Result<()> {
        self.pm(Command::delete(id)).await
    }

    /// `MPTCP_PM_CMD_SET_FLAGS` (`ip mptcp endpoint change id ID [no]backup
    /// [no]fullmesh`): the endpoint is selected by `endpoint.id` (by `endpoint.address`
    /// and port when the id is 0), and only its backup and fullmesh bits take the values
    /// of `endpoint.flags`; the id stays. The kernel ignores the other bits (a change of
    /// signal, subflow or laminar needs a delete and an add), refuses fullmesh on a
    /// signal endpoint (EINVAL "invalid addr flags") and an unknown endpoint (EINVAL
    /// "address not found").
    pub async fn set_endpoint_flags(&mut self, endpoint: &Endpoint) -> Result<()> {
        self.pm(Command::set_flags(endpoint)).await
    }

    /// As [`super::set_limits`].
    pub async fn set_limits(&mut self, limits: Limits) -> Result<()> {
        self.pm(Command::set_limits(limits)).await
    }

    /// Marks `what` in flight; refused when an earlier write never settled.
    fn begin(&mut self, what: &str) -> Result<()> {
        if let Some(earlier) = &self.unsettled {
            return Err(Error::bug(format!(
                "{what}: this netlink writer is unusable: `{earlier}` was cancelled or \
                 timed out, and its request or its answer may still be in the socket; \
                 open a new Writer"
            )));
        }
        self.unsettled = Some(what.to_string());
        Ok(())
    }

    /// One acknowledged route request.
    async fn route(&mut self, req: RouteNetlinkMessage, flags: u16, what: String) -> Result<()> {
        self.begin(&what)?;
        let Socket { conn, handle } = &mut self.route;
        let work = socket::ack(handle, Route::Request(req), flags, |_| {});
        let answer = within(&what, socket::drive_mut(conn, work)).await?;
        self.unsettled = None;
        answer.map_err(|e| e.context(&what))
    }

    /// One acknowledged path manager command (resolving the family first, once per
    /// process).
    async fn pm(&mut self, cmd: Command) -> Result<()> {
        let what = cmd.what.clone();
        self.begin(&what)?;
        let Socket { conn, handle } = &mut self.genl;
        let work = async {
            let family = mptcp::resolve(handle).await?;
            mptcp::command_on(handle, family, cmd).await
        };
        let answer = within(&what, socket::drive_mut(conn, work)).await?;
        self.unsettled = None;
        answer
    }
}

/// `work` within [`WRITE_TIMEOUT`]; a timeout leaves the writer unsettled (the caller
/// returns before clearing it).
async fn within<F: Future>(what: &str, work: F) -> Result<F::Output> {
    tokio::time::timeout(WRITE_TIMEOUT, work)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: the kernel did not answer within {} s",
                    WRITE_TIMEOUT.as_secs()
                ),
            )
        })
}

/// The `RTM_NEWADDR`/`RTM_DELADDR` of `ip addr add|del ADDR/PREFIX dev IFINDEX`; `flags`
/// only for an add.
fn address_message(
    ifindex: u32,
    address: IpAddr,
    prefix_len: u8,
    flags: Option<u32>,
) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = prefix_len;
    msg.header.index = ifindex;
    if let Some(flags) = flags {
        // iproute2's default_scope(): host for 127.0.0.0/8, else universe (which the
        // kernel narrows itself for IPv6 link-local and loopback addresses).
        if matches!(address, IpAddr::V4(a) if a.octets()[0] == 127) {
            msg.header.scope = NlScope::Host;
        }
        // The header's 8 bits for old kernels, IFA_FLAGS (which wins) for the rest.
        msg.header.flags = AddressHeaderFlags::from_bits_retain((flags & 0xff) as u8);
        msg.attributes
            .push(AddressAttribute::Flags(NlAddressFlags::from_bits_retain(
                flags,
            )));
    }
    msg.attributes.push(AddressAttribute::Local(address));
    msg.attributes.push(AddressAttribute::Address(address));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    fn wire(msg: &AddressMessage) -> Vec<u8> {
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn add_address_message_is_what_ip_sends() {
        let ip: IpAddr = "192.0.2.2".parse().unwrap();
        let msg = address_message(3, ip, 24, Some(AddressFlags::NODAD));
        assert_eq!(msg.header.family, AddressFamily::Inet);
        assert_eq!((msg.header.index, msg.header.prefix_len), (3, 24));
        assert_eq!(msg.header.scope, NlScope::Universe);
        assert_eq!(msg.header.flags, AddressHeaderFlags::Nodad);
        assert_eq!(
            msg.attributes,
            vec![
                AddressAttribute::Flags(NlAddressFlags::Nodad),
                AddressAttribute::Local(ip),
                AddressAttribute::Address(ip),
            ]
        );
        // What the reader makes of it: the same address, the flags kept.
        let back = Address::parse(&wire(&msg)).unwrap().unwrap();
        assert_eq!((back.address, back.prefix_len, back.ifindex), (ip, 24, 3));
        assert_eq!(back.flags.bits(), AddressFlags::NODAD);
    }

    #[test]
    fn loopback_is_host_scope_and_delete_has_no_flags() {
        let lo: IpAddr = "127.0.0.2".parse().unwrap();
        let msg = address_message(1, lo, 8, Some(0));
        assert_eq!(msg.header.scope, NlScope::Host);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let msg = address_message(4, v6, 64, None);
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert_eq!(
            msg.attributes,
            vec![AddressAttribute::Local(v6), AddressAttribute::Address(v6)]
        );
    }

    #[test]
    fn only_the_settable_address_flags_are_sent() {
        let all = AddressFlags(u32::MAX);
        let kept = all.bits() & SETTABLE_ADDRESS_FLAGS;
        assert_eq!(kept, 0x02 | 0x10 | 0x100 | 0x200);
    }

    #[test]
    fn an_unsettled_writer_refuses_before_sending() {
        // Opening sends nothing; the refused write names an ifindex no link has, so that
        // even a regression that sent it would change nothing in this namespace.
        let mut writer = Writer::open().unwrap();
        writer
            .begin("adding address 192.0.2.2/24 to ifindex 3")
            .unwrap();
        let rt = Runtime::global().unwrap();
        let err = rt
            .block_on(writer.set_link_up(u32::MAX, true))
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Bug);
        assert!(
            err.msg().starts_with(
                "setting ifindex 4294967295 up: this netlink writer is unusable: \
                 `adding address 192.0.2.2/24 to ifindex 3` was cancelled or timed out"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_writer_is_send() {
        fn send<T: Send>() {}
        send::<Writer>();
    }
}
