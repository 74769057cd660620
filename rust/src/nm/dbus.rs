//! The parts of NetworkManager's D-Bus API this library uses, as zbus proxies.
//!
//! Proxies are built with property caching off: a cached proxy fetches every property
//! and subscribes to change signals when it is built, which costs two round trips per
//! device for values read once.

use std::collections::HashMap;

use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

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
                "NetworkManager is not running on the system bus ({msg}); \
                 on hosts without NetworkManager, use kernel-only mode"
            ),
        );
    }
    let denied = name.as_deref().is_some_and(|n| {
        n.contains("PermissionDenied") || n.contains("AccessDenied") || n.contains("AuthFailed")
    });
    let kind = if denied {
        ErrorKind::PermissionDenied
    } else {
        ErrorKind::NetworkManager
    };
    Error::new(kind, format!("{what}: {msg}"))
}
