"""The labels metaray puts on a cluster's children (KubeRay's, so its tooling keeps working)."""

from __future__ import annotations

from collections.abc import Mapping

from app.core.labels import (
    APP_NAME,
    APP_NAME_VALUE,
    CLUSTER,
    CONTROLLER_UID,
    CREATED_BY,
    CREATED_BY_VALUE,
    GROUP,
    HEAD,
    HEAD_GROUP,
    IDENTIFIER,
    IS_RAY_NODE,
    NODE_TYPE,
    WORKER,
)

HEADLESS_SERVICE = "ray.io/headless-worker-svc"
# Multi-host indexing (KubeRay's RayMultiHostIndexing, on by default in v1.7): every worker's
# replica index in its group; in groups of numOfHosts > 1 also its replica's name and its host
# index within that replica.
REPLICA_INDEX = "ray.io/worker-group-replica-index"
REPLICA_NAME = "ray.io/worker-group-replica-name"
HOST_INDEX = "ray.io/replica-host-index"

__all__ = [
    "APP_NAME",
    "APP_NAME_VALUE",
    "CLUSTER",
    "CONTROLLER_UID",
    "CREATED_BY",
    "CREATED_BY_VALUE",
    "GROUP",
    "HEAD",
    "HEAD_GROUP",
    "IDENTIFIER",
    "IS_RAY_NODE",
    "NODE_TYPE",
    "WORKER",
]

# A template may add labels and override the rest, but never these: they are how metaray,
# the Ray autoscaler and the head Service find the pods.
PROTECTED = (CLUSTER, NODE_TYPE, GROUP)


def identifier(cluster: str, node_type: str) -> str:
    return f"{cluster}-{node_type}"


def pod_labels(
    cluster: str,
    uid: str,
    group: str | None,
    template_labels: Mapping[str, str],
    group_labels: Mapping[str, str],
) -> dict[str, str]:
    """KubeRay's seven pod labels, the user's labels over them, the protected keys on top."""
    node_type = HEAD if group is None else WORKER
    fixed = {
        CLUSTER: cluster,
        NODE_TYPE: node_type,
        GROUP: HEAD_GROUP if group is None else group,
    }
    labels = {
        IS_RAY_NODE: "yes",
        IDENTIFIER: identifier(cluster, node_type),
        APP_NAME: APP_NAME_VALUE,
        CREATED_BY: CREATED_BY_VALUE,
        **template_labels,
        **group_labels,
        **fixed,
        CONTROLLER_UID: uid,
    }
    return dict(sorted(labels.items()))


def cluster_labels(cluster: str, uid: str) -> dict[str, str]:
    """The labels of a cluster-wide child (RBAC, Ingress): which cluster, and who made it."""
    return {
        APP_NAME: APP_NAME_VALUE,
        CREATED_BY: CREATED_BY_VALUE,
        CONTROLLER_UID: uid,
        CLUSTER: cluster,
    }


def data_labels(cluster: str, uid: str) -> dict[str, str]:
    """The labels of a Secret or PVC holding the cluster's data: which cluster, as in KubeRay
    (no ``app.kubernetes.io/*``), and the ``controller-uid`` Metacontroller selects children by."""
    return {CLUSTER: cluster, CONTROLLER_UID: uid}


def headless_service_labels(cluster: str, uid: str) -> dict[str, str]:
    """KubeRay's one label on the multi-host workers' headless Service, and ``controller-uid``."""
    return {HEADLESS_SERVICE: cluster, CONTROLLER_UID: uid}


def head_service_labels(cluster: str, uid: str, app_name: str) -> dict[str, str]:
    """KubeRay's five head-service labels (``app.kubernetes.io/name`` follows the head pod's)."""
    return {
        APP_NAME: app_name,
        CREATED_BY: CREATED_BY_VALUE,
        CONTROLLER_UID: uid,
        CLUSTER: cluster,
        IDENTIFIER: identifier(cluster, HEAD),
        NODE_TYPE: HEAD,
    }


def head_selector(cluster: str) -> dict[str, str]:
    """Selects the head pod by the labels a template cannot override."""
    return {CLUSTER: cluster, NODE_TYPE: HEAD}
