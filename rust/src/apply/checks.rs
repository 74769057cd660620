//! The live checks of an apply, the same for both backends: they need what was read but
//! not who writes. Everything here runs before anything is written; an error means
//! nothing was touched.
//!
//! What a check needs of the backend is the [`View`]: the kernel as read, and for each
//! interface the flags the backend keeps where the state gives none (NetworkManager: the
//! profile's `connection.mptcp-flags`; the kernel backend: none, the endpoints stay) and
//! whether per-address flags are honoured (kernel) or folded into the interface's (NM).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::log::Level;
use crate::netlink::{EndpointFlags, KernelState, Link};
use crate::state::{
    ineligibility, Interface, InterfaceType, MptcpFlag, MptcpFlags, NetworkState, MAX_ENDPOINTS,
};
use crate::verify::Mode;
use crate::{log_at, Error, ErrorKind, Log, Result};

/// What the checks read: the kernel, indexed, and the backend's view of the flags.
pub struct View<'a> {
    pub kernel: &'a KernelState,
    links: HashMap<&'a str, &'a Link>,
    /// NetworkManager folds per-address flags into the interface's; the kernel backend
    /// honours them.
    pub mode: Mode,
    /// The flags each named interface keeps where the state gives none, by name.
    held: HashMap<String, MptcpFlags>,
}

impl<'a> View<'a> {
    pub fn new(kernel: &'a KernelState, mode: Mode) -> Self {
        View {
            kernel,
            links: kernel.links.iter().map(|l| (l.name.as_str(), l)).collect(),
            mode,
            held: HashMap::new(),
        }
    }

    /// Records the flags the backend keeps on `ifname` when the state gives none.
    pub fn hold(&mut self, ifname: &str, flags: MptcpFlags) {
        self.held.insert(ifname.to_string(), flags);
    }

    /// The kernel's link of that name.
    pub fn link(&self, name: &str) -> Option<&'a Link> {
        self.links.get(name).copied()
    }

    /// The flags an address of `iface` ends up with after the apply, as far as the state
    /// and the backend tell; `None`: the state says nothing and the backend keeps nothing
    /// (the endpoint the kernel has stays as it is).
    pub fn flags_after(&self, iface: &Interface, ip: IpAddr) -> Option<MptcpFlags> {
        let own = match self.mode {
            Mode::KernelOnly => iface
                .addresses()
                .find(|a| a.ip == ip)
                .and_then(|a| a.mptcp_flags),
            Mode::NetworkManager => None,
        };
        own.or(iface.address_flags())
            .or_else(|| self.held.get(&iface.name).copied())
    }
}

/// Drops from the desired address lists what is not configuration but the kernel's or a
/// lease's: addresses the link has with a lifetime (DHCP, SLAAC) when the family gets
/// them dynamically, and IPv6 link-local addresses the link has but the backend's
/// configuration (`configured`: NM's profile) does not list (the kernel or NM makes
/// them). `show` lists both; applying its output must change nothing, and must not pin a
/// lease as a static address.
pub fn drop_kernel_owned(
    iface: &mut Interface,
    link: Option<&Link>,
    kernel: &KernelState,
    configured: &HashSet<IpAddr>,
    log: &Log,
) {
    let Some(link) = link else {
        return;
    };
    let on_link: Vec<_> = kernel.addresses_of(link.index).collect();
    let dynamic: HashSet<IpAddr> = on_link
        .iter()
        .filter(|a| !a.is_permanent())
        .map(|a| a.address)
        .collect();
    let present: HashSet<IpAddr> = on_link.iter().map(|a| a.address).collect();
    let name = iface.name.clone();
    let mut dropped = Vec::new();
    if let Some(v4) = iface.ipv4.as_mut() {
        if v4.dhcp == Some(true) {
            if let Some(list) = v4.address.as_mut() {
                list.retain(|a| {
                    let keep = !dynamic.contains(&IpAddr::V4(a.ip));
                    if !keep {
                        dropped.push(a.ip.to_string());
                    }
                    keep
                });
            }
        }
    }
    if let Some(v6) = iface.ipv6.as_mut() {
        let dynamic_family = v6.dhcp == Some(true) || v6.autoconf == Some(true);
        if let Some(list) = v6.address.as_mut() {
            list.retain(|a| {
                let ip = IpAddr::V6(a.ip);
                let leased = dynamic_family && dynamic.contains(&ip);
                let kernel_ll = ineligibility(ip) == Some("link-local")
                    && present.contains(&ip)
                    && !configured.contains(&ip);
                if leased || kernel_ll {
                    dropped.push(a.ip.to_string());
                }
                !(leased || kernel_ll)
            });
        }
    }
    if !dropped.is_empty() {
        log_at!(
            log,
            Level::Debug,
            "{name}: not written as static addresses (leased, or made by the kernel): {}",
            dropped.join(", ")
        );
    }
}

