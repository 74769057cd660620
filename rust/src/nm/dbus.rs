//! The parts of NetworkManager's D-Bus API this library uses, as zbus proxies.
//!
//! Proxies are built with property caching off: a cached proxy fetches every property
//! and subscribes to change signals when it is built, which costs two round trips per
//! device for values read once.

use std::collections::HashMap;

use zbus::proxy::CacheProperties;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

use crate::{Error, ErrorKind};

pub const NM_BUS_NAME: &str = "org.freedesktop.NetworkManager";

/// `a{sa{sv}}`: a connection's settings, by setting name and key.
pub type Settings = HashMap<String, HashMap<String, OwnedValue>>;

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager",
    gen_blocking = false
)]
pub trait NetworkManager {
    fn get_all_devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<OwnedObjectPath>;

    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager",
    gen_blocking = false
)]
pub trait Device {
    /// The settings NM applied to the device and their version id.
    fn get_applied_connection(&self, flags: u32) -> zbus::Result<(Settings, u64)>;

    #[zbus(property)]
    fn interface(&self) -> zbus::Result<String>;

    /// `NMDeviceState`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<u32>;

    /// The profiles NM could activate on the device now (type, `interface-name` and the
    /// device's other matches checked). NM fills it only for a device in a state from
    /// `disconnected` on: one without carrier (`unavailable`) or unmanaged lists none.
    #[zbus(property)]
    fn available_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

pub async fn nm_proxy(conn: &zbus::Connection) -> zbus::Result<NetworkManagerProxy<'static>> {
    NetworkManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

pub async fn device_proxy(
    conn: &zbus::Connection,
    path: OwnedObjectPath,
) -> zbus::Result<DeviceProxy<'static>> {
    DeviceProxy::builder(conn)
        .path(path)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// How an error about a NetworkManager that is not on the bus starts.
pub const NOT_RUNNING: &str = "NetworkManager is not running on the system bus";

/// Maps a D-Bus failure to the library's error, keeping NM's error name.
pub fn nm_error(what: &str, e: zbus::Error) -> Error {
    let name = match &e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_string()),
        zbus::Error::FDO(fdo) => Some(format!("{fdo:?}")),
        _ => None,
    };
    let msg = e.to_string();
    let not_running = name.as_deref().is_some_and(|n| {
        n.contains("ServiceUnknown") || n.contains("NameHasNoOwner") || n.contains("NoReply")
    }) || matches!(e, zbus::Error::InputOutput(_) | zbus::Error::Address(_));
    if not_running {
        return Error::new(
            ErrorKind::NetworkManager,
            format!(
                "{NOT_RUNNING} ({msg}); \
                 on hosts without NetworkManager, use kernel-only mode"
            ),
        );
    }
    let denied = name.as_deref().is_some_and(|n| {
        n.contains("PermissionDenied") || n.contains("AccessDenied") || n.contains("AuthFailed")
    });
    if denied {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        return Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what}: NetworkManager refused it to uid {uid} ({msg}): it lets only root \
                 change its configuration, or users that polkit authorises for its \
                 org.freedesktop.NetworkManager.* actions (never with auth-polkit=root-only)"
            ),
        );
    }
    Error::new(ErrorKind::NetworkManager, format!("{what}: {msg}"))
}

// ---------------------------------------------------------------------------------------
// Writing: profiles, activation, reapply, checkpoints.
//
// Separate proxy traits for the same D-Bus interfaces as the readers above: a zbus proxy
// is only a (service, path, interface) triple, so two traits on one interface cost
// nothing, and the readers stay as small as `show` needs.
// ---------------------------------------------------------------------------------------

/// `a{sv}`: the extra arguments and results of `AddConnection2`, `Update2`, ...
pub type VarDict = HashMap<String, OwnedValue>;

/// The calls of the manager object that change things.
#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager",
    gen_blocking = false
)]
pub trait NetworkManagerControl {
    /// Activates profile `connection` on `device` ("/" lets NM choose); returns the new
    /// active connection's path as soon as the activation has *started*.
    fn activate_connection(
        &self,
        connection: &ObjectPath<'_>,
        device: &ObjectPath<'_>,
        specific_object: &ObjectPath<'_>,
    ) -> zbus::Result<OwnedObjectPath>;

