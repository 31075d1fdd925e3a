"""Encoding the core's answer as Metacontroller's sync response."""

from __future__ import annotations

import orjson

from app.raycluster.sync import Desired


def encode(desired: Desired) -> bytes:
    return orjson.dumps({"children": desired.children, "status": desired.status})
