"""The history server's collector sidecar: ``historyServerOptions.collectorOptions``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.features.common import (
    Spec,
    children_of,
    container_named,
    env_of,
    first_sync,
    head_of,
    pods_of,
    problems,
)
from tests.loop import cluster_spec, group, raycluster
from tests.unit.helpers import worker_container

COLLECTOR = {
    "image": "quay.io/kuberay/collector:nightly",
    "imagePullPolicy": "IfNotPresent",
    "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}},
    "env": [
        {"name": "STORAGE_BUCKET", "value": "s3://logs"},
        {"name": "EVENTS_PORT", "value": "9000"},
    ],
}


def with_collector(**extra: Any) -> Spec:
    return cluster_spec(group(), historyServerOptions={"collectorOptions": COLLECTOR}, **extra)


def test_every_pod_gets_the_collector_sharing_the_ray_logs() -> None:
    desired = first_sync(with_collector())
    for role, pod in (("Head", head_of(desired)), ("Worker", pods_of(desired, "worker")[0])):
        sidecar = container_named(pod, "ray-history-collector")
        assert sidecar["image"] == COLLECTOR["image"]
        assert sidecar["imagePullPolicy"] == "IfNotPresent"
        assert sidecar["resources"] == COLLECTOR["resources"]
        env = env_of(sidecar)
        assert env["RAY_ROLE"]["value"] == role
        assert env["RAY_CLUSTER_NAME"]["value"] == "demo"
        assert env["RAY_CLUSTER_NAMESPACE"]["value"] == "default"
        assert env["FQ_RAY_IP"]["value"] == "demo-head-svc.default.svc.cluster.local"
        assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        assert env["EVENTS_PORT"]["value"] == "9000"  # the user's value wins
        assert env["STORAGE_BUCKET"]["value"] == "s3://logs"
        ray = pod["spec"]["containers"][0]
        logs = next(m for m in ray["volumeMounts"] if m["mountPath"] == "/tmp/ray")
        assert {"mountPath": "/tmp/ray", "name": logs["name"]} in sidecar["volumeMounts"]
        assert {"emptyDir": {}, "name": logs["name"]} in pod["spec"]["volumes"]


def test_with_token_auth_the_collector_reads_the_token_too() -> None:
    from app.core.observed import Observed
    from app.raycluster.sync import sync
    from tests.features.test_auth import observed_with

    spec = with_collector(authOptions={"mode": "token"})
    first = sync(raycluster(spec), Observed(), entropy=bytes(32))
    second = sync(raycluster(spec), observed_with(*children_of(first, "Secret")))
    sidecar = container_named(head_of(second), "ray-history-collector")
    token = env_of(sidecar)["RAY_AUTH_TOKEN"]["valueFrom"]
    assert token == {"secretKeyRef": {"name": "demo", "key": "auth_token"}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "historyServerOptions.collectorOptions must be set"),
        ({"collectorOptions": {}}, "spec.historyServerOptions.collectorOptions.image: is required"),
    ],
)
def test_invalid_collector_options(options: dict[str, Any], message: str) -> None:
    spec = cluster_spec(group(), historyServerOptions=options)
    assert any(message in str(problem) for problem in problems(raycluster(spec)))


def test_a_template_may_not_bring_its_own_collector() -> None:
    spec = with_collector()
    group_spec = spec["workerGroupSpecs"][0]
    group_spec["template"]["spec"]["containers"].append(
        {"name": "ray-history-collector", "image": "x"}
    )
    assert worker_container(spec)["name"] == "ray-worker"
    assert any(
        "worker group 'workers' pod template must not define a container with name "
        "'ray-history-collector' when history server collector options are enabled" in str(p)
        for p in problems(raycluster(spec))
    )
