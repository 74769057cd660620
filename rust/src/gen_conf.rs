//! `generate_configurations`: the configuration files a state stands for, made offline.

use serde::Serialize;

use crate::nm::keyfile::keyfile;
use crate::state::{NetworkState, OutputFormat};
use crate::{Error, Log, Result};

/// Generated files per backend. Serialized as
/// `{"NetworkManager": [["eth1.nmconnection", "<keyfile>"], ...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneratedConfigs {
    #[serde(rename = "NetworkManager")]
    pub network_manager: Vec<(String, String)>,
}

impl GeneratedConfigs {
    pub fn from_state(state: &NetworkState, log: &Log) -> Self {
        let network_manager = state
            .interfaces
            .iter()
            .filter_map(|iface| keyfile(iface, log))
            .collect();
        GeneratedConfigs { network_manager }
    }

    pub fn to_text(&self, format: OutputFormat) -> Result<String> {
        match format {
            OutputFormat::Json => serde_json::to_string_pretty(self)
                .map(|s| s + "\n")
                .map_err(|e| Error::bug(format!("cannot print configurations as JSON: {e}"))),
            OutputFormat::Yaml => serde_yaml::to_string(self)
                .map(|s| format!("---\n{s}"))
                .map_err(|e| Error::bug(format!("cannot print configurations as YAML: {e}"))),
        }
    }
}
