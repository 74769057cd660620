//! `show`: the current state, merged from the kernel (links, addresses, MPTCP endpoints,
//! limits, sysctl) and, unless kernel-only, NetworkManager (dhcp/autoconf of the
//! profiles it applied).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::netlink::{KernelState, Link};
use crate::nm::query::{AppliedProfile, NmDevice, NmState, NM_DEVICE_STATE_UNMANAGED};
use crate::state::{
    ineligibility, HostMptcp, Interface, InterfaceMptcp, InterfaceState, Ipv4Address, Ipv4Config,
    Ipv6Address, Ipv6Config, MptcpFlag, MptcpFlags, MptcpLimits, NetworkState, PathManager,
};

/// What `show` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShowOptions {
    /// Read the kernel only; NetworkManager is not contacted.
    pub kernel_only: bool,
    /// Only these interfaces (all when empty). Names that do not exist are left out.
    pub interfaces: Vec<String>,
}

/// Merges what the kernel and NetworkManager hold into the schema's state.
pub fn merge(kernel: &KernelState, nm: Option<&NmState>, only: &[String]) -> NetworkState {
    let nm_devices: HashMap<&str, &NmDevice> = nm
        .map(|n| {
            n.devices
                .iter()
                .map(|d| (d.interface.as_str(), d))
                .collect()
        })
        .unwrap_or_default();
    let endpoints = EndpointIndex::new(kernel);

    let mut interfaces: Vec<Interface> = kernel
        .links
        .iter()
        .filter(|l| only.is_empty() || only.contains(&l.name))
        .map(|link| {
            let dev = nm_devices.get(link.name.as_str()).copied();
            let state = match dev {
                Some(d) => nm_state(link, d.state, d.applied.is_some()),
                None => kernel_state(link),
            };
            interface_of(
                kernel,
                &endpoints,
                link,
                state,
                dev.and_then(|d| d.applied.as_ref()),
            )
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));

    NetworkState {
        mptcp: Some(HostMptcp {
            enabled: kernel.mptcp_enabled,
            path_manager: kernel
                .sysctls
                .path_manager
                .as_deref()
                .and_then(PathManager::from_name),
            scheduler: kernel.sysctls.scheduler.clone(),
            limits: kernel.limits.map(|l| MptcpLimits {
                subflows: Some(l.subflows),
                add_addr_accepted: Some(l.add_addr_accepted),
            }),
        }),
        interfaces,
    }
}

/// The state of a link as the kernel says it (kernel-only `show`, or a link NetworkManager
/// has no device for).
pub fn kernel_state(link: &Link) -> InterfaceState {
    if link.is_up() {
        InterfaceState::Up
    } else {
        InterfaceState::Down
    }
}

/// The state of a link NetworkManager has a device for, as nmstate reports it: `ignore`
/// when NM does not manage it, `down` when NM manages it but nothing is active on it
/// (disconnected, or unavailable: no profile, or one not activated; NM keeps such a link
/// up to see its carrier), else what the kernel says. Applying that back changes
/// nothing: `ignore` is left alone, and `down` on a device with nothing active neither
/// deactivates nor writes a profile (`apply/nm/plan.rs`). Externally managed devices (NM
/// 1.42 shows addresses set by `ip addr add` as "connected (externally)", with a profile
/// it generates in memory) have something applied: the kernel's state.
pub fn nm_state(link: &Link, device_state: u32, applied: bool) -> InterfaceState {
    if device_state <= NM_DEVICE_STATE_UNMANAGED {
        InterfaceState::Ignore
    } else if !applied {
        InterfaceState::Down
    } else {
        kernel_state(link)
    }
}

/// Endpoint flags and ports by address. An endpoint bound to another link than the
/// address's still describes that address (the kernel matches endpoints by address).
pub struct EndpointIndex {
    flags: HashMap<IpAddr, MptcpFlags>,
    port: HashMap<IpAddr, u16>,
}

