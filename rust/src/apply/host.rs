//! The host-wide knobs (`mptcp:` at the top of a state), the same in both modes:
//! `net.mptcp.enabled`, the path manager, the scheduler (sysctls of the network namespace)
//! and the path manager's limits (generic netlink). NetworkManager never touches them.
//!
//! They are runtime state: the kernel forgets them at reboot, and the log of an apply that
//! changes them says so.

use serde::{Deserialize, Serialize};

use crate::log::Level;
use crate::netlink::{self, KernelState, Limits, Writer};
use crate::state::{NetworkState, PathManager};
use crate::{log_at, Error, ErrorKind, Log, Result};

/// The knobs an apply changes (only those that differ from the kernel).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostChange {
    pub enabled: Option<bool>,
    pub path_manager: Option<PathManager>,
    pub scheduler: Option<String>,
    pub limits: Option<Limits>,
}

impl HostChange {
    /// The knobs that change, as the state spells them (`mptcp.limits`...).
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.enabled.is_some() {
            out.push("mptcp.enabled");
        }
        if self.path_manager.is_some() {
            out.push("mptcp.path-manager");
        }
        if self.scheduler.is_some() {
            out.push("mptcp.scheduler");
        }
        if self.limits.is_some() {
            out.push("mptcp.limits");
        }
        out
    }
}

/// The knobs as they were before an apply changed them (`None`: not changed), to put
/// back on rollback. Persisted with a no-commit apply's undo record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostUndo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<(u32, u32)>,
}

impl HostUndo {
    pub fn is_empty(&self) -> bool {
        *self == HostUndo::default()
    }
}

/// The knobs the state changes, checked against what this kernel has: a path manager or
/// scheduler it lacks is refused before anything is written.
pub fn changes(state: &NetworkState, kernel: &KernelState) -> Result<Option<HostChange>> {
    let Some(host) = state.mptcp.as_ref() else {
        return Ok(None);
    };
    let sys = &kernel.sysctls;
    let wants_mptcp = host.path_manager.is_some()
        || host.scheduler.is_some()
        || host.limits.is_some()
        || host.enabled.is_some();
    if wants_mptcp && kernel.mptcp_enabled.is_none() {
        return Err(Error::new(
            ErrorKind::NotSupported,
            "the state sets MPTCP host knobs, but this kernel has no MPTCP (CONFIG_MPTCP: no \
             /proc/sys/net/mptcp)",
        ));
    }
    let enabled = host.enabled.filter(|e| kernel.mptcp_enabled != Some(*e));
    let path_manager = match host.path_manager {
        None => None,
        Some(pm) => match sys.path_manager.as_deref() {
            None => {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    "mptcp.path-manager: this kernel has neither net.mptcp.path_manager nor \
                     net.mptcp.pm_type",
                ))
            }
            Some(now) => (now != pm.name()).then_some(pm),
        },
    };
    let scheduler = match &host.scheduler {
        None => None,
        Some(want) => match sys.scheduler.as_deref() {
            None => {
                return Err(Error::new(
                    ErrorKind::NotSupported,
                    "mptcp.scheduler: this kernel has no net.mptcp.scheduler (Linux 6.6 or \
                     newer has it)",
                ))
            }
            Some(now) if now == want => None,
            Some(_) => {
                if !sys.available_schedulers.iter().any(|s| s == want) {
                    return Err(Error::invalid(format!(
                        "mptcp.scheduler: `{want}` is not one of this kernel's schedulers \
                         (net.mptcp.available_schedulers: {}); a scheduler built as a module \
                         must be loaded first",
                        sys.available_schedulers.join(", ")
                    )));
                }
                Some(want.clone())
            }
        },
    };
    let limits = host.limits.as_ref().and_then(|l| {
        let now = kernel.limits?;
        let want = Limits {
            subflows: l.subflows.unwrap_or(now.subflows),
            add_addr_accepted: l.add_addr_accepted.unwrap_or(now.add_addr_accepted),
        };
        (want != now).then_some(want)
    });
    let change = HostChange {
        enabled,
        path_manager,
        scheduler,
        limits,
    };
    Ok((change != HostChange::default()).then_some(change))
}

