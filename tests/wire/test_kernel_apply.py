"""Kernel-only apply on real MPTCP traffic.

Each test builds a WireBed (two namespaces, two paths on two subnets, 20 mbit per path),
configures MPTCP on both ends through the library (`mptcpstatectl apply --kernel`, run in
that end's namespace; plain `ip` only reads), opens connections with mptcp_peer.py and
reads what the kernel did: the subflows from MPTCP_FULL_INFO (kernel subflow ids, addresses
and ports), `ss`, the endpoints, and the links' byte counters.

`pytest -s` prints the measured figures.
"""
from __future__ import annotations

import time

from wirecheck import MIN_SHARE, both_paths_carry

MB = 1_000_000
C1, C2 = "10.1.1.2", "10.2.2.2"     # client, path 1 / path 2
S1, S2 = "10.1.1.1", "10.2.2.1"     # server
PORT = 10100                       # the server's mptcp-port


def iface(name: str, ip: str, flags=None, addr_flags=None, port=None) -> dict:
    """One interface with one IPv4 address (a /24), optional interface-wide flags and
    per-address flags / port."""
    a = {"ip": ip, "prefix-length": 24}
    if addr_flags is not None:
        a["mptcp-flags"] = addr_flags
    if port is not None:
        a["mptcp-port"] = port
    out = {"name": name, "state": "up", "ipv4": {"enabled": True, "address": [a]}}
    if flags is not None:
        out["mptcp"] = {"address-flags": flags}
    return out


def client_state(eth2_flags, *, subflows=2, accepted=1) -> dict:
    return {"mptcp": {"limits": {"subflows": subflows, "add-addr-accepted": accepted}},
            "interfaces": [iface("eth1", C1, ["subflow"]), iface("eth2", C2, eth2_flags)]}


def server_state(**kw) -> dict:
    """The server: its second address announced (signal), unless told otherwise."""
    state = {"interfaces": [iface("eth2", S2, kw.pop("flags", ["signal"]), **kw)]}
    return state


def report(name, r):
    c = r["client"]
    subs = ", ".join(f"#{s.get('id')} {s['local']}->{s['remote']} {s.get('state')} "
                     f"{s.get('bytes_acked', 0)}" for s in c.get("subflows_seen", []))
    print(f"\n[{name}] {c.get('bytes')} B in {c.get('seconds')} s; links (client tx): "
          f"{r['data_bytes']} split {r['split']}; mptcpi_subflows max "
          f"{c.get('subflows_max_seen')} end {c.get('subflows_end')}; subflows: {subs}")


def ok(r):
    """The transfer completed on both ends over MPTCP (no fallback)."""
    c, s = r["client"], r["server"]
    assert c["ok"] and c["complete"], c
    assert s["ok"] and s["bytes"] == c["bytes"], s
    assert c["mptcp"] and not c["fallback"], c
    assert c["subflow_source"] == "full_info", c
    return c


def seen(c, local=None, remote=None):
    return [s for s in c["subflows_seen"]
            if (local is None or s["local_addr"] == local)
            and (remote is None or s["remote_addr"] == remote)]


def _p2(status):
    """The established path-2 subflow (10.2.2.2 -> 10.2.2.1) of a sample, or None."""
    for sf in status["subflows"]:
        if sf["local_addr"] == C2 and sf["remote_addr"] == S2 and sf["state"] == "ESTABLISHED":
            return sf
    return None


def _ident(sf):
    return (sf["id"], sf["local"], sf["remote"])


def endpoint_of(bed, ip, side="client"):
    eps = [e for e in bed.endpoints(side) if e["address"] == ip]
    assert len(eps) <= 1, eps
    return eps[0] if eps else None


def applied(proc) -> str:
    """The CLI's one-line summary (stderr, without the log records)."""
    lines = [l for l in proc.stderr.splitlines() if l.startswith("applied:")]
    assert lines, proc.stderr
    return lines[-1]


# ----------------------------------------------------------------------------------

