#!/usr/bin/env python3
"""The show benchmark (issue 3): mptcpstatectl show against the raw kernel and nmstatectl.

For each N (default 1, 200, 1000) it starts the NetworkManager sandbox of
tests/harness/nmsandbox.py with N veths (eth1..ethN), gives each one a real, activated NM
profile with one IPv4 address (10.64.0.1/24, 10.64.1.1/24, ...; IPv6 disabled), 8 of them
(spread over the N) with `mptcp-flags` subflow, so the kernel holds 8 MPTCP endpoints.
Then, inside the sandbox's network namespace, it times, in interleaved rounds:

  kernel   mptcpstatectl show --kernel
  full     mptcpstatectl show                      (kernel + NetworkManager over D-Bus)
  ip       ip -j addr show  +  ip mptcp endpoint show   (two processes; times added)
  nmstate  nmstatectl show                         (only with --nmstatectl/--install-nmstatectl)

and prints, per N, the median and minimum wall time of each tool, the CPU time it used
and that NetworkManager and dbus-daemon used during its runs (medians), its peak memory
(max RSS from wait4's rusage, in separate untimed runs), the ratios (ours vs ip,
nmstatectl vs ours), and whether the issue's targets hold at N = 1000: kernel-only show
within 2x of the two ip commands, full show at least 30x faster than nmstatectl show,
our peak memory at most 30 MB. The raw figures (every sample, setup times, load averages,
versions) go to a JSON file (default target/bench/show-<UTC time>.json, copied to
target/bench/show-latest.json).

How the fixture is built (fast at N = 1000, no nmcli per interface): one state listing
all N interfaces is turned into keyfiles by `mptcpstatectl gc --write-dir <keyfile_dir>`,
then one `nmcli connection reload`; the profiles autoconnect. The bench follows NM's log
until every device is activated, then checks once with nmcli, `ip -j addr` and
`ip mptcp endpoint` (N addresses, min(8, N) endpoints). Setup times are reported too.

How it measures: one worker process (this script, `_measure`) is started inside the
sandbox namespace with `ip netns exec` and DBUS_SYSTEM_BUS_ADDRESS set; it spawns every
command with posix_spawn (stdin and stdout on /dev/null, YAML output for both show
tools), waits with os.wait4 and takes the wall time around spawn..reap, so
`ip netns exec`'s own cost (a mount namespace, a sysfs mount) is in no figure. One
warm-up run of each tool (its output is checked), then R rounds; each round runs every
tool once, the order rotating from round to round. Then 3 untimed memory runs per tool:
Linux counts into a process's max RSS the memory of the process it was forked from (exec
keeps the old address space's high-water mark), and the worker is a 17 MB Python, so for
memory each command is forked by `setsid --fork` (util-linux, ~1 MB) instead; the
worker, a child subreaper, reaps it with os.wait4. /bin/true run the same way gives the
floor (~1 MB). NM's and dbus-daemon's CPU come from /proc/<pid>/task/*/schedstat.

nmstatectl makes its D-Bus calls one after another, so its time grows with the machine's
load far more than ours (NM's CPU per show is the steadier figure): the nmstatectl ratio
of a busy machine flatters us. The load average is printed with every N.

Usage (root; Python 3 standard library only):

    python3 bench/show.py                          # N = 1, 200, 1000; without nmstatectl
    python3 bench/show.py --install-nmstatectl     # also nmstatectl 2.2.62 (cargo install,
                                                   #   once, into target/bench/nmstate: ~3 min on an
                                                   #   idle 2-core machine, 20+ on a busy one)
    python3 bench/show.py --nmstatectl /usr/bin/nmstatectl --sizes 1,200,1000,2000
    python3 bench/show.py --sizes 50 --rounds 5 --flagged 4 --out /tmp/b.json

Options: --rounds R overrides the default rounds (50 for N <= 10, 20 for N <= 300,
else 10); --no-build uses the existing target/release/mptcpstatectl (otherwise
`cargo build --release -p mptcpstatectl` runs first); --mptcpstatectl PATH times
another binary; --memory-runs, --warmup, --flagged (0..8), --out. Each N gets its own
sandbox, stopped before the next one starts (and by the harness's supervisor if this
process dies).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (HARNESS, NMSTATE_VERSION, REPO, address_of, become_subreaper,
                    fixture_state, flagged_indices, fmt_ms, install_nmstatectl, loadavg, log,
                    maxrss_floor_kib, parse_sizes, proc_cpu_ns, run_worker, spawn_maxrss,
                    spawn_wait, version_of, worker_main)

# The targets, checked at N = TARGET_N.
TARGET_N = 1000
TARGET_KERNEL_VS_IP = 2.0      # kernel-only show / (ip addr + ip mptcp endpoint) <= 2
TARGET_NMSTATE_VS_FULL = 30.0  # nmstatectl show / full show >= 30
TARGET_RSS_MB = 30.0           # our peak memory

TOOL_LABELS = {
    "kernel": "mptcpstatectl show --kernel",
    "full": "mptcpstatectl show",
    "ip": "ip -j addr show + ip mptcp endpoint show",
    "nmstate": "nmstatectl show",
}


# --------------------------------------------------------------------------
# the worker, inside the sandbox namespace
# --------------------------------------------------------------------------

def measure(spec: dict) -> dict:
    """Warm-up, interleaved timed rounds, then memory runs. A tool is a list of commands
    run one after the other; its time is their sum, its memory their maximum."""
    become_subreaper()
    env = dict(os.environ)
    outdir = spec["outdir"]
    tools = spec["tools"]
    names = list(tools)
    res: dict = {n: {"ns": [], "cpu_ms": [], "nm_cpu_ms": [], "bus_cpu_ms": [],
                     "maxrss_kib": []} for n in names}
    nm_pid, bus_pid = spec.get("nm_pid"), spec.get("dbus_pid")

    def check(argv: list[str], rc: int, err: str) -> None:
        if rc != 0:
            with open(err, errors="replace") as f:
                text = f.read()[-2000:]
            raise RuntimeError(f"{' '.join(argv)} exited with {rc}: {text}")

    def run_tool(name: str, mode: str) -> None:
        total, rss, cpu = 0, 0, 0.0
        nm0, bus0 = proc_cpu_ns(nm_pid), proc_cpu_ns(bus_pid)
        for i, argv in enumerate(tools[name]):
            out = os.path.join(outdir, f"{name}.{i}.out") if mode == "warmup" else "/dev/null"
            err = os.path.join(outdir, f"{name}.{i}.err")
            if mode == "memory":
                rc, kib = spawn_maxrss(argv, env, out, err)
                rss = max(rss, kib)
            else:
                ns, rc, used = spawn_wait(argv, env, out, err)
                total += ns
                cpu += used
            check(argv, rc, err)
        nm1, bus1 = proc_cpu_ns(nm_pid), proc_cpu_ns(bus_pid)
        if mode == "warmup":
            res[name]["warmup_ns"] = total
        elif mode == "time":
            res[name]["ns"].append(total)
            res[name]["cpu_ms"].append(round(cpu * 1e3, 2))
            res[name]["nm_cpu_ms"].append(round((nm1 - nm0) / 1e6, 2))
            res[name]["bus_cpu_ms"].append(round((bus1 - bus0) / 1e6, 2))
        else:
            res[name]["maxrss_kib"].append(rss)

    for name in names:
        for _ in range(spec["warmup"]):
            run_tool(name, "warmup")
    for r in range(spec["rounds"]):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run_tool(name, "time")
    for r in range(spec["memory_runs"]):
        for name in names:
            run_tool(name, "memory")
    # The floor of the memory figures: /bin/true forked by the same shell.
    res["_floor_maxrss_kib"] = maxrss_floor_kib(env, outdir)
    return res


# --------------------------------------------------------------------------
# the fixture
# --------------------------------------------------------------------------

_STATE_RE = re.compile(rb"device \(([^)]+)\): state change: \S+ -> (\S+)")


def wait_activated(sb, names: list[str], n_endpoints: int, timeout: float) -> None:
    """Follows NM's log (free for NM, unlike polling nmcli at 1000 devices) until every
    device is activated, then checks once with nmcli and the kernel."""
    want = set(names)
    states: dict[str, str] = {}
    offset, partial = 0, b""
    deadline = time.monotonic() + timeout
    interval = 0.02 if len(names) < 50 else 0.25
    while True:
        with open(sb.nm_log, "rb") as f:
            f.seek(offset)
            data = f.read()
        offset += len(data)
        lines = (partial + data).split(b"\n")
        partial = lines.pop()
        for line in lines:
            m = _STATE_RE.search(line)
            if m:
                states[m.group(1).decode()] = m.group(2).decode()
        done = {n for n in want if states.get(n) == "activated"}
        if done == want:
            dev = sb.nmcli("-t", "-f", "DEVICE,STATE", "device").stdout
            connected = {line.rpartition(":")[0] for line in dev.splitlines()
                         if line.endswith(":connected")}
            eps = sb.endpoints()
            if want <= connected and len(eps) == n_endpoints:
                return
        if time.monotonic() > deadline:
            missing = sorted(want - done)[:5]
            raise TimeoutError(
                f"{len(want - done)} device(s) not activated after {timeout:.0f} s "
                f"(e.g. {', '.join(f'{n}={states.get(n)}' for n in missing)}); "
                f"endpoints: {len(sb.endpoints())}/{n_endpoints}; see {sb.nm_log}")
        time.sleep(interval)


def check_fixture(sb, names: list[str], flagged: set[str]) -> None:
    addrs = sb.ip("-4", "addr", "show", json=True)
    have = {a["ifname"]: [x["local"] for x in a.get("addr_info", [])] for a in addrs}
    for i, name in enumerate(names, start=1):
        if have.get(name) != [address_of(i)]:
            raise RuntimeError(f"{name}: IPv4 {have.get(name)}, expected [{address_of(i)}]")
    eps = {e.get("dev") for e in sb.endpoints()}
    if eps != flagged:
        raise RuntimeError(f"endpoints on {sorted(eps)}, expected {sorted(flagged)}")


def check_show_output(path: str, names: list[str], flagged: set[str], full: bool) -> None:
    """The timed show printed every veth, the flags, and (full mode) NM's ipv4.dhcp."""
    text = Path(path).read_text()
    for name in (names[0], names[-1]):
        if f"name: {name}\n" not in text:
            raise RuntimeError(f"show output ({path}) lacks {name}")
    n_flags = text.count("mptcp-flags:")
    if n_flags != len(flagged):
        raise RuntimeError(f"show output ({path}) has {n_flags} mptcp-flags, "
                           f"expected {len(flagged)}")
    if full and text.count("dhcp: false") < len(names):
        raise RuntimeError(f"full show output ({path}) lacks NM's dhcp: false")


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------

