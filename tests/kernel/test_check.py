"""`mptcpstatectl check` against real broken setups, one per finding that needs no traffic
(tests/wire has those that do): each test breaks one thing in a fresh sandbox namespace
with `ip`/`sysctl` (never the library, so the setup does not depend on what is under
test), runs `check`, and looks for exactly that finding; the healthy setup yields none.
Also the C and Python faces of `check`, and its exit status.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest


HEALTHY = (
    "set -e\n"
    "ip addr add 10.1.1.2/24 dev eth1\n"
    "ip addr add 10.2.2.2/24 dev eth2\n"
    "ip mptcp endpoint add 10.1.1.2 dev eth1 subflow\n"
    "ip mptcp endpoint add 10.2.2.2 dev eth2 subflow\n"
    "ip mptcp limits set subflows 2 add_addr_accepted 2\n"
)


@pytest.fixture
def sb(sandbox):
    """The kernel suite's sandbox (eth1, eth2, no NetworkManager), made healthy."""
    sandbox.run(HEALTHY)
    return sandbox


def check(cli, sb, *args):
    """(exit status, findings, connections) of `check --json --kernel`."""
    r = sb.run([cli, "check", "--json", "--kernel", *args], check=False)
    assert r.returncode in (0, 10), f"exit {r.returncode}: {r.stderr}"
    report = json.loads(r.stdout)
    return r.returncode, report["findings"], report["connections"]


def codes(findings):
    return [f["code"] for f in findings]


def test_healthy_yields_nothing(cli, sb):
    status, findings, conns = check(cli, sb)
    assert (status, findings, conns) == (0, [], [])
    r = sb.run([cli, "check", "--kernel"])
    assert r.stdout.startswith("no findings"), r.stdout


def test_mptcp_disabled_is_an_error(cli, sb):
    sb.run("sysctl -qw net.mptcp.enabled=0")
    status, findings, _ = check(cli, sb)
    assert status == 10
    [f] = findings
    assert (f["code"], f["severity"]) == ("mptcp-disabled", "error")
    assert f["fix"] == {"state": {"mptcp": {"enabled": True}},
                        "command": "sysctl -w net.mptcp.enabled=1"}


def test_the_seeds_trap(cli, sb):
    """The seed's example as written: subflow and signal endpoints, default limits."""
    sb.run("ip mptcp limits set subflows 2 add_addr_accepted 0")
    status, findings, _ = check(cli, sb)
    assert status == 0
    [f] = findings
    assert f["code"] == "add-addr-accepted-zero" and f["severity"] == "warning"
    assert "ignores every address a peer announces" in f["message"]
    assert f["fix"]["state"] == {"mptcp": {"limits": {"add-addr-accepted": 2}}}


def test_the_fix_applied_clears_the_finding(cli, sb):
    """The fix a finding gives is a state `apply --kernel` takes; applied, it is gone."""
    sb.run("ip mptcp limits set subflows 2 add_addr_accepted 0")
    _, [f], _ = check(cli, sb)
    r = sb.run([cli, "apply", "--kernel", "-"], input=json.dumps(f["fix"]["state"]), check=False)
    assert r.returncode == 0, r.stderr
    assert check(cli, sb)[1] == []


def test_subflow_limits(cli, sb):
    sb.run("ip mptcp limits set subflows 0 add_addr_accepted 2")
    status, findings, _ = check(cli, sb)
    assert (status, codes(findings)) == (10, ["subflows-limit-zero"])
    sb.run("ip mptcp limits set subflows 1 add_addr_accepted 2")
    assert codes(check(cli, sb)[1]) == ["subflows-limit-low"]


def test_signal_endpoints_without_room(cli, sb):
    """A server announcing two addresses that accepts one join per connection."""
    sb.run("ip mptcp endpoint flush\n"
           "ip mptcp endpoint add 10.1.1.2 dev eth1 signal\n"
           "ip mptcp endpoint add 10.2.2.2 dev eth2 signal\n"
           "ip mptcp limits set subflows 1 add_addr_accepted 0\n")
    assert codes(check(cli, sb)[1]) == ["signal-without-room"]


def test_endpoint_address_interface_and_link(cli, sb):
    sb.run("ip mptcp endpoint add 192.0.2.99 subflow\n"      # an address nobody has
           "ip addr add 10.3.3.3/24 dev eth1\n"
           "ip mptcp endpoint add 10.3.3.3 signal\n"          # no dev
           "ip mptcp limits set subflows 3 add_addr_accepted 3\n")
    sb.peer_run("ip link set eth2 down")                      # eth2 loses its carrier
    sb.wait_for(lambda: "NO-CARRIER" in sb.ip("link", "show", "eth2"), what="no carrier")
    _, findings, _ = check(cli, sb)
    got = {(f["code"], f.get("interface"), f.get("address")) for f in findings}
    assert got == {
        ("endpoint-without-address", None, "192.0.2.99"),
        ("endpoint-without-interface", "eth1", "10.3.3.3"),
        ("endpoint-interface-down", "eth2", "10.2.2.2"),
    }, findings
    bad = next(f for f in findings if f["code"] == "endpoint-without-address")
    assert bad["severity"] == "error" and "ip mptcp endpoint delete id" in bad["fix"]["command"]


