//! The top-level `mptcp:` section: host-wide knobs of the network namespace.
//! nmstate has none; `ip mptcp limits` and `sysctl net.mptcp.enabled` are what users know.

use super::de::{int_in_range, map_only};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// The kernel's maximum for both limits (`MPTCP_PM_ADDR_MAX`-independent, see
/// `net/mptcp/pm_netlink.c`: "limit greater than maximum").
pub const MPTCP_LIMIT_MAX: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct HostMptcp {
    /// `net.mptcp.enabled` of the network namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<MptcpLimits>,
}

map_only!(
    HostMptcp,
    "an mptcp section: a mapping with `enabled` and `limits`"
);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct MptcpLimits {
    /// Maximum additional subflows per MPTCP connection.
    #[serde(
        default,
        deserialize_with = "de_subflows",
        skip_serializing_if = "Option::is_none"
    )]
    pub subflows: Option<u32>,
    /// Maximum ADD_ADDR announcements accepted per connection.
    #[serde(
        default,
        deserialize_with = "de_add_addr_accepted",
        skip_serializing_if = "Option::is_none"
    )]
    pub add_addr_accepted: Option<u32>,
}

map_only!(
    MptcpLimits,
    "mptcp limits: a mapping with `subflows` and `add-addr-accepted`"
);

fn de_limit<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<Option<u32>, D::Error> {
    int_in_range(d, 0, i64::from(MPTCP_LIMIT_MAX), what).map(|v| Some(v as u32))
}

fn de_subflows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    de_limit(d, "subflows")
}

fn de_add_addr_accepted<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    de_limit(d, "add-addr-accepted")
}
