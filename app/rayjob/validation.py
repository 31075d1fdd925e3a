"""A spec that cannot be acted on: what the status says meanwhile, and where a fix resumes.

An invalid spec (or an edit refused while an attempt is live) changes no child and writes
``ValidationFailed``. KubeRay's status has no field to keep the interrupted state in, so the
status keeps what identifies it: ``endTime`` is set only by Complete and Failed, and a failure's
``reason`` is kept (``ValidationFailed`` is written only over an empty one). A fix resumes the
very state it interrupted: a finished RayJob stays finished and is never run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.time import parse_time, stamp
from app.rayjob.labels import SUBMISSION_MODE
from app.rayjob.spec import RayJob
from app.rayjob.states import (
    COMPLETE,
    FAILED,
    INITIALIZING,
    LIVE,
    NEW,
    RETRYING,
    TERMINAL,
    VALIDATION_FAILED,
    Deployment,
)
from app.rayjob.world import World

PREFIX = "Invalid RayJob spec: "


def invalid_status(previous: Mapping[str, Any], problem: str, now: datetime) -> dict[str, Any]:
    state = previous.get("jobDeploymentStatus")
    reason = previous.get("reason")
    failure = isinstance(reason, str) and reason not in ("", VALIDATION_FAILED)
    status = {
        **previous,
        "jobDeploymentStatus": VALIDATION_FAILED,
        "reason": reason if failure and state != COMPLETE else VALIDATION_FAILED,
        "message": PREFIX + problem,
    }
    if state in TERMINAL:  # what marks it finished must survive (a hand-edited status may lack it)
        if parse_time(previous.get("endTime")) is None:
            status["endTime"] = stamp(now)
        if state == FAILED and not failure:
            status["reason"] = str(FAILED)
    elif state != VALIDATION_FAILED:
        # endTime is what says a validation failure interrupted a finished RayJob: one that
        # never finished (an endTime written by hand) must not be resumed as finished.
        status.pop("endTime", None)
    return status


def resumed(status: Mapping[str, Any]) -> Deployment:
    """The state a validation failure interrupted, from what it kept of it."""
    reason = status.get("reason")
    failure = isinstance(reason, str) and reason not in ("", VALIDATION_FAILED)
    if parse_time(status.get("endTime")) is not None:
        return FAILED if failure else COMPLETE
    name = status.get("rayClusterName")
    if not (isinstance(name, str) and name):
        return NEW
    return RETRYING if failure else INITIALIZING


def finished(status: Mapping[str, Any]) -> bool:
    """Complete or Failed, or a validation failure that interrupted either."""
    state = status.get("jobDeploymentStatus")
    return state in TERMINAL or (state == VALIDATION_FAILED and resumed(status) in TERMINAL)


def refused_edit(rayjob: RayJob, previous: Mapping[str, Any], world: World) -> str | None:
    """An edit that would move a live attempt to another cluster or submission mode, which
    would orphan what runs (KubeRay ignores such edits; metaray says so and waits)."""
    name = previous.get("rayClusterName")
    state = previous.get("jobDeploymentStatus")
    if state == VALIDATION_FAILED:  # refused before: still refused until the edit is undone
        state = resumed(previous)
    if state not in LIVE or not isinstance(name, str) or not name:
        return None
    owned = world.clusters.get(name)
    if rayjob.selected_cluster is not None:
        if name != rayjob.selected_cluster:
            return (
                f"spec.clusterSelector: the running attempt uses RayCluster {name}; the "
                "cluster cannot change until it ends (suspend the RayJob, or delete it)"
            )
    elif owned is None and not _own_name(rayjob, name):
        return (
            f"spec.rayClusterSpec: the running attempt uses the existing RayCluster {name} "
            "(spec.clusterSelector); the cluster cannot change until it ends"
        )
    modes = {
        child.metadata.labels.get(SUBMISSION_MODE)
        for child in (owned, world.submitter_jobs.get(rayjob.name))
        if child is not None and child.metadata.deletionTimestamp is None
    } - {None}
    if modes and rayjob.mode not in modes:
        was = ", ".join(sorted(m for m in modes if m is not None))
        return (
            f"spec.submissionMode: the running attempt was started in {was}; the mode cannot "
            "change until it ends"
        )
    return None


def _own_name(rayjob: RayJob, name: str) -> bool:
    """A name of the RayJob's own clusters (``<rayjob>-<5 chars>``)."""
    return name.startswith(f"{rayjob.name}-") and len(name) == len(rayjob.name) + 6
