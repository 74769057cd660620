//! What an apply through NetworkManager must do, per interface: pure, from the desired
//! state and what was read (the kernel, NM's devices and profiles). The live checks both
//! backends share are in `apply/checks.rs`; everything here runs before anything is
//! written.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use zbus::zvariant::OwnedObjectPath;

use crate::apply::checks::View;
use crate::log::Level;
use crate::netlink::{KernelState, Link};
use crate::nm::dbus::Settings;
use crate::nm::keyfile::profile_uuid;
use crate::nm::mptcp::from_nm;
use crate::nm::profile::{Applied, Profile};
use crate::nm::query::{NM_DEVICE_STATE_UNAVAILABLE, NM_DEVICE_STATE_UNMANAGED};
use crate::nm::settings::{changed_keys, desired_settings, get_u32, ETHERNET};
use crate::query::{interface_of, EndpointIndex};
use crate::state::{Interface, InterfaceState, MptcpFlags, NetworkState};
use crate::verify::{check_interface, Mode};
use crate::{log_at, Error, ErrorKind, Log, Result};

/// NM's view of one interface the state names.
#[derive(Debug, Clone, Default)]
pub struct NmIface {
    /// `None`: NM has no device of that name.
    pub device: Option<Device>,
    /// The connection applied to the device, while it is active.
    pub applied: Option<Applied>,
    /// NM shows the device "connected (externally)": configured outside NetworkManager,
    /// `applied` is a profile NM generated for it (nobody's configuration).
    pub external: bool,
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
    /// Profiles bound to an interface name, oldest first (by the number NM gives each
    /// profile's object path as it adds it): the same order whether every profile was
    /// listed or only those of the named interfaces were read.
    by_ifname: HashMap<String, Vec<&'a Profile>>,
    links: HashMap<&'a str, &'a Link>,
    /// The kernel's endpoints by address, for deriving an interface as `show` does.
    endpoints: EndpointIndex,
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
        for bound in by_ifname.values_mut() {
            bound.sort_by_key(|p| path_number(&p.path));
        }
        Current {
            kernel,
            nm,
            by_uuid,
            by_ifname,
            links: kernel.links.iter().map(|l| (l.name.as_str(), l)).collect(),
            endpoints: EndpointIndex::new(kernel),
        }
    }

    /// The kernel's link of that name.
    pub fn link(&self, name: &str) -> Option<&'a Link> {
        self.links.get(name).copied()
    }

    /// The profiles bound to `ifname` by `connection.interface-name`.
    fn bound_to(&self, ifname: &str) -> &[&'a Profile] {
        self.by_ifname.get(ifname).map_or(&[], Vec::as_slice)
    }
}

