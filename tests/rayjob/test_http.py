"""/rayjob/sync, /rayjob/finalize and /rayjob/customize over HTTP (httpx, in process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.http.client import HookClient
from tests.rayjob.loop import START, JobLoop, rayjob_object

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def clock() -> list[datetime]:
    return [START]


@pytest.fixture
def client(clock: list[datetime]) -> Iterator[HookClient]:
    yield HookClient(create_app(Settings(events="off"), clock=lambda: clock[0]))


def post(client: HookClient, path: str, body: dict[str, Any] | bytes) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers=HEADERS)


def over_http(client: HookClient, loop: JobLoop, clock: list[datetime]) -> None:
    """Let the loop's decisions come from the HTTP service, at the loop's time."""

    def decide(request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        clock[0] = loop.now
        response = post(client, "/rayjob/sync", request)
        assert response.status_code == 200, response.text
        return None, response.json()

    loop.decide = decide  # type: ignore[method-assign]


def test_a_rayjob_runs_to_completion_over_http(client: HookClient, clock: list[datetime]) -> None:
    loop = JobLoop(rayjob_object(shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=5))
    over_http(client, loop, clock)
    loop.step()
    loop.step()
    loop.cluster_ready()
    loop.until("Running")
    loop.submitter_exits(0, "SUCCEEDED", "done")
    step = loop.step()
    assert loop.status["jobDeploymentStatus"] == "Complete"
    assert step.answer["resyncAfterSeconds"] == 7
    loop.now += timedelta(seconds=5)
    assert loop.step().deleted == [loop.status["rayClusterName"]]


def test_the_clock_moves_the_answer_so_nothing_is_served_from_the_cache(
    client: HookClient, clock: list[datetime]
) -> None:
    body = JobLoop(rayjob_object()).request()
    first = post(client, "/rayjob/sync", body).json()
    clock[0] = datetime(2026, 6, 1, tzinfo=UTC)
    second = post(client, "/rayjob/sync", body).json()
    assert first["status"]["startTime"] == "2026-01-01T00:00:00Z"
    assert second["status"]["startTime"] == "2026-06-01T00:00:00Z"


def test_same_request_same_clock_same_bytes(client: HookClient) -> None:
    body = JobLoop(rayjob_object()).request()
    assert post(client, "/rayjob/sync", body).content == post(client, "/rayjob/sync", body).content


def test_invalid_rayjob_over_http_deletes_nothing(
    client: HookClient, clock: list[datetime]
) -> None:
    loop = JobLoop(rayjob_object())
    over_http(client, loop, clock)
    loop.step()
    loop.step()
    before = set(loop.children)
    loop.edit(submissionMode="Batch")
    step = loop.step()
    assert step.deleted == [] and set(loop.children) == before
    assert loop.status["jobDeploymentStatus"] == "ValidationFailed"
    assert "spec.submissionMode" in loop.status["message"]


@pytest.mark.parametrize("path", ["/rayjob/sync", "/rayjob/finalize", "/rayjob/customize"])
@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"parent": 3}', b"{}"])
def test_a_body_that_is_no_hook_request_is_400(client: HookClient, path: str, body: bytes) -> None:
    response = post(client, path, body)
    assert response.status_code == 400
    assert "not a Metacontroller" in response.json()["error"]


def test_customize_over_http(client: HookClient) -> None:
    response = post(client, "/rayjob/customize", {"controller": {}, "parent": rayjob_object()})
    assert response.status_code == 200
    [pods] = response.json()["relatedResources"]
    assert pods["resource"] == "pods" and pods["namespace"] == "default"


def test_finalize_over_http_lets_an_owned_cluster_go(client: HookClient) -> None:
    loop = JobLoop(rayjob_object())
    request = loop.request()
    request["finalizing"] = True
    request["parent"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    answer = post(client, "/rayjob/finalize", request).json()
    assert answer["finalized"] is True


def test_an_internal_fault_is_500_so_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("app.rayjob.sync.advance", broken)
    client = HookClient(create_app(Settings(events="off")))
    response = post(client, "/rayjob/sync", JobLoop(rayjob_object()).request())
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: RuntimeError"}
