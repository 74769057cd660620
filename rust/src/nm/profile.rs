//! NetworkManager profiles (settings connections) of an interface: finding them, adding,
//! updating and deleting them over D-Bus.
//!
//! Every function is a plain `async fn` on a shared `&zbus::Connection` (and `Send`): the
//! apply orchestrator runs the work of independent interfaces concurrently, and the calls
//! of all of them are pipelined on the one connection. Concurrently but *bounded*: run
//! per-interface work through [`bounded`](super::dbus::bounded), not an unbounded
//! `join_all`; 1000 interfaces at once put thousands of calls in flight, past what the
//! bus lets one connection wait for (`LimitsExceeded`, see
//! [`MAX_IN_FLIGHT`](super::dbus::MAX_IN_FLIGHT)).
//!
//! Bringing a profile live (activation, reapply) is `activation.rs`.

use futures_util::future::join;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::dbus::{
    bounded, device_proxy, error_name, nm_error, nm_proxy, nm_settings_proxy,
    settings_connection_proxy, Settings, VarDict,
};
use super::keyfile::profile_uuid;
use super::settings::get_str;
use crate::Result;

/// `NMSettingsAddConnection2Flags` / `NMSettingsUpdate2Flags` (the bits are shared).
pub const NM_SETTINGS_FLAG_TO_DISK: u32 = 0x1;
pub const NM_SETTINGS_FLAG_IN_MEMORY: u32 = 0x2;
pub const NM_SETTINGS_FLAG_BLOCK_AUTOCONNECT: u32 = 0x20;

/// `NMDeviceState` bounds between which a device has an applied connection.
const NM_DEVICE_STATE_PREPARE: u32 = 40;
const NM_DEVICE_STATE_DEACTIVATING: u32 = 110;

/// Where a profile is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// A keyfile, so the profile survives a restart of NM.
    #[default]
    Disk,
    /// In NM's memory only. On an `Update2` of a profile that has a keyfile, the keyfile
    /// stays as it was (NM marks the profile `Unsaved`) and comes back after a restart.
    Memory,
}

impl Storage {
    fn flag(self) -> u32 {
        match self {
            Storage::Disk => NM_SETTINGS_FLAG_TO_DISK,
            Storage::Memory => NM_SETTINGS_FLAG_IN_MEMORY,
        }
    }
}

/// A profile: its D-Bus path and its settings (from `GetSettings`).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub path: OwnedObjectPath,
    pub settings: Settings,
}

impl Profile {
    pub fn uuid(&self) -> Option<String> {
        get_str(&self.settings, "connection", "uuid")
    }

    pub fn id(&self) -> Option<String> {
        get_str(&self.settings, "connection", "id")
    }

    /// `connection.interface-name`: the interface the profile is bound to, if any.
    pub fn interface_name(&self) -> Option<String> {
        get_str(&self.settings, "connection", "interface-name")
    }
}

/// An NM device, as far as the write layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    pub path: OwnedObjectPath,
    pub interface: String,
    /// `NMDeviceState` when it was read.
    pub state: u32,
}

/// The connection NM applied to an active device, with the version id `Reapply` checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub settings: Settings,
    pub version_id: u64,
}

impl Applied {
    pub fn uuid(&self) -> Option<String> {
        get_str(&self.settings, "connection", "uuid")
    }
}

/// What NM holds for one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceProfile {
    /// `None`: NM has no device of that name.
    pub device: Option<DeviceRef>,
    /// The applied connection, while the device activates or is active.
    pub applied: Option<Applied>,
    /// The profile to change: the one applied to the device, else the one this library
    /// made (by its UUID, derived from the interface name). `None`: neither exists; a
    /// profile made by someone else may still name the interface (see [`list_profiles`]
    /// and [`profiles_for`]).
    pub profile: Option<Profile>,
}

/// Finds the device, the applied connection and the profile of `ifname`.
///
/// Few round trips, none of them a listing: the device (by name) and this library's own
/// profile (by UUID) are asked for at once; then, if the device is active with another
/// profile, that profile. Listing every profile is left to [`list_profiles`], whose cost
/// grows with all NM holds.
pub async fn lookup(conn: &zbus::Connection, ifname: &str) -> Result<InterfaceProfile> {
    let ours = profile_uuid(ifname).to_string();
    let (device, own) = join(
        device_and_applied(conn, ifname),
        profile_by_uuid(conn, &ours),
    )
    .await;
    let (device, applied) = device?;
    let own = own?;
    let profile = match applied.as_ref().and_then(Applied::uuid) {
        Some(uuid) if uuid != ours => profile_by_uuid(conn, &uuid).await?,
        _ => own,
    };
    Ok(InterfaceProfile {
        device,
        applied,
        profile,
    })
}

