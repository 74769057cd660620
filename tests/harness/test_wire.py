"""Self-tests of the MPTCP test bed (wire.py) and its traffic tool (mptcp_peer.py).

Each test builds a WireBed (two namespaces, two paths on two subnets, 20 mbit per
path), configures MPTCP with plain `ip mptcp` commands and checks what the kernel
reports (MPTCP_INFO, the subflow list) and what the links carried (byte counters).
They need root, `ip` and `tc`; without those they are skipped, or fail when
MPTCPSTATE_REQUIRE_KERNEL is set.  Nothing runs in the root network namespace.

`pytest -s` prints the measured byte splits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mptcp_peer  # noqa: E402
from wire import PEER, WireBed  # noqa: E402

MB = 1_000_000
C1, C2 = "10.1.1.2", "10.2.2.2"     # client, path 1 / path 2
S1, S2 = "10.1.1.1", "10.2.2.1"     # server


def _require_root():
    missing = [b for b in ("ip", "tc", "sysctl") if shutil.which(b) is None]
    why = None
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing'} to make network namespaces"
    elif not os.path.exists("/proc/sys/net/mptcp/enabled"):
        why = "the kernel has no MPTCP"
    if why:
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail(why)
        pytest.skip(why)


def _root_links():
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    return {l["ifname"]: (l["ifindex"], sorted(l.get("flags", [])),
                          sorted(a["local"] for a in l.get("addr_info", []))) for l in links}


def _netns():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


MADE: list[str] = []   # sandboxes made by this module (others may run beside us)


@pytest.fixture(scope="module", autouse=True)
def root_namespace_unchanged():
    """Whatever the tests do, the root namespace ends as it began, and none of the
    namespaces this module made is left."""
    if os.geteuid() != 0:
        yield
        return
    before = _root_links()
    yield
    assert _root_links() == before
    left = {f"{n}-{k}" for n in MADE for k in ("sbx", "peer")} & _netns()
    assert not left


def _bed(**kw) -> WireBed:
    b = WireBed(**kw)
    b.start()
    MADE.append(b.sb.name)
    return b


@pytest.fixture
def bed():
    _require_root()
    b = _bed()
    try:
        yield b
    finally:
        b.stop()


def report(name, r):
    """One line per transfer with the figures (visible with pytest -s)."""
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
    assert s["mptcp"], s
    return c


def seen(c, local=None, remote=None):
    """Subflows of a report by local / remote address."""
    return [s for s in c["subflows_seen"]
            if (local is None or s["local_addr"] == local)
            and (remote is None or s["remote_addr"] == remote)]


def two_path_client(bed, *, backup2=False, accepted=1, subflows=2):
    """Client: subflow endpoints on both links (ids 1 and 2), the given limits."""
    bed.configure_client(
        f"ip mptcp limits set add_addr_accepted {accepted} subflows {subflows} && "
        f"ip mptcp endpoint add {C1} dev eth1 id 1 subflow && "
        f"ip mptcp endpoint add {C2} dev eth2 id 2 subflow{' backup' if backup2 else ''}")


def signal_server(bed):
    bed.configure_server(f"ip mptcp endpoint add {S2} dev eth2 signal")


# ------------------------------------------------------------------ no root needed

def test_struct_sizes_and_cli():
    assert mptcp_peer.MPTCP_INFO_SIZE == 96
    assert mptcp_peer.TCP_INFO_SIZE == 232
    out = subprocess.run([sys.executable, PEER, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "serve" in out.stdout
    bad = subprocess.run([sys.executable, PEER, "send", "--to", "x"], capture_output=True,
                         text=True)
    assert bad.returncode == 2


# ------------------------------------------------------------------ the bed itself

def test_bed_layout(bed):
    """Two subnets, ARP answered only on the link asked, tbf on all four ends."""
    assert {a["local"] for l in bed.ip("client", "addr", "show", json=True)
            for a in l.get("addr_info", [])} >= {C1, C2}
    assert {a["local"] for l in bed.ip("server", "addr", "show", json=True)
            for a in l.get("addr_info", [])} >= {S1, S2}
    for side in ("client", "server"):
        out = bed.sh(side, "sysctl -n net.ipv4.conf.all.arp_ignore "
                           "net.ipv4.conf.eth1.arp_ignore net.ipv4.conf.eth2.arp_ignore "
                           "net.ipv4.conf.all.rp_filter net.ipv4.conf.eth2.rp_filter").stdout
        assert out.split() == ["1", "1", "1", "0", "0"], (side, out)
        for p in ("eth1", "eth2"):
            assert "tbf" in bed.sh(side, f"tc qdisc show dev {p}").stdout
    assert bed.endpoints("client") == [] and bed.endpoints("server") == []
    assert bed.limits("client") == {"add_addr_accepted": 0, "subflows": 2}


def test_fallback_timeout_and_refusal_are_reported(bed):
    # An MPTCP client against a plain TCP server: the data moves, over TCP.
    r = bed.transfer(200_000, server_kw={"tcp": True})
    c = r["client"]
    assert c["ok"] and c["bytes"] == 200_000 and r["server"]["bytes"] == 200_000
    assert c["protocol"] == mptcp_peer.IPPROTO_MPTCP
    assert c["fallback"] and not c["mptcp"] and c["mptcp_info_error"] == "EOPNOTSUPP"
    # A plain TCP client against the MPTCP listener: accept() hands out a TCP socket.
    s = bed.transfer(200_000, client_kw={"tcp": True})["server"]
    assert s["ok"] and s["fallback"] and not s["mptcp"] and s["protocol"] == 6
    # Nobody answers (path dropped): an error JSON once --timeout is over.
    bed.drop(1)
    t0 = time.monotonic()
    c = bed.client("send", to=S1, port=bed.new_port(), nbytes=10, timeout=1.5)
    assert time.monotonic() - t0 < 5
    assert not c["ok"] and c["timed_out"] and "connect" in c["error"]
    bed.restore(1)
    c = bed.client("send", to=S1, port=bed.new_port(), nbytes=10, timeout=3)
    assert not c["ok"] and not c["timed_out"] and "refused" in c["error"]


# ------------------------------------------------------------------ the facts

def test_signal_and_add_addr_accepted_use_both_paths(bed):
    """Server announces 10.2.2.1; client accepts one address: two paths carry the data."""
    signal_server(bed)
    two_path_client(bed, accepted=1)
    n = 4 * MB
    # The server lists its subflows the other way (MPTCP_SUBFLOW_ADDRS + MPTCP_TCPINFO).
    r = bed.transfer(n, server_kw={"info_method": "split"})
    report("signal+accepted", r)
    c = ok(r)
    assert c["subflow_source"] == "full_info"
    assert r["server"]["subflow_source"] == "addrs+tcpinfo"
    assert c["subflows_max_seen"] >= 2
    assert c["mptcp_info"]["add_addr_accepted"] == 1
    (p1,) = seen(c, C1, S1)
    (p2,) = seen(c, C2, S2)
    for sf in (p1, p2):
        assert sf["state"] == "ESTABLISHED" and sf["bytes_acked"] > n / 3, sf
    # Both links carried more than a third of the bytes.
    assert min(r["data_bytes"].values()) > n / 3, r["data_bytes"]
    # The subflow from 10.2.2.2 to the server's first address never got through
    # (the server does not answer ARP for 10.1.1.1 on eth2): the networks are separate.
    for sf in seen(c, C2, S1):
        assert "ESTABLISHED" not in sf["states_seen"] and not sf.get("bytes_acked"), sf
    # The server sees the same two subflows from its side.
    srv = {(s["local"], s["remote"]) for s in r["server"]["subflows_seen"]}
    assert {(p1["remote"], p1["local"]), (p2["remote"], p2["local"])} <= srv


def test_add_addr_accepted_zero_ignores_the_announcement(bed):
    """The seed's trap: with the default add_addr_accepted 0 one path carries everything."""
    signal_server(bed)
    two_path_client(bed, accepted=0)
    assert bed.limits("client")["add_addr_accepted"] == 0
    n = 3 * MB
    r = bed.transfer(n)
    report("accepted 0", r)
    c = ok(r)
    assert c["mptcp_info"]["add_addr_accepted"] == 0
    assert not seen(c, remote=S2)
    assert r["data_bytes"]["eth1"] > n
    assert r["data_bytes"]["eth2"] < 0.01 * n, r["data_bytes"]


