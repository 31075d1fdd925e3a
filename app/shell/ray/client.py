"""One request to a Ray dashboard: bounded in time and size, counted, its failures logged once
per (dashboard, call, kind) until that dashboard answers again; a poll's answer read as a view
of the job. Used by the job poller's polls and intents (``poller.py``, ``intents.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.rayjob.dashboard import DashboardView
from app.shell.ray.wire import (
    ERROR,
    FORMAT,
    GET,
    MAX_BODY,
    NOT_FOUND,
    OK,
    SUBMIT,
    TIMEOUT,
    Counters,
    base_url,
    job_info,
    job_path,
    shown,
)

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

REPORTED_SIZE = 4096  # (url, call, kind) failures remembered as logged

log = logging.getLogger("metaray.dashboard")


class Failure(Exception):
    """A request that did not give a usable answer: ``outcome`` is error or timeout."""

    def __init__(self, outcome: str, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.outcome = outcome
        self.kind = kind
        self.detail = detail  # what the dashboard said, when it said why


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    seconds: float


class DashboardClient:
    """The connections to every dashboard (one httpx client, opened on first use)."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        concurrency: int,
        metrics: Counters,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.concurrency = concurrency
        self.metrics = metrics
        self._client: httpx.AsyncClient | None = None
        self._reported: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _session(self) -> httpx.AsyncClient:
        import httpx

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

    async def request(self, call: str, method: str, url: str, body: Any = None) -> Answer:
        """One request, bounded by ``timeout`` in all (httpx's own timeouts are per read).
        A request without an answer is counted here; an answer, by the caller."""
        import httpx  # here, not at start-up: a hook without RayJobs never needs it

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
                            raise Failure(ERROR, "the answer is too large")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except Failure as failure:
            self.metrics.request(call, failure.outcome, time.perf_counter() - started)
            raise
        except (TimeoutError, httpx.TimeoutException):
            self.metrics.request(call, TIMEOUT, time.perf_counter() - started)
            raise Failure(TIMEOUT, f"timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            self.metrics.request(call, ERROR, time.perf_counter() - started)
            raise Failure(ERROR, type(error).__name__) from None
        return Answer(response.status_code, b"".join(chunks), time.perf_counter() - started)

    async def read_job(
        self,
        url: str,
        job_id: str,
        previous: DashboardView | None,
        clock: Callable[[], datetime],
    ) -> DashboardView:
        """``GET /api/jobs/<id>`` as the next view of that job; a failure keeps what the last
        view knew and says since when it fails."""
        try:
            answer = await self.request(GET, "GET", base_url(url) + job_path(job_id))
            if answer.status == 404:
                self.answered(GET, url, NOT_FOUND, answer)
                return DashboardView(url, job_id, found=False)
            if answer.status != 200:
                raise self.rejected(GET, answer, f"HTTP {answer.status}")
            info = job_info(answer.body)
            if info is None:
                raise self.rejected(GET, answer, "the answer is not a Ray job's info")
            self.answered(GET, url, OK, answer)
            return DashboardView(url, job_id, found=True, info=info)
        except Failure as failure:
            self.failed(GET, url, failure)
            since = previous.failing_since if previous is not None else None
            return DashboardView(
                url,
                job_id,
                found=previous.found if previous is not None else False,
                info=previous.info if previous is not None else None,
                failing_since=since or clock().astimezone(UTC).strftime(FORMAT),
                error=failure.kind,
            )

    # -- reporting ----------------------------------------------------------------------------

    def answered(self, call: str, url: str, outcome: str, answer: Answer) -> None:
        """A usable answer: counted, and the next failure at that dashboard is logged again."""
        self.metrics.request(call, outcome, answer.seconds)
        for key in [key for key in self._reported if key[:2] == (url, call)]:
            del self._reported[key]

    def rejected(self, call: str, answer: Answer, kind: str, detail: str = "") -> Failure:
        """An answer that is no use (5xx, garbage): counted as an error."""
        self.metrics.request(call, ERROR, answer.seconds)
        return Failure(ERROR, kind, detail)

    def failed(self, call: str, url: str, failure: Failure, job_id: str = "") -> None:
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
