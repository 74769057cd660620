"""A client configured through NetworkManager, a server in kernel-only mode, real MPTCP
traffic between them.

Each test builds conftest.py's `nm_bed` (two namespaces, two paths on two subnets, 20 mbit
per path, a private NetworkManager managing the client's links), configures the server
with `mptcpstatectl apply --kernel` (a `signal` endpoint on its second address, limits)
and the client with `mptcpstatectl apply` (NetworkManager profiles; host knobs), opens
connections with mptcp_peer.py and reads what the kernel did: the subflows from
MPTCP_FULL_INFO, the links' byte counters, the endpoints; and what `check` says.

`pytest -s` prints the measured figures.
"""
from __future__ import annotations

import json
import time

import pytest

from wirecheck import (C1, C2, MB, MIN_SHARE, S1, S2, applied, both_paths_carry, by_code,
                       client_state, codes, configure, conn_subflows, endpoints_by_address,
                       established, faces, nm_flags, ok, report, seen, wait_syn_timed_out)


def test_library_configured_ends_use_both_paths_and_check_finds_nothing(nm_bed):
    """The library's configuration of both ends (client through NetworkManager: subflow
    endpoints on both links and `limits: {add-addr-accepted: 1}`; server kernel-only: its
    second address signalled): a connection opens two subflows, one per path, each path
    carries more than a third of the data; and `check` finds nothing, during the transfer
    (also once the kernel's join from eth2 towards the server's first address, which the
    other network never answers, has timed out) and after it."""
    bed, lib = nm_bed
    conf = configure(bed, lib)
    assert "applied: eth1, eth2, mptcp.limits changed" in applied(conf["apply"])
    assert (nm_flags(bed, "eth1"), nm_flags(bed, "eth2")) == ("0x28", "0x28")
    assert sorted((e["address"], e["dev"], e["flags"]) for e in conf["client"]) == \
        [(C1, "eth1", ["subflow"]), (C2, "eth2", ["subflow"])]
    assert [(e["address"], e["flags"]) for e in conf["server"]] == [(S2, ["signal"])]
    assert bed.limits("client") == {"subflows": 2, "add_addr_accepted": 1}
    assert bed.limits("server") == {"subflows": 2, "add_addr_accepted": 0}
    n = 2 * MB

    def during(client):
        client.wait_status(lambda s: s["bytes"] > 0.2 * n, timeout=10,
                           what="the transfer under way")
        early = lib.check("client")
        stuck = wait_syn_timed_out(bed, C2, S1)
        late = lib.check("client")
        return {"early": early, "stuck": stuck, "late": late}

    r = bed.transfer(n, hold=1.5, during=during, timeout=20)
    report("both ends by the library, client through NM", r)
    c = ok(r)
    d = r["during"]
    (p1,) = seen(c, C1, S1, "ESTABLISHED")
    (p2,) = seen(c, C2, S2, "ESTABLISHED")
    assert c["subflows_max_seen"] >= 1 and len(established(c)) == 2
    for sf in (p1, p2):
        assert sf["bytes_acked"] > MIN_SHARE * n, sf
    both_paths_carry(r, n)
    # check: nothing, while the connection runs on both paths ...
    for status, findings, conns in (d["early"], d["late"]):
        assert (status, findings) == (0, []), findings
        [(local, remote, subs)] = conn_subflows(conns)
        assert remote == f"{S1}:{r['port']}" and local.startswith(C1 + ":")
        assert ("eth1", local, remote, "established") in subs
        assert any(s[0] == "eth2" and s[2] == f"{S2}:{r['port']}" and s[3] == "established"
                   for s in subs), subs
    # ... though the join towards the other network's address was there, timed out.
    stuck = ("eth2", d["stuck"]["local"], d["stuck"]["remote"], "syn-sent")
    assert stuck[1].startswith(C2 + ":") and stuck[2] == f"{S1}:{r['port']}"
    assert stuck in conn_subflows(d["late"][2])[0][2], d["late"][2]
    assert d["stuck"]["retrans"] >= 1
    # ... and after.
    assert lib.check("client") == (0, [], [])
    assert lib.check("server") == (0, [], [])
    print(f"  path 1 #{p1['id']} {p1['bytes_acked']} B, path 2 #{p2['id']} {p2['bytes_acked']} B "
          f"acked; links {r['data_bytes']}; check during and after: no findings (join "
          f"{d['stuck']['local']} -> {d['stuck']['remote']} SYN timed out "
          f"{d['stuck']['retrans']} time(s) meanwhile)")


