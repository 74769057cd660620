//! Each rule against made-up facts: the healthy host yields nothing, and each broken
//! setting yields its finding with its code.

use super::*;
use crate::check::facts::NmFacts;
use crate::netlink::TCP_SYN_SENT;
use crate::netlink::{
    Address, AddressFlags, AddressScope, KernelState, Limits, MptcpConnection, MptcpInfo,
    MptcpSysctls, OperState, Subflow,
};
use crate::state::InterfaceType;

const PERM: u32 = AddressFlags::PERMANENT;
const UP: u32 = 0x1 | 0x10000; // IFF_UP | IFF_LOWER_UP

fn link(index: u32, name: &str) -> Link {
    Link {
        index,
        name: name.into(),
        iface_type: InterfaceType::Veth,
        flags: UP,
        oper_state: OperState::Up,
    }
}

fn addr(ifindex: u32, ip: &str, flags: u32) -> Address {
    Address {
        ifindex,
        address: ip.parse().unwrap(),
        prefix_len: 24,
        flags: AddressFlags(flags),
        scope: AddressScope::Universe,
        valid_lft: None,
        preferred_lft: None,
    }
}

fn ep(id: u8, ip: &str, flags: u32, ifindex: Option<u32>) -> Endpoint {
    Endpoint {
        id,
        address: ip.parse().unwrap(),
        port: None,
        flags: EndpointFlags(flags),
        ifindex,
    }
}

const SUBFLOW: u32 = EndpointFlags::SUBFLOW;
const SIGNAL: u32 = EndpointFlags::SIGNAL;

/// A healthy client: two paths, subflow endpoints bound to their links, limits that let
/// both be used.
fn healthy() -> Facts {
    Facts {
        kernel: KernelState {
            links: vec![link(2, "eth1"), link(3, "eth2")],
            addresses: vec![addr(2, "10.1.1.2", PERM), addr(3, "10.2.2.2", PERM)],
            mptcp_enabled: Some(true),
            limits: Some(Limits {
                subflows: 2,
                add_addr_accepted: 2,
            }),
            endpoints: vec![
                ep(1, "10.1.1.2", SUBFLOW, Some(2)),
                ep(2, "10.2.2.2", SUBFLOW, Some(3)),
            ],
            sysctls: MptcpSysctls {
                path_manager: Some("kernel".into()),
                scheduler: Some("default".into()),
                available_schedulers: vec!["default".into()],
            },
        },
        ..Facts::default()
    }
}

fn codes(f: &Facts) -> Vec<&'static str> {
    report(f).findings.iter().map(|f| f.code).collect()
}

#[test]
fn a_healthy_host_yields_nothing() {
    assert_eq!(codes(&healthy()), Vec::<&str>::new());
}

#[test]
fn disabled_and_absent_mptcp() {
    let mut f = healthy();
    f.kernel.mptcp_enabled = Some(false);
    let r = report(&f);
    assert_eq!(r.findings[0].code, "mptcp-disabled");
    assert_eq!(r.findings[0].severity, Severity::Error);
    assert_eq!(
        r.findings[0].fix.command.as_deref(),
        Some("sysctl -w net.mptcp.enabled=1")
    );
    f.kernel.mptcp_enabled = None;
    assert_eq!(codes(&f), vec!["no-mptcp"]);
}

#[test]
fn the_seeds_trap_add_addr_accepted_zero() {
    let mut f = healthy();
    f.kernel.limits = Some(Limits {
        subflows: 2,
        add_addr_accepted: 0,
    });
    f.counters.insert("AddAddr".into(), 3);
    let r = report(&f);
    assert_eq!(codes(&f), vec!["add-addr-accepted-zero"]);
    let m = &r.findings[0];
    assert!(
        m.message.contains("ignores every address a peer announces"),
        "{m:?}"
    );
    assert!(m.message.contains("3 address(es)"), "{m:?}");
    assert_eq!(
        m.fix.state,
        Some(json!({"mptcp": {"limits": {"add-addr-accepted": 2}}}))
    );
}