/// Links the state needs: `up` and `down` need the link (this library creates none).
pub fn check_links_exist(state: &NetworkState, view: &View<'_>) -> Result<()> {
    for iface in &state.interfaces {
        if iface.state == Some(crate::state::InterfaceState::Absent) {
            continue;
        }
        if view.link(&iface.name).is_none() {
            return Err(Error::invalid(format!(
                "interface {} does not exist; ethernet and veth interfaces are not created by \
                 this library (create the link first, or use `state: absent`)",
                iface.name
            )));
        }
    }
    Ok(())
}

/// A `type` the state gives must be the existing link's: `type: bond` for a veth is a
/// state about some other interface, and applying it to this one (or, with `absent`,
/// deleting this one's NetworkManager profiles) is not what it asks. `ethernet` also
/// matches a veth (nmstate's older states call veths ethernet, and the seed does).
/// A state naming a link that does not exist is [`check_links_exist`]'s.
pub fn check_types(state: &NetworkState, view: &View<'_>) -> Result<()> {
    for (i, iface) in state.interfaces.iter().enumerate() {
        let (Some(want), Some(link)) = (iface.iface_type, view.link(&iface.name)) else {
            continue;
        };
        let have = link.iface_type;
        if want == have || (want == InterfaceType::Ethernet && have == InterfaceType::Veth) {
            continue;
        }
        return Err(Error::invalid(format!(
            "interfaces[{i}].type: {} is of type {have}, not {want}; give `type: {have}` \
             (or leave `type` out), or name the {want} interface this state is for",
            iface.name
        )));
    }
    Ok(())
}

/// Flags on a host whose `net.mptcp.enabled` is 0 (and a state that does not turn it on).
pub fn check_mptcp_enabled(state: &NetworkState, kernel: &KernelState) -> Result<()> {
    if kernel.mptcp_enabled != Some(false)
        || state.mptcp.as_ref().and_then(|m| m.enabled) == Some(true)
    {
        return Ok(());
    }
    let flagged: Vec<&str> = state
        .interfaces
        .iter()
        .filter(|i| !i.is_going_away())
        .filter(|i| {
            i.address_flags().is_some_and(|f| !f.is_empty())
                || i.addresses().any(|a| a.mptcp_flags.is_some_and(wanted))
        })
        .map(|i| i.name.as_str())
        .collect();
    if flagged.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotSupported,
        format!(
            "MPTCP is disabled in this network namespace (net.mptcp.enabled = 0), and the state \
             sets MPTCP flags on {}; run `sysctl -w net.mptcp.enabled=1` or add \
             `mptcp: {{enabled: true}}` to the state",
            flagged.join(", ")
        ),
    ))
}

/// Flags that ask for an endpoint: not empty, not the kernel's own `implicit`.
fn wanted(flags: MptcpFlags) -> bool {
    !flags.is_empty() && !flags.contains(MptcpFlag::Implicit)
}

/// An address whose state says `mptcp-flags: [implicit]` describes an endpoint the kernel
/// made itself (show lists them so); that holds only while the kernel has one there.
/// Nobody can ask the kernel for one.
pub fn check_implicit(state: &NetworkState, kernel: &KernelState) -> Result<()> {
    for iface in state.interfaces.iter().filter(|i| !i.is_going_away()) {
        for a in iface.addresses() {
            if !a
                .mptcp_flags
                .is_some_and(|f| f.contains(MptcpFlag::Implicit))
            {
                continue;
            }
            let has = kernel
                .endpoints
                .iter()
                .find(|e| e.address == a.ip)
                .map(|e| e.flags.contains(EndpointFlags::IMPLICIT));
            if has != Some(true) {
                let now = match has {
                    Some(_) => "a configured endpoint",
                    None => "no endpoint",
                };
                return Err(Error::invalid(format!(
                    "{}: {} has mptcp-flags [implicit], but the kernel has {now} there; \
                     implicit endpoints are made by the kernel itself (for an address a \
                     connection used without an endpoint) and cannot be asked for: give \
                     flags such as [subflow], or [] for none",
                    iface.name, a.ip
                )));
            }
        }
    }
    Ok(())
}

