"""Times in a RayJob's status: the shell's clock comes in, RFC 3339 seconds go out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.raycluster.clock import normalise

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(FORMAT)


# Deadlines add at most int32 seconds (68 years) to a status time: beyond these years a time
# is not one this RayJob could have written, and adding to it could overflow.
EARLIEST_YEAR, LATEST_YEAR = 1970, 9000


def parse_time(value: Any) -> datetime | None:
    """A status timestamp, or None when it is absent or not a plausible time (a hand-edited
    status must never stop the hook from answering)."""
    normal = normalise(value) if isinstance(value, str) else None
    if normal is None:
        return None
    try:
        moment = datetime.strptime(normal, FORMAT).replace(tzinfo=UTC)
    except ValueError:  # the API server's form, but no such day (2026-02-30)
        return None
    return moment if EARLIEST_YEAR <= moment.year <= LATEST_YEAR else None
