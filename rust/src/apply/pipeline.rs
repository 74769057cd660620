//! The apply pipeline, the same for both backends (SPEC section 3):
//!
//! 1. read the kernel (the named interfaces, every endpoint, the knobs) and, concurrently,
//!    what the backend needs (NetworkManager: devices, applied connections, profiles);
//! 2. the live checks ([`checks`]): links that must exist, `net.mptcp.enabled`, implicit
//!    endpoints, the 8-endpoint budget counting the endpoints that stay, the host knobs
//!    this kernel has; then the backend's plan per interface. An error here: nothing was
//!    written;
//! 3. nothing to do (no interface and no knob differs): done, nothing touched;
//! 4. begin: the backend records what it must undo (NetworkManager: a checkpoint over the
//!    devices that change; the kernel: the state of what it will touch, as read);
//! 5. write: the host knobs (each old value remembered first), then the backend's plan;
//! 6. verify against the kernel by polling ([`crate::verify`]);
//! 7. commit; or, with no-commit, keep the undo record (under `/run/mptcpstate`, for
//!    `commit`/`rollback` from any process, and a timer that rolls back by itself after
//!    `rollback_timeout`); or, on any failure or interruption, roll back everything and
//!    return the first error.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::{select, Either};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::checks::{self, View};
use super::host::{self, HostUndo};
use super::record::{self, BackendName, Claimed, Lock, Record};
use super::report::{self, Action, ApplyPlan, InterfaceChange};
use super::{timer, ApplyOptions, ApplyOutcome, Progress};
use crate::log::Level;
use crate::netlink::{self, KernelState, Writer};
use crate::state::NetworkState;
use crate::verify::{self, Mode};
use crate::{log_at, Error, ErrorKind, Log, Result, Rollback};

/// Above this many named interfaces the kernel is read with one dump per object kind
/// instead of one request per interface.
const SCOPED_READ_MAX: usize = 64;

/// How long a kernel-mode apply waits for another one of the same namespace.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The pauses between verification's reads of the kernel, from the first: what
/// verification waits for is NetworkManager (or the kernel) finishing, and the pause is
/// the only wait this side adds. NM brings a reapply's endpoints in place after it
/// answers, one device after the other, a few milliseconds each (NM 1.42 deletes and
/// re-adds a changed endpoint, and the kernel waits for an RCU grace period on each
/// delete): 8 interfaces take some 30-80 ms. A read of a few named interfaces costs
/// well under a millisecond, so polls every 5 ms are late by 2.5 ms on average where
/// the doubling schedule of before (2, 4, ... 50 ms) was late by up to 30 ms.
const VERIFY_BACKOFF_MS: [u64; 4] = [1, 2, 3, 5];

/// Where the kernel is read whole (more than [`SCOPED_READ_MAX`] names), a poll's pause
/// is at least this many times the time its read took (a read of 1000 interfaces' links
/// and addresses costs milliseconds: verification stays a small part of what the host
/// does), and at most [`VERIFY_PAUSE_MAX`]. Not for a scoped read: its time is mostly
/// waiting, for the endpoint dump queues behind NM's endpoint deletes, which the kernel
/// holds for an RCU grace period each (5-20 ms), and a pause 4x that would miss the end.
const VERIFY_PAUSE_PER_READ: u32 = 4;
const VERIFY_PAUSE_MAX: Duration = Duration::from_millis(50);

/// Who writes: NetworkManager (`nm/`) or the kernel over netlink (`kernel/`).
pub(super) trait Backend {
    /// Recorded in undo records, so a rollback by another process picks the backend.
    const NAME: BackendName;
    /// What verification compares (per-address flags honoured or not).
    const MODE: Mode;
    type Plan: Plan;
    /// What the backend puts back on rollback; persisted with no-commit.
    type Undo: Serialize + DeserializeOwned;

    /// Reads what the backend needs besides the kernel (run beside the kernel read).
    async fn read(&mut self, state: &NetworkState, log: &Log) -> Result<()>;

