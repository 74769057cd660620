//! Bringing a profile live on a device: `Device.Reapply`, and `ActivateConnection`
//! waited for until the activation is done.
//!
//! NM answers `ActivateConnection` as soon as the activation has *started*; whether it
//! worked is only known later, from the active connection's state. So activation waits
//! on NM's `StateChanged` signals, subscribed to *before* the call (no change can slip
//! between the call and the subscription), with a slow re-read of `State` as a safety
//! net, until ACTIVATED, failure, or the caller's timeout.
//!
//! Many activations are one batch ([`activate_many`]), not many calls of [`activate`]:
//! a batch holds two match rules on the bus whatever its size (every active
//! connection's and every device's `StateChanged`, told apart by object path here),
//! where per-activation rules would cost two `AddMatch`/`RemoveMatch` round trips each,
//! make dbus-daemon test every signal against thousands of rules, and run into its
//! `max_match_rules_per_connection` (2048 on Debian 12's dbus-daemon 1.14) at about
//! 1000 interfaces. (zbus shares one subscription between streams of the same rule, but
//! copies every message into each stream: joining 1000 `activate` calls would copy each
//! signal 1000 times.)
//!
//! Reapply: on NM 1.42 `Reapply` of changed `connection.mptcp-flags` and IP settings keeps
//! the device ACTIVATED (no state change at all) and the link untouched, and NM replaces
//! the MPTCP endpoints shortly after the call returns (read them back by polling the
//! kernel).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::{self, StreamExt};
use zbus::message::Type;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::{MatchRule, Message, MessageStream};

use super::dbus::{
    active_connection_proxy, bounded, device_control_proxy, device_proxy, error_name,
    nm_control_proxy, nm_error, NetworkManagerControlProxy, Settings, MAX_IN_FLIGHT, NM_BUS_NAME,
};
use super::profile::is_gone;
use crate::log::Level;
use crate::{log_at, Error, ErrorKind, Log, Result};

/// `NMActiveConnectionState`.
pub const NM_ACTIVE_CONNECTION_STATE_UNKNOWN: u32 = 0;
pub const NM_ACTIVE_CONNECTION_STATE_ACTIVATING: u32 = 1;
pub const NM_ACTIVE_CONNECTION_STATE_ACTIVATED: u32 = 2;
pub const NM_ACTIVE_CONNECTION_STATE_DEACTIVATING: u32 = 3;
pub const NM_ACTIVE_CONNECTION_STATE_DEACTIVATED: u32 = 4;

/// `NMDeviceState` FAILED, whose signal carries the reason of a failed activation.
pub const NM_DEVICE_STATE_FAILED: u32 = 120;

/// How often a wait re-reads the states of the activations still going when no signal
/// said anything: a safety net, signals do the work.
pub const SAFETY_POLL: Duration = Duration::from_secs(1);

const AC_INTERFACE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const DEVICE_INTERFACE: &str = "org.freedesktop.NetworkManager.Device";

/// What a reapply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reapplied {
    /// NM applied the settings to the active device.
    Done,
    /// NM cannot reapply this change (or the device is not active): the profile must be
    /// activated instead. The text is NM's reason.
    NeedsActivation(String),
}

/// `Device.Reapply`: applies `settings` (`None`: the device's profile as it is now, which
/// is what a caller wants right after `Update2`) to the active device without
/// deactivating it.
///
/// `version_id` is the applied connection's (from `profile::lookup` / `profile::applied`):
/// NM refuses the call with `org.freedesktop.NetworkManager.Device.VersionIdMismatch` if
/// someone else changed the device since (0 skips the check). Each reapply that changes
/// something raises the version by one.
///
/// NM 1.42 refuses changes it cannot make live with
/// `org.freedesktop.NetworkManager.Device.IncompatibleConnection` (for example "Can't
/// reapply changes to '802-3-ethernet.cloned-mac-address' setting"), and a device that
/// is not active with `...Device.NotActive`: both are [`Reapplied::NeedsActivation`].
/// What it does reapply, keeping the device ACTIVATED (no state change at all) and the
/// link untouched: `connection.mptcp-flags`, IP addresses and methods, and also
/// `connection.autoconnect`, `connection.id` and `802-3-ethernet.mtu`.
pub async fn reapply(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    settings: Option<&Settings>,
    version_id: u64,
) -> Result<Reapplied> {
    match reapply_once(conn, device, settings, version_id).await? {
        Attempt::Done(r) => Ok(r),
        Attempt::Mismatch(e) => Err(nm_error(&format!("reapplying on {}", device.as_str()), e)),
    }
}

