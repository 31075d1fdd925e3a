"""The RayService hooks over HTTP with the Serve poller on and a pretend Ray dashboard behind
httpx: configs reach Ray through PUTs the poller makes after the answer, Ray's answers reach the
status, and a restarted metaray, a failing dashboard or a lying one change nothing they should
not."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pytest

from app.rayservice.serve import ApplyServeConfig, ServeView
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.rayservice.loop import ServeWorld, ServiceLoop, rayservice_object

HEADERS = {"Content-Type": "application/json"}
T = TypeVar("T")


class Runner:
    """One event loop in a thread for the app, its poller and the pretend dashboard."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)


def dashboard(world: ServeWorld, clock: list[datetime]) -> httpx.MockTransport:
    """Ray's Serve REST API at ``<cluster>-head-svc.default.svc.cluster.local:8265``."""

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        cluster = host.split(".")[0].removesuffix("-head-svc")
        url = f"{host}:{request.url.port}"
        if cluster in world.failing:
            raise httpx.ConnectTimeout("timed out", request=request)
        assert request.url.path == "/api/serve/applications/"
        if request.method == "PUT":
            config = json.dumps(json.loads(request.content), sort_keys=True, separators=(",", ":"))
            world.put(ApplyServeConfig(cluster, url, config))
            return httpx.Response(200)
        view = world.view(cluster, url, clock[0])
        return httpx.Response(200, json=_ray_answer(view))

    return httpx.MockTransport(handle)


def _ray_answer(view: ServeView) -> dict[str, Any]:
    apps = {
        name: {
            "status": app.status,
            "message": app.message,
            "deployed_app_config": app.deployed,
            "deployments": {
                d: {"status": s.status, "message": s.message} for d, s in app.deployments
            },
        }
        for name, app in view.applications or ()
    }
    answer: dict[str, Any] = {"applications": apps, "proxy_location": "EveryNode"}
    if view.target_capacity is not None:
        answer["target_capacity"] = view.target_capacity
    return answer


class HttpLoop(ServiceLoop):
    runner: Runner
    app: Any
    clock: list[datetime]

    def decide(self, request: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        self.clock[0] = self.now

        async def call() -> dict[str, Any]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as c:
                response = await c.post(
                    "/rayservice/sync", content=json.dumps(request).encode(), headers=HEADERS
                )
            assert response.status_code == 200, response.text
            serve = self.app.state.serve
            serve.interval = 0.0
            await serve.intents_done()  # the PUTs the answer started
            await serve.poll_once()  # Ray read between syncs
            return dict(response.json())

        return None, self.runner.run(call())


def http_loop(world: ServeWorld | None = None, **spec: Any) -> HttpLoop:
    world = world or ServeWorld()
    loop = HttpLoop(rayservice_object(**spec), world=world)
    loop.clock = [loop.now]
    loop.runner = Runner()
    loop.app = fresh_app(world, loop.clock)
    return loop


def fresh_app(world: ServeWorld, clock: list[datetime], gateway_api: bool = False) -> Any:
    settings = Settings(events="off", dashboard_timeout_seconds=0.5, gateway_api=gateway_api)
    return create_app(settings, dashboard_transport=dashboard(world, clock), clock=lambda: clock[0])


def test_first_deploy_over_http_applies_the_config_once_and_serves() -> None:
    loop = http_loop()
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    active = loop.active
    assert active is not None
    assert loop.world.serves[active].puts == 1
    apps = loop.status["activeServiceStatus"]["applicationStatuses"]
    assert {a: v["status"] for a, v in apps.items()} == {"fruit": "RUNNING", "math": "RUNNING"}
    loop.run(4)
    assert loop.world.serves[active].puts == 1  # Ray's deployed_app_config says it is applied


def test_blue_green_over_http_and_a_restart_mid_upgrade_reapplies_nothing() -> None:
    loop = http_loop()
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    old = loop.active
    spec = copy.deepcopy(loop.parent["spec"]["rayClusterConfig"])
    spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:2.53.0"
    loop.edit(rayClusterConfig=spec, rayClusterDeletionDelaySeconds=5)
    loop.world.deploy_steps = 4
    loop.until(
        lambda s: (
            bool(s.pending)
            and s.world.serves.get(s.pending or "") is not None
            and s.world.serves[s.pending or ""].puts == 1
        )
    )
    new = loop.pending
    puts = list(loop.world.puts)
    loop.app = fresh_app(loop.world, loop.clock)  # metaray restarts: no memory
    loop.run(1)
    assert loop.world.puts == puts
    loop.until(lambda s: s.active == new)
    assert loop.selector() == new
    loop.until(lambda s: old not in s.clusters(), max_steps=20)
    assert loop.world.serves[new or ""].puts == 1


def test_a_dashboard_that_fails_or_lies_never_gets_traffic() -> None:
    loop = http_loop()
    loop.world.failing.add("never")  # nothing yet
    loop.step()
    name = loop.pending or ""
    loop.world.failing.add(name)
    loop.run(8)
    assert loop.active is None and loop.selector() is None
    assert loop.status["numServeEndpoints"] == 0
    loop.world.failing.discard(name)
    loop.world.liars.add(name)
    loop.run(6)
    assert loop.active is None and loop.selector() is None
    loop.world.liars.discard(name)
    loop.until(lambda s: s.active == name)


def test_the_rayservice_hooks_pass_the_guard() -> None:
    app = create_app(Settings(events="off", auth_token="s3cret"))
    runner = Runner()

    async def post(path: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as c:
            body = json.dumps({"parent": rayservice_object()}).encode()
            return (await c.post(path, content=body, headers=HEADERS)).status_code

    for path in ("/rayservice/sync", "/rayservice/customize"):
        assert runner.run(post(path)) == 401


@pytest.mark.parametrize("path", ["/rayservice/sync", "/rayservice/customize"])
def test_a_body_that_is_no_request_is_a_400(path: str) -> None:
    app = create_app(Settings(events="off"))

    async def post() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as c:
            return (await c.post(path, content=b"[1]", headers=HEADERS)).status_code

    assert Runner().run(post()) == 400
