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
use crate::nm::dbus::{bounded, error_name, nm_error, nm_proxy, NetworkManagerProxy};
use crate::nm::deactivation;
use crate::nm::profile::{self, Applied, Storage};
use crate::nm::query::{read_device_applied, DEVICES_IN_FLIGHT};
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
pub async fn read_ifaces(
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
