"""The Ray autoscaler: a sidecar in the head pod, and the namespaced RBAC it runs with.

The autoscaler reads the RayCluster and its pods, and scales by patching ``replicas`` and
``scaleStrategy.workersToDelete``: it needs exactly get/list/watch/patch on pods, patch on
``pods/resize`` (the v2 autoscaler resizes pods in place, as KubeRay v1.5+ grants) and get/patch
on rayclusters, in the cluster's own namespace.
"""

from __future__ import annotations

import copy
from typing import Any

from app.raycluster import labels as lbl
from app.raycluster.cluster import Cluster
from app.raycluster.spec import AutoscalerOptions, JSONObject

CONTAINER = "autoscaler"
LOGS_VOLUME = "ray-logs"
LOGS_PATH = "/tmp/ray"
DEFAULT_RESOURCES = {"cpu": "500m", "memory": "512Mi"}
START = (
    "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) "
    "--cluster-namespace $(RAY_CLUSTER_NAMESPACE)"
)
RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
    {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
]


def _field(name: str, path: str) -> JSONObject:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def service_account_name(cluster: Cluster) -> str:
    """The head template's ``serviceAccountName`` (used as it is), else the cluster's name."""
    spec = cluster.spec.headGroupSpec.template.get("spec") or {}
    named = spec.get("serviceAccountName")
    return named if isinstance(named, str) and named else cluster.name


def creates_service_account(cluster: Cluster) -> bool:
    spec = cluster.spec.headGroupSpec.template.get("spec") or {}
    return not spec.get("serviceAccountName")


def add_autoscaler(cluster: Cluster, pod_spec: JSONObject) -> None:
    """Add the sidecar, the shared ``/tmp/ray`` log volume and the service account to a head."""
    options = cluster.spec.autoscalerOptions or AutoscalerOptions()
    ray: JSONObject = pod_spec["containers"][0]
    logs = logs_volume(pod_spec, ray)
    pod_spec["serviceAccountName"] = service_account_name(cluster)
    pod_spec["containers"].append(_sidecar(options, ray, logs))


def logs_volume(pod_spec: JSONObject, ray: JSONObject) -> str:
    """The volume the Ray container logs to at /tmp/ray; an emptyDir ``ray-logs`` if none."""
    mounts = ray.setdefault("volumeMounts", [])
    for mount in mounts:
        if mount.get("mountPath") == LOGS_PATH:
            return str(mount["name"])
    mounts.append({"mountPath": LOGS_PATH, "name": LOGS_VOLUME})
    volumes = pod_spec.setdefault("volumes", [])
    if not any(volume.get("name") == LOGS_VOLUME for volume in volumes):
        volumes.append({"emptyDir": {}, "name": LOGS_VOLUME})
    return LOGS_VOLUME


def _sidecar(options: AutoscalerOptions, ray: JSONObject, logs: str) -> JSONObject:
    command = options.command or ["/bin/bash", "-c", "--"]
    args = options.args or [START]
    ours: list[Any] = [
        _field("RAY_CLUSTER_NAME", f"metadata.labels['{lbl.CLUSTER}']"),
        _field("RAY_CLUSTER_NAMESPACE", "metadata.namespace"),
        _field("RAY_HEAD_POD_NAME", "metadata.name"),
        {"name": "KUBERAY_CRD_VER", "value": "v1"},
        # Always the default command, whatever command/args the user set: an overwritten
        # command typically wraps it (``...; $KUBERAY_GEN_AUTOSCALER_START_CMD``), as in KubeRay.
        {"name": "KUBERAY_GEN_AUTOSCALER_START_CMD", "value": START},
    ]
    # The user's variables are appended, and replace ours of the same name (no duplicates).
    overridden = {item.get("name") for item in options.env}
    env = [item for item in ours if item["name"] not in overridden] + copy.deepcopy(options.env)
    container: JSONObject = {
        "name": CONTAINER,
        "image": options.image or ray.get("image"),
        "imagePullPolicy": options.imagePullPolicy or "IfNotPresent",
        "command": list(command),
        "args": list(args),
        "env": env,
        "resources": copy.deepcopy(options.resources)
        or {"limits": dict(DEFAULT_RESOURCES), "requests": dict(DEFAULT_RESOURCES)},
        "volumeMounts": [
            {"mountPath": LOGS_PATH, "name": logs},
            *copy.deepcopy(options.volumeMounts),
        ],
    }
    if options.envFrom:
        container["envFrom"] = copy.deepcopy(options.envFrom)
    if options.securityContext is not None:
        container["securityContext"] = copy.deepcopy(options.securityContext)
    return container


def rbac(cluster: Cluster) -> list[JSONObject]:
    """ServiceAccount (unless the user named their own), Role and RoleBinding for the sidecar."""
    metadata = {
        "name": cluster.name,
        "namespace": cluster.namespace,
        "labels": lbl.cluster_labels(cluster.name, cluster.uid),
    }
    children: list[JSONObject] = []
    if creates_service_account(cluster):
        children.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata})
    group = "rbac.authorization.k8s.io"
    children.append(
        {"apiVersion": f"{group}/v1", "kind": "Role", "metadata": metadata, "rules": RULES}
    )
    children.append(
        {
            "apiVersion": f"{group}/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": group, "kind": "Role", "name": cluster.name},
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": service_account_name(cluster),
                    "namespace": cluster.namespace,
                }
            ],
        }
    )
    return children
