//! The kernel over netlink: links, addresses, MPTCP endpoints and limits, and
//! `net.mptcp.enabled`, of the network namespace of the calling thread; read, and written
//! for an apply without NetworkManager.
//!
//! [`read_kernel`] reads everything with one dump per object kind (never one request per
//! interface), the three reads joined on their own sockets (the kernel runs one dump at a
//! time per socket). They interleave on the calling thread: the kernel fills a dump inside
//! our `recvmsg` calls, so joining saves no time over reading one after the other (1000
//! veths: 7.7 ms either way), and moving the link dump to a second thread did not help
//! either; the join keeps a slow reply from holding up the others.
//!
//! ```no_run
//! use mptcpstate::{netlink::read_kernel, Runtime};
//! let log = mptcpstate::Log::new();
//! let kernel = Runtime::global()?.block_on(read_kernel(&log))??;
//! for link in &kernel.links {
//!     println!("{} {}", link.name, link.iface_type.name());
//! }
//! # Ok::<(), mptcpstate::Error>(())
//! ```
//!
//! [`read_kernel_for`] reads the same for a few named links only (lookups by name and
//! per-link address dumps: a median of 0.3 ms for 8 names among 1000 veths, where
//! `read_kernel` takes 6.3 ms), for an apply that names few interfaces on a host with many.
//!
//! Writes go through a [`Writer`], which keeps one route and one generic netlink socket
//! for a whole apply, as `ip -batch` does; the free functions ([`add_endpoint`],
//! [`set_limits`], ...) open a socket per call.
//!
//! The futures here must be polled inside the library's [`Runtime`](crate::Runtime) (they register their
//! sockets with its reactor), on the thread whose network namespace is meant: sockets are
//! opened when the future first runs.
//!
//! Errors: EPERM/EACCES become [`ErrorKind::PermissionDenied`] naming CAP_NET_ADMIN
//! (reading endpoints needs it on current kernels); a kernel without the `mptcp_pm`
//! family gives [`ErrorKind::NotSupported`]; other failures [`ErrorKind::Kernel`] with the
//! errno's text and the kernel's extended ack message. A link or address that vanishes
//! while it is read is not an error: it is simply not there.

mod addresses;
mod counters;
#[doc(hidden)]
pub mod decode;
mod diag;
mod error;
mod genl;
mod links;
mod mptcp;
mod route;
mod scoped;
mod socket;
mod sysctl;
mod writer;

use std::time::Duration;

use futures_util::future::try_join3;
use netlink_proto::sys::protocols::NETLINK_ROUTE;

use crate::log::{Level, Log};
use crate::{log_at, Error, ErrorKind, Result};
use route::Route;

pub use addresses::{Address, AddressFlags, AddressScope};
pub use counters::{mptcp_counters, rp_filters};
pub use diag::{
    read_connections, MptcpConnection, MptcpInfo, Subflow, MPTCP_INFO_FLAG_FALLBACK,
    TCP_ESTABLISHED, TCP_SYN_SENT,
};
pub use links::{Link, OperState};
pub use mptcp::{
    add_endpoint, delete_endpoint, dump_endpoints, flush_endpoints, get_limits, set_limits,
    Endpoint, EndpointFlags, Limits,
};
pub use scoped::read_kernel_for;
pub use sysctl::{
    mptcp_enabled, mptcp_sysctls, set_mptcp_enabled, set_path_manager, set_scheduler, MptcpSysctls,
    MPTCP_ENABLED_PATH,
};
pub use writer::{Writer, WRITE_TIMEOUT};

/// How long [`read_kernel`] waits for the kernel's answers. Netlink answers in
/// microseconds; this only bounds a socket that never completes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

const READ_LINKS: &str = "reading links";
const READ_ADDRESSES: &str = "reading IP addresses";

/// What the kernel holds, as the library uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelState {
    /// Sorted by ifindex.
    pub links: Vec<Link>,
    /// IPv4 and IPv6, sorted by ifindex (stable: in the kernel's order within a link, as
    /// [`addresses_of`](Self::addresses_of) needs); only of links in `links`.
    pub addresses: Vec<Address>,
    /// `net.mptcp.enabled`; `None` when the kernel has no MPTCP (then `limits` is `None`
    /// and `endpoints` empty: the path manager is not asked).
    pub mptcp_enabled: Option<bool>,
    pub limits: Option<Limits>,
    /// In the kernel's order (by id).
    pub endpoints: Vec<Endpoint>,
    /// The other MPTCP sysctls (path manager, scheduler); empty without MPTCP.
    pub sysctls: MptcpSysctls,
}

