#!/usr/bin/env python3
"""The kernel-only apply benchmark: `mptcpstatectl apply --kernel` against `ip -batch`
doing the same writes, and a no-change apply against the two `ip` reads of `show`.

The fixture, per N (default 10 and 1000): the sandbox of tests/harness/nmsandbox.py
without NetworkManager (`Sandbox(count=N, nm=False)`: a namespace with N veths
eth1..ethN, their peer ends in a second namespace, every link up), IPv6 off in the
sandbox namespace (`net.ipv6.conf.{all,default}.disable_ipv6 = 1`, so that each link
holds exactly one address), and one static IPv4 address per link (10.64.0.1/24,
10.64.1.1/24, ...; one `ip -batch`). 8 links spread over the N are the flagged ones.
The starting state: no MPTCP endpoint, the namespace's own MPTCP limits (read once; a
new namespace has subflows 2, add_addr_accepted 0).

What is timed, inside the sandbox namespace:

  (a) write   the state file names the 8 flagged links only: each `state: up` with its
              IPv4 address; the first 4 with `mptcp: {address-flags: [subflow]}`, the
              other 4 with `mptcp-flags: [subflow]` on the address itself; and
              `mptcp: {limits: {subflows: 4, add-addr-accepted: 4}}`.
                ours      mptcpstatectl apply --kernel FILE    (reads, writes, verifies)
                noverify  mptcpstatectl apply --kernel --no-verify FILE
                ip        ip -batch FILE: 8 x `mptcp endpoint add ADDR dev DEV subflow`
                          + `mptcp limits set subflows 4 add_addr_accepted 4`
              Before every run (untimed) the fixture is reset with one `ip -batch`
              (`mptcp endpoint flush`, the limits back) and the reset is checked.
  (b) same    the kernel holds the state already; the same file again.
                ours      mptcpstatectl apply --kernel FILE    (nothing to change)
                ip        ip -j addr show  +  ip mptcp endpoint show   (times added, as
                          bench/show.py times them: what `show` must read)

Each timed run is checked afterwards, untimed, so that a wrong fast result cannot
count: after (a), exactly the 8 endpoints (address, device, flags [subflow], no port),
limits 4/4, and every link with exactly its address and up; after (b), the kernel as it
was before the run (endpoints with their ids, limits, every link's flags and
addresses). Before the timed rounds, one warm-up run of each tool: ours with -v (its
summary must say the 8 links and mptcp.limits changed, then `nothing to change`), the
ip reads' output must list every link and the 8 endpoints.

Timing as bench/show.py and bench/apply.py (bench/common.py): one worker (this script,
`_measure`) runs inside the namespace (`ip netns exec`), spawns each command with
posix_spawn (stdin and stdout on /dev/null) and reaps it with os.wait4: the wall time
around spawn..reap, the command's CPU time (user + system) from its rusage. Rounds are
interleaved, the order of the tools rotating from round to round: round r runs the (a)
tools, then the (b) tools. Peak memory (max RSS) comes from separate untimed runs
(`--memory-runs`, default 3) forked by `setsid --fork`, the worker being a child
subreaper (see show.py for why); for the two ip reads, the larger. /bin/true run that
way is the floor.

Printed per N: median and minimum wall time, median CPU, max RSS, and the ratios of
medians (and of minimums, and of CPU times): (a) ours / ip -batch, goal at most 1.5x;
(b) ours / the two ip reads, goal at most 2x. On a busy machine the medians are the
shakiest figure: a run of 2-3 ms is preempted by a busy neighbour far more often than one
of 1.5 ms, while CPU time hardly moves with the load. Over the sizes: our (a) at the
largest N / at the
smallest (the cost must follow the work, 8 links, not the host's N; ip -batch's own
ratio beside it). The load average is printed at the start and end of each N. Every
sample goes to a JSON file (default target/bench/kernel-<UTC time>.json, copied to
target/bench/kernel-latest.json).

Usage (root; Python 3 standard library only):

    python3 bench/kernel.py                     # N = 10, 1000; builds mptcpstatectl first
    python3 bench/kernel.py --no-build --sizes 10,200,1000 --rounds 50
    python3 bench/kernel.py --mptcpstatectl /path/to/mptcpstatectl --out /tmp/k.json

Options: --sizes; --rounds R (default 20); --warmup W (default 1); --memory-runs M
(default 3); --no-build (otherwise `cargo build --release -p mptcpstatectl` runs first);
--mptcpstatectl PATH; --out FILE. Each N gets its own sandbox, stopped before the next
one starts (and by the harness's supervisor if this process dies); the lock directory a
kernel-mode apply makes under /run/mptcpstate for the sandbox namespace is removed (an
undo record left there is an error). Nothing runs in the root network namespace.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (HARNESS, REPO, address_of, become_subreaper, flagged_indices, fmt_ms,
                    loadavg, log, maxrss_floor_kib, parse_sizes, run_worker, spawn_maxrss,
                    spawn_wait, target_dir, version_of, worker_main)

FLAGGED = 8
LIMITS = {"subflows": 4, "add_addr_accepted": 4}
RUN_DIR = "/run/mptcpstate"  # the library's (rust/src/apply/record.rs)

# The goals.
GOAL_WRITE_VS_IP = 1.5  # (a) ours / ip -batch
GOAL_SAME_VS_IP = 2.0   # (b) ours / (ip -j addr show + ip mptcp endpoint show)

A_TOOLS = ("ours", "noverify", "ip")
B_TOOLS = ("ours", "ip")
LABELS = {
    ("a", "ours"): "mptcpstatectl apply --kernel",
    ("a", "noverify"): "mptcpstatectl apply --kernel --no-verify",
    ("a", "ip"): "ip -batch (8 endpoint add + limits set)",
    ("b", "ours"): "mptcpstatectl apply --kernel (no change)",
    ("b", "ip"): "ip -j addr show + ip mptcp endpoint show",
}
SCENARIOS = {"a": "(a) 8 endpoints + limits", "b": "(b) the same state again"}


# --------------------------------------------------------------------------
# the worker, inside the sandbox namespace
# --------------------------------------------------------------------------

class Kernel:
    """Reads the namespace with ip (untimed checks) and resets it."""

    def __init__(self, spec: dict, env: dict) -> None:
        self.env = env
        self.ip = spec["ip"]
        self.names: list[str] = spec["names"]
        self.want_addr = {n: address_of(i) for i, n in enumerate(self.names, start=1)}
        self.flagged: list[str] = spec["flagged"]
        self.base_limits: dict = spec["base_limits"]
        self.reset_file: str = spec["reset_file"]

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        p = subprocess.run([self.ip] + args, capture_output=True, text=True, env=self.env,
                           input=stdin, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: exit {p.returncode}: "
                               f"{p.stderr.strip()[-500:]}")
        return p.stdout

    def links(self) -> dict:
        """{ifname: (flags, [(family, local, prefixlen)])} of every link."""
        out = {}
        for link in json.loads(self._run(["-j", "addr", "show"]) or "[]"):
            addrs = sorted((a.get("family"), a.get("local"), a.get("prefixlen"))
                           for a in link.get("addr_info", []))
            out[link["ifname"]] = (sorted(link.get("flags", [])), addrs)
        return out

    def endpoints(self) -> list[tuple]:
        """(id, address, dev, flags, port) of every endpoint, sorted by id."""
        eps = []
        for e in json.loads(self._run(["-j", "mptcp", "endpoint", "show"]) or "[]"):
            flags = sorted(k for k in ("signal", "subflow", "backup", "fullmesh", "implicit",
                                       "laminar") if e.get(k))
            eps.append((e.get("id"), e.get("address"), e.get("dev"), flags, e.get("port")))
        return sorted(eps, key=lambda e: e[0] or 0)

    def limits(self) -> dict:
        """iproute2 6.1 ignores -j for `mptcp limits show`: its text is parsed."""
        text = self._run(["mptcp", "limits", "show"]).strip()
        if text.startswith("{"):
            return json.loads(text)
        words = text.split()
        return {k: int(v) for k, v in zip(words[0::2], words[1::2])}

    def snapshot(self) -> dict:
        return {"links": self.links(), "endpoints": self.endpoints(), "limits": self.limits()}

    def mismatch(self, applied: bool, snap: dict | None = None) -> str | None:
        """None when the kernel holds the applied state (or the reset one), else what
        differs (the first few)."""
        snap = snap or self.snapshot()
        bad = []
        for name in self.names:
            flags, addrs = snap["links"].get(name, ([], []))
            want = [("inet", self.want_addr[name], 24)]
            if addrs != want or "UP" not in flags:
                bad.append(f"{name}: {flags} {addrs} (want UP, {want})")
                if len(bad) >= 3:
                    break
        want_eps = [(self.want_addr[n], n, ["subflow"], None) for n in self.flagged] \
            if applied else []
        have_eps = sorted(e[1:] for e in snap["endpoints"])
        if have_eps != sorted(want_eps):
            bad.append(f"endpoints {have_eps} (want {sorted(want_eps)})")
        want_limits = LIMITS if applied else self.base_limits
        if {k: snap["limits"].get(k) for k in want_limits} != want_limits:
            bad.append(f"limits {snap['limits']} (want {want_limits})")
        return "; ".join(bad) or None

    def reset(self) -> None:
        self._run(["-batch", self.reset_file])
        m = self.mismatch(applied=False)
        if m:
            raise RuntimeError(f"the reset did not hold: {m}")


def netns_dir() -> str:
    """The library's directory of this namespace (named after its cookie,
    SO_NETNS_COOKIE)."""
    import socket
    import struct
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        cookie = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0]
    return os.path.join(RUN_DIR, str(cookie))


def measure(spec: dict) -> dict:
    become_subreaper()
    env = dict(os.environ)
    k = Kernel(spec, env)
    outdir = spec["outdir"]
    tools = spec["tools"]
    res: dict = {s: {t: {"ns": [], "cpu_ms": [], "maxrss_kib": [], "load1": []}
                     for t in tools[s]} for s in tools}
    res["_reset_ms"] = []
    ours_dir = netns_dir()
    res["_netns_dir"] = ours_dir
    # Named after the namespace's cookie, which no other namespace of this boot has: a
    # directory there already holds what an earlier run in this namespace left.
    existed = os.path.isdir(ours_dir)
    if existed and records_in(ours_dir):
        raise RuntimeError(f"{ours_dir} (this namespace's) holds undo "
                           f"records: {records_in(ours_dir)}")

    def reset() -> None:
        t0 = time.perf_counter_ns()
        k.reset()
        res["_reset_ms"].append(round((time.perf_counter_ns() - t0) / 1e6, 2))

    def run(scen: str, tool: str, mode: str, verbose: bool = False) -> None:
        """One run of `tool` in scenario `scen`; mode "time", "memory" or "warmup"."""
        before = k.snapshot() if scen == "b" else None
        if scen == "b" and k.mismatch(applied=True, snap=before):
            raise RuntimeError("(b) would start from a kernel that does not hold the state")
        total, cpu, rss = 0, 0.0, 0
        load = round(os.getloadavg()[0], 2)
        for i, argv in enumerate(tools[scen][tool]):
            if verbose:
                argv = argv[:1] + ["-v"] + argv[1:]
            out = os.path.join(outdir, f"{scen}-{tool}.{i}.out") if mode == "warmup" \
                else "/dev/null"
            err = os.path.join(outdir, f"{scen}-{tool}.{i}.err")
            if mode == "memory":
                rc, kib = spawn_maxrss(argv, env, out, err)
                rss = max(rss, kib)
            else:
                ns, rc, used = spawn_wait(argv, env, out, err)
                total += ns
                cpu += used
            errtext = Path(err).read_text(errors="replace")
            if rc != 0:
                raise RuntimeError(f"{' '.join(argv)} exited with {rc}: {errtext[-1500:]}")
            if errtext and not verbose:
                # ours prints nothing without -v but warnings; ip nothing at all
                raise RuntimeError(f"{' '.join(argv)} wrote to stderr: {errtext[-1500:]}")
            if verbose:
                check_summary(scen, errtext, k.flagged)
        # The check, untimed.
        if scen == "a":
            m = k.mismatch(applied=True)
            if m:
                raise RuntimeError(f"after (a) {tool}: the kernel does not hold the state: {m}")
        else:
            after = k.snapshot()
            if after != before:
                raise RuntimeError(f"(b) {tool} changed the kernel: before {before}, "
                                   f"after {after}")
        r = res[scen][tool]
        if mode == "time":
            r["ns"].append(total)
            r["cpu_ms"].append(round(cpu * 1e3, 3))
            r["load1"].append(load)
        elif mode == "memory":
            r["maxrss_kib"].append(rss)
        else:
            r["warmup_ms"] = round(total / 1e6, 3)

    a_tools, b_tools = list(tools["a"]), list(tools["b"])
    for _ in range(spec["warmup"]):
        for tool in a_tools:
            reset()
            run("a", tool, "warmup", verbose=tool == "ours")
        for tool in b_tools:
            run("b", tool, "warmup", verbose=tool == "ours")
    check_ip_reads(outdir, k)
    for r in range(spec["rounds"]):
        for tool in a_tools[r % len(a_tools):] + a_tools[:r % len(a_tools)]:
            reset()
            run("a", tool, "time")
        for tool in b_tools[r % len(b_tools):] + b_tools[:r % len(b_tools)]:
            run("b", tool, "time")
    for _ in range(spec["memory_runs"]):
        for tool in a_tools:
            reset()
            run("a", tool, "memory")
        for tool in b_tools:
            run("b", tool, "memory")
    res["_floor_maxrss_kib"] = maxrss_floor_kib(env, outdir)
    # Back to the starting state, and the library's directory of this namespace removed
    # if our applies made it (the namespace goes away with the sandbox).
    reset()
    if os.path.isdir(ours_dir):
        if records_in(ours_dir):
            raise RuntimeError(f"apply left records in {ours_dir}: {records_in(ours_dir)}")
        if not existed:
            shutil.rmtree(ours_dir)
    return res


def records_in(directory: str) -> list[str]:
    """The undo records (pending or claimed) in a namespace's directory of the library."""
    return sorted(n for n in os.listdir(directory) if n.startswith("checkpoint-"))


