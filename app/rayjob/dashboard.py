"""The Ray dashboard as the core sees it: plain values in (what the shell last heard from a
job's dashboard), intents out (what the core wants the shell to ask of it).

The core never calls the dashboard. The shell polls the dashboards of the RayJobs that need it,
hands the latest answer to the core with each sync, and carries out the intents idempotently
(the submission id is the RayJob's ``jobId``), after the answer, best effort.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Ray's job states (ray.job_submission.JobStatus).
PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED = (
    "PENDING",
    "RUNNING",
    "STOPPED",
    "SUCCEEDED",
    "FAILED",
)
TERMINAL = (STOPPED, SUCCEEDED, FAILED)
STATES = (PENDING, RUNNING, *TERMINAL)


@dataclass(frozen=True, slots=True)
class JobInfo:
    """``GET /api/jobs/<id>``: the fields metaray reads (times as RFC 3339 seconds)."""

    status: str
    message: str = ""
    start_time: str | None = None
    end_time: str | None = None


@dataclass(frozen=True, slots=True)
class DashboardView:
    """The shell's latest word on one Ray job of one dashboard.

    ``info`` is set when the dashboard knows the job, ``found`` is False when it answered 404;
    ``failing_since`` is the time (RFC 3339) since which every query failed (timeouts, 5xx,
    garbage), None while the last one succeeded. ``refused`` is what Ray answered when it
    refused to take the job (a bad runtime env, an entrypoint resource no node has).
    """

    url: str
    job_id: str
    found: bool = False
    info: JobInfo | None = None
    failing_since: str | None = None
    error: str = ""
    # Ray refused the last submission of this job (HTTPMode): its words, and since when.
    refused: str = ""
    refused_since: str | None = None

    def about(self, url: Any, job_id: Any) -> bool:
        """Whether this view answers for that dashboard and job (not a previous attempt's)."""
        return bool(self.url == url and self.job_id == job_id)


@dataclass(frozen=True, slots=True)
class SubmitJob:
    """``POST /api/jobs/``: submit the job, unless a job with this id exists already."""

    url: str
    job_id: str
    entrypoint: str
    runtime_env: Mapping[str, Any] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_resources: Mapping[str, float] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body of Ray's job submission API."""
        body: dict[str, Any] = {"entrypoint": self.entrypoint, "submission_id": self.job_id}
        optional = {
            "runtime_env": self.runtime_env,
            "metadata": dict(self.metadata) or None,
            "entrypoint_num_cpus": self.entrypoint_num_cpus,
            "entrypoint_num_gpus": self.entrypoint_num_gpus,
            "entrypoint_resources": self.entrypoint_resources,
        }
        return body | {k: v for k, v in optional.items() if v is not None}


@dataclass(frozen=True, slots=True)
class StopJob:
    """``POST /api/jobs/<id>/stop``."""

    url: str
    job_id: str


Intent = SubmitJob | StopJob
