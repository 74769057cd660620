//! The top-level `mptcp:` section: host-wide knobs of the network namespace.
//! nmstate has none; `ip mptcp limits` and `sysctl net.mptcp.enabled` are what users know.

use super::de::{int_in_range, map_only, opt_bool};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// The kernel's maximum for both limits (`MPTCP_PM_ADDR_MAX`-independent, see
/// `net/mptcp/pm_netlink.c`: "limit greater than maximum").
pub const MPTCP_LIMIT_MAX: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct HostMptcp {
    /// `net.mptcp.enabled` of the network namespace.
    #[serde(
        default,
        deserialize_with = "de_enabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    /// Who manages endpoints and subflows: the kernel's path manager or a userspace
    /// daemon (sysctl `net.mptcp.path_manager`, `pm_type` before Linux 6.15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_manager: Option<PathManager>,
    /// The packet scheduler (sysctl `net.mptcp.scheduler`), one of the kernel's
    /// `available_schedulers`.
    #[serde(
        default,
        deserialize_with = "de_scheduler",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<MptcpLimits>,
}

map_only!(
    HostMptcp,
    "an mptcp section: a mapping with `enabled`, `path-manager`, `scheduler` and `limits`"
);

/// `mptcp.path-manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathManager {
    /// The in-kernel path manager: endpoints and limits (`ip mptcp`).
    Kernel,
    /// A userspace daemon (mptcpd) decides, over the `mptcp_pm` netlink events.
    Userspace,
}

impl PathManager {
    /// The value of sysctl `net.mptcp.path_manager`.
    pub fn name(self) -> &'static str {
        match self {
            PathManager::Kernel => "kernel",
            PathManager::Userspace => "userspace",
        }
    }

    /// The value of sysctl `net.mptcp.pm_type` (kernels before 6.15).
    pub fn pm_type(self) -> u8 {
        match self {
            PathManager::Kernel => 0,
            PathManager::Userspace => 1,
        }
    }

    /// From the sysctl's value (`kernel`, `userspace`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "kernel" => Some(PathManager::Kernel),
            "userspace" => Some(PathManager::Userspace),
            _ => None,
        }
    }
}

fn de_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    opt_bool(d, "enabled")
}

/// The longest scheduler name the kernel takes (`MPTCP_SCHED_NAME_MAX` - 1).
pub const SCHEDULER_NAME_MAX: usize = 15;

fn de_scheduler<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error as _;
    let name = String::deserialize(d)?;
    if name.is_empty() || name.len() > SCHEDULER_NAME_MAX {
        return Err(D::Error::custom(format!(
            "scheduler `{}`: a scheduler name is 1..{SCHEDULER_NAME_MAX} bytes, e.g. `default`",
            name.escape_debug()
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(D::Error::custom(format!(
            "scheduler `{}` contains {c:?}; a scheduler name is one word, e.g. `default`",
            name.escape_debug()
        )));
    }
    Ok(Some(name))
}

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