def check_summary(scen: str, errtext: str, flagged: list[str]) -> None:
    """The -v summary line of our warm-up runs."""
    want = ("applied: " + ", ".join(sorted(flagged)) + ", mptcp.limits changed"
            if scen == "a" else "applied: nothing to change")
    lines = errtext.splitlines()
    if want not in lines:
        raise RuntimeError(f"ours ({scen}) -v: no line {want!r} in: {errtext[-1500:]}")
    if any(" WARN " in line or " ERROR " in line for line in lines):
        raise RuntimeError(f"ours ({scen}) -v warned: {errtext[-1500:]}")


def check_ip_reads(outdir: str, k: Kernel) -> None:
    """The warm-up output of the two ip reads: every link, the 8 endpoints."""
    addrs = json.loads(Path(outdir, "b-ip.0.out").read_text())
    names = {a["ifname"] for a in addrs}
    if not set(k.names) <= names:
        raise RuntimeError(f"ip -j addr show listed {len(names)} links, not the "
                           f"{len(k.names)} veths")
    eps = [line for line in Path(outdir, "b-ip.1.out").read_text().splitlines() if line]
    if len(eps) != len(k.flagged):
        raise RuntimeError(f"ip mptcp endpoint show printed {len(eps)} lines, expected "
                           f"{len(k.flagged)}")


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------

