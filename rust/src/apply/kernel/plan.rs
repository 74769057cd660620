//! What a kernel-only apply must do, per interface: pure, from the desired state and the
//! kernel as read. The result is a list of netlink writes per interface, in the order
//! they run: link up, endpoints deleted, addresses deleted, addresses added, endpoints
//! added or changed in place, link down.
//!
//! Rules (the kernel's own, see net/mptcp/pm_kernel.c):
//! - an endpoint whose change is only `backup` and/or `fullmesh` is changed in place
//!   (MPTCP_PM_CMD_SET_FLAGS): it keeps its id and the subflows that use it;
//! - any other change (signal, subflow, laminar, the port) deletes and re-adds the
//!   endpoint, which closes its subflows; the log says so for each one;
//! - an endpoint that already holds keeps its id; endpoints of addresses the state says
//!   nothing about stay as they are; implicit endpoints (the kernel's own) are left alone;
//! - addresses: per family, the state's list replaces the link's permanent addresses
//!   (IPv6 link-local ones are the kernel's and stay); leases and privacy addresses are
//!   never touched; a different prefix means delete and re-add;
//! - `state: down`: no endpoints on the link (unless the state gives addresses flags:
//!   those are honoured), then link down; `state: absent`: no endpoints, the link's
//!   configured addresses removed (what deleting its profile does through
//!   NetworkManager), link down.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::apply::checks::View;
use crate::log::Level;
use crate::netlink::{Address, AddressFlags, AddressScope, Endpoint, EndpointFlags, Link};
use crate::state::{ineligibility, Interface, InterfaceState, MptcpFlag, MptcpFlags};
use crate::{log_at, Error, ErrorKind, Log, Result};

/// The endpoint flags that can change in place.
pub(super) const IN_PLACE: u32 = EndpointFlags::BACKUP | EndpointFlags::FULLMESH;

/// The netlink writes for one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfacePlan {
    pub name: String,
    pub ifindex: u32,
    /// Set the link up first (`Some(true)`) or down last (`Some(false)`).
    pub link_up: Option<bool>,
    pub del_endpoints: Vec<Endpoint>,
    pub del_addresses: Vec<(IpAddr, u8)>,
    pub add_addresses: Vec<Address>,
    pub add_endpoints: Vec<Endpoint>,
    pub set_flags: Vec<Endpoint>,
    /// The addresses whose endpoints this plan may touch (before and after), for the
    /// undo record's scope.
    pub scope: Vec<IpAddr>,
    /// Why, for the log.
    pub why: Vec<String>,
}

impl IfacePlan {
    pub fn is_empty(&self) -> bool {
        self.link_up.is_none()
            && self.del_endpoints.is_empty()
            && self.del_addresses.is_empty()
            && self.add_addresses.is_empty()
            && self.add_endpoints.is_empty()
            && self.set_flags.is_empty()
    }
}

