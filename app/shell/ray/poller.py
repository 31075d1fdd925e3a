"""The Ray dashboards as an observed input: the shell's only dashboard I/O.

The RayJob core never calls a dashboard. The hook calls ``watch(url, job_id)`` on every sync
of a RayJob that needs its Ray job's state and reads ``view(url, job_id)`` (both synchronous,
O(1), no I/O); one background task polls ``GET <url>/api/jobs/<job_id>`` for every watched job
every ``interval`` seconds, at most ``concurrency`` requests in flight, each bounded by
``timeout``. A slow or dead dashboard therefore never delays an answer: it only makes its
view older and sets ``failing_since``. The core's intents (``SubmitJob``, ``StopJob``) are
carried out on the poller's own tasks (``offer``), started as the answer is sent, idempotently
(Ray refuses a second job with the same submission id; stopping a job that is gone is done),
best effort: failures are counted and logged once per kind and dashboard, never raised.

Scheduling runs on a monotonic timer (``timer``), timestamps in views on the wall ``clock``.
A watch that no ``watch()`` has refreshed for ``expiry`` seconds is dropped; beyond
``max_jobs`` watches a new one is refused (counted). ``watch``/``view`` may be called from any
thread (the hook computes in a worker thread); the rest runs on the app's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from app.rayjob.dashboard import STATES, DashboardView, Intent, JobInfo, StopJob, SubmitJob

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_BODY = 1 << 20  # a job's info is a few KiB; a larger answer is garbage
REFUSAL_BYTES = 1024  # of a refused submission's answer, kept for the RayJob's status
REPORTED_SIZE = 4096  # (url, call, kind) failures remembered as logged
GET, SUBMIT, STOP = "get", "submit", "stop"
OK, NOT_FOUND, ERROR, TIMEOUT = "ok", "not_found", "error", "timeout"

log = logging.getLogger("metaray.dashboard")


class Counters(Protocol):
    """What the client reports (``app.shell.observability.metrics.DashboardMetrics``)."""

    def request(self, call: str, outcome: str, seconds: float) -> None: ...

    def watched(self, count: int) -> None: ...

    def refused(self) -> None: ...


class _NoCounters:
    def request(self, call: str, outcome: str, seconds: float) -> None:
        pass

    def watched(self, count: int) -> None:
        pass

    def refused(self) -> None:
        pass


def base_url(url: str) -> str:
    """``status.dashboardURL`` is ``host:port`` (no scheme, as KubeRay writes it)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def shown(url: str) -> str:
    """The url for a log line: without user information (it may hold a password)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def job_path(job_id: str) -> str:
    return f"/api/jobs/{quote(job_id, safe='')}"


def stamp_ms(value: Any) -> str | None:
    """Ray's milliseconds since the epoch as RFC 3339 seconds; None for 0, absent or junk."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        moment = datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime(FORMAT)


