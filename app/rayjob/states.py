"""KubeRay's ``jobDeploymentStatus`` values, and the groups of them the rules speak of."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Deployment(StrEnum):
    NEW = ""
    INITIALIZING = "Initializing"
    WAITING = "Waiting"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    RETRYING = "Retrying"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"
    VALIDATION_FAILED = "ValidationFailed"


NEW, INITIALIZING, WAITING, RUNNING = (
    Deployment.NEW,
    Deployment.INITIALIZING,
    Deployment.WAITING,
    Deployment.RUNNING,
)
COMPLETE, FAILED, VALIDATION_FAILED = (
    Deployment.COMPLETE,
    Deployment.FAILED,
    Deployment.VALIDATION_FAILED,
)
RETRYING, SUSPENDING, SUSPENDED = Deployment.RETRYING, Deployment.SUSPENDING, Deployment.SUSPENDED
# Left only by a deletion policy or by a validation failure that is later fixed (KubeRay).
TERMINAL = (COMPLETE, FAILED)
# States in which the status names the attempt's cluster and the attempt is live.
LIVE = (INITIALIZING, RUNNING, WAITING)
# Cleared when an attempt is over (suspend, retry): the next one starts from nothing.
ATTEMPT_FIELDS = (
    "rayClusterName",
    "rayClusterStatus",
    "dashboardURL",
    "jobId",
    "message",
    "reason",
    "rayJobInfo",
    "jobStatusCheckFailureStartTime",
)


def count(value: Any) -> int:
    """An attempt counter as KubeRay keeps it (int32); anything else counts as none."""
    fits = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 - 1
    return int(value) if fits else 0