def default_rounds(n: int) -> int:
    return 50 if n <= 10 else 20 if n <= 300 else 10


def run_size(n: int, args, ctl: str, nmstatectl: str | None, ip: str) -> dict:
    from nmsandbox import Sandbox  # tests/harness

    rec: dict = {"n": n, "load_before": loadavg(), "setup_s": {}}
    rounds = args.rounds or default_rounds(n)
    t0 = time.monotonic()
    log(f"== N = {n}: starting the sandbox (NetworkManager, {n} veths)")
    with Sandbox(count=n) as sb:
        rec["setup_s"]["sandbox_start"] = round(time.monotonic() - t0, 3)
        names = sb.veths
        flagged = {names[i - 1] for i in flagged_indices(n, args.flagged)}
        with tempfile.TemporaryDirectory(prefix="mptcpstate-bench-") as tmp:
            state_path = os.path.join(tmp, "state.json")
            with open(state_path, "w") as f:
                json.dump(fixture_state(names, flagged), f)
            t = time.monotonic()
            subprocess.run([ctl, "gc", "--write-dir", sb.keyfile_dir, state_path],
                           check=True, capture_output=True, text=True)
            rec["setup_s"]["keyfiles"] = round(time.monotonic() - t, 3)
            t = time.monotonic()
            sb.nmcli("connection", "reload", timeout=600)
            rec["setup_s"]["nmcli_reload"] = round(time.monotonic() - t, 3)
            log(f"   {n} keyfiles written, reloaded; waiting for activation")
            wait_activated(sb, names, len(flagged), timeout=60 + 0.2 * n)
            rec["setup_s"]["activation"] = round(time.monotonic() - t, 3)
            check_fixture(sb, names, flagged)
            rec["setup_s"]["total"] = round(time.monotonic() - t0, 3)
            rec["nm_version"] = sb.nmcli("-t", "-g", "VERSION", "general").stdout.strip()
            log(f"   fixture ready in {rec['setup_s']['total']:.1f} s; "
                f"{rounds} rounds, load {rec['load_before']}")

            tools = {
                "kernel": [[ctl, "show", "--kernel"]],
                "full": [[ctl, "show"]],
                "ip": [[ip, "-j", "addr", "show"], [ip, "mptcp", "endpoint", "show"]],
            }
            if nmstatectl:
                tools["nmstate"] = [[nmstatectl, "show"]]
            spec = {"tools": tools, "rounds": rounds, "warmup": args.warmup,
                    "memory_runs": args.memory_runs, "outdir": tmp,
                    "nm_pid": sb.nm_pid, "dbus_pid": sb.dbus_pid}
            runs = rounds + args.memory_runs + args.warmup
            budget = 600 + runs * (30 + (0.05 * n if nmstatectl else 0.005 * n))
            results = run_worker(sb, __file__, spec, budget, f"N = {n}")
            check_show_output(os.path.join(tmp, "kernel.0.out"), names, flagged, full=False)
            check_show_output(os.path.join(tmp, "full.0.out"), names, flagged, full=True)
            if nmstatectl:
                text = Path(tmp, "nmstate.0.out").read_text()
                if f"name: {names[-1]}\n" not in text:
                    raise RuntimeError("nmstatectl show output lacks " + names[-1])
        t = time.monotonic()
    rec["setup_s"]["sandbox_stop"] = round(time.monotonic() - t, 3)
    rec["rounds"] = rounds
    rec["load_after"] = loadavg()
    rec["tools"] = {}
    rec["maxrss_floor_mib"] = round(results.pop("_floor_maxrss_kib") / 1024, 2)
    for name, v in results.items():
        ms = [x / 1e6 for x in v["ns"]]
        rec["tools"][name] = {
            "command": [" ".join(c) for c in tools[name]],
            "samples_ms": [round(x, 3) for x in ms],
            "warmup_ms": round(v["warmup_ns"] / 1e6, 3),
            "median_ms": round(statistics.median(ms), 3),
            "min_ms": round(min(ms), 3),
            "max_ms": round(max(ms), 3),
            "cpu_ms_samples": v["cpu_ms"],
            "cpu_ms": round(statistics.median(v["cpu_ms"]), 2),
            "nm_cpu_ms_samples": v["nm_cpu_ms"],
            "nm_cpu_ms": round(statistics.median(v["nm_cpu_ms"]), 2),
            "dbus_cpu_ms_samples": v["bus_cpu_ms"],
            "dbus_cpu_ms": round(statistics.median(v["bus_cpu_ms"]), 2),
            "maxrss_kib_samples": v["maxrss_kib"],
            "maxrss_mib": round(max(v["maxrss_kib"]) / 1024, 2),
        }
    t = rec["tools"]
    rec["ratios"] = {
        "kernel_vs_ip": round(t["kernel"]["median_ms"] / t["ip"]["median_ms"], 2),
        "kernel_vs_ip_min": round(t["kernel"]["min_ms"] / t["ip"]["min_ms"], 2),
        "full_vs_ip": round(t["full"]["median_ms"] / t["ip"]["median_ms"], 2),
    }
    if "nmstate" in t:
        rec["ratios"]["nmstate_vs_full"] = round(t["nmstate"]["median_ms"]
                                                 / t["full"]["median_ms"], 1)
        rec["ratios"]["nmstate_vs_kernel"] = round(t["nmstate"]["median_ms"]
                                                   / t["kernel"]["median_ms"], 1)
    return rec


