//! What an apply must do, per interface: pure, from the desired state and what was read
//! (the kernel, NM's devices and profiles). Also the live checks that need what was
//! read: interfaces that must exist, `net.mptcp.enabled`, the endpoint budget counting
//! the endpoints that stay. Everything here runs before anything is written.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use zbus::zvariant::OwnedObjectPath;

use crate::log::Level;
use crate::netlink::{EndpointFlags, KernelState, Link};
use crate::nm::dbus::Settings;
use crate::nm::keyfile::profile_uuid;
use crate::nm::mptcp::from_nm;
use crate::nm::profile::{Applied, Profile};
use crate::nm::query::{NM_DEVICE_STATE_UNAVAILABLE, NM_DEVICE_STATE_UNMANAGED};
use crate::nm::settings::{changed_keys, desired_settings, get_u32, ETHERNET};
use crate::state::{
    ineligibility, Interface, InterfaceState, MptcpFlags, NetworkState, MAX_ENDPOINTS,
};
use crate::verify::{check_interface, Mode};
use crate::{log_at, Error, ErrorKind, Log, Result};

/// NM's view of one interface the state names.
#[derive(Debug, Clone, Default)]
pub struct NmIface {
    /// `None`: NM has no device of that name.
    pub device: Option<Device>,
    /// The connection applied to the device, while it is active.
    pub applied: Option<Applied>,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub path: OwnedObjectPath,
    /// `NMDeviceState`.
    pub state: u32,
}

/// A profile to write.
#[derive(Debug, Clone)]
pub enum Write {
    Add(Settings),
    Update {
        path: OwnedObjectPath,
        settings: Settings,
        /// The profile as it was, to put back on rollback when NM's checkpoint does not
        /// (a profile that was not applied to the device when the checkpoint was taken).
        before: Option<Settings>,
    },
}

/// How a change goes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// Nothing to do on the device (state down with no active profile, a profile-only
    /// change).
    Nothing,
    /// `Device.Reapply` of the device's (updated) profile.
    Reapply { version_id: u64 },
    /// `ActivateConnection` of the written profile.
    Activate,
    /// Deactivate whatever is active on the device.
    Deactivate,
}

/// The work for one interface that changes.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// The NM device, when there is one (every step that goes live has one).
    pub device: Option<OwnedObjectPath>,
    pub write: Option<Write>,
    /// The profile to bring live when nothing is written (an existing one).
    pub profile: Option<OwnedObjectPath>,
    pub live: Live,
    /// Profiles to delete (`state: absent`), each with its settings when the apply must
    /// re-add it on rollback (NM's checkpoint re-adds only the profile applied to a
    /// device it holds).
    pub delete: Vec<(OwnedObjectPath, Option<Settings>)>,
    /// Why it changes, for the log.
    pub why: String,
}

/// Everything read before planning, with the profiles indexed (a plan over 1000
/// interfaces must not scan 1000 profiles for each).
pub struct Current<'a> {
    pub kernel: &'a KernelState,
    pub nm: &'a HashMap<String, NmIface>,
    by_uuid: HashMap<String, &'a Profile>,
    /// Ethernet profiles bound to an interface name, in NM's order.
    by_ifname: HashMap<String, Vec<&'a Profile>>,
    links: HashMap<&'a str, &'a Link>,
}

impl<'a> Current<'a> {
    pub fn new(
        kernel: &'a KernelState,
        nm: &'a HashMap<String, NmIface>,
        profiles: &'a [Profile],
    ) -> Self {
        let mut by_uuid = HashMap::new();
        let mut by_ifname: HashMap<String, Vec<&Profile>> = HashMap::new();
        for p in profiles {
            if let Some(uuid) = p.uuid() {
                by_uuid.insert(uuid, p);
            }
            if let Some(name) = p.interface_name() {
                by_ifname.entry(name).or_default().push(p);
            }
        }
        Current {
            kernel,
            nm,
            by_uuid,
            by_ifname,
            links: kernel.links.iter().map(|l| (l.name.as_str(), l)).collect(),
        }
    }

    /// The kernel's link of that name.
    fn link(&self, name: &str) -> Option<&'a Link> {
        self.links.get(name).copied()
    }

    /// The profiles bound to `ifname` by `connection.interface-name`.
    fn bound_to(&self, ifname: &str) -> &[&'a Profile] {
        self.by_ifname.get(ifname).map_or(&[], Vec::as_slice)
    }
}