/// The first Linux with the `laminar` endpoint flag.
pub const LAMINAR_KERNEL: (u32, u32) = (6, 18);

/// `laminar` needs a kernel that has it. (Kernels before 6.19 echo unknown flag bits back,
/// so asking the kernel tells nothing; its version does.)
pub fn check_laminar(state: &NetworkState) -> Result<()> {
    let asks = |f: Option<MptcpFlags>| f.is_some_and(|f| f.contains(MptcpFlag::Laminar));
    let Some(iface) = state
        .interfaces
        .iter()
        .filter(|i| !i.is_going_away())
        .find(|i| asks(i.address_flags()) || i.addresses().any(|a| asks(a.mptcp_flags)))
    else {
        return Ok(());
    };
    let release = kernel_release();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if have >= LAMINAR_KERNEL {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotSupported,
        format!(
            "{}: the laminar flag needs Linux {}.{} or newer; this kernel is {release}",
            iface.name, LAMINAR_KERNEL.0, LAMINAR_KERNEL.1
        ),
    ))
}

/// `uname -r`.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The kernel's 8-endpoint limit, counting the endpoints that stay: those of interfaces
/// the state does not name, and those the named interfaces keep.
pub fn check_budget(state: &NetworkState, view: &View<'_>) -> Result<()> {
    let kernel = view.kernel;
    let named: HashSet<&str> = state.interfaces.iter().map(|i| i.name.as_str()).collect();
    let ifname_of = |ifindex: Option<u32>| ifindex.and_then(|i| kernel.link(i)).map(|l| &l.name);
    let addr_link: HashMap<IpAddr, u32> = kernel
        .addresses
        .iter()
        .map(|a| (a.address, a.ifindex))
        .collect();
    // Implicit endpoints hold a slot too (the kernel makes them with the same add).
    let mut endpoints: Vec<String> = Vec::new();
    for e in &kernel.endpoints {
        let link = ifname_of(e.ifindex.or_else(|| addr_link.get(&e.address).copied()));
        if link.is_none_or(|n| !named.contains(n.as_str())) {
            let on = link.map_or(String::new(), |n| format!(" on {n}"));
            let what = if e.flags.contains(EndpointFlags::IMPLICIT) {
                "implicit, stays"
            } else {
                "stays"
            };
            endpoints.push(format!("{}{on} ({what})", e.address));
        }
    }
    for iface in &state.interfaces {
        if iface.is_going_away() {
            continue;
        }
        for ip in resulting_addresses(iface, view.link(&iface.name), kernel) {
            if ineligibility(ip).is_some() {
                continue;
            }
            let has = match view.flags_after(iface, ip) {
                // `[implicit]` describes the kernel's endpoint there, which stays.
                Some(f) => wanted(f) || f.contains(MptcpFlag::Implicit),
                // The state says nothing: whatever the kernel has now stays.
                None => kernel.endpoints.iter().any(|e| e.address == ip),
            };
            if has {
                endpoints.push(format!("{ip} on {}", iface.name));
            }
        }
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(Error::invalid(format!(
            "the kernel keeps at most {MAX_ENDPOINTS} MPTCP endpoints per network namespace, \
             and after this apply there would be {}: {}; remove the flags of {} of them",
            endpoints.len(),
            endpoints.join(", "),
            endpoints.len() - MAX_ENDPOINTS
        )));
    }
    Ok(())
}

