"""`check` against real broken setups that need traffic or NetworkManager, one test per
finding (tests/kernel/test_check.py has those that need neither), on conftest.py's
`nm_bed`: the client configured through NetworkManager by the library, the server
kernel-only by the library; what is broken is broken on purpose (a server that announces
nothing, refuses joins or speaks plain TCP; an address nobody routes to; a profile made
with nmcli; a real mptcpd; nine flagged addresses). The healthy setup's "no findings" is
proven in test_nm_client.py (during and after traffic).

`pytest -s` prints the findings as check prints them.
"""
from __future__ import annotations

import os
import signal
import subprocess

import pytest

from wirecheck import (C1, C2, S1, S2, applied, by_code, client_state, codes, configure,
                       conn_subflows, iface, mptcpd_path, nm_flags, ok, report,
                       seen, server_state, wait_syn_timed_out)


def counters(bed, side, *names) -> dict:
    """MPTcpExt counters of a side, from its /proc/net/netstat (read in that namespace)."""
    lines = [l.split() for l in bed.sh(side, ["cat", "/proc/net/netstat"]).stdout.splitlines()
             if l.startswith("MPTcpExt:")]
    ext = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return {n: ext[n] for n in names}


def test_join_unanswered(nm_bed):
    """The server announces nothing: the client's only join is from its eth2 endpoint
    towards the server's first address, which is not reachable on path 2 (another
    network). Once its SYN has timed out, during the transfer, `check` names it, with
    the interface and address; nothing else."""
    bed, lib = nm_bed
    configure(bed, lib, server=server_state(signal=False))
    assert bed.endpoints("server") == []

    def during(client):
        client.wait_status(lambda s: s["bytes"] > 0, timeout=10, what="connected")
        stuck = wait_syn_timed_out(bed, C2, S1)
        return {"stuck": stuck, "check": lib.check("client"), "text": lib.check_text("client")}

    r = bed.transfer(500_000, hold=1.5, during=during, timeout=20)
    report("join towards an unreachable address", r)
    ok(r)
    d = r["during"]
    status, findings, conns = d["check"]
    assert (status, codes(findings)) == (0, ["join-unanswered"]), findings
    f = findings[0]
    assert (f["severity"], f["interface"], f["address"]) == ("warning", "eth2", C2)
    assert f"a join from {C2} (eth2) to {S1}:{r['port']} gets no answer (its SYN timed out" \
        in f["message"], f
    assert f"no other subflow of this connection uses {C2}" in f["message"]
    [(_, _, subs)] = conn_subflows(conns)
    assert ("eth2", d["stuck"]["local"], d["stuck"]["remote"], "syn-sent") in subs, subs
    print(f"  ss: {d['stuck']}\n{d['text']}")


def test_single_subflow(nm_bed):
    """The server refuses every join (its subflows limit is 0) and announces nothing;
    the client has a second subflow endpoint on eth1 (10.1.1.3, on the same path, so its
    join reaches the server at once) and nothing on eth2. The join is refused, the
    connection goes on with one subflow, and `check` on the client says so."""
    bed, lib = nm_bed
    client = client_state(eth2=(), limits={"add-addr-accepted": 1})
    client["interfaces"][0]["ipv4"]["address"].append({"ip": "10.1.1.3", "prefix-length": 24})
    configure(bed, lib, client, server=server_state(signal=False, subflows=0))
    assert sorted(e["address"] for e in bed.endpoints("client")) == [C1, "10.1.1.3"]

    def during(client):
        st = client.wait_status(lambda s: s["bytes"] > 0 and s["mptcpi_subflows"] == 0
                                and len(s["subflows"]) == 1, timeout=5,
                                what="the join refused")
        return {"st": st, "check": lib.check("client"), "text": lib.check_text("client")}

    r = bed.transfer(500_000, hold=0.5, during=during, timeout=20)
    report("joins refused by the server", r)
    c = ok(r)
    d = r["during"]
    # The join from 10.1.1.3 got the server's SYN/ACK, then its reset: gone, no data.
    assert [(s["local_addr"], s["remote_addr"]) for s in c["subflows"]] == [(C1, S1)]
    (j,) = seen(c, "10.1.1.3", S1)
    assert not j["listed"] and j["bytes_acked"] <= 1, j
    assert counters(bed, "server", "MPJoinRejected")["MPJoinRejected"] >= 1
    status, findings, _ = d["check"]
    assert (status, codes(findings)) == (0, ["single-subflow"]), findings
    f = findings[0]
    local = d["st"]["subflows"][0]["local"]
    assert f["message"].startswith(
        f"connection {local} -> {S1}:{r['port']} runs on one subflow, though this host has "
        f"subflow endpoints (10.1.1.3): no join from them is open now (a join that failed or "
        "was refused is not tried again on this connection), and it uses no address the peer "
        "announced"), f
    print(f"\n{d['text']}")


