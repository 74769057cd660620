//! `net.mptcp.*` sysctls (`enabled`, `path_manager`/`pm_type`, `scheduler`), through
//! /proc/sys of the calling thread's network namespace.
//!
//! /proc/sys/net resolves the namespace of the thread that opens the file (unlike
//! /proc/net, which follows the main thread), so a thread that joined a namespace with
//! setns(2) reads that namespace's value. These are plain file operations on procfs that
//! never wait on a device; they are not moved to a blocking pool, whose threads may live
//! in another namespace.

use std::io;

use crate::{Error, ErrorKind, Result};

pub const MPTCP_ENABLED_PATH: &str = "/proc/sys/net/mptcp/enabled";
const MPTCP_DIR: &str = "/proc/sys/net/mptcp";

/// The MPTCP sysctls of the namespace besides `enabled`; `None` (or empty) where the
/// kernel has no such sysctl.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MptcpSysctls {
    /// `path_manager` (`kernel` | `userspace`, Linux 6.15+), else `pm_type` (0 kernel,
    /// 1 userspace) as the same words.
    pub path_manager: Option<String>,
    /// `scheduler`.
    pub scheduler: Option<String>,
    /// `available_schedulers`, in the kernel's order.
    pub available_schedulers: Vec<String>,
}

/// Reads `net.mptcp.<name>`, trimmed; `None` when the kernel has no such sysctl.
fn read_opt(name: &str) -> Result<Option<String>> {
    let path = format!("{MPTCP_DIR}/{name}");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(map_io_at(e, "reading", &path)),
    }
}

/// Reads the MPTCP sysctls other than `enabled`.
pub fn mptcp_sysctls() -> Result<MptcpSysctls> {
    let path_manager = match read_opt("path_manager")? {
        Some(pm) => Some(pm),
        None => read_opt("pm_type")?.map(|t| match t.as_str() {
            "0" => "kernel".to_string(),
            "1" => "userspace".to_string(),
            other => other.to_string(),
        }),
    };
    Ok(MptcpSysctls {
        path_manager,
        scheduler: read_opt("scheduler")?,
        available_schedulers: read_opt("available_schedulers")?
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// Writes `net.mptcp.<name>`. Needs CAP_NET_ADMIN over the namespace.
fn write(name: &str, value: &str) -> Result<()> {
    let path = format!("{MPTCP_DIR}/{name}");
    std::fs::write(&path, format!("{value}\n")).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotSupported,
            format!("the kernel has no sysctl net.mptcp.{name} ({path})"),
        ),
        _ => map_io_at(e, "writing", &path),
    })
}

/// Sets the path manager: `path_manager` where the kernel has it (6.15+), else `pm_type`.
pub fn set_path_manager(name: &str) -> Result<()> {
    if std::path::Path::new(&format!("{MPTCP_DIR}/path_manager")).exists() {
        return write("path_manager", name);
    }
    let pm_type = match name {
        "kernel" => "0",
        "userspace" => "1",
        other => {
            return Err(Error::invalid(format!(
                "path manager `{other}`: this kernel only knows kernel and userspace (pm_type)"
            )))
        }
    };
    write("pm_type", pm_type)
}

/// Sets `net.mptcp.scheduler`; the kernel refuses a name it does not have (ENOENT).
pub fn set_scheduler(name: &str) -> Result<()> {
    write("scheduler", name)
}

/// `net.mptcp.enabled`; `None` when the kernel has no MPTCP (no such sysctl).
pub fn mptcp_enabled() -> Result<Option<bool>> {
    match std::fs::read_to_string(MPTCP_ENABLED_PATH) {
        Ok(text) => match text.trim() {
            "0" => Ok(Some(false)),
            "1" => Ok(Some(true)),
            other => Err(Error::new(
                ErrorKind::Kernel,
                format!("{MPTCP_ENABLED_PATH} holds {other:?}, not 0 or 1"),
            )),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(map_io(e, "reading")),
    }
}

/// Sets `net.mptcp.enabled`. Needs CAP_NET_ADMIN over the namespace.
pub fn set_mptcp_enabled(enabled: bool) -> Result<()> {
    let value = if enabled { "1\n" } else { "0\n" };
    std::fs::write(MPTCP_ENABLED_PATH, value).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotSupported,
            "the kernel has no MPTCP (CONFIG_MPTCP): net.mptcp.enabled does not exist",
        ),
        _ => map_io(e, "writing"),
    })
}

fn map_io(e: io::Error, verb: &str) -> Error {
    map_io_at(e, verb, MPTCP_ENABLED_PATH)
}

fn map_io_at(e: io::Error, verb: &str, path: &str) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return Error::new(
            ErrorKind::PermissionDenied,
            format!("{verb} {path} needs CAP_NET_ADMIN ({e})"),
        );
    }
    Error::new(ErrorKind::Kernel, format!("{verb} {path} failed: {e}"))
}
