"""The apply reads only what the named interfaces need (issue 11): each case here is a
profile the scoped read must find, and would fail if it missed it (a second profile
added, or the wrong one changed, or none).

One sandbox, one veth per case; every apply names one interface (so the scoped read
runs, not the listing of every profile). Through the CLI: the read is the library's,
the same for every face.
"""
from __future__ import annotations

import json
import shutil

import pytest

from nmsandbox import Sandbox, netns_cookie

RUN_DIR = "/run/mptcpstate"


def up(name: str, ip: str, flags: list[str]) -> str:
    return json.dumps({"interfaces": [{
        "name": name, "type": "ethernet", "state": "up",
        "mptcp": {"address-flags": flags},
        "ipv4": {"enabled": True, "dhcp": False,
                 "address": [{"ip": ip, "prefix-length": 24}]},
        "ipv6": {"enabled": False}}]})


def apply(sb: Sandbox, cli: str, state: str) -> str:
    p = sb.run([cli, "-v", "apply", "-"], input=state, check=False, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stderr


def profiles(sb: Sandbox) -> dict[str, tuple[str, str]]:
    """NAME -> (UUID, DEVICE) of every profile."""
    out = sb.nmcli("-t", "-f", "NAME,UUID,DEVICE", "connection", "show").stdout
    rows = [line.split(":") for line in out.splitlines() if line]
    return {r[0]: (r[1], r[2]) for r in rows}


def field(sb: Sandbox, profile: str, name: str) -> str:
    return sb.nmcli("-g", name, "connection", "show", profile).stdout.strip()


def endpoints(sb: Sandbox, dev: str) -> list[str]:
    return sorted(",".join(e["flags"]) for e in sb.endpoints() if e["dev"] == dev)


def add(sb: Sandbox, name: str, ifname: str, ip: str, *extra: str) -> None:
    sb.nmcli("connection", "add", "type", "ethernet", "con-name", name, "ifname", ifname,
             "ipv4.method", "manual", "ipv4.addresses", f"{ip}/24", "ipv6.method", "disabled",
             *extra)


@pytest.fixture(scope="module")
def sb(require_nm):
    with Sandbox(["eth1", "eth2", "eth3", "eth4", "eth5"]) as box:
        try:
            yield box
        finally:
            shutil.rmtree(f"{RUN_DIR}/{netns_cookie(box.netns)}", ignore_errors=True)


def test_a_foreign_inactive_profile_bound_by_name_is_updated_not_duplicated(sb, cli):
    # Made by nmcli, bound to eth1, not active: no applied connection, no profile of this
    # library's UUID. NM lists it among the device's available connections.
    add(sb, "foreign1", "eth1", "192.0.2.11", "connection.autoconnect", "no")
    before = profiles(sb)
    apply(sb, cli, up("eth1", "192.0.2.11", ["subflow"]))
    after = profiles(sb)
    assert set(after) == set(before), f"a profile was added: {after}"
    assert after["foreign1"] == (before["foreign1"][0], "eth1")
    assert field(sb, "foreign1", "connection.mptcp-flags") == "0x28"
    assert endpoints(sb, "eth1") == ["subflow"]


def test_a_foreign_active_profile_with_another_uuid_is_updated(sb, cli):
    # Active on eth2: found by the applied connection's UUID.
    add(sb, "foreign2", "eth2", "192.0.2.12", "connection.mptcp-flags", "0x28")
    sb.nmcli("connection", "up", "foreign2")
    sb.wait_for(lambda: endpoints(sb, "eth2") == ["subflow"], timeout=10)
    before = profiles(sb)
    apply(sb, cli, up("eth2", "192.0.2.12", ["subflow", "backup"]))
    after = profiles(sb)
    assert set(after) == set(before), f"a profile was added: {after}"
    assert field(sb, "foreign2", "connection.mptcp-flags") == "0x68"
    assert endpoints(sb, "eth2") == ["backup,subflow"]


def test_the_active_profile_wins_over_one_bound_by_name_and_absent_deletes_both(sb, cli):
    # eth3 runs a profile not bound to any interface name; another, bound to eth3 by
    # interface-name, is not active. The apply changes the active one and leaves the
    # other; `state: absent` deletes both (every profile of the name, and the active).
    sb.nmcli("connection", "add", "type", "ethernet", "con-name", "unbound3", "ifname", "*",
             "ipv4.method", "manual", "ipv4.addresses", "192.0.2.13/24",
             "ipv6.method", "disabled", "connection.autoconnect", "no")
    add(sb, "bound3", "eth3", "192.0.2.13", "connection.autoconnect", "no")
    sb.nmcli("connection", "up", "unbound3", "ifname", "eth3")
    before = profiles(sb)
    apply(sb, cli, up("eth3", "192.0.2.13", ["signal"]))
    after = profiles(sb)
    assert set(after) == set(before), f"a profile was added: {after}"
    assert after["unbound3"][1] == "eth3"
    assert field(sb, "unbound3", "connection.mptcp-flags") == "0x18"
    assert field(sb, "bound3", "connection.mptcp-flags") != "0x18"
    apply(sb, cli, json.dumps({"interfaces": [{"name": "eth3", "state": "absent"}]}))
    left = profiles(sb)
    assert "unbound3" not in left and "bound3" not in left, left
    assert endpoints(sb, "eth3") == []


def test_an_inactive_profile_of_this_library_is_activated_again(sb, cli):
    # state: down keeps the profile (this library's UUID) inactive; up finds it by UUID.
    apply(sb, cli, up("eth4", "192.0.2.14", ["subflow"]))
    ours = profiles(sb)["eth4"]
    apply(sb, cli, json.dumps({"interfaces": [{"name": "eth4", "state": "down"}]}))
    assert profiles(sb)["eth4"] == (ours[0], "")
    apply(sb, cli, up("eth4", "192.0.2.14", ["subflow", "backup"]))
    after = profiles(sb)
    assert after["eth4"] == (ours[0], "eth4")
    assert [n for n in after if n.startswith("eth4")] == ["eth4"], after
    assert endpoints(sb, "eth4") == ["backup,subflow"]


def test_a_profile_of_a_device_without_carrier_is_found_by_listing(sb, cli):
    # No carrier (the peer end down): NM lists no available connection for the device,
    # and nothing is applied. The profile bound to eth5 is found by listing every
    # profile: `state: down` with flags writes the flags into it (missed, a second
    # profile would be added). A bare `down` would change nothing: that is what `show`
    # reports for such a device, and applying show's output changes nothing.
    add(sb, "foreign5", "eth5", "192.0.2.15", "connection.autoconnect", "yes")
    sb.peer_ip("link", "set", sb.peer_veths[4], "down")
    sb.wait_for(lambda: "unavailable" in sb.nmcli("-g", "GENERAL.STATE", "device", "show",
                                                   "eth5").stdout, timeout=10)
    before = profiles(sb)
    subflow = 0x20  # NM_MPTCP_FLAGS_SUBFLOW; nmcli -g prints the flags in hex
    flags_before = int(field(sb, "foreign5", "connection.mptcp-flags"), 16)
    assert not flags_before & subflow, hex(flags_before)
    log = apply(sb, cli, json.dumps({"interfaces": [
        {"name": "eth5", "state": "down", "mptcp": {"address-flags": ["subflow"]}}]}))
    assert "listing every profile" in log, log
    assert set(profiles(sb)) == set(before)
    assert int(field(sb, "foreign5", "connection.mptcp-flags"), 16) & subflow, log