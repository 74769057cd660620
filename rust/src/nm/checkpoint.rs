//! NetworkManager checkpoints: a snapshot of some devices (their state, applied and
//! settings connections) that NM restores on `CheckpointRollback`, or by itself when the
//! rollback timeout passes, and forgets on `CheckpointDestroy` (the commit).
//!
//! An apply takes a checkpoint over the devices it changes only, so that applies on
//! disjoint devices run side by side. NM keeps at most one checkpoint per device: a
//! second `CheckpointCreate` over a held device is refused, which this file turns into
//! [`ErrorKind::Busy`] naming the checkpoint in the way.
//!
//! What a checkpoint restores (NM 1.42): for each of its devices, the profile that was
//! active on it (settings and activation). A profile that was *not* active on one of its
//! devices when it was made is not in it: changes to an inactive profile are not rolled
//! back. With `DELETE_NEW_CONNECTIONS` every profile added after it is deleted, whoever
//! added it and for whichever device: the apply deletes the profiles it added itself.

use futures_util::future::{join3, join_all};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::dbus::{checkpoint_proxy, device_proxy, nm_control_proxy, nm_error};
use crate::{Error, ErrorKind, Result};

/// `NMCheckpointCreateFlags`.
pub const NM_CHECKPOINT_CREATE_FLAG_DESTROY_ALL: u32 = 0x1;
pub const NM_CHECKPOINT_CREATE_FLAG_DELETE_NEW_CONNECTIONS: u32 = 0x2;
pub const NM_CHECKPOINT_CREATE_FLAG_DISCONNECT_NEW_DEVICES: u32 = 0x4;

/// The flags of an apply's checkpoint: none.
///
/// Not `DELETE_NEW_CONNECTIONS`: it deletes on rollback every profile added after the
/// checkpoint, also those that applies on other devices (running beside this one, by
/// design) added and committed meanwhile. The apply's undo record lists the profiles it
/// adds and deletes them on rollback (`apply/nm/mod.rs`).
///
/// Not `DISCONNECT_NEW_DEVICES`: NM 1.42 refuses it on a checkpoint over a list of
/// devices (`org.freedesktop.NetworkManager.InvalidArguments`: "the
/// DISCONNECT_NEW_DEVICES flag can only be used with an empty device list"), and an
/// apply's checkpoint always lists its devices. Never `DESTROY_ALL`: that would destroy
/// the checkpoints of applies running beside this one.
pub const APPLY_CHECKPOINT_FLAGS: u32 = 0;

/// `NMRollbackResult`.
pub const NM_ROLLBACK_RESULT_OK: u32 = 0;
pub const NM_ROLLBACK_RESULT_ERR_NO_DEVICE: u32 = 1;
pub const NM_ROLLBACK_RESULT_ERR_DEVICE_UNMANAGED: u32 = 2;
pub const NM_ROLLBACK_RESULT_ERR_FAILED: u32 = 3;

/// A checkpoint NM holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub path: OwnedObjectPath,
    pub devices: Vec<OwnedObjectPath>,
    /// When it was made, in milliseconds of `CLOCK_BOOTTIME`.
    pub created_ms: i64,
    /// Seconds after `created_ms` at which NM rolls back by itself; 0: never.
    pub rollback_timeout: u32,
}

impl CheckpointInfo {
    /// Seconds until NM rolls it back by itself, if it will.
    pub fn seconds_left(&self) -> Option<u64> {
        if self.rollback_timeout == 0 {
            return None;
        }
        let now_ms = boottime_ms()?;
        let end_ms = self.created_ms + i64::from(self.rollback_timeout) * 1000;
        Some(u64::try_from((end_ms - now_ms).max(0) / 1000).unwrap_or(0))
    }
}

/// The outcome of a rollback for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRollback {
    /// The device's D-Bus path.
    pub device: String,
    /// `NMRollbackResult`.
    pub result: u32,
}

impl DeviceRollback {
    pub fn is_ok(&self) -> bool {
        self.result == NM_ROLLBACK_RESULT_OK
    }
}

