"""What the benchmarks of bench/ share (show.py, apply.py, kernel.py): paths, timing and
memory measurement of a spawned command, NM's and dbus-daemon's CPU, the fixture's
addresses and state, the worker that runs inside the sandbox namespace, nmstatectl's
installation.

Python 3 standard library only. The benchmark scripts import it as `common` (their own
directory is first on sys.path, also when they run as workers under `ip netns exec`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "tests" / "harness"
SETSID = shutil.which("setsid") or "/usr/bin/setsid"  # util-linux
NMSTATE_VERSION = "2.2.62"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------
# measuring one command (in the worker, inside the sandbox namespace)
# --------------------------------------------------------------------------

def spawn_actions(stdout: str, stderr: str, stdin: str = "/dev/null") -> list:
    return [
        (os.POSIX_SPAWN_OPEN, 0, stdin, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]


def spawn_wait(argv: list[str], env: dict, stdout: str, stderr: str,
               stdin: str = "/dev/null", sched: dict | None = None) -> tuple[int, int, float]:
    """Runs argv straight from this process; returns (wall ns, exit code, CPU s). With
    `sched`, also sets sched["runqueue_ns"]: how long the command's (main) thread waited
    for a CPU (its schedstat, read while it is a zombie, before it is reaped)."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=spawn_actions(stdout, stderr, stdin))
    if sched is not None:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        t1 = time.perf_counter_ns()
        sched["runqueue_ns"] = proc_runqueue_ns(pid)
        _, status, ru = os.wait4(pid, 0)
    else:
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
    return t1 - t0, os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime


def _schedstat_sum(pid: int | None, field: int) -> int:
    """One field of /proc/<pid>/task/*/schedstat summed over pid's threads, 0 if gone."""
    total = 0
    if not pid:
        return 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[field])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return 0
    return total


def proc_cpu_ns(pid: int | None) -> int:
    """CPU time used so far by every thread of pid (schedstat: nanoseconds), 0 if gone."""
    return _schedstat_sum(pid, 0)


def proc_runqueue_ns(pid: int | None) -> int:
    """Time every thread of pid spent runnable but waiting for a CPU so far (schedstat's
    second field, nanoseconds), 0 if gone: on a busy machine, the part of a wall time that
    is neither work nor a wait for something, only the queue for a core."""
    return _schedstat_sum(pid, 1)


def spawn_maxrss(argv: list[str], env: dict, stdout: str, stderr: str,
                 stdin: str = "/dev/null") -> tuple[int, int]:
    """Runs argv as a child of a small process; returns (exit code, max RSS KiB).

    Why not straight from here: Linux's max RSS of a process includes the memory of
    the process it was forked from (exec keeps the old address space's high-water mark),
    and this Python holds ~17 MB. `setsid --fork` (~1 MB) forks the command and exits at
    once without reaping it; this process, a child subreaper, inherits the command and
    reaps it with os.wait4, which gives its rusage."""
    sp = os.posix_spawn(SETSID, [SETSID, "--fork"] + argv, env,
                        file_actions=spawn_actions(stdout, stderr, stdin))
    _, status = os.waitpid(sp, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return os.waitstatus_to_exitcode(status), 0
    _, status, ru = os.wait4(-1, 0)  # the only child left: the command
    return os.waitstatus_to_exitcode(status), ru.ru_maxrss


def become_subreaper() -> None:
    """Makes this process the reaper of its orphaned descendants (for spawn_maxrss)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def maxrss_floor_kib(env: dict, outdir: str) -> int:
    """The floor of the memory figures: /bin/true forked by the same small process."""
    return spawn_maxrss(["/bin/true"], env, "/dev/null", os.path.join(outdir, "floor.err"))[1]


# --------------------------------------------------------------------------
# the worker: this same script, inside the sandbox namespace
# --------------------------------------------------------------------------

def run_worker(sb, script: str, spec: dict, budget: float, what: str) -> dict:
    """Runs `python3 script _measure` inside the sandbox namespace with the sandbox's
    environment (DBUS_SYSTEM_BUS_ADDRESS), spec as JSON on stdin; returns the "results"
    of its JSON answer. A timeout or ^C kills the worker and what it runs."""
    worker = subprocess.Popen(
        ["ip", "netns", "exec", sb.netns, sys.executable, os.path.abspath(script),
         "_measure"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=sb.env(), text=True,
        start_new_session=True)
    try:
        out, _ = worker.communicate(json.dumps(spec), timeout=budget)
    except BaseException as exc:  # a timeout, ^C: the worker and what it runs go
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise RuntimeError(f"measurement at {what} took over {budget:.0f} s") from None
        raise
    try:
        result = json.loads(out)
    except ValueError:
        raise RuntimeError(f"{what}: the worker died (exit {worker.returncode}) "
                           "without an answer") from None
    if not result["ok"]:
        raise RuntimeError(f"{what}: {result['error']}")
    return result["results"]


def worker_main(measure) -> int:
    """The worker's side: reads the spec on stdin, answers {"ok", "results"|"error"}."""
    spec = json.load(sys.stdin)
    try:
        out = {"ok": True, "results": measure(spec)}
    except Exception as e:  # noqa: BLE001 - reported to the parent
        out = {"ok": False, "error": str(e)}
    json.dump(out, sys.stdout)
    return 0 if out["ok"] else 1


# --------------------------------------------------------------------------
# the fixture
# --------------------------------------------------------------------------

def address_of(i: int) -> str:
    """Interface i (1-based): 10.64.0.1/24, 10.64.1.1/24, ... one /24 each (private, and
    nothing leaves the namespaces anyway)."""
    k = i - 1
    return f"10.{64 + k // 256}.{k % 256}.1"


def flagged_indices(n: int, flagged: int) -> list[int]:
    """min(flagged, n) interfaces spread evenly over 1..n."""
    k = min(flagged, n)
    return sorted({1 + (j * n) // k for j in range(k)}) if k else []


def fixture_state(names: list[str], flagged: set[str],
                  flags: list[str] | None = None) -> dict:
    """Every name a static IPv4 address (address_of), IPv6 off; the flagged ones
    `mptcp.address-flags` (default [subflow])."""
    ifaces = []
    for i, name in enumerate(names, start=1):
        iface = {
            "name": name,
            "type": "ethernet",
            "state": "up",
            "ipv4": {"enabled": True, "dhcp": False,
                     "address": [{"ip": address_of(i), "prefix-length": 24}]},
            "ipv6": {"enabled": False},
        }
        if name in flagged:
            iface["mptcp"] = {"address-flags": list(flags or ["subflow"])}
        ifaces.append(iface)
    return {"interfaces": ifaces}


# --------------------------------------------------------------------------
# the driver's helpers
# --------------------------------------------------------------------------

def fmt_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def version_of(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def install_nmstatectl(target_dir: Path) -> str:
    root = target_dir / "bench" / "nmstate"
    binary = root / "bin" / "nmstatectl"
    if binary.exists() and NMSTATE_VERSION in (version_of([str(binary), "--version"]) or ""):
        return str(binary)
    log(f"installing nmstatectl {NMSTATE_VERSION} into {root} (a few minutes)")
    subprocess.run(["cargo", "install", "nmstatectl", "--version", NMSTATE_VERSION,
                    "--locked", "--root", str(root)], check=True)
    return str(binary)


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x) for x in text.split(",") if x.strip()]
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 1,200,1000")
    return sizes


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
