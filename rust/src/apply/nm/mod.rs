//! The NetworkManager backend of the apply pipeline: profiles written over D-Bus and
//! brought live by `Device.Reapply` or activation, under a checkpoint over the devices
//! that change.
//!
//! - `plan.rs`: what to do per interface (pure);
//! - `exec.rs`: reading NM's devices, executing a plan;
//! - here: the backend (read, prepare, begin = the checkpoint, commit, rollback) and its
//!   undo record: the checkpoint, plus what the checkpoint does not restore (profiles that
//!   were not applied to a held device, profiles deleted, profiles added).

mod exec;
pub(super) mod expect;
mod plan;

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zbus::zvariant::OwnedObjectPath;

use self::expect::KernelExpect;
use self::plan::{Current, Live, NmIface, Step, Write};
use super::checks::View;
use super::pipeline::{Backend, Plan, Reporter};
use super::record::BackendName;
use super::report::Action;
use super::ApplyOptions;
use crate::log::Level;
use crate::netlink::{KernelState, Writer};
use crate::nm::checkpoint;
use crate::nm::dbus::{bounded, nm_error, nm_proxy, Settings, NOT_RUNNING};
use crate::nm::profile::{self, Profile, Storage};
use crate::nm::query::{checked_version, connect, ensure_same_namespace};
use crate::state::{MptcpFlag, MptcpFlags, NetworkState};
use crate::verify::Mode;
use crate::{log_at, Error, ErrorKind, Log, Result};

/// The first NetworkManager with the `laminar` flag (0x100 in `connection.mptcp-flags`).
pub const NM_LAMINAR_VERSION: (u32, u32) = (1, 56);

pub struct NmBackend {
    conn: zbus::Connection,
    version: String,
    ifaces: HashMap<String, NmIface>,
    profiles: Vec<Profile>,
}

impl NmBackend {
    /// Connects to the system bus. What NetworkManager is (its namespace, its version) is
    /// asked by [`Backend::read`], beside the reads (one round trip less), or by
    /// [`NmBackend::connect_checked`] where nothing is read first.
    pub async fn connect() -> Result<Self> {
        Ok(NmBackend {
            conn: connect().await?,
            version: String::new(),
            ifaces: HashMap::new(),
            profiles: Vec::new(),
        })
    }

    /// Connects, and checks that NM runs in this namespace and is new enough (a rollback,
    /// which reads nothing before it writes).
    pub async fn connect_checked() -> Result<Self> {
        let mut b = Self::connect().await?;
        b.version = check_nm(&b.conn).await?;
        Ok(b)
    }

    fn current<'a>(&'a self, kernel: &'a KernelState) -> Current<'a> {
        Current::new(kernel, &self.ifaces, &self.profiles)
    }

