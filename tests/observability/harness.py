"""A fake Kubernetes API server, the app run with its lifespan, and log and metric readers."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.hooks.request import LAST_APPLIED
from app.shell.http.app import create_app
from app.shell.observability import logs
from app.shell.observability.logs import JsonFormatter
from app.shell.settings import Settings

API = "https://kubernetes.test:443"
POD_NAME = "metaray-7d9f8c6b5-x2x7k"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token"
T0 = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
JOB = "Job.batch/v1"


@dataclass
class Clock:
    """The shell's clock, moved by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class KubeServer:
    """Records every request; answers 201/200, or what ``respond`` says (a status or an error)."""

    respond: Callable[[httpx.Request], Awaitable[httpx.Response]] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    finished: int = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            if self.respond is not None:
                return await self.respond(request)
            return httpx.Response(201 if request.method == "POST" else 200, json={})
        finally:
            self.finished += 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self, method: str = "POST") -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == method]


def failing(status: int | None = None, delay: float = 0.0) -> Callable[..., Awaitable[Any]]:
    """A responder: after ``delay`` seconds, ``status`` (or a refused connection if None)."""

    async def respond(request: httpx.Request) -> httpx.Response:
        if delay:
            await asyncio.sleep(delay)
        if status is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(status, json={"kind": "Status", "code": status})

    return respond


def events_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Settings as in a pod: the API server's address, a token file and a pod name."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    values: dict[str, Any] = {
        "events": "auto",
        "kube_host": "kubernetes.test",
        "kube_port": "443",
        "token_path": str(token),
        "ca_path": str(tmp_path / "ca.crt"),
        "pod_name": POD_NAME,
    }
    return Settings(**(values | changes))


Call = tuple[str, str, bytes | None]  # method, path, body


def run_app(
    app: FastAPI, calls: list[Call], between: Callable[[int], None] | None = None
) -> list[httpx.Response]:
    """Start the app (lifespan), make the calls in order, stop it (which drains the Events)."""

    async def go() -> list[httpx.Response]:
        responses = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
                for index, (method, path, body) in enumerate(calls):
                    if between is not None:
                        between(index)
                    responses.append(await client.request(method, path, content=body))
        return responses

    return asyncio.run(go())


def app_with(
    settings: Settings, server: KubeServer | None = None, clock: Clock | None = None
) -> FastAPI:
    transport = server.transport() if server is not None else None
    return create_app(settings, kube_transport=transport, clock=clock)


def body(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode()


# -- requests that drive the finalize hook ----------------------------------------------------


def finalize_request(
    parent: dict[str, Any], children: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    deleting = copy.deepcopy(parent)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:04:00Z"
    return {"parent": deleting, "children": children or {}, "finalizing": True}


def as_observed(child: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A child the way Metacontroller reports it once created: last-applied annotation set."""
    observed = copy.deepcopy(child)
    annotations = observed["metadata"].setdefault("annotations", {})
    annotations[LAST_APPLIED] = json.dumps(child, sort_keys=True)
    observed["metadata"]["uid"] = "child-uid"
    if status is not None:
        observed["status"] = status
    return observed


# -- reading /metrics -------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, metric: str, /, **labels: str) -> float | None:
    return samples(text).get((metric, frozenset(labels.items())))


def series(text: str, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples(text) if sample == name]


# -- capturing logs ---------------------------------------------------------------------------


class Captured(logging.Handler):
    """Every record from every logger, and the JSON line metaray's formatter makes of it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    def json(self, logger: str = "metaray.sync") -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for line, r in zip(self.lines, self.records, strict=True)
            if r.name == logger
        ]


@contextmanager
def captured_logs(level: int = logging.INFO) -> Iterator[Captured]:
    """Attached to the root and to "metaray" (which does not propagate once configured)."""
    if not logs.configured():
        logs.configure("info")  # what create_app does: "metaray" then stops propagating
    handler = Captured()
    loggers = [logging.getLogger(), logging.getLogger("metaray")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
    try:
        yield handler
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(old)
