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

from app.core.events import WARNING, Event
from app.core.observed import ObservedObject, ObservedPod
from app.core.time import later, parse_time, stamp
from app.rayjob import labels as jl
from app.rayjob import outcome as oc
from app.rayjob.cluster import dashboard_url
from app.rayjob.dashboard import TERMINAL as TERMINAL_JOB_STATES
from app.rayjob.dashboard import DashboardView, Intent, JobInfo, SubmitJob
from app.rayjob.names import cluster_name, job_id, submitter_job_name
from app.rayjob.spec import (
    HTTP_MODE,
    INTERACTIVE_MODE,
    K8S_JOB_MODE,
    SIDECAR_MODE,
    RayJob,
    submitter_command,
)
from app.rayjob.submitter import CONTAINER
from app.rayjob.teardown import teardown

NEW, INITIALIZING, RUNNING = "", "Initializing", "Running"
COMPLETE, FAILED, VALIDATION_FAILED = "Complete", "Failed", "ValidationFailed"
SUSPENDING, SUSPENDED, RETRYING, WAITING = "Suspending", "Suspended", "Retrying", "Waiting"
TERMINAL = (COMPLETE, FAILED)
# States in which the status names the attempt's cluster.
_NAMED_STATES = (INITIALIZING, RUNNING, WAITING)
READY = "ready"
_DEADLINE_FIELDS = {
    "DeadlineExceeded": "activeDeadlineSeconds",
    "PreRunningDeadlineExceeded": "preRunningDeadlineSeconds",
}
# KubeRay's RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS default.
STATUS_CHECK_TIMEOUT_SECONDS = 300
# How soon a RayJob whose DeleteSelf is due is synced again, so that a failed DELETE is retried.
DELETE_SELF_RETRY_SECONDS = 30
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
    # The shell's latest word from the Ray job's dashboard (None: not read, or not yet).
    dashboard: DashboardView | None = None
    # How soon to look again while the dashboard decides (its answers arrive without an event).
    poll_seconds: float = 5.0
    # The dashboard's address derived from owned and observed objects (app/rayjob/address.py),
    # None while there is none: the only one any intent or pod is given, never dashboardURL.
    address: str | None = None

    def view(self, status: Mapping[str, Any]) -> DashboardView | None:
        """The dashboard's word on this attempt's Ray job, if the shell has one."""
        view = self.dashboard
        if view is None or self.address is None:
            return None
        return view if view.about(self.address, status.get("jobId")) else None

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
    intents: list[Intent] = field(default_factory=list)


def advance(job: RayJob, previous: Mapping[str, Any], world: World, now: datetime) -> Step:
    status: dict[str, Any] = {
        **previous,
        "succeeded": _count(previous.get("succeeded")),
        "failed": _count(previous.get("failed")),
    }
    state = status.get("jobDeploymentStatus") or NEW
    if state == VALIDATION_FAILED:  # the spec was fixed: carry on from what is known
        state = INITIALIZING if status.get("rayClusterName") else NEW
        status.update(jobDeploymentStatus=state, reason="", message="")
    named = isinstance(status.get("rayClusterName"), str) and status["rayClusterName"]
    if not isinstance(state, str) or (state in _NAMED_STATES and not named):
        state = NEW  # a status no sync wrote (edited by hand): start from what the spec says
    step = Step(status)
    handler = _HANDLERS.get(state, _new)
    handler(job, step, world, now)
    _clean(status)
    return step


