#!/usr/bin/env python3
"""The check benchmark: `mptcpstatectl check --kernel` against `mptcpstatectl show --kernel`
in the same run, on a namespace with N links (the issue's goal: check within 2x of show
at N = 1000).

The fixture, per N (default 10 and 1000): the sandbox of tests/harness/nmsandbox.py
without NetworkManager (`Sandbox(count=N, nm=False)`: a namespace with N veths
eth1..ethN, their peer ends in a second namespace, every link up), IPv6 off in the
sandbox namespace (`net.ipv6.conf.{all,default}.disable_ipv6 = 1`, so that each link
holds exactly one address), one static IPv4 address per link (10.64.0.1/24,
10.64.1.1/24, ...), and E links spread over the N (`--endpoints`, default 7) with an
MPTCP endpoint `ADDR dev LINK subflow`, limits `subflows E add_addr_accepted E`; one
`ip -batch`. Why 7 and not 8: the kernel keeps at most 8 endpoints per namespace, and
with 8 of them while other links hold addresses `check` rightly warns that the cap is
reached (`endpoint-cap-reached`, naming the N - 8 addresses left without one); 7 is the
largest healthy setup. `--endpoints 8` times that case (the one finding expected).
For the live connections, the peer namespace gets 10.64.k.2/24 on the peer end of each
endpoint link, a server address 10.255.0.1/32 on its `lo` and MPTCP limits 8/8; the
sandbox namespace gets one route to 10.255.0.1 through each endpoint link (metric 100,
101, ...; the first is the initial subflow's). Both are there from the start (neither
is something `check` reads).

Two variants per N, in the same sandbox:

  idle    the fixture as built: no MPTCP socket in the namespace.
  conns   C connections (`--connections`, default 4; 0 skips the variant) held open:
          C `mptcp_peer.py serve --once` in the peer namespace (ports 5100..), C
          `mptcp_peer.py send --bytes 1000 --hold ...` in the sandbox namespace to
          10.255.0.1; the bench waits (at most 30 s) until every client holds and its
          MPTCP_INFO says E - 1 additional subflows, all established: C MPTCP sockets
          and C x E TCP subflows for check's sock_diag dumps. The clients and servers are
          killed by PID afterwards (and die with the bench: PR_SET_PDEATHSIG).

Before the timed runs, untimed: `check --kernel --json` must print `"findings": []`
(with `--endpoints 8`: exactly `endpoint-cap-reached`) and the expected connections (0,
or C, each with E established subflows, on the endpoint links), `check --kernel` must
say `no findings` and list the same connections, `show --kernel --json` must list all N
links, the E endpoint links with `address-flags: [subflow]`. The `check --kernel --json`
verification runs again after every round (untimed), so that the fixture (and the
connections) held through the round.

What is timed, inside the sandbox namespace, in interleaved rounds (`--rounds`, default
20; the order of the tools rotating from round to round):

  check       mptcpstatectl check --kernel           (text report)
  check-json  mptcpstatectl check --kernel --json
  show        mptcpstatectl show --kernel            (YAML)

Timing as bench/kernel.py (bench/common.py): one worker (this script, `_measure`) runs
inside the namespace (`ip netns exec`), spawns each command with posix_spawn (stdin and
stdout on /dev/null) and reaps it with os.wait4: the wall time around spawn..reap, the
command's CPU time (user + system) from its rusage. A run must exit 0 and write nothing
to stderr. Peak memory (max RSS) comes from separate untimed runs (`--memory-runs`,
default 3) forked by `setsid --fork`, the worker being a child subreaper (see
bench/show.py for why); /bin/true run that way is the floor.

Printed per N and variant: median and minimum wall time, median CPU, max RSS, and the
ratios check / show (and check --json / show) of medians, of minimums and of CPU times;
the goal is check / show <= 2x (the issue's is at N = 1000; it is judged at every N).
The load average is printed at the start and end of each N. Every sample goes to a JSON
file (default target/bench/check-<UTC time>.json, copied to
target/bench/check-latest.json).

Usage (root; Python 3 standard library only):

    python3 bench/check.py                      # N = 10, 1000; builds mptcpstatectl first
    python3 bench/check.py --no-build --sizes 10,200,1000 --rounds 50
    python3 bench/check.py --endpoints 8 --connections 0 --out /tmp/c.json

Options: --sizes; --rounds R (default 20); --warmup W (default 1); --memory-runs M
(default 3); --endpoints E (1..8, default 7); --connections C (default 4); --no-build
(otherwise `cargo build --release -p mptcpstatectl` runs first); --mptcpstatectl PATH;
--out FILE. Each N gets its own sandbox, stopped before the next one starts (and by the
harness's supervisor if this process dies). Nothing runs in the root network namespace,
and nothing here writes under /run/mptcpstate (check and show only read).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (HARNESS, REPO, address_of, become_subreaper, flagged_indices, fmt_ms,
                    loadavg, log, maxrss_floor_kib, parse_sizes, run_worker, spawn_maxrss,
                    spawn_wait, target_dir, version_of, worker_main)

SERVER = "10.255.0.1"
PORT_BASE = 5100
PEER_LIMITS = 8      # the peer accepts every join
ROUTE_METRIC = 100
CONNECT_TIMEOUT = 30.0
MAX_ENDPOINTS = 8    # the kernel's, per namespace

GOAL_CHECK_VS_SHOW = 2.0  # the issue's, at N = 1000

TOOLS = ("check", "check-json", "show")
LABELS = {
    "check": "mptcpstatectl check --kernel",
    "check-json": "mptcpstatectl check --kernel --json",
    "show": "mptcpstatectl show --kernel",
}
VARIANT_LABELS = {"idle": "idle: no MPTCP socket",
                  "conns": "conns: {c} MPTCP connections, {e} subflows each"}


def peer_address_of(i: int) -> str:
    """The peer end's address on link i: 10.64.0.2, 10.64.1.2, ..."""
    return address_of(i).rsplit(".", 1)[0] + ".2"


