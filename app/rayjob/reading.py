"""Reading how a running attempt is doing: from the submitter Job and its pods (K8sJobMode),
the head pod's submitter container (SidecarMode), or the Ray dashboard (HTTPMode,
InteractiveMode, and a user's own submitter, whose exit code says nothing about the job)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core import labels as lbl
from app.core.observed import ObservedObject, ObservedPod
from app.core.time import later, parse_time
from app.rayjob import outcome as oc
from app.rayjob.dashboard import TERMINAL as TERMINAL_RAY_JOB_STATES
from app.rayjob.dashboard import DashboardView, JobInfo, SubmitJob
from app.rayjob.names import submitter_job_name
from app.rayjob.spec import HTTP_MODE, RayJob, submitter_command
from app.rayjob.submitter import CONTAINER
from app.rayjob.world import Action, Step, World

READY = "ready"
# KubeRay's DefaultSubmitterFinishedTimeout: a submitter done this long without a final word
# from the dashboard fails the attempt.
SUBMITTER_FINISHED_TIMEOUT_SECONDS = 30
GRACE_EXCEEDED = "JobDeploymentStatusTransitionGracePeriodExceeded"
# The Job controller's labels on a Job's pods: the Job's uid (names repeat across attempts).
_UID_LABELS = ("batch.kubernetes.io/controller-uid", lbl.CONTROLLER_UID)


def dashboard_outcome(
    rayjob: RayJob, step: Step, world: World, view: DashboardView | None
) -> oc.Outcome | None:
    """HTTPMode and InteractiveMode: the dashboard alone knows the job; HTTPMode submits it
    (again, after a head restart wiped it, or after Ray refused it) whenever the dashboard
    does not know it."""
    status = step.status
    if view is None or view.failing_since is not None:
        return None
    if view.info is None:
        if rayjob.mode == HTTP_MODE and world.address is not None:
            step.intents.append(submission(rayjob, status, world.address))
            if view.refused:
                status["message"] = f"Ray refused to submit job {status.get('jobId')}: " + (
                    view.refused
                )
        else:
            status["message"] = f"Ray job {status.get('jobId')} not found on the dashboard"
        return None
    return _final(view.info)


def _final(info: JobInfo) -> oc.Outcome | None:
    if info.status not in TERMINAL_RAY_JOB_STATES:
        return None
    return oc.Outcome(info.status, info.message, info.start_time, info.end_time)


def silent_since(view: DashboardView | None) -> tuple[str, str] | None:
    """Since when, and why, the dashboard gives no word on the job: every query failed, or
    (while it does not know the job) Ray refused to take it. None while it answers."""
    if view is None:
        return None
    if view.failing_since is not None:
        return view.failing_since, view.error
    if view.info is None and view.refused_since is not None:
        return view.refused_since, f"Ray refused the submission: {view.refused}"
    return None


def submission(rayjob: RayJob, status: Mapping[str, Any], url: str) -> SubmitJob:
    spec = rayjob.spec
    return SubmitJob(
        url=url,
        job_id=str(status.get("jobId")),
        entrypoint=(spec.entrypoint or "").strip(),
        runtime_env=rayjob.runtime_env,
        metadata=dict(spec.metadata),
        entrypoint_num_cpus=spec.entrypointNumCpus or None,
        entrypoint_num_gpus=spec.entrypointNumGpus or None,
        entrypoint_resources=rayjob.entrypoint_resources,
    )


def show(status: dict[str, Any], info: JobInfo) -> None:
    status.update(jobStatus=info.status, message=info.message)
    times = {"startTime": info.start_time, "endTime": info.end_time}
    if any(times.values()):
        status["rayJobInfo"] = {k: v for k, v in times.items() if v}


def submitter_outcome(rayjob: RayJob, step: Step, world: World, now: datetime) -> oc.Outcome | None:
    step.submitter = Action.BUILD
    observed = world.submitter_jobs.get(submitter_job_name(rayjob.name))
    if observed is None:
        return None
    pods = [p for p in world.related_pods if _of_submitter_job(p, observed)]
    ours = not submitter_command(rayjob.spec.submitterPodTemplate)
    ended = oc.of_submitter_job(observed, pods, ours=ours)
    if ended is None:
        running = any(p.running and not p.terminating for p in pods)
        step.status["jobStatus"] = oc.RUNNING if running else oc.PENDING
        return None
    if ours or not world.reads_dashboard or not observed.has_condition("Complete"):
        return ended
    return _users_submitter_done(step, world, observed, now)


def _of_submitter_job(pod: ObservedPod, submitter_job: ObservedObject) -> bool:
    """Whether the pod is this Job's (not a pod of an earlier Job of the same name)."""
    uid = submitter_job.metadata.uid
    if not uid:
        return False
    labels = pod.metadata.labels
    owned = any(ref.uid == uid for ref in pod.metadata.ownerReferences)
    return owned or any(labels.get(key) == uid for key in _UID_LABELS)


def _users_submitter_done(
    step: Step, world: World, observed: ObservedObject, now: datetime
) -> oc.Outcome | None:
    """A user's own submitter exited 0, which says only that it is done: as in KubeRay, the
    dashboard's final state decides, and if it gives none within 30 s the attempt fails."""
    view = world.view(step.status)
    if view is not None and view.failing_since is None:
        if view.info is not None:
            final = _final(view.info)
            if final is not None:
                return final
        elif not view.found:
            return oc.Outcome(oc.FAILED, oc.NOT_FOUND_MESSAGE)
    finished = parse_time(oc.condition_time(observed, "Complete")) or now
    give_up = later(finished, SUBMITTER_FINISHED_TIMEOUT_SECONDS)
    if give_up is not None and give_up > now:
        step.deadlines.append(give_up)
        return None
    message = (
        f"The submitter finished at {oc.condition_time(observed, 'Complete')} and the Ray "
        f"dashboard gave no final state within {SUBMITTER_FINISHED_TIMEOUT_SECONDS} s"
    )
    return oc.Outcome(oc.FAILED, message, failure=GRACE_EXCEEDED)


def sidecar_outcome(rayjob: RayJob, step: Step, world: World) -> oc.Outcome | None:
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
