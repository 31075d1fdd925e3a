"""Times in a RayJob's status: the shell's clock comes in, RFC 3339 seconds go out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.raycluster.clock import normalise

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(FORMAT)


def parse_time(value: Any) -> datetime | None:
    """A status timestamp, or None when it is absent or not a time."""
    if not isinstance(value, str):
        return None
    normal = normalise(value)
    return datetime.strptime(normal, FORMAT).replace(tzinfo=UTC) if normal else None