/// A note when the `subflows` limit after the apply is below the number of subflow
/// endpoints the state asks for: the kernel opens at most `subflows` additional subflows
/// per connection, so some endpoints are never used.
pub fn note_subflow_limit(state: &NetworkState, view: &View<'_>, log: &Log) {
    let limit = state
        .mptcp
        .as_ref()
        .and_then(|m| m.limits.as_ref())
        .and_then(|l| l.subflows)
        .or(view.kernel.limits.map(|l| l.subflows));
    let Some(limit) = limit else { return };
    let subflow: Vec<String> = state
        .interfaces
        .iter()
        .filter(|i| !i.is_going_away())
        .flat_map(|i| {
            resulting_addresses(i, view.link(&i.name), view.kernel)
                .into_iter()
                .filter(|ip| ineligibility(*ip).is_none())
                .filter(|ip| {
                    view.flags_after(i, *ip)
                        .is_some_and(|f| f.contains(MptcpFlag::Subflow))
                })
                .map(move |ip| format!("{ip} on {}", i.name))
        })
        .collect();
    if subflow.len() > limit as usize {
        log_at!(
            log,
            Level::Info,
            "the state has {} subflow endpoints ({}) but the subflows limit is {limit}: a \
             connection opens at most {limit} additional subflows; raise it with \
             `mptcp: {{limits: {{subflows: {}}}}}`",
            subflow.len(),
            subflow.join(", "),
            subflow.len().min(crate::state::MPTCP_LIMIT_MAX as usize)
        );
    }
}

