//! The findings of `check`, from the facts: pure. Each rule says what happens because of
//! what it found (not only what is set), and how to fix it. The codes are stable and
//! documented in the README; a code is never reused for another meaning.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::json;

use super::facts::Facts;
use super::{Finding, Fix, Report, Severity};
use crate::netlink::{Endpoint, EndpointFlags, Link, TCP_ESTABLISHED};
use crate::nm::mptcp::NM_MPTCP_FLAGS_DISABLED;
use crate::state::{ineligibility, MAX_ENDPOINTS, MPTCP_LIMIT_MAX};

pub fn report(f: &Facts) -> Report {
    let mut out = Vec::new();
    rules(f, &mut out);
    out.sort_by(|a, b| {
        (a.severity, a.code, &a.interface, &a.address).cmp(&(
            b.severity,
            b.code,
            &b.interface,
            &b.address,
        ))
    });
    Report {
        findings: out,
        connections: super::live::connections(f),
    }
}

pub(super) fn finding(code: &'static str, severity: Severity, message: String) -> Finding {
    Finding {
        code,
        severity,
        interface: None,
        address: None,
        message,
        fix: Fix::default(),
    }
}

impl Finding {
    pub(super) fn on(mut self, interface: Option<&str>, address: Option<IpAddr>) -> Self {
        self.interface = interface.map(str::to_string);
        self.address = address.map(|a| a.to_string());
        self
    }

    fn fix_state(mut self, state: serde_json::Value) -> Self {
        self.fix.state = Some(state);
        self
    }

    fn fix_command(mut self, command: String) -> Self {
        self.fix.command = Some(command);
        self
    }
}

pub(super) fn configured(e: &&Endpoint) -> bool {
    !e.flags.contains(EndpointFlags::IMPLICIT)
}

