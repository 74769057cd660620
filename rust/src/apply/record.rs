//! The undo records a no-commit apply leaves, under `/run/mptcpstate/<netns>/`, so that
//! `commit` and `rollback` from any process (and the rollback timer) can take them.
//!
//! A record holds what must be put back that nothing else remembers: in kernel mode, the
//! kernel state of what the apply touched, as read before its first write; in
//! NetworkManager mode, what NM's checkpoint does not restore (profiles that were not
//! applied to a held device, profiles deleted); in both, the host knobs.
//!
//! Layout and rules:
//! - one directory per network namespace, named after its cookie (`SO_NETNS_COOKIE`,
//!   never reused within a boot): commit and rollback act on the namespace of the calling
//!   thread, and a record of another namespace is refused;
//! - one file per record, mode 0600, written to a temporary name and renamed into place,
//!   so a reader never sees half of one;
//! - whoever acts on a record (commit, rollback, the timer) first renames it to
//!   `<name>.claimed-<pid>`: exactly one of them wins; the others find it gone;
//! - `lock` in the directory serializes kernel-mode applies and rollbacks of the namespace
//!   (NetworkManager's checkpoints do that for NM's devices).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::host::HostUndo;
use crate::{Error, ErrorKind, Result};

/// Where the records live.
pub const RUN_DIR: &str = "/run/mptcpstate";

/// The record format's version; a reader refuses others.
const VERSION: u32 = 1;

/// Which backend wrote a record, and so which one puts it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendName {
    NetworkManager,
    Kernel,
}

/// One undo record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    pub version: u32,
    pub backend: BackendName,
    /// Milliseconds since the epoch.
    pub created_ms: u64,
    /// When the timer rolls it back by itself (ms since the epoch).
    pub deadline_ms: u64,
    /// The applying process.
    pub pid: u32,
    /// NetworkManager's checkpoint that goes with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nm_checkpoint: Option<String>,
    /// The interfaces the apply changed (another apply that changes them is `Busy`).
    pub interfaces: Vec<String>,
    /// Whether it changed host knobs (another apply that changes knobs is `Busy`).
    pub host_knobs: bool,
    pub host: HostUndo,
    /// The backend's own part.
    pub backend_undo: serde_json::Value,
}

impl Record {
    pub fn new(backend: BackendName, rollback_timeout: u32) -> Self {
        let now = now_ms();
        Record {
            version: VERSION,
            backend,
            created_ms: now,
            deadline_ms: now + u64::from(rollback_timeout) * 1000,
            pid: std::process::id(),
            nm_checkpoint: None,
            interfaces: Vec::new(),
            host_knobs: false,
            host: HostUndo::default(),
            backend_undo: serde_json::Value::Null,
        }
    }

    /// Seconds until the timer rolls it back (0 once due).
    pub fn seconds_left(&self) -> u64 {
        self.deadline_ms.saturating_sub(now_ms()).div_ceil(1000)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `SO_NETNS_COOKIE` (Linux 5.14): the network namespace's cookie, which the kernel never
/// gives two namespaces within a boot (/run does not outlive a boot either). An inode
/// number is reused once its namespace is gone, and a directory named after one could
/// hand a new namespace the undo record of an old one.
#[cfg(not(target_arch = "sparc64"))]
const SO_NETNS_COOKIE: libc::c_int = 71;
#[cfg(target_arch = "sparc64")]
const SO_NETNS_COOKIE: libc::c_int = 0x50;

/// The directory of the calling thread's network namespace: `RUN_DIR/<cookie>`, or
/// `RUN_DIR/inode-<inode>` on kernels without namespace cookies.
pub fn namespace_dir() -> Result<PathBuf> {
    if let Some(cookie) = netns_cookie() {
        return Ok(Path::new(RUN_DIR).join(cookie.to_string()));
    }
    let link = fs::read_link("/proc/thread-self/ns/net").map_err(|e| {
        Error::new(
            ErrorKind::Kernel,
            format!("reading /proc/thread-self/ns/net: {e}"),
        )
    })?;
    // `net:[4026531840]`
    let text = link.to_string_lossy();
    let inode: String = text.chars().filter(char::is_ascii_digit).collect();
    if inode.is_empty() {
        return Err(Error::bug(format!(
            "unexpected network namespace link `{text}`"
        )));
    }
    Ok(Path::new(RUN_DIR).join(format!("inode-{inode}")))
}

/// The calling thread's network namespace cookie, from a socket made for the question (a
/// socket belongs to the namespace of the thread that makes it).
fn netns_cookie() -> Option<u64> {
    // SAFETY: a socket this function owns and closes; getsockopt into a local u64.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        );
        libc::close(fd);
        (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
    }
}

fn io_error(what: &str, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        return Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what} {}: {e}: the undo records of applies, commits and rollbacks are \
                 root's (running as uid {uid}): run as root",
                path.display()
            ),
        );
    }
    Error::new(ErrorKind::Kernel, format!("{what} {}: {e}", path.display()))
}

