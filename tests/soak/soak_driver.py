#!/usr/bin/env python3
"""The soak's one long-lived process: `import mptcpstate`, then many apply/rollback
cycles and `show` calls, with the process's resources measured along the way.

Usage: soak_driver.py --cycles N --shows M [--warmup-cycles W] [--warmup-shows S]

Run inside the sandbox's network namespace with DBUS_SYSTEM_BUS_ADDRESS set to its
private bus (tests/soak/test_soak.py does). A cycle is an apply through NetworkManager
without commit (a checkpoint), then a rollback of that checkpoint; `show` reads
NetworkManager and the kernel. After the warm-up, and then every tenth of the run, a
sample: VmRSS (/proc/self/status), open file descriptors (/proc/self/fd), and the
private bus's connections and match rules other than NetworkManager's (the bus's
org.freedesktop.DBus.Debug.Stats.GetAllMatchRules). At the end, also NetworkManager's
checkpoints and this namespace's undo records. Prints one JSON object.
"""
import argparse
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import time

import mptcpstate

BASE = {"interfaces": [{"name": "eth1", "type": "ethernet", "state": "up",
                        "mptcp": {"address-flags": ["subflow"]},
                        "ipv4": {"enabled": True, "dhcp": False,
                                 "address": [{"ip": "192.0.2.2", "prefix-length": 24}]},
                        "ipv6": {"enabled": False}}]}
# The change each cycle applies and rolls back: other flags (a Reapply, the device stays
# activated).
CHANGE = json.loads(json.dumps(BASE))
CHANGE["interfaces"][0]["mptcp"]["address-flags"] = ["signal", "subflow"]

BUS = ["busctl", f"--address={os.environ.get('DBUS_SYSTEM_BUS_ADDRESS', '')}"]


def busctl(*args):
    out = subprocess.run(BUS + ["--json=short", *args], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return json.loads(out)["data"]


def nm_name_owner():
    return busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus", "GetNameOwner", "s",
                  "org.freedesktop.NetworkManager")[0]


def bus_clients(nm_owner):
    """The bus's connections but NetworkManager's and this query's own, with the number
    of match rules each holds. busctl's connection holds none (it calls, it does not
    listen); the library connects per call, so between calls this is empty."""
    rules = busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                   "org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules")[0]
    return {name: len(r) for name, r in rules.items() if name != nm_owner and r}


def bus_connections(nm_owner):
    """How many connections the bus has besides NetworkManager and this query."""
    names = busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                   "org.freedesktop.DBus", "ListNames")[0]
    uniques = [n for n in names if n.startswith(":") and n != nm_owner]
    return len(uniques) - 1  # busctl's own


def rss_kb():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fds():
    return sorted(os.listdir("/proc/self/fd"))


def socket_kinds():
    """Socket inode -> "unix" or "netlink", from this thread's namespace's tables."""
    kinds = {}
    for kind, col in (("unix", 6), ("netlink", 9)):
        try:
            lines = pathlib.Path(f"/proc/thread-self/net/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > col:
                kinds[parts[col]] = kind
    return kinds


def fd_targets():
    """fd -> what it is (a socket named with its kind)."""
    kinds = socket_kinds()
    out = {}
    for f in fds():
        try:
            t = os.readlink(f"/proc/self/fd/{f}")
        except OSError:
            continue
        if t.startswith("socket:["):
            t += f" {kinds.get(t[8:-1], '?')}"
        out[f] = t
    return out


def settled_fds(baseline, bound=2.0):
    """The fd count once it is back at `baseline`, polled up to `bound` seconds, and how
    long that took: zbus closes a dropped connection's socket on the runtime's thread a
    moment after the call returned, so a count taken right after a call may hold it."""
    t0 = time.monotonic()
    while True:
        n = len(fds())
        waited = time.monotonic() - t0
        if n <= baseline or waited >= bound:
            return n, round(waited * 1000, 1)
        time.sleep(0.005)


def netns_cookie():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0]


def records():
    d = pathlib.Path("/run/mptcpstate") / str(netns_cookie())
    return sorted(p.name for p in d.iterdir() if p.name.startswith("checkpoint-")) \
        if d.is_dir() else []


