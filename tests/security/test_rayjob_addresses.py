"""No address a user can steer, over HTTP: the submitter Job, the stop Job, the poller and the
intents get only the address derived from objects metaray owns and observes."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import datetime
from typing import Any

import httpx

from app.rayjob.kinds import JOB, SERVICE
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.http.client import HookClient
from tests.rayjob.loop import START, JobLoop, rayjob_object, user_cluster

HEADERS = {"Content-Type": "application/json"}
ATTACKER = "attacker.example.com:80"
AUTH = {"mode": "token"}


def over_http(loop: JobLoop, client: HookClient, path: str = "/rayjob/sync") -> None:
    def decide(request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        response = client.post(path, content=json.dumps(request).encode(), headers=HEADERS)
        assert response.status_code == 200, response.text
        return None, response.json()

    loop.decide = decide  # type: ignore[method-assign]


def env(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env") or []}


def client() -> HookClient:
    return HookClient(create_app(Settings(events="off", dashboard=False), clock=lambda: START))


def test_an_edited_status_never_reaches_a_recreated_submitter() -> None:
    loop = JobLoop(rayjob_object())
    over_http(loop, client())
    loop.step()
    loop.step()
    loop.cluster_ready()
    loop.until("Running")
    assert env(loop.child(JOB, "job"))["RAY_DASHBOARD_ADDRESS"] == (
        "job-head-svc.default.svc.cluster.local:8265"
    )
    loop.parent["status"]["dashboardURL"] = ATTACKER
    del loop.children[(JOB, "job")]  # someone deletes the submitter Job: it is re-created
    loop.step()
    address = env(loop.child(JOB, "job"))["RAY_DASHBOARD_ADDRESS"]
    assert address == "job-head-svc.default.svc.cluster.local:8265"


def test_an_external_name_head_service_gives_no_pod_an_address() -> None:
    """A head Service turned into an ExternalName (or selector-less) is not an address."""
    loop = JobLoop(rayjob_object())
    over_http(loop, client())
    loop.step()
    loop.step()
    service = loop.child(SERVICE, "job-head-svc")
    service["spec"] = {"type": "ExternalName", "externalName": "attacker.example.com"}
    loop.cluster_ready()
    loop.until("Running")
    loop.child(SERVICE, "job-head-svc")["spec"] = {
        "type": "ExternalName",
        "externalName": "attacker.example.com",
        "ports": [{"name": "dashboard", "port": 80}],
    }
    loop.step()
    assert loop.jobs() == [], "no submitter Job without a derived address"
    loop.child(SERVICE, "job-head-svc")["spec"] = {"ports": [{"name": "dashboard", "port": 80}]}
    loop.step()
    assert loop.jobs() == [], "nor with a selector-less Service"


def test_a_user_named_head_service_of_a_selected_cluster_is_never_called() -> None:
    """clusterSelector: the stop Job calls the selected cluster's head pod, not the Service
    the user named in headService, nor the status."""
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    mine = user_cluster("mine")
    mine["spec"]["headGroupSpec"]["headService"] = {"metadata": {"name": "attacker"}}
    loop.related_clusters["mine"] = mine
    loop.user_head("mine", "10.9.8.7")
    over_http(loop, client())
    for _ in range(3):
        loop.step()
    assert env(loop.child(JOB, "job"))["RAY_DASHBOARD_ADDRESS"] == "10.9.8.7:8265"
    parent = copy.deepcopy(loop.parent)
    parent["metadata"]["deletionTimestamp"] = loop.stamp()
    parent["status"]["dashboardURL"] = ATTACKER
    response = client().post(
        "/rayjob/finalize", content=json.dumps(loop.request(parent)).encode(), headers=HEADERS
    )
    [stopper] = [c for c in response.json()["children"] if c["metadata"]["name"] == "job-stop"]
    assert env(stopper)["RAY_DASHBOARD_ADDRESS"] == "10.9.8.7:8265"


def test_a_head_pod_not_controlled_by_the_selected_cluster_is_not_an_address() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    loop.related_clusters["mine"] = user_cluster("mine")
    loop.user_head("mine", "10.9.8.7")
    loop.related_pods["mine-head"]["metadata"]["ownerReferences"] = []
    over_http(loop, client())
    for _ in range(3):
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert loop.jobs() == []


def test_a_selected_cluster_without_an_image_gets_no_submitter_and_says_why() -> None:
    """KubeRay's ray-job.use-existing-raycluster sample: never a Job with image ""."""
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    mine = user_cluster("mine")
    del mine["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    loop.related_clusters["mine"] = mine
    loop.user_head("mine")
    over_http(loop, client())
    steps = [loop.step() for _ in range(4)]
    assert loop.jobs() == []
    assert "names no head image" in loop.status["message"]
    created = [c for s in steps for c in s.created if c.startswith("Job/")]
    assert created == []


def test_a_selected_cluster_takes_its_image_for_the_submitter() -> None:
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    mine = user_cluster("mine")
    image = mine["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    loop.related_clusters["mine"] = mine
    loop.user_head("mine")
    over_http(loop, client())
    for _ in range(3):
        loop.step()
    container = loop.child(JOB, "job")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image != ""


def test_the_poller_does_not_ask_a_selected_cluster_with_token_auth() -> None:
    """Item 8: token auth judged from the selected cluster, not rayClusterSpec."""
    asked: list[str] = []

    async def dashboard(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(404)

    app = create_app(
        Settings(events="off", dashboard=True),
        dashboard_transport=httpx.MockTransport(dashboard),
        clock=lambda: datetime(2026, 1, 1),
    )
    loop = JobLoop(rayjob_object(clusterSelector={"ray.io/cluster": "mine"}))
    mine = user_cluster("mine")
    mine["spec"]["authOptions"] = AUTH
    loop.related_clusters["mine"] = mine
    loop.user_head("mine")
    over_http(loop, HookClient(app))
    for _ in range(4):
        loop.step()
    assert loop.status["jobDeploymentStatus"] == "Running"
    assert app.state.dashboards.watched() == 0


def test_intents_hold_no_guard_slot_while_a_dashboard_is_slow() -> None:
    """Item 10: a slow dashboard never costs Metacontroller a request slot (429)."""

    async def scenario() -> tuple[int, int]:
        submitted = asyncio.Event()
        release = asyncio.Event()

        async def dashboard(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                submitted.set()
                await release.wait()
                return httpx.Response(200, json={"submission_id": "x"})
            return httpx.Response(404)

        app = create_app(
            Settings(events="off", dashboard=True, max_in_flight=1),
            dashboard_transport=httpx.MockTransport(dashboard),
            clock=lambda: START,
        )
        loop = JobLoop(rayjob_object(submissionMode="HTTPMode"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
            for _ in range(2):
                await sync_step(loop, http)
            loop.cluster_ready()
            for _ in range(3):
                await sync_step(loop, http)
            await app.state.dashboards.poll_once()  # 404: not submitted yet
            first = asyncio.create_task(sync_step(loop, http))
            await asyncio.wait_for(submitted.wait(), 10)
            # The submit is still waiting on the dashboard: the hook has answered all the same,
            # and the next sync gets its slot.
            held = await first
            second = await sync_step(loop, http)
            release.set()
            await app.state.dashboards.intents_done()
            return held, second

    assert asyncio.run(scenario()) == (200, 200)


async def sync_step(loop: JobLoop, http: httpx.AsyncClient) -> int:
    """One loop step whose answer comes from the app over HTTP (async)."""
    answers: list[dict[str, Any]] = []

    def decide(request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        return None, answers.pop()

    body = json.dumps(loop.request()).encode()
    response = await http.post("/rayjob/sync", content=body, headers=HEADERS)
    if response.status_code != 200:
        return response.status_code
    answers.append(response.json())
    loop.decide = decide  # type: ignore[method-assign]
    loop.step()
    return 200
