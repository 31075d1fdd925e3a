"""RayServices on token-auth clusters (``authOptions: {mode: token}``): the token Secret of each
cluster reaches the hook as a related object (the customize hook asks for it), the core hands
it to the Serve poller with the view request, and the poller sends it as Ray's token auth reads
it (``Authorization: Bearer``). Nothing of the token reaches the answer, the status, the logs
or the metrics."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import orjson
import pytest

from app.hooks.request import decode
from app.rayservice import sync as rayservice
from app.rayservice.serve import ServeTarget
from app.rayservice.spec import parse_rayservice
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.rayservice.loop import SECRET_KIND, ServeWorld, rayservice_object, token_of
from tests.rayservice.test_http import HttpLoop, Runner, _ray_answer

HEADERS = {"Content-Type": "application/json"}


def token_spec(secret_name: str | None = None) -> dict[str, Any]:
    spec = rayservice_object()["spec"]["rayClusterConfig"]
    spec["authOptions"] = {"mode": "token", **({"secretName": secret_name} if secret_name else {})}
    return spec


def guarded_dashboard(world: ServeWorld, loop: HttpLoop, seen: list[str]) -> httpx.MockTransport:
    """Ray's dashboard with token auth on: 401 without the cluster's own token."""

    def handle(request: httpx.Request) -> httpx.Response:
        cluster = request.url.host.split(".")[0].removesuffix("-head-svc")
        url = f"{request.url.host}:{request.url.port}"
        sent = request.headers.get("authorization", "")
        seen.append(sent)
        if sent != f"Bearer {token_of(cluster)}":
            return httpx.Response(401, text="Unauthorized: Missing authentication token")
        if request.method == "PUT":
            from app.rayservice.serve import ApplyServeConfig

            body = json.loads(request.content)
            world.put(ApplyServeConfig(cluster, url, json.dumps(body, sort_keys=True)))
            return httpx.Response(200)
        return httpx.Response(200, json=_ray_answer(world.view(cluster, url, loop.clock[0])))

    return httpx.MockTransport(handle)


def token_loop(seen: list[str], **spec: Any) -> HttpLoop:
    world = ServeWorld()
    loop = HttpLoop(rayservice_object(rayClusterConfig=token_spec(), **spec), world=world)
    loop.token_secrets = True
    loop.clock = [loop.now]
    loop.runner = Runner()
    settings = Settings(events="off", dashboard_timeout_seconds=0.5)
    loop.app = create_app(
        settings,
        dashboard_transport=guarded_dashboard(world, loop, seen),
        clock=lambda: loop.clock[0],
    )
    return loop


def test_a_token_auth_rayservice_is_accepted() -> None:
    parse_rayservice(rayservice_object(rayClusterConfig=token_spec()))


def test_serve_works_on_a_token_auth_cluster_and_the_token_is_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    loop = token_loop(seen)
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    active = loop.active or ""
    assert loop.world.serves[active].puts == 1
    token = token_of(active)
    assert seen and set(seen) == {f"Bearer {token}"}  # every call carried it, none went without
    answers = json.dumps([step.answer for step in loop.history])
    metrics = loop.runner.run(_metrics(loop.app))
    assert 'kuberay_service_condition_ready{condition="true",name="svc"' in metrics
    for text in (answers, json.dumps(loop.status), caplog.text, metrics):
        assert token not in text
        assert base64.b64encode(token.encode()).decode() not in text


def test_without_its_secret_the_dashboard_is_not_called() -> None:
    seen: list[str] = []
    loop = token_loop(seen)
    loop.token_secrets = False
    loop.run(5)
    assert seen == []  # no call that Ray would refuse anyway
    assert loop.active is None and loop.status["numServeEndpoints"] == 0


async def _metrics(app: Any) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metaray") as client:
        return (await client.get("/metrics")).text


# -- the core: which Secret is whose token ---------------------------------------------------


def _request(clusters: dict[str, Any], related: dict[str, Any]) -> Any:
    body = {"parent": rayservice_object(), "children": clusters, "related": related}
    return decode(orjson.dumps(body), related=True, raycluster=False)


def _targets(spec: dict[str, Any], secrets: dict[str, Any]) -> dict[str, ServeTarget]:
    loop = HttpLoop(rayservice_object(rayClusterConfig=spec))
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "svc-abcde", "namespace": "default", "uid": "uid-c"},
        "spec": spec,
        "status": {"state": "ready", "conditions": [{"type": "HeadPodReady", "status": "True"}]},
    }
    loop.children[("RayCluster.ray.io/v1", "svc-abcde")] = cluster
    related = loop.related()
    related[SECRET_KIND] = secrets
    request = _request({"RayCluster.ray.io/v1": {"default/svc-abcde": cluster}}, related)
    return rayservice.watched(request.observed, request.related, rayservice.Options())


def _secret(name: str, token: str, owner_uid: str | None = "uid-c", cluster: str = "svc-abcde"):
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "labels": {"ray.io/cluster": cluster},
    }
    if owner_uid:
        meta["ownerReferences"] = [
            {"kind": "RayCluster", "name": cluster, "uid": owner_uid, "controller": True}
        ]
    data = {"auth_token": base64.b64encode(token.encode()).decode()}
    return {
        f"default/{name}": {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}
    }


def test_the_token_is_read_from_the_clusters_own_secret_and_never_printed() -> None:
    targets = _targets(token_spec(), _secret("svc-abcde", "t0k3n"))
    assert targets["svc-abcde"].token == "t0k3n"
    assert "t0k3n" not in repr(targets) + str(targets)
    assert _targets(rayservice_object()["spec"]["rayClusterConfig"], {})["svc-abcde"].token == ""


def test_a_secret_the_cluster_does_not_own_is_no_token() -> None:
    assert _targets(token_spec(), _secret("svc-abcde", "forged", owner_uid="uid-other")) == {}
    assert _targets(token_spec(), _secret("svc-abcde", "forged", owner_uid=None)) == {}
    assert _targets(token_spec(), {}) == {}


def test_the_users_own_secret_is_read_by_its_name() -> None:
    spec = token_spec("my-token")
    targets = _targets(spec, _secret("my-token", "mine", owner_uid=None, cluster="x"))
    assert targets["svc-abcde"].token == "mine"


def test_customize_asks_for_the_clusters_token_secrets_and_the_users_own() -> None:
    rules = rayservice.customize(rayservice_object())["relatedResources"]
    secrets = [r for r in rules if r["resource"] == "secrets"]
    assert secrets == [
        {
            "apiVersion": "v1",
            "resource": "secrets",
            "namespace": "default",
            "labelSelector": {
                "matchLabels": {
                    "ray.io/originated-from-cr-name": "svc",
                    "ray.io/originated-from-crd": "RayService",
                }
            },
        }
    ]
    own = rayservice.customize(rayservice_object(rayClusterConfig=token_spec("my-token")))
    names = [r.get("names") for r in own["relatedResources"] if r["resource"] == "secrets"]
    assert ["my-token"] in names
