//! The `ipv4` and `ipv6` sections of an interface.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::de::{int_in_range, map_only, opt_bool};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::flags::MptcpFlags;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct Ipv4Config {
    #[serde(
        default,
        deserialize_with = "de_enabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_dhcp",
        skip_serializing_if = "Option::is_none"
    )]
    pub dhcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Vec<Ipv4Address>>,
}

map_only!(
    Ipv4Config,
    "an ipv4 section: a mapping with `enabled`, `dhcp`, `address`"
);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct Ipv6Config {
    #[serde(
        default,
        deserialize_with = "de_enabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_dhcp",
        skip_serializing_if = "Option::is_none"
    )]
    pub dhcp: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_autoconf",
        skip_serializing_if = "Option::is_none"
    )]
    pub autoconf: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Vec<Ipv6Address>>,
}

map_only!(
    Ipv6Config,
    "an ipv6 section: a mapping with `enabled`, `dhcp`, `autoconf`, `address`"
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct Ipv4Address {
    #[serde(deserialize_with = "de_ipv4")]
    pub ip: Ipv4Addr,
    #[serde(deserialize_with = "de_prefix_v4")]
    pub prefix_length: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp_flags: Option<MptcpFlags>,
    /// Kernel-only mode: the port of a `signal` endpoint (the kernel listens on it and
    /// announces it; refused with `subflow`).
    #[serde(
        default,
        deserialize_with = "de_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub mptcp_port: Option<u16>,
}

map_only!(
    Ipv4Address,
    "an address: a mapping with `ip` and `prefix-length`"
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct Ipv6Address {
    #[serde(deserialize_with = "de_ipv6")]
    pub ip: Ipv6Addr,
    #[serde(deserialize_with = "de_prefix_v6")]
    pub prefix_length: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp_flags: Option<MptcpFlags>,
    /// Kernel-only mode: the port of a `signal` endpoint (the kernel listens on it and
    /// announces it; refused with `subflow`).
    #[serde(
        default,
        deserialize_with = "de_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub mptcp_port: Option<u16>,
}

map_only!(
    Ipv6Address,
    "an address: a mapping with `ip` and `prefix-length`"
);

/// An address of either family, as validation and the NM mapping walk them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRef {
    pub ip: IpAddr,
    pub prefix_length: u8,
    pub mptcp_flags: Option<MptcpFlags>,
    pub mptcp_port: Option<u16>,
}

impl From<&Ipv4Address> for AddrRef {
    fn from(a: &Ipv4Address) -> Self {
        AddrRef {
            ip: IpAddr::V4(a.ip),
            prefix_length: a.prefix_length,
            mptcp_flags: a.mptcp_flags,
            mptcp_port: a.mptcp_port,
        }
    }
}

impl From<&Ipv6Address> for AddrRef {
    fn from(a: &Ipv6Address) -> Self {
        AddrRef {
            ip: IpAddr::V6(a.ip),
            prefix_length: a.prefix_length,
            mptcp_flags: a.mptcp_flags,
            mptcp_port: a.mptcp_port,
        }
    }
}

/// Why an address can never carry an MPTCP endpoint, or `None` when it can.
///
/// NetworkManager skips the same ranges (link-local, loopback, unique-local IPv6); we add
/// multicast and unspecified, which are not host addresses at all.
pub fn ineligibility(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.is_unspecified() || v4.is_broadcast() {
                Some("not a host address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local (fc00::/7)")
            } else if v6.is_unspecified() {
                Some("not a host address")
            } else {
                None
            }
        }
    }
}

fn de_ip<'de, D: Deserializer<'de>>(d: D, want_v4: bool) -> Result<IpAddr, D::Error> {
    struct IpVisitor;
    impl de::Visitor<'_> for IpVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an IP address as a string, e.g. 192.0.2.2 or 2001:db8::2")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    let text = d.deserialize_str(IpVisitor)?;
    let (section, other) = if want_v4 {
        ("ipv4", "ipv6")
    } else {
        ("ipv6", "ipv4")
    };
    if let Some((addr, prefix)) = text.split_once('/') {
        return Err(de::Error::custom(format!(
            "`{text}` has a prefix: write `ip: {addr}` and `prefix-length: {prefix}`"
        )));
    }
    let ip: IpAddr = text
        .parse()
        .map_err(|_| de::Error::custom(format!("`{text}` is not an IP address")))?;
    if ip.is_ipv4() != want_v4 {
        return Err(de::Error::custom(format!(
            "{ip} is an {} address: it belongs under {other}.address, not {section}.address",
            if ip.is_ipv4() { "IPv4" } else { "IPv6" }
        )));
    }
    Ok(ip)
}

fn de_ipv4<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Addr, D::Error> {
    match de_ip(d, true)? {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(de::Error::custom(
            "internal: IPv6 address passed the IPv4 check",
        )),
    }
}

fn de_ipv6<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv6Addr, D::Error> {
    match de_ip(d, false)? {
        IpAddr::V6(v6) => Ok(v6),
        IpAddr::V4(_) => Err(de::Error::custom(
            "internal: IPv4 address passed the IPv6 check",
        )),
    }
}

fn de_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt_bool(d, "enabled")
}

fn de_dhcp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt_bool(d, "dhcp")
}

fn de_autoconf<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt_bool(d, "autoconf")
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    int_in_range(d, 1, 65535, "mptcp-port").map(|v| Some(v as u16))
}

fn de_prefix_v4<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    int_in_range(d, 0, 32, "IPv4 prefix-length").map(|v| v as u8)
}

fn de_prefix_v6<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    int_in_range(d, 0, 128, "IPv6 prefix-length").map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility() {
        let cases = [
            ("192.0.2.2", None),
            ("10.1.2.3", None),
            ("100.64.0.1", None),
            ("127.0.0.1", Some("loopback")),
            ("169.254.1.1", Some("link-local")),
            ("224.0.0.1", Some("multicast")),
            ("2001:db8::1", None),
            ("fec0::1", None),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fd00::1", Some("unique-local (fc00::/7)")),
            ("fc00::1", Some("unique-local (fc00::/7)")),
            ("ff02::1", Some("multicast")),
        ];
        for (ip, want) in cases {
            assert_eq!(ineligibility(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn wrong_family_and_cidr() {
        let e = serde_json::from_str::<Ipv4Address>(r#"{"ip":"2001:db8::1","prefix-length":64}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("belongs under ipv6.address"), "{e}");
        let e = serde_json::from_str::<Ipv4Address>(r#"{"ip":"192.0.2.1/24","prefix-length":24}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefix-length: 24"), "{e}");
        let e = serde_json::from_str::<Ipv6Address>(r#"{"ip":"::1","prefix-length":129}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("IPv6 prefix-length 129 is out of range: it must be 0..128"),
            "{e}"
        );
    }
}