impl KernelState {
    /// The link with this ifindex.
    pub fn link(&self, ifindex: u32) -> Option<&Link> {
        self.links
            .binary_search_by_key(&ifindex, |l| l.index)
            .ok()
            .map(|i| &self.links[i])
    }

    /// The addresses of the link with this ifindex: a binary search, not a scan of every
    /// address (an apply naming 1000 interfaces asks once for each).
    pub fn addresses_of(&self, ifindex: u32) -> impl Iterator<Item = &Address> {
        debug_assert!(
            self.addresses.is_sorted_by_key(|a| a.ifindex),
            "KernelState.addresses must be sorted by ifindex"
        );
        let start = self.addresses.partition_point(|a| a.ifindex < ifindex);
        self.addresses[start..]
            .iter()
            .take_while(move |a| a.ifindex == ifindex)
    }
}

/// Reads links, addresses, MPTCP endpoints, limits and `net.mptcp.enabled` of the calling
/// thread's network namespace: one dump per kind, concurrently.
pub async fn read_kernel(log: &Log) -> Result<KernelState> {
    let (enabled, sysctls) = read_sysctls()?;

    let links = async {
        let (conn, handle) =
            socket::open::<Route>(NETLINK_ROUTE).map_err(|e| e.context(READ_LINKS))?;
        socket::drive(conn, links::dump(&handle))
            .await
            .map_err(|e| e.context(READ_LINKS))
    };
    // A second socket: the kernel runs one dump at a time per socket.
    let addresses = async {
        let (conn, handle) =
            socket::open::<Route>(NETLINK_ROUTE).map_err(|e| e.context(READ_ADDRESSES))?;
        socket::drive(conn, addresses::dump(&handle))
            .await
            .map_err(|e| e.context(READ_ADDRESSES))
    };
    let ((mut links, links_intr), (mut addresses, addrs_intr), (endpoints, limits)) =
        tokio::time::timeout(
            READ_TIMEOUT,
            try_join3(links, addresses, read_mptcp(enabled)),
        )
        .await
        .map_err(|_| timed_out())??;
    if links_intr || addrs_intr {
        warn_interrupted(log);
    }

    links.sort_unstable_by_key(|l| l.index);
    links.dedup_by_key(|l| l.index);
    // A link that vanished between the two dumps takes its addresses with it; one that
    // appeared after the link dump waits for the next read.
    addresses.retain(|a| links.binary_search_by_key(&a.ifindex, |l| l.index).is_ok());
    Ok(finish(
        log,
        KernelState {
            links,
            addresses,
            mptcp_enabled: enabled,
            limits,
            endpoints,
            sysctls,
        },
    ))
}

/// `net.mptcp.enabled` and the other MPTCP sysctls: procfs reads that never sleep (see
/// sysctl.rs); `enabled` decides whether the path manager is asked.
fn read_sysctls() -> Result<(Option<bool>, MptcpSysctls)> {
    let enabled = sysctl::mptcp_enabled()?;
    let sysctls = match enabled {
        Some(_) => sysctl::mptcp_sysctls()?,
        None => MptcpSysctls::default(),
    };
    Ok((enabled, sysctls))
}

/// Every endpoint and the limits, unless the kernel has no MPTCP.
async fn read_mptcp(enabled: Option<bool>) -> Result<(Vec<Endpoint>, Option<Limits>)> {
    match enabled {
        None => Ok((Vec::new(), None)),
        Some(_) => mptcp::read().await.map(|(eps, limits)| (eps, Some(limits))),
    }
}

fn timed_out() -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "the kernel did not answer the netlink dumps within {} s",
            READ_TIMEOUT.as_secs()
        ),
    )
}

fn warn_interrupted(log: &Log) {
    log_at!(
        log,
        Level::Warn,
        "the kernel's links or addresses kept changing while they were read; \
         the result may miss some of them"
    );
}

/// Sorts the addresses by link (see [`KernelState::addresses`]) and logs what was read.
fn finish(log: &Log, mut state: KernelState) -> KernelState {
    state.addresses.sort_by_key(|a| a.ifindex);
    log_at!(
        log,
        Level::Debug,
        "kernel: {} links, {} addresses, {}",
        state.links.len(),
        state.addresses.len(),
        match state.mptcp_enabled {
            Some(_) => format!("{} MPTCP endpoints", state.endpoints.len()),
            None => "no MPTCP".to_string(),
        }
    );
    state
}