def test_the_seeds_example_alone_keeps_one_path_and_check_says_why(nm_bed):
    """The seed's flags (`[subflow, signal]`) on both client links through NetworkManager,
    no host knobs: the server's announced address is ignored (add_addr_accepted 0), one path
    carries the data over one established subflow, and `check` names
    `add-addr-accepted-zero` during the transfer and after (and `join-unanswered` for eth2
    meanwhile), and shows the connection; `check eth1` only eth1's and host-wide findings.
    The Python and C faces return the CLI's findings. With `mptcp: {limits:
    {add-addr-accepted: 1}}` applied: both paths, and the finding is gone."""
    bed, lib = nm_bed
    seed = client_state(eth1=("subflow", "signal"), eth2=("subflow", "signal"))
    conf = configure(bed, lib, seed)
    assert applied(conf["apply"]) == "applied: eth1, eth2 changed"
    assert sorted((e["address"], e["flags"]) for e in conf["client"]) == \
        [(C1, ["signal", "subflow"]), (C2, ["signal", "subflow"])]
    assert bed.limits("client")["add_addr_accepted"] == 0
    n = 1 * MB

    def during(client):
        client.wait_status(lambda s: s["bytes"] > 0, timeout=10, what="connected")
        wait_syn_timed_out(bed, C2, S1)
        t = time.monotonic()
        cli = lib.check("client")
        f = faces(bed)
        took = time.monotonic() - t
        only1 = lib.check("client", "eth1")
        only2 = lib.check("client", "eth2")
        text = lib.check_text("client")
        return {"cli": cli, "faces": f, "took": took, "eth1": only1, "eth2": only2,
                "text": text}

    r = bed.transfer(n, hold=1.6, during=during, timeout=20)
    report("the seed's example alone", r)
    c = ok(r)
    d = r["during"]
    # One path: one established subflow; path 2 saw SYNs only.
    assert [(s["local_addr"], s["remote_addr"]) for s in established(c)] == [(C1, S1)]
    assert c["mptcp_info"]["add_addr_accepted"] == 0
    assert r["data_bytes"]["eth2"] < 1000 and r["data_bytes"]["eth1"] > n, r["data_bytes"]
    # check during the transfer.
    status, findings, conns = d["cli"]
    assert status == 0 and codes(findings) == ["add-addr-accepted-zero", "join-unanswered"]
    trap = by_code(findings, "add-addr-accepted-zero")
    assert trap["severity"] == "warning" and "interface" not in trap
    assert f"subflow endpoints ({C1}, {C2}) only ever reach the peer's first address" in \
        trap["message"]
    assert "peers announced 1 address(es) so far (AddAddr), all ignored" in trap["message"]
    assert trap["fix"]["state"] == {"mptcp": {"limits": {"add-addr-accepted": 2}}}
    join = by_code(findings, "join-unanswered")
    assert (join["interface"], join["address"]) == ("eth2", C2)
    assert f"a join from {C2} (eth2) to {S1}:{r['port']} gets no answer" in join["message"]
    [(local, remote, subs)] = conn_subflows(conns)
    assert remote == f"{S1}:{r['port']}"
    assert [(s[0], s[3]) for s in subs] == [("eth1", "established"), ("eth2", "syn-sent")]
    # The faces, called right after the CLI.
    assert d["faces"]["py"] == findings and d["faces"]["c"] == findings, (d["faces"], findings)
    # Only the named interface's findings, and the host-wide ones.
    assert d["eth1"][1] == [trap] and len(d["eth1"][2]) == 1
    assert d["eth2"][1] == findings and len(d["eth2"][2]) == 1
    # After: the connection is gone, the reason stays; the faces agree.
    after = lib.check("client")
    assert (after[0], after[1], after[2]) == (0, [trap], [])
    f = faces(bed)
    assert f["py"] == after[1] and f["c"] == after[1]
    seed_text = d["text"]

    # The fix: add-addr-accepted 1, through the library.
    fix = lib.apply_nm({"mptcp": {"limits": {"add-addr-accepted": 1}}})
    assert applied(fix) == "applied: mptcp.limits changed"
    assert bed.limits("client") == {"subflows": 2, "add_addr_accepted": 1}
    r2 = bed.transfer(4 * MB, timeout=20)
    report("the seed's example + add-addr-accepted 1", r2)
    c2 = ok(r2)
    assert sorted((s["local_addr"], s["remote_addr"]) for s in established(c2)) == \
        [(C1, S1), (C2, S2)]
    both_paths_carry(r2, 4 * MB)
    assert lib.check("client") == (0, [], [])
    print(f"  faces agreed in {d['took']:.2f} s; check during the transfer:\n{seed_text}"
          f"  with add-addr-accepted 1: links {r2['data_bytes']}, no findings")


