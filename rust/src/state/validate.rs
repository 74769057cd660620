//! The rules of SPEC 2.2 that span several values and need no live system. Rules about a
//! single value (names, prefixes, families, flag combinations, limits) are checked while
//! parsing, where the line and column are known.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{ineligibility, AddrRef, Interface, MptcpFlag, MptcpFlags, NetworkState};
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
    // Where each address is given: interface index, section, index in its list.
    let mut ips: HashMap<IpAddr, (usize, &str, usize)> = HashMap::new();
    // Name, address, and whether the endpoint is an implicit one.
    let mut endpoints: Vec<(&str, IpAddr, bool)> = Vec::new();

    for (i, iface) in state.interfaces.iter().enumerate() {
        if let Some(first) = names.insert(&iface.name, i) {
            return Err(Error::invalid(format!(
                "interfaces[{i}].name: `{}` is already given at interfaces[{first}]; \
                 give each interface once",
                iface.name
            )));
        }
        check_disabled_family(i, iface)?;

        for (family, k, addr) in iface.addresses_indexed() {
            if let Some((j, other_family, l)) = ips.insert(addr.ip, (i, family, k)) {
                return Err(Error::invalid(format!(
                    "interfaces[{i}].{family}.address[{k}]: address {} is also given at \
                     interfaces[{j}].{other_family}.address[{l}] ({}); an address can be on \
                     one interface only",
                    addr.ip, state.interfaces[j].name
                )));
            }
            check_port(
                || format!("interfaces[{i}].{family}.address[{k}]"),
                iface,
                &addr,
            )?;
            if iface.is_going_away() || !family_enabled(iface, addr.ip) {
                continue;
            }
            let flags = match effective_flags(iface, &addr) {
                Some(f) if !f.is_empty() => f,
                _ => continue,
            };
            // `[implicit]` describes an endpoint the kernel made, wherever the address is:
            // nothing is "ignored" for it, and it holds one of the kernel's slots.
            let implicit = flags.contains(MptcpFlag::Implicit);
            if let Some(why) = ineligibility(addr.ip).filter(|_| !implicit) {
                log_at!(
                    log,
                    Level::Warn,
                    "{}: {} is {why}; MPTCP flags {flags} are ignored for it",
                    iface.name,
                    addr.ip
                );
                continue;
            }
            endpoints.push((&iface.name, addr.ip, implicit));
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
            .map(|(name, ip, implicit)| {
                let what = if *implicit { " (implicit)" } else { "" };
                format!("{ip} on {name}{what}")
            })
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

/// `mptcp-port` makes a `signal` endpoint that listens on its own port (and announces it
/// with the address). The kernel refuses a port on an endpoint without `signal`, and one
/// with `subflow` (its subflows would be bound to the listening port); both are refused
/// here, before anything is touched. `path` is the address's path in the input, made
/// only for an error.
fn check_port(path: impl Fn() -> String, iface: &Interface, addr: &AddrRef) -> Result<()> {
    let Some(port) = addr.mptcp_port else {
        return Ok(());
    };
    let (flags, whose) = match (addr.mptcp_flags, iface.address_flags()) {
        (Some(f), _) => (f, "the address's mptcp-flags"),
        (None, Some(f)) => (f, "the interface's mptcp.address-flags"),
        (None, None) => {
            return Err(Error::invalid(format!(
                "{}.mptcp-port: port {port} is for a `signal` endpoint, and the address has \
                 no MPTCP flags (neither mptcp-flags nor the interface's mptcp.address-flags); \
                 give it `mptcp-flags: [signal]` or drop the port",
                path()
            )))
        }
    };
    if flags.contains(MptcpFlag::Subflow) {
        return Err(Error::invalid(format!(
            "{}.mptcp-port: port {port} with `subflow` ({whose} are {flags}): the kernel \
             refuses a port on a subflow endpoint; a port is for a `signal` endpoint only, so \
             drop `subflow` or the port",
            path()
        )));
    }
    if !flags.contains(MptcpFlag::Signal) {
        return Err(Error::invalid(format!(
            "{}.mptcp-port: port {port} needs `signal` ({whose} are {flags}): the endpoint \
             listens on the port and announces it to the peer; add `signal` or drop the port",
            path()
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
    fn implicit_endpoints_count_and_do_not_warn() {
        // An implicit endpoint holds one of the kernel's slots like any other.
        let mut s = flagged(8);
        s.push_str("  - name: eth9\n    ipv4:\n      address:\n        - ip: 192.0.2.99\n          prefix-length: 24\n          mptcp-flags: [implicit]\n");
        let e = parse(&s, &Log::new()).unwrap_err();
        assert!(e.msg().contains("192.0.2.99 on eth9 (implicit)"), "{e}");
        // It describes the kernel, so nothing is "ignored" for it, even on an address that
        // would never get an endpoint from a state.
        let log = Log::new();
        parse(
            "interfaces:\n  - name: eth1\n    mptcp: {address-flags: []}\n    ipv6:\n      address:\n        - {ip: fe80::1, prefix-length: 64, mptcp-flags: [implicit]}\n        - {ip: 2001:db8::1, prefix-length: 64, mptcp-flags: [implicit]}\n",
            &log,
        )
        .unwrap();
        let warnings: Vec<_> = log
            .records()
            .into_iter()
            .filter(|r| r.level == crate::Level::Warn)
            .collect();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn duplicate_address_names_both_places() {
        let e = parse(
            "interfaces:\n  - name: eth1\n    ipv6: {address: [{ip: 2001:db8::1, prefix-length: 64}]}\n  - name: eth2\n    ipv6: {address: [{ip: 2001:db8::2, prefix-length: 64}, {ip: 2001:db8::1, prefix-length: 64}]}\n",
            &Log::new(),
        )
        .unwrap_err();
        assert!(
            e.msg().starts_with(
                "interfaces[1].ipv6.address[1]: address 2001:db8::1 is also given at \
                 interfaces[0].ipv6.address[0] (eth1)"
            ),
            "{e}"
        );
    }

    #[test]
    fn address_flags_off_and_per_address_override() {
        // Per-address [] wins over the interface's flags: 9 addresses, one without endpoint.
        let mut s = flagged(8);
        s.push_str("  - name: eth9\n    mptcp:\n      address-flags: [subflow]\n    ipv4:\n      address:\n        - ip: 192.0.2.99\n          prefix-length: 24\n          mptcp-flags: []\n");
        assert!(parse(&s, &Log::new()).is_ok());
    }
}
