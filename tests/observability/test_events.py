"""Kubernetes Events: what ``kubectl describe raycluster`` shows, and that posting them never
costs Metacontroller its answer."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.core.desired import Desired
from app.core.events import Event
from app.hooks.request import decode
from app.raycluster.sync import finalize
from app.shell.kube import api as kube_api
from app.shell.kube.events import CONTROLLER, EventSink
from app.shell.observability.redact import Redactor
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.loop import Loop, cluster_spec, group, raycluster
from tests.observability.harness import (
    API,
    JOB,
    POD_NAME,
    TOKEN,
    Clock,
    KubeServer,
    app_with,
    as_observed,
    body,
    captured_logs,
    events_settings,
    failing,
    finalize_request,
    run_app,
    value,
)

UID = "0f0f0f0f-1111-2222-3333-444444444444"
REGARDING = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "name": "demo",
    "namespace": "default",
    "uid": UID,
}
EVENTS_PATH = "/apis/events.k8s.io/v1/namespaces/default/events"
Cause = tuple[dict[str, Any], Desired, str]  # the parent, the core's answer, the expected note


class Tally:
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.drops = 0

    def posted(self, outcome: str) -> None:
        self.outcomes.append(outcome)

    def dropped(self, count: int = 1) -> None:
        self.drops += count


def sink_for(server: KubeServer, tmp_path: Path, clock: Clock, queue_size: int = 100) -> EventSink:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    api = kube_api.KubeApi(API, str(token), str(tmp_path / "ca.crt"))
    return EventSink(
        lambda: kube_api.client(api, server.transport()),
        Tally(),
        instance=POD_NAME,
        queue_size=queue_size,
        clock=clock,
    )


def post_events(
    answers: list[tuple[dict[str, Any], Desired]],
    tmp_path: Path,
    server: KubeServer | None = None,
    clock: Clock | None = None,
) -> KubeServer:
    """Feed each answer's Events to a sink, as the app does after each response."""
    server = server or KubeServer()
    clock = clock or Clock()
    sink = sink_for(server, tmp_path, clock)

    async def go() -> None:
        sink.start()
        for parent, desired in answers:
            await sink.enqueue(parent, desired.events, Redactor.of(parent))
            await asyncio.sleep(0)
            clock.advance(60)
        await sink.stop()

    asyncio.run(go())
    return server


# -- each reason, from its cause --------------------------------------------------------------


def first_sync(**spec: Any) -> Loop:
    loop = Loop(raycluster(cluster_spec(group(replicas=1), **spec)))
    loop.step()
    return loop


def last(loop: Loop) -> tuple[dict[str, Any], Desired]:
    step = loop.history[-1]
    return step.request["parent"], step.desired


def created_head_pod() -> Cause:
    loop = first_sync()
    [head] = loop.heads()
    return *last(loop), f"Created head Pod default/{head}"


def created_worker_pod() -> Cause:
    loop = first_sync()
    [worker] = loop.workers("workers")
    return *last(loop), f"Created worker Pod default/{worker} in group workers"


def created_service() -> Cause:
    return *last(first_sync()), "Created Service default/demo-head-svc"


def created_ingress() -> Cause:
    loop = Loop(raycluster(cluster_spec(group())))
    loop.parent["spec"]["headGroupSpec"]["enableIngress"] = True
    loop.step()
    return *last(loop), "Created Ingress default/demo-head-ingress"


def autoscaler_child(kind: str) -> Callable[[], Cause]:
    def cause() -> Cause:
        return *last(first_sync(enableInTreeAutoscaling=True)), f"Created {kind} default/demo"

    return cause


def deleted_head_pod() -> Cause:
    loop = running()
    [head] = loop.heads()
    loop.finish(head)
    loop.step()
    return *last(loop), f"Deleted head Pod default/{head}: its phase is Failed"


def deleted_worker_pod() -> Cause:
    loop = running()
    [worker] = loop.workers("workers")
    loop.edit(
        lambda spec: spec["workerGroupSpecs"][0].update(scaleStrategy={"workersToDelete": [worker]})
    )
    loop.step()
    return *last(loop), f"Deleted worker Pod default/{worker}: listed in workersToDelete"


def invalid_spec() -> Cause:
    loop = Loop(raycluster(cluster_spec(group(replicas=1, minimum=5, maximum=1))))
    loop.step()
    note = (
        "Invalid RayCluster spec, nothing changed: spec.workerGroupSpecs[0].minReplicas: "
        "must not exceed maxReplicas (5 > 1)"
    )
    return *last(loop), note