/// The namespace's directory, made (mode 0700) if missing.
pub fn ensure_dir() -> Result<PathBuf> {
    let dir = namespace_dir()?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| io_error("creating", &dir, e))?;
    Ok(dir)
}

/// Writes a new record; returns its path (the checkpoint a kernel-mode apply returns).
pub fn save(record: &Record) -> Result<PathBuf> {
    let dir = ensure_dir()?;
    let name = format!("checkpoint-{}-{}.json", record.created_ms, record.pid);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::bug(format!("serializing an undo record: {e}")))?;
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error("writing the undo record", &path, e)
    })?;
    Ok(path)
}

/// Reads a record file.
pub fn read(path: &Path) -> Result<Record> {
    read_as(path, path)
}

/// Reads the record file at `path`, named `name` in errors (a claimed record is read
/// under its claimed name, but the caller gave the other). A file that is not a record
/// is the caller's mistake: `InvalidArgument`.
fn read_as(path: &Path, name: &Path) -> Result<Record> {
    let text = fs::read(path).map_err(|e| io_error("reading", name, e))?;
    let record: Record = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid(format!(
            "{} is not an undo record of this library: {e}",
            name.display()
        ))
    })?;
    if record.version != VERSION {
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "{} is an undo record of version {}; this library reads version {VERSION}",
                name.display(),
                record.version
            ),
        ));
    }
    Ok(record)
}

/// The pending records of the calling thread's namespace, oldest first. Files that are
/// not records (claimed ones, temporary ones, the lock) are skipped.
pub fn pending() -> Result<Vec<(PathBuf, Record)>> {
    let dir = namespace_dir()?;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("listing", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy().into_owned();
        if !name.starts_with("checkpoint-") {
            continue;
        }
        let path = match reclaim_abandoned(&dir, &name) {
            Some(p) => p,
            None if name.ends_with(".json") => entry.path(),
            None => continue,
        };
        // A record claimed meanwhile is simply not pending any more.
        if let Ok(r) = read(&path) {
            out.push((path, r));
        }
    }
    out.sort_by_key(|(_, r)| r.created_ms);
    Ok(out)
}

/// A record claimed by a process that died before it was done (`<name>.claimed-<pid>`
/// with no such process): put back under its name, pending again. Returns that path.
fn reclaim_abandoned(dir: &Path, name: &str) -> Option<PathBuf> {
    let (original, pid) = name.rsplit_once(".claimed-")?;
    let pid: i32 = pid.parse().ok()?;
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if alive {
        return None;
    }
    let back = dir.join(original);
    fs::rename(dir.join(name), &back).ok()?;
    Some(back)
}

/// Whether the record at `path` (not there under its name) is claimed by a live process:
/// its commit or rollback is under way, and puts the record back if it fails. A claim of
/// a process that died is put back at once (pending again) and counts as none.
pub fn claimed_by_live(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let prefix = format!("{}.claimed-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let claimed = entry.file_name().to_string_lossy().into_owned();
        claimed.starts_with(&prefix) && reclaim_abandoned(dir, &claimed).is_none()
    })
}

/// The pending record that goes with NetworkManager's checkpoint `path`.
pub fn for_nm_checkpoint(path: &str) -> Result<Option<PathBuf>> {
    Ok(pending()?
        .into_iter()
        .find(|(_, r)| r.nm_checkpoint.as_deref() == Some(path))
        .map(|(p, _)| p))
}