/// Creates a checkpoint over `devices` (never empty: NM takes an empty list as "every
/// device", a lock on the whole host). `rollback_timeout` in seconds, 0 for none.
///
/// A device already held by another checkpoint: [`ErrorKind::Busy`], naming that
/// checkpoint. (NM 1.42 answers `org.freedesktop.NetworkManager.InvalidArguments`,
/// "device 'eth1' is already included in checkpoint /org/freedesktop/NetworkManager/
/// Checkpoint/1": the same name as for bad arguments, so the text tells them apart.)
pub async fn create(
    conn: &zbus::Connection,
    devices: &[OwnedObjectPath],
    rollback_timeout: u32,
) -> Result<OwnedObjectPath> {
    if devices.is_empty() {
        return Err(Error::bug(
            "a checkpoint over no device was asked for; NetworkManager would take every device",
        ));
    }
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let paths: Vec<ObjectPath<'_>> = devices.iter().map(|d| d.as_ref()).collect();
    match nm
        .checkpoint_create(&paths, rollback_timeout, APPLY_CHECKPOINT_FLAGS)
        .await
    {
        Ok(path) => Ok(path),
        Err(e) if is_overlap(&e) => Err(busy(conn, devices, &e).await),
        Err(e) => Err(nm_error("creating a checkpoint", e)),
    }
}

fn is_overlap(e: &zbus::Error) -> bool {
    match e {
        // The first text is NM 1.42's; the second that of older releases.
        zbus::Error::MethodError(name, Some(msg), _) => {
            name.ends_with(".InvalidArguments")
                && (msg.contains("already included in checkpoint")
                    || msg.contains("checkpoint for device"))
        }
        _ => false,
    }
}

