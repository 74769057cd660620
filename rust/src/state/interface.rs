//! One entry of `interfaces:`.

use std::fmt;

use super::de::map_only;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::flags::{MptcpFlag, MptcpFlags};
use super::ip::{AddrRef, Ipv4Config, Ipv6Config};

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct Interface {
    #[serde(deserialize_with = "de_ifname")]
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub iface_type: Option<InterfaceType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<InterfaceState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<InterfaceMptcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Config>,
}

map_only!(Interface, "an interface: a mapping with at least `name`");

impl Interface {
    /// `mptcp.address-flags`, when the state gives it.
    pub fn address_flags(&self) -> Option<MptcpFlags> {
        self.mptcp.as_ref().and_then(|m| m.address_flags)
    }

    /// The static addresses of both families, IPv4 first, in input order.
    pub fn addresses(&self) -> impl Iterator<Item = AddrRef> + '_ {
        self.addresses_indexed().map(|(_, _, a)| a)
    }

    /// [`Interface::addresses`] with where each one is in the input: the section
    /// (`"ipv4"`, `"ipv6"`) and the index in its `address` list, so that an error can
    /// name `interfaces[i].ipv4.address[k]`.
    pub fn addresses_indexed(&self) -> impl Iterator<Item = (&'static str, usize, AddrRef)> + '_ {
        let v4 = self.ipv4.iter().flat_map(|c| {
            c.address
                .iter()
                .flatten()
                .enumerate()
                .map(|(k, a)| ("ipv4", k, AddrRef::from(a)))
        });
        let v6 = self.ipv6.iter().flat_map(|c| {
            c.address
                .iter()
                .flatten()
                .enumerate()
                .map(|(k, a)| ("ipv6", k, AddrRef::from(a)))
        });
        v4.chain(v6)
    }

    /// Whether the interface may get addresses the state cannot list (DHCP, autoconf).
    pub fn has_dynamic_addresses(&self) -> bool {
        let v4 = self.ipv4.as_ref().is_some_and(|c| c.dhcp == Some(true));
        let v6 = self
            .ipv6
            .as_ref()
            .is_some_and(|c| c.dhcp == Some(true) || c.autoconf == Some(true));
        v4 || v6
    }

    /// Whether the state leaves the interface as it is (`ignore`).
    pub fn is_ignored(&self) -> bool {
        self.state == Some(InterfaceState::Ignore)
    }

    /// Whether the state takes the interface away (`down` or `absent`).
    pub fn is_going_away(&self) -> bool {
        matches!(
            self.state,
            Some(InterfaceState::Down) | Some(InterfaceState::Absent)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct InterfaceMptcp {
    /// Flags for every eligible address of the interface; `[]` turns MPTCP off on it.
    #[serde(
        default,
        deserialize_with = "de_address_flags",
        skip_serializing_if = "Option::is_none"
    )]
    pub address_flags: Option<MptcpFlags>,
}

/// `address-flags` is a wish for every address of the interface, and nobody can wish for
/// `implicit`: the kernel makes such endpoints on its own. (Per address, `[implicit]`
/// stays valid: it is how `show` describes such an endpoint, and show's output must parse
/// back.) Refused here rather than in `validate`, so that the error has its line.
fn de_address_flags<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MptcpFlags>, D::Error> {
    let flags = MptcpFlags::deserialize(d)?;
    if flags.contains(MptcpFlag::Implicit) {
        return Err(de::Error::custom(
            "`implicit` cannot be asked for: the kernel makes implicit endpoints itself, for \
             local addresses a connection used without an endpoint (show reports them per \
             address); give the flags to set, e.g. [subflow], or [] for none",
        ));
    }
    Ok(Some(flags))
}

map_only!(
    InterfaceMptcp,
    "an mptcp section: a mapping with `address-flags`"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterfaceType {
    Ethernet,
    Veth,
    Loopback,
    Dummy,
    Bond,
    Vlan,
    LinuxBridge,
    Unknown,
}

impl InterfaceType {
    pub fn name(self) -> &'static str {
        match self {
            InterfaceType::Ethernet => "ethernet",
            InterfaceType::Veth => "veth",
            InterfaceType::Loopback => "loopback",
            InterfaceType::Dummy => "dummy",
            InterfaceType::Bond => "bond",
            InterfaceType::Vlan => "vlan",
            InterfaceType::LinuxBridge => "linux-bridge",
            InterfaceType::Unknown => "unknown",
        }
    }

    /// Types this library configures. The others appear in `show` output and may be
    /// applied back unchanged.
    pub fn is_configurable(self) -> bool {
        matches!(self, InterfaceType::Ethernet | InterfaceType::Veth)
    }
}

impl fmt::Display for InterfaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterfaceState {
    Up,
    Down,
    Absent,
    /// Left as it is: what `show` reports for a device NetworkManager does not manage
    /// (nmstate's `ignore`). Applying it changes nothing; through NetworkManager, on a
    /// device it manages, it is refused (nmstate would make the device unmanaged).
    Ignore,
}

/// Checks a kernel interface name: 1..=15 bytes, not `.` or `..`, no `/`, `:` or
/// whitespace (the kernel's `dev_valid_name`, plus `:` which is the alias separator).
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the interface name is empty".to_string());
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "interface name `{name}` is {} bytes long; the kernel allows at most {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name `{}` contains {}, which the kernel does not allow",
            name.escape_debug(),
            match c {
                '/' => "'/'".to_string(),
                ':' => "':'".to_string(),
                c => format!("the character {:?}", c),
            }
        ));
    }
    Ok(())
}

fn de_ifname<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_ifname(&name).map_err(de::Error::custom)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        assert!(check_ifname("eth1").is_ok());
        assert!(check_ifname("a23456789012345").is_ok());
        assert!(check_ifname("a234567890123456")
            .unwrap_err()
            .contains("16 bytes"));
        assert!(check_ifname("eth/1").unwrap_err().contains("'/'"));
        assert!(check_ifname("eth:1").unwrap_err().contains("':'"));
        assert!(check_ifname("eth 1").is_err());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("..").is_err());
    }

    #[test]
    fn address_flags_refuse_implicit_only() {
        let m = |json: &str| serde_json::from_str::<InterfaceMptcp>(json);
        assert_eq!(m("{}").unwrap().address_flags, None);
        assert_eq!(
            m(r#"{"address-flags": []}"#).unwrap().address_flags,
            Some(MptcpFlags::EMPTY)
        );
        assert!(m(r#"{"address-flags": ["laminar", "subflow"]}"#).is_ok());
        let e = m(r#"{"address-flags": ["implicit"]}"#).unwrap_err();
        assert!(e.to_string().contains("the kernel makes implicit"), "{e}");
    }
}
