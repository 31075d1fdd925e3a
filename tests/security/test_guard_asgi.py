"""The guard as the ASGI server calls it, message by message: what reaches the app, what a
refused client receives, and that a refused request costs no body read. Fast (no FastAPI app),
so it is also the guard's mutation-testing selection (docs/testing-mutation.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.shell.http.guard import Guard

Message = dict[str, Any]
TOKEN = "s3cret-token"


class Server:
    """The ASGI server's side of one request: hands out ``messages`` in order, fails the test
    if the guard reads past them (a loop that never ends is a failure, not a hang), and records
    what is sent back."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.reads = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.reads += 1
        if not self.messages:
            raise AssertionError("read past the end of the request")
        return self.messages.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    @property
    def error(self) -> Any:
        return json.loads(self.sent[1]["body"])["error"]


class App:
    """The hook app behind the guard: reads its body (``reads`` times) and answers 200; a
    ``hold`` keeps it inside until released, to fill the concurrency bound."""

    def __init__(self, reads: int = 1, hold: bool = False) -> None:
        self.reads = reads
        self.received: list[Message] = []
        self.calls = 0
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        for _ in range(self.reads):
            self.received.append(await receive())
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def request(body: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


def scope(path: str = "/sync", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "path": path, "headers": headers or []}


def guard(app: Any, token: str | None = None, limit: int = 10, in_flight: int = 4) -> Guard:
    return Guard(app, token=token, max_body_bytes=limit, max_in_flight=in_flight)


def serve(g: Guard, server: Server, s: Any | None = None) -> None:
    asyncio.run(g(s if s is not None else scope(), server.receive, server.send))


# -- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (None, False),
        (b"", False),
        (b"Bearer", False),
        (b"Bearer ", False),
        (b"Bearer wrong", False),
        (b"Basic " + TOKEN.encode(), False),
        (b"Bearer " + TOKEN.encode() + b" extra", False),
        (b"Bearer " + TOKEN.encode() + b"x", False),
        (b"Bearer " + TOKEN.encode(), True),
        (b"BEARER " + TOKEN.encode(), True),  # the scheme is case-insensitive (RFC 7235)
        (b"Bearer  " + TOKEN.encode(), True),  # 1*SP between scheme and credentials
        (b"Bearer " + TOKEN.encode() + b" ", True),
    ],
)
def test_only_the_bearer_token_reaches_the_app(header: bytes | None, accepted: bool) -> None:
    app, server = App(), Server(request(b"{}"))
    headers = [] if header is None else [(b"authorization", header)]
    serve(guard(app, TOKEN), server, scope(headers=headers))
    assert app.calls == int(accepted)
    if not accepted:
        assert server.reads == 0, "a refused request's body is not read"
        assert server.status == 401
        assert server.error == "missing or wrong bearer token"
        body = server.sent[1]["body"]
        assert server.headers == [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_pass_untouched(path: str) -> None:
    app, server = App(), Server(request(b"x" * 50))
    serve(guard(app, TOKEN, limit=10), server, scope(path))
    assert app.received == [request(b"x" * 50)]  # the server's own receive, no bound


def test_the_lifespan_passes_through_with_the_servers_receive() -> None:
    started: list[Message] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.append(await receive())

    server = Server({"type": "lifespan.startup"})
    serve(guard(app, TOKEN), server, {"type": "lifespan"})
    assert started == [{"type": "lifespan.startup"}]


# -- the body bound -------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "refused"), [(9, False), (10, False), (11, True)])
def test_a_declared_length_over_the_limit_is_refused_unread(length: int, refused: bool) -> None:
    app = App()
    server = Server(request(b"x" * min(length, 10)))
    serve(guard(app, limit=10), server, scope(headers=[(b"content-length", str(length).encode())]))
    if refused:
        assert (server.status, server.reads, app.calls) == (413, 0, 0)
        assert server.error == "request body larger than 10 bytes"
    else:
        assert app.calls == 1


@pytest.mark.parametrize(
    ("chunks", "refused"),
    [
        ([b"0123456789"], False),  # exactly the limit
        ([b"01234", b"56789"], False),
        ([b"01234", b"", b"56789"], False),
        ([b"0123456789", b"x"], True),
        ([b"01234", b"567890"], True),
    ],
)
def test_a_streamed_body_is_whole_up_to_the_limit_and_refused_past_it(
    chunks: list[bytes], refused: bool
) -> None:
    app = App()
    messages = [request(c, more=i < len(chunks) - 1) for i, c in enumerate(chunks)]
    server = Server(*messages)
    serve(guard(app, limit=10), server)
    if refused:
        assert (server.status, app.calls) == (413, 0)
        assert server.messages == [], "refused at the chunk that passed the limit"
    else:
        assert app.received == [request(b"".join(chunks))]
        assert server.reads == len(chunks)


def test_the_body_and_more_body_keys_are_optional() -> None:
    """ASGI: ``body`` defaults to b"" and ``more_body`` to False."""
    app = App()
    server = Server({"type": "http.request", "more_body": True}, {"type": "http.request"})
    serve(guard(app), server)
    assert app.received == [request(b"")]
    assert server.reads == 2


def test_a_client_that_disconnects_mid_body_reaches_nothing() -> None:
    app = App()
    server = Server(request(b"0123", more=True), {"type": "http.disconnect"})
    serve(guard(app), server)
    assert (app.calls, server.sent) == (0, [])


def test_after_the_body_the_app_reads_the_servers_own_messages() -> None:
    """Starlette reads again to notice a disconnect: that must come from the server, not be
    the body replayed."""
    app = App(reads=2)
    server = Server(request(b"{}"), {"type": "http.disconnect"})
    serve(guard(app), server)
    assert app.received == [request(b"{}"), {"type": "http.disconnect"}]


# -- the concurrency bound ------------------------------------------------------------------


def test_requests_over_the_bound_get_429_and_slots_come_back() -> None:
    async def scenario() -> tuple[list[Server], Guard]:
        app = App(hold=True)
        g = guard(app, in_flight=2)
        held = [Server(request(b"{}")) for _ in range(2)]
        tasks = [asyncio.create_task(g(scope(), s.receive, s.send)) for s in held]
        for _ in range(1000):  # bounded: a guard that refuses one of them fails, not hangs
            if app.calls == 2:
                break
            await asyncio.sleep(0)
        assert app.calls == 2, "both requests inside the app"
        refused = Server(request(b"{}"))
        third = asyncio.create_task(g(scope(), refused.receive, refused.send))
        for _ in range(10):  # a refusal needs no release; a request let in would wait here
            await asyncio.sleep(0)
        app.release.set()
        await asyncio.gather(*tasks, third)
        after = Server(request(b"{}"))
        await g(scope(), after.receive, after.send)
        return [*held, refused, after], g

    (first, second, refused, after), g = asyncio.run(scenario())
    assert [first.status, second.status, refused.status, after.status] == [200, 200, 429, 200]
    assert refused.error == "more than 2 syncs in flight"
    assert refused.reads == 0
    assert refused.headers[2:] == [(b"retry-after", b"1")]
    assert g.in_flight == 0