/// The Busy error for a refused create: which of our devices is held, and by what.
async fn busy(conn: &zbus::Connection, devices: &[OwnedObjectPath], e: &zbus::Error) -> Error {
    let held: Vec<(OwnedObjectPath, CheckpointInfo)> = match list(conn).await {
        Ok(all) => devices
            .iter()
            .filter_map(|d| {
                all.iter()
                    .find(|c| c.devices.contains(d))
                    .map(|c| (d.clone(), c.clone()))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    if held.is_empty() {
        // Gone between the refusal and the listing: say what NM said.
        return Error::new(
            ErrorKind::Busy,
            format!("another checkpoint holds a device of this apply: {e}"),
        );
    }
    let names = join_all(held.iter().map(|(d, _)| interface_name(conn, d))).await;
    let parts: Vec<String> = held
        .iter()
        .zip(names)
        .map(|((_, c), name)| {
            let left = match c.seconds_left() {
                Some(s) => format!(", which NetworkManager rolls back by itself in about {s} s"),
                None => String::new(),
            };
            format!("{name} is held by checkpoint {}{left}", c.path.as_str())
        })
        .collect();
    Error::new(
        ErrorKind::Busy,
        format!(
            "{}; commit or roll back that checkpoint first",
            parts.join("; ")
        ),
    )
}

/// The interface name of a device path, or the path when NM cannot tell.
async fn interface_name(conn: &zbus::Connection, device: &OwnedObjectPath) -> String {
    match device_proxy(conn, device.clone()).await {
        Ok(d) => d
            .interface()
            .await
            .unwrap_or_else(|_| device.as_str().to_string()),
        Err(_) => device.as_str().to_string(),
    }
}

/// Destroys (commits) a checkpoint.
pub async fn destroy(conn: &zbus::Connection, checkpoint: &ObjectPath<'_>) -> Result<()> {
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    nm.checkpoint_destroy(checkpoint)
        .await
        .map_err(|e| checkpoint_error("committing", checkpoint, e))
}

/// Rolls a checkpoint back; NM destroys it after. The per-device results come back as
/// they are: see [`failures`] to turn the failed ones into an error.
pub async fn rollback(
    conn: &zbus::Connection,
    checkpoint: &ObjectPath<'_>,
) -> Result<Vec<DeviceRollback>> {
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let results = nm
        .checkpoint_rollback(checkpoint)
        .await
        .map_err(|e| checkpoint_error("rolling back", checkpoint, e))?;
    let mut out: Vec<DeviceRollback> = results
        .into_iter()
        .map(|(device, result)| DeviceRollback { device, result })
        .collect();
    out.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(out)
}

/// `Err` naming every device whose rollback failed, `Ok` when none did.
pub async fn failures(conn: &zbus::Connection, results: &[DeviceRollback]) -> Result<()> {
    let failed: Vec<&DeviceRollback> = results.iter().filter(|r| !r.is_ok()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let names = join_all(failed.iter().map(|r| async {
        match OwnedObjectPath::try_from(r.device.as_str()) {
            Ok(path) => interface_name(conn, &path).await,
            Err(_) => r.device.clone(),
        }
    }))
    .await;
    let parts: Vec<String> = failed
        .iter()
        .zip(names)
        .map(|(r, name)| {
            let why = match r.result {
                NM_ROLLBACK_RESULT_ERR_NO_DEVICE => "the device no longer exists",
                NM_ROLLBACK_RESULT_ERR_DEVICE_UNMANAGED => "the device is not managed",
                NM_ROLLBACK_RESULT_ERR_FAILED => "NetworkManager could not restore it",
                _ => "unknown result",
            };
            format!("{name}: {why} (NMRollbackResult {})", r.result)
        })
        .collect();
    Err(Error::new(
        ErrorKind::NetworkManager,
        format!("the rollback failed for {}", parts.join(", ")),
    ))
}

/// Makes NM roll the checkpoint back `seconds` from now (0: never by itself).
pub async fn adjust_rollback_timeout(
    conn: &zbus::Connection,
    checkpoint: &ObjectPath<'_>,
    seconds: u32,
) -> Result<()> {
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    nm.checkpoint_adjust_rollback_timeout(checkpoint, seconds)
        .await
        .map_err(|e| checkpoint_error("changing the rollback timeout of", checkpoint, e))
}

/// When NM made checkpoint `path` (`Created`, milliseconds of `CLOCK_BOOTTIME`).
pub async fn created(conn: &zbus::Connection, path: &OwnedObjectPath) -> Result<i64> {
    checkpoint_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager checkpoint", e))?
        .created()
        .await
        .map_err(|e| nm_error("reading a checkpoint", e))
}

/// Every checkpoint NM holds, with its devices and timing.
pub async fn list(conn: &zbus::Connection) -> Result<Vec<CheckpointInfo>> {
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let paths = nm
        .checkpoints()
        .await
        .map_err(|e| nm_error("listing checkpoints", e))?;
    let infos = join_all(paths.into_iter().map(|p| info(conn, p))).await;
    Ok(infos
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// One checkpoint; `None` when it went away while being read.
async fn info(conn: &zbus::Connection, path: OwnedObjectPath) -> Result<Option<CheckpointInfo>> {
    let cp = checkpoint_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager checkpoint", e))?;
    let (devices, created, timeout) =
        join3(cp.devices(), cp.created(), cp.rollback_timeout()).await;
    let (devices, created_ms, rollback_timeout) = match (devices, created, timeout) {
        (Ok(d), Ok(c), Ok(t)) => (d, c, t),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            if super::profile::is_gone(&e) {
                return Ok(None);
            }
            return Err(nm_error("reading a checkpoint", e));
        }
    };
    Ok(Some(CheckpointInfo {
        path,
        devices,
        created_ms,
        rollback_timeout,
    }))
}

/// A refused call on a checkpoint path. NM 1.42 answers a path it does not hold (already
/// committed, rolled back, or expired) with
/// `org.freedesktop.NetworkManager.InvalidArguments` ("checkpoint ... does not exist"):
/// that is the caller's argument, so [`ErrorKind::InvalidArgument`].
fn checkpoint_error(what: &str, checkpoint: &ObjectPath<'_>, e: zbus::Error) -> Error {
    let missing = matches!(&e, zbus::Error::MethodError(name, Some(msg), _)
        if name.ends_with(".InvalidArguments") && msg.contains("does not exist"));
    if missing {
        return Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{what} checkpoint {}: NetworkManager has no such checkpoint (already \
                 committed, rolled back, or expired): {e}",
                checkpoint.as_str()
            ),
        );
    }
    nm_error(&format!("{what} checkpoint {}", checkpoint.as_str()), e)
}

/// `CLOCK_BOOTTIME` in milliseconds, from `/proc/uptime` (the same clock: it counts
/// suspend), the clock of a checkpoint's `Created`.
fn boottime_ms() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some((secs * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_recognised() {
        let name = zbus::names::OwnedErrorName::try_from(
            "org.freedesktop.NetworkManager.InvalidArguments",
        )
        .unwrap();
        let msg = zbus::message::Message::method_call("/", "x")
            .unwrap()
            .build(&())
            .unwrap();
        let e = zbus::Error::MethodError(
            name.clone(),
            Some(
                "device 'eth1' is already included in checkpoint \
                 /org/freedesktop/NetworkManager/Checkpoint/1"
                    .into(),
            ),
            msg.clone(),
        );
        assert!(is_overlap(&e));
        let other = zbus::Error::MethodError(name, Some("something else".into()), msg);
        assert!(!is_overlap(&other));
    }

    #[test]
    fn seconds_left() {
        let now = boottime_ms().unwrap();
        let c = CheckpointInfo {
            path: OwnedObjectPath::try_from("/c/1").unwrap(),
            devices: vec![],
            created_ms: now - 10_000,
            rollback_timeout: 60,
        };
        let left = c.seconds_left().unwrap();
        assert!((48..=50).contains(&left), "{left}");
        assert_eq!(
            CheckpointInfo {
                rollback_timeout: 0,
                ..c
            }
            .seconds_left(),
            None
        );
    }
}
