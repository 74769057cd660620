"""`show`'s output applied back changes nothing, on a host like most machines: devices
NetworkManager manages with no profile (an unused port), one it does not manage, one
configured outside it (`ip addr add`: NM 1.42 shows it "connected (externally)" with a
profile it generates in memory), an inactive profile whose autoconnect is on (brought
down by `nmcli connection down`), a profile of this library and one made by nmcli, and
non-default host knobs. Through the CLI and the Python package; and kernel-only, `show
--kernel` applied back with `apply --kernel` on a host without NetworkManager.

"Nothing changed" is read, not trusted: keyfiles byte for byte, every profile's settings,
devices' states, NM's checkpoints (and the checkpoint lines of its log), the applied
connections' version ids (a reapply raises them), `ip -j addr`, the endpoints, limits and
sysctls are the same before and after; and the apply says it changed nothing.
"""
from __future__ import annotations

import json
import sys

import pytest

from nmsandbox import Sandbox
from test_apply import (SEED, applied_version, checkpoints, cli_apply, endpoint_lines,
                        kernel_addresses, snapshot)

PY_SHOW_APPLY = (
    "import json, sys, mptcpstate\n"
    "state = mptcpstate.show()\n"
    "cp = mptcpstate.apply(state)\n"
    "print(json.dumps({'checkpoint': cp, 'state': state}))\n"
)


def nm_log_checkpoints(sb: Sandbox) -> int:
    with open(sb.nm_log, encoding="utf-8", errors="replace") as f:
        return sum("checkpoint" in line for line in f)


def full_snapshot(sb: Sandbox) -> dict:
    snap = snapshot(sb)
    active = [line.split(":")[0] for line in
              sb.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines()
              if line.split(":")[1].startswith("connected")]
    snap["applied_versions"] = {d: applied_version(sb, d) for d in active}
    snap["nm_log_checkpoints"] = nm_log_checkpoints(sb)
    return snap


def device_states(sb: Sandbox) -> dict:
    return dict(line.split(":", 1) for line in
                sb.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines())


@pytest.fixture(scope="module")
def host(require_nm, cli):
    with Sandbox([f"eth{i}" for i in range(1, 8)]) as sb:
        # eth1: the seed, through this library (its profile, active).
        r = cli_apply(sb, cli, SEED)
        assert r.returncode == 0, r.stderr
        # eth2, eth7: managed, no profile at all (disconnected).
        # eth3: not managed by NM, with an address and an endpoint made by hand.
        sb.nmcli("device", "set", "eth3", "managed", "no")
        sb.ip("addr", "add", "203.0.113.3/24", "dev", "eth3")
        sb.ip("mptcp", "endpoint", "add", "203.0.113.3", "dev", "eth3", "signal")
        # eth4: configured outside NM: "connected (externally)".
        sb.ip("addr", "add", "198.18.0.4/24", "dev", "eth4")
        # eth5: a profile of nmcli, autoconnect on, brought down (NM then blocks its
        # autoconnect on this device, so it stays disconnected).
        sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth5", "con-name", "p5",
                 "ipv4.method", "manual", "ipv4.addresses", "198.51.100.5/24",
                 "ipv6.method", "disabled", "connection.mptcp-flags", "0x38")
        sb.nmcli("-w", "20", "connection", "up", "p5")
        sb.nmcli("-w", "20", "connection", "down", "p5")
        # eth6: a profile of nmcli, active, IPv4 and IPv6, flags subflow+backup.
        sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth6", "con-name", "p6",
                 "ipv4.method", "manual", "ipv4.addresses", "198.51.100.6/24",
                 "ipv6.method", "manual", "ipv6.addresses", "2001:db8:6::6/64",
                 "connection.mptcp-flags", "0x68")
        sb.nmcli("-w", "20", "connection", "up", "p6")
        sb.ip("mptcp", "limits", "set", "subflows", "3", "add_addr_accepted", "1")
        sb.wait_for(lambda: device_states(sb).get("eth4") == "connected (externally)",
                    timeout=10, what="eth4 connected externally")
        sb.wait_for(lambda: len(endpoint_lines(sb)) == 4, what="4 endpoints")
        sb.wait_for(lambda: not sb.ip("-6", "addr", "show", "tentative").strip(),
                    what="IPv6 duplicate address detection")
        states = device_states(sb)
        assert states == {"lo": "connected (externally)", "eth1": "connected",
                          "eth2": "disconnected", "eth3": "unmanaged",
                          "eth4": "connected (externally)", "eth5": "disconnected",
                          "eth6": "connected", "eth7": "disconnected"}, states
        yield sb


def by_name(state: dict) -> dict:
    return {i["name"]: i for i in state["interfaces"]}


