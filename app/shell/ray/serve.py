"""Ray Serve through the dashboards of RayService clusters: views in, config PUTs out.

The RayService hook calls ``watch(target)`` for every cluster the core names (addresses derived
by the core from head Services that metaray's RayCluster controller owns) and reads
``view(cluster, url)``; both are synchronous, O(1), without I/O. A background task reads
``GET <url>/api/serve/applications/?api_type=declarative`` of every watched cluster every
``interval`` seconds, at most ``concurrency`` requests in flight, each bounded by ``timeout``:
a dead dashboard only ages its view and sets ``failing_since``. ``carry_out`` PUTs a config
(``ApplyServeConfig``) after the answer, on this poller's own loop: the same PUT is never in
flight twice, is not repeated until the cluster has been read again after it, and a failure is
counted and logged once, never raised. Whether a config is applied is always read back from Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.rayservice.serve import Application, ApplyServeConfig, Deployment, ServeTarget, ServeView
from app.shell.ray.wire import ERROR, MAX_BODY, OK, TIMEOUT, Counters, base_url, shown

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

APPLICATIONS = "/api/serve/applications/"
SERVE_GET, SERVE_PUT = "serve_get", "serve_put"
FORMAT = "%Y-%m-%dT%H:%M:%SZ"

log = logging.getLogger("metaray.serve")

Key = tuple[str, str]  # (cluster, url)


class _Quiet:
    def request(self, call: str, outcome: str, seconds: float) -> None:
        pass

    def watched(self, count: int) -> None:
        pass

    def refused(self) -> None:
        pass


def parse_applications(url: str, body: bytes) -> ServeView | None:
    """Ray's ``ServeInstanceDetails``, reduced to what the core reads; None for garbage."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    apps = data.get("applications") if isinstance(data, dict) else None
    if not isinstance(apps, dict):
        return None
    found = []
    for name, app in sorted(apps.items()):
        if not isinstance(app, dict) or not isinstance(app.get("status"), str):
            return None
        deployments = app.get("deployments")
        found.append(
            (
                str(name) or "default",
                Application(
                    status=app["status"],
                    message=_text(app.get("message")),
                    deployments=tuple(
                        (str(d), Deployment(_text(v.get("status")), _text(v.get("message"))))
                        for d, v in sorted((deployments or {}).items())
                        if isinstance(v, dict)
                    )
                    if isinstance(deployments, dict)
                    else (),
                    deployed=app.get("deployed_app_config"),
                ),
            )
        )
    capacity = data.get("target_capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int | float):
        capacity = None
    return ServeView(url, tuple(found), target_capacity=capacity)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(slots=True)
class _Watch:
    seen: float
    due: float
    token: str = field(default="", repr=False)  # the cluster's Ray auth token, if any
    view: ServeView | None = None
    polling: bool = False
    reads: int = 0  # answers read; a PUT is not repeated until this moved past it


class ServeDashboards:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        interval: float = 3.0,
        timeout: float = 2.0,
        concurrency: int = 16,
        expiry: float = 120.0,
        max_watches: int = 10_000,
        metrics: Counters | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock, self.transport, self.timer = clock, transport, timer
        self.interval, self.timeout, self.concurrency = interval, timeout, concurrency
        self.expiry, self.max_watches = expiry, max_watches
        self.metrics: Counters = metrics if metrics is not None else _Quiet()
        self._lock = threading.Lock()  # watch() may run in the hook's worker thread
        self._watches: dict[Key, _Watch] = {}
        self._sent: dict[tuple[str, str, str], int] = {}  # (cluster, url, config) -> reads
        self._puts: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._reported: set[tuple[str, str, str]] = set()
        # Set by watch() (from any thread) when the loop may be asleep with nothing watched.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- the hook's side -------------------------------------------------------------------
    def watch(self, target: ServeTarget) -> None:
        key = (target.cluster, target.url)
        now = self.timer()
        with self._lock:
            found = self._watches.get(key)
            if found is not None:
                found.seen = now
                found.token = target.token  # a rotated Secret is used from the next call on
                return
            if len(self._watches) >= self.max_watches:
                self.metrics.refused()
                return
            self._watches[key] = _Watch(seen=now, due=now, token=target.token)
            count = len(self._watches)
        self.metrics.watched(count)
        self._poke()

    def view(self, cluster: str, url: str) -> ServeView | None:
        found = self._watches.get((cluster, url))
        return None if found is None else found.view

    def views(self, targets: Iterable[ServeTarget]) -> dict[str, ServeView]:
        """Watch each target and return the latest views (the hook's one call)."""
        out = {}
        for target in targets:
            self.watch(target)
            view = self.view(target.cluster, target.url)
            if view is not None:
                out[target.cluster] = view
        return out

    # -- the loop --------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="metaray-serve")

    async def stop(self) -> None:
        tasks = [*self._puts.values(), *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # a bug: never end the loop
                log.exception("the Serve poll loop failed; carrying on")
            await self._rest()

    async def _rest(self) -> None:
        """A quarter interval while anything is watched; with nothing watched, until ``watch``
        adds a target: no timer at rest, an idle hook spends no CPU here."""
        wake = self._wake
        if wake is None:
            await asyncio.sleep(self.interval / 4)
            return
        wake.clear()  # before looking: a watch added after the look sets it again
        with self._lock:
            idle = not self._watches
        if idle:
            await wake.wait()
        else:
            await asyncio.sleep(self.interval / 4)

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    async def poll_once(self) -> None:
        """Read every watched cluster that is due, and wait for the answers."""
        now = self.timer()
        due = []
        with self._lock:
            for key, watch in list(self._watches.items()):
                if now - watch.seen >= self.expiry:
                    del self._watches[key]
                elif watch.due <= now and not watch.polling:
                    watch.polling = True
                    due.append((key, watch))
        if due:
            await asyncio.gather(*(self._poll(key, watch) for key, watch in due))

    async def _poll(self, key: Key, watch: _Watch) -> None:
        try:
            view = await self._read(key[1], watch.view, watch.token)
        finally:
            watch.polling = False
            watch.due = self.timer() + self.interval
        watch.view = view
        watch.reads += 1

    async def _read(self, url: str, previous: ServeView | None, token: str) -> ServeView:
        target = base_url(url) + APPLICATIONS + "?api_type=declarative"
        try:
            status, body = await self._request(SERVE_GET, "GET", target, token=token)
            view = parse_applications(url, body) if status == 200 else None
            if view is None:
                raise _Failure(ERROR, f"HTTP {status}" if status != 200 else "not Serve's answer")
            self.metrics.request(SERVE_GET, OK, 0.0)
            self._reported = {r for r in self._reported if r[:2] != (url, SERVE_GET)}
            return view
        except _Failure as failure:
            self._failed(url, SERVE_GET, failure.kind)
            since = previous.failing_since if previous is not None else None
            return ServeView(
                url,
                previous.applications if previous is not None else None,
                failing_since=since or self.clock().astimezone(UTC).strftime(FORMAT),
                error=failure.kind,
                target_capacity=previous.target_capacity if previous is not None else None,
            )

    # -- intents ---------------------------------------------------------------------------
    def offer(self, intents: Iterable[Any]) -> None:
        """Start the PUTs on this poller's own tasks and return at once (on the app's event
        loop): the hook that asked holds no request slot while a dashboard is slow."""
        try:
            self._start_all(intents)
        except Exception:
            log.exception("starting Serve intents failed")

    async def carry_out(self, intents: Iterable[Any]) -> None:
        """PUT each config once per read of its cluster and wait for it; never raises."""
        try:
            tasks = self._start_all(intents)
            if tasks:
                await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("carrying out Serve intents failed")

    async def intents_done(self) -> None:
        """Wait for the PUTs in flight (tests, and a clean stop)."""
        in_flight = list(self._puts.values())
        if in_flight:
            await asyncio.gather(*(asyncio.shield(t) for t in in_flight), return_exceptions=True)

    def _start_all(self, intents: Iterable[Any]) -> list[asyncio.Task[None]]:
        tasks = []
        for intent in intents:
            if not isinstance(intent, ApplyServeConfig):
                continue
            key = (intent.cluster, intent.url, intent.key)
            watch = self._watches.get((intent.cluster, intent.url))
            reads = watch.reads if watch is not None else 0
            if key in self._puts or self._sent.get(key) == reads:
                continue  # in flight, or sent and Ray not read again since
            token = watch.token if watch is not None else ""
            task = asyncio.create_task(self._put(intent, key, reads, token))
            self._puts[key] = task
            task.add_done_callback(lambda _, k=key: self._puts.pop(k, None))  # type: ignore[misc]
            tasks.append(task)
        return tasks

    async def _put(
        self, intent: ApplyServeConfig, key: tuple[str, str, str], reads: int, token: str
    ) -> None:
        try:
            status, _ = await self._request(
                SERVE_PUT, "PUT", base_url(intent.url) + APPLICATIONS, intent.body(), token=token
            )
            if not 200 <= status < 300:
                raise _Failure(ERROR, f"HTTP {status}")
        except _Failure as failure:
            self._failed(intent.url, SERVE_PUT, failure.kind)
            return
        self.metrics.request(SERVE_PUT, OK, 0.0)
        self._sent[key] = reads
        if len(self._sent) > 4 * self.max_watches:
            self._sent.pop(next(iter(self._sent)))
        watch = self._watches.get((intent.cluster, intent.url))
        if watch is not None:
            watch.due = self.timer()  # read it back soon
        log.info("applied a Serve config to %s", shown(intent.url))

    # -- one request -----------------------------------------------------------------------
    async def _request(
        self, call: str, method: str, url: str, body: Any = None, *, token: str = ""
    ) -> tuple[int, bytes]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        import httpx  # here, not at start-up: a hook without RayServices never needs it

        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._slots:
                    client = self._session()
                    # Ray's token auth reads the standard header first.
                    headers = {"Authorization": f"Bearer {token}"} if token else None
                    request = client.build_request(method, url, json=body, headers=headers)
                    response = await client.send(request, stream=True)
                    try:
                        chunks, size = [], 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > MAX_BODY:
                                raise _Failure(ERROR, "the answer is too large")
                            chunks.append(chunk)
                    finally:
                        await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            self.metrics.request(call, TIMEOUT, time.perf_counter() - started)
            raise _Failure(TIMEOUT, f"timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            self.metrics.request(call, ERROR, time.perf_counter() - started)
            raise _Failure(ERROR, type(error).__name__) from None
        return response.status_code, b"".join(chunks)

    def _session(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=self.concurrency),
                follow_redirects=False,
                trust_env=False,  # no proxies or .netrc credentials from the environment
            )
        return self._client

    def _failed(self, url: str, call: str, kind: str) -> None:
        key = (url, call, kind)
        if key in self._reported or len(self._reported) > 4096:
            return
        self._reported.add(key)
        verb = "read Serve applications from" if call == SERVE_GET else "apply a Serve config to"
        log.warning("cannot %s the dashboard %s: %s", verb, shown(url), kind)


class _Failure(Exception):
    def __init__(self, outcome: str, kind: str) -> None:
        super().__init__(kind)
        self.outcome = outcome
        self.kind = kind
