"""Times in a RayJob's status: the shell's clock comes in, RFC 3339 seconds go out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.raycluster.clock import normalise

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(FORMAT)


def parse_time(value: Any) -> datetime | None:
    """A status timestamp, or None when it is absent or not a time (a hand-edited status must
    never stop the hook from answering)."""
    normal = normalise(value) if isinstance(value, str) else None
    if normal is None:
        return None
    try:
        return datetime.strptime(normal, FORMAT).replace(tzinfo=UTC)
    except ValueError:  # the API server's form, but no such day (2026-02-30)
        return None


def later(moment: datetime, seconds: float) -> datetime | None:
    """``seconds`` after ``moment``; None when that is past the calendar's end (never)."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return None