def test_show_reports_devices_as_nmstate_does(host, cli):
    """Managed with nothing active: `down` (nmstate's word for a disconnected device);
    not managed: `ignore`; configured outside NM, and active profiles: `up`."""
    ifaces = by_name(json.loads(host.run([cli, "show", "--json"]).stdout))
    assert {n: i["state"] for n, i in ifaces.items()} == {
        "lo": "up", "eth1": "up", "eth2": "down", "eth3": "ignore", "eth4": "up",
        "eth5": "down", "eth6": "up", "eth7": "down"}
    # The kernel alone cannot tell: every link is up there.
    kernel = by_name(json.loads(host.run([cli, "show", "--kernel", "--json"]).stdout))
    assert {i["state"] for i in kernel.values()} == {"up"}
    assert ifaces["eth3"]["ipv4"]["address"] == [
        {"ip": "203.0.113.3", "prefix-length": 24, "mptcp-flags": ["signal"]}]


@pytest.mark.parametrize("face", ["cli", "python"])
def test_show_applied_back_changes_nothing(host, cli, face):
    before = full_snapshot(host)
    if face == "cli":
        shown = host.run([cli, "show"]).stdout
        r = cli_apply(host, cli, shown)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "", r.stdout
        assert "applied: nothing to change" in r.stderr, r.stderr
        assert "nothing changed" in r.stderr, r.stderr
    else:
        r = host.run([sys.executable, "-c", PY_SHOW_APPLY], check=False)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["checkpoint"] is None
        assert {i["state"] for i in out["state"]["interfaces"]} == {"up", "down", "ignore"}
    after = full_snapshot(host)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_ignore_on_a_managed_device_is_refused(host, cli):
    """`ignore` would make NM stop managing the device in nmstate: refused, nothing
    written, no checkpoint."""
    before = full_snapshot(host)
    r = cli_apply(host, cli, "interfaces:\n- name: eth2\n  state: ignore\n")
    assert r.returncode == 2, r.stderr
    assert "eth2: state ignore on a device NetworkManager manages" in r.stderr, r.stderr
    assert full_snapshot(host) == before
    assert not checkpoints(host)


def test_kernel_only_round_trip(cli, require_nm):
    """No NetworkManager: `show --kernel` applied back with `apply --kernel` changes nothing
    (a link down with an address, per-address flags and a port, an implicit-free host with
    non-default limits)."""
    with Sandbox(["eth1", "eth2", "eth3"], nm=False) as sb:
        sb.ip("addr", "add", "192.0.2.2/24", "dev", "eth1")
        sb.ip("addr", "add", "192.0.2.3/24", "dev", "eth1")
        sb.ip("addr", "add", "2001:db8:1::2/64", "dev", "eth1", "nodad")
        sb.ip("mptcp", "endpoint", "add", "192.0.2.2", "dev", "eth1", "signal", "port", "8080")
        sb.ip("mptcp", "endpoint", "add", "192.0.2.3", "dev", "eth1", "subflow", "backup")
        sb.ip("addr", "add", "198.51.100.2/24", "dev", "eth2")
        sb.ip("mptcp", "endpoint", "add", "198.51.100.2", "dev", "eth2", "subflow")
        sb.ip("link", "set", "eth2", "down")
        sb.ip("mptcp", "limits", "set", "subflows", "4", "add_addr_accepted", "2")
        # Carrier and the kernel's link-local addresses come a moment after the links.
        sb.wait_for(lambda: all(l["operstate"] == "UP" for l in sb.ip("link", "show", json=True)
                                if l["ifname"] in ("eth1", "eth3")), what="carrier")
        sb.wait_for(lambda: not sb.ip("-6", "addr", "show", "tentative").strip()
                    and all(any(a["family"] == "inet6" for a in l.get("addr_info", []))
                            for l in sb.ip("addr", "show", json=True)
                            if l["ifname"] in ("eth1", "eth3")),
                    what="link-local addresses, duplicate address detection")

        def kernel_snapshot():
            return {"addresses": kernel_addresses(sb), "endpoints": sb.ip("mptcp", "endpoint", "show"),
                    "limits": sb.mptcp_limits(),
                    "sysctls": sb.run(["sysctl", "net.mptcp"]).stdout}

        before = kernel_snapshot()
        shown = sb.run([cli, "show", "--kernel"]).stdout
        assert "state: down" in shown and "mptcp-port: 8080" in shown, shown
        r = sb.run([cli, "-v", "apply", "--kernel", "-"], input=shown, check=False)
        assert r.returncode == 0, r.stderr
        assert "applied: nothing to change" in r.stderr, r.stderr
        assert kernel_snapshot() == before
