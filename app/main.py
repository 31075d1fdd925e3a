"""The HTTP shell: Metacontroller's sync and finalize hooks, health probes and metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from time import perf_counter
from typing import Any, Protocol

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.background import BackgroundTask

from app import __version__, kube_api, logs
from app.answer_cache import AnswerCache, Entry, etag_of, fingerprint
from app.guard import Guard
from app.hooks.request import BadRequest, SyncRequest, decode
from app.hooks.response import encode
from app.kube_events import EventSink
from app.metrics import HTTP_SECONDS, Metrics, Timings
from app.raycluster.auth import TOKEN_BYTES
from app.raycluster.cluster import Options
from app.raycluster.events import Event
from app.raycluster.observed import Observed
from app.raycluster.sync import Desired, finalize, sync
from app.redact import Redactor, secret_children
from app.settings import Settings
from app.summary import BAD_REQUEST, ERROR, Answer, Identity, summarize

log = logging.getLogger("metaray")


class Decide(Protocol):
    def __call__(
        self, parent: dict[str, Any], observed: Observed, options: Options, *, entropy: bytes
    ) -> Desired: ...


Clock = Callable[[], datetime]
JSON = "application/json"
# Requests at least this large are decided in a worker thread, bounded in time.
OFFLOAD_BYTES = 2**20


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
    hooks = Hooks(settings, metrics, events)
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
    app.add_middleware(
        Guard,
        token=settings.auth_token,
        max_body_bytes=settings.max_body_bytes,
        max_in_flight=settings.max_in_flight,
    )
    return app


@dataclass(frozen=True, slots=True)
class _Replay:
    """What a cached answer needs to be reported again exactly as when it was computed."""

    answer: Answer
    parent: dict[str, Any]
    status: dict[str, Any]
    events: tuple[Event, ...]
    redactor: Redactor


class Hooks:
    def __init__(self, settings: Settings, metrics: Metrics, events: EventSink | None) -> None:
        self.options = settings.options
        self.timeout = settings.compute_timeout_seconds
        self.metrics = metrics
        self.events = events
        self.cache: AnswerCache[_Replay] | None = (
            AnswerCache(settings.cache_bytes) if settings.cache_bytes > 0 else None
        )

    async def answer(self, request: Request, hook: str, decide: Decide) -> Response:
        started = perf_counter()
        body = await request.body()
        key = fingerprint(hook, body)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self._report(cached.extra, None, started)
            return self._respond(request, cached.payload, cached.etag, cached.extra)
        try:
            outcome = await self._compute(hook, body, decide)
        except BadRequest as error:
            logs.log_failure(hook, BAD_REQUEST, _ms(started), str(error))
            return _error(400, str(error))
        except TimeoutError:
            detail = f"computing the answer took more than {self.timeout:g} s"
            logs.log_failure(hook, ERROR, _ms(started), detail)
            return _error(503, detail, {"Retry-After": "5"})
        except _Failed as failure:
            # A 5xx makes Metacontroller keep every child and the status as they are.
            detail = f"internal error: {type(failure.error).__name__}"
            parent = failure.parent
            redactor = Redactor.of(parent, secret_children(failure.observed))
            logs.log_failure(hook, ERROR, _ms(started), detail, Identity.of(parent), redactor)
            return _error(500, detail)
        payload, replay, timings = outcome
        etag = etag_of(payload)
        if replay is not None:
            self._report(replay, timings, started)
            if self.cache is not None:
                self.cache.put(key, Entry(payload, etag, replay))
        return self._respond(request, payload, etag, replay)

    async def _compute(
        self, hook: str, body: bytes, decide: Decide
    ) -> tuple[bytes, _Replay | None, Timings]:
        """Decode, decide, encode; a large request runs in a thread, bounded in time, so the
        event loop keeps answering probes (a 1,000-pod sync takes ~100 ms)."""
        work = partial(_decide, hook, body, decide, self.options)
        if len(body) < OFFLOAD_BYTES:
            return work()
        return await asyncio.wait_for(asyncio.to_thread(work), self.timeout)

    def _report(self, replay: _Replay, timings: Timings | None, started: float) -> None:
        """Metrics and the log line; a fault here must never cost Metacontroller its answer."""
        try:
            self.metrics.record(replay.answer, timings)
            self.metrics.cluster(replay.answer, replay.parent, replay.status)
            logs.log_answer(replay.answer, _ms(started), replay.redactor)
        except Exception:
            log.exception("recording metrics or logs of a %s answer failed", replay.answer.hook)

    def _respond(
        self, request: Request, payload: bytes, etag: str, replay: _Replay | None
    ) -> Response:
        background = None
        if self.events is not None and replay is not None and replay.events:
            background = BackgroundTask(
                self.events.enqueue, replay.parent, replay.events, replay.redactor
            )
        headers = {"ETag": etag}
        if request.headers.get("if-none-match") == etag:
            # Metacontroller reuses the answer it cached under this ETag.
            return Response(status_code=304, headers=headers, background=background)
        return Response(payload, media_type=JSON, headers=headers, background=background)


class _Failed(Exception):
    def __init__(self, parent: dict[str, Any], error: Exception, observed: Observed) -> None:
        super().__init__(str(error))
        self.parent = parent
        self.error = error
        self.observed = observed


def _decide(
    hook: str, body: bytes, decide: Decide, options: Options
) -> tuple[bytes, _Replay | None, Timings]:
    with paused_gc():
        return _decide_now(hook, body, decide, options)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a request is decoded and decided: it allocates tens
    of thousands of acyclic objects, and collections triggered by them cost 10-20 % of a
    1,000-pod sync (bench/inprocess.py). Collection resumes right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decide_now(
    hook: str, body: bytes, decide: Decide, options: Options
) -> tuple[bytes, _Replay | None, Timings]:
    decoding = perf_counter()
    hook_request = decode(body)
    decoded = perf_counter()
    parent = hook_request.parent
    try:
        # Fresh per request: the core uses it only to create a token Secret (authOptions).
        entropy = secrets.token_bytes(TOKEN_BYTES)
        desired = decide(parent, hook_request.observed, options, entropy=entropy)
        computed = perf_counter()
        payload = encode(desired)
    except Exception as error:
        # Logged by the caller, secrets masked (the request's Secrets' values included).
        raise _Failed(parent, error, hook_request.observed) from error
    timings = Timings(decoded - decoding, computed - decoded, perf_counter() - computed)
    return payload, _replay(hook, hook_request, desired), timings


def _replay(hook: str, request: SyncRequest, desired: Desired) -> _Replay | None:
    try:
        answer = summarize(hook, request, desired)
        secrets = secret_children(request.observed, desired.children)
        redactor = Redactor.of(request.parent, secrets)
        return _Replay(answer, request.parent, desired.status, desired.events, redactor)
    except Exception:
        log.exception("summarising a %s answer failed", hook)
        return None


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


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": message})
    return Response(body, status_code=status, media_type=JSON, headers=headers)
