//! `show`: the current state, merged from the kernel (links, addresses, MPTCP endpoints,
//! limits, sysctl) and, unless kernel-only, NetworkManager (dhcp/autoconf of the
//! profiles it applied).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::netlink::{EndpointFlags, KernelState};
use crate::nm::query::NmState;
use crate::state::{
    ineligibility, HostMptcp, Interface, InterfaceMptcp, InterfaceState, Ipv4Address, Ipv4Config,
    Ipv6Address, Ipv6Config, MptcpFlags, MptcpLimits, NetworkState, PathManager,
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
    let nm_profiles: HashMap<&str, &crate::nm::query::NmDevice> = nm
        .map(|n| {
            n.devices
                .iter()
                .map(|d| (d.interface.as_str(), d))
                .collect()
        })
        .unwrap_or_default();

    // Endpoint flags by address; an endpoint bound to another link than the address's
    // still describes that address (the kernel matches endpoints by address).
    // Implicit endpoints are the kernel's bookkeeping for addresses a connection used
    // without an endpoint, not configuration: they are left out.
    let endpoint_flags: HashMap<IpAddr, MptcpFlags> = kernel
        .endpoints
        .iter()
        .filter(|e| e.flags.bits() & EndpointFlags::IMPLICIT == 0)
        .map(|e| (e.address, e.flags.mptcp_flags()))
        .collect();
    let endpoint_port: HashMap<IpAddr, u16> = kernel
        .endpoints
        .iter()
        .filter_map(|e| Some((e.address, e.port?)))
        .collect();

    let mut interfaces: Vec<Interface> = kernel
        .links
        .iter()
        .filter(|l| only.is_empty() || only.contains(&l.name))
        .map(|link| {
            let addrs: Vec<_> = kernel.addresses_of(link.index).collect();
            let flags_of = |ip: IpAddr| endpoint_flags.get(&ip).copied();

            let v4: Vec<Ipv4Address> = addrs
                .iter()
                .filter_map(|a| match a.address {
                    IpAddr::V4(ip) => Some(Ipv4Address {
                        ip,
                        prefix_length: a.prefix_len,
                        mptcp_flags: flags_of(a.address),
                        mptcp_port: endpoint_port.get(&a.address).copied(),
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
                        mptcp_port: endpoint_port.get(&a.address).copied(),
                    }),
                    IpAddr::V4(_) => None,
                })
                .collect();

            // The seed's rule: the interface's flags are the flags its eligible
            // addresses share; absent when they differ or when it has none.
            let eligible: Vec<MptcpFlags> = addrs
                .iter()
                .filter(|a| ineligibility(a.address).is_none() && !a.is_temporary())
                .map(|a| flags_of(a.address).unwrap_or_default())
                .collect();
            let address_flags = match eligible.split_first() {
                Some((first, rest)) if rest.iter().all(|f| f == first) => Some(*first),
                _ => None,
            };

            let applied = nm_profiles
                .get(link.name.as_str())
                .and_then(|d| d.applied.as_ref());
            let v4_method = applied.and_then(|p| p.ipv4_method.as_deref());
            let v6_method = applied.and_then(|p| p.ipv6_method.as_deref());

            Interface {
                name: link.name.clone(),
                iface_type: Some(link.iface_type),
                state: Some(if link.is_up() {
                    InterfaceState::Up
                } else {
                    InterfaceState::Down
                }),
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
