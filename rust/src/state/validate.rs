//! The rules of SPEC 2.2 that span several values and need no live system. Rules about a
//! single value (names, prefixes, families, flag combinations, limits) are checked while
//! parsing, where the line and column are known.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{ineligibility, AddrRef, Interface, MptcpFlags, NetworkState};
use crate::log::Level;
use crate::{log_at, Error, Log, Result};

/// The kernel keeps at most this many MPTCP endpoints per network namespace
/// (`MPTCP_PM_ADDR_MAX`); the ninth add fails with ERANGE.
pub const MAX_ENDPOINTS: usize = 8;

/// The flags an address ends up with: its own `mptcp-flags` when given, else the
/// interface's `address-flags`; `None` when the state says nothing about it.
pub fn effective_flags(iface: &Interface, addr: &AddrRef) -> Option<MptcpFlags> {
    addr.mptcp_flags.or(iface.address_flags())
}

/// Checks the cross-value rules; warnings (flags on ineligible or dynamic addresses) go to
/// `log`.
pub fn validate(state: &NetworkState, log: &Log) -> Result<()> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ips: HashMap<IpAddr, (usize, &str)> = HashMap::new();
    let mut endpoints: Vec<(&str, IpAddr)> = Vec::new();

    for (i, iface) in state.interfaces.iter().enumerate() {
        if let Some(first) = names.insert(&iface.name, i) {
            return Err(Error::invalid(format!(
                "interfaces[{i}].name: `{}` is already given at interfaces[{first}]; \
                 give each interface once",
                iface.name
            )));
        }
        check_disabled_family(i, iface)?;

        for addr in iface.addresses() {
            if let Some((j, other)) = ips.insert(addr.ip, (i, &iface.name)) {
                return Err(Error::invalid(format!(
                    "interfaces[{i}]: address {} is also given at interfaces[{j}] ({other}); \
                     an address can be on one interface only",
                    addr.ip
                )));
            }
            if iface.is_going_away() || !family_enabled(iface, addr.ip) {
                continue;
            }
            let flags = match effective_flags(iface, &addr) {
                Some(f) if !f.is_empty() => f,
                _ => continue,
            };
            if let Some(why) = ineligibility(addr.ip) {
                log_at!(
                    log,
                    Level::Warn,
                    "{}: {} is {why}; MPTCP flags {flags} are ignored for it",
                    iface.name,
                    addr.ip
                );
                continue;
            }
            endpoints.push((&iface.name, addr.ip));
        }

        if !iface.is_going_away()
            && iface.has_dynamic_addresses()
            && iface.address_flags().is_some_and(|f| !f.is_empty())
        {
            log_at!(
                log,
                Level::Warn,
                "{}: dynamic (DHCP/autoconf) addresses also get endpoints; they cannot be \
                 counted ahead against the kernel's limit of {MAX_ENDPOINTS} endpoints",
                iface.name
            );
        }
    }

    if endpoints.len() > MAX_ENDPOINTS {
        let list: Vec<String> = endpoints
            .iter()
            .map(|(name, ip)| format!("{ip} on {name}"))
            .collect();
        return Err(Error::invalid(format!(
            "the kernel keeps at most {MAX_ENDPOINTS} MPTCP endpoints per network namespace, \
             and this state flags {} eligible addresses ({}); remove the flags of {} of them",
            endpoints.len(),
            list.join(", "),
            endpoints.len() - MAX_ENDPOINTS
        )));
    }
    Ok(())
}

fn family_enabled(iface: &Interface, ip: IpAddr) -> bool {
    let enabled = match ip {
        IpAddr::V4(_) => iface.ipv4.as_ref().and_then(|c| c.enabled),
        IpAddr::V6(_) => iface.ipv6.as_ref().and_then(|c| c.enabled),
    };
    enabled != Some(false)
}

fn check_disabled_family(i: usize, iface: &Interface) -> Result<()> {
    let v4 = iface.ipv4.as_ref().is_some_and(|c| {
        c.enabled == Some(false) && c.address.as_ref().is_some_and(|a| !a.is_empty())
    });
    let v6 = iface.ipv6.as_ref().is_some_and(|c| {
        c.enabled == Some(false) && c.address.as_ref().is_some_and(|a| !a.is_empty())
    });
    for (bad, family) in [(v4, "ipv4"), (v6, "ipv6")] {
        if bad {
            return Err(Error::invalid(format!(
                "interfaces[{i}].{family}: addresses are given while `enabled: false`; \
                 set `enabled: true` or drop the addresses"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::parse;
    use crate::{ErrorKind, Log};

    fn flagged(n: usize) -> String {
        let mut s = String::from("interfaces:\n");
        for i in 0..n {
            s.push_str(&format!(
                "  - name: eth{i}\n    mptcp:\n      address-flags: [subflow]\n    ipv4:\n      address:\n        - ip: 192.0.2.{}\n          prefix-length: 24\n",
                i + 1
            ));
        }
        s
    }

    #[test]
    fn budget_of_eight() {
        assert!(parse(&flagged(8), &Log::new()).is_ok());
        let e = parse(&flagged(9), &Log::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.msg().contains("at most 8 MPTCP endpoints"), "{e}");
        assert!(e.msg().contains("flags 9 eligible"), "{e}");
    }

    #[test]
    fn ineligible_addresses_warn_and_do_not_count() {
        let mut s = flagged(8);
        s.push_str("  - name: eth9\n    mptcp:\n      address-flags: [subflow]\n    ipv6:\n      address:\n        - ip: fe80::9\n          prefix-length: 64\n        - ip: fd00::9\n          prefix-length: 64\n");
        let log = Log::new();
        parse(&s, &log).unwrap();
        let msgs: Vec<String> = log.records().into_iter().map(|r| r.message).collect();
        assert!(
            msgs.iter().any(|m| m.contains("fe80::9 is link-local")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("fd00::9 is unique-local")),
            "{msgs:?}"
        );
    }

    #[test]
    fn duplicates() {
        let e = parse("interfaces:\n  - name: eth1\n  - name: eth1\n", &Log::new()).unwrap_err();
        assert!(e.msg().contains("already given at interfaces[0]"), "{e}");
        let e = parse(
            "interfaces:\n  - name: eth1\n    ipv4: {address: [{ip: 192.0.2.1, prefix-length: 24}]}\n  - name: eth2\n    ipv4: {address: [{ip: 192.0.2.1, prefix-length: 24}]}\n",
            &Log::new(),
        )
        .unwrap_err();
        assert!(e.msg().contains("also given at interfaces[0]"), "{e}");
    }

    #[test]
    fn address_flags_off_and_per_address_override() {
        // Per-address [] wins over the interface's flags: 9 addresses, one without endpoint.
        let mut s = flagged(8);
        s.push_str("  - name: eth9\n    mptcp:\n      address-flags: [subflow]\n    ipv4:\n      address:\n        - ip: 192.0.2.99\n          prefix-length: 24\n          mptcp-flags: []\n");
        assert!(parse(&s, &Log::new()).is_ok());
    }
}
