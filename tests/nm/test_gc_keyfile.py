"""The generated keyfile is right because a real NetworkManager makes the right kernel
endpoints from it — not because its text matches a string. Each state's keyfile is
generated twice (byte-identical, CLI and Python alike), loaded by NetworkManager with the
settings the state means, and, where it needs no DHCP server, activated: the kernel's
endpoints are the ones asked for."""
import json
import pathlib
import subprocess
import sys

import pytest

# name -> (state, nmcli fields expected once loaded, endpoints expected once active or
# None: not activated (DHCP and SLAAC need a server))
STATES = {
    "mptcp-off": (
        "interfaces:\n- name: eth1\n  mptcp: {address-flags: []}\n"
        "  ipv4: {enabled: true, address: [{ip: 192.0.2.2, prefix-length: 24}]}\n",
        {"connection.mptcp-flags": "0x1", "ipv4.method": "manual",
         "ipv4.addresses": "192.0.2.2/24", "ipv6.method": "disabled"},
        []),
    "ipv6": (
        "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow, backup]}\n"
        "  ipv4: {enabled: false}\n"
        "  ipv6:\n    enabled: true\n    address:\n"
        "    - {ip: '2001:db8:1::2', prefix-length: 64}\n    - {ip: '2001:db8:2::2', prefix-length: 64}\n",
        {"connection.mptcp-flags": "0x68", "ipv4.method": "disabled", "ipv6.method": "manual",
         "ipv6.addresses": "2001:db8:1::2/64, 2001:db8:2::2/64"},
        [("2001:db8:1::2", ["backup", "subflow"]), ("2001:db8:2::2", ["backup", "subflow"])]),
    "dhcp": (
        "interfaces:\n- name: eth1\n  mptcp: {address-flags: [subflow]}\n"
        "  ipv4: {enabled: true, dhcp: true}\n"
        "  ipv6: {enabled: true, dhcp: true, autoconf: true}\n",
        {"connection.mptcp-flags": "0x28", "ipv4.method": "auto", "ipv4.addresses": "",
         "ipv6.method": "auto", "ipv6.addresses": ""},
        None),
}


def gc(cli, state: str) -> str:
    return subprocess.run([cli, "gc", "--json", "-"], input=state, capture_output=True,
                          text=True, check=True).stdout


def endpoints_of(sandbox, wanted):
    eps = sorted((e["address"], sorted(e["flags"])) for e in sandbox.endpoints())
    return eps if len(eps) >= len(wanted) else None


def test_seed_keyfile_activates_with_signal_subflow_endpoint(sandbox, cli, tmp_path, seed_yaml):
    seed = tmp_path / "seed.yml"
    seed.write_text(seed_yaml)
    subprocess.run([cli, "gc", "--write-dir", sandbox.keyfile_dir, str(seed)], check=True)

    sandbox.nmcli("connection", "reload")
    profile = sandbox.nmcli("-g", "connection.id,connection.mptcp-flags,ipv4.addresses",
                            "connection", "show", "eth1").stdout.split("\n")
    assert profile[:3] == ["eth1", "0x38", "192.0.2.2/24"], profile
    sandbox.nmcli("connection", "up", "eth1")

    def endpoint():
        eps = [e for e in sandbox.endpoints() if e["address"] == "192.0.2.2"]
        return eps or None

    (ep,) = sandbox.wait_for(endpoint, timeout=10, what="the endpoint of 192.0.2.2")
    assert ep["dev"] == "eth1"
    assert ep["flags"] == ["signal", "subflow"]
    # Exactly the flags asked for, and no endpoint for anything else.
    assert [e["address"] for e in sandbox.endpoints()] == ["192.0.2.2"]
    text = sandbox.ip("mptcp", "endpoint", "show")
    assert "192.0.2.2 id" in text and "signal subflow dev eth1" in text, text


@pytest.mark.parametrize("name", list(STATES))
def test_keyfile_is_deterministic_and_loaded(sandbox, cli, name):
    state, fields, endpoints = STATES[name]
    first = gc(cli, state)
    assert gc(cli, state) == first
    code = ("import json, sys, mptcpstate\n"
            "print(json.dumps(mptcpstate.generate_configurations(sys.stdin.read())))\n")
    py = subprocess.run([sys.executable, "-c", code], input=state, capture_output=True,
                        text=True, check=True).stdout
    [[fname, text]] = json.loads(first)["NetworkManager"]
    assert json.loads(py) == {"NetworkManager": [[fname, text]]}

    subprocess.run([cli, "gc", "--write-dir", sandbox.keyfile_dir, "-"], input=state,
                   text=True, check=True)
    written = (pathlib.Path(sandbox.keyfile_dir) / fname).read_text()
    assert written == text
    sandbox.nmcli("connection", "reload")
    keys = list(fields)
    # nmcli -g escapes the colons of values.
    got = sandbox.nmcli("-g", ",".join(keys), "connection", "show", "eth1").stdout \
        .replace("\\:", ":").split("\n")
    assert dict(zip(keys, got)) == fields, got
    if endpoints is None:
        return
    sandbox.nmcli("-w", "20", "connection", "up", "eth1")
    if endpoints:
        got = sandbox.wait_for(lambda: endpoints_of(sandbox, endpoints), timeout=10,
                               what=f"endpoints {endpoints}")
    else:
        # MPTCP off: activated, its addresses there, no endpoint.
        sandbox.wait_for(lambda: "192.0.2.2" in sandbox.ip("addr", "show", "dev", "eth1"),
                         timeout=10, what="the address")
        got = sorted((e["address"], sorted(e["flags"])) for e in sandbox.endpoints())
    assert got == sorted(endpoints)
