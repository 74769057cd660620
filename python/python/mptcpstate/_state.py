"""How a state given as a mapping is written as JSON for the library (used by the native
module; not an API)."""

from collections.abc import Mapping
from typing import Any


def json_default(obj: Any) -> dict[Any, Any]:
    """``json.dumps``'s ``default``: a ``Mapping`` that is not a dict (at any depth) is
    taken as the dict of its ``keys()`` and items; anything else cannot be a state's
    value."""
    if isinstance(obj, Mapping):
        return {key: obj[key] for key in obj.keys()}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
