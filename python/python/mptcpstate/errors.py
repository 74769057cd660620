"""The exceptions of mptcpstate: one class per error kind, under MptcpStateError.

Each kind is the one of the library's error table, shared with the C library and the
CLI: ``kind`` is its stable name (the C ``err_kind``) and ``code`` its stable number
(the C return value and the CLI's exit status). The message says what to fix.

Where a builtin exception means the same thing, the class also derives from it, so
code that knows nothing of mptcpstate still catches it sensibly: bad input is a
``ValueError``, a refused permission a ``PermissionError``, a kernel failure an
``OSError``, a timeout the builtin ``TimeoutError``.

These classes are the only definition: the native module raises them by name.
"""

import builtins
from typing import ClassVar, Optional

__all__ = [
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


class MptcpStateError(Exception):
    """Base of every error mptcpstate raises.

    ``kind`` (str) names the error kind and ``code`` (int) is its stable number; both
    are set by each subclass. ``str(error)`` is the message.

    ``rollback`` says what became of a failed apply's writes: ``None`` when it failed
    before writing anything, ``"rolled-back"`` when every write was undone, and
    ``"rollback-failed"`` when undoing failed too (the message says what did not come
    back).
    """

    kind: ClassVar[str]
    code: ClassVar[int]
    rollback: Optional[str] = None


class InvalidArgumentError(MptcpStateError, ValueError):
    """Bad input: a rule of the schema is broken (the message gives the path)."""

    kind = "InvalidArgument"
    code = 1


class NotSupportedError(MptcpStateError):
    """A missing feature: NetworkManager too old, MPTCP off in the kernel, an
    unsupported interface type."""

    kind = "NotSupported"
    code = 2


class PermissionDeniedError(MptcpStateError, PermissionError):
    """Not allowed: netlink refused (EPERM) or NetworkManager did not authorize."""

    kind = "PermissionDenied"
    code = 3


class NetworkManagerError(MptcpStateError):
    """NetworkManager is not running or refused a call (its error name is in the
    message)."""

    kind = "NetworkManager"
    code = 4


class KernelError(MptcpStateError, OSError):
    """A netlink request or a sysctl failed."""

    kind = "Kernel"
    code = 5


class VerificationError(MptcpStateError):
    """The system did not reach the desired state in time; the change was rolled
    back."""

    kind = "Verification"
    code = 6


class TimeoutError(MptcpStateError, builtins.TimeoutError):
    """An operation or a checkpoint ran out of time. Also the builtin
    ``TimeoutError``."""

    kind = "Timeout"
    code = 7


class BusyError(MptcpStateError):
    """Another checkpoint holds a device this change needs."""

    kind = "Busy"
    code = 8


class BugError(MptcpStateError):
    """An internal error of the library, a panic included: please report it."""

    kind = "Bug"
    code = 9