/// How many times [`reapply_retrying`] calls `Device.Reapply` at most.
pub const REAPPLY_TRIES: usize = 3;

/// [`reapply`] of the device's profile as it is now, tried again (at most
/// [`REAPPLY_TRIES`] calls in all) with the version id read afresh when NM answers
/// `...Device.VersionIdMismatch`: the applied connection changed between our read and the
/// reapply (NetworkManager itself bumps it while it settles a device, e.g. right after it
/// started and took over an active link; or another client reapplied). The profile was
/// written before: reapplying it onto the newer applied connection is still the apply's
/// intent. Each retry is logged (`name`: the interface).
pub async fn reapply_retrying(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    version_id: u64,
    name: &str,
    log: &Log,
) -> Result<Reapplied> {
    let reread = || async {
        let dev = device_proxy(conn, device.to_owned().into())
            .await
            .map_err(|e| nm_error("NetworkManager device", e))?;
        dev.get_applied_connection(0)
            .await
            .map(|(_, v)| v)
            .map_err(|e| nm_error(&format!("reading the applied connection of {name}"), e))
    };
    let call = |v: u64| reapply_once(conn, device, None, v);
    let note = |try_no: usize, v: u64, e: &zbus::Error| {
        log_at!(
            log,
            Level::Info,
            "{name}: NetworkManager changed the applied connection meanwhile ({e}); \
             reapplying onto version {v} (try {try_no} of {REAPPLY_TRIES})"
        );
    };
    retry_mismatch(version_id, REAPPLY_TRIES, call, reread, note)
        .await
        .map_err(|e| match e {
            Failure::Error(e) => e,
            Failure::Mismatch(e) => nm_error(
                &format!(
                    "reapplying on {name}: the applied connection kept changing under the \
                     apply ({REAPPLY_TRIES} tries)"
                ),
                e,
            ),
        })
}

/// One `Device.Reapply`, with `VersionIdMismatch` kept apart.
enum Attempt {
    Done(Reapplied),
    Mismatch(zbus::Error),
}

enum Failure {
    Error(Error),
    Mismatch(zbus::Error),
}

async fn reapply_once(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    settings: Option<&Settings>,
    version_id: u64,
) -> Result<Attempt> {
    let dev = device_control_proxy(conn, device.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let empty = Settings::new();
    match dev.reapply(settings.unwrap_or(&empty), version_id, 0).await {
        Ok(()) => Ok(Attempt::Done(Reapplied::Done)),
        Err(e)
            if error_name(&e).is_some_and(|n| {
                n.ends_with(".IncompatibleConnection") || n.ends_with(".NotActive")
            }) =>
        {
            Ok(Attempt::Done(Reapplied::NeedsActivation(e.to_string())))
        }
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".VersionIdMismatch")) => {
            Ok(Attempt::Mismatch(e))
        }
        Err(e) => Err(nm_error(&format!("reapplying on {}", device.as_str()), e)),
    }
}

/// The retry loop of [`reapply_retrying`], apart from D-Bus: `call(version)` until it is
/// not a mismatch, `reread()` for the next version, `tries` calls at most.
async fn retry_mismatch<C, CF, R, RF, N>(
    first: u64,
    tries: usize,
    mut call: C,
    mut reread: R,
    mut note: N,
) -> std::result::Result<Reapplied, Failure>
where
    C: FnMut(u64) -> CF,
    CF: std::future::Future<Output = Result<Attempt>>,
    R: FnMut() -> RF,
    RF: std::future::Future<Output = Result<u64>>,
    N: FnMut(usize, u64, &zbus::Error),
{
    let mut version = first;
    let mut try_no = 1;
    loop {
        match call(version).await.map_err(Failure::Error)? {
            Attempt::Done(r) => return Ok(r),
            Attempt::Mismatch(e) if try_no >= tries => return Err(Failure::Mismatch(e)),
            Attempt::Mismatch(e) => {
                version = reread().await.map_err(Failure::Error)?;
                try_no += 1;
                note(try_no, version, &e);
            }
        }
    }
}

