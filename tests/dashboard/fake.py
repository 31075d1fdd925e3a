"""A fake Ray dashboard (an httpx.MockTransport handler) and a fake pair of clocks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from app.shell.observability.metrics import DashboardMetrics
from app.shell.ray.poller import Dashboards

URL = "raycluster-head-svc.default.svc:8265"
START_MS = 1_796_184_728_812  # 2026-12-02T04:12:08.812Z
END_MS = 1_796_184_730_262  # 2026-12-02T04:12:10.262Z
T0 = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)
# What Ray 2.60 answers to a second POST /api/jobs/ with the same submission_id: the head
# wraps the job agent's 400 in a 500, both with tracebacks.
DUPLICATE = (
    "Traceback (most recent call last):\n"
    '  File "job_head.py", line 419, in submit_job\n'
    "RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n"
    "ValueError: Job with submission_id {id} already exists. "
    "Please use a different submission_id.\n.\n"
)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Clocks:
    """A wall clock (datetime) and a monotonic timer that move together."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.base = T0

    def now(self) -> datetime:
        return self.base + timedelta(seconds=self.seconds - 1000.0)

    def timer(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def info(status: str, message: str = "") -> dict[str, Any]:
    terminal = status in ("SUCCEEDED", "FAILED", "STOPPED")
    return {
        "type": "SUBMISSION",
        "job_id": "02000000",
        "submission_id": "job-1",
        "status": status,
        "entrypoint": "python main.py",
        "message": message or f"Job is {status.lower()}.",
        "start_time": START_MS,
        "end_time": END_MS if terminal else 0,
        "metadata": {},
        "runtime_env": {},
    }


@dataclass
class FakeDashboard:
    """Ray's job API on one or more dashboards: ``jobs`` by submission id, ``get`` overridable
    per test; records every request; ``delay`` makes each answer wait (after ``in_flight`` is
    counted)."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    get: Handler | None = None
    post: Handler | None = None
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if request.method == "GET" and self.get is not None:
                return await self.get(request)
            if request.method == "POST" and self.post is not None:
                return await self.post(request)
            return self.ray(request)
        finally:
            self.in_flight -= 1

    def ray(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.startswith("/api/jobs/"):
            job = self.jobs.get(path.removeprefix("/api/jobs/"))
            if job is None:
                return httpx.Response(404, text=f"Job {path} does not exist")
            return httpx.Response(200, json=job)
        if request.method == "POST" and path == "/api/jobs/":
            body = json.loads(request.content)
            job_id = body["submission_id"]
            if job_id in self.jobs:
                return httpx.Response(500, text=DUPLICATE.format(id=job_id))
            self.jobs[job_id] = info("PENDING") | {"submission_id": job_id}
            return httpx.Response(200, json={"job_id": job_id, "submission_id": job_id})
        if request.method == "POST" and path.endswith("/stop"):
            job = self.jobs.get(path.removeprefix("/api/jobs/").removesuffix("/stop"))
            if job is None:
                return httpx.Response(404, text="Job does not exist")
            stopped = job["status"] in ("PENDING", "RUNNING")
            if stopped:
                job |= {"status": "STOPPED", "end_time": END_MS}
            return httpx.Response(200, json={"stopped": stopped})
        return httpx.Response(404, text="no such route")

    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    def gets(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]


def dashboards(
    fake: FakeDashboard, clocks: Clocks | None = None, **options: Any
) -> tuple[Dashboards, DashboardMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = DashboardMetrics(registry)
    clocks = clocks or Clocks()
    client = Dashboards(
        clock=clocks.now,
        timer=clocks.timer,
        transport=fake.transport(),
        metrics=metrics,
        **options,
    )
    return client, metrics, registry


def requests(registry: CollectorRegistry, call: str, outcome: str) -> float:
    value = registry.get_sample_value(
        "metaray_dashboard_requests_total", {"call": call, "outcome": outcome}
    )
    return value or 0.0