#[test]
fn subflow_limits() {
    let mut f = healthy();
    f.kernel.limits = Some(Limits {
        subflows: 0,
        add_addr_accepted: 2,
    });
    assert_eq!(codes(&f), vec!["subflows-limit-zero"]);
    f.kernel.limits = Some(Limits {
        subflows: 1,
        add_addr_accepted: 2,
    });
    assert_eq!(codes(&f), vec!["subflows-limit-low"]);
    // A server: three signal endpoints, room for one.
    f.kernel.endpoints = vec![
        ep(1, "10.1.1.2", SIGNAL, Some(2)),
        ep(2, "10.2.2.2", SIGNAL, Some(3)),
    ];
    assert_eq!(codes(&f), vec!["signal-without-room"]);
}

#[test]
fn endpoint_addresses_and_interfaces() {
    let mut f = healthy();
    f.kernel.addresses[1].flags = AddressFlags(PERM | AddressFlags::TENTATIVE);
    f.kernel.endpoints[0].ifindex = None;
    f.kernel.endpoints.push(ep(3, "192.0.2.9", SUBFLOW, None));
    f.kernel.links[1].flags = 0x1; // up, no carrier
    let got = codes(&f);
    assert_eq!(
        got,
        vec![
            "endpoint-without-address",
            "endpoint-interface-down",
            "endpoint-tentative",
            "endpoint-without-interface",
            // Three subflow endpoints now, the limit 2.
            "subflows-limit-low",
        ],
        "{:#?}",
        report(&f).findings
    );
    let f2 = {
        let mut f = healthy();
        f.kernel.addresses[0].flags = AddressFlags(PERM | AddressFlags::DADFAILED);
        f
    };
    assert_eq!(codes(&f2), vec!["endpoint-dad-failed"]);
}

#[test]
fn strict_rp_filter_once_per_interface() {
    let mut f = healthy();
    f.rp_filter.insert("eth2".into(), 1);
    f.rp_filter.insert("eth1".into(), 2);
    let r = report(&f);
    assert_eq!(codes(&f), vec!["rp-filter-strict"]);
    assert_eq!(r.findings[0].interface.as_deref(), Some("eth2"));
}

#[test]
fn the_cap_names_who_got_none() {
    let mut f = healthy();
    for i in 0..7u8 {
        let ip = format!("10.9.9.{}", i + 1);
        f.kernel.addresses.push(addr(2, &ip, PERM));
        if i < 6 {
            f.kernel.endpoints.push(ep(10 + i, &ip, SUBFLOW, Some(2)));
        }
    }
    f.kernel.addresses.sort_by_key(|a| a.ifindex);
    let r = report(&f);
    let cap: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|x| x.code == "endpoint-cap-reached")
        .collect();
    assert_eq!(cap.len(), 1, "{:#?}", r.findings);
    assert!(
        cap[0].message.contains("10.9.9.7 on eth1 got none"),
        "{cap:?}"
    );
}

#[test]
fn implicit_endpoint_on_an_interface_without_endpoints() {
    let mut f = healthy();
    f.kernel.endpoints = vec![
        ep(1, "10.1.1.2", SUBFLOW, Some(2)),
        ep(2, "10.2.2.2", EndpointFlags::IMPLICIT, None),
    ];
    let r = report(&f);
    assert_eq!(codes(&f), vec!["implicit-endpoint"]);
    assert_eq!(r.findings[0].interface.as_deref(), Some("eth2"));
    // Its fix applied (no announced address accepted): the kernel cannot use it again.
    f.kernel.limits = Some(Limits {
        subflows: 2,
        add_addr_accepted: 0,
    });
    assert_eq!(codes(&f), vec!["add-addr-accepted-zero"]);
    // ... unless a subflow still runs from it.
    f.subflows = vec![Subflow {
        local: "10.2.2.2:40001".parse().unwrap(),
        remote: "10.2.2.1:80".parse().unwrap(),
        state: TCP_ESTABLISHED,
        ifindex: 0,
        token: Some(7),
        remote_token: None,
        local_id: Some(2),
        remote_id: Some(1),
        flags: 0,
        retransmits: 0,
    }];
    assert_eq!(
        codes(&f),
        vec!["add-addr-accepted-zero", "implicit-endpoint"]
    );
    // No room for additional subflows at all: subflows-limit-zero says so.
    f.subflows.clear();
    f.kernel.limits = Some(Limits {
        subflows: 0,
        add_addr_accepted: 1,
    });
    assert_eq!(codes(&f), vec!["subflows-limit-zero"]);
}