/// Activates `profile` on `device` and waits until NM reports it ACTIVATED; returns the
/// active connection's path. One item of [`activate_many`]: for several interfaces, call
/// that once rather than this many times.
///
/// Fails with [`ErrorKind::NetworkManager`] when NM refuses or the activation fails
/// (with NM's reasons), and [`ErrorKind::Timeout`] when it is still going after `timeout`
/// (the activation is left running: NM's own timeouts, the caller's rollback, or a
/// retry end it).
pub async fn activate(
    conn: &zbus::Connection,
    profile: &ObjectPath<'_>,
    device: &ObjectPath<'_>,
    timeout: Duration,
) -> Result<OwnedObjectPath> {
    let item = (profile.to_owned().into(), device.to_owned().into());
    activate_many(conn, &[item], timeout)
        .await?
        .pop()
        .unwrap_or_else(|| Err(Error::bug("an activation of one item gave no result")))
}

/// Activates every `(profile, device)` pair and waits until all are done, at most
/// `timeout` for the whole batch; returns one result per pair, in order (see
/// [`activate`] for what each can be). The `ActivateConnection` calls go out
/// [`MAX_IN_FLIGHT`] at a time. `Err` only when the signals cannot be subscribed to.
pub async fn activate_many(
    conn: &zbus::Connection,
    items: &[(OwnedObjectPath, OwnedObjectPath)],
    timeout: Duration,
) -> Result<Vec<Result<OwnedObjectPath>>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let watch = Watch::start(conn).await?;
    let mut signals = watch.stream;
    let progress = Mutex::new(Progress::default());

    // 1. The calls. Signals are recorded meanwhile: zbus stops reading the socket (and so
    //    the calls' replies) while a subscribed stream's queue is full and unread.
    // (The futures are made first and then buffered: a closure inside the stream
    // combinator that borrows would make the whole future lose `Send`, a known limit
    // of rustc's lifetime inference.)
    let calls: Vec<_> = items
        .iter()
        .map(|(profile, device)| start_one(&nm, profile, device))
        .collect();
    let calls = stream::iter(calls)
        .buffered(MAX_IN_FLIGHT)
        .collect::<Vec<_>>();
    let record_forever = async {
        while let Some(msg) = signals.next().await {
            progress_record(&progress, msg);
        }
        std::future::pending::<()>().await
    };
    let started = match tokio::time::timeout_at(
        deadline,
        select(std::pin::pin!(calls), std::pin::pin!(record_forever)),
    )
    .await
    {
        Ok(Either::Left((started, _))) => started,
        Ok(Either::Right(((), _))) => return Err(Error::bug("the signal recorder ended")),
        Err(_) => {
            return Ok(items
                .iter()
                .map(|(p, _)| Err(timeout_error(p.as_str(), timeout)))
                .collect())
        }
    };

    // 2. The outcomes, from the signals (and a re-read of what is still going every
    //    SAFETY_POLL). Each signal costs a map update, not a scan of the batch.
    {
        let mut p = lock(&progress);
        let going: Vec<String> = started
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|ac| ac.as_str().to_string())
            .filter(|ac| !p.is_done(ac))
            .collect();
        p.pending.extend(going);
    }
    let waiting = async {
        let mut next_poll = tokio::time::Instant::now() + SAFETY_POLL;
        loop {
            if lock(&progress).pending.is_empty() {
                return Ok::<(), Error>(());
            }
            let next = signals.next();
            let tick = std::pin::pin!(tokio::time::sleep_until(next_poll));
            match select(next, tick).await {
                Either::Left((Some(msg), _)) => progress_record(&progress, msg),
                // The tick, or no more signals (the connection is closing): read the states.
                _ => {
                    let left: Vec<OwnedObjectPath> = lock(&progress)
                        .pending
                        .iter()
                        .filter_map(|ac| OwnedObjectPath::try_from(ac.as_str()).ok())
                        .collect();
                    reread(conn, &left, &progress).await?;
                    next_poll = tokio::time::Instant::now() + SAFETY_POLL;
                }
            }
        }
    };
    let timed_out = match tokio::time::timeout_at(deadline, waiting).await {
        Ok(r) => {
            r?;
            false
        }
        Err(_) => true,
    };

    let p = lock(&progress);
    Ok(started
        .into_iter()
        .zip(items)
        .map(|(started, (profile, device))| {
            let ac = started?;
            match p.ac.get(ac.as_str()) {
                Some(&(NM_ACTIVE_CONNECTION_STATE_ACTIVATED, _)) => Ok(ac),
                Some(&(_, reason)) if p.is_done(ac.as_str()) => Err(failure(
                    &ac,
                    profile,
                    reason,
                    p.device_failed.get(device.as_str()),
                )),
                _ if timed_out => Err(timeout_error(ac.as_str(), timeout)),
                _ => Err(Error::bug(format!(
                    "activation {} has no outcome",
                    ac.as_str()
                ))),
            }
        })
        .collect())
}

