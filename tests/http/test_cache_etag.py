"""Identical requests get identical answers from the cache; ETag lets Metacontroller reuse its."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from typing import Any

import httpx
import pytest

import app.raycluster.sync
import app.shell.http.answers
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.fixtures import HERE, capture
from tests.http.client import HookClient

BODY = json.dumps(capture("sync-e1-scale-up")).encode()
HEADERS = {"Content-Type": "application/json"}


def metric(hook: HookClient, name: str) -> float:
    for line in hook.get("/metrics").text.splitlines():
        named = line.startswith(name + " ") or line.startswith(name + "{")
        if named and ('hook="sync"' in line or "{" not in line):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def test_a_repeated_request_is_answered_from_the_cache_with_the_same_bytes() -> None:
    hook = HookClient(create_app(Settings(events="off")))
    first = hook.post("/sync", content=BODY, headers=HEADERS)
    second = hook.post("/sync", content=BODY, headers=HEADERS)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert metric(hook, "metaray_answer_cache_hits_total") == 1
    assert metric(hook, "metaray_sync_compute_seconds_count") == 1
    assert metric(hook, "metaray_sync_pods_count") == 2, "a cached answer is still reported"


def test_without_the_cache_every_request_is_computed() -> None:
    hook = HookClient(create_app(Settings(events="off", cache_bytes=0)))
    for _ in range(2):
        hook.post("/sync", content=BODY, headers=HEADERS)
    assert metric(hook, "metaray_sync_compute_seconds_count") == 2
    assert metric(hook, "metaray_answer_cache_hits_total") == 0


def test_a_different_request_is_not_served_from_the_cache() -> None:
    hook = HookClient(create_app(Settings(events="off")))
    other = capture("sync-e1-scale-up")
    other["parent"]["spec"]["workerGroupSpecs"][0]["replicas"] = 4
    first = hook.post("/sync", content=BODY, headers=HEADERS)
    second = hook.post("/sync", content=json.dumps(other).encode(), headers=HEADERS)
    assert first.content != second.content


@pytest.mark.parametrize("cache_bytes", [0, 64 * 2**20])
def test_if_none_match_with_the_current_etag_is_304_without_a_body(cache_bytes: int) -> None:
    hook = HookClient(create_app(Settings(events="off", cache_bytes=cache_bytes)))
    first = hook.post("/sync", content=BODY, headers=HEADERS)
    etag = first.headers["etag"]
    again = hook.post("/sync", content=BODY, headers={**HEADERS, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    stale = hook.post("/sync", content=BODY, headers={**HEADERS, "If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == first.content


def test_an_answer_that_takes_too_long_is_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The computation cannot end before the test lets it: an answer that waited for it
    # could not arrive at all (the request would hang until the event's own 10 s bound).
    release = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        raise AssertionError("the answer of a timed-out request must not be used")

    monkeypatch.setattr(app.raycluster.sync, "sync", slow)
    large = gzip.decompress((HERE / "sync-large-200-running.json.gz").read_bytes())
    assert len(large) >= app.shell.http.answers.OFFLOAD_BYTES
    service = create_app(Settings(events="off", compute_timeout_seconds=0.2))

    async def answered() -> tuple[httpx.Response, bool]:
        transport = httpx.ASGITransport(app=service)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
            response = await client.post("/sync", content=large, headers=HEADERS)
            still_computing = not release.is_set()
            release.set()
            return response, still_computing

    response, still_computing = asyncio.run(answered())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert still_computing, "the answer must not wait for the abandoned computation"
