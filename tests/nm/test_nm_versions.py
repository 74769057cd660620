"""What differs between NetworkManager versions, said by tests keyed by the version the
sandbox's NetworkManager reports on its bus (never assumed from where it came from).

These run on whichever NetworkManager the harness starts: the machine's (1.42 on Debian
12) in the main pytest run of scripts/test.sh, and those of the Debian trixie (1.52) and
sid (1.58) roots in its later runs (NMSANDBOX_NM_ROOT, tests/harness/README.md).

- `laminar` (bit 0x100 of `connection.mptcp-flags`, the kernel's endpoint flag 0x20 on
  Linux 6.18+) is written through NetworkManager from 1.56 on; an older one refuses it
  with NotSupported naming 1.56, and nothing changes. It is read (show, verification, the
  plan) on every version.
- A profile that leaves the flags to NetworkManager (`mptcp-flags` 0) gets NM's default:
  `subflow` endpoints before 1.56, `subflow,laminar` from 1.56 on, on a link with a
  default route. `show` reports what the kernel holds, and applying it back changes
  nothing.
"""
from __future__ import annotations

import json

from nmsandbox import Sandbox
from test_apply import checkpoints, cli_apply, snapshot

NM_LAMINAR = (1, 56)

# Kernel endpoint flags (MPTCP_PM_ADDR_FLAG_*).
KERNEL_BITS = {"signal": 0x1, "subflow": 0x2, "backup": 0x4, "fullmesh": 0x8,
               "implicit": 0x10, "laminar": 0x20}

LAMINAR_STATE = (
    "interfaces:\n- name: eth1\n  mptcp: {address-flags: [laminar, subflow, signal]}\n"
    "  ipv4: {enabled: true, address: [{ip: 192.0.2.2, prefix-length: 24}]}\n"
    "  ipv6: {enabled: false}\n")


def endpoint_bits(sb: Sandbox) -> dict[str, tuple[int, str | None]]:
    """address -> (the kernel's flag bits, dev), from `ip mptcp endpoint show` (iproute2
    6.1 names the flags it knows and prints the others as `rawflags HEX`)."""
    out = {}
    for line in sb.ip("mptcp", "endpoint", "show").splitlines():
        words = line.split()
        if not words:
            continue
        bits, dev, i = 0, None, 1
        while i < len(words):
            w = words[i]
            if w in ("id", "port"):
                i += 2
                continue
            if w == "dev":
                dev = words[i + 1]
                i += 2
                continue
            if w == "rawflags":
                bits |= int(words[i + 1], 16)
                i += 2
                continue
            bits |= KERNEL_BITS[w]
            i += 1
        out[words[0]] = (bits, dev)
    return out


def shown(sb: Sandbox, cli: str, *names: str) -> dict:
    return {i["name"]: i for i in json.loads(sb.run([cli, "show", "--json", *names]).stdout)
            ["interfaces"]}


def assert_show_applied_back_changes_nothing(sb: Sandbox, cli: str) -> None:
    before = snapshot(sb)
    r = cli_apply(sb, cli, sb.run([cli, "show"]).stdout)
    assert r.returncode == 0, r.stderr
    assert "nothing changed" in r.stderr, r.stderr
    assert snapshot(sb) == before


def test_laminar_through_networkmanager(cli, require_nm):
    """1.56+: the kernel endpoint has bit 0x20, NM's profile 0x100 (with signal, subflow
    and also-without-default-route: 0x138); show reports laminar; show applied back
    changes nothing. Older: NotSupported naming 1.56 and the version met, as a dry run
    and as an apply, and nothing changed."""
    with Sandbox(["eth1"]) as sb:
        version = sb.nm_version_tuple()
        if version >= NM_LAMINAR:
            r = cli_apply(sb, cli, LAMINAR_STATE)
            assert r.returncode == 0, r.stderr
            assert endpoint_bits(sb) == {"192.0.2.2": (0x23, "eth1")}
            assert sb.nmcli("-g", "connection.mptcp-flags", "connection", "show",
                            "eth1").stdout.strip() == "0x138"
            eth1 = shown(sb, cli, "eth1")["eth1"]
            assert sorted(eth1["mptcp"]["address-flags"]) == ["laminar", "signal", "subflow"]
            assert_show_applied_back_changes_nothing(sb, cli)
        else:
            before = snapshot(sb)
            for args in (["--dry-run"], []):
                r = cli_apply(sb, cli, LAMINAR_STATE, *args)
                assert r.returncode == 2, r.stderr  # NotSupported
                assert ("eth1: the laminar flag needs NetworkManager 1.56 or newer "
                        f"(this one is {sb.nm_version})") in r.stderr, r.stderr
                assert snapshot(sb) == before
                assert not checkpoints(sb)


def test_laminar_read_on_every_version(cli, require_nm):
    """A laminar endpoint NetworkManager did not make (kernel-only apply on a link NM does
    not manage): `show` reports it on every version, and its output applied back through
    NetworkManager writes nothing, so it passes there even before 1.56; the verification
    of a kernel-only apply reads laminar back."""
    with Sandbox(["eth1", "eth2"]) as sb:
        sb.nmcli("device", "set", "eth2", "managed", "no")
        state = ("interfaces:\n- name: eth2\n  mptcp: {address-flags: [laminar, subflow]}\n"
                 "  ipv4: {enabled: true, address: [{ip: 198.51.100.2, prefix-length: 24}]}\n")
        r = sb.run([cli, "-v", "apply", "--kernel", "-"], input=state, check=False)
        # Verified (on by default: a state not reached is Verification, exit 6).
        assert r.returncode == 0, r.stderr
        assert endpoint_bits(sb) == {"198.51.100.2": (0x22, "eth2")}
        eth2 = shown(sb, cli, "eth2")["eth2"]
        assert eth2["state"] == "ignore"
        assert sorted(eth2["mptcp"]["address-flags"]) == ["laminar", "subflow"]
        assert_show_applied_back_changes_nothing(sb, cli)


def test_default_flags_are_what_this_networkmanager_applies(cli, require_nm):
    """A profile made by nmcli with `mptcp-flags` 0 (NM's default) on a link with a default
    route: before 1.56 NM adds a `subflow` endpoint, from 1.56 on `subflow,laminar`. `show`
    reports exactly what the kernel holds, and applying it back changes nothing."""
    with Sandbox(["eth1"]) as sb:
        sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth1", "con-name", "dflt",
                 "ipv4.method", "manual", "ipv4.addresses", "192.0.2.2/24",
                 "ipv4.gateway", "192.0.2.1", "ipv6.method", "disabled")
        assert sb.nmcli("-g", "connection.mptcp-flags", "connection", "show",
                        "dflt").stdout.strip() in ("0x0", "0", "default")
        sb.nmcli("-w", "20", "connection", "up", "dflt")
        want = ["laminar", "subflow"] if sb.nm_version_tuple() >= NM_LAMINAR else ["subflow"]
        bits = sum(KERNEL_BITS[f] for f in want)
        got = sb.wait_for(lambda: endpoint_bits(sb) or None, timeout=10,
                          what="NM's endpoint for its default flags")
        assert got == {"192.0.2.2": (bits, "eth1")}, (sb.nm_version, got)
        eth1 = shown(sb, cli, "eth1")["eth1"]
        assert sorted(eth1["mptcp"]["address-flags"]) == want, (sb.nm_version, eth1)
        assert_show_applied_back_changes_nothing(sb, cli)

