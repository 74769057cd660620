//! Does the kernel hold the desired state? The check `apply` polls before it commits,
//! and what decides that an interface needs no change at all.
//!
//! What is checked, per interface the state names: the link exists and is up (for
//! `state: up`); every desired static address is there and no other configured address is
//! (when the state lists addresses); one endpoint per eligible address with the desired
//! flags, and none where MPTCP is off; no endpoint left on a link that goes down or away.
//! Host knobs: `net.mptcp.enabled` and the limits, when given.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use crate::netlink::{Address, EndpointFlags, KernelState, Link};
use crate::state::{
    ineligibility, HostMptcp, Interface, InterfaceState, MptcpFlag, MptcpFlags, NetworkState,
};

/// Where per-address flags come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// NetworkManager holds one flag set per interface: `mptcp.address-flags` applies to
    /// every eligible address, dynamic ones included; per-address flags are not applied.
    NetworkManager,
    /// The library writes endpoints itself: per-address flags are honoured, the
    /// interface's flags cover the other addresses.
    KernelOnly,
}

/// One way in which the kernel differs from the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What differs, e.g. `eth1: 192.0.2.2 mptcp-flags`.
    pub what: String,
    pub desired: String,
    pub current: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: desired {}, current {}",
            self.what, self.desired, self.current
        )
    }
}

fn mismatch(what: String, desired: impl Into<String>, current: impl Into<String>) -> Mismatch {
    Mismatch {
        what,
        desired: desired.into(),
        current: current.into(),
    }
}

/// Every difference between `desired` and the kernel, in state order.
pub fn check(desired: &NetworkState, kernel: &KernelState, mode: Mode) -> Vec<Mismatch> {
    let endpoints = Endpoints::new(kernel);
    // Each interface's link by name, indexed once: not a scan of every link per interface.
    let links: HashMap<&str, &Link> = kernel.links.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut out = Vec::new();
    if let Some(host) = &desired.mptcp {
        out.extend(check_host(host, kernel));
    }
    for iface in &desired.interfaces {
        let link = links.get(iface.name.as_str()).copied();
        out.extend(check_interface_with(iface, link, kernel, &endpoints, mode));
    }
    out
}

/// The differences of one interface, whose link (`None`: the kernel has none of that
/// name) the caller found.
pub fn check_interface(
    iface: &Interface,
    link: Option<&Link>,
    kernel: &KernelState,
    mode: Mode,
) -> Vec<Mismatch> {
    check_interface_with(iface, link, kernel, &Endpoints::new(kernel), mode)
}

/// The differences of the host knobs.
pub fn check_host(host: &HostMptcp, kernel: &KernelState) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if let Some(want) = host.enabled {
        if kernel.mptcp_enabled != Some(want) {
            out.push(mismatch(
                "mptcp.enabled".to_string(),
                want.to_string(),
                match kernel.mptcp_enabled {
                    Some(v) => v.to_string(),
                    None => "no MPTCP in the kernel".to_string(),
                },
            ));
        }
    }
    if let Some(pm) = host.path_manager {
        let have = kernel.sysctls.path_manager.as_deref();
        if have != Some(pm.name()) {
            out.push(mismatch(
                "mptcp.path-manager".to_string(),
                pm.name(),
                have.unwrap_or("unknown"),
            ));
        }
    }
    if let Some(want) = &host.scheduler {
        let have = kernel.sysctls.scheduler.as_deref();
        if have != Some(want.as_str()) {
            out.push(mismatch(
                "mptcp.scheduler".to_string(),
                want.as_str(),
                have.unwrap_or("unknown"),
            ));
        }
    }
    if let Some(limits) = &host.limits {
        let current = kernel.limits;
        let pairs = [
            ("subflows", limits.subflows, current.map(|l| l.subflows)),
            (
                "add-addr-accepted",
                limits.add_addr_accepted,
                current.map(|l| l.add_addr_accepted),
            ),
        ];
        for (name, want, have) in pairs {
            if let Some(want) = want {
                if have != Some(want) {
                    out.push(mismatch(
                        format!("mptcp.limits.{name}"),
                        want.to_string(),
                        have.map_or("unknown".to_string(), |h| h.to_string()),
                    ));
                }
            }
        }
    }
    out
}

/// The kernel's configured endpoints by address, with their port (implicit ones are not
/// configuration, and are kept apart).
struct Endpoints {
    configured: HashMap<IpAddr, (MptcpFlags, Option<u16>)>,
    implicit: HashSet<IpAddr>,
}

