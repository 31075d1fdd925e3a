"""The RayJob hooks with the dashboard poller on, over HTTP: what the dashboard says reaches the
status, the core's intents reach the dashboard, and a dashboard that is slow, broken or lying
never costs a sync answer, its latency, or a child."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.shell.http.app import create_app
from app.shell.ray.poller import Dashboards
from app.shell.settings import Settings
from tests.dashboard.fake import FakeDashboard, info
from tests.rayjob.loop import JobLoop, rayjob_object

HEADERS = {"Content-Type": "application/json"}


def app_with(fake: FakeDashboard, clock: list[datetime], **settings: Any) -> Any:
    options = {"events": "off", "dashboard_timeout_seconds": 0.2, **settings}
    return create_app(
        Settings(**options), dashboard_transport=fake.transport(), clock=lambda: clock[0]
    )


def driven(app: Any, loop: JobLoop, clock: list[datetime]) -> Callable[[], Awaitable[None]]:
    """The loop's syncs answered by the app over HTTP, in the running event loop."""

    async def step() -> None:
        loop.now += loop.tick
        clock[0] = loop.now
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
            response = await client.post(
                "/rayjob/sync", content=json.dumps(loop.request()).encode(), headers=HEADERS
            )
        assert response.status_code == 200, response.text
        answer = response.json()
        loop.decide = lambda request: (None, answer)  # type: ignore[method-assign]
        loop.now -= loop.tick  # step() moves the clock itself
        loop.step()

    return step


async def until_running(step: Callable[[], Awaitable[None]], loop: JobLoop) -> None:
    for _ in range(6):
        await step()
        if loop.status.get("rayClusterName") in loop.clusters():
            break
    loop.cluster_ready()
    await step()
    assert loop.status["jobDeploymentStatus"] == "Running"


def test_http_mode_runs_to_completion_through_a_dashboard() -> None:
    fake, clock = FakeDashboard(), [datetime.now()]
    loop = JobLoop(rayjob_object(submissionMode="HTTPMode"))
    app = app_with(fake, clock, dashboard_interval_seconds=0.0)  # every poll_once asks
    dashboards: Dashboards = app.state.dashboards
    step = driven(app, loop, clock)

    async def scenario() -> None:
        await until_running(step, loop)
        job_id = loop.status["jobId"]
        await step()  # the RayJob is watched from now on
        await dashboards.poll_once()  # 404: not submitted yet
        await step()  # the answer asks to submit; the poller's tasks do it
        await dashboards.intents_done()
        assert [r.url.path for r in fake.posts()] == ["/api/jobs/"]
        assert json.loads(fake.posts()[0].content)["submission_id"] == job_id
        fake.jobs[job_id] = info("RUNNING")
        await dashboards.poll_once()
        await step()
        assert loop.status["jobStatus"] == "RUNNING"
        fake.jobs[job_id] = info("SUCCEEDED")
        await dashboards.poll_once()
        await step()
        assert loop.status["jobDeploymentStatus"] == "Complete"
        assert loop.status["rayJobInfo"]["startTime"].startswith("2026-12-02T04:12:08")
        await dashboards.stop()

    asyncio.run(scenario())


async def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="unavailable")


async def _garbage(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"\x00not json{")


async def _lying(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"status": "EXPLODED", "message": 3})


async def _missing(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, text="no")


HANG_SECONDS = 5.0


async def _hanging(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(HANG_SECONDS)
    return httpx.Response(200, json=info("SUCCEEDED"))


@pytest.mark.parametrize(
    "answer",
    [_unavailable, _garbage, _lying, _missing, _hanging],
    ids=["503", "garbage", "unknown-status", "404", "5-second-hang"],
)
def test_a_bad_dashboard_costs_no_answer_no_child_and_no_latency(
    answer: Callable[[httpx.Request], Awaitable[httpx.Response]],
) -> None:
    """HTTPMode RayJobs (where the dashboard decides, and is asked to submit), the poller
    running for real: every sync answers at once and keeps its children while every
    dashboard request fails or hangs."""
    fake, clock = FakeDashboard(get=answer, post=answer), [datetime.now()]
    loop = JobLoop(rayjob_object(submissionMode="HTTPMode"))
    app = app_with(fake, clock, dashboard_interval_seconds=0.05)
    dashboards: Dashboards = app.state.dashboards
    step = driven(app, loop, clock)

    async def scenario() -> None:
        dashboards.start()
        await until_running(step, loop)
        children = set(loop.children)
        for _ in range(15):
            # Half the hang: a sync that waited for the dashboard could not make it (and no
            # tight threshold that a loaded machine would break).
            await asyncio.wait_for(step(), HANG_SECONDS / 2)
            await asyncio.sleep(0.02)  # let the poller ask (and fail) in between
            assert set(loop.children) == children, "a child was lost"
        assert fake.gets(), "the poller never asked the dashboard"
        assert loop.status["jobDeploymentStatus"] == "Running"
        await dashboards.stop()

    asyncio.run(scenario())


def test_with_the_dashboard_off_http_mode_says_it_needs_it() -> None:
    fake, clock = FakeDashboard(), [datetime.now()]
    app = app_with(fake, clock, dashboard=False)
    assert app.state.dashboards is None
    loop = JobLoop(rayjob_object(submissionMode="HTTPMode"))
    step = driven(app, loop, clock)
    asyncio.run(step())
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    assert "METARAY_DASHBOARD=off" in loop.status["message"]
    assert fake.requests == []