    /// `laminar` is written through NetworkManager from 1.56 on; an older one ignores bit
    /// 0x100 of `connection.mptcp-flags`. Refused only where NM has something to do on the
    /// interface: a state that asks laminar where the kernel holds it already (an endpoint
    /// made outside NM, `show`'s output applied back) writes nothing and passes on any NM.
    fn check_laminar(&self, state: &NetworkState, steps: &[Step]) -> Result<()> {
        if self.version_at_least(NM_LAMINAR_VERSION) {
            return Ok(());
        }
        for step in steps {
            let Some(iface) = state
                .interfaces
                .iter()
                .find(|i| i.name == step.name && !i.is_going_away())
            else {
                continue;
            };
            if iface
                .address_flags()
                .is_some_and(|f| f.contains(MptcpFlag::Laminar))
            {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    format!(
                        "{}: the laminar flag needs NetworkManager {}.{} or newer (this one \
                         is {}); apply it in kernel-only mode, or drop laminar",
                        iface.name, NM_LAMINAR_VERSION.0, NM_LAMINAR_VERSION.1, self.version
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The endpoint flags this NetworkManager gives a profile whose `connection.mptcp-flags`
    /// is 0 (its default, `enabled,subflow`; `enabled,subflow,laminar` from 1.56), on a
    /// link with a default route. (A global default in NetworkManager.conf is not read.)
    fn default_flags(&self) -> MptcpFlags {
        let mut flags = vec![MptcpFlag::Subflow];
        if self.version_at_least(NM_LAMINAR_VERSION) {
            flags.push(MptcpFlag::Laminar);
        }
        flags.into_iter().collect()
    }

    fn version_at_least(&self, want: (u32, u32)) -> bool {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= want
    }
}

/// A plan of the NetworkManager backend: one step per interface that changes.
pub struct NmPlan(Vec<Step>);

impl Plan for NmPlan {
    fn changed(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    }

    fn actions(&self) -> Vec<(String, Vec<Action>)> {
        self.0
            .iter()
            .map(|s| {
                let mut a = Vec::new();
                match &s.write {
                    Some(Write::Add(_)) => a.push(Action::ProfileAdded),
                    Some(Write::Update { .. }) => a.push(Action::ProfileUpdated),
                    None => {}
                }
                match s.live {
                    Live::Nothing => {}
                    Live::Reapply { .. } => a.push(Action::Reapply),
                    Live::Activate => a.push(Action::Activation),
                    Live::Deactivate => a.push(Action::Deactivation),
                }
                if !s.delete.is_empty() {
                    a.push(Action::ProfileDeleted);
                }
                (s.name.clone(), a)
            })
            .collect()
    }
}

/// What a rollback puts back: NM's checkpoint, and what the checkpoint does not hold.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NmUndo {
    /// NM's checkpoint over the devices that change (none when no device changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<String>,
    /// Profiles changed that the checkpoint does not restore: path and settings before.
    #[serde(default)]
    updated: Vec<(String, SettingsBlob)>,
    /// Profiles deleted that the checkpoint does not re-add: their settings.
    #[serde(default)]
    deleted: Vec<SettingsBlob>,
    /// UUIDs of the profiles the apply adds, deleted on rollback. Not the checkpoint's
    /// `DELETE_NEW_CONNECTIONS`: that deletes every profile added after the checkpoint,
    /// also by applies on other devices running beside this one, committed or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added: Vec<String>,
    #[serde(default)]
    memory_only: bool,
    /// NM's `Created` of the checkpoint: NM numbers checkpoints anew after a restart, so
    /// the path alone may name another apply's checkpoint by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint_created_ms: Option<i64>,
    /// What the kernel held before the apply, on the links it changes: a rollback waits
    /// until the kernel holds it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect: Option<KernelExpect>,
    /// The creation time of the checkpoint `expect` was kept for (an expectation file
    /// found for a checkpoint path given by the caller).
    #[serde(skip)]
    expect_for_ms: Option<i64>,
}

impl NmUndo {
    /// The undo of a checkpoint with nothing beside it (made by another process, or that
    /// held everything).
    ///
    /// The expectation kept beside it by a no-commit apply of this library comes with it
    /// (its checkpoint's creation time with it, so that a checkpoint of a later
    /// NetworkManager under the same path is not taken for it).
    pub fn of_checkpoint(path: &str) -> Self {
        let file = expect::load(path);
        NmUndo {
            checkpoint: Some(path.to_string()),
            expect_for_ms: file.as_ref().map(|f| f.created_ms),
            expect: file.map(|f| f.expect),
            ..NmUndo::default()
        }
    }

    fn storage(&self) -> Storage {
        if self.memory_only {
            Storage::Memory
        } else {
            Storage::Disk
        }
    }
}

/// A profile's settings in an undo record: `a{sa{sv}}` in D-Bus's own encoding
/// (hexadecimal), so that every value keeps its D-Bus type when it is written back.
#[derive(Debug, Clone)]
pub struct SettingsBlob(pub Settings);

fn dbus_context() -> zbus::zvariant::serialized::Context {
    zbus::zvariant::serialized::Context::new_dbus(zbus::zvariant::LE, 0)
}

impl Serialize for SettingsBlob {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let data = zbus::zvariant::to_bytes(dbus_context(), &self.0).map_err(S::Error::custom)?;
        let hex: String = data.bytes().iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for SettingsBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let hex = String::deserialize(d)?;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| D::Error::custom("settings: not hexadecimal"))?;
        let data = zbus::zvariant::serialized::Data::new(bytes, dbus_context());
        let (settings, _) = data.deserialize::<Settings>().map_err(D::Error::custom)?;
        Ok(SettingsBlob(settings))
    }
}

impl NmBackend {
    /// Marks the devices NetworkManager shows as "connected (externally)": configured
    /// outside NM (`ip addr add`), with a profile NM generated in memory
    /// (`NM_SETTINGS_CONNECTION_FLAG_EXTERNAL`). That profile is nobody's configuration:
    /// such a device holds a state as long as the kernel does, and a change gets a profile
    /// of its own. NM 1.42 generates these profiles with `autoconnect` off, NM 1.58 with
    /// it on: the applied profiles asked (one property read each) are those with
    /// `autoconnect` off and those this library did not make (a profile of its own, its
    /// UUID derived from the interface's name, is never a generated one).
    async fn mark_external(&mut self) -> Result<()> {
        use crate::nm::dbus::NM_SETTINGS_CONNECTION_FLAG_EXTERNAL;
        let by_uuid: HashMap<String, OwnedObjectPath> = self
            .profiles
            .iter()
            .filter_map(|p| Some((p.uuid()?, p.path.clone())))
            .collect();
        let candidates: Vec<(String, OwnedObjectPath)> = self
            .ifaces
            .iter()
            .filter_map(|(name, nm)| {
                let applied = nm.applied.as_ref()?;
                let autoconnect =
                    crate::nm::settings::get_bool(&applied.settings, "connection", "autoconnect");
                let uuid = applied.uuid()?;
                let ours = uuid == crate::nm::keyfile::profile_uuid(name).to_string();
                if autoconnect != Some(false) && ours {
                    return None;
                }
                Some((name.clone(), by_uuid.get(&uuid)?.clone()))
            })
            .collect();
        let conn = &self.conn;
        let paths: Vec<OwnedObjectPath> = candidates.iter().map(|(_, p)| p.clone()).collect();
        let flags = bounded(paths.into_iter().map(|p| profile_flags(conn, p))).await;
        for ((name, _), f) in candidates.iter().zip(flags) {
            if f? & NM_SETTINGS_CONNECTION_FLAG_EXTERNAL != 0 {
                if let Some(nm) = self.ifaces.get_mut(name) {
                    nm.external = true;
                }
            }
        }
        Ok(())
    }
}

/// NM's version, once it is known to run in this namespace and to be new enough: the two
/// asked at once, the namespace's answer first.
async fn check_nm(conn: &zbus::Connection) -> Result<String> {
    let nm = nm_proxy(conn)
        .await
        .map_err(|e| nm_error("NetworkManager", e))?;
    let (ns, version) =
        futures_util::future::join(ensure_same_namespace(conn), checked_version(&nm)).await;
    ns?;
    version
}

/// Deletes the profile an apply added (by its UUID), if it is still there.
async fn delete_added(conn: &zbus::Connection, uuid: String) -> Result<()> {
    match profile::profile_by_uuid(conn, &uuid).await? {
        Some(p) => profile::delete(conn, &p.path).await,
        None => Ok(()),
    }
}

/// A profile's `Flags`; 0 for a profile deleted meanwhile (not external any more).
async fn profile_flags(conn: &zbus::Connection, path: OwnedObjectPath) -> Result<u32> {
    let proxy = crate::nm::dbus::settings_connection_proxy(conn, path)
        .await
        .map_err(|e| nm_error("NetworkManager profile", e))?;
    Ok(proxy.flags().await.unwrap_or(0))
}

impl Backend for NmBackend {
    const NAME: BackendName = BackendName::NetworkManager;
    const MODE: Mode = Mode::NetworkManager;
    type Plan = NmPlan;
    type Undo = NmUndo;