def expected_codes(endpoints: int) -> list[str]:
    return ["endpoint-cap-reached"] if endpoints >= MAX_ENDPOINTS else []


# --------------------------------------------------------------------------
# the worker, inside the sandbox namespace
# --------------------------------------------------------------------------

class Verifier:
    """The untimed checks of the outputs (and so of the fixture)."""

    def __init__(self, spec: dict, env: dict) -> None:
        self.env = env
        self.ctl: str = spec["ctl"]
        self.names: list[str] = spec["names"]
        self.flagged: list[str] = spec["flagged"]
        self.codes: list[str] = spec["expected_codes"]
        self.conns: int = spec["connections"]

    def _ctl(self, *args: str) -> str:
        p = subprocess.run([self.ctl, *args], capture_output=True, text=True, env=self.env,
                           timeout=120)
        if p.returncode != 0 or p.stderr:
            raise RuntimeError(f"mptcpstatectl {' '.join(args)}: exit {p.returncode}: "
                               f"{p.stderr.strip()[-1500:]}")
        return p.stdout

    def check_json(self, text: str | None = None) -> None:
        report = json.loads(text if text is not None else self._ctl("check", "--kernel",
                                                                     "--json"))
        codes = [f["code"] for f in report["findings"]]
        if codes != self.codes:
            raise RuntimeError(f"check --kernel --json: findings {report['findings']} "
                               f"(want codes {self.codes})")
        conns = report["connections"]
        if len(conns) != self.conns:
            raise RuntimeError(f"check --kernel --json: {len(conns)} connections, "
                               f"want {self.conns}: {conns}")
        for c in conns:
            subs = c["subflows"]
            ifaces = sorted(s.get("interface") or "?" for s in subs)
            if (len(subs) != len(self.flagged) or ifaces != sorted(self.flagged)
                    or any(s["state"] != "established" for s in subs)
                    or c["fallback"] or not c["remote"].startswith(SERVER + ":")):
                raise RuntimeError(f"check --kernel --json: connection {c} (want "
                                   f"{len(self.flagged)} established subflows on "
                                   f"{sorted(self.flagged)})")

    def check_text(self, text: str) -> None:
        if not self.codes and not text.startswith("no findings"):
            raise RuntimeError(f"check --kernel: {text[:1500]!r} (want 'no findings')")
        for code in self.codes:
            if code not in text:
                raise RuntimeError(f"check --kernel: no {code} in {text[:1500]!r}")
        listed = sum(1 for line in text.splitlines() if line.endswith(" subflow(s)"))
        want = f"{len(self.flagged)} subflow(s)"
        if listed != self.conns or sum(want in line for line in text.splitlines()) != listed:
            raise RuntimeError(f"check --kernel: {listed} connections listed, want "
                               f"{self.conns} with {want}: {text[-1500:]!r}")

    def show_json(self) -> None:
        state = json.loads(self._ctl("show", "--kernel", "--json"))
        ifaces = {i["name"]: i for i in state["interfaces"]}
        missing = [n for n in self.names if n not in ifaces]
        if missing:
            raise RuntimeError(f"show --kernel --json: no {missing[:5]} "
                               f"({len(missing)} missing)")
        flagged = sorted(n for n, i in ifaces.items()
                         if (i.get("mptcp") or {}).get("address-flags") == ["subflow"])
        if flagged != sorted(self.flagged):
            raise RuntimeError(f"show --kernel --json: address-flags [subflow] on "
                               f"{flagged}, want {sorted(self.flagged)}")