impl Endpoints {
    fn new(kernel: &KernelState) -> Self {
        let (implicit, configured): (Vec<_>, Vec<_>) = kernel
            .endpoints
            .iter()
            .partition(|e| e.flags.contains(EndpointFlags::IMPLICIT));
        Endpoints {
            configured: configured
                .into_iter()
                .map(|e| (e.address, (e.flags.mptcp_flags(), e.port)))
                .collect(),
            implicit: implicit.into_iter().map(|e| e.address).collect(),
        }
    }

    fn get(&self, ip: &IpAddr) -> Option<MptcpFlags> {
        self.configured.get(ip).map(|(f, _)| *f)
    }

    fn port(&self, ip: &IpAddr) -> Option<u16> {
        self.configured.get(ip).and_then(|(_, p)| *p)
    }
}

fn describe(flags: Option<MptcpFlags>) -> String {
    match flags {
        Some(f) if !f.is_empty() => format!("mptcp-flags {f}"),
        _ => "no endpoint".to_string(),
    }
}

fn check_interface_with(
    iface: &Interface,
    link: Option<&Link>,
    kernel: &KernelState,
    endpoints: &Endpoints,
    mode: Mode,
) -> Vec<Mismatch> {
    let name = &iface.name;
    let mut out = Vec::new();
    let Some(link) = link else {
        if iface.state != Some(InterfaceState::Absent) {
            out.push(mismatch(name.to_string(), "present", "no such interface"));
        }
        return out;
    };
    let addrs: Vec<&Address> = kernel.addresses_of(link.index).collect();

    if iface.is_going_away() {
        if mode == Mode::KernelOnly {
            check_going_away_kernel(iface, link, &addrs, endpoints, &mut out);
            return out;
        }
        // NetworkManager removes the endpoints of a profile it deactivates.
        for a in &addrs {
            if let Some(f) = endpoints.get(&a.address).filter(|f| !f.is_empty()) {
                out.push(mismatch(
                    format!("{name}: {}", a.address),
                    "no endpoint (interface down)",
                    describe(Some(f)),
                ));
            }
        }
        return out;
    }

    if iface.state == Some(InterfaceState::Up) && !link.is_up() {
        out.push(mismatch(format!("{name}: state"), "up", "down"));
    }
    check_addresses(iface, link, &addrs, &mut out);
    check_endpoints(iface, &addrs, endpoints, mode, &mut out);
    out
}

/// Kernel mode, `down` or `absent`: the link is down; `absent` leaves no configured address
/// and no endpoint; `down` keeps the IPv4 addresses the state lists (the kernel drops a
/// down link's IPv6 addresses itself) and the endpoints the state gives flags for, and no
/// other.
fn check_going_away_kernel(
    iface: &Interface,
    link: &Link,
    addrs: &[&Address],
    endpoints: &Endpoints,
    out: &mut Vec<Mismatch>,
) {
    let name = &iface.name;
    if link.is_up() {
        out.push(mismatch(format!("{name}: state"), "down", "up"));
    }
    let absent = iface.state == Some(InterfaceState::Absent);
    if absent {
        for a in addrs.iter().filter(|a| is_configured(a)) {
            out.push(mismatch(
                format!("{name}: address {}/{}", a.address, a.prefix_len),
                "absent (interface absent)",
                "present",
            ));
        }
    } else {
        let v4_only = Interface {
            ipv6: None,
            ..iface.clone()
        };
        check_addresses(&v4_only, link, addrs, out);
    }
    for a in addrs {
        let want = if absent {
            MptcpFlags::EMPTY
        } else {
            desired_flags(iface, a, Mode::KernelOnly).unwrap_or(MptcpFlags::EMPTY)
        };
        if want.contains(MptcpFlag::Implicit) {
            continue;
        }
        let have = endpoints.get(&a.address).unwrap_or_default();
        if have != want {
            out.push(mismatch(
                format!("{name}: {}", a.address),
                describe(Some(want)),
                describe(Some(have)),
            ));
        }
    }
}

/// Configuration, not the kernel's own: a permanent address that is not IPv6 link-local.
fn is_configured(a: &Address) -> bool {
    a.is_permanent() && !(a.address.is_ipv6() && ineligibility(a.address) == Some("link-local"))
}

