//! The NetworkManager profile an interface of the state stands for, in NM's own terms
//! (IP methods, address lists, `mptcp-flags` bits), before it is written anywhere.
//!
//! One mapping, two printers: `keyfile.rs` prints a [`ProfileModel`] as a keyfile (offline
//! `gc`), `settings.rs` writes it into D-Bus settings (`AddConnection2` / `Update2`). The
//! rules that decide a method live here only, so the two can never disagree.

use std::net::IpAddr;

use super::mptcp::to_nm;
use crate::log::Level;
use crate::state::{Interface, InterfaceState, Ipv4Config, Ipv6Config, MptcpFlag};
use crate::{log_at, Log};

/// `ipv4.method` / `ipv6.method` values this library writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpMethod {
    /// v4: DHCP; v6: router advertisements (SLAAC), and DHCPv6 when they ask for it.
    Auto,
    /// v6 only: DHCPv6 without autoconf.
    Dhcp,
    Manual,
    /// v6 only: a link-local address and nothing else.
    LinkLocal,
    Disabled,
}

impl IpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            IpMethod::Auto => "auto",
            IpMethod::Dhcp => "dhcp",
            IpMethod::Manual => "manual",
            IpMethod::LinkLocal => "link-local",
            IpMethod::Disabled => "disabled",
        }
    }
}

/// One IP family of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpProfile {
    pub method: IpMethod,
    /// Static addresses, in the state's order (NM makes the first the primary one).
    pub addresses: Vec<(IpAddr, u8)>,
}

/// What a profile must hold for an interface. `None` fields are left as they are in an
/// existing profile (a new profile gets NM's defaults for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileModel {
    /// `connection.autoconnect`: `false` for `state: down`, `true` for `state: up`
    /// (a profile that is up should come back up after a reboot).
    pub autoconnect: Option<bool>,
    /// `connection.mptcp-flags` (see [`to_nm`]), when the state gives `address-flags`.
    pub mptcp_flags: Option<u32>,
    pub ipv4: Option<IpProfile>,
    pub ipv6: Option<IpProfile>,
}

impl ProfileModel {
    /// A new profile. An IP section the state leaves out has nothing to be left as, so it
    /// is disabled (as nmstate does for a profile it creates).
    pub fn new_profile(iface: &Interface) -> Self {
        ProfileModel {
            autoconnect: autoconnect(iface),
            mptcp_flags: iface.address_flags().map(to_nm),
            ipv4: Some(ipv4_profile(iface.ipv4.as_ref())),
            ipv6: Some(ipv6_profile(iface.ipv6.as_ref())),
        }
    }

    /// The changes to an existing profile whose IP sections currently read as `current_v4`
    /// and `current_v6` (see `settings::current_ipv4`). Only what the state sets changes:
    /// an absent `ipv4` leaves the section alone, and a section that gives only `address`
    /// keeps its DHCP/autoconf setting.
    pub fn changes(iface: &Interface, current_v4: &Ipv4Config, current_v6: &Ipv6Config) -> Self {
        ProfileModel {
            autoconnect: autoconnect(iface),
            mptcp_flags: iface.address_flags().map(to_nm),
            ipv4: iface
                .ipv4
                .as_ref()
                .map(|d| ipv4_profile(Some(&merge_ipv4(d, current_v4)))),
            ipv6: iface
                .ipv6
                .as_ref()
                .map(|d| ipv6_profile(Some(&merge_ipv6(d, current_v6)))),
        }
    }
}

fn autoconnect(iface: &Interface) -> Option<bool> {
    match iface.state {
        Some(InterfaceState::Up) => Some(true),
        Some(InterfaceState::Down) => Some(false),
        Some(InterfaceState::Absent | InterfaceState::Ignore) | None => None,
    }
}

/// The IPv4 section for a config (`None`: the state has no `ipv4`).
///
/// `dhcp: true` is `auto` (static addresses are kept beside the lease); static addresses
/// alone are `manual`; enabled with neither is `disabled` (NM's `manual` refuses an empty
/// address list, and an IPv4 link-local method is not what "enabled" means in nmstate).
pub fn ipv4_profile(cfg: Option<&Ipv4Config>) -> IpProfile {
    let addresses: Vec<(IpAddr, u8)> = cfg
        .and_then(|c| c.address.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|a| (IpAddr::V4(a.ip), a.prefix_length))
        .collect();
    let enabled = cfg.is_some_and(|c| c.enabled != Some(false));
    let method = if !enabled {
        IpMethod::Disabled
    } else if cfg.is_some_and(|c| c.dhcp == Some(true)) {
        IpMethod::Auto
    } else if addresses.is_empty() {
        IpMethod::Disabled
    } else {
        IpMethod::Manual
    };
    IpProfile { method, addresses }
}

