//! `apply`: bring the system to a desired state, transactionally (SPEC section 3), and
//! `commit`/`rollback` of what a no-commit apply left pending.
//!
//! - `pipeline.rs`: the steps, the same for both backends (read, check, plan, begin,
//!   write, verify, commit or keep or roll back);
//! - `checks.rs`, `host.rs`: the live checks and the host knobs, backend-neutral;
//! - `nm/`: the NetworkManager backend; `kernel/`: the kernel-only backend (netlink);
//! - `record.rs`, `timer.rs`: the undo records a no-commit apply keeps under
//!   `/run/mptcpstate/`, and the process that rolls them back at their deadline.

mod checks;
mod finish;
mod host;
mod kernel;
mod nm;
mod pipeline;
mod record;
mod report;
mod timer;

pub use report::{natural_cmp, Action, ApplyPlan, InterfaceChange, KnobChange};

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::NetworkState;
use crate::{Log, Result, Runtime};

/// How long verification polls the kernel by default before it gives up.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// NM's own rollback timeout of the checkpoint, by default (seconds).
pub const DEFAULT_ROLLBACK_TIMEOUT: u32 = 60;

/// A step of a long apply, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is being done: `reading`, `writing profiles`, `activating`, `verifying`,
    /// `committing`, `rolling back`.
    pub phase: &'static str,
    /// Items done of `total` in this phase (0 of 0 when a phase has no count).
    pub done: usize,
    pub total: usize,
}

/// A progress callback; called from the applying thread.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What `apply` may do and how.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Netlink only, no NetworkManager.
    pub kernel_only: bool,
    /// Verify against the kernel before committing (default true).
    pub verify: bool,
    /// Commit at the end (default true). When false, the checkpoint stays and its path
    /// is returned; NM rolls it back by itself after `rollback_timeout` seconds.
    pub commit: bool,
    /// Seconds after which NM rolls the checkpoint back by itself; 0 for never (refused
    /// together with `commit: false`).
    pub rollback_timeout: u32,
    /// Keep profiles in NM's memory only, not on disk.
    pub memory_only: bool,
    /// How long verification waits for the kernel to reach the state.
    pub verify_timeout: Duration,
    /// Called as the apply goes; `None` for none.
    pub progress: Option<ProgressFn>,
    /// Dry run: validate, read, plan, write nothing; the outcome's `plan` says what an
    /// apply would do (no checkpoint). Default false.
    pub dry_run: bool,
    /// Set by the caller to stop the apply: it rolls back and returns a `Timeout` error
    /// saying it was interrupted.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            kernel_only: false,
            verify: true,
            commit: true,
            rollback_timeout: DEFAULT_ROLLBACK_TIMEOUT,
            memory_only: false,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            progress: None,
            dry_run: false,
            cancel: None,
        }
    }
}

impl std::fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("kernel_only", &self.kernel_only)
            .field("verify", &self.verify)
            .field("commit", &self.commit)
            .field("rollback_timeout", &self.rollback_timeout)
            .field("memory_only", &self.memory_only)
            .field("verify_timeout", &self.verify_timeout)
            .field("progress", &self.progress.is_some())
            .field("dry_run", &self.dry_run)
            .field("cancel", &self.cancel.is_some())
            .finish()
    }
}

/// What an apply did (or, a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// The checkpoint left for the caller (no-commit only): commit or roll it back with
    /// [`commit`] / [`rollback`]. Never with a dry run.
    pub checkpoint: Option<String>,
    /// The interfaces that were changed, sorted; empty when the system already held the
    /// state.
    pub changed: Vec<String>,
    /// The host knobs that were changed (`mptcp.enabled`, `mptcp.limits`, ...).
    pub host: Vec<String>,
    /// What was done (a dry run: what would be done), per interface and knob; empty
    /// exactly when nothing changed.
    pub plan: ApplyPlan,
}

/// Up to this many interfaces, a summary names each; above, it counts them by kind and
/// names the first few and the last.
pub const SUMMARY_NAMES: usize = 8;

impl ApplyOutcome {
    /// Whether anything changed.
    pub fn is_change(&self) -> bool {
        !self.changed.is_empty() || !self.host.is_empty()
    }