/// The steps of an apply, in state order; interfaces that already hold get none.
/// Also runs the live checks; an error here means nothing may be written.
pub fn plan(state: &mut NetworkState, cur: &Current<'_>, log: &Log) -> Result<Vec<Step>> {
    for iface in &mut state.interfaces {
        drop_kernel_owned(
            iface,
            cur.link(&iface.name),
            cur.kernel,
            profile_of(iface, cur),
            log,
        );
    }
    check_mptcp_enabled(state, cur.kernel)?;
    check_budget(state, cur)?;
    let mut steps = Vec::new();
    for iface in &state.interfaces {
        if !iface.is_going_away() {
            crate::nm::model::warn_ignored_address_flags(iface, log);
        }
        if let Some(step) = plan_interface(iface, cur, log)? {
            log_at!(log, Level::Info, "{}: {}", step.name, step.why);
            steps.push(step);
        } else {
            log_at!(
                log,
                Level::Debug,
                "{}: holds already, not touched",
                iface.name
            );
        }
    }
    Ok(steps)
}

/// The profile that stands for `iface`: the one applied to its device, else the one this
/// library made (its UUID derives from the name), else the first one bound to the name.
fn profile_of<'a>(iface: &Interface, cur: &Current<'a>) -> Option<&'a Profile> {
    let nm = cur.nm.get(&iface.name);
    if let Some(uuid) = nm.and_then(|n| n.applied.as_ref()).and_then(Applied::uuid) {
        if let Some(p) = cur.by_uuid.get(&uuid) {
            return Some(p);
        }
    }
    let ours = profile_uuid(&iface.name).to_string();
    cur.by_uuid.get(&ours).copied().or_else(|| {
        cur.bound_to(&iface.name).iter().copied().find(|p| {
            crate::nm::settings::get_str(&p.settings, "connection", "type").as_deref()
                == Some(ETHERNET)
        })
    })
}