def test_backup_in_place_keeps_the_subflow_and_signal_recreates_it(bed):
    """`backup` toggled on the client's path-2 endpoint by a kernel-only apply while a
    connection runs: the endpoint keeps its id and the subflow on it its kernel id,
    addresses and ports (MPTCP_FULL_INFO), and `ss` shows it backup on both ends. Then
    `subflow` -> `signal, subflow` on that endpoint: re-created (the log warns), the
    subflow closes; the connection goes on over path 1."""
    bed, lib = bed
    lib.apply("server", server_state())
    lib.apply("client", client_state(["subflow"]))
    assert bed.limits("client") == {"subflows": 2, "add_addr_accepted": 1}
    assert endpoint_of(bed, S2, "server")["flags"] == ["signal"]
    n = 4 * MB

    def change(client):
        st = client.wait_status(lambda s: (_p2(s) or {}).get("bytes_acked", 0) > 200_000,
                                timeout=10, what="path 2 carrying data")
        before = _p2(st)
        ep0 = endpoint_of(bed, C2)
        flags0 = bed.subflow_flags("client")
        r1 = lib.apply("client", client_state(["subflow", "backup"]))
        t1 = time.time()
        ep1 = endpoint_of(bed, C2)
        # The first sample after the change: what path 2 had been given by then.
        at1 = _p2(client.wait_status(lambda s: s["time"] > t1 + 0.05, timeout=5))
        # The same subflow, marked backup by the kernel: `b` on the client's end at once,
        # `B` on the server's once the MP_PRIO came through the queue.
        fc = bed.sb.wait_for(
            lambda: [f for f in bed.subflow_flags("client")
                     if f["local"] == before["local"] and f["backup_local"]],
            timeout=5, what="client subflow backup")
        fs = bed.sb.wait_for(
            lambda: [f for f in bed.subflow_flags("server")
                     if f["remote"] == before["local"] and f["backup_remote"]],
            timeout=5, what="server sees MP_PRIO")
        # All data acked, the connection held open: still that very subflow.
        held = client.wait_status(lambda s: s["phase"] == "holding", timeout=15,
                                  what="all data acked")
        r2 = lib.apply("client", client_state(["signal", "subflow"]))
        t2 = time.time()
        ep2 = endpoint_of(bed, C2)
        gone = client.wait_status(
            lambda s: s["time"] > t2 and not any(_ident(sf) == _ident(before)
                                                  for sf in s["subflows"]),
            timeout=2, what="the path-2 subflow closed")
        return {"before": before, "ep0": ep0, "flags0": flags0, "r1": r1, "ep1": ep1,
                "at1": at1, "fc": fc, "fs": fs, "held": held, "after1": _p2(held),
                "r2": r2, "ep2": ep2, "gone": gone}

    r = bed.transfer(n, hold=2.0, during=change, timeout=25)
    report("backup in place, then signal re-created", r)
    c = ok(r)
    d = r["during"]
    before = d["before"]
    # 1. backup: in place.
    assert "applied: eth2 changed" in applied(d["r1"])
    assert "in place (its subflows stay)" in d["r1"].stderr, d["r1"].stderr
    assert "WARN" not in d["r1"].stderr, d["r1"].stderr
    assert d["ep0"]["flags"] == ["subflow"]
    assert d["ep1"]["id"] == d["ep0"]["id"] and d["ep1"]["flags"] == ["backup", "subflow"]
    (fb,) = [f for f in d["flags0"] if f["local"] == before["local"]]
    assert not fb["backup_local"] and fb["local_id"] == d["ep0"]["id"]
    (fc,) = d["fc"]
    assert fc["remote"] == before["remote"] and fc["local_id"] == d["ep0"]["id"]
    assert d["after1"] is not None and _ident(d["after1"]) == _ident(before), (before, d["held"])
    # Backup from then on: the scheduler gave path 2 (almost) nothing of what was still to
    # be sent; what it had queued (tcpi_notsent_bytes) still went out.
    given = d["at1"]["bytes_sent"] + d["at1"]["notsent_bytes"]
    grew = d["after1"]["bytes_sent"] - given
    assert grew < 0.02 * n, (grew, d["at1"], d["after1"])
    # 2. signal, subflow: re-created, with a warning; the subflow on it closed.
    assert "applied: eth2 changed" in applied(d["r2"])
    warn = [l for l in d["r2"].stderr.splitlines() if " WARN " in l]
    assert any("re-created" in l and "subflows that use it close" in l for l in warn), warn
    assert d["ep2"]["flags"] == ["signal", "subflow"]
    assert not [s for s in d["gone"]["subflows"] if _ident(s) == _ident(before)]
    assert not [s for s in c["subflows"] if _ident(s) == _ident(before)]
    (old,) = [s for s in c["subflows_seen"] if s["id"] == before["id"]]
    assert not old["listed"]
    # The initial subflow (path 1) carried the connection through both changes.
    (p1,) = [s for s in c["subflows"] if s["id"] == 1]
    assert (p1["local_addr"], p1["remote_addr"], p1["state"]) == (C1, S1, "ESTABLISHED")
    print(f"  endpoint {C2}: id {d['ep0']['id']} {d['ep0']['flags']} -> id {d['ep1']['id']} "
          f"{d['ep1']['flags']} (in place) -> id {d['ep2']['id']} {d['ep2']['flags']} "
          f"(re-created); subflow #{before['id']} {before['local']}->{before['remote']} "
          f"kept through backup ({before['bytes_acked']} B acked on it before, "
          f"{given} B sent + queued just after, {grew} B more later, of {n}), "
          f"ss {fb['flags']} -> {fc['flags']} "
          f"(server {d['fs'][0]['flags']}), closed by the re-creation "
          f"({old['bytes_acked']} B acked on it in all)")