    /// What changed, for a one-line summary; `None` when nothing did. A few interfaces:
    /// `eth1, eth2, mptcp.limits`; more than [`SUMMARY_NAMES`]: `300 interfaces (280
    /// reapplied, 20 activated: veth0, veth1, veth2, ... veth299), mptcp.limits`. Names
    /// are in natural order (`veth2` before `veth10`); `all` names every one.
    pub fn summary_of(&self, all: bool) -> Option<String> {
        let mut names: Vec<&str> = self.changed.iter().map(String::as_str).collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        let mut parts: Vec<String> = Vec::new();
        if names.len() > SUMMARY_NAMES {
            let counts: Vec<String> = self
                .plan
                .counts()
                .into_iter()
                .map(|(n, kind)| format!("{n} {kind}"))
                .collect();
            let listed = if all {
                names.join(", ")
            } else {
                format!("{}, ... {}", names[..3].join(", "), names[names.len() - 1])
            };
            let counts = if counts.is_empty() {
                String::new()
            } else {
                format!("{}: ", counts.join(", "))
            };
            parts.push(format!("{} interfaces ({counts}{listed})", names.len()));
        } else {
            parts.extend(names.iter().map(|n| n.to_string()));
        }
        parts.extend(self.host.iter().cloned());
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// [`ApplyOutcome::summary_of`], shortened for many interfaces.
    pub fn summary(&self) -> Option<String> {
        self.summary_of(false)
    }
}

/// The last checkpoint this process left open (no-commit), for `commit`/`rollback`
/// without a path.
static LAST_CHECKPOINT: Mutex<Option<String>> = Mutex::new(None);

fn remember_checkpoint(path: Option<String>) {
    *LAST_CHECKPOINT.lock().unwrap_or_else(|p| p.into_inner()) = path;
}

fn last_checkpoint() -> Option<String> {
    LAST_CHECKPOINT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The directory of this library's runtime files for the calling thread's network
/// namespace, `/run/mptcpstate/<netns cookie>` (the undo records, the timer's log, the
/// boot-time service's record), made (mode 0700) if missing. Root's: another user gets
/// `PermissionDenied`.
pub fn namespace_run_dir() -> Result<std::path::PathBuf> {
    record::ensure_dir()
}

/// Applies `input` (JSON or YAML). See the module's note for the pipeline.
pub fn apply(input: &str, opts: &ApplyOptions, log: &Log) -> Result<ApplyOutcome> {
    let state = crate::parse(input, log)?;
    Runtime::global()?.block_on(apply_async(state, opts, log))?
}

async fn apply_async(state: NetworkState, opts: &ApplyOptions, log: &Log) -> Result<ApplyOutcome> {
    pipeline::check_options(opts)?;
    if opts.kernel_only {
        let backend = kernel::KernelBackend::default();
        pipeline::run(backend, state, opts, log).await
    } else {
        let backend = nm::NmBackend::connect().await?;
        pipeline::run(backend, state, opts, log).await
    }
}

/// Commits what a no-commit apply left pending: the change stays. `checkpoint`: the path
/// that apply returned; `None` for the last one this process left open, else the newest
/// pending in this network namespace, else NetworkManager's newest. Returns the
/// checkpoint committed, `None` when nothing was pending (nothing changes then).
pub fn commit(checkpoint: Option<&str>, log: &Log) -> Result<Option<String>> {
    Runtime::global()?.block_on(finish::finish(finish::Verb::Commit, checkpoint, log))?
}

/// Rolls back what a no-commit apply left pending: everything it changed is put back.
/// `checkpoint` as for [`commit`]. Returns the checkpoint rolled back, `None` when
/// nothing was pending (nothing changes then).
pub fn rollback(checkpoint: Option<&str>, log: &Log) -> Result<Option<String>> {
    Runtime::global()?.block_on(finish::finish(finish::Verb::Rollback, checkpoint, log))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    fn outcome(n: usize) -> ApplyOutcome {
        let mut o = ApplyOutcome {
            host: vec!["mptcp.limits".into()],
            ..Default::default()
        };
        for i in 0..n {
            let name = format!("veth{i}");
            o.changed.push(name.clone());
            o.plan.interfaces.push(InterfaceChange {
                name,
                actions: if i % 15 == 0 {
                    vec![Action::ProfileAdded, Action::Activation]
                } else {
                    vec![Action::ProfileUpdated, Action::Reapply]
                },
                ..Default::default()
            });
        }
        o.changed.sort();
        o
    }

    #[test]
    fn summaries_stay_short_at_scale() {
        assert_eq!(outcome(2).summary().unwrap(), "veth0, veth1, mptcp.limits");
        let s = outcome(300).summary().unwrap();
        assert_eq!(
            s,
            "300 interfaces (280 reapplied, 20 activated: veth0, veth1, veth2, ... veth299), \
             mptcp.limits"
        );
        let all = outcome(300).summary_of(true).unwrap();
        assert!(all.contains("veth8, veth9, veth10, "), "{all}");
        assert!(all.contains("veth299)"), "{all}");
        assert_eq!(ApplyOutcome::default().summary(), None);
    }

    /// The futures stay `Send`, so that an async caller may run them on any task.
    #[allow(dead_code)]
    fn futures_are_send(s: NetworkState, o: &ApplyOptions, l: &Log) {
        is_send(&apply_async(s, o, l));
        is_send(&finish::finish(finish::Verb::Commit, None, l));
    }
}
