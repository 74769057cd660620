//! The NetworkManager-mode pipeline: read, plan, checkpoint, write, bring live, verify,
//! commit or roll back (the module note of `apply` has the order and the reasons).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{select, Either};
use zbus::zvariant::OwnedObjectPath;

use super::plan::{self, Current, Device, Live, NmIface, Step, Write};
use super::{last_checkpoint, remember_checkpoint, ApplyOptions, ApplyOutcome, Progress};
use crate::log::Level;
use crate::netlink::{self, KernelState, Limits};
use crate::nm::activation::{self, Reapplied};
use crate::nm::checkpoint;
use crate::nm::dbus::{
    bounded, device_proxy, error_name, nm_error, nm_proxy, NetworkManagerProxy, Settings,
};
use crate::nm::deactivation;
use crate::nm::profile::{self, Applied, Storage};
use crate::nm::query::{
    checked_version, connect, read_device_applied, DEVICES_IN_FLIGHT, NM_DEVICE_STATE_ACTIVATED,
};
use crate::state::NetworkState;
use crate::verify::{self, Mode};
use crate::{log_at, Error, ErrorKind, Log, Result};

/// How long activations and deactivations may take (NM's own DHCP timeout is 45 s).
pub const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(90);

/// The pauses between verification's reads of the kernel: short at first (NM puts the
/// endpoints of a reapply in place a few milliseconds after it answers, and a kernel
/// read costs well under a millisecond at one interface), then every 50 ms.
const VERIFY_BACKOFF_MS: [u64; 6] = [2, 4, 8, 16, 32, 50];

/// What the apply itself must put back on rollback, beyond what NM's checkpoint
/// restores: profiles that were not applied to a held device, and the host knobs.
#[derive(Default)]
struct Undo {
    /// Profiles changed: path and settings before.
    updated: Vec<(OwnedObjectPath, Settings)>,
    /// Profiles deleted: settings to add back.
    deleted: Vec<Settings>,
    /// `net.mptcp.enabled` before, when the apply changed it.
    enabled: Option<bool>,
    /// Limits before, when the apply changed them.
    limits: Option<Limits>,
    storage: Storage,
}

/// Undo records of checkpoints left open by no-commit applies of this process.
static OPEN: Mutex<Option<HashMap<String, Undo>>> = Mutex::new(None);

fn keep_undo(path: &str, undo: Undo) {
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.get_or_insert_with(HashMap::new)
        .insert(path.to_string(), undo);
}

fn take_undo(path: &str) -> Option<Undo> {
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.as_mut().and_then(|m| m.remove(path))
}

struct Reporter<'a>(&'a ApplyOptions);

impl Reporter<'_> {
    fn step(&self, phase: &'static str, done: usize, total: usize) {
        if let Some(f) = &self.0.progress {
            f(&Progress { phase, done, total });
        }
    }
}