    fn deactivate_connection(&self, active_connection: &ObjectPath<'_>) -> zbus::Result<()>;

    /// `devices` empty means every device (a global lock): never what an apply wants.
    fn checkpoint_create(
        &self,
        devices: &[ObjectPath<'_>],
        rollback_timeout: u32,
        flags: u32,
    ) -> zbus::Result<OwnedObjectPath>;

    fn checkpoint_destroy(&self, checkpoint: &ObjectPath<'_>) -> zbus::Result<()>;

    /// Per device path, an `NMRollbackResult` (0 ok, 1 no device, 2 unmanaged, 3 failed).
    /// The paths come as strings (`a{su}`, not `a{ou}`: so NM 1.42 sends them).
    fn checkpoint_rollback(
        &self,
        checkpoint: &ObjectPath<'_>,
    ) -> zbus::Result<HashMap<String, u32>>;

    /// Sets the rollback to happen `add_timeout` seconds from *now* (0: never). Despite
    /// the name nothing is added to the time left.
    fn checkpoint_adjust_rollback_timeout(
        &self,
        checkpoint: &ObjectPath<'_>,
        add_timeout: u32,
    ) -> zbus::Result<()>;

    #[zbus(property)]
    fn checkpoints(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager/Settings",
    gen_blocking = false
)]
pub trait NmSettings {
    fn list_connections(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    /// Fails with `org.freedesktop.NetworkManager.Settings.InvalidConnection` when no
    /// profile has that UUID.
    fn get_connection_by_uuid(&self, uuid: &str) -> zbus::Result<OwnedObjectPath>;

    fn add_connection2(
        &self,
        settings: &Settings,
        flags: u32,
        args: &VarDict,
    ) -> zbus::Result<(OwnedObjectPath, VarDict)>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Settings.Connection",
    default_service = "org.freedesktop.NetworkManager",
    gen_blocking = false
)]
pub trait SettingsConnection {
    /// The profile's settings, without secrets.
    fn get_settings(&self) -> zbus::Result<Settings>;

    /// Replaces the whole profile with `settings` (keys left out take their defaults:
    /// this is not a merge).
    fn update2(&self, settings: &Settings, flags: u32, args: &VarDict) -> zbus::Result<VarDict>;

    fn delete(&self) -> zbus::Result<()>;

    /// The keyfile that holds the profile; empty for a profile kept in memory only.
    #[zbus(property)]
    fn filename(&self) -> zbus::Result<String>;

    /// True while the profile in memory differs from the one on disk.
    #[zbus(property)]
    fn unsaved(&self) -> zbus::Result<bool>;

    /// `NMSettingsConnectionFlags` (`NM_SETTINGS_CONNECTION_FLAG_EXTERNAL`: a profile NM
    /// generated for a device configured outside NetworkManager).
    #[zbus(property)]
    fn flags(&self) -> zbus::Result<u32>;
}

/// `NM_SETTINGS_CONNECTION_FLAG_EXTERNAL`.
pub const NM_SETTINGS_CONNECTION_FLAG_EXTERNAL: u32 = 0x8;

/// In a module of its own: zbus names a signal's generated types (`StateChanged`,
/// `StateChangedStream`, ...) after the D-Bus signal, and the device and the active
/// connection both have a `StateChanged`.
pub mod device_control {
    use super::*;

    #[zbus::proxy(
        interface = "org.freedesktop.NetworkManager.Device",
        default_service = "org.freedesktop.NetworkManager",
        gen_blocking = false
    )]
    pub trait DeviceControl {
        /// Applies `connection` (empty: the device's profile as it is now) to the active
        /// device without deactivating it. `version_id` non-zero must equal the applied
        /// connection's (from `GetAppliedConnection`), else NM refuses with
        /// `...Device.VersionIdMismatch`: someone else changed the device meanwhile.
        fn reapply(&self, connection: &Settings, version_id: u64, flags: u32) -> zbus::Result<()>;

        /// Deactivates the device and blocks autoconnect on it until the next activation.
        fn disconnect(&self) -> zbus::Result<()>;

        /// "/" when the device has none.
        #[zbus(property)]
        fn active_connection(&self) -> zbus::Result<OwnedObjectPath>;

        /// (`NMDeviceState`, `NMDeviceStateReason`).
        #[zbus(property)]
        fn state_reason(&self) -> zbus::Result<(u32, u32)>;

        #[zbus(signal)]
        fn state_changed(&self, new_state: u32, old_state: u32, reason: u32) -> zbus::Result<()>;
    }
}
pub use device_control::DeviceControlProxy;

/// A module of its own for the same reason as [`device_control`].
pub mod active_connection {
    use super::*;