def test_tentative_and_dad_failed_addresses(cli, sb):
    """The peer already uses one IPv6 address: its duplicate address detection fails; a
    second one is checked while its detection still runs."""
    sb.run("sysctl -qw net.ipv6.conf.eth1.dad_transmits=1 net.ipv6.conf.eth1.accept_dad=1")
    sb.peer_run("ip -6 addr add 2001:db8:9::1/64 dev eth1 nodad")
    sb.run("ip -6 addr add 2001:db8:9::1/64 dev eth1\n"
           "ip mptcp endpoint add 2001:db8:9::1 dev eth1 subflow\n"
           "ip mptcp limits set subflows 3 add_addr_accepted 3\n")
    sb.wait_for(lambda: "dadfailed" in sb.ip("-6", "addr", "show", "dev", "eth1"),
                timeout=10, what="DAD failure")
    status, findings, _ = check(cli, sb)
    assert (status, codes(findings)) == (10, ["endpoint-dad-failed"]), findings
    # A slow detection: 5 probes a second apart.
    sb.run("sysctl -qw net.ipv6.conf.eth2.dad_transmits=5\n"
           "ip -6 addr add 2001:db8:8::2/64 dev eth2\n"
           "ip mptcp endpoint add 2001:db8:8::2 dev eth2 subflow\n"
           "ip mptcp limits set subflows 4 add_addr_accepted 4\n")
    assert "endpoint-tentative" in codes(check(cli, sb)[1])


def test_the_cap_names_who_got_none(cli, sb):
    script = ["ip mptcp limits set subflows 8 add_addr_accepted 8"]
    for i in range(1, 8):
        script.append(f"ip addr add 10.1.1.{100 + i}/24 dev eth1")
    for i in range(1, 7):
        script.append(f"ip mptcp endpoint add 10.1.1.{100 + i} dev eth1 subflow")
    sb.run("\n".join(script))
    [f] = [f for f in check(cli, sb)[1] if f["code"] == "endpoint-cap-reached"]
    assert "holds 8 MPTCP endpoints" in f["message"]
    assert "10.1.1.107 on eth1 got none" in f["message"], f


def test_strict_rp_filter(cli, sb):
    sb.run("sysctl -qw net.ipv4.conf.eth2.rp_filter=1 net.ipv4.conf.all.rp_filter=0")
    [f] = check(cli, sb)[1]
    assert (f["code"], f["interface"]) == ("rp-filter-strict", "eth2")
    assert f["fix"]["command"] == "sysctl -w net.ipv4.conf.eth2.rp_filter=2"


def test_only_the_named_interfaces(cli, sb):
    sb.run("sysctl -qw net.ipv4.conf.eth2.rp_filter=1")
    assert check(cli, sb, "eth1")[1] == []
    assert codes(check(cli, sb, "eth2")[1]) == ["rp-filter-strict"]


