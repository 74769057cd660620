//! A kernel read scoped to the interfaces an apply names: [`read_kernel_for`].
//!
//! [`super::read_kernel`] dumps every link and every address, which is what `show` needs
//! and what an apply that names 8 interfaces on a host with 1000 does not: there the two
//! dumps are most of the apply's cost (1.1 MB of link messages for the kernel to fill and
//! for us to decode), and `ip -batch` of the same writes reads nothing at all. So this
//! read asks for the named links only, in batched lookups by name on one socket, then for
//! the addresses of each link found (an `RTM_GETADDR` dump filtered by `ifa_index`, which
//! the kernel honours on a `NETLINK_GET_STRICT_CHK` socket); endpoints, limits and the
//! sysctls are read as `read_kernel` reads them (they are per namespace, 8 endpoints at
//! most).
//!
//! The result is `read_kernel`'s, restricted to those links: links sorted by ifindex,
//! their addresses in the order of a full dump (IPv4 then IPv6, link by link), every
//! endpoint.

use futures_util::future::try_join;
use netlink_proto::sys::protocols::NETLINK_ROUTE;
use netlink_proto::ConnectionHandle;

use super::addresses::{self, Address};
use super::links::{self, Link};
use super::route::Route;
use super::{
    finish, read_mptcp, read_sysctls, socket, timed_out, warn_interrupted, KernelState, READ_LINKS,
    READ_TIMEOUT,
};
use crate::log::Log;
use crate::Result;

/// ENODEV: the link went away between its lookup and its address dump.
const ENODEV: i32 = 19;

/// Like [`super::read_kernel`], but only the links of `names` that exist (a name no link
/// has is simply absent, and so is a link found only by an alternative name) and only
/// their addresses; every MPTCP endpoint, the limits, `net.mptcp.enabled` and the other
/// MPTCP sysctls as `read_kernel` reads them. Costs one round trip per 16 names and one
/// per link found, whatever the number of links in the namespace.
///
/// A link removed while it is read is left out with its addresses.
pub async fn read_kernel_for(names: &[String], log: &Log) -> Result<KernelState> {
    let (enabled, sysctls) = read_sysctls()?;
    let route = async {
        if !names.iter().any(|n| links::can_be_link_name(n)) {
            return Ok((Vec::new(), Vec::new(), false));
        }
        let (mut conn, handle) =
            socket::open_strict::<Route>(NETLINK_ROUTE).map_err(|e| e.context(READ_LINKS))?;
        socket::drive_mut(&mut conn, links_and_addresses(&handle, names)).await
    };
    let ((links, addresses, interrupted), (endpoints, limits)) =
        tokio::time::timeout(READ_TIMEOUT, try_join(route, read_mptcp(enabled)))
            .await
            .map_err(|_| timed_out())??;
    if interrupted {
        warn_interrupted(log);
    }
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

/// The named links, sorted by ifindex, and their addresses; whether an address dump was
/// still interrupted after its retries.
async fn links_and_addresses(
    handle: &ConnectionHandle<Route>,
    names: &[String],
) -> Result<(Vec<Link>, Vec<Address>, bool)> {
    let mut links = links::get_by_names(handle, names).await?;
    links.sort_unstable_by_key(|l| l.index);
    links.dedup_by_key(|l| l.index);
    let mut addresses = Vec::new();
    let mut interrupted = false;
    let mut gone = Vec::new();
    // One dump at a time: the kernel refuses a second dump on a socket (EBUSY) until
    // the first is read to its end. Each costs about 27 µs (1000 veths, 8 or 32 names);
    // spreading them over 2, 4 or 8 sockets made the read slower, not faster: the kernel
    // fills a dump inside our recvmsg on this thread, so there is no waiting to overlap.
    for link in &links {
        match addresses::dump_of(handle, link.index).await {
            Ok((addrs, intr)) => {
                addresses.extend(addrs);
                interrupted |= intr;
            }
            Err(e) if e.errno() == Some(ENODEV) => gone.push(link.index),
            Err(e) => return Err(e.context(&format!("reading the IP addresses of {}", link.name))),
        }
    }
    links.retain(|l| !gone.contains(&l.index));
    // A full dump gives every IPv4 address (link by link), then every IPv6 one: the
    // kernel runs the families' dumps in family order. Same order here.
    addresses.sort_by_key(|a| a.address.is_ipv6());
    Ok((links, addresses, interrupted))
}