/// Drops from the desired address lists what is not configuration but the kernel's or a
/// lease's: addresses the link has with a lifetime (DHCP, SLAAC) when the family gets
/// them dynamically, and IPv6 link-local addresses the link has but the profile does not
/// list (the kernel or NM makes them). `show` lists both; applying its output must
/// change nothing, and must not pin a lease as a static address.
fn drop_kernel_owned(
    iface: &mut Interface,
    link: Option<&Link>,
    kernel: &KernelState,
    profile: Option<&Profile>,
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
    let in_profile: HashSet<IpAddr> = profile
        .map(|p| {
            let mut v: Vec<IpAddr> = crate::nm::settings::current_ipv4(&p.settings)
                .address
                .unwrap_or_default()
                .iter()
                .map(|a| IpAddr::V4(a.ip))
                .collect();
            v.extend(
                crate::nm::settings::current_ipv6(&p.settings)
                    .address
                    .unwrap_or_default()
                    .iter()
                    .map(|a| IpAddr::V6(a.ip)),
            );
            v.into_iter().collect()
        })
        .unwrap_or_default();
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
                    && !in_profile.contains(&ip);
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

/// Flags on a host whose `net.mptcp.enabled` is 0 (and a state that does not turn it on).
fn check_mptcp_enabled(state: &NetworkState, kernel: &KernelState) -> Result<()> {
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
                || i.addresses()
                    .any(|a| a.mptcp_flags.is_some_and(|f| !f.is_empty()))
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

/// The kernel's 8-endpoint limit, counting the endpoints that stay: those of interfaces
/// the state does not name, and those the named interfaces keep.
fn check_budget(state: &NetworkState, cur: &Current<'_>) -> Result<()> {
    let kernel = cur.kernel;
    let named: HashSet<&str> = state.interfaces.iter().map(|i| i.name.as_str()).collect();
    let ifname_of = |ifindex: Option<u32>| ifindex.and_then(|i| kernel.link(i)).map(|l| &l.name);
    let addr_link: HashMap<IpAddr, u32> = kernel
        .addresses
        .iter()
        .map(|a| (a.address, a.ifindex))
        .collect();
    let mut endpoints: Vec<String> = Vec::new();
    for e in &kernel.endpoints {
        if e.flags.bits() & EndpointFlags::IMPLICIT != 0 {
            continue;
        }
        let link = ifname_of(e.ifindex.or_else(|| addr_link.get(&e.address).copied()));
        if link.is_none_or(|n| !named.contains(n.as_str())) {
            let on = link.map_or(String::new(), |n| format!(" on {n}"));
            endpoints.push(format!("{}{on} (stays)", e.address));
        }
    }
    for iface in &state.interfaces {
        if iface.is_going_away() {
            continue;
        }
        let flags = interface_flags(iface, cur);
        for ip in resulting_addresses(iface, cur.link(&iface.name), kernel) {
            if ineligibility(ip).is_some() {
                continue;
            }
            let has = match flags {
                Some(f) => !f.is_empty(),
                // NM's default: whatever the kernel has now stays.
                None => kernel
                    .endpoints
                    .iter()
                    .any(|e| e.address == ip && e.flags.bits() & EndpointFlags::IMPLICIT == 0),
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

/// The flag set NM will hold for the interface: the state's, else its profile's.
fn interface_flags(iface: &Interface, cur: &Current<'_>) -> Option<MptcpFlags> {
    iface.address_flags().or_else(|| {
        profile_of(iface, cur)
            .and_then(|p| get_u32(&p.settings, "connection", "mptcp-flags"))
            .and_then(from_nm)
    })
}

/// The static addresses the interface has after the apply: per family, the state's list
/// when it gives one, else the link's permanent addresses now.
fn resulting_addresses(
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

fn plan_interface(iface: &Interface, cur: &Current<'_>, log: &Log) -> Result<Option<Step>> {
    let nm = cur.nm.get(&iface.name).cloned().unwrap_or_default();
    let link = cur.link(&iface.name);
    let device = nm.device.as_ref().map(|d| d.path.clone());
    let active = nm.applied.is_some();
    let profile = profile_of(iface, cur);
    let name = iface.name.clone();
    let step = |write, profile: Option<&Profile>, live, delete, why: String| Step {
        name: name.clone(),
        device: device.clone(),
        write,
        profile: profile.map(|p| p.path.clone()),
        live,
        delete,
        why,
    };

    if iface.state == Some(InterfaceState::Absent) {
        let applied_uuid = nm.applied.as_ref().and_then(Applied::uuid);
        let mut bound: Vec<&Profile> = cur.bound_to(&iface.name).to_vec();
        if let Some(p) = profile.filter(|p| !bound.iter().any(|b| b.path == p.path)) {
            bound.push(p);
        }
        let bound: Vec<(OwnedObjectPath, Option<Settings>)> = bound
            .into_iter()
            .map(|p| {
                let restored_by_nm = applied_uuid.is_some() && p.uuid() == applied_uuid;
                (
                    p.path.clone(),
                    (!restored_by_nm).then(|| p.settings.clone()),
                )
            })
            .collect();
        if bound.is_empty() && !active {
            return Ok(None);
        }
        let live = if active {
            Live::Deactivate
        } else {
            Live::Nothing
        };
        let why = format!("absent: deactivate and delete {} profile(s)", bound.len());
        return Ok(Some(step(None, None, live, bound, why)));
    }

    // up (the default) or down: the link must exist; this library creates no link.
    let Some(link) = link else {
        return Err(Error::invalid(format!(
            "interface {} does not exist; ethernet and veth interfaces are not created by \
             this library (create the link first, or use `state: absent`)",
            iface.name
        )));
    };
    let kernel_holds = check_interface(iface, cur.kernel, Mode::NetworkManager).is_empty();
    let configurable = iface
        .iface_type
        .unwrap_or(link.iface_type)
        .is_configurable()
        && link.iface_type.is_configurable();
    let managed = nm
        .device
        .as_ref()
        .is_some_and(|d| d.state > NM_DEVICE_STATE_UNMANAGED);

    // Not ours to configure (loopback, a bridge ...) or not managed by NM: fine as long
    // as the kernel already holds what the state says (`show` output lists them all).
    // Their NM profiles, if any, are not this library's to compare or write.
    if !configurable || !managed {
        if kernel_holds && iface.state != Some(InterfaceState::Down) {
            return Ok(None);
        }
        if !configurable {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!(
                    "{}: interfaces of type {} are not configured by this library (only \
                     ethernet and veth); the state asks for a change",
                    iface.name,
                    iface.iface_type.unwrap_or(link.iface_type)
                ),
            ));
        }
        if nm.device.is_none() {
            return Err(Error::new(
                ErrorKind::NetworkManager,
                format!(
                    "{}: the kernel has the link but NetworkManager has no device for it",
                    iface.name
                ),
            ));
        }
        return Err(Error::new(
            ErrorKind::NetworkManager,
            format!(
                "{}: the device is not managed by NetworkManager; run `nmcli device set {} \
                 managed yes` first",
                iface.name, iface.name
            ),
        ));
    }
    let dev_state = nm.device.as_ref().map_or(0, |d| d.state);

    if iface.state == Some(InterfaceState::Down) {
        let write = match profile {
            Some(p) => update_if_changed(iface, p, &nm),
            None => None,
        };
        let live = if active {
            Live::Deactivate
        } else {
            Live::Nothing
        };
        if write.is_none() && live == Live::Nothing {
            return Ok(None);
        }
        return Ok(Some(step(write, profile, live, Vec::new(), "down".into())));
    }

    // up
    let Some(p) = profile else {
        if dev_state <= NM_DEVICE_STATE_UNAVAILABLE {
            log_at!(
                log,
                Level::Warn,
                "{}: the device has no carrier; the activation may fail",
                iface.name
            );
        }
        let settings = desired_settings(iface, None);
        return Ok(Some(step(
            Some(Write::Add(settings)),
            None,
            Live::Activate,
            Vec::new(),
            "no profile: add one and activate it".into(),
        )));
    };
    let write = update_if_changed(iface, p, &nm);
    let applied_is_p = nm
        .applied
        .as_ref()
        .and_then(Applied::uuid)
        .is_some_and(|u| p.uuid().as_deref() == Some(&u));
    match nm.applied.as_ref() {
        Some(applied) if applied_is_p => {
            let applied_changes = changed_keys(
                &applied.settings,
                &desired_settings(iface, Some(&applied.settings)),
            );
            if write.is_none() && applied_changes.is_empty() && kernel_holds {
                return Ok(None);
            }
            let why = match (&write, applied_changes.is_empty(), kernel_holds) {
                (Some(_), _, _) => "profile changes: update it and reapply".to_string(),
                (None, false, _) => format!(
                    "the active settings differ ({}): reapply",
                    applied_changes.join(", ")
                ),
                (None, true, _) => "the kernel differs from the profile: reapply".to_string(),
            };
            Ok(Some(step(
                write,
                Some(p),
                Live::Reapply {
                    version_id: applied.version_id,
                },
                Vec::new(),
                why,
            )))
        }
        _ => Ok(Some(step(
            write,
            Some(p),
            Live::Activate,
            Vec::new(),
            "not active with its profile: activate it".into(),
        ))),
    }
}

fn update_if_changed(iface: &Interface, p: &Profile, nm: &NmIface) -> Option<Write> {
    let desired = desired_settings(iface, Some(&p.settings));
    if changed_keys(&p.settings, &desired).is_empty() {
        return None;
    }
    // NM's checkpoint restores the profile applied to a device it holds; any other
    // profile is put back by the apply itself.
    let applied = nm
        .applied
        .as_ref()
        .and_then(Applied::uuid)
        .is_some_and(|u| p.uuid().as_deref() == Some(&u));
    Some(Write::Update {
        path: p.path.clone(),
        settings: desired,
        before: (!applied).then(|| p.settings.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{Address, AddressFlags, AddressScope, Endpoint, Limits, Link, OperState};
    use crate::nm::deactivation::NM_DEVICE_STATE_DISCONNECTED;
    use crate::state::InterfaceType;

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            iface_type: InterfaceType::Veth,
            flags: 0x1,
            oper_state: OperState::Up,
        }
    }

    fn addr(ifindex: u32, ip: &str, prefix: u8, flags: u32) -> Address {
        Address {
            ifindex,
            address: ip.parse().unwrap(),
            prefix_len: prefix,
            flags: AddressFlags(flags),
            scope: AddressScope::Universe,
            valid_lft: None,
            preferred_lft: None,
        }
    }

    const PERM: u32 = AddressFlags::PERMANENT;

    /// eth1 (192.0.2.2, fe80::1) and eth2 with six flagged addresses.
    fn kernel() -> KernelState {
        let mut addresses = vec![addr(2, "192.0.2.2", 24, PERM), addr(2, "fe80::1", 64, PERM)];
        let mut endpoints = Vec::new();
        for i in 1..=6u8 {
            let ip = format!("198.51.100.{i}");
            addresses.push(addr(3, &ip, 24, PERM));
            endpoints.push(Endpoint {
                id: i,
                address: ip.parse().unwrap(),
                port: None,
                flags: EndpointFlags(EndpointFlags::SUBFLOW),
                ifindex: Some(3),
            });
        }
        KernelState {
            links: vec![link(2, "eth1"), link(3, "eth2")],
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

    fn state(yaml: &str) -> NetworkState {
        crate::state::parse(yaml, &Log::new()).unwrap()
    }

    fn plan_of(
        yaml: &str,
        kernel: &KernelState,
        nm: &HashMap<String, NmIface>,
    ) -> Result<Vec<Step>> {
        let cur = Current::new(kernel, nm, &[]);
        plan(&mut state(yaml), &cur, &Log::new())
    }

    fn managed(names: &[&str]) -> HashMap<String, NmIface> {
        names
            .iter()
            .map(|n| {
                let dev = Device {
                    path: OwnedObjectPath::try_from("/org/freedesktop/NetworkManager/Devices/2")
                        .unwrap(),
                    state: NM_DEVICE_STATE_DISCONNECTED,
                };
                (
                    n.to_string(),
                    NmIface {
                        device: Some(dev),
                        applied: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_budget_counts_endpoints_that_stay() {
        let k = kernel();
        let three = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.3, prefix-length: 24}, {ip: 192.0.2.4, prefix-length: 24}]}\n";
        let e = plan_of(three, &k, &managed(&["eth1"])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.msg().contains("at most 8") && e.msg().contains("would be 9"),
            "{e}"
        );
        assert!(e.msg().contains("198.51.100.1 on eth2 (stays)"), "{e}");
        // Naming eth2 with MPTCP off frees its six.
        let both = format!("{three}- name: eth2\n  mptcp: {{address-flags: []}}\n");
        let steps = plan_of(&both, &k, &managed(&["eth1", "eth2"])).unwrap();
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn flags_need_mptcp_enabled() {
        let mut k = kernel();
        k.mptcp_enabled = Some(false);
        let flags = "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n";
        let e = plan_of(flags, &k, &managed(&["eth1"])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.msg().contains("sysctl -w net.mptcp.enabled=1"), "{e}");
        let on = format!("mptcp: {{enabled: true}}\n{flags}");
        assert!(plan_of(&on, &k, &managed(&["eth1"])).is_ok());
        let off = "interfaces:\n- name: eth1\n  mptcp: {address-flags: []}\n";
        assert!(plan_of(off, &k, &managed(&["eth1"])).is_ok());
    }

    #[test]
    fn links_are_not_created_and_unmanaged_devices_are_named() {
        let k = kernel();
        let e = plan_of("interfaces:\n- name: eth9\n", &k, &HashMap::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.msg().contains("eth9 does not exist"), "{e}");
        // An unmanaged device is fine while nothing changes, named when something does.
        let mut nm = managed(&["eth1"]);
        nm.get_mut("eth1").unwrap().device.as_mut().unwrap().state = NM_DEVICE_STATE_UNMANAGED;
        let holds =
            "interfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n";
        assert!(plan_of(holds, &k, &nm).unwrap().is_empty());
        let e = plan_of(
            "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n",
            &k,
            &nm,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NetworkManager);
        assert!(e.msg().contains("nmcli device set eth1 managed yes"), "{e}");
    }

    #[test]
    fn leases_and_kernel_link_local_are_not_written() {
        let mut k = kernel();
        k.addresses.push(addr(2, "192.0.2.77", 24, 0)); // a DHCP lease: no PERMANENT
        let mut s = state(
            "interfaces:\n- name: eth1\n  ipv4: {dhcp: true, address: [{ip: 192.0.2.2, prefix-length: 24}, {ip: 192.0.2.77, prefix-length: 24}]}\n  ipv6: {address: [{ip: fe80::1, prefix-length: 64}]}\n",
        );
        drop_kernel_owned(&mut s.interfaces[0], k.links.first(), &k, None, &Log::new());
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
    fn a_new_profile_is_added_and_activated() {
        let k = kernel();
        let steps = plan_of(
            "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow, signal]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n",
            &k,
            &managed(&["eth1"]),
        )
        .unwrap();
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].write, Some(Write::Add(_))));
        assert_eq!(steps[0].live, Live::Activate);
        let Some(Write::Add(s)) = &steps[0].write else {
            unreachable!()
        };
        assert_eq!(get_u32(s, "connection", "mptcp-flags"), Some(0x38));
    }
}