def test_userspace_path_manager_needs_its_daemon(cli, sb):
    sb.run("sysctl -qw net.mptcp.path_manager=userspace")
    status, findings, _ = check(cli, sb)
    assert (status, codes(findings)) == (10, ["userspace-path-manager-without-daemon"])
    # Debian installs the daemon outside PATH.
    mptcpd = shutil.which("mptcpd") or next(
        (p for p in ("/usr/libexec/mptcpd", "/usr/lib/mptcpd/mptcpd") if os.access(p, os.X_OK)),
        None)
    if mptcpd is None:
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail("mptcpd is not installed (scripts/setup.sh installs it)")
        pytest.skip("no mptcpd")
    daemon = subprocess.Popen(["ip", "netns", "exec", sb.netns, mptcpd, "--log=stderr"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sb.wait_for(lambda: codes(check(cli, sb)[1]) == [], timeout=10,
                    what="mptcpd seen in the namespace")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


# A live connection over both paths: the server's address on the peer's lo, reachable
# through each link (one route per link; the first is the initial subflow's).
LIVE = {
    "ipv4": {"server": "10.255.0.1", "bind": "0.0.0.0", "setup": (
        "ip route add 10.255.0.1/32 via 10.1.1.1 dev eth1 metric 100\n"
        "ip route add 10.255.0.1/32 via 10.2.2.1 dev eth2 metric 101\n"), "peer": (
        "ip addr add 10.1.1.1/24 dev eth1\n"
        "ip addr add 10.2.2.1/24 dev eth2\n"
        "ip addr add 10.255.0.1/32 dev lo\n")},
    # IPv6 sockets and subflows (the IPv6 sock_diag dumps); the IPv4 endpoints go.
    "ipv6": {"server": "2001:db8:ff::1", "bind": "::", "setup": (
        "ip -6 addr add 2001:db8:1::2/64 dev eth1 nodad\n"
        "ip -6 addr add 2001:db8:2::2/64 dev eth2 nodad\n"
        "ip mptcp endpoint flush\n"
        "ip mptcp endpoint add 2001:db8:1::2 dev eth1 subflow\n"
        "ip mptcp endpoint add 2001:db8:2::2 dev eth2 subflow\n"
        "ip -6 route add 2001:db8:ff::1/128 via 2001:db8:1::1 dev eth1 metric 100\n"
        "ip -6 route add 2001:db8:ff::1/128 via 2001:db8:2::1 dev eth2 metric 101\n"), "peer": (
        "ip -6 addr add 2001:db8:1::1/64 dev eth1 nodad\n"
        "ip -6 addr add 2001:db8:2::1/64 dev eth2 nodad\n"
        "ip -6 addr add 2001:db8:ff::1/128 dev lo\n")},
}


@pytest.mark.parametrize("family", sorted(LIVE))
def test_a_live_connection_and_its_subflows(cli, sb, family, tmp_path):
    """A healthy connection with a subflow on each link: no finding, and the report lists
    the connection with both subflows (from the kernel's sockets, over sock_diag)."""
    live = LIVE[family]
    sb.run("set -e\n" + live["setup"])
    sb.peer_run("set -e\n" + live["peer"] + "ip mptcp limits set subflows 2 add_addr_accepted 2\n")
    peer = os.path.join(os.path.dirname(__file__), "..", "harness", "mptcp_peer.py")
    ready, status = tmp_path / "ready", tmp_path / "status.json"
    procs = []
    try:
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", sb.peer_netns, sys.executable, peer, "serve", "--port",
             "5300", "--bind", live["bind"], "--once", "--timeout", "60",
             "--ready-file", str(ready)], stdout=subprocess.DEVNULL))
        sb.wait_for(ready.exists, timeout=10, what="the server listening")
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", sb.netns, sys.executable, peer, "send", "--to",
             live["server"], "--port", "5300", "--bytes", "1000", "--hold", "30",
             "--timeout", "60", "--sample-interval", "0.1", "--status-file", str(status)],
            stdout=subprocess.DEVNULL))

        def both_paths():
            st = json.loads(status.read_text())
            subs = st["subflows"] or []
            return (st["phase"] == "holding" and st["mptcpi_subflows"] == 1 and len(subs) == 2
                    and all(x["state"] == "ESTABLISHED" for x in subs))

        sb.wait_for(both_paths, timeout=15, what="a connection with a subflow on each link")
        status_code, findings, conns = check(cli, sb)
        assert (status_code, findings) == (0, []), findings
        [c] = conns
        assert c["remote"].endswith(":5300") and live["server"] in c["remote"], c
        assert not c["fallback"]
        got = sorted((x["interface"], x["state"]) for x in c["subflows"])
        assert got == [("eth1", "established"), ("eth2", "established")], c
        assert c["local"] in [x["local"] for x in c["subflows"]], c  # the initial subflow
        text = sb.run([cli, "check", "--kernel"]).stdout
        assert text.startswith("no findings") and ": 2 subflow(s)" in text, text
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_faces_agree(cli, sb):
    """The Python and C faces return the same findings as the CLI."""
    sb.run("ip mptcp limits set subflows 2 add_addr_accepted 0")
    want = check(cli, sb)[1]
    py = sb.run([sys.executable, "-c",
                 "import json, mptcpstate; print(json.dumps(mptcpstate.check(kernel_only=True)))"])
    assert json.loads(py.stdout) == want
    c_face = os.path.join(os.path.dirname(__file__), "..", "..", "build", "c", "check_face")
    if not os.access(c_face, os.X_OK):
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail("build/c/check_face is missing: run `make -C tests/c`")
        pytest.skip("no C face built")
    prefix = []
    if os.environ.get("MPTCPSTATE_FACE_VALGRIND") and shutil.which("valgrind"):
        prefix = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                  "--error-exitcode=99"]
    r = sb.run(prefix + [c_face, "--kernel"], check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == want
    r = sb.run(prefix + [c_face, "--kernel", "--yaml"], check=False)
    assert r.returncode == 0 and r.stdout.startswith("---"), r.stderr
