//! Reading what NetworkManager holds: its version, its devices and the profile applied to
//! each active one.
//!
//! Few round trips: one call lists the devices, then the devices are asked concurrently
//! (the calls are pipelined on one connection), never one property of one device after
//! another. At most [`DEVICES_IN_FLIGHT`] devices are asked at once: the bus refuses a
//! connection more than `max_replies_per_connection` calls awaiting their replies, with
//! `LimitsExceeded` (128 in the default that `system.conf` documents; the dbus-daemon
//! 1.14.10 of Debian 12 enforces 1024), and asking all 1000 devices of a large host at
//! once (3000 calls) hit it.
//!
//! Where the time goes (1000 active devices, NM 1.42.4, 2 cores; `bench/show.py`): NM
//! answers one call at a time and spends about 0.14 ms of CPU on a property `Get` and
//! 0.35 ms on a `GetAppliedConnection`, dbus-daemon about 0.08 ms relaying each; this
//! side about 0.07 ms. So NM is the floor, and the fewer calls the better: two per
//! device (see `read_device`) cost NM about 0.5 s, where three cost it 0.62 s. More
//! calls in flight do not help. `GetAll` per device (0.7 s of NM CPU with the applied
//! connections) and `GetManagedObjects` (0.45 s of NM CPU for that one call, which does
//! not hold the applied connections) cost NM more.

use futures_util::stream::{self, StreamExt};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::dbus::{device_proxy, nm_error, nm_proxy, NetworkManagerProxy, Settings};
use crate::{Error, ErrorKind, Result};

/// The oldest NetworkManager with `connection.mptcp-flags`.
pub const NM_MIN_VERSION: (u32, u32) = (1, 40);

/// Devices asked at once. Each has one call in flight at a time, so at most 100 calls
/// await replies: within the system bus's `max_replies_per_connection` (see the module's
/// documentation).
pub const DEVICES_IN_FLIGHT: usize = 100;

/// `NMDeviceState` values this library looks at.
pub const NM_DEVICE_STATE_UNMANAGED: u32 = 10;
pub const NM_DEVICE_STATE_UNAVAILABLE: u32 = 20;
pub const NM_DEVICE_STATE_PREPARE: u32 = 40;
pub const NM_DEVICE_STATE_ACTIVATED: u32 = 100;
pub const NM_DEVICE_STATE_DEACTIVATING: u32 = 110;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmState {
    pub version: String,
    pub devices: Vec<NmDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmDevice {
    pub path: OwnedObjectPath,
    pub interface: String,
    /// `NMDeviceState`; [`NM_DEVICE_STATE_ACTIVATED`] stands for any state with an
    /// applied profile (activating, active, deactivating), which is not read.
    pub state: u32,
    /// The profile applied to the device while it activates or is active.
    pub applied: Option<AppliedProfile>,
}

/// The settings of an applied profile that this library reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppliedProfile {
    pub id: String,
    pub uuid: String,
    /// `connection.mptcp-flags` (0: NM's default).
    pub mptcp_flags: u32,
    pub ipv4_method: Option<String>,
    pub ipv6_method: Option<String>,
}

impl AppliedProfile {
    fn from_settings(s: &Settings) -> Self {
        let get = |setting: &str, key: &str| s.get(setting).and_then(|m| m.get(key));
        let string = |v: Option<&OwnedValue>| v.and_then(|v| String::try_from(v.clone()).ok());
        AppliedProfile {
            id: string(get("connection", "id")).unwrap_or_default(),
            uuid: string(get("connection", "uuid")).unwrap_or_default(),
            mptcp_flags: get("connection", "mptcp-flags")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            ipv4_method: string(get("ipv4", "method")),
            ipv6_method: string(get("ipv6", "method")),
        }
    }
}