#[test]
fn path_managers() {
    let mut f = healthy();
    f.kernel.sysctls.path_manager = Some("userspace".into());
    assert_eq!(codes(&f), vec!["userspace-path-manager-without-daemon"]);
    f.mptcpd = vec![42];
    assert_eq!(codes(&f), Vec::<&str>::new());
    f.kernel.sysctls.path_manager = Some("kernel".into());
    f.nm = Some(NmFacts {
        version: "1.42.4".into(),
        applied_flags: [("eth1".to_string(), Some(0x28))].into_iter().collect(),
    });
    assert_eq!(codes(&f), vec!["mptcpd-beside-networkmanager"]);
    // NM's own interfaces are those it gives endpoints: not loopback, and with the
    // default flags (0) only where it added one.
    f.kernel.links.push(link(1, "lo"));
    f.kernel.addresses.push(Address {
        scope: AddressScope::Host,
        prefix_len: 8,
        ..addr(1, "127.0.0.1", PERM)
    });
    f.kernel.addresses.sort_by_key(|a| a.ifindex);
    f.kernel.endpoints.truncate(1);
    f.nm = Some(NmFacts {
        version: "1.42.4".into(),
        applied_flags: [
            ("eth1".to_string(), Some(0)),
            ("eth2".to_string(), Some(0)),
            ("lo".to_string(), Some(0)),
        ]
        .into_iter()
        .collect(),
    });
    let r = report(&f);
    let m: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|x| x.code == "mptcpd-beside-networkmanager")
        .collect();
    assert_eq!(m.len(), 1, "{:#?}", r.findings);
    assert!(
        m[0].message
            .contains("manages the MPTCP endpoints of eth1: "),
        "{m:?}"
    );
    f.nm.as_mut()
        .unwrap()
        .applied_flags
        .insert("eth1".into(), Some(NM_MPTCP_FLAGS_DISABLED));
    assert!(!codes(&f).contains(&"mptcpd-beside-networkmanager"));
}

#[test]
fn mptcpd_is_looked_for_only_where_a_finding_uses_it() {
    let mut f = healthy();
    assert!(!wants_mptcpd(&f), "kernel path manager, no NetworkManager");
    f.nm = Some(NmFacts {
        version: "1.42.4".into(),
        applied_flags: [
            ("eth1".to_string(), Some(NM_MPTCP_FLAGS_DISABLED)),
            ("eth2".to_string(), None),
        ]
        .into_iter()
        .collect(),
    });
    assert!(!wants_mptcpd(&f), "NetworkManager handles no endpoint");
    f.nm.as_mut()
        .unwrap()
        .applied_flags
        .insert("eth2".into(), Some(0x28));
    assert!(wants_mptcpd(&f), "NetworkManager handles eth2's endpoints");
    f.nm = None;
    f.kernel.sysctls.path_manager = Some("userspace".into());
    assert!(wants_mptcpd(&f), "the userspace path manager");
}

#[test]
fn networkmanagers_default_flags_without_endpoints() {
    let mut f = healthy();
    f.kernel.endpoints.truncate(1);
    f.nm = Some(NmFacts {
        version: "1.42.4".into(),
        applied_flags: [
            ("eth1".to_string(), Some(0x28)),
            ("eth2".to_string(), Some(0)),
        ]
        .into_iter()
        .collect(),
    });
    let r = report(&f);
    assert_eq!(codes(&f), vec!["nm-default-flags"]);
    assert_eq!(r.findings[0].interface.as_deref(), Some("eth2"));
}

