"""The native module of mptcpstate. Use it through the package ``mptcpstate``."""

from typing import Any, Final, NoReturn

__all__ = [
    "format",
    "generate_configurations",
    "show",
    "_raise_kind",
    "_panic_in_call",
    "__version__",
    "ERROR_KINDS",
]

__version__: Final[str]

ERROR_KINDS: Final[tuple[tuple[str, int, str], ...]]
"""``(kind, code, class name in mptcpstate.errors)`` for every error kind, by code."""

def format(state: dict[str, Any] | str | bytes, *, yaml: bool = True) -> str:
    """Parses and validates ``state`` and returns it in canonical form.

    ``state`` is a dict (serialized to JSON first), or JSON or YAML text as str or
    UTF-8 bytes. The output is YAML (starting with ``---``) by default, pretty-printed
    JSON with ``yaml=False``.

    Raises ``InvalidArgumentError`` for bad input, with the path and position of the
    fault in the message.
    """

def generate_configurations(state: dict[str, Any] | str | bytes) -> dict[str, list[list[str]]]:
    """Parses and validates ``state`` and returns the configuration files it stands
    for, without touching the system.

    The result is ``{"NetworkManager": [[file_name, keyfile_text], ...]}``: keyfiles
    NetworkManager loads as they are, the same bytes for the same input.

    Raises ``InvalidArgumentError`` for bad input.
    """

def show(*, kernel_only: bool = False) -> str:
    """The current state as JSON text (the package's ``show`` parses it)."""

def _raise_kind(kind: str, message: str) -> NoReturn:
    """Raises the exception a library error of ``kind`` becomes (for tests)."""

def _panic_in_call(message: str) -> NoReturn:
    """Logs a warning, then panics with ``message`` inside a call: raises ``BugError``
    (for tests)."""
