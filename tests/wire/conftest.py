"""The library on real MPTCP traffic: it configures both ends of a tests/harness WireBed
(client = the sandbox netns, server = the peer netns) through `mptcpstatectl apply`, run
inside that namespace (kernel-only with `--kernel`; through the bed's private
NetworkManager on the client of `nm_bed`), and the tests read what the kernel did with
connections made by mptcp_peer.py, and what `check` says about it.

Needs root, `ip`, `tc`, `ss` and an MPTCP kernel (and for `nm_bed` NetworkManager, nmcli,
dbus-daemon): skipped otherwise, or failed when MPTCPSTATE_REQUIRE_KERNEL (or
MPTCPSTATE_REQUIRE_NM) is set. Nothing runs in the root network namespace.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from nmsandbox import netns_cookie  # noqa: E402
from wire import WireBed  # noqa: E402

RUN_DIR = pathlib.Path("/run/mptcpstate")


def require_kernel():
    missing = [b for b in ("ip", "tc", "ss", "sysctl") if shutil.which(b) is None]
    why = None
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing'} to make network namespaces"
    elif not os.path.exists("/proc/sys/net/mptcp/enabled"):
        why = "the kernel has no MPTCP"
    if why:
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail(why)
        pytest.skip(why)


def require_nm():
    missing = [b for b in ("nmcli", "NetworkManager", "dbus-daemon", "unshare")
               if shutil.which(b) is None]
    if missing:
        why = f"needs {', '.join(missing)} for a real NetworkManager on the client"
        if os.environ.get("MPTCPSTATE_REQUIRE_NM") or os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail(why)
        pytest.skip(why)


def find_kernel_dump() -> str:
    """$MPTCPSTATE_KERNEL_DUMP, else the newest build of the example in the workspace."""
    path = os.environ.get("MPTCPSTATE_KERNEL_DUMP")
    if path:
        return path
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    builds = [target / p / "examples" / "kernel_dump" for p in ("release", "debug")]
    builds = [b for b in builds if os.access(b, os.X_OK)]
    if not builds:
        pytest.fail("no kernel_dump example: run "
                    "`cargo build --release -p mptcpstate --example kernel_dump`")
    return str(max(builds, key=lambda b: b.stat().st_mtime))


def _root_links():
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    return {l["ifname"]: (l["ifindex"], sorted(l.get("flags", [])),
                          sorted(a["local"] for a in l.get("addr_info", []))) for l in links}


def record_dir(netns: str) -> pathlib.Path:
    """The library's undo-record directory of a named network namespace."""
    return RUN_DIR / str(netns_cookie(netns))


def pending_records(netns: str) -> list[str]:
    d = record_dir(netns)
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir()
                  if p.name.startswith("checkpoint-") and p.name.endswith(".json"))