@pytest.mark.parametrize("how", ["drop", "down"])
def test_backup_path_idles_then_takes_over(bed, how):
    """Backup on path 2: (almost) nothing on it while path 1 is up; path 1 cut in the
    middle of the transfer: the transfer moves to path 2 and completes."""
    signal_server(bed)
    two_path_client(bed, backup2=True)
    n = 3 * MB

    def cut_midway(client):
        st = client.wait_status(lambda s: s["bytes"] - (s["unacked"] or 0) >= MB,
                                timeout=10, what="1 MB acked")
        at_cut = bed.counters()
        bed.cut(1, how)
        return {"acked": st["bytes"] - (st["unacked"] or 0), "counters": at_cut,
                "t": time.monotonic()}

    before = bed.counters()
    r = bed.transfer(n, during=cut_midway, timeout=20)
    report(f"backup, cut by {how}", r)
    c = ok(r)
    cut = r["during"]
    pre = bed.delta(before, cut["counters"])
    post = r["counters"]["eth2"]["tx_bytes"] - pre["eth2"]["tx_bytes"]
    print(f"  before the cut: eth1 {pre['eth1']['tx_bytes']} eth2 {pre['eth2']['tx_bytes']}; "
          f"after: eth2 {post}; cut at {cut['acked']} B acked")
    assert pre["eth1"]["tx_bytes"] >= MB
    assert pre["eth2"]["tx_bytes"] < 20_000, pre     # SYN, ACKs: no data
    (bk,) = seen(c, C2, S2)
    assert bk["state"] == "ESTABLISHED"
    assert post > 0.9 * (n - cut["acked"]), post     # the rest went over the backup
    assert bk["bytes_acked"] > 0.9 * (n - cut["acked"])
    bed.restore(1)
    # Restored: path 1 works again.
    r2 = bed.transfer(100_000, timeout=10)
    assert r2["client"]["ok"] and r2["data_bytes"]["eth1"] > 100_000