def invalid_workers_to_delete() -> Cause:
    loop = running()
    loop.edit(
        lambda spec: spec["workerGroupSpecs"][0].update(scaleStrategy={"workersToDelete": ["gone"]})
    )
    loop.step()
    note = "workersToDelete of group workers names gone, which is not a pod of that group; ignored"
    return *last(loop), note


def running() -> Loop:
    loop = Loop(raycluster(cluster_spec(group(replicas=1))))
    loop.converge()
    loop.run_pods()
    loop.converge()
    return loop


FT = {"gcsFaultToleranceOptions": {"redisAddress": "redis:6379"}}


def finalized(request: dict[str, Any]) -> tuple[dict[str, Any], Desired]:
    decoded = decode(orjson.dumps(request))
    return decoded.parent, finalize(decoded.parent, decoded.observed)


def created_cleanup_job() -> Cause:
    parent, desired = finalized(finalize_request(raycluster(cluster_spec(group(), **FT))))
    return parent, desired, "Created Redis cleanup Job default/demo-cleanup"


def cleanup_failed() -> Cause:
    parent = raycluster(cluster_spec(group(), **FT))
    _, first = finalized(finalize_request(parent))
    [job] = [child for child in first.children if child["kind"] == "Job"]
    failed = {"conditions": [{"type": "Failed", "status": "True"}], "failed": 1}
    children = {JOB: {"default/demo-cleanup": as_observed(dict(job), failed)}}
    note = (
        "Redis cleanup Job default/demo-cleanup failed: the GCS data under storage namespace "
        f"{UID} is left in Redis"
    )
    return *finalized(finalize_request(parent, children)), note


def cleanup_skipped() -> Cause:
    parent = raycluster(cluster_spec(group(minimum=5, maximum=1), **FT))
    return *finalized(finalize_request(parent)), "Invalid spec: no Redis cleanup attempted"


CAUSES: dict[str, tuple[Callable[[], Cause], str, str]] = {
    "CreatedHeadPod": (created_head_pod, "Normal", "Create"),
    "CreatedWorkerPod": (created_worker_pod, "Normal", "Create"),
    "CreatedService": (created_service, "Normal", "Create"),
    "CreatedIngress": (created_ingress, "Normal", "Create"),
    "CreatedServiceAccount": (autoscaler_child("ServiceAccount"), "Normal", "Create"),
    "CreatedRole": (autoscaler_child("Role"), "Normal", "Create"),
    "CreatedRoleBinding": (autoscaler_child("RoleBinding"), "Normal", "Create"),
    "DeletedHeadPod": (deleted_head_pod, "Normal", "Delete"),
    "DeletedWorkerPod": (deleted_worker_pod, "Normal", "Delete"),
    "InvalidRayClusterSpec": (invalid_spec, "Warning", "Validate"),
    "InvalidWorkersToDelete": (invalid_workers_to_delete, "Warning", "Validate"),
    "CreatedRedisCleanupJob": (created_cleanup_job, "Normal", "Create"),
    "RedisCleanupFailed": (cleanup_failed, "Warning", "Finalize"),
    "RedisCleanupSkipped": (cleanup_skipped, "Warning", "Finalize"),
}


@pytest.mark.parametrize("reason", sorted(CAUSES))
def test_each_reason_is_posted_as_an_events_v1_event_on_the_raycluster(
    reason: str, tmp_path: Path
) -> None:
    cause, kind, action = CAUSES[reason]
    parent, desired, note = cause()
    server = post_events([(parent, desired)], tmp_path)

    posts = [r for r in server.requests if r.method == "POST"]
    assert {r.url.path for r in posts} == {EVENTS_PATH}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in posts)
    [event] = [b for b in server.bodies() if b["reason"] == reason]
    name = event["metadata"].pop("name")
    assert re.fullmatch(r"demo\.[0-9a-f]{16}", name)
    assert event == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": "default"},
        "eventTime": "2026-01-01T00:05:00.000000Z",
        "reportingController": CONTROLLER,
        "reportingInstance": POD_NAME,
        "action": action,
        "reason": reason,
        "regarding": REGARDING,
        "note": note,
        "type": kind,
    }
    names = [b["metadata"]["name"] for b in server.bodies()]
    assert len(set(names)) == len(names), "every Event of a sync has its own name"


# -- aggregation ------------------------------------------------------------------------------