/// Whether a system bus can be there at all: `DBUS_SYSTEM_BUS_ADDRESS` is set, or the
/// standard socket exists. Where neither holds, kernel-only work attempts no D-Bus
/// connection.
pub fn system_bus_present() -> bool {
    if let Ok(addr) = std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        return match addr.strip_prefix("unix:path=") {
            Some(rest) => std::path::Path::new(rest.split(',').next().unwrap_or(rest)).exists(),
            None => !addr.is_empty(),
        };
    }
    [
        "/run/dbus/system_bus_socket",
        "/var/run/dbus/system_bus_socket",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

/// Whether the NetworkManager on this bus runs in the calling thread's network namespace:
/// a process in another namespace (`ip netns exec X ...` on a host whose NetworkManager
/// runs in the root namespace) reaches the same bus, but NM's devices are not its links.
/// `None` when it cannot be told (NM not on the bus, its /proc entry not readable).
pub async fn nm_in_this_namespace(conn: &zbus::Connection) -> Option<bool> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    let name = zbus::names::BusName::try_from(super::dbus::NM_BUS_NAME).ok()?;
    let pid = dbus.get_connection_unix_process_id(name).await.ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let ours = std::fs::read_link("/proc/thread-self/ns/net").ok()?;
    Some(theirs == ours)
}

/// Refuses a NetworkManager that runs in another network namespace than the caller's
/// (see [`nm_in_this_namespace`]): what it would write or report is not this namespace's.
pub async fn ensure_same_namespace(conn: &zbus::Connection) -> Result<()> {
    if nm_in_this_namespace(conn).await == Some(false) {
        return Err(Error::new(
            ErrorKind::NetworkManager,
            "the NetworkManager on this system bus runs in another network namespace: its \
             devices are not this namespace's links; run in NetworkManager's namespace, or \
             use kernel-only mode (--kernel, MPTCPSTATE_FLAG_KERNEL_ONLY, kernel_only=True)",
        ));
    }
    Ok(())
}

/// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).
pub async fn connect() -> Result<zbus::Connection> {
    zbus::Connection::system().await.map_err(|e| {
        Error::new(
            ErrorKind::NetworkManager,
            format!(
                "NetworkManager is not running: the system bus cannot be reached ({e}); \
                 on hosts without NetworkManager, use kernel-only mode"
            ),
        )
    })
}

/// Checks a version string such as `1.42.4` against [`NM_MIN_VERSION`].
pub fn check_version(version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if have < NM_MIN_VERSION {
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "NetworkManager {version} has no MPTCP support; {}.{} or newer is needed \
                 (or use kernel-only mode)",
                NM_MIN_VERSION.0, NM_MIN_VERSION.1
            ),
        ));
    }
    Ok(())
}

/// NM's version, checked against [`NM_MIN_VERSION`].
pub async fn checked_version(nm: &NetworkManagerProxy<'_>) -> Result<String> {
    let version = nm
        .version()
        .await
        .map_err(|e| nm_error("reading NetworkManager's version", e))?;
    check_version(&version)?;
    Ok(version)
}

/// Reads NM's version and devices; `only` limits the devices to those interface names.
pub async fn read_nm(conn: &zbus::Connection, only: Option<&[String]>) -> Result<NmState> {
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let version = checked_version(&nm).await?;

    let paths: Vec<OwnedObjectPath> = match only {
        None => nm
            .get_all_devices()
            .await
            .map_err(|e| nm_error("listing NetworkManager devices", e))?,
        Some(names) => {
            // A name NM does not know is not an error: the kernel may still have it.
            let found: Vec<_> = stream::iter(names.iter().map(|n| nm.get_device_by_ip_iface(n)))
                .buffered(DEVICES_IN_FLIGHT)
                .collect()
                .await;
            found.into_iter().filter_map(|r| r.ok()).collect()
        }
    };

    let devices: Vec<_> = stream::iter(paths.into_iter().map(|p| read_device(conn, p)))
        .buffer_unordered(DEVICES_IN_FLIGHT)
        .collect()
        .await;
    let mut devices: Vec<NmDevice> = devices
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    devices.sort_by(|a, b| a.interface.cmp(&b.interface));
    Ok(NmState { version, devices })
}

/// One device; `None` when it vanished while being read.
async fn read_device(conn: &zbus::Connection, path: OwnedObjectPath) -> Result<Option<NmDevice>> {
    Ok(read_device_applied(conn, path).await?.map(|d| NmDevice {
        path: d.path,
        interface: d.interface,
        state: d.state,
        applied: d.applied.map(|(s, _)| AppliedProfile::from_settings(&s)),
    }))
}

/// A device with its whole applied connection and its version id (what `Reapply`
/// checks).
#[derive(Debug, Clone)]
pub struct DeviceApplied {
    pub path: OwnedObjectPath,
    pub interface: String,
    /// `NMDeviceState`, read when nothing is applied; [`NM_DEVICE_STATE_ACTIVATED`]
    /// otherwise (something applied: the device is managed and activating or active).
    pub state: u32,
    pub applied: Option<(Settings, u64)>,
}

