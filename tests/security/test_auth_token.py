"""The Ray auth token through the real HTTP shell: random per cluster, never rotated by a hook
restart, and never in a log line, an Event, a metric or an error."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from app.core.desired import Desired
from tests.features.common import settle
from tests.loop import POD, SECRET, Loop, cluster_spec, group, raycluster
from tests.observability.harness import KubeServer, app_with, captured_logs, events_settings

T = TypeVar("T")


def auth_cluster(name: str = "demo") -> dict[str, Any]:
    spec = cluster_spec(group())
    spec["authOptions"] = {"mode": "token"}
    return raycluster(spec, name=name)


def the_token(loop: Loop) -> str:
    data = loop.children[(SECRET, loop.parent["metadata"]["name"])]["data"]["auth_token"]
    return base64.b64decode(data).decode()


class Served:
    """The app with its lifespan (so Events are posted), on an event loop in its own thread,
    called synchronously as Loop.call needs."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        self.lifespan = self.app.router.lifespan_context(self.app)
        self._run(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://metaray")
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.client.aclose())
        self._run(self.lifespan.__aexit__(None, None, None))  # drains the Events
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def post(self, path: str, content: bytes) -> httpx.Response:
        return self._run(self.client.post(path, content=content))

    def get(self, path: str) -> httpx.Response:
        return self._run(self.client.get(path))


def drive(loop: Loop, client: Served) -> None:
    def call(body: bytes) -> tuple[int, bytes]:
        response = client.post("/sync", content=body)
        return response.status_code, response.content

    loop.call = call


def test_each_cluster_gets_its_own_random_32_byte_token(tmp_path: Path) -> None:
    tokens = []
    with Served(app_with(events_settings(tmp_path, events="off"))) as client:
        for name in ("one", "two"):
            loop = Loop(auth_cluster(name))
            drive(loop, client)
            loop.step()
            tokens.append(the_token(loop))
    assert tokens[0] != tokens[1]
    assert all(len(base64.b64decode(token)) == 32 for token in tokens)


def test_token_survives_hook_restarts_and_never_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = KubeServer()
    settings = events_settings(tmp_path)
    loop = Loop(auth_cluster())
    seen: list[str] = []
    with captured_logs(logging.DEBUG) as captured:
        with Served(app_with(settings, server)) as client:
            drive(loop, client)
            settle(loop)
            token = the_token(loop)
            pods = {name: copy.deepcopy(loop.children[(POD, name)]) for name in loop.pods()}
        # The hook restarts (a new process keeps nothing): same Secret, same pods.
        with Served(app_with(settings, server)) as client:
            drive(loop, client)
            [head] = loop.heads()
            loop.finish(head)
            loop.converge()
            loop.run_pods()
            settle(loop)
            assert the_token(loop) == token
            kept = {
                name: loop.children[(POD, name)] for name in pods if (POD, name) in loop.children
            }
            assert all(kept[n]["spec"] == pods[n]["spec"] for n in kept)
            # An invalid spec: its reason, Event and log line name the problem, not the token.
            loop.edit(lambda spec: spec.update(rayVersion="2.40.0"))
            step = loop.step()
            assert step.desired.status["state"] == "failed"
            seen.append(client.get("/metrics").text)

            def leaky(*_: Any, **__: Any) -> Desired:
                raise ValueError(f"the core quoted the token {token}")

            monkeypatch.setattr("app.shell.http.app.sync", leaky)
            response = client.post("/sync", content=json.dumps(loop.request()).encode())
            assert response.status_code == 500
            seen.append(response.text)
    assert server.requests, "Events were posted"
    seen += captured.lines
    seen += [repr(copy.copy(record.__dict__)) for record in captured.records]
    seen += [request.content.decode() for request in server.requests]
    seen += [json.dumps(step.desired.status) for step in loop.history]
    encoded = base64.b64encode(token.encode()).decode()
    assert not [text for text in seen if token in text or encoded in text]
    assert any("***" in line for line in captured.lines), "the quoted token was masked"
    for name in loop.pods(live=False):
        assert token not in json.dumps(loop.children[(POD, name)])