def test_implicit_endpoint_for_an_unconfigured_interface(bed):
    """No endpoint on the client's eth2: the kernel still opens a subflow from it to
    the announced address, through an implicit endpoint."""
    signal_server(bed)
    bed.configure_client(f"ip mptcp limits set add_addr_accepted 1 subflows 2 && "
                         f"ip mptcp endpoint add {C1} dev eth1 id 1 subflow")

    def endpoints_meanwhile(client):
        client.wait_status(lambda s: any(sf["local_addr"] == C2 and sf["state"] == "ESTABLISHED"
                                         for sf in s["subflows"]), timeout=10,
                           what="a subflow from 10.2.2.2")
        return bed.endpoints("client")

    r = bed.transfer(2 * MB, during=endpoints_meanwhile)
    report("no endpoint on eth2", r)
    c = ok(r)
    implicit = [e for e in r["during"] if e["address"] == C2]
    assert len(implicit) == 1 and implicit[0]["flags"] == ["implicit"], r["during"]
    assert implicit[0]["rawflags"] == 0x10 and implicit[0]["dev"] is None
    (sf,) = seen(c, C2, S2)
    assert sf["bytes_acked"] > 0.2 * 2 * MB
    print(f"  endpoints during the transfer: {[e['raw'] for e in r['during']]}")


