from __future__ import annotations

from typing import Any

import pytest

from app.raycluster.cluster import Cluster, Options
from app.raycluster.env import merge_env
from app.raycluster.pods import head_pod_template, worker_pod_template
from tests.loop import cluster_spec, group
from tests.unit.helpers import UID, head_container, make_cluster, worker_container

FQDN = "demo-head-svc.default.svc.cluster.local"
KUBERAY_ORDER = [
    "RAY_CLUSTER_NAME",
    "RAY_CLUSTER_NAMESPACE",
    "RAY_CLOUD_INSTANCE_ID",
    "RAY_NODE_TYPE_NAME",
    "KUBERAY_GEN_RAY_START_CMD",
    "RAY_PORT",
    "RAY_ADDRESS",
    "RAY_USAGE_STATS_KUBERAY_IN_USE",
    "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE",
]


def ray_env(cluster: Cluster, *, head: bool) -> list[dict[str, Any]]:
    if head:
        pod = head_pod_template(cluster)
    else:
        pod = worker_pod_template(cluster, cluster.spec.workerGroupSpecs[0])
    env: list[dict[str, Any]] = pod["spec"]["containers"][0]["env"]
    return env


def values(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in env}


@pytest.mark.parametrize(
    ("head", "order"),
    [
        # KubeRay v1.7: only the head says which operator (and version) made it.
        (True, [*KUBERAY_ORDER[:-1], "RAY_USAGE_STATS_EXTRA_TAGS", KUBERAY_ORDER[-1]]),
        (False, ["FQ_RAY_IP", "RAY_IP", *KUBERAY_ORDER]),
    ],
)
def test_kuberay_variables_in_kuberay_order(head: bool, order: list[str]) -> None:
    env = ray_env(make_cluster(cluster_spec(group())), head=head)
    assert [item["name"] for item in env] == order


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("RAY_CLUSTER_NAME", "metadata.labels['ray.io/cluster']"),
        ("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
        ("RAY_CLOUD_INSTANCE_ID", "metadata.name"),
        ("RAY_NODE_TYPE_NAME", "metadata.labels['ray.io/group']"),
    ],
)
@pytest.mark.parametrize("head", [True, False])
def test_field_references(name: str, path: str, head: bool) -> None:
    env = values(ray_env(make_cluster(cluster_spec(group())), head=head))
    assert env[name] == {"fieldRef": {"fieldPath": path}}


def test_head_values() -> None:
    env = values(ray_env(make_cluster(cluster_spec(group())), head=True))
    assert env["RAY_PORT"] == "6379"
    assert env["RAY_ADDRESS"] == "127.0.0.1:6379"
    assert env["RAY_USAGE_STATS_KUBERAY_IN_USE"] == "1"
    assert env["RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"] == "1"
    assert env["KUBERAY_GEN_RAY_START_CMD"].startswith("ray start --head ")


def test_worker_values() -> None:
    env = values(ray_env(make_cluster(cluster_spec(group())), head=False))
    assert env["FQ_RAY_IP"] == FQDN
    assert env["RAY_IP"] == "demo-head-svc"
    assert env["RAY_ADDRESS"] == f"{FQDN}:6379"
    assert env["KUBERAY_GEN_RAY_START_CMD"].startswith(f"ray start --address={FQDN}:6379 ")


def test_start_command_variable_has_no_ulimit() -> None:
    env = values(ray_env(make_cluster(cluster_spec(group())), head=False))
    assert "ulimit" not in env["KUBERAY_GEN_RAY_START_CMD"]


def test_custom_port_namespace_and_domain() -> None:
    spec = cluster_spec(group())
    spec["headGroupSpec"]["rayStartParams"] = {"port": "6380"}
    cluster = make_cluster(spec, namespace="ml", options=Options(cluster_domain="corp.local"))
    env = values(ray_env(cluster, head=False))
    assert env["FQ_RAY_IP"] == "demo-head-svc.ml.svc.corp.local"
    assert env["RAY_PORT"] == "6380"
    assert env["RAY_ADDRESS"] == "demo-head-svc.ml.svc.corp.local:6380"


def test_custom_head_service_name_is_where_workers_look() -> None:
    spec = cluster_spec(group())
    spec["headGroupSpec"]["headService"] = {"metadata": {"name": "my-head"}}
    env = values(ray_env(make_cluster(spec), head=False))
    assert env["FQ_RAY_IP"] == "my-head.default.svc.cluster.local"
    assert env["RAY_IP"] == "my-head"


@pytest.mark.parametrize(
    "name",
    [
        "RAY_ADDRESS",
        "RAY_PORT",
        "RAY_CLUSTER_NAME",
        "RAY_USAGE_STATS_KUBERAY_IN_USE",
        "KUBERAY_GEN_RAY_START_CMD",
        "FQ_RAY_IP",
    ],
)
@pytest.mark.parametrize("head", [True, False])
def test_user_variable_never_duplicated_nor_overridden(name: str, head: bool) -> None:
    spec = cluster_spec(group())
    container = head_container(spec) if head else worker_container(spec)
    container["env"] = [{"name": "MINE", "value": "1"}, {"name": name, "value": "user"}]
    env = ray_env(make_cluster(spec), head=head)
    assert [item for item in env if item["name"] == name] == [{"name": name, "value": "user"}]
    assert env[:2] == container["env"]


def test_user_variable_from_a_secret_is_kept() -> None:
    spec = cluster_spec(group())
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    head_container(spec)["env"] = [{"name": "RAY_ADDRESS", "valueFrom": secret}]
    env = ray_env(make_cluster(spec), head=True)
    assert [item for item in env if item["name"] == "RAY_ADDRESS"] == [
        {"name": "RAY_ADDRESS", "valueFrom": secret}
    ]


def test_merge_env_without_user_env() -> None:
    injected = [{"name": "A", "value": "1"}]
    assert merge_env(None, injected) == injected


@pytest.mark.parametrize(
    ("head", "name", "value"),
    [
        (False, "RAY_gcs_rpc_server_reconnect_timeout_s", "600"),
        (True, "RAY_external_storage_namespace", UID),
    ],
)
def test_gcs_fault_tolerance_variables(head: bool, name: str, value: str) -> None:
    spec = cluster_spec(group())
    head_container(spec)["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]
    cluster = make_cluster(spec, annotations={"ray.io/ft-enabled": "true"})
    assert values(ray_env(cluster, head=head)).get(name) == value


def test_gcs_fault_tolerance_options_give_the_head_its_redis_address() -> None:
    spec = cluster_spec(group(), gcsFaultToleranceOptions={"redisAddress": "redis:6379"})
    assert values(ray_env(make_cluster(spec), head=True)).get("RAY_REDIS_ADDRESS") == "redis:6379"
