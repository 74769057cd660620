//! NetworkManager keyfiles (`*.nmconnection`) for interfaces of a state, made offline.
//!
//! The output is deterministic to the byte: sections and keys in a fixed order, UUIDs
//! derived from the interface name, so generated files can be diffed and committed.

use std::fmt::Write as _;

use uuid::Uuid;

use super::model::{IpProfile, ProfileModel};
use super::mptcp::NM_MPTCP_FLAGS_LAMINAR;
use crate::log::Level;
use crate::state::{Interface, InterfaceState, InterfaceType};
use crate::{log_at, Error, ErrorKind, Log, Result};

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
/// (`state: absent` or `ignore`, or a type this library does not configure).
pub fn keyfile(iface: &Interface, log: &Log) -> Option<(String, String)> {
    if iface.state == Some(InterfaceState::Absent) {
        log_at!(log, Level::Info, "{}: state absent, no profile", iface.name);
        return None;
    }
    if iface.state == Some(InterfaceState::Ignore) {
        log_at!(log, Level::Info, "{}: state ignore, no profile", iface.name);
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
    super::model::warn_ignored_address_flags(iface, log);

    let mut out = String::new();
    let name = escape(&iface.name);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "[connection]");
    let _ = writeln!(out, "id={name}");
    let _ = writeln!(out, "uuid={}", profile_uuid(&iface.name));
    // A veth is an ethernet device to NetworkManager; the profile only binds to it by name.
    let _ = writeln!(out, "type=ethernet");
    let _ = writeln!(out, "interface-name={name}");
    // The same model the D-Bus writer uses (settings.rs): one mapping of a state to NM's
    // terms. `autoconnect=true` is NM's default, so only `false` is written.
    let model = ProfileModel::new_profile(iface);
    if model.autoconnect == Some(false) {
        let _ = writeln!(out, "autoconnect=false");
    }
    if let Some(flags) = model.mptcp_flags {
        // Offline there is no NetworkManager to ask for its version, so the bit is
        // written as asked and the user told what it takes.
        if flags & NM_MPTCP_FLAGS_LAMINAR != 0 {
            log_at!(
                log,
                Level::Warn,
                "{}: `laminar` is bit 0x100 of connection.mptcp-flags, which needs \
                 NetworkManager 1.56 or newer (older versions do not know the bit)",
                iface.name
            );
        }
        let _ = writeln!(out, "mptcp-flags={flags}");
    }
    let _ = writeln!(out, "\n[ethernet]");
    write_ip(&mut out, "ipv4", model.ipv4.as_ref());
    write_ip(&mut out, "ipv6", model.ipv6.as_ref());
    Some((format!("{}.nmconnection", iface.name), out))
}

/// Refuses an endpoint port (`mptcp-port`) on interface `i`: a NetworkManager profile
/// has one flag set per interface and no port, so the keyfile could only drop it.
pub fn refuse_ports(i: usize, iface: &Interface) -> Result<()> {
    match iface
        .addresses_indexed()
        .find(|(_, _, a)| a.mptcp_port.is_some())
    {
        Some((family, k, a)) => Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "interfaces[{i}].{family}.address[{k}].mptcp-port: NetworkManager cannot \
                 express an endpoint port (a profile has no such setting), so no keyfile \
                 can hold port {} of {}; kernel-only mode can apply it (`apply --kernel`, \
                 MPTCPSTATE_FLAG_KERNEL_ONLY, kernel_only=True)",
                a.mptcp_port.unwrap_or_default(),
                a.ip
            ),
        )),
        None => Ok(()),
    }
}

/// An IP section: the addresses, then the method (a new profile always has both
/// sections; `None` cannot happen here but would print nothing).
fn write_ip(out: &mut String, section: &str, ip: Option<&IpProfile>) {
    let Some(ip) = ip else { return };
    let _ = writeln!(out, "\n[{section}]");
    for (i, (addr, prefix)) in ip.addresses.iter().enumerate() {
        let _ = writeln!(out, "address{}={addr}/{prefix}", i + 1);
    }
    let _ = writeln!(out, "method={}", ip.method.as_str());
}

/// GKeyFile value escaping; interface names cannot hold whitespace, so only the
/// backslash needs it.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
}