/// The device named `ifname` and, when it has one, its applied connection.
async fn device_and_applied(
    conn: &zbus::Connection,
    ifname: &str,
) -> Result<(Option<DeviceRef>, Option<Applied>)> {
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let path = match nm.get_device_by_ip_iface(ifname).await {
        Ok(p) => p,
        // NM 1.42: `org.freedesktop.NetworkManager.UnknownDevice` ("No device found for
        // the requested iface.").
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".UnknownDevice")) => {
            return Ok((None, None))
        }
        Err(e) => return Err(nm_error(&format!("finding the device {ifname}"), e)),
    };
    let dev = device_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    // Both at once: GetAppliedConnection fails on a device that is not active
    // (`...Device.NotActive`), which only says "no applied connection".
    let (state, applied) = join(dev.state(), dev.get_applied_connection(0)).await;
    let state = state.map_err(|e| nm_error(&format!("reading the state of {ifname}"), e))?;
    let applied = match applied {
        Ok((settings, version_id))
            if (NM_DEVICE_STATE_PREPARE..=NM_DEVICE_STATE_DEACTIVATING).contains(&state) =>
        {
            Some(Applied {
                settings,
                version_id,
            })
        }
        _ => None,
    };
    let device = DeviceRef {
        path,
        interface: ifname.to_string(),
        state,
    };
    Ok((Some(device), applied))
}

/// The applied connection of an active device, `None` when it has none.
pub async fn applied(conn: &zbus::Connection, device: &ObjectPath<'_>) -> Result<Option<Applied>> {
    let dev = device_proxy(conn, device.to_owned().into())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    match dev.get_applied_connection(0).await {
        Ok((settings, version_id)) => Ok(Some(Applied {
            settings,
            version_id,
        })),
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".NotActive")) => Ok(None),
        Err(e) => Err(nm_error("reading the applied connection", e)),
    }
}

/// The profile with that UUID, `None` when NM has none.
pub async fn profile_by_uuid(conn: &zbus::Connection, uuid: &str) -> Result<Option<Profile>> {
    match profile_path_by_uuid(conn, uuid).await? {
        Some(path) => get_profile(conn, path).await,
        None => Ok(None),
    }
}

/// The D-Bus path of the profile of `uuid`, `None` when NM has none.
pub async fn profile_path_by_uuid(
    conn: &zbus::Connection,
    uuid: &str,
) -> Result<Option<OwnedObjectPath>> {
    let settings = nm_settings_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager settings", e))?;
    match settings.get_connection_by_uuid(uuid).await {
        Ok(path) => Ok(Some(path)),
        // NM 1.42: `org.freedesktop.NetworkManager.Settings.InvalidConnection` ("No
        // connection with the UUID was found.").
        Err(e) if error_name(&e).is_some_and(|n| n.ends_with(".InvalidConnection")) => Ok(None),
        Err(e) => Err(nm_error(&format!("finding profile {uuid}"), e)),
    }
}

/// The profile at `path` with its settings; `None` when it was deleted meanwhile.
pub async fn get_profile(
    conn: &zbus::Connection,
    path: OwnedObjectPath,
) -> Result<Option<Profile>> {
    let proxy = settings_connection_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager profile", e))?;
    match proxy.get_settings().await {
        Ok(settings) => Ok(Some(Profile { path, settings })),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(nm_error(&format!("reading profile {}", path.as_str()), e)),
    }
}

/// Every profile NM holds, with its settings: one `ListConnections`, then the settings
/// of all of them, [`MAX_IN_FLIGHT`](super::dbus::MAX_IN_FLIGHT) calls at a time, in NM's
/// order.
pub async fn list_profiles(conn: &zbus::Connection) -> Result<Vec<Profile>> {
    let settings = nm_settings_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager settings", e))?;
    let paths = settings
        .list_connections()
        .await
        .map_err(|e| nm_error("listing NetworkManager profiles", e))?;
    let found = bounded(paths.into_iter().map(|p| get_profile(conn, p))).await;
    Ok(found
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// The profiles of a listing bound to `ifname` by `connection.interface-name`.
pub fn profiles_for<'a>(profiles: &'a [Profile], ifname: &str) -> Vec<&'a Profile> {
    profiles
        .iter()
        .filter(|p| p.interface_name().as_deref() == Some(ifname))
        .collect()
}