def test_limits_subflows_zero_keeps_one_subflow(bed):
    signal_server(bed)
    bed.configure_client("ip mptcp limits set add_addr_accepted 1 subflows 0")

    def endpoints_meanwhile(client):
        client.wait_status(lambda s: s["bytes"] >= MB, timeout=10)
        return bed.endpoints("client")

    r = bed.transfer(2 * MB, during=endpoints_meanwhile)
    report("subflows 0", r)
    c = ok(r)
    assert c["subflows_max_seen"] == 0 and c["subflows_end"] == 0
    assert c["subflow_list_max_seen"] == 1 and len(c["subflows_seen"]) == 1
    assert r["during"] == []                       # no implicit endpoint either
    assert r["data_bytes"]["eth2"] < 1000


def _p2(status):
    """The established path-2 subflow in a status sample, or None."""
    for sf in status["subflows"]:
        if sf["local_addr"] == C2 and sf["remote_addr"] == S2 and sf["state"] == "ESTABLISHED":
            return sf
    return None


def _ident(sf):
    return (sf["id"], sf["local"], sf["remote"])


def test_subflow_survives_endpoint_change_to_backup(bed):
    signal_server(bed)
    two_path_client(bed)
    n = 4 * MB

    def change(client):
        st = client.wait_status(lambda s: _p2(s) and (s["mptcpi_bytes_acked"] or 0) > MB / 2,
                                timeout=10, what="both paths busy")
        before = _p2(st)
        flags_before = bed.subflow_flags("client")
        bed.configure_client("ip mptcp endpoint change id 2 backup")
        changed = time.time()
        eps = bed.endpoints("client")
        # The first sample taken after the change: what path 2 had been given by then.
        st1 = client.wait_status(lambda s: s["time"] > changed + 0.05, timeout=5)
        flags_after = {"client": bed.subflow_flags("client")}
        # MP_PRIO tells the server; it queues behind the data in the tbf (~100 ms).
        flags_after["server"] = bed.sb.wait_for(
            lambda: (lambda f: f if any(x["backup_remote"] for x in f) else None)(
                bed.subflow_flags("server")), timeout=5, what="server sees MP_PRIO")
        st2 = client.wait_status(lambda s: s["phase"] == "holding", timeout=15,
                                 what="all data acked")
        return {"before": before, "at_change": _p2(st1), "holding": st2, "endpoints": eps,
                "flags_before": flags_before, "flags_after": flags_after}

    r = bed.transfer(n, hold=1.0, during=change, timeout=25)
    report("endpoint change backup", r)
    c = ok(r)
    d = r["during"]
    ep2 = [e for e in d["endpoints"] if e["id"] == 2]
    assert ep2 and "backup" in ep2[0]["flags"], d["endpoints"]
    before = d["before"]
    # The same subflow (kernel id, addresses, ports) while held open and at the end.
    after = _p2(d["holding"])
    assert after is not None and _ident(after) == _ident(before), (before, d["holding"])
    final = [s for s in c["subflows"] if _ident(s) == _ident(before)]
    assert final and final[0]["state"] == "ESTABLISHED", c["subflows"]
    # The kernel marked that very subflow backup, on both ends (ss: b local, B remote).
    def by_ports(flags, local, remote):
        return [f for f in flags if f["local"] == local and f["remote"] == remote]
    (fb,) = by_ports(d["flags_before"], before["local"], before["remote"])
    (fc,) = by_ports(d["flags_after"]["client"], before["local"], before["remote"])
    (fs,) = by_ports(d["flags_after"]["server"], before["remote"], before["local"])
    assert not fb["backup_local"] and fc["backup_local"] and fs["backup_remote"], (fb, fc, fs)
    assert fc["local_id"] == 2
    # Backup from then on: the scheduler gave path 2 (almost) nothing of what was still
    # to be sent.  What the subflow had queued (tcpi_notsent_bytes) still goes out.
    at_change = d["at_change"]
    given = at_change["bytes_sent"] + at_change["notsent_bytes"]
    grew = final[0]["bytes_sent"] - given
    print(f"  subflow #{before['id']} {before['local']}->{before['remote']} kept, ss flags "
          f"{fb['flags']} -> {fc['flags']} (server {fs['flags']}); given to it (sent + "
          f"queued): {before['bytes_sent'] + before['notsent_bytes']} B at the last sample "
          f"before the change, {given} B just after it ({at_change['notsent_bytes']} B "
          f"still queued), {grew} B later, of {n} B")
    assert grew < 0.02 * n, grew


