//! What the kernel must hold again once NetworkManager has rolled a checkpoint back.
//!
//! `CheckpointRollback` answers when NM has *started* putting the devices back: the
//! addresses and endpoints come back some 50-150 ms later (NM re-activates or reapplies
//! the old profile, then configures the kernel). A rollback that returned then would let
//! the caller read the state after the apply. So the backend records, before its first
//! write, the kernel state of the links an apply changes (link up or down, configured
//! addresses, the MPTCP endpoints on them, with their flags, port and interface), and a
//! rollback polls the kernel until it holds that again (at most [`WAIT`]), or says what
//! did not come back.
//!
//! Endpoint ids are not compared: NetworkManager re-adds the endpoints of a profile it
//! restores, and the kernel numbers them. A link that is gone (deleted during the apply,
//! or renamed) cannot come back: it is not waited for, and the error names it.
//!
//! For a no-commit apply whose NM checkpoint holds everything (no undo record of this
//! library beside it), the expectation is kept in a small file of the namespace's record
//! directory, `nm-expect-<checkpoint number>.json`, so that a rollback by another process
//! waits too; it names NM's checkpoint with its creation time (NM numbers checkpoints
//! anew after a restart).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::apply::record;
use crate::log::Level;
use crate::netlink::{self, Address, EndpointFlags, KernelState};
use crate::state::ineligibility;
use crate::{log_at, Error, ErrorKind, Log, Result};

/// How long a rollback waits for the kernel to hold the state before the apply again.
pub const WAIT: Duration = Duration::from_secs(5);

/// The pauses between the reads of the kernel while waiting.
const BACKOFF_MS: [u64; 5] = [5, 10, 20, 40, 50];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LinkExpect {
    pub name: String,
    pub ifindex: u32,
    pub up: bool,
    /// Configured addresses (permanent, not IPv6 link-local): `(address, prefix)`.
    pub addresses: Vec<(IpAddr, u8)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EndpointExpect {
    pub address: IpAddr,
    /// `MPTCP_PM_ADDR_FLAG_*` bits.
    pub flags: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
}

impl std::fmt::Display for EndpointExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "endpoint {} {}",
            self.address,
            EndpointFlags(self.flags).mptcp_flags()
        )?;
        if let Some(p) = self.port {
            write!(f, " port {p}")?;
        }
        Ok(())
    }
}

/// The kernel state of the links an apply changes, as read before its first write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KernelExpect {
    pub links: Vec<LinkExpect>,
    /// The non-implicit endpoints on those links' addresses or bound to them.
    pub endpoints: Vec<EndpointExpect>,
}

fn configured(a: &Address) -> bool {
    a.is_permanent() && !(a.address.is_ipv6() && ineligibility(a.address) == Some("link-local"))
}

/// What is left to come back, split in what may still come and what cannot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Differences {
    /// Links gone (deleted or renamed): they cannot come back.
    pub gone: Vec<String>,
    /// Differences NetworkManager may still be working on.
    pub pending: Vec<String>,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.gone.is_empty() && self.pending.is_empty()
    }

    fn text(&self) -> String {
        let mut all: Vec<String> = self
            .gone
            .iter()
            .map(|n| format!("{n} (the link is gone)"))
            .collect();
        all.extend(self.pending.iter().cloned());
        all.join(", ")
    }
}

