"""What Ray Serve says, and one bounded request to it: the Serve poller's (``serve.py``) wire.

``parse_applications`` reduces Ray's ``ServeInstanceDetails`` to what the core reads; ``Fetch``
sends one request at most ``concurrency`` at a time, bounded by ``timeout`` and ``MAX_BODY``,
and counts its outcome. No state of the poller here.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from app.rayservice.proxy import HEALTHZ as HEALTHZ  # the proxy route the poller reads
from app.rayservice.serve import Application, Deployment, ServeView
from app.shell.ray.wire import ERROR, MAX_BODY, TIMEOUT, Counters

if TYPE_CHECKING:
    import httpx  # at run time only where a request is made (idle memory: docs/operations.md)

APPLICATIONS = "/api/serve/applications/"
SERVE_GET, SERVE_PUT, PROXY_GET = "serve_get", "serve_put", "proxy_get"
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Quiet:
    def request(self, call: str, outcome: str, seconds: float) -> None:
        pass

    def watched(self, count: int) -> None:
        pass

    def refused(self) -> None:
        pass


class Failure(Exception):
    def __init__(self, outcome: str, kind: str) -> None:
        super().__init__(kind)
        self.outcome = outcome
        self.kind = kind


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


class Fetch:
    """One HTTP client for every dashboard and proxy the poller calls, and a bound on how many
    requests are in flight."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        concurrency: int,
        metrics: Counters,
    ) -> None:
        self.transport, self.timeout, self.concurrency = transport, timeout, concurrency
        self.metrics = metrics
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    async def __call__(
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
                                raise Failure(ERROR, "the answer is too large")
                            chunks.append(chunk)
                    finally:
                        await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            self.metrics.request(call, TIMEOUT, time.perf_counter() - started)
            raise Failure(TIMEOUT, f"timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            self.metrics.request(call, ERROR, time.perf_counter() - started)
            raise Failure(ERROR, type(error).__name__) from None
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

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
