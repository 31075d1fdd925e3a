"""The shell's side of the head ``ray.io/serve`` label: the Serve poller reads each head
proxy's ``/-/healthz``; the head labeler carries out ``SetHeadServeLabel`` as a JSON merge
patch that names the pod's uid; over HTTP, the sync hook answers and the patch follows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.rayservice.head_label import READ_AT, ProxyTarget, SetHeadServeLabel
from app.shell.http.app import create_app
from app.shell.kube.pod_labels import HeadLabeler
from app.shell.ray.serve import ServeDashboards
from tests.observability.harness import KubeServer, events_settings, failing, value
from tests.rayservice.test_head_label import IP, POD, POD_UID, head_pod, serving_loop

NOW = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
WISH = SetHeadServeLabel("default", "svc-abcde-head-x7k2p", POD_UID, "false", NOW.isoformat())
POD_PATH = "/api/v1/namespaces/default/pods/svc-abcde-head-x7k2p"


class Counted:
    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def head_label(self, outcome: str) -> None:
        self.outcomes.append(outcome)


def labeler(server: KubeServer, counters: Counted) -> HeadLabeler:
    transport = server.transport()
    return HeadLabeler(
        lambda: httpx.AsyncClient(base_url="https://k", transport=transport), counters
    )


async def carry_out(sender: HeadLabeler, *batches: list[Any]) -> None:
    sender.start()
    for batch in batches:
        sender.offer_all(batch)
        assert sender.queue is not None
        await sender.queue.join()
    await sender.stop()


def test_the_label_is_a_merge_patch_of_the_label_and_its_reading_with_the_uid() -> None:
    server, counters = KubeServer(), Counted()
    asyncio.run(carry_out(labeler(server, counters), [WISH, "not an intent"]))
    [patch] = server.requests
    assert (patch.method, patch.url.path) == ("PATCH", POD_PATH)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.content) == {
        "metadata": {
            "uid": POD_UID,
            "labels": {"ray.io/serve": "false"},
            "annotations": {READ_AT: WISH.read_at},
        }
    }
    assert counters.outcomes == ["patched"]


def test_the_same_wish_is_patched_once_and_a_new_one_again() -> None:
    """Syncs repeat a wish until the observed pod shows it: one PATCH per wish."""
    server, counters = KubeServer(), Counted()
    back = SetHeadServeLabel(WISH.namespace, WISH.pod, WISH.uid, "true", "2026-01-01T00:05:03Z")
    asyncio.run(carry_out(labeler(server, counters), [WISH, WISH], [WISH], [back]))
    assert [json.loads(r.content)["metadata"]["labels"] for r in server.requests] == [
        {"ray.io/serve": "false"},
        {"ray.io/serve": "true"},
    ]


def test_exclude_patches_the_label_alone_whenever_a_sync_still_sees_it_differ() -> None:
    """No reading to follow: a label someone else set back is put back by the next sync."""
    server, counters = KubeServer(), Counted()
    wish = SetHeadServeLabel(WISH.namespace, WISH.pod, WISH.uid, "false")
    asyncio.run(carry_out(labeler(server, counters), [wish, wish], [wish]))
    assert [json.loads(r.content) for r in server.requests] == [
        {"metadata": {"uid": POD_UID, "labels": {"ray.io/serve": "false"}}}
    ] * 2


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(409, "conflict"), (404, "not_found"), (500, "rejected"), (None, "unreachable")],
)
def test_a_replaced_or_gone_pod_or_a_failure_is_counted_never_raised(
    answer: int | None, outcome: str
) -> None:
    server, counters = KubeServer(failing(answer)), Counted()
    asyncio.run(carry_out(labeler(server, counters), [WISH]))
    assert counters.outcomes == [outcome]


def proxy(statuses: dict[str, int | None]) -> httpx.MockTransport:
    """A head proxy per IP: its /-/healthz answers that status (None: refused). Any other
    call (a dashboard's) is a 503."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/-/healthz":
            return httpx.Response(503)
        assert request.method == "GET"
        status = statuses[request.url.host]
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, text="success" if status == 200 else "unhealthy")

    return httpx.MockTransport(handle)


def test_the_poller_reads_each_head_proxy_as_healthy_only_on_200() -> None:
    statuses: dict[str, int | None] = {"10.0.0.1": 200, "10.0.0.2": 503, "10.0.0.3": None}
    poller = ServeDashboards(clock=lambda: NOW, transport=proxy(statuses), interval=0.0)
    targets = [ProxyTarget("c", f"pod-{ip}", f"{ip}:8000") for ip in statuses]

    async def go() -> dict[str, Any]:
        assert poller.proxies(targets) == {}  # nothing read yet
        await poller.poll_once()
        found = poller.proxies(targets)
        await poller.stop()
        return found

    found = asyncio.run(go())
    assert {uid: v.healthy for uid, v in found.items()} == {
        "pod-10.0.0.1": True,
        "pod-10.0.0.2": False,
        "pod-10.0.0.3": False,
    }
    assert {v.read_at for v in found.values()} == {NOW.isoformat(timespec="microseconds")}
    assert found["pod-10.0.0.1"].url == "10.0.0.1:8000"


def test_over_http_the_sync_answers_and_the_patch_follows(tmp_path: Path) -> None:
    loop = serving_loop()
    pod = head_pod(loop)
    request = loop.request()
    request["related"][POD] = {"default/head": pod}
    server = KubeServer()
    app = create_app(
        events_settings(tmp_path, events="off", dashboard_timeout_seconds=0.5),
        kube_transport=server.transport(),
        dashboard_transport=proxy({IP: 503}),
        clock=lambda: NOW,
    )

    async def go() -> list[httpx.Response]:
        answers = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
                for _ in range(2):
                    body = orjson.dumps(request)
                    answers.append(await client.post("/rayservice/sync", content=body))
                    app.state.serve.interval = 0.0
                    await app.state.serve.poll_once()  # the head proxy is read between syncs
                await app.state.labeler.queue.join()
                answers.append(await client.get("/metrics"))
        return answers

    first, second, metrics = asyncio.run(go())
    assert first.status_code == second.status_code == 200
    assert first.json()["children"] == second.json()["children"]
    [patch] = [r for r in server.requests if r.method == "PATCH"]
    assert patch.url.path == f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}"
    assert json.loads(patch.content)["metadata"]["labels"] == {"ray.io/serve": "false"}
    assert json.loads(patch.content)["metadata"]["uid"] == POD_UID
    assert value(metrics.text, "metaray_head_serve_labels_total", outcome="patched") == 1
