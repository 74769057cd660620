//! The rules of SPEC 2.2 that span several values and need no live system. Rules about a
//! single value (names, prefixes, families, flag combinations, limits) are checked while
//! parsing, where the line and column are known.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{
    ineligibility, AddrRef, Interface, InterfaceState, MptcpFlag, MptcpFlags, NetworkState,
};
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
        check_loopback_kept(i, iface)?;

        for (family, k, addr) in iface.addresses_indexed() {
            if let Some(why) = unusable(addr.ip, addr.prefix_length, iface.name == LOOPBACK) {
                return Err(Error::invalid(format!(
                    "interfaces[{i}].{family}.address[{k}]: {}/{} cannot be configured on {}: \
                     {why}",
                    addr.ip, addr.prefix_length, iface.name
                )));
            }
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

    check_flags_with_mptcp_off(state)?;

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

/// The loopback interface's name (the kernel's own link, in every network namespace).
const LOOPBACK: &str = "lo";

/// Why an address must not be configured on an interface at all (`None`: it may be).
/// These the kernel takes, or takes and then makes useless, and an apply of them fails
/// late (an activation that never completes, a verification) or writes a profile that
/// cannot work; all are refused before anything is read. `on_loopback`: the interface
/// is `lo`. Link-local, unique-local and the other special-purpose unicast ranges stay
/// valid (they are addresses a host has).
pub(crate) fn unusable(ip: IpAddr, prefix: u8, on_loopback: bool) -> Option<String> {
    if prefix == 0 {
        return Some(
            "prefix-length 0 puts the whole address space on the link (that is a default \
             route, not an address); give the prefix of the subnet, e.g. 24 or 64"
                .to_string(),
        );
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, ..] = v4.octets();
            if a == 0 {
                Some(
                    "0.0.0.0/8 is \"this network\" (RFC 1122): a source only while a host \
                     has no address yet, never an address of its own"
                        .to_string(),
                )
            } else if v4.is_broadcast() {
                Some("255.255.255.255 is the limited broadcast address, not a host's".to_string())
            } else if v4.is_multicast() {
                Some(
                    "it is a multicast address (224.0.0.0/4): groups are joined by \
                     applications, not configured as an interface's address"
                        .to_string(),
                )
            } else if v4.is_loopback() && !on_loopback {
                Some(
                    "127.0.0.0/8 is loopback: the kernel drops packets from it on any other \
                     interface; it belongs on lo"
                        .to_string(),
                )
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("it is the unspecified address ::, not a host's".to_string())
            } else if v6.is_loopback() {
                (!on_loopback).then(|| {
                    "::1 is the loopback address: the kernel drops packets from it on any \
                     other interface; it belongs on lo"
                        .to_string()
                })
            } else if v6.is_multicast() {
                Some(
                    "it is a multicast address (ff00::/8): groups are joined by applications, \
                     not configured as an interface's address"
                        .to_string(),
                )
            } else if let Some(v4) = v6.to_ipv4_mapped() {
                Some(format!(
                    "it is an IPv4-mapped IPv6 address (::ffff:0:0/96), which stands for an \
                     IPv4 peer in the socket API and is never on the wire; give {v4} under \
                     ipv4.address"
                ))
            } else if s[..6] == [0; 6] {
                let o = v6.octets();
                let v4 = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
                Some(format!(
                    "it is an IPv4-compatible IPv6 address (::/96, deprecated by RFC 4291); \
                     give {v4} under ipv4.address"
                ))
            } else {
                None
            }
        }
    }
}

/// `lo` cannot be `absent`: the kernel's loopback cannot be removed, and through
/// NetworkManager "absent" would delete NM's profile of it (NM 1.42+ keeps one).
fn check_loopback_kept(i: usize, iface: &Interface) -> Result<()> {
    if iface.name == LOOPBACK && iface.state == Some(InterfaceState::Absent) {
        return Err(Error::invalid(format!(
            "interfaces[{i}].state: {LOOPBACK} cannot be absent: the loopback interface is \
             the kernel's own and every network namespace needs it (through NetworkManager \
             this would delete its profile); leave {LOOPBACK} out of the state, or give \
             `state: up`"
        )));
    }
    Ok(())
}

