"""The RayService's status, as KubeRay writes it (plus ``rayClustersToDelete``, metaray's
two-phase list of retiring clusters), byte-identical for identical inputs: times move only
when what they stamp changes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.core.observed import ObservedObject
from app.core.status import storable
from app.core.time import stamp
from app.raycluster.spec import JSONObject
from app.raycluster.status import condition
from app.rayservice.plan import ACTIVE, PENDING, TO_DELETE, Plan
from app.rayservice.serve import ServeView, statuses


class Condition(StrEnum):
    READY = "Ready"
    UPGRADE = "UpgradeInProgress"
    ROLLBACK = "RollbackInProgress"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"


INITIALIZING = "Initializing"
VALIDATION_FAILED = "ValidationFailed"
RUNNING = "Running"
# Compared to decide whether lastUpdateTime moves (KubeRay's consistency check, by value).
_SUBSTANTIVE = (ACTIVE, PENDING, "serviceStatus", "numServeEndpoints", "conditions", TO_DELETE)


def conditions_of(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The status's conditions that are objects (a status anyone can write may hold others)."""
    items = status.get("conditions")
    return [c for c in items if isinstance(c, Mapping)] if isinstance(items, list) else []


def previous_condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions_of(status) if c.get("type") == kind), None)


def is_true(status: Mapping[str, Any], kind: str) -> bool:
    found = previous_condition(status, kind)
    return found is not None and found.get("status") == "True"


def side_status(
    name: str | None,
    previous: Mapping[str, Any],
    key: str,
    clusters: Mapping[str, ObservedObject],
    views: Mapping[str, ServeView],
) -> JSONObject:
    """One side (active or pending): the cluster's name, Ray's application statuses (the last
    ones written while the dashboard has not answered since metaray started) and a copy of the
    RayCluster's status."""
    if name is None:
        return {}
    out: JSONObject = {"rayClusterName": name}
    apps = statuses(views.get(name))
    before = previous.get(key)
    if apps is None and isinstance(before, Mapping) and before.get("rayClusterName") == name:
        apps = before.get("applicationStatuses")
    if apps:
        out["applicationStatuses"] = apps
    cluster = clusters.get(name)
    if cluster is not None and cluster.status:
        out["rayClusterStatus"] = storable(cluster.status)  # a hand-made request: any integer
    return out


def conditions(
    previous: Mapping[str, Any], plan: Plan, endpoints: int, clock: str
) -> list[JSONObject]:
    ready_before = previous_condition(previous, Condition.READY)
    if endpoints > 0:
        ready = ("True", "NonZeroServeEndpoints", "Number of serve endpoints is greater than 0")
    elif ready_before is not None and ready_before.get("reason") in (
        "NonZeroServeEndpoints",
        "ZeroServeEndpoints",
    ):
        ready = ("False", "ZeroServeEndpoints", "Number of serve endpoints dropped to 0")
    else:
        ready = ("False", INITIALIZING, "RayService is initializing")
    if plan.active is not None and plan.pending is not None:
        upgrade = (
            "True",
            "BothActivePendingClustersExist",
            "Both active and pending Ray clusters exist",
        )
    elif plan.waiting_on is not None:
        upgrade = (
            "False",
            "UpgradeStrategyNone",
            f"rayClusterConfig changed, but upgradeStrategy is None: the change waits until "
            f"RayCluster {plan.waiting_on} is deleted",
        )
    elif plan.active is not None:
        upgrade = (
            "False",
            "NoPendingCluster",
            "Active Ray cluster exists and no pending Ray cluster",
        )
    elif ready[1] == INITIALIZING:
        upgrade = ("False", INITIALIZING, "RayService is initializing")
    else:
        upgrade = ("Unknown", "NoActiveCluster", "No active Ray cluster exists")
    return [
        condition(Condition.READY, *ready, previous, clock),
        condition(Condition.UPGRADE, *upgrade, previous, clock),
    ]


def finish(
    previous: Mapping[str, Any], status: JSONObject, generation: int, now: datetime
) -> JSONObject:
    """``observedGeneration`` and ``lastUpdateTime``, which moves only on a real change."""
    status["observedGeneration"] = generation
    changed = any(previous.get(key) != status.get(key) for key in _SUBSTANTIVE)
    before = previous.get("lastUpdateTime")
    status["lastUpdateTime"] = before if not changed and isinstance(before, str) else stamp(now)
    return {key: status[key] for key in sorted(status)}


def to_delete_entries(plan: Plan) -> list[JSONObject]:
    return [{"deleteAfter": when, "name": name} for name, when in sorted(plan.to_delete.items())]