def checkpoints():
    return busctl("get-property", "org.freedesktop.NetworkManager",
                  "/org/freedesktop/NetworkManager", "org.freedesktop.NetworkManager",
                  "Checkpoints")


def sample(label, nm_owner, done_cycles, done_shows, t0, baseline_fds):
    right_after = fd_targets()
    n, waited_ms = settled_fds(baseline_fds)
    return {"at": label, "cycles": done_cycles, "shows": done_shows,
            "seconds": round(time.monotonic() - t0, 2), "rss_kb": rss_kb(),
            "fds_right_after": right_after, "fds": n, "fds_settle_ms": waited_ms,
            "bus_clients": bus_clients(nm_owner),
            "bus_connections": bus_connections(nm_owner)}


RETRIED = []


def cycle():
    """One apply without commit and its rollback. NetworkManager may bump the device's
    applied-connection version between the library's read and its Reapply (seen right
    after the first activation): that apply fails with VersionIdMismatch and is rolled
    back by the library; it is counted and the cycle retried, at most twice. Any other
    error ends the soak."""
    for attempt in range(3):
        try:
            cp = mptcpstate.apply(CHANGE, commit=False, rollback_timeout=120)
        except mptcpstate.NetworkManagerError as e:
            if "VersionIdMismatch" not in str(e) or attempt == 2:
                raise
            RETRIED.append(str(e))
            continue
        if not cp:
            raise RuntimeError("apply without commit returned no checkpoint: nothing changed?")
        mptcpstate.rollback(cp)
        return


def show():
    state = mptcpstate.show()
    if not any(i.get("name") == "eth1" for i in state.get("interfaces", [])):
        raise RuntimeError(f"show lost eth1: {state}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cycles", type=int, required=True)
    p.add_argument("--shows", type=int, required=True)
    p.add_argument("--warmup-cycles", type=int, default=5)
    p.add_argument("--warmup-shows", type=int, default=50)
    p.add_argument("--samples", type=int, default=10)
    a = p.parse_args()

    mptcpstate.apply(BASE)
    nm_owner = nm_name_owner()
    t0 = time.monotonic()
    for _ in range(a.warmup_cycles):
        cycle()
    for _ in range(a.warmup_shows):
        show()
    # The baseline: the fewest descriptors seen over 0.3 s (the warm-up's last
    # connection closed).
    fds_before = fds()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        now = fds()
        if len(now) < len(fds_before):
            fds_before = now
        time.sleep(0.01)
    base = len(fds_before)
    samples = [sample("after warm-up", nm_owner, 0, 0, t0, base)]
    # Shows are spread over the cycles: one cycle, then shows/cycles shows, ...
    per = max(1, a.shows // max(1, a.cycles))
    done_c = done_s = 0
    every = max(1, a.cycles // a.samples)
    t_cycles = t_shows = 0.0
    while done_c < a.cycles or done_s < a.shows:
        if done_c < a.cycles:
            t = time.monotonic()
            cycle()
            t_cycles += time.monotonic() - t
            done_c += 1
        for _ in range(per if done_c < a.cycles else a.shows - done_s):
            if done_s >= a.shows:
                break
            t = time.monotonic()
            show()
            t_shows += time.monotonic() - t
            done_s += 1
        if done_c % every == 0 and done_c < a.cycles:
            samples.append(sample("during", nm_owner, done_c, done_s, t0, base))
    samples.append(sample("end", nm_owner, done_c, done_s, t0, base))
    settled_fds(base)
    fds_after = fds()
    out = {
        "samples": samples,
        "fds_new": [f"{f} -> {os.readlink(f'/proc/self/fd/{f}')}"
                    for f in fds_after if f not in fds_before
                    if os.path.exists(f"/proc/self/fd/{f}")],
        "checkpoints": checkpoints(),
        "records": records(),
        "cycle_ms": round(1000 * t_cycles / max(1, done_c), 2),
        "show_ms": round(1000 * t_shows / max(1, done_s), 2),
        "threads": len(os.listdir("/proc/self/task")),
        "retried": RETRIED,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