impl KernelExpect {
    /// The links named `names` as `kernel` holds them (names it has no link for are left
    /// out: the apply creates no link).
    pub fn capture(kernel: &KernelState, names: &[String]) -> Self {
        let links: Vec<LinkExpect> = kernel
            .links
            .iter()
            .filter(|l| names.contains(&l.name))
            .map(|l| {
                let mut addresses: Vec<(IpAddr, u8)> = kernel
                    .addresses_of(l.index)
                    .filter(|a| configured(a))
                    .map(|a| (a.address, a.prefix_len))
                    .collect();
                addresses.sort();
                LinkExpect {
                    name: l.name.clone(),
                    ifindex: l.index,
                    up: l.is_up(),
                    addresses,
                }
            })
            .collect();
        let mut out = KernelExpect {
            links,
            endpoints: Vec::new(),
        };
        out.endpoints = out.endpoints_in_scope(kernel).into_iter().collect();
        out
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    fn names(&self) -> Vec<String> {
        self.links.iter().map(|l| l.name.clone()).collect()
    }

    /// The kernel's non-implicit endpoints that belong to these links: bound to one, or on
    /// an address one of them had or has.
    fn endpoints_in_scope(&self, kernel: &KernelState) -> BTreeSet<EndpointExpect> {
        let mut addrs: BTreeSet<IpAddr> = self
            .links
            .iter()
            .flat_map(|l| l.addresses.iter().map(|(a, _)| *a))
            .collect();
        for l in &self.links {
            addrs.extend(kernel.addresses_of(l.ifindex).map(|a| a.address));
        }
        kernel
            .endpoints
            .iter()
            .filter(|e| e.flags.0 & EndpointFlags::IMPLICIT == 0)
            .filter(|e| {
                addrs.contains(&e.address)
                    || e.ifindex
                        .is_some_and(|i| self.links.iter().any(|l| l.ifindex == i))
            })
            .map(|e| EndpointExpect {
                address: e.address,
                flags: e.flags.0,
                port: e.port,
                ifindex: e.ifindex,
            })
            .collect()
    }

    /// How `kernel` differs from the expectation.
    pub fn differences(&self, kernel: &KernelState) -> Differences {
        let mut d = Differences::default();
        for l in &self.links {
            let Some(k) = kernel.link(l.ifindex).filter(|k| k.name == l.name) else {
                d.gone.push(l.name.clone());
                continue;
            };
            if k.is_up() != l.up {
                d.pending
                    .push(format!("{} {}", l.name, if l.up { "up" } else { "down" }));
            }
            let now: BTreeSet<(IpAddr, u8)> = kernel
                .addresses_of(l.ifindex)
                .filter(|a| configured(a))
                .map(|a| (a.address, a.prefix_len))
                .collect();
            let want: BTreeSet<(IpAddr, u8)> = l.addresses.iter().copied().collect();
            for (a, p) in want.difference(&now) {
                d.pending.push(format!("{}: address {a}/{p}", l.name));
            }
            for (a, p) in now.difference(&want) {
                d.pending
                    .push(format!("{}: address {a}/{p} still there", l.name));
            }
        }
        let gone: Vec<u32> = self
            .links
            .iter()
            .filter(|l| d.gone.contains(&l.name))
            .map(|l| l.ifindex)
            .collect();
        let now = self.endpoints_in_scope(kernel);
        let want: BTreeSet<EndpointExpect> = self
            .endpoints
            .iter()
            .filter(|e| !e.ifindex.is_some_and(|i| gone.contains(&i)))
            .cloned()
            .collect();
        for e in want.difference(&now) {
            d.pending.push(e.to_string());
        }
        for e in now.difference(&want) {
            d.pending.push(format!("{e} still there"));
        }
        d
    }

    /// Polls the kernel until it holds the expectation, at most `wait`. What a gone link
    /// held is not waited for (it cannot come back), the rest is; the gone links are
    /// named in the error.
    pub async fn wait(&self, wait: Duration, log: &Log) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let names = self.names();
        let start = tokio::time::Instant::now();
        let deadline = start + wait;
        let mut round = 0;
        loop {
            let kernel = netlink::read_kernel_for(&names, log).await?;
            let d = self.differences(&kernel);
            if d.pending.is_empty() && !d.gone.is_empty() {
                return Err(Error::new(
                    ErrorKind::NetworkManager,
                    format!(
                        "NetworkManager's rollback could not bring back: {}",
                        d.text()
                    ),
                ));
            }
            if d.is_empty() {
                log_at!(
                    log,
                    Level::Info,
                    "rollback: the kernel holds the state before the apply again (after {} ms)",
                    start.elapsed().as_millis()
                );
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::NetworkManager,
                    format!(
                        "NetworkManager's rollback did not bring back within {} s: {}",
                        wait.as_secs_f32(),
                        d.text()
                    ),
                ));
            }
            let pause = BACKOFF_MS[round.min(BACKOFF_MS.len() - 1)];
            round += 1;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

/// The expectation file of NM checkpoint `path`, kept for a no-commit apply whose
/// checkpoint needs no undo record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExpectFile {
    pub checkpoint: String,
    /// NM's `Created` of the checkpoint (milliseconds of `CLOCK_BOOTTIME`).
    pub created_ms: i64,
    pub expect: KernelExpect,
}

fn file_path(checkpoint: &str) -> Result<Option<PathBuf>> {
    let Some(n) = checkpoint
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Ok(None);
    };
    Ok(Some(
        record::namespace_dir()?.join(format!("nm-expect-{n}.json")),
    ))
}

