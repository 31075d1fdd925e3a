"""What KubeRay v1.7.0 creates for its samples and metaray now creates too: one test per row of
the field-by-field comparison (its patterns, each on the sample that shows it). Deliberate
differences are in docs/kuberay-differences.md and are asserted here as such."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from app import __version__
from tests.golden.render_samples import SAMPLES, rendered

INDEX = "ray.io/worker-group-replica-index"
REPLICA = "ray.io/worker-group-replica-name"
HOST = "ray.io/replica-host-index"


@cache
def children(sample: str) -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(rendered(SAMPLES / sample))["children"])


def of_kind(sample: str, kind: str) -> list[dict[str, Any]]:
    return [c for c in children(sample) if c["kind"] == kind]


def pods(sample: str, node_type: str) -> list[dict[str, Any]]:
    return [
        p
        for p in of_kind(sample, "Pod")
        if p["metadata"]["labels"]["ray.io/node-type"] == node_type
    ]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def named(containers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c for c in containers if c["name"] == name)


LABEL_SELECTOR = "ray-cluster-label-selector.yaml"


# -- rows 1-3: the head says who made it ---------------------------------------------------------


def test_head_carries_metaray_version_and_usage_tags() -> None:
    [head] = pods(LABEL_SELECTOR, "head")
    assert head["metadata"]["annotations"]["ray.io/metaray-version"] == f"v{__version__}"
    # Deliberately not KubeRay's key: KubeRay compares it with its own version.
    assert "ray.io/kuberay-version" not in head["metadata"]["annotations"]
    tags = env(head["spec"]["containers"][0])["RAY_USAGE_STATS_EXTRA_TAGS"]
    assert tags == f"kuberay_version=metaray-v{__version__};kuberay_crd=RayCluster"
    for worker in pods(LABEL_SELECTOR, "worker"):
        assert "RAY_USAGE_STATS_EXTRA_TAGS" not in env(worker["spec"]["containers"][0])


# -- rows 4, 18-20: replica indexing and the headless Service ------------------------------------


def test_every_worker_has_a_replica_index_unique_in_its_group() -> None:
    workers = pods(LABEL_SELECTOR, "worker")
    assert workers
    by_group: dict[str, list[str]] = {}
    for pod in workers:
        labels = pod["metadata"]["labels"]
        by_group.setdefault(labels["ray.io/group"], []).append(labels[INDEX])
        assert REPLICA not in labels and HOST not in labels  # single-host groups
    for indices in by_group.values():
        assert sorted(indices) == [str(i) for i in range(len(indices))]


def test_multi_host_replicas_have_a_name_and_host_indices_and_a_headless_service() -> None:
    sample = "ray-cluster.tpu-v4-multihost.yaml"
    workers = pods(sample, "worker")
    assert len(workers) == 2  # one replica of two hosts
    labels = [w["metadata"]["labels"] for w in workers]
    assert {lab[INDEX] for lab in labels} == {"0"}
    assert len({lab[REPLICA] for lab in labels}) == 1
    assert labels[0][REPLICA].startswith("tpu-group-")
    assert sorted(lab[HOST] for lab in labels) == ["0", "1"]
    services = {s["metadata"]["name"]: s for s in of_kind(sample, "Service")}
    headless = services["raycluster-tpu-v4-multihost-headless"]
    assert headless["metadata"]["labels"]["ray.io/headless-worker-svc"] == (
        "raycluster-tpu-v4-multihost"
    )
    assert headless["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {"ray.io/cluster": "raycluster-tpu-v4-multihost", "ray.io/node-type": "worker"},
        "type": "ClusterIP",
    }


def test_no_headless_service_without_multi_host_groups() -> None:
    names = {s["metadata"]["name"] for s in of_kind(LABEL_SELECTOR, "Service")}
    assert not any(name.endswith("-headless") for name in names)


def test_workers_are_named_as_kuberay_v1_2_and_later_names_them() -> None:
    for pod in pods(LABEL_SELECTOR, "worker"):
        group = pod["metadata"]["labels"]["ray.io/group"]
        name = pod["metadata"]["name"]
        assert (
            name.startswith(f"raycluster-label-selector-{group}-worker-"[:50]) and len(name) <= 55
        )


# -- rows 5-16: wait-gcs-ready -------------------------------------------------------------------


@pytest.mark.parametrize("sample", [LABEL_SELECTOR, "ray-cluster.external-redis.yaml"])
def test_wait_gcs_ready_gets_only_the_users_env_and_mounts(sample: str) -> None:
    for worker in pods(sample, "worker"):
        ray = worker["spec"]["containers"][0]
        wait = named(worker["spec"]["initContainers"], "wait-gcs-ready")
        ours = set(env(ray)) - set(env(wait))
        for name in (
            "KUBERAY_GEN_RAY_START_CMD",
            "RAY_ADDRESS",
            "RAY_CLOUD_INSTANCE_ID",
            "RAY_CLUSTER_NAMESPACE",
            "RAY_CLUSTER_NAME",
            "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE",
            "RAY_NODE_TYPE_NAME",
            "RAY_PORT",
            "RAY_USAGE_STATS_KUBERAY_IN_USE",
        ):
            assert name in ours
        assert "RAY_gcs_rpc_server_reconnect_timeout_s" not in env(wait)
        assert {"FQ_RAY_IP", "RAY_IP"} <= set(env(wait))
        assert not any(m["mountPath"] == "/dev/shm" for m in wait.get("volumeMounts", []))


def test_wait_gcs_ready_is_quiet_for_two_minutes_then_shows_why() -> None:
    [worker, *_] = pods(LABEL_SELECTOR, "worker")
    script = named(worker["spec"]["initContainers"], "wait-gcs-ready")["args"][0]
    assert '"$SECONDS" -le 120' in script and "/dev/stderr" in script
    assert "ray health-check --address raycluster-label-selector-head-svc" in script


# -- row 17: autoscaler Role -----------------------------------------------------------------------


def test_autoscaler_role_allows_in_place_pod_resize() -> None:
    [role] = of_kind("ray-cluster.autoscaler.yaml", "Role")
    assert {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]} in role["rules"]


# -- rows 21-23, 34-37, 44-47: mTLS ----------------------------------------------------------------


def test_mtls_certificates_name_loopback_and_the_ca_may_sign() -> None:
    certs = {
        c["metadata"]["name"]: c["spec"] for c in of_kind("ray-cluster.mtls.yaml", "Certificate")
    }
    assert certs["ray-ca-certificate-raycluster-mtls"]["usages"] == ["cert sign", "crl sign"]
    for leaf in ("ray-head-cert-raycluster-mtls", "ray-worker-cert-raycluster-mtls"):
        assert certs[leaf]["ipAddresses"][0] == "127.0.0.1"


@pytest.mark.parametrize("node_type", ["head", "worker"])
def test_wait_for_tls_ip_san_knows_the_head_and_runs_sh_c(node_type: str) -> None:
    for pod in pods("ray-cluster.mtls.yaml", node_type):
        wait = named(pod["spec"]["initContainers"], "wait-for-tls-ip-san")
        assert wait["command"] == ["sh", "-c"] and "IP Address:${POD_IP}" in wait["args"][0]
        assert env(wait)["RAY_IP"] == "raycluster-mtls-head-svc"
        assert env(wait)["FQ_RAY_IP"] == "raycluster-mtls-head-svc.default.svc.cluster.local"


# -- rows 24-25, 48-49: labels of Secrets and PVCs ------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("ray-cluster.auth.yaml", "Secret"),
        ("ray-cluster.embedded-gcs-ft.yaml", "PersistentVolumeClaim"),
    ],
)
def test_data_objects_carry_kuberays_label_only(sample: str, kind: str) -> None:
    [obj] = of_kind(sample, kind)
    assert set(obj["metadata"]["labels"]) == {"ray.io/cluster", "controller-uid"}


# -- rows 26-30, 32-33, 38-43: history server -----------------------------------------------------


@pytest.mark.parametrize(("node_type", "role"), [("head", "Head"), ("worker", "Worker")])
def test_history_collector_role_and_ray_event_export(node_type: str, role: str) -> None:
    for pod in pods("ray-cluster.historyserver.yaml", node_type):
        ray = env(pod["spec"]["containers"][0])
        assert ray["RAY_enable_ray_event"] == "true"
        assert ray["RAY_enable_core_worker_ray_event_to_aggregator"] == "true"
        assert ray["RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR"] == (
            "http://localhost:8084/v1/events"
        )
        types = ray["RAY_DASHBOARD_AGGREGATOR_AGENT_PUBLISHER_HTTP_ENDPOINT_EXPOSABLE_EVENT_TYPES"]
        assert types.startswith("TASK_DEFINITION_EVENT,TASK_LIFECYCLE_EVENT,")
        assert ray["RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES"] == types
        collector = env(named(pod["spec"]["containers"], "ray-history-collector"))
        assert collector["RAY_ROLE"] == role
        if node_type == "head":
            assert collector["RAY_DASHBOARD_ADDRESS"] == "http://localhost:8265"
        else:
            assert "RAY_DASHBOARD_ADDRESS" not in collector


# -- row 31: an overwritten autoscaler command can still run the default -------------------------


def test_overwritten_autoscaler_command_finds_the_default_start_command() -> None:
    [head] = pods("ray-cluster.autoscaler-v2-overwrite-cmd.yaml", "head")
    autoscaler = named(head["spec"]["containers"], "autoscaler")
    assert "$KUBERAY_GEN_AUTOSCALER_START_CMD" in autoscaler["args"][0]
    assert env(autoscaler)["KUBERAY_GEN_AUTOSCALER_START_CMD"] == (
        "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
        "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
    )
