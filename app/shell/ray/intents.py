"""The RayJob core's intents (``SubmitJob``, ``StopJob``) carried out on the job poller's own
tasks: idempotently (Ray refuses a second job with the same submission id; stopping a job that
is gone is done), bounded in time, best effort (failures are counted and logged, never raised).
A submission's failure is noted on its job's watch, so the next view the core gets says so.

``IntentRunner`` is a part of ``app.shell.ray.poller.Dashboards``: it shares its request slots,
its client and its watches."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from app.rayjob.dashboard import Intent, StopJob, SubmitJob
from app.shell.ray.client import DashboardClient, Failure
from app.shell.ray.wire import (
    FORMAT,
    NOT_FOUND,
    OK,
    STOP,
    SUBMIT,
    TIMEOUT,
    Counters,
    base_url,
    job_path,
    said,
    shown,
)

log = logging.getLogger("metaray.dashboard")


class Refusable(Protocol):
    """What a watch keeps of a failed submission."""

    refused: str
    refused_since: str | None


class IntentRunner:
    # Provided by Dashboards.
    clock: Callable[[], datetime]
    timeout: float
    metrics: Counters
    _lock: threading.Lock
    _slots: asyncio.Semaphore | None
    _http: DashboardClient
    _intents: dict[tuple[str, str, str], asyncio.Task[None]]

    def _bind(self) -> None:
        raise NotImplementedError

    def _soon(self, url: str, job_id: str) -> None:
        raise NotImplementedError

    def _watch_of(self, url: str, job_id: str) -> Refusable | None:
        raise NotImplementedError

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
                raise Failure(TIMEOUT, "no free request slot") from None
            try:
                answer = await self._http.request(call, "POST", url, body)
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
                raise self._http.rejected(call, answer, f"HTTP {answer.status}", said(answer.body))
            self._http.answered(call, intent.url, outcome, answer)
        except Failure as failure:
            self._http.failed(call, intent.url, failure, intent.job_id)
            if call == SUBMIT:
                self._refused(intent, failure)
            return
        if call == SUBMIT:
            self._refused(intent, None)
        self._soon(intent.url, intent.job_id)

    def _refused(self, intent: Intent, failure: Failure | None) -> None:
        """Note on the job's watch that its submission failed (or no longer does): the view
        the core gets carries it, so the RayJob says so and KubeRay's 300 s rule runs."""
        with self._lock:
            watch = self._watch_of(intent.url, intent.job_id)
            if watch is None:
                return
            if failure is None:
                watch.refused, watch.refused_since = "", None
                return
            detail = f"{failure.kind}: {failure.detail}" if failure.detail else failure.kind
            watch.refused = detail
            if watch.refused_since is None:
                watch.refused_since = self.clock().astimezone(UTC).strftime(FORMAT)
