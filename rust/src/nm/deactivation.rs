//! Taking a profile down on a device: `DeactivateConnection` and `Device.Disconnect`,
//! each waiting until NM reports the device disconnected.
//!
//! Waiting: the device's `StateChanged` signal is subscribed to *before* the call, then
//! the `State` property is re-read on every signal and every [`POLL`] (a safety net), until
//! the device is DISCONNECTED or lower, or the caller's timeout passes.
//!
//! Each call holds one match rule on the bus (the device's path) while it waits:
//! dbus-daemon 1.14 allows a connection 2048 (`max_match_rules_per_connection`), so a
//! caller taking down hundreds of devices at once runs them through
//! [`bounded`](super::dbus::bounded), which also keeps the calls within the bus's cap.

use std::future::Future;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use zbus::zvariant::ObjectPath;

use super::dbus::{device_control_proxy, device_proxy, error_name, nm_control_proxy, nm_error};
use super::profile::is_gone;
use crate::{Error, ErrorKind, Result};

/// `NMDeviceState` DISCONNECTED: what a wait waits for (or anything lower).
pub const NM_DEVICE_STATE_DISCONNECTED: u32 = 30;

/// How often a wait re-reads the state when no signal came.
pub const POLL: Duration = Duration::from_millis(250);

/// Deactivates whatever is active on `device` (`DeactivateConnection` of its active
/// connection) and waits until the device is disconnected. The profile stays; NM does
/// not autoconnect it again on this device until it is activated by request. A device
/// with nothing active is not an error.
pub async fn deactivate(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    timeout: Duration,
) -> Result<()> {
    let dev = device_control_proxy(conn, device.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let active = dev
        .active_connection()
        .await
        .map_err(|e| nm_error("reading the device's active connection", e))?;
    if active.as_str() == "/" {
        return Ok(());
    }
    let signals = dev
        .receive_state_changed()
        .await
        .map_err(|e| nm_error("watching a device", e))?;
    let nm = nm_control_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    match nm.deactivate_connection(&active).await {
        Ok(()) => {}
        // It ended on its own between the two calls:
        // `org.freedesktop.NetworkManager.ConnectionNotActive`.
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".ConnectionNotActive")) => {}
        Err(e) => return Err(nm_error("deactivating", e)),
    }
    wait_disconnected(conn, device, signals, timeout).await
}

/// `Device.Disconnect`: deactivates the device and keeps NM from autoconnecting anything
/// on it until the next activation by request; waits until it is disconnected.
pub async fn disconnect(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    timeout: Duration,
) -> Result<()> {
    let dev = device_control_proxy(conn, device.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let signals = dev
        .receive_state_changed()
        .await
        .map_err(|e| nm_error("watching a device", e))?;
    match dev.disconnect().await {
        Ok(()) => {}
        // Nothing to disconnect: `org.freedesktop.NetworkManager.Device.NotActive`.
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".NotActive")) => return Ok(()),
        Err(e) => return Err(nm_error("disconnecting", e)),
    }
    wait_disconnected(conn, device, signals, timeout).await
}

async fn wait_disconnected<S: Stream + Unpin>(
    conn: &zbus::Connection,
    device: &ObjectPath<'_>,
    signals: S,
    timeout: Duration,
) -> Result<()> {
    let dev = device_proxy(conn, device.to_owned().into())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let done = wait_until(signals, timeout, || async {
        match dev.state().await {
            Ok(s) if s <= NM_DEVICE_STATE_DISCONNECTED => Ok(Some(())),
            Ok(_) => Ok(None),
            Err(e) if is_gone(&e) => Ok(Some(())),
            Err(e) => Err(nm_error("reading a device's state", e)),
        }
    })
    .await?;
    done.ok_or_else(|| {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{} was still not disconnected after {} s",
                device.as_str(),
                timeout.as_secs_f32()
            ),
        )
    })
}

/// Calls `check` until it returns `Some`, again after every item of `changes` and every
/// [`POLL`]; `Ok(None)` when `timeout` passes first.
async fn wait_until<S, F, Fut, T>(
    mut changes: S,
    timeout: Duration,
    mut check: F,
) -> Result<Option<T>>
where
    S: Stream + Unpin,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let work = async {
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            let next = changes.next();
            let tick = std::pin::pin!(tokio::time::sleep(POLL));
            if let Either::Left((None, _)) = select(next, tick).await {
                // The signal stream ended (the connection is closing): poll only.
                tokio::time::sleep(POLL).await;
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map(Some),
        Err(_) => Ok(None),
    }
}