def measure(spec: dict) -> dict:
    become_subreaper()
    env = dict(os.environ)
    v = Verifier(spec, env)
    outdir = spec["outdir"]
    tools: dict = spec["tools"]
    res: dict = {t: {"ns": [], "cpu_ms": [], "maxrss_kib": [], "load1": []} for t in tools}

    def run(tool: str, mode: str) -> None:
        """One run of `tool`; mode "time", "memory" or "warmup" (output kept)."""
        argv = tools[tool]
        out = os.path.join(outdir, f"{tool}.out") if mode == "warmup" else "/dev/null"
        err = os.path.join(outdir, f"{tool}.err")
        load = round(os.getloadavg()[0], 2)
        if mode == "memory":
            rc, kib = spawn_maxrss(argv, env, out, err)
        else:
            ns, rc, cpu = spawn_wait(argv, env, out, err)
        errtext = Path(err).read_text(errors="replace")
        if rc != 0 or errtext:
            raise RuntimeError(f"{' '.join(argv)}: exit {rc}, stderr {errtext[-1500:]!r}")
        r = res[tool]
        if mode == "time":
            r["ns"].append(ns)
            r["cpu_ms"].append(round(cpu * 1e3, 3))
            r["load1"].append(load)
        elif mode == "memory":
            r["maxrss_kib"].append(kib)
        else:
            r["warmup_ms"] = round(ns / 1e6, 3)

    for _ in range(spec["warmup"]):
        for tool in tools:
            run(tool, "warmup")
    v.check_json(Path(outdir, "check-json.out").read_text())
    v.check_text(Path(outdir, "check.out").read_text())
    show_text = Path(outdir, "show.out").read_text()
    listed = {line[len("- name: "):] for line in show_text.splitlines()
              if line.startswith("- name: ")}
    if not set(v.names) <= listed:
        raise RuntimeError(f"show --kernel listed {len(listed)} interfaces, not the "
                           f"{len(v.names)} veths: {show_text[:1000]!r}")
    v.show_json()
    names = list(tools)
    for r in range(spec["rounds"]):
        for tool in names[r % len(names):] + names[:r % len(names)]:
            run(tool, "time")
        v.check_json()  # the fixture held through the round
    for _ in range(spec["memory_runs"]):
        for tool in names:
            run(tool, "memory")
    v.check_json()
    res["_floor_maxrss_kib"] = maxrss_floor_kib(env, outdir)
    return res


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------

