"""RayJob answers are observed exactly as RayCluster answers are: Events on the RayJob, KubeRay's
per-RayJob gauges, one JSON line per answer, no secret anywhere, and DeleteSelf carried out by
the shell after the answer has been sent."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest, values

from app.core.desired import Desired
from app.core.events import NORMAL, WARNING, Event
from app.hooks.request import decode
from app.raycluster import sync as raycluster_core
from app.rayjob import sync as rayjob_core
from app.shell.kube import api as kube_api
from app.shell.kube.events import RAYJOB_CONTROLLER, action_of
from app.shell.kube.janitor import Janitor, Target
from app.shell.observability.job_gauges import JobGauges, series_of
from app.shell.observability.metrics import Metrics, Timings
from app.shell.observability.redact import MASK, Redactor
from app.shell.observability.summary import summarize
from app.shell.settings import Settings
from tests.fixtures import capture
from tests.loop import cluster_spec, container, group
from tests.observability.harness import (
    API,
    T0,
    TOKEN,
    Clock,
    KubeServer,
    app_with,
    as_observed,
    body,
    captured_logs,
    events_settings,
    failing,
    run_app,
    samples,
    series,
    value,
)

UID = "7a7a7a7a-1111-2222-3333-444444444444"
NAME = "job1"
CLUSTER = "job1-abcde"
ID = {"name": NAME, "namespace": "default", "uid": UID}
SYNC = "/rayjob/sync"
FINALIZE = "/rayjob/finalize"
EVENTS_PATH = "/apis/events.k8s.io/v1/namespaces/default/events"
RAYJOB_PATH = f"/apis/ray.io/v1/namespaces/default/rayjobs/{NAME}"
LONG_AGO = "2025-12-01T00:00:00Z"
STARTED = "2026-01-01T00:03:20Z"  # 100 s before the test clock's T0


# -- RayJob requests, built as Metacontroller sends them --------------------------------------


def rayjob(status: dict[str, Any] | None = None, uid: str = UID, **spec: Any) -> dict[str, Any]:
    parent: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "name": NAME,
            "namespace": "default",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "entrypoint": "python -c 'print(1)'",
            "rayClusterSpec": cluster_spec(group()),
            **spec,
        },
    }
    if status is not None:
        parent["status"] = status
    return parent


def request(
    parent: dict[str, Any], *children: dict[str, Any], finalizing: bool = False
) -> dict[str, Any]:
    grouped: dict[str, dict[str, Any]] = {"RayCluster.ray.io/v1": {}, "Job.batch/v1": {}}
    grouped["Service.v1"] = {}
    for child in children:
        key = f"{child['kind']}.{child['apiVersion']}"
        grouped[key][f"default/{child['metadata']['name']}"] = child
    return {
        "controller": {"kind": "CompositeController", "metadata": {"name": "metaray-rayjob"}},
        "parent": parent,
        "children": grouped,
        "related": {},
        "finalizing": finalizing,
    }


def ray_cluster(state: str = "ready") -> dict[str, Any]:
    child = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": CLUSTER, "namespace": "default"},
        "spec": cluster_spec(group()),
    }
    return as_observed(child, {"state": state})


def submitter(condition: str, message: str = "") -> dict[str, Any]:
    child = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {},
    }
    return as_observed(
        child, {"conditions": [{"type": condition, "status": "True", **_m(message)}]}
    )


def _m(message: str) -> dict[str, str]:
    return {"message": message} if message else {}


def running(**changes: Any) -> dict[str, Any]:
    return {
        "jobDeploymentStatus": "Running",
        "jobStatus": "RUNNING",
        "rayClusterName": CLUSTER,
        "jobId": "job1-x",
        "startTime": STARTED,
        "dashboardURL": f"{CLUSTER}-head-svc.default.svc.cluster.local:8265",
        "succeeded": 0,
        "failed": 0,
        **changes,
    }


def finished(**changes: Any) -> dict[str, Any]:
    return {
        "jobDeploymentStatus": "Complete",
        "jobStatus": "SUCCEEDED",
        "startTime": LONG_AGO,
        "endTime": LONG_AGO,
        "rayClusterName": CLUSTER,
        "jobId": "job1-x",
        **changes,
    }


def rule(policy: str) -> dict[str, Any]:
    condition = {"jobStatus": "SUCCEEDED", "ttlSeconds": 0}
    return {"deletionRules": [{"policy": policy, "condition": condition}]}


def delete_self(uid: str = UID) -> dict[str, Any]:
    """A finished RayJob whose DeleteSelf rule fell due long ago."""
    return request(rayjob(finished(), uid=uid, deletionStrategy=rule("DeleteSelf")))


COMPLETES = request(rayjob(running()), ray_cluster(), submitter("Complete"))
EXIT_64 = "Container ray-job-submitter for pod default/p failed with exit code 64 matching FailJob"
RETRIES = request(
    rayjob(running(failed=1), backoffLimit=2), ray_cluster(), submitter("Failed", EXIT_64)
)
INVALID = request(rayjob(entrypoint=""))


def calls(*requests: dict[str, Any], path: str = SYNC) -> list[tuple[str, str, bytes | None]]:
    return [("POST", path, body(r)) for r in requests]


def scrape(app: Any) -> str:
    [response] = run_app(app, [("GET", "/metrics", None)])
    return response.text


# -- 1. Events --------------------------------------------------------------------------------


def test_rayjob_events_are_posted_regarding_the_rayjob_by_the_rayjob_controller(
    tmp_path: Path,
) -> None:
    first = rayjob()
    initializing = rayjob({"jobDeploymentStatus": "Initializing", "rayClusterName": CLUSTER})
    server = KubeServer()
    app = app_with(events_settings(tmp_path), server, Clock())
    responses = run_app(app, calls(request(first), request(initializing), INVALID))

    assert [r.status_code for r in responses] == [200, 200, 200]
    posted = server.bodies()
    assert [(e["reason"], e["type"], e["action"]) for e in posted] == [
        ("CreatedRayCluster", NORMAL, "Create"),
        # The head Service comes with the cluster: the dashboard's address is derived from it.
        ("CreatedService", NORMAL, "Create"),
        ("InvalidRayJobSpec", WARNING, "Validate"),
    ]
    for event in posted:
        assert event["regarding"] == {"apiVersion": "ray.io/v1", "kind": "RayJob", **ID}
        assert event["reportingController"] == RAYJOB_CONTROLLER
        assert event["metadata"]["name"].startswith(f"{NAME}.")
    assert posted[0]["note"].startswith("Created RayCluster default/job1-")
    assert {r.url.path for r in server.requests} == {EVENTS_PATH}


def test_a_raycluster_keeps_its_own_reporting_controller(tmp_path: Path) -> None:
    server = KubeServer()
    run_app(
        app_with(events_settings(tmp_path), server),
        [("POST", "/sync", body(capture("sync-a-first")))],
    )
    assert {e["reportingController"] for e in server.bodies()} == {
        "metaray.io/raycluster-controller"
    }
    assert {e["regarding"]["kind"] for e in server.bodies()} == {"RayCluster"}


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        ("CreatedRayCluster", "Create"),
        ("CreatedRayJobSubmitter", "Create"),
        ("CreatedService", "Create"),
        ("DeletedRayCluster", "Delete"),
        ("DeletedRayJobSubmitter", "Delete"),
        ("UpdatedRayCluster", "Update"),
        ("RayClusterNotFound", "Validate"),
        ("InvalidRayJobSpec", "Validate"),
        ("InvalidRayJobMetadata", "Validate"),
        ("StoppingRayJob", "Delete"),
    ],
)
def test_each_rayjob_reason_has_a_kuberay_v17_action(reason: str, action: str) -> None:
    assert action_of(reason) == action


# -- 2. Metrics -------------------------------------------------------------------------------


def test_the_job_gauges_appear_with_kuberays_names_and_follow_the_deployment_status(
    tmp_path: Path,
) -> None:
    clock = Clock()
    app = app_with(Settings(), clock=clock)
    run_app(app, calls(request(rayjob())))
    text = scrape(app)
    assert series(text, "kuberay_job_info") == [ID]
    assert value(text, "kuberay_job_info", **ID) == 1
    assert series(text, "kuberay_job_deployment_status") == [
        ID | {"deployment_status": "Initializing"}
    ]
    assert series(text, "kuberay_job_execution_duration_seconds") == []
    assert series(text, "kuberay_cluster_info") == [], "a RayJob is no RayCluster"

    run_app(app, calls(COMPLETES))
    text = scrape(app)
    assert series(text, "kuberay_job_deployment_status") == [ID | {"deployment_status": "Complete"}]
    labels = ID | {"job_deployment_status": "Complete", "retry_count": "0"}
    assert value(text, "kuberay_job_execution_duration_seconds", **labels) == 100


def test_a_retry_sets_a_duration_that_stays_next_to_the_final_one() -> None:
    clock = Clock()
    app = app_with(Settings(), clock=clock)
    run_app(app, calls(RETRIES))
    retried = ID | {"job_deployment_status": "Retrying", "retry_count": "1"}
    assert value(scrape(app), "kuberay_job_execution_duration_seconds", **retried) == 100

    # The next attempt runs 50 s and completes: the retry's series is still there.
    clock.advance(50)
    second = rayjob(running(failed=2, startTime="2026-01-01T00:05:00Z"), backoffLimit=2)
    run_app(app, calls(request(second, ray_cluster(), submitter("Complete"))))
    text = scrape(app)
    durations = series(text, "kuberay_job_execution_duration_seconds")
    complete = ID | {"job_deployment_status": "Complete", "retry_count": "2"}
    assert {frozenset(d.items()) for d in durations} == {
        frozenset(retried.items()),
        frozenset(complete.items()),
    }
    assert value(text, "kuberay_job_execution_duration_seconds", **complete) == 50
    assert value(text, "kuberay_job_execution_duration_seconds", **retried) == 100


def test_a_duration_is_set_on_the_move_only_not_on_every_resync() -> None:
    already = rayjob(finished(startTime=STARTED, endTime="2026-01-01T00:04:00Z", failed=0))
    status = dict(already["status"])
    assert series_of(already, status, T0).durations == (), "Complete to Complete is no move"
    moved = series_of(rayjob(running()), {**running(), "jobDeploymentStatus": "Failed"}, T0)
    assert moved.durations == (("Failed", 0, 100.0),), "no endTime: the shell's now"


def test_job_gauges_go_when_finalize_releases_the_rayjob_and_expire_otherwise() -> None:
    clock = Clock()
    app = app_with(Settings(gauge_horizon_seconds=3600), clock=clock)
    run_app(app, calls(COMPLETES))
    assert series(scrape(app), "kuberay_job_info") == [ID]

    deleting = copy.deepcopy(COMPLETES)
    deleting["parent"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:04:59Z"
    deleting["parent"]["status"] = finished()
    deleting["finalizing"] = True
    [response] = run_app(app, calls(deleting, path=FINALIZE))
    assert orjson.loads(response.content)["finalized"] is True
    text = scrape(app)
    for name in (
        "kuberay_job_info",
        "kuberay_job_deployment_status",
        "kuberay_job_execution_duration_seconds",
    ):
        assert series(text, name) == [], name

    other = request(rayjob(uid="another-uid"))
    run_app(app, calls(other))
    clock.advance(3600)
    assert series(scrape(app), "kuberay_job_info"), "still within the horizon"
    clock.advance(1)
    assert series(scrape(app), "kuberay_job_info") == []


def test_rayjob_answers_are_timed_and_counted_under_their_own_hook_label() -> None:
    clock = Clock()
    app = app_with(Settings(), clock=clock)
    teardown = request(rayjob(finished(), deletionStrategy=rule("DeleteCluster")), ray_cluster())
    run_app(
        app,
        calls(
            request(rayjob({"jobDeploymentStatus": "Initializing", "rayClusterName": CLUSTER})),
            teardown,
        ),
    )
    text = scrape(app)
    for stage in ("decode", "compute", "encode"):
        assert value(text, f"metaray_sync_{stage}_seconds_count", hook="rayjob_sync") == 2
        assert value(text, f"metaray_sync_{stage}_seconds_count", hook="rayjob_finalize") == 0
    assert value(text, "metaray_children_created_total", kind="RayCluster") == 1
    assert value(text, "metaray_children_created_total", kind="Service") == 2
    assert value(text, "metaray_children_deleted_total", kind="RayCluster") == 1
    assert value(text, "metaray_children_deleted_total", kind="Job") == 0
    assert value(text, "metaray_sync_pods_count", hook="rayjob_sync") is None, "no pods"
    assert value(text, "metaray_sync_pods_count", hook="sync") == 0


@pytest.fixture
def multiproc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    def become(pid: int) -> None:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))

    yield become
    values.close_all_multiprocess_files()


def answer(metrics: Metrics, sync_request: dict[str, Any], now: Any) -> None:
    decoded = decode(body(sync_request))
    desired = rayjob_core.sync(decoded.parent, decoded.observed, decoded.related, now)
    summary = summarize("rayjob_sync", decoded, desired)
    metrics.record(summary, Timings(0.001, 0.002, 0.0005))
    metrics.gauges(summary, decoded.parent, desired.status)


def test_two_workers_share_job_gauges_and_keep_each_others_durations(
    tmp_path: Path, multiproc: Callable[[int], None]
) -> None:
    clock = Clock()
    workers = {}
    for pid in (301, 302):
        multiproc(pid)
        workers[pid] = Metrics(
            directory=str(tmp_path), clock=lambda: clock.now.timestamp(), process_id=lambda p=pid: p
        )
    answer(workers[301], COMPLETES, clock.now)  # worker 301 saw Running -> Complete
    clock.advance(10)
    resync = request(rayjob(finished()), ray_cluster(), submitter("Complete"))
    answer(workers[302], resync, clock.now)  # worker 302 only the resync afterwards

    labels = ID | {"job_deployment_status": "Complete", "retry_count": "0"}
    for metrics in workers.values():
        text = metrics.exposition().decode()
        assert series(text, "kuberay_job_info") == [ID]
        assert value(text, "kuberay_job_execution_duration_seconds", **labels) == 100
        assert value(text, "metaray_sync_compute_seconds_count", hook="rayjob_sync") == 2

    workers[302].jobs.forget(UID)
    assert series(workers[301].exposition().decode(), "kuberay_job_info") == []


def test_a_job_row_written_by_another_version_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "metaray_jobs_999.json").write_text('[{"unknown": 1}]')
    gauges = JobGauges(120, lambda: T0.timestamp(), str(tmp_path), lambda: 1)
    gauges.observe(series_of(rayjob(), {"jobDeploymentStatus": "Initializing"}, T0))
    names = {name for name, _ in samples(_exposition(gauges))}
    assert "kuberay_job_info" in names


def _exposition(collector: JobGauges) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


# -- 3. Logs ----------------------------------------------------------------------------------


def test_one_json_line_per_rayjob_answer_with_its_deployment_status() -> None:
    initializing = rayjob({"jobDeploymentStatus": "Initializing", "rayClusterName": CLUSTER})
    teardown = request(rayjob(finished(), deletionStrategy=rule("DeleteCluster")), ray_cluster())
    with captured_logs() as logs:
        run_app(app_with(Settings(), clock=Clock()), calls(request(initializing), teardown))
    first, second = logs.json()

    created = first.pop("created")
    assert [c["kind"] for c in created] == ["RayCluster", "Service"]
    assert created[0]["name"].startswith("job1-")
    assert {k: first[k] for k in ("hook", "rayjob", "namespace", "uid", "generation")} == {
        "hook": "rayjob_sync",
        "rayjob": NAME,
        "namespace": "default",
        "uid": UID,
        "generation": 1,
    }
    assert first["message"] == "rayjob_sync default/job1 ok"
    assert (first["state"], first["outcome"]) == ("Initializing", "ok")
    assert (first["observed_children"], first["desired_children"]) == (0, 2)
    assert "cluster" not in first and "observed_pods" not in first

    assert second["state"] == "Complete"
    assert second["deleted"] == [{"kind": "RayCluster", "name": CLUSTER}]
    assert second["created"] == [{"kind": "Service", "name": "job1-head-svc"}]


def test_an_invalid_rayjob_is_logged_as_invalid_spec() -> None:
    with captured_logs() as logs:
        run_app(app_with(Settings(), clock=Clock()), calls(INVALID))
    [line] = logs.json()
    assert (line["outcome"], line["state"]) == ("invalid_spec", "ValidationFailed")
    assert line["message"] == "rayjob_sync default/job1 invalid_spec"


def test_invalid_metadata_is_invalid_spec_too() -> None:
    parent = rayjob()
    decoded = decode(body(request(parent)))
    desired = Desired([], {}, (Event(WARNING, "InvalidRayJobMetadata", "name too long"),))
    assert summarize("rayjob_sync", decoded, desired).outcome == "invalid_spec"


def test_a_finalize_line_says_whether_the_rayjob_was_released() -> None:
    deleting = request(rayjob(finished()), finalizing=True)
    deleting["parent"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:04:59Z"
    with captured_logs() as logs:
        run_app(app_with(Settings(), clock=Clock()), calls(deleting, path=FINALIZE))
    [line] = logs.json()
    assert (line["hook"], line["finalized"], line["state"]) == ("rayjob_finalize", True, "Complete")


# -- 4. Redaction -----------------------------------------------------------------------------

RUNTIME_TOKEN = "rt-token-0a1b2c3d4e"
SUBMITTER_TOKEN = "ghp-submitter-5f6a7b8c"
CLUSTER_PASSWORD = "cluster-pw-9d0e1f2a"
METADATA_SECRET = "meta-secret-3b4c5d6e"
SECRETS = (RUNTIME_TOKEN, SUBMITTER_TOKEN, CLUSTER_PASSWORD, METADATA_SECRET)


def secret_rayjob() -> dict[str, Any]:
    runtime_env = (
        "pip:\n  - requests==2.26.0\n"
        "env_vars:\n"
        "  counter_name: test_counter\n"
        f'  HF_TOKEN: "{RUNTIME_TOKEN}"\n'
    )
    head = container("ray-head", env=[{"name": "REDIS_PASSWORD", "value": CLUSTER_PASSWORD}])
    spec = cluster_spec(group())
    spec["headGroupSpec"]["template"]["spec"]["containers"] = [head]
    submitter_template = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "ray-job-submitter",
                    "image": "rayproject/ray:2.52.0",
                    "env": [{"name": "GITHUB_TOKEN", "value": SUBMITTER_TOKEN}],
                }
            ],
        }
    }
    return rayjob(
        rayClusterSpec=spec,
        runtimeEnvYAML=runtime_env,
        submitterPodTemplate=submitter_template,
        metadata={"owner": "team-a", "wandb_secret": METADATA_SECRET},
    )


def test_the_redactor_finds_every_secret_a_rayjob_carries() -> None:
    redactor = Redactor.of(secret_rayjob())
    assert set(SECRETS) <= set(redactor.secrets)
    assert "test_counter" not in redactor.secrets and "team-a" not in redactor.secrets
    quoted = " ".join(SECRETS)
    assert redactor.text(quoted) == " ".join([MASK] * 4)


def test_a_runtime_env_that_is_not_yaml_or_has_no_env_vars_is_harmless() -> None:
    assert Redactor.of(rayjob(runtimeEnvYAML="pip: [: nope")).secrets == ()
    assert Redactor.of(rayjob(runtimeEnvYAML="working_dir: /code")).secrets == ()
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    started = time.perf_counter()
    assert Redactor.of(rayjob(runtimeEnvYAML=laughs)).secrets == ()
    assert time.perf_counter() - started < 1.0, "shared YAML nodes are walked once"


def _quoting(parent: dict[str, Any]) -> Callable[..., Desired]:
    """A core that quotes every secret in its status, an Event note and its Event reason."""
    quoted = " ".join(SECRETS)

    def sync(*args: Any, **kwargs: Any) -> Desired:
        event = Event(WARNING, "InvalidRayJobSpec", f"spec quoted: {quoted}")
        return Desired([], {"jobDeploymentStatus": "Failed", "message": quoted}, (event,))

    return sync


def test_no_rayjob_secret_reaches_a_log_line_an_event_or_a_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = secret_rayjob()
    monkeypatch.setattr(rayjob_core, "sync", _quoting(parent))
    server = KubeServer()
    app = app_with(events_settings(tmp_path), server, Clock())
    with captured_logs() as logs:
        run_app(app, calls(request(parent)))
    text = scrape(app)

    assert server.bodies(), "the Event was posted"
    assert MASK in server.bodies()[0]["note"]
    posted = json.dumps(server.bodies())
    records = [r.getMessage() + json.dumps(getattr(r, "fields", {})) for r in logs.records]
    for secret in SECRETS:
        assert secret not in posted
        assert not any(secret in line for line in logs.lines)
        assert not any(secret in record for record in records)
        assert secret not in text


def test_a_traceback_quoting_rayjob_secrets_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Desired:
        raise RuntimeError(f"cannot parse {RUNTIME_TOKEN} near {SUBMITTER_TOKEN}")

    monkeypatch.setattr(rayjob_core, "sync", broken)
    with captured_logs() as logs:
        [response] = run_app(app_with(Settings(), clock=Clock()), calls(request(secret_rayjob())))
    assert response.status_code == 500
    [line] = logs.json()
    assert line["outcome"] == "error" and "RuntimeError" in line["exception"]
    assert MASK in line["exception"]
    for secret in SECRETS:
        assert not any(secret in text for text in logs.lines)


# -- 5. DeleteSelf ----------------------------------------------------------------------------


def deletes(server: KubeServer) -> list[httpx.Request]:
    return [r for r in server.requests if r.method == "DELETE"]


def test_delete_self_deletes_the_rayjob_once_with_its_uid_as_precondition(
    tmp_path: Path,
) -> None:
    server = KubeServer()
    clock = Clock()
    app = app_with(events_settings(tmp_path, events="off"), server, clock)
    with captured_logs() as logs:
        responses = run_app(app, calls(delete_self(), delete_self(), delete_self()))
    text = scrape(app)

    assert all(r.status_code == 200 for r in responses)
    [deleted] = deletes(server)
    assert deleted.url.path == RAYJOB_PATH
    assert (deleted.url.scheme, deleted.url.host) == ("https", "kubernetes.test")
    assert deleted.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(deleted.content) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": UID},
        "propagationPolicy": "Background",
    }
    assert value(text, "metaray_rayjob_deletions_total", outcome="deleted") == 1
    [line] = logs.json("metaray.janitor")
    assert line["message"] == "deleted RayJob default/job1: its DeleteSelf policy is due"
    assert [entry.get("delete_self") for entry in logs.json()] == [True] * 3


def test_the_answer_is_the_same_with_or_without_the_janitor(tmp_path: Path) -> None:
    without = run_app(app_with(Settings(), clock=Clock()), calls(delete_self()))
    server = KubeServer(failing(500))
    with_janitor = run_app(
        app_with(events_settings(tmp_path), server, Clock()), calls(delete_self())
    )
    assert [r.content for r in with_janitor] == [r.content for r in without]
    assert orjson.loads(without[0].content)["status"]["jobDeploymentStatus"] == "Complete"


@pytest.mark.parametrize(
    ("status", "outcome"), [(404, "not_found"), (409, "conflict"), (202, "deleted")]
)
def test_a_rayjob_already_gone_or_recreated_counts_as_done(
    tmp_path: Path, status: int, outcome: str
) -> None:
    server = KubeServer(failing(status))
    app = app_with(events_settings(tmp_path, events="off"), server, Clock())
    with captured_logs() as logs:
        responses = run_app(app, calls(delete_self(), delete_self()))
    assert [r.status_code for r in responses] == [200, 200]
    assert len(deletes(server)) == 1, "done: not asked again"
    assert value(scrape(app), "metaray_rayjob_deletions_total", outcome=outcome) == 1
    assert all(r.levelname == "INFO" for r in logs.records if r.name == "metaray.janitor")


@pytest.mark.parametrize("status", [500, None], ids=["http-500", "connection-refused"])
def test_a_failed_deletion_is_logged_counted_and_asked_again_next_sync(
    tmp_path: Path, status: int | None
) -> None:
    server = KubeServer(failing(status))
    app = app_with(events_settings(tmp_path, events="off"), server, Clock())
    with captured_logs() as logs:
        first = run_app(app, calls(delete_self()))
        second = run_app(app, calls(delete_self()))
    assert [r.status_code for r in first + second] == [200, 200]
    assert len(deletes(server)) == 2, "a failure is not remembered as done"
    outcome = "rejected" if status else "unreachable"
    assert value(scrape(app), "metaray_rayjob_deletions_total", outcome=outcome) == 2
    warnings = logs.json("metaray.janitor")
    assert [w["level"] for w in warnings] == ["WARNING", "WARNING"]
    assert warnings[0]["message"] == "cannot delete RayJob default/job1 for DeleteSelf"
    assert warnings[0]["outcome"] == outcome
    assert ("HTTP 500" if status else "ConnectError") in warnings[0]["error"]


def test_the_answer_does_not_wait_for_a_slow_deletion(tmp_path: Path) -> None:
    server = KubeServer(failing(200, delay=1.0))
    timings: list[float] = []

    async def go() -> None:
        app = app_with(events_settings(tmp_path, events="off"), server, Clock())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
                started = time.perf_counter()
                response = await client.post(SYNC, content=body(delete_self()))
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
                assert server.finished == 0, "the DELETE was not through when the answer was"

    asyncio.run(go())
    assert timings[0] < 0.5
    assert server.finished == 1, "the queue was drained on shutdown"


def test_a_recreated_rayjob_of_the_same_name_is_deleted_under_its_own_uid(
    tmp_path: Path,
) -> None:
    server = KubeServer()
    app = app_with(events_settings(tmp_path, events="off"), server, Clock())
    run_app(app, calls(delete_self(), delete_self(uid="second-uid")))
    uids = [json.loads(r.content)["preconditions"]["uid"] for r in deletes(server)]
    assert uids == [UID, "second-uid"]


def test_no_deletion_unless_due_nor_outside_a_cluster(tmp_path: Path) -> None:
    server = KubeServer()
    not_due = request(
        rayjob(
            finished(endTime="2026-01-01T00:04:59Z"),
            deletionStrategy={
                "deletionRules": [
                    {
                        "policy": "DeleteSelf",
                        "condition": {"jobStatus": "SUCCEEDED", "ttlSeconds": 600},
                    }
                ]
            },
        )
    )
    run_app(app_with(events_settings(tmp_path), server, Clock()), calls(not_due))
    assert deletes(server) == []

    assert kube_api.in_cluster_api(Settings()) is None
    no_token = events_settings(tmp_path, token_path=str(tmp_path / "missing"))
    assert kube_api.in_cluster_api(no_token) is None
    assert kube_api.in_cluster_api(events_settings(tmp_path, events="off")) is not None
    with captured_logs() as logs:
        run_app(app_with(Settings(), clock=Clock()), calls(delete_self(), delete_self()))
    warnings = [r for r in logs.records if r.name == "metaray" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "outside a cluster" in warnings[0].getMessage()


def test_only_a_rayjob_not_yet_being_deleted_is_a_target() -> None:
    assert Target.of(rayjob()) == Target("ray.io/v1", NAME, "default", UID)
    assert Target.of({**rayjob(), "kind": "RayCluster"}) is None
    deleting = rayjob()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert Target.of(deleting) is None
    assert Target.of({"kind": "RayJob", "metadata": {"name": NAME}}) is None


def test_a_full_janitor_queue_drops_and_counts(tmp_path: Path) -> None:
    outcomes: list[str] = []

    class Tally:
        def deletion(self, outcome: str) -> None:
            outcomes.append(outcome)

    token = tmp_path / "token"
    token.write_text(TOKEN)
    api = kube_api.KubeApi(API, str(token), str(tmp_path / "ca.crt"))
    server = KubeServer()
    janitor = Janitor(lambda: kube_api.client(api, server.transport()), Tally(), queue_size=1)

    async def go() -> None:
        janitor.start()
        for index in range(3):
            await janitor.enqueue(rayjob(uid=f"uid-{index}"), Redactor())
        await janitor.stop()

    asyncio.run(go())
    assert sorted(outcomes) == ["deleted", "dropped", "dropped"]
    assert len(deletes(server)) == 1


def test_delete_parent_from_a_raycluster_hook_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wants_deletion(*args: Any, **kwargs: Any) -> Desired:
        return Desired([], {}, delete_parent=True)

    monkeypatch.setattr(raycluster_core, "sync", wants_deletion)
    server = KubeServer()
    run_app(
        app_with(events_settings(tmp_path), server, Clock()), calls(request(rayjob()), path="/sync")
    )
    assert deletes(server) == []