fn list(eps: &[&Endpoint]) -> String {
    eps.iter()
        .map(|e| e.address.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn rules(f: &Facts, out: &mut Vec<Finding>) {
    let k = &f.kernel;
    let Some(enabled) = k.mptcp_enabled else {
        out.push(finding(
            "no-mptcp",
            Severity::Error,
            "this kernel has no MPTCP (no /proc/sys/net/mptcp): every socket asking for MPTCP \
             gets plain TCP"
                .into(),
        ));
        return;
    };
    if !enabled {
        out.push(
            finding(
                "mptcp-disabled",
                Severity::Error,
                "MPTCP is disabled in this network namespace (net.mptcp.enabled = 0): sockets \
                 asking for MPTCP get plain TCP, and NetworkManager adds no endpoints"
                    .into(),
            )
            .fix_state(json!({"mptcp": {"enabled": true}}))
            .fix_command("sysctl -w net.mptcp.enabled=1".into()),
        );
    }
    let userspace = path_manager_rules(f, out);
    if !userspace {
        limit_rules(f, out);
    }
    endpoint_rules(f, out);
    nm_rules(f, out);
    super::live::live_rules(f, out);
}

/// Whether a finding can use [`Facts::mptcpd`]: the userspace path manager is in charge,
/// or NetworkManager handles some interface's endpoints. Only then does facts.rs look for
/// `mptcpd` (a scan of /proc, as long as the host has processes).
pub(super) fn wants_mptcpd(f: &Facts) -> bool {
    userspace_pm(f) || !nm_handles(f).is_empty()
}

fn userspace_pm(f: &Facts) -> bool {
    f.kernel.sysctls.path_manager.as_deref() == Some("userspace")
}

/// The interfaces whose endpoints NetworkManager really handles (see
/// [`nm_manages_endpoints`]), sorted.
fn nm_handles(f: &Facts) -> Vec<&str> {
    let mut names: Vec<&str> =
        f.nm.iter()
            .flat_map(|nm| nm.applied_flags.iter())
            .filter_map(|(name, flags)| Some((name, (*flags)?)))
            .filter(|(name, flags)| nm_manages_endpoints(f, name, *flags))
            .map(|(name, _)| name.as_str())
            .collect();
    names.sort_unstable();
    names
}

/// Another path manager in charge. Returns whether the userspace one is (then the
/// kernel's endpoints and limits do not matter).
fn path_manager_rules(f: &Facts, out: &mut Vec<Finding>) -> bool {
    let userspace = userspace_pm(f);
    if userspace && f.mptcpd.is_empty() {
        out.push(
            finding(
                "userspace-path-manager-without-daemon",
                Severity::Error,
                "the userspace path manager is in charge (net.mptcp.path_manager = userspace) \
                 but no mptcpd runs in this network namespace: nothing announces addresses or \
                 adds subflows, and the kernel's endpoints and limits are not used"
                    .into(),
            )
            .fix_state(json!({"mptcp": {"path-manager": "kernel"}}))
            .fix_command("sysctl -w net.mptcp.path_manager=kernel (or start mptcpd)".into()),
        );
    }
    if !f.mptcpd.is_empty() {
        let names = nm_handles(f);
        if !names.is_empty() {
            out.push(
                finding(
                    "mptcpd-beside-networkmanager",
                    Severity::Warning,
                    format!(
                        "mptcpd (pid {}) runs beside NetworkManager, which also manages the \
                         MPTCP endpoints of {}: each replaces what the other sets",
                        f.mptcpd
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        names.join(", ")
                    ),
                )
                .fix_command(
                    "stop mptcpd, or set connection.mptcp-flags disabled on those profiles".into(),
                ),
            );
        }
    }
    userspace
}

/// Whether NetworkManager manages the MPTCP endpoints of an interface whose applied
/// profile has these `connection.mptcp-flags`: not disabled, and an address it would give
/// an endpoint (loopback and link-local ones get none); with the default flags (0), only
/// where it did add one (the default adds none without a default route).
fn nm_manages_endpoints(f: &Facts, name: &str, flags: u32) -> bool {
    if flags & NM_MPTCP_FLAGS_DISABLED != 0 {
        return false;
    }
    let Some(link) = f.kernel.links.iter().find(|l| l.name == name) else {
        return false;
    };
    let addrs: Vec<IpAddr> = f
        .kernel
        .addresses_of(link.index)
        .filter(|a| ineligibility(a.address).is_none())
        .map(|a| a.address)
        .collect();
    !addrs.is_empty()
        && (flags != 0
            || f.kernel
                .endpoints
                .iter()
                .any(|e| configured(&e) && addrs.contains(&e.address)))
}

fn limit_rules(f: &Facts, out: &mut Vec<Finding>) {
    let k = &f.kernel;
    let Some(limits) = k.limits else { return };
    let eps: Vec<&Endpoint> = k.endpoints.iter().filter(configured).collect();
    let subflow: Vec<&Endpoint> = eps
        .iter()
        .copied()
        .filter(|e| e.flags.contains(EndpointFlags::SUBFLOW))
        .collect();
    let signal: Vec<&Endpoint> = eps
        .iter()
        .copied()
        .filter(|e| e.flags.contains(EndpointFlags::SIGNAL))
        .collect();
    let cap = |n: usize| n.clamp(1, MPTCP_LIMIT_MAX as usize);
    if limits.subflows == 0 && (!eps.is_empty() || k.endpoints.iter().any(|e| !configured(&e))) {
        let want = cap(subflow.len().max(signal.len()));
        out.push(
            finding(
                "subflows-limit-zero",
                Severity::Error,
                format!(
                    "the subflows limit is 0: no connection gets an additional subflow, \
                     neither from this host's endpoints ({}) nor from a peer joining the \
                     addresses it announces",
                    list(&eps)
                ),
            )
            .fix_state(json!({"mptcp": {"limits": {"subflows": want}}}))
            .fix_command(format!("ip mptcp limits set subflows {want}")),
        );
    } else if limits.subflows > 0 && (limits.subflows as usize) < subflow.len() {
        let want = cap(subflow.len());
        out.push(
            finding(
                "subflows-limit-low",
                Severity::Warning,
                format!(
                    "the subflows limit is {}, and there are {} subflow endpoints ({}): a \
                     connection opens at most {} additional subflows, so some endpoints are \
                     never used",
                    limits.subflows,
                    subflow.len(),
                    list(&subflow),
                    limits.subflows
                ),
            )
            .fix_state(json!({"mptcp": {"limits": {"subflows": want}}}))
            .fix_command(format!("ip mptcp limits set subflows {want}")),
        );
    }
    if limits.subflows > 0 && (limits.subflows as usize) < signal.len() {
        let want = cap(signal.len());
        out.push(
            finding(
                "signal-without-room",
                Severity::Warning,
                format!(
                    "{} signal endpoints ({}) invite each peer to open a subflow to every one of \
                     them, but the subflows limit {} accepts at most {} per connection",
                    signal.len(),
                    list(&signal),
                    limits.subflows,
                    limits.subflows
                ),
            )
            .fix_state(json!({"mptcp": {"limits": {"subflows": want}}}))
            .fix_command(format!("ip mptcp limits set subflows {want}")),
        );
    }
    if limits.add_addr_accepted == 0 && !subflow.is_empty() {
        let want = cap(subflow.len());
        let heard = f.counters.get("AddAddr").copied().unwrap_or(0);
        let evidence = if heard > 0 {
            format!("; peers announced {heard} address(es) so far (AddAddr), all ignored")
        } else {
            String::new()
        };
        out.push(
            finding(
                "add-addr-accepted-zero",
                Severity::Warning,
                format!(
                    "add_addr_accepted is 0: this host ignores every address a peer announces, \
                     so its subflow endpoints ({}) only ever reach the peer's first address; \
                     on separate networks that leaves one path{evidence}",
                    list(&subflow)
                ),
            )
            .fix_state(json!({"mptcp": {"limits": {"add-addr-accepted": want}}}))
            .fix_command(format!("ip mptcp limits set add_addr_accepted {want}")),
        );
    }
}

/// The link an endpoint is on: its `dev`, else the link holding its address.
fn endpoint_link<'a>(f: &'a Facts, e: &Endpoint) -> Option<&'a Link> {
    e.ifindex
        .and_then(|i| f.kernel.link(i))
        .or_else(|| f.link_of(e.address))
}

