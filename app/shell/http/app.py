"""The HTTP shell: Metacontroller's sync and finalize hooks (RayCluster's and RayJob's), health
probes and metrics. After an answer has been sent, its Events are queued for posting and, for a
RayJob whose DeleteSelf policy is due, the RayJob for deletion (``app/shell/kube/janitor.py``)."""

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
from starlette.background import BackgroundTasks

from app import __version__
from app.core.desired import Desired
from app.core.events import Event
from app.core.observed import Observed
from app.hooks.request import BadRequest, SyncRequest, decode, decode_customize
from app.hooks.response import encode
from app.raycluster.auth import TOKEN_BYTES
from app.raycluster.sync import finalize, sync
from app.raycronjob import sync as raycronjob
from app.rayjob import sync as rayjob
from app.rayjob.dashboard import DashboardView, Intent, StopJob, SubmitJob
from app.rayservice import sync as rayservice
from app.rayservice.serve import ApplyServeConfig, ServeView
from app.shell.http.answer_cache import AnswerCache, Entry, etag_of, fingerprint
from app.shell.http.guard import Guard
from app.shell.kube import api as kube_api
from app.shell.kube.events import EventSink
from app.shell.kube.janitor import Janitor
from app.shell.observability import logs
from app.shell.observability.metrics import HTTP_SECONDS, DashboardMetrics, Metrics, Timings
from app.shell.observability.redact import Redactor, secret_children
from app.shell.observability.summary import (
    BAD_REQUEST,
    ERROR,
    RAYJOB,
    Answer,
    Identity,
    kind_of,
    summarize,
)
from app.shell.ray.poller import Dashboards
from app.shell.ray.serve import ServeDashboards
from app.shell.settings import Settings

log = logging.getLogger("metaray")


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the shell hands a core besides the request: the time, and fresh random bytes (the
    RayCluster core turns them into a token Secret, where authOptions asks for one)."""

    now: datetime
    entropy: bytes


Clock = Callable[[], datetime]
# A core's answer to one decoded request, given the shell's inputs.
Decide = Callable[[SyncRequest, "Inputs"], Desired]
JSON = "application/json"
# Requests at least this large are decided in a worker thread, bounded in time.
OFFLOAD_BYTES = 2**20


def create_app(
    settings: Settings | None = None,
    *,
    kube_transport: httpx.AsyncBaseTransport | None = None,
    dashboard_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The app; ``kube_transport``, ``dashboard_transport`` and ``clock`` replace the API
    server, the Ray dashboards and the time in tests."""
    settings = settings or Settings.from_env()
    if not logs.configured():
        logs.configure(settings.log_level)
    now = clock or (lambda: datetime.now(UTC))
    metrics = Metrics(
        horizon_seconds=settings.gauge_horizon_seconds,
        directory=settings.metrics_dir,
        clock=lambda: now().timestamp(),
    )
    events = _event_sink(settings, metrics, kube_transport, now)
    janitor = _janitor(settings, metrics, kube_transport)
    dashboards = _dashboards(settings, metrics, dashboard_transport, now)
    serve = _serve(settings, dashboard_transport, now)
    hooks = Hooks(settings, metrics, events, now, janitor, dashboards, serve)
    cluster_options, job_options = settings.options, settings.rayjob_options
    service_options = rayservice.Options(
        cluster=cluster_options, poll_seconds=max(settings.dashboard_interval_seconds, 2.0)
    )

    def serve_views(request: SyncRequest) -> dict[str, ServeView]:
        """The Serve poller's latest views of this RayService's clusters (at the addresses the
        core derives from owned head Services); asks it to keep reading them."""
        if serve is None:
            return {}
        targets = rayservice.watched(request.observed, request.related, service_options)
        return serve.views(targets.values())

    def view(request: SyncRequest) -> DashboardView | None:
        """The poller's latest word on this RayJob's Ray job; asks it to keep polling."""
        target = rayjob.watched(
            request.parent, request.observed, request.related, settings.cluster_domain
        )
        if dashboards is None or target is None:
            return None
        dashboards.watch(*target)
        return dashboards.view(*target)

    app = FastAPI(
        title="metaray",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan(events, janitor, dashboards, serve),
    )
    app.state.dashboards = dashboards  # for tests: step the poller by hand
    app.state.serve = serve

    @app.post("/sync")
    async def sync_hook(request: Request) -> Response:
        """Metacontroller's sync hook: the RayCluster's desired children and status."""
        return await hooks.answer(
            request,
            "sync",
            lambda r, i: sync(r.parent, r.observed, cluster_options, entropy=i.entropy),
        )

    @app.post("/finalize")
    async def finalize_hook(request: Request) -> Response:
        """Metacontroller's finalize hook: a RayCluster is being deleted."""
        return await hooks.answer(
            request,
            "finalize",
            lambda r, i: finalize(r.parent, r.observed, cluster_options, entropy=i.entropy),
        )

    def rayjob_hook(hook: str, core: Callable[..., Desired]) -> Callable[[Request], Any]:
        async def answer(request: Request) -> Response:
            return await hooks.answer(
                request,
                hook,
                lambda r, i: core(r.parent, r.observed, r.related, i.now, job_options, view(r)),
                # The answer depends on the clock and the dashboards, not only on the body.
                cache=False,
                related=True,
            )

        return answer

    # The RayJob controller's sync hook (its cluster, submitter, Service and status) and
    # finalize hook (a RayJob is being deleted).
    app.post("/rayjob/sync")(rayjob_hook("rayjob_sync", rayjob.sync))
    app.post("/rayjob/finalize")(rayjob_hook("rayjob_finalize", rayjob.finalize))

    @app.post("/raycronjob/sync")
    async def raycronjob_sync_hook(request: Request) -> Response:
        """The RayCronJob controller's sync hook: its runs (RayJobs) and status, at the
        shell's time (no finalize hook: the runs go with their RayCronJob by ownerReference)."""
        return await hooks.answer(
            request,
            "raycronjob_sync",
            lambda r, i: raycronjob.sync(r.parent, r.observed, i.now),
            cache=False,  # the answer depends on the clock, not only on the body
        )

    @app.post("/rayjob/customize")
    async def rayjob_customize_hook(request: Request) -> Response:
        """The RayJob controller's customize hook: which related objects its syncs need."""
        try:
            parent = decode_customize(await request.body())
        except BadRequest as error:
            return _error(400, str(error))
        return Response(orjson.dumps(rayjob.customize(parent)), media_type=JSON)

    # The RayService controller's sync hook (its clusters, Services and status; Serve configs
    # applied through the dashboards after the answer) and customize hook.
    @app.post("/rayservice/sync")
    async def rayservice_sync_hook(request: Request) -> Response:
        return await hooks.answer(
            request,
            "rayservice_sync",
            lambda r, i: rayservice.sync(
                r.parent, r.observed, r.related, i.now, service_options, serve_views(r)
            ),
            # The answer depends on the clock and Ray's view, not only on the body.
            cache=False,
            related=True,
        )

    @app.post("/rayservice/customize")
    async def rayservice_customize_hook(request: Request) -> Response:
        """Which related objects a RayService's syncs need (spec only: cached per generation)."""
        try:
            parent = decode_customize(await request.body())
        except BadRequest as error:
            return _error(400, str(error))
        return Response(orjson.dumps(rayservice.customize(parent)), media_type=JSON)

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
    delete_parent: bool = False  # a RayJob's DeleteSelf is due (rayjob hooks only)
    # A RayJob's requests to its Ray dashboard, a RayService's Serve configs.
    intents: tuple[Intent | ApplyServeConfig, ...] = ()


