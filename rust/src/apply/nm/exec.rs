//! NetworkManager's side of the writes: reading the named interfaces' devices and
//! applied connections, and executing a plan (profiles written, deactivations and
//! deletions, reapplies, activations), interfaces concurrently within each phase.

use std::collections::{HashMap, HashSet};

use zbus::zvariant::OwnedObjectPath;

use super::plan::{Device, Live, NmIface, Step, Write};
use crate::apply::pipeline::Reporter;
use crate::apply::ApplyOptions;
use crate::log::Level;
use crate::nm::activation::{self, Reapplied};
use crate::nm::dbus::{bounded, device_proxy, error_name, nm_error, nm_proxy, NetworkManagerProxy};
use crate::nm::deactivation::{self, NM_DEVICE_STATE_DISCONNECTED};
use crate::nm::keyfile::profile_uuid;
use crate::nm::profile::{self, is_gone, Applied, Profile, Storage};
use crate::nm::query::{
    read_device_applied, DEVICES_IN_FLIGHT, NM_DEVICE_STATE_ACTIVATED, NM_DEVICE_STATE_UNMANAGED,
};
use crate::state::{InterfaceState, NetworkState};
use crate::{log_at, Log, Result};

/// How long activations and deactivations may take (NM's own DHCP timeout is 45 s).
pub const ACTIVATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

pub fn storage(opts: &ApplyOptions) -> Storage {
    if opts.memory_only {
        Storage::Memory
    } else {
        Storage::Disk
    }
}

/// Up to this many names, each is looked up by name (`GetDeviceByIpIface`, one call each)
/// and nothing host-wide is listed; above, the devices are listed first (one call) and,
/// when the state names most of them, every device is read without a lookup. The
/// profiles follow the same bound (see [`read_profiles`]).
pub const LOOKUP_MAX: usize = 64;

/// What NM holds for the named interfaces: each one's device and applied connection, and
/// the profiles the plan may change or delete. Where every profile is listed
/// ([`lists_every_profile`]), the listing goes beside the devices' read; else each name's
/// own profile (by the UUID derived from it, the one applied on a host this library
/// configured) is asked beside its device, and [`read_profiles`] asks the rest. Two
/// rounds of calls for a name this library configured: NetworkManager answers a round
/// in few turns of its main loop, each of which costs it more the more it holds (about
/// 0.7 ms at 1000 devices: it polls three descriptors a device, those of its address
/// conflict detection).
pub async fn read_nm(
    conn: &zbus::Connection,
    state: &NetworkState,
    names: &[String],
    log: &Log,
) -> Result<(HashMap<String, NmIface>, Vec<Profile>)> {
    if lists_every_profile(state) {
        return futures_util::future::try_join(
            read_ifaces(conn, names),
            profile::list_profiles(conn),
        )
        .await;
    }
    let (ifaces, own) = read_named_and_own(conn, names).await?;
    let profiles = read_profiles(conn, names, &ifaces, own, log).await?;
    Ok((ifaces, profiles))
}

/// Each name's device and applied connection and its own profile, in two rounds: the
/// device (by name) and the own profile's path (by UUID) of every name, then, once all of
/// them are in, every device's applied connection and every own profile's settings. A
/// round sent at once reaches NM together. Where the four calls of a name went one after
/// the other, NM's main thread turned 9.4 times per apply of 8 at N = 1000, now 5.8
/// (`perf stat` of its polls over 40 applies). The own profiles in the order of `names`.
/// Two calls in flight per name, so half of [`DEVICES_IN_FLIGHT`] names at a time.
async fn read_named_and_own(
    conn: &zbus::Connection,
    names: &[String],
) -> Result<(HashMap<String, NmIface>, Vec<Option<Profile>>)> {
    use futures_util::future::{join, OptionFuture};
    use futures_util::stream::{self, StreamExt};
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let uuids: Vec<String> = names.iter().map(|n| profile_uuid(n).to_string()).collect();
    let lookups: Vec<_> = names
        .iter()
        .zip(&uuids)
        .map(|(n, uuid)| {
            join(
                find_device(&nm, n),
                profile::profile_path_by_uuid(conn, uuid),
            )
        })
        .collect();
    let found: Vec<_> = stream::iter(lookups)
        .buffered(DEVICES_IN_FLIGHT / 2)
        .collect()
        .await;
    let mut paths = Vec::with_capacity(found.len());
    for (device, own) in found {
        paths.push((device?, own?));
    }
    let reads: Vec<_> = paths
        .into_iter()
        .zip(names)
        .map(|((device, own), name)| {
            join(
                OptionFuture::from(device.map(|p| read_device_at(conn, p, name))),
                OptionFuture::from(own.map(|p| profile::get_profile(conn, p))),
            )
        })
        .collect();
    let read: Vec<_> = stream::iter(reads)
        .buffered(DEVICES_IN_FLIGHT / 2)
        .collect()
        .await;
    let mut ifaces = HashMap::new();
    let mut own = Vec::with_capacity(names.len());
    for (name, (iface, profile)) in names.iter().zip(read) {
        if let Some(iface) = iface.transpose()?.flatten() {
            ifaces.insert(name.clone(), iface);
        }
        own.push(profile.transpose()?.flatten());
    }
    Ok((ifaces, own))
}

