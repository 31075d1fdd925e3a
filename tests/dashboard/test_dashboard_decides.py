"""Over HTTP with the poller on: a submission Ray refuses shows in the RayJob and starts
KubeRay's 300 s rule; a user's own submitter's exit code does not decide the Ray job's result,
the dashboard does."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from app.shell.ray.poller import Dashboards
from tests.dashboard.fake import FakeDashboard, info
from tests.dashboard.test_hooks_with_dashboard import app_with, driven, until_running
from tests.rayjob.loop import START, JobLoop, rayjob_object

RUNTIME_ENV_ERROR = (
    "Traceback (most recent call last):\n"
    "ValueError: runtime_env field 'pip' failed validation: package 'no-such-package' "
    + "not found. "
    * 300
)


async def _refuse(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, text=RUNTIME_ENV_ERROR)


async def carried_out(fake: FakeDashboard, posts: int) -> None:
    """Wait (a bounded number of turns) for the shell to post what the answer asked."""
    for _ in range(200):
        if len(fake.posts()) >= posts:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"expected {posts} posts, saw {len(fake.posts())}")


def test_a_submission_ray_refuses_shows_in_status_and_fails_after_300_seconds() -> None:
    fake, clock = FakeDashboard(post=_refuse), [START]
    loop = JobLoop(rayjob_object(submissionMode="HTTPMode", backoffLimit=3))
    app = app_with(fake, clock, dashboard_interval_seconds=0.0)
    dashboards: Dashboards = app.state.dashboards
    step = driven(app, loop, clock)

    async def scenario() -> None:
        await until_running(step, loop)
        await step()  # watched from now on
        await dashboards.poll_once()  # 404: not submitted yet
        await step()  # asks to submit; Ray refuses
        await carried_out(fake, 1)
        await step()
        status = loop.status
        assert status["jobDeploymentStatus"] == "Running"
        assert "no-such-package" in status["message"]
        assert len(status["message"]) <= 1024
        assert START.strftime("%Y-%m-%dT%H:%M:%SZ") < status["jobStatusCheckFailureStartTime"]
        loop.now += timedelta(seconds=300)
        await step()
        status = loop.status
        assert (status["jobDeploymentStatus"], status["reason"]) == (
            "Failed",
            "JobStatusCheckTimeoutExceeded",
        )
        assert status["failed"] == 1  # KubeRay does not retry this reason
        await dashboards.stop()

    asyncio.run(scenario())


def test_a_refusal_is_forgotten_once_ray_takes_the_job() -> None:
    refusing = [True]

    async def post(request: httpx.Request) -> httpx.Response:
        if refusing[0]:
            return httpx.Response(400, text="try again later")
        return fake.ray(request)

    fake, clock = FakeDashboard(post=post), [START]
    loop = JobLoop(rayjob_object(submissionMode="HTTPMode"))
    app = app_with(fake, clock, dashboard_interval_seconds=0.0)
    dashboards: Dashboards = app.state.dashboards
    step = driven(app, loop, clock)

    async def scenario() -> None:
        await until_running(step, loop)
        await step()
        await dashboards.poll_once()
        await step()
        await carried_out(fake, 1)
        await step()
        assert "try again later" in loop.status["message"]
        refusing[0] = False
        await carried_out(fake, 2)
        await dashboards.poll_once()
        fake.jobs[loop.status["jobId"]] = info("RUNNING")
        await dashboards.poll_once()
        await step()
        assert "jobStatusCheckFailureStartTime" not in loop.status
        assert loop.status["jobStatus"] == "RUNNING"
        await dashboards.stop()

    asyncio.run(scenario())


LIGHT_WEIGHT_SUBMITTER: dict[str, Any] = {  # KubeRay's ray-job.light-weight-submitter.yaml
    "spec": {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "my-custom-rayjob-submitter",
                "image": "quay.io/kuberay/submitter:v1.5.1",
                "command": ["/submitter"],
                "args": ["--runtime-env-json", "{}", "--", "python", "/home/ray/samples/x.py"],
            }
        ],
    }
}


def users_submitter_scenario(dashboard_says: str | None, wait: int = 0) -> dict[str, Any]:
    fake, clock = FakeDashboard(), [START]
    loop = JobLoop(rayjob_object(submitterPodTemplate=LIGHT_WEIGHT_SUBMITTER))
    app = app_with(fake, clock, dashboard_interval_seconds=0.0)
    dashboards: Dashboards = app.state.dashboards
    step = driven(app, loop, clock)

    async def scenario() -> None:
        await until_running(step, loop)
        await step()  # watched
        if dashboard_says is not None:
            fake.jobs[loop.status["jobId"]] = info(dashboard_says)
        await dashboards.poll_once()
        loop.submitter_exits(0)  # the user's submitter exits 0 whatever the job did
        await step()
        loop.now += timedelta(seconds=wait)
        await step()
        await dashboards.stop()

    asyncio.run(scenario())
    return loop.status


def test_a_users_submitter_exiting_0_while_the_dashboard_says_failed_fails_the_rayjob() -> None:
    status = users_submitter_scenario("FAILED")
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Failed", "FAILED")
    assert status["reason"] == "AppFailed"


def test_a_users_submitter_exiting_0_while_the_dashboard_says_succeeded_completes() -> None:
    status = users_submitter_scenario("SUCCEEDED")
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED")


def test_a_users_submitter_done_without_a_final_word_fails_after_30_seconds() -> None:
    waiting = users_submitter_scenario("RUNNING", wait=0)
    assert waiting["jobDeploymentStatus"] == "Running"
    status = users_submitter_scenario("RUNNING", wait=31)
    assert (status["jobDeploymentStatus"], status["reason"]) == (
        "Failed",
        "JobDeploymentStatusTransitionGracePeriodExceeded",
    )
    assert status["jobStatus"] == "FAILED"