/// The static addresses the interface has after the apply: per family, the state's list
/// when it gives one, else the link's permanent addresses now.
pub fn resulting_addresses(
    iface: &Interface,
    link: Option<&Link>,
    kernel: &KernelState,
) -> Vec<IpAddr> {
    let now: Vec<IpAddr> = link
        .map(|l| {
            kernel
                .addresses_of(l.index)
                .filter(|a| a.is_permanent() && !a.is_temporary())
                .map(|a| a.address)
                .collect()
        })
        .unwrap_or_default();
    let v4_off = iface.ipv4.as_ref().and_then(|c| c.enabled) == Some(false);
    let v6_off = iface.ipv6.as_ref().and_then(|c| c.enabled) == Some(false);
    let v4: Vec<IpAddr> = match iface.ipv4.as_ref().and_then(|c| c.address.as_ref()) {
        _ if v4_off => Vec::new(),
        Some(list) => list.iter().map(|a| IpAddr::V4(a.ip)).collect(),
        None => now.iter().copied().filter(IpAddr::is_ipv4).collect(),
    };
    let v6: Vec<IpAddr> = match iface.ipv6.as_ref().and_then(|c| c.address.as_ref()) {
        _ if v6_off => Vec::new(),
        Some(list) => list.iter().map(|a| IpAddr::V6(a.ip)).collect(),
        None => now.iter().copied().filter(IpAddr::is_ipv6).collect(),
    };
    v4.into_iter().chain(v6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{addr, endpoint, state, two_links_six_endpoints as kernel};

    #[test]
    fn the_budget_counts_endpoints_that_stay() {
        let k = kernel();
        let view = View::new(&k, Mode::NetworkManager);
        let three = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.3, prefix-length: 24}, {ip: 192.0.2.4, prefix-length: 24}]}\n";
        let e = check_budget(&state(three), &view).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.msg().contains("at most 8") && e.msg().contains("would be 9"),
            "{e}"
        );
        assert!(e.msg().contains("198.51.100.1 on eth2 (stays)"), "{e}");
        // Naming eth2 with MPTCP off frees its six.
        let both = format!("{three}- name: eth2\n  mptcp: {{address-flags: []}}\n");
        assert!(check_budget(&state(&both), &view).is_ok());
    }

    #[test]
    fn per_address_flags_count_in_kernel_mode_only() {
        let k = kernel();
        // Two of eth1's three addresses opt out per address.
        let yaml = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.3, prefix-length: 24, mptcp-flags: []}, {ip: 192.0.2.4, prefix-length: 24, mptcp-flags: []}]}\n";
        assert!(check_budget(&state(yaml), &View::new(&k, Mode::KernelOnly)).is_ok());
        assert!(check_budget(&state(yaml), &View::new(&k, Mode::NetworkManager)).is_err());
    }

    #[test]
    fn flags_need_mptcp_enabled() {
        let mut k = kernel();
        k.mptcp_enabled = Some(false);
        let flags = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n";
        let e = check_mptcp_enabled(&state(flags), &k).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.msg().contains("sysctl -w net.mptcp.enabled=1"), "{e}");
        let on = format!("mptcp: {{enabled: true}}\n{flags}");
        assert!(check_mptcp_enabled(&state(&on), &k).is_ok());
        let off = "interfaces:\n- name: eth1\n  mptcp: {address-flags: []}\n";
        assert!(check_mptcp_enabled(&state(off), &k).is_ok());
    }

    #[test]
    fn links_are_not_created() {
        let k = kernel();
        let view = View::new(&k, Mode::KernelOnly);
        let e = check_links_exist(&state("interfaces:\n- name: eth9\n"), &view).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.msg().contains("eth9 does not exist"), "{e}");
        let absent = "interfaces:\n- name: eth9\n  state: absent\n";
        assert!(check_links_exist(&state(absent), &view).is_ok());
    }

    #[test]
    fn a_type_must_be_the_links() {
        let k = kernel(); // eth1 and eth2 are veths
        let view = View::new(&k, Mode::KernelOnly);
        let with = |t: &str, st: &str| {
            check_types(
                &state(&format!(
                    "interfaces:\n- name: eth2\n- name: eth1\n  type: {t}\n  state: {st}\n"
                )),
                &view,
            )
        };
        for t in ["veth", "ethernet"] {
            assert!(with(t, "up").is_ok(), "{t}");
        }
        for st in ["up", "down", "absent"] {
            let e = with("bond", st).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(
                e.msg()
                    .starts_with("interfaces[1].type: eth1 is of type veth, not bond"),
                "{e}"
            );
        }
        assert!(with("loopback", "up").is_err());
        // A link that does not exist is not this check's.
        let none = state("interfaces:\n- name: eth9\n  type: bond\n  state: absent\n");
        assert!(check_types(&none, &view).is_ok());
    }

    #[test]
    fn implicit_holds_only_where_the_kernel_has_it() {
        let mut k = kernel();
        k.endpoints
            .push(endpoint(9, "192.0.2.2", EndpointFlags::IMPLICIT, None));
        let yaml = |ip: &str| {
            format!(
                "interfaces:\n- name: eth1\n  ipv4: {{address: [{{ip: {ip}, prefix-length: 24, mptcp-flags: [implicit]}}]}}\n"
            )
        };
        assert!(check_implicit(&state(&yaml("192.0.2.2")), &k).is_ok());
        let e = check_implicit(&state(&yaml("192.0.2.9")), &k).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.msg().contains("made by the kernel itself"), "{e}");
    }

    #[test]
    fn leases_and_kernel_link_local_are_not_written() {
        let mut k = kernel();
        k.addresses.push(addr(2, "192.0.2.77", 0)); // a DHCP lease: no PERMANENT
        k.addresses.sort_by_key(|a| a.ifindex);
        let mut s = state(
            "interfaces:\n- name: eth1\n  ipv4: {dhcp: true, address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.77, prefix-length: 24}]}\n  ipv6: {address: [{ip: fe80::1, prefix-length: 64}]}\n",
        );
        drop_kernel_owned(
            &mut s.interfaces[0],
            k.links.first(),
            &k,
            &HashSet::new(),
            &Log::new(),
        );
        let v4: Vec<String> = s.interfaces[0]
            .ipv4
            .as_ref()
            .unwrap()
            .address
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.ip.to_string())
            .collect();
        assert_eq!(v4, ["192.0.2.2"]);
        assert!(s.interfaces[0]
            .ipv6
            .as_ref()
            .unwrap()
            .address
            .as_ref()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_low_subflow_limit_is_noted() {
        let k = kernel();
        let view = View::new(&k, Mode::KernelOnly);
        let yaml = "mptcp: {limits: {subflows: 1}}\ninterfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.3, prefix-length: 24}]}\n";
        let log = Log::new();
        note_subflow_limit(&state(yaml), &view, &log);
        let msgs: Vec<String> = log.records().into_iter().map(|r| r.message).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("2 subflow endpoints") && m.contains("subflows limit is 1")),
            "{msgs:?}"
        );
    }
}
