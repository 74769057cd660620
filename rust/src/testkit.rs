//! Made-up kernel state for the unit tests of pure logic (planning, checks, verification,
//! findings): links, addresses and endpoints as the kernel reader would return them.

use crate::netlink::{
    Address, AddressFlags, AddressScope, Endpoint, EndpointFlags, KernelState, Limits, Link,
    OperState,
};
use crate::state::{InterfaceType, NetworkState};
use crate::Log;

pub const PERM: u32 = AddressFlags::PERMANENT;
pub const SUBFLOW: u32 = EndpointFlags::SUBFLOW;
pub const SIGNAL: u32 = EndpointFlags::SIGNAL;

/// A veth, administratively up with carrier.
pub fn link(index: u32, name: &str) -> Link {
    Link {
        index,
        name: name.into(),
        iface_type: InterfaceType::Veth,
        flags: 0x1 | 0x10000, // IFF_UP | IFF_LOWER_UP
        oper_state: OperState::Up,
    }
}

/// An address with `IFA_F_*` `flags`; the prefix is 64 for IPv6, else 24.
pub fn addr(ifindex: u32, ip: &str, flags: u32) -> Address {
    Address {
        ifindex,
        address: ip.parse().unwrap(),
        prefix_len: if ip.contains(':') { 64 } else { 24 },
        flags: AddressFlags(flags),
        scope: AddressScope::Universe,
        valid_lft: None,
        preferred_lft: None,
    }
}

pub fn endpoint(id: u8, ip: &str, flags: u32, ifindex: Option<u32>) -> Endpoint {
    Endpoint {
        id,
        address: ip.parse().unwrap(),
        port: None,
        flags: EndpointFlags(flags),
        ifindex,
    }
}

/// MPTCP on, limits `subflows 2 add_addr_accepted 0` (a new namespace's), and these.
pub fn kernel(
    links: Vec<Link>,
    mut addresses: Vec<Address>,
    endpoints: Vec<Endpoint>,
) -> KernelState {
    addresses.sort_by_key(|a| a.ifindex);
    KernelState {
        links,
        addresses,
        mptcp_enabled: Some(true),
        limits: Some(Limits {
            subflows: 2,
            add_addr_accepted: 0,
        }),
        endpoints,
        ..Default::default()
    }
}

/// eth1 (192.0.2.2, fe80::1) and eth2 with six addresses, each with a subflow endpoint.
pub fn two_links_six_endpoints() -> KernelState {
    let mut addresses = vec![addr(2, "192.0.2.2", PERM), addr(2, "fe80::1", PERM)];
    let mut endpoints = Vec::new();
    for i in 1..=6u8 {
        let ip = format!("198.51.100.{i}");
        addresses.push(addr(3, &ip, PERM));
        endpoints.push(endpoint(i, &ip, SUBFLOW, Some(3)));
    }
    kernel(vec![link(2, "eth1"), link(3, "eth2")], addresses, endpoints)
}

/// A state parsed (and validated) from YAML.
pub fn state(yaml: &str) -> NetworkState {
    crate::state::parse(yaml, &Log::new()).unwrap()
}
