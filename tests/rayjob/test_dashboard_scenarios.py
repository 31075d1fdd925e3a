"""RayJobs whose state the Ray dashboard decides (HTTPMode, InteractiveMode), and the dashboard's
live word on the others: the core gets the shell's latest answer as a plain value."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest

from app.hooks.request import decode
from app.hooks.response import encode
from app.rayjob import sync as rayjob
from app.rayjob.dashboard import DashboardView, JobInfo, StopJob, SubmitJob
from app.rayjob.finalize import STOP_TIMEOUT_SECONDS
from app.rayjob.finalize import finalize as rayjob_finalize
from tests.rayjob.loop import OPTIONS, JobLoop, rayjob_object, user_cluster

READING = replace(OPTIONS, dashboard=True, dashboard_poll_seconds=5.0)


class DashboardLoop(JobLoop):
    """The loop, with the dashboard's answer the shell would hand over."""

    answer: DashboardView | None = None

    def decide(self, request: dict[str, Any]) -> Any:
        decoded = decode(orjson.dumps(request), related=True, raycluster=False)
        desired = rayjob.sync(
            decoded.parent, decoded.observed, decoded.related, self.now, READING, self.answer
        )
        return desired, orjson.loads(encode(desired))

    def dashboard_says(self, status: str | None, failing_since: str | None = None) -> None:
        url, job = self.address(), self.status["jobId"]
        info = JobInfo(status, f"job is {status}", "2026-01-01T00:00:03Z") if status else None
        error = "timed out" if failing_since else ""
        self.answer = DashboardView(url, job, info is not None, info, failing_since, error)


def ready(loop: JobLoop) -> None:
    for _ in range(4):
        loop.step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    loop.step()


def test_http_mode_submits_through_the_dashboard_and_follows_it() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode", runtimeEnvYAML="pip: [emoji]"))
    ready(loop)
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert loop.jobs() == []  # no submitter Job in HTTPMode
    step = loop.step()  # the dashboard has not been asked yet: nothing to do
    assert step.desired.intents == ()
    assert step.answer["resyncAfterSeconds"] == 7  # 5 s poll interval + 2 s margin
    loop.dashboard_says(None)  # 404: not submitted yet
    [submit] = loop.step().desired.intents
    assert isinstance(submit, SubmitJob)
    assert submit.body() == {
        "entrypoint": "python -c 'print(42)'",
        "submission_id": loop.status["jobId"],
        "runtime_env": {"pip": ["emoji"]},
    }
    loop.dashboard_says("RUNNING")
    assert loop.step().desired.intents == ()
    assert (loop.status["jobStatus"], loop.status["message"]) == ("RUNNING", "job is RUNNING")
    assert loop.status["rayJobInfo"] == {"startTime": "2026-01-01T00:00:03Z"}
    loop.dashboard_says("SUCCEEDED")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["jobStatus"]) == (
        "Complete",
        "SUCCEEDED",
    )


def test_http_mode_failure_is_an_app_failure_and_retried_with_a_fresh_cluster() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode", backoffLimit=1))
    ready(loop)
    first = loop.status["rayClusterName"]
    loop.dashboard_says("FAILED")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == ("Retrying", "AppFailed")
    loop.answer = None
    ready(loop)
    assert loop.status["rayClusterName"] != first


def test_an_answer_about_another_attempt_is_ignored() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode"))
    ready(loop)
    loop.answer = DashboardView("old-head:8265", "old-id", True, JobInfo("FAILED"))
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"


def test_a_silent_dashboard_fails_the_job_after_300_seconds_and_not_before() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode", backoffLimit=2))
    ready(loop)
    since = loop.stamp()
    loop.dashboard_says(None, failing_since=since)
    step = loop.step()
    assert loop.status["jobStatusCheckFailureStartTime"] == since
    assert step.desired.intents == ()  # no submission while the dashboard cannot be asked
    loop.now += timedelta(seconds=290)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    loop.now += timedelta(seconds=10)
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["reason"]) == (
        "Failed",
        "JobStatusCheckTimeoutExceeded",
    )
    assert loop.status["failed"] == 1  # not retried
    assert "timed out" in loop.status["message"]


def test_a_dashboard_that_answers_again_clears_the_failure_time() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode"))
    ready(loop)
    loop.dashboard_says(None, failing_since=loop.stamp())
    loop.step()
    loop.dashboard_says("RUNNING")
    loop.step()
    assert "jobStatusCheckFailureStartTime" not in loop.status