    /// Before the live checks: fits the state to what is configuration (leases and the
    /// kernel's own addresses are not), tells the view the flags each interface keeps
    /// where the state gives none, and refuses what this backend cannot do.
    fn prepare(&self, state: &mut NetworkState, view: &mut View<'_>, log: &Log) -> Result<()>;

    /// The work per interface; interfaces that hold already get none.
    fn plan(&self, state: &NetworkState, view: &View<'_>, log: &Log) -> Result<Self::Plan>;

    /// Before the first write: what must be undone (NetworkManager makes its checkpoint).
    async fn begin(
        &mut self,
        plan: &Self::Plan,
        kernel: &KernelState,
        opts: &ApplyOptions,
        log: &Log,
    ) -> Result<Self::Undo>;

    /// Writes the plan and brings it live.
    async fn execute(
        &self,
        plan: &Self::Plan,
        writer: &mut Writer,
        opts: &ApplyOptions,
        report: &Reporter<'_>,
        log: &Log,
    ) -> Result<()>;

    /// The change stays (NetworkManager destroys its checkpoint).
    async fn commit(&mut self, undo: &Self::Undo, log: &Log) -> Result<()>;

    /// Puts back what `undo` holds. Every part is tried; the first failure is returned.
    async fn roll_back(&mut self, undo: Self::Undo, writer: &mut Writer, log: &Log) -> Result<()>;

    /// The backend's own checkpoint a no-commit caller gets (NetworkManager's path).
    fn checkpoint(undo: &Self::Undo) -> Option<String>;

    /// Whether `undo` holds more than the backend's own checkpoint restores, so that a
    /// rollback by another process needs the persisted record.
    fn needs_record(undo: &Self::Undo) -> bool;

    /// No-commit with the backend's own checkpoint alone (no record): keeps what a
    /// rollback by another process needs besides it (NetworkManager: the kernel state
    /// to wait for).
    fn keep_alone(_undo: &Self::Undo) -> Result<()> {
        Ok(())
    }
}

/// A backend's plan.
pub(super) trait Plan {
    /// The interfaces that change, sorted.
    fn changed(&self) -> Vec<String>;

    /// What is done to each interface that changes.
    fn actions(&self) -> Vec<(String, Vec<Action>)>;
}

/// The plan as data: the backend's actions, the keys that differ, the knobs.
fn describe<P: Plan>(
    plan: &P,
    state: &NetworkState,
    kernel: &KernelState,
    host: Option<&host::HostChange>,
) -> ApplyPlan {
    let index = crate::query::EndpointIndex::new(kernel);
    let links: HashMap<&str, &crate::netlink::Link> =
        kernel.links.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut named: HashMap<&str, &crate::state::Interface> = HashMap::new();
    for i in &state.interfaces {
        named.entry(i.name.as_str()).or_insert(i);
    }
    let mut interfaces: Vec<InterfaceChange> = plan
        .actions()
        .into_iter()
        .map(|(name, actions)| {
            let (before, after) = named
                .get(name.as_str())
                .map(|i| {
                    let link = links.get(name.as_str()).copied();
                    report::differing_keys(i, link, kernel, &index)
                })
                .unwrap_or_default();
            InterfaceChange {
                name,
                actions,
                before,
                after,
            }
        })
        .collect();
    interfaces.sort_by(|a, b| report::natural_cmp(&a.name, &b.name));
    ApplyPlan {
        interfaces,
        host: host
            .map(|h| report::knob_changes(h, kernel))
            .unwrap_or_default(),
    }
}

/// Progress reports to the caller's callback.
pub(super) struct Reporter<'a>(&'a ApplyOptions);

impl Reporter<'_> {
    pub fn step(&self, phase: &'static str, done: usize, total: usize) {
        if let Some(f) = &self.0.progress {
            f(&Progress { phase, done, total });
        }
    }
}

/// Reads the kernel: the named interfaces one by one when they are few, else everything.
pub(super) async fn read_kernel(names: &[String], log: &Log) -> Result<KernelState> {
    if names.len() <= SCOPED_READ_MAX {
        netlink::read_kernel_for(names, log).await
    } else {
        netlink::read_kernel(log).await
    }
}

/// Refuses options that do not go together, before anything is asked of the system.
pub(super) fn check_options(opts: &ApplyOptions) -> Result<()> {
    if !opts.commit && opts.rollback_timeout == 0 {
        return Err(Error::invalid(
            "a rollback timeout of 0 (never) is refused without commit: the change would \
             stay pending until someone commits or rolls it back",
        ));
    }
    Ok(())
}

