"""The HTTP shell: Metacontroller's sync and finalize hooks, health probes and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.background import BackgroundTask

from app import __version__, kube_api, logs
from app.hooks.request import BadRequest, SyncRequest, decode
from app.hooks.response import encode
from app.kube_events import EventSink
from app.metrics import HTTP_SECONDS, Metrics, Timings
from app.raycluster.cluster import Options
from app.raycluster.observed import Observed
from app.raycluster.sync import Desired, finalize, sync
from app.redact import Redactor
from app.settings import Settings
from app.summary import BAD_REQUEST, ERROR, Identity, summarize

log = logging.getLogger("metaray")
Decide = Callable[[dict[str, Any], Observed, Options], Desired]
Clock = Callable[[], datetime]
JSON = "application/json"


def create_app(
    settings: Settings | None = None,
    *,
    kube_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The app; ``kube_transport`` and ``clock`` replace the API server and the time in tests."""
    settings = settings or Settings.from_env()
    if not logs.configured():
        logs.configure(settings.log_level)
    now = clock or (lambda: datetime.now(UTC))
    metrics = Metrics(
        resync_seconds=settings.resync_seconds,
        directory=settings.metrics_dir,
        clock=lambda: now().timestamp(),
    )
    events = _event_sink(settings, metrics, kube_transport, now)
    hooks = Hooks(settings.options, metrics, events)
    app = FastAPI(
        title="metaray",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(events),
    )

    @app.post("/sync")
    async def sync_hook(request: Request) -> Response:
        """Metacontroller's sync hook: the RayCluster's desired children and status."""
        return await hooks.answer(request, "sync", sync)

    @app.post("/finalize")
    async def finalize_hook(request: Request) -> Response:
        """Metacontroller's finalize hook: a RayCluster is being deleted."""
        return await hooks.answer(request, "finalize", finalize)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    # async: it runs on the event loop, like the hooks that update the per-cluster table.
    @app.get("/metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    Instrumentator(registry=metrics.registry).instrument(app, latency_lowr_buckets=HTTP_SECONDS)
    return app


class Hooks:
    def __init__(self, options: Options, metrics: Metrics, events: EventSink | None) -> None:
        self.options = options
        self.metrics = metrics
        self.events = events

    async def answer(self, request: Request, hook: str, decide: Decide) -> Response:
        started = perf_counter()
        body = await request.body()
        decoding = perf_counter()
        try:
            hook_request = decode(body)
        except BadRequest as error:
            logs.log_failure(hook, BAD_REQUEST, _ms(started), str(error))
            return _error(400, str(error))
        decoded = perf_counter()
        parent = hook_request.parent
        redactor = Redactor.of(parent)
        try:
            desired = decide(parent, hook_request.observed, self.options)
            computed = perf_counter()
            payload = encode(desired)
        except Exception as error:
            # A 5xx makes Metacontroller keep every child and the status as they are.
            detail = f"internal error: {type(error).__name__}"
            logs.log_failure(hook, ERROR, _ms(started), detail, Identity.of(parent), redactor)
            return _error(500, detail)
        timings = Timings(decoded - decoding, computed - decoded, perf_counter() - computed)
        self._observe(hook, hook_request, desired, timings, started, redactor)
        background = None
        if self.events is not None and desired.events:
            background = BackgroundTask(self.events.enqueue, parent, desired.events, redactor)
        return Response(payload, media_type=JSON, background=background)

    def _observe(
        self,
        hook: str,
        request: SyncRequest,
        desired: Desired,
        timings: Timings,
        started: float,
        redactor: Redactor,
    ) -> None:
        """Metrics and the log line; a fault here must never cost Metacontroller its answer."""
        try:
            answer = summarize(hook, request, desired)
            self.metrics.record(answer, timings)
            self.metrics.cluster(answer, request.parent, desired.status)
            logs.log_answer(answer, _ms(started), redactor)
        except Exception:
            log.exception("recording metrics or logs of a %s answer failed", hook)


def _event_sink(
    settings: Settings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
) -> EventSink | None:
    api = kube_api.events_api(settings)
    if api is None:
        return None
    return EventSink(
        lambda: kube_api.client(api, transport),
        metrics,
        instance=settings.pod_name,
        queue_size=settings.events_queue_size,
        clock=clock,
    )


def _lifespan(
    events: EventSink | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if events is not None:
            events.start()
        try:
            yield
        finally:
            if events is not None:
                await events.stop()

    return lifespan


def _ms(started: float) -> float:
    return (perf_counter() - started) * 1000


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type=JSON)