/// `mptcp: {enabled: false}` turns MPTCP off in the namespace; MPTCP flags on an
/// interface of the same state ask for endpoints no connection could use. "Flags" are a
/// non-empty `mptcp.address-flags`, or an address's own non-empty `mptcp-flags` other
/// than `[implicit]` (which describes the kernel, asks for nothing), on an interface
/// that is not going `down` or `absent`. `address-flags: []` (MPTCP off on it) is fine.
fn check_flags_with_mptcp_off(state: &NetworkState) -> Result<()> {
    if state.mptcp.as_ref().and_then(|m| m.enabled) != Some(false) {
        return Ok(());
    }
    let asks = |f: MptcpFlags| !f.is_empty() && !f.contains(MptcpFlag::Implicit);
    let mut flagged = Vec::new();
    for (i, iface) in state.interfaces.iter().enumerate() {
        if iface.is_going_away() {
            continue;
        }
        if let Some(f) = iface.address_flags().filter(|f| asks(*f)) {
            flagged.push(format!(
                "interfaces[{i}].mptcp.address-flags {f} ({})",
                iface.name
            ));
        }
        for (family, k, a) in iface.addresses_indexed() {
            if let Some(f) = a.mptcp_flags.filter(|f| asks(*f)) {
                flagged.push(format!(
                    "interfaces[{i}].{family}.address[{k}].mptcp-flags {f} ({})",
                    iface.name
                ));
            }
        }
    }
    if flagged.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "mptcp.enabled: false turns MPTCP off in this network namespace, and the state asks \
         for MPTCP endpoints: {}; drop `enabled: false`, or the flags (`address-flags: []` \
         turns MPTCP off on an interface)",
        flagged.join(", ")
    )))
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

    #[test]
    fn addresses_that_must_not_be_applied() {
        use super::unusable;
        let bad = |ip: &str, prefix: u8, lo: bool| unusable(ip.parse().unwrap(), prefix, lo);
        // What a host has, also on lo: no complaint.
        for (ip, prefix, lo) in [
            ("192.0.2.2", 24, false),
            ("192.0.2.2", 32, false),
            ("169.254.1.1", 16, false),
            ("100.64.0.1", 10, false),
            ("240.0.0.1", 4, false),
            ("127.0.0.1", 8, true),
            ("127.0.0.2", 8, true),
            ("::1", 128, true),
            ("fe80::1", 64, false),
            ("fd00::1", 64, false),
            ("2001:db8::1", 128, false),
            ("64:ff9b::c000:201", 96, false),
        ] {
            assert_eq!(bad(ip, prefix, lo), None, "{ip}/{prefix}");
        }
        for (ip, prefix, lo, why) in [
            ("0.0.0.0", 8, false, "this network"),
            ("0.1.2.3", 8, false, "this network"),
            ("0.0.0.0", 0, false, "prefix-length 0"),
            ("192.0.2.2", 0, true, "prefix-length 0"),
            ("255.255.255.255", 32, false, "limited broadcast"),
            ("239.1.1.1", 32, false, "multicast"),
            ("127.0.0.1", 8, false, "belongs on lo"),
            ("::", 0, false, "prefix-length 0"),
            ("::", 128, true, "unspecified"),
            ("2001:db8::1", 0, false, "prefix-length 0"),
            ("::1", 128, false, "belongs on lo"),
            ("ff02::1", 64, false, "multicast"),
            (
                "::ffff:192.0.2.9",
                96,
                false,
                "give 192.0.2.9 under ipv4.address",
            ),
            ("::192.0.2.9", 96, false, "IPv4-compatible"),
            ("::2", 128, false, "IPv4-compatible"),
        ] {
            let got = bad(ip, prefix, lo).unwrap_or_else(|| panic!("{ip}/{prefix} taken"));
            assert!(got.contains(why), "{ip}/{prefix}: {got}");
        }
        // lo keeps its addresses (show's output applies back).
        parse(
            "interfaces:\n- name: lo\n  type: loopback\n  ipv4: {address: [{ip: 127.0.0.1, prefix-length: 8}]}\n  ipv6: {address: [{ip: \"::1\", prefix-length: 128}]}\n",
            &Log::new(),
        )
        .unwrap();
    }

    #[test]
    fn contradictions() {
        let e = |s: &str| {
            parse(s, &Log::new())
                .map(|_| ())
                .unwrap_err()
                .msg()
                .to_string()
        };
        assert!(e("interfaces: [{name: lo, state: absent}]").contains("lo cannot be absent"));
        assert!(parse("interfaces: [{name: lo, state: up}]", &Log::new()).is_ok());
        assert!(parse("interfaces: [{name: eth1, state: absent}]", &Log::new()).is_ok());
        let off = "mptcp: {enabled: false}\ninterfaces:\n";
        let m = e(&format!(
            "{off}- name: eth1\n  mptcp: {{address-flags: [subflow, backup]}}\n"
        ));
        assert!(
            m.contains("interfaces[0].mptcp.address-flags [subflow, backup] (eth1)"),
            "{m}"
        );
        // MPTCP off everywhere, interfaces going away, and [implicit] are no contradiction.
        for ok in [
            "- name: eth1\n  mptcp: {address-flags: []}\n",
            "- name: eth1\n  state: down\n  mptcp: {address-flags: [subflow]}\n",
            "- name: eth1\n  state: absent\n  mptcp: {address-flags: [subflow]}\n",
            "- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [implicit]}]}\n",
            "- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: []}]}\n",
        ] {
            let input = format!("{off}{ok}");
            assert!(parse(&input, &Log::new()).is_ok(), "{input}");
        }
        let m = e(&format!(
            "{off}- name: eth1\n  ipv4: {{address: [{{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [signal]}}]}}\n"
        ));
        assert!(
            m.contains("interfaces[0].ipv4.address[0].mptcp-flags [signal]"),
            "{m}"
        );
        // enabled: true or absent: flags are fine.
        assert!(parse(
            "mptcp: {enabled: true}\ninterfaces: [{name: eth1, mptcp: {address-flags: [subflow]}}]",
            &Log::new()
        )
        .is_ok());
    }
}
