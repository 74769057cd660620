//! `generate_configurations`: the configuration files a state stands for, made offline.

use serde::Serialize;

use crate::nm::keyfile::{keyfile, refuse_ports};
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
    /// The keyfiles of a validated state; `NotSupported` when the state holds what a
    /// keyfile cannot say (an endpoint port).
    pub fn from_state(state: &NetworkState, log: &Log) -> Result<Self> {
        for (i, iface) in state.interfaces.iter().enumerate() {
            refuse_ports(i, iface)?;
        }
        let network_manager = state
            .interfaces
            .iter()
            .filter_map(|iface| keyfile(iface, log))
            .collect();
        Ok(GeneratedConfigs { network_manager })
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

#[cfg(test)]
mod tests {
    use crate::{generate_configurations, ErrorKind, Level, Log};

    fn warnings(log: &Log) -> Vec<String> {
        log.records()
            .into_iter()
            .filter(|r| r.level == Level::Warn)
            .map(|r| r.message)
            .collect()
    }

    #[test]
    fn laminar_is_bit_0x100_with_a_version_warning() {
        let log = Log::new();
        let c = generate_configurations(
            "interfaces: [{name: eth1, mptcp: {address-flags: [laminar, subflow]}}]",
            &log,
        )
        .unwrap();
        // laminar 0x100 | subflow 0x20 | also-without-default-route 0x08
        assert!(c.network_manager[0].1.contains("\nmptcp-flags=296\n"));
        let w = warnings(&log);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("eth1: `laminar` is bit 0x100"), "{w:?}");
        assert!(w[0].contains("NetworkManager 1.56 or newer"), "{w:?}");
        // No laminar, no warning.
        let log = Log::new();
        generate_configurations(
            "interfaces: [{name: eth1, mptcp: {address-flags: [subflow]}}]",
            &log,
        )
        .unwrap();
        assert!(warnings(&log).is_empty());
    }

    #[test]
    fn port_is_not_supported_with_its_path() {
        let e = generate_configurations(
            "interfaces:\n- name: eth1\n- name: eth2\n  mptcp: {address-flags: [signal]}\n  ipv6:\n    address:\n    - {ip: 2001:db8::2, prefix-length: 64}\n    - {ip: 2001:db8::3, prefix-length: 64, mptcp-port: 8080}\n",
            &Log::new(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported, "{e}");
        assert!(
            e.msg().starts_with(
                "interfaces[1].ipv6.address[1].mptcp-port: NetworkManager cannot express an \
                 endpoint port"
            ),
            "{e}"
        );
        assert!(e.msg().contains("port 8080 of 2001:db8::3"), "{e}");
        assert!(e.msg().contains("kernel-only mode can apply it"), "{e}");
    }

    #[test]
    fn implicit_per_address_writes_nothing_and_warns_nothing() {
        // show's output for an interface whose only endpoint is implicit.
        let log = Log::new();
        let c = generate_configurations(
            "interfaces: [{name: eth1, mptcp: {address-flags: []}, ipv4: {address: [{ip: 192.0.2.2, prefix-length: 24, mptcp-flags: [implicit]}]}}]",
            &log,
        )
        .unwrap();
        assert!(c.network_manager[0].1.contains("\nmptcp-flags=1\n"));
        assert!(warnings(&log).is_empty(), "{:?}", warnings(&log));
    }
}
