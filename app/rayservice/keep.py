"""Answers that keep every child exactly as metaray last asked for it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.desired import Desired
from app.core.events import WARNING, Event
from app.core.observed import Child, Observed
from app.core.time import stamp
from app.raycluster.problems import InvalidSpec
from app.raycluster.status import condition
from app.rayservice.status import VALIDATION_FAILED, Condition, conditions_of


def invalid(
    observed: Observed, previous: Mapping[str, Any], invalid: InvalidSpec, now: datetime
) -> Desired:
    """Every child exactly as metaray last asked for it; the status says what is wrong."""
    message = "; ".join(
        p.message if p.message.startswith("The RayService") else str(p) for p in invalid.problems
    )
    status = dict(previous)
    others = [c for c in conditions_of(previous) if c.get("type") != Condition.READY]
    ready = condition(Condition.READY, "False", VALIDATION_FAILED, message, previous, stamp(now))
    status["conditions"] = [ready, *others]
    on_metadata = all(p.path.startswith(("metadata", "apiVersion")) for p in invalid.problems)
    reason = "InvalidRayServiceMetadata" if on_metadata else "InvalidRayServiceSpec"
    event = Event(WARNING, reason, message)
    return Desired(echo(observed), status, (event,))


def echo(observed: Observed) -> list[Child]:
    return [observed.applied[key] for key in sorted(observed.keys()) if key in observed.applied]