    /// What NM holds for the named interfaces only: their devices and applied
    /// connections, and the profiles the plan may change or delete (see
    /// [`exec::read_nm`]), asked beside NM's namespace and version (see [`check_nm`]):
    /// reads change nothing, and every answer is checked before the plan.
    async fn read(&mut self, state: &NetworkState, log: &Log) -> Result<()> {
        let names: Vec<String> = state.interfaces.iter().map(|i| i.name.clone()).collect();
        let (version, read) = futures_util::future::join(
            check_nm(&self.conn),
            exec::read_nm(&self.conn, state, &names, log),
        )
        .await;
        self.version = version?;
        (self.ifaces, self.profiles) = read?;
        plan::check_ignored(state, &self.ifaces)?;
        self.mark_external().await
    }

    fn prepare(&self, state: &mut NetworkState, view: &mut View<'_>, log: &Log) -> Result<()> {
        for iface in state.interfaces.iter().filter(|i| !i.is_going_away()) {
            if let Some(a) = iface.addresses().find(|a| a.mptcp_port.is_some()) {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    format!(
                        "{}: {} has an mptcp-port; NetworkManager has no setting for an \
                         endpoint's port: apply it in kernel-only mode",
                        iface.name, a.ip
                    ),
                ));
            }
        }
        let cur = self.current(view.kernel);
        plan::prepare(state, &cur, view, self.default_flags(), log);
        Ok(())
    }

    fn plan(&self, state: &NetworkState, view: &View<'_>, log: &Log) -> Result<NmPlan> {
        let steps = plan::plan(state, &self.current(view.kernel), log)?;
        self.check_laminar(state, &steps)?;
        Ok(NmPlan(steps))
    }

    async fn begin(
        &mut self,
        plan: &NmPlan,
        kernel: &KernelState,
        opts: &ApplyOptions,
        log: &Log,
    ) -> Result<NmUndo> {
        if expect::any_files() {
            if let Ok(held) = checkpoint::list(&self.conn).await {
                let held: Vec<(String, i64)> = held
                    .iter()
                    .map(|c| (c.path.as_str().to_string(), c.created_ms))
                    .collect();
                expect::remove_stale(&held);
            }
        }
        let mut devices: Vec<OwnedObjectPath> =
            plan.0.iter().filter_map(|s| s.device.clone()).collect();
        devices.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        devices.dedup();
        let (cp, created) = if devices.is_empty() {
            (None, None)
        } else {
            let cp = checkpoint::create(&self.conn, &devices, opts.rollback_timeout).await?;
            log_at!(
                log,
                Level::Info,
                "checkpoint {} over {} device(s)",
                cp.as_str(),
                devices.len()
            );
            let created = checkpoint::created(&self.conn, &cp).await.ok();
            (Some(cp.as_str().to_string()), created)
        };
        let changed = plan.changed();
        let mut undo = NmUndo {
            checkpoint: cp,
            checkpoint_created_ms: created,
            memory_only: opts.memory_only,
            expect: Some(KernelExpect::capture(kernel, &changed)),
            ..NmUndo::default()
        };
        for s in &plan.0 {
            if let Some(Write::Update {
                path,
                before: Some(before),
                ..
            }) = &s.write
            {
                undo.updated
                    .push((path.as_str().to_string(), SettingsBlob(before.clone())));
            }
            undo.deleted.extend(
                s.delete
                    .iter()
                    .filter_map(|(_, settings)| settings.clone().map(SettingsBlob)),
            );
            if let Some(Write::Add(settings)) = &s.write {
                undo.added
                    .extend(crate::nm::settings::get_str(settings, "connection", "uuid"));
            }
        }
        Ok(undo)
    }

    async fn execute(
        &self,
        plan: &NmPlan,
        _writer: &mut Writer,
        opts: &ApplyOptions,
        report: &Reporter<'_>,
        log: &Log,
    ) -> Result<()> {
        exec::execute(&self.conn, &plan.0, opts, report, log).await
    }

    async fn commit(&mut self, undo: &NmUndo, _log: &Log) -> Result<()> {
        if let Some(cp) = &undo.checkpoint {
            destroy_checkpoint(&self.conn, cp).await?;
        }
        Ok(())
    }

    async fn roll_back(&mut self, mut undo: NmUndo, _writer: &mut Writer, log: &Log) -> Result<()> {
        let conn = &self.conn;
        let mut first: Option<Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                log_at!(log, Level::Error, "rollback: {}", e.msg());
                first.get_or_insert(e);
            }
        };
        let mut rolled_back = false;
        if let Some(cp) = &undo.checkpoint {
            let r = async {
                let path = object_path(cp)?;
                // At a record's deadline NetworkManager may have rolled its checkpoint back
                // by itself already: then only the rest is ours to put back. A
                // NetworkManager that restarted holds none of its checkpoints, and may
                // hold another one under the same path: the creation time tells.
                let held = checkpoint::list(conn)
                    .await
                    .map_err(|e| could_not_run(cp, e))?;
                let Some(ours) = held.iter().find(|c| {
                    c.path.as_str() == cp
                        && undo.checkpoint_created_ms.is_none_or(|t| t == c.created_ms)
                }) else {
                    log_at!(
                        log,
                        Level::Info,
                        "checkpoint {cp}: NetworkManager no longer holds it (rolled back by \
                         its timeout, or lost when NetworkManager stopped)"
                    );
                    return Ok(None);
                };
                if undo.expect_for_ms.is_some_and(|t| t != ours.created_ms) {
                    // The expectation kept for an older checkpoint of that path.
                    undo.expect = None;
                }
                let results = checkpoint::rollback(conn, &path)
                    .await
                    .map_err(|e| could_not_run(cp, e))?;
                // Devices that failed (one deleted meanwhile): the others were rolled back.
                Ok(Some(checkpoint::failures(conn, &results).await))
            }
            .await;
            match r {
                Ok(None) => {}
                Ok(Some(failed)) => {
                    rolled_back = true;
                    note(failed);
                }
                Err(e) => note(Err(e)),
            }
            expect::remove(cp);
        }
        let storage = undo.storage();
        let mut puts = Vec::new();
        for (path, settings) in &undo.updated {
            let path = object_path(path)?;
            puts.push(
                async move { profile::update(conn, &path, &settings.0, storage, false).await },
            );
        }
        for r in bounded(puts).await {
            note(r);
        }
        let adds: Vec<_> = undo
            .deleted
            .iter()
            .map(|settings| profile::add(conn, &settings.0, storage))
            .collect();
        for r in bounded(adds).await {
            note(r.map(|_| ()));
        }
        // After the checkpoint's rollback, which took them off their devices.
        let removals = undo
            .added
            .clone()
            .into_iter()
            .map(|uuid| delete_added(conn, uuid));
        for r in bounded(removals).await {
            note(r);
        }
        // NM answers CheckpointRollback when it has started to put the devices back: the
        // kernel holds the old addresses and endpoints some 50-150 ms later.
        if rolled_back {
            if let Some(expect) = &undo.expect {
                if let Err(e) = expect.wait(expect::WAIT, log).await {
                    log_at!(log, Level::Error, "rollback: {}", e.msg());
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn checkpoint(undo: &NmUndo) -> Option<String> {
        undo.checkpoint.clone()
    }

    fn needs_record(undo: &NmUndo) -> bool {
        !undo.updated.is_empty() || !undo.deleted.is_empty() || !undo.added.is_empty()
    }

    fn keep_alone(undo: &NmUndo) -> Result<()> {
        let (Some(cp), Some(created_ms), Some(expect)) =
            (&undo.checkpoint, undo.checkpoint_created_ms, &undo.expect)
        else {
            return Ok(());
        };
        expect::save(&expect::ExpectFile {
            checkpoint: cp.clone(),
            created_ms,
            expect: expect.clone(),
        })
    }
}

/// A rollback that NetworkManager could not be asked for: when NM is gone (killed, or
/// stopped mid-apply), the error says so, and what becomes of the change.
fn could_not_run(cp: &str, e: Error) -> Error {
    if !e.msg().starts_with(NOT_RUNNING) {
        return e;
    }
    Error::new(
        ErrorKind::NetworkManager,
        format!(
            "the rollback could not run: {NOT_RUNNING}, so checkpoint {cp} was not rolled \
             back (NetworkManager keeps checkpoints in memory: a NetworkManager started again \
             has none, and brings up the profiles as they are on disk); once it runs again, \
             apply the state again"
        ),
    )
}

fn object_path(path: &str) -> Result<OwnedObjectPath> {
    OwnedObjectPath::try_from(path)
        .map_err(|_| Error::invalid(format!("`{path}` is not a checkpoint path")))
}

/// Commits NetworkManager's checkpoint `path` (destroys it), and forgets what a rollback
/// of it would have waited for.
pub async fn destroy_checkpoint(conn: &zbus::Connection, path: &str) -> Result<()> {
    checkpoint::destroy(conn, &object_path(path)?.as_ref()).await?;
    expect::remove(path);
    Ok(())
}

/// NetworkManager's newest checkpoint, if any.
pub async fn newest_checkpoint(conn: &zbus::Connection) -> Result<Option<String>> {
    let all = checkpoint::list(conn).await?;
    Ok(all
        .iter()
        .max_by_key(|c| c.created_ms)
        .map(|c| c.path.as_str().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::OwnedValue;

    #[test]
    fn settings_survive_the_undo_record() {
        let mut conn = HashMap::new();
        conn.insert(
            "id".to_string(),
            OwnedValue::from(zbus::zvariant::Str::from("eth1")),
        );
        conn.insert("mptcp-flags".to_string(), OwnedValue::from(0x38u32));
        let mut settings: Settings = HashMap::new();
        settings.insert("connection".to_string(), conn);
        let undo = NmUndo {
            checkpoint: Some("/org/freedesktop/NetworkManager/Checkpoint/3".into()),
            updated: vec![("/x".into(), SettingsBlob(settings.clone()))],
            deleted: vec![SettingsBlob(settings.clone())],
            added: vec!["04f0b2b9-5e2c-5731-9f0a-fe35d76c4c81".into()],
            memory_only: true,
            checkpoint_created_ms: Some(12345),
            expect: Some(KernelExpect::capture(
                &crate::testkit::kernel(
                    vec![crate::testkit::link(2, "eth1")],
                    vec![crate::testkit::addr(2, "192.0.2.2", crate::testkit::PERM)],
                    vec![crate::testkit::endpoint(1, "192.0.2.2", 3, Some(2))],
                ),
                &["eth1".to_string()],
            )),
            expect_for_ms: None,
        };
        let json = serde_json::to_value(&undo).unwrap();
        let back: NmUndo = serde_json::from_value(json).unwrap();
        assert_eq!(back.checkpoint_created_ms, Some(12345));
        assert_eq!(back.expect, undo.expect);
        // A record written before these fields existed still reads.
        let old: NmUndo = serde_json::from_value(serde_json::json!({
            "checkpoint": "/org/freedesktop/NetworkManager/Checkpoint/3",
            "updated": [], "deleted": [], "memory-only": false
        }))
        .unwrap();
        assert!(old.expect.is_none() && old.checkpoint_created_ms.is_none());
        assert_eq!(back.updated[0].1 .0, settings);
        assert_eq!(back.deleted[0].0, settings);
        assert!(back.memory_only);
        assert_eq!(back.added, undo.added);
        let flags = &back.deleted[0].0["connection"]["mptcp-flags"];
        assert_eq!(u32::try_from(flags).unwrap(), 0x38);
    }
}
