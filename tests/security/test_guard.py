"""Bearer token, concurrency bound and body-size bound on the hook routes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.shell.http.app import create_app
from app.shell.http.guard import Guard
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.http.client import HookClient

BODY = json.dumps(capture("sync-c-all-running")).encode()


def client(**settings: Any) -> HookClient:
    return HookClient(create_app(Settings(events="off", **settings)))


def post(hook: HookClient, headers: dict[str, str] | None = None, body: bytes = BODY) -> Any:
    return hook.post(
        "/sync", content=body, headers={"Content-Type": "application/json", **(headers or {})}
    )


def test_without_a_configured_token_no_header_is_needed() -> None:
    assert post(client()).status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Basic c2VjcmV0", "bearer", "Bearer s3cret-token extra"],
)
def test_a_missing_or_wrong_token_is_401_and_nothing_is_decided(header: str | None) -> None:
    hook = client(auth_token="s3cret-token")
    headers = {} if header is None else {"Authorization": header}
    response = post(hook, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "s3cret-token" not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_the_right_token_is_accepted(scheme: str) -> None:
    response = post(client(auth_token="s3cret-token"), {"Authorization": f"{scheme} s3cret-token"})
    assert response.status_code == 200


def test_probes_and_metrics_need_no_token() -> None:
    hook = client(auth_token="s3cret-token")
    assert hook.get("/healthz").status_code == 200
    assert hook.get("/metrics").status_code == 200


def test_a_body_over_the_limit_is_413_from_its_content_length() -> None:
    response = post(client(max_body_bytes=1000))
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]


class Recorder:
    """A stand-in app that records whether it ran, and can be held mid-request."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        message = await receive()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})


async def call(guard: Guard, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> Any:
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/sync", "headers": headers}
    await guard(scope, receive, send)
    return sent


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    app = Recorder()
    guard = Guard(app, token=None, max_body_bytes=10, max_in_flight=4)
    sent = asyncio.run(call(guard, [b"123456", b"789012", b"never read"], []))
    assert sent[0]["status"] == 413
    assert app.calls == 0


def test_more_syncs_in_flight_than_allowed_get_429_with_retry_after() -> None:
    async def scenario() -> tuple[list[Any], list[Any], int]:
        app = Recorder()
        guard = Guard(app, token=None, max_body_bytes=100, max_in_flight=1)
        first = asyncio.create_task(call(guard, [b"{}"], []))
        for _ in range(1000):  # until the first request is held inside the app (bounded)
            if app.calls == 1:
                break
            await asyncio.sleep(0)
        assert app.calls == 1
        # A second request let in would wait for the release below: bounded, it fails instead.
        second = await asyncio.wait_for(call(guard, [b"{}"], []), 10)
        app.release.set()
        return await first, second, guard.in_flight

    first, second, in_flight = asyncio.run(scenario())
    assert first[0]["status"] == 200
    assert second[0]["status"] == 429
    assert (b"retry-after", b"1") in second[0]["headers"]
    assert in_flight == 0, "the slot is given back when a request ends"
