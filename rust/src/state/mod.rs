//! The desired or current network state: nmstate's schema for MPTCP, plus host knobs.
//!
//! `Option` everywhere means "leave as it is" (SPEC 2.1). Parsing checks every rule that
//! needs no live system; [`parse`] is the only way in from text.

mod de;
mod flags;
mod hint;
mod host;
mod interface;
mod ip;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

use serde::{Deserialize, Serialize};

use de::map_only;

pub use flags::{MptcpFlag, MptcpFlags};
pub use host::{HostMptcp, MptcpLimits, PathManager, MPTCP_LIMIT_MAX, SCHEDULER_NAME_MAX};
pub use interface::{
    check_ifname, Interface, InterfaceMptcp, InterfaceState, InterfaceType, IFNAME_MAX,
};
pub use ip::{ineligibility, AddrRef, Ipv4Address, Ipv4Config, Ipv6Address, Ipv6Config};
pub use parse::{input_from_bytes, input_too_large, parse, MAX_INPUT_BYTES};
pub use validate::{effective_flags, validate, MAX_ENDPOINTS};

/// A whole state document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, remote = "Self")]
pub struct NetworkState {
    /// Host-wide MPTCP knobs; absent leaves them untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<HostMptcp>,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
}

map_only!(
    NetworkState,
    "a network state: a mapping with `interfaces` and/or `mptcp`"
);

/// The text form of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Json,
    Yaml,
}

impl NetworkState {
    /// The canonical text: keys in schema order, flags in kernel order, absent keys left
    /// out. JSON is pretty-printed; YAML starts with `---` as nmstate's does.
    pub fn to_text(&self, format: OutputFormat) -> crate::Result<String> {
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| crate::Error::bug(format!("cannot print the state as JSON: {e}"))),
            OutputFormat::Yaml => serde_yaml::to_string(self)
                .map(|s| format!("---\n{s}"))
                .map_err(|e| crate::Error::bug(format!("cannot print the state as YAML: {e}"))),
        }
    }
}
