"""`show` against a real NetworkManager and kernel, with profiles made by nmcli (not by
this library): the output must agree exactly with `ip` and the sysctl in the same
namespace."""
import ipaddress
import json
import os
import subprocess
import sys

import pytest

from nmsandbox import Sandbox  # tests/harness, on sys.path through conftest.py

ORDER = ["signal", "subflow", "backup", "fullmesh"]

# name -> (nmcli mptcp-flags, IPv4, IPv6 or None, expected derived address-flags)
PROFILES = {
    "eth1": ("0x38", "192.0.2.2/24", "2001:db8:1::2/64", ["signal", "subflow"]),
    "eth2": ("0x68", "198.51.100.2/24", None, ["subflow", "backup"]),
    "eth3": ("0x1", "203.0.113.2/24", "2001:db8:3::2/64", []),
}


def canonical(flags):
    return sorted(flags, key=ORDER.index)


@pytest.fixture(scope="module")
def sbx(require_nm):
    with Sandbox(["eth1", "eth2", "eth3", "eth4", "eth5"]) as sb:
        for name, (flags, v4, v6, _) in PROFILES.items():
            args = ["connection", "add", "type", "ethernet", "ifname", name, "con-name", name,
                    "ipv4.method", "manual", "ipv4.addresses", v4,
                    "connection.mptcp-flags", flags]
            args += ["ipv6.method", "manual", "ipv6.addresses", v6] if v6 else ["ipv6.method", "disabled"]
            sb.nmcli(*args)
            sb.nmcli("-w", "20", "connection", "up", name)
        # eth4: no profile; addresses and endpoints made by hand with different flags, so
        # the interface has no common flag set.
        sb.ip("addr", "add", "192.0.2.40/24", "dev", "eth4")
        sb.ip("addr", "add", "192.0.2.41/24", "dev", "eth4")
        sb.ip("mptcp", "endpoint", "add", "192.0.2.40", "dev", "eth4", "subflow")
        sb.ip("mptcp", "endpoint", "add", "192.0.2.41", "dev", "eth4", "signal", "backup")
        sb.ip("mptcp", "limits", "set", "subflows", "3", "add_addr_accepted", "4")
        # eth1: 2 endpoints, eth2: 1, eth4: 2.
        sb.wait_for(lambda: len(sb.endpoints()) == 5, timeout=15, what="5 endpoints")
        yield sb


def show(sb, cli, *args):
    out = sb.run([cli, "show", "--json", *args])
    return json.loads(out.stdout)


def by_name(state):
    return {i["name"]: i for i in state["interfaces"]}


def addresses(iface):
    out = {}
    for fam in ("ipv4", "ipv6"):
        for a in (iface.get(fam) or {}).get("address") or []:
            out[(a["ip"], a["prefix-length"])] = a.get("mptcp-flags")
    return out


def test_show_agrees_with_ip_and_sysctl(sbx, cli):
    state = show(sbx, cli)
    ifaces = by_name(state)
    names = [i["name"] for i in state["interfaces"]]
    assert names == sorted(names)

    links = sbx.ip("-j", "addr", "show", json=True)
    assert set(ifaces) == {l["ifname"] for l in links}
    endpoints = {e["address"]: canonical(e["flags"]) for e in sbx.endpoints()}
    nm_states = dict(line.split(":", 1) for line in
                     sbx.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout.splitlines())
    kernel = by_name(show(sbx, cli, "--kernel"))
    for link in links:
        iface = ifaces[link["ifname"]]
        link_state = "up" if "UP" in link["flags"] else "down"
        # nmstate's states: NM manages it with nothing active (eth5: no profile) -> down,
        # not managed -> ignore; else the link's. Kernel-only: the link's.
        nm_state = nm_states.get(link["ifname"], "")
        want = ("down" if nm_state in ("disconnected", "unavailable") else
                "ignore" if nm_state == "unmanaged" else link_state)
        assert iface["state"] == want, (link["ifname"], nm_state)
        assert kernel[link["ifname"]]["state"] == link_state
        kernel_addrs = {(a["local"], a["prefixlen"]) for a in link.get("addr_info", [])}
        shown = addresses(iface)
        assert set(shown) == kernel_addrs, link["ifname"]
        for (ip, _), flags in shown.items():
            assert flags == endpoints.get(ip), ip
            if ipaddress.ip_address(ip).is_link_local:
                assert flags is None

    assert ifaces["eth5"]["state"] == "down" and kernel["eth5"]["state"] == "up"

    limits = sbx.ip("mptcp", "limits", "show").split()
    kernel_limits = dict(zip(limits[::2], map(int, limits[1::2])))
    assert state["mptcp"]["limits"] == {
        "subflows": kernel_limits["subflows"],
        "add-addr-accepted": kernel_limits["add_addr_accepted"],
    } == {"subflows": 3, "add-addr-accepted": 4}
    sysctl = sbx.run(["cat", "/proc/sys/net/mptcp/enabled"]).stdout.strip()
    assert state["mptcp"]["enabled"] is (sysctl == "1")


