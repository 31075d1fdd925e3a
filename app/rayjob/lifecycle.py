"""The RayJob's lifecycle: one step of KubeRay's ``jobDeploymentStatus`` state machine per sync.

Each step reads the previous status, the observed children and the related objects (the user's
cluster, the submitter and head pods) and the shell's clock, and says what the status becomes
and which children should exist. Deleting is always explicit: a child is omitted only by a step
that means to delete it (retry, suspend, a due deletion policy); every other observed child is
answered as it is, so a stale or replayed request can never lose one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.core.events import WARNING, Event
from app.core.observed import ObservedObject
from app.core.time import later, parse_time, stamp
from app.rayjob import outcome as oc
from app.rayjob import reading as rd
from app.rayjob.cluster import dashboard_url
from app.rayjob.names import cluster_name, ray_job_id
from app.rayjob.spec import (
    HTTP_MODE,
    INTERACTIVE_MODE,
    K8S_JOB_MODE,
    SIDECAR_MODE,
    RayJob,
)
from app.rayjob.states import (
    ATTEMPT_FIELDS,
    COMPLETE,
    FAILED,
    INITIALIZING,
    LIVE,
    NEW,
    RETRYING,
    RUNNING,
    SUSPENDED,
    SUSPENDING,
    TERMINAL,
    VALIDATION_FAILED,
    WAITING,
    count,
)
from app.rayjob.teardown import teardown
from app.rayjob.validation import resumed
from app.rayjob.world import Action, Step, World

__all__ = [
    "COMPLETE",
    "FAILED",
    "INITIALIZING",
    "NEW",
    "RETRYING",
    "RUNNING",
    "SUSPENDED",
    "SUSPENDING",
    "TERMINAL",
    "VALIDATION_FAILED",
    "WAITING",
    "Step",
    "World",
    "advance",
]

READY = rd.READY
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


def advance(rayjob: RayJob, previous: Mapping[str, Any], world: World, now: datetime) -> Step:
    status: dict[str, Any] = {
        **previous,
        "succeeded": count(previous.get("succeeded")),
        "failed": count(previous.get("failed")),
    }
    state = status.get("jobDeploymentStatus") or NEW
    if state == VALIDATION_FAILED:  # the spec was fixed: resume what the failure interrupted
        state = resumed(status)
        status["jobDeploymentStatus"] = state
        status.pop("message", None)
        if state not in (FAILED, RETRYING):
            status.pop("reason", None)
    named = isinstance(status.get("rayClusterName"), str) and status["rayClusterName"]
    if not isinstance(state, str) or (state in LIVE and not named):
        state = NEW  # a status no sync wrote (edited by hand): start from what the spec says
    step = Step(status)
    handler = _HANDLERS.get(state, _new)
    handler(rayjob, step, world, now)
    if status.get("jobDeploymentStatus") != previous.get("jobDeploymentStatus"):
        # Two-phase, like creation: a deletion is carried out only by a sync whose observed
        # parent already holds the decision, so a sync of a stale parent has nothing to undo.
        step.hold()
    _clean(status)
    return step


def _new(rayjob: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    failed = status["failed"]
    if rayjob.spec.suspend:  # created suspended (Kueue): nothing is made until it is admitted
        status["jobDeploymentStatus"] = SUSPENDING
        _finish_teardown(step, world, SUSPENDED)
        return
    name = rayjob.selected_cluster or cluster_name(
        rayjob.name, rayjob.uid, rayjob.generation, failed
    )
    for key in (*ATTEMPT_FIELDS, "endTime"):  # a fresh attempt keeps nothing of the last one
        status.pop(key, None)
    status.update(
        jobDeploymentStatus=INITIALIZING,
        rayClusterName=name,
        jobId=rayjob.spec.jobId or ray_job_id(rayjob.name, rayjob.uid, rayjob.generation, failed),
        jobStatus="",
        startTime=stamp(now),
    )
    if rayjob.mode == INTERACTIVE_MODE:
        status.pop("jobId")  # the user submits the job, then names it in spec.jobId
    # Two-phase, as KubeRay: the cluster is created only once the status holding its name has
    # been written, so a replayed request can never create a second one.


def _initializing(rayjob: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    if _suspend_or_deadline(rayjob, step, now, pre_running=True):
        return
    name = status["rayClusterName"]
    cluster = _cluster(rayjob, world, name)
    if rayjob.selected_cluster is None:
        # The head Service from the start: the dashboard's address is derived from it once it
        # is observed (app/rayjob/address.py), so it must be there when the cluster is ready.
        step.cluster, step.service = Action.BUILD, True
    if cluster is None:
        if rayjob.selected_cluster is not None:
            message = f"RayCluster {rayjob.namespace}/{name} not found"
            status["message"] = message
            step.events.append(Event(WARNING, "RayClusterNotFound", message))
        return
    status["rayClusterStatus"] = dict(cluster.status)
    if cluster.status.get("state") != READY:
        return
    status["dashboardURL"] = _dashboard_url(name, rayjob, cluster, world.domain)
    status.pop("message", None)
    if rayjob.mode == INTERACTIVE_MODE:
        status["jobDeploymentStatus"] = WAITING
        return
    status.update(jobDeploymentStatus=RUNNING, jobStatus=oc.PENDING)
    if rayjob.mode == K8S_JOB_MODE:
        step.submitter = Action.BUILD
    step.service = rayjob.selected_cluster is None


def _waiting(rayjob: RayJob, step: Step, world: World, now: datetime) -> None:
    """InteractiveMode: the cluster is ready; the user submits a job and sets spec.jobId.
    Only the pre-running deadline applies here (KubeRay checks neither suspend nor the active
    deadline while waiting)."""
    if rayjob.selected_cluster is None:
        step.cluster = Action.BUILD
    if _deadline(rayjob, step, now, "PreRunningDeadlineExceeded"):
        return
    if rayjob.spec.jobId:
        step.status.update(
            jobDeploymentStatus=RUNNING, jobId=rayjob.spec.jobId, jobStatus=oc.PENDING
        )
        step.service = rayjob.selected_cluster is None


def _running(rayjob: RayJob, step: Step, world: World, now: datetime) -> None:
    status = step.status
    if rayjob.selected_cluster is None:
        step.cluster, step.service = Action.BUILD, True
    if _suspend_or_deadline(rayjob, step, now, pre_running=False):
        return
    cluster = _cluster(rayjob, world, status["rayClusterName"])
    if cluster is not None:
        status["rayClusterStatus"] = dict(cluster.status)
    view = world.view(status)
    if rayjob.mode in (HTTP_MODE, INTERACTIVE_MODE):
        if _dashboard_silent(rayjob, step, view, now):
            return
        ended = rd.dashboard_outcome(rayjob, step, world, view)
    elif rayjob.mode == SIDECAR_MODE:
        ended = rd.sidecar_outcome(rayjob, step, world)
    else:
        ended = rd.submitter_outcome(rayjob, step, world, now)
    if ended is None and view is not None and view.info is not None:
        rd.show(step.status, view.info)  # live state, message and times while it runs
    if ended is not None:
        _end(rayjob, step, ended, now)
    elif world.dashboard is not None or rayjob.mode in (HTTP_MODE, INTERACTIVE_MODE):
        step.deadlines.append(now + timedelta(seconds=world.poll_seconds))


def _dashboard_silent(rayjob: RayJob, step: Step, view: Any, now: datetime) -> bool:
    """KubeRay's rule: a dashboard that fails every query (or refuses the submission) for 300 s
    fails the RayJob. Applied where the dashboard is the only source of the result (HTTPMode,
    InteractiveMode)."""
    status = step.status
    if view is None:
        return False
    silent = rd.silent_since(view)
    if silent is None:
        status.pop("jobStatusCheckFailureStartTime", None)
        return False
    since = status.setdefault("jobStatusCheckFailureStartTime", silent[0])
    started = parse_time(since) or now
    give_up = later(started, STATUS_CHECK_TIMEOUT_SECONDS)
    if give_up is None:
        return False  # past the calendar's end: never
    if give_up > now:
        step.deadlines.append(give_up)
        return False
    message = f"The Ray dashboard has given no word on the job since {since}: {silent[1]}"
    _fail(rayjob, step, "JobStatusCheckTimeoutExceeded", message, now)
    return True


def _end(rayjob: RayJob, step: Step, ended: oc.Outcome, now: datetime) -> None:
    status = step.status
    status.update(jobStatus=ended.ray_job_status, message=ended.message)
    if ended.start_time or ended.end_time:
        info = {"startTime": ended.start_time, "endTime": ended.end_time}
        status["rayJobInfo"] = {k: v for k, v in info.items() if v}
    if ended.succeeded:
        status.update(jobDeploymentStatus=COMPLETE, reason="", endTime=stamp(now))
        status["succeeded"] += 1
        _terminal(rayjob, step, None, now)
    else:
        _fail(rayjob, step, ended.reason, ended.message, now)


def _fail(rayjob: RayJob, step: Step, reason: str, message: str, now: datetime) -> None:
    """Failed, or Retrying at once when the RayJob has retries left (Failed is then never
    written for that attempt, as in KubeRay)."""
    status = step.status
    failed = status["failed"] + 1
    status.update(failed=failed, reason=reason, message=message)
    if reason not in NOT_RETRIED and failed < rayjob.spec.backoffLimit + 1:
        status["jobDeploymentStatus"] = RETRYING
        _retrying(rayjob, step, None, now)
        return
    status.update(jobDeploymentStatus=FAILED, endTime=stamp(now))
    _terminal(rayjob, step, None, now)


def _terminal(rayjob: RayJob, step: Step, world: World | None, now: datetime) -> None:
    """Complete or Failed: nothing changes any more but the clean-up the spec asks for."""
    ended = parse_time(step.status.get("endTime")) or now
    plan = teardown(rayjob, step.status, ended, now)
    step.cluster = {
        "DeleteCluster": Action.DELETE,
        "DeleteSelf": Action.KEEP,
        "DeleteWorkers": Action.SUSPEND_WORKERS,
    }.get(plan.due, Action.KEEP)
    step.delete_self = plan.due == "DeleteSelf"
    if step.delete_self:
        # The shell deletes the RayJob after the answer, best effort: look again soon in case
        # that failed, rather than wait for Metacontroller's rare periodic resync.
        step.deadlines.append(now + timedelta(seconds=DELETE_SELF_RETRY_SECONDS))
    step.service = rayjob.selected_cluster is None and step.status.get("rayClusterName") is not None
    if plan.next_at is not None:
        step.deadlines.append(plan.next_at)


def _suspend_or_deadline(rayjob: RayJob, step: Step, now: datetime, pre_running: bool) -> bool:
    if rayjob.spec.suspend:
        step.status["jobDeploymentStatus"] = SUSPENDING
        _suspending(rayjob, step, None, now)
        return True
    if _deadline(rayjob, step, now, "DeadlineExceeded"):
        return True
    return pre_running and _deadline(rayjob, step, now, "PreRunningDeadlineExceeded")


def _deadline(rayjob: RayJob, step: Step, now: datetime, reason: str) -> bool:
    """Fail the attempt if this deadline (counted from startTime) has passed; else note it."""
    field_name = _DEADLINE_FIELDS[reason]
    seconds = getattr(rayjob.spec, field_name)
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
    _fail(rayjob, step, reason, message, now)
    return True


def _retrying(rayjob: RayJob, step: Step, world: World | None, now: datetime) -> None:
    _finish_teardown(step, world, NEW)


def _suspending(rayjob: RayJob, step: Step, world: World | None, now: datetime) -> None:
    _finish_teardown(step, world, SUSPENDED)


def _finish_teardown(step: Step, world: World | None, then: str) -> None:
    """Delete the cluster and the submitter; only once neither is observed any more does the
    next state begin (Kueue relies on Suspended meaning nothing runs)."""
    step.cluster, step.submitter = Action.DELETE, Action.DELETE
    if world is None or world.clusters or world.submitter_jobs:
        return
    status = step.status
    for key in ATTEMPT_FIELDS:
        status.pop(key, None)
    status.update(jobDeploymentStatus=then, jobStatus="")


def _suspended(rayjob: RayJob, step: Step, world: World, now: datetime) -> None:
    step.cluster, step.submitter = Action.DELETE, Action.DELETE
    if not rayjob.spec.suspend:
        step.status["jobDeploymentStatus"] = NEW


def _cluster(rayjob: RayJob, world: World, name: str) -> ObservedObject | None:
    if rayjob.selected_cluster is not None:
        return world.related_clusters.get(name)
    found = world.clusters.get(name)
    return found if found is not None and found.metadata.deletionTimestamp is None else None


def _dashboard_url(name: str, rayjob: RayJob, cluster: ObservedObject, domain: str) -> str:
    spec = cluster.spec or (rayjob.spec.rayClusterSpec or {})
    return dashboard_url(name, rayjob.namespace, spec, domain)


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