/// Sets the knobs, recording each old value in `undo` before it is written (so that a
/// failure half-way leaves `undo` with exactly what was changed).
pub async fn set(
    change: &HostChange,
    kernel: &KernelState,
    writer: &mut Writer,
    undo: &mut HostUndo,
    log: &Log,
) -> Result<()> {
    if let Some(enabled) = change.enabled {
        undo.enabled = kernel.mptcp_enabled;
        netlink::set_mptcp_enabled(enabled)?;
        log_at!(
            log,
            Level::Info,
            "net.mptcp.enabled set to {}",
            u8::from(enabled)
        );
    }
    if let Some(pm) = change.path_manager {
        undo.path_manager = kernel.sysctls.path_manager.clone();
        netlink::set_path_manager(pm.name())?;
        log_at!(log, Level::Info, "MPTCP path manager set to {}", pm.name());
    }
    if let Some(sched) = &change.scheduler {
        undo.scheduler = kernel.sysctls.scheduler.clone();
        netlink::set_scheduler(sched)?;
        log_at!(log, Level::Info, "MPTCP scheduler set to {sched}");
    }
    if let Some(limits) = change.limits {
        undo.limits = kernel.limits.map(|l| (l.subflows, l.add_addr_accepted));
        writer.set_limits(limits).await?;
        log_at!(
            log,
            Level::Info,
            "MPTCP limits set to subflows {} add-addr-accepted {}",
            limits.subflows,
            limits.add_addr_accepted
        );
    }
    log_at!(
        log,
        Level::Info,
        "host knobs ({}) are runtime state: the kernel forgets them at reboot; put them in \
         /etc/sysctl.d or apply this state at boot to keep them",
        change.names().join(", ")
    );
    Ok(())
}

/// Puts the knobs back as `undo` holds them. Every knob is tried; the first failure is
/// returned.
pub async fn restore(undo: &HostUndo, writer: &mut Writer, log: &Log) -> Result<()> {
    let mut first = None;
    let mut note = |what: &str, r: Result<()>| match r {
        Ok(()) => log_at!(log, Level::Info, "rollback: {what} restored"),
        Err(e) => {
            log_at!(log, Level::Error, "rollback: {what}: {}", e.msg());
            first.get_or_insert(e);
        }
    };
    if let Some((subflows, add_addr_accepted)) = undo.limits {
        let limits = Limits {
            subflows,
            add_addr_accepted,
        };
        note("MPTCP limits", writer.set_limits(limits).await);
    }
    if let Some(sched) = &undo.scheduler {
        note("MPTCP scheduler", netlink::set_scheduler(sched));
    }
    if let Some(pm) = &undo.path_manager {
        note("MPTCP path manager", netlink::set_path_manager(pm));
    }
    if let Some(enabled) = undo.enabled {
        note("net.mptcp.enabled", netlink::set_mptcp_enabled(enabled));
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::MptcpSysctls;

    fn kernel() -> KernelState {
        KernelState {
            mptcp_enabled: Some(true),
            limits: Some(Limits {
                subflows: 2,
                add_addr_accepted: 0,
            }),
            sysctls: MptcpSysctls {
                path_manager: Some("kernel".into()),
                scheduler: Some("default".into()),
                available_schedulers: vec!["default".into()],
            },
            ..Default::default()
        }
    }

    fn changes_of(yaml: &str) -> Result<Option<HostChange>> {
        changes(&crate::state::parse(yaml, &Log::new()).unwrap(), &kernel())
    }

    #[test]
    fn only_what_differs_changes() {
        assert_eq!(changes_of("mptcp: {enabled: true}\n").unwrap(), None);
        let c = changes_of("mptcp: {limits: {add-addr-accepted: 2}}\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            c.limits,
            Some(Limits {
                subflows: 2,
                add_addr_accepted: 2
            })
        );
        assert_eq!(c.names(), vec!["mptcp.limits"]);
        let c = changes_of("mptcp: {path-manager: userspace, scheduler: default}\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.path_manager, Some(PathManager::Userspace));
        assert_eq!(c.scheduler, None);
    }

    #[test]
    fn unknown_scheduler_is_refused_with_the_available_ones() {
        let e = changes_of("mptcp: {scheduler: redundant}\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.msg().contains("available_schedulers: default"), "{e}");
    }
}