def build_fixture(sb, names: list[str], flagged: list[str]) -> None:
    e = len(flagged)
    sb.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1"])
    idx = {n: i for i, n in enumerate(names, start=1)}
    lines = [f"addr add {address_of(i)}/24 dev {n}" for n, i in idx.items()]
    lines += [f"mptcp endpoint add {address_of(idx[n])} dev {n} subflow" for n in flagged]
    lines.append(f"mptcp limits set subflows {e} add_addr_accepted {e}")
    lines += [f"route add {SERVER}/32 via {peer_address_of(idx[n])} dev {n} "
              f"metric {ROUTE_METRIC + j}" for j, n in enumerate(flagged)]
    subprocess.run(["ip", "-n", sb.netns, "-batch", "-"], check=True, text=True,
                   input="\n".join(lines) + "\n")
    peer = [f"addr add {SERVER}/32 dev lo"]
    peer += [f"addr add {peer_address_of(idx[n])}/24 dev {n}" for n in flagged]
    peer.append(f"mptcp limits set subflows {PEER_LIMITS} add_addr_accepted {PEER_LIMITS}")
    subprocess.run(["ip", "-n", sb.peer_netns, "-batch", "-"], check=True, text=True,
                   input="\n".join(peer) + "\n")
    eps = sb.endpoints()
    have = sorted((x["address"], x["dev"], x["flags"]) for x in eps)
    want = sorted((address_of(idx[n]), n, ["subflow"]) for n in flagged)
    if have != want:
        raise RuntimeError(f"endpoints {have}, want {want}")
    limits = sb.mptcp_limits()
    if limits.get("subflows") != e or limits.get("add_addr_accepted") != e:
        raise RuntimeError(f"limits {limits}, want {e}/{e}")


def _pdeathsig() -> None:
    """In the child before exec: SIGKILL when the bench dies (survives execve)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class Connections:
    """C MPTCP connections from the sandbox namespace to the peer's server, held open."""

    def __init__(self, sb, count: int, subflows: int, tmp: str, budget: float) -> None:
        self.sb, self.count, self.subflows, self.tmp = sb, count, subflows, tmp
        self.budget = budget
        self.procs: list[subprocess.Popen] = []
        self.status_files: list[str] = []

    def _spawn(self, netns: str, args: list[str], log_name: str) -> subprocess.Popen:
        logf = open(os.path.join(self.tmp, log_name), "w")
        try:
            p = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable,
                 str(HARNESS / "mptcp_peer.py"), *args],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                preexec_fn=_pdeathsig)
        finally:
            logf.close()
        self.procs.append(p)
        return p

    def start(self) -> float:
        t0 = time.monotonic()
        timeout = f"{self.budget + 120:.0f}"
        for c in range(self.count):
            port = PORT_BASE + c
            ready = os.path.join(self.tmp, f"ready-{c}")
            self._spawn(self.sb.peer_netns,
                        ["serve", "--port", str(port), "--once", "--ready-file", ready,
                         "--timeout", timeout, "--sample-interval", "0.5"],
                        f"serve-{c}.log")
            self.sb.wait_for(lambda r=ready: os.path.exists(r), timeout=10,
                             what=f"server {c} listening")
            status = os.path.join(self.tmp, f"client-{c}.json")
            self.status_files.append(status)
            self._spawn(self.sb.netns,
                        ["send", "--to", SERVER, "--port", str(port), "--bytes", "1000",
                         "--hold", f"{self.budget + 60:.0f}", "--timeout", timeout,
                         "--sample-interval", "0.2", "--status-file", status],
                        f"client-{c}.log")
        self.sb.wait_for(self.ready, timeout=CONNECT_TIMEOUT,
                         what=f"{self.count} connections with {self.subflows} subflows each")
        return time.monotonic() - t0

    def ready(self) -> bool:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"an mptcp_peer.py exited ({p.returncode}); logs in "
                                   f"{self.tmp}")
        for path in self.status_files:
            try:
                st = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                return False
            subs = st.get("subflows") or []
            if (st.get("phase") != "holding" or st.get("mptcpi_subflows") != self.subflows - 1
                    or len(subs) != self.subflows
                    or any(s.get("state") != "ESTABLISHED" for s in subs)):
                return False
        return True

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
        self.procs.clear()


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
        "maxrss_kib_samples": v["maxrss_kib"],
        "maxrss_mib": round(max(v["maxrss_kib"]) / 1024, 2),
    }
    return out