def print_size(rec: dict) -> None:
    t, r, s = rec["tools"], rec["ratios"], rec["setup_s"]
    print(f"\nN = {rec['n']} veths ({rec['rounds']} rounds; load {rec['load_before']} -> "
          f"{rec['load_after']})")
    print(f"  setup: sandbox {s['sandbox_start']:.1f} s, keyfiles {s['keyfiles']:.2f} s, "
          f"reload+activation {s['activation']:.1f} s (reload alone {s['nmcli_reload']:.2f} s), "
          f"total {s['total']:.1f} s; stop {s['sandbox_stop']:.1f} s")
    print(f"  {'tool':<42} {'median':>9} {'min':>9} {'CPU':>9} {'NM CPU':>9} {'bus CPU':>9} "
          f"{'max RSS':>9}  ratio")
    for name in ("kernel", "full", "ip", "nmstate"):
        if name not in t:
            continue
        v = t[name]
        ratio = ""
        if name == "kernel":
            ratio = f"{r['kernel_vs_ip']:.2f}x ip"
        elif name == "full":
            ratio = f"{r['full_vs_ip']:.2f}x ip"
        elif name == "nmstate":
            ratio = (f"{r['nmstate_vs_full']:.0f}x full show, "
                     f"{r['nmstate_vs_kernel']:.0f}x kernel-only")
        print(f"  {TOOL_LABELS[name]:<42} {fmt_ms(v['median_ms']):>9} {fmt_ms(v['min_ms']):>9} "
              f"{fmt_ms(v['cpu_ms']):>9} {fmt_ms(v['nm_cpu_ms']):>9} {fmt_ms(v['dbus_cpu_ms']):>9} "
              f"{v['maxrss_mib']:>6.1f} MB  {ratio}")
    print(f"  (CPU: the tool's own; NM CPU / bus CPU: NetworkManager's / dbus-daemon's during "
          f"the run; medians. RSS floor, /bin/true: {rec['maxrss_floor_mib']:.1f} MB)")