def test_rollback_of_a_backup_change_keeps_the_subflow(bed):
    """A no-commit kernel-only apply sets `backup` on the path-2 endpoint while a
    connection runs, and `rollback` from another process takes it off again: both in
    place, so the endpoint keeps its id and the subflow on it survives the rollback too
    (same kernel id, addresses and ports), no longer backup."""
    bed, lib = bed
    lib.apply("server", server_state())
    lib.apply("client", client_state(["subflow"]))
    n = 4 * MB

    def change(client):
        st = client.wait_status(lambda s: (_p2(s) or {}).get("bytes_acked", 0) > 200_000,
                                timeout=10, what="path 2 carrying data")
        before = _p2(st)
        ep0 = endpoint_of(bed, C2)
        r1 = lib.apply("client", client_state(["subflow", "backup"]), "--no-commit",
                       "--timeout", "30")
        cp = r1.stdout.strip()
        pending = lib.pending("client")
        ep1 = endpoint_of(bed, C2)
        bed.sb.wait_for(lambda: [f for f in bed.subflow_flags("client")
                                 if f["local"] == before["local"] and f["backup_local"]],
                        timeout=5, what="client subflow backup")
        rb = lib.run("client", "-v", "rollback", cp)
        t = time.time()
        ep2 = endpoint_of(bed, C2)
        after = client.wait_status(lambda s: s["time"] > t + 0.2, timeout=5)
        flags = [f for f in bed.subflow_flags("client") if f["local"] == before["local"]]
        return {"before": before, "ep0": ep0, "r1": r1, "cp": cp, "pending": pending,
                "ep1": ep1, "rb": rb,
                "ep2": ep2, "after": after, "flags": flags}

    r = bed.transfer(n, hold=0.5, during=change, timeout=25)
    report("backup no-commit, rolled back", r)
    c = ok(r)
    d = r["during"]
    before = d["before"]
    assert d["cp"].startswith(f"{lib.record_dir('client')}/checkpoint-"), d["cp"]
    assert d["cp"].endswith(".json") and d["pending"] == [d["cp"].rsplit("/", 1)[1]]
    assert "in place (its subflows stay)" in d["r1"].stderr, d["r1"].stderr
    assert d["ep0"]["flags"] == ["subflow"]
    assert d["ep1"]["id"] == d["ep0"]["id"] and d["ep1"]["flags"] == ["backup", "subflow"]
    assert d["ep2"]["id"] == d["ep0"]["id"] and d["ep2"]["flags"] == ["subflow"], d["ep2"]
    assert d["cp"] in d["rb"].stderr and "rolled back" in d["rb"].stderr
    assert lib.pending("client") == []
    kept = [s for s in d["after"]["subflows"] if _ident(s) == _ident(before)]
    assert kept and kept[0]["state"] == "ESTABLISHED", (before, d["after"]["subflows"])
    assert d["flags"] and not d["flags"][0]["backup_local"], d["flags"]
    (p2,) = [s for s in c["subflows_seen"] if s["id"] == before["id"]]
    print(f"  endpoint {C2} id {d['ep0']['id']}: {d['ep0']['flags']} -> {d['ep1']['flags']} "
          f"-> rolled back {d['ep2']['flags']}; subflow #{before['id']} {before['local']}->"
          f"{before['remote']} kept, ss {d['flags'][0]['flags']}, {p2['bytes_acked']} B on it")