def ratios(t: dict) -> dict:
    def r(x: str, key: str) -> float:
        return round(t[x][key] / t["show"][key], 2)

    return {f"{x}_vs_show{suffix}": r(x, key)
            for x in ("check", "check-json")
            for suffix, key in (("", "median_ms"), ("_min", "min_ms"), ("_cpu", "cpu_ms"))}


def run_size(n: int, args, ctl: str) -> dict:
    from nmsandbox import Sandbox  # tests/harness

    rec: dict = {"n": n, "load_before": loadavg(), "setup_s": {}, "rounds": args.rounds,
                 "endpoints": args.endpoints, "connections": args.connections,
                 "expected_codes": expected_codes(args.endpoints), "variants": {}}
    t0 = time.monotonic()
    log(f"== N = {n}: starting the sandbox ({n} veths, no NetworkManager)")
    with Sandbox(count=n, nm=False) as sb:
        rec["setup_s"]["sandbox_start"] = round(time.monotonic() - t0, 3)
        names = sb.veths
        flagged = [names[i - 1] for i in flagged_indices(n, args.endpoints)]
        if len(flagged) != args.endpoints:
            raise RuntimeError(f"N = {n}: fewer than {args.endpoints} links")
        rec["flagged"] = flagged
        t = time.monotonic()
        build_fixture(sb, names, flagged)
        rec["setup_s"]["fixture"] = round(time.monotonic() - t, 3)
        tools = {"check": [ctl, "check", "--kernel"],
                 "check-json": [ctl, "check", "--kernel", "--json"],
                 "show": [ctl, "show", "--kernel"]}
        rec["commands"] = {k: " ".join(v) for k, v in tools.items()}
        runs = (args.rounds * 4 + args.warmup * 3 + args.memory_runs * 3 + 2)
        budget = 300 + runs * (2 + 0.002 * n)
        variants = ["idle"] + (["conns"] if args.connections else [])
        with tempfile.TemporaryDirectory(prefix="mptcpstate-bench-") as tmp:
            for variant in variants:
                conns = None
                try:
                    if variant == "conns":
                        conns = Connections(sb, args.connections, len(flagged), tmp, budget)
                        s = conns.start()
                        rec["setup_s"]["connections"] = round(s, 3)
                        log(f"   {args.connections} connections up ({s:.1f} s)")
                    spec = {"tools": tools, "ctl": ctl, "names": names, "flagged": flagged,
                            "expected_codes": rec["expected_codes"],
                            "connections": args.connections if conns else 0,
                            "outdir": tmp, "rounds": args.rounds, "warmup": args.warmup,
                            "memory_runs": args.memory_runs}
                    log(f"   {variant}: {args.rounds} rounds, load {loadavg()}")
                    t = time.monotonic()
                    results = run_worker(sb, __file__, spec, budget, f"N = {n} {variant}")
                    rec["setup_s"][f"measure_{variant}"] = round(time.monotonic() - t, 3)
                finally:
                    if conns:
                        conns.stop()
                floor = results.pop("_floor_maxrss_kib")
                rec["maxrss_floor_mib"] = round(floor / 1024, 2)
                vt = {tool: summarize(results[tool]) for tool in TOOLS}
                rec["variants"][variant] = {"tools": vt, "ratios": ratios(vt)}
        t = time.monotonic()
    rec["setup_s"]["sandbox_stop"] = round(time.monotonic() - t, 3)
    rec["load_after"] = loadavg()
    return rec