def test_interactive_mode_waits_for_the_users_job_id_then_follows_it() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="InteractiveMode", entrypoint=None))
    ready(loop)
    assert loop.status["jobDeploymentStatus"] == "Waiting"
    assert "jobId" not in loop.status
    assert loop.jobs() == []
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Waiting"
    loop.edit(jobId="raysubmit_abc")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["jobId"]) == (
        "Running",
        "raysubmit_abc",
    )
    loop.dashboard_says("STOPPED")
    loop.step()
    assert (loop.status["jobDeploymentStatus"], loop.status["jobStatus"]) == (
        "Complete",
        "STOPPED",
    )


def test_interactive_mode_pre_running_deadline_while_waiting() -> None:
    spec = {
        "submissionMode": "InteractiveMode",
        "entrypoint": None,
        "preRunningDeadlineSeconds": 60,
    }
    loop = DashboardLoop(rayjob_object(**spec))
    ready(loop)
    loop.now += timedelta(seconds=60)
    loop.step()
    assert loop.status["reason"] == "PreRunningDeadlineExceeded"


def test_k8s_job_mode_shows_the_live_state_but_the_submitter_decides() -> None:
    loop = DashboardLoop(rayjob_object())
    ready(loop)
    loop.submitter_runs()
    loop.dashboard_says("RUNNING")
    loop.step()
    assert (loop.status["jobStatus"], loop.status["message"]) == ("RUNNING", "job is RUNNING")
    loop.dashboard_says("SUCCEEDED")  # the dashboard is ahead: the submitter has not ended
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    loop.submitter_exits(0, "SUCCEEDED", "done")
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Complete"


def test_k8s_job_mode_is_not_failed_by_a_dashboard_metaray_cannot_reach() -> None:
    loop = DashboardLoop(rayjob_object())
    ready(loop)
    loop.dashboard_says(None, failing_since=loop.stamp())
    loop.now += timedelta(seconds=600)
    loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"


def test_deleting_a_selector_rayjob_stops_the_job_through_the_dashboard() -> None:
    loop = DashboardLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    loop.related_clusters["mine"] = user_cluster("mine")
    loop.user_head("mine", "10.1.2.3")
    for _ in range(3):
        loop.step()
    parent = copy.deepcopy(loop.parent)
    parent["metadata"]["deletionTimestamp"] = loop.stamp()
    assert loop.watched(parent) == ("10.1.2.3:8265", loop.status["jobId"])
    request = decode(orjson.dumps(loop.request(parent)), related=True, raycluster=False)

    def finalize(view: DashboardView | None, seconds: int = 0) -> Any:
        now = loop.now + timedelta(seconds=seconds)
        return rayjob_finalize(parent, request.observed, request.related, now, READING, view)

    first = finalize(None)
    assert first.finalized is False
    assert first.intents == (StopJob("10.1.2.3:8265", loop.status["jobId"]),)
    assert all(c["metadata"]["name"] != "job-stop" for c in first.children)  # no stop Job
    loop.dashboard_says("RUNNING")
    assert finalize(loop.answer).finalized is False
    loop.dashboard_says("STOPPED")
    assert finalize(loop.answer).finalized is True
    loop.dashboard_says("RUNNING")
    assert finalize(loop.answer, seconds=STOP_TIMEOUT_SECONDS).finalized is True


def test_nothing_is_watched_once_the_job_is_over() -> None:
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode"))
    assert loop.watched() is None
    ready(loop)
    assert loop.watched() is not None
    loop.dashboard_says("SUCCEEDED")
    loop.step()
    assert loop.watched() is None


@pytest.mark.parametrize(
    "url",
    [
        "169.254.169.254:80",
        "kubernetes.default.svc:443",
        "head-svc.other-namespace.svc.cluster.local:8265",
        "evil.example.com:8265",
        "head-svc.default.svc.cluster.local:0",
        "head-svc.default.svc.cluster.local",
    ],
)
def test_a_status_edited_to_point_elsewhere_makes_metaray_call_nothing(url: str) -> None:
    """Anyone who may write a RayJob's status could aim the hook at any address: the shell
    calls only the address derived from the RayJob's own head Service, whatever the status says."""
    loop = DashboardLoop(rayjob_object(submissionMode="HTTPMode"))
    ready(loop)
    loop.step()  # the head Service is observed
    derived = loop.address()
    assert derived == "job-head-svc.default.svc.cluster.local:8265"
    loop.parent["status"]["dashboardURL"] = url
    assert loop.watched() == (derived, loop.status["jobId"])
    loop.answer = DashboardView(url, loop.status["jobId"], found=False)
    assert loop.step().desired.intents == ()  # a view about another address is not read
    loop.answer = DashboardView(derived, loop.status["jobId"], found=False)
    [submit] = loop.step().desired.intents
    assert submit.url == derived