async fn start_one(
    nm: &NetworkManagerControlProxy<'_>,
    profile: &OwnedObjectPath,
    device: &OwnedObjectPath,
) -> Result<OwnedObjectPath> {
    let root = ObjectPath::from_static_str_unchecked("/");
    nm.activate_connection(profile, device, &root)
        .await
        .map_err(|e| nm_error(&format!("activating profile {}", profile.as_str()), e))
}

/// The two signal subscriptions of a batch, merged.
struct Watch {
    stream: stream::Select<MessageStream, MessageStream>,
}

impl Watch {
    async fn start(conn: &zbus::Connection) -> Result<Watch> {
        let rule = |interface: &'static str| -> zbus::Result<MatchRule<'static>> {
            Ok(MatchRule::builder()
                .msg_type(Type::Signal)
                .sender(NM_BUS_NAME)?
                .interface(interface)?
                .member("StateChanged")?
                .build())
        };
        let subscribe = |interface: &'static str| async move {
            // Room for a burst of signals while the recorder is busy: about a dozen per
            // activation come in a few milliseconds.
            MessageStream::for_match_rule(rule(interface)?, conn, Some(1024)).await
        };
        let (ac, dev) =
            futures_util::future::try_join(subscribe(AC_INTERFACE), subscribe(DEVICE_INTERFACE))
                .await
                .map_err(|e| nm_error("watching activations", e))?;
        Ok(Watch {
            stream: stream::select(ac, dev),
        })
    }
}

/// What the signals said so far.
#[derive(Default)]
struct Progress {
    /// Active connection path -> (last state, its reason).
    ac: HashMap<String, (u32, u32)>,
    /// Device path -> the reason of its last FAILED state.
    device_failed: HashMap<String, u32>,
    /// The batch's activations not done yet (filled once the calls have answered).
    pending: HashSet<String>,
}

impl Progress {
    fn set_ac(&mut self, ac: String, state: u32, reason: u32) {
        self.ac.insert(ac.clone(), (state, reason));
        if self.is_done(&ac) {
            self.pending.remove(&ac);
        }
    }