/// Applies `state` through `backend` (options checked by [`check_options`]).
pub(super) async fn run<B: Backend>(
    mut backend: B,
    mut state: NetworkState,
    opts: &ApplyOptions,
    log: &Log,
) -> Result<ApplyOutcome> {
    let kernel_mode = B::NAME == BackendName::Kernel;
    let report = Reporter(opts);
    report.step("reading", 0, state.interfaces.len());
    // Kernel-mode applies and rollbacks of a namespace take turns (NetworkManager's
    // checkpoints keep its applies apart).
    let _lock = if kernel_mode {
        Some(Lock::take(LOCK_WAIT)?)
    } else {
        None
    };

    // 1. Read.
    let names: Vec<String> = state.interfaces.iter().map(|i| i.name.clone()).collect();
    let (kernel, ()) =
        futures_util::future::try_join(read_kernel(&names, log), backend.read(&state, log)).await?;

    // 2. Live checks and the plan. `state: ignore` (show's word for a device
    // NetworkManager does not manage) is left as it is, out of every check, plan and
    // verification (the backend's read refused it where it cannot hold).
    state.interfaces.retain(|i| !i.is_ignored());
    let mut view = View::new(&kernel, B::MODE);
    backend.prepare(&mut state, &mut view, log)?;
    checks::check_links_exist(&state, &view)?;
    checks::check_types(&state, &view)?;
    checks::check_mptcp_enabled(&state, &kernel)?;
    checks::check_implicit(&state, &kernel)?;
    checks::check_laminar(&state)?;
    checks::check_budget(&state, &view)?;
    let host = host::changes(&state, &kernel)?;
    let plan = backend.plan(&state, &view, log)?;
    checks::note_subflow_limit(&state, &view, log);

    // 3. Nothing to do.
    let changed = plan.changed();
    let knobs: Vec<String> = host
        .as_ref()
        .map(|h| h.names().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    if changed.is_empty() && knobs.is_empty() {
        log_at!(
            log,
            Level::Info,
            "the system holds the state already; nothing changed"
        );
        return Ok(ApplyOutcome::default());
    }
    record::check_not_busy(&changed, host.is_some(), kernel_mode)?;
    let described = describe(&plan, &state, &kernel, host.as_ref());
    if opts.dry_run {
        log_at!(
            log,
            Level::Info,
            "dry run: {} interface(s) and {} host knob(s) would change; nothing written",
            described.interfaces.len(),
            described.host.len()
        );
        return Ok(ApplyOutcome {
            checkpoint: None,
            changed,
            host: knobs,
            plan: described,
        });
    }

    // 4. Begin.
    let mut writer = Writer::open()?;
    let undo = backend.begin(&plan, &kernel, opts, log).await?;
    let mut host_undo = HostUndo::default();

    // 5-6. Write, verify; interruptible.
    let work = async {
        if let Some(h) = &host {
            host::set(h, &kernel, &mut writer, &mut host_undo, log).await?;
        }
        backend
            .execute(&plan, &mut writer, opts, &report, log)
            .await?;
        if opts.verify {
            verify(&state, &kernel, &names, B::MODE, opts, &report, log).await?;
        }
        Ok::<(), Error>(())
    };
    let outcome = interruptible(work, opts).await;

    // 7. Commit, keep, or roll back.
    let checkpoint = match outcome {
        Ok(()) if opts.commit => {
            report.step("committing", 0, 0);
            backend.commit(&undo, log).await?;
            None
        }
        Ok(()) => match keep::<B>(&undo, &host_undo, &changed, host.is_some(), opts, log) {
            Ok(cp) => Some(cp),
            Err(e) => {
                return Err(
                    fail(&mut backend, undo, &host_undo, &mut writer, e, &report, log).await,
                )
            }
        },
        Err(e) => {
            return Err(fail(&mut backend, undo, &host_undo, &mut writer, e, &report, log).await)
        }
    };
    if let Some(cp) = &checkpoint {
        super::remember_checkpoint(Some(cp.clone()));
        log_at!(
            log,
            Level::Info,
            "checkpoint {cp} left open: commit or roll it back; it rolls back by itself in {} s",
            opts.rollback_timeout
        );
    }
    if kernel_mode {
        log_at!(
            log,
            Level::Info,
            "kernel-only changes are runtime state: addresses, endpoints and knobs do not \
             survive a reboot (NetworkManager profiles do)"
        );
    }
    Ok(ApplyOutcome {
        checkpoint,
        changed,
        host: knobs,
        plan: described,
    })
}

/// No-commit: keeps the undo record where commit and rollback of any process find it,
/// with a timer that rolls it back after `rollback_timeout`. Returns the checkpoint the
/// caller gets: the backend's own (NetworkManager's), else the record's path.
fn keep<B: Backend>(
    undo: &B::Undo,
    host_undo: &HostUndo,
    changed: &[String],
    host_knobs: bool,
    opts: &ApplyOptions,
    log: &Log,
) -> Result<String> {
    let own = B::checkpoint(undo);
    if let Some(cp) = &own {
        if !B::needs_record(undo) && host_undo.is_empty() {
            // NetworkManager's checkpoint holds everything; its own timeout applies.
            if let Err(e) = B::keep_alone(undo) {
                // The checkpoint stands; only a rollback by another process waits less.
                log_at!(
                    log,
                    Level::Warn,
                    "a rollback of {cp} by another process will not wait for the kernel: {}",
                    e.msg()
                );
            }
            return Ok(cp.clone());
        }
    }
    let mut rec = Record::new(B::NAME, opts.rollback_timeout);
    rec.nm_checkpoint = own.clone();
    rec.interfaces = changed.to_vec();
    rec.host_knobs = host_knobs;
    rec.host = host_undo.clone();
    rec.backend_undo = serde_json::to_value(undo)
        .map_err(|e| Error::bug(format!("serializing the undo record: {e}")))?;
    let path = record::save(&rec)?;
    if let Err(e) = timer::spawn(&path, rec.deadline_ms) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    log_at!(
        log,
        Level::Debug,
        "undo record {} kept; rolled back by itself at its deadline",
        path.display()
    );
    Ok(own.unwrap_or_else(|| path.display().to_string()))
}

/// A failed apply: rolls everything back and returns the error to give the caller.
async fn fail<B: Backend>(
    backend: &mut B,
    undo: B::Undo,
    host_undo: &HostUndo,
    writer: &mut Writer,
    e: Error,
    report: &Reporter<'_>,
    log: &Log,
) -> Error {
    report.step("rolling back", 0, 0);
    log_at!(log, Level::Warn, "apply failed, rolling back: {}", e.msg());
    // A write cut short (an interruption, a timeout) leaves the writer unusable: the
    // rollback gets sockets of its own.
    let mut fresh = Writer::open();
    let writer = match fresh.as_mut() {
        Ok(w) => w,
        Err(_) => writer,
    };
    match roll_back_all(backend, undo, host_undo, writer, log).await {
        Ok(()) => Error::new(e.kind(), format!("{}; rolled back", e.msg()))
            .with_rollback(Rollback::RolledBack),
        Err(r) => Error::new(
            e.kind(),
            format!("{}; the rollback failed too: {}", e.msg(), r.msg()),
        )
        .with_rollback(Rollback::Failed),
    }
}

/// The backend's rollback, then the knobs; every part is tried.
async fn roll_back_all<B: Backend>(
    backend: &mut B,
    undo: B::Undo,
    host_undo: &HostUndo,
    writer: &mut Writer,
    log: &Log,
) -> Result<()> {
    let a = backend.roll_back(undo, writer, log).await;
    let b = host::restore(host_undo, writer, log).await;
    a.and(b)
}

/// Rolls back a claimed undo record (an explicit rollback, or the timer): the backend
/// that wrote it puts its part back, then the knobs.
pub(super) async fn roll_back_record(claimed: &Claimed, log: &Log) -> Result<()> {
    let rec = &claimed.record;
    let mut writer = Writer::open()?;
    match rec.backend {
        BackendName::Kernel => {
            let _lock = Lock::take(LOCK_WAIT)?;
            let mut b = super::kernel::KernelBackend::default();
            let undo = from_record(rec)?;
            roll_back_all(&mut b, undo, &rec.host, &mut writer, log).await
        }
        BackendName::NetworkManager => {
            let mut b = super::nm::NmBackend::connect_checked().await?;
            let undo = from_record(rec)?;
            roll_back_all(&mut b, undo, &rec.host, &mut writer, log).await
        }
    }
}

fn from_record<U: DeserializeOwned>(rec: &Record) -> Result<U> {
    serde_json::from_value(rec.backend_undo.clone()).map_err(|e| {
        Error::new(
            ErrorKind::Kernel,
            format!(
                "the undo record's {:?} part cannot be read: {e}",
                rec.backend
            ),
        )
    })
}

/// Runs `work` unless the caller's cancel flag goes up first.
async fn interruptible<F: std::future::Future<Output = Result<()>>>(
    work: F,
    opts: &ApplyOptions,
) -> Result<()> {
    let Some(flag) = opts.cancel.clone() else {
        return work.await;
    };
    let watch = async move {
        while !flag.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match select(std::pin::pin!(work), std::pin::pin!(watch)).await {
        Either::Left((r, _)) => r,
        Either::Right(((), _)) => Err(Error::new(
            ErrorKind::Timeout,
            "the apply was interrupted by the caller",
        )),
    }
}

/// The links the apply found (`before`) that are gone now (deleted, or renamed: the same
/// name on another index counts as gone too), other than those the state removes.
fn vanished(state: &NetworkState, before: &KernelState, now: &KernelState) -> Vec<String> {
    state
        .interfaces
        .iter()
        .filter(|i| i.state != Some(crate::state::InterfaceState::Absent))
        .filter_map(|i| {
            let was = before.links.iter().find(|l| l.name == i.name)?;
            let still = now
                .links
                .iter()
                .any(|l| l.name == i.name && l.index == was.index);
            (!still).then(|| format!("{} (ifindex {})", i.name, was.index))
        })
        .collect()
}

/// Polls the kernel until it holds `state` or `opts.verify_timeout` runs out. A link
/// that vanishes meanwhile ends the wait at once: the state cannot be reached.
async fn verify(
    state: &NetworkState,
    before: &KernelState,
    names: &[String],
    mode: Mode,
    opts: &ApplyOptions,
    report: &Reporter<'_>,
    log: &Log,
) -> Result<()> {
    report.step("verifying", 0, 0);
    let deadline = tokio::time::Instant::now() + opts.verify_timeout;
    let mut round = 0;
    loop {
        let started = tokio::time::Instant::now();
        let kernel = read_kernel(names, log).await?;
        let gone = vanished(state, before, &kernel);
        if !gone.is_empty() {
            return Err(Error::new(
                ErrorKind::Verification,
                format!(
                    "the link vanished during the apply: {} (deleted or renamed); the state \
                     cannot be reached",
                    gone.join(", ")
                ),
            ));
        }
        let read_took = started.elapsed();
        let mismatches = verify::check(state, &kernel, mode);
        if mismatches.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let list: Vec<String> = mismatches.iter().map(|m| m.to_string()).collect();
            return Err(Error::new(
                ErrorKind::Verification,
                format!(
                    "the kernel did not reach the desired state within {} s: {}",
                    opts.verify_timeout.as_secs_f32(),
                    list.join("; ")
                ),
            ));
        }
        let mut pause =
            Duration::from_millis(VERIFY_BACKOFF_MS[round.min(VERIFY_BACKOFF_MS.len() - 1)]);
        if names.len() > SCOPED_READ_MAX {
            pause = pause
                .max(read_took * VERIFY_PAUSE_PER_READ)
                .min(VERIFY_PAUSE_MAX);
        }
        round += 1;
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, link};

    #[test]
    fn a_link_deleted_or_replaced_has_vanished() {
        let state = testkit::state(
            "interfaces:\n- name: eth1\n- name: eth2\n- name: eth3\n  state: absent\n- name: eth9\n",
        );
        let before = testkit::kernel(
            vec![link(2, "eth1"), link(3, "eth2"), link(4, "eth3")],
            vec![],
            vec![],
        );
        assert!(vanished(&state, &before, &before).is_empty());
        // eth1 deleted, eth2 deleted and made again (another index), eth3 removed as asked;
        // eth9 was never there (the live checks speak of it).
        let now = testkit::kernel(vec![link(7, "eth2")], vec![], vec![]);
        assert_eq!(
            vanished(&state, &before, &now),
            vec!["eth1 (ifindex 2)", "eth2 (ifindex 3)"]
        );
    }
}