/// Checks that `path` names a record of the calling thread's namespace.
pub fn check_own(path: &Path) -> Result<()> {
    let dir = namespace_dir()?;
    if path.parent() != Some(dir.as_path()) {
        return Err(Error::invalid(format!(
            "{} is not a checkpoint of this network namespace (its records are in {}); run \
             commit or rollback in the namespace the apply ran in",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// A record taken by one actor: nobody else can take it any more.
#[derive(Debug)]
pub struct Claimed {
    /// The path the record had (its checkpoint name).
    pub path: PathBuf,
    claimed: PathBuf,
    pub record: Record,
}

impl Claimed {
    /// Done with it: the record is removed.
    pub fn release(self) {
        let _ = fs::remove_file(&self.claimed);
    }

    /// Puts the record back (an action on it failed before anything changed).
    pub fn unclaim(self) {
        let _ = fs::rename(&self.claimed, &self.path);
    }
}

/// Takes the record at `path`; `None` when it is gone (committed or rolled back by
/// someone else).
pub fn claim(path: &Path) -> Result<Option<Claimed>> {
    let claimed = PathBuf::from(format!("{}.claimed-{}", path.display(), std::process::id()));
    match fs::rename(path, &claimed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("taking the undo record", path, e)),
    }
    match read_as(&claimed, path) {
        Ok(record) => Ok(Some(Claimed {
            path: path.to_path_buf(),
            claimed,
            record,
        })),
        Err(e) => {
            let _ = fs::rename(&claimed, path);
            Err(e)
        }
    }
}

/// An exclusive lock on the namespace's directory, held while it lives.
pub struct Lock(#[allow(dead_code)] File);

impl Lock {
    /// Waits up to `wait` for the lock; `Busy` after that.
    pub fn take(wait: Duration) -> Result<Lock> {
        let dir = ensure_dir()?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error("opening", &path, e))?;
        let start = Instant::now();
        loop {
            // SAFETY: flock on a file descriptor this function owns.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock(file));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_error("locking", &path, e));
            }
            if start.elapsed() >= wait {
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "another apply or rollback of this network namespace holds {} for \
                         more than {} s",
                        path.display(),
                        wait.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Refuses an apply that would change what a pending record holds: the same interfaces
/// (kernel mode; NM's checkpoint refuses overlapping devices itself) or the host knobs.
pub fn check_not_busy(interfaces: &[String], host_knobs: bool, kernel_mode: bool) -> Result<()> {
    if !kernel_mode && !host_knobs {
        // NetworkManager's checkpoints keep its applies apart: no record can be in the way.
        return Ok(());
    }
    for (path, r) in pending()? {
        let overlap: Vec<&String> = if kernel_mode {
            r.interfaces
                .iter()
                .filter(|i| interfaces.contains(i))
                .collect()
        } else {
            Vec::new()
        };
        let knobs = host_knobs && r.host_knobs;
        if overlap.is_empty() && !knobs {
            continue;
        }
        let what = match (overlap.is_empty(), knobs) {
            (false, true) => format!(
                "{} and the host knobs",
                overlap
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (false, false) => overlap
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            _ => "the host knobs".to_string(),
        };
        return Err(Error::new(
            ErrorKind::Busy,
            format!(
                "checkpoint {} (pid {}) holds {what}: commit or roll it back first; it rolls \
                 back by itself in {} s",
                r.nm_checkpoint
                    .clone()
                    .unwrap_or_else(|| path.display().to_string()),
                r.pid,
                r.seconds_left()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_json() {
        let mut r = Record::new(BackendName::Kernel, 60);
        r.interfaces = vec!["eth1".into()];
        r.host.limits = Some((2, 0));
        r.backend_undo = serde_json::json!({"links": []});
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""backend":"kernel""#), "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!((59..=60).contains(&r.seconds_left()));
    }

    #[test]
    fn the_namespace_dir_is_named_by_cookie() {
        let dir = namespace_dir().unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        // This machine's kernel (6.18) has cookies.
        assert!(name.chars().all(|c| c.is_ascii_digit()), "{name}");
        assert_eq!(netns_cookie().map(|c| c.to_string()), Some(name));
        assert!(dir.starts_with(RUN_DIR));
        // Another thread of the same namespace, the same directory.
        let other = std::thread::spawn(|| namespace_dir().unwrap())
            .join()
            .unwrap();
        assert_eq!(other, dir);
    }
}
