"""The RayCronJob spec: its model, and the checks KubeRay makes (``ValidateRayCronJobSpec``).

``jobTemplate`` is a RayJob spec, copied verbatim into every RayJob the schedule creates; it is
checked here with the RayJob core's own rules, under the longest name a run can have. The
fields after ``jobTemplate`` are metaray's, after Kubernetes' CronJob (KubeRay has none of them).

``jobMetadata`` is where the labels and annotations of each RayJob go (a Kueue queue name, say):
KubeRay's ``jobTemplate`` is a bare RayJob spec, whose own ``metadata`` field is the Ray job's
metadata (a string map sent to Ray), so it cannot hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError

from app.raycluster.problems import InvalidSpec, Problem
from app.raycluster.spec import (
    Int32,
    JSONObject,
    SpecModel,
    check_identity,
    pydantic_problems,
)
from app.raycronjob import schedule as sched
from app.rayjob.parse import parse_rayjob
from app.rayjob.spec import MAX_RAYJOB_NAME

# A run is named <cron>-<minutes since the epoch>: KubeRay keeps 11 characters for the suffix.
MAX_RAYCRONJOB_NAME = MAX_RAYJOB_NAME - 11
_LONGEST_SUFFIX = "-" + "9" * 10


class ConcurrencyPolicy(StrEnum):
    """What happens when a run is due while an earlier one is still active."""

    ALLOW = "Allow"  # both run
    FORBID = "Forbid"  # the new one waits until none is active (then only the latest tick runs)
    REPLACE = "Replace"  # the new one starts, then the earlier ones are deleted


class JobMetadata(SpecModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class RayCronJobSpec(SpecModel):
    schedule: str
    timeZone: str | None = Field(default=None, min_length=1)
    suspend: bool = False
    jobTemplate: JSONObject
    jobMetadata: JobMetadata | None = None
    # A Literal (the CRD generator reads plain enums), compared with ConcurrencyPolicy's members.
    concurrencyPolicy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    startingDeadlineSeconds: Int32 | None = Field(default=None, ge=0)
    successfulJobsHistoryLimit: Int32 | None = Field(default=None, ge=0)
    failedJobsHistoryLimit: Int32 | None = Field(default=None, ge=0)


@dataclass(frozen=True, slots=True)
class RayCronJob:
    """A valid RayCronJob: identity, spec, its parsed schedule and the raw job template."""

    name: str
    namespace: str
    spec: RayCronJobSpec
    schedule: sched.Schedule
    template: Mapping[str, Any]  # spec.jobTemplate exactly as written

    @property
    def policy(self) -> ConcurrencyPolicy:
        return ConcurrencyPolicy(self.spec.concurrencyPolicy)

    @property
    def labels(self) -> Mapping[str, str]:
        return self.spec.jobMetadata.labels if self.spec.jobMetadata else {}

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.spec.jobMetadata.annotations if self.spec.jobMetadata else {}


def parse_raycronjob(parent: Mapping[str, Any]) -> RayCronJob:
    """Validate a RayCronJob object, or raise ``InvalidSpec`` naming every problem."""
    problems = list(check_identity(parent, MAX_RAYCRONJOB_NAME))
    raw = parent.get("spec")
    if not isinstance(raw, Mapping):
        raise InvalidSpec([*problems, Problem("spec", "must be an object")])
    try:
        spec = RayCronJobSpec.model_validate(raw)
    except ValidationError as error:
        raise InvalidSpec([*problems, *pydantic_problems(error)]) from None
    schedule: sched.Schedule | None = None
    try:
        schedule = sched.parse(spec.schedule, spec.timeZone)
    except sched.ScheduleError as error:
        path = "spec.timeZone" if "time zone" in str(error) else "spec.schedule"
        problems.append(Problem(path, str(error)))
    problems += _template_problems(parent, raw["jobTemplate"])
    if problems or schedule is None:
        raise InvalidSpec(problems)
    metadata = parent["metadata"]
    return RayCronJob(
        name=metadata["name"],
        namespace=metadata.get("namespace") or "default",
        spec=spec,
        schedule=schedule,
        template=raw["jobTemplate"],
    )


def _template_problems(parent: Mapping[str, Any], template: Any) -> list[Problem]:
    """The RayJob core's verdict on a run made from the template, paths under jobTemplate."""
    metadata = parent.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    run = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": f"{name if isinstance(name, str) else 'x'}{_LONGEST_SUFFIX}",
            "namespace": namespace if isinstance(namespace, str) else "default",
        },
        "spec": template,
    }
    try:
        parse_rayjob(run)
    except InvalidSpec as invalid:
        return [
            Problem(_under_template(p.path), p.message)
            for p in invalid.problems
            if p.path != "metadata.name"  # the cron's own name is checked against its cap
        ]
    return []


def _under_template(path: str) -> str:
    return "spec.jobTemplate" + path[len("spec") :] if path.startswith("spec") else path
