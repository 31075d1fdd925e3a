"""Environment variables Ray needs in its containers, added only where the user set none."""

from __future__ import annotations

from typing import Any

from app.raycluster.cluster import Cluster, metaray_version

EnvVar = dict[str, Any]


def _field(path: str) -> EnvVar:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def head_service_env(cluster: Cluster) -> list[EnvVar]:
    """Where the head is: every init container and every worker gets these."""
    return [
        {"name": "FQ_RAY_IP", "value": cluster.head_fqdn},
        {"name": "RAY_IP", "value": cluster.head_service_name},
    ]


def ray_env(cluster: Cluster, *, head: bool, start_command: str) -> list[EnvVar]:
    """The variables KubeRay injects into the Ray container, in KubeRay's order."""
    port = cluster.head_port
    env = [] if head else head_service_env(cluster)
    env += [
        {"name": "RAY_CLUSTER_NAME", **_field("metadata.labels['ray.io/cluster']")},
        {"name": "RAY_CLUSTER_NAMESPACE", **_field("metadata.namespace")},
        {"name": "RAY_CLOUD_INSTANCE_ID", **_field("metadata.name")},
        {"name": "RAY_NODE_TYPE_NAME", **_field("metadata.labels['ray.io/group']")},
        {"name": "KUBERAY_GEN_RAY_START_CMD", "value": start_command},
        {"name": "RAY_PORT", "value": port},
        {"name": "RAY_ADDRESS", "value": f"127.0.0.1:{port}" if head else cluster.head_address},
        {"name": "RAY_USAGE_STATS_KUBERAY_IN_USE", "value": "1"},
    ]
    if head:
        # Ray's usage statistics say which operator and version made the cluster (KubeRay's key
        # names; the value names metaray, so its clusters are not counted as KubeRay's).
        tags = f"kuberay_version=metaray-{metaray_version()};kuberay_crd={cluster.creator_kind}"
        env.append({"name": "RAY_USAGE_STATS_EXTRA_TAGS", "value": tags})
    env.append({"name": "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE", "value": "1"})
    return env


def merge_env(user: list[Any] | None, injected: list[EnvVar]) -> list[Any]:
    """The user's variables first and untouched; ours appended unless the user set that name."""
    current = list(user or [])
    names = {item.get("name") for item in current if isinstance(item, dict)}
    return current + [item for item in injected if item["name"] not in names]