    fn is_done(&self, ac: &str) -> bool {
        self.ac.get(ac).is_some_and(|&(state, _)| {
            matches!(
                state,
                NM_ACTIVE_CONNECTION_STATE_ACTIVATED
                    | NM_ACTIVE_CONNECTION_STATE_DEACTIVATING
                    | NM_ACTIVE_CONNECTION_STATE_DEACTIVATED
            )
        })
    }
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn progress_record(progress: &Mutex<Progress>, msg: zbus::Result<Message>) {
    let Ok(msg) = msg else { return };
    let header = msg.header();
    let (Some(path), Some(interface)) = (header.path(), header.interface()) else {
        return;
    };
    let mut p = lock(progress);
    match interface.as_str() {
        AC_INTERFACE => {
            if let Ok((state, reason)) = msg.body().deserialize::<(u32, u32)>() {
                p.set_ac(path.to_string(), state, reason);
            }
        }
        DEVICE_INTERFACE => {
            if let Ok((new, _old, reason)) = msg.body().deserialize::<(u32, u32, u32)>() {
                if new == NM_DEVICE_STATE_FAILED {
                    p.device_failed.insert(path.to_string(), reason);
                }
            }
        }
        _ => {}
    }
}

/// Re-reads the state of activations still going (the safety net). One that NM removed
/// failed: NM removes an active connection once it is DEACTIVATED (a read then fails
/// with `org.freedesktop.DBus.Error.UnknownMethod: Object does not exist at path ...`).
async fn reread(
    conn: &zbus::Connection,
    acs: &[OwnedObjectPath],
    progress: &Mutex<Progress>,
) -> Result<()> {
    let reads: Vec<_> = acs.iter().map(|ac| read_state(conn, ac)).collect();
    let states = bounded(reads).await;
    let mut p = lock(progress);
    for (ac, state) in states {
        let reason = p.ac.get(&ac).map_or(0, |&(_, r)| r);
        match state? {
            Some(NM_ACTIVE_CONNECTION_STATE_UNKNOWN) => {}
            Some(s) => p.set_ac(ac, s, reason),
            None => p.set_ac(ac, NM_ACTIVE_CONNECTION_STATE_DEACTIVATED, reason),
        }
    }
    Ok(())
}

/// An active connection's state; `None` when NM removed it.
async fn read_state(
    conn: &zbus::Connection,
    ac: &OwnedObjectPath,
) -> (String, Result<Option<u32>>) {
    let state = async {
        let proxy = active_connection_proxy(conn, ac.as_ref())
            .await
            .map_err(|e| nm_error("NetworkManager active connection", e))?;
        match proxy.state().await {
            Ok(s) => Ok(Some(s)),
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(nm_error("reading an activation's state", e)),
        }
    };
    (ac.as_str().to_string(), state.await)
}

fn failure(
    ac: &OwnedObjectPath,
    profile: &OwnedObjectPath,
    reason: u32,
    device_failed: Option<&u32>,
) -> Error {
    let mut why = vec![format!(
        "{} (NMActiveConnectionStateReason {reason})",
        ac_reason(reason)
    )];
    if let Some(r) = device_failed {
        why.push(format!("the device failed: {}", device_reason(*r)));
    }
    Error::new(
        ErrorKind::NetworkManager,
        format!(
            "activation {} of profile {} failed: {}",
            ac.as_str(),
            profile.as_str(),
            why.join("; ")
        ),
    )
}

fn timeout_error(what: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "activation {what} was still going after {} s",
            timeout.as_secs_f32()
        ),
    )
}

/// `NMDeviceStateReason` in words, for the few reasons an activation of an ethernet
/// profile fails with.
fn device_reason(reason: u32) -> String {
    let text = match reason {
        4 => "the configuration failed",
        5 => "no IP configuration could be obtained",
        6 => "the IP configuration expired",
        15 => "DHCP could not start",
        16 => "DHCP error",
        17 => "DHCP failed",
        40 => "the carrier went away",
        _ => "see NetworkManager's log",
    };
    format!("{text} (NMDeviceStateReason {reason})")
}

