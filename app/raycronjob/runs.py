"""The runs of a RayCronJob: the RayJobs it creates (names, labels, annotations, spec) and
what the observed ones say (their tick, whether they are still active, how they ended).

A run is named ``<cron>-<minutes since the epoch of its tick>`` as in KubeRay (v1.7), so two
syncs that decide the same tick name the same RayJob and it is created once. A tick that falls
inside a minute (``@every 20s``) is named by its seconds since the epoch instead: ten digits
where minute names have eight (until the year 2160), so the two kinds never collide, and two
ticks in one minute get two RayJobs where KubeRay silently drops the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.core.observed import ObservedObject
from app.core.time import parse_time, stamp
from app.raycronjob.spec import ConcurrencyPolicy, RayCronJob

RAYJOB = "RayJob.ray.io/v1"
RAYJOB_API = "ray.io/v1"
CRONJOB_NAME = "ray.io/cronjob-name"  # KubeRay's label on each run
SCHEDULED = "ray.io/cronjob-scheduled-timestamp"  # KubeRay's annotation: the run's tick
# metaray's: the run was created under concurrencyPolicy Replace, so the runs before it go.
REPLACES = "metaray.io/replaces-earlier-runs"


class Outcome(StrEnum):
    ACTIVE = "Active"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    GONE = "Gone"  # being deleted


# jobDeploymentStatus values that end a RayJob (ValidationFailed: it never started).
_ENDS = {
    "Complete": Outcome.SUCCEEDED,
    "Failed": Outcome.FAILED,
    "ValidationFailed": Outcome.FAILED,
}


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    tick: datetime | None  # None: no readable scheduled-timestamp annotation (not one of ours)
    outcome: Outcome
    replaces: bool
    ended: datetime | None

    @property
    def active(self) -> bool:
        return self.outcome == Outcome.ACTIVE


def run_name(cron: str, tick: datetime) -> str:
    seconds = int(tick.timestamp())
    return f"{cron}-{seconds // 60}" if seconds % 60 == 0 else f"{cron}-{seconds}"


def observe(job: ObservedObject) -> Run:
    tick = parse_time(job.metadata.annotations.get(SCHEDULED))
    if job.metadata.deletionTimestamp is not None:
        outcome = Outcome.GONE
    else:
        state = job.status.get("jobDeploymentStatus")
        outcome = _ENDS.get(state, Outcome.ACTIVE) if isinstance(state, str) else Outcome.ACTIVE
    return Run(
        name=job.metadata.name,
        tick=tick,
        outcome=outcome,
        replaces=job.metadata.annotations.get(REPLACES) == "true",
        ended=parse_time(job.status.get("endTime")),
    )


def rayjob(cron: RayCronJob, tick: datetime) -> dict[str, Any]:
    """The RayJob for one tick: the template's spec, the user's labels and annotations, and
    KubeRay's label and annotation (which win over the user's of the same key)."""
    annotations: dict[str, str] = {**cron.annotations, SCHEDULED: stamp(tick)}
    if cron.policy == ConcurrencyPolicy.REPLACE:
        annotations[REPLACES] = "true"
    return {
        "apiVersion": RAYJOB_API,
        "kind": "RayJob",
        "metadata": {
            "name": run_name(cron.name, tick),
            "namespace": cron.namespace,
            "labels": {**cron.labels, CRONJOB_NAME: cron.name},
            "annotations": annotations,
        },
        "spec": _copy(cron.template),
    }


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