def test_join_failures_a_full_server_rejects_joins(nm_bed):
    """The server's subflows limit is 0 and it announces its second address: the client
    accepts it and joins, the server's kernel refuses the join and counts it
    (MPJoinRejected, the counter driven here); `check` on the server says so (beside
    subflows-limit-zero, the cause)."""
    bed, lib = nm_bed
    configure(bed, lib, server=server_state(subflows=0))
    before = counters(bed, "server", "MPJoinRejected", "MPJoinSynRx")
    r = bed.transfer(500_000, hold=0.3, timeout=20)
    report("a full server", r)
    c = ok(r)
    after = counters(bed, "server", "MPJoinRejected", "MPJoinSynRx")
    assert before == {"MPJoinRejected": 0, "MPJoinSynRx": 0}
    assert after["MPJoinRejected"] >= 1 and after["MPJoinSynRx"] >= 1, after
    # The client's join to the announced address got the server's SYN/ACK, then its
    # reset (too fast for the peer's 50 ms samples): one path.
    assert counters(bed, "client", "AddAddr", "MPJoinSynAckRx") == \
        {"AddAddr": 1, "MPJoinSynAckRx": 1}
    assert not seen(c, C2, S2, "ESTABLISHED") and r["data_bytes"]["eth2"] < 1000, r
    status, findings, _ = lib.check("server")
    assert (status, codes(findings)) == (10, ["subflows-limit-zero", "join-failures"]), findings
    f = by_code(findings, "join-failures")
    assert f["message"] == (
        "additional subflows failed since the namespace started: "
        f"{after['MPJoinRejected']} join(s) sent by peers were refused (the subflows limit "
        "was reached) (MPJoinRejected)"), f
    print(f"  server counters {after}\n{lib.check_text('server', '--kernel')}")


def test_join_failures_no_route_to_an_announced_address(nm_bed):
    """The server announces an address (10.9.9.1, on its eth2) the client has no route
    to: the client's kernel cannot even send the join (connect fails:
    MPJoinSynTxConnectErr, the counter driven here), and `check` on the client says so."""
    bed, lib = nm_bed
    server = {"mptcp": {"limits": {"subflows": 2, "add-addr-accepted": 0}},
              "interfaces": [{"name": "eth2", "state": "up", "ipv4": {"enabled": True, "address": [
                  {"ip": S2, "prefix-length": 24},
                  {"ip": "10.9.9.1", "prefix-length": 24, "mptcp-flags": ["signal"]}]}}]}
    configure(bed, lib, server=server)
    assert [(e["address"], e["flags"]) for e in bed.endpoints("server")] == \
        [("10.9.9.1", ["signal"])]
    assert "10.9.9." not in bed.client_sh("ip route get 10.9.9.1", check=False).stdout
    r = bed.transfer(500_000, hold=0.3, timeout=20)
    report("an announced address without a route", r)
    c = ok(r)
    assert not seen(c, remote="10.9.9.1")
    got = counters(bed, "client", "AddAddr", "MPJoinSynTx", "MPJoinSynTxConnectErr")
    n = got["MPJoinSynTxConnectErr"]
    assert got["AddAddr"] == 1 and n == 1, got
    status, findings, _ = lib.check("client")
    assert (status, codes(findings)) == (0, ["join-failures"]), findings
    assert findings[0]["message"] == (
        "additional subflows failed since the namespace started: "
        f"{n} join(s) could not be sent (no route from the endpoint's address to the "
        "peer's?) (MPJoinSynTxConnectErr)"), findings
    print(f"\n{lib.check_text('client')}")