def job_info(body: bytes) -> JobInfo | None:
    """The fields metaray reads from ``GET /api/jobs/<id>``, or None when it is garbage."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") not in STATES:
        return None
    message = data.get("message")
    return JobInfo(
        status=data["status"],
        message=message if isinstance(message, str) else "",
        start_time=stamp_ms(data.get("start_time")),
        end_time=stamp_ms(data.get("end_time")),
    )


class _Failure(Exception):
    """A request that did not give a usable answer: ``outcome`` is error or timeout."""

    def __init__(self, outcome: str, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.outcome = outcome
        self.kind = kind
        self.detail = detail  # what the dashboard said, when it said why


def said(body: bytes) -> str:
    """The start of a dashboard's answer, as text for a status message (Ray explains a refused
    submission in it: a bad runtime env, a resource no node has); the core caps it again."""
    return body[:REFUSAL_BYTES].decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    seconds: float


@dataclass(slots=True)
class _Watch:
    url: str
    job_id: str
    seen: float  # timer() of the last watch()
    due: float  # timer() of the next poll
    token: int  # the heap entry that is current (older ones are skipped)
    view: DashboardView | None = None
    polling: bool = False
    again: bool = False  # poll once more as soon as the one in flight is done
    refused: str = ""  # why the last submission failed (cleared once the job is known)
    refused_since: str | None = None


Key = tuple[str, str]


class Dashboards:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        interval: float = 3.0,
        timeout: float = 2.0,
        concurrency: int = 16,
        expiry: float = 120.0,
        max_jobs: int = 10_000,
        metrics: Counters | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.transport = transport
        self.interval = interval
        self.timeout = timeout
        self.concurrency = concurrency
        self.expiry = expiry
        self.max_jobs = max_jobs
        self.metrics: Counters = metrics if metrics is not None else _NoCounters()
        self.timer = timer
        self._lock = threading.Lock()  # watches and heap: watch() may run in a worker thread
        self._watches: dict[Key, _Watch] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._tokens = itertools.count()
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._intents: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._reported: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._refusal_logged = False

    # -- the hook's side: synchronous, O(1), no I/O -------------------------------------------

    def watch(self, url: str, job_id: str) -> None:
        """Poll this job (at once if new); refreshes its expiry."""
        key = (url, job_id)
        now = self.timer()
        with self._lock:
            existing = self._watches.get(key)
            if existing is not None:
                existing.seen = now
                return
            if len(self._watches) >= self.max_jobs:
                refused = True
            else:
                refused = False
                token = next(self._tokens)
                self._watches[key] = _Watch(url, job_id, seen=now, due=now, token=token)
                heapq.heappush(self._heap, (now, token, key))
                count = len(self._watches)
        if refused:
            self.metrics.refused()
            if not self._refusal_logged:
                self._refusal_logged = True
                log.warning(
                    "not watching more Ray jobs: %d are watched already (max_jobs)",
                    self.max_jobs,
                )
            return
        self.metrics.watched(count)
        self._poke()

    def view(self, url: str, job_id: str) -> DashboardView | None:
        """The latest view of that job; None before the first answer (or when not watched)."""
        watch = self._watches.get((url, job_id))
        if watch is None:
            return None
        if not watch.refused:
            return watch.view
        known = watch.view if watch.view is not None else DashboardView(url, job_id)
        return replace(known, refused=watch.refused, refused_since=watch.refused_since)

    def watched(self) -> int:
        return len(self._watches)

    # -- the background loop ------------------------------------------------------------------

    def start(self) -> None:
        """Start the poll loop on the running event loop (the app's lifespan)."""
        if self._task is not None and not self._task.done():
            return
        self._bind()
        self._task = asyncio.create_task(self._run(), name="metaray-dashboards")

    async def stop(self) -> None:
        """Stop polling, give up requests in flight, close the connections."""
        tasks = [*self._polls, *self._intents.values()]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def poll_once(self) -> None:
        """Poll every watched job that is due and wait for the answers: one step of the loop
        (which does not wait), for tests."""
        self._bind()
        tasks = await self._launch_due()
        if tasks:
            await asyncio.gather(*tasks)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await self._launch_due()
                delay: float | None = self._next_delay()
            except Exception:  # a bug: never end the loop
                log.exception("the dashboard poll loop failed; carrying on")
                delay = self.interval
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.concurrency)
            self._wake = asyncio.Event()

    def _poke(self) -> None:
        """Wake the loop (from any thread) to look at the heap again."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    def _next_delay(self) -> float | None:
        """None (sleep until ``watch`` pokes) when nothing is watched: no timer at rest."""
        with self._lock:
            if not self._heap:
                return None
            return min(self.interval, max(0.0, self._heap[0][0] - self.timer()))

    def _pop_due(self) -> _Watch | None:
        """The next watch whose poll is due; drops expired ones on the way."""
        now = self.timer()
        dropped = False
        found = None
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, token, key = heapq.heappop(self._heap)
                watch = self._watches.get(key)
                if watch is None or watch.token != token or watch.polling:
                    continue
                if now - watch.seen >= self.expiry:
                    del self._watches[key]
                    dropped = True
                    continue
                watch.polling = True
                found = watch
                break
            count = len(self._watches)
        if dropped:
            self.metrics.watched(count)
        return found

    async def _launch_due(self) -> list[asyncio.Task[None]]:
        assert self._slots is not None
        launched = []
        while (watch := self._pop_due()) is not None:
            await self._slots.acquire()  # at most `concurrency` requests in flight
            task = asyncio.create_task(self._poll(watch))
            self._polls.add(task)
            task.add_done_callback(self._polls.discard)
            launched.append(task)
        return launched

    async def _poll(self, watch: _Watch) -> None:
        assert self._slots is not None
        started = self.timer()
        view: DashboardView | None
        try:
            view = await self._query(watch)
        except asyncio.CancelledError:  # stop(): due again at once after a start()
            self._slots.release()
            self._done(watch, watch.view, started - self.interval)
            raise
        except Exception:  # a bug: keep the view, poll again later
            log.exception("polling %s failed", shown(watch.url))
            view = watch.view
        self._slots.release()
        self._done(watch, view, started)

    async def _query(self, watch: _Watch) -> DashboardView:
        previous = watch.view
        url = base_url(watch.url) + job_path(watch.job_id)
        try:
            answer = await self._request(GET, "GET", url)
            if answer.status == 404:
                self._answered(GET, watch.url, NOT_FOUND, answer)
                return DashboardView(watch.url, watch.job_id, found=False)
            if answer.status != 200:
                raise self._rejected(GET, answer, f"HTTP {answer.status}")
            info = job_info(answer.body)
            if info is None:
                raise self._rejected(GET, answer, "the answer is not a Ray job's info")
            self._answered(GET, watch.url, OK, answer)
            return DashboardView(watch.url, watch.job_id, found=True, info=info)
        except _Failure as failure:
            self._failed(GET, watch.url, failure)
            since = previous.failing_since if previous is not None else None
            return DashboardView(
                watch.url,
                watch.job_id,
                found=previous.found if previous is not None else False,
                info=previous.info if previous is not None else None,
                failing_since=since or self.clock().astimezone(UTC).strftime(FORMAT),
                error=failure.kind,
            )

    def _done(self, watch: _Watch, view: DashboardView | None, started: float) -> None:
        now = self.timer()
        with self._lock:
            watch.view = view
            watch.polling = False
            if view is not None and view.info is not None:
                watch.refused, watch.refused_since = "", None  # the job was taken after all
            if self._watches.get((watch.url, watch.job_id)) is not watch:
                return  # dropped meanwhile
            watch.due = now if watch.again else started + self.interval
            watch.again = False
            watch.token = next(self._tokens)
            heapq.heappush(self._heap, (watch.due, watch.token, (watch.url, watch.job_id)))
            first = self._heap[0][1] == watch.token
        if first:
            self._poke()

    def _soon(self, url: str, job_id: str) -> None:
        """Poll that job at once (after a submit or a stop)."""
        self.watch(url, job_id)
        with self._lock:
            watch = self._watches.get((url, job_id))
            if watch is None:
                return
            if watch.polling:
                watch.again = True
                return
            watch.due = self.timer()
            watch.token = next(self._tokens)
            heapq.heappush(self._heap, (watch.due, watch.token, (url, job_id)))
        self._poke()

    # -- intents ------------------------------------------------------------------------------

    def offer(self, intents: Iterable[Intent]) -> None:
        """Start carrying out the intents on the poller's own tasks and return at once (on the
        app's event loop): the hook that asked holds no request slot while a dashboard is slow."""
        try:
            self._bind()
            for intent in intents:
                self._start(intent)
        except Exception:
            log.exception("starting dashboard intents failed")

    async def carry_out(self, intents: Iterable[Intent]) -> None:
        """Submit and stop Ray jobs and wait for it; idempotent, bounded in time, never raises."""
        try:
            self._bind()
            tasks = [self._start(intent) for intent in intents]
            if tasks:
                await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("carrying out dashboard intents failed")

    async def intents_done(self) -> None:
        """Wait for the intents in flight (tests, and a clean stop)."""
        in_flight = list(self._intents.values())
        if in_flight:
            await asyncio.gather(*(asyncio.shield(t) for t in in_flight), return_exceptions=True)

    def _start(self, intent: Intent) -> asyncio.Task[None]:
        call = SUBMIT if isinstance(intent, SubmitJob) else STOP
        key = (call, intent.url, intent.job_id)
        task = self._intents.get(key)
        if task is None:  # the same intent in flight is not sent twice
            task = asyncio.create_task(self._carry_out(intent))
            self._intents[key] = task
            task.add_done_callback(self._forget(key))
        return task

    def _forget(self, key: tuple[str, str, str]) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._intents.pop(key, None)

        return forget

    async def _carry_out(self, intent: Intent) -> None:
        assert self._slots is not None
        base = base_url(intent.url)
        if isinstance(intent, SubmitJob):
            call, url, body = SUBMIT, f"{base}/api/jobs/", intent.body()
        elif isinstance(intent, StopJob):
            call, url, body = STOP, f"{base}{job_path(intent.job_id)}/stop", None
        else:  # pragma: no cover - Intent is a closed union
            return
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError:
                self.metrics.request(call, TIMEOUT, self.timeout)
                raise _Failure(TIMEOUT, "no free request slot") from None
            try:
                answer = await self._request(call, "POST", url, body)
            finally:
                self._slots.release()
            if answer.status == 200:
                outcome = OK
            elif call == STOP and answer.status == 404:
                outcome = NOT_FOUND
            elif (
                call == SUBMIT and answer.status in (400, 500) and b"already exists" in answer.body
            ):
                outcome = OK  # Ray: "Job with submission_id <id> already exists."
                log.debug("Ray job %s exists already at %s", intent.job_id, shown(intent.url))
            else:
                raise self._rejected(call, answer, f"HTTP {answer.status}", said(answer.body))
            self._answered(call, intent.url, outcome, answer)
        except _Failure as failure:
            self._failed(call, intent.url, failure, intent.job_id)
            if call == SUBMIT:
                self._refused(intent, failure)
            return
        if call == SUBMIT:
            self._refused(intent, None)
        self._soon(intent.url, intent.job_id)

    def _refused(self, intent: Intent, failure: _Failure | None) -> None:
        """Note on the job's watch that its submission failed (or no longer does): the view
        the core gets carries it, so the RayJob says so and KubeRay's 300 s rule runs."""
        with self._lock:
            watch = self._watches.get((intent.url, intent.job_id))
            if watch is None:
                return
            if failure is None:
                watch.refused, watch.refused_since = "", None
                return
            detail = f"{failure.kind}: {failure.detail}" if failure.detail else failure.kind
            watch.refused = detail
            if watch.refused_since is None:
                watch.refused_since = self.clock().astimezone(UTC).strftime(FORMAT)

    # -- one request --------------------------------------------------------------------------

    def _session(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
                follow_redirects=False,
                trust_env=False,  # no proxies or .netrc credentials from the environment
            )
        return self._client

    async def _request(self, call: str, method: str, url: str, body: Any = None) -> _Answer:
        """One request, bounded by ``timeout`` in all (httpx's own timeouts are per read).
        A request without an answer is counted here; an answer, by the caller."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                client = self._session()
                response = await client.send(
                    client.build_request(method, url, json=body), stream=True
                )
                try:
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_BODY:
                            raise _Failure(ERROR, "the answer is too large")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except _Failure as failure:
            self.metrics.request(call, failure.outcome, time.perf_counter() - started)
            raise
        except (TimeoutError, httpx.TimeoutException):
            self.metrics.request(call, TIMEOUT, time.perf_counter() - started)
            raise _Failure(TIMEOUT, f"timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            self.metrics.request(call, ERROR, time.perf_counter() - started)
            raise _Failure(ERROR, type(error).__name__) from None
        return _Answer(response.status_code, b"".join(chunks), time.perf_counter() - started)

    # -- reporting ----------------------------------------------------------------------------

    def _answered(self, call: str, url: str, outcome: str, answer: _Answer) -> None:
        """A usable answer: counted, and the next failure at that dashboard is logged again."""
        self.metrics.request(call, outcome, answer.seconds)
        for key in [key for key in self._reported if key[:2] == (url, call)]:
            del self._reported[key]

    def _rejected(self, call: str, answer: _Answer, kind: str, detail: str = "") -> _Failure:
        """An answer that is no use (5xx, garbage): counted as an error."""
        self.metrics.request(call, ERROR, answer.seconds)
        return _Failure(ERROR, kind, detail)

    def _failed(self, call: str, url: str, failure: _Failure, job_id: str = "") -> None:
        key = (url, call, failure.kind)
        if key in self._reported:
            return
        self._reported[key] = None
        while len(self._reported) > REPORTED_SIZE:
            self._reported.popitem(last=False)
        verb = {GET: "read a Ray job's status from", SUBMIT: "submit a Ray job to"}.get(
            call, "stop a Ray job at"
        )
        log.warning(
            "cannot %s the dashboard %s: %s",
            verb,
            shown(url),
            failure.kind,
            extra={
                "fields": {
                    "dashboard": shown(url),
                    "call": call,
                    "outcome": failure.outcome,
                    "error": failure.kind,
                    **({"job_id": job_id} if job_id else {}),
                }
            },
        )
