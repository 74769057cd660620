//! `check`: why MPTCP stays on one path. Reads the live system (the kernel's endpoints,
//! limits, sysctls, counters and MPTCP sockets; NetworkManager's applied profiles unless
//! kernel-only) and returns findings, each with a stable code, a severity, the interface
//! or address it concerns, a message that says what happens because of it, and the fix
//! (a state snippet to apply, or a command).
//!
//! - `facts.rs`: what is read, once;
//! - `rules.rs`: the findings, pure, from the facts (unit-tested with made-up facts);
//! - `live.rs`: the findings from live connections and counters, and the connections;
//! - here: the API and the report's types.
//!
//! A healthy setup yields no findings. The live MPTCP connections are in the report too
//! (not as findings): what they show is evidence, not a problem by itself.

mod facts;
mod live;
mod rules;

use serde::Serialize;

use crate::{Log, Result, Runtime};

pub use facts::Facts;

/// How bad a finding is. `error`: MPTCP cannot work as configured; `warning`: some paths
/// or endpoints go unused, or something else may take over; `info`: worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// How to fix a finding: a state snippet for `apply`, and/or a command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Fix {
    /// A state (JSON value in the schema) that fixes it when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
    /// A shell command that fixes it (or shows more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, documented, never reused: `mptcp-disabled`, `add-addr-accepted-zero`, ...
    pub code: &'static str,
    pub severity: Severity,
    /// The interface it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The address it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub message: String,
    pub fix: Fix,
}

/// A live MPTCP connection and its subflows, as the kernel shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub local: String,
    pub remote: String,
    /// It fell back to plain TCP.
    pub fallback: bool,
    pub subflows: Vec<ConnectionSubflow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionSubflow {
    pub local: String,
    pub remote: String,
    /// The interface its local address is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `established`, `syn-sent`, ...
    pub state: &'static str,
}

/// What `check` returns.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Report {
    /// Most severe first; empty when healthy.
    pub findings: Vec<Finding>,
    /// The MPTCP connections present (evidence, not findings).
    pub connections: Vec<Connection>,
}

impl Report {
    /// Whether a finding of severity `error` is there.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings as YAML (`---` first, as the state's YAML).
    pub fn findings_yaml(&self) -> Result<String> {
        serde_yaml::to_string(&self.findings)
            .map(|s| format!("---\n{s}"))
            .map_err(|e| crate::Error::bug(format!("cannot print the findings: {e}")))
    }

    /// The findings as the JSON array the C and Python faces return.
    pub fn findings_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.findings)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| crate::Error::bug(format!("cannot print the findings: {e}")))
    }
}

/// What `check` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The kernel only; NetworkManager is not asked.
    pub kernel_only: bool,
    /// Only findings about these interfaces (and the host-wide ones); all when empty.
    pub interfaces: Vec<String>,
}

/// Checks the calling thread's network namespace.
pub fn check(opts: &CheckOptions, log: &Log) -> Result<Report> {
    Runtime::global()?.block_on(check_async(opts, log))?
}

/// [`check`] for callers inside the library's runtime.
pub async fn check_async(opts: &CheckOptions, log: &Log) -> Result<Report> {
    let facts = facts::read(opts.kernel_only, log).await?;
    let mut report = rules::report(&facts);
    if !opts.interfaces.is_empty() {
        report.findings.retain(|f| {
            f.interface
                .as_ref()
                .is_none_or(|i| opts.interfaces.contains(i))
        });
        report.connections.retain(|c| {
            c.subflows.iter().any(|s| {
                s.interface
                    .as_ref()
                    .is_some_and(|i| opts.interfaces.contains(i))
            })
        });
    }
    Ok(report)
}