def test_an_invalid_spec_resynced_is_one_event_whose_series_count_grows(tmp_path: Path) -> None:
    parent, desired, _ = invalid_spec()
    server = post_events([(parent, desired)] * 3, tmp_path)

    [post] = [r for r in server.requests if r.method == "POST"]
    name = orjson.loads(post.content)["metadata"]["name"]
    patches = [r for r in server.requests if r.method == "PATCH"]
    assert [r.url.path for r in patches] == [f"{EVENTS_PATH}/{name}"] * 2
    assert all(r.headers["Content-Type"] == "application/merge-patch+json" for r in patches)
    assert server.bodies("PATCH") == [
        {"series": {"count": 2, "lastObservedTime": "2026-01-01T00:06:00.000000Z"}},
        {"series": {"count": 3, "lastObservedTime": "2026-01-01T00:07:00.000000Z"}},
    ]


def test_the_same_event_after_ten_quiet_minutes_is_a_new_event(tmp_path: Path) -> None:
    parent, desired, _ = invalid_spec()
    server, clock = KubeServer(), Clock()
    sink = sink_for(server, tmp_path, clock)

    async def go() -> None:
        sink.start()
        await sink.enqueue(parent, desired.events, Redactor())
        clock.advance(601)
        await sink.enqueue(parent, desired.events, Redactor())
        await sink.stop()

    asyncio.run(go())
    assert [r.method for r in server.requests] == ["POST", "POST"]
    first, second = (b["metadata"]["name"] for b in server.bodies())
    assert first != second


def test_a_series_whose_event_expired_starts_a_new_event(tmp_path: Path) -> None:
    """The API server deletes Events after its --event-ttl (1 h): the PATCH gets a 404."""

    async def gone_on_patch(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.method == "PATCH" else 201, json={})

    parent, desired, _ = invalid_spec()
    server = post_events([(parent, desired)] * 2, tmp_path, KubeServer(gone_on_patch))
    assert [r.method for r in server.requests] == ["POST", "PATCH", "POST"]


def test_consecutive_identical_syncs_through_the_app_give_one_event(tmp_path: Path) -> None:
    parent, _, _ = invalid_spec()
    server, clock = KubeServer(), Clock()
    app = app_with(events_settings(tmp_path), server, clock)
    request = body({"parent": parent, "children": {}})
    run_app(app, [("POST", "/sync", request)] * 4, between=lambda _: clock.advance(60))

    assert [r.method for r in server.requests] == ["POST", "PATCH", "PATCH", "PATCH"]
    assert server.bodies("PATCH")[-1]["series"]["count"] == 4


# -- the API server down, slow or flooded -----------------------------------------------------

FIRST = body(capture("sync-a-first"))


def sync_answers(app_settings: Settings, server: KubeServer | None = None) -> list[bytes]:
    responses = run_app(app_with(app_settings, server), [("POST", "/sync", FIRST)] * 3)
    assert all(r.status_code == 200 for r in responses)
    return [r.content for r in responses]


@pytest.mark.parametrize("status", [None, 500], ids=["connection-refused", "http-500"])
def test_a_down_api_server_changes_nothing_in_the_answer(
    tmp_path: Path, status: int | None
) -> None:
    without = sync_answers(events_settings(tmp_path, events="off"))
    server = KubeServer(failing(status))
    with captured_logs() as logs:
        with_events = sync_answers(events_settings(tmp_path), server)

    assert with_events == without
    assert len(server.requests) == 9, "three Events per sync were attempted"
    warnings = [r for r in logs.records if r.name == "metaray.events"]
    assert len(warnings) == 1, "one log line per kind of failure, not one per Event"
    kind = "ConnectError" if status is None else "HTTP 500"
    assert kind in warnings[0].getMessage()


def test_failures_are_counted_by_outcome(tmp_path: Path) -> None:
    server = KubeServer(failing(500))
    app = app_with(events_settings(tmp_path), server)
    run_app(app, [("POST", "/sync", FIRST)])
    [scrape] = run_app(app, [("GET", "/metrics", None)])
    assert value(scrape.text, "metaray_events_posted_total", outcome="rejected") == 3
    assert value(scrape.text, "metaray_events_posted_total", outcome="created") == 0


def test_sync_returns_before_a_slow_api_server_has_answered(tmp_path: Path) -> None:
    slow = failing(201, delay=1.0)

    async def slow_first(request: httpx.Request) -> httpx.Response:
        return await (slow if not server.requests[:-1] else failing(201))(request)

    server = KubeServer(slow_first)
    timings: list[float] = []

    async def go() -> None:
        app = app_with(events_settings(tmp_path), server)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
                started = time.perf_counter()
                response = await client.post("/sync", content=FIRST)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
                assert server.finished == 0, "no Event was through when the answer was"

    asyncio.run(go())
    assert timings[0] < 0.5
    assert server.finished == 3, "the queue was drained on shutdown"


