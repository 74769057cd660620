//! MPTCP endpoints and limits (`ip mptcp endpoint`, `ip mptcp limits`), through the
//! in-kernel path manager's generic netlink family.

use std::fmt;
use std::net::IpAddr;

use netlink_proto::sys::protocols::NETLINK_GENERIC;
use netlink_proto::ConnectionHandle;

use super::error::NlError;
use super::genl::{self, Genl, PmAddr, PmMessage, ResolveError};
use super::socket;
use crate::state::MptcpFlags;
use crate::{Error, ErrorKind, Result};

const READ_ENDPOINTS: &str = "reading MPTCP endpoints";
const READ_LIMITS: &str = "reading MPTCP limits";

/// `MPTCP_PM_ADDR_FLAG_*` bits of an endpoint, as the kernel gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EndpointFlags(pub u32);

impl EndpointFlags {
    pub const SIGNAL: u32 = 1 << 0;
    pub const SUBFLOW: u32 = 1 << 1;
    pub const BACKUP: u32 = 1 << 2;
    pub const FULLMESH: u32 = 1 << 3;
    /// Made by the kernel for an address a connection used without an endpoint.
    pub const IMPLICIT: u32 = 1 << 4;
    /// Linux 6.18.
    pub const LAMINAR: u32 = 1 << 5;

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn contains(self, bits: u32) -> bool {
        self.0 & bits == bits
    }

    /// The schema's flags (signal, subflow, backup, fullmesh, implicit, laminar); other
    /// bits dropped.
    pub fn mptcp_flags(self) -> MptcpFlags {
        MptcpFlags::from_kernel_bits(self.0)
    }
}

impl From<MptcpFlags> for EndpointFlags {
    fn from(flags: MptcpFlags) -> Self {
        EndpointFlags(flags.kernel_bits())
    }
}

/// One MPTCP endpoint of the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// 1..=255 as the kernel numbers them; 0 in a request to add lets the kernel choose.
    pub id: u8,
    pub address: IpAddr,
    /// `None` when the endpoint has no port (port 0).
    pub port: Option<u16>,
    pub flags: EndpointFlags,
    /// The interface the endpoint is bound to (`dev`), if any.
    pub ifindex: Option<u32>,
}

impl Endpoint {
    pub(crate) fn from_pm(addr: PmAddr) -> Option<Self> {
        Some(Endpoint {
            id: addr.id?,
            address: addr.addr?,
            port: addr.port.filter(|p| *p != 0),
            flags: EndpointFlags(addr.flags.unwrap_or(0)),
            ifindex: addr
                .ifindex
                .and_then(|i| u32::try_from(i).ok())
                .filter(|i| *i != 0),
        })
    }

    fn to_pm(&self) -> PmAddr {
        PmAddr {
            id: (self.id != 0).then_some(self.id),
            addr: Some(self.address),
            port: self.port,
            flags: Some(self.flags.0),
            // ifindex fits in i32: the kernel's is an int.
            ifindex: self.ifindex.and_then(|i| i32::try_from(i).ok()),
        }
    }
}

impl fmt::Display for Endpoint {
    /// As `ip mptcp endpoint show` starts a line: `192.0.2.2 port 80 id 1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)?;
        if let Some(port) = self.port {
            write!(f, " port {port}")?;
        }
        if self.id != 0 {
            write!(f, " id {}", self.id)?;
        }
        Ok(())
    }
}

/// `ip mptcp limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// Additional subflows per connection.
    pub subflows: u32,
    /// ADD_ADDR announcements accepted per connection.
    pub add_addr_accepted: u32,
}

/// Opens a generic netlink socket, for `what`; the family is resolved by [`resolve`].
pub(crate) fn open(
    what: &str,
) -> Result<(netlink_proto::Connection<Genl>, ConnectionHandle<Genl>)> {
    socket::open(NETLINK_GENERIC).map_err(|e| e.context(what))
}

/// The `mptcp_pm` family id (cached for the process after the first call).
pub(crate) async fn resolve(handle: &ConnectionHandle<Genl>) -> Result<u16> {
    genl::family_id(handle).await.map_err(|e| match e {
        ResolveError::NoFamily => Error::new(
            ErrorKind::NotSupported,
            "the kernel has no MPTCP path manager (CONFIG_MPTCP)",
        ),
        ResolveError::Netlink(e) => {
            e.context("finding the MPTCP path manager (generic netlink family mptcp_pm)")
        }
    })
}

async fn endpoints_on(
    handle: &ConnectionHandle<Genl>,
    family: u16,
) -> std::result::Result<Vec<Endpoint>, NlError> {
    let mut endpoints = Vec::new();
    let req = genl::pm_request(family, PmMessage::new(genl::CMD_GET_ADDR));
    // At most 8 endpoints (the kernel's limit): a dump that races with a change is
    // simply read again by the next call; no retry loop here.
    socket::dump(handle, req, |msg| {
        if let Genl::Pm(m) = msg {
            endpoints.extend(m.payload.addr.and_then(Endpoint::from_pm));
        }
    })
    .await?;
    Ok(endpoints)
}

