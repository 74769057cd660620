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

pub mod apply;
pub mod check;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gen_conf;
pub mod log;
pub mod netlink;
pub mod nm;
mod query;
mod runtime;
pub mod state;
pub mod verify;

#[cfg(test)]
mod testkit;

pub use apply::{
    apply, commit, rollback, Action, ApplyOptions, ApplyOutcome, ApplyPlan, InterfaceChange,
    KnobChange, Progress,
};
pub use check::{check, CheckOptions, Finding, Report, Severity};
pub use error::{Error, ErrorKind, Result, Rollback};
pub use gen_conf::GeneratedConfigs;
pub use log::{Level, Log, LogRecord};
pub use query::ShowOptions;
pub use runtime::Runtime;
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
    GeneratedConfigs::from_state(&state, log)
}

/// Reads the current state of the calling thread's network namespace: the kernel over
/// netlink and, unless `opts.kernel_only`, NetworkManager over D-Bus.
pub fn show(opts: &ShowOptions, log: &Log) -> Result<NetworkState> {
    Runtime::global()?.block_on(show_async(opts, log))?
}

/// [`show`] for callers that are already async (inside the library's runtime).
pub async fn show_async(opts: &ShowOptions, log: &Log) -> Result<NetworkState> {
    let kernel = netlink::read_kernel(log);
    let nm = async {
        if opts.kernel_only {
            return Ok(None);
        }
        let conn = nm::query::connect().await?;
        nm::query::ensure_same_namespace(&conn).await?;
        let only = (!opts.interfaces.is_empty()).then_some(opts.interfaces.as_slice());
        nm::query::read_nm(&conn, only).await.map(Some)
    };
    let (kernel, nm) = futures_util::future::try_join(kernel, nm).await?;
    Ok(query::merge(&kernel, nm.as_ref(), &opts.interfaces))
}
