//! The undo record of a kernel-only apply: the kernel state of what the apply touches, as
//! read before its first write, and how it is put back.
//!
//! Held per interface the apply changes: whether the link was up, and its configured
//! (permanent) addresses with their flags; and every endpoint in the apply's scope (on an
//! address of those links before or after, or bound to one of them) with its id, flags,
//! port and interface. Restoring makes exactly those hold again — the same endpoint ids
//! included — and leaves everything else alone, so that `ip -j addr`, `ip mptcp endpoint
//! show` and the limits read the same before an apply and after its rollback.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::plan::{IfacePlan, IN_PLACE};
use crate::log::Level;
use crate::netlink::{
    self, Address, AddressFlags, AddressScope, Endpoint, EndpointFlags, KernelState, Writer,
};
use crate::state::ineligibility;
use crate::{log_at, Error, ErrorKind, Log, Result};

/// The address flags a restored address is added with again (the rest are the kernel's
/// bookkeeping: tentative, deprecated, ...).
const RESTORED_ADDRESS_FLAGS: u32 = AddressFlags::NODAD
    | AddressFlags::NOPREFIXROUTE
    | AddressFlags::MANAGETEMPADDR
    | AddressFlags::HOMEADDRESS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LinkUndo {
    pub name: String,
    pub ifindex: u32,
    pub up: bool,
    /// Configured addresses: `(address, prefix, IFA_F_* flags)`.
    pub addresses: Vec<(IpAddr, u8, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EndpointUndo {
    pub id: u8,
    pub address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub flags: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
}

impl EndpointUndo {
    fn of(e: &Endpoint) -> Self {
        EndpointUndo {
            id: e.id,
            address: e.address,
            port: e.port,
            flags: e.flags.bits(),
            ifindex: e.ifindex,
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            id: self.id,
            address: self.address,
            port: self.port,
            flags: EndpointFlags(self.flags),
            ifindex: self.ifindex,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct KernelUndo {
    pub links: Vec<LinkUndo>,
    /// The addresses whose endpoints are restored.
    pub scope: Vec<IpAddr>,
    pub endpoints: Vec<EndpointUndo>,
}

/// Configured addresses: permanent, not the kernel's own IPv6 link-local ones.
fn configured(a: &Address) -> bool {
    a.is_permanent() && !(a.address.is_ipv6() && ineligibility(a.address) == Some("link-local"))
}

/// Whether `now` is the recorded endpoint `was` with other backup/fullmesh bits only (the
/// same id, address, port and interface): the kernel changes that in place.
fn in_place_of(was: &Endpoint, now: &Endpoint) -> bool {
    let differ = was.flags.bits() ^ now.flags.bits();
    differ != 0
        && differ & !IN_PLACE == 0
        && was.id == now.id
        && was.address == now.address
        && was.port == now.port
        && was.ifindex == now.ifindex
        && was.flags.bits() & EndpointFlags::IMPLICIT == 0
}

impl KernelUndo {
    /// What `plan` touches, as `kernel` holds it now.
    pub fn capture(plan: &[IfacePlan], kernel: &KernelState) -> Self {
        let mut links = Vec::new();
        let mut scope: HashSet<IpAddr> = HashSet::new();
        for p in plan {
            let Some(link) = kernel.link(p.ifindex) else {
                continue;
            };
            links.push(LinkUndo {
                name: link.name.clone(),
                ifindex: link.index,
                up: link.is_up(),
                addresses: kernel
                    .addresses_of(link.index)
                    .filter(|a| configured(a))
                    .map(|a| {
                        (
                            a.address,
                            a.prefix_len,
                            a.flags.bits() & RESTORED_ADDRESS_FLAGS,
                        )
                    })
                    .collect(),
            });
            scope.extend(&p.scope);
        }
        let mut undo = KernelUndo {
            links,
            scope: scope.into_iter().collect(),
            endpoints: Vec::new(),
        };
        undo.scope.sort();
        undo.endpoints = kernel
            .endpoints
            .iter()
            .filter(|e| undo.in_scope(e))
            .map(EndpointUndo::of)
            .collect();
        undo
    }

    fn in_scope(&self, e: &Endpoint) -> bool {
        self.scope.contains(&e.address)
            || e.ifindex
                .is_some_and(|i| self.links.iter().any(|l| l.ifindex == i))
    }

    /// Puts the record back. Every write is tried; then the kernel is read again and
    /// what did not come back is the error.
    pub async fn restore(&self, writer: &mut Writer, log: &Log) -> Result<()> {
        let names: Vec<String> = self.links.iter().map(|l| l.name.clone()).collect();
        let kernel = netlink::read_kernel_for(&names, log).await?;
        let mut first: Option<Error> = None;
        let mut note = |what: String, r: Result<()>| match r {
            Ok(()) => log_at!(log, Level::Debug, "rollback: {what}"),
            Err(e) => {
                log_at!(log, Level::Error, "rollback: {what}: {}", e.msg());
                first.get_or_insert(Error::new(e.kind(), format!("{what}: {}", e.msg())));
            }
        };
        let live: Vec<&LinkUndo> = self
            .links
            .iter()
            .filter(|l| kernel.link(l.ifindex).is_some_and(|k| k.name == l.name))
            .collect();
        for l in &self.links {
            if !live.iter().any(|x| x.ifindex == l.ifindex) {
                note(
                    format!("{} (ifindex {})", l.name, l.ifindex),
                    Err(Error::new(
                        ErrorKind::Kernel,
                        "the link is gone or was renamed; not restored",
                    )),
                );
            }
        }
        // 1. Links that were up, up again (so that their addresses can be added).
        for l in &live {
            let now_up = kernel.link(l.ifindex).is_some_and(|k| k.is_up());
            if l.up && !now_up {
                note(
                    format!("{} up", l.name),
                    writer.set_link_up(l.ifindex, true).await,
                );
            }
        }
        let recorded: Vec<Endpoint> = self.endpoints.iter().map(EndpointUndo::endpoint).collect();
        // 2. Endpoints that differ from the record in backup/fullmesh only: changed back in
        //    place, as the apply changed them, so that the subflows using them stay.
        let mut in_place: Vec<&Endpoint> = Vec::new();
        for e in kernel.endpoints.iter().filter(|e| self.in_scope(e)) {
            let Some(r) = recorded.iter().find(|r| in_place_of(r, e)) else {
                continue;
            };
            in_place.push(r);
            note(
                format!(
                    "endpoint {e}: flags back to {} in place",
                    r.flags.mptcp_flags()
                ),
                writer.set_endpoint_flags(r).await,
            );
        }
        // 3. Endpoints in scope that the record does not hold, as they are now.
        for e in kernel.endpoints.iter().filter(|e| self.in_scope(e)) {
            if !recorded.contains(e) && !recorded.iter().any(|r| in_place_of(r, e)) {
                note(
                    format!("endpoint {e} removed"),
                    writer.delete_endpoint(e.id).await,
                );
            }
        }
        // 4. Addresses.
        for l in &live {
            let now: Vec<&Address> = kernel
                .addresses_of(l.ifindex)
                .filter(|a| configured(a))
                .collect();
            let want: HashSet<(IpAddr, u8)> =
                l.addresses.iter().map(|(a, p, _)| (*a, *p)).collect();
            for a in &now {
                if !want.contains(&(a.address, a.prefix_len)) {
                    note(
                        format!("{}: address {}/{} removed", l.name, a.address, a.prefix_len),
                        writer
                            .delete_address(l.ifindex, a.address, a.prefix_len)
                            .await,
                    );
                }
            }
            for (ip, prefix, flags) in &l.addresses {
                if now
                    .iter()
                    .any(|a| a.address == *ip && a.prefix_len == *prefix)
                {
                    continue;
                }
                let addr = Address {
                    ifindex: l.ifindex,
                    address: *ip,
                    prefix_len: *prefix,
                    flags: AddressFlags(*flags),
                    scope: AddressScope::Universe,
                    valid_lft: None,
                    preferred_lft: None,
                };
                note(
                    format!("{}: address {ip}/{prefix} added back", l.name),
                    writer.add_address(&addr).await,
                );
            }
        }
        // 5. Recorded endpoints that are missing, with their ids (implicit ones are the
        //    kernel's to make).
        for (u, e) in self.endpoints.iter().zip(&recorded) {
            if u.flags & EndpointFlags::IMPLICIT != 0
                || kernel.endpoints.contains(e)
                || in_place.contains(&e)
            {
                continue;
            }
            note(
                format!("endpoint {e} added back"),
                writer.add_endpoint(e).await,
            );
        }
        // 6. Links that were down, down again.
        for l in &live {
            let now_up = kernel.link(l.ifindex).is_some_and(|k| k.is_up());
            if !l.up && now_up {
                note(
                    format!("{} down", l.name),
                    writer.set_link_up(l.ifindex, false).await,
                );
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        self.verify(&names, log).await
    }

    /// Reads the kernel again: what the record holds must be there.
    async fn verify(&self, names: &[String], log: &Log) -> Result<()> {
        let kernel = netlink::read_kernel_for(names, log).await?;
        let mut missing = Vec::new();
        for l in &self.links {
            let Some(k) = kernel.link(l.ifindex) else {
                continue;
            };
            if k.is_up() != l.up {
                missing.push(format!("{} {}", l.name, if l.up { "up" } else { "down" }));
            }
            let now: HashSet<(IpAddr, u8)> = kernel
                .addresses_of(l.ifindex)
                .filter(|a| configured(a))
                .map(|a| (a.address, a.prefix_len))
                .collect();
            for (ip, prefix, _) in &l.addresses {
                if !now.contains(&(*ip, *prefix)) {
                    missing.push(format!("{}: address {ip}/{prefix}", l.name));
                }
            }
        }
        for u in self
            .endpoints
            .iter()
            .filter(|u| u.flags & EndpointFlags::IMPLICIT == 0)
        {
            if !kernel.endpoints.contains(&u.endpoint()) {
                missing.push(format!("endpoint {}", u.endpoint()));
            }
        }
        if missing.is_empty() {
            log_at!(
                log,
                Level::Info,
                "rollback: the kernel holds the state before the apply again"
            );
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Kernel,
            format!("the rollback did not bring back: {}", missing.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: u8, flags: u32) -> Endpoint {
        Endpoint {
            id,
            address: "10.2.2.2".parse().unwrap(),
            port: None,
            flags: EndpointFlags(flags),
            ifindex: Some(3),
        }
    }

    #[test]
    fn backup_and_fullmesh_are_restored_in_place_only() {
        use EndpointFlags as F;
        let was = ep(2, F::SUBFLOW);
        assert!(in_place_of(&was, &ep(2, F::SUBFLOW | F::BACKUP)));
        assert!(in_place_of(
            &was,
            &ep(2, F::SUBFLOW | F::FULLMESH | F::BACKUP)
        ));
        assert!(in_place_of(
            &ep(2, F::SUBFLOW | F::BACKUP),
            &ep(2, F::SUBFLOW)
        ));
        // The same endpoint, another id, or another flag: not in place.
        assert!(!in_place_of(&was, &was));
        assert!(!in_place_of(&was, &ep(3, F::SUBFLOW | F::BACKUP)));
        assert!(!in_place_of(&was, &ep(2, F::SIGNAL | F::SUBFLOW)));
        let mut other_port = ep(2, F::SIGNAL | F::BACKUP);
        other_port.port = Some(10100);
        assert!(!in_place_of(&ep(2, F::SIGNAL), &other_port));
    }
}