#[test]
fn live_evidence() {
    let mut f = healthy();
    let info = MptcpInfo {
        token: 7,
        ..MptcpInfo::default()
    };
    f.connections = vec![MptcpConnection {
        local: "10.1.1.2:40000".parse().unwrap(),
        remote: "10.1.1.1:80".parse().unwrap(),
        state: TCP_ESTABLISHED,
        info: Some(info),
    }];
    f.subflows = vec![
        Subflow {
            local: "10.1.1.2:40000".parse().unwrap(),
            remote: "10.1.1.1:80".parse().unwrap(),
            state: TCP_ESTABLISHED,
            ifindex: 0,
            token: Some(7),
            remote_token: None,
            local_id: Some(0),
            remote_id: Some(0),
            flags: 0,
            retransmits: 0,
        },
        Subflow {
            local: "10.2.2.2:40001".parse().unwrap(),
            remote: "10.1.1.1:80".parse().unwrap(),
            state: TCP_SYN_SENT,
            ifindex: 3,
            token: Some(7),
            remote_token: None,
            local_id: Some(2),
            remote_id: Some(0),
            flags: 0,
            retransmits: 1,
        },
    ];
    f.counters.insert("MPJoinSynTxConnectErr".into(), 2);
    let r = report(&f);
    assert_eq!(
        codes(&f),
        vec!["join-failures", "join-unanswered", "single-subflow"],
        "{:#?}",
        r.findings
    );
    let stuck = r
        .findings
        .iter()
        .find(|x| x.code == "join-unanswered")
        .unwrap();
    assert!(
        stuck
            .message
            .contains("10.2.2.2 (eth2) to 10.1.1.1:80 gets no answer (its SYN timed out 1"),
        "{stuck:?}"
    );
    assert_eq!(r.connections.len(), 1);
    let ifs: Vec<Option<&str>> = r.connections[0]
        .subflows
        .iter()
        .map(|s| s.interface.as_deref())
        .collect();
    assert_eq!(ifs, vec![Some("eth1"), Some("eth2")]);
    // A fallback.
    f.connections[0].info = Some(MptcpInfo {
        flags: crate::netlink::MPTCP_INFO_FLAG_FALLBACK,
        ..info
    });
    assert!(codes(&f).contains(&"fallback-to-tcp"));
    // One subflow, the join gone: what happened, and no advice to raise a limit.
    f.connections[0].info = Some(info);
    f.subflows.truncate(1);
    f.counters.clear();
    let r = report(&f);
    assert_eq!(codes(&f), vec!["single-subflow"]);
    assert!(
        r.findings[0].message.contains(
            "though this host has subflow endpoints (10.2.2.2): no join from them is open now"
        ),
        "{:?}",
        r.findings[0]
    );
    // A subflows limit of 0: subflows-limit-zero says why, single-subflow does not repeat it.
    f.kernel.limits = Some(Limits {
        subflows: 0,
        add_addr_accepted: 2,
    });
    assert_eq!(codes(&f), vec!["subflows-limit-zero"]);
}

/// A join is "unanswered" only when its SYN timed out at least once and nothing else of
/// its connection uses its local address: on separate networks the kernel also tries
/// each subflow endpoint towards the peer's first address, which never answers there,
/// while the same local address carries a subflow to the address the peer announced.
#[test]
fn join_unanswered_needs_a_timeout_and_an_unused_address() {
    let sub = |local: &str, remote: &str, state: u8, retransmits: u8| Subflow {
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        state,
        ifindex: 0,
        token: Some(7),
        remote_token: None,
        local_id: None,
        remote_id: None,
        flags: 0,
        retransmits,
    };
    let mut f = healthy();
    f.connections = vec![MptcpConnection {
        local: "10.1.1.2:40000".parse().unwrap(),
        remote: "10.1.1.1:80".parse().unwrap(),
        state: TCP_ESTABLISHED,
        info: Some(MptcpInfo {
            token: 7,
            subflows: 2,
            ..MptcpInfo::default()
        }),
    }];
    let first = sub("10.1.1.2:40000", "10.1.1.1:80", TCP_ESTABLISHED, 0);
    let stuck = sub("10.2.2.2:40001", "10.1.1.1:80", TCP_SYN_SENT, 0);
    let used = sub("10.2.2.2:40002", "10.2.2.1:80", TCP_ESTABLISHED, 0);
    // A join a round trip old: no finding yet.
    f.subflows = vec![first.clone(), stuck.clone()];
    assert_eq!(codes(&f), Vec::<&str>::new());
    // Its SYN timed out once: unanswered.
    let timed_out = Subflow {
        retransmits: 1,
        ..stuck.clone()
    };
    f.subflows = vec![first.clone(), timed_out.clone()];
    assert_eq!(codes(&f), vec!["join-unanswered"]);
    // The same address carries another subflow of the connection: the path is in use.
    f.subflows = vec![first.clone(), timed_out.clone(), used];
    assert_eq!(codes(&f), Vec::<&str>::new());
    // A connection whose own first subflow waits is not a join.
    f.connections[0].state = TCP_SYN_SENT;
    f.subflows = vec![Subflow {
        state: TCP_SYN_SENT,
        retransmits: 2,
        ..first
    }];
    assert_eq!(codes(&f), Vec::<&str>::new());
}
