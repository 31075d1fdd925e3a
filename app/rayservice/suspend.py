"""KubeRay's suspend state machine for a RayService: staging, deleting, suspended, resumed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.desired import Desired
from app.core.events import NORMAL, Event
from app.core.observed import Observed, ObservedObject
from app.core.time import stamp
from app.raycluster.spec import JSONObject
from app.raycluster.status import condition
from app.rayservice.keep import echo
from app.rayservice.plan import ACTIVE, BUSY_RESYNC_SECONDS, PENDING, RAYCLUSTER, TO_DELETE, listed
from app.rayservice.spec import RayService
from app.rayservice.status import Condition, finish, is_true


def is_suspended(previous: Mapping[str, Any]) -> bool:
    return is_true(previous, Condition.SUSPENDED)


def suspend(
    rs: RayService,
    previous: Mapping[str, Any],
    observed: Observed,
    clusters: Mapping[str, ObservedObject],
    now: datetime,
) -> Desired | None:
    """KubeRay's suspend state machine; None once resumed (the normal sync then goes on).

    Staging lists every cluster for deletion (two-phase); the next sync deletes those listed
    and the Services; Suspended once they are gone."""
    clock = stamp(now)
    suspending = is_true(previous, Condition.SUSPENDING)
    if is_suspended(previous) and not rs.spec.suspend:
        return None
    if is_suspended(previous):
        return Desired([], dict(previous))
    if not suspending:
        entries = [{"deleteAfter": clock, "name": n} for n in sorted(clusters)]
        status: JSONObject = {
            ACTIVE: {},
            PENDING: {},
            "numServeEndpoints": 0,
            "serviceStatus": "",
            "conditions": [
                condition(
                    Condition.READY,
                    "False",
                    "SuspendInProgress",
                    "RayService is suspending.",
                    previous,
                    clock,
                ),
                condition(
                    Condition.UPGRADE,
                    "False",
                    "SuspendInProgress",
                    "RayService is suspending.",
                    previous,
                    clock,
                ),
                condition(
                    Condition.SUSPENDING,
                    "True",
                    "SuspendRequested",
                    "RayService is suspending.",
                    previous,
                    clock,
                ),
            ],
            TO_DELETE: entries,
        }
        return Desired(
            echo(observed),
            finish(previous, status, rs.generation, now),
            resync_after=BUSY_RESYNC_SECONDS,
        )
    doomed = set(listed(previous))
    kept = [
        child
        for (kind, name), child in sorted(observed.applied.items())
        if kind == RAYCLUSTER and name not in doomed
    ]
    gone = not any(n in doomed for n in clusters)
    status = dict(previous)
    if gone:
        status["conditions"] = [
            condition(
                Condition.READY,
                "False",
                "SuspendComplete",
                "RayService is suspended.",
                previous,
                clock,
            ),
            condition(
                Condition.UPGRADE,
                "False",
                "SuspendComplete",
                "RayService is suspended.",
                previous,
                clock,
            ),
            condition(
                Condition.SUSPENDING,
                "False",
                "SuspendComplete",
                "RayService is suspended.",
                previous,
                clock,
            ),
            condition(
                Condition.SUSPENDED,
                "True",
                "SuspendComplete",
                "RayService is suspended.",
                previous,
                clock,
            ),
        ]
        status.pop(TO_DELETE, None)
    events = [
        Event(NORMAL, "DeletedRayCluster", f"Deleted RayCluster {rs.namespace}/{n}")
        for n in sorted(doomed)
        if n in clusters and clusters[n].metadata.deletionTimestamp is None
    ]
    resync = None if gone else BUSY_RESYNC_SECONDS
    return Desired(
        kept, finish(previous, status, rs.generation, now), tuple(events), resync_after=resync
    )


def resumed(previous: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Suspended and no longer asked to be: start again from nothing, Ready re-armed."""
    clock = stamp(now)
    fresh = condition(
        Condition.SUSPENDED, "False", "RayServiceResumed", "RayService is resumed.", previous, clock
    )
    return {"conditions": [fresh], "lastUpdateTime": previous.get("lastUpdateTime")}