/// Writes the expectation file of a checkpoint (mode 0600).
pub fn save(file: &ExpectFile) -> Result<()> {
    let Some(path) = file_path(&file.checkpoint)? else {
        return Ok(());
    };
    record::ensure_dir()?;
    let text = serde_json::to_vec(file)
        .map_err(|e| Error::bug(format!("serializing an expectation: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::new(
            ErrorKind::Kernel,
            format!("writing {}: {e}", path.display()),
        )
    })
}

/// The expectation file of a checkpoint, if there is one (unreadable: none).
pub fn load(checkpoint: &str) -> Option<ExpectFile> {
    let path = file_path(checkpoint).ok()??;
    let text = fs::read(path).ok()?;
    serde_json::from_slice::<ExpectFile>(&text)
        .ok()
        .filter(|f| f.checkpoint == checkpoint)
}

/// Removes the expectation file of a checkpoint (committed or rolled back).
pub fn remove(checkpoint: &str) {
    if let Ok(Some(path)) = file_path(checkpoint) {
        let _ = fs::remove_file(path);
    }
}

/// Removes the expectation files of checkpoints NM no longer holds (rolled back by NM's
/// own timeout, or lost with a NetworkManager that stopped): `held` is what NM holds,
/// `(path, created_ms)`.
pub fn remove_stale(held: &[(String, i64)]) {
    let Ok(dir) = record::namespace_dir() else {
        return;
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("nm-expect-") && name.ends_with(".json")) {
            continue;
        }
        let keep = fs::read(entry.path())
            .ok()
            .and_then(|t| serde_json::from_slice::<ExpectFile>(&t).ok())
            .is_some_and(|f| {
                held.iter()
                    .any(|(p, c)| *p == f.checkpoint && *c == f.created_ms)
            });
        if !keep {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether the namespace has expectation files (so that `remove_stale` is worth a call).
pub fn any_files() -> bool {
    let Ok(dir) = record::namespace_dir() else {
        return false;
    };
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("nm-expect-"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, addr, endpoint, link, PERM};

    fn before() -> KernelState {
        testkit::kernel(
            vec![link(2, "eth1"), link(3, "eth2")],
            vec![addr(2, "192.0.2.2", PERM), addr(3, "198.51.100.2", PERM)],
            vec![
                endpoint(1, "192.0.2.2", 3, Some(2)),
                endpoint(2, "198.51.100.2", 2, Some(3)),
            ],
        )
    }

    #[test]
    fn the_state_before_holds_and_differences_are_named() {
        let names = vec!["eth1".to_string()];
        let want = KernelExpect::capture(&before(), &names);
        assert_eq!(want.links.len(), 1);
        assert_eq!(want.endpoints.len(), 1, "eth2's endpoint is out of scope");
        assert!(want.differences(&before()).is_empty());

        // Right after NM answered: the apply's address and endpoint, not the old ones.
        let after = testkit::kernel(
            vec![link(2, "eth1"), link(3, "eth2")],
            vec![addr(2, "192.0.2.9", PERM), addr(3, "198.51.100.2", PERM)],
            vec![
                endpoint(3, "192.0.2.9", 2, Some(2)),
                endpoint(2, "198.51.100.2", 2, Some(3)),
            ],
        );
        let d = want.differences(&after);
        assert!(d.gone.is_empty());
        assert_eq!(
            d.pending,
            vec![
                "eth1: address 192.0.2.2/24",
                "eth1: address 192.0.2.9/24 still there",
                "endpoint 192.0.2.2 [signal, subflow]",
                "endpoint 192.0.2.9 [subflow] still there",
            ]
        );

        // The same endpoint under another id: back (NM numbers nothing; the kernel does).
        let renumbered = testkit::kernel(
            vec![link(2, "eth1")],
            vec![addr(2, "192.0.2.2", PERM)],
            vec![endpoint(7, "192.0.2.2", 3, Some(2))],
        );
        assert!(want.differences(&renumbered).is_empty());

        // The link deleted: gone, at once.
        let deleted = testkit::kernel(vec![link(3, "eth2")], vec![], vec![]);
        let d = want.differences(&deleted);
        assert_eq!(d.gone, vec!["eth1"]);
        assert!(d.pending.is_empty(), "{d:?}");
    }
}