def test_subflow_does_not_survive_endpoint_delete_and_add(bed):
    signal_server(bed)
    two_path_client(bed)
    n = 2 * MB

    def readd(client):
        st = client.wait_status(lambda s: (_p2(s) or {}).get("bytes_acked", 0) > 200_000,
                                timeout=10, what="path-2 subflow carrying data")
        before = _p2(st)
        bed.configure_client(f"ip mptcp endpoint delete id 2 && "
                             f"ip mptcp endpoint add {C2} dev eth2 id 2 subflow")
        gone = client.wait_status(
            lambda s: not any(_ident(sf) == _ident(before) for sf in s["subflows"]),
            timeout=5, what="old subflow gone")
        return {"before": before, "after": gone, "endpoints": bed.endpoints("client")}

    r = bed.transfer(n, hold=0.5, during=readd, timeout=25)
    report("endpoint delete + add", r)
    c = ok(r)
    d = r["during"]
    before = d["before"]
    assert [e["address"] for e in d["endpoints"] if e["id"] == 2] == [C2]
    assert not [s for s in c["subflows"] if _ident(s) == _ident(before)]
    old = [s for s in c["subflows_seen"] if s["id"] == before["id"]]
    assert old and not old[0]["listed"]
    # Anything from 10.2.2.2 afterwards is a new subflow (new id, new port).
    for sf in c["subflows_seen"]:
        if sf["local_addr"] == C2 and sf["first_seen"] > old[0]["last_seen"]:
            assert sf["id"] != before["id"] and sf["local_port"] != before["local_port"]
    print(f"  subflow #{before['id']} {before['local']}->{before['remote']} closed "
          f"({old[0]['bytes_sent']} B sent, {old[0]['bytes_acked']} B acked on it); at the end: "
          f"{[(s['id'], s['local'], s['remote'], s['state']) for s in c['subflows']]}")


def test_bed_with_networkmanager():
    """WireBed(nm=True): NM manages the client's links; the test gives them addresses
    and MPTCP flags through NM profiles.  NM leaves the limits alone, so with
    add_addr_accepted still 0 the server's announcement is ignored here too."""
    _require_root()
    if not (shutil.which("NetworkManager") and shutil.which("nmcli")
            and shutil.which("dbus-daemon")):
        pytest.skip("needs NetworkManager, nmcli and dbus-daemon")
    with _bed(nm=True) as b:
        # The client's addresses are the test's job (through NM) here.
        assert not [a for l in b.ip("client", "-4", "addr", "show", "dev", "eth1", json=True)
                    for a in l.get("addr_info", [])]
        signal_server(b)
        for p in ("eth1", "eth2"):
            b.sb.nmcli("connection", "add", "type", "ethernet", "ifname", p, "con-name", p,
                       "ipv4.method", "manual", "ipv4.addresses", f"{b.client_addr(p)}/24",
                       "ipv6.method", "disabled",
                       "connection.mptcp-flags", "0x28")   # subflow, also-without-default-route
            b.sb.nmcli("connection", "up", p)
        eps = b.sb.wait_for(lambda: len(b.endpoints()) == 2 and b.endpoints(), timeout=10,
                            what="NM's two endpoints")
        assert sorted((e["address"], e["dev"], e["flags"][0]) for e in eps) == \
            [(C1, "eth1", "subflow"), (C2, "eth2", "subflow")]
        assert b.limits() == {"add_addr_accepted": 0, "subflows": 2}
        r = b.transfer(MB)
        report("NM, limits untouched", r)
        ok(r)
        assert r["data_bytes"]["eth2"] < 0.01 * MB
        b.configure_client("ip mptcp limits set add_addr_accepted 1 subflows 2")
        r = b.transfer(2 * MB)
        report("NM, add_addr_accepted 1", r)
        ok(r)
        assert min(r["data_bytes"].values()) > 0.2 * 2 * MB