/// The plan of one interface; `None` when it holds already.
pub fn plan_interface(iface: &Interface, view: &View<'_>, log: &Log) -> Result<Option<IfacePlan>> {
    let kernel = view.kernel;
    let Some(link) = view.link(&iface.name) else {
        // `absent` of a link that is not there: nothing to do (checks refused the rest).
        return Ok(None);
    };
    check_dynamic(iface)?;
    let mut p = IfacePlan {
        name: iface.name.clone(),
        ifindex: link.index,
        ..IfacePlan::default()
    };
    let on_link: Vec<&Address> = kernel.addresses_of(link.index).collect();
    let state = iface.state;

    // Addresses.
    let after = plan_addresses(iface, link, &on_link, &mut p);

    // Endpoints.
    let own_endpoints = |ip: IpAddr| {
        kernel
            .endpoints
            .iter()
            .filter(move |e| e.address == ip && !e.flags.contains(EndpointFlags::IMPLICIT))
    };
    let removed: HashSet<IpAddr> = p.del_addresses.iter().map(|(ip, _)| *ip).collect();
    let kept: HashSet<IpAddr> = after.iter().map(|a| a.0).collect();
    for ip in removed.difference(&kept) {
        for e in own_endpoints(*ip) {
            p.why.push(format!("endpoint {e}: its address goes away"));
            p.del_endpoints.push(e.clone());
        }
    }
    let absent = state == Some(InterfaceState::Absent);
    let down = state == Some(InterfaceState::Down);
    for (ip, temporary) in &after {
        // `down` takes the link's endpoints away, as NetworkManager's deactivation does,
        // unless the state gives the address flags: then they are honoured (show's output
        // of a down link that has endpoints applies back unchanged).
        let given = view.flags_after(iface, *ip);
        if absent || (down && given.is_none()) {
            for e in own_endpoints(*ip) {
                p.why.push(format!("endpoint {e}: the interface goes down"));
                p.del_endpoints.push(e.clone());
            }
            continue;
        }
        if ineligibility(*ip).is_some() || *temporary {
            continue;
        }
        let Some(want) = given else {
            continue;
        };
        if want.contains(MptcpFlag::Implicit) {
            continue;
        }
        let port = iface
            .addresses()
            .find(|a| a.ip == *ip)
            .and_then(|a| a.mptcp_port);
        plan_endpoint(
            *ip,
            want,
            port,
            link,
            own_endpoints(*ip).collect(),
            &mut p,
            log,
        );
    }

    // The link.
    match state {
        Some(InterfaceState::Up) if !link.is_up() => {
            p.link_up = Some(true);
            p.why.push("link up".into());
        }
        Some(InterfaceState::Down | InterfaceState::Absent) if link.is_up() => {
            p.link_up = Some(false);
            p.why.push("link down".into());
        }
        _ => {}
    }

    let mut scope: Vec<IpAddr> = on_link.iter().map(|a| a.address).collect();
    scope.extend(p.add_addresses.iter().map(|a| a.address));
    scope.sort();
    scope.dedup();
    p.scope = scope;
    Ok((!p.is_empty()).then_some(p))
}

/// A port for the log: `8080`, or `none`.
fn port_text(port: Option<u16>) -> String {
    port.map_or_else(|| "none".to_string(), |p| p.to_string())
}

/// The kernel-only backend runs no DHCP client and no SLAAC of its own.
fn check_dynamic(iface: &Interface) -> Result<()> {
    let v4 = iface.ipv4.as_ref().is_some_and(|c| c.dhcp == Some(true));
    let v6 = iface
        .ipv6
        .as_ref()
        .is_some_and(|c| c.dhcp == Some(true) || c.autoconf == Some(true));
    if (v4 || v6) && !iface.is_going_away() {
        let what = match (v4, v6) {
            (true, true) => "ipv4.dhcp and ipv6.dhcp/autoconf",
            (true, false) => "ipv4.dhcp",
            _ => "ipv6.dhcp/autoconf",
        };
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "{}: {what}: kernel-only mode runs no DHCP client or router solicitation; \
                 apply through NetworkManager, or give static addresses",
                iface.name
            ),
        ));
    }
    Ok(())
}