def desired_state(names: list[str], flagged: list[str]) -> dict:
    """The 8 flagged links: the first 4 flagged by interface, the others by address."""
    ifaces = []
    for j, name in enumerate(flagged):
        addr = {"ip": address_of(names.index(name) + 1), "prefix-length": 24}
        iface = {"name": name, "type": "ethernet", "state": "up",
                 "ipv4": {"enabled": True, "dhcp": False, "address": [addr]}}
        if j < 4:
            iface["mptcp"] = {"address-flags": ["subflow"]}
        else:
            addr["mptcp-flags"] = ["subflow"]
        ifaces.append(iface)
    return {"mptcp": {"limits": {"subflows": LIMITS["subflows"],
                                 "add-addr-accepted": LIMITS["add_addr_accepted"]}},
            "interfaces": ifaces}


def ip_batch(names: list[str], flagged: list[str]) -> str:
    lines = [f"mptcp endpoint add {address_of(names.index(n) + 1)} dev {n} subflow"
             for n in flagged]
    lines.append(f"mptcp limits set subflows {LIMITS['subflows']} "
                 f"add_addr_accepted {LIMITS['add_addr_accepted']}")
    return "\n".join(lines) + "\n"


def build_fixture(sb, names: list[str]) -> dict:
    """IPv6 off, one IPv4 address per link; returns the namespace's MPTCP limits."""
    sb.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1"])
    subprocess.run(["ip", "-n", sb.netns, "-batch", "-"], check=True, text=True,
                   input="".join(f"addr add {address_of(i)}/24 dev {n}\n"
                                 for i, n in enumerate(names, start=1)))
    if sb.endpoints():
        raise RuntimeError(f"a new namespace with endpoints: {sb.endpoints()}")
    return sb.mptcp_limits()


