"""The RayJob's lifecycle: one step of KubeRay's ``jobDeploymentStatus`` state machine per sync.

Each step reads the previous status, the observed children and the related objects (the user's
cluster, the submitter and head pods) and the shell's clock, and says what the status becomes
and which children should exist. Deleting is always explicit: a child is omitted only by a step
that means to delete it (retry, suspend, a due deletion policy); every other observed child is
answered as it is, so a stale or replayed request can never lose one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.raycluster.events import WARNING, Event
from app.raycluster.observed import ObservedObject, ObservedPod
from app.rayjob import labels as jl
from app.rayjob import outcome as oc
from app.rayjob.clock import parse_time, stamp
from app.rayjob.cluster import dashboard_url
from app.rayjob.names import cluster_name, job_id, submitter_job_name
from app.rayjob.spec import K8S_JOB_MODE, SIDECAR_MODE, RayJob, submitter_command
from app.rayjob.submitter import CONTAINER
from app.rayjob.teardown import teardown

NEW, INITIALIZING, RUNNING = "", "Initializing", "Running"
COMPLETE, FAILED, VALIDATION_FAILED = "Complete", "Failed", "ValidationFailed"
SUSPENDING, SUSPENDED, RETRYING, WAITING = "Suspending", "Suspended", "Retrying", "Waiting"
TERMINAL = (COMPLETE, FAILED)
READY = "ready"
# Reasons whose failure is final even with retries left (KubeRay's rule).
NOT_RETRIED = ("DeadlineExceeded", "JobStatusCheckTimeoutExceeded")
# Cleared when an attempt is over (suspend, retry): the next one starts from nothing.
_ATTEMPT_FIELDS = (
    "rayClusterName",
    "rayClusterStatus",
    "dashboardURL",
    "jobId",
    "message",
    "reason",
    "rayJobInfo",
    "jobStatusCheckFailureStartTime",
)


@dataclass(frozen=True, slots=True)
class World:
    """What was observed: the RayJob's children and the related objects, by name."""

    clusters: Mapping[str, ObservedObject]
    jobs: Mapping[str, ObservedObject]
    related_clusters: Mapping[str, ObservedObject]
    related_pods: tuple[ObservedPod, ...]
    domain: str

    def live_clusters(self) -> list[str]:
        return sorted(n for n, c in self.clusters.items() if c.metadata.deletionTimestamp is None)


@dataclass(slots=True)
class Step:
    """One step's decisions; the children follow from them in ``app.rayjob.sync``."""

    status: dict[str, Any]
    cluster: str = "keep"  # build (create if missing), keep (as observed), delete, suspend-workers
    submitter: str = "keep"  # build (create if missing), keep, delete
    service: bool = False  # the RayJob's head Service for the current cluster
    events: list[Event] = field(default_factory=list)
    deadlines: list[datetime] = field(default_factory=list)
    delete_self: bool = False


def advance(job: RayJob, previous: Mapping[str, Any], world: World, now: datetime) -> Step:
    status: dict[str, Any] = {"succeeded": 0, "failed": 0, **previous}
    state = status.get("jobDeploymentStatus") or NEW
    if state == VALIDATION_FAILED:  # the spec was fixed: carry on from what is known
        state = INITIALIZING if status.get("rayClusterName") else NEW
        status.update(jobDeploymentStatus=state, reason="", message="")
    step = Step(status)
    handler = _HANDLERS.get(state, _new)
    handler(job, step, world, now)
    _clean(status)
    return step


