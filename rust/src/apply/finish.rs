//! `commit` and `rollback` of what a no-commit apply left pending, from any process.
//!
//! A checkpoint is one of:
//! - NetworkManager's (`/org/freedesktop/NetworkManager/Checkpoint/N`), possibly with an
//!   undo record of this library beside it (what the checkpoint does not restore: host
//!   knobs, profiles that were not active);
//! - an undo record of this library (`/run/mptcpstate/<netns>/checkpoint-*.json`): a
//!   kernel-mode apply, or a NetworkManager-mode apply that changed no device (host knobs
//!   only).
//!
//! Anything else is refused. Without a checkpoint: the last one this process left open,
//! else the newest record of this network namespace, else NetworkManager's newest (only
//! where a system bus exists); none of them: nothing is pending, which is said and is not
//! an error.

use std::path::{Component, Path, PathBuf};

use super::record::{self, Claimed};
use super::{last_checkpoint, pipeline, remember_checkpoint};
use crate::log::Level;
use crate::nm::query::{connect, system_bus_present};
use crate::{log_at, Error, Log, Result};

const NM_CHECKPOINT_PREFIX: &str = "/org/freedesktop/NetworkManager/Checkpoint/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Commit,
    Rollback,
}

impl Verb {
    fn past(self) -> &'static str {
        match self {
            Verb::Commit => "committed",
            Verb::Rollback => "rolled back",
        }
    }

    fn infinitive(self) -> &'static str {
        match self {
            Verb::Commit => "commit",
            Verb::Rollback => "roll back",
        }
    }
}

/// What a checkpoint argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Nm(String),
    Record(PathBuf),
}

fn parse_target(text: &str) -> Result<Target> {
    if let Some(n) = text.strip_prefix(NM_CHECKPOINT_PREFIX) {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Target::Nm(text.to_string()));
        }
    }
    let path = Path::new(text);
    if is_record_path(path) {
        return Ok(Target::Record(path.to_path_buf()));
    }
    Err(Error::invalid(format!(
        "`{text}` is not a checkpoint: give the path a no-commit apply printed \
         ({NM_CHECKPOINT_PREFIX}N, or {}/.../checkpoint-....json), or none for the newest",
        record::RUN_DIR
    )))
}

/// `RUN_DIR/<namespace>/checkpoint-*.json` and nothing else: `Path::starts_with` compares
/// components without resolving `..`, so `/run/mptcpstate/../../tmp/x.json` would have
/// passed and had any file read, claimed (renamed) and applied as an undo record.
fn is_record_path(path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(record::RUN_DIR) else {
        return false;
    };
    let parts: Vec<Component<'_>> = rest.components().collect();
    matches!(parts.as_slice(), [Component::Normal(_), Component::Normal(name)]
        if name.to_str().is_some_and(|n| n.starts_with("checkpoint-") && n.ends_with(".json")))
}

/// Whether a target is still pending.
fn record_pending(path: &Path) -> bool {
    path.exists()
}

/// The checkpoint to act on when none is given.
async fn default_target(log: &Log) -> Result<Option<Target>> {
    if let Some(last) = last_checkpoint() {
        if let Ok(t) = parse_target(&last) {
            let pending = match &t {
                Target::Record(p) => record_pending(p),
                // NetworkManager may have rolled it back by its timeout: asked below.
                Target::Nm(_) => true,
            };
            if pending {
                return Ok(Some(t));
            }
        }
    }
    if let Some((path, r)) = record::pending()?.pop() {
        return Ok(Some(match r.nm_checkpoint {
            Some(cp) => Target::Nm(cp),
            None => Target::Record(path),
        }));
    }
    if !system_bus_present() {
        return Ok(None);
    }
    let Ok(conn) = connect().await else {
        return Ok(None);
    };
    if crate::nm::query::nm_in_this_namespace(&conn).await == Some(false) {
        return Ok(None);
    }
    let newest = super::nm::newest_checkpoint(&conn).await?;
    if let Some(cp) = &newest {
        log_at!(
            log,
            Level::Info,
            "no checkpoint given: using NetworkManager's newest, {cp}"
        );
    }
    Ok(newest.map(Target::Nm))
}

