//! mptcpstate: declarative MultiPath TCP configuration for Linux.
//!
//! The desired state is nmstate's schema (interfaces with `mptcp.address-flags`,
//! addresses with `mptcp-flags`) plus host-wide knobs. Every entry point takes a [`Log`]
//! that collects the records of that call only.
//!
//! ```
//! let log = mptcpstate::Log::new();
//! let yaml = "interfaces:\n- name: eth1\n  mptcp:\n    address-flags: [subflow, signal]\n";
//! let canonical = mptcpstate::format(yaml, mptcpstate::OutputFormat::Json, &log).unwrap();
//! assert!(canonical.contains(r#""address-flags": ["#));
//! ```

mod error;
mod gen_conf;
pub mod log;
pub mod nm;
pub mod state;

pub use error::{Error, ErrorKind, Result};
pub use gen_conf::GeneratedConfigs;
pub use log::{Level, Log, LogRecord};
pub use state::{input_from_bytes, parse, NetworkState, OutputFormat};

/// The library's version (the crate version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses and validates `input` (JSON or YAML) and prints it in canonical form.
pub fn format(input: &str, output: OutputFormat, log: &Log) -> Result<String> {
    parse(input, log)?.to_text(output)
}

/// Parses and validates `input` and returns the configuration files it stands for
/// (NetworkManager keyfiles), without touching the system.
pub fn generate_configurations(input: &str, log: &Log) -> Result<GeneratedConfigs> {
    let state = parse(input, log)?;
    Ok(GeneratedConfigs::from_state(&state, log))
}