def variant_label(variant: str, rec: dict) -> str:
    return VARIANT_LABELS[variant].format(c=rec["connections"], e=rec["endpoints"])


def print_size(rec: dict) -> None:
    s = rec["setup_s"]
    print(f"\nN = {rec['n']} veths, {rec['endpoints']} endpoints on "
          f"{', '.join(rec['flagged'])} ({rec['rounds']} rounds; load {rec['load_before']} "
          f"-> {rec['load_after']}; expected findings {rec['expected_codes'] or 'none'})")
    setup = f"  setup: sandbox {s['sandbox_start']:.1f} s, fixture {s['fixture']:.2f} s"
    if "connections" in s:
        setup += f", connections {s['connections']:.1f} s"
    print(setup + f", stop {s['sandbox_stop']:.1f} s")
    print(f"  {'':<40} {'median':>9} {'min':>9} {'CPU':>9} {'max RSS':>9}  "
          "/ show (median; min; CPU)")
    for variant, vr in rec["variants"].items():
        print(f"  {variant_label(variant, rec)}")
        r = vr["ratios"]
        for tool, v in vr["tools"].items():
            text = ""
            if tool != "show":
                key = f"{tool}_vs_show"
                text = f"{r[key]:.2f}x; {r[key + '_min']:.2f}x; {r[key + '_cpu']:.2f}x"
                if tool == "check":
                    ok = r[key] <= GOAL_CHECK_VS_SHOW
                    text += f"  (goal <= {GOAL_CHECK_VS_SHOW:g}x: {'met' if ok else 'MISSED'})"
            print(f"    {LABELS[tool]:<38} {fmt_ms(v['median_ms']):>9} "
                  f"{fmt_ms(v['min_ms']):>9} {fmt_ms(v['cpu_ms']):>9} "
                  f"{v['maxrss_mib']:>6.1f} MB  {text}")
    print(f"  (CPU: the command's own, user + system, median; max RSS over the memory runs; "
          f"floor, /bin/true: {rec['maxrss_floor_mib']:.1f} MB)")