fn endpoint_rules(f: &Facts, out: &mut Vec<Finding>) {
    let k = &f.kernel;
    let mut rp_told = HashSet::new();
    for e in k.endpoints.iter().filter(configured) {
        let addr = k.addresses.iter().find(|a| a.address == e.address);
        let link = endpoint_link(f, e);
        let name = link.map(|l| l.name.as_str());
        let Some(addr) = addr else {
            out.push(
                finding(
                    "endpoint-without-address",
                    Severity::Error,
                    format!(
                        "endpoint {e}: no interface of this host has {}: no subflow can start \
                         from it, and announcing it sends peers to an address nobody answers",
                        e.address
                    ),
                )
                .on(name, Some(e.address))
                .fix_command(format!("ip mptcp endpoint delete id {}", e.id)),
            );
            continue;
        };
        if addr.is_dad_failed() {
            out.push(
                finding(
                    "endpoint-dad-failed",
                    Severity::Error,
                    format!(
                        "endpoint {e}: the address failed duplicate address detection (another \
                         host on the link uses it): the kernel never uses it"
                    ),
                )
                .on(name, Some(e.address)),
            );
        } else if addr.is_tentative() {
            out.push(
                finding(
                    "endpoint-tentative",
                    Severity::Warning,
                    format!(
                        "endpoint {e}: the address is still tentative (duplicate address \
                         detection has not finished): no subflow starts from it until it has"
                    ),
                )
                .on(name, Some(e.address)),
            );
        }
        match (e.ifindex, link) {
            (None, Some(l)) => out.push(
                finding(
                    "endpoint-without-interface",
                    Severity::Warning,
                    format!(
                        "endpoint {e} has no interface (dev): subflows from it leave by \
                         whatever route the kernel picks for the peer, which need not be {}",
                        l.name
                    ),
                )
                .on(Some(&l.name), Some(e.address))
                .fix_command(format!(
                    "ip mptcp endpoint delete id {} && ip mptcp endpoint add {} dev {} {}",
                    e.id,
                    e.address,
                    l.name,
                    e.flags
                        .mptcp_flags()
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            ),
            (_, Some(l)) if !l.is_up() || !l.has_carrier() => out.push(
                finding(
                    "endpoint-interface-down",
                    Severity::Warning,
                    format!(
                        "endpoint {e}: its interface {} is {}: no subflow uses it",
                        l.name,
                        if l.is_up() { "without carrier" } else { "down" }
                    ),
                )
                .on(Some(&l.name), Some(e.address)),
            ),
            _ => {}
        }
        if let Some(l) = link {
            if f.rp_filter.get(&l.name) == Some(&1) && rp_told.insert(l.name.clone()) {
                out.push(
                    finding(
                        "rp-filter-strict",
                        Severity::Warning,
                        format!(
                            "{} has strict reverse-path filtering (rp_filter 1) and MPTCP \
                             endpoints: packets of a subflow that arrive on another interface \
                             than the route back would use are dropped",
                            l.name
                        ),
                    )
                    .on(Some(&l.name), None)
                    .fix_command(format!("sysctl -w net.ipv4.conf.{}.rp_filter=2", l.name)),
                );
            }
        }
    }
    // The 8-endpoint cap, and who got none.
    if k.endpoints.len() >= MAX_ENDPOINTS {
        let has: HashSet<IpAddr> = k.endpoints.iter().map(|e| e.address).collect();
        let off = |name: &str| {
            f.nm.as_ref()
                .and_then(|nm| nm.applied_flags.get(name))
                .is_some_and(|v| v.is_some_and(|v| v & NM_MPTCP_FLAGS_DISABLED != 0))
        };
        let left: Vec<String> = k
            .addresses
            .iter()
            .filter(|a| ineligibility(a.address).is_none() && !a.is_temporary())
            .filter(|a| !has.contains(&a.address))
            .filter_map(|a| {
                let l = k.link(a.ifindex)?;
                (l.is_up() && !off(&l.name)).then(|| format!("{} on {}", a.address, l.name))
            })
            .collect();
        if !left.is_empty() {
            out.push(
                finding(
                    "endpoint-cap-reached",
                    Severity::Warning,
                    format!(
                        "the kernel holds {} MPTCP endpoints, its maximum per network \
                         namespace: {} got none",
                        k.endpoints.len(),
                        left.join(", ")
                    ),
                )
                .fix_command(
                    "remove endpoints you do not need (ip mptcp endpoint delete id N), or \
                     turn MPTCP off where it is not wanted (address-flags: [])"
                        .into(),
                ),
            );
        }
    }
    // Implicit endpoints on interfaces with MPTCP off.
    let configured_links: HashSet<u32> = k
        .endpoints
        .iter()
        .filter(configured)
        .filter_map(|e| endpoint_link(f, e).map(|l| l.index))
        .collect();
    // The kernel makes subflows through an implicit endpoint when it joins an address a
    // peer announced: with no room for additional subflows, or no announced address
    // accepted, it cannot do so again, and the entry it left is moot unless a subflow
    // still uses it.
    let usable = k
        .limits
        .is_none_or(|l| l.subflows > 0 && l.add_addr_accepted > 0);
    for e in k.endpoints.iter().filter(|e| !configured(e)) {
        let Some(l) = endpoint_link(f, e) else {
            continue;
        };
        let in_use = f
            .subflows
            .iter()
            .any(|s| s.local.ip() == e.address && s.state == TCP_ESTABLISHED);
        if !usable && !in_use {
            continue;
        }
        let nm_off =
            f.nm.as_ref()
                .and_then(|nm| nm.applied_flags.get(&l.name))
                .is_some_and(|v| v.is_some_and(|v| v & NM_MPTCP_FLAGS_DISABLED != 0));
        if nm_off || !configured_links.contains(&l.index) {
            out.push(
                finding(
                    "implicit-endpoint",
                    Severity::Warning,
                    format!(
                        "the kernel opened subflows from {} ({}) through an implicit endpoint, \
                         although {} has no MPTCP endpoint of its own: it does so towards \
                         addresses a peer announces, from whichever interface routes there",
                        e.address, l.name, l.name
                    ),
                )
                .on(Some(&l.name), Some(e.address))
                .fix_state(json!({"mptcp": {"limits": {"add-addr-accepted": 0}}}))
                .fix_command(
                    "to keep it unused: route the peer's announced addresses another way, or \
                     ignore announced addresses (limits add-addr-accepted 0), or open no \
                     additional subflows at all (limits subflows 0)"
                        .into(),
                ),
            );
        }
    }
}

fn nm_rules(f: &Facts, out: &mut Vec<Finding>) {
    let Some(nm) = &f.nm else { return };
    let k = &f.kernel;
    let mut names: Vec<&String> = nm.applied_flags.keys().collect();
    names.sort();
    for name in names {
        if nm.applied_flags.get(name) != Some(&Some(0)) {
            continue;
        }
        let Some(link) = k.links.iter().find(|l| &l.name == name) else {
            continue;
        };
        let addrs: Vec<IpAddr> = k
            .addresses_of(link.index)
            .filter(|a| ineligibility(a.address).is_none() && !a.is_temporary())
            .map(|a| a.address)
            .collect();
        let any_endpoint = k.endpoints.iter().any(|e| addrs.contains(&e.address));
        if addrs.is_empty() || any_endpoint {
            continue;
        }
        out.push(
            finding(
                "nm-default-flags",
                Severity::Warning,
                format!(
                    "{name}: its NetworkManager profile leaves connection.mptcp-flags to the \
                     default, which adds endpoints only on an interface with a default route; \
                     {name} has none, so its addresses ({}) get no endpoint",
                    addrs
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .on(Some(name), None)
            .fix_state(
                json!({"interfaces": [{"name": name, "mptcp": {"address-flags": ["subflow"]}}]}),
            )
            .fix_command(format!(
                "nmcli connection modify <profile of {name}> connection.mptcp-flags \
                 subflow,also-without-default-route && nmcli device reapply {name}"
            )),
        );
    }
}

#[cfg(test)]
mod tests;