@pytest.mark.parametrize("how", ["drop", "down"])
def test_backup_path_takes_over_when_the_first_is_cut(nm_bed, how):
    """`address-flags: [subflow, backup]` on the client's eth2 through NetworkManager: the
    backup subflow is there but carries (almost) nothing while path 1 is up; path 1 cut in
    the middle of a transfer (every packet dropped on both ends, or the client's link
    down): the rest goes over the backup and the transfer completes."""
    bed, lib = nm_bed
    state = client_state(eth2=("subflow", "backup"), limits={"add-addr-accepted": 1})
    conf = configure(bed, lib, state)
    assert nm_flags(bed, "eth2") == "0x68"
    assert endpoints_by_address(conf["client"])[C2]["flags"] == ["backup", "subflow"]
    up = bed.transfer(1 * MB, timeout=20)
    report("backup, path 1 up", up)
    cu = ok(up)
    (b,) = seen(cu, C2, S2, "ESTABLISHED")
    assert b["bytes_acked"] < 10_000, b
    assert up["data_bytes"]["eth2"] < 0.01 * MB, up["data_bytes"]
    n = 2 * MB

    def cut(client):
        client.wait_status(lambda s: s["bytes"] > 0.4 * MB, timeout=10, what="0.4 MB sent")
        bed.cut(1, how=how)
        return time.monotonic()

    r = bed.transfer(n, during=cut, timeout=20)
    report(f"backup, path 1 cut ({how})", r)
    c = ok(r)
    (b,) = seen(c, C2, S2, "ESTABLISHED")
    assert b["bytes_acked"] > 0.5 * n, b
    assert r["data_bytes"]["eth2"] > 0.5 * n, r["data_bytes"]
    assert r["data_bytes"]["eth1"] < 0.5 * n, r["data_bytes"]
    # check after the cut: a link down is a finding, dropped packets are not visible.
    _, findings, _ = lib.check("client")
    if how == "down":
        f = by_code(findings, "endpoint-interface-down")
        assert (f["interface"], f["address"]) == ("eth1", C1) and "is down" in f["message"]
        assert codes(findings) == ["endpoint-interface-down"]
    else:
        assert findings == []
    print(f"  path 2 (backup) while path 1 up: {up['data_bytes']['eth2']} B on the link, "
          f"{cu['subflows_seen'][0]['bytes_acked']} B acked on path 1; after the cut ({how}): "
          f"{c['bytes']} B in {c['seconds']} s, path 2 {b['bytes_acked']} B acked, links "
          f"{r['data_bytes']}; check: {codes(findings)}")