/// `NMActiveConnectionStateReason` in words.
fn ac_reason(reason: u32) -> &'static str {
    match reason {
        2 => "deactivated by request",
        3 => "the device disconnected",
        4 => "the service stopped",
        5 => "the IP configuration was invalid",
        6 => "the connection timed out",
        9 => "secrets were missing",
        11 => "the profile was removed",
        12 => "a dependency failed",
        14 => "the device was removed",
        _ => "unknown reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nm::{checkpoint, deactivation, profile};

    fn assert_send<T: Send>(_: &T) {}

    /// The orchestrator may spawn any of these: they must stay `Send` (a `Cell` or an
    /// `Rc` held across an await would silently take that away).
    #[allow(dead_code)]
    fn futures_are_send(conn: &zbus::Connection, p: &ObjectPath<'_>, s: &Settings) {
        let t = Duration::ZERO;
        assert_send(&activate(conn, p, p, t));
        assert_send(&activate_many(conn, &[], t));
        assert_send(&reapply(conn, p, Some(s), 0));
        let log = Log::new();
        assert_send(&reapply_retrying(conn, p, 0, "eth1", &log));
        assert_send(&deactivation::deactivate(conn, p, t));
        assert_send(&deactivation::disconnect(conn, p, t));
        assert_send(&profile::lookup(conn, "eth1"));
        assert_send(&profile::list_profiles(conn));
        assert_send(&profile::add(conn, s, profile::Storage::Disk));
        assert_send(&profile::update(conn, p, s, profile::Storage::Disk, false));
        assert_send(&profile::delete(conn, p));
        assert_send(&checkpoint::create(conn, &[], 0));
        assert_send(&checkpoint::rollback(conn, p));
        assert_send(&checkpoint::list(conn));
    }

    fn mismatch() -> zbus::Error {
        let name = zbus::names::OwnedErrorName::try_from(
            "org.freedesktop.NetworkManager.Device.VersionIdMismatch",
        )
        .unwrap();
        let msg = zbus::message::Message::method_call("/", "x")
            .unwrap()
            .build(&())
            .unwrap();
        zbus::Error::MethodError(name, Some("mismatch".into()), msg)
    }

    /// A mismatch is tried again with the version read afresh, at most `tries` calls;
    /// other failures are not retried.
    #[test]
    fn version_mismatch_is_retried_with_a_fresh_version() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let run = |mismatches: usize, tries: usize| {
            let calls = std::cell::RefCell::new(Vec::new());
            let notes = std::cell::RefCell::new(Vec::new());
            let next = std::cell::Cell::new(7u64);
            let r = rt.block_on(retry_mismatch(
                5,
                tries,
                |v| {
                    calls.borrow_mut().push(v);
                    let n = calls.borrow().len();
                    async move {
                        Ok(if n <= mismatches {
                            Attempt::Mismatch(mismatch())
                        } else {
                            Attempt::Done(Reapplied::Done)
                        })
                    }
                },
                || {
                    let v = next.get();
                    next.set(v + 1);
                    async move { Ok(v) }
                },
                |t, v, _| notes.borrow_mut().push((t, v)),
            ));
            (r, calls.into_inner(), notes.into_inner())
        };
        let (r, calls, notes) = run(0, 3);
        assert!(matches!(r, Ok(Reapplied::Done)));
        assert_eq!((calls, notes), (vec![5], vec![]));
        let (r, calls, notes) = run(2, 3);
        assert!(matches!(r, Ok(Reapplied::Done)));
        assert_eq!(calls, vec![5, 7, 8]);
        assert_eq!(notes, vec![(2, 7), (3, 8)]);
        let (r, calls, _) = run(3, 3);
        assert!(matches!(r, Err(Failure::Mismatch(_))));
        assert_eq!(calls, vec![5, 7, 8]);

        let calls = std::cell::Cell::new(0);
        let r = rt.block_on(retry_mismatch(
            5,
            3,
            |_| {
                calls.set(calls.get() + 1);
                async { Err(Error::new(ErrorKind::NetworkManager, "refused")) }
            },
            || async { Ok(1) },
            |_, _, _| {},
        ));
        assert!(matches!(r, Err(Failure::Error(_))));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn outcomes_from_signals() {
        let mut p = Progress::default();
        p.pending
            .extend(["/a/1".to_string(), "/a/2".into(), "/a/3".into()]);
        p.set_ac("/a/1".into(), NM_ACTIVE_CONNECTION_STATE_ACTIVATING, 0);
        p.set_ac("/a/2".into(), NM_ACTIVE_CONNECTION_STATE_ACTIVATED, 0);
        p.set_ac("/a/3".into(), NM_ACTIVE_CONNECTION_STATE_DEACTIVATED, 3);
        assert!(!p.is_done("/a/1") && p.is_done("/a/2") && p.is_done("/a/3"));
        assert!(!p.is_done("/a/4"));
        assert_eq!(p.pending, HashSet::from(["/a/1".to_string()]));
        let e = failure(
            &OwnedObjectPath::try_from("/a/3").unwrap(),
            &OwnedObjectPath::try_from("/s/1").unwrap(),
            3,
            Some(&5),
        );
        assert_eq!(e.kind(), ErrorKind::NetworkManager);
        assert!(
            e.msg().contains("the device disconnected")
                && e.msg().contains("no IP configuration could be obtained"),
            "{e}"
        );
    }
}