def test_fallback_to_tcp(nm_bed):
    """An MPTCP client against a plain TCP server (mptcp_peer --tcp): the connection falls
    back; `check` names it while it is open (and lists it as a fallen-back connection),
    and after it from the kernel's counter."""
    bed, lib = nm_bed
    configure(bed, lib)

    def during(client):
        client.wait_status(lambda s: s["bytes"] > 0, timeout=10, what="connected")
        return {"check": lib.check("client"), "text": lib.check_text("client")}

    r = bed.transfer(500_000, hold=0.3, during=during, timeout=20, server_kw={"tcp": True})
    c, s = r["client"], r["server"]
    assert c["ok"] and c["complete"] and c["requested_mptcp"], c
    assert c["fallback"] and not c["mptcp"] and s["protocol"] == 6, (c, s)
    status, findings, conns = r["during"]["check"]
    assert (status, codes(findings)) == (0, ["fallback-to-tcp"]), findings
    [conn] = conns
    assert conn["fallback"] is True and conn["remote"] == f"{S1}:{r['port']}"
    assert findings[0]["message"].startswith(
        f"1 open connection(s) run as plain TCP ({conn['local']} -> {conn['remote']}); "
        "1 connection(s) fell back to plain TCP since the namespace started"), findings
    assert counters(bed, "client", "MPCapableFallbackSYNACK") == {"MPCapableFallbackSYNACK": 1}
    status, findings, conns = lib.check("client")
    assert (codes(findings), conns) == (["fallback-to-tcp"], [])
    assert findings[0]["message"].startswith(
        "1 connection(s) fell back to plain TCP since the namespace started"), findings
    print(f"\n{r['during']['text']}")


def test_nm_default_flags(nm_bed):
    """eth2's profile made with nmcli, `connection.mptcp-flags 0` (NetworkManager's
    default), on a link without a default route: NetworkManager adds no endpoint for its
    address, and `check` (NetworkManager's view; not with --kernel) says why, with a fix
    that the library applies: then the endpoint is there and the finding gone."""
    bed, lib = nm_bed
    lib.apply("server", server_state(signal=False))
    lib.apply_nm({"mptcp": {"limits": {"add-addr-accepted": 1}},
                  "interfaces": [iface("eth1", C1, ["subflow"])]})
    bed.sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth2", "con-name",
                 "eth2-by-nmcli", "ipv4.method", "manual", "ipv4.addresses", f"{C2}/24",
                 "ipv6.method", "disabled", "connection.mptcp-flags", "0")
    bed.sb.nmcli("connection", "up", "eth2-by-nmcli")
    assert nm_flags(bed, "eth2-by-nmcli") == "0x0"
    assert "default" not in bed.client_sh("ip route").stdout
    bed.sb.wait_for(lambda: C2 in bed.client_sh("ip -4 addr show dev eth2").stdout, timeout=5)
    assert [e["address"] for e in bed.endpoints("client")] == [C1]
    status, findings, _ = lib.check("client")
    assert (status, codes(findings)) == (0, ["nm-default-flags"]), findings
    f = findings[0]
    assert f["interface"] == "eth2" and f"so its addresses ({C2}) get no endpoint" in f["message"]
    assert f["fix"]["state"] == {"interfaces": [{"name": "eth2",
                                                 "mptcp": {"address-flags": ["subflow"]}}]}
    assert lib.check("client", kernel=True)[1] == []
    text = lib.check_text("client")
    fixed = lib.apply_nm(f["fix"]["state"])
    assert applied(fixed) == "applied: eth2 changed"
    assert [(e["address"], e["flags"]) for e in bed.endpoints("client")] == \
        [(C1, ["subflow"]), (C2, ["subflow"])]
    assert lib.check("client") == (0, [], [])
    print(f"\n{text}  fix applied: eth2-by-nmcli flags {nm_flags(bed, 'eth2-by-nmcli')}")