/// `settings` as they are written: without `connection.timestamp`. `GetSettings` puts
/// NetworkManager's own record of the last activation there (NM keeps it apart from the
/// profile, in its timestamps file, so that it never rewrites `/etc` for it); written back,
/// it would land in the keyfile, and a rollback that writes back the settings read before
/// could not give the keyfile back as it was.
fn to_write(settings: &Settings) -> std::borrow::Cow<'_, Settings> {
    let has = settings
        .get("connection")
        .is_some_and(|c| c.contains_key("timestamp"));
    if !has {
        return std::borrow::Cow::Borrowed(settings);
    }
    let mut s = settings.clone();
    if let Some(c) = s.get_mut("connection") {
        c.remove("timestamp");
    }
    std::borrow::Cow::Owned(s)
}

/// Adds a profile; returns its path.
///
/// With `BLOCK_AUTOCONNECT`: otherwise NM activates a new profile for a disconnected
/// device by itself at once, racing the activation the caller makes next (NM then tears
/// down its own half-done activation). The block ends when the profile is activated by
/// request.
pub async fn add(
    conn: &zbus::Connection,
    settings: &Settings,
    storage: Storage,
) -> Result<OwnedObjectPath> {
    let proxy = nm_settings_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager settings", e))?;
    let flags = storage.flag() | NM_SETTINGS_FLAG_BLOCK_AUTOCONNECT;
    let (path, _) = proxy
        .add_connection2(&to_write(settings), flags, &VarDict::new())
        .await
        .map_err(|e| nm_error(&format!("adding profile {}", describe(settings)), e))?;
    Ok(path)
}

/// Replaces the settings of the profile at `path` (`settings` must be the whole profile:
/// see `settings::desired_settings`).
///
/// `block_autoconnect`: pass `true` only when the caller activates the profile next. The
/// block is lifted by an activation, not by a reapply: set on a profile that stays active
/// and is only reapplied, it would keep NM from bringing the profile back by itself
/// after the link is lost and comes back.
pub async fn update(
    conn: &zbus::Connection,
    path: &ObjectPath<'_>,
    settings: &Settings,
    storage: Storage,
    block_autoconnect: bool,
) -> Result<()> {
    let proxy = settings_connection_proxy(conn, path.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager profile", e))?;
    let mut flags = storage.flag();
    if block_autoconnect {
        flags |= NM_SETTINGS_FLAG_BLOCK_AUTOCONNECT;
    }
    proxy
        .update2(&to_write(settings), flags, &VarDict::new())
        .await
        .map_err(|e| nm_error(&format!("updating profile {}", describe(settings)), e))?;
    Ok(())
}

/// Deletes the profile at `path` (NM deactivates it first if it is active). A profile
/// that is already gone is not an error.
pub async fn delete(conn: &zbus::Connection, path: &ObjectPath<'_>) -> Result<()> {
    let proxy = settings_connection_proxy(conn, path.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager profile", e))?;
    match proxy.delete().await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(nm_error(&format!("deleting profile {}", path.as_str()), e)),
    }
}

/// The keyfile of a profile, empty when it lives in memory only; and whether memory and
/// disk differ (`Unsaved`).
pub async fn storage_of(conn: &zbus::Connection, path: &ObjectPath<'_>) -> Result<(String, bool)> {
    let proxy = settings_connection_proxy(conn, path.to_owned())
        .await
        .map_err(|e| nm_error("NetworkManager profile", e))?;
    let (file, unsaved) = join(proxy.filename(), proxy.unsaved()).await;
    let what = format!("reading the storage of profile {}", path.as_str());
    Ok((
        file.map_err(|e| nm_error(&what, e))?,
        unsaved.map_err(|e| nm_error(&what, e))?,
    ))
}

/// "`id` (`uuid`)" for messages.
fn describe(settings: &Settings) -> String {
    let id = get_str(settings, "connection", "id").unwrap_or_default();
    match get_str(settings, "connection", "uuid") {
        Some(uuid) => format!("{id} ({uuid})"),
        None => id,
    }
}

/// A call on an object NM removed meanwhile (a profile deleted by someone else).
pub(crate) fn is_gone(e: &zbus::Error) -> bool {
    error_name(e).is_some_and(|n| n.ends_with(".UnknownObject") || n.ends_with(".UnknownMethod"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use zbus::zvariant::OwnedValue;

    #[test]
    fn the_activation_timestamp_is_not_written() {
        let mut conn = HashMap::new();
        conn.insert(
            "id".to_string(),
            OwnedValue::from(zbus::zvariant::Str::from("eth1")),
        );
        conn.insert("timestamp".to_string(), OwnedValue::from(1796114449u64));
        let mut s: Settings = HashMap::new();
        s.insert("connection".to_string(), conn);
        let w = to_write(&s);
        assert!(!w["connection"].contains_key("timestamp"));
        assert!(w["connection"].contains_key("id"));
        // Nothing to drop: the settings as given.
        s.get_mut("connection").unwrap().remove("timestamp");
        assert!(matches!(to_write(&s), std::borrow::Cow::Borrowed(_)));
    }
}
