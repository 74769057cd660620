#!/usr/bin/env python3
"""Runs a command inside a fresh NetworkManager sandbox (tests/harness) where eth1 is
managed by an nmcli profile with 192.0.2.2/24 and MPTCP flags signal+subflow, then tears
the sandbox down. Exits with the command's status.

    in_sandbox.py -- CMD...
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from nmsandbox import Sandbox  # noqa: E402


def main():
    if "--" not in sys.argv:
        sys.exit("usage: in_sandbox.py -- CMD...")
    cmd = sys.argv[sys.argv.index("--") + 1:]
    with Sandbox(["eth1"]) as sb:
        sb.nmcli("connection", "add", "type", "ethernet", "ifname", "eth1", "con-name", "eth1",
                 "ipv4.method", "manual", "ipv4.addresses", "192.0.2.2/24",
                 "ipv6.method", "disabled", "connection.mptcp-flags", "0x38")
        sb.nmcli("-w", "20", "connection", "up", "eth1")
        sb.wait_for(lambda: sb.endpoints(), timeout=10, what="the endpoint of eth1")
        proc = subprocess.run(["ip", "netns", "exec", sb.netns, *cmd], env=sb.env())
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
