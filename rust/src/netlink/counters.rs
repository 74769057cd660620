//! The kernel's MPTCP counters (`MPTcpExt` in /proc/net/netstat, as `nstat` shows them)
//! and per-interface sysctls `check` reads, of the calling thread's network namespace.
//!
//! /proc/net follows the process's main thread, not the calling thread:
//! /proc/thread-self/net is the calling thread's namespace.

use std::collections::{BTreeMap, HashMap};
use std::io;

use crate::{Error, ErrorKind, Result};

const NETSTAT: &str = "/proc/thread-self/net/netstat";

/// `MPTcpExt` counters by name (`MPJoinSynTx`, `AddAddrDrop` ...); empty where the kernel
/// has no MPTCP.
pub fn mptcp_counters() -> Result<BTreeMap<String, u64>> {
    let text = match std::fs::read_to_string(NETSTAT) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Kernel,
                format!("reading {NETSTAT}: {e}"),
            ))
        }
    };
    Ok(parse_netstat(&text, "MPTcpExt:"))
}

/// The counters of one section of /proc/net/netstat: a line of names, then a line of
/// values, both starting with the section's name.
fn parse_netstat(text: &str, section: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(section));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect()
}

/// `net.ipv4.conf.<ifname>.rp_filter` of each interface as the kernel applies it: the
/// larger of the interface's and `all`'s (read once); interfaces whose own is unreadable
/// are left out.
pub fn rp_filters<'a>(ifnames: impl IntoIterator<Item = &'a str>) -> HashMap<String, u8> {
    let read = |name: &str| -> Option<u8> {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut out = HashMap::new();
    let mut all = None;
    for name in ifnames {
        if out.contains_key(name) {
            continue;
        }
        if let Some(own) = read(name) {
            let all = *all.get_or_insert_with(|| read("all").unwrap_or(0));
            out.insert(name.to_string(), own.max(all));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_sections() {
        let text = "TcpExt: SyncookiesSent Foo\nTcpExt: 1 2\nMPTcpExt: MPCapableSYNRX MPJoinSynTx AddAddrDrop\nMPTcpExt: 5 7 3\n";
        let c = parse_netstat(text, "MPTcpExt:");
        assert_eq!(c.get("MPJoinSynTx"), Some(&7));
        assert_eq!(c.get("AddAddrDrop"), Some(&3));
        assert_eq!(c.len(), 3);
        assert!(parse_netstat("TcpExt: a\nTcpExt: 1\n", "MPTcpExt:").is_empty());
    }
}
