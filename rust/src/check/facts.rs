//! What `check` reads, once: the kernel (links, addresses, endpoints, limits, sysctls),
//! the MPTCP counters and sockets, `rp_filter` of the interfaces with endpoints, whether
//! an `mptcpd` runs in the namespace, and, unless kernel-only, what NetworkManager
//! applied to each device. The evidence reads (sockets, counters) are best effort: a
//! failure is logged and the rest is checked.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::log::Level;
use crate::netlink::{self, KernelState, MptcpConnection, Subflow};
use crate::nm::query::{connect, read_nm, system_bus_present};
use crate::{log_at, Log, Result};

/// NetworkManager's view, where it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NmFacts {
    pub version: String,
    /// Per interface NM has a device for: `connection.mptcp-flags` of the applied
    /// profile (`None`: nothing applied).
    pub applied_flags: HashMap<String, Option<u32>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub kernel: KernelState,
    pub counters: BTreeMap<String, u64>,
    pub connections: Vec<MptcpConnection>,
    pub subflows: Vec<Subflow>,
    /// `rp_filter` as applied, by interface (those with IPv4 endpoints).
    pub rp_filter: HashMap<String, u8>,
    /// PIDs of `mptcpd` processes in this network namespace; looked for only when a
    /// finding can use them (`rules::wants_mptcpd`), empty otherwise.
    pub mptcpd: Vec<u32>,
    pub nm: Option<NmFacts>,
}

impl Facts {
    /// The name of the link with this ifindex.
    pub fn ifname(&self, ifindex: u32) -> Option<&str> {
        self.kernel.link(ifindex).map(|l| l.name.as_str())
    }

    /// The link an address is on.
    pub fn link_of(&self, ip: IpAddr) -> Option<&crate::netlink::Link> {
        let a = self.kernel.addresses.iter().find(|a| a.address == ip)?;
        self.kernel.link(a.ifindex)
    }
}

pub async fn read(kernel_only: bool, log: &Log) -> Result<Facts> {
    let kernel = netlink::read_kernel(log).await?;
    let mut facts = Facts {
        kernel,
        ..Facts::default()
    };
    match netlink::mptcp_counters() {
        Ok(c) => facts.counters = c,
        Err(e) => log_at!(log, Level::Warn, "MPTCP counters not read: {}", e.msg()),
    }
    if facts.kernel.mptcp_enabled.is_some() {
        match netlink::read_connections().await {
            Ok((c, s)) => {
                facts.connections = c;
                facts.subflows = s;
            }
            Err(e) => log_at!(log, Level::Warn, "MPTCP sockets not read: {}", e.msg()),
        }
    }
    let links: Vec<&str> = facts
        .kernel
        .endpoints
        .iter()
        .filter(|e| e.address.is_ipv4())
        .filter_map(|e| {
            e.ifindex
                .and_then(|i| facts.kernel.link(i))
                .or_else(|| facts.link_of(e.address))
        })
        .map(|l| l.name.as_str())
        .collect();
    facts.rp_filter = netlink::rp_filters(links);
    if !kernel_only && system_bus_present() {
        match read_nm_facts().await {
            Ok(nm) => facts.nm = Some(nm),
            Err(e) => log_at!(
                log,
                Level::Info,
                "NetworkManager not read ({}); its findings are left out",
                e.msg()
            ),
        }
    }
    // Last: whether it is wanted depends on the path manager and NetworkManager's view.
    if super::rules::wants_mptcpd(&facts) {
        facts.mptcpd = mptcpd_here();
    }
    Ok(facts)
}

async fn read_nm_facts() -> Result<NmFacts> {
    let conn = connect().await?;
    crate::nm::query::ensure_same_namespace(&conn).await?;
    let nm = read_nm(&conn, None).await?;
    Ok(NmFacts {
        version: nm.version,
        applied_flags: nm
            .devices
            .into_iter()
            .map(|d| (d.interface, d.applied.map(|a| a.mptcp_flags)))
            .collect(),
    })
}

/// `mptcpd` processes whose network namespace is the calling thread's.
fn mptcpd_here() -> Vec<u32> {
    let Ok(ours) = std::fs::read_link("/proc/thread-self/ns/net") else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            comm_is(*pid, b"mptcpd")
                && std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n == ours)
        })
        .collect()
}

/// Whether process `pid`'s name is `name`: one read of /proc/PID/comm (at most 15 bytes
/// and a newline), not read_to_string's stat and second read, as this runs for every
/// process of the host.
fn comm_is(pid: u32, name: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(format!("/proc/{pid}/comm")) else {
        return false;
    };
    let mut buf = [0u8; 32];
    match file.read(&mut buf) {
        Ok(n) => buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]) == name,
        Err(_) => false,
    }
}
