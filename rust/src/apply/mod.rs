//! `apply`: bring the system to a desired state, transactionally (SPEC section 3).
//!
//! The pipeline, NetworkManager mode:
//! 1. parse and validate the input (no system access);
//! 2. read the current state: the kernel (one dump per object kind) and, for the
//!    interfaces the state names, NM's device, applied connection and profiles; run the
//!    live checks (NM version, `net.mptcp.enabled`, the endpoint budget counting the
//!    endpoints that stay, interfaces that must exist). Invalid input stops here:
//!    nothing was written;
//! 3. plan per interface ([`plan`]): nothing to do, write a profile, reapply, activate,
//!    deactivate, delete;
//! 4. checkpoint over the devices that change (none change: no checkpoint at all);
//! 5. write profiles and bring them live, interfaces concurrently, bounded;
//! 6. verify against the kernel by polling ([`crate::verify`]);
//! 7. commit, or roll back and return the first error; with no-commit, return the
//!    checkpoint and let the caller decide.

mod nm;
mod plan;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
            .field("cancel", &self.cancel.is_some())
            .finish()
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// The checkpoint left for the caller (no-commit only): commit or roll it back with
    /// [`commit`] / [`rollback`].
    pub checkpoint: Option<String>,
    /// The interfaces that were changed, sorted; empty when the system already held the
    /// state.
    pub changed: Vec<String>,
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

/// Applies `input` (JSON or YAML). See the module's note for the pipeline.
pub fn apply(input: &str, opts: &ApplyOptions, log: &Log) -> Result<ApplyOutcome> {
    let state = crate::parse(input, log)?;
    Runtime::global()?.block_on(nm::apply(state, opts, log))?
}

/// Commits a checkpoint left by a no-commit apply: `None` for the last one this process
/// made, else NM's newest.
pub fn commit(checkpoint: Option<&str>, log: &Log) -> Result<()> {
    Runtime::global()?.block_on(nm::commit(checkpoint, log))?
}

/// Rolls back a checkpoint left by a no-commit apply: `None` for the last one this
/// process made, else NM's newest.
pub fn rollback(checkpoint: Option<&str>, log: &Log) -> Result<()> {
    Runtime::global()?.block_on(nm::rollback(checkpoint, log))?
}