/// Static addresses: the listed ones are there, and (where a family's list is given) no
/// other configured address is. Link-local addresses are the kernel's own and dynamic
/// ones (DHCP, SLAAC) come and go: neither is compared.
fn check_addresses(iface: &Interface, link: &Link, addrs: &[&Address], out: &mut Vec<Mismatch>) {
    let name = &link.name;
    // An address whose duplicate address detection failed is listed but unusable; one
    // whose detection is still running (IPv6, about a second) may still fail it.
    let usable = |a: &&&Address| !a.is_dad_failed() && !a.is_tentative();
    let have: HashSet<(IpAddr, u8)> = addrs
        .iter()
        .filter(usable)
        .map(|a| (a.address, a.prefix_len))
        .collect();
    for want in iface.addresses() {
        if !have.contains(&(want.ip, want.prefix_length)) {
            let listed = addrs.iter().find(|a| a.address == want.ip);
            let current = match listed {
                Some(a) if a.is_dad_failed() => {
                    "duplicate address detection failed (the address is in use on the link)"
                }
                Some(a) if a.is_tentative() => {
                    "tentative (duplicate address detection has not finished)"
                }
                _ => "absent",
            };
            out.push(mismatch(
                format!("{name}: address {}/{}", want.ip, want.prefix_length),
                "present",
                current,
            ));
        }
    }
    let v4_listed = iface
        .ipv4
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .is_some()
        || iface
            .ipv4
            .as_ref()
            .is_some_and(|c| c.enabled == Some(false));
    let v6_listed = iface
        .ipv6
        .as_ref()
        .and_then(|c| c.address.as_ref())
        .is_some()
        || iface
            .ipv6
            .as_ref()
            .is_some_and(|c| c.enabled == Some(false));
    let wanted: HashSet<(IpAddr, u8)> =
        iface.addresses().map(|a| (a.ip, a.prefix_length)).collect();
    for a in addrs {
        let listed = if a.address.is_ipv4() {
            v4_listed
        } else {
            v6_listed
        };
        let kernel_own = ineligibility(a.address) == Some("link-local");
        if listed && !kernel_own && a.is_permanent() && !wanted.contains(&(a.address, a.prefix_len))
        {
            out.push(mismatch(
                format!("{name}: address {}/{}", a.address, a.prefix_len),
                "absent",
                "present",
            ));
        }
    }
}

/// The flags an address of the link should carry, or `None` when the state says
/// nothing about it.
fn desired_flags(iface: &Interface, addr: &Address, mode: Mode) -> Option<MptcpFlags> {
    let iface_flags = iface.address_flags();
    match mode {
        Mode::NetworkManager => iface_flags,
        Mode::KernelOnly => iface
            .addresses()
            .find(|a| a.ip == addr.address)
            .and_then(|a| a.mptcp_flags)
            .or(iface_flags),
    }
}