def _new(job: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    failed = status["failed"]
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
    if job.mode == INTERACTIVE_MODE:
        status.pop("jobId")  # the user submits the job, then names it in spec.jobId
    # Two-phase, as KubeRay: the cluster is created only once the status holding its name has
    # been written, so a replayed request can never create a second one.


def _initializing(job: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    if _suspend_or_deadline(job, step, now, pre_running=True):
        return
    name = status["rayClusterName"]
    cluster = _cluster(job, world, name)
    if job.selected_cluster is None:
        # The head Service from the start: the dashboard's address is derived from it once it
        # is observed (app/rayjob/address.py), so it must be there when the cluster is ready.
        step.cluster, step.service = "build", True
    if cluster is None:
        if job.selected_cluster is not None:
            message = f"RayCluster {job.namespace}/{name} not found"
            status["message"] = message
            step.events.append(Event(WARNING, "RayClusterNotFound", message))
        return
    status["rayClusterStatus"] = dict(cluster.status)
    if cluster.status.get("state") != READY:
        return
    status["dashboardURL"] = _dashboard_url(name, job, cluster, world.domain)
    status.pop("message", None)
    if job.mode == INTERACTIVE_MODE:
        status["jobDeploymentStatus"] = WAITING
        return
    status.update(jobDeploymentStatus=RUNNING, jobStatus=oc.PENDING)
    if job.mode == K8S_JOB_MODE:
        step.submitter = "build"
    step.service = job.selected_cluster is None


def _waiting(job: RayJob, step: Step, world: World, now: datetime) -> None:
    """InteractiveMode: the cluster is ready; the user submits a job and sets spec.jobId.
    Only the pre-running deadline applies here (KubeRay checks neither suspend nor the active
    deadline while waiting)."""
    if job.selected_cluster is None:
        step.cluster = "build"
    if _deadline(job, step, now, "PreRunningDeadlineExceeded"):
        return
    if job.spec.jobId:
        step.status.update(jobDeploymentStatus=RUNNING, jobId=job.spec.jobId, jobStatus=oc.PENDING)
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
    view = world.view(status)
    if job.mode in (HTTP_MODE, INTERACTIVE_MODE):
        if _dashboard_silent(job, step, view, now):
            return
        ended = _dashboard_outcome(job, step, world, view)
    elif job.mode == SIDECAR_MODE:
        ended = _sidecar_outcome(job, step, world)
    else:
        ended = _submitter_outcome(job, step, world)
    if ended is None and view is not None and view.info is not None:
        _show(step.status, view.info)  # live state, message and times while it runs
    if ended is not None:
        _end(job, step, ended, now)
    elif world.dashboard is not None or job.mode in (HTTP_MODE, INTERACTIVE_MODE):
        step.deadlines.append(now + timedelta(seconds=world.poll_seconds))


def _dashboard_outcome(
    job: RayJob, step: Step, world: World, view: DashboardView | None
) -> oc.Outcome | None:
    """HTTPMode and InteractiveMode: the dashboard alone knows the job; HTTPMode submits it
    (again, after a head restart wiped it) whenever the dashboard does not know it."""
    status = step.status
    if view is None or view.failing_since is not None:
        return None
    if view.info is None:
        if job.mode == HTTP_MODE and world.address is not None:
            step.intents.append(_submission(job, status, world.address))
        else:
            status["message"] = f"Ray job {status.get('jobId')} not found on the dashboard"
        return None
    info = view.info
    if info.status not in TERMINAL_JOB_STATES:
        return None
    return oc.Outcome(info.status, info.message, info.start_time, info.end_time)


def _dashboard_silent(job: RayJob, step: Step, view: DashboardView | None, now: datetime) -> bool:
    """KubeRay's rule: a dashboard that fails every query for 300 s fails the RayJob. Applied
    where the dashboard is the only source of the result (HTTPMode, InteractiveMode)."""
    status = step.status
    if view is None:
        return False
    if view.failing_since is None:
        status.pop("jobStatusCheckFailureStartTime", None)
        return False
    since = status.setdefault("jobStatusCheckFailureStartTime", view.failing_since)
    started = parse_time(since) or now
    give_up = later(started, STATUS_CHECK_TIMEOUT_SECONDS)
    if give_up is None:
        return False  # past the calendar's end: never
    if give_up > now:
        step.deadlines.append(give_up)
        return False
    message = f"The Ray dashboard has failed every query since {since}: {view.error}"
    _fail(job, step, "JobStatusCheckTimeoutExceeded", message, now)
    return True


def _submission(job: RayJob, status: Mapping[str, Any], url: str) -> SubmitJob:
    spec = job.spec
    return SubmitJob(
        url=url,
        job_id=str(status.get("jobId")),
        entrypoint=(spec.entrypoint or "").strip(),
        runtime_env=job.runtime_env,
        metadata=dict(spec.metadata),
        entrypoint_num_cpus=spec.entrypointNumCpus or None,
        entrypoint_num_gpus=spec.entrypointNumGpus or None,
        entrypoint_resources=job.entrypoint_resources,
    )


def _show(status: dict[str, Any], info: JobInfo) -> None:
    status.update(jobStatus=info.status, message=info.message)
    times = {"startTime": info.start_time, "endTime": info.end_time}
    if any(times.values()):
        status["rayJobInfo"] = {k: v for k, v in times.items() if v}


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
        status["succeeded"] += 1
        _terminal(job, step, None, now)
    else:
        _fail(job, step, ended.reason, ended.message, now)


def _fail(job: RayJob, step: Step, reason: str, message: str, now: datetime) -> None:
    """Failed, or Retrying at once when the RayJob has retries left (Failed is then never
    written for that attempt, as in KubeRay)."""
    status = step.status
    failed = status["failed"] + 1
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
    if step.delete_self:
        # The shell deletes the RayJob after the answer, best effort: look again soon in case
        # that failed, rather than wait for Metacontroller's rare periodic resync.
        step.deadlines.append(now + timedelta(seconds=DELETE_SELF_RETRY_SECONDS))
    step.service = job.selected_cluster is None and step.status.get("rayClusterName") is not None
    if plan.next_at is not None:
        step.deadlines.append(plan.next_at)


def _suspend_or_deadline(job: RayJob, step: Step, now: datetime, pre_running: bool) -> bool:
    if job.spec.suspend:
        step.status["jobDeploymentStatus"] = SUSPENDING
        _suspending(job, step, None, now)
        return True
    if _deadline(job, step, now, "DeadlineExceeded"):
        return True
    return pre_running and _deadline(job, step, now, "PreRunningDeadlineExceeded")


def _deadline(job: RayJob, step: Step, now: datetime, reason: str) -> bool:
    """Fail the attempt if this deadline (counted from startTime) has passed; else note it."""
    field_name = _DEADLINE_FIELDS[reason]
    seconds = getattr(job.spec, field_name)
    if seconds is None:
        return False
    started = parse_time(step.status.get("startTime")) or now
    at = later(started, seconds)
    if at is None:
        return False  # past the calendar's end: never
    if at > now:
        step.deadlines.append(at)
        return False
    message = f"The RayJob ran past spec.{field_name} ({seconds} s from {stamp(started)})"
    _fail(job, step, reason, message, now)
    return True


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


def _count(value: Any) -> int:
    """An attempt counter as KubeRay keeps it (int32); anything else counts as none."""
    fits = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 - 1
    return int(value) if fits else 0


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
        WAITING: _waiting,
        COMPLETE: _terminal,
        FAILED: _terminal,
        RETRYING: _retrying,
        SUSPENDING: _suspending,
        SUSPENDED: _suspended,
    }


_HANDLERS = _handlers()