class Hooks:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        events: EventSink | None,
        clock: Clock,
        janitor: Janitor | None = None,
        dashboards: Dashboards | None = None,
        serve: ServeDashboards | None = None,
    ) -> None:
        self.clock = clock
        self.timeout = settings.compute_timeout_seconds
        self.metrics = metrics
        self.events = events
        self.janitor = janitor
        self.janitor_off_logged = False
        self.dashboards = dashboards
        self.serve = serve
        self.cache: AnswerCache[_Replay] | None = (
            AnswerCache(settings.cache_bytes) if settings.cache_bytes > 0 else None
        )

    async def answer(
        self,
        request: Request,
        hook: str,
        decide: Decide,
        *,
        cache: bool = True,
        related: bool = False,
    ) -> Response:
        """``cache``: identical bodies get the same answer (not so when the clock matters);
        ``related``: the hook reads the related objects of a customize hook."""
        started = perf_counter()
        body = await request.body()
        key = fingerprint(hook, body)
        answers = self.cache if cache else None
        cached = answers.get(key) if answers is not None else None
        if cached is not None:
            self._report(cached.extra, None, started)
            return self._respond(request, cached.payload, cached.etag, cached.extra)
        try:
            outcome = await self._compute(hook, body, decide, related)
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
            if answers is not None:
                answers.put(key, Entry(payload, etag, replay))
        return self._respond(request, payload, etag, replay)

    async def _compute(
        self, hook: str, body: bytes, decide: Decide, related: bool
    ) -> tuple[bytes, _Replay | None, Timings]:
        """Decode, decide, encode; a large request runs in a thread, bounded in time, so the
        event loop keeps answering probes (a 1,000-pod sync takes ~100 ms)."""
        work = partial(_decide, hook, body, decide, self.clock(), related)
        if len(body) < OFFLOAD_BYTES:
            return work()
        return await asyncio.wait_for(asyncio.to_thread(work), self.timeout)

    def _report(self, replay: _Replay, timings: Timings | None, started: float) -> None:
        """Metrics and the log line; a fault here must never cost Metacontroller its answer."""
        try:
            self.metrics.record(replay.answer, timings)
            self.metrics.gauges(replay.answer, replay.parent, replay.status)
            logs.log_answer(replay.answer, _ms(started), replay.redactor)
        except Exception:
            log.exception("recording metrics or logs of a %s answer failed", replay.answer.hook)

    def _respond(
        self, request: Request, payload: bytes, etag: str, replay: _Replay | None
    ) -> Response:
        background = BackgroundTasks()
        if self.events is not None and replay is not None and replay.events:
            background.add_task(self.events.enqueue, replay.parent, replay.events, replay.redactor)
        if replay is not None and replay.delete_parent:
            self._delete_parent(background, replay)
        if replay is not None and replay.intents:
            # On the pollers' tasks, not the response's: a background task of the response
            # would hold this request's guard slot until a slow dashboard answered.
            jobs = [i for i in replay.intents if not isinstance(i, ApplyServeConfig)]
            configs = [i for i in replay.intents if isinstance(i, ApplyServeConfig)]
            if jobs and self.dashboards is not None:
                self.dashboards.offer(jobs)
            if configs and self.serve is not None:
                self.serve.offer(configs)
        after = background if background.tasks else None
        headers = {"ETag": etag}
        if request.headers.get("if-none-match") == etag:
            # Metacontroller reuses the answer it cached under this ETag.
            return Response(status_code=304, headers=headers, background=after)
        return Response(payload, media_type=JSON, headers=headers, background=after)

    def _delete_parent(self, background: BackgroundTasks, replay: _Replay) -> None:
        """After the response, like the Events: the RayJob is deleted by the janitor."""
        if self.janitor is not None:
            background.add_task(self.janitor.enqueue, replay.parent, replay.redactor)
        elif not self.janitor_off_logged:
            self.janitor_off_logged = True
            log.warning(
                "a RayJob's DeleteSelf policy is due, but metaray runs outside a cluster (no "
                "KUBERNETES_SERVICE_HOST or service-account token): RayJobs are not deleted"
            )


