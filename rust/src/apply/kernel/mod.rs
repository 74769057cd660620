//! The kernel-only backend of the apply pipeline: addresses, links and MPTCP endpoints
//! written over netlink, for hosts without NetworkManager (containers, appliances).
//!
//! - `plan.rs`: the netlink writes per interface (pure);
//! - `undo.rs`: the undo record (the kernel state of what the apply touches, read before
//!   its first write) and how it is put back;
//! - here: the backend.
//!
//! Per-address `mptcp-flags` are honoured exactly, and `mptcp-port`; the interface's
//! `address-flags` cover its other eligible addresses. Everything written is runtime
//! state: it does not survive a reboot.

mod plan;
mod undo;

use std::collections::HashSet;
use std::time::Duration;

use self::plan::IfacePlan;
pub use self::undo::KernelUndo;
use super::checks::View;
use super::pipeline::{Backend, Plan, Reporter};
use super::record::BackendName;
use super::report::Action;
use super::ApplyOptions;
use crate::log::Level;
use crate::netlink::{KernelState, Writer};
use crate::nm::query::system_bus_present;
use crate::state::NetworkState;
use crate::verify::Mode;
use crate::{log_at, Log, Result};

/// How long the kernel backend waits for NetworkManager's answer when it looks whether NM
/// manages the interfaces it changes (a warning only).
const NM_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Default)]
pub struct KernelBackend {
    /// Named interfaces that a running NetworkManager manages.
    nm_managed: HashSet<String>,
}

pub struct KernelPlan(Vec<IfacePlan>);

impl Plan for KernelPlan {
    fn changed(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.iter().map(|p| p.name.clone()).collect();
        v.sort();
        v
    }

    fn actions(&self) -> Vec<(String, Vec<Action>)> {
        self.0
            .iter()
            .map(|p| {
                // A deleted endpoint whose address gets a new one is replaced.
                let readded: HashSet<std::net::IpAddr> =
                    p.add_endpoints.iter().map(|e| e.address).collect();
                let replaced: HashSet<std::net::IpAddr> = p
                    .del_endpoints
                    .iter()
                    .map(|e| e.address)
                    .filter(|ip| readded.contains(ip))
                    .collect();
                let not_replaced = |eps: &[crate::netlink::Endpoint]| {
                    eps.iter().any(|e| !replaced.contains(&e.address))
                };
                // In the order they happen; each at most once.
                let a: Vec<Action> = [
                    (p.link_up == Some(true), Action::LinkUp),
                    (not_replaced(&p.del_endpoints), Action::EndpointRemoved),
                    (!p.del_addresses.is_empty(), Action::AddressRemoved),
                    (!p.add_addresses.is_empty(), Action::AddressAdded),
                    (!replaced.is_empty(), Action::EndpointReplaced),
                    (not_replaced(&p.add_endpoints), Action::EndpointAdded),
                    (!p.set_flags.is_empty(), Action::EndpointFlagsChangedInPlace),
                    (p.link_up == Some(false), Action::LinkDown),
                ]
                .into_iter()
                .filter_map(|(happens, action)| happens.then_some(action))
                .collect();
                (p.name.clone(), a)
            })
            .collect()
    }
}

impl Backend for KernelBackend {
    const NAME: BackendName = BackendName::Kernel;
    const MODE: Mode = Mode::KernelOnly;
    type Plan = KernelPlan;
    type Undo = KernelUndo;