def print_summary(recs: list[dict]) -> dict:
    cols = [f"N={r['n']} {v}" for r in recs for v in r["variants"]]
    print("\nSummary (medians; min in brackets)")
    print(f"  {'':<40}" + "".join(f"{c:>20}" for c in cols))

    def row(label, f):
        print(f"  {label:<40}" + "".join(f"{f(r['variants'][v]):>20}"
                                          for r in recs for v in r["variants"]))

    for tool in TOOLS:
        row(LABELS[tool], lambda vr, t=tool: f"{fmt_ms(vr['tools'][t]['median_ms'])} "
                                             f"[{fmt_ms(vr['tools'][t]['min_ms'])}]")
    for tool in ("check", "check-json"):
        row(f"{tool} / show: median, min, CPU",
            lambda vr, t=tool: f"{vr['ratios'][t + '_vs_show']:.2f}, "
                               f"{vr['ratios'][t + '_vs_show_min']:.2f}, "
                               f"{vr['ratios'][t + '_vs_show_cpu']:.2f}")
    out: dict = {"goals": []}
    for rec in recs:
        for variant, vr in rec["variants"].items():
            r = vr["ratios"]
            out["goals"].append({"n": rec["n"], "variant": variant,
                                 "goal": f"check / show <= {GOAL_CHECK_VS_SHOW:g}x",
                                 "value": r["check_vs_show"],
                                 "met": r["check_vs_show"] <= GOAL_CHECK_VS_SHOW,
                                 "min_ratio": r["check_vs_show_min"],
                                 "cpu_ratio": r["check_vs_show_cpu"]})
    print("\nGoal: check --kernel / show --kernel <= 2x (the issue's, at N = 1000), on the "
          "ratio of medians")
    for g in out["goals"]:
        print(f"  N = {g['n']:<5} {g['variant']:<6} {g['value']:>6.2f}x  "
              f"{'met' if g['met'] else 'MISSED':<7} (min {g['min_ratio']:.2f}x, "
              f"CPU {g['cpu_ratio']:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_measure"]:
        return worker_main(measure)
    p = argparse.ArgumentParser(
        description="Benchmark mptcpstatectl check --kernel against show --kernel, in a "
                    "sandbox namespace with N veths (no NetworkManager), without and with "
                    "live MPTCP connections.")
    p.add_argument("--sizes", type=parse_sizes, default=[10, 1000],
                   help="comma-separated veth counts, each at least --endpoints "
                        "(default 10,1000)")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per N (default 20)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per tool (default 1)")
    p.add_argument("--memory-runs", type=int, default=3,
                   help="untimed runs per tool that measure the peak memory (default 3)")
    p.add_argument("--endpoints", type=int, default=7,
                   help="links with a subflow endpoint, 1..8 (default 7: with 8, check "
                        "finds endpoint-cap-reached)")
    p.add_argument("--connections", type=int, default=4,
                   help="MPTCP connections held open in the second variant; 0: no such "
                        "variant (default 4)")
    p.add_argument("--mptcpstatectl", metavar="PATH",
                   help="the binary to time (default: target/release/mptcpstatectl)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build --release -p mptcpstatectl first")
    p.add_argument("--out", metavar="FILE",
                   help="JSON file of the raw figures (default target/bench/check-<time>.json)")
    args = p.parse_args(argv)
    if not 1 <= args.endpoints <= MAX_ENDPOINTS:
        p.error(f"--endpoints is 1..{MAX_ENDPOINTS}")
    if any(n < args.endpoints for n in args.sizes):
        p.error(f"every size is at least {args.endpoints} (the endpoint links)")
    if args.rounds < 1 or args.memory_runs < 1 or args.warmup < 1:
        p.error("--rounds, --memory-runs and --warmup are at least 1")
    if not 0 <= args.connections <= 50:
        p.error("--connections is 0..50")
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
    if not os.access(ctl, os.X_OK):
        p.error(f"not an executable: {ctl}")
    probe = subprocess.run([ctl, "check", "--help"], capture_output=True, text=True)
    if probe.returncode != 0 or "--kernel" not in probe.stdout:
        p.error(f"{ctl} has no `check --kernel`; build a newer one")

    sys.path.insert(0, str(HARNESS))
    started = datetime.datetime.now(datetime.timezone.utc)
    out_path = Path(args.out) if args.out else \
        tdir / "bench" / f"check-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {
        "benchmark": "check",
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, os.path.relpath(__file__, os.getcwd())] + argv,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(), "load_start": loadavg()},
        "versions": {
            "mptcpstatectl": version_of([ctl, "version"]),
            # of the checkout the bench runs from (the timed binary may be another's)
            "git": version_of(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        },
        "binaries": {"mptcpstatectl": ctl},
        "goals": {"check_vs_show": GOAL_CHECK_VS_SHOW},
        "sizes": [],
    }
    built = report["versions"]["git"] if not args.mptcpstatectl else ctl
    print(f"check benchmark: {os.cpu_count()} CPUs, kernel {platform.release()}, load "
          f"{report['machine']['load_start']}; mptcpstatectl "
          f"{report['versions']['mptcpstatectl']} ({built})")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        rec = run_size(n, args, ctl)
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
        shutil.copyfile(out_path, out_path.parent / "check-latest.json")
    print(f"\nload average at the start: {report['machine']['load_start']}, at the end: "
          f"{report['machine']['load_end']}; raw figures: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