def test_the_sink_adds_no_latency_to_sync(tmp_path: Path) -> None:
    def median_sync_seconds(app_settings: Settings, server: KubeServer | None) -> float:
        durations: list[float] = []
        calls = [("POST", "/sync", FIRST)] * 30
        app = app_with(app_settings, server)
        started = [0.0]

        def tick(index: int) -> None:
            now = time.perf_counter()
            if index:
                durations.append(now - started[0])
            started[0] = now

        run_app(app, calls, between=tick)
        return statistics.median(durations)

    off = median_sync_seconds(events_settings(tmp_path, events="off"), None)
    down = median_sync_seconds(events_settings(tmp_path), KubeServer(failing(None)))
    assert down < off + 0.005, f"{down * 1000:.2f} ms with Events vs {off * 1000:.2f} ms"


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    request = body(Loop(raycluster(cluster_spec(group(replicas=3)))).request())
    server = KubeServer()
    app = app_with(events_settings(tmp_path, events_queue_size=2), server)
    run_app(app, [("POST", "/sync", request)])  # 5 Events: Service, head, 3 workers
    [scrape] = run_app(app, [("GET", "/metrics", None)])

    assert [b["reason"] for b in server.bodies()] == ["CreatedService", "CreatedHeadPod"]
    assert value(scrape.text, "metaray_events_dropped_total") == 3
    assert value(scrape.text, "metaray_events_posted_total", outcome="created") == 2


# -- on, off, auto ----------------------------------------------------------------------------


def test_nothing_is_posted_when_events_are_off(tmp_path: Path) -> None:
    server = KubeServer()
    run_app(app_with(events_settings(tmp_path, events="off"), server), [("POST", "/sync", FIRST)])
    assert server.requests == []


def test_auto_posts_only_inside_a_cluster(tmp_path: Path) -> None:
    inside = events_settings(tmp_path)
    assert kube_api.events_api(inside) == kube_api.KubeApi(
        "https://kubernetes.test:443", inside.token_path, inside.ca_path
    )
    assert kube_api.events_api(Settings()) is None, "no KUBERNETES_SERVICE_HOST"
    no_token = events_settings(tmp_path, token_path=str(tmp_path / "missing"))
    assert kube_api.events_api(no_token) is None
    with pytest.raises(ValueError, match="METARAY_EVENTS=on"):
        kube_api.events_api(Settings(events="on"))
    assert Settings.from_env({"METARAY_EVENTS": "OFF"}).events == "off"
    with pytest.raises(ValueError, match="METARAY_EVENTS"):
        Settings.from_env({"METARAY_EVENTS": "sometimes"})


def test_in_cluster_settings_come_from_kubernetes_env_and_the_downward_api() -> None:
    settings = Settings.from_env(
        {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443", "POD_NAME": "p"}
    )
    assert (settings.kube_host, settings.kube_port, settings.pod_name) == ("fd00::1", "6443", "p")
    assert Settings.from_env({"HOSTNAME": "h"}).pod_name == "h"
    assert settings.token_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    # An IPv6 service host needs brackets in the URL.
    api = kube_api.events_api(Settings(events="on", kube_host="fd00::1", kube_port="6443"))
    assert api is not None and api.base_url == "https://[fd00::1]:6443"


def test_a_rotated_token_is_used_after_the_next_refresh(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    now = [0.0]
    auth = kube_api.BearerToken(str(token), refresh=60, clock=lambda: now[0])
    assert auth.current() == "first"
    token.write_text("second")
    now[0] = 59
    assert auth.current() == "first", "not re-read on every request"
    now[0] = 60
    assert auth.current() == "second"
    token.unlink()
    now[0] = 200
    assert auth.current() == "second", "a missing file keeps the last token"


def test_an_answer_without_a_cluster_identity_posts_nothing(tmp_path: Path) -> None:
    server, clock = KubeServer(), Clock()
    sink = sink_for(server, tmp_path, clock)

    async def go() -> None:
        sink.start()
        await sink.enqueue(
            {"metadata": {"name": "x"}}, [Event("Normal", "CreatedService", "m")], Redactor()
        )
        await sink.stop()

    asyncio.run(go())
    assert server.requests == []
    assert isinstance(sink.counters, Tally) and sink.counters.drops == 1


def test_a_note_is_cut_to_the_api_servers_limit(tmp_path: Path) -> None:
    parent = raycluster(cluster_spec(group()))
    long = Event("Warning", "InvalidRayClusterSpec", "x" * 5000)
    server = post_events([(parent, Desired([], {}, (long,)))], tmp_path)
    [event] = server.bodies()
    assert len(event["note"].encode()) == 1024 and event["note"].endswith("...")