pub async fn finish(verb: Verb, given: Option<&str>, log: &Log) -> Result<Option<String>> {
    let target = match given {
        Some(text) => parse_target(text)?,
        None => match default_target(log).await? {
            Some(t) => t,
            None => {
                log_at!(
                    log,
                    Level::Info,
                    "nothing to {}: no checkpoint is pending",
                    verb.infinitive()
                );
                return Ok(None);
            }
        },
    };
    let name = match &target {
        Target::Nm(p) => p.clone(),
        Target::Record(p) => p.display().to_string(),
    };
    match target {
        Target::Record(path) => {
            record::check_own(&path)?;
            let Some(claimed) = record::claim(&path)? else {
                return Err(Error::invalid(format!(
                    "{name} is not pending: it was committed or rolled back already (by \
                     its timeout, or by another process)"
                )));
            };
            act_on_record(verb, claimed, log).await?;
        }
        Target::Nm(cp) => {
            let sidecar = record::for_nm_checkpoint(&cp)?;
            match sidecar.map(|p| record::claim(&p)).transpose()?.flatten() {
                Some(claimed) => act_on_record(verb, claimed, log).await?,
                None => {
                    let conn = connect().await?;
                    match verb {
                        Verb::Commit => super::nm::destroy_checkpoint(&conn, &cp).await?,
                        Verb::Rollback => {
                            let mut b = super::nm::NmBackend::connect_checked().await?;
                            let undo = super::nm::NmUndo::of_checkpoint(&cp);
                            let mut writer = crate::netlink::Writer::open()?;
                            use super::pipeline::Backend as _;
                            b.roll_back(undo, &mut writer, log).await?;
                        }
                    }
                }
            }
        }
    }
    if last_checkpoint().as_deref() == Some(name.as_str()) {
        remember_checkpoint(None);
    }
    log_at!(log, Level::Info, "checkpoint {name} {}", verb.past());
    Ok(Some(name))
}

/// Commits or rolls back a claimed record (and NetworkManager's checkpoint with it).
async fn act_on_record(verb: Verb, claimed: Claimed, log: &Log) -> Result<()> {
    let result = match verb {
        Verb::Commit => match &claimed.record.nm_checkpoint {
            Some(cp) => {
                let conn = connect().await?;
                super::nm::destroy_checkpoint(&conn, cp).await
            }
            None => Ok(()),
        },
        Verb::Rollback => pipeline::roll_back_record(&claimed, log).await,
    };
    match result {
        Ok(()) => {
            claimed.release();
            Ok(())
        }
        Err(e) => {
            // Kept, so that the rollback (or commit) can be tried again.
            claimed.unclaim();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_checkpoints_are_taken() {
        assert_eq!(
            parse_target("/org/freedesktop/NetworkManager/Checkpoint/12").unwrap(),
            Target::Nm("/org/freedesktop/NetworkManager/Checkpoint/12".into())
        );
        assert!(matches!(
            parse_target("/run/mptcpstate/4026531840/checkpoint-1-2.json").unwrap(),
            Target::Record(_)
        ));
        for bad in [
            "/",
            "/org/freedesktop/NetworkManager/Checkpoint/",
            "/org/freedesktop/NetworkManager/Checkpoint/x",
            "/etc/passwd",
            "checkpoint-1-2.json",
            "/run/mptcpstate/../../tmp/checkpoint-1-2.json",
            "/run/mptcpstate/1/../../../tmp/checkpoint-1-2.json",
            "/run/mptcpstate/checkpoint-1-2.json",
            "/run/mptcpstate/1/2/checkpoint-1-2.json",
            "/run/mptcpstate/1/x.json",
        ] {
            let e = parse_target(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