/// The IPv6 section for a config: autoconf is `auto` (with or without DHCPv6: NM's `auto`
/// runs DHCPv6 when the router says so), DHCPv6 alone `dhcp`, static addresses alone
/// `manual`, enabled with none of these `link-local`.
pub fn ipv6_profile(cfg: Option<&Ipv6Config>) -> IpProfile {
    let addresses: Vec<(IpAddr, u8)> = cfg
        .and_then(|c| c.address.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|a| (IpAddr::V6(a.ip), a.prefix_length))
        .collect();
    let enabled = cfg.is_some_and(|c| c.enabled != Some(false));
    let dhcp = cfg.is_some_and(|c| c.dhcp == Some(true));
    let autoconf = cfg.is_some_and(|c| c.autoconf == Some(true));
    let method = match (enabled, autoconf, dhcp, addresses.is_empty()) {
        (false, ..) => IpMethod::Disabled,
        (true, true, _, _) => IpMethod::Auto,
        (true, false, true, _) => IpMethod::Dhcp,
        (true, false, false, false) => IpMethod::Manual,
        (true, false, false, true) => IpMethod::LinkLocal,
    };
    IpProfile { method, addresses }
}

/// The desired IPv4 section over the current one: keys the state gives win, the others
/// keep their current value.
///
/// Two rules beyond "absent = as is": addresses or DHCP asked for with `enabled` left out
/// mean the family is wanted (a disabled profile does not stay disabled while being given
/// addresses, which NM would refuse anyway); and a family turned off loses its addresses
/// (NM refuses addresses with `method=disabled`).
pub fn merge_ipv4(desired: &Ipv4Config, current: &Ipv4Config) -> Ipv4Config {
    let wants_ip = desired.dhcp == Some(true);
    let (enabled, address) = merge_family(
        wants_ip,
        (desired.enabled, &desired.address),
        (current.enabled, &current.address),
    );
    Ipv4Config {
        enabled,
        dhcp: desired.dhcp.or(current.dhcp),
        address,
    }
}

/// [`merge_ipv4`] for IPv6 (autoconf is one more way to want the family).
pub fn merge_ipv6(desired: &Ipv6Config, current: &Ipv6Config) -> Ipv6Config {
    let wants_ip = desired.dhcp == Some(true) || desired.autoconf == Some(true);
    let (enabled, address) = merge_family(
        wants_ip,
        (desired.enabled, &desired.address),
        (current.enabled, &current.address),
    );
    Ipv6Config {
        enabled,
        dhcp: desired.dhcp.or(current.dhcp),
        autoconf: desired.autoconf.or(current.autoconf),
        address,
    }
}

/// The rules of [`merge_ipv4`] shared by both families: `enabled` and the address list,
/// from (`enabled`, `address`) desired and current. `dynamic` says the state asks for
/// DHCP (or autoconf).
fn merge_family<A: Clone>(
    dynamic: bool,
    desired: (Option<bool>, &Option<Vec<A>>),
    current: (Option<bool>, &Option<Vec<A>>),
) -> (Option<bool>, Option<Vec<A>>) {
    let wants_ip = dynamic || desired.1.as_ref().is_some_and(|a| !a.is_empty());
    let enabled = desired.0.or(wants_ip.then_some(true)).or(current.0);
    let address = if enabled == Some(false) {
        Some(Vec::new())
    } else {
        desired.1.clone().or_else(|| current.1.clone())
    };
    (enabled, address)
}