async fn limits_on(
    handle: &ConnectionHandle<Genl>,
    family: u16,
) -> std::result::Result<Limits, NlError> {
    let mut limits = None;
    let req = genl::pm_request(family, PmMessage::new(genl::CMD_GET_LIMITS));
    socket::ack(handle, req, 0, |msg| {
        if let Genl::Pm(m) = msg {
            limits = Some(Limits {
                subflows: m.payload.subflows.unwrap_or(0),
                add_addr_accepted: m.payload.rcv_add_addrs.unwrap_or(0),
            });
        }
    })
    .await?;
    limits.ok_or_else(|| NlError::Protocol("no answer to MPTCP_PM_CMD_GET_LIMITS".into()))
}

/// Every endpoint and the limits, on one socket.
pub(crate) async fn read() -> Result<(Vec<Endpoint>, Limits)> {
    let (conn, handle) = open(READ_ENDPOINTS)?;
    socket::drive(conn, async {
        let family = resolve(&handle).await?;
        let endpoints = endpoints_on(&handle, family)
            .await
            .map_err(|e| e.context(READ_ENDPOINTS))?;
        let limits = limits_on(&handle, family)
            .await
            .map_err(|e| e.context(READ_LIMITS))?;
        Ok((endpoints, limits))
    })
    .await
}

/// Dumps every MPTCP endpoint of the namespace (`ip mptcp endpoint show`). Needs
/// CAP_NET_ADMIN on current kernels.
pub async fn dump_endpoints() -> Result<Vec<Endpoint>> {
    let (conn, handle) = open(READ_ENDPOINTS)?;
    socket::drive(conn, async {
        let family = resolve(&handle).await?;
        endpoints_on(&handle, family)
            .await
            .map_err(|e| e.context(READ_ENDPOINTS))
    })
    .await
}

/// Reads the MPTCP limits (`ip mptcp limits show`).
pub async fn get_limits() -> Result<Limits> {
    let (conn, handle) = open(READ_LIMITS)?;
    socket::drive(conn, async {
        let family = resolve(&handle).await?;
        limits_on(&handle, family)
            .await
            .map_err(|e| e.context(READ_LIMITS))
    })
    .await
}

/// One path manager write: the message and what it does, for errors.
pub(crate) struct Command {
    pub msg: PmMessage,
    pub what: String,
}

impl Command {
    /// `ip mptcp endpoint add`.
    pub(crate) fn add(endpoint: &Endpoint) -> Self {
        Command {
            msg: PmMessage {
                addr: Some(endpoint.to_pm()),
                ..PmMessage::new(genl::CMD_ADD_ADDR)
            },
            what: format!("adding MPTCP endpoint {endpoint}"),
        }
    }

    /// `ip mptcp endpoint delete id ID`.
    pub(crate) fn delete(id: u8) -> Self {
        Command {
            msg: PmMessage {
                addr: Some(PmAddr {
                    id: Some(id),
                    ..Default::default()
                }),
                ..PmMessage::new(genl::CMD_DEL_ADDR)
            },
            what: format!("deleting MPTCP endpoint id {id}"),
        }
    }

    /// `ip mptcp endpoint flush`.
    pub(crate) fn flush() -> Self {
        Command {
            msg: PmMessage::new(genl::CMD_FLUSH_ADDRS),
            what: "flushing MPTCP endpoints".to_string(),
        }
    }

    /// `ip mptcp limits set`.
    pub(crate) fn set_limits(limits: Limits) -> Self {
        Command {
            msg: PmMessage {
                subflows: Some(limits.subflows),
                rcv_add_addrs: Some(limits.add_addr_accepted),
                ..PmMessage::new(genl::CMD_SET_LIMITS)
            },
            what: format!(
                "setting MPTCP limits (subflows {}, add_addr_accepted {})",
                limits.subflows, limits.add_addr_accepted
            ),
        }
    }

    /// `ip mptcp endpoint change id ID [no]backup [no]fullmesh` (`MPTCP_PM_CMD_SET_FLAGS`).
    ///
    /// What the kernel does with it (net/mptcp/pm_kernel.c, `mptcp_pm_nl_set_flags`,
    /// 6.18; checked against it in tests/kernel):
    /// - It finds the endpoint by address when the request carries one (and then ignores
    ///   the id: `change id 2 192.0.2.3 backup` changes the endpoint of 192.0.2.3,
    ///   whatever its id), else by id (id 0: EOPNOTSUPP "missing address ID"). So the
    ///   request carries the id alone when there is one, and the address (and port)
    ///   only when the id is 0. No such endpoint: EINVAL "address not found".
    /// - Only the backup and fullmesh bits change; every other bit of `flags` (signal,
    ///   subflow, laminar, implicit) is silently ignored, not refused, and so are the
    ///   port and the interface. Changing those takes a delete and an add.
    /// - fullmesh on a signal (or implicit) endpoint is refused: EINVAL "invalid addr
    ///   flags".
    /// - The id stays; established connections are told (MP_PRIO for backup, subflows
    ///   recreated for fullmesh).
    pub(crate) fn set_flags(endpoint: &Endpoint) -> Self {
        let by_id = endpoint.id != 0;
        let addr = PmAddr {
            id: by_id.then_some(endpoint.id),
            addr: (!by_id).then_some(endpoint.address),
            port: endpoint.port.filter(|_| !by_id),
            flags: Some(endpoint.flags.0),
            ifindex: None,
        };
        Command {
            msg: PmMessage {
                addr: Some(addr),
                ..PmMessage::new(genl::CMD_SET_FLAGS)
            },
            what: if by_id {
                format!("setting the flags of MPTCP endpoint id {}", endpoint.id)
            } else {
                format!("setting the flags of MPTCP endpoint {endpoint}")
            },
        }
    }
}