def print_summary(recs: list[dict]) -> list[dict]:
    cols = [f"N={r['n']}" for r in recs]
    print("\nSummary (medians; ratios of medians)")
    print(f"  {'':<34}" + "".join(f"{c:>11}" for c in cols))

    def row(label, f):
        cells = []
        for r in recs:
            try:
                cells.append(f(r))
            except KeyError:
                cells.append("-")
        print(f"  {label:<34}" + "".join(f"{c:>11}" for c in cells))

    row("show --kernel", lambda r: fmt_ms(r["tools"]["kernel"]["median_ms"]))
    row("show (full)", lambda r: fmt_ms(r["tools"]["full"]["median_ms"]))
    row("ip addr + ip mptcp endpoint", lambda r: fmt_ms(r["tools"]["ip"]["median_ms"]))
    row("nmstatectl show", lambda r: fmt_ms(r["tools"]["nmstate"]["median_ms"]))
    row("show --kernel / ip", lambda r: f"{r['ratios']['kernel_vs_ip']:.2f}x")
    row("show (full) / ip", lambda r: f"{r['ratios']['full_vs_ip']:.2f}x")
    row("nmstatectl / show (full)", lambda r: f"{r['ratios']['nmstate_vs_full']:.0f}x")
    row("max RSS show --kernel", lambda r: f"{r['tools']['kernel']['maxrss_mib']:.1f} MB")
    row("max RSS show (full)", lambda r: f"{r['tools']['full']['maxrss_mib']:.1f} MB")
    row("max RSS ip (larger of the two)", lambda r: f"{r['tools']['ip']['maxrss_mib']:.1f} MB")
    row("max RSS nmstatectl", lambda r: f"{r['tools']['nmstate']['maxrss_mib']:.1f} MB")

    targets = []
    at = [r for r in recs if r["n"] == TARGET_N]
    if not at:
        print(f"\nTargets (at N = {TARGET_N}): not measured in this run")
        return targets
    r = at[0]
    t = r["tools"]
    targets.append({"target": f"show --kernel <= {TARGET_KERNEL_VS_IP:g}x ip (median)",
                    "value": r["ratios"]["kernel_vs_ip"],
                    "met": r["ratios"]["kernel_vs_ip"] <= TARGET_KERNEL_VS_IP})
    if "nmstate_vs_full" in r["ratios"]:
        targets.append({"target": f"nmstatectl show >= {TARGET_NMSTATE_VS_FULL:g}x show (full)",
                        "value": r["ratios"]["nmstate_vs_full"],
                        "met": r["ratios"]["nmstate_vs_full"] >= TARGET_NMSTATE_VS_FULL})
    else:
        targets.append({"target": f"nmstatectl show >= {TARGET_NMSTATE_VS_FULL:g}x show (full)",
                        "value": None, "met": None})
    rss = max(t["kernel"]["maxrss_mib"], t["full"]["maxrss_mib"])
    targets.append({"target": f"our peak memory <= {TARGET_RSS_MB:g} MB", "value": rss,
                    "met": rss <= TARGET_RSS_MB})
    print(f"\nTargets at N = {TARGET_N}")
    for x in targets:
        verdict = {True: "met", False: "MISSED", None: "not measured (no nmstatectl)"}[x["met"]]
        value = "" if x["value"] is None else f"{x['value']}"
        print(f"  {x['target']:<44} {value:>8}  {verdict}")
    return targets


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_measure"]:
        return worker_main(measure)
    p = argparse.ArgumentParser(
        description="Benchmark mptcpstatectl show against ip and nmstatectl in a "
                    "NetworkManager sandbox with N veths.")
    p.add_argument("--sizes", type=parse_sizes, default=[1, 200, 1000],
                   help="comma-separated veth counts (default 1,200,1000)")
    p.add_argument("--flagged", type=int, default=8,
                   help="interfaces with MPTCP endpoints (default 8, the kernel's maximum)")
    p.add_argument("--rounds", type=int,
                   help="timed rounds per N (default 50 for N <= 10, 20 for N <= 300, else 10)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per tool (default 1)")
    p.add_argument("--memory-runs", type=int, default=3,
                   help="untimed runs per tool that measure the peak memory (default 3)")
    p.add_argument("--nmstatectl", metavar="PATH", help="also time this nmstatectl")
    p.add_argument("--install-nmstatectl", action="store_true",
                   help=f"cargo install nmstatectl {NMSTATE_VERSION} under target/bench/ "
                        "(once) and time it")
    p.add_argument("--mptcpstatectl", metavar="PATH",
                   help="the binary to time (default: target/release/mptcpstatectl)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo build --release -p mptcpstatectl first")
    p.add_argument("--out", metavar="FILE",
                   help="JSON file of the raw figures (default target/bench/show-<time>.json)")
    args = p.parse_args(argv)
    if not 0 <= args.flagged <= 8:
        p.error("--flagged is 0..8: the kernel keeps at most 8 endpoints per namespace")
    if args.memory_runs < 1:
        p.error("--memory-runs is at least 1")
    if args.warmup < 1:
        p.error("--warmup is at least 1 (the warm-up output is checked)")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces, NetworkManager)")

    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if args.mptcpstatectl:
        ctl = os.path.abspath(args.mptcpstatectl)
    else:
        if not args.no_build:
            log("cargo build --release -p mptcpstatectl")
            subprocess.run(["cargo", "build", "--release", "-p", "mptcpstatectl"],
                           cwd=REPO, check=True)
        ctl = str(target_dir / "release" / "mptcpstatectl")
    nmstatectl = None
    if args.nmstatectl:
        nmstatectl = shutil.which(args.nmstatectl) or args.nmstatectl
        nmstatectl = os.path.abspath(nmstatectl)
    elif args.install_nmstatectl:
        nmstatectl = install_nmstatectl(target_dir)
    ip = shutil.which("ip")
    for path in [ctl, ip] + ([nmstatectl] if nmstatectl else []):
        if not path or not os.access(path, os.X_OK):
            p.error(f"not an executable: {path}")

    sys.path.insert(0, str(HARNESS))
    started = datetime.datetime.now(datetime.timezone.utc)
    out_path = Path(args.out) if args.out else \
        target_dir / "bench" / f"show-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {
        "benchmark": "show",
        "started": started.isoformat(timespec="seconds"),
        "command": [sys.executable, os.path.relpath(__file__, os.getcwd())] + argv,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(), "load_start": loadavg()},
        "versions": {
            "mptcpstatectl": version_of([ctl, "version"]),
            "nmstatectl": version_of([nmstatectl, "--version"]) if nmstatectl else None,
            "ip": version_of([ip, "-V"]),
            # of the checkout the bench runs from (the timed binary may be another's)
            "git": version_of(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        },
        "binaries": {"mptcpstatectl": ctl, "nmstatectl": nmstatectl, "ip": ip},
        "flagged": args.flagged,
        "sizes": [],
    }
    built = report['versions']['git'] if not args.mptcpstatectl else ctl
    print(f"show benchmark: {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load {report['machine']['load_start']}; mptcpstatectl "
          f"{report['versions']['mptcpstatectl']} ({built}); "
          f"{report['versions']['nmstatectl'] or 'nmstatectl not given'}")
    for n in args.sizes:
        rec = run_size(n, args, ctl, nmstatectl, ip)
        report["sizes"].append(rec)
        report["machine"]["nm_version"] = rec.get("nm_version")
        print_size(rec)
        sys.stdout.flush()
    report["targets"] = print_summary(report["sizes"])
    report["machine"]["load_end"] = loadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    if not args.out:
        shutil.copyfile(out_path, out_path.parent / "show-latest.json")
    print(f"\nload average at the end: {report['machine']['load_end']}; raw figures: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