class _Failed(Exception):
    def __init__(self, parent: dict[str, Any], error: Exception, observed: Observed) -> None:
        super().__init__(str(error))
        self.parent = parent
        self.error = error
        self.observed = observed


def _decide(
    hook: str, body: bytes, decide: Decide, now: datetime, related: bool
) -> tuple[bytes, _Replay | None, Timings]:
    with paused_gc():
        return _decide_now(hook, body, decide, now, related)


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
    hook: str, body: bytes, decide: Decide, now: datetime, related: bool
) -> tuple[bytes, _Replay | None, Timings]:
    decoding = perf_counter()
    hook_request = decode(body, related=related, raycluster=not related)
    decoded = perf_counter()
    parent = hook_request.parent
    try:
        # Fresh per request: the core uses it only to create a token Secret (authOptions).
        desired = decide(hook_request, Inputs(now, secrets.token_bytes(TOKEN_BYTES)))
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
        held = secret_children(request.observed, desired.children)
        return _Replay(
            answer,
            request.parent,
            desired.status,
            desired.events,
            Redactor.of(request.parent, held),
            delete_parent=desired.delete_parent and kind_of(hook) == RAYJOB,
            intents=tuple(
                i for i in desired.intents if isinstance(i, SubmitJob | StopJob | ApplyServeConfig)
            ),
        )
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


def _janitor(
    settings: Settings, metrics: Metrics, transport: httpx.AsyncBaseTransport | None
) -> Janitor | None:
    """Deletes RayJobs for DeleteSelf, with the hook's ServiceAccount; None outside a cluster."""
    api = kube_api.in_cluster_api(settings)
    if api is None:
        return None
    return Janitor(
        lambda: kube_api.client(api, transport), metrics, queue_size=settings.events_queue_size
    )


def _dashboards(
    settings: Settings,
    metrics: Metrics,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
) -> Dashboards | None:
    """Polls the Ray dashboards of running RayJobs; None with METARAY_DASHBOARD=off."""
    if not settings.dashboard:
        return None
    return Dashboards(
        clock=clock,
        transport=transport,
        interval=settings.dashboard_interval_seconds,
        timeout=settings.dashboard_timeout_seconds,
        metrics=DashboardMetrics(metrics.registry),
    )


def _serve(
    settings: Settings, transport: httpx.AsyncBaseTransport | None, clock: Clock
) -> ServeDashboards | None:
    """Reads RayService clusters' Serve applications; None with METARAY_DASHBOARD=off."""
    if not settings.dashboard:
        return None
    return ServeDashboards(
        clock=clock,
        transport=transport,
        interval=settings.dashboard_interval_seconds,
        timeout=settings.dashboard_timeout_seconds,
    )


class _Background(Protocol):
    """A task that runs beside the hooks for the app's lifetime."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def _lifespan(
    *services: _Background | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    running = [service for service in services if service is not None]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for service in running:
            service.start()
        try:
            yield
        finally:
            for service in running:
                await service.stop()

    return lifespan


def _ms(started: float) -> float:
    return (perf_counter() - started) * 1000


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": message})
    return Response(body, status_code=status, media_type=JSON, headers=headers)
