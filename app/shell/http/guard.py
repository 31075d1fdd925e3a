"""What a hook request must pass before metaray reads it: the bearer token Metacontroller
(>= 4.16) sends when configured, a bound on concurrent syncs, and a bound on the body size.

Every path is guarded except the few read-only ones that the kubelet and Prometheus call
(``OPEN_PATHS``): a hook added later is guarded without anyone remembering to list it, and a
request for a path that does not exist is refused before it is routed.

Pure ASGI, so a rejected request costs no body read: a too large body is refused from its
Content-Length, or as soon as the bytes received pass the limit.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The only paths reachable without the token and outside the bounds: probes and metrics, which
# read nothing from the request and decide nothing.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body_bytes: int,
        max_in_flight: int,
        retry_after_seconds: int = 1,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.retry_after = str(retry_after_seconds)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            await _reply(
                send, 401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")]
            )
            return
        if self.in_flight >= self.max_in_flight:
            # Metacontroller requeues the parent after Retry-After, without backoff or event.
            headers = [(b"retry-after", self.retry_after.encode())]
            await _reply(send, 429, f"more than {self.max_in_flight} syncs in flight", headers)
            return
        self.in_flight += 1
        try:
            await self._bounded(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, credential = given.partition(b" ")
        # Constant-time, so the comparison's duration tells nothing about the token.
        return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _reply(send, 413, f"request body larger than {self.max_body_bytes} bytes")


async def _reply(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps({"error": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