/// The number at the end of an object path (`/org/freedesktop/NetworkManager/Settings/12`:
/// 12), which NM counts up as it adds objects; `u64::MAX` for a path without one.
fn path_number(path: &OwnedObjectPath) -> u64 {
    path.as_str()
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The steps of an apply, in state order; interfaces that already hold get none.
pub fn plan(state: &NetworkState, cur: &Current<'_>, log: &Log) -> Result<Vec<Step>> {
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

/// `state: ignore` (what `show` reports for a device NetworkManager does not manage)
/// leaves an interface as it is. On a device NM manages it is refused: nmstate would make
/// the device unmanaged, which this library does not do.
pub fn check_ignored(state: &NetworkState, nm: &HashMap<String, NmIface>) -> Result<()> {
    for iface in state.interfaces.iter().filter(|i| i.is_ignored()) {
        let managed = nm
            .get(&iface.name)
            .and_then(|n| n.device.as_ref())
            .is_some_and(|d| d.state > NM_DEVICE_STATE_UNMANAGED);
        if managed {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!(
                    "{}: state ignore on a device NetworkManager manages: that would make \
                     the device unmanaged (`nmcli device set {} managed no`), which this \
                     library does not do; leave the interface out of the state to leave it \
                     as it is",
                    iface.name, iface.name
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `state: down` holds on a device with nothing active on it: the interface as
/// the state gives it says nothing that `show` does not report for it (the same keys with
/// the same values; `type` aside, which the caller checked). `show` reports such a device
/// `down` (see `query::nm_state`), and applying that back must write nothing: not even
/// `autoconnect` or the IP sections of an inactive profile, which `show` does not read.
/// A state that says more (flags or addresses for the profile) writes the profile.
fn down_holds_as_shown(iface: &Interface, cur: &Current<'_>, link: &Link) -> bool {
    let shown = interface_of(cur.kernel, &cur.endpoints, link, InterfaceState::Down, None);
    let (Ok(mut desired), Ok(shown)) = (serde_json::to_value(iface), serde_json::to_value(&shown))
    else {
        return false;
    };
    if let Some(map) = desired.as_object_mut() {
        map.remove("type");
    }
    is_subset(&desired, &shown)
}

/// `a` says nothing `b` does not: every key of an object is in `b` with a value `a`'s is
/// a subset of; arrays pair up element by element; other values are equal.
fn is_subset(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| is_subset(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| is_subset(v, w))
        }
        _ => a == b,
    }
}

/// Fits the state to what NetworkManager holds before the live checks: leases and the
/// kernel's own link-local addresses are dropped from the desired lists, and the view
/// learns the flags of each profile (what NM keeps where the state gives none).
///
/// A profile that leaves the flags to NetworkManager (`connection.mptcp-flags` 0) gets
/// NM's default, `nm_default` (`subflow`; `subflow, laminar` from 1.56), where the link
/// has a default route. When the kernel holds exactly that on the link (what `show`
/// reports), the state's `address-flags` equal to it ask for nothing new: they are taken
/// as the profile's own, and the profile keeps its 0 (writing the same flags as bits
/// would change the profile for nothing, and `show`'s output applied back must write
/// nothing).
pub fn prepare(
    state: &mut NetworkState,
    cur: &Current<'_>,
    view: &mut View<'_>,
    nm_default: MptcpFlags,
    log: &Log,
) {
    for iface in &mut state.interfaces {
        let profile = profile_of(iface, cur);
        let configured: HashSet<IpAddr> = profile.map(profile_addresses).unwrap_or_default();
        crate::apply::checks::drop_kernel_owned(
            iface,
            cur.link(&iface.name),
            cur.kernel,
            &configured,
            log,
        );
        let bits = profile.map(|p| get_u32(&p.settings, "connection", "mptcp-flags").unwrap_or(0));
        if let Some(flags) = bits.and_then(from_nm) {
            view.hold(&iface.name, flags);
        } else if bits == Some(0) && kernel_has_default_flags(iface, cur, nm_default) {
            log_at!(
                log,
                Level::Debug,
                "{}: the profile leaves the flags to NetworkManager, whose default \
                 ({nm_default}) the kernel holds",
                iface.name
            );
            view.hold(&iface.name, nm_default);
            if iface.address_flags() == Some(nm_default) {
                if let Some(m) = iface.mptcp.as_mut() {
                    m.address_flags = None;
                }
            }
        }
    }
}

/// Whether the link's endpoints are NM's default flags on every eligible address (as
/// `show` derives `address-flags`).
fn kernel_has_default_flags(iface: &Interface, cur: &Current<'_>, nm_default: MptcpFlags) -> bool {
    let Some(link) = cur.link(&iface.name) else {
        return false;
    };
    let shown = interface_of(cur.kernel, &cur.endpoints, link, InterfaceState::Up, None);
    shown.mptcp.and_then(|m| m.address_flags) == Some(nm_default)
}

/// The static addresses a profile lists.
fn profile_addresses(p: &Profile) -> HashSet<IpAddr> {
    let v4 = crate::nm::settings::current_ipv4(&p.settings)
        .address
        .unwrap_or_default()
        .into_iter()
        .map(|a| IpAddr::V4(a.ip));
    let v6 = crate::nm::settings::current_ipv6(&p.settings)
        .address
        .unwrap_or_default()
        .into_iter()
        .map(|a| IpAddr::V6(a.ip));
    v4.chain(v6).collect()
}

/// The profile that stands for `iface`: the one applied to its device, else the one this
/// library made (its UUID derives from the name), else the first one bound to the name.
///
/// The profile NM generated for an externally configured device stands for nothing: it is
/// never picked.
fn profile_of<'a>(iface: &Interface, cur: &Current<'a>) -> Option<&'a Profile> {
    let nm = cur.nm.get(&iface.name);
    let applied_uuid = nm.and_then(|n| n.applied.as_ref()).and_then(Applied::uuid);
    let external = nm
        .is_some_and(|n| n.external)
        .then_some(applied_uuid.clone())
        .flatten();
    if let Some(uuid) = applied_uuid.filter(|_| external.is_none()) {
        if let Some(p) = cur.by_uuid.get(&uuid) {
            return Some(p);
        }
    }
    let ours = profile_uuid(&iface.name).to_string();
    cur.by_uuid.get(&ours).copied().or_else(|| {
        cur.bound_to(&iface.name).iter().copied().find(|p| {
            crate::nm::settings::get_str(&p.settings, "connection", "type").as_deref()
                == Some(ETHERNET)
                && (external.is_none() || p.uuid() != external)
        })
    })
}

fn plan_interface(iface: &Interface, cur: &Current<'_>, log: &Log) -> Result<Option<Step>> {
    let none = NmIface::default();
    let nm = cur.nm.get(&iface.name).unwrap_or(&none);
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
    let kernel_holds =
        check_interface(iface, Some(link), cur.kernel, Mode::NetworkManager).is_empty();
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

    // Configured outside NetworkManager ("connected (externally)"): nothing to do while
    // the kernel holds the state; a change gets a profile of its own (below: the
    // generated profile is nobody's, see `profile_of`), whose activation takes the device
    // over.
    if nm.external && kernel_holds && iface.state != Some(InterfaceState::Down) {
        return Ok(None);
    }

    if iface.state == Some(InterfaceState::Down) {
        // Nothing active: nothing to deactivate, and a state that says no more than
        // `show` does of such a device (what applying show's output back gives) holds.
        if !active && down_holds_as_shown(iface, cur, link) {
            return Ok(None);
        }
        let write = match profile {
            Some(p) => update_if_changed(iface, p, nm),
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
    let write = update_if_changed(iface, p, nm);
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
    use crate::nm::deactivation::NM_DEVICE_STATE_DISCONNECTED;
    use crate::state::MptcpFlag;
    use crate::testkit::{state, two_links_six_endpoints as kernel};

    fn plan_of(
        yaml: &str,
        kernel: &KernelState,
        nm: &HashMap<String, NmIface>,
    ) -> Result<Vec<Step>> {
        let cur = Current::new(kernel, nm, &[]);
        plan(&state(yaml), &cur, &Log::new())
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
                        external: false,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn unmanaged_devices_are_named() {
        let k = kernel();
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

    /// A disconnected veth with no address and an inactive profile (autoconnect on,
    /// manual 198.51.100.5): what `show` reports for it is `down` with both families off.
    fn down_device_with_inactive_profile() -> (KernelState, HashMap<String, NmIface>, Profile) {
        let k = crate::testkit::kernel(vec![crate::testkit::link(2, "eth5")], vec![], vec![]);
        let nm = managed(&["eth5"]);
        let profile = profile_with(
            "interfaces:\n- name: eth5\n  ipv4: {address: [{ip: 198.51.100.5, prefix-length: 24}]}\n",
            5,
            "autoconnect",
            zbus::zvariant::Value::from(true),
        );
        (k, nm, profile)
    }

    /// The profile this library writes for the one interface of `yaml`, at Settings/`n`,
    /// with `connection.<key>` set to `value`.
    fn profile_with(yaml: &str, n: u32, key: &str, value: zbus::zvariant::Value) -> Profile {
        let iface = state(yaml);
        let mut settings = desired_settings(&iface.interfaces[0], None);
        settings
            .get_mut("connection")
            .unwrap()
            .insert(key.into(), value.try_into().unwrap());
        Profile {
            path: OwnedObjectPath::try_from(format!(
                "/org/freedesktop/NetworkManager/Settings/{n}"
            ))
            .unwrap(),
            settings,
        }
    }

    #[test]
    fn down_as_shown_on_a_device_with_nothing_active_holds() {
        let (k, nm, profile) = down_device_with_inactive_profile();
        let profiles = [profile];
        let cur = Current::new(&k, &nm, &profiles);
        let log = Log::new();
        // show's output: nothing to do (neither autoconnect nor the IP sections written).
        let shown = "interfaces:\n- name: eth5\n  type: veth\n  state: down\n  ipv4: {enabled: false, address: []}\n  ipv6: {enabled: false, address: []}\n";
        assert!(plan(&state(shown), &cur, &log).unwrap().is_empty());
        assert!(plan(
            &state("interfaces:\n- name: eth5\n  state: down\n"),
            &cur,
            &log
        )
        .unwrap()
        .is_empty());
        // More than show says (flags for the profile): the profile is written.
        let flags =
            "interfaces:\n- name: eth5\n  state: down\n  mptcp: {address-flags: [signal]}\n";
        let steps = plan(&state(flags), &cur, &log).unwrap();
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].write, Some(Write::Update { .. })));
        assert_eq!(steps[0].live, Live::Nothing);
        // No profile at all: down holds whatever else.
        let none = Current::new(&k, &nm, &[]);
        assert!(plan(&state(shown), &none, &log).unwrap().is_empty());
    }

    #[test]
    fn ignore_is_refused_on_a_managed_device_only() {
        let nm = managed(&["eth1"]);
        let e =
            check_ignored(&state("interfaces:\n- name: eth1\n  state: ignore\n"), &nm).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.msg().contains("managed no"), "{e}");
        let mut unmanaged = nm.clone();
        unmanaged
            .get_mut("eth1")
            .unwrap()
            .device
            .as_mut()
            .unwrap()
            .state = NM_DEVICE_STATE_UNMANAGED;
        assert!(check_ignored(
            &state("interfaces:\n- name: eth1\n  state: ignore\n"),
            &unmanaged
        )
        .is_ok());
        // A device NM does not know at all.
        assert!(check_ignored(&state("interfaces:\n- name: eth7\n  state: ignore\n"), &nm).is_ok());
    }

    #[test]
    fn an_external_device_holds_while_the_kernel_does_and_gets_its_own_profile() {
        let k = kernel();
        let mut nm = managed(&["eth1"]);
        let generated = state(
            "interfaces:\n- name: eth1\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n",
        );
        let mut settings = desired_settings(&generated.interfaces[0], None);
        let uuid = zbus::zvariant::Value::from("0c55280f-9f78-45df-9acb-07ebce5218ea");
        settings
            .get_mut("connection")
            .unwrap()
            .insert("uuid".into(), uuid.try_into().unwrap());
        let profiles = [Profile {
            path: OwnedObjectPath::try_from("/org/freedesktop/NetworkManager/Settings/9").unwrap(),
            settings: settings.clone(),
        }];
        let eth1 = nm.get_mut("eth1").unwrap();
        eth1.applied = Some(Applied {
            settings,
            version_id: 1,
        });
        eth1.external = true;
        let cur = Current::new(&k, &nm, &profiles);
        let log = Log::new();
        // As the kernel has it (show's output): nothing.
        let shown = "interfaces:\n- name: eth1\n  state: up\n  mptcp: {address-flags: []}\n  ipv4: {enabled: true, address: [{ip: 192.0.2.2, prefix-length: 24}]}\n";
        assert!(plan(&state(shown), &cur, &log).unwrap().is_empty());
        // A change: a profile of its own, activated; the generated one is not touched.
        let steps = plan(
            &state("interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n  ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24}]}\n"),
            &cur,
            &log,
        )
        .unwrap();
        assert_eq!(steps.len(), 1);
        assert!(
            matches!(steps[0].write, Some(Write::Add(_))),
            "{:?}",
            steps[0].write
        );
        assert_eq!(steps[0].live, Live::Activate);
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

    /// eth2 of the testkit kernel (six addresses, each a `subflow` endpoint) with a profile
    /// that leaves the flags to NetworkManager (`connection.mptcp-flags` 0).
    fn default_flags_profile() -> (KernelState, HashMap<String, NmIface>, Profile) {
        let k = kernel();
        let nm = managed(&["eth2"]);
        let profile = profile_with(
            "interfaces:\n- name: eth2\n  ipv4: {address: [{ip: 198.51.100.1, prefix-length: 24}]}\n",
            2,
            "mptcp-flags",
            zbus::zvariant::Value::from(0u32),
        );
        (k, nm, profile)
    }

    #[test]
    fn flags_left_to_nm_read_as_nm_s_default_where_the_kernel_holds_it() {
        let (k, nm, profile) = default_flags_profile();
        let profiles = [profile];
        let cur = Current::new(&k, &nm, &profiles);
        let log = Log::new();
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let subflow: MptcpFlags = [MptcpFlag::Subflow].into_iter().collect();
        let with_laminar: MptcpFlags = [MptcpFlag::Subflow, MptcpFlag::Laminar]
            .into_iter()
            .collect();
        let asked = "interfaces:\n- name: eth2\n  mptcp: {address-flags: [subflow]}\n";

        // NM < 1.56 (default `subflow`), the kernel holds it: the state's equal flags are
        // the profile's own (nothing to write), and the view holds the default.
        let mut st = state(asked);
        let mut view = View::new(&k, Mode::NetworkManager);
        prepare(&mut st, &cur, &mut view, subflow, &log);
        assert_eq!(st.interfaces[0].address_flags(), None);
        assert_eq!(view.flags_after(&st.interfaces[0], ip), Some(subflow));

        // NM >= 1.56 (default `subflow, laminar`), the kernel holds `subflow` only: not
        // NM's default, so the state's flags stay and nothing is held for the profile.
        let mut st = state(asked);
        let mut view = View::new(&k, Mode::NetworkManager);
        prepare(&mut st, &cur, &mut view, with_laminar, &log);
        assert_eq!(st.interfaces[0].address_flags(), Some(subflow));
        let bare = state("interfaces:\n- name: eth2\n");
        assert_eq!(view.flags_after(&bare.interfaces[0], ip), None);

        // Other flags than the default asked: they stay, to be written.
        let mut st = state("interfaces:\n- name: eth2\n  mptcp: {address-flags: [signal]}\n");
        let mut view = View::new(&k, Mode::NetworkManager);
        prepare(&mut st, &cur, &mut view, subflow, &log);
        let signal: MptcpFlags = [MptcpFlag::Signal].into_iter().collect();
        assert_eq!(st.interfaces[0].address_flags(), Some(signal));
    }
}
