//! `check`'s live evidence: what the MPTCP connections and the kernel's counters show
//! (fallbacks, failed or unanswered joins, connections on one subflow), and the list of
//! connections with their subflows per interface that the report carries.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::facts::Facts;
use super::rules::{configured, finding};
use super::{Connection, ConnectionSubflow, Finding, Severity};
use crate::netlink::{EndpointFlags, TCP_ESTABLISHED, TCP_SYN_SENT};

pub(super) fn live_rules(f: &Facts, out: &mut Vec<Finding>) {
    let c = |name: &str| f.counters.get(name).copied().unwrap_or(0);
    // Connections that fell back to TCP.
    let fell: Vec<String> = f
        .connections
        .iter()
        .filter(|c| c.info.is_some_and(|i| i.fell_back()))
        .map(|c| format!("{} -> {}", c.local, c.remote))
        .collect();
    let fell_total = c("MPCapableFallbackACK") + c("MPCapableFallbackSYNACK");
    if !fell.is_empty() || fell_total > 0 {
        let now = if fell.is_empty() {
            String::new()
        } else {
            format!(
                "{} open connection(s) run as plain TCP ({}); ",
                fell.len(),
                fell.join(", ")
            )
        };
        out.push(finding(
            "fallback-to-tcp",
            Severity::Warning,
            format!(
                "{now}{fell_total} connection(s) fell back to plain TCP since the namespace \
                 started (MPCapableFallbackACK/SYNACK): the peer, or something on the way, \
                 does not speak MPTCP"
            ),
        ));
    }
    // Joins that failed, in words.
    let joins: BTreeMap<&str, &str> = [
        (
            "MPJoinSynTxConnectErr",
            "could not be sent (no route from the endpoint's address to the peer's?)",
        ),
        (
            "MPJoinSynTxBindErr",
            "could not bind their endpoint's address",
        ),
        ("MPJoinSynTxCreatSkErr", "could not create their socket"),
        (
            "MPJoinRejected",
            "sent by peers were refused (the subflows limit was reached)",
        ),
        (
            "MPJoinNoTokenFound",
            "named a connection this host does not know",
        ),
        ("MPJoinSynAckHMacFailure", "failed authentication (SYN/ACK)"),
        ("MPJoinAckHMacFailure", "failed authentication (ACK)"),
    ]
    .into_iter()
    .collect();
    let failed: Vec<String> = joins
        .iter()
        .filter(|(name, _)| c(name) > 0)
        .map(|(name, words)| format!("{} join(s) {words} ({name})", c(name)))
        .collect();
    if !failed.is_empty() {
        out.push(finding(
            "join-failures",
            Severity::Warning,
            format!(
                "additional subflows failed since the namespace started: {}",
                failed.join("; ")
            ),
        ));
    }
    // Joins waiting for an answer now: a join whose SYN timed out at least once (no
    // answer within the first retransmission timeout, 1 s), from an address that carries
    // nothing else of its connection. A join that is only a round trip old is not
    // evidence yet; and with subflow endpoints on separate networks the kernel also
    // tries each endpoint towards the peer's first address, which another network never
    // answers, while the same address reaches the peer over the address the peer
    // announced: that path is in use, and saying it gets no answer would mislead.
    for s in f.subflows.iter().filter(|s| s.state == TCP_SYN_SENT) {
        if s.retransmits == 0 {
            continue;
        }
        let conn = f
            .connections
            .iter()
            .find(|c| s.token.is_some() && c.info.map(|i| i.token) == s.token);
        if conn.is_some_and(|c| c.local == s.local) {
            // The connection's own first subflow: not a join.
            continue;
        }
        let carried = f.subflows.iter().any(|o| {
            o.token == s.token && o.state == TCP_ESTABLISHED && o.local.ip() == s.local.ip()
        });
        if carried {
            continue;
        }
        let name = ifname_of_subflow(f, s.local.ip(), s.ifindex);
        let from = name.map_or(String::new(), |n| format!(" ({n})"));
        out.push(
            finding(
                "join-unanswered",
                Severity::Warning,
                format!(
                    "a join from {}{from} to {} gets no answer (its SYN timed out {} \
                     time(s)): {} may not be reachable from {}, and no other subflow of \
                     this connection uses {}; while it waits it holds a slot of the \
                     subflows limit",
                    s.local.ip(),
                    s.remote,
                    s.retransmits,
                    s.remote.ip(),
                    s.local.ip(),
                    s.local.ip()
                ),
            )
            .on(name, Some(s.local.ip())),
        );
    }
    // Connections on one subflow although endpoints could add more.
    let subflow_eps: Vec<IpAddr> = f
        .kernel
        .endpoints
        .iter()
        .filter(configured)
        .filter(|e| e.flags.contains(EndpointFlags::SUBFLOW))
        .map(|e| e.address)
        .collect();
    // With a subflows limit of 0, subflows-limit-zero says why.
    let no_room = f.kernel.limits.is_some_and(|l| l.subflows == 0);
    for conn in &f.connections {
        let Some(info) = conn.info else { continue };
        if conn.state != TCP_ESTABLISHED || info.fell_back() || info.subflows > 0 || no_room {
            continue;
        }
        let others: Vec<String> = subflow_eps
            .iter()
            .filter(|a| **a != conn.local.ip())
            .map(IpAddr::to_string)
            .collect();
        if others.is_empty() {
            continue;
        }
        out.push(finding(
            "single-subflow",
            Severity::Warning,
            format!(
                "connection {} -> {} runs on one subflow, though this host has subflow \
                 endpoints ({}): no join from them is open now (a join that failed or was \
                 refused is not tried again on this connection){}",
                conn.local,
                conn.remote,
                others.join(", "),
                if info.add_addr_accepted == 0 {
                    ", and it uses no address the peer announced"
                } else {
                    ""
                }
            ),
        ));
    }
}

fn ifname_of_subflow(f: &Facts, local: IpAddr, ifindex: u32) -> Option<&str> {
    if ifindex != 0 {
        if let Some(n) = f.ifname(ifindex) {
            return Some(n);
        }
    }
    f.link_of(local).map(|l| l.name.as_str())
}

fn state_name(state: u8) -> &'static str {
    match state {
        1 => "established",
        2 => "syn-sent",
        3 => "syn-recv",
        4 => "fin-wait-1",
        5 => "fin-wait-2",
        6 => "time-wait",
        7 => "close",
        8 => "close-wait",
        9 => "last-ack",
        11 => "closing",
        _ => "other",
    }
}

pub(super) fn connections(f: &Facts) -> Vec<Connection> {
    f.connections
        .iter()
        .map(|c| {
            let token = c.info.map(|i| i.token);
            let subflows = f
                .subflows
                .iter()
                .filter(|s| token.is_some() && s.token == token)
                .map(|s| ConnectionSubflow {
                    local: s.local.to_string(),
                    remote: s.remote.to_string(),
                    interface: ifname_of_subflow(f, s.local.ip(), s.ifindex).map(str::to_string),
                    state: state_name(s.state),
                })
                .collect();
            Connection {
                local: c.local.to_string(),
                remote: c.remote.to_string(),
                fallback: c.info.is_some_and(|i| i.fell_back()),
                subflows,
            }
        })
        .collect()
}
