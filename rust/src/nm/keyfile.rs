//! NetworkManager keyfiles (`*.nmconnection`) for interfaces of a state, made offline.
//!
//! The output is deterministic to the byte: sections and keys in a fixed order, UUIDs
//! derived from the interface name, so generated files can be diffed and committed.

use std::fmt::Write as _;

use uuid::Uuid;

use super::mptcp::to_nm;
use crate::log::Level;
use crate::state::{Interface, InterfaceState, InterfaceType, Ipv4Config, Ipv6Config};
use crate::{log_at, Log};

/// The namespace of the v5 UUIDs of generated profiles (a fixed, random UUID of this
/// project: changing it changes every generated profile's UUID).
const PROFILE_UUID_NAMESPACE: Uuid = Uuid::from_bytes([
    0x6d, 0x70, 0x74, 0x63, 0x70, 0x73, 0x74, 0x61, 0x8e, 0x1c, 0x4b, 0x57, 0x9a, 0x2e, 0x31, 0x05,
]);

/// The UUID of the profile this library makes for an interface.
pub fn profile_uuid(ifname: &str) -> Uuid {
    Uuid::new_v5(&PROFILE_UUID_NAMESPACE, ifname.as_bytes())
}

/// A keyfile's file name and text, or `None` when the interface gets no profile
/// (`state: absent`, or a type this library does not configure).
pub fn keyfile(iface: &Interface, log: &Log) -> Option<(String, String)> {
    if iface.state == Some(InterfaceState::Absent) {
        log_at!(log, Level::Info, "{}: state absent, no profile", iface.name);
        return None;
    }
    let ty = iface.iface_type.unwrap_or(InterfaceType::Ethernet);
    if !ty.is_configurable() {
        log_at!(
            log,
            Level::Warn,
            "{}: {ty} interfaces are not configured by this library; no profile for it",
            iface.name
        );
        return None;
    }
    warn_ignored_address_flags(iface, log);

    let mut out = String::new();
    let name = escape(&iface.name);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "[connection]");
    let _ = writeln!(out, "id={name}");
    let _ = writeln!(out, "uuid={}", profile_uuid(&iface.name));
    // A veth is an ethernet device to NetworkManager; the profile only binds to it by name.
    let _ = writeln!(out, "type=ethernet");
    let _ = writeln!(out, "interface-name={name}");
    if iface.state == Some(InterfaceState::Down) {
        let _ = writeln!(out, "autoconnect=false");
    }
    if let Some(flags) = iface.address_flags() {
        let _ = writeln!(out, "mptcp-flags={}", to_nm(flags));
    }
    let _ = writeln!(out, "\n[ethernet]");
    write_ipv4(&mut out, iface.ipv4.as_ref());
    write_ipv6(&mut out, iface.ipv6.as_ref());
    Some((format!("{}.nmconnection", iface.name), out))
}

fn write_ipv4(out: &mut String, cfg: Option<&Ipv4Config>) {
    let _ = writeln!(out, "\n[ipv4]");
    let addrs = cfg.and_then(|c| c.address.as_deref()).unwrap_or_default();
    for (i, a) in addrs.iter().enumerate() {
        let _ = writeln!(out, "address{}={}/{}", i + 1, a.ip, a.prefix_length);
    }
    let enabled = cfg.is_some_and(|c| c.enabled != Some(false));
    let method = if !enabled {
        "disabled"
    } else if cfg.is_some_and(|c| c.dhcp == Some(true)) {
        "auto"
    } else if addrs.is_empty() {
        "disabled"
    } else {
        "manual"
    };
    let _ = writeln!(out, "method={method}");
}

fn write_ipv6(out: &mut String, cfg: Option<&Ipv6Config>) {
    let _ = writeln!(out, "\n[ipv6]");
    let addrs = cfg.and_then(|c| c.address.as_deref()).unwrap_or_default();
    for (i, a) in addrs.iter().enumerate() {
        let _ = writeln!(out, "address{}={}/{}", i + 1, a.ip, a.prefix_length);
    }
    let enabled = cfg.is_some_and(|c| c.enabled != Some(false));
    let dhcp = cfg.is_some_and(|c| c.dhcp == Some(true));
    let autoconf = cfg.is_some_and(|c| c.autoconf == Some(true));
    let method = match (enabled, autoconf, dhcp, addrs.is_empty()) {
        (false, ..) => "disabled",
        (true, true, _, _) => "auto",
        (true, false, true, _) => "dhcp",
        (true, false, false, false) => "manual",
        (true, false, false, true) => "link-local",
    };
    let _ = writeln!(out, "method={method}");
}

/// NetworkManager holds one flag set per profile: per-address flags that differ from the
/// interface's are ignored (as in nmstate), and said so.
fn warn_ignored_address_flags(iface: &Interface, log: &Log) {
    let iface_flags = iface.address_flags();
    for addr in iface.addresses() {
        if let Some(flags) = addr.mptcp_flags {
            if Some(flags) != iface_flags {
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

/// GKeyFile value escaping; interface names cannot hold whitespace, so only the
/// backslash needs it.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
}