    #[zbus::proxy(
        interface = "org.freedesktop.NetworkManager.Connection.Active",
        default_service = "org.freedesktop.NetworkManager",
        gen_blocking = false
    )]
    pub trait ActiveConnection {
        /// `NMActiveConnectionState`: 0 unknown, 1 activating, 2 activated, 3 deactivating,
        /// 4 deactivated.
        #[zbus(property)]
        fn state(&self) -> zbus::Result<u32>;

        /// The profile (settings connection) it activates.
        #[zbus(property)]
        fn connection(&self) -> zbus::Result<OwnedObjectPath>;

        #[zbus(property)]
        fn devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

        /// (`NMActiveConnectionState`, `NMActiveConnectionStateReason`). Named apart from
        /// the `State` property, whose change stream zbus calls `receive_state_changed`.
        #[zbus(signal, name = "StateChanged")]
        fn activation_state_changed(&self, state: u32, reason: u32) -> zbus::Result<()>;
    }
}
pub use active_connection::ActiveConnectionProxy;

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Checkpoint",
    default_service = "org.freedesktop.NetworkManager",
    gen_blocking = false
)]
pub trait Checkpoint {
    #[zbus(property)]
    fn devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    /// When it was made, in milliseconds of `CLOCK_BOOTTIME`.
    #[zbus(property)]
    fn created(&self) -> zbus::Result<i64>;

    /// Seconds after `created` at which NM rolls back by itself; 0: never.
    #[zbus(property)]
    fn rollback_timeout(&self) -> zbus::Result<u32>;
}

/// Builds an uncached proxy of type `P` on `path` (see the module's note on caching).
macro_rules! uncached_proxy {
    ($name:ident, $proxy:ident) => {
        pub async fn $name<'p, P>(conn: &zbus::Connection, path: P) -> zbus::Result<$proxy<'p>>
        where
            P: TryInto<ObjectPath<'p>>,
            P::Error: Into<zbus::Error>,
        {
            $proxy::builder(conn)
                .path(path)?
                .cache_properties(CacheProperties::No)
                .build()
                .await
        }
    };
}

uncached_proxy!(settings_connection_proxy, SettingsConnectionProxy);
uncached_proxy!(device_control_proxy, DeviceControlProxy);
uncached_proxy!(active_connection_proxy, ActiveConnectionProxy);
uncached_proxy!(checkpoint_proxy, CheckpointProxy);

pub async fn nm_control_proxy(
    conn: &zbus::Connection,
) -> zbus::Result<NetworkManagerControlProxy<'static>> {
    NetworkManagerControlProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

pub async fn nm_settings_proxy(conn: &zbus::Connection) -> zbus::Result<NmSettingsProxy<'static>> {
    NmSettingsProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// The D-Bus error name of a failed call (`org.freedesktop.NetworkManager...`), if it is
/// one: callers that must tell one refusal from another (a missing profile, a checkpoint
/// in the way) match on it rather than on the message text.
///
/// zbus turns the bus's own errors into [`zbus::fdo::Error`] (a call on an object NM just
/// removed comes back as `org.freedesktop.DBus.Error.UnknownMethod: Object does not exist
/// at path ...`), the others stay `MethodError`; both are covered.
pub fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str().to_string()),
        zbus::Error::FDO(fdo) => Some(zbus::DBusError::name(fdo.as_ref()).to_string()),
        _ => None,
    }
}

/// How many calls (or small groups of calls: one interface's lookup is up to three at
/// once) a batch keeps in flight on one connection.
///
/// dbus-daemon caps the calls a connection has waiting for replies
/// (`max_replies_per_connection`; Debian 12's dbus-daemon 1.14.10 enforces 1024) and
/// fails those beyond with `org.freedesktop.DBus.Error.LimitsExceeded: The maximum number
/// of pending replies per connection has been reached`: 5000 calls at once on the test bus
/// got 432 refusals, and 1000 interfaces' lookups and `AddConnection2` joined at once
/// failed the same way. NM answers one call at a time anyway: 64 keeps it busy, far from
/// the cap.
pub const MAX_IN_FLIGHT: usize = 64;

/// Runs `futures` at most [`MAX_IN_FLIGHT`] at a time; the outputs in the input's order.
/// The way to run per-interface work (lookups, writes, reapplies) concurrently.
pub async fn bounded<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    use futures_util::stream::{self, StreamExt};
    stream::iter(futures)
        .buffered(MAX_IN_FLIGHT)
        .collect()
        .await
}
