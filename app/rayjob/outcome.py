"""What the submitter says about the Ray job: its exit code, and its termination message.

metaray's submitter exits 0 (SUCCEEDED), 64 (FAILED), 65 (STOPPED) or 66 (the job vanished, e.g.
a head restart wiped the GCS), and leaves ``{status, message, startTime, endTime}`` as its
container's termination message. The Job's own conditions carry the exit code too (a
``podFailurePolicy`` rule names it), so the result is known even when its pods are gone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.core.observed import ContainerStatus, ObservedObject, ObservedPod, Terminated
from app.core.time import normalise
from app.rayjob import submitter

SUCCEEDED, FAILED, STOPPED = "SUCCEEDED", "FAILED", "STOPPED"
PENDING, RUNNING = "PENDING", "RUNNING"
_BY_EXIT = {
    submitter.SUCCEEDED_EXIT: SUCCEEDED,
    submitter.FAILED_EXIT: FAILED,
    submitter.STOPPED_EXIT: STOPPED,
    submitter.NOT_FOUND_EXIT: FAILED,
}
NOT_FOUND_MESSAGE = "Submitter completed but Ray job not found in RayCluster."
_EXIT_CODE = re.compile(r"exit code (\d+)")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended, as the submitter reported it."""

    ray_job_status: str  # SUCCEEDED, FAILED, STOPPED, or "" when the submission itself broke
    message: str = ""
    start_time: str | None = None
    end_time: str | None = None
    failure: str | None = None  # a reason of its own, where the job status does not tell

    @property
    def succeeded(self) -> bool:
        return self.ray_job_status in (SUCCEEDED, STOPPED)

    @property
    def reason(self) -> str:
        if self.failure is not None:
            return self.failure
        return "AppFailed" if self.ray_job_status == FAILED else "SubmissionFailed"


def of_submitter_job(
    submitter_job: ObservedObject, pods: Iterable[ObservedPod], ours: bool
) -> Outcome | None:
    """The outcome of a finished submitter Job, or None while it runs."""
    report = _report(pods, submitter.CONTAINER)
    if submitter_job.has_condition("Complete"):
        if report is not None and report.ray_job_status:
            return report
        if ours:
            return Outcome(SUCCEEDED, report.message if report else "")
        return Outcome(
            SUCCEEDED,
            "the submitter's own command exited 0; metaray cannot tell the Ray job's result",
        )
    if not submitter_job.has_condition("Failed"):
        return None
    code = _exit_code(submitter_job) if ours else None
    if code in _BY_EXIT:
        return _from_exit(code, report)
    return Outcome("", f"the submitter Job failed: {_condition_message(submitter_job, 'Failed')}")


def of_container(status: ContainerStatus) -> Outcome | None:
    """The outcome of a SidecarMode submitter container, or None while it runs."""
    ended = _terminated(status)
    if ended is None:
        return None
    report = _parse(ended.message)
    if ended.exitCode in _BY_EXIT:
        return _from_exit(ended.exitCode, report)
    return Outcome("", f"the submitter container exited with code {ended.exitCode}")


def _from_exit(code: int, report: Outcome | None) -> Outcome:
    status = _BY_EXIT[code]
    message = NOT_FOUND_MESSAGE if code == submitter.NOT_FOUND_EXIT else ""
    if report is not None and report.ray_job_status == status:
        return Outcome(status, report.message or message, report.start_time, report.end_time)
    return Outcome(status, message)


def _report(pods: Iterable[ObservedPod], container: str) -> Outcome | None:
    """The newest termination message the submitter left, if any pod still shows one."""
    found: list[tuple[str, Outcome]] = []
    for pod in pods:
        for status in pod.status.containerStatuses:
            ended = _terminated(status) if status.name == container else None
            report = _parse(ended.message) if ended is not None else None
            if ended is not None and report is not None:
                found.append((ended.finishedAt or "", report))
    return max(found, key=lambda item: item[0])[1] if found else None


def _terminated(status: ContainerStatus) -> Terminated | None:
    for state in (status.state, status.lastState):
        if state is not None and state.terminated is not None:
            return state.terminated
    return None


def _parse(message: str | None) -> Outcome | None:
    if not message:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):  # the submitter's own words: anything at all
        return None
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    text = data.get("message")
    return Outcome(
        status if status in (SUCCEEDED, FAILED, STOPPED) else "",
        text if isinstance(text, str) else "",
        _time(data.get("startTime")),
        _time(data.get("endTime")),
    )


def _time(value: object) -> str | None:
    """A time the submitter reported, in the API server's form; anything else is dropped (one
    bad date would make the API server refuse every status write)."""
    return normalise(value) if isinstance(value, str) else None


def _exit_code(submitter_job: ObservedObject) -> int | None:
    match = _EXIT_CODE.search(_condition_message(submitter_job, "Failed"))
    return int(match.group(1)) if match else None


def condition_time(submitter_job: ObservedObject, kind: str) -> str | None:
    """When the Job's condition of that kind became true."""
    for condition in submitter_job.status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            moment = condition.get("lastTransitionTime")
            return moment if isinstance(moment, str) else None
    return None


def _condition_message(submitter_job: ObservedObject, kind: str) -> str:
    for condition in submitter_job.status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            reason, message = condition.get("reason") or "", condition.get("message") or ""
            return f"{reason}: {message}" if reason and message else str(reason or message)
    return ""