def test_no_flags_on_the_second_path_leaves_an_implicit_endpoint(nm_bed):
    """`address-flags: []` on the client's eth2 through NetworkManager
    (connection.mptcp-flags disabled): no endpoint for 10.2.2.2, yet the kernel opens a
    subflow from it towards the address the server announces, through an implicit
    endpoint; `show` (NetworkManager mode) reports `mptcp-flags: [implicit]` on that address
    and `check` explains it (`implicit-endpoint` on eth2). With `limits: {subflows: 0}`
    applied: one subflow only, and `check` says why (the implicit endpoint is no longer
    a finding: the kernel cannot use it)."""
    bed, lib = nm_bed
    conf = configure(bed, lib, client_state(eth2=(), limits={"add-addr-accepted": 1}))
    assert nm_flags(bed, "eth2") == "0x1"
    assert [(e["address"], e["flags"]) for e in conf["client"]] == [(C1, ["subflow"])]
    n = 1 * MB

    def meanwhile(client):
        client.wait_status(
            lambda s: any(x["local_addr"] == C2 and x["state"] == "ESTABLISHED"
                          for x in s["subflows"]), timeout=10, what="a subflow from 10.2.2.2")
        return {"eps": bed.endpoints("client"), "show": lib.run("client", "show", "--json",
                                                                 "eth2").stdout,
                "check": lib.check("client")}

    r = bed.transfer(n, hold=0.2, during=meanwhile, timeout=20)
    report("address-flags [] on eth2", r)
    c = ok(r)
    d = r["during"]
    (sf,) = seen(c, C2, S2, "ESTABLISHED")
    assert sf["bytes_acked"] > 0.2 * n and r["data_bytes"]["eth2"] > 0.2 * n, r["data_bytes"]
    implicit = endpoints_by_address(d["eps"])[C2]
    assert implicit["flags"] == ["implicit"] and implicit["rawflags"] == 0x10, implicit
    (eth2,) = json.loads(d["show"])["interfaces"]
    assert eth2["mptcp"]["address-flags"] == []
    assert eth2["ipv4"]["address"] == [
        {"ip": C2, "prefix-length": 24, "mptcp-flags": ["implicit"]}], eth2
    status, findings, conns = d["check"]
    assert status == 0 and codes(findings) == ["implicit-endpoint"], findings
    f = findings[0]
    assert (f["interface"], f["address"]) == ("eth2", C2)
    assert "through an implicit endpoint, although eth2 has no MPTCP endpoint of its own" in \
        f["message"]
    assert ("eth2", "established") in [(s[0], s[3]) for s in conn_subflows(conns)[0][2]]
    # After the connection, the kernel keeps the entry; it can still be used: a finding.
    assert codes(lib.check("client")[1]) == ["implicit-endpoint"]

    # No additional subflows at all.
    lim = lib.apply_nm({"mptcp": {"limits": {"subflows": 0}}})
    assert applied(lim) == "applied: mptcp.limits changed"
    assert bed.limits("client") == {"subflows": 0, "add_addr_accepted": 1}
    r0 = bed.transfer(500_000, timeout=10)
    report("subflows 0", r0)
    c0 = ok(r0)
    assert c0["subflows_max_seen"] == 0 and c0["subflow_list_max_seen"] == 1
    assert len(c0["subflows_seen"]) == 1 and r0["data_bytes"]["eth2"] < 1000, r0["data_bytes"]
    status, findings, _ = lib.check("client")
    assert status == 10 and codes(findings) == ["subflows-limit-zero"], findings
    assert endpoints_by_address(bed.endpoints("client"))[C2]["flags"] == ["implicit"]
    print(f"  implicit endpoint {implicit['raw']}; subflow from it {sf['bytes_acked']} B acked; "
          f"show: {eth2['ipv4']['address']}; check: {f['message']}; with subflows 0: "
          f"{c0['subflow_list_max_seen']} subflow, eth2 {r0['data_bytes']['eth2']} B, check: "
          f"{codes(findings)}")