/// Plans the addresses of both families; returns every address the link has after the
/// apply, with whether it is an IPv6 privacy address.
fn plan_addresses(
    iface: &Interface,
    link: &Link,
    on_link: &[&Address],
    p: &mut IfacePlan,
) -> Vec<(IpAddr, bool)> {
    let absent = iface.state == Some(InterfaceState::Absent);
    let families: [(bool, Desired); 2] = [
        (
            true,
            desired_family(
                absent,
                iface.ipv4.as_ref().and_then(|c| c.enabled),
                iface
                    .ipv4
                    .as_ref()
                    .and_then(|c| c.address.as_ref())
                    .map(|l| {
                        l.iter()
                            .map(|a| (IpAddr::V4(a.ip), a.prefix_length))
                            .collect()
                    }),
            ),
        ),
        (
            false,
            desired_family(
                absent,
                iface.ipv6.as_ref().and_then(|c| c.enabled),
                iface
                    .ipv6
                    .as_ref()
                    .and_then(|c| c.address.as_ref())
                    .map(|l| {
                        l.iter()
                            .map(|a| (IpAddr::V6(a.ip), a.prefix_length))
                            .collect()
                    }),
            ),
        ),
    ];
    let mut after: Vec<(IpAddr, bool)> = Vec::new();
    for (v4, desired) in families {
        let family: Vec<&&Address> = on_link
            .iter()
            .filter(|a| a.address.is_ipv4() == v4)
            .collect();
        let Some(desired) = desired else {
            after.extend(family.iter().map(|a| (a.address, a.is_temporary())));
            continue;
        };
        let wanted: HashSet<(IpAddr, u8)> = desired.iter().copied().collect();
        for a in &family {
            let kernel_own = ineligibility(a.address) == Some("link-local");
            let configured = a.is_permanent() && !kernel_own;
            if configured && !wanted.contains(&(a.address, a.prefix_len)) {
                p.del_addresses.push((a.address, a.prefix_len));
                p.why
                    .push(format!("address {}/{} removed", a.address, a.prefix_len));
            } else {
                after.push((a.address, a.is_temporary()));
            }
        }
        for (ip, prefix) in desired {
            let there = family
                .iter()
                .any(|a| a.address == ip && a.prefix_len == prefix);
            if !there {
                p.add_addresses.push(Address {
                    ifindex: link.index,
                    address: ip,
                    prefix_len: prefix,
                    flags: AddressFlags(0),
                    scope: AddressScope::Universe,
                    valid_lft: None,
                    preferred_lft: None,
                });
                p.why.push(format!("address {ip}/{prefix} added"));
                after.push((ip, false));
            }
        }
    }
    after
}

/// A family's desired `(address, prefix)` list; `None` to leave it.
type Desired = Option<Vec<(IpAddr, u8)>>;

/// The addresses a family should have: `None` to leave them.
fn desired_family(absent: bool, enabled: Option<bool>, listed: Desired) -> Desired {
    if absent || enabled == Some(false) {
        return Some(Vec::new());
    }
    listed
}