fn check_endpoints(
    iface: &Interface,
    addrs: &[&Address],
    endpoints: &Endpoints,
    mode: Mode,
    out: &mut Vec<Mismatch>,
) {
    for a in addrs {
        if ineligibility(a.address).is_some() || a.is_temporary() {
            continue;
        }
        let Some(want) = desired_flags(iface, a, mode) else {
            continue;
        };
        let what = format!("{}: {}", iface.name, a.address);
        if want.contains(MptcpFlag::Implicit) {
            // The kernel's own endpoint, described by show: it must still be there.
            if !endpoints.implicit.contains(&a.address) {
                out.push(mismatch(
                    what,
                    "mptcp-flags [implicit]",
                    describe(endpoints.get(&a.address)),
                ));
            }
            continue;
        }
        let have = endpoints.get(&a.address).unwrap_or_default();
        if have != want {
            out.push(mismatch(what, describe(Some(want)), describe(Some(have))));
            continue;
        }
        if mode == Mode::KernelOnly && !want.is_empty() {
            let port = iface
                .addresses()
                .find(|x| x.ip == a.address)
                .and_then(|x| x.mptcp_port);
            if port.is_some() && port != endpoints.port(&a.address) {
                out.push(mismatch(
                    format!("{what} mptcp-port"),
                    port.map_or("none".into(), |p| p.to_string()),
                    endpoints
                        .port(&a.address)
                        .map_or("none".into(), |p| p.to_string()),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::AddressFlags;
    use crate::testkit::{self, addr, endpoint, link, PERM};
    use crate::Log;

    /// eth1 with 192.0.2.2/24, 2001:db8::2/64 and fe80::1, and these endpoints (ids from 1).
    fn kernel(endpoints: &[(&str, u32)]) -> KernelState {
        testkit::kernel(
            vec![link(2, "eth1")],
            vec![
                addr(2, "192.0.2.2", PERM),
                addr(2, "2001:db8::2", PERM),
                addr(2, "fe80::1", PERM),
            ],
            endpoints
                .iter()
                .enumerate()
                .map(|(i, (ip, flags))| endpoint(i as u8 + 1, ip, *flags, Some(2)))
                .collect(),
        )
    }

    fn desired(yaml: &str) -> NetworkState {
        crate::state::parse(yaml, &Log::new()).unwrap()
    }

    const SEED: &str = "interfaces:\n- name: eth1\n  state: up\n  mptcp: {address-flags: [subflow, signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n";

    #[test]
    fn seed_holds_when_endpoints_match() {
        // NM mode: the IPv6 address gets the interface's flags too.
        let k = kernel(&[("192.0.2.2", 3), ("2001:db8::2", 3)]);
        assert_eq!(check(&desired(SEED), &k, Mode::NetworkManager), vec![]);
    }

    #[test]
    fn missing_and_wrong_endpoints_are_named() {
        let k = kernel(&[("2001:db8::2", 2)]);
        let m = check(&desired(SEED), &k, Mode::NetworkManager);
        let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "eth1: 192.0.2.2: desired mptcp-flags [signal, subflow], current no endpoint",
                "eth1: 2001:db8::2: desired mptcp-flags [signal, subflow], current mptcp-flags [subflow]",
            ]
        );
    }

    #[test]
    fn kernel_mode_honours_per_address_flags() {
        let yaml = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [backup]}]}\n";
        let k = kernel(&[("192.0.2.2", 4), ("2001:db8::2", 2)]);
        assert_eq!(check(&desired(yaml), &k, Mode::KernelOnly), vec![]);
        assert_eq!(check(&desired(yaml), &k, Mode::NetworkManager).len(), 1);
    }

    #[test]
    fn off_means_no_endpoint_and_link_local_is_ignored() {
        let yaml = "interfaces:\n- name: eth1\n  mptcp: {address-flags: []}\n";
        let k = kernel(&[("fe80::1", 2)]);
        assert_eq!(check(&desired(yaml), &k, Mode::NetworkManager), vec![]);
        let k = kernel(&[("192.0.2.2", 2)]);
        assert_eq!(check(&desired(yaml), &k, Mode::NetworkManager).len(), 1);
    }

    #[test]
    fn addresses_and_host_knobs() {
        let yaml = "mptcp: {enabled: true, limits: {subflows: 4}}\ninterfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.3, prefix-length: 24}]}\n- name: eth9\n";
        let k = kernel(&[]);
        let text: Vec<String> = check(&desired(yaml), &k, Mode::NetworkManager)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(
            text,
            vec![
                "mptcp.limits.subflows: desired 4, current 2",
                "eth1: address 192.0.2.3/24: desired present, current absent",
                "eth1: address 192.0.2.2/24: desired absent, current present",
                "eth9: desired present, current no such interface",
            ]
        );
    }

    #[test]
    fn an_address_is_there_once_dad_succeeded() {
        let yaml =
            "interfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n";
        let mut k = kernel(&[]);
        assert_eq!(check(&desired(yaml), &k, Mode::NetworkManager), vec![]);
        k.addresses[0].flags = AddressFlags(AddressFlags::PERMANENT | AddressFlags::DADFAILED);
        let m = check(&desired(yaml), &k, Mode::NetworkManager);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].current.contains("duplicate address detection failed"),
            "{m:?}"
        );
    }

    #[test]
    fn kernel_mode_checks_ports_implicit_and_the_link() {
        let yaml = "interfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [signal], mptcp-port: 8080}]}\n";
        let mut k = kernel(&[("192.0.2.2", 1)]);
        let m = check(&desired(yaml), &k, Mode::KernelOnly);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].what.ends_with("mptcp-port"), "{m:?}");
        k.endpoints[0].port = Some(8080);
        assert_eq!(check(&desired(yaml), &k, Mode::KernelOnly), vec![]);

        let implicit = "interfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [implicit]}]}\n";
        assert_eq!(check(&desired(implicit), &k, Mode::KernelOnly).len(), 1);
        k.endpoints[0].flags = EndpointFlags(EndpointFlags::IMPLICIT);
        assert_eq!(check(&desired(implicit), &k, Mode::KernelOnly), vec![]);

        let down = "interfaces:\n- name: eth1\n  state: down\n";
        let k = kernel(&[]);
        assert_eq!(check(&desired(down), &k, Mode::NetworkManager), vec![]);
        let m = check(&desired(down), &k, Mode::KernelOnly);
        assert_eq!(m.len(), 1, "{m:?}");
        let absent = "interfaces:\n- name: eth1\n  state: absent\n";
        // Up, and two configured addresses (the link-local one is the kernel's).
        assert_eq!(check(&desired(absent), &k, Mode::KernelOnly).len(), 3);
    }

    #[test]
    fn down_means_no_endpoints_left() {
        let yaml = "interfaces:\n- name: eth1\n  state: down\n";
        let k = kernel(&[("192.0.2.2", 2)]);
        assert_eq!(check(&desired(yaml), &k, Mode::NetworkManager).len(), 1);
    }
}
