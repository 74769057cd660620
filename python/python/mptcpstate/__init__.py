"""mptcpstate: declarative MultiPath TCP configuration for Linux.

The desired state is nmstate's schema (a dict, or JSON or YAML as str or bytes)::

    import mptcpstate

    state = {"interfaces": [{"name": "eth1",
                             "mptcp": {"address-flags": ["subflow", "signal"]}}]}
    print(mptcpstate.format(state))
    files = mptcpstate.generate_configurations(state)["NetworkManager"]
    mptcpstate.apply(state)  # through NetworkManager: verified, then committed

``apply(state, commit=False)`` leaves the checkpoint open and returns its path, for
``commit(path)`` or ``rollback(path)``. ``apply(state, dry_run=True)`` writes nothing
and returns the plan, ``{"interfaces": [{"name", "actions", "before", "after"}],
"host": [{"key", "before", "after"}]}`` (empty lists: nothing would change);
``apply(state, with_plan=True)`` returns ``{"checkpoint": ..., "plan": ...}``, what it did.

Errors are ``MptcpStateError`` subclasses (see ``mptcpstate.errors``). Log records go to
the ``logging`` logger ``"mptcpstate"`` at their levels (the library's trace level is
``TRACE`` = 5, below ``DEBUG``); each record carries ``target``, the part of the
library that wrote it, and ``core_time``, when it was written. The calls release the
GIL while they work; ``apply`` stops on Ctrl-C, rolling back what it did.
"""

import json as _json
import logging as _logging
from typing import Any as _Any

from ._native import __version__, apply, commit, format, generate_configurations, rollback
from ._native import check as _check
from ._native import show as _show
from .errors import (
    BugError,
    BusyError,
    InvalidArgumentError,
    KernelError,
    MptcpStateError,
    NetworkManagerError,
    NotSupportedError,
    PermissionDeniedError,
    TimeoutError,
    VerificationError,
)

__all__ = [
    "__version__",
    "format",
    "generate_configurations",
    "show",
    "check",
    "apply",
    "commit",
    "rollback",
    "MptcpStateError",
    "InvalidArgumentError",
    "NotSupportedError",
    "PermissionDeniedError",
    "NetworkManagerError",
    "KernelError",
    "VerificationError",
    "TimeoutError",
    "BusyError",
    "BugError",
]

# The library's trace records are logged at 5 (DEBUG - 5). Name the level, unless the
# application already has.
if _logging.getLevelName(5) == "Level 5":
    _logging.addLevelName(5, "TRACE")


def show(*, kernel_only: bool = False) -> dict[str, _Any]:
    """The current state of this process's network namespace, as a dict in the schema's
    form: every interface (sorted by name) with its addresses and their MPTCP endpoint
    flags, and the host-wide ``mptcp`` knobs. Read from the kernel over netlink and, unless
    ``kernel_only``, from NetworkManager over D-Bus. The result is valid input: applying it
    unchanged changes nothing."""
    return _json.loads(_show(kernel_only=kernel_only))


def check(*, kernel_only: bool = False) -> list[dict[str, _Any]]:
    """Why MPTCP would stay on one path in this process's network namespace: a list of
    findings, most severe first, each ``{"code", "severity", "interface"?, "address"?,
    "message", "fix": {"state"?, "command"?}}`` (``severity`` is ``"error"``,
    ``"warning"`` or ``"info"``; ``fix["state"]`` is a state to ``apply``). ``[]`` when
    nothing keeps MPTCP from using its paths. Reads the kernel and, unless
    ``kernel_only``, what NetworkManager applied (a NetworkManager that does not answer
    only leaves its findings out)."""
    result: list[dict[str, _Any]] = _json.loads(_check(kernel_only=kernel_only))
    return result