/// NetworkManager holds one flag set per profile: per-address flags that differ from the
/// interface's are ignored (as in nmstate), and said so. `[implicit]` is not a wish but
/// what `show` reports for an endpoint the kernel made itself; there is nothing to ignore,
/// and show's output applied back must not warn about it.
pub fn warn_ignored_address_flags(iface: &Interface, log: &Log) {
    let iface_flags = iface.address_flags();
    for addr in iface.addresses() {
        if let Some(flags) = addr.mptcp_flags {
            if Some(flags) != iface_flags && !flags.contains(MptcpFlag::Implicit) {
                log_at!(
                    log,
                    Level::Warn,
                    "{}: mptcp-flags {flags} of {} are ignored: NetworkManager supports one \
                     flag set per interface; set mptcp.address-flags instead",
                    iface.name,
                    addr.ip
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Ipv4Address, Ipv6Address};

    fn v4(addrs: &[&str]) -> Option<Vec<Ipv4Address>> {
        Some(
            addrs
                .iter()
                .map(|a| Ipv4Address {
                    ip: a.parse().unwrap(),
                    prefix_length: 24,
                    mptcp_flags: None,
                    mptcp_port: None,
                })
                .collect(),
        )
    }

    fn v6(addrs: &[&str]) -> Option<Vec<Ipv6Address>> {
        Some(
            addrs
                .iter()
                .map(|a| Ipv6Address {
                    ip: a.parse().unwrap(),
                    prefix_length: 64,
                    mptcp_flags: None,
                    mptcp_port: None,
                })
                .collect(),
        )
    }

    fn c4(enabled: Option<bool>, dhcp: Option<bool>, address: &[&str]) -> Ipv4Config {
        Ipv4Config {
            enabled,
            dhcp,
            address: v4(address),
        }
    }

    #[test]
    fn ipv4_methods() {
        let m = |c: Option<Ipv4Config>| ipv4_profile(c.as_ref()).method;
        assert_eq!(m(None), IpMethod::Disabled);
        assert_eq!(m(Some(c4(Some(false), None, &[]))), IpMethod::Disabled);
        assert_eq!(m(Some(c4(Some(true), Some(true), &[]))), IpMethod::Auto);
        assert_eq!(m(Some(c4(None, None, &["192.0.2.2"]))), IpMethod::Manual);
        assert_eq!(
            m(Some(c4(Some(true), Some(false), &[]))),
            IpMethod::Disabled
        );
        let p = ipv4_profile(Some(&c4(None, Some(true), &["192.0.2.2", "192.0.2.3"])));
        assert_eq!(p.method, IpMethod::Auto);
        assert_eq!(p.addresses.len(), 2);
    }

    #[test]
    fn ipv6_methods() {
        let m = |enabled, dhcp, autoconf, addrs: &[&str]| {
            ipv6_profile(Some(&Ipv6Config {
                enabled,
                dhcp,
                autoconf,
                address: v6(addrs),
            }))
            .method
        };
        assert_eq!(ipv6_profile(None).method, IpMethod::Disabled);
        assert_eq!(m(Some(false), None, None, &[]), IpMethod::Disabled);
        assert_eq!(m(Some(true), Some(true), Some(true), &[]), IpMethod::Auto);
        assert_eq!(m(Some(true), Some(false), Some(true), &[]), IpMethod::Auto);
        assert_eq!(m(Some(true), Some(true), Some(false), &[]), IpMethod::Dhcp);
        assert_eq!(m(None, None, None, &["2001:db8::2"]), IpMethod::Manual);
        assert_eq!(m(Some(true), None, None, &[]), IpMethod::LinkLocal);
    }

    #[test]
    fn merge_keeps_what_the_state_leaves_out() {
        let dhcp_with_addr = c4(Some(true), Some(true), &["192.0.2.9"]);
        // Only addresses given: DHCP stays on, the addresses are replaced.
        let m = merge_ipv4(&c4(None, None, &["192.0.2.2"]), &dhcp_with_addr);
        assert_eq!(m, c4(Some(true), Some(true), &["192.0.2.2"]));
        // Only dhcp given: the static addresses stay.
        let m = merge_ipv4(
            &c4(None, Some(false), &[]).with_no_address(),
            &dhcp_with_addr,
        );
        assert_eq!(m, c4(Some(true), Some(false), &["192.0.2.9"]));
        assert_eq!(ipv4_profile(Some(&m)).method, IpMethod::Manual);
        // `address: []` removes them all: enabled, no DHCP, no address is disabled.
        let manual = c4(Some(true), Some(false), &["192.0.2.9"]);
        let m = merge_ipv4(&c4(None, None, &[]), &manual);
        assert_eq!(ipv4_profile(Some(&m)).method, IpMethod::Disabled);
    }

    #[test]
    fn merge_enables_and_disables() {
        let disabled = c4(Some(false), Some(false), &[]);
        let m = merge_ipv4(&c4(None, None, &["192.0.2.2"]), &disabled);
        assert_eq!(m.enabled, Some(true));
        assert_eq!(ipv4_profile(Some(&m)).method, IpMethod::Manual);
        let m = merge_ipv4(
            &c4(Some(false), None, &[]).with_no_address(),
            &c4(Some(true), Some(false), &["192.0.2.2"]),
        );
        assert_eq!(
            ipv4_profile(Some(&m)),
            IpProfile {
                method: IpMethod::Disabled,
                addresses: vec![]
            }
        );

        let current = Ipv6Config {
            enabled: Some(false),
            ..Default::default()
        };
        let desired = Ipv6Config {
            autoconf: Some(true),
            ..Default::default()
        };
        assert_eq!(
            ipv6_profile(Some(&merge_ipv6(&desired, &current))).method,
            IpMethod::Auto
        );
    }

    #[test]
    fn absent_sections_are_not_changed() {
        let iface: Interface = serde_json::from_str(
            r#"{"name": "eth1", "mptcp": {"address-flags": ["subflow", "signal"]}}"#,
        )
        .unwrap();
        let m = ProfileModel::changes(&iface, &Ipv4Config::default(), &Ipv6Config::default());
        assert_eq!(
            m,
            ProfileModel {
                autoconnect: None,
                mptcp_flags: Some(56),
                ipv4: None,
                ipv6: None
            }
        );
        let new = ProfileModel::new_profile(&iface);
        assert_eq!(new.ipv4.unwrap().method, IpMethod::Disabled);
        assert_eq!(new.ipv6.unwrap().method, IpMethod::Disabled);
    }

    trait NoAddress {
        fn with_no_address(self) -> Self;
    }
    impl NoAddress for Ipv4Config {
        fn with_no_address(mut self) -> Self {
            self.address = None;
            self
        }
    }
}