/// NM's device and applied connection for each name: the devices concurrently,
/// [`DEVICES_IN_FLIGHT`] at a time. A state naming a few interfaces costs the same on a
/// host with a thousand: each name is looked up (one call), its applied connection read
/// (one call), and a device with nothing applied costs one more call, for its state.
/// Only when the state names more than [`LOOKUP_MAX`] interfaces are the devices listed,
/// and when it names most of them every device is read (one call for an active device,
/// see [`read_device_applied`](crate::nm::query::read_device_applied)), which spares the
/// lookups.
///
/// (The futures are made first and then buffered: a closure inside the stream
/// combinator that borrows would make the whole future lose `Send`, a known limit of
/// rustc's lifetime inference.)
pub async fn read_ifaces(
    conn: &zbus::Connection,
    names: &[String],
) -> Result<HashMap<String, NmIface>> {
    use futures_util::stream::{self, StreamExt};
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let all = if names.len() > LOOKUP_MAX {
        let all = nm
            .get_all_devices()
            .await
            .map_err(|e| nm_error("listing NetworkManager devices", e))?;
        (names.len() * 2 >= all.len()).then_some(all)
    } else {
        None
    };
    let mut out = HashMap::new();
    let Some(all) = all else {
        let lookups: Vec<_> = names.iter().map(|n| read_named(conn, &nm, n)).collect();
        let found: Vec<Result<Option<NmIface>>> = stream::iter(lookups)
            .buffered(DEVICES_IN_FLIGHT)
            .collect()
            .await;
        for (name, r) in names.iter().zip(found) {
            if let Some(iface) = r? {
                out.insert(name.clone(), iface);
            }
        }
        return Ok(out);
    };
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let reads: Vec<_> = all
        .into_iter()
        .map(|p| read_iface(conn, p, &wanted))
        .collect();
    let found: Vec<Result<Option<(String, NmIface)>>> = stream::iter(reads)
        .buffer_unordered(DEVICES_IN_FLIGHT)
        .collect()
        .await;
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

/// The device of one name and its applied connection; `None` when NM has no device of
/// that name (or it vanished while being read).
async fn read_named(
    conn: &zbus::Connection,
    nm: &NetworkManagerProxy<'_>,
    name: &str,
) -> Result<Option<NmIface>> {
    match find_device(nm, name).await? {
        Some(path) => read_device_at(conn, path, name).await,
        None => Ok(None),
    }
}

/// The device at `path`, found by its name (so its `Interface` is not read), and its
/// applied connection; `None` when it vanished while being read.
async fn read_device_at(
    conn: &zbus::Connection,
    path: OwnedObjectPath,
    name: &str,
) -> Result<Option<NmIface>> {
    let dev = device_proxy(conn, path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?;
    let applied = match dev.get_applied_connection(0).await {
        Ok((settings, version_id)) => Some(Applied {
            settings,
            version_id,
        }),
        Err(e) if is_gone(&e) => return Ok(None),
        // NotActive, or any other refusal: nothing applied.
        Err(_) => None,
    };
    let state = match &applied {
        // Something is applied: the device is managed and activating or active.
        Some(_) => NM_DEVICE_STATE_ACTIVATED,
        None => match dev.state().await {
            Ok(s) => s,
            Err(e) if is_gone(&e) => return Ok(None),
            Err(e) => return Err(nm_error(&format!("reading the state of {name}"), e)),
        },
    };
    Ok(Some(NmIface {
        device: Some(Device { path, state }),
        external: false,
        applied,
    }))
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
    let iface = NmIface {
        device: Some(Device {
            path: d.path,
            state: d.state,
        }),
        external: false,
        applied: d.applied.map(|(settings, version_id)| Applied {
            settings,
            version_id,
        }),
    };
    Ok(Some((d.interface, iface)))
}

/// Whether the profiles an apply of `state` needs are read by listing every profile NM
/// holds (`ListConnections`, then `GetSettings` of each), rather than per interface:
///
/// - `state: absent` deletes every profile bound to the name, also those of a name NM
///   has no device for and those no device could activate: only the listing finds them;
/// - a state naming more than [`LOOKUP_MAX`] interfaces: the listing costs one call per
///   profile, the lookups two per interface (`GetConnectionByUuid`, `GetSettings`), so
///   where the state names many, listing is the cheaper read of the same profiles.
pub fn lists_every_profile(state: &NetworkState) -> bool {
    state.interfaces.len() > LOOKUP_MAX
        || state
            .interfaces
            .iter()
            .any(|i| i.state == Some(InterfaceState::Absent))
}

/// The profiles the plan needs for the named interfaces, read per interface (see
/// [`lists_every_profile`] for when everything is listed instead). The plan changes, per
/// interface (`plan::profile_of`), the profile applied to its device, else the one this
/// library made (its UUID derives from the name), else an ethernet profile made by
/// someone else and bound to the name (`connection.interface-name`). So, per interface:
///
/// 1. the profile of the applied connection's UUID (the device's `GetAppliedConnection`,
///    read with the device) when it is not ours: NM's `GetConnectionByUuid`, then its
///    settings;
/// 2. ours, by the UUID derived from the name (`own`, in the order of `names`: read
///    beside the device, see [`read_nm`]; it is the applied one on a host this library
///    configured);
/// 3. only where neither exists, the profiles bound to the name: those NM lists in the
///    device's `AvailableConnections` (every profile NM could activate on it, which holds
///    those bound to its name; a profile bound to the name that NM could not activate
///    there, a MAC address that differs say, is not one to bring up), their settings
///    read and kept when bound to the name. NM fills that list only for a device from
///    `disconnected` on; for a device without carrier every profile is listed once for
///    all such names (`fallback`). An unmanaged device, or a name NM has no device for,
///    needs none (the plan writes nothing there).
pub async fn read_profiles(
    conn: &zbus::Connection,
    names: &[String],
    ifaces: &HashMap<String, NmIface>,
    own: Vec<Option<Profile>>,
    log: &Log,
) -> Result<Vec<Profile>> {
    let reads: Vec<_> = names
        .iter()
        .zip(own)
        .map(|(n, own)| profiles_of(conn, n, ifaces.get(n), own))
        .collect();
    let mut out: Vec<Profile> = Vec::new();
    let mut seen: HashSet<OwnedObjectPath> = HashSet::new();
    let mut fallback: Vec<&str> = Vec::new();
    for (name, r) in names.iter().zip(bounded(reads).await) {
        match r? {
            Some(found) => {
                for p in found {
                    if seen.insert(p.path.clone()) {
                        out.push(p);
                    }
                }
            }
            None => fallback.push(name),
        }
    }
    if !fallback.is_empty() {
        log_at!(
            log,
            Level::Debug,
            "no profile of {} found by UUID and NM lists no profile it could activate there \
             (no carrier): listing every profile",
            fallback.join(", ")
        );
        let wanted: HashSet<&str> = fallback.into_iter().collect();
        for p in profile::list_profiles(conn).await? {
            let bound = p
                .interface_name()
                .is_some_and(|n| wanted.contains(n.as_str()));
            if bound && seen.insert(p.path.clone()) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The profiles of one interface, as [`read_profiles`] says (`own`: this library's, read
/// already); `None` when neither the applied nor our profile exists and NM cannot list
/// the available profiles of the (managed) device.
async fn profiles_of(
    conn: &zbus::Connection,
    name: &str,
    nm: Option<&NmIface>,
    own: Option<Profile>,
) -> Result<Option<Vec<Profile>>> {
    let ours = profile_uuid(name).to_string();
    let applied = match nm
        .and_then(|n| n.applied.as_ref())
        .and_then(Applied::uuid)
        .filter(|u| *u != ours)
    {
        Some(uuid) => profile::profile_by_uuid(conn, &uuid).await?,
        None => None,
    };
    let found: Vec<Profile> = applied.into_iter().chain(own).collect();
    if !found.is_empty() {
        return Ok(Some(found));
    }
    let Some(device) = nm.and_then(|n| n.device.as_ref()) else {
        // NM has no device of that name: no profile of it is live, and the plan changes
        // nothing there (an unknown link is refused, one NM does not know is left as it
        // is), so none is needed.
        return Ok(Some(Vec::new()));
    };
    if device.state <= NM_DEVICE_STATE_UNMANAGED {
        // Unmanaged (loopback, a link NM is told to leave): its profiles are not this
        // library's to compare or write (see the plan), and NM lists none available.
        return Ok(Some(Vec::new()));
    }
    if device.state < NM_DEVICE_STATE_DISCONNECTED {
        // No carrier: NM lists no available profile; only the listing finds them.
        return Ok(None);
    }
    let available = match device_proxy(conn, device.path.clone())
        .await
        .map_err(|e| nm_error("NetworkManager device", e))?
        .available_connections()
        .await
    {
        Ok(paths) => paths,
        Err(e) if is_gone(&e) => return Ok(None),
        Err(e) => {
            return Err(nm_error(
                &format!("reading the profiles available on {name}"),
                e,
            ))
        }
    };
    let mut found = Vec::new();
    for p in available {
        if let Some(p) = profile::get_profile(conn, p).await? {
            if p.interface_name().as_deref() == Some(name) {
                found.push(p);
            }
        }
    }
    Ok(Some(found))
}

/// Profiles written, then deactivations and deletions, then reapplies, then activations
/// (one batch). Interfaces proceed concurrently within each phase.
pub async fn execute(
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
                let r = activation::reapply_retrying(conn, d, *version_id, &s.name, log).await;
                (s, d, p, r)
            }),
            _ => None,
        })
        .collect();
    if !reapplies.is_empty() {
        report.step("reapplying", 0, reapplies.len());
        let results = bounded(reapplies).await;
        for (s, d, p, r) in results {
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