def summarize(v: dict) -> dict:
    ms = [x / 1e6 for x in v["ns"]]
    out = {
        "samples_ms": [round(x, 3) for x in ms],
        "median_ms": round(statistics.median(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "cpu_ms_samples": v["cpu_ms"],
        "cpu_ms": round(statistics.median(v["cpu_ms"]), 3),
        "cpu_min_ms": round(min(v["cpu_ms"]), 3),
        "load1_samples": v["load1"],
        "warmup_ms": v.get("warmup_ms"),
    }
    if v["maxrss_kib"]:
        out["maxrss_kib_samples"] = v["maxrss_kib"]
        out["maxrss_mib"] = round(max(v["maxrss_kib"]) / 1024, 2)
    return out


def run_size(n: int, args, ctl: str, ip: str) -> dict:
    from nmsandbox import Sandbox  # tests/harness

    rec: dict = {"n": n, "load_before": loadavg(), "setup_s": {}, "rounds": args.rounds}
    t0 = time.monotonic()
    log(f"== N = {n}: starting the sandbox ({n} veths, no NetworkManager)")
    with Sandbox(count=n, nm=False) as sb:
        rec["setup_s"]["sandbox_start"] = round(time.monotonic() - t0, 3)
        names = sb.veths
        flagged = [names[i - 1] for i in flagged_indices(n, FLAGGED)]
        if len(flagged) != FLAGGED:
            raise RuntimeError(f"N = {n}: fewer than {FLAGGED} links")
        rec["flagged"] = flagged
        t = time.monotonic()
        base_limits = build_fixture(sb, names)
        rec["setup_s"]["fixture"] = round(time.monotonic() - t, 3)
        rec["base_limits"] = base_limits
        with tempfile.TemporaryDirectory(prefix="mptcpstate-bench-") as tmp:
            state_file = os.path.join(tmp, "state.json")
            Path(state_file).write_text(json.dumps(desired_state(names, flagged), indent=1))
            batch_file = os.path.join(tmp, "write.batch")
            Path(batch_file).write_text(ip_batch(names, flagged))
            reset_file = os.path.join(tmp, "reset.batch")
            Path(reset_file).write_text(
                "mptcp endpoint flush\n"
                f"mptcp limits set subflows {base_limits['subflows']} "
                f"add_addr_accepted {base_limits['add_addr_accepted']}\n")
            rec["state_file"] = json.loads(Path(state_file).read_text())
            rec["ip_batch_file"] = Path(batch_file).read_text()
            tools = {
                "a": {"ours": [[ctl, "apply", "--kernel", state_file]],
                      "noverify": [[ctl, "apply", "--kernel", "--no-verify", state_file]],
                      "ip": [[ip, "-batch", batch_file]]},
                "b": {"ours": [[ctl, "apply", "--kernel", state_file]],
                      "ip": [[ip, "-j", "addr", "show"], [ip, "mptcp", "endpoint", "show"]]},
            }
            spec = {"tools": tools, "ip": ip, "names": names, "flagged": flagged,
                    "base_limits": base_limits, "reset_file": reset_file, "outdir": tmp,
                    "rounds": args.rounds, "warmup": args.warmup,
                    "memory_runs": args.memory_runs}
            runs = (args.rounds + args.warmup + args.memory_runs) * 5
            budget = 300 + runs * (2 + 0.002 * n)
            log(f"   fixture ready ({rec['setup_s']['fixture']:.2f} s); {args.rounds} rounds, "
                f"load {rec['load_before']}")
            t = time.monotonic()
            results = run_worker(sb, __file__, spec, budget, f"N = {n}")
            rec["setup_s"]["measure"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
    rec["setup_s"]["sandbox_stop"] = round(time.monotonic() - t, 3)
    rec["load_after"] = loadavg()
    rec["reset_ms"] = results.pop("_reset_ms")
    rec["maxrss_floor_mib"] = round(results.pop("_floor_maxrss_kib") / 1024, 2)
    results.pop("_netns_dir", None)
    rec["tools"] = {}
    for scen in ("a", "b"):
        rec["tools"][scen] = {}
        for tool, v in results[scen].items():
            s = summarize(v)
            s["command"] = [" ".join(c) for c in tools[scen][tool]]
            rec["tools"][scen][tool] = s
    t = rec["tools"]

    def ratio(x: dict, y: dict, key: str) -> float:
        return round(x[key] / y[key], 2)

    rec["ratios"] = {
        "a_ours_vs_ip": ratio(t["a"]["ours"], t["a"]["ip"], "median_ms"),
        "a_ours_vs_ip_min": ratio(t["a"]["ours"], t["a"]["ip"], "min_ms"),
        "a_noverify_vs_ip": ratio(t["a"]["noverify"], t["a"]["ip"], "median_ms"),
        "a_noverify_vs_ip_min": ratio(t["a"]["noverify"], t["a"]["ip"], "min_ms"),
        "b_ours_vs_ip": ratio(t["b"]["ours"], t["b"]["ip"], "median_ms"),
        "b_ours_vs_ip_min": ratio(t["b"]["ours"], t["b"]["ip"], "min_ms"),
        # CPU time barely moves with the machine's load, wall time does: a run of 2-3 ms
        # is preempted by a busy neighbour far more often than one of 1.5 ms.
        "a_ours_vs_ip_cpu": ratio(t["a"]["ours"], t["a"]["ip"], "cpu_ms"),
        "b_ours_vs_ip_cpu": ratio(t["b"]["ours"], t["b"]["ip"], "cpu_ms"),
    }
    return rec


def print_size(rec: dict) -> None:
    s, r = rec["setup_s"], rec["ratios"]
    print(f"\nN = {rec['n']} veths, flagged {rec['flagged'][0]}..{rec['flagged'][-1]} "
          f"({rec['rounds']} rounds; load {rec['load_before']} -> {rec['load_after']})")
    print(f"  setup: sandbox {s['sandbox_start']:.1f} s, fixture {s['fixture']:.2f} s, "
          f"measuring {s['measure']:.1f} s, stop {s['sandbox_stop']:.1f} s; reset before "
          f"each (a) run {statistics.median(rec['reset_ms']):.1f} ms (median, untimed)")
    print(f"  {'':<46} {'median':>9} {'min':>9} {'CPU':>9} {'max RSS':>9}  "
          "ratio (median; min; CPU)")
    goal = {("a", "ours"): GOAL_WRITE_VS_IP, ("b", "ours"): GOAL_SAME_VS_IP}
    for scen, label in SCENARIOS.items():
        print(f"  {label}")
        for tool, v in rec["tools"][scen].items():
            text = ""
            if tool != "ip":
                key = f"{scen}_{tool}_vs_ip"
                text = f"{r[key]:.2f}x; {r[key + '_min']:.2f}x ip"
                if key + "_cpu" in r:
                    text += f"; CPU {r[key + '_cpu']:.2f}x"
                if (scen, tool) in goal:
                    g = goal[(scen, tool)]
                    text += f"  (goal <= {g:g}x: {'met' if r[key] <= g else 'MISSED'})"
            rss = f"{v['maxrss_mib']:.1f} MB" if "maxrss_mib" in v else "-"
            print(f"    {LABELS[(scen, tool)]:<44} {fmt_ms(v['median_ms']):>9} "
                  f"{fmt_ms(v['min_ms']):>9} {fmt_ms(v['cpu_ms']):>9} {rss:>9}  {text}")
    print(f"  (CPU: the command's own, user + system, median; max RSS over the memory runs; "
          f"floor, /bin/true: {rec['maxrss_floor_mib']:.1f} MB)")


def print_summary(recs: list[dict]) -> dict:
    cols = [f"N={r['n']}" for r in recs]
    print("\nSummary (medians; min in brackets; ratios of medians)")
    print(f"  {'':<46}" + "".join(f"{c:>18}" for c in cols))

    def row(label, f):
        print(f"  {label:<46}" + "".join(f"{f(r):>18}" for r in recs))

    for scen in ("a", "b"):
        for tool in recs[0]["tools"][scen]:
            row(LABELS[(scen, tool)],
                lambda r, s=scen, t=tool: f"{fmt_ms(r['tools'][s][t]['median_ms'])} "
                                          f"[{fmt_ms(r['tools'][s][t]['min_ms'])}]")
    row("(a) ours / ip -batch (goal <= 1.5x)",
        lambda r: f"{r['ratios']['a_ours_vs_ip']:.2f}x")
    row("(a) ours --no-verify / ip -batch",
        lambda r: f"{r['ratios']['a_noverify_vs_ip']:.2f}x")
    row("(b) ours / ip reads (goal <= 2x)",
        lambda r: f"{r['ratios']['b_ours_vs_ip']:.2f}x")
    row("(a) ours / ip -batch: of minimums, of CPU",
        lambda r: f"{r['ratios']['a_ours_vs_ip_min']:.2f}x, {r['ratios']['a_ours_vs_ip_cpu']:.2f}x")
    row("(b) ours / ip reads: of minimums, of CPU",
        lambda r: f"{r['ratios']['b_ours_vs_ip_min']:.2f}x, {r['ratios']['b_ours_vs_ip_cpu']:.2f}x")
    for scen in ("a", "b"):
        for tool in recs[0]["tools"][scen]:
            row(f"CPU, max RSS {scen}: {tool}",
                lambda r, s=scen, t=tool: f"{fmt_ms(r['tools'][s][t]['cpu_ms'])}, "
                f"{r['tools'][s][t].get('maxrss_mib', 0):.1f} MB")

    out: dict = {"goals": []}
    for rec in recs:
        for key, goal, what in (("a_ours_vs_ip", GOAL_WRITE_VS_IP, "(a) ours / ip -batch"),
                                ("b_ours_vs_ip", GOAL_SAME_VS_IP, "(b) ours / ip reads")):
            value = rec["ratios"][key]
            out["goals"].append({"n": rec["n"], "goal": f"{what} <= {goal:g}x",
                                 "value": value, "met": value <= goal,
                                 "min_ratio": rec["ratios"][key + "_min"],
                                 "cpu_ratio": rec["ratios"][key + "_cpu"]})
    if len(recs) > 1:
        lo, hi = min(recs, key=lambda r: r["n"]), max(recs, key=lambda r: r["n"])
        scale = {
            "from_n": lo["n"], "to_n": hi["n"],
            "ours": round(hi["tools"]["a"]["ours"]["median_ms"]
                          / lo["tools"]["a"]["ours"]["median_ms"], 2),
            "ours_min": round(hi["tools"]["a"]["ours"]["min_ms"]
                              / lo["tools"]["a"]["ours"]["min_ms"], 2),
            "ip": round(hi["tools"]["a"]["ip"]["median_ms"]
                        / lo["tools"]["a"]["ip"]["median_ms"], 2),
        }
        out["scaling_a"] = scale
        print(f"\n(a) at N = {scale['to_n']} / at N = {scale['from_n']}: ours "
              f"{scale['ours']:.2f}x (min {scale['ours_min']:.2f}x), ip -batch "
              f"{scale['ip']:.2f}x")
    print("\nGoals (on the ratio of medians; of minimums and of CPU times beside it)")
    for g in out["goals"]:
        print(f"  N = {g['n']:<5} {g['goal']:<28} {g['value']:>6.2f}x  "
              f"{'met' if g['met'] else 'MISSED':<7} (min {g['min_ratio']:.2f}x, "
              f"CPU {g['cpu_ratio']:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_measure"]:
        return worker_main(measure)
    p = argparse.ArgumentParser(
        description="Benchmark mptcpstatectl apply --kernel against ip -batch and the ip "
                    "reads, in a sandbox namespace with N veths (no NetworkManager).")
    p.add_argument("--sizes", type=parse_sizes, default=[10, 1000],
                   help="comma-separated veth counts, each at least 8 (default 10,1000)")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per N (default 20)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per tool (default 1)")
    p.add_argument("--memory-runs", type=int, default=3,
                   help="untimed runs per tool that measure the peak memory (default 3)")
    p.add_argument("--mptcpstatectl", metavar="PATH",
                   help="the binary to time (default: target/release/mptcpstatectl)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build --release -p mptcpstatectl first")
    p.add_argument("--out", metavar="FILE",
                   help="JSON file of the raw figures (default target/bench/kernel-<time>.json)")
    args = p.parse_args(argv)
    if any(n < FLAGGED for n in args.sizes):
        p.error(f"every size is at least {FLAGGED} (the flagged links)")
    if args.rounds < 1 or args.memory_runs < 1:
        p.error("--rounds and --memory-runs are at least 1")
    if args.warmup < 1:
        p.error("--warmup is at least 1 (the warm-up output is checked)")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces)")

    tdir = target_dir()
    if args.mptcpstatectl:
        ctl = os.path.abspath(args.mptcpstatectl)
    else:
        if not args.no_build:
            log("cargo build --release -p mptcpstatectl")
            subprocess.run(["cargo", "build", "--release", "-p", "mptcpstatectl"],
                           cwd=REPO, check=True)
        ctl = str(tdir / "release" / "mptcpstatectl")
    ip = shutil.which("ip")
    for path in (ctl, ip):
        if not path or not os.access(path, os.X_OK):
            p.error(f"not an executable: {path}")
    probe = subprocess.run([ctl, "apply", "--help"], capture_output=True, text=True)
    if "--kernel" not in probe.stdout:
        p.error(f"{ctl} has no `apply --kernel`; build a newer one")

    sys.path.insert(0, str(HARNESS))
    started = datetime.datetime.now(datetime.timezone.utc)
    out_path = Path(args.out) if args.out else \
        tdir / "bench" / f"kernel-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {
        "benchmark": "kernel",
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, os.path.relpath(__file__, os.getcwd())] + argv,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(), "load_start": loadavg()},
        "versions": {
            "mptcpstatectl": version_of([ctl, "version"]),
            "ip": version_of([ip, "-V"]),
            # of the checkout the bench runs from (the timed binary may be another's)
            "git": version_of(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        },
        "binaries": {"mptcpstatectl": ctl, "ip": ip},
        "goals": {"a_ours_vs_ip": GOAL_WRITE_VS_IP, "b_ours_vs_ip": GOAL_SAME_VS_IP},
        "sizes": [],
    }
    built = report["versions"]["git"] if not args.mptcpstatectl else ctl
    print(f"kernel-only apply benchmark: {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load {report['machine']['load_start']}; mptcpstatectl "
          f"{report['versions']['mptcpstatectl']} ({built}); {report['versions']['ip']}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        rec = run_size(n, args, ctl, ip)
        report["sizes"].append(rec)
        print_size(rec)
        sys.stdout.flush()
        # Written after each N: a long run that dies later keeps what it measured.
        report["machine"]["load_end"] = loadavg()
        out_path.write_text(json.dumps(report, indent=1) + "\n")
    report.update(print_summary(report["sizes"]))
    report["machine"]["load_end"] = loadavg()
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    if not args.out:
        shutil.copyfile(out_path, out_path.parent / "kernel-latest.json")
    print(f"\nload average at the start: {report['machine']['load_start']}, at the end: "
          f"{report['machine']['load_end']}; raw figures: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