    /// Nothing to read but the kernel; where a system bus exists, whether NetworkManager
    /// manages the named interfaces (it would replace their endpoints at its next
    /// reapply). Where no bus exists, no D-Bus connection is attempted.
    async fn read(&mut self, state: &NetworkState, log: &Log) -> Result<()> {
        if !system_bus_present() || state.interfaces.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = state.interfaces.iter().map(|i| i.name.clone()).collect();
        match tokio::time::timeout(NM_PROBE_TIMEOUT, crate::nm::query::managed(&names)).await {
            Ok(Ok(managed)) => self.nm_managed = managed.into_iter().collect(),
            Ok(Err(e)) => log_at!(
                log,
                Level::Debug,
                "NetworkManager not asked about the interfaces: {}",
                e.msg()
            ),
            Err(_) => log_at!(
                log,
                Level::Debug,
                "NetworkManager did not answer within {} ms",
                NM_PROBE_TIMEOUT.as_millis()
            ),
        }
        Ok(())
    }

    fn prepare(&self, state: &mut NetworkState, view: &mut View<'_>, log: &Log) -> Result<()> {
        let none = HashSet::new();
        for iface in &mut state.interfaces {
            let link = view.link(&iface.name);
            super::checks::drop_kernel_owned(iface, link, view.kernel, &none, log);
        }
        Ok(())
    }

    fn plan(&self, state: &NetworkState, view: &View<'_>, log: &Log) -> Result<KernelPlan> {
        let mut out = Vec::new();
        for iface in &state.interfaces {
            match plan::plan_interface(iface, view, log)? {
                Some(p) => {
                    log_at!(log, Level::Info, "{}: {}", p.name, p.why.join("; "));
                    if self.nm_managed.contains(&p.name) {
                        log_at!(
                            log,
                            Level::Warn,
                            "{}: NetworkManager manages this interface and replaces its \
                             endpoints at its next reapply or activation; set its profile's \
                             connection.mptcp-flags to disabled (0x1) to keep it off them",
                            p.name
                        );
                    }
                    out.push(p);
                }
                None => log_at!(
                    log,
                    Level::Debug,
                    "{}: holds already, not touched",
                    iface.name
                ),
            }
        }
        Ok(KernelPlan(out))
    }

    async fn begin(
        &mut self,
        plan: &KernelPlan,
        kernel: &KernelState,
        _opts: &ApplyOptions,
        _log: &Log,
    ) -> Result<KernelUndo> {
        Ok(KernelUndo::capture(&plan.0, kernel))
    }

    async fn execute(
        &self,
        plan: &KernelPlan,
        writer: &mut Writer,
        _opts: &ApplyOptions,
        report: &Reporter<'_>,
        _log: &Log,
    ) -> Result<()> {
        let total = plan.0.len();
        report.step("writing", 0, total);
        // Links up first, then every deletion (so that the endpoint budget has room and a
        // re-created endpoint's address is free), then additions, then links down.
        for p in &plan.0 {
            if p.link_up == Some(true) {
                writer.set_link_up(p.ifindex, true).await?;
            }
        }
        for p in &plan.0 {
            for e in &p.del_endpoints {
                writer.delete_endpoint(e.id).await?;
            }
        }
        for p in &plan.0 {
            for (ip, prefix) in &p.del_addresses {
                writer.delete_address(p.ifindex, *ip, *prefix).await?;
            }
        }
        for (done, p) in plan.0.iter().enumerate() {
            for a in &p.add_addresses {
                writer.add_address(a).await?;
            }
            for e in &p.set_flags {
                writer.set_endpoint_flags(e).await?;
            }
            for e in &p.add_endpoints {
                writer.add_endpoint(e).await?;
            }
            report.step("writing", done + 1, total);
        }
        for p in &plan.0 {
            if p.link_up == Some(false) {
                writer.set_link_up(p.ifindex, false).await?;
            }
        }
        Ok(())
    }

    async fn commit(&mut self, _undo: &KernelUndo, _log: &Log) -> Result<()> {
        Ok(())
    }

    async fn roll_back(&mut self, undo: KernelUndo, writer: &mut Writer, log: &Log) -> Result<()> {
        undo.restore(writer, log).await
    }

    fn checkpoint(_undo: &KernelUndo) -> Option<String> {
        None
    }

    fn needs_record(_undo: &KernelUndo) -> bool {
        true
    }
}
