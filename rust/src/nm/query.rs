//! Reading what NetworkManager holds: its version, its devices and the profile applied to
//! each active one.
//!
//! Few round trips: one call lists the devices, then every device is asked at once (the
//! calls are pipelined on one connection), never one property of one device after
//! another.

use futures_util::future::{join_all, try_join};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::dbus::{device_proxy, nm_error, nm_proxy, Settings};
use crate::{Error, ErrorKind, Result};

/// The oldest NetworkManager with `connection.mptcp-flags`.
pub const NM_MIN_VERSION: (u32, u32) = (1, 40);

/// `NMDeviceState` values this library looks at.
pub const NM_DEVICE_STATE_UNMANAGED: u32 = 10;
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
    /// `NMDeviceState`.
    pub state: u32,
    /// The profile applied to the device while it activates or is active.
    pub applied: Option<AppliedProfile>,
}

impl NmDevice {
    pub fn is_managed(&self) -> bool {
        self.state > NM_DEVICE_STATE_UNMANAGED
    }
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

/// Reads NM's version and devices; `only` limits the devices to those interface names.
pub async fn read_nm(conn: &zbus::Connection, only: Option<&[String]>) -> Result<NmState> {
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let version = nm
        .version()
        .await
        .map_err(|e| nm_error("reading NetworkManager's version", e))?;
    check_version(&version)?;

    let paths: Vec<OwnedObjectPath> = match only {
        None => nm
            .get_all_devices()
            .await
            .map_err(|e| nm_error("listing NetworkManager devices", e))?,
        Some(names) => {
            // A name NM does not know is not an error: the kernel may still have it.
            let found = join_all(names.iter().map(|n| nm.get_device_by_ip_iface(n))).await;
            found.into_iter().filter_map(|r| r.ok()).collect()
        }
    };

    let devices = join_all(paths.into_iter().map(|p| read_device(conn, p))).await;
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
    let dev = device_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let (interface, state) = match try_join(dev.interface(), dev.state()).await {
        Ok(v) => v,
        Err(zbus::Error::MethodError(name, _, _)) if name.contains("UnknownObject") => {
            return Ok(None)
        }
        Err(e) => return Err(nm_error("reading a NetworkManager device", e)),
    };
    let applied = if (NM_DEVICE_STATE_PREPARE..=NM_DEVICE_STATE_DEACTIVATING).contains(&state) {
        // The device may deactivate between the two calls: then it has no applied
        // profile, which is what "None" says.
        dev.get_applied_connection(0)
            .await
            .ok()
            .map(|(settings, _)| AppliedProfile::from_settings(&settings))
    } else {
        None
    };
    Ok(Some(NmDevice {
        path,
        interface,
        state,
        applied,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("1.42.4").is_ok());
        assert!(check_version("1.40.0").is_ok());
        assert!(check_version("2.0").is_ok());
        let e = check_version("1.38.6").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.msg().contains("1.40 or newer"), "{e}");
    }
}
