"""What every RayJob answer is made of: the observed children as metaray last asked for them,
and when to be synced again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from app.core.observed import Child, Observed

# A deadline is looked at this long after it falls due (KubeRay's requeue margin).
RESYNC_MARGIN_SECONDS = 2


def keys(observed: Observed) -> list[tuple[str, str]]:
    return sorted(observed.keys())


def echo(observed: Observed, keys: Iterable[tuple[str, str]]) -> list[Child]:
    return [observed.applied[key] for key in keys if key in observed.applied]


def resync_after(deadlines: list[datetime], now: datetime) -> float | None:
    if not deadlines:
        return None
    return max((min(deadlines) - now).total_seconds(), 0) + RESYNC_MARGIN_SECONDS
