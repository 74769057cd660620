"""The kernel reader (rust/src/netlink) against the real kernel, inside sandbox namespaces.

Drives `rust/examples/kernel_dump` (build it with
`cargo build --release -p mptcpstate --example kernel_dump`) inside network namespaces
made by tests/harness (no NetworkManager); the root namespace is never touched.
"""
import json
import os
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from nmsandbox import Sandbox  # noqa: E402

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


def find_kernel_dump():
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


def _require_root():
    missing = [b for b in ("ip", "setpriv") if shutil.which(b) is None]
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing'} to make network namespaces"
        if os.environ.get("MPTCPSTATE_REQUIRE_KERNEL"):
            pytest.fail(why)
        pytest.skip(why)


class Dumper:
    """Runs kernel_dump in a sandbox namespace."""

    def __init__(self, exe, sb):
        self.exe = exe
        self.sb = sb

    def run(self, *args, user=None):
        """(exit status, parsed stdout or None, parsed stderr error or None)."""
        argv = (NOBODY if user == "nobody" else []) + [self.exe] + [str(a) for a in args]
        proc = self.sb.run(argv, check=False)
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        err = None
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
            err = json.loads(last) if last.startswith("{") else {"raw": proc.stderr}
        return proc.returncode, out, err

    def __call__(self, *args, user=None):
        """stdout of a run that must succeed."""
        rc, out, err = self.run(*args, user=user)
        assert rc == 0, f"kernel_dump {' '.join(map(str, args))}: exit {rc}: {err}"
        return out


@pytest.fixture(scope="session")
def kernel_dump_exe():
    return find_kernel_dump()


@pytest.fixture
def sandbox():
    """A namespace with veths eth1 and eth2 (peers up in a peer namespace), no NM."""
    _require_root()
    with Sandbox(["eth1", "eth2"], nm=False) as sb:
        yield sb


@pytest.fixture
def dump(kernel_dump_exe, sandbox):
    return Dumper(kernel_dump_exe, sandbox)


@pytest.fixture
def dumper(kernel_dump_exe):
    """A Dumper for another sandbox (one from sandbox_factory)."""
    return lambda sb: Dumper(kernel_dump_exe, sb)


@pytest.fixture
def sandbox_factory():
    """More sandboxes, all stopped at the end."""
    _require_root()
    made = []

    def make(veths, **kw):
        sb = Sandbox(veths, nm=False, **kw).start()
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.stop()