pub async fn apply(
    mut state: NetworkState,
    opts: &ApplyOptions,
    log: &Log,
) -> Result<ApplyOutcome> {
    if opts.kernel_only {
        return Err(Error::new(
            ErrorKind::NotSupported,
            "kernel-only apply is not available yet; apply through NetworkManager",
        ));
    }
    if !opts.commit && opts.rollback_timeout == 0 {
        return Err(Error::invalid(
            "a rollback timeout of 0 (never) is refused without commit: the checkpoint would \
             hold the devices until someone commits or rolls it back",
        ));
    }
    let report = Reporter(opts);
    report.step("reading", 0, state.interfaces.len());

    // 1. Read.
    let conn = connect().await?;
    let nm = nm_proxy(&conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    checked_version(&nm).await?;
    let names: Vec<String> = state.interfaces.iter().map(|i| i.name.clone()).collect();
    let (kernel, ifaces, profiles) = futures_util::future::try_join3(
        netlink::read_kernel(log),
        read_ifaces(&conn, &names),
        profile::list_profiles(&conn),
    )
    .await?;

    // 2. Plan (and the live checks).
    let current = Current::new(&kernel, &ifaces, &profiles);
    let steps = plan::plan(&mut state, &current, log)?;
    let host = host_changes(&state, &kernel);
    if steps.is_empty() && host.is_none() {
        log_at!(
            log,
            Level::Info,
            "the system holds the state already; nothing changed"
        );
        return Ok(ApplyOutcome::default());
    }
    let changed: Vec<String> = {
        let mut v: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };

    // 3. Checkpoint over the devices that change.
    let mut devices: Vec<OwnedObjectPath> = steps.iter().filter_map(|s| s.device.clone()).collect();
    devices.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    devices.dedup();
    let cp = if devices.is_empty() {
        None
    } else {
        Some(checkpoint::create(&conn, &devices, opts.rollback_timeout).await?)
    };
    if let Some(cp) = &cp {
        log_at!(
            log,
            Level::Info,
            "checkpoint {} over {} device(s)",
            cp.as_str(),
            devices.len()
        );
    }
    let mut undo = Undo {
        storage: storage(opts),
        ..Undo::default()
    };
    for s in &steps {
        if let Some(Write::Update {
            path,
            before: Some(before),
            ..
        }) = &s.write
        {
            undo.updated.push((path.clone(), before.clone()));
        }
        undo.deleted
            .extend(s.delete.iter().filter_map(|(_, settings)| settings.clone()));
    }

    // 4-6. Host knobs, profiles, live, verify; interruptible.
    let work = async {
        if let Some(host) = &host {
            set_host(host, &kernel, &mut undo, log).await?;
        }
        execute(&conn, &steps, opts, &report, log).await?;
        if opts.verify {
            verify(&state, opts, &report, log).await?;
        }
        Ok::<(), Error>(())
    };
    let outcome = interruptible(work, opts).await;

    match outcome {
        Ok(()) if opts.commit => {
            report.step("committing", 0, 0);
            if let Some(cp) = &cp {
                checkpoint::destroy(&conn, cp).await?;
            }
            Ok(ApplyOutcome {
                checkpoint: None,
                changed,
            })
        }
        Ok(()) => {
            let path = cp.as_ref().map(|c| c.as_str().to_string());
            if let Some(p) = &path {
                keep_undo(p, undo);
                remember_checkpoint(Some(p.clone()));
                log_at!(
                    log,
                    Level::Info,
                    "checkpoint {p} left open: commit or roll it back; NetworkManager rolls \
                     it back by itself in {} s",
                    opts.rollback_timeout
                );
            }
            Ok(ApplyOutcome {
                checkpoint: path,
                changed,
            })
        }
        Err(e) => {
            report.step("rolling back", 0, 0);
            log_at!(log, Level::Warn, "apply failed, rolling back: {}", e.msg());
            match undo_all(&conn, cp.as_ref(), undo, log).await {
                Ok(()) => Err(Error::new(e.kind(), format!("{}; rolled back", e.msg()))),
                Err(r) => Err(Error::new(
                    e.kind(),
                    format!("{}; the rollback failed too: {}", e.msg(), r.msg()),
                )),
            }
        }
    }
}

fn storage(opts: &ApplyOptions) -> Storage {
    if opts.memory_only {
        Storage::Memory
    } else {
        Storage::Disk
    }
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

/// NM's device and applied connection for each name: the devices concurrently,
/// [`DEVICES_IN_FLIGHT`] at a time. When the state names most of NM's devices, every
/// device is read (one call for an active device, see
/// [`read_device_applied`](crate::nm::query::read_device_applied)); otherwise each name
/// is looked up first (one call more each). A device with nothing applied costs one more
/// call, for its state.
///
/// (The futures are made first and then buffered: a closure inside the stream
/// combinator that borrows would make the whole future lose `Send`, a known limit of
/// rustc's lifetime inference.)
async fn read_ifaces(
    conn: &zbus::Connection,
    names: &[String],
) -> Result<HashMap<String, NmIface>> {
    use futures_util::stream::{self, StreamExt};
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let all = nm
        .get_all_devices()
        .await
        .map_err(|e| nm_error("listing NetworkManager devices", e))?;
    let paths: Vec<OwnedObjectPath> = if names.len() * 2 >= all.len() {
        all
    } else {
        let lookups: Vec<_> = names.iter().map(|n| find_device(&nm, n)).collect();
        let found: Vec<_> = stream::iter(lookups)
            .buffered(DEVICES_IN_FLIGHT)
            .collect()
            .await;
        found
            .into_iter()
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect()
    };
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let reads: Vec<_> = paths
        .into_iter()
        .map(|p| read_iface(conn, p, &wanted))
        .collect();
    let found: Vec<Result<Option<(String, NmIface)>>> = stream::iter(reads)
        .buffer_unordered(DEVICES_IN_FLIGHT)
        .collect()
        .await;
    let mut out = HashMap::new();
    for r in found {
        if let Some((name, iface)) = r? {
            out.insert(name, iface);
        }
    }
    Ok(out)
}

async fn find_device(nm: &NetworkManagerProxy<'_>, name: &str) -> Result<Option<OwnedObjectPath>> {
    match nm.get_device_by_ip_iface(name).await {
        Ok(p) => Ok(Some(p)),
        Err(e) if error_name(&e).is_some_and(|x| x.ends_with(".UnknownDevice")) => Ok(None),
        Err(e) => Err(nm_error(&format!("finding the device {name}"), e)),
    }
}

/// One device, when its interface is `wanted`.
async fn read_iface(
    conn: &zbus::Connection,
    path: OwnedObjectPath,
    wanted: &HashSet<&str>,
) -> Result<Option<(String, NmIface)>> {
    let Some(d) = read_device_applied(conn, path).await? else {
        return Ok(None);
    };
    if !wanted.contains(d.interface.as_str()) {
        return Ok(None);
    }
    let state = match &d.applied {
        // Something is applied: the device is managed and activating or active.
        Some(_) => NM_DEVICE_STATE_ACTIVATED,
        None => device_proxy(conn, d.path.clone())
            .await
            .map_err(|e| nm_error("NetworkManager device", e))?
            .state()
            .await
            .map_err(|e| nm_error(&format!("reading the state of {}", d.interface), e))?,
    };
    let iface = NmIface {
        device: Some(Device {
            path: d.path,
            state,
        }),
        applied: d.applied.map(|(settings, version_id)| Applied {
            settings,
            version_id,
        }),
    };
    Ok(Some((d.interface, iface)))
}

/// Profiles written, then deactivations and deletions, then reapplies, then activations
/// (one batch). Interfaces proceed concurrently within each phase.
async fn execute(
    conn: &zbus::Connection,
    steps: &[Step],
    opts: &ApplyOptions,
    report: &Reporter<'_>,
    log: &Log,
) -> Result<()> {
    let storage = storage(opts);
    let writing = steps.iter().filter(|s| s.write.is_some()).count();
    report.step("writing profiles", 0, writing);
    let writes: Vec<_> = steps
        .iter()
        .map(|s| async move {
            match &s.write {
                None => Ok(s.profile.clone()),
                Some(Write::Add(settings)) => profile::add(conn, settings, storage).await.map(Some),
                Some(Write::Update { path, settings, .. }) => {
                    profile::update(conn, path, settings, storage, s.live == Live::Activate)
                        .await?;
                    Ok(Some(path.clone()))
                }
            }
        })
        .collect();
    let profiles: Vec<Option<OwnedObjectPath>> =
        bounded(writes).await.into_iter().collect::<Result<_>>()?;
    report.step("writing profiles", writing, writing);

    let downs: Vec<_> = steps
        .iter()
        .filter(|s| s.live == Live::Deactivate)
        .filter_map(|s| s.device.as_ref())
        .map(|d| deactivation::deactivate(conn, d, ACTIVATION_TIMEOUT))
        .collect();
    if !downs.is_empty() {
        report.step("deactivating", 0, downs.len());
        bounded(downs)
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
    }
    let deletes: Vec<_> = steps
        .iter()
        .flat_map(|s| s.delete.iter())
        .map(|(path, _)| profile::delete(conn, path))
        .collect();
    if !deletes.is_empty() {
        bounded(deletes)
            .await
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
    }

    // Reapply where NM can; what it cannot reapply is activated with the rest.
    let mut activate: Vec<(OwnedObjectPath, OwnedObjectPath)> = Vec::new();
    let reapplies: Vec<_> = steps
        .iter()
        .zip(&profiles)
        .filter_map(|(s, p)| match (&s.live, &s.device) {
            (Live::Reapply { version_id }, Some(d)) => Some(async move {
                let r = activation::reapply(conn, d, None, *version_id).await;
                (s, d, p, r)
            }),
            _ => None,
        })
        .collect();
    if !reapplies.is_empty() {
        report.step("reapplying", 0, reapplies.len());
        for (s, d, p, r) in bounded(reapplies).await {
            match r? {
                Reapplied::Done => {}
                Reapplied::NeedsActivation(why) => {
                    log_at!(
                        log,
                        Level::Info,
                        "{}: cannot reapply ({why}); activating",
                        s.name
                    );
                    if let Some(p) = p {
                        activate.push((p.clone(), d.clone()));
                    }
                }
            }
        }
    }
    for (s, p) in steps.iter().zip(&profiles) {
        if let (Live::Activate, Some(d), Some(p)) = (&s.live, &s.device, p) {
            activate.push((p.clone(), d.clone()));
        }
    }
    if !activate.is_empty() {
        report.step("activating", 0, activate.len());
        let results = activation::activate_many(conn, &activate, ACTIVATION_TIMEOUT).await?;
        let total = results.len();
        let mut first = None;
        for r in results {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        report.step("activating", total, total);
        if let Some(e) = first {
            return Err(e);
        }
    }
    Ok(())
}

/// Polls the kernel until it holds `state` or `opts.verify_timeout` runs out.
async fn verify(
    state: &NetworkState,
    opts: &ApplyOptions,
    report: &Reporter<'_>,
    log: &Log,
) -> Result<()> {
    report.step("verifying", 0, 0);
    let deadline = tokio::time::Instant::now() + opts.verify_timeout;
    let mut round = 0;
    loop {
        let kernel = netlink::read_kernel(log).await?;
        let mismatches = verify::check(state, &kernel, Mode::NetworkManager);
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
        let pause = VERIFY_BACKOFF_MS[round.min(VERIFY_BACKOFF_MS.len() - 1)];
        round += 1;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The host knobs the state changes.
struct HostChange {
    enabled: Option<bool>,
    limits: Option<Limits>,
}

fn host_changes(state: &NetworkState, kernel: &KernelState) -> Option<HostChange> {
    let host = state.mptcp.as_ref()?;
    let enabled = host.enabled.filter(|e| kernel.mptcp_enabled != Some(*e));
    let limits = host.limits.as_ref().and_then(|l| {
        let now = kernel.limits?;
        let want = Limits {
            subflows: l.subflows.unwrap_or(now.subflows),
            add_addr_accepted: l.add_addr_accepted.unwrap_or(now.add_addr_accepted),
        };
        (want != now).then_some(want)
    });
    (enabled.is_some() || limits.is_some()).then_some(HostChange { enabled, limits })
}

async fn set_host(
    host: &HostChange,
    kernel: &KernelState,
    undo: &mut Undo,
    log: &Log,
) -> Result<()> {
    if let Some(enabled) = host.enabled {
        netlink::set_mptcp_enabled(enabled)?;
        undo.enabled = kernel.mptcp_enabled;
        log_at!(
            log,
            Level::Info,
            "net.mptcp.enabled set to {}",
            u8::from(enabled)
        );
    }
    if let Some(limits) = host.limits {
        netlink::set_limits(limits).await?;
        undo.limits = kernel.limits;
        log_at!(
            log,
            Level::Info,
            "MPTCP limits set to subflows {} add-addr-accepted {}",
            limits.subflows,
            limits.add_addr_accepted
        );
    }
    Ok(())
}

/// Rolls back: NM's checkpoint, then what it does not restore. Every part is tried; the
/// first failure is returned.
async fn undo_all(
    conn: &zbus::Connection,
    cp: Option<&OwnedObjectPath>,
    undo: Undo,
    log: &Log,
) -> Result<()> {
    let mut first: Option<Error> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            log_at!(log, Level::Error, "rollback: {}", e.msg());
            first.get_or_insert(e);
        }
    };
    if let Some(cp) = cp {
        let r = async {
            let results = checkpoint::rollback(conn, cp).await?;
            checkpoint::failures(conn, &results).await
        }
        .await;
        note(r);
    }
    let puts: Vec<_> = undo
        .updated
        .iter()
        .map(|(path, settings)| profile::update(conn, path, settings, undo.storage, false))
        .collect();
    for r in bounded(puts).await {
        note(r);
    }
    let adds: Vec<_> = undo
        .deleted
        .iter()
        .map(|settings| profile::add(conn, settings, undo.storage))
        .collect();
    for r in bounded(adds).await {
        note(r.map(|_| ()));
    }
    if let Some(limits) = undo.limits {
        note(netlink::set_limits(limits).await);
    }
    if let Some(enabled) = undo.enabled {
        note(netlink::set_mptcp_enabled(enabled));
    }
    match first {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// The checkpoint `commit`/`rollback` act on: the one given, else the last one this
/// process left open, else NM's newest.
async fn resolve(
    conn: &zbus::Connection,
    given: Option<&str>,
    log: &Log,
) -> Result<OwnedObjectPath> {
    let path = match given.map(str::to_string).or_else(last_checkpoint) {
        Some(p) => p,
        None => {
            let all = checkpoint::list(conn).await?;
            let newest = all
                .iter()
                .max_by_key(|c| c.created_ms)
                .ok_or_else(|| Error::invalid("there is no checkpoint to commit or roll back"))?;
            log_at!(
                log,
                Level::Info,
                "no checkpoint given: using NetworkManager's newest, {}",
                newest.path.as_str()
            );
            newest.path.as_str().to_string()
        }
    };
    OwnedObjectPath::try_from(path.as_str())
        .map_err(|_| Error::invalid(format!("`{path}` is not a checkpoint path")))
}

pub async fn commit(given: Option<&str>, log: &Log) -> Result<()> {
    let conn = connect().await?;
    let cp = resolve(&conn, given, log).await?;
    checkpoint::destroy(&conn, &cp).await?;
    take_undo(cp.as_str());
    forget(cp.as_str());
    log_at!(log, Level::Info, "checkpoint {} committed", cp.as_str());
    Ok(())
}

pub async fn rollback(given: Option<&str>, log: &Log) -> Result<()> {
    let conn = connect().await?;
    let cp = resolve(&conn, given, log).await?;
    let undo = take_undo(cp.as_str()).unwrap_or_default();
    forget(cp.as_str());
    undo_all(&conn, Some(&cp), undo, log).await?;
    log_at!(log, Level::Info, "checkpoint {} rolled back", cp.as_str());
    Ok(())
}

fn forget(path: &str) {
    if last_checkpoint().as_deref() == Some(path) {
        remember_checkpoint(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// Python runs an apply on a thread of its own: the futures must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(s: NetworkState, o: &ApplyOptions, l: &Log) {
        is_send(&apply(s, o, l));
        is_send(&commit(None, l));
        is_send(&rollback(None, l));
    }
}