impl EndpointIndex {
    pub fn new(kernel: &KernelState) -> Self {
        EndpointIndex {
            flags: kernel
                .endpoints
                .iter()
                .map(|e| (e.address, e.flags.mptcp_flags()))
                .collect(),
            port: kernel
                .endpoints
                .iter()
                .filter_map(|e| Some((e.address, e.port?)))
                .collect(),
        }
    }
}

/// One link as `show` reports it, in `state`, with the IP methods of the profile
/// NetworkManager applied to it, if any.
pub fn interface_of(
    kernel: &KernelState,
    endpoints: &EndpointIndex,
    link: &Link,
    state: InterfaceState,
    applied: Option<&AppliedProfile>,
) -> Interface {
    let addrs: Vec<_> = kernel.addresses_of(link.index).collect();
    // Implicit endpoints (made by the kernel for an address a connection used without an
    // endpoint) are reported as `[implicit]`: the kernel opens subflows from them, and
    // hiding them would show an interface as MPTCP-free while it is not.
    let flags_of = |ip: IpAddr| endpoints.flags.get(&ip).copied();

    let v4: Vec<Ipv4Address> = addrs
        .iter()
        .filter_map(|a| match a.address {
            IpAddr::V4(ip) => Some(Ipv4Address {
                ip,
                prefix_length: a.prefix_len,
                mptcp_flags: flags_of(a.address),
                mptcp_port: endpoints.port.get(&a.address).copied(),
            }),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Address> = addrs
        .iter()
        .filter_map(|a| match a.address {
            IpAddr::V6(ip) => Some(Ipv6Address {
                ip,
                prefix_length: a.prefix_len,
                mptcp_flags: flags_of(a.address),
                mptcp_port: endpoints.port.get(&a.address).copied(),
            }),
            IpAddr::V4(_) => None,
        })
        .collect();

    // The seed's rule: the interface's flags are the flags its eligible addresses share;
    // absent when they differ or when it has none. An implicit endpoint counts as none:
    // it is nobody's wish, and `address-flags` is one (`[implicit]` there is refused as
    // input, so deriving it would break the round trip).
    let eligible: Vec<MptcpFlags> = addrs
        .iter()
        .filter(|a| ineligibility(a.address).is_none() && !a.is_temporary())
        .map(|a| {
            flags_of(a.address)
                .filter(|f| !f.contains(MptcpFlag::Implicit))
                .unwrap_or_default()
        })
        .collect();
    let address_flags = match eligible.split_first() {
        Some((first, rest)) if rest.iter().all(|f| f == first) => Some(*first),
        _ => None,
    };

    let v4_method = applied.and_then(|p| p.ipv4_method.as_deref());
    let v6_method = applied.and_then(|p| p.ipv6_method.as_deref());

    Interface {
        name: link.name.clone(),
        iface_type: Some(link.iface_type),
        state: Some(state),
        mptcp: address_flags.map(|f| InterfaceMptcp {
            address_flags: Some(f),
        }),
        ipv4: Some(Ipv4Config {
            enabled: Some(match v4_method {
                Some(m) => m != "disabled",
                None => !v4.is_empty(),
            }),
            dhcp: v4_method.map(|m| m == "auto"),
            address: Some(v4),
        }),
        ipv6: Some(Ipv6Config {
            enabled: Some(match v6_method {
                Some(m) => m != "disabled",
                None => !v6.is_empty(),
            }),
            dhcp: v6_method.map(|m| m == "auto" || m == "dhcp"),
            autoconf: v6_method.map(|m| m == "auto"),
            address: Some(v6),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{
        Address, AddressFlags, AddressScope, Endpoint, EndpointFlags, Limits, Link, MptcpSysctls,
        OperState,
    };
    use crate::state::{parse, InterfaceType, OutputFormat};
    use crate::{Level, Log};

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.to_string(),
            iface_type: InterfaceType::Veth,
            flags: 0x1, // IFF_UP
            oper_state: OperState::Up,
        }
    }

    fn addr(ifindex: u32, ip: &str, prefix_len: u8) -> Address {
        let address: IpAddr = ip.parse().unwrap();
        Address {
            ifindex,
            address,
            prefix_len,
            flags: AddressFlags(AddressFlags::PERMANENT),
            scope: if address.is_ipv6() && ip.starts_with("fe80") {
                AddressScope::Link
            } else {
                AddressScope::Universe
            },
            valid_lft: None,
            preferred_lft: None,
        }
    }

    fn endpoint(id: u8, ip: &str, port: Option<u16>, flags: u32) -> Endpoint {
        Endpoint {
            id,
            address: ip.parse().unwrap(),
            port,
            flags: EndpointFlags(flags),
            ifindex: None,
        }
    }

    /// eth1: its only endpoint is implicit (and a link-local address without one).
    /// eth2: signal endpoints, one with a port. eth3: a subflow endpoint beside an
    /// implicit one.
    fn kernel() -> KernelState {
        KernelState {
            links: vec![link(2, "eth1"), link(3, "eth2"), link(4, "eth3")],
            addresses: vec![
                addr(2, "192.0.2.2", 24),
                addr(2, "fe80::1", 64),
                addr(3, "198.51.100.2", 24),
                addr(3, "2001:db8::2", 64),
                addr(4, "203.0.113.2", 24),
                addr(4, "203.0.113.3", 24),
            ],
            mptcp_enabled: Some(true),
            limits: Some(Limits {
                subflows: 2,
                add_addr_accepted: 1,
            }),
            endpoints: vec![
                endpoint(1, "198.51.100.2", Some(8080), EndpointFlags::SIGNAL),
                endpoint(2, "2001:db8::2", None, EndpointFlags::SIGNAL),
                endpoint(3, "203.0.113.2", None, EndpointFlags::SUBFLOW),
                endpoint(4, "192.0.2.2", None, EndpointFlags::IMPLICIT),
                endpoint(5, "203.0.113.3", None, EndpointFlags::IMPLICIT),
            ],
            sysctls: MptcpSysctls {
                path_manager: Some("kernel".to_string()),
                scheduler: Some("default".to_string()),
                available_schedulers: vec!["default".to_string()],
            },
        }
    }

    fn iface<'a>(s: &'a NetworkState, name: &str) -> &'a Interface {
        s.interfaces.iter().find(|i| i.name == name).unwrap()
    }

    fn flags(names: &[MptcpFlag]) -> Option<MptcpFlags> {
        Some(names.iter().copied().collect())
    }

    #[test]
    fn implicit_endpoints_are_shown_but_not_derived() {
        let s = merge(&kernel(), None, &[]);
        let eth1 = iface(&s, "eth1");
        let a = eth1.ipv4.as_ref().unwrap().address.as_ref().unwrap();
        assert_eq!(a[0].mptcp_flags, flags(&[MptcpFlag::Implicit]));
        // The only endpoint is implicit: the interface derives [] (valid input), not
        // [implicit] (refused) and not "absent".
        assert_eq!(eth1.address_flags(), Some(MptcpFlags::EMPTY));
        // [subflow] beside an implicit one ([] for the derivation): they differ.
        let eth3 = iface(&s, "eth3");
        assert_eq!(eth3.mptcp, None);
        let a = eth3.ipv4.as_ref().unwrap().address.as_ref().unwrap();
        assert_eq!(a[0].mptcp_flags, flags(&[MptcpFlag::Subflow]));
        assert_eq!(a[1].mptcp_flags, flags(&[MptcpFlag::Implicit]));
    }

    #[test]
    fn devices_are_shown_in_nmstate_s_states() {
        use crate::nm::query::{NM_DEVICE_STATE_ACTIVATED, NM_DEVICE_STATE_UNAVAILABLE};
        let mut k = kernel();
        k.links.push(Link {
            flags: 0,
            ..link(5, "eth4")
        });
        let dev = |name: &str, state: u32, applied: bool| NmDevice {
            path: zbus::zvariant::OwnedObjectPath::try_from("/d").unwrap(),
            interface: name.to_string(),
            state,
            applied: applied.then(AppliedProfile::default),
        };
        let nm = NmState {
            version: "1.42.4".into(),
            devices: vec![
                dev("eth1", NM_DEVICE_STATE_ACTIVATED, true),
                dev("eth2", 30, false),                        // disconnected
                dev("eth3", NM_DEVICE_STATE_UNMANAGED, false), // unmanaged
                dev("eth4", NM_DEVICE_STATE_UNAVAILABLE, false),
            ],
        };
        let s = merge(&k, Some(&nm), &[]);
        let states: Vec<_> = s
            .interfaces
            .iter()
            .map(|i| (i.name.as_str(), i.state))
            .collect();
        assert_eq!(
            states,
            [
                ("eth1", Some(InterfaceState::Up)),
                ("eth2", Some(InterfaceState::Down)),
                ("eth3", Some(InterfaceState::Ignore)),
                ("eth4", Some(InterfaceState::Down)),
            ]
        );
        // Kernel-only: the links' own state.
        let s = merge(&k, None, &[]);
        assert_eq!(iface(&s, "eth2").state, Some(InterfaceState::Up));
        assert_eq!(iface(&s, "eth4").state, Some(InterfaceState::Down));
        // `ignore` and `down` parse back.
        let text = merge(&k, Some(&nm), &[])
            .to_text(OutputFormat::Yaml)
            .unwrap();
        assert!(
            text.contains("state: ignore") && text.contains("state: down"),
            "{text}"
        );
        assert_eq!(
            parse(&text, &Log::new()).unwrap(),
            merge(&k, Some(&nm), &[])
        );
    }

    #[test]
    fn ports_and_host_knobs_are_shown() {
        let s = merge(&kernel(), None, &[]);
        let eth2 = iface(&s, "eth2");
        assert_eq!(eth2.address_flags(), flags(&[MptcpFlag::Signal]));
        let v4 = &eth2.ipv4.as_ref().unwrap().address.as_ref().unwrap()[0];
        assert_eq!(
            (v4.mptcp_port, v4.mptcp_flags),
            (Some(8080), flags(&[MptcpFlag::Signal]))
        );
        let v6 = &eth2.ipv6.as_ref().unwrap().address.as_ref().unwrap()[0];
        assert_eq!(v6.mptcp_port, None);
        let host = s.mptcp.as_ref().unwrap();
        assert_eq!(host.path_manager, Some(PathManager::Kernel));
        assert_eq!(host.scheduler.as_deref(), Some("default"));
    }

    #[test]
    fn show_output_parses_back_unchanged_and_without_warnings() {
        let s = merge(&kernel(), None, &[]);
        for out in [OutputFormat::Yaml, OutputFormat::Json] {
            let text = s.to_text(out).unwrap();
            let log = Log::new();
            let back = parse(&text, &log).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, s);
            assert_eq!(back.to_text(out).unwrap(), text);
            // NetworkManager's one-flag-set-per-interface warning is not given for an
            // implicit endpoint either (eth1), only for eth3's subflow endpoint.
            for i in &back.interfaces {
                crate::nm::model::warn_ignored_address_flags(i, &log);
            }
            let warnings: Vec<String> = log
                .records()
                .into_iter()
                .filter(|r| r.level == Level::Warn)
                .map(|r| r.message)
                .collect();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].starts_with("eth3: mptcp-flags [subflow] of 203.0.113.2"));
        }
        let yaml = s.to_text(OutputFormat::Yaml).unwrap();
        assert!(yaml.contains("    - ip: 192.0.2.2\n      prefix-length: 24\n      mptcp-flags:\n      - implicit\n"), "{yaml}");
        assert!(
            yaml.contains("      mptcp-flags:\n      - signal\n      mptcp-port: 8080\n"),
            "{yaml}"
        );
    }
}
