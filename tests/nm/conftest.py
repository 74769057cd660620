"""Tests against a real NetworkManager in a private sandbox (tests/harness)."""
import os
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from nmsandbox import Sandbox  # noqa: E402

MISSING = [b for b in ("ip", "nmcli", "NetworkManager", "dbus-daemon", "unshare") if shutil.which(b) is None]


@pytest.fixture(scope="session")
def require_nm():
    """Skips (or, in CI, fails) where a real NetworkManager sandbox cannot run."""
    if os.geteuid() != 0 or MISSING:
        why = f"needs root and {', '.join(MISSING) or 'nothing'} for a real NetworkManager"
        # CI must not pass by skipping the proof that matters.
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture
def sandbox(require_nm):
    """A sandbox with NetworkManager managing a veth named eth1; always torn down."""
    with Sandbox(["eth1"]) as sb:
        yield sb
