"""Every route of the real app, present and future, passes the guard: the token, the body-size
bound and the concurrency bound, over HTTP. The routes are enumerated from the app itself, so a
hook added later without the guard fails here, not in a review."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.shell.http.app import create_app
from app.shell.http.guard import OPEN_PATHS
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.raycronjob.loop import cron_object, request
from tests.rayjob.loop import JobLoop, rayjob_object
from tests.rayservice.loop import ServiceLoop, rayservice_object

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
# A well-formed body per hook, so that a 401/413/429 can only come from the guard: each of these
# is answered 200 when it passes (checked below).
RAYCLUSTER = json.dumps(capture("sync-c-all-running")).encode()
RAYJOB = json.dumps(JobLoop(rayjob_object()).request()).encode()
RAYSERVICE = json.dumps(ServiceLoop(rayservice_object()).request()).encode()
BODIES = {
    "/sync": RAYCLUSTER,
    "/finalize": RAYCLUSTER,
    "/rayjob/sync": RAYJOB,
    "/rayjob/finalize": RAYJOB,
    "/rayjob/customize": json.dumps({"parent": rayjob_object()}).encode(),
    "/raycronjob/sync": json.dumps(request(cron_object(), {})).encode(),
    "/rayservice/sync": RAYSERVICE,
    "/rayservice/customize": json.dumps({"parent": rayservice_object()}).encode(),
}


def app(**settings: Any) -> FastAPI:
    return create_app(Settings(events="off", dashboard=False, auth_token=TOKEN, **settings))


def routes(application: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app answers, the hooks included."""
    return sorted(
        (method, route.path)
        for route in application.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    )


def guarded(application: FastAPI) -> list[tuple[str, str]]:
    return [(m, p) for m, p in routes(application) if p not in OPEN_PATHS]


async def call(application: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
        return await client.request(method, path, **kwargs)


def run(application: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return asyncio.run(call(application, method, path, **kwargs))


def test_every_post_route_is_a_known_hook_with_a_body_here() -> None:
    """A new POST route must be added to BODIES, and so to every check below."""
    posts = sorted(p for m, p in routes(app()) if m == "POST")
    assert posts == sorted(BODIES)
    assert not {p for m, p in routes(app()) if m == "POST"} & OPEN_PATHS


def test_only_probes_and_metrics_are_open_and_they_only_read() -> None:
    open_routes = [(m, p) for m, p in routes(app()) if p in OPEN_PATHS]
    assert sorted(open_routes) == [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/readyz")]
    for method, path in open_routes:
        assert run(app(), method, path).status_code == 200


@pytest.mark.parametrize("path", sorted(BODIES))
def test_each_hook_answers_with_the_token(path: str) -> None:
    response = run(app(), "POST", path, content=BODIES[path], headers=AUTH)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_every_route_but_the_open_ones_refuses_a_request_without_the_token(
    header: str | None,
) -> None:
    application = app()
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    refused = {
        (method, path): run(
            application, method, path, content=BODIES.get(path, b"{}"), headers=headers
        ).status_code
        for method, path in guarded(application)
    }
    assert refused, "the app has hooks"
    assert set(refused.values()) == {401}, refused


def test_an_unknown_path_is_refused_before_routing() -> None:
    assert run(app(), "POST", "/rayjob/sync/", content=b"{}").status_code == 401


@pytest.mark.parametrize("path", sorted(BODIES))
def test_every_hook_refuses_a_body_over_the_limit(path: str) -> None:
    application = app(max_body_bytes=len(BODIES[path]) - 1)
    response = run(application, "POST", path, content=BODIES[path], headers=AUTH)
    assert response.status_code == 413, response.text


def test_every_hook_counts_against_the_concurrency_bound() -> None:
    """One request holds the only slot (its body is still arriving); every hook then gets 429,
    and once it ends every hook is answered again."""

    async def scenario() -> tuple[dict[str, int], int, dict[str, int]]:
        application = app(max_in_flight=1)
        arriving = asyncio.Event()
        release = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            arriving.set()
            await release.wait()
            yield BODIES["/sync"]

        holder = asyncio.create_task(
            call(application, "POST", "/sync", content=slow_body(), headers=AUTH)
        )
        await arriving.wait()
        refused = {
            path: (await call(application, "POST", path, content=body, headers=AUTH)).status_code
            for path, body in BODIES.items()
        }
        release.set()
        held = (await holder).status_code
        after = {
            path: (await call(application, "POST", path, content=body, headers=AUTH)).status_code
            for path, body in BODIES.items()
        }
        return refused, held, after

    refused, held, after = asyncio.run(scenario())
    assert set(refused.values()) == {429}, refused
    assert held == 200
    assert set(after.values()) == {200}, after