def test_implicit_endpoint_shown_and_applied_back(bed):
    """Client eth2 with `address-flags: []`, the server announcing 10.2.2.1, the client
    accepting one address: the kernel opens a subflow from eth2 through an implicit
    endpoint. `show --kernel eth2` reports it as `mptcp-flags: [implicit]` with
    `address-flags: []`; that output applied back changes nothing (the kernel reads the
    same, the subflow stays). Then `limits: {subflows: 0}`: a new connection has one
    subflow only."""
    bed, lib = bed
    lib.apply("server", server_state())
    lib.apply("client", client_state([]))
    assert endpoint_of(bed, C2) is None and endpoint_of(bed, C1)["flags"] == ["subflow"]

    def meanwhile(client):
        st = client.wait_status(_p2, timeout=10, what="a subflow from 10.2.2.2")
        before = _p2(st)
        ep = endpoint_of(bed, C2)
        shown = lib.show("client", "eth2")
        text = lib.show("client", "eth2", json_out=False)
        k0 = lib.kernel("client")
        back = lib.apply("client", text)
        # The whole of show (lo, eth1, eth2, the host knobs) too.
        whole = lib.apply("client", lib.show("client", json_out=False))
        k1 = lib.kernel("client")
        t1 = time.time()
        st1 = client.wait_status(lambda s: s["time"] > t1 + 0.1, timeout=5)
        return {"before": before, "ep": ep, "shown": shown, "text": text, "k0": k0,
                "k1": k1, "back": back, "whole": whole, "after": _p2(st1)}

    r = bed.transfer(4 * MB, hold=1.0, during=meanwhile, timeout=20)
    report("implicit endpoint", r)
    c = ok(r)
    d = r["during"]
    assert d["ep"]["flags"] == ["implicit"] and d["ep"]["rawflags"] == 0x10, d["ep"]
    (eth2,) = d["shown"]["interfaces"]
    assert eth2["name"] == "eth2" and eth2["mptcp"]["address-flags"] == []
    assert eth2["ipv4"]["address"] == [
        {"ip": C2, "prefix-length": 24, "mptcp-flags": ["implicit"]}], eth2
    # Applied back: nothing changed, in the kernel nor on the wire.
    assert "nothing changed" in d["back"].stderr, d["back"].stderr
    assert "nothing changed" in d["whole"].stderr, d["whole"].stderr
    assert d["k1"] == d["k0"]
    implicit = [e for e in d["k1"]["mptcp"]["endpoints"] if e["address"] == C2]
    assert [e["flag_names"] for e in implicit] == [["implicit"]], implicit
    assert d["after"] is not None and _ident(d["after"]) == _ident(d["before"])
    (sf,) = seen(c, C2, S2)
    assert sf["bytes_acked"] > 0.2 * r["client"]["bytes"], sf
    assert r["data_bytes"]["eth2"] > 0.2 * r["client"]["bytes"], r["data_bytes"]

    # subflows 0: one subflow per connection.
    lim = lib.apply("client", {"mptcp": {"limits": {"subflows": 0}}})
    assert "mptcp.limits changed" in applied(lim)
    assert bed.limits("client") == {"subflows": 0, "add_addr_accepted": 1}
    r0 = bed.transfer(500_000, timeout=10)
    report("subflows 0", r0)
    c0 = ok(r0)
    assert c0["subflows_max_seen"] == 0 and c0["subflow_list_max_seen"] == 1
    assert len(c0["subflows_seen"]) == 1
    assert r0["data_bytes"]["eth2"] < 1000, r0["data_bytes"]
    print(f"  shown: {eth2['ipv4']['address']}; applied back: no change; "
          f"subflow #{d['before']['id']} {d['before']['local']}->{d['before']['remote']} "
          f"kept, {sf['bytes_acked']} B on it; with subflows 0: "
          f"{c0['subflow_list_max_seen']} subflow, eth2 {r0['data_bytes']['eth2']} B")


