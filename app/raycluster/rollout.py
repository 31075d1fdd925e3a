"""Template rollout (``upgradeStrategy.type: Recreate``): which pods run an outdated template.

Every pod carries the hash of the spec parts it was built from. Scaling fields (replicas, min,
max, workersToDelete, suspend) are not part of it, so scaling never looks like a new template.
With ``Recreate``, pods whose hash differs are replaced, workers at most ``maxUnavailable`` at a
time per group and only once the head runs the current template and is ready.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from app.raycluster.cluster import FT_ANNOTATION, OVERWRITE_CMD_ANNOTATION, Cluster
from app.raycluster.fault_tolerance import STORAGE_NAMESPACE_ANNOTATION
from app.raycluster.spec import WorkerGroupSpec

HASH_ANNOTATION = "ray.io/pod-template-hash"
RECREATE = "Recreate"
DEFAULT_MAX_UNAVAILABLE = 1
_HEAD_SERVICE_FIELDS = {"headService", "serviceType", "enableIngress", "ingressOptions", "replicas"}
_SCALING_FIELDS = {
    "replicas",
    "minReplicas",
    "maxReplicas",
    "scaleStrategy",
    "suspend",
    "idleTimeoutSeconds",
    "priority",
}
_POD_ANNOTATIONS = (FT_ANNOTATION, OVERWRITE_CMD_ANNOTATION, STORAGE_NAMESPACE_ANNOTATION)


def _digest(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _shared(cluster: Cluster) -> dict[str, Any]:
    spec = cluster.spec
    # Only when set, so that pods of clusters without it keep the hash they were created with.
    optional: dict[str, Any] = {}
    for key in ("authOptions", "tlsOptions", "historyServerOptions"):
        value = getattr(spec, key)
        if value is not None:
            optional[key] = value.model_dump()
    return {
        **optional,
        "rayVersion": spec.rayVersion,
        "autoscaling": spec.enableInTreeAutoscaling,
        "autoscalerVersion": spec.autoscalerOptions.version if spec.autoscalerOptions else None,
        "ft": spec.gcsFaultToleranceOptions.model_dump(exclude_none=True)
        if spec.gcsFaultToleranceOptions
        else None,
        "annotations": {
            k: cluster.annotations[k] for k in _POD_ANNOTATIONS if k in cluster.annotations
        },
        "headAddress": cluster.head_address,
    }


def template_hash(cluster: Cluster, group: WorkerGroupSpec | None) -> str:
    """The hash of what a head (``group`` None) or a worker of ``group`` is built from."""
    if group is None:
        head = cluster.spec.headGroupSpec.model_dump(exclude=_HEAD_SERVICE_FIELDS)
        options = cluster.spec.autoscalerOptions
        # upscalingMode and idleTimeoutSeconds are read by the autoscaler, not built into pods.
        read_by_autoscaler = {"upscalingMode", "idleTimeoutSeconds"}
        autoscaler = (
            options.model_dump(exclude_none=True, exclude=read_by_autoscaler) if options else None
        )
        return _digest({"head": head, "autoscalerOptions": autoscaler, **_shared(cluster)})
    worker = group.model_dump(exclude=_SCALING_FIELDS)
    return _digest({"worker": worker, **_shared(cluster)})


def recreating(cluster: Cluster) -> bool:
    strategy = cluster.spec.upgradeStrategy
    return strategy is not None and strategy.type == RECREATE


def max_unavailable(cluster: Cluster) -> int:
    strategy = cluster.spec.upgradeStrategy
    if strategy is None or strategy.maxUnavailable is None:
        return DEFAULT_MAX_UNAVAILABLE
    return strategy.maxUnavailable


def outdated(annotations: Mapping[str, str], current: str) -> bool:
    return annotations.get(HASH_ANNOTATION) != current
