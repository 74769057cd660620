"""Soak: one Python process (`import mptcpstate`) doing many NetworkManager apply/rollback
cycles and `show` calls against a private NetworkManager; its memory, file descriptors
and D-Bus footprint must stay flat, and nothing may stay pending.

MPTCPSTATE_SOAK=1: the full run, 1000 cycles and 10,000 `show` calls, RSS within 5 %.
Otherwise (CI) a short run: 30 cycles and 300 calls, RSS within 10 % (see RSS_TOLERANCE).
The process is tests/soak/soak_driver.py, run in the sandbox's namespace on its bus.
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

DRIVER = pathlib.Path(__file__).with_name("soak_driver.py")
FULL = os.environ.get("MPTCPSTATE_SOAK") == "1"
CYCLES, SHOWS = (1000, 10_000) if FULL else (30, 300)
# The full run: what the issue asks. The short run compares two points only 330 calls
# apart, where a one-off step of the allocator (a new malloc arena for a runtime thread,
# a grown Python dict) weighs more than over 11,000 calls; 10 % still catches a leak of
# ~6 KB per call on the ~20 MB process, which is what a leaked connection, socket or
# per-call buffer costs.
RSS_TOLERANCE = 0.05 if FULL else 0.10
TIMEOUT = 3600 if FULL else 300


@pytest.fixture(scope="module")
def require_nm():
    missing = [b for b in ("ip", "nmcli", "NetworkManager", "dbus-daemon", "busctl")
               if shutil.which(b) is None]
    if os.geteuid() != 0 or missing:
        why = f"needs root and {', '.join(missing) or 'nothing'} for a real NetworkManager"
        if os.environ.get("MPTCPSTATE_REQUIRE_NM"):
            pytest.fail(why)
        pytest.skip(why)


def test_soak(require_nm):
    with Sandbox(["eth1"]) as sb:
        r = sb.run([sys.executable, str(DRIVER), "--cycles", str(CYCLES),
                    "--shows", str(SHOWS)], timeout=TIMEOUT)
        out = json.loads(r.stdout.strip().splitlines()[-1])
    samples = out["samples"]
    first, last = samples[0], samples[-1]
    summary = (f"{CYCLES} cycles ({out['cycle_ms']} ms each), {SHOWS} shows "
               f"({out['show_ms']} ms each) in {last['seconds']} s; RSS {first['rss_kb']} -> "
               f"{last['rss_kb']} kB; fds {first['fds']} -> {last['fds']} (back within "
               f"{max(x['fds_settle_ms'] for x in samples)} ms after a call); bus clients "
               f"{first['bus_clients']} -> {last['bus_clients']}; threads {out['threads']}")
    print(summary)
    print(json.dumps(samples))
    assert (last["cycles"], last["shows"]) == (CYCLES, SHOWS)
    growth = (last["rss_kb"] - first["rss_kb"]) / first["rss_kb"]
    assert growth <= RSS_TOLERANCE, f"RSS grew {growth:.1%}: {summary}"
    # Counted once back at the baseline (polled up to 2 s): zbus closes a dropped
    # connection's socket on the runtime's thread a few ms after the call returned.
    assert [s["fds"] for s in samples] == [first["fds"]] * len(samples), summary
    assert out["fds_new"] == [], out["fds_new"]
    # Between calls the library holds no D-Bus connection, hence no match rule.
    assert all(s["bus_connections"] == first["bus_connections"] for s in samples), summary
    assert all(s["bus_clients"] == first["bus_clients"] for s in samples), summary
    # A VersionIdMismatch from NetworkManager's Reapply is retried by the driver; it must
    # stay rare (a race with NetworkManager, not a leak).
    print(f"retried after VersionIdMismatch: {len(out['retried'])}")
    assert len(out["retried"]) <= max(1, CYCLES // 100), out["retried"]
    assert out["checkpoints"] == [], out["checkpoints"]
    assert out["records"] == [], out["records"]
