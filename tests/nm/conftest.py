"""Tests against a real NetworkManager in a private sandbox (tests/harness)."""
import os
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from nmsandbox import Sandbox  # noqa: E402,F401  (re-exported to the tests)

MISSING = [b for b in ("ip", "nmcli", "NetworkManager", "dbus-daemon", "unshare") if shutil.which(b) is None]


@pytest.fixture
def sandbox():
    """A sandbox with NetworkManager managing a veth named eth1; always torn down."""
    if os.geteuid() != 0 or MISSING:
        why = f"needs root and {', '.join(MISSING) or 'nothing'} for a real NetworkManager"
        # CI must not pass by skipping the proof that matters.
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail(why)
        pytest.skip(why)
    with Sandbox(["eth1"]) as sb:
        yield sb
