//! `net.mptcp.enabled`, through /proc/sys of the calling thread's network namespace.
//!
//! /proc/sys/net resolves the namespace of the thread that opens the file (unlike
//! /proc/net, which follows the main thread), so a thread that joined a namespace with
//! setns(2) reads that namespace's value. These are plain file operations on procfs that
//! never wait on a device; they are not moved to a blocking pool, whose threads may live
//! in another namespace.

use std::io;

use crate::{Error, ErrorKind, Result};

pub const MPTCP_ENABLED_PATH: &str = "/proc/sys/net/mptcp/enabled";

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
    if e.kind() == io::ErrorKind::PermissionDenied {
        return Error::new(
            ErrorKind::PermissionDenied,
            format!("{verb} {MPTCP_ENABLED_PATH} needs CAP_NET_ADMIN ({e})"),
        );
    }
    Error::new(
        ErrorKind::Kernel,
        format!("{verb} {MPTCP_ENABLED_PATH} failed: {e}"),
    )
}
