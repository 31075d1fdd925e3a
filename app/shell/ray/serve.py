"""Ray Serve through the dashboards of RayService clusters: views in, config PUTs out.

The hook calls ``views(targets)`` (dashboards, from head Services metaray's RayCluster
controller owns) and ``proxies(targets)`` (head pods' own IP and serve port): synchronous, O(1)
per target, no I/O. A background task reads each watched dashboard's
``/api/serve/applications/?api_type=declarative`` and each head proxy's ``/-/healthz`` every
``interval`` s, bounded in number and time: a dead dashboard ages its view (``failing_since``); a
proxy that does not answer 200 reads as unhealthy. ``carry_out`` PUTs an ``ApplyServeConfig``
after the answer on this poller's loop: never twice in flight, not again until the cluster was
read after it, a failure logged once, never raised. "Applied" is always read back from Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.rayservice.proxy import ProxyTarget, ProxyView
from app.rayservice.serve import ApplyServeConfig, ServeTarget, ServeView
from app.shell.ray.serve_wire import (
    APPLICATIONS,
    FORMAT,
    HEALTHZ,
    PROXY_GET,
    SERVE_GET,
    SERVE_PUT,
    Failure,
    Fetch,
    Quiet,
    parse_applications,
)
from app.shell.ray.wire import ERROR, OK, Counters, base_url, shown

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

log = logging.getLogger("metaray.serve")

Key = tuple[str, str]  # (cluster, url)


@dataclass(slots=True)
class _Watch:
    seen: float
    due: float
    token: str = field(default="", repr=False)  # the cluster's Ray auth token, if any
    view: ServeView | None = None
    polling: bool = False
    reads: int = 0  # answers read; a PUT is not repeated until this moved past it


@dataclass(slots=True)
class _ProxyWatch:
    seen: float
    due: float
    view: ProxyView | None = None
    polling: bool = False


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
        self.metrics: Counters = metrics if metrics is not None else Quiet()
        self._lock = threading.Lock()  # watch() may run in the hook's worker thread
        self._watches: dict[Key, _Watch] = {}
        self._proxies: dict[Key, _ProxyWatch] = {}  # (pod uid, url)
        self._sent: dict[tuple[str, str, str], int] = {}  # (cluster, url, config) -> reads
        self._puts: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._fetch = Fetch(transport, timeout, concurrency, self.metrics)
        self._task: asyncio.Task[None] | None = None
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

    def proxies(self, targets: Iterable[ProxyTarget]) -> dict[str, ProxyView]:
        """Keep reading each head proxy; its latest reading by pod uid."""
        now = self.timer()
        out = {}
        with self._lock:
            for target in targets:
                key = (target.pod_uid, target.url)
                found = self._proxies.get(key)
                if found is None:
                    if len(self._proxies) >= self.max_watches:
                        self.metrics.refused()
                        continue
                    found = self._proxies[key] = _ProxyWatch(seen=now, due=now)
                    self._poke()
                found.seen = now
                if found.view is not None:
                    out[target.pod_uid] = found.view
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
        await self._fetch.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # a bug: never end the loop
                log.exception("the Serve poll loop failed; carrying on")
            await self._rest()

    async def _rest(self) -> None:
        """A quarter interval while anything is watched; with nothing watched, until a watch
        adds a target: no timer at rest, an idle hook spends no CPU here."""
        wake = self._wake
        if wake is None:
            await asyncio.sleep(self.interval / 4)
            return
        wake.clear()  # before looking: a watch added after the look sets it again
        with self._lock:
            idle = not self._watches and not self._proxies
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
        heads = []
        with self._lock:
            for key, watch in list(self._watches.items()):
                if now - watch.seen >= self.expiry:
                    del self._watches[key]
                elif watch.due <= now and not watch.polling:
                    watch.polling = True
                    due.append((key, watch))
            for key, proxy in list(self._proxies.items()):
                if now - proxy.seen >= self.expiry:
                    del self._proxies[key]
                elif proxy.due <= now and not proxy.polling:
                    proxy.polling = True
                    heads.append((key[1], proxy))
        if due or heads:
            await asyncio.gather(
                *(self._poll(key, watch) for key, watch in due),
                *(self._poll_proxy(url, proxy) for url, proxy in heads),
            )

    async def _poll_proxy(self, url: str, proxy: _ProxyWatch) -> None:
        """200 is healthy; anything else, a timeout or no connection is not (as KubeRay)."""
        try:
            status, _ = await self._fetch(PROXY_GET, "GET", base_url(url) + HEALTHZ)
            healthy = status == 200
            if healthy:
                self.metrics.request(PROXY_GET, OK, 0.0)
        except Failure:
            healthy = False
        finally:
            proxy.polling = False
            proxy.due = self.timer() + self.interval
        read_at = self.clock().astimezone(UTC).isoformat(timespec="microseconds")
        proxy.view = ProxyView(url, healthy, read_at)

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
            status, body = await self._fetch(SERVE_GET, "GET", target, token=token)
            view = parse_applications(url, body) if status == 200 else None
            if view is None:
                raise Failure(ERROR, f"HTTP {status}" if status != 200 else "not Serve's answer")
            self.metrics.request(SERVE_GET, OK, 0.0)
            self._reported = {r for r in self._reported if r[:2] != (url, SERVE_GET)}
            return view
        except Failure as failure:
            self._failed(url, SERVE_GET, failure.kind)
            since = previous.failing_since if previous is not None else None
            return ServeView(
                url,
                previous.applications if previous is not None else None,
                failing_since=since or self.clock().astimezone(UTC).strftime(FORMAT),
                error=failure.kind,
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
            key = (intent.cluster, intent.url, intent.config)
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
            status, _ = await self._fetch(
                SERVE_PUT, "PUT", base_url(intent.url) + APPLICATIONS, intent.body(), token=token
            )
            if not 200 <= status < 300:
                raise Failure(ERROR, f"HTTP {status}")
        except Failure as failure:
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

    def _failed(self, url: str, call: str, kind: str) -> None:
        key = (url, call, kind)
        if key in self._reported or len(self._reported) > 4096:
            return
        self._reported.add(key)
        verb = "read Serve applications from" if call == SERVE_GET else "apply a Serve config to"
        log.warning("cannot %s the dashboard %s: %s", verb, shown(url), kind)