def test_both_ends_by_the_library_use_both_paths(bed):
    """Client: subflow endpoints on both links and add-addr-accepted 1; server: signal on
    its second address and limits; all kernel-only. A connection opens two subflows,
    one per path, and each path carries more than a third of the data."""
    bed, lib = bed
    srv = server_state()
    srv["mptcp"] = {"limits": {"subflows": 4, "add-addr-accepted": 0}}
    s = lib.apply("server", srv)
    assert "applied: eth2, mptcp.limits changed" in applied(s)
    lib.apply("client", client_state(["subflow"]))
    assert bed.limits("server") == {"subflows": 4, "add_addr_accepted": 0}
    assert bed.limits("client") == {"subflows": 2, "add_addr_accepted": 1}
    assert [(e["address"], e["flags"]) for e in bed.endpoints("server")] == [(S2, ["signal"])]
    assert sorted((e["address"], e["dev"], e["flags"]) for e in bed.endpoints("client")) == \
        [(C1, "eth1", ["subflow"]), (C2, "eth2", ["subflow"])]
    n = 4 * MB
    r = bed.transfer(n, timeout=20)
    report("both ends by the library", r)
    c = ok(r)
    assert c["mptcp_info"]["add_addr_accepted"] == 1
    assert c["subflows_max_seen"] >= 1 and c["subflow_list_max_seen"] >= 2
    (p1,) = seen(c, C1, S1)
    (p2,) = seen(c, C2, S2)
    for sf in (p1, p2):
        assert sf["state"] == "ESTABLISHED" and sf["bytes_acked"] > MIN_SHARE * n, sf
    both_paths_carry(r, n)
    srv_seen = {(x["local"], x["remote"]) for x in r["server"]["subflows_seen"]}
    assert {(p1["remote"], p1["local"]), (p2["remote"], p2["local"])} <= srv_seen
    print(f"  subflows: path 1 #{p1['id']} {p1['bytes_acked']} B, path 2 #{p2['id']} "
          f"{p2['bytes_acked']} B acked; links {r['data_bytes']}")


def test_mptcp_port_signal_endpoint_listens_and_takes_joins(bed):
    """A `signal` endpoint with `mptcp-port` on the server (kernel mode): the server's
    kernel listens on that port, `show --kernel` reports it, the client's join to the
    announced address arrives on it; the show output applied back changes nothing; another
    port re-creates the endpoint and the listener moves."""
    bed, lib = bed
    lib.apply("server", server_state(flags=None, addr_flags=["signal"], port=PORT))
    ep = endpoint_of(bed, S2, "server")
    assert ep["flags"] == ["signal"] and ep["port"] == PORT, ep
    listen = bed.sh("server", ["ss", "-ltnH"]).stdout.split("\n")
    assert [l for l in listen if f"{S2}:{PORT}" in l.split()], listen
    (eth2,) = lib.show("server", "eth2")["interfaces"]
    assert eth2["ipv4"]["address"] == [
        {"ip": S2, "prefix-length": 24, "mptcp-flags": ["signal"], "mptcp-port": PORT}], eth2
    k0 = lib.kernel("server")
    back = lib.apply("server", lib.show("server", "eth2", json_out=False))
    assert "nothing changed" in back.stderr and lib.kernel("server") == k0

    lib.apply("client", client_state(["subflow"]))
    r = bed.transfer(2 * MB, timeout=20)
    report("mptcp-port", r)
    c = ok(r)
    joined = [s for s in seen(c, C2, S2) if s["remote_port"] == PORT]
    assert joined and joined[0]["state"] == "ESTABLISHED", c["subflows_seen"]
    assert joined[0]["bytes_acked"] > 0.2 * 2 * MB, joined
    # The server's end of it: local port 10100, not the listener's port.
    assert any(x["local"] == f"{S2}:{PORT}" for x in r["server"]["subflows_seen"]), \
        r["server"]["subflows_seen"]
    # Another port: the endpoint is re-created (the log says so), the kernel's listener
    # moves with it.
    moved = lib.apply("server", server_state(flags=None, addr_flags=["signal"], port=PORT + 1))
    warn = [l for l in moved.stderr.splitlines() if " WARN " in l]
    assert any("re-created" in l and f"port {PORT} -> {PORT + 1}" in l for l in warn), warn
    assert endpoint_of(bed, S2, "server")["port"] == PORT + 1
    now = bed.sh("server", ["ss", "-ltnH"]).stdout.split()
    assert f"{S2}:{PORT + 1}" in now and f"{S2}:{PORT}" not in now, now
    print(f"  listening: {[l.split()[3] for l in listen if l.strip()]}; join "
          f"{joined[0]['local']}->{joined[0]['remote']} {joined[0]['bytes_acked']} B acked")
