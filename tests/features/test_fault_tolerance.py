"""GCS fault tolerance: what the head and workers get, the rules, and the Redis cleanup on delete.

The finalize stories run through ``FinalizingLoop`` (tests/features/finalizing_loop.py): the
RayCluster is deleted, Metacontroller calls the finalize hook on every step, and the Job
controller is played by the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.raycluster.cluster import Cluster, Options
from app.raycluster.fault_tolerance import cleanup_job, storage_namespace
from app.raycluster.pods import head_pod_template
from app.raycluster.spec import parse_spec
from app.shell.http.app import create_app
from app.shell.settings import Settings
from tests.features.common import (
    Spec,
    container_named,
    env_of,
    first_sync,
    head_of,
    pods_of,
    problems,
    settle,
    start_script,
    unchanged,
)
from tests.features.finalizing_loop import JOB, FinalizingLoop
from tests.http.client import HookClient
from tests.loop import SERVICE, cluster_spec, group, raycluster
from tests.unit.helpers import UID, head_container, make_cluster, worker_container

REDIS = "redis:6379"
SECRET_REF = {"secretKeyRef": {"name": "redis-password-secret", "key": "password"}}
FT_ANNOTATION = "ray.io/ft-enabled"
NS_ANNOTATION = "ray.io/external-storage-namespace"
RECONNECT = "RAY_gcs_rpc_server_reconnect_timeout_s"


def ft_spec(*groups: dict[str, Any], **options: Any) -> Spec:
    return cluster_spec(
        *(groups or (group(replicas=2),)),
        gcsFaultToleranceOptions={"redisAddress": REDIS, **options},
    )


def head_env(spec: Spec, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return env_of(container_named(head_of(first_sync(spec, annotations)), "ray-head"))


# -- the head --------------------------------------------------------------------------------
def test_head_gets_the_redis_address_and_storage_namespace() -> None:
    env = head_env(ft_spec())
    assert env["RAY_REDIS_ADDRESS"] == {"name": "RAY_REDIS_ADDRESS", "value": REDIS}
    assert env["RAY_external_storage_namespace"] == {
        "name": "RAY_external_storage_namespace",
        "value": UID,
    }
    assert "REDIS_PASSWORD" not in env
    assert "REDIS_USERNAME" not in env


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        ({"value": "5241590000000000"}, {"value": "5241590000000000"}),
        ({"valueFrom": SECRET_REF}, {"valueFrom": SECRET_REF}),
    ],
)
@pytest.mark.parametrize(
    ("field", "variable"),
    [("redisPassword", "REDIS_PASSWORD"), ("redisUsername", "REDIS_USERNAME")],
)
def test_credentials_as_value_or_value_from(
    field: str, variable: str, credential: dict[str, Any], expected: dict[str, Any]
) -> None:
    env = head_env(ft_spec(**{field: credential}))
    assert env[variable] == {"name": variable, **expected}


def test_head_ray_start_takes_the_password_from_the_variable() -> None:
    desired = first_sync(ft_spec(redisPassword={"valueFrom": SECRET_REF}))
    script = start_script(container_named(head_of(desired), "ray-head"))
    assert " --redis-password=$REDIS_PASSWORD" in script
    for worker in pods_of(desired, "worker"):
        assert "redis-password" not in start_script(worker["spec"]["containers"][0])


def test_no_password_flag_without_a_password() -> None:
    script = start_script(container_named(head_of(first_sync(ft_spec())), "ray-head"))
    assert "redis-password" not in script


def test_head_annotations_say_fault_tolerant_and_where() -> None:
    meta = head_of(first_sync(ft_spec(externalStorageNamespace="team-a")))["metadata"]
    assert meta["annotations"][FT_ANNOTATION] == "true"
    assert meta["annotations"][NS_ANNOTATION] == "team-a"
    plain = head_of(first_sync(cluster_spec(group())))["metadata"]["annotations"]
    assert plain[FT_ANNOTATION] == "false"
    assert NS_ANNOTATION not in plain


@pytest.mark.parametrize(
    ("options", "annotations", "expected"),
    [
        ({"externalStorageNamespace": "from-option"}, None, "from-option"),
        ({}, {NS_ANNOTATION: "from-annotation"}, "from-annotation"),
        ({}, None, UID),
    ],
)
def test_storage_namespace_option_then_annotation_then_uid(
    options: dict[str, str], annotations: dict[str, str] | None, expected: str
) -> None:
    spec = ft_spec(**options)
    env = head_env(spec, annotations)
    assert env["RAY_external_storage_namespace"]["value"] == expected
    assert storage_namespace(make_cluster(spec, annotations=annotations)) == expected


def test_storage_namespace_option_wins_over_the_annotation() -> None:
    obj = raycluster(ft_spec(externalStorageNamespace="from-option"))
    cluster = Cluster.from_parent(obj, parse_spec(obj), Options())
    both = Cluster(
        cluster.name,
        cluster.namespace,
        cluster.uid,
        {NS_ANNOTATION: "from-annotation"},
        cluster.spec,
    )
    assert storage_namespace(both) == "from-option"


# -- the workers -----------------------------------------------------------------------------
def test_workers_wait_ten_minutes_for_a_new_head() -> None:
    for worker in pods_of(first_sync(ft_spec()), "worker"):
        env = env_of(worker["spec"]["containers"][0])
        assert env[RECONNECT] == {"name": RECONNECT, "value": "600"}
        assert "RAY_REDIS_ADDRESS" not in env
    for worker in pods_of(first_sync(cluster_spec(group())), "worker"):
        assert RECONNECT not in env_of(worker["spec"]["containers"][0])


def test_a_users_reconnect_timeout_is_kept() -> None:
    spec = ft_spec()
    worker_container(spec)["env"] = [{"name": RECONNECT, "value": "120"}]
    for worker in pods_of(first_sync(spec), "worker"):
        assert env_of(worker["spec"]["containers"][0])[RECONNECT]["value"] == "120"


# -- KubeRay v0.6: the annotation alone --------------------------------------------------------
@pytest.mark.parametrize("api_version", ["ray.io/v1alpha1", "ray.io/v1"])
def test_annotation_only_fault_tolerance(api_version: str) -> None:
    spec = cluster_spec(group(replicas=1))
    head_container(spec)["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]
    spec["headGroupSpec"]["rayStartParams"] = {"redis-password": "5241590000000000"}
    annotations = {FT_ANNOTATION: "true", NS_ANNOTATION: "legacy-ns"}
    desired = first_sync(spec, annotations, api_version=api_version)
    head = head_of(desired)
    ray = container_named(head, "ray-head")
    env = env_of(ray)
    assert env["RAY_REDIS_ADDRESS"]["value"] == "redis:6379"
    assert env["RAY_external_storage_namespace"]["value"] == "legacy-ns"
    assert "REDIS_PASSWORD" not in env
    assert " --redis-password=5241590000000000" in start_script(ray)
    assert head["metadata"]["annotations"][FT_ANNOTATION] == "true"
    assert head["metadata"]["annotations"][NS_ANNOTATION] == "legacy-ns"
    (worker,) = pods_of(desired, "worker")
    assert env_of(worker["spec"]["containers"][0])[RECONNECT]["value"] == "600"


def test_annotation_false_is_no_fault_tolerance() -> None:
    spec = cluster_spec(group(replicas=1))
    desired = first_sync(spec, {FT_ANNOTATION: "false"})
    env = env_of(container_named(head_of(desired), "ray-head"))
    assert "RAY_external_storage_namespace" not in env
    (worker,) = pods_of(desired, "worker")
    assert RECONNECT not in env_of(worker["spec"]["containers"][0])


# -- the rules -------------------------------------------------------------------------------
Change = Callable[[Spec, dict[str, str]], None]


def _options(spec: Spec) -> dict[str, Any]:
    options: dict[str, Any] = spec["gcsFaultToleranceOptions"]
    return options


CONFLICTS: list[tuple[str, Change, str]] = [
    (
        "annotation-false",
        lambda spec, ann: ann.update({FT_ANNOTATION: "false"}),
        'metadata.annotations["ray.io/ft-enabled"]',
    ),
    (
        "no-address",
        lambda spec, ann: _options(spec).pop("redisAddress"),
        "spec.gcsFaultToleranceOptions.redisAddress",
    ),
    (
        "empty-address",
        lambda spec, ann: _options(spec).update(redisAddress=""),
        "spec.gcsFaultToleranceOptions.redisAddress",
    ),
    (
        "namespace-twice",
        lambda spec, ann: (
            _options(spec).update(externalStorageNamespace="a"),
            ann.update({NS_ANNOTATION: "b"}),
        ),
        "spec.gcsFaultToleranceOptions.externalStorageNamespace",
    ),
    (
        "password-both",
        lambda spec, ann: _options(spec).update(
            redisPassword={"value": "x", "valueFrom": SECRET_REF}
        ),
        "spec.gcsFaultToleranceOptions.redisPassword",
    ),
    (
        "password-neither",
        lambda spec, ann: _options(spec).update(redisPassword={}),
        "spec.gcsFaultToleranceOptions.redisPassword",
    ),
    (
        "username-both",
        lambda spec, ann: _options(spec).update(
            redisUsername={"value": "x", "valueFrom": SECRET_REF}
        ),
        "spec.gcsFaultToleranceOptions.redisUsername",
    ),
    (
        "username-neither",
        lambda spec, ann: _options(spec).update(redisUsername={}),
        "spec.gcsFaultToleranceOptions.redisUsername",
    ),
    (
        "password-in-params",
        lambda spec, ann: spec["headGroupSpec"]["rayStartParams"].update({"redis-password": "x"}),
        "spec.headGroupSpec.rayStartParams.redis-password",
    ),
    (
        "address-in-env",
        lambda spec, ann: head_container(spec).update(
            env=[{"name": "RAY_REDIS_ADDRESS", "value": "other:6379"}]
        ),
        "spec.headGroupSpec.template.spec.containers[0].env",
    ),
]


@pytest.mark.parametrize(
    ("change", "path"), [(c, p) for _, c, p in CONFLICTS], ids=[i for i, _, _ in CONFLICTS]
)
def test_each_conflict_is_a_problem_naming_its_field(change: Change, path: str) -> None:
    spec, annotations = ft_spec(), {}
    assert problems(raycluster(spec)) == []
    change(spec, annotations)
    obj = raycluster(spec)
    obj["metadata"]["annotations"] = annotations
    found = problems(obj)
    assert [p.path for p in found] == [path]
    desired = first_sync(spec, annotations)
    assert desired.status["state"] == "failed"
    assert path in desired.status["reason"]
    assert [c for c in desired.children if c["kind"] == "Pod"] == []


# -- the cleanup Job -------------------------------------------------------------------------
def test_cleanup_job_shape() -> None:
    spec = ft_spec(redisPassword={"valueFrom": SECRET_REF})
    head_container(spec)["env"] = [{"name": "MY_SETTING", "value": "1"}]
    cluster = make_cluster(spec, name="ftc", namespace="team-a")
    head = head_pod_template(cluster)
    job = cleanup_job(cluster, head)

    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "ftc-cleanup"
    assert job["metadata"]["namespace"] == "team-a"
    assert job["metadata"]["labels"]["ray.io/cluster"] == "ftc"
    assert isinstance(job["spec"]["backoffLimit"], int)
    assert job["spec"]["backoffLimit"] >= 1
    template = job["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["ray.io/cluster"] == "ftc"
    # The head Service selects ray.io/cluster + ray.io/node-type=head: never the cleanup pod.
    assert labels.get("ray.io/node-type") not in ("head", "worker")
    pod_spec = template["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    (runner,) = pod_spec["containers"]
    ray = head["spec"]["containers"][0]
    assert runner["image"] == ray["image"]
    assert runner["env"][: len(ray["env"])] == ray["env"]
    env = env_of(runner)
    assert env["MY_SETTING"]["value"] == "1"
    assert env["RAY_REDIS_ADDRESS"]["value"] == REDIS
    assert env["REDIS_PASSWORD"] == {"name": "REDIS_PASSWORD", "valueFrom": SECRET_REF}
    assert env["RAY_external_storage_namespace"]["value"] == cluster.uid
    assert "livenessProbe" not in runner
    assert "readinessProbe" not in runner
    assert "ports" not in runner
    assert "initContainers" not in pod_spec
    mounted = {m["name"] for m in runner.get("volumeMounts", [])}
    assert {v["name"] for v in pod_spec.get("volumes", [])} == mounted


# -- finalize --------------------------------------------------------------------------------
def deleting_loop(spec: Spec, annotations: dict[str, str] | None = None) -> FinalizingLoop:
    obj = raycluster(spec)
    if annotations:
        obj["metadata"]["annotations"] = annotations
    loop = FinalizingLoop(obj)
    settle(loop)
    assert loop.finalized is None
    return loop


def test_a_cluster_without_fault_tolerance_is_released_at_once() -> None:
    loop = deleting_loop(cluster_spec(group(replicas=2)))
    before = sorted(loop.children)
    loop.delete()
    step = loop.step()
    assert step.request["finalizing"] is True
    assert loop.finalized is True
    unchanged(step)
    assert sorted(loop.children) == before
    assert loop.jobs() == []


def test_fault_tolerant_cluster_waits_for_the_head_then_cleans_redis() -> None:
    loop = deleting_loop(ft_spec())
    pods = loop.pods()
    (head,) = loop.heads()
    assert len(pods) == 3
    loop.held.add(head)
    loop.delete()

    step = loop.step()
    assert step.deleted == pods
    assert step.created == []
    assert loop.finalized is False
    assert loop.jobs() == []
    assert (SERVICE, "demo-head-svc") in loop.children

    # The head is still terminating: no Job yet.
    step = loop.step()
    unchanged(step)
    assert loop.terminating() == [head]
    assert loop.finalized is False
    assert loop.jobs() == []

    loop.held.clear()
    step = loop.step()
    assert loop.pods(live=False) == []
    assert step.created == ["demo-cleanup"]
    assert step.deleted == []
    assert loop.finalized is False
    assert [e.reason for e in step.desired.events] == ["CreatedRedisCleanupJob"]

    for _ in range(2):  # the Job runs
        step = loop.step()
        unchanged(step)
        assert loop.finalized is False

    loop.succeed_job("demo-cleanup")
    step = loop.step()
    unchanged(step)
    assert loop.finalized is True
    assert (JOB, "demo-cleanup") in loop.children
    assert [e for e in step.desired.events if e.type == "Warning"] == []


def test_no_job_while_any_head_pod_is_observed() -> None:
    loop = deleting_loop(ft_spec(group(replicas=1)))
    heads = loop.heads()
    loop.held.update(loop.pods())  # every pod takes its time
    loop.delete()
    loop.step()
    for _ in range(3):
        unchanged(loop.step())
        assert loop.jobs() == []
        assert loop.finalized is False
    # Workers may go on terminating: only the head matters.
    loop.held.difference_update(heads)
    step = loop.step()
    assert step.created == ["demo-cleanup"]
    assert loop.terminating() == sorted(set(loop.held))


def test_a_failed_cleanup_releases_the_cluster_with_a_warning() -> None:
    loop = deleting_loop(ft_spec(externalStorageNamespace="kept-ns"))
    loop.delete()
    loop.step()
    loop.step()
    assert loop.jobs() == ["demo-cleanup"]
    assert loop.finalized is False
    loop.fail_job("demo-cleanup")
    step = loop.step()
    assert loop.finalized is True
    unchanged(step)
    warnings = [e for e in step.desired.events if e.reason == "RedisCleanupFailed"]
    assert len(warnings) == 1
    assert warnings[0].type == "Warning"
    assert "kept-ns" in warnings[0].message


def test_annotation_only_cluster_is_cleaned_up_too() -> None:
    spec = cluster_spec(group(replicas=1))
    head_container(spec)["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": REDIS}]
    loop = deleting_loop(spec, {FT_ANNOTATION: "true"})
    loop.delete()
    loop.step()
    step = loop.step()
    assert step.created == ["demo-cleanup"]
    job = loop.job("demo-cleanup")
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert env["RAY_REDIS_ADDRESS"]["value"] == REDIS
    assert loop.finalized is False


def test_an_invalid_spec_is_released_without_touching_anything() -> None:
    loop = deleting_loop(ft_spec())
    loop.edit(lambda spec: spec["gcsFaultToleranceOptions"].pop("redisAddress"))
    unchanged(loop.step())
    before = sorted(loop.children)
    loop.delete()
    step = loop.step()
    unchanged(step)
    assert loop.finalized is True
    assert sorted(loop.children) == before
    assert loop.jobs() == []
    assert step.desired.status["state"] == "failed"


# -- over HTTP -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client() -> Iterator[HookClient]:
    yield HookClient(create_app(Settings()))


def post(client: HookClient, path: str, body: dict[str, Any]) -> Any:
    headers = {"Content-Type": "application/json"}
    response = client.post(path, content=json.dumps(body).encode(), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_finalize_over_http_answers_finalized(client: HookClient) -> None:
    plain = deleting_loop(cluster_spec(group()))
    plain.delete()
    answer = post(client, "/finalize", plain.request())
    assert set(answer) == {"children", "status", "finalized"}
    assert answer["finalized"] is True

    ft = deleting_loop(ft_spec())
    ft.delete()
    answer = post(client, "/finalize", ft.request())
    assert answer["finalized"] is False
    assert [c for c in answer["children"] if c["kind"] == "Pod"] == []


@pytest.mark.parametrize("deleting", [False, True])
@pytest.mark.parametrize("fault_tolerant", [False, True])
def test_sync_over_http_never_says_finalized(
    client: HookClient, deleting: bool, fault_tolerant: bool
) -> None:
    loop = deleting_loop(ft_spec() if fault_tolerant else cluster_spec(group()))
    if deleting:
        loop.delete()
    answer = post(client, "/sync", loop.request())
    assert set(answer) == {"children", "status"}
    assert set(loop.pods()) <= {c["metadata"]["name"] for c in answer["children"]}


def test_the_annotation_alone_needs_the_users_redis_address() -> None:
    from app.raycluster.problems import InvalidSpec
    from app.raycluster.spec import parse_spec
    from tests.loop import cluster_spec, group, raycluster

    parent = raycluster(cluster_spec(group()))
    parent["metadata"]["annotations"] = {"ray.io/ft-enabled": "true"}
    with pytest.raises(InvalidSpec, match=r"containers\[0\]\.env: must set RAY_REDIS_ADDRESS"):
        parse_spec(parent)
