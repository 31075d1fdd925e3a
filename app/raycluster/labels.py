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
