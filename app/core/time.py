"""Time in the cores: RFC 3339 seconds in status, and the request's own notion of "now" (the
newest timestamp in what was observed).

The core never reads a clock. A status timestamp that has to move takes this value, so the
same request always yields the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = "1970-01-01T00:00:00Z"
# The API server's own form of a status timestamp: whole seconds, UTC.
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def normalise(stamp: str) -> str | None:
    """An RFC 3339 timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or None if it is not one."""
    if _CANONICAL.fullmatch(stamp):
        return stamp  # the API server's own form: nothing to convert
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC).strftime(FORMAT)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        return None


def newest(stamps: Iterable[Any]) -> str | None:
    # Many children share timestamps: normalise each distinct one once.
    distinct = {s for s in stamps if isinstance(s, str)}
    found = [n for s in distinct if (n := normalise(s)) is not None]
    return max(found) if found else None


def parent_timestamps(parent: Mapping[str, Any]) -> Iterable[Any]:
    """Creation, deletion and every write the API server recorded on the parent."""
    metadata = parent.get("metadata")
    if not isinstance(metadata, Mapping):
        return
    yield metadata.get("creationTimestamp")
    yield metadata.get("deletionTimestamp")
    entries = metadata.get("managedFields")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping):
            yield entry.get("time")


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
