"""Encoding the core's answer as Metacontroller's hook response."""

from __future__ import annotations

from typing import Any

import orjson

from app.core.desired import Desired
from app.core.observed import RawChild


def encode(desired: Desired) -> bytes:
    """``{children, status}``, plus ``finalized`` for a finalize answer only and
    ``resyncAfterSeconds`` when a deadline needs another look."""
    body: dict[str, Any] = {"children": desired.children, "status": desired.status}
    if desired.finalized is not None:
        body["finalized"] = desired.finalized
    if desired.resync_after is not None:
        body["resyncAfterSeconds"] = desired.resync_after
    return orjson.dumps(body, default=_raw)


def _raw(value: Any) -> orjson.Fragment:
    # A kept child goes out as the exact JSON text Metacontroller recorded for it.
    if isinstance(value, RawChild):
        return orjson.Fragment(value.text)
    raise TypeError(f"cannot encode {type(value).__name__}")
