"""The native module of mptcpstate. Use it through the package ``mptcpstate``."""

from collections.abc import Mapping
from typing import Any, Final, NoReturn

__all__ = [
    "format",
    "generate_configurations",
    "show",
    "check",
    "apply",
    "commit",
    "rollback",
    "_raise_kind",
    "_panic_in_call",
    "_interruptible_probe",
    "__version__",
    "ERROR_KINDS",
]

__version__: Final[str]

ERROR_KINDS: Final[tuple[tuple[str, int, str], ...]]
"""``(kind, code, class name in mptcpstate.errors)`` for every error kind, by code."""

def format(state: Mapping[str, Any] | str | bytes, *, yaml: bool = True) -> str:
    """Parses and validates ``state`` and returns it in canonical form.

    ``state`` is a dict or another mapping (serialized to JSON first), or JSON or YAML text as str or
    UTF-8 bytes. The output is YAML (starting with ``---``) by default, pretty-printed
    JSON with ``yaml=False``.

    Raises ``InvalidArgumentError`` for bad input, with the path and position of the
    fault in the message.
    """

def generate_configurations(state: Mapping[str, Any] | str | bytes) -> dict[str, list[list[str]]]:
    """Parses and validates ``state`` and returns the configuration files it stands
    for, without touching the system.

    The result is ``{"NetworkManager": [[file_name, keyfile_text], ...]}``: keyfiles
    NetworkManager loads as they are, the same bytes for the same input.

    Raises ``InvalidArgumentError`` for bad input.
    """

def show(*, kernel_only: bool = False) -> str:
    """The current state as JSON text (the package's ``show`` parses it)."""

def apply(
    state: Mapping[str, Any] | str | bytes,
    *,
    kernel_only: bool = False,
    verify_change: bool = True,
    commit: bool = True,
    rollback_timeout: int = 60,
    save_to_disk: bool = True,
    verify_timeout: float = 5.0,
    dry_run: bool = False,
    with_plan: bool = False,
) -> Any:
    """Applies ``state`` to this process's network namespace, transactionally.

    Nothing is touched unless all of ``state`` is valid; only the interfaces that
    differ are changed, under a NetworkManager checkpoint; the result is verified
    against the kernel (unless ``verify_change=False``, for up to ``verify_timeout``
    seconds); then the checkpoint is committed, or on any failure rolled back and the
    error raised.

    With ``commit=False`` the checkpoint stays and its path is returned (None when
    nothing had to change): ``commit()`` or ``rollback()`` it, else NetworkManager rolls
    it back by itself after ``rollback_timeout`` seconds (0, never, is refused then).
    Otherwise returns None. ``save_to_disk=False`` keeps the profiles in
    NetworkManager's memory only; ``kernel_only=True`` works over netlink without
    NetworkManager.

    Ctrl-C stops the apply: it rolls back what it did, then ``KeyboardInterrupt`` is
    raised.

    Raises ``InvalidArgumentError`` for bad input or options (nothing was touched),
    ``VerificationError`` when the kernel did not reach the state (rolled back),
    ``BusyError``, ``NetworkManagerError``, ``NotSupportedError``,
    ``PermissionDeniedError``, ``KernelError``, ``TimeoutError``.
    """

def check(*, kernel_only: bool = False) -> str:
    """The findings of ``mptcpstate.check()`` as a JSON array (most severe first)."""

def commit(checkpoint: str | None = None) -> str | None:
    """Commits what an ``apply(..., commit=False)`` left pending: the applied state stays.
    ``checkpoint`` is the path ``apply`` returned; None for the last one this process left
    open, else the newest pending in this network namespace, else NetworkManager's newest.
    Returns the checkpoint committed, or None when nothing was pending."""

def rollback(checkpoint: str | None = None) -> str | None:
    """Rolls back what an ``apply(..., commit=False)`` left pending: everything it changed
    is put back. ``checkpoint`` as for ``commit()``. Returns the checkpoint rolled back,
    or None when nothing was pending."""

def _raise_kind(kind: str, message: str) -> NoReturn:
    """Raises the exception a library error of ``kind`` becomes (for tests)."""

def _panic_in_call(message: str) -> NoReturn:
    """Logs a warning, then panics with ``message`` inside a call: raises ``BugError``
    (for tests)."""

def _interruptible_probe(wait: float) -> str:
    """Waits up to ``wait`` seconds on a call thread the way ``apply`` does, Ctrl-C
    honoured; returns that thread's network namespace (for tests)."""