def test_derived_address_flags(sbx, cli):
    ifaces = by_name(show(sbx, cli))
    for name, (_, v4, v6, derived) in PROFILES.items():
        assert ifaces[name]["mptcp"]["address-flags"] == derived, name
        assert ifaces[name]["type"] == "veth"
    # Flags that differ between addresses: no interface-level flags.
    assert "mptcp" not in ifaces["eth4"]
    per_addr = addresses(ifaces["eth4"])
    assert per_addr[("192.0.2.40", 24)] == ["subflow"]
    assert per_addr[("192.0.2.41", 24)] == ["signal", "backup"]
    # No eligible address at all (lo, or eth5 with only a link-local): nothing to derive.
    assert "mptcp" not in ifaces["lo"]
    assert ifaces["lo"]["type"] == "loopback"


def test_dhcp_and_autoconf_come_from_networkmanager(sbx, cli):
    ifaces = by_name(show(sbx, cli))
    assert ifaces["eth1"]["ipv4"]["dhcp"] is False
    assert ifaces["eth1"]["ipv6"]["autoconf"] is False
    assert ifaces["eth2"]["ipv6"]["enabled"] is False
    # The kernel alone cannot tell: the keys are left out ("leave as it is").
    kernel = by_name(show(sbx, cli, "--kernel"))
    assert "dhcp" not in kernel["eth1"]["ipv4"]
    assert kernel["eth1"]["mptcp"] == ifaces["eth1"]["mptcp"]


def test_show_selected_interfaces(sbx, cli):
    state = show(sbx, cli, "eth2", "eth1", "nosuch0")
    assert [i["name"] for i in state["interfaces"]] == ["eth1", "eth2"]


def test_round_trip_through_format(sbx, cli):
    """show's output is valid input, and format leaves it unchanged."""
    for args in ([], ["--kernel"]):
        yaml = sbx.run([cli, "show", *args]).stdout
        formatted = subprocess.run([cli, "format", "-"], input=yaml, capture_output=True,
                                   text=True, check=True).stdout
        assert formatted == yaml


def test_python_show(sbx):
    code = "import json, mptcpstate; print(json.dumps(mptcpstate.show()))"
    full = json.loads(sbx.run([sys.executable, "-c", code]).stdout)
    code_k = "import json, mptcpstate; print(json.dumps(mptcpstate.show(kernel_only=True)))"
    kernel = json.loads(sbx.run([sys.executable, "-c", code_k]).stdout)
    assert by_name(full)["eth1"]["mptcp"]["address-flags"] == ["signal", "subflow"]
    assert by_name(kernel)["eth2"]["mptcp"]["address-flags"] == ["subflow", "backup"]


def test_without_networkmanager(cli, require_nm):
    """No NetworkManager: full show is a NetworkManager error pointing at kernel-only mode;
    kernel-only show works."""
    with Sandbox(["eth1"], nm=False) as sb:
        sb.ip("addr", "add", "192.0.2.9/24", "dev", "eth1")
        sb.ip("mptcp", "endpoint", "add", "192.0.2.9", "dev", "eth1", "subflow")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={sb.dir}/no-bus")
        full = sb.run([cli, "show"], check=False, env=env)
        assert full.returncode == 4, full.stderr
        assert "NetworkManager is not running" in full.stderr
        assert "kernel-only" in full.stderr
        assert len(full.stderr.strip().splitlines()) == 1
        kernel = json.loads(sb.run([cli, "show", "--kernel", "--json"], env=env).stdout)
        eth1 = by_name(kernel)["eth1"]
        assert eth1["mptcp"]["address-flags"] == ["subflow"]
