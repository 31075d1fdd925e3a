"""The parent's status as a core may read it back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The range of an integer an API server stores (and a JSON encoder writes): int64.
_LOWEST, _BEYOND = -(2**63), 2**63


def previous_status(parent: Mapping[str, Any]) -> dict[str, Any]:
    """The parent's status, without what no API server can store (integers beyond 64 bits: a
    hand-edited status, or a request made up by hand, can hold them) and so what no answer
    that carries a field over could encode."""
    status = parent.get("status")
    return storable(status) if isinstance(status, Mapping) else {}


def storable(value: Any) -> Any:
    """``value`` without the integers beyond 64 bits it holds (at any depth)."""
    if isinstance(value, Mapping):
        return {k: storable(v) for k, v in value.items() if _fits(v)}
    if isinstance(value, list):
        return [storable(v) for v in value if _fits(v)]
    return value


def _fits(value: Any) -> bool:
    return not isinstance(value, int) or _LOWEST <= value < _BEYOND