/// Sends one acknowledged path manager command on `handle`, for the resolved `family`.
pub(crate) async fn command_on(
    handle: &ConnectionHandle<Genl>,
    family: u16,
    cmd: Command,
) -> Result<()> {
    socket::ack(handle, genl::pm_request(family, cmd.msg), 0, |_| {})
        .await
        .map_err(|e| e.context(&cmd.what))
}

/// Sends one acknowledged path manager command on a socket of its own.
async fn command(cmd: Command) -> Result<()> {
    let (conn, handle) = open(&cmd.what)?;
    socket::drive(conn, async {
        let family = resolve(&handle).await?;
        command_on(&handle, family, cmd).await
    })
    .await
}

/// Adds an endpoint (`ip mptcp endpoint add`). An `id` of 0 lets the kernel choose one.
/// The kernel refuses a 9th endpoint and a duplicate address with ERANGE/EEXIST
/// ([`ErrorKind::Kernel`], with the kernel's own words).
pub async fn add_endpoint(endpoint: &Endpoint) -> Result<()> {
    command(Command::add(endpoint)).await
}

/// Deletes the endpoint with this id (`ip mptcp endpoint delete id ID`).
pub async fn delete_endpoint(id: u8) -> Result<()> {
    command(Command::delete(id)).await
}

/// Deletes every endpoint (`ip mptcp endpoint flush`).
pub async fn flush_endpoints() -> Result<()> {
    command(Command::flush()).await
}

/// Sets both limits (`ip mptcp limits set`). The kernel refuses values above 8.
pub async fn set_limits(limits: Limits) -> Result<()> {
    command(Command::set_limits(limits)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MptcpFlag;

    #[test]
    fn endpoint_from_the_kernel() {
        let ep = Endpoint::from_pm(PmAddr {
            id: Some(1),
            addr: Some("192.0.2.2".parse().unwrap()),
            port: Some(0),
            flags: Some(EndpointFlags::SIGNAL | EndpointFlags::SUBFLOW | EndpointFlags::IMPLICIT),
            ifindex: Some(0),
        })
        .unwrap();
        assert_eq!((ep.port, ep.ifindex), (None, None));
        assert!(ep.flags.contains(EndpointFlags::IMPLICIT));
        let flags: Vec<_> = ep.flags.mptcp_flags().iter().collect();
        assert_eq!(
            flags,
            vec![MptcpFlag::Signal, MptcpFlag::Subflow, MptcpFlag::Implicit]
        );
        assert_eq!(ep.to_string(), "192.0.2.2 id 1");
        // No id or no address: not an endpoint.
        assert_eq!(Endpoint::from_pm(PmAddr::default()), None);
    }

    #[test]
    fn id_zero_is_left_to_the_kernel() {
        let ep = Endpoint {
            id: 0,
            address: "2001:db8::1".parse().unwrap(),
            port: Some(443),
            flags: EndpointFlags(EndpointFlags::SIGNAL),
            ifindex: Some(3),
        };
        let pm = ep.to_pm();
        assert_eq!((pm.id, pm.port, pm.ifindex), (None, Some(443), Some(3)));
        assert_eq!(ep.to_string(), "2001:db8::1 port 443");
    }

    #[test]
    fn set_flags_selects_by_id_else_by_address() {
        let mut ep = Endpoint {
            id: 2,
            address: "192.0.2.2".parse().unwrap(),
            port: Some(4000),
            flags: EndpointFlags(EndpointFlags::SUBFLOW | EndpointFlags::BACKUP),
            ifindex: Some(3),
        };
        let cmd = Command::set_flags(&ep);
        assert_eq!(cmd.msg.cmd, genl::CMD_SET_FLAGS);
        let pm = cmd.msg.addr.unwrap();
        // The kernel would look up by address and ignore the id: the id goes alone.
        assert_eq!(
            (pm.id, pm.addr, pm.port, pm.ifindex),
            (Some(2), None, None, None)
        );
        assert_eq!(pm.flags, Some(0b110));
        assert_eq!(cmd.what, "setting the flags of MPTCP endpoint id 2");
        ep.id = 0;
        let cmd = Command::set_flags(&ep);
        let pm = cmd.msg.addr.unwrap();
        assert_eq!(
            (pm.id, pm.addr, pm.port),
            (None, Some(ep.address), Some(4000))
        );
        assert_eq!(
            cmd.what,
            "setting the flags of MPTCP endpoint 192.0.2.2 port 4000"
        );
    }
}
