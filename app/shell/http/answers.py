"""How a hook request becomes an answer: the cache of identical requests, decoding and deciding
(in a worker thread when large, bounded in time), the metrics and the log line, and what runs
after the answer is sent (Events, a RayJob's deletion, the dashboards' intents). A fault is a
5xx, never a wrong answer: Metacontroller then keeps every child and the status as they are."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from time import perf_counter
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.background import BackgroundTasks

from app.core.desired import Desired
from app.core.events import Event
from app.core.observed import Observed
from app.hooks.request import BadRequest, SyncRequest, decode
from app.hooks.response import encode
from app.raycluster.options import TOKEN_BYTES
from app.rayjob.dashboard import Intent, StopJob, SubmitJob
from app.rayservice.proxy import SetHeadServeLabel
from app.rayservice.serve import ApplyServeConfig
from app.shell.http.answer_cache import AnswerCache, Entry, etag_of, fingerprint
from app.shell.kube.events import EventSink
from app.shell.kube.janitor import Janitor
from app.shell.kube.pod_labels import HeadLabeler
from app.shell.observability import logs
from app.shell.observability.metrics import Metrics, Timings
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


@dataclass(frozen=True, slots=True)
class Replay:
    """What a cached answer needs to be reported again exactly as when it was computed."""

    answer: Answer
    parent: dict[str, Any]
    status: dict[str, Any]
    events: tuple[Event, ...]
    redactor: Redactor
    delete_parent: bool = False  # a RayJob's DeleteSelf is due (rayjob hooks only)
    # A RayJob's requests to its Ray dashboard, a RayService's Serve configs and head labels.
    intents: tuple[Intent | ApplyServeConfig | SetHeadServeLabel, ...] = ()


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
        labeler: HeadLabeler | None = None,
    ) -> None:
        self.clock = clock
        self.timeout = settings.compute_timeout_seconds
        self.metrics = metrics
        self.events = events
        self.janitor = janitor
        self.janitor_off_logged = False
        self.dashboards = dashboards
        self.serve = serve
        self.labeler = labeler
        self.cache: AnswerCache[Replay] | None = (
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
            return error_response(400, str(error))
        except TimeoutError:
            detail = f"computing the answer took more than {self.timeout:g} s"
            logs.log_failure(hook, ERROR, _ms(started), detail)
            return error_response(503, detail, {"Retry-After": "5"})
        except _Failed as failure:
            # A 5xx makes Metacontroller keep every child and the status as they are.
            detail = f"internal error: {type(failure.error).__name__}"
            parent = failure.parent
            redactor = Redactor.of(parent, secret_children(failure.observed))
            logs.log_failure(hook, ERROR, _ms(started), detail, Identity.of(parent), redactor)
            return error_response(500, detail)
        payload, replay, timings = outcome
        etag = etag_of(payload)
        if replay is not None:
            self._report(replay, timings, started)
            if answers is not None:
                answers.put(key, Entry(payload, etag, replay))
        return self._respond(request, payload, etag, replay)

    async def _compute(
        self, hook: str, body: bytes, decide: Decide, related: bool
    ) -> tuple[bytes, Replay | None, Timings]:
        """Decode, decide, encode; a large request runs in a thread, bounded in time, so the
        event loop keeps answering probes (a 1,000-pod sync takes ~100 ms)."""
        work = partial(_decide, hook, body, decide, self.clock(), related)
        if len(body) < OFFLOAD_BYTES:
            return work()
        return await asyncio.wait_for(asyncio.to_thread(work), self.timeout)

    def _report(self, replay: Replay, timings: Timings | None, started: float) -> None:
        """Metrics and the log line; a fault here must never cost Metacontroller its answer."""
        try:
            self.metrics.record(replay.answer, timings)
            self.metrics.gauges(replay.answer, replay.parent, replay.status)
            logs.log_answer(replay.answer, _ms(started), replay.redactor)
        except Exception:
            log.exception("recording metrics or logs of a %s answer failed", replay.answer.hook)

    def _respond(
        self, request: Request, payload: bytes, etag: str, replay: Replay | None
    ) -> Response:
        background = BackgroundTasks()
        if self.events is not None and replay is not None and replay.events:
            background.add_task(self.events.enqueue, replay.parent, replay.events, replay.redactor)
        if replay is not None and replay.delete_parent:
            self._delete_parent(background, replay)
        if replay is not None and replay.intents:
            # On the pollers' tasks, not the response's: a background task of the response
            # would hold this request's guard slot until a slow dashboard answered.
            jobs = [i for i in replay.intents if isinstance(i, SubmitJob | StopJob)]
            configs = [i for i in replay.intents if isinstance(i, ApplyServeConfig)]
            if jobs and self.dashboards is not None:
                self.dashboards.offer(jobs)
            if configs and self.serve is not None:
                self.serve.offer(configs)
            if self.labeler is not None:
                self.labeler.offer_all(replay.intents)
        after = background if background.tasks else None
        headers = {"ETag": etag}
        if request.headers.get("if-none-match") == etag:
            # Metacontroller reuses the answer it cached under this ETag.
            return Response(status_code=304, headers=headers, background=after)
        return Response(payload, media_type=JSON, headers=headers, background=after)

    def _delete_parent(self, background: BackgroundTasks, replay: Replay) -> None:
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
) -> tuple[bytes, Replay | None, Timings]:
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
) -> tuple[bytes, Replay | None, Timings]:
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


def _replay(hook: str, request: SyncRequest, desired: Desired) -> Replay | None:
    try:
        answer = summarize(hook, request, desired)
        held = secret_children(request.observed, desired.children)
        return Replay(
            answer,
            request.parent,
            desired.status,
            desired.events,
            Redactor.of(request.parent, held),
            delete_parent=desired.delete_parent and kind_of(hook) == RAYJOB,
            intents=tuple(
                i
                for i in desired.intents
                if isinstance(i, SubmitJob | StopJob | ApplyServeConfig | SetHeadServeLabel)
            ),
        )
    except Exception:
        log.exception("summarising a %s answer failed", hook)
        return None


def _ms(started: float) -> float:
    return (perf_counter() - started) * 1000


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": message})
    return Response(body, status_code=status, media_type=JSON, headers=headers)