/// One device with its applied connection; `None` when it vanished while being read.
///
/// One call for most active devices, two for the others: the applied connection first
/// (NM answers `org.freedesktop.NetworkManager.Device.NotActive` for a device that has
/// none, which is all that says), then the interface name only when the applied profile
/// is not bound to one, and for a device with nothing applied its state beside its name
/// (`show` reports such a device `down`, or `ignore` when NM does not manage it). NetworkManager activates a profile with
/// `connection.interface-name` only on the device of that name (`Device.Interface`), and
/// that key cannot be reapplied, so the profile's name is the device's. NM answers one
/// call at a time: at 1000 active devices, the calls it is spared are most of a show's
/// time.
pub async fn read_device_applied(
    conn: &zbus::Connection,
    path: OwnedObjectPath,
) -> Result<Option<DeviceApplied>> {
    let dev = device_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let applied = match dev.get_applied_connection(0).await {
        Ok(applied) => Some(applied),
        Err(e) if vanished(&e) => return Ok(None),
        // NotActive, or any other refusal: no applied profile to report.
        Err(_) => None,
    };
    let bound = applied.as_ref().and_then(|(s, _)| bound_interface(s));
    let (interface, state) = match (bound, applied.is_some()) {
        (Some(name), _) => (name, NM_DEVICE_STATE_ACTIVATED),
        (None, true) => match dev.interface().await {
            Ok(v) => (v, NM_DEVICE_STATE_ACTIVATED),
            Err(e) if vanished(&e) => return Ok(None),
            Err(e) => return Err(nm_error("reading a NetworkManager device", e)),
        },
        (None, false) => match futures_util::future::try_join(dev.interface(), dev.state()).await {
            Ok(v) => v,
            Err(e) if vanished(&e) => return Ok(None),
            Err(e) => return Err(nm_error("reading a NetworkManager device", e)),
        },
    };
    Ok(Some(DeviceApplied {
        path,
        interface,
        state,
        applied,
    }))
}

/// The interface a profile is bound to (`connection.interface-name`), if any.
fn bound_interface(settings: &Settings) -> Option<String> {
    settings
        .get("connection")
        .and_then(|c| c.get("interface-name"))
        .and_then(|v| String::try_from(v.clone()).ok())
        .filter(|name| !name.is_empty())
}

/// The device is gone (removed while being read).
fn vanished(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _) if name.contains("UnknownObject"))
}

/// Which of `names` NetworkManager manages (its device is in a state above
/// `unmanaged`). One connection, one lookup and one state read per name.
pub async fn managed(names: &[String]) -> Result<Vec<String>> {
    let conn = connect().await?;
    // A NetworkManager of another namespace manages none of this one's links.
    if nm_in_this_namespace(&conn).await == Some(false) {
        return Ok(Vec::new());
    }
    let nm = nm_proxy(&conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let mut out = Vec::new();
    for name in names {
        let Ok(path) = nm.get_device_by_ip_iface(name).await else {
            continue;
        };
        let state = device_proxy(&conn, path)
            .await
            .map_err(|e| nm_error("NetworkManager device", e))?
            .state()
            .await
            .map_err(|e| nm_error(&format!("reading the state of {name}"), e))?;
        if state > NM_DEVICE_STATE_UNMANAGED {
            out.push(name.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn versions() {
        assert!(check_version("1.42.4").is_ok());
        assert!(check_version("1.40.0").is_ok());
        assert!(check_version("2.0").is_ok());
        let e = check_version("1.38.6").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.msg().contains("1.40 or newer"), "{e}");
    }

    #[test]
    fn bound_interfaces() {
        let value = |s: &str| OwnedValue::try_from(zbus::zvariant::Value::from(s)).unwrap();
        let settings = |name: Option<&str>| -> Settings {
            let mut connection = HashMap::from([("id".to_string(), value("p"))]);
            if let Some(n) = name {
                connection.insert("interface-name".to_string(), value(n));
            }
            HashMap::from([("connection".to_string(), connection)])
        };
        assert_eq!(
            bound_interface(&settings(Some("eth1"))).as_deref(),
            Some("eth1")
        );
        assert_eq!(bound_interface(&settings(Some(""))), None);
        assert_eq!(bound_interface(&settings(None)), None);
        assert_eq!(bound_interface(&Settings::new()), None);
    }
}