def test_mptcpd_beside_networkmanager(nm_bed):
    """A real mptcpd in the client's namespace, where NetworkManager manages the endpoints
    of eth1 and eth2 (the library's healthy client): `check` names the daemon by PID and
    NetworkManager's interfaces (not lo); stopped, the finding goes."""
    bed, lib = nm_bed
    daemon = mptcpd_path()
    if daemon is None:
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail("mptcpd is not installed (scripts/setup.sh installs it)")
        pytest.skip("no mptcpd")
    configure(bed, lib)
    assert lib.check("client") == (0, [], [])
    limits0 = bed.limits("client")
    proc = subprocess.Popen(["ip", "netns", "exec", bed.sb.netns, daemon, "--log=stderr"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        def seen_daemon():
            got = lib.check("client")[1]
            return got if "mptcpd-beside-networkmanager" in codes(got) else None
        findings = bed.sb.wait_for(seen_daemon, timeout=10, what="mptcpd seen by check")
        text = lib.check_text("client")
        limits1 = bed.limits("client")
        kernel_only = lib.check("client", kernel=True)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
    f = by_code(findings, "mptcpd-beside-networkmanager")
    assert f["severity"] == "warning"
    assert f["message"] == (
        f"mptcpd (pid {proc.pid}) runs beside NetworkManager, which also manages the MPTCP "
        "endpoints of eth1, eth2: each replaces what the other sets"), f
    assert "mptcpd-beside-networkmanager" not in codes(kernel_only)
    after = lib.check("client")[1]
    assert "mptcpd-beside-networkmanager" not in codes(after), after
    print(f"\n{text}  limits before mptcpd {limits0}, while it ran {limits1}; mptcpd exit "
          f"{proc.returncode}; check after it: {codes(after)}")


def test_endpoint_cap_reached_through_networkmanager(nm_bed):
    """Nine flagged addresses on the client: the library refuses the state (the kernel
    keeps 8 endpoints) and changes nothing; the same nine through nmcli profiles:
    NetworkManager gets 8 endpoints, the ninth address none, and `check` names it."""
    bed, lib = nm_bed
    ips1 = [C1] + [f"10.1.1.{i}" for i in range(3, 7)]
    ips2 = [C2] + [f"10.2.2.{i}" for i in range(3, 6)]
    nine = {"interfaces": [iface("eth1", ips1, ["subflow"]), iface("eth2", ips2, ["subflow"])]}
    profiles0 = bed.sb.nmcli("-t", "-f", "NAME,DEVICE", "connection", "show").stdout
    refused = lib.apply_nm(nine, check=False)
    assert refused.returncode != 0 and "InvalidArgument" in refused.stderr, refused.stderr
    assert "at most 8 MPTCP endpoints" in refused.stderr and "flags 9 eligible" in \
        refused.stderr, refused.stderr
    assert bed.endpoints("client") == [] and bed.ip("client", "-4", "addr", "show", "dev",
                                                    "eth1").count("inet ") == 0
    assert bed.sb.nmcli("-t", "-f", "NAME,DEVICE", "connection", "show").stdout == profiles0
    # Room for all subflows, so that the cap is the only finding.
    lib.apply_nm({"mptcp": {"limits": {"subflows": 8, "add-addr-accepted": 1}}})
    for dev, ips in (("eth1", ips1), ("eth2", ips2)):
        bed.sb.nmcli("connection", "add", "type", "ethernet", "ifname", dev, "con-name",
                     f"{dev}-nine", "ipv4.method", "manual", "ipv4.addresses",
                     ",".join(f"{ip}/24" for ip in ips), "ipv6.method", "disabled",
                     "connection.mptcp-flags", "subflow,also-without-default-route")
        bed.sb.nmcli("connection", "up", f"{dev}-nine")
    eps = bed.sb.wait_for(lambda: (lambda e: e if len(e) == 8 else None)(bed.endpoints("client")),
                          timeout=10, what="8 endpoints")
    missing = sorted(set(ips1 + ips2) - {e["address"] for e in eps})
    assert len(missing) == 1, eps
    dev = "eth1" if missing[0] in ips1 else "eth2"
    status, findings, _ = lib.check("client")
    assert (status, codes(findings)) == (0, ["endpoint-cap-reached"]), findings
    assert findings[0]["message"] == (
        "the kernel holds 8 MPTCP endpoints, its maximum per network namespace: "
        f"{missing[0]} on {dev} got none"), findings
    print(f"\n  library: {refused.stderr.strip().splitlines()[-1]}\n{lib.check_text('client')}")
