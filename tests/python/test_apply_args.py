"""apply, commit and rollback: arguments refused before the library touches the system
(no NetworkManager needed), and the way apply waits (its own thread, GIL released,
Ctrl-C honoured). The calls that reach NetworkManager are tested in tests/nm.

Every call here runs in a sandbox network namespace (tests/harness, no NetworkManager),
with no system bus reachable: the test process's main thread enters it for the module
(the library acts on the calling thread's namespace). A check reordered after a write
would write there, never to the machine's own network, and the module ends by reading
the sandbox back: nothing was written (links, addresses, endpoints, limits, sysctls, no
undo record).
"""

import ctypes
import inspect
import logging
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

import mptcpstate
from mptcpstate import _native
from pyshared import REPO, SEED_DICT, SEED_YAML, link_local_state

sys.path.insert(0, str(REPO / "tests" / "harness"))
from nmsandbox import Sandbox, netns_cookie  # noqa: E402

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


def _sandbox_state(sb) -> dict:
    return {
        "addresses": sb.ip("addr", "show", json=True),
        "endpoints": sb.ip("mptcp", "endpoint", "show"),
        "limits": sb.mptcp_limits(),
        "sysctls": sb.run(["sysctl", "net.mptcp"]).stdout,
    }


@pytest.fixture(scope="module", autouse=True)
def in_sandbox():
    """The main thread in a sandbox namespace (eth1 with the seed's address) for the whole
    module; no system bus; the sandbox read back at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to enter a sandbox network namespace")
    mp = pytest.MonkeyPatch()
    with Sandbox(["eth1"], nm=False) as sb:
        sb.ip("addr", "add", "192.0.2.2/24", "dev", "eth1")
        before = _sandbox_state(sb)
        records = pathlib.Path("/run/mptcpstate") / str(netns_cookie(sb.netns))
        home = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
        home_fd = os.open(home, os.O_RDONLY)
        home_link = os.readlink(home)
        mp.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={sb.dir}/no-such-bus")
        try:
            _setns(f"/run/netns/{sb.netns}")
            assert os.readlink("/proc/thread-self/ns/net") != home_link
            yield sb
        finally:
            if _libc.setns(home_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")
            os.close(home_fd)
            mp.undo()
        assert _sandbox_state(sb) == before, "a refused call wrote to the namespace"
        left = sorted(p.name for p in records.iterdir()) if records.is_dir() else []
        assert not [n for n in left if n.startswith("checkpoint-")], left

BAD_STATE = "interfaces:\n- name: eth1\n  mptcp:\n    adress-flags: []\n"


def test_signatures():
    sig = inspect.signature(mptcpstate.apply)
    assert list(sig.parameters) == [
        "state", "kernel_only", "verify_change", "commit", "rollback_timeout",
        "save_to_disk", "verify_timeout", "dry_run", "with_plan",
    ]
    defaults = {n: p.default for n, p in sig.parameters.items() if n != "state"}
    assert defaults == {
        "kernel_only": False, "verify_change": True, "commit": True,
        "rollback_timeout": 60, "save_to_disk": True, "verify_timeout": 5.0,
        "dry_run": False, "with_plan": False,
    }
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY
               for n, p in sig.parameters.items() if n != "state")
    for fn in (mptcpstate.commit, mptcpstate.rollback):
        params = inspect.signature(fn).parameters
        assert list(params) == ["checkpoint"]
        assert params["checkpoint"].default is None
        assert fn.__doc__
    assert mptcpstate.apply.__doc__


@pytest.mark.parametrize("state", [BAD_STATE, BAD_STATE.encode(), {"interfaces": "eth1"}, ""])
def test_bad_state_is_invalid_argument(state):
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.apply(state)
    assert isinstance(info.value, ValueError)
    assert info.value.kind == "InvalidArgument"


def test_bad_state_message_names_the_fault():
    with pytest.raises(ValueError, match=r"interfaces\[0\]\.mptcp.*adress-flags"):
        mptcpstate.apply(BAD_STATE, commit=False)


def test_non_utf8_bytes():
    with pytest.raises(mptcpstate.InvalidArgumentError, match="UTF-8"):
        mptcpstate.apply(b"interfaces:\n- name: eth\xff\n")


@pytest.mark.parametrize("state", [None, 42, ["interfaces"], {"interfaces": [{1, 2}]}])
def test_state_of_the_wrong_type(state):
    with pytest.raises(mptcpstate.InvalidArgumentError):
        mptcpstate.apply(state)


@pytest.mark.parametrize("state", [SEED_YAML, SEED_DICT])
def test_no_commit_with_rollback_timeout_0(state):
    """NetworkManager would never roll the checkpoint back: refused before anything is
    read or written."""
    with pytest.raises(mptcpstate.InvalidArgumentError) as info:
        mptcpstate.apply(state, commit=False, rollback_timeout=0)
    assert isinstance(info.value, ValueError)
    assert "rollback" in str(info.value)


@pytest.mark.parametrize("timeout", [-1, 2**32, -(2**40)])
def test_rollback_timeout_out_of_range(timeout):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="rollback_timeout"):
        mptcpstate.apply(SEED_DICT, rollback_timeout=timeout)


@pytest.mark.parametrize("timeout", [-0.5, float("nan"), float("inf")])
def test_verify_timeout_not_a_duration(timeout):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="verify_timeout"):
        mptcpstate.apply(SEED_DICT, verify_timeout=timeout)


def test_state_checked_before_the_options():
    """A bad state is reported as such, whatever the options say."""
    with pytest.raises(mptcpstate.InvalidArgumentError, match="adress-flags"):
        mptcpstate.apply(BAD_STATE, commit=False, rollback_timeout=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_only": "yes"},
        {"verify_change": 1},
        {"commit": None},
        {"save_to_disk": "no"},
        {"rollback_timeout": "60"},
        {"rollback_timeout": 1.5},
        {"rollback_timeout": None},
        {"verify_timeout": "5"},
        {"verify_timeout": None},
        {"no_such_option": True},
    ],
)
def test_options_of_the_wrong_type(kwargs):
    with pytest.raises(TypeError):
        mptcpstate.apply(SEED_DICT, **kwargs)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        mptcpstate.apply(SEED_DICT, False)  # type: ignore[misc]


@pytest.mark.parametrize("fn", [mptcpstate.commit, mptcpstate.rollback])
@pytest.mark.parametrize("checkpoint", [1, b"/org/freedesktop/NetworkManager/Checkpoint/1",
                                        ["/a"]])
def test_checkpoint_of_the_wrong_type(fn, checkpoint):
    with pytest.raises(TypeError):
        fn(checkpoint)


@pytest.mark.parametrize("fn", [mptcpstate.commit, mptcpstate.rollback])
def test_checkpoint_not_unicode(fn):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="checkpoint"):
        fn("/org/freedesktop/NetworkManager/Checkpoint/\udcff")
    with pytest.raises(TypeError):
        fn("/a", "/b")  # type: ignore[call-arg]


def test_log_records_of_a_refused_apply_reach_logging(caplog):
    """The warning of the parse (flags on a link-local address) is logged even though the
    apply is then refused."""
    caplog.set_level(logging.DEBUG, logger="mptcpstate")
    with pytest.raises(mptcpstate.InvalidArgumentError):
        mptcpstate.apply(link_local_state("eth7"), commit=False, rollback_timeout=0)
    warnings = [r for r in caplog.records if r.name == "mptcpstate" and r.levelno == logging.WARNING]
    assert any("fe80::1" in r.getMessage() for r in warnings), caplog.text
    assert all(r.target.startswith("mptcpstate") for r in warnings)


# How apply waits, through a probe that runs exactly as apply does (its own thread,
# waited for in slices with the GIL released, Ctrl-C honoured) without touching the
# system.


def test_the_call_thread_is_in_the_callers_network_namespace(in_sandbox):
    here = os.readlink("/proc/thread-self/ns/net")
    assert _native._interruptible_probe(0) == here
    # ... which is the sandbox's, not the machine's own.
    assert here == subprocess.run(["ip", "netns", "exec", in_sandbox.netns, "readlink",
                                   "/proc/self/ns/net"], capture_output=True, text=True,
                                  check=True).stdout.strip()

    # A thread of its own namespace: the call made from it runs there too.
    libc = ctypes.CDLL(None, use_errno=True)
    result = {}

    def in_new_netns():
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET, this thread only
            result["skip"] = os.strerror(ctypes.get_errno())
            return
        result["thread"] = os.readlink("/proc/thread-self/ns/net")
        result["call"] = _native._interruptible_probe(0)

    t = threading.Thread(target=in_new_netns)
    t.start()
    t.join()
    if "skip" in result:
        pytest.skip(f"unshare(CLONE_NEWNET): {result['skip']}")
    assert result["thread"] != os.readlink("/proc/thread-self/ns/net")
    assert result["call"] == result["thread"]


def test_the_gil_is_released_while_waiting():
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        start = time.monotonic()
        _native._interruptible_probe(0.5)
        end = time.monotonic()
    finally:
        stop.set()
        t.join()
    assert len([x for x in ticks if start < x < end]) >= 10


def test_ctrl_c_cancels_the_call_then_raises_keyboard_interrupt(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            _native._interruptible_probe(30)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5
    # The call saw the flag, stopped, and its records were still logged.
    assert any(r.getMessage() == "cancelled" for r in caplog.records), caplog.text
    assert isinstance(info.value.__context__, mptcpstate.TimeoutError)
    # The library is usable afterwards.
    assert _native._interruptible_probe(0).startswith("net:[")
