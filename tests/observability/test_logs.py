"""Logs: one JSON line per hook answer, nothing per pod, and never a secret anywhere."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from app.core.desired import Desired
from app.core.events import WARNING, Event
from app.shell.observability import logs
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.loop import Loop, cluster_spec, group, raycluster
from tests.observability.harness import (
    TOKEN,
    KubeServer,
    app_with,
    body,
    captured_logs,
    events_settings,
    finalize_request,
    run_app,
)

FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "hook",
    "cluster",
    "namespace",
    "uid",
    "generation",
    "observed_pods",
    "desired_pods",
    "created",
    "deleted",
    "state",
    "duration_ms",
    "outcome",
}


def sync_lines(calls: list[tuple[str, str, bytes | None]], **settings: Any) -> Any:
    with captured_logs() as captured:
        responses = run_app(app_with(Settings(**settings)), calls)
    return responses, captured


def test_a_generation_beyond_64_bits_still_gets_its_line() -> None:
    # orjson cannot write such an integer; the line must not be lost to a logging error.
    request = capture("sync-a-first")
    request["parent"]["metadata"]["generation"] = 2**70
    _, captured = sync_lines([("POST", "/sync", body(request))])
    [line] = captured.json()
    assert line["generation"] == 2**70 and line["outcome"] == "ok"


def test_one_json_line_per_sync_with_what_it_did() -> None:
    request = capture("sync-a-first")
    _, captured = sync_lines([("POST", "/sync", body(request))])
    [line] = captured.json()
    assert set(line) == FIELDS, "no finalized field on a sync line"
    meta = request["parent"]["metadata"]
    assert line["level"] == "INFO" and line["logger"] == "metaray.sync"
    assert line["message"] == "sync default/raycluster-kuberay ok"
    assert (line["cluster"], line["namespace"], line["uid"]) == (
        meta["name"],
        meta["namespace"],
        meta["uid"],
    )
    assert line["generation"] == meta["generation"]
    assert (line["observed_pods"], line["desired_pods"]) == (0, 2)
    assert line["created"][0] == "raycluster-kuberay-head-svc" and len(line["created"]) == 3
    assert line["deleted"] == [] and line["state"] == "" and line["outcome"] == "ok"
    assert 0 < line["duration_ms"] < 5000


def test_deleted_pods_are_logged_with_their_reason() -> None:
    loop = Loop(raycluster(cluster_spec(group(replicas=2))))
    loop.converge()
    loop.run_pods()
    loop.converge()
    victim = loop.workers("workers")[0]
    loop.edit(
        lambda s: s["workerGroupSpecs"][0].update(scaleStrategy={"workersToDelete": [victim]})
    )
    _, captured = sync_lines([("POST", "/sync", body(loop.request()))])
    [line] = captured.json()
    assert line["deleted"] == [{"name": victim, "reason": "workers_to_delete"}]
    # replicas is still 2: the deleted worker is replaced by a new one in the same answer.
    assert (line["observed_pods"], line["desired_pods"], len(line["created"])) == (3, 3, 1)
    assert line["state"] == "ready"


def test_a_sync_creating_200_pods_is_one_line_even_with_events_posted(tmp_path: Path) -> None:
    request = Loop(raycluster(cluster_spec(group(replicas=200, maximum=300)))).request()
    server = KubeServer()
    with captured_logs(logging.INFO) as captured:
        run_app(app_with(events_settings(tmp_path), server), [("POST", "/sync", body(request))])
    assert len(server.requests) == 202, "an Event per pod was posted"
    assert [r.name for r in captured.records] == ["metaray.sync"], "nothing per pod at INFO"
    [line] = captured.json()
    assert len(line["created"]) == 202


def test_finalize_lines_say_whether_the_cluster_was_released() -> None:
    ft = cluster_spec(group(), gcsFaultToleranceOptions={"redisAddress": "redis:6379"})
    calls = [
        ("POST", "/finalize", body(finalize_request(raycluster(cluster_spec(group()))))),
        ("POST", "/finalize", body(finalize_request(raycluster(ft)))),
    ]
    _, captured = sync_lines(calls)
    released, waiting = captured.json()
    assert (released["hook"], released["finalized"]) == ("finalize", True)
    assert (waiting["finalized"], waiting["created"]) == (False, ["demo-cleanup"])


def test_an_invalid_spec_and_a_bad_request_each_say_so() -> None:
    invalid = raycluster(cluster_spec(group(minimum=3, maximum=1)))
    calls = [
        ("POST", "/sync", body({"parent": invalid, "children": {}})),
        ("POST", "/sync", b"{not json"),
    ]
    responses, captured = sync_lines(calls)
    assert [r.status_code for r in responses] == [200, 400]
    spec_line, bad_line = captured.json()
    assert (spec_line["outcome"], spec_line["state"]) == ("invalid_spec", "failed")
    assert (bad_line["outcome"], bad_line["level"]) == ("bad_request", "WARNING")
    assert bad_line["error"].startswith("not a Metacontroller sync request")


def test_an_internal_error_is_one_error_line_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: Any, **__: Any) -> Desired:
        raise RuntimeError("the core broke")

    monkeypatch.setattr("app.raycluster.sync.sync", broken)
    responses, captured = sync_lines([("POST", "/sync", body(capture("sync-a-first")))])
    assert responses[0].status_code == 500
    [line] = captured.json()
    assert (line["level"], line["outcome"]) == ("ERROR", "error")
    assert line["cluster"] == "raycluster-kuberay"
    assert "RuntimeError: the core broke" in line["exception"]


def test_configure_writes_json_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        logs.configure("debug")
        logs.configure("debug")  # idempotent: still one handler
        assert logs.configured()
        logging.getLogger("metaray.test").debug("hello %s", "there")
        [line] = capsys.readouterr().err.splitlines()
        assert json.loads(line) | {"time": None} == {
            "time": None,
            "level": "DEBUG",
            "logger": "metaray.test",
            "message": "hello there",
        }
    finally:
        logs.configure("info")


# -- secrets ----------------------------------------------------------------------------------

SECRETS = {
    "redis": "r3d1s-value-Zq81",
    "param": "r4y-start-param-Xw72",
    "env": "hunter2-env-Pv55",
    "token": "hf_tok3n-Yk09",
}


def secret_cluster(*, conflict: bool) -> dict[str, Any]:
    """A redisPassword value, a rayStartParams redis-password (on the head it conflicts with
    gcsFaultToleranceOptions: an invalid spec) and PASSWORD/TOKEN env values."""
    worker = group(replicas=1)
    worker["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "value": SECRETS["env"]},
        {"name": "HF_TOKEN", "value": SECRETS["token"]},
    ]
    spec = cluster_spec(
        worker,
        gcsFaultToleranceOptions={
            "redisAddress": "redis:6379",
            "redisPassword": {"value": SECRETS["redis"]},
        },
    )
    where = spec["headGroupSpec"] if conflict else worker
    where["rayStartParams"]["redis-password"] = SECRETS["param"]
    return raycluster(spec)


@pytest.mark.parametrize("conflict", [True, False], ids=["invalid-spec", "valid-spec"])
def test_no_secret_reaches_a_log_record_an_event_or_a_metric(
    tmp_path: Path, conflict: bool
) -> None:
    parent = secret_cluster(conflict=conflict)
    first = {"parent": parent, "children": {}}
    calls = [
        ("POST", "/sync", body(first)),
        ("POST", "/sync", body(first)),
        ("POST", "/finalize", body(finalize_request(parent))),
        ("GET", "/metrics", None),
    ]
    server = KubeServer()
    noisy = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    for logger in noisy:
        logger.setLevel(logging.DEBUG)
    try:
        with captured_logs(logging.DEBUG) as captured:
            responses = run_app(app_with(events_settings(tmp_path), server), calls)
    finally:
        for logger in noisy:
            logger.setLevel(logging.WARNING)

    assert server.requests, "Events were posted"
    assert len(captured.json()) == 3
    seen = [*captured.lines, *(repr(r.__dict__) for r in captured.records)]
    seen += [r.content.decode() for r in server.requests]
    seen += [responses[-1].text]
    for name, secret in SECRETS.items():
        assert not [text for text in seen if secret in text], f"the {name} secret leaked"
    assert all(TOKEN not in text for text in seen), "nor the service-account token"


def test_a_secret_quoted_by_the_core_is_masked_in_logs_and_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a message ever quote the spec, the secret is masked on its way out."""
    parent = secret_cluster(conflict=False)
    leaky = f"redis says {SECRETS['redis']} and {SECRETS['param']}"

    def quoting(*_: Any, **__: Any) -> Desired:
        return Desired([], {"state": leaky}, (Event(WARNING, "InvalidRayClusterSpec", leaky),))

    def failing(*_: Any, **__: Any) -> Desired:
        raise ValueError(leaky)

    server = KubeServer()
    monkeypatch.setattr("app.raycluster.sync.sync", quoting)
    monkeypatch.setattr("app.raycluster.sync.finalize", failing)
    request = body({"parent": parent, "children": {}})
    with captured_logs() as captured:
        app = app_with(events_settings(tmp_path), server)
        run_app(app, [("POST", "/sync", request), ("POST", "/finalize", request)])

    [event] = server.bodies()
    assert event["note"] == "redis says *** and ***"
    state_line, error_line = captured.json()
    assert state_line["state"] == "redis says *** and ***"
    assert "ValueError: redis says *** and ***" in error_line["exception"]
    texts = [*captured.lines, *(repr(copy.copy(r.__dict__)) for r in captured.records)]
    assert not [t for t in texts if SECRETS["redis"] in t or SECRETS["param"] in t]
