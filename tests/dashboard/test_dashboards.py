"""``app.shell.ray.poller.Dashboards`` against fake Ray dashboards (httpx.MockTransport): polling,
views, failures, expiry and limits, submit/stop intents, metrics. The loop is driven one step
at a time (``poll_once``) on fake clocks, except where its timing is the point."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.rayjob.dashboard import DashboardView, JobInfo, StopJob, SubmitJob
from app.shell.ray.poller import Dashboards
from app.shell.ray.wire import base_url, job_info, shown, stamp_ms
from tests.dashboard.fake import (
    URL,
    Clocks,
    FakeDashboard,
    dashboards,
    info,
    requests,
)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def hanging(fake: FakeDashboard) -> asyncio.Event:
    """Every request to ``fake`` hangs until the returned event is set (never, unless a test
    does): no answer can arrive by itself, whatever the machine's load."""
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return fake.ray(request)

    fake.get = fake.post = hang
    return release


async def until(condition: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``condition`` holds; the 10 s bound only turns a bug into a
    failure instead of a hang, it is never what the test measures."""

    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(wait(), 10)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


STARTED = "2026-12-02T04:12:08Z"
ENDED = "2026-12-02T04:12:10Z"


# -- pure helpers ------------------------------------------------------------------------------


def test_urls_get_http_unless_they_have_a_scheme() -> None:
    assert base_url("svc.ns.svc:8265") == "http://svc.ns.svc:8265"
    assert base_url("https://svc:8265/") == "https://svc:8265"
    assert shown("http://user:pw@svc:8265/x") == "http://svc:8265/x"
    assert shown("svc:8265") == "svc:8265"


def test_ray_milliseconds_become_rfc3339_seconds() -> None:
    assert stamp_ms(1_796_184_728_812) == STARTED
    for nothing in (0, None, "1", True, -5, 10**30):
        assert stamp_ms(nothing) is None


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"message": "no status"}', b'{"status": "WEIRD"}', b'["RUNNING"]', b""],
)
def test_garbage_is_no_job_info(body: bytes) -> None:
    assert job_info(body) is None


# -- polling -------------------------------------------------------------------------------------


def test_a_job_goes_pending_running_succeeded() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(), Clocks()
        client, _, registry = dashboards(fake, clocks)
        assert client.view(URL, "job-1") is None
        client.watch(URL, "job-1")
        assert client.view(URL, "job-1") is None  # before the first answer
        seen = []
        for status in ("PENDING", "RUNNING", "SUCCEEDED"):
            fake.jobs["job-1"] = info(status)
            await client.poll_once()
            seen.append(client.view(URL, "job-1"))
            clocks.advance(3)
        await client.stop()
        assert [v.info.status for v in seen if v and v.info] == ["PENDING", "RUNNING", "SUCCEEDED"]
        assert seen[-1] == DashboardView(
            URL,
            "job-1",
            found=True,
            info=JobInfo("SUCCEEDED", "Job is succeeded.", STARTED, ENDED),
        )
        assert seen[0] is not None and seen[0].info is not None
        assert seen[0].info.end_time is None  # Ray's end_time 0
        assert seen[-1] is not None and seen[-1].about(URL, "job-1")
        assert [str(r.url) for r in fake.gets()] == [f"http://{URL}/api/jobs/job-1"] * 3
        assert requests(registry, "get", "ok") == 3

    run(main())


def test_a_job_is_polled_every_interval_not_more() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(jobs={"job-1": info("RUNNING")}), Clocks()
        client, _, _ = dashboards(fake, clocks, interval=3.0)
        client.watch(URL, "job-1")
        await client.poll_once()
        client.watch(URL, "job-1")  # a sync: refreshes, does not poll again
        await client.poll_once()
        clocks.advance(2.9)
        await client.poll_once()
        assert len(fake.gets()) == 1
        clocks.advance(0.1)
        await client.poll_once()
        assert len(fake.gets()) == 2
        await client.stop()

    run(main())


def test_404_is_not_found_and_no_error() -> None:
    async def main() -> None:
        fake = FakeDashboard()
        client, _, registry = dashboards(fake)
        client.watch(URL, "job-1")
        await client.poll_once()
        assert client.view(URL, "job-1") == DashboardView(URL, "job-1", found=False)
        assert requests(registry, "get", "not_found") == 1
        assert requests(registry, "get", "error") == 0
        await client.stop()

    run(main())


def _failing(answer: httpx.Response | None = None) -> Any:
    async def get(request: httpx.Request) -> httpx.Response:
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    return get


@pytest.mark.parametrize(
    ("answer", "error", "outcome"),
    [
        (httpx.Response(500, text="Internal Server Error"), "HTTP 500", "error"),
        (httpx.Response(503, text="x"), "HTTP 503", "error"),
        (httpx.Response(200, text="not json"), "the answer is not a Ray job's info", "error"),
        (
            httpx.Response(200, json={"message": "hi"}),
            "the answer is not a Ray job's info",
            "error",
        ),
        (
            httpx.Response(200, json={"status": "WEIRD"}),
            "the answer is not a Ray job's info",
            "error",
        ),
        (httpx.Response(200, json=["RUNNING"]), "the answer is not a Ray job's info", "error"),
        (None, "ConnectError", "error"),
    ],
)
def test_a_failure_keeps_the_last_answer_and_says_since_when(
    answer: httpx.Response | None, error: str, outcome: str
) -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(jobs={"job-1": info("RUNNING")}), Clocks()
        client, _, registry = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        await client.poll_once()
        good = client.view(URL, "job-1")
        assert good is not None and good.found and good.failing_since is None

        fake.get = _failing(answer)
        clocks.advance(3)
        await client.poll_once()
        first = client.view(URL, "job-1")
        assert first == DashboardView(
            URL, "job-1", True, good.info, failing_since="2026-12-02T05:00:03Z", error=error
        )
        clocks.advance(3)
        await client.poll_once()
        second = client.view(URL, "job-1")
        assert second is not None and second.failing_since == "2026-12-02T05:00:03Z"  # kept
        assert requests(registry, "get", outcome) == 2

        fake.get = None
        fake.jobs["job-1"] = info("SUCCEEDED")
        clocks.advance(3)
        await client.poll_once()
        healed = client.view(URL, "job-1")
        assert healed is not None and healed.failing_since is None and healed.error == ""
        assert healed.info is not None and healed.info.status == "SUCCEEDED"
        await client.stop()

    run(main())


def test_a_failure_before_any_answer_has_no_info() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(get=_failing(httpx.Response(502))), Clocks()
        client, _, _ = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        await client.poll_once()
        view = client.view(URL, "job-1")
        assert view == DashboardView(
            URL, "job-1", False, None, failing_since="2026-12-02T05:00:00Z", error="HTTP 502"
        )
        await client.stop()

    run(main())


def test_a_404_after_an_answer_forgets_the_job() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(jobs={"job-1": info("RUNNING")}), Clocks()
        client, _, _ = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        await client.poll_once()
        del fake.jobs["job-1"]  # a head restart without GCS fault tolerance
        clocks.advance(3)
        await client.poll_once()
        assert client.view(URL, "job-1") == DashboardView(URL, "job-1", found=False)
        await client.stop()

    run(main())


def test_a_timeout_is_a_failure_within_the_timeout() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(), Clocks()
        hanging(fake)  # no answer ever: only the timeout can end the poll
        client, _, registry = dashboards(fake, clocks, timeout=0.05)
        client.watch(URL, "job-1")
        await asyncio.wait_for(client.poll_once(), 10)
        view = client.view(URL, "job-1")
        assert view is not None and view.error == "timed out after 0.05 s"
        assert view.failing_since == "2026-12-02T05:00:00Z"
        assert requests(registry, "get", "timeout") == 1
        await client.stop()

    run(main())


def test_a_huge_answer_is_garbage() -> None:
    async def main() -> None:
        body = b'{"status": "RUNNING", "message": "' + b"x" * (2 << 20) + b'"}'
        fake = FakeDashboard(get=_failing(httpx.Response(200, content=body)))
        client, _, _ = dashboards(fake)
        client.watch(URL, "job-1")
        await client.poll_once()
        view = client.view(URL, "job-1")
        assert view is not None and view.error == "the answer is too large"
        await client.stop()

    run(main())


def test_failures_are_logged_once_per_kind_and_dashboard(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(get=_failing(httpx.Response(500))), Clocks()
        client, _, _ = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        client.watch(URL, "job-2")
        for _ in range(3):
            await client.poll_once()
            clocks.advance(3)
        fake.get = _failing(None)
        await client.poll_once()
        clocks.advance(3)
        fake.get = None  # works again: the next failure is logged again
        await client.poll_once()
        clocks.advance(3)
        fake.get = _failing(httpx.Response(500))
        await client.poll_once()
        await client.stop()

    with caplog.at_level(logging.WARNING, logger="metaray.dashboard"):
        run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "metaray.dashboard"]
    expected = f"cannot read a Ray job's status from the dashboard {URL}: "
    assert lines == [expected + "HTTP 500", expected + "ConnectError", expected + "HTTP 500"]


# -- a slow dashboard does not slow the hook ------------------------------------------------------


def test_a_hanging_dashboard_never_blocks_watch_or_view_nor_stop() -> None:
    """40 jobs on a dashboard that never answers, 16 requests at most: the loop keeps exactly
    16 in flight; watch()/view() meanwhile are plain calls that send nothing and start
    nothing; stop() gives the hanging requests up instead of waiting for them."""

    async def main() -> None:
        fake = FakeDashboard(jobs={f"job-{i}": info("RUNNING") for i in range(40)})
        release = hanging(fake)
        client = Dashboards(  # a timeout far beyond the test: only stop() can end a request
            clock=Clocks().now, transport=fake.transport(), timeout=600, interval=3, concurrency=16
        )
        client.start()
        for i in range(40):
            client.watch(URL, f"job-{i}")
        await until(lambda: fake.in_flight == 16, "16 requests in flight")
        for call in (client.watch, client.view):
            assert not inspect.iscoroutinefunction(call)
        for i in range(200):  # jobs 40 to 79 are new watches, the others refreshed ones
            sent, tasks = len(fake.requests), asyncio.all_tasks()
            client.watch(URL, f"job-{i % 80}")
            view = client.view(URL, f"job-{i % 80}")
            assert not inspect.isawaitable(view)
            assert view is None  # no answer yet, and none waited for
            assert len(fake.requests) == sent and asyncio.all_tasks() == tasks
            await asyncio.sleep(0)  # the loop runs: it still sends nothing, every slot is taken
        assert len(fake.requests) == fake.max_in_flight == 16
        stopping = asyncio.create_task(client.stop())
        # A stop() that waited for the requests would never end: 10 s only bounds that bug.
        done, _ = await asyncio.wait({stopping}, timeout=10)
        assert stopping in done, "stop() waited for the hanging requests"
        assert fake.in_flight == 0, "the hanging requests were given up"
        assert not release.is_set()

    run(main())


def test_requests_that_time_out_free_their_slot_for_the_next_jobs() -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={f"job-{i}": info("RUNNING") for i in range(40)})
        hanging(fake)
        client = Dashboards(
            clock=Clocks().now, transport=fake.transport(), timeout=0.05, interval=3, concurrency=16
        )
        client.start()
        try:
            for i in range(40):
                client.watch(URL, f"job-{i}")

            def timed_out() -> list[DashboardView]:
                views = [client.view(URL, f"job-{i}") for i in range(40)]
                return [v for v in views if v is not None and v.error == "timed out after 0.05 s"]

            await until(lambda: len(timed_out()) == 40, "every job polled and timed out")
            assert fake.max_in_flight == 16
        finally:
            await client.stop()

    run(main())


def test_the_loop_polls_new_watches_at_once_and_then_every_interval() -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        client = Dashboards(clock=Clocks().now, transport=fake.transport(), interval=0.2)
        client.start()
        await asyncio.sleep(0.05)  # idle: nothing to poll
        client.watch(URL, "job-1")
        await asyncio.sleep(0.05)
        view = client.view(URL, "job-1")
        assert view is not None and view.found
        await asyncio.sleep(0.5)
        client.watch(URL, "job-1")
        await client.stop()
        assert 3 <= len(fake.gets()) <= 5

    run(main())


def test_a_poller_with_nothing_to_watch_sleeps_until_a_watch() -> None:
    """No timer at rest: with no RayJob running the loop waits for a watch, whatever the
    interval, so an idle hook spends no CPU on it (it used to look every interval)."""
    looks = 0

    def timer() -> float:
        nonlocal looks
        looks += 1
        return time.monotonic()

    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        client = Dashboards(
            clock=Clocks().now, transport=fake.transport(), interval=0.01, timer=timer
        )
        client.start()
        await asyncio.sleep(0.3)  # 30 intervals
        idle_looks = looks
        client.watch(URL, "job-1")
        await asyncio.sleep(0.05)
        view = client.view(URL, "job-1")
        await client.stop()
        assert idle_looks <= 1
        assert view is not None and view.found

    run(main())


def test_watch_and_view_work_from_another_thread() -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        client = Dashboards(clock=Clocks().now, transport=fake.transport(), interval=60)
        client.start()
        await asyncio.sleep(0.01)
        await asyncio.to_thread(client.watch, URL, "job-1")  # the hook computes in a thread
        await asyncio.sleep(0.1)
        view = await asyncio.to_thread(client.view, URL, "job-1")
        await client.stop()
        assert view is not None and view.found

    run(main())


# -- expiry and limits ----------------------------------------------------------------------------


def test_watches_not_refreshed_expire() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(jobs={"a": info("RUNNING"), "b": info("RUNNING")}), Clocks()
        client, _, registry = dashboards(fake, clocks, expiry=120.0)
        client.watch(URL, "a")
        client.watch(URL, "b")
        assert registry.get_sample_value("metaray_dashboard_watched_jobs") == 2
        for _ in range(41):  # 123 s: "a" is refreshed by its syncs, "b" is not
            await client.poll_once()
            clocks.advance(3)
            client.watch(URL, "a")
        await client.poll_once()
        assert client.view(URL, "b") is None
        assert client.view(URL, "a") is not None
        assert client.watched() == 1
        assert registry.get_sample_value("metaray_dashboard_watched_jobs") == 1
        polled_b = sum(r.url.path.endswith("/b") for r in fake.gets())
        assert polled_b == 40  # 0 s .. 117 s
        client.watch(URL, "b")  # watched again: polled at once
        await client.poll_once()
        assert client.view(URL, "b") is not None
        await client.stop()

    run(main())


def test_beyond_max_jobs_new_watches_are_refused_and_counted() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(), Clocks()
        client, _, registry = dashboards(fake, clocks, max_jobs=2)
        for job in ("a", "b", "c", "c"):
            client.watch(URL, job)
        assert client.watched() == 2
        assert registry.get_sample_value("metaray_dashboard_watches_refused_total") == 2
        client.watch(URL, "a")  # refreshing a watched one is fine
        await client.poll_once()
        assert client.view(URL, "c") is None
        assert client.view(URL, "a") is not None
        assert {r.url.path for r in fake.gets()} == {"/api/jobs/a", "/api/jobs/b"}
        await client.stop()

    run(main())


# -- intents --------------------------------------------------------------------------------------

SECRET = "s3cr3t-value"
SUBMIT = SubmitJob(
    URL,
    "job-1",
    "python main.py",
    runtime_env={"env_vars": {"PASSWORD": SECRET}},
    metadata={"owner": "me"},
    entrypoint_num_cpus=1.0,
)


def test_submit_posts_the_body_then_polls_at_once() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(), Clocks()
        client, _, registry = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        await client.poll_once()
        assert client.view(URL, "job-1") == DashboardView(URL, "job-1", found=False)
        await client.carry_out([SUBMIT])
        (post,) = fake.posts()
        assert str(post.url) == f"http://{URL}/api/jobs/"
        assert json.loads(post.content) == SUBMIT.body()
        await client.poll_once()  # no time has passed: polled because of the submit
        view = client.view(URL, "job-1")
        assert view is not None and view.info is not None and view.info.status == "PENDING"
        assert requests(registry, "submit", "ok") == 1
        await client.stop()

    run(main())


def test_a_job_that_exists_already_is_submitted(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        client, _, registry = dashboards(fake)
        await client.carry_out([SUBMIT])
        await client.carry_out([SUBMIT])
        assert len(fake.posts()) == 2
        assert fake.jobs["job-1"]["status"] == "RUNNING"
        assert requests(registry, "submit", "ok") == 2
        assert requests(registry, "submit", "error") == 0
        await client.stop()

    with caplog.at_level(logging.WARNING, logger="metaray.dashboard"):
        run(main())
    assert not caplog.records


def test_the_same_intent_in_flight_is_sent_once() -> None:
    async def main() -> None:
        fake = FakeDashboard()
        release = hanging(fake)  # the first of each is still in flight when the others come
        client, _, _ = dashboards(fake)
        stop = StopJob(URL, "job-1")

        async def answer_once_both_are_in_flight() -> None:
            await until(lambda: fake.in_flight == 2, "the submit and the stop in flight")
            for _ in range(10):  # the loop runs on: no third request joins them
                await asyncio.sleep(0)
            release.set()

        await asyncio.gather(
            client.carry_out([SUBMIT]),
            client.carry_out([SUBMIT, stop]),
            client.carry_out([stop]),
            answer_once_both_are_in_flight(),
        )
        assert sorted(r.url.path for r in fake.posts()) == [
            "/api/jobs/",
            "/api/jobs/job-1/stop",
        ]
        await client.carry_out([SUBMIT])  # done: a new call sends again (Ray says it exists)
        assert len(fake.posts()) == 3
        await client.stop()

    run(main())


def test_stop_200_and_404_are_done() -> None:
    async def main() -> None:
        fake, clocks = FakeDashboard(jobs={"job-1": info("RUNNING")}), Clocks()
        client, _, registry = dashboards(fake, clocks)
        client.watch(URL, "job-1")
        await client.poll_once()
        await client.carry_out([StopJob(URL, "job-1"), StopJob(URL, "gone")])
        assert {str(r.url) for r in fake.posts()} == {
            f"http://{URL}/api/jobs/job-1/stop",
            f"http://{URL}/api/jobs/gone/stop",
        }
        assert requests(registry, "stop", "ok") == 1
        assert requests(registry, "stop", "not_found") == 1
        await client.poll_once()  # polled at once after the stop
        view = client.view(URL, "job-1")
        assert view is not None and view.info is not None and view.info.status == "STOPPED"
        await client.stop()

    run(main())


def test_a_failing_intent_never_raises_is_counted_and_logged_without_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async def refuse(request: httpx.Request) -> httpx.Response:
            return httpx.Response(400, text=f"bad runtime_env {SECRET}")

        fake = FakeDashboard(post=refuse)
        client, _, registry = dashboards(fake)
        await client.carry_out([SUBMIT, StopJob(URL, "job-1")])
        await client.carry_out([SUBMIT])
        assert requests(registry, "submit", "error") == 2
        assert requests(registry, "stop", "error") == 1

        dead = Dashboards(clock=Clocks().now, transport=httpx.MockTransport(_raise), timeout=0.1)
        await dead.carry_out([SUBMIT, StopJob("other:8265", "x")])
        await dead.stop()
        await client.stop()

    with caplog.at_level(logging.DEBUG, logger="metaray.dashboard"):
        run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"cannot submit a Ray job to the dashboard {URL}: HTTP 400",
        f"cannot stop a Ray job at the dashboard {URL}: HTTP 400",
        f"cannot submit a Ray job to the dashboard {URL}: ReadError",
        "cannot stop a Ray job at the dashboard other:8265: ReadError",
    ]
    everything = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert SECRET not in everything


def _raise(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("reset", request=request)


def test_intents_are_bounded_in_time() -> None:
    async def main() -> None:
        fake = FakeDashboard()
        hanging(fake)  # no answer ever: only the timeout can end an intent
        client, _, registry = dashboards(fake, timeout=0.1)
        await asyncio.wait_for(client.carry_out([SUBMIT, StopJob(URL, "job-1")]), 10)
        assert requests(registry, "submit", "timeout") == 1
        assert requests(registry, "stop", "timeout") == 1
        await client.stop()

    run(main())


def test_no_intents_is_nothing() -> None:
    async def main() -> None:
        fake = FakeDashboard()
        client, _, _ = dashboards(fake)
        await client.carry_out([])
        assert fake.requests == []
        await client.stop()

    run(main())


def test_metrics_start_at_zero_and_time_the_requests() -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        client, _, registry = dashboards(fake)
        for call in ("get", "submit", "stop"):
            for outcome in ("ok", "not_found", "error", "timeout"):
                assert requests(registry, call, outcome) == 0
        client.watch(URL, "job-1")
        await client.poll_once()
        count = registry.get_sample_value(
            "metaray_dashboard_request_seconds_count", {"call": "get"}
        )
        assert count == 1
        await client.stop()

    run(main())


def test_a_poll_cut_short_by_stop_is_due_again_after_start() -> None:
    async def main() -> None:
        fake = FakeDashboard(jobs={"job-1": info("RUNNING")})
        release = hanging(fake)
        client = Dashboards(clock=Clocks().now, transport=fake.transport(), interval=60)
        client.start()
        client.start()  # once is enough
        client.watch(URL, "job-1")
        await until(lambda: fake.in_flight == 1, "the poll in flight")
        await client.stop()
        assert client.view(URL, "job-1") is None
        assert len(fake.requests) == 1
        release.set()
        client.start()
        await until(lambda: client.view(URL, "job-1") is not None, "polled again")
        view = client.view(URL, "job-1")
        await client.stop()
        assert view is not None and view.found
        assert len(fake.requests) == 2  # polled again at once, not after the 60 s interval

    run(main())
