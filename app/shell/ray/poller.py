"""The Ray dashboards as an observed input: the shell's only dashboard I/O.

The RayJob core never calls a dashboard. The hook calls ``watch(url, job_id)`` on every sync
of a RayJob that needs its Ray job's state and reads ``view(url, job_id)`` (both synchronous,
O(1), no I/O); one background task polls ``GET <url>/api/jobs/<job_id>`` for every watched job
every ``interval`` seconds, at most ``concurrency`` requests in flight, each bounded by
``timeout``. A slow or dead dashboard therefore never delays an answer: it only makes its
view older and sets ``failing_since``. The core's intents (``SubmitJob``, ``StopJob``) are
carried out on the poller's own tasks (``offer``, ``intents.py``), started as the answer is
sent; each request goes through ``client.py`` (bounded, counted, failures logged once).

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
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from app.rayjob.dashboard import DashboardView
from app.shell.ray.client import DashboardClient
from app.shell.ray.intents import IntentRunner
from app.shell.ray.wire import Counters, NoCounters, shown

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("metaray.dashboard")


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


class Dashboards(IntentRunner):
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
        self.interval = interval
        self.timeout = timeout
        self.concurrency = concurrency
        self.expiry = expiry
        self.max_jobs = max_jobs
        self.metrics: Counters = metrics if metrics is not None else NoCounters()
        self._http = DashboardClient(
            transport=transport, timeout=timeout, concurrency=concurrency, metrics=self.metrics
        )
        self.timer = timer
        self._lock = threading.Lock()  # watches and heap: watch() may run in a worker thread
        self._watches: dict[Key, _Watch] = {}
        self._heap: list[tuple[float, int, Key]] = []
        self._tokens = itertools.count()
        self._slots: asyncio.Semaphore | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._intents: dict[tuple[str, str, str], asyncio.Task[None]] = {}
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
        await self._http.close()

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
            view = await self._http.read_job(watch.url, watch.job_id, watch.view, self.clock)
        except asyncio.CancelledError:  # stop(): due again at once after a start()
            self._slots.release()
            self._done(watch, watch.view, started - self.interval)
            raise
        except Exception:  # a bug: keep the view, poll again later
            log.exception("polling %s failed", shown(watch.url))
            view = watch.view
        self._slots.release()
        self._done(watch, view, started)

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

    def _watch_of(self, url: str, job_id: str) -> _Watch | None:
        return self._watches.get((url, job_id))
