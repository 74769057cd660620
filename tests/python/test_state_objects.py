"""A state given as a Python object that cannot be one is the caller's input error:
`InvalidArgumentError` with the cause chained, never the foreign exception
(`RecursionError`, `OverflowError`, what a mapping's own methods raise). Any Mapping is
a state; `rollback_timeout` out of range is refused before the state or the system is
looked at.

The calls here are format and generate_configurations (they read nothing of the
system); the apply ones run in a sandbox namespace (no NetworkManager), in a child
Python, with the kernel's state there read before and after."""

import json
import subprocess
import sys
import textwrap
import types
from collections.abc import Mapping

import pytest

import mptcpstate
from pyshared import REPO, SEED_DICT

CALLS = {
    "format": mptcpstate.format,
    "generate_configurations": mptcpstate.generate_configurations,
}


def deep(levels):
    d = top = {}
    for _ in range(levels):
        d["a"] = {}
        d = d["a"]
    return top


class Boom(Exception):
    pass


class ItemsRaise(dict):
    def items(self):
        raise Boom("items() failed")


class Raising(Mapping):
    """A Mapping whose `method` raises; the others work."""

    def __init__(self, data, method):
        self._data, self._method = data, method

    def _maybe(self, name):
        if name == self._method:
            raise Boom(f"{name} failed")

    def keys(self):
        self._maybe("keys")
        return self._data.keys()

    def __getitem__(self, key):
        self._maybe("__getitem__")
        return self._data[key]

    def __iter__(self):
        self._maybe("__iter__")
        return iter(self._data)

    def __len__(self):
        return len(self._data)


def iface(mapping_type):
    """The seed whose interface entry is `mapping_type(...)`: a mapping inside a list."""
    entry = SEED_DICT["interfaces"][0]
    return {"interfaces": [mapping_type(entry)]}


@pytest.mark.parametrize("call", CALLS)
def test_too_deep_a_dict(call):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="nested too deeply") as info:
        CALLS[call](deep(10_000))
    assert isinstance(info.value.__cause__, RecursionError)
    # Deep, but within Python's limit: the library's own refusal.
    with pytest.raises(mptcpstate.InvalidArgumentError, match="unknown field `a`"):
        CALLS[call]({"interfaces": [deep(500)]})


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "state",
    [
        pytest.param(ItemsRaise(SEED_DICT), id="dict-items"),
        pytest.param(iface(ItemsRaise), id="nested-dict-items"),
        pytest.param(Raising(SEED_DICT, "keys"), id="mapping-keys"),
        pytest.param(Raising(SEED_DICT, "__getitem__"), id="mapping-getitem"),
        pytest.param(iface(lambda d: Raising(d, "keys")), id="nested-mapping-keys"),
        pytest.param(iface(lambda d: Raising(d, "__getitem__")), id="nested-mapping-getitem"),
    ],
)
def test_a_mapping_whose_methods_raise(call, state):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="the mapping raised Boom") as info:
        CALLS[call](state)
    assert isinstance(info.value.__cause__, Boom)
    assert "failed" in str(info.value)


def test_ctrl_c_in_a_mapping_is_not_an_input_error():
    class Interrupted(dict):
        def items(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mptcpstate.format(Interrupted(SEED_DICT))


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(types.MappingProxyType(SEED_DICT), id="mappingproxy"),
        pytest.param(Raising(SEED_DICT, None), id="mapping"),
        pytest.param(iface(lambda d: Raising(d, None)), id="nested-mapping"),
        pytest.param(iface(types.MappingProxyType), id="nested-mappingproxy"),
    ],
)
def test_any_mapping_is_a_state(state):
    assert mptcpstate.format(state) == mptcpstate.format(SEED_DICT)
    assert mptcpstate.generate_configurations(state) == mptcpstate.generate_configurations(SEED_DICT)


@pytest.mark.parametrize("state", [{"interfaces": [{"name": "eth1", "x": {1, 2}}]},
                                   {"interfaces": [{"name": "eth1", "ipv4": {"x": float("nan")}}]}])
def test_what_json_cannot_hold(state):
    with pytest.raises(mptcpstate.InvalidArgumentError, match="cannot be written as JSON"):
        mptcpstate.format(state)


# --- rollback_timeout, in a sandbox ------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from collections.abc import Mapping
    import mptcpstate

    class Watched(Mapping):
        # Counts every look at the state.
        looks = 0
        def __init__(self, data): self._data = data
        def keys(self): Watched.looks += 1; return self._data.keys()
        def __getitem__(self, k): Watched.looks += 1; return self._data[k]
        def __iter__(self): Watched.looks += 1; return iter(self._data)
        def __len__(self): Watched.looks += 1; return len(self._data)

    seed = json.loads(sys.argv[1])
    results = []
    for timeout in (2**70, -1, -(2**70), 10**5000, 2**32):
        Watched.looks = 0
        try:
            mptcpstate.apply(Watched(seed), kernel_only=True, rollback_timeout=timeout)
            results.append(["returned", "", 0])
        except BaseException as e:
            results.append([type(e).__name__, str(e)[:200], Watched.looks])
    print(json.dumps(results))
    """
)


def kernel_snapshot(sb):
    return [sb.run(cmd).stdout for cmd in (
        ["ip", "-j", "addr", "show"], ["ip", "mptcp", "endpoint", "show"],
        ["ip", "mptcp", "limits", "show"], ["sysctl", "net.mptcp"])]


def test_rollback_timeout_out_of_range_is_refused_before_anything_is_read():
    sys.path.insert(0, str(REPO / "tests" / "harness"))
    from nmsandbox import Sandbox

    with Sandbox(["eth1"], nm=False) as sb:
        # The kernel's own link-local address comes, then leaves duplicate address
        # detection, about a second after the link came up: a change not of the call's.
        sb.wait_for(lambda: "fe80:" in sb.ip("-6", "addr", "show", "dev", "eth1")
                    and not sb.ip("-6", "addr", "show", "tentative").strip(),
                    what="eth1's link-local address past duplicate address detection")
        before = kernel_snapshot(sb)
        out = sb.run([sys.executable, "-c", CHILD, json.dumps(SEED_DICT)], timeout=60)
        results = json.loads(out.stdout)
        assert kernel_snapshot(sb) == before
    for (cls, msg, looks), shown in zip(results, ["1180591620717411303424", "-1",
                                                  "-1180591620717411303424",
                                                  "a number that large", "4294967296"]):
        assert cls == "InvalidArgumentError", (cls, msg)
        assert msg == f"rollback_timeout: {shown} seconds is out of range 0..=4294967295", msg
        assert looks == 0, f"the state was looked at {looks} times before the refusal"
