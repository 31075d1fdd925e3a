"""What a finished RayJob deletes, and when: ``shutdownAfterJobFinishes`` with its TTL, and
``deletionStrategy`` (the older onSuccess/onFailure form, or deletion rules)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.time import later
from app.rayjob.spec import POLICY_ORDER, Policy, RayJob


@dataclass(frozen=True, slots=True)
class Teardown:
    """The most destructive policy due now, and when the next one falls due."""

    due: Policy = "DeleteNone"
    next_at: datetime | None = None


def teardown(rayjob: RayJob, status: Mapping[str, Any], ended: datetime, now: datetime) -> Teardown:
    if rayjob.selected_cluster is not None:
        return Teardown()  # the user's cluster is never touched
    due: list[Policy] = []
    pending: list[datetime] = []
    for policy, delay in _policies(rayjob, status):
        at = later(ended, delay)
        if at is None:
            continue  # past the calendar's end: never due
        if at <= now:
            due.append(policy)
        else:
            pending.append(at)
    chosen: Policy = min(due, key=POLICY_ORDER.index) if due else "DeleteNone"
    return Teardown(chosen, min(pending, default=None))


def _policies(rayjob: RayJob, status: Mapping[str, Any]) -> Iterator[tuple[Policy, int]]:
    strategy = rayjob.spec.deletionStrategy
    ray_job_status = status.get("jobStatus")
    if strategy is not None and strategy.deletionRules is not None:
        deployment = status.get("jobDeploymentStatus")
        for rule in strategy.deletionRules:
            condition = rule.condition
            if (condition.jobStatus is not None and condition.jobStatus == ray_job_status) or (
                condition.jobDeploymentStatus is not None
                and condition.jobDeploymentStatus == deployment
            ):
                yield rule.policy, condition.ttlSeconds
        return
    ttl = rayjob.spec.ttlSecondsAfterFinished
    if strategy is not None:
        by_status = {"SUCCEEDED": strategy.onSuccess, "FAILED": strategy.onFailure}
        chosen = by_status.get(ray_job_status) if isinstance(ray_job_status, str) else None
        if chosen is not None:
            yield chosen.policy, ttl
        return
    if rayjob.spec.shutdownAfterJobFinishes:
        yield "DeleteCluster", ttl