class Lib:
    """The library's CLI in one side of a WireBed."""

    def __init__(self, cli: str, dump: str, bed: WireBed):
        self.cli = cli
        self.dump = dump
        self.bed = bed

    def run(self, side: str, *args: str, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        run = self.bed.sb.run if side == "client" else self.bed.sb.peer_run
        proc = run([self.cli, *args], input=input, check=False, timeout=60)
        if check:
            assert proc.returncode == 0, (
                f"{side}: mptcpstatectl {' '.join(args)}: exit {proc.returncode}\n"
                f"{proc.stdout}\n{proc.stderr}")
        return proc

    def apply(self, side: str, state: dict | str, *args: str,
              check: bool = True) -> subprocess.CompletedProcess:
        """`mptcpstatectl -v apply --kernel -` of a state (dict: as JSON) in that side."""
        text = state if isinstance(state, str) else json.dumps(state)
        return self.run(side, "-v", "apply", "--kernel", *args, "-", input=text, check=check)

    def apply_nm(self, state: dict | str, *args: str,
                 check: bool = True) -> subprocess.CompletedProcess:
        """`mptcpstatectl -v apply -` (NetworkManager mode) of a state in the client, whose
        NetworkManager is the bed's (nm_bed)."""
        text = state if isinstance(state, str) else json.dumps(state)
        return self.run("client", "-v", "apply", *args, "-", input=text, check=check)

    def check(self, side: str, *names: str, kernel: bool | None = None):
        """`check --json [--kernel] [NAMES]` in that side: (exit status, findings,
        connections). kernel=None: kernel-only on the server, NetworkManager's view too
        on the client."""
        kernel = (side == "server") if kernel is None else kernel
        proc = self.run(side, "check", "--json", *(["--kernel"] if kernel else []), *names,
                        check=False)
        assert proc.returncode in (0, 10), f"check: exit {proc.returncode}: {proc.stderr}"
        report = json.loads(proc.stdout)
        assert proc.returncode == (10 if any(f["severity"] == "error"
                                             for f in report["findings"]) else 0)
        return proc.returncode, report["findings"], report["connections"]

    def check_text(self, side: str, *args: str) -> str:
        """`check` as a person reads it (for the printed figures)."""
        return self.run(side, "check", *args, check=False).stdout

    def show(self, side: str, *names: str, json_out: bool = True):
        """`show --kernel [NAMES]`: parsed JSON, or the YAML text."""
        out = self.run(side, "show", "--kernel", *(["--json"] if json_out else []),
                       *names).stdout
        return json.loads(out) if json_out else out

    def netns(self, side: str) -> str:
        return self.bed.sb.netns if side == "client" else self.bed.sb.peer_netns

    def record_dir(self, side: str) -> pathlib.Path:
        return record_dir(self.netns(side))

    def pending(self, side: str) -> list[str]:
        """The undo records pending in that side's namespace (file names)."""
        return pending_records(self.netns(side))

    def kernel(self, side: str) -> dict:
        """kernel_dump's whole reading of that side (links, addresses, endpoints, limits,
        sysctls)."""
        run = self.bed.sb.run if side == "client" else self.bed.sb.peer_run
        return json.loads(run([self.dump], timeout=30).stdout)


@pytest.fixture(scope="session")
def kernel_dump_exe():
    return find_kernel_dump()


MADE: list[tuple[str, str]] = []   # (sandbox name, netns) of the beds made here


@pytest.fixture(scope="session", autouse=True)
def root_namespace_unchanged():
    """Whatever the tests do, the root namespace ends as it began, and none of the
    namespaces made here is left."""
    if os.geteuid() != 0:
        yield
        return
    before = _root_links()
    yield
    assert _root_links() == before
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    left = {f"{n}-{k}" for n, _ in MADE for k in ("sbx", "peer")} & listed
    assert not left


@pytest.fixture
def bed(cli, kernel_dump_exe):
    """A started WireBed (20 mbit per path) and the library in it, as `(bed, lib)`.
    At the end no undo record may be pending in either namespace; the namespaces'
    record directories go with the bed."""
    require_kernel()
    yield from _bed(cli, kernel_dump_exe, nm=False)


@pytest.fixture
def nm_bed(cli, kernel_dump_exe):
    """`bed`, with a private NetworkManager managing the client's eth1 and eth2 (no
    addresses on them: the test's NetworkManager profiles give them). The server has no
    NetworkManager."""
    require_kernel()
    require_nm()
    yield from _bed(cli, kernel_dump_exe, nm=True)


def _bed(cli, kernel_dump_exe, nm: bool):
    b = WireBed(nm=nm)
    b.start()
    MADE.append((b.sb.name, b.sb.netns))
    dirs = [record_dir(ns) for ns in (b.sb.netns, b.sb.peer_netns)]
    try:
        yield b, Lib(cli, kernel_dump_exe, b)
        left = {ns: pending_records(ns) for ns in (b.sb.netns, b.sb.peer_netns)}
        assert not any(left.values()), f"undo records left pending: {left}"
    finally:
        b.stop()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