/// Plans the endpoint of one address.
fn plan_endpoint(
    ip: IpAddr,
    want: MptcpFlags,
    port: Option<u16>,
    link: &Link,
    mut have: Vec<&Endpoint>,
    p: &mut IfacePlan,
    log: &Log,
) {
    let want_bits = want.kernel_bits();
    if want.is_empty() {
        for e in have {
            p.why.push(format!("endpoint {e} removed (MPTCP off)"));
            p.del_endpoints.push(e.clone());
        }
        return;
    }
    // The port: the state's; else, for an endpoint that can have one, the one it has.
    let port_ok = want.contains(MptcpFlag::Signal) && !want.contains(MptcpFlag::Subflow);
    let keep_port = |e: &Endpoint| if port_ok { port.or(e.port) } else { port };
    // One endpoint per address: one that holds stays, the others go.
    if let Some(i) = have.iter().position(|e| {
        e.flags.bits() & !EndpointFlags::IMPLICIT == want_bits && e.port == keep_port(e)
    }) {
        let keep = have.remove(i);
        log_at!(log, Level::Debug, "{}: endpoint {keep} holds", p.name);
        for e in have {
            p.why
                .push(format!("endpoint {e} removed (a second one for {ip})"));
            p.del_endpoints.push(e.clone());
        }
        return;
    }
    let mut rest = have.into_iter();
    if let Some(e) = rest.next() {
        let differ = e.flags.bits() ^ want_bits;
        if differ & !IN_PLACE == 0 && e.port == keep_port(e) {
            let mut changed = e.clone();
            changed.flags = EndpointFlags(want_bits);
            p.why.push(format!(
                "endpoint {e}: flags {} -> {want}, in place (its subflows stay)",
                e.flags.mptcp_flags()
            ));
            p.set_flags.push(changed);
        } else {
            log_at!(
                log,
                Level::Warn,
                "{}: endpoint {e} is re-created (flags {} -> {want}{}): the kernel changes \
                 only backup and fullmesh in place, so the subflows that use it close",
                p.name,
                e.flags.mptcp_flags(),
                match (e.port, keep_port(e)) {
                    (a, b) if a != b => format!(", port {} -> {}", port_text(a), port_text(b)),
                    _ => String::new(),
                }
            );
            p.why.push(format!("endpoint {e} re-created with {want}"));
            p.del_endpoints.push(e.clone());
            p.add_endpoints.push(Endpoint {
                id: 0,
                address: ip,
                port: keep_port(e),
                flags: EndpointFlags(want_bits),
                ifindex: Some(link.index),
            });
        }
        for e in rest {
            p.why
                .push(format!("endpoint {e} removed (a second one for {ip})"));
            p.del_endpoints.push(e.clone());
        }
        return;
    }
    p.why.push(format!("endpoint {ip} {want} added"));
    p.add_endpoints.push(Endpoint {
        id: 0,
        address: ip,
        port,
        flags: EndpointFlags(want_bits),
        ifindex: Some(link.index),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::KernelState;
    use crate::state::NetworkState;
    use crate::testkit::{self, addr, endpoint, link, PERM, SIGNAL, SUBFLOW};
    use crate::verify::Mode;

    /// eth1: two configured addresses with endpoints, a link-local one, a lease.
    fn kernel() -> KernelState {
        testkit::kernel(
            vec![link(2, "eth1")],
            vec![
                addr(2, "192.0.2.2", PERM),
                addr(2, "192.0.2.3", PERM),
                addr(2, "fe80::1", PERM),
                addr(2, "192.0.2.77", 0),
            ],
            vec![
                endpoint(1, "192.0.2.2", SUBFLOW, Some(2)),
                endpoint(2, "192.0.2.3", SIGNAL, Some(2)),
            ],
        )
    }

    fn plan_of(yaml: &str, k: &KernelState) -> Option<IfacePlan> {
        let s: NetworkState = crate::state::parse(yaml, &Log::new()).unwrap();
        let view = View::new(k, Mode::KernelOnly);
        plan_interface(&s.interfaces[0], &view, &Log::new()).unwrap()
    }

    const BOTH: &str = "interfaces:\n- name: eth1\n  ipv4:\n    address:\n    - {ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [subflow]}\n    - {ip: 192.0.2.3, prefix-length: 24, mptcp-flags: [signal]}\n";

    #[test]
    fn what_holds_is_not_touched() {
        assert_eq!(plan_of(BOTH, &kernel()), None);
        // The lease 192.0.2.77 and the link-local address are not configuration.
        assert_eq!(
            plan_of(
                "interfaces:\n- name: eth1\n  ipv6: {address: []}\n",
                &kernel()
            ),
            None
        );
    }

    #[test]
    fn backup_changes_in_place_and_the_other_endpoint_stays() {
        let yaml = BOTH.replace("mptcp-flags: [subflow]}", "mptcp-flags: [subflow, backup]}");
        let p = plan_of(&yaml, &kernel()).unwrap();
        assert_eq!(p.set_flags.len(), 1);
        assert_eq!(p.set_flags[0].id, 1);
        assert_eq!(
            p.set_flags[0].flags.bits(),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        );
        assert!(
            p.del_endpoints.is_empty() && p.add_endpoints.is_empty(),
            "{p:?}"
        );
    }

    #[test]
    fn other_changes_recreate() {
        let yaml = BOTH.replace("mptcp-flags: [signal]}", "mptcp-flags: [signal, subflow]}");
        let log = Log::new();
        let s: NetworkState = crate::state::parse(&yaml, &log).unwrap();
        let k = kernel();
        let p = plan_interface(&s.interfaces[0], &View::new(&k, Mode::KernelOnly), &log)
            .unwrap()
            .unwrap();
        assert_eq!(
            p.del_endpoints.iter().map(|e| e.id).collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(p.add_endpoints.len(), 1);
        assert_eq!(p.add_endpoints[0].ifindex, Some(2));
        let warned = log
            .records()
            .iter()
            .any(|r| r.level == Level::Warn && r.message.contains("subflows that use it close"));
        assert!(warned, "{:?}", log.records());
    }

    #[test]
    fn a_port_change_recreates_and_says_which() {
        let mut k = kernel();
        k.endpoints[1].port = Some(10100);
        let yaml = BOTH.replace(
            "mptcp-flags: [signal]}",
            "mptcp-flags: [signal], mptcp-port: 10101}",
        );
        let log = Log::new();
        let s: NetworkState = crate::state::parse(&yaml, &log).unwrap();
        let p = plan_interface(&s.interfaces[0], &View::new(&k, Mode::KernelOnly), &log)
            .unwrap()
            .unwrap();
        assert_eq!(p.add_endpoints[0].port, Some(10101));
        let warned: Vec<String> = log
            .records()
            .into_iter()
            .filter(|r| r.level == Level::Warn)
            .map(|r| r.message)
            .collect();
        assert!(
            warned.iter().any(|m| m.contains("port 10100 -> 10101")),
            "{warned:?}"
        );
    }

    #[test]
    fn addresses_replace_the_permanent_ones_of_their_family() {
        let yaml = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.9, prefix-length: 24}]}\n";
        let p = plan_of(yaml, &kernel()).unwrap();
        assert_eq!(p.del_addresses, vec![("192.0.2.3".parse().unwrap(), 24)]);
        assert_eq!(p.add_addresses.len(), 1);
        // 192.0.2.3's endpoint goes with it; 192.0.2.9 and the lease get one.
        assert_eq!(
            p.del_endpoints.iter().map(|e| e.id).collect::<Vec<_>>(),
            [2]
        );
        let added: Vec<String> = p
            .add_endpoints
            .iter()
            .map(|e| e.address.to_string())
            .collect();
        assert_eq!(added, ["192.0.2.77", "192.0.2.9"]);
    }

    #[test]
    fn off_removes_and_down_takes_the_link_down() {
        let p = plan_of(
            "interfaces:\n- name: eth1\n  mptcp: {address-flags: []}\n",
            &kernel(),
        )
        .unwrap();
        assert_eq!(p.del_endpoints.len(), 2);
        let p = plan_of("interfaces:\n- name: eth1\n  state: down\n", &kernel()).unwrap();
        assert_eq!(p.link_up, Some(false));
        assert_eq!(p.del_endpoints.len(), 2);
        assert!(p.del_addresses.is_empty());
        let p = plan_of("interfaces:\n- name: eth1\n  state: absent\n", &kernel()).unwrap();
        assert_eq!(p.del_addresses.len(), 2, "{p:?}");
        // Down with the flags the kernel has (show's output): only the link goes down.
        let p = plan_of(
            &BOTH.replace("- name: eth1\n", "- name: eth1\n  state: down\n"),
            &kernel(),
        )
        .unwrap();
        assert_eq!(p.link_up, Some(false));
        assert!(p.del_endpoints.is_empty(), "{p:?}");
    }

    #[test]
    fn dhcp_is_not_supported() {
        let s: NetworkState = crate::state::parse(
            "interfaces:\n- name: eth1\n  ipv4: {dhcp: true}\n",
            &Log::new(),
        )
        .unwrap();
        let k = kernel();
        let e = plan_interface(
            &s.interfaces[0],
            &View::new(&k, Mode::KernelOnly),
            &Log::new(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
    }
}
