"""The exception classes: one per error kind, with the builtin bases of SPEC section 6,
and the native mapping from every core kind to its class."""

import builtins
import logging
import pickle

import pytest

import mptcpstate
from mptcpstate import _native, errors

# kind -> (class name, code, builtin base that also catches it)
EXPECTED = {
    "InvalidArgument": ("InvalidArgumentError", 1, ValueError),
    "NotSupported": ("NotSupportedError", 2, None),
    "PermissionDenied": ("PermissionDeniedError", 3, PermissionError),
    "NetworkManager": ("NetworkManagerError", 4, None),
    "Kernel": ("KernelError", 5, OSError),
    "Verification": ("VerificationError", 6, None),
    "Timeout": ("TimeoutError", 7, builtins.TimeoutError),
    "Busy": ("BusyError", 8, None),
    "Bug": ("BugError", 9, None),
}


def test_native_table_matches_the_contract():
    table = {kind: (cls, code) for kind, code, cls in _native.ERROR_KINDS}
    assert table == {kind: (cls, code) for kind, (cls, code, _) in EXPECTED.items()}
    codes = [code for _, code, _ in _native.ERROR_KINDS]
    assert codes == sorted(codes) == list(range(1, len(codes) + 1))


@pytest.mark.parametrize("kind", EXPECTED)
def test_class_of_each_kind(kind):
    name, code, builtin = EXPECTED[kind]
    cls = getattr(mptcpstate, name)
    assert cls is getattr(errors, name)
    assert issubclass(cls, mptcpstate.MptcpStateError)
    assert cls.kind == kind
    assert cls.code == code
    if builtin is not None:
        assert issubclass(cls, builtin)


@pytest.mark.parametrize("kind", EXPECTED)
def test_native_raises_the_class_of_each_kind(kind):
    name, code, builtin = EXPECTED[kind]
    with pytest.raises(mptcpstate.MptcpStateError) as info:
        _native._raise_kind(kind, f"something about {kind}")
    err = info.value
    assert type(err) is getattr(mptcpstate, name)
    assert err.kind == kind
    assert err.code == code
    assert str(err) == f"something about {kind}"
    assert err.args == (f"something about {kind}",)
    if builtin is not None:
        assert isinstance(err, builtin)


def test_only_invalid_argument_is_a_value_error():
    for kind, (name, _, _) in EXPECTED.items():
        cls = getattr(mptcpstate, name)
        assert issubclass(cls, ValueError) == (kind == "InvalidArgument")


def test_timeout_error_is_the_builtin_one_too():
    assert mptcpstate.TimeoutError is not builtins.TimeoutError
    try:
        _native._raise_kind("Timeout", "checkpoint expired")
    except builtins.TimeoutError as err:
        assert err.kind == "Timeout"
    else:
        pytest.fail("TimeoutError was not raised")


def test_os_error_subclasses_keep_the_message():
    for kind in ("PermissionDenied", "Kernel", "Timeout"):
        with pytest.raises(OSError) as info:
            _native._raise_kind(kind, "netlink: EPERM")
        assert str(info.value) == "netlink: EPERM"
        assert info.value.errno is None


def test_errors_pickle():
    err = mptcpstate.InvalidArgumentError("interfaces[0].name: empty")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is mptcpstate.InvalidArgumentError
    assert str(again) == str(err)
    assert again.kind == "InvalidArgument"


def test_unknown_kind_in_test_hook():
    with pytest.raises(mptcpstate.InvalidArgumentError, match="no error kind"):
        _native._raise_kind("Nope", "x")


def test_errors_module_lists_every_class():
    assert set(errors.__all__) == {"MptcpStateError"} | {name for name, _, _ in EXPECTED.values()}


def test_a_panic_becomes_bug_error_and_the_log_is_kept(caplog):
    caplog.set_level(logging.WARNING, logger="mptcpstate")
    with pytest.raises(mptcpstate.BugError) as info:
        _native._panic_in_call("boom 42")
    assert "panic" in str(info.value)
    assert "boom 42" in str(info.value)
    assert [r.getMessage() for r in caplog.records if r.name == "mptcpstate"] == [
        "before the panic"
    ]