def _new(job: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    failed = int(status.get("failed") or 0)
    if job.spec.suspend:  # created suspended (Kueue): nothing is made until it is admitted
        status["jobDeploymentStatus"] = SUSPENDING
        _finish_teardown(step, world, SUSPENDED)
        return
    name = job.selected_cluster or cluster_name(job.name, job.uid, job.generation, failed)
    status.update(
        jobDeploymentStatus=INITIALIZING,
        rayClusterName=name,
        jobId=job.spec.jobId or job_id(job.name, job.uid, job.generation, failed),
        jobStatus="",
        startTime=stamp(now),
    )
    for key in ("endTime", "reason", "message", "dashboardURL", "rayJobInfo"):
        status.pop(key, None)
    # Two-phase, as KubeRay: the cluster is created only once the status holding its name has
    # been written, so a replayed request can never create a second one.


def _initializing(job: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    if _suspend_or_deadline(job, step, now, pre_running=True):
        return
    name = status["rayClusterName"]
    cluster = _cluster(job, world, name)
    if job.selected_cluster is None:
        step.cluster = "build"
    if cluster is None:
        if job.selected_cluster is not None:
            message = f"RayCluster {job.namespace}/{name} not found"
            status["message"] = message
            step.events.append(Event(WARNING, "RayClusterNotFound", message))
        return
    status["rayClusterStatus"] = dict(cluster.status)
    if cluster.status.get("state") != READY:
        return
    status.update(
        jobDeploymentStatus=RUNNING,
        dashboardURL=_dashboard_url(name, job, cluster, world.domain),
        jobStatus=oc.PENDING,
    )
    status.pop("message", None)
    if job.mode == K8S_JOB_MODE:
        step.submitter = "build"
    step.service = job.selected_cluster is None


def _running(job: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    if job.selected_cluster is None:
        step.cluster, step.service = "build", True
    if _suspend_or_deadline(job, step, now, pre_running=False):
        return
    cluster = _cluster(job, world, status["rayClusterName"])
    if cluster is not None:
        status["rayClusterStatus"] = dict(cluster.status)
    ended = _sidecar_outcome(job, step, world) if job.mode == SIDECAR_MODE else None
    if job.mode == K8S_JOB_MODE:
        ended = _submitter_outcome(job, step, world)
    if ended is not None:
        _end(job, step, ended, now)


def _submitter_outcome(job: RayJob, step: Step, world: World) -> oc.Outcome | None:
    step.submitter = "build"
    name = submitter_job_name(job.name)
    pods = [p for p in world.related_pods if p.metadata.labels.get(jl.JOB_NAME) == name]
    observed = world.jobs.get(name)
    if observed is None:
        return None
    ended = oc.of_job(observed, pods, ours=_ours(job))
    if ended is None:
        running = any(p.running and not p.terminating for p in pods)
        step.status["jobStatus"] = oc.RUNNING if running else oc.PENDING
    return ended


def _ours(job: RayJob) -> bool:
    """Whether the submitter runs metaray's script (a user's template may bring a command)."""
    return not submitter_command(job.spec.submitterPodTemplate)


def _sidecar_outcome(job: RayJob, step: Step, world: World) -> oc.Outcome | None:
    name = step.status["rayClusterName"]
    heads = [
        pod
        for pod in world.related_pods
        if pod.cluster == name and pod.node_type == "head" and not pod.terminating
    ]
    cluster = world.clusters.get(name)
    if not heads:
        if cluster is not None and cluster.status.get("state") != READY:
            return oc.Outcome("", "Ray head pod not found.", failure="AppFailed")
        return None
    statuses = [s for pod in heads for s in pod.status.containerStatuses if s.name == CONTAINER]
    ended = next((e for s in statuses if (e := oc.of_container(s)) is not None), None)
    if ended is None:
        running = any(s.state is not None and s.state.terminated is None for s in statuses)
        step.status["jobStatus"] = oc.RUNNING if running and heads[0].running else oc.PENDING
    return ended


def _end(job: RayJob, step: Step, ended: oc.Outcome, now: datetime) -> None:
    status = step.status
    status.update(jobStatus=ended.job_status, message=ended.message)
    if ended.start_time or ended.end_time:
        info = {"startTime": ended.start_time, "endTime": ended.end_time}
        status["rayJobInfo"] = {k: v for k, v in info.items() if v}
    if ended.succeeded:
        status.update(jobDeploymentStatus=COMPLETE, reason="", endTime=stamp(now))
        status["succeeded"] = int(status.get("succeeded") or 0) + 1
        _terminal(job, step, None, now)
    else:
        _fail(job, step, ended.reason, ended.message, now)


def _fail(job: RayJob, step: Step, reason: str, message: str, now: datetime) -> None:
    """Failed, or Retrying at once when the RayJob has retries left (Failed is then never
    written for that attempt, as in KubeRay)."""
    status = step.status
    failed = int(status.get("failed") or 0) + 1
    status.update(failed=failed, reason=reason, message=message)
    if reason not in NOT_RETRIED and failed < job.spec.backoffLimit + 1:
        status["jobDeploymentStatus"] = RETRYING
        _retrying(job, step, None, now)
        return
    status.update(jobDeploymentStatus=FAILED, endTime=stamp(now))
    _terminal(job, step, None, now)


def _terminal(job: RayJob, step: Step, world: World | None, now: datetime) -> None:
    """Complete or Failed: nothing changes any more but the clean-up the spec asks for."""
    ended = parse_time(step.status.get("endTime")) or now
    plan = teardown(job, step.status, ended, now)
    step.cluster = {
        "DeleteCluster": "delete",
        "DeleteSelf": "keep",
        "DeleteWorkers": "suspend-workers",
    }.get(plan.due, "keep")
    step.delete_self = plan.due == "DeleteSelf"
    step.service = job.selected_cluster is None and step.status.get("rayClusterName") is not None
    if plan.next_at is not None:
        step.deadlines.append(plan.next_at)


def _suspend_or_deadline(job: RayJob, step: Step, now: datetime, pre_running: bool) -> bool:
    status = step.status
    if job.spec.suspend:
        status["jobDeploymentStatus"] = SUSPENDING
        _suspending(job, step, None, now)
        return True
    started = parse_time(status.get("startTime")) or now
    deadlines = [("DeadlineExceeded", job.spec.activeDeadlineSeconds, "activeDeadlineSeconds")]
    if pre_running:
        deadlines.append(
            (
                "PreRunningDeadlineExceeded",
                job.spec.preRunningDeadlineSeconds,
                "preRunningDeadlineSeconds",
            )
        )
    for reason, seconds, field_name in deadlines:
        if seconds is None:
            continue
        at = started + timedelta(seconds=seconds)
        if at <= now:
            message = f"The RayJob ran past spec.{field_name} ({seconds} s from {stamp(started)})"
            _fail(job, step, reason, message, now)
            return True
        step.deadlines.append(at)
    return False


def _retrying(job: RayJob, step: Step, world: World | None, now: datetime) -> None:
    _finish_teardown(step, world, NEW)


def _suspending(job: RayJob, step: Step, world: World | None, now: datetime) -> None:
    _finish_teardown(step, world, SUSPENDED)


def _finish_teardown(step: Step, world: World | None, then: str) -> None:
    """Delete the cluster and the submitter; only once neither is observed any more does the
    next state begin (Kueue relies on Suspended meaning nothing runs)."""
    step.cluster, step.submitter = "delete", "delete"
    if world is None or world.clusters or world.jobs:
        return
    status = step.status
    for key in _ATTEMPT_FIELDS:
        status.pop(key, None)
    status.update(jobDeploymentStatus=then, jobStatus="")


def _suspended(job: RayJob, step: Step, world: World, now: datetime) -> None:
    step.cluster, step.submitter = "delete", "delete"
    if not job.spec.suspend:
        step.status["jobDeploymentStatus"] = NEW


def _cluster(job: RayJob, world: World, name: str) -> ObservedObject | None:
    if job.selected_cluster is not None:
        return world.related_clusters.get(name)
    found = world.clusters.get(name)
    return found if found is not None and found.metadata.deletionTimestamp is None else None


def _dashboard_url(name: str, job: RayJob, cluster: ObservedObject, domain: str) -> str:
    spec = cluster.spec or (job.spec.rayClusterSpec or {})
    return dashboard_url(name, job.namespace, spec, domain)


def _clean(status: dict[str, Any]) -> None:
    """Empty strings are left out, as KubeRay's ``omitempty`` does (except ``jobStatus``,
    which KubeRay writes even when empty)."""
    for key in [k for k, v in status.items() if v == "" and k != "jobStatus"]:
        del status[key]


def _handlers() -> dict[str, Any]:
    return {
        NEW: _new,
        INITIALIZING: _initializing,
        RUNNING: _running,
        COMPLETE: _terminal,
        FAILED: _terminal,
        RETRYING: _retrying,
        SUSPENDING: _suspending,
        SUSPENDED: _suspended,
    }


_HANDLERS = _handlers()
